//! [`ServerConfig`]: every knob of the hub server (the transport around an
//! [`EventHub`](guts_realtime::EventHub)), with its default and why. Limits of the hub itself
//! (connection cap, queue capacity, history) live in [`HubConfig`](guts_realtime::HubConfig).

use guts_realtime::server::{Authorizer, ConnectionConfig, DefaultAuthorizer, RateLimit};
use guts_realtime::InvalidConfig;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Configuration of the hub server. Build with `ServerConfig::default()` and the chained
/// by-value setters; [`ServerConfig::validate`] checks the bounds.
///
/// ```
/// use guts_realtime_server::ServerConfig;
/// let config = ServerConfig::default()
///     .token_secret("s3cret")
///     .publish_key("pubkey")
///     .static_dir("examples/web");
/// assert_eq!(config.max_frame_bytes, 64 * 1024);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// HS256 secret that verifies the JWTs clients send in `auth`. The default value is `None`:
    /// every JWT is refused (`unauthenticated`), only the publish key can authenticate.
    pub token_secret: Option<String>,
    /// The key that grants publish rights: as `Authorization: Bearer <key>` on `/api/publish` and
    /// `/api/notify`, and as the `auth` token over WebSocket. The default value is `None`: HTTP
    /// publishing always answers 401 and only JWTs with `publish: true` may publish.
    pub publish_key: Option<String>,
    /// When set, a JWT's `iss` claim must be this. The default value is `None`: any issuer.
    pub token_issuer: Option<String>,
    /// When set, a JWT's `aud` claim must be (or contain) this. The default value is `None`:
    /// tokens without `aud` only.
    pub token_audience: Option<String>,
    /// Largest inbound WebSocket message (and HTTP request body) in bytes; a bigger WebSocket
    /// message closes the connection with 1009, a bigger body answers 413. The default value is
    /// 64 KiB: a command is a few hundred bytes, an event payload a few KiB.
    pub max_frame_bytes: usize,
    /// Per-connection command rate limit; over it a command is answered with error
    /// `rate_limited` and not executed. Connections with publish rights have their own,
    /// [`ServerConfig::publisher_rate_limit`]. The default value is 50 commands/s with bursts of
    /// 200: far above what a browser needs in steady state, and a client at the subscription cap
    /// can still reconnect and send `auth`, 100 `subscribe`s and a few pings back to back.
    /// `None` disables the limit.
    pub rate_limit: Option<RateLimit>,
    /// The command rate limit of connections with publish rights (trusted backends publishing in
    /// bulk). The default value is 10 000 commands/s with bursts of 20 000. `None` disables it.
    pub publisher_rate_limit: Option<RateLimit>,
    /// How often the server sends a WebSocket ping. The default value is 20 s.
    pub ping_interval: Duration,
    /// A connection from which nothing (not even a pong) arrived for this long is closed with
    /// 4009, or dropped if even the close cannot be written. The default value is 60 s: three
    /// missed pings.
    pub idle_timeout: Duration,
    /// How long a closing connection waits for the peer's close frame before it is dropped. The
    /// default value is 5 s.
    pub close_timeout: Duration,
    /// How long a socket may accept nothing while frames wait for it before the connection is
    /// closed with 4008 (a client that stopped reading but still pings). The default value is
    /// 15 s.
    pub write_stall_timeout: Duration,
    /// How long a connection to [`serve`](super::serve) may take to send a whole HTTP request
    /// head (the WebSocket handshake included) before it is closed: a client that connects and
    /// then says nothing, or trickles its headers, holds a socket and a task only this long. The
    /// default value is 10 s: a real client sends its head in one packet right after connecting.
    pub request_head_timeout: Duration,
    /// Most WebSocket connections at once from one client address; more are refused with HTTP
    /// 503 (`Retry-After: 5`). The default value is 0: no cap — behind a proxy every client has
    /// the proxy's address, so set it only where clients connect directly.
    pub max_connections_per_ip: usize,
    /// Most connections authenticated as one user at once (0: no cap); beyond it an `auth` is
    /// answered `rate_limited` and closed with 4503. The default value is 100.
    pub max_connections_per_user: usize,
    /// Most connections [`serve`](super::serve) holds that still speak HTTP (not yet upgraded
    /// to WebSocket); beyond it a new connection is answered 503 and closed at once. The default
    /// value is 10 000: a reconnect storm's handshakes fit, a flood of idle sockets does not.
    pub max_http_connections: usize,
    /// How long an HTTP request with the publish key may take to send its whole body; after it the
    /// request is answered 408 and the connection closed. The default value is 10 s.
    pub request_body_timeout: Duration,
    /// Largest HTTP request head (request line and headers) [`serve`](super::serve) reads, in
    /// bytes; a bigger one is answered 431 and the connection closed. The default value is
    /// 16 KiB (a browser's WebSocket handshake is well under 2 KiB); at least 8 KiB.
    pub max_request_head_bytes: usize,
    /// How long [`serve`](super::serve) waits, after its shutdown signal, for every WebSocket
    /// client to receive its 1012 close and every HTTP request in flight to finish, before it
    /// drops what remains and returns. The default value is 10 s.
    pub shutdown_timeout: Duration,
    /// After the shutdown signal, how long the server goes on serving while `/readyz` answers
    /// 503, so that a load balancer stops sending new clients before the present ones are
    /// closed. The default value is zero.
    pub drain_timeout: Duration,
    /// At shutdown every WebSocket client is closed with 1012 (service restart) and a
    /// `retry_after_ms` hint drawn uniformly from zero to this, so that the clients of a
    /// restarted node come back spread over this time instead of all in the same second. Zero:
    /// 1012 without a hint (each client's own backoff). The default value is 10 s.
    pub reconnect_spread: Duration,
    /// Directory served at `/` (the demo page). The default value is `None`: no static files.
    pub static_dir: Option<PathBuf>,
    /// Per-connection WebSocket read buffer in bytes (it grows for a larger frame; at least 256).
    /// The default value is 256 bytes: clients send small commands (a
    /// `subscribe` is ~60 bytes, an `auth` with its JWT a few hundred, read in two pieces), and
    /// every byte here is paid by every idle connection (tungstenite's own default, 128 KiB,
    /// costs ~130 KB per idle client; 4 KiB measured 11.1 KB RSS per idle connection, 512 bytes
    /// 7.5 KB in that build and 4.03 KB in the current one, 256 bytes 3.77 KB).
    pub read_buffer_size: usize,
    /// Bytes the WebSocket writer buffers before it writes to the socket; a batch of queued
    /// frames is written in chunks of about this size and flushed once. The default value is
    /// 4 KiB.
    pub write_buffer_size: usize,
    /// Most queued frames the writer takes from a client's queue for one batch (one flush). The
    /// default value is 64.
    pub write_batch: usize,
    /// Least time between two writes to one connection: frames queued meanwhile wait and go out
    /// together, one syscall for several. On loopback a `write()` costs about as much CPU as
    /// delivering a frame does in all (the kernel's receive path is charged to the writer), so
    /// a hub fanning a busy channel out to many clients spends half as much per delivery at two
    /// frames per write. A connection written to less often than this is never delayed; a busier
    /// one gets its frames up to this much later. The default value is zero: every frame is
    /// written as soon as the connection's task runs (a backlog still goes out in one write).
    pub write_interval: Duration,
    /// Who may subscribe to what and who may publish. The default value is
    /// [`DefaultAuthorizer`] (the rules of the protocol, `repo:` channels readable by tokens
    /// that grant them).
    pub authorizer: Arc<dyn Authorizer>,
    /// Browser origins (`scheme://host[:port]`, or `*` for any) allowed to open a WebSocket; an
    /// upgrade with another `Origin` header is answered 403. A request without `Origin` (not a
    /// browser) is allowed. The default value is `None`: any origin.
    pub allowed_origins: Option<Vec<String>>,
    /// The rate limit of each connection's `signal`s, on top of
    /// [`ServerConfig::rate_limit`]. The default value is 10 signals/s with bursts of 20.
    pub signal_rate_limit: RateLimit,
    /// Routes of the embedder served on the public listener beside `/ws` (e.g. the token endpoint
    /// of a demo). The default value is `None`.
    pub extra_routes: Option<axum::Router>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let rules = ConnectionConfig::default();
        ServerConfig {
            token_secret: None,
            publish_key: None,
            token_issuer: None,
            token_audience: None,
            max_frame_bytes: 64 * 1024,
            rate_limit: rules.rate_limit,
            publisher_rate_limit: rules.publisher_rate_limit,
            ping_interval: rules.ping_interval,
            idle_timeout: rules.idle_timeout,
            close_timeout: rules.close_timeout,
            write_stall_timeout: rules.write_stall_timeout,
            request_head_timeout: Duration::from_secs(10),
            max_request_head_bytes: 16 * 1024,
            request_body_timeout: Duration::from_secs(10),
            max_connections_per_ip: 0,
            max_http_connections: 10_000,
            max_connections_per_user: rules.max_connections_per_user,
            shutdown_timeout: Duration::from_secs(10),
            drain_timeout: Duration::ZERO,
            reconnect_spread: Duration::from_secs(10),
            static_dir: None,
            read_buffer_size: 256,
            write_buffer_size: 4096,
            write_batch: 64,
            write_interval: Duration::ZERO,
            authorizer: Arc::new(DefaultAuthorizer::default()),
            allowed_origins: None,
            signal_rate_limit: rules.signal_rate_limit,
            extra_routes: None,
        }
    }
}

