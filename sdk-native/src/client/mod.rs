//! The reconnecting client: [`Client::builder`] → [`ClientBuilder::connect`] → [`Client`], then
//! [`Client::subscribe`] → [`Subscription`], a `Stream` of [`Item`]s.
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use guts_realtime_native::{Client, Item};
//!
//! # async fn run() -> Result<(), guts_realtime_native::Error> {
//! let client = Client::builder("ws://127.0.0.1:7800/ws")
//!     .token(|| async { Ok("my-jwt".to_string()) })
//!     .connect()?;
//! let mut sub = client.subscribe("repo:alice/app").await?;
//! while let Some(item) = sub.next().await {
//!     match item {
//!         Item::Event(ev) => println!("{} {:?} seq={:?}", ev.channel, ev.event, ev.seq),
//!         Item::Gap { .. } => println!("missed events: refetch"),
//!         other => println!("{other:?}"),
//!     }
//! }
//! client.close().await;
//! # Ok(()) }
//! ```
//!
//! The client is cheap to clone and usable from many tasks. Behaviour — backoff with full jitter,
//! heartbeat, token before every connect, resubscribe with recovery, no duplicates, explicit gaps —
//! is the protocol crate's [`Session`]; this module only drives it with
//! tokio and tokio-tungstenite (TLS through rustls).
//!
//! Memory: about 24 KiB per connected, subscribed client (measured: 1000 clients in one process;
//! the fault test holds it under 64 KiB). Each subscription buffers at most
//! [`ClientBuilder::buffer`] items for a slow application, then reports [`Item::Lagged`].

mod driver;
mod error;
mod subscription;

pub use error::Error;
pub use guts_realtime::session::{ConnectionState, GapReason, SessionConfig, TokenError};
pub use subscription::{Item, Subscription};

use driver::{Command, Driver};
use guts_realtime::session::{Rng, Session};
use guts_realtime::{PresenceMember, ServerMessage};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub(crate) type TokenProvider =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<String, TokenError>> + Send>> + Send + Sync>;

/// The connection state with the reason and close code of its last change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateInfo {
    /// The state.
    pub state: ConnectionState,
    /// Why it changed.
    pub reason: String,
    /// The close code involved, if any.
    pub code: Option<u16>,
}

/// What [`Client::subscribe_with`] may ask for besides the channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscribeOptions {
    /// Resume from this position ([`Subscription::position`] saved earlier).
    pub since: Option<guts_realtime::Since>,
    /// Join the channel's presence: the stream gets [`Item::Presence`], [`Item::Join`] and
    /// [`Item::Leave`], and [`Subscription::members`] the current members.
    pub presence: bool,
}

impl SubscribeOptions {
    /// Sets [`SubscribeOptions::since`].
    pub fn since(mut self, position: guts_realtime::Since) -> Self {
        self.since = Some(position);
        self
    }

    /// Sets [`SubscribeOptions::presence`].
    pub fn presence(mut self, presence: bool) -> Self {
        self.presence = presence;
        self
    }
}

/// What [`Client::history`] answers.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct History {
    /// The canonical channel.
    pub channel: String,
    /// Where the history ends: [`Client::subscribe_from`] it to continue with no gap and no
    /// duplicate.
    pub position: guts_realtime::Since,
    /// The events (or notifications), oldest first.
    pub items: Vec<Item>,
}

/// An `error` frame of the hub that answers no command of a subscription (e.g. `rate_limited`
/// for a flood, `token_expired` before a 4002), as [`Client::errors`] yields it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubError {
    /// The error code, when the hub sent one this version knows.
    pub code: Option<guts_realtime::ErrorCode>,
    /// The hub's message.
    pub message: String,
}

#[derive(Debug)]
pub(crate) struct Shared {
    /// A connection was established at least once.
    pub(crate) connected_once: std::sync::atomic::AtomicBool,
    pub(crate) closed_reason: Mutex<Option<String>>,
    /// The close code of a terminal close.
    pub(crate) closed_code: Mutex<Option<u16>>,
    /// Hub errors not tied to a subscription, to every [`Client::errors`] receiver.
    pub(crate) errors: tokio::sync::broadcast::Sender<HubError>,
}

