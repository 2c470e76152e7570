//! Runs a real `redis-server` as a child process on 127.0.0.1 (free port, temporary directory)
//! for the multi-node tests and the benchmark: start, stop, kill, restart on the same port and
//! directory (with or without persistence).
//!
//! Tests call [`redis_or_skip`]: it returns the `redis-server` binary, or prints why the test is
//! skipped and returns `None` when it is not installed — unless `GUTS_REQUIRE_REDIS` is set
//! (as `scripts/redis-test.sh` and CI do), in which case a missing `redis-server` fails the test.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// Finds `redis-server`: `$GUTS_REDIS_SERVER`, then `PATH`, then `/usr/bin` and `/usr/sbin`.
pub fn find_redis_server() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GUTS_REDIS_SERVER") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
}

/// The `redis-server` binary for a test, or `None` after printing why the test is skipped.
///
/// # Panics
/// When `redis-server` is missing and `GUTS_REQUIRE_REDIS` is set.
pub fn redis_or_skip(test: &str) -> Option<PathBuf> {
    match find_redis_server() {
        Some(p) => Some(p),
        None if std::env::var_os("GUTS_REQUIRE_REDIS").is_some() => {
            panic!("{test}: redis-server not found and GUTS_REQUIRE_REDIS is set")
        }
        None => {
            eprintln!(
                "SKIPPED {test}: redis-server not found (apt-get install redis-server; set \
                 GUTS_REQUIRE_REDIS=1 to make this a failure)"
            );
            None
        }
    }
}

/// A running `redis-server` on 127.0.0.1; killed (and its directory removed) when dropped.
#[derive(Debug)]
pub struct RedisServer {
    binary: PathBuf,
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    persistent: bool,
}

/// A port of 127.0.0.1 that was free a moment ago.
///
/// # Errors
/// If no socket can be bound.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl RedisServer {
    /// Starts `redis-server` on a free port with a fresh temporary directory. `persistent`:
    /// append-only file fsynced on every write (a restart keeps everything); otherwise no
    /// persistence at all (a restart loses everything).
    ///
    /// # Errors
    /// If it cannot be started or does not answer `PING` within 10 s.
    pub async fn start(binary: &Path, persistent: bool) -> std::io::Result<RedisServer> {
        Self::start_on(binary, free_port()?, persistent).await
    }

    /// [`RedisServer::start`] on a given port of 127.0.0.1.
    ///
    /// # Errors
    /// As [`RedisServer::start`].
    pub async fn start_on(
        binary: &Path,
        port: u16,
        persistent: bool,
    ) -> std::io::Result<RedisServer> {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("guts-redis-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let mut s = RedisServer { binary: binary.to_owned(), child: None, port, dir, persistent };
        s.spawn().await?;
        Ok(s)
    }

    async fn spawn(&mut self) -> std::io::Result<()> {
        let mut cmd = Command::new(&self.binary);
        cmd.args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--save", "", "--daemonize", "no", "--protected-mode", "yes"])
            .args(["--maxmemory-policy", "noeviction", "--logfile", ""]);
        if self.persistent {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).kill_on_drop(true).spawn()?;
        self.child = Some(child);
        for _ in 0..200 {
            if self.ping().await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(std::io::Error::other("redis-server did not answer PING within 10 s"))
    }

    /// Whether it answers `PING`.
    pub async fn ping(&self) -> bool {
        self.command("PING").await.is_some_and(|r| r.starts_with("+PONG"))
    }

    /// Sends one inline command and returns the raw reply (first read), if any.
    pub async fn command(&self, line: &str) -> Option<String> {
        let io = async {
            let mut s = tokio::net::TcpStream::connect(self.addr()).await.ok()?;
            s.write_all(format!("{line}\r\n").as_bytes()).await.ok()?;
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).await.ok()?;
            Some(String::from_utf8_lossy(&buf[..n]).into_owned())
        };
        tokio::time::timeout(Duration::from_secs(2), io).await.ok().flatten()
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Stops it cleanly (SIGTERM: with persistence, everything written is kept) and waits.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ =
                    std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
            }
            if tokio::time::timeout(Duration::from_secs(10), child.wait()).await.is_err() {
                let _ = child.kill().await;
            }
        }
    }

    /// Kills it (SIGKILL) and waits.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts it again on the same port and directory (after [`RedisServer::stop`] or
    /// [`RedisServer::kill`]).
    ///
    /// # Errors
    /// As [`RedisServer::start`].
    pub async fn restart(&mut self) -> std::io::Result<()> {
        self.stop().await;
        self.spawn().await
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
