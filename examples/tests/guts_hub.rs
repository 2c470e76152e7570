//! The real `guts-hub` binary as a process on 127.0.0.1: start-up output (secrets required, or
//! generated with `--dev`; the listening line with the real port), flags from the environment,
//! the endpoints, the repository access modes, the internal listener, allowed origins, the demo
//! events, tokens kept out of the logs, and SIGTERM → every client closed with 1012 and a spread reconnect hint, exit 0.
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
/// A token secret of the 32 bytes `guts-hub` requires.
const SECRET: &str = "0123456789abcdef0123456789abcdef";

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
    let hub = start(&["--listen", "127.0.0.1:0", "--dev"], &[("RUST_LOG", "trace")]).await;
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
    let r = recv(&mut a).await;
    assert_eq!((r["type"].as_str(), r["user"].as_str()), (Some("authenticated"), Some("alice")));
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
    // SIGTERM: both clients get 1012 with a reconnect hint within the spread (10 s by default),
    // the process exits 0.
    hub.sigterm();
    for ws in [&mut a, &mut b] {
        let close = timeout(WAIT, async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Close(Some(f)))) => return (u16::from(f.code), f.reason),
                    Some(Ok(_)) => continue,
                    other => panic!("expected close 1012, got {other:?}"),
                }
            }
        })
        .await
        .expect("close in time");
        assert_eq!(close.0, 1012, "{close:?}");
        let hint = guts_realtime::close::retry_after_hint(&close.1).expect("a hint");
        assert!(hint <= Duration::from_secs(10), "{close:?}");
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
            ("GUTS_HUB_TOKEN_SECRET", "env-secret-env-secret-env-secret"),
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
    let (code, err) =
        exits(&["--listen", &addr, "--token-secret", SECRET, "--publish-key", "k"]).await;
    assert_ne!(code, Some(0));
    assert!(err.contains("guts-hub:"), "{err}");
}

#[tokio::test]
async fn a_value_out_of_bounds_exits_2_naming_the_field() {
    for (flag, value, field) in [
        ("--ping-interval-secs", "0.001", "ServerConfig.ping_interval"),
        ("--queue-capacity", "0", "HubConfig.queue_capacity"),
        ("--read-buffer-bytes", "100", "ServerConfig.read_buffer_size"),
        ("--write-stall-secs", "0", "ServerConfig.write_stall_timeout"),
        ("--max-queue-bytes", "10", "HubConfig.max_queue_bytes"),
    ] {
        let base = ["--listen", "127.0.0.1:0", "--token-secret", SECRET, "--publish-key", "k"];
        let (code, stderr) = exits(&[&base[..], &[flag, value]].concat()).await;
        assert_eq!(code, Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(field), "{flag} {value}: {stderr}");
    }
}

