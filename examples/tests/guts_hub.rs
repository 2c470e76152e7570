//! The real `guts-hub` binary as a process on 127.0.0.1: start-up output (generated secret and
//! key, the listening line with the real port), flags from the environment, the endpoints, the
//! demo events, tokens kept out of the logs, and SIGTERM → every client closed with 1001, exit 0.
//! Bounded in time.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

const HUB: &str = env!("CARGO_BIN_EXE_guts-hub");
const WAIT: Duration = Duration::from_secs(20);

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// A started hub: the child, its address and every stdout line up to the listening line.
struct Hub {
    child: Child,
    addr: SocketAddr,
    stdout: Vec<String>,
}

async fn start(args: &[&str], env: &[(&str, &str)]) -> Hub {
    let mut cmd = Command::new(HUB);
    cmd.args(args)
        .env_remove("GUTS_HUB_TOKEN_SECRET")
        .env_remove("GUTS_HUB_PUBLISH_KEY")
        .env_remove("GUTS_HUB_LISTEN")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("guts-hub starts");
    let out = child.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    let mut stdout = Vec::new();
    let addr = timeout(WAIT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            stdout.push(line.clone());
            if let Some(rest) = line.strip_prefix("guts-hub listening on http://") {
                return rest.trim().parse::<SocketAddr>().expect("an address");
            }
        }
        panic!("guts-hub exited before listening: {stdout:?}");
    })
    .await
    .expect("the listening line in time");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Hub { child, addr, stdout }
}

impl Hub {
    async fn ws(&self) -> (Ws, Value) {
        let (mut ws, _) =
            timeout(WAIT, tokio_tungstenite::connect_async(format!("ws://{}/ws", self.addr)))
                .await
                .unwrap()
                .unwrap();
        let welcome = recv(&mut ws).await;
        assert_eq!(welcome["type"], "welcome");
        (ws, welcome)
    }

    fn sigterm(&self) {
        let pid = self.child.id().expect("running").to_string();
        let ok = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(ok.success());
    }

    /// Waits for the exit and returns the status and everything written to stderr.
    async fn wait(mut self) -> (std::process::ExitStatus, String) {
        let mut err = self.child.stderr.take().unwrap();
        let mut text = String::new();
        let status = timeout(WAIT, async {
            let _ = err.read_to_string(&mut text).await;
            self.child.wait().await.unwrap()
        })
        .await
        .expect("guts-hub exits in time");
        (status, text)
    }
}

async fn recv(ws: &mut Ws) -> Value {
    loop {
        match timeout(WAIT, ws.next()).await.expect("a frame in time") {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

async fn http(addr: SocketAddr, method: &str, path: &str, auth: &str, body: &str) -> (u16, String) {
    timeout(WAIT, async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
             Authorization: Bearer {auth}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).await.unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        (head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0), body.to_owned())
    })
    .await
    .expect("HTTP answer in time")
}

fn generated(stdout: &[String], what: &str) -> String {
    let prefix = format!("guts-hub: generated {what}: ");
    let line = stdout.iter().find_map(|l| l.strip_prefix(&prefix));
    line.unwrap_or_else(|| panic!("no generated {what} in {stdout:?}")).trim().to_owned()
}

