//! Starting a hub under test as its own process pinned to CPU 0: `guts-hub`, or a Node peer from
//! `shared/peers`.

use super::wire::Proto;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The publish key the harness gives guts-hub.
pub const PUBLISH_KEY: &str = "bench-publish-key";

/// A hub process; killed when dropped.
#[derive(Debug)]
pub struct Server {
    _child: Child,
    /// Its pid (for /proc readings).
    pub pid: u32,
    /// `host:port`.
    pub addr: String,
    /// Which hub.
    pub proto: Proto,
}

/// Where the hubs live.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// Path of `guts-hub`.
    pub guts_hub: String,
    /// Folder with `hub-ws.js` and `hub-sio.js` and their `node_modules`.
    pub peers: String,
    /// CPU list for the server (`taskset -c`), e.g. `0`.
    pub server_cpus: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Starts a hub and waits until it listens.
///
/// # Errors
/// If it cannot be started or does not report that it listens within 30 s.
pub async fn start(proto: Proto, bins: &Binaries) -> Result<Server, String> {
    start_node(proto, bins, None).await
}

/// Starts a hub that is one node of a cluster sharing the Redis at `redis` (guts-hub
/// `--broker`, or the peers `hub-ws-redis.js` / `hub-sio-redis.js`); `None`: a lone hub, as
/// [`start`].
///
/// # Errors
/// As [`start`].
pub async fn start_node(
    proto: Proto,
    bins: &Binaries,
    redis: Option<&str>,
) -> Result<Server, String> {
    let port = free_port();
    let mut cmd = Command::new("taskset");
    cmd.arg("-c").arg(&bins.server_cpus);
    match proto {
        Proto::Guts => {
            cmd.arg(&bins.guts_hub)
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .args([
                    "--publish-key",
                    PUBLISH_KEY,
                    "--token-secret",
                    "bench-secret-0123456789abcdef-0123",
                ])
                .args(["--max-connections", "20000", "--repo-access", "public"]);
            if let Some(url) = redis {
                cmd.args(["--broker", url]);
            }
        }
        Proto::Ws | Proto::Sio => {
            let name = if proto == Proto::Ws { "hub-ws" } else { "hub-sio" };
            let suffix = if redis.is_some() { "-redis" } else { "" };
            let script = format!("{}/{name}{suffix}.js", bins.peers);
            if !std::path::Path::new(&script).is_file()
                || !std::path::Path::new(&bins.peers).join("node_modules").is_dir()
            {
                return Err(format!(
                    "{proto:?} peer not installed: {script} or its node_modules is missing \
                     (scripts/bench.sh installs the peers into target/peers; or pass --hubs guts)"
                ));
            }
            cmd.arg("node")
                .arg(script)
                .env("PORT", port.to_string())
                .env("REDIS_URL", redis.unwrap_or_default());
        }
    }
    let mut child = cmd
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {proto:?}: {e}"))?;
    let pid = child.id().ok_or("no pid")?;
    let out = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(out).lines();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(l)) = lines.next_line().await {
            // guts-hub and the lone peers say "listening"; the Redis peers "hub-…-redis on PORT".
            if l.contains("listening") || (l.starts_with("hub-") && l.contains(" on ")) {
                return Ok(());
            }
        }
        Err(format!("{proto:?} exited before listening"))
    })
    .await
    .map_err(|_| format!("{proto:?} did not listen in 30 s"))??;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Server { _child: child, pid, addr: format!("127.0.0.1:{port}"), proto })
}
