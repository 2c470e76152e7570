//! A broken hub made from a good one: a loopback proxy in front of a real `guts-hub` (one port
//! for WebSockets, one for HTTP) that passes everything through except what its [`Mutant`]
//! changes — a frame rewritten, dropped or added, a close code changed, an HTTP answer altered
//! — so that it breaks exactly one rule of the protocol. The conformance suite is run through
//! it to show which of its checks catch which broken rule
//! (`examples/tests/conformance_mutants.rs`).

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// What one proxied connection knows about itself.
#[derive(Debug, Default)]
pub struct Ctx {
    /// This connection's number.
    pub id: usize,
    /// The user it authenticated as (from the hub's `authenticated`).
    pub user: Option<String>,
    /// The epoch of its welcome.
    pub epoch: Option<String>,
    /// Channels it holds (from `subscribed` replies; every reply counts, duplicates too).
    pub subscribed: Vec<String>,
    /// Channels it watches with presence.
    pub watching: BTreeSet<String>,
    /// The `since` of its last `subscribe` (seq, epoch).
    pub since: Option<(u64, String)>,
    /// Event frames after the last `subscribed` with `recovered: true` (the replay, then live).
    pub after_recovered: usize,
    /// The last frame the client sent.
    pub last_sent: Option<Value>,
    /// Set by a mutant: close the connection with this code after the frames of this turn.
    pub close_after: Option<u16>,
    /// Every connection of the proxy.
    pub shared: Arc<Shared>,
}

/// What the proxied connections share (for mutants that act across connections).
#[derive(Debug, Default)]
pub struct Shared {
    conns: Mutex<HashMap<usize, Peer>>,
    /// The last event frame seen per channel.
    pub last_event: Mutex<HashMap<String, String>>,
    /// The `user` field of the last signal a client sent.
    pub claimed_user: Mutex<Option<String>>,
}

#[derive(Debug)]
struct Peer {
    tx: mpsc::UnboundedSender<String>,
    watching: BTreeSet<String>,
}

impl Shared {
    /// Sends `frame` to every other connection watching `channel`.
    pub fn to_watchers(&self, except: usize, channel: &str, frame: &str) {
        let conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        for (id, p) in conns.iter() {
            if *id != except && p.watching.contains(channel) {
                let _ = p.tx.send(frame.to_owned());
            }
        }
    }
}

/// What to do with a frame from the client.
#[derive(Debug, Default)]
pub struct ToHub {
    /// Forward it (possibly rewritten); `None` to swallow it.
    pub forward: Option<String>,
    /// Frames to send the client instead of, or besides, the hub's answer.
    pub reply: Vec<String>,
}

/// One broken rule.
#[derive(Debug, Clone, Copy)]
pub struct Mutant {
    /// Its name.
    pub name: &'static str,
    /// The checks of the suite that must fail (exactly these).
    pub fails: &'static [&'static str],
    /// A frame from the hub: what the client gets instead (empty: nothing). `None`: unchanged.
    pub to_client: fn(&mut Ctx, &str, &Value) -> Option<Vec<String>>,
    /// A frame from the client.
    pub to_hub: fn(&mut Ctx, &str, &Value) -> Option<ToHub>,
    /// A close from the hub: the code and reason the client gets.
    pub close: fn(u16, &str) -> (u16, String),
    /// The connection ended (both sides).
    pub closed: fn(&Ctx),
    /// An HTTP answer: `(path, status, body)` → the status and body the client gets.
    pub http: fn(&str, u16, &str) -> (u16, String),
    /// Accept the upgrade even when the hub refuses it (then close with 1013).
    pub accept_refused: bool,
}

/// Unchanged frames.
pub fn same_to_client(_: &mut Ctx, _: &str, _: &Value) -> Option<Vec<String>> {
    None
}
/// Unchanged frames.
pub fn same_to_hub(_: &mut Ctx, _: &str, _: &Value) -> Option<ToHub> {
    None
}
/// Unchanged closes.
pub fn same_close(code: u16, reason: &str) -> (u16, String) {
    (code, reason.to_owned())
}
/// Nothing on close.
pub fn same_closed(_: &Ctx) {}
/// Unchanged HTTP answers.
pub fn same_http(_: &str, status: u16, body: &str) -> (u16, String) {
    (status, body.to_owned())
}

impl Mutant {
    /// The proxy that breaks nothing.
    pub const IDENTITY: Mutant = Mutant {
        name: "identity",
        fails: &[],
        to_client: same_to_client,
        to_hub: same_to_hub,
        close: same_close,
        closed: same_closed,
        http: same_http,
        accept_refused: false,
    };
}

/// A running proxy.
#[derive(Debug)]
pub struct MutantProxy {
    /// Its WebSocket URL (`ws://ADDR/ws`).
    pub ws_url: String,
    /// Its HTTP base URL.
    pub http_url: String,
}

