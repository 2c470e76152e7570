//! The listener side of [`serve`](super::serve): the accept loop, one task per TCP connection
//! serving HTTP/1.1 (hyper, upgrades on) with a deadline on each request head, and those tasks'
//! part in a shutdown — asked to finish the request in flight (graceful), then dropped (forced).
//!
//! hyper is driven directly rather than through `axum::serve`: that one sniffs every connection
//! for an HTTP/2 preface (one more `read` per client, and a reconnect storm is all new clients)
//! and sets no timer, so a client that sends half a request head holds its socket, its task and
//! the server's shutdown for as long as it likes.

use super::{ServerState, FORCED};
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// The answer to a connection over [`ServerConfig::max_http_connections`](super::ServerConfig).
const REFUSED: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// Accepts connections on `listener` and serves `router` on each until `stop` completes;
/// beyond [`ServerConfig::max_http_connections`](super::ServerConfig) connections still
/// speaking HTTP, new ones are answered 503 and closed.
pub(super) async fn accept_until(
    listener: &TcpListener,
    router: &Router,
    state: &Arc<ServerState>,
    stop: impl Future<Output = ()>,
) {
    let mut stop = pin!(stop);
    loop {
        let accepted = tokio::select! {
            () = &mut stop => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, peer)) => {
                if state.http_open.load(Relaxed) >= state.config.max_http_connections {
                    // At the cap: a best-effort 503 without reading anything, then the socket
                    // goes (no task, no buffer for it).
                    let _ = tcp.try_write(REFUSED);
                    state.counters.http_refused.fetch_add(1, Relaxed);
                    continue;
                }
                let _ = tcp.set_nodelay(true);
                let open = HttpOpen::new(state.clone());
                tokio::spawn(serve_connection(tcp, peer, router.clone(), state.clone(), open));
            }
            // Out of file descriptors, or the peer reset before the accept: the listener itself
            // is fine. Wait a little, so a full descriptor table does not turn into a busy loop.
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Serves HTTP/1.1 on one connection; the WebSocket upgrade hands the socket on to
/// [`connection::run`](super::connection) and ends this task.
async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    router: Router,
    state: Arc<ServerState>,
    _open: HttpOpen,
) {
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        tower::ServiceExt::oneshot(router.clone(), req)
    });
    let mut conn = pin!(http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(state.config.request_head_timeout)
        .max_buf_size(state.config.max_request_head_bytes)
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades());
    let mut phase = state.shutdown.subscribe();
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, "http connection ended: {e}");
                }
                return;
            }
            // The phase only moves forward: GRACEFUL is seen once (or skipped), then FORCED.
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow_and_update() >= FORCED {
                    return;
                }
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Counts a connection still speaking HTTP (not yet upgraded) for the shutdown's wait.
struct HttpOpen(Arc<ServerState>);

impl HttpOpen {
    fn new(state: Arc<ServerState>) -> HttpOpen {
        state.http_open.fetch_add(1, Relaxed);
        HttpOpen(state)
    }
}

impl Drop for HttpOpen {
    fn drop(&mut self) {
        self.0.http_open.fetch_sub(1, Relaxed);
    }
}