impl fmt::Debug for ServerConfig {
    /// Secrets are redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        let mut d = f.debug_struct("ServerConfig");
        d.field("token_secret", &redact(&self.token_secret))
            .field("publish_key", &redact(&self.publish_key))
            .field("token_issuer", &self.token_issuer)
            .field("token_audience", &self.token_audience)
            .field("max_frame_bytes", &self.max_frame_bytes)
            .field("rate_limit", &self.rate_limit)
            .field("publisher_rate_limit", &self.publisher_rate_limit)
            .field("ping_interval", &self.ping_interval)
            .field("idle_timeout", &self.idle_timeout)
            .field("close_timeout", &self.close_timeout)
            .field("write_stall_timeout", &self.write_stall_timeout)
            .field("request_head_timeout", &self.request_head_timeout)
            .field("max_request_head_bytes", &self.max_request_head_bytes)
            .field("request_body_timeout", &self.request_body_timeout)
            .field("max_connections_per_ip", &self.max_connections_per_ip)
            .field("max_http_connections", &self.max_http_connections)
            .field("max_connections_per_user", &self.max_connections_per_user)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("drain_timeout", &self.drain_timeout)
            .field("reconnect_spread", &self.reconnect_spread)
            .field("static_dir", &self.static_dir)
            .field("read_buffer_size", &self.read_buffer_size)
            .field("write_buffer_size", &self.write_buffer_size)
            .field("write_batch", &self.write_batch)
            .field("write_interval", &self.write_interval)
            .field("allowed_origins", &self.allowed_origins)
            .field("signal_rate_limit", &self.signal_rate_limit)
            .field("extra_routes", &self.extra_routes.as_ref().map(|_| "<router>"));
        d.finish_non_exhaustive()
    }
}

