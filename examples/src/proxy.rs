//! A loopback TCP proxy that tests control: cut every connection, stall them (bytes stop both
//! ways, sockets stay open), refuse new ones, or lose the replies of the next ones (the request
//! goes through, the answer never comes back). Used by the fault tests and the benchmarks;
//! binds 127.0.0.1 only.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug)]
struct Conn {
    tasks: Vec<JoinHandle<()>>,
    stall: watch::Sender<bool>,
}

#[derive(Debug)]
struct Ctl {
    upstream: Mutex<SocketAddr>,
    refuse: AtomicBool,
    /// How many of the next connections lose their replies.
    lose_replies: AtomicUsize,
    accepted: AtomicUsize,
    conns: Mutex<Vec<Conn>>,
}

/// A running proxy; dropping it stops accepting and cuts every connection.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    ctl: Arc<Ctl>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy on 127.0.0.1 (ephemeral port) forwarding to `upstream`.
    ///
    /// # Errors
    /// If the listener cannot be bound.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let ctl = Arc::new(Ctl {
            upstream: Mutex::new(upstream),
            refuse: AtomicBool::new(false),
            lose_replies: AtomicUsize::new(0),
            accepted: AtomicUsize::new(0),
            conns: Mutex::new(Vec::new()),
        });
        let c = ctl.clone();
        let accept = tokio::spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                if c.refuse.load(Ordering::SeqCst) {
                    drop(down);
                    continue;
                }
                c.accepted.fetch_add(1, Ordering::SeqCst);
                let up_addr = *c.upstream.lock().expect("lock");
                let Ok(up) = TcpStream::connect(up_addr).await else { continue };
                let _ = (down.set_nodelay(true), up.set_nodelay(true));
                let (stall, rx) = watch::channel(false);
                let (dr, dw) = down.into_split();
                let (ur, uw) = up.into_split();
                let lose = c
                    .lose_replies
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                let back = if lose {
                    // The upstream's first bytes end the connection unsent.
                    tokio::spawn(async move {
                        let (mut ur, _dw) = (ur, dw);
                        let _ = ur.read(&mut [0u8; 1]).await;
                    })
                } else {
                    tokio::spawn(pump(ur, dw, rx.clone()))
                };
                let tasks = vec![tokio::spawn(pump(dr, uw, rx)), back];
                c.conns.lock().expect("lock").push(Conn { tasks, stall });
            }
        });
        Ok(Proxy { addr, ctl, accept })
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.ctl.accepted.load(Ordering::SeqCst)
    }

    /// Closes every current connection (both sides see the TCP connection end).
    pub fn cut(&self) {
        for c in self.ctl.conns.lock().expect("lock").drain(..) {
            c.tasks.iter().for_each(JoinHandle::abort);
        }
    }

    /// Stalls (or resumes) every current connection: no byte moves either way, sockets stay
    /// open. New connections are not stalled.
    pub fn stall(&self, on: bool) {
        for c in self.ctl.conns.lock().expect("lock").iter() {
            let _ = c.stall.send(on);
        }
    }

    /// Refuses (closes at once) new connections while `on`.
    pub fn refuse(&self, on: bool) {
        self.ctl.refuse.store(on, Ordering::SeqCst);
    }

    /// The next `n` connections lose their replies: what the client sends reaches the upstream,
    /// and the connection closes when the upstream starts to answer, before the client gets a
    /// byte of it (a reply lost on the way back).
    pub fn lose_replies(&self, n: usize) {
        self.ctl.lose_replies.store(n, Ordering::SeqCst);
    }

    /// Points new connections at another upstream.
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *self.ctl.upstream.lock().expect("lock") = upstream;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut stall: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if stall.wait_for(|s| !*s).await.is_err() {
            return;
        }
        let n = tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            _ = stall.wait_for(|s| *s) => continue,
        };
        if stall.wait_for(|s| !*s).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