impl Default for Shared {
    fn default() -> Shared {
        Shared {
            connected_once: Default::default(),
            closed_reason: Mutex::default(),
            closed_code: Mutex::default(),
            errors: tokio::sync::broadcast::Sender::new(64),
        }
    }
}

impl Shared {
    pub(crate) fn ever_connected(&self) -> bool {
        self.connected_once.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Builds a [`Client`].
pub struct ClientBuilder {
    url: String,
    config: SessionConfig,
    token: Option<TokenProvider>,
    buffer: usize,
    ws_config: WebSocketConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    connect_timeout: Option<Duration>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("url", &self.url)
            .field("config", &self.config)
            .field("token", &self.token.as_ref().map(|_| "<provider>"))
            .field("buffer", &self.buffer)
            .finish()
    }
}

impl ClientBuilder {
    /// Uses a token provider, called before every connect and, on an open connection, before
    /// the token expires (at `exp − max(10 s, 10 %)`: the new token goes out as `auth` on the
    /// same socket); its result is never logged. Return `Err(TokenError::Unauthorized(..))` to
    /// stop for good, `Err(TokenError::Transient(..))` to retry with backoff.
    pub fn token<F, Fut>(mut self, provider: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, TokenError>> + Send + 'static,
    {
        self.token = Some(Arc::new(move || Box::pin(provider())));
        self.config.auth = true;
        self
    }

    /// Uses a fixed token.
    pub fn static_token(self, token: impl Into<String>) -> Self {
        let token = token.into();
        self.token(move || {
            let t = token.clone();
            async move { Ok(t) }
        })
    }

    /// Fail fast: if the first connection is not established within `timeout`,
    /// [`Client::connected`] fails with [`Error::ConnectTimeout`] (the client keeps trying in the
    /// background; reconnects after a first success are retried forever, as without it). The
    /// default is none: `connected()` waits as long as it takes.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), guts_realtime_native::Error> {
    /// use std::time::Duration;
    /// let client = guts_realtime_native::Client::builder("ws://hub.example:7800/ws")
    ///     .connect_timeout(Duration::from_secs(5))
    ///     .connect()?;
    /// client.connected().await?; // Err(ConnectTimeout) after 5 s on a mistyped host
    /// # Ok(()) }
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Backoff base and ceiling (defaults 500 ms and 20 s).
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.config.backoff_base = base;
        self.config.backoff_max = max;
        self
    }

    /// Heartbeat: ping after `interval` of silence, declare the link dead `timeout` later
    /// (defaults 20 s and 10 s).
    pub fn heartbeat(mut self, interval: Duration, timeout: Duration) -> Self {
        self.config.ping_interval = interval;
        self.config.pong_timeout = timeout;
        self
    }

    /// Replaces the whole session configuration (keeps `auth` on if a token provider is set).
    pub fn session_config(mut self, config: SessionConfig) -> Self {
        let auth = self.config.auth;
        self.config = config;
        self.config.auth |= auth;
        self
    }