impl ServerConfig {
    /// Sets [`ServerConfig::token_secret`].
    pub fn token_secret(mut self, v: impl Into<String>) -> Self {
        self.token_secret = Some(v.into());
        self
    }
    /// Sets [`ServerConfig::publish_key`].
    pub fn publish_key(mut self, v: impl Into<String>) -> Self {
        self.publish_key = Some(v.into());
        self
    }

    /// Sets [`ServerConfig::static_dir`].
    pub fn static_dir(mut self, v: impl Into<PathBuf>) -> Self {
        self.static_dir = Some(v.into());
        self
    }
    /// Checks every bound: messages of at least 1 KiB, a read buffer of at least 256 bytes,
    /// batches of at least one frame, and the connection rules' bounds
    /// ([`ConnectionConfig::validate`]: pings, timeouts, the rate limit). [`serve`](crate::serve) and
    /// [`router`](crate::router) refuse a config that fails it.
    ///
    /// # Errors
    /// The first field out of bounds.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        use InvalidConfig as E;
        E::check(self.max_frame_bytes >= 1024, "ServerConfig.max_frame_bytes", "at least 1024")?;
        E::check(self.read_buffer_size >= 256, "ServerConfig.read_buffer_size", "at least 256")?;
        E::check(self.write_batch >= 1, "ServerConfig.write_batch", "at least 1")?;
        let head_ok = self.max_request_head_bytes >= 8192;
        E::check(head_ok, "ServerConfig.max_request_head_bytes", "at least 8192")?;
        self.connection_config().validate()
    }

    /// The rules' part of this config.
    pub(crate) fn connection_config(&self) -> ConnectionConfig {
        let mut c = ConnectionConfig::default();
        c.ping_interval = self.ping_interval;
        c.idle_timeout = self.idle_timeout;
        c.close_timeout = self.close_timeout;
        c.write_stall_timeout = self.write_stall_timeout;
        c.rate_limit = self.rate_limit;
        c.publisher_rate_limit = self.publisher_rate_limit;
        c.max_connections_per_user = self.max_connections_per_user;
        c.signal_rate_limit = self.signal_rate_limit;
        c
    }
    /// Whether a WebSocket upgrade with `Origin: origin` is allowed
    /// ([`ServerConfig::allowed_origins`]; compared without regard to ASCII case).
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.allowed_origins.as_ref().is_none_or(|list| {
            list.iter()
                .map(|o| o.trim().trim_end_matches('/'))
                .any(|o| o == "*" || o.eq_ignore_ascii_case(origin.trim_end_matches('/')))
        })
    }
    /// Sets [`ServerConfig::authorizer`].
    pub fn authorizer(mut self, v: impl Authorizer) -> Self {
        self.authorizer = Arc::new(v);
        self
    }
}

guts_realtime::config_setters!(ServerConfig {
    token_issuer: Option<String>,
    token_audience: Option<String>,
    max_frame_bytes: usize,
    rate_limit: Option<RateLimit>,
    publisher_rate_limit: Option<RateLimit>,
    ping_interval: Duration,
    idle_timeout: Duration,
    close_timeout: Duration,
    write_stall_timeout: Duration,
    request_head_timeout: Duration,
    max_request_head_bytes: usize,
    request_body_timeout: Duration,
    drain_timeout: Duration,
    reconnect_spread: Duration,
    max_connections_per_ip: usize,
    max_connections_per_user: usize,
    max_http_connections: usize,
    shutdown_timeout: Duration,
    read_buffer_size: usize,
    write_buffer_size: usize,
    write_batch: usize,
    write_interval: Duration,
    allowed_origins: Option<Vec<String>>,
    signal_rate_limit: RateLimit,
    extra_routes: Option<axum::Router>,
});