/// Runs `guts-hub` with `args` until it exits (it must, within the wait): status and stderr.
async fn exits(args: &[&str]) -> (Option<i32>, String) {
    let out = timeout(
        WAIT,
        Command::new(HUB)
            .args(args)
            .env_remove("GUTS_HUB_TOKEN_SECRET")
            .env_remove("GUTS_HUB_PUBLISH_KEY")
            .env("RUST_LOG", "off")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("exits in time")
    .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test]
async fn without_secrets_it_exits_2_naming_the_flags() {
    let (code, err) = exits(&["--listen", "127.0.0.1:0"]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--token-secret") && err.contains("--dev"), "{err}");
    let (code, err) = exits(&["--listen", "127.0.0.1:0", "--token-secret", SECRET]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--publish-key"), "{err}");
    let (code, err) = exits(&["--listen", "127.0.0.1:0", "--repo-access", "proxy", "--dev"]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--authorize-url"), "{err}");
    // From files: used, and nothing is generated.
    let dir = std::env::temp_dir().join(format!("guts-hub-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (secret_file, key_file) = (dir.join("secret"), dir.join("key"));
    std::fs::write(&secret_file, "file-secret-file-secret-file-secret\n").unwrap();
    std::fs::write(&key_file, "file-key\n").unwrap();
    let hub = start(
        &["--listen", "127.0.0.1:0"],
        &[
            ("GUTS_HUB_TOKEN_SECRET_FILE", secret_file.to_str().unwrap()),
            ("GUTS_HUB_PUBLISH_KEY_FILE", key_file.to_str().unwrap()),
        ],
    )
    .await;
    assert!(!hub.stdout.iter().any(|l| l.contains("generated")), "{:?}", hub.stdout);
    let body = r#"{"channel":"repo:a/b","event":"push","data":{}}"#;
    assert_eq!(http(hub.addr, "POST", "/api/publish", "file-key", body).await.0, 200);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Subscribes anonymously to `repo:acme/app`: the reply's type and code.
async fn anonymous_repo_subscribe(hub: &Hub) -> (String, Option<String>) {
    let (mut ws, _) = hub.ws().await;
    send(&mut ws, json!({"type": "subscribe", "channel": "repo:acme/app/prs"})).await;
    let r = recv(&mut ws).await;
    (r["type"].as_str().unwrap().to_owned(), r["code"].as_str().map(str::to_owned))
}

#[tokio::test]
async fn repo_access_is_token_by_default_public_for_the_demo() {
    let keys = ["--token-secret", SECRET, "--publish-key", "k"];
    let forbidden = ("error".to_owned(), Some("forbidden".to_owned()));
    let subscribed = ("subscribed".to_owned(), None);
    for (args, want) in [
        (vec![], &forbidden),
        (vec!["--repo-access", "token"], &forbidden),
        (vec!["--repo-access", "public"], &subscribed),
        (vec!["--demo"], &subscribed),
        (vec!["--demo", "--repo-access", "token"], &forbidden),
    ] {
        let mut all = vec!["--listen", "127.0.0.1:0"];
        all.extend(keys);
        all.extend(&args);
        let hub = start(&all, &[]).await;
        assert_eq!(&anonymous_repo_subscribe(&hub).await, want, "{args:?}");
    }
    let hub = start(
        &["--listen", "127.0.0.1:0"],
        &[
            ("GUTS_HUB_REPO_ACCESS", "public"),
            ("GUTS_HUB_TOKEN_SECRET", SECRET),
            ("GUTS_HUB_PUBLISH_KEY", "k"),
        ],
    )
    .await;
    assert_eq!(anonymous_repo_subscribe(&hub).await, subscribed, "GUTS_HUB_REPO_ACCESS");
}

#[tokio::test]
async fn the_internal_listener_takes_metrics_and_the_api() {
    let hub =
        start(&["--listen", "127.0.0.1:0", "--internal-listen", "127.0.0.1:0", "--dev"], &[]).await;
    let internal: SocketAddr = hub
        .stdout
        .iter()
        .find_map(|l| l.strip_prefix("guts-hub internal on http://"))
        .expect("the internal address is printed")
        .trim()
        .parse()
        .unwrap();
    let key = generated(&hub.stdout, "publish key");
    let body = r#"{"channel":"repo:a/b","event":"push","data":{}}"#;
    for path in ["/metrics", "/api/stats"] {
        assert_eq!(http(hub.addr, "GET", path, "", "").await.0, 404, "public {path}");
        assert_eq!(http(internal, "GET", path, "", "").await.0, 200, "internal {path}");
    }
    for path in ["/api/publish", "/api/notify", "/api/unsubscribe", "/api/disconnect"] {
        assert_eq!(http(hub.addr, "POST", path, &key, body).await.0, 404, "public {path}");
    }
    assert_eq!(http(internal, "POST", "/api/publish", &key, body).await.0, 200);
    assert_eq!(http(hub.addr, "GET", "/healthz", "", "").await.0, 200);
    assert_eq!(http(internal, "GET", "/healthz", "", "").await.0, 200);
    assert_eq!(http(hub.addr, "GET", "/", "", "").await.0, 200, "the demo page stays public");
    hub.ws().await;
}

/// The status line of a WebSocket upgrade to `addr` sent with `origin`.
async fn upgrade_status(addr: SocketAddr, origin: Option<&str>) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let origin = origin.map(|o| format!("Origin: {o}\r\n")).unwrap_or_default();
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{origin}\r\n"
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = timeout(WAIT, tcp.read(&mut buf)).await.unwrap().unwrap();
    String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn only_allowed_origins_open_a_websocket() {
    let hub = start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--dev",
            "--allowed-origins",
            "https://guts.dev, http://localhost:5173/",
        ],
        &[],
    )
    .await;
    assert!(upgrade_status(hub.addr, Some("https://evil.example")).await.contains(" 403 "));
    assert!(upgrade_status(hub.addr, Some("https://guts.dev.evil")).await.contains(" 403 "));
    assert!(upgrade_status(hub.addr, Some("https://guts.dev")).await.contains(" 101 "));
    assert!(upgrade_status(hub.addr, Some("http://localhost:5173")).await.contains(" 101 "));
    assert!(upgrade_status(hub.addr, None).await.contains(" 101 "), "no Origin: not a browser");
    let any = start(&["--listen", "127.0.0.1:0", "--dev"], &[]).await;
    assert!(upgrade_status(any.addr, Some("https://evil.example")).await.contains(" 101 "));
}

#[tokio::test]
async fn a_token_in_the_url_is_never_accepted_nor_logged() {
    let hub = start(
        &["--listen", "127.0.0.1:0", "--token-secret", SECRET, "--publish-key", "k"],
        &[("RUST_LOG", "trace")],
    )
    .await;
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "alice", "exp": 4_000_000_000u64}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let url = format!("ws://{}/ws?token={token}&access_token={token}", hub.addr);
    let (mut ws, _) = timeout(WAIT, tokio_tungstenite::connect_async(url)).await.unwrap().unwrap();
    assert_eq!(recv(&mut ws).await["type"], "welcome");
    send(&mut ws, json!({"type": "subscribe", "channel": "user:alice"})).await;
    assert_eq!(recv(&mut ws).await["code"], "forbidden", "the connection is anonymous");
    drop(ws);
    hub.sigterm();
    let (_, stderr) = hub.wait().await;
    assert!(!stderr.contains(&token[token.len() - 20..]), "the token was logged");
}

#[tokio::test]
async fn a_token_secret_shorter_than_32_bytes_is_refused_unless_dev() {
    let short = ["--listen", "127.0.0.1:0", "--token-secret", "s3cret", "--publish-key", "k"];
    let (code, err) = exits(&short).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("32 bytes") && err.contains("--token-secret"), "{err}");
    let mut dev = short.to_vec();
    dev.push("--dev");
    start(&dev, &[]).await;
}

/// Writes `text` to a fresh file under the temp dir; its path.
fn config_file(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("guts-hub-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// `guts-hub ARGS --print-config` with `env`: its stdout.
async fn print_config(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(HUB);
    cmd.args(args).arg("--print-config").env_remove("GUTS_HUB_MAX_CONNECTIONS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = timeout(WAIT, cmd.output()).await.expect("exits in time").unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn a_config_file_sets_everything_and_flags_then_env_override_it() {
    let file = config_file(
        "hub.toml",
        &format!(
            "listen = \"127.0.0.1:0\"\ntoken_secret = \"{SECRET}\"\npublish-key = \"file-key\"\n\
             max_connections = 500\nmax_queue_bytes = 700000\nclose_timeout_secs = 2.5\n\
             shutdown_timeout_secs = 3\nallowed_origins = [\"http://a.test\", \"http://b.test\"]\n"
        ),
    );
    // The file alone: the hub runs with its settings (the key authenticates a publish).
    let hub = start(&["--config", &file], &[]).await;
    let body = r#"{"channel":"repo:a/b","event":"push","data":{}}"#;
    assert_eq!(http(hub.addr, "POST", "/api/publish", "file-key", body).await.0, 200);
    // Also from the environment variable.
    let hub = start(&[], &[("GUTS_HUB_CONFIG", &file)]).await;
    assert_eq!(http(hub.addr, "POST", "/api/publish", "file-key", body).await.0, 200);

    let printed = print_config(&["--config", &file], &[]).await;
    for line in [
        "max_connections = 500  # file",
        "max_queue_bytes = 700000  # file",
        "close_timeout_secs = 2.5  # file",
        "shutdown_timeout_secs = 3  # file",
        "allowed_origins = [\"http://a.test\", \"http://b.test\"]  # file",
        "queue_capacity = 4096  # default",
        "drain_secs = 0  # default",
        "reconnect_spread_secs = 10  # default",
        "log_format = \"text\"  # default",
    ] {
        assert!(printed.lines().any(|l| l == line), "{line:?} not in:\n{printed}");
    }
    // Secrets are masked (and commented out, so the printed file sets none).
    assert!(!printed.contains(SECRET) && !printed.contains("file-key"), "{printed}");
    assert!(printed.contains("# token_secret = \"********\"  # file, masked"), "{printed}");
    // Environment over file, flag over environment.
    let env = [("GUTS_HUB_MAX_CONNECTIONS", "600")];
    let printed = print_config(&["--config", &file], &env).await;
    assert!(printed.contains("\nmax_connections = 600  # env\n"), "{printed}");
    let printed = print_config(&["--config", &file, "--max-connections", "700"], &env).await;
    assert!(printed.contains("\nmax_connections = 700  # flag\n"), "{printed}");
    // A list flag replaces the file's list (it does not add to it).
    let list = print_config(&["--config", &file, "--allowed-origins", "http://c.test"], &[]).await;
    assert!(list.contains("\nallowed_origins = [\"http://c.test\"]  # flag\n"), "{list}");
    // The `ServerConfig` field names are keys too.
    let aliases = config_file("aliases.toml", "close_timeout = 2.5\nshutdown-timeout = 4\n");
    let printed_aliases = print_config(&["--config", &aliases], &[]).await;
    assert!(printed_aliases.contains("\nclose_timeout_secs = 2.5  # file\n"), "{printed_aliases}");
    assert!(printed_aliases.contains("\nshutdown_timeout_secs = 4  # file\n"), "{printed_aliases}");
    // Credentials in URLs are not printed.
    let with_broker = config_file("broker.toml", "broker = \"redis://:hunter2@127.0.0.1:6379\"\n");
    let printed_broker = print_config(&["--config", &with_broker], &[]).await;
    assert!(!printed_broker.contains("hunter2"), "{printed_broker}");
    assert!(
        printed_broker.contains("broker = \"redis://…@127.0.0.1:6379\"  # file"),
        "{printed_broker}"
    );
    // Every setting of the file is a flag: the printed file is a valid config file.
    let again = config_file("printed.toml", &printed);
    let printed_again = print_config(&["--config", &again], &[]).await;
    assert!(printed_again.contains("\nmax_connections = 700  # file\n"), "{printed_again}");
}

#[tokio::test]
async fn a_bad_config_file_exits_2_naming_the_key() {
    for (text, named) in [
        ("max_conections = 5", "unknown key `max_conections`"),
        ("max_connections = \"many\"", "`max_connections`: invalid value \"many\""),
        ("max_connections = -1", "`max_connections`: invalid value \"-1\""),
        ("drain_secs = -2", "`drain_secs`: invalid value \"-2\""),
        ("log_format = \"xml\"", "`log_format`: invalid value \"xml\": expected one of text, json"),
        ("dev = \"yes\"", "`dev`: expected true or false"),
        ("listen = [\"a\", \"b\"]", "`listen`: expected one value, not a list"),
        ("config = \"other.toml\"", "unknown key `config`"),
        ("this is not toml", "--config"),
    ] {
        let file = config_file("bad.toml", text);
        let (code, stderr) = exits(&["--config", &file]).await;
        assert_eq!(code, Some(2), "{text}: {stderr}");
        assert!(stderr.contains(named), "{text}: expected {named:?} in {stderr}");
        assert!(stderr.contains(&file), "{text}: the file is named: {stderr}");
    }
    // A value the hub's own checks refuse, from a file, is named like a flag's.
    let file = config_file(
        "bounds.toml",
        &format!("token_secret = \"{SECRET}\"\npublish_key = \"k\"\nqueue_capacity = 0\n"),
    );
    let (code, stderr) = exits(&["--config", &file, "--listen", "127.0.0.1:0"]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("HubConfig.queue_capacity"), "{stderr}");
}

/// Stderr of a hub run with `args` and `RUST_LOG=info` through `run`, after SIGTERM.
async fn logs_of(args: &[&str], run: impl AsyncFnOnce(&Hub)) -> String {
    let hub = start(args, &[("RUST_LOG", "info")]).await;
    run(&hub).await;
    hub.sigterm();
    let (status, stderr) = hub.wait().await;
    assert!(status.success(), "{stderr}");
    stderr
}

/// Connects, sends a forged token, and closes normally with 1000 from a second connection.
async fn log_worthy_traffic(hub: &Hub) {
    let (mut a, _) = hub.ws().await;
    send(&mut a, json!({"type": "auth", "token": "forged.token.value"})).await;
    assert_eq!(recv(&mut a).await["code"], "unauthenticated");
    let (mut b, _) = hub.ws().await;
    let normal = tokio_tungstenite::tungstenite::protocol::CloseFrame {
        code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Normal,
        reason: "done".into(),
    };
    b.close(Some(normal)).await.unwrap();
    while let Some(Ok(_)) = timeout(WAIT, b.next()).await.unwrap() {}
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_with_connection_ids_and_close_codes() {
    let args = ["--listen", "127.0.0.1:0", "--dev", "--log-format", "json"];
    let stderr = logs_of(&args, log_worthy_traffic).await;
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let with = |msg: &str| -> Vec<&Value> {
        lines.iter().filter(|l| l["message"].as_str().is_some_and(|m| m.starts_with(msg))).collect()
    };
    let connected = with("connected");
    assert_eq!(connected.len(), 2, "{stderr}");
    assert!(
        connected.iter().all(|l| l["level"] == "INFO" && l["connection_id"].is_string()),
        "{stderr}"
    );
    let refused = with("auth refused");
    assert_eq!(refused.len(), 1, "{stderr}");
    assert_eq!(refused[0]["connection_id"], connected[0]["connection_id"], "the same connection");
    let codes: Vec<u64> =
        with("disconnected").iter().filter_map(|l| l["close_code"].as_u64()).collect();
    assert!(codes.contains(&4001) && codes.contains(&1000), "close codes {codes:?}: {stderr}");
    assert!(!stderr.contains("forged.token.value"), "the token was logged");
    assert!(!stderr.contains('\u{1b}'), "no ANSI escapes");
}

#[tokio::test]
async fn text_logs_to_a_pipe_have_no_colours_and_the_format_comes_from_the_environment() {
    let args = ["--listen", "127.0.0.1:0", "--dev"];
    let stderr = logs_of(&args, log_worthy_traffic).await;
    assert!(!stderr.contains('\u{1b}'), "no ANSI escapes on a pipe:\n{stderr:?}");
    assert!(
        stderr.lines().any(|l| l.contains("disconnected") && l.contains("close_code=1000")),
        "{stderr}"
    );
    let hub = start(&args, &[("RUST_LOG", "info"), ("GUTS_HUB_LOG_FORMAT", "json")]).await;
    hub.sigterm();
    let (_, stderr) = hub.wait().await;
    assert!(stderr.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()), "{stderr}");
}

#[tokio::test]
async fn sigterm_drains_readyz_then_closes_with_spread_hints() {
    let hub = start(
        &["--listen", "127.0.0.1:0", "--dev", "--drain-secs", "1", "--reconnect-spread-secs", "4"],
        &[],
    )
    .await;
    assert_eq!(http(hub.addr, "GET", "/readyz", "", "").await, (200, "ready\n".to_owned()));
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(hub.ws().await.0);
    }
    let started = tokio::time::Instant::now();
    hub.sigterm();
    let mut status = 200;
    while status == 200 && started.elapsed() < WAIT {
        status = http(hub.addr, "GET", "/readyz", "", "").await.0;
    }
    assert_eq!(status, 503, "/readyz while draining");
    assert_eq!(http(hub.addr, "GET", "/healthz", "", "").await.0, 200, "alive while draining");
    let mut hints = Vec::new();
    for ws in &mut clients {
        let (code, reason) = timeout(WAIT, async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Close(Some(f)))) => return (u16::from(f.code), f.reason),
                    Some(Ok(_)) => continue,
                    other => panic!("expected a close, got {other:?}"),
                }
            }
        })
        .await
        .expect("closed in time");
        assert_eq!(code, 1012, "{reason}");
        hints.push(guts_realtime::close::retry_after_hint(&reason).expect("a hint"));
    }
    assert!(started.elapsed() >= Duration::from_secs(1), "closed after the drain");
    assert!(hints.iter().all(|h| *h <= Duration::from_secs(4)), "{hints:?}");
    let distinct: std::collections::HashSet<_> = hints.iter().collect();
    assert!(distinct.len() >= 15, "spread, not one value: {hints:?}");
    let (status, _) = hub.wait().await;
    assert!(status.success());
}
