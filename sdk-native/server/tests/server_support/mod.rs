//! Shared helpers of the server tests: the real server on 127.0.0.1:0 in this process, a raw
//! tokio-tungstenite client that reads exact frames, a tiny HTTP/1.1 client and a JWT minter.
//! Every wait is bounded.
#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use guts_realtime::{EventHub, HubConfig};
use guts_realtime_server::{serve, DefaultAuthorizer, RepoAccess, ServerConfig};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The token secret of every test server.
pub const SECRET: &str = "test-secret";
/// The publish key of every test server.
pub const KEY: &str = "test-publish-key";
/// How long one expected frame may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// The server config of most tests (about the transport, not about trust): secret and key set,
/// `repo:` channels public, everything else default.
pub fn config() -> ServerConfig {
    token_config().authorizer(DefaultAuthorizer::new(RepoAccess::Public))
}

/// The default server config with the tests' secret and key: `repo:` channels need a token that
/// grants them.
pub fn token_config() -> ServerConfig {
    ServerConfig::default().token_secret(SECRET).publish_key(KEY)
}

/// A server running in this process.
pub struct TestServer {
    pub addr: SocketAddr,
    pub hub: Arc<EventHub>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// Starts `serve` on 127.0.0.1:0.
    pub async fn start(hub: HubConfig, config: ServerConfig) -> TestServer {
        let hub = Arc::new(EventHub::with_config(hub));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(hub.clone(), listener, config, async move {
            let _ = rx.await;
        }));
        TestServer { addr, hub, stop: Some(tx), task: Some(task) }
    }

    /// Sends the shutdown signal without waiting for `serve` to return.
    pub fn signal_stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    /// Starts a server with the default hub and [`config`].
    pub async fn default() -> TestServer {
        TestServer::start(HubConfig::default(), config()).await
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Opens a WebSocket and reads its welcome.
    pub async fn ws(&self) -> Ws {
        Ws::open(&self.ws_url()).await
    }

    /// Signals shutdown and waits (bounded) for `serve` to return.
    pub async fn stop(&mut self) -> std::io::Result<()> {
        self.signal_stop();
        match self.task.take() {
            Some(t) => timeout(Duration::from_secs(20), t)
                .await
                .expect("serve returns after shutdown")
                .expect("serve task"),
            None => Ok(()),
        }
    }

    /// `POST /api/publish` with the right key; returns the seq.
    pub async fn publish(&self, channel: &str, event: &str, data: Value) -> u64 {
        let body = json!({"channel": channel, "event": event, "data": data}).to_string();
        let (status, text) = http(self.addr, "POST", "/api/publish", Some(KEY), Some(&body)).await;
        assert_eq!(status, 200, "publish: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        v["seq"].as_u64().unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

type Stream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A raw WebSocket client.
pub struct Ws {
    pub ws: Stream,
    pub welcome: Value,
}

impl Ws {
    /// Connects (small buffers, like the hub) and reads the welcome frame.
    pub async fn open(url: &str) -> Ws {
        let mut ws = Ws::connect(url).await.expect("connect");
        let welcome = ws.recv().await;
        assert_eq!(welcome["type"], "welcome", "first frame: {welcome}");
        ws.welcome = welcome;
        ws
    }

    /// Connects without reading anything.
    pub async fn connect(url: &str) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        let cfg = WebSocketConfig::default().read_buffer_size(4096);
        let (ws, _) =
            timeout(WAIT, tokio_tungstenite::connect_async_with_config(url, Some(cfg), false))
                .await
                .expect("connect in time")?;
        Ok(Ws { ws, welcome: Value::Null })
    }

    pub fn epoch(&self) -> String {
        self.welcome["epoch"].as_str().unwrap().to_owned()
    }

    pub async fn send(&mut self, text: &str) {
        timeout(WAIT, self.ws.send(Message::text(text))).await.expect("send in time").unwrap();
    }

    pub async fn send_json(&mut self, v: Value) {
        self.send(&v.to_string()).await;
    }

    /// The next text frame as raw text (pings and pongs skipped).
    pub async fn recv_text(&mut self) -> String {
        loop {
            let msg = timeout(WAIT, self.ws.next()).await.expect("a frame in time");
            match msg {
                Some(Ok(Message::Text(t))) => return t.to_string(),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The next text frame, parsed.
    pub async fn recv(&mut self) -> Value {
        let t = self.recv_text().await;
        serde_json::from_str(&t).unwrap_or_else(|e| panic!("not JSON ({e}): {t}"))
    }

    /// Sends a frame and returns the reply.
    pub async fn request(&mut self, v: Value) -> Value {
        self.send_json(v).await;
        self.recv().await
    }

    /// Sends `sent` and expects an error with `code`; returns it.
    pub async fn expect_error(&mut self, sent: &str, code: &str) -> Value {
        self.send(sent).await;
        let r = self.recv().await;
        assert!(
            r["type"] == "error" && r["code"] == code && r["message"].is_string(),
            "sent {sent}: expected error {code}, got {r}"
        );
        r
    }

    /// A ping round trip: the connection is open and nothing else was queued before the pong.
    pub async fn still_open(&mut self) {
        self.send(r#"{"type":"ping","id":"alive"}"#).await;
        assert_eq!(self.recv_text().await, r#"{"type":"pong","id":"alive"}"#);
    }

    /// Subscribes and returns the `subscribed` reply.
    pub async fn subscribe(&mut self, channel: &str) -> Value {
        let r = self.request(json!({"type": "subscribe", "channel": channel})).await;
        assert_eq!(r["type"], "subscribed", "subscribe {channel}: {r}");
        r
    }

    /// Authenticates and returns the reply.
    pub async fn auth(&mut self, token: &str) -> Value {
        self.request(json!({"type": "auth", "token": token})).await
    }

    /// Reads until the close frame (text frames before it are skipped); returns code and
    /// reason.
    pub async fn closed(&mut self, within: Duration) -> (u16, String) {
        timeout(within, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Close(Some(f)))) => {
                        return (u16::from(f.code), f.reason.to_string())
                    }
                    Some(Ok(Message::Close(None))) => panic!("closed without a code"),
                    Some(Ok(_)) => continue,
                    other => panic!("expected a close frame, got {other:?}"),
                }
            }
        })
        .await
        .expect("a close frame in time")
    }
}

/// Mints an HS256 token with the tests' secret (or `secret`).
pub fn mint_with(secret: &str, claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// Mints an HS256 token with the tests' secret.
pub fn mint(claims: Value) -> String {
    mint_with(SECRET, claims)
}

/// Unix time in `secs` seconds.
pub fn exp_in(secs: i64) -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64 + secs
}

/// One HTTP/1.1 request (`Connection: close`); returns status and body. `auth` is the Bearer
/// token.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let (status, _, body) = http_full(addr, method, path, auth, body).await;
    (status, body)
}

/// As [`http`], also returning the raw response head.
pub async fn http_full(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&str>,
) -> (u16, String, String) {
    timeout(WAIT, async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let body = body.unwrap_or("");
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        if let Some(a) = auth {
            req.push_str(&format!("Authorization: Bearer {a}\r\n"));
        }
        if method == "POST" {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8_lossy(&raw).to_string();
        let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status: u16 = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            dechunk(rest)
        } else {
            rest.to_owned()
        };
        (status, head.to_owned(), body)
    })
    .await
    .expect("HTTP answer in time")
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A metric's value from `/metrics`.
pub async fn metric(addr: SocketAddr, name: &str) -> u64 {
    let (status, text) = http(addr, "GET", "/metrics", None, None).await;
    assert_eq!(status, 200);
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("guts_hub_{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing"))
}

/// A unique name per call, for channels that must not collide across tests.
pub fn uniq(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}{}", N.fetch_add(1, Ordering::Relaxed))
}
