//! [`SessionConfig`]: every knob of the client session, with its default and why.

use core::time::Duration;

/// Configuration of a [`Session`](super::Session). Build with `SessionConfig::default()` and the
/// chained setters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionConfig {
    /// Backoff base. The default value is 500 ms: the first retry comes within half a second.
    pub backoff_base: Duration,
    /// Backoff ceiling. The default value is 20 s: a long outage costs a server one attempt per
    /// client every 10 s on average.
    pub backoff_max: Duration,
    /// How long a connection must stay up before the attempt counter resets. The default value is
    /// 5 s, so a server that accepts and drops at once is still backed off.
    pub stable_after: Duration,
    /// Idle time after the last received frame before the session pings. The default value is
    /// 20 s.
    pub ping_interval: Duration,
    /// How long after a ping the session waits for any frame before it declares the link dead.
    /// The default value is 10 s, so a dead link is found within 30 s.
    pub pong_timeout: Duration,
    /// How long fetching a token, opening the socket and the handshake (welcome, authenticated)
    /// may take together. The default value is 10 s.
    pub connect_timeout: Duration,
    /// Whether a token is requested ([`Action::FetchToken`](super::Action::FetchToken)) before
    /// every connect and sent as the first frame. The default value is `false` (anonymous).
    pub auth: bool,
    /// Most channels held at once; a subscribe past it fails at once. The default value is 100,
    /// the hub's cap.
    pub max_channels: usize,
    /// Most subscription handles at once (several handles may share a channel). The default value
    /// is 1024.
    pub max_handles: usize,
    /// How long a request (presence, history) waits for its answer, connecting included. The
    /// default value is 10 s.
    pub request_timeout: Duration,
    /// Most requests waiting for an answer at once; one more fails at once. The default value
    /// is 64.
    pub max_requests: usize,
    /// Seed of the jitter source. Drivers seed it from the OS; tests pin it.
    pub rng_seed: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(20),
            stable_after: Duration::from_secs(5),
            ping_interval: Duration::from_secs(20),
            pong_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            auth: false,
            max_channels: crate::MAX_SUBSCRIPTIONS_PER_CLIENT,
            max_handles: 1024,
            request_timeout: Duration::from_secs(10),
            max_requests: 64,
            rng_seed: 0x5EED,
        }
    }
}

crate::config_setters!(SessionConfig {
    backoff_base: Duration,
    backoff_max: Duration,
    stable_after: Duration,
    ping_interval: Duration,
    pong_timeout: Duration,
    connect_timeout: Duration,
    auth: bool,
    max_channels: usize,
    max_handles: usize,
    request_timeout: Duration,
    max_requests: usize,
    rng_seed: u64,
});

impl SessionConfig {
    /// Checks every bound: backoff base and ping interval at least 1 ms, the backoff ceiling
    /// at least its base, at least one channel and one handle.
    ///
    /// # Errors
    /// The first field out of bounds.
    pub fn validate(&self) -> Result<(), crate::InvalidConfig> {
        use crate::InvalidConfig as E;
        let ms = core::time::Duration::from_millis(1);
        E::check(self.backoff_base >= ms, "SessionConfig.backoff_base", "at least 1 ms")?;
        E::check(
            self.backoff_max >= self.backoff_base,
            "SessionConfig.backoff_max",
            "at least backoff_base",
        )?;
        E::check(self.ping_interval >= ms, "SessionConfig.ping_interval", "at least 1 ms")?;
        E::check(self.max_channels >= 1, "SessionConfig.max_channels", "at least 1")?;
        E::check(self.max_handles >= 1, "SessionConfig.max_handles", "at least 1")
    }
}