impl MutantProxy {
    /// Proxies the hub at `hub` (its HTTP address) through `mutant`.
    ///
    /// # Errors
    /// When it cannot listen.
    pub async fn start(hub: SocketAddr, mutant: Mutant) -> std::io::Result<MutantProxy> {
        let ws = TcpListener::bind("127.0.0.1:0").await?;
        let http = TcpListener::bind("127.0.0.1:0").await?;
        let proxy = MutantProxy {
            ws_url: format!("ws://{}/ws", ws.local_addr()?),
            http_url: format!("http://{}", http.local_addr()?),
        };
        let shared = Arc::new(Shared::default());
        let ids = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            while let Ok((tcp, _)) = ws.accept().await {
                let (shared, id) = (shared.clone(), ids.fetch_add(1, Ordering::Relaxed));
                tokio::spawn(websocket(tcp, hub, mutant, shared, id));
            }
        });
        tokio::spawn(async move {
            while let Ok((tcp, _)) = http.accept().await {
                tokio::spawn(http_request(tcp, hub, mutant));
            }
        });
        Ok(proxy)
    }
}

/// Reads an HTTP request head (peeking: the bytes stay in the socket); its path.
async fn peek_path(tcp: &TcpStream) -> Option<String> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tcp.peek(&mut buf).await.ok()?;
        let head = String::from_utf8_lossy(&buf[..n]);
        if head.contains("\r\n\r\n") {
            return head.split(' ').nth(1).map(str::to_owned);
        }
        if n == 0 || n == buf.len() {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

async fn websocket(mut tcp: TcpStream, hub: SocketAddr, m: Mutant, shared: Arc<Shared>, id: usize) {
    let Some(path) = peek_path(&tcp).await else { return };
    let upstream = tokio_tungstenite::connect_async(format!("ws://{hub}{path}")).await;
    let upstream = match upstream {
        Ok((u, _)) => Some(u),
        Err(_) if m.accept_refused => None,
        Err(e) => {
            let status = match e {
                tokio_tungstenite::tungstenite::Error::Http(r) => r.status().as_u16(),
                _ => 502,
            };
            let resp = format!("HTTP/1.1 {status} Refused\r\nRetry-After: 5\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = tcp.write_all(resp.as_bytes()).await;
            return;
        }
    };
    let Ok(client) = tokio_tungstenite::accept_async(tcp).await else { return };
    let (c_tx, mut c_rx) = client.split();
    let c_tx = Arc::new(tokio::sync::Mutex::new(c_tx));
    let Some(upstream) = upstream else {
        let frame = CloseFrame { code: CloseCode::from(1013), reason: "try again later".into() };
        let _ = c_tx.lock().await.send(Message::Close(Some(frame))).await;
        return;
    };
    let (mut h_tx, mut h_rx) = upstream.split();
    let (inject_tx, mut inject_rx) = mpsc::unbounded_channel::<String>();
    shared
        .conns
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, Peer { tx: inject_tx, watching: BTreeSet::new() });
    let ctx = Arc::new(Mutex::new(Ctx { id, shared: shared.clone(), ..Ctx::default() }));
    // Each direction on its own, so that a client that does not read never stops what it sends
    // from reaching the hub (as without the proxy).
    let (up_ctx, up_client) = (ctx.clone(), c_tx.clone());
    let (ended_tx, mut ended_rx) = tokio::sync::watch::channel(false);
    let up = tokio::spawn(async move {
        loop {
            let msg = tokio::select! {
                msg = c_rx.next() => msg,
                _ = ended_rx.changed() => break,
            };
            match msg {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                    let act = {
                        let mut ctx = up_ctx.lock().unwrap_or_else(|e| e.into_inner());
                        observe_from_client(&mut ctx, &v);
                        let act = (m.to_hub)(&mut ctx, &t, &v);
                        ctx.last_sent = Some(v);
                        act.unwrap_or(ToHub { forward: Some(t.to_string()), reply: vec![] })
                    };
                    if let Some(f) = act.forward {
                        // Once the hub is gone, what the client still sends is read and dropped.
                        let _ = h_tx.send(Message::text(f)).await;
                    }
                    for r in act.reply {
                        let _ = up_client.lock().await.send(Message::text(r)).await;
                    }
                }
                Some(Ok(other)) => {
                    let close = other.is_close();
                    let _ = h_tx.send(other).await;
                    if close {
                        break;
                    }
                }
                _ => break,
            }
        }
        // The hub's side goes when the client's does.
        let _ = h_tx.close().await;
    });
    loop {
        tokio::select! {
            msg = h_rx.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                    let (out, close_after) = {
                        let mut ctx = ctx.lock().unwrap_or_else(|e| e.into_inner());
                        observe_from_hub(&mut ctx, &v, &t);
                        let out = (m.to_client)(&mut ctx, &t, &v).unwrap_or_else(|| vec![t.to_string()]);
                        (out, ctx.close_after)
                    };
                    let mut client = c_tx.lock().await;
                    for f in out {
                        let _ = client.send(Message::text(f)).await;
                    }
                    if let Some(code) = close_after {
                        let frame = CloseFrame { code: CloseCode::from(code), reason: "".into() };
                        let _ = client.send(Message::Close(Some(frame))).await;
                        break;
                    }
                }
                Some(Ok(Message::Close(f))) => {
                    // A close without a code goes on without one.
                    let frame = f.map(|f| {
                        let (code, reason) = (m.close)(u16::from(f.code), &f.reason);
                        CloseFrame { code: CloseCode::from(code), reason: reason.into() }
                    });
                    let _ = c_tx.lock().await.send(Message::Close(frame)).await;
                    break;
                }
                Some(Ok(other)) => { let _ = c_tx.lock().await.send(other).await; }
                _ => break,
            },
            Some(f) = inject_rx.recv() => {
                let _ = c_tx.lock().await.send(Message::text(f)).await;
            }
        }
    }
    // The client reads its close, and what it still sends is read, until it closes (a socket
    // dropped with unread bytes resets before the client reads the close).
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while !up.is_finished() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    let _ = ended_tx.send(true);
    let _ = up.await;
    shared.conns.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    let ctx = ctx.lock().unwrap_or_else(|e| e.into_inner());
    (m.closed)(&ctx);
}