    /// TLS settings for `wss://` URLs, e.g. a private CA's roots or a client certificate
    /// (default: rustls with the Mozilla roots of `webpki-roots`). [`rustls`] is
    /// re-exported so the versions match.
    ///
    /// ```no_run
    /// # async fn run(ca_der: Vec<u8>) -> Result<(), Box<dyn std::error::Error>> {
    /// use guts_realtime_native::{rustls, Client};
    /// use std::sync::Arc;
    ///
    /// let mut roots = rustls::RootCertStore::empty();
    /// roots.add(rustls::pki_types::CertificateDer::from(ca_der))?;
    /// let tls = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    /// let client = Client::builder("wss://hub.internal/ws").tls(Arc::new(tls)).connect()?;
    /// # Ok(()) }
    /// ```
    pub fn tls(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Items a subscription buffers for a slow application before it reports
    /// [`Item::Lagged`] (default 1024).
    pub fn buffer(mut self, items: usize) -> Self {
        self.buffer = items.max(1);
        self
    }

    /// Starts the client: spawns its driver task on the current tokio runtime and returns at
    /// once; the connection is made (and remade) in the background. Watch [`Client::state`] or
    /// await [`Client::connected`].
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] unless the URL starts with `ws://` or `wss://`.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn connect(self) -> Result<Client, Error> {
        if !(self.url.starts_with("ws://") || self.url.starts_with("wss://")) {
            return Err(Error::InvalidUrl(self.url));
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (tx, rx) = mpsc::unbounded_channel();
        let (state_tx, state_rx) = watch::channel(StateInfo {
            state: ConnectionState::Idle,
            reason: "not started".into(),
            code: None,
        });
        let shared = Arc::new(Shared::default());
        let mut config = self.config;
        if config.rng_seed == SessionConfig::default().rng_seed {
            config.rng_seed = Rng::from_os().next_u64();
        }
        let driver = Driver {
            url: self.url,
            session: Session::new(config),
            token: self.token,
            ws_config: self.ws_config,
            tls: self.tls,
            commands: rx,
            state: state_tx,
            shared: shared.clone(),
        };
        tokio::spawn(driver.run());
        let connect_deadline = self.connect_timeout.map(|d| (tokio::time::Instant::now() + d, d));
        Ok(Client { commands: tx, state: state_rx, buffer: self.buffer, shared, connect_deadline })
    }
}

/// A reconnecting client. Cheap to clone; all clones share one connection. The connection is
/// closed when [`Client::close`] is called, or when every clone and every [`Subscription`] is
/// dropped.
#[derive(Debug, Clone)]
pub struct Client {
    commands: mpsc::UnboundedSender<Command>,
    state: watch::Receiver<StateInfo>,
    buffer: usize,
    shared: Arc<Shared>,
    /// The first connection's deadline and the timeout it came from.
    connect_deadline: Option<(tokio::time::Instant, Duration)>,
}

impl Client {
    /// A builder for a hub's WebSocket URL (`ws://host:port/ws` or `wss://…`).
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(8 * 1024)
            .write_buffer_size(0)
            .max_message_size(Some(16 << 20))
            .max_frame_size(Some(16 << 20));
        ClientBuilder {
            url: url.into(),
            config: SessionConfig::default(),
            token: None,
            buffer: 1024,
            ws_config,
            tls: None,
            connect_timeout: None,
        }
    }

    fn closed_error(&self) -> Error {
        let why = self.shared.closed_reason.lock().ok().and_then(|r| r.clone());
        let code = self.shared.closed_code.lock().ok().and_then(|c| *c);
        match code {
            Some(code) => Error::ClosedWith(code, why.unwrap_or_default()),
            None => Error::Closed(why.unwrap_or_else(|| "client closed".into())),
        }
    }

    /// Subscribes to a channel. Works while disconnected: the subscription is made on connect.
    /// Cancel-safe: a future dropped before it completes leaves no subscription behind.
    ///
    /// # Errors
    /// [`Error::Session`] for an invalid channel or past the subscription limit;
    /// [`Error::Closed`] once the client is closed.
    pub async fn subscribe(&self, channel: &str) -> Result<Subscription, Error> {
        self.subscribe_with(channel, SubscribeOptions::default()).await
    }

    /// Subscribes with options: a position to resume from, presence. Cancel-safe like
    /// [`Client::subscribe`].
    ///
    /// ```no_run
    /// use futures_util::StreamExt;
    /// use guts_realtime_native::{Client, Item, SubscribeOptions};
    ///
    /// # async fn run(client: Client) -> Result<(), guts_realtime_native::Error> {
    /// // Who is viewing pull request 7, as it changes.
    /// let opts = SubscribeOptions::default().presence(true);
    /// let mut sub = client.subscribe_with("repo:acme/app/prs/7", opts).await?;
    /// while let Some(item) = sub.next().await {
    ///     match item {
    ///         Item::Join(user) => println!("{user} is viewing"),
    ///         Item::Leave(user) => println!("{user} left"),
    ///         _ => {}
    ///     }
    ///     println!("now: {:?}", sub.members().map(|(user, _)| user).collect::<Vec<_>>());
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Client::subscribe`].
    pub async fn subscribe_with(
        &self,
        channel: &str,
        options: SubscribeOptions,
    ) -> Result<Subscription, Error> {
        self.subscribe_inner(channel, options).await
    }

    /// Subscribes to a channel from a position saved earlier ([`Subscription::position`]): the
    /// hub replays every event after it (`Item::Subscribed { recovered: Some(true) }`), or the
    /// stream starts with [`Item::Gap`] when it cannot (another epoch, history trimmed).
    /// Cancel-safe like [`Client::subscribe`].
    ///
    /// ```no_run
    /// # async fn run(client: guts_realtime_native::Client, saved: guts_realtime::Since)
    /// # -> Result<(), guts_realtime_native::Error> {
    /// let mut sub = client.subscribe_from("repo:acme/app", saved).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Client::subscribe`].
    pub async fn subscribe_from(
        &self,
        channel: &str,
        position: guts_realtime::Since,
    ) -> Result<Subscription, Error> {
        self.subscribe_inner(channel, SubscribeOptions::default().since(position)).await
    }

