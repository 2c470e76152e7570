//! Runs the real `guts-hub` binary as a child process on 127.0.0.1 for tests and benchmarks.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running `guts-hub` process; killed when dropped.
#[derive(Debug)]
pub struct HubProcess {
    child: Child,
    addr: SocketAddr,
    /// The publish key it was started with.
    pub publish_key: String,
    /// The token secret it was started with.
    pub token_secret: String,
}

impl HubProcess {
    /// Starts `binary` (the path of `guts-hub`) on an ephemeral port with a fixed secret and
    /// publish key, `repo:` channels public unless `extra` says `--repo-access`, plus `extra`
    /// flags, and waits for its `listening on` line.
    ///
    /// # Errors
    /// If it cannot be spawned or does not report its address within 20 s.
    pub async fn start(binary: &str, extra: &[&str]) -> std::io::Result<HubProcess> {
        let token_secret = "conformance-secret-0123456789abcdef".to_owned();
        let publish_key = "conformance-publish-key".to_owned();
        let mut child = Command::new(binary)
            .args(["--listen", "127.0.0.1:0", "--token-secret", &token_secret])
            .args(["--publish-key", &publish_key])
            .args(if extra.contains(&"--repo-access") {
                &[][..]
            } else {
                &["--repo-access", "public"]
            })
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| std::io::Error::other("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(Duration::from_secs(20), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    if let Ok(a) = rest.trim().trim_end_matches('/').parse::<SocketAddr>() {
                        return Some(a);
                    }
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .ok_or_else(|| std::io::Error::other("guts-hub did not report its address"))?;
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(HubProcess { child, addr, publish_key, token_secret })
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its WebSocket URL.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Its HTTP base URL.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Kills it (SIGKILL) and waits for it to exit.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Sends SIGTERM and waits up to `limit` for the exit status.
    pub async fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        }
        tokio::time::timeout(limit, self.child.wait()).await.ok().and_then(Result::ok)
    }

    /// Publishes one event through `POST /api/publish`; returns the seq.
    ///
    /// # Errors
    /// On any HTTP or decoding failure.
    pub async fn publish(
        &self,
        channel: &str,
        event: &str,
        data: serde_json::Value,
    ) -> Result<u64, String> {
        publish(&self.http_url(), &self.publish_key, channel, event, data).await
    }
}

/// `POST {http}/api/publish` with a Bearer key and a JSON body (blocking); returns the HTTP
/// status and body text.
///
/// # Errors
/// When the hub cannot be reached.
pub fn post_publish(http: &str, key: &str, body: &str) -> Result<(u16, String), String> {
    post_api(http, "publish", key, body, Duration::from_secs(30))
}

/// `POST {http}/api/{endpoint}` with the publish key and a JSON `body`, within `timeout`:
/// status and body.
///
/// # Errors
/// When the hub cannot be reached or does not answer in time.
pub fn post_api(
    http: &str,
    endpoint: &str,
    key: &str,
    body: &str,
    timeout: Duration,
) -> Result<(u16, String), String> {
    let url = format!("{}/api/{endpoint}", http.trim_end_matches('/'));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into();
    let mut resp = agent
        .post(&url)
        .header("authorization", &format!("Bearer {key}"))
        .header("content-type", "application/json")
        .send(body)
        .map_err(|e| format!("cannot reach {url}: {e}"))?;
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    Ok((status, text))
}

/// Publishes one event through `POST {http}/api/publish`; returns the seq.
///
/// # Errors
/// On any HTTP or decoding failure.
pub async fn publish(
    http: &str,
    key: &str,
    channel: &str,
    event: &str,
    data: serde_json::Value,
) -> Result<u64, String> {
    let (http, key) = (http.to_owned(), key.to_owned());
    let body = serde_json::json!({"channel": channel, "event": event, "data": data}).to_string();
    tokio::task::spawn_blocking(move || {
        let (status, text) = post_publish(&http, &key, &body)?;
        if status / 100 != 2 {
            return Err(format!("{status}: {text}"));
        }
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        v.get("seq").and_then(serde_json::Value::as_u64).ok_or(text)
    })
    .await
    .map_err(|e| e.to_string())?
}

/// The flags of a `guts-hub` that the whole conformance suite can check (a short idle timeout,
/// a connection cap, a small history, a short reconnect spread), matching
/// [`conformance_target`].
pub const CONFORMANCE_FLAGS: [&str; 8] = [
    "--idle-timeout-secs",
    "4",
    "--max-connections",
    "300",
    "--history-size",
    "64",
    "--reconnect-spread-secs",
    "1",
];

/// A conformance target for `hub` (started with [`CONFORMANCE_FLAGS`]) reached at `ws`, with
/// everything the suite can use: tokens, the HTTP API, the limits, and SIGTERM to stop it.
pub fn conformance_target(hub: &HubProcess, ws: String) -> guts_conformance::Target {
    let mut t = guts_conformance::Target::new(ws);
    t.http = Some(hub.http_url());
    t.secret = Some(hub.token_secret.clone());
    t.publish_key = Some(hub.publish_key.clone());
    t.history_size = Some(64);
    t.idle_timeout = Some(Duration::from_secs(4));
    t.max_connections = Some(300);
    t.shutdown_cmd = hub.pid().map(|p| format!("kill -TERM {p}"));
    t
}