/// Keeps the connection's view up to date with a frame from the hub.
fn observe_from_hub(ctx: &mut Ctx, v: &Value, text: &str) {
    let s = |k: &str| v[k].as_str().map(str::to_owned);
    match v["type"].as_str() {
        Some("welcome") => ctx.epoch = s("epoch"),
        Some("authenticated") => ctx.user = s("user"),
        Some("subscribed") => {
            ctx.subscribed.extend(s("channel"));
            if v["recovered"] == true {
                ctx.after_recovered = 0;
            }
        }
        Some("unsubscribed") => {
            let ch = s("channel").unwrap_or_default();
            ctx.subscribed.retain(|c| *c != ch);
            ctx.watching.remove(&ch);
            set_watching(ctx);
        }
        Some("event") => {
            ctx.after_recovered += 1;
            if let Some(ch) = s("channel") {
                let mut last = ctx.shared.last_event.lock().unwrap_or_else(|e| e.into_inner());
                last.insert(ch, text.to_owned());
            }
        }
        _ => {}
    }
}

fn observe_from_client(ctx: &mut Ctx, v: &Value) {
    if v["type"] == "subscribe" {
        ctx.since = v["since"]["seq"].as_u64().zip(v["since"]["epoch"].as_str().map(str::to_owned));
        if let Some(ch) = v["channel"].as_str() {
            if v["presence"] == true {
                ctx.watching.insert(ch.to_owned());
            } else {
                ctx.watching.remove(ch);
            }
            set_watching(ctx);
        }
    }
    if v["type"] == "signal" {
        let mut claimed = ctx.shared.claimed_user.lock().unwrap_or_else(|e| e.into_inner());
        *claimed = v["user"].as_str().map(str::to_owned);
    }
}

fn set_watching(ctx: &Ctx) {
    let mut conns = ctx.shared.conns.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = conns.get_mut(&ctx.id) {
        p.watching = ctx.watching.clone();
    }
}

/// One HTTP request, forwarded with `Connection: close`, its answer passed through
/// [`Mutant::http`].
async fn http_request(mut tcp: TcpStream, hub: SocketAddr, m: Mutant) {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let (head_len, body_len) = loop {
        let Ok(n) = tcp.read(&mut buf).await else { return };
        if n == 0 {
            return;
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..i]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (i + 4, len);
        }
    };
    while raw.len() < head_len + body_len {
        let Ok(n) = tcp.read(&mut buf).await else { return };
        if n == 0 {
            return;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&raw[..head_len]).to_string();
    let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
    let head: String = head
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect::<Vec<_>>()
        .join("\r\n");
    let request =
        format!("{}Connection: close\r\n\r\n", head.trim_end_matches("\r\n").to_owned() + "\r\n");
    let Ok(mut up) = TcpStream::connect(hub).await else { return };
    if up.write_all(request.as_bytes()).await.is_err()
        || up.write_all(&raw[head_len..head_len + body_len]).await.is_err()
    {
        return;
    }
    let mut answer = Vec::new();
    if up.read_to_end(&mut answer).await.is_err() {
        return;
    }
    let answer = String::from_utf8_lossy(&answer).to_string();
    let (rhead, rbody) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status: u16 = rhead.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(502);
    let (status, body) = (m.http)(&path, status, rbody);
    let keep: Vec<&str> = rhead
        .split("\r\n")
        .skip(1)
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            !l.starts_with("content-length:")
                && !l.starts_with("connection:")
                && !l.starts_with("transfer-encoding:")
        })
        .collect();
    let out = format!(
        "HTTP/1.1 {status} X\r\n{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        keep.join("\r\n"),
        body.len()
    );
    let _ = tcp.write_all(out.as_bytes()).await;
}