#[tokio::test]
async fn starts_with_generated_secrets_serves_and_stops_on_sigterm() {
    let hub = start(&["--listen", "127.0.0.1:0"], &[("RUST_LOG", "trace")]).await;
    assert_ne!(hub.addr.port(), 0, "the real port is printed");
    let secret = generated(&hub.stdout, "token secret");
    let key = generated(&hub.stdout, "publish key");
    assert!(secret.len() >= 32 && key.len() >= 32 && secret != key, "{:?}", hub.stdout);
    let (status, body) = http(hub.addr, "GET", "/healthz", "", "").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, body) = http(hub.addr, "GET", "/", "", "").await;
    assert_eq!(status, 200);
    assert!(body.contains("<html") && body.contains("guts-hub"), "examples/web is served at /");
    // The generated credentials work: a user token and the publish key.
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "alice", "exp": 4_000_000_000u64}),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    let (mut a, _) = hub.ws().await;
    send(&mut a, json!({"type": "auth", "token": token})).await;
    assert_eq!(recv(&mut a).await, json!({"type": "authenticated", "user": "alice"}));
    send(&mut a, json!({"type": "subscribe", "channel": "user:alice"})).await;
    assert_eq!(recv(&mut a).await["type"], "subscribed");
    let (status, body) = http(
        hub.addr,
        "POST",
        "/api/publish",
        &key,
        r#"{"channel":"user:alice","event":"push","data":{"n":1}}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let published: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(published["delivered"], 1);
    let e = recv(&mut a).await;
    assert_eq!(e["seq"], published["seq"]);
    let (mut b, _) = hub.ws().await;
    // SIGTERM: both clients get 1001, the process exits 0.
    hub.sigterm();
    for ws in [&mut a, &mut b] {
        let close = timeout(WAIT, async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Close(Some(f)))) => return u16::from(f.code),
                    Some(Ok(_)) => continue,
                    other => panic!("expected close 1001, got {other:?}"),
                }
            }
        })
        .await
        .expect("close in time");
        assert_eq!(close, 1001);
    }
    let (status, stderr) = hub.wait().await;
    assert!(status.success(), "exit status {status:?}; stderr:\n{stderr}");
    // Even at RUST_LOG=trace, neither the token nor the publish key reaches the logs.
    assert!(!stderr.contains(&token), "the token was logged");
    assert!(!stderr.contains(&key), "the publish key was logged");
    assert!(!stderr.contains(&secret), "the secret was logged");
    assert!(stderr.contains("shutting down"), "{stderr}");
}

#[tokio::test]
async fn flags_from_the_environment_and_demo_events() {
    let hub = start(
        &["--demo"],
        &[
            ("GUTS_HUB_LISTEN", "127.0.0.1:0"),
            ("GUTS_HUB_TOKEN_SECRET", "env-secret"),
            ("GUTS_HUB_PUBLISH_KEY", "env-key"),
        ],
    )
    .await;
    assert!(
        !hub.stdout.iter().any(|l| l.contains("generated")),
        "nothing is generated when both are given: {:?}",
        hub.stdout
    );
    let (status, _) = http(
        hub.addr,
        "POST",
        "/api/publish",
        "env-key",
        r#"{"channel":"repo:a/b","event":"push","data":{}}"#,
    )
    .await;
    assert_eq!(status, 200, "the key from the environment is used");
    let (mut ws, _) = hub.ws().await;
    for r in ["app", "api", "web"] {
        send(&mut ws, json!({"type": "subscribe", "channel": format!("repo:demo/{r}")})).await;
        assert_eq!(recv(&mut ws).await["type"], "subscribed");
    }
    let mut kinds = Vec::new();
    for _ in 0..3 {
        let e = recv(&mut ws).await;
        assert_eq!(e["type"], "event");
        assert!(e["channel"].as_str().unwrap().starts_with("repo:demo/"), "{e}");
        assert!(e["seq"].is_u64());
        kinds.push(e["event"].as_str().unwrap().to_owned());
    }
    assert!(kinds.iter().any(|k| k.starts_with("pr_") || k.starts_with("issue_")), "{kinds:?}");
    hub.sigterm();
    let (status, stderr) = hub.wait().await;
    assert!(status.success(), "{stderr}");
}

#[tokio::test]
async fn a_busy_port_is_an_error_exit() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = timeout(
        WAIT,
        Command::new(HUB)
            .args(["--listen", &addr, "--token-secret", "s", "--publish-key", "k"])
            .env("RUST_LOG", "off")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("exits in time")
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("guts-hub:"));
}

#[tokio::test]
async fn a_value_out_of_bounds_exits_2_naming_the_field() {
    for (flag, value, field) in [
        ("--ping-interval-secs", "0.001", "ServerConfig.ping_interval"),
        ("--queue-capacity", "0", "HubConfig.queue_capacity"),
        ("--read-buffer-bytes", "100", "ServerConfig.read_buffer_size"),
    ] {
        let out = timeout(
            WAIT,
            Command::new(HUB)
                .args(["--listen", "127.0.0.1:0", "--token-secret", "s", "--publish-key", "k"])
                .args([flag, value])
                .env("RUST_LOG", "off")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("exits in time")
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(field), "{flag} {value}: {stderr}");
    }
}