    async fn subscribe_inner(
        &self,
        channel: &str,
        options: SubscribeOptions,
    ) -> Result<Subscription, Error> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Subscribe(channel.to_owned(), options, self.buffer, tx))
            .map_err(|_| self.closed_error())?;
        // Dropped here, the reply finds nobody and the driver takes the subscription back.
        let (id, channel, mailbox) = rx.await.map_err(|_| self.closed_error())??;
        Ok(Subscription {
            id,
            channel,
            mailbox,
            commands: self.commands.clone(),
            position: None,
            members: Default::default(),
        })
    }

    /// Sends a signal (`event`, with `data`) to the other subscribers of an item channel
    /// (`repo:o/n/prs/N`, `repo:o/n/issues/N`), e.g. "alice is typing". Ephemeral: sent only on
    /// a live connection, never stored or replayed; the hub names the sender. A refusal
    /// (`forbidden`, `rate_limited`) arrives on [`Client::errors`].
    ///
    /// ```no_run
    /// # async fn run(client: guts_realtime_native::Client) -> Result<(), guts_realtime_native::Error> {
    /// client.signal("repo:acme/app/prs/7", "typing", &serde_json::json!({"line": 12})).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Session`] ([`SessionError::NotConnected`](guts_realtime::session::SessionError))
    /// when no connection is live; [`Error::Closed`] once the client is closed.
    pub async fn signal(
        &self,
        channel: &str,
        event: &str,
        data: &impl serde::Serialize,
    ) -> Result<(), Error> {
        let data = serde_json::to_string(data)
            .map_err(|e| Error::Request { code: None, message: e.to_string() })?;
        let (tx, rx) = oneshot::channel();
        let cmd = Command::Signal(channel.to_owned(), event.to_owned(), data, tx);
        self.commands.send(cmd).map_err(|_| self.closed_error())?;
        rx.await.map_err(|_| self.closed_error())?
    }

    /// The last `limit` events of a channel still in the hub's history (1..=100; `None`: 20),
    /// oldest first, and the position after them: render them, then
    /// [`Client::subscribe_from`] that position to miss nothing and see nothing twice.
    ///
    /// ```no_run
    /// # async fn run(client: guts_realtime_native::Client) -> Result<(), guts_realtime_native::Error> {
    /// let history = client.history("repo:acme/app/prs/7", Some(50)).await?;
    /// for item in &history.items {
    ///     println!("{item:?}");
    /// }
    /// let live = client.subscribe_from("repo:acme/app/prs/7", history.position).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Request`] when the hub refuses (`forbidden`, `invalid_message` for a limit out of
    /// range) or does not answer within the request timeout; [`Error::Session`] for an invalid
    /// channel; [`Error::Closed`] once the client is closed.
    pub async fn history(&self, channel: &str, limit: Option<u32>) -> Result<History, Error> {
        let reply = self.request(driver::Request::History(channel.to_owned(), limit)).await?;
        match &*reply {
            ServerMessage::History { channel, epoch, seq, events } => Ok(History {
                channel: channel.clone(),
                position: guts_realtime::Since { seq: *seq, epoch: epoch.clone() },
                items: events.iter().filter_map(Item::from_frame).collect(),
            }),
            other => Err(Error::Request { code: None, message: format!("unexpected {other:?}") }),
        }
    }

    /// Publishes an event over this client's connection; its identity needs publish rights
    /// (a token whose `publish` claim covers the channel, or the hub's publish key as the
    /// token). Waits for a connection if there is none, and is sent again on the next one if
    /// its socket drops before the answer: every publish carries an idempotency key (one the
    /// client makes), so it is published once. Backend services without a socket use
    /// [`Publisher`](crate::Publisher) (HTTP).
    ///
    /// ```no_run
    /// # async fn run(client: guts_realtime_native::Client) -> Result<(), guts_realtime_native::Error> {
    /// use guts_realtime::EventKind;
    /// let p = client.publish("repo:acme/app", EventKind::Push, serde_json::json!({"ref": "main"})).await?;
    /// println!("seq {}", p.seq);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Request`] when the hub refuses (`forbidden` without publish rights,
    /// `rate_limited`) or does not answer within the request timeout; [`Error::Session`] for an
    /// invalid channel; [`Error::Closed`] once the client is closed.
    pub async fn publish(
        &self,
        channel: &str,
        event: guts_realtime::EventKind,
        data: serde_json::Value,
    ) -> Result<crate::Published, Error> {
        self.publish_with_key(channel, event, data, None).await
    }

    /// [`Client::publish`] with the caller's idempotency key (1 to 128 bytes): a publish
    /// repeated with it while the first event is in the stream's history is answered with the
    /// first one's seq and [`Published::duplicate`](crate::Published::duplicate) set.
    ///
    /// # Errors
    /// As [`Client::publish`]; `invalid_message` for a key out of bounds.
    pub async fn publish_with_key(
        &self,
        channel: &str,
        event: guts_realtime::EventKind,
        data: serde_json::Value,
        idempotency_key: Option<String>,
    ) -> Result<crate::Published, Error> {
        let request = driver::Request::Publish(channel.to_owned(), event, data, idempotency_key);
        let reply = self.request(request).await?;
        match &*reply {
            ServerMessage::Published { seq, duplicate, .. } => {
                Ok(crate::Published { seq: *seq, delivered: None, duplicate: *duplicate })
            }
            other => Err(Error::Request { code: None, message: format!("unexpected {other:?}") }),
        }
    }

    /// Who is on a channel now, without joining its presence.
    ///
    /// # Errors
    /// As [`Client::history`].
    pub async fn presence(&self, channel: &str) -> Result<Vec<PresenceMember>, Error> {
        let reply = self.request(driver::Request::Presence(channel.to_owned())).await?;
        match &*reply {
            ServerMessage::Presence { members, .. } => Ok(members.clone()),
            other => Err(Error::Request { code: None, message: format!("unexpected {other:?}") }),
        }
    }

    async fn request(&self, request: driver::Request) -> Result<Arc<ServerMessage>, Error> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Request(request, tx)).map_err(|_| self.closed_error())?;
        rx.await.map_err(|_| self.closed_error())?
    }

    /// The hub's `error` frames that answer no command of a subscription (a refused
    /// subscription ends its own stream with [`Item::Failed`] instead), from now on. Holds the
    /// last 64 for a slow reader (then `Lagged`).
    pub fn errors(&self) -> tokio::sync::broadcast::Receiver<HubError> {
        self.shared.errors.subscribe()
    }

    /// A watch of the connection state.
    pub fn state(&self) -> watch::Receiver<StateInfo> {
        self.state.clone()
    }

    /// Waits until connected.
    ///
    /// # Errors
    /// [`Error::Closed`] (or [`Error::ClosedWith`], with the close code) if the client stops for
    /// good first (terminal close code, bad token); [`Error::ConnectTimeout`] when the first
    /// connection was not made within [`ClientBuilder::connect_timeout`].
    pub async fn connected(&self) -> Result<(), Error> {
        let mut rx = self.state.clone();
        let wait = rx
            .wait_for(|s| matches!(s.state, ConnectionState::Connected | ConnectionState::Closed));
        let r = match self.connect_deadline.filter(|_| !self.shared.ever_connected()) {
            Some((deadline, d)) => match tokio::time::timeout_at(deadline, wait).await {
                Ok(r) => r.map(|s| s.state.clone()),
                Err(_) if self.shared.ever_connected() => Ok(ConnectionState::Connected),
                Err(_) => return Err(Error::ConnectTimeout(d)),
            },
            None => wait.await.map(|s| s.state.clone()),
        };
        match r {
            Ok(ConnectionState::Connected) => Ok(()),
            _ => Err(self.closed_error()),
        }
    }

    /// Pings now to verify the link (e.g. after the machine woke up).
    pub fn check_liveness(&self) {
        let _ = self.commands.send(Command::CheckLiveness);
    }

    /// Closes the connection cleanly (close 1000, no reconnect) and ends every subscription
    /// stream.
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Close(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}
