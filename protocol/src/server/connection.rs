//! [`ServerConnection`]: the rules of one client connection on the hub's side, as a state
//! machine that does no I/O and reads no clock.
//!
//! What arrives is handed in with `handle_*` (a text or binary frame, a control frame, the
//! peer's close, the result of a [`Request`]); what is to be done is drained with `poll_*`:
//! frames for the client's queue ([`ServerConnection::poll_transmit`]), one request at a time
//! for the engine, the authorizer or the token verifier ([`ServerConnection::poll_request`],
//! carried out by [`execute`]), a ping, a close and the next deadline. `now` is a [`Duration`]
//! since any origin the driver picks, monotonic.
//!
//! The rules: the `welcome` is the first frame; every command costs a rate-limit token (identities
//! with publish rights have a limit of their own) and one over the limit is answered
//! `rate_limited`, not run;
//! commands run one at a time, in order; `auth` replaces the identity and drops the channels the
//! new one may not read, or is answered `unauthenticated` and closed with 4001; a ping goes out
//! every [`ConnectionConfig::ping_interval`]; a connection silent for
//! [`ConnectionConfig::idle_timeout`] is closed with 4009; an oversized frame closes with 1009, a
//! shutdown with 1001, a queue closed as a slow consumer (or a socket that takes nothing for
//! [`ConnectionConfig::write_stall_timeout`]) with 4008; a token that expires
//! without a new `auth` is answered `token_expired` and closed with 4002; once closing, nothing
//! more is read and the connection is done at [`ConnectionConfig::close_timeout`].

use super::{Authorizer, Identity, RateLimit, TokenBucket, TokenVerifier, Verified};
use crate::client::{CloseReason, HubClient};
use crate::close::CloseCode;
use crate::engine::Engine;
use crate::error::{ErrorCode, RealtimeError};
use crate::event::{EventKind, RealtimeEvent};
use crate::frame::Frame;
use crate::hub::{HistoryPage, Published, SubscribeOptions};
use crate::subscription::Channel;
use crate::wire::{
    decode_client_frame, valid_signal_name, ClientCommand, PresenceMember, RequestId,
    ServerMessage, Since, HISTORY_DEFAULT_LIMIT, HISTORY_MAX_LIMIT, MAX_SIGNAL_DATA,
};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// The limits and timers of every connection of a server, shared by them.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct ConnectionConfig {
    /// How often the server pings. The default value is 20 s.
    pub ping_interval: Duration,
    /// Silence (not even a pong) after which the connection is closed with 4009. The default
    /// value is 60 s: three missed pings.
    pub idle_timeout: Duration,
    /// How long a closing connection waits for the peer's close before it is done. The default
    /// value is 5 s.
    pub close_timeout: Duration,
    /// The command rate limit; `None` disables it. The default value is 50 commands/s with
    /// bursts of 200.
    pub rate_limit: Option<RateLimit>,
    /// The command rate limit of identities with publish rights (trusted backends that publish
    /// in bulk); `None` disables it. The default value is 10 000 commands/s with bursts of
    /// 20 000: a guard against a runaway backend, not a throttle of a busy one.
    pub publisher_rate_limit: Option<RateLimit>,
    /// Most connections authenticated as one user at once (0: no cap); the next `auth` as that
    /// user is answered `rate_limited` and closed with 4503 (reconnect after a hint). The default
    /// value is 100: many tabs and devices, not a fleet.
    pub max_connections_per_user: usize,
    /// How long the socket may refuse every byte while frames wait for it before the connection
    /// is closed with 4008, whatever else the client sends (its pings keep it from the idle
    /// timeout, not from this). The default value is 15 s.
    pub write_stall_timeout: Duration,
    /// The rate limit of `signal` commands, on top of the command rate limit (a signal over it
    /// is answered `rate_limited`). The default value is 10 signals/s with bursts of 20.
    pub signal_rate_limit: RateLimit,
}

impl ConnectionConfig {
    /// Checks every bound: pings at least 10 ms apart, every duration at most a year (a
    /// deadline must be a real instant), a rate limit (if any) with a positive rate and a burst
    /// of at least one. The field names are those of `ServerConfig`, which carries them.
    ///
    /// # Errors
    /// The first field out of bounds.
    pub fn validate(&self) -> Result<(), crate::InvalidConfig> {
        use crate::InvalidConfig as E;
        let year = Duration::from_secs(365 * 86_400);
        let ping_ok = self.ping_interval >= Duration::from_millis(10) && self.ping_interval <= year;
        E::check(ping_ok, "ServerConfig.ping_interval", "between 10 ms and a year")?;
        E::check(self.idle_timeout <= year, "ServerConfig.idle_timeout", "at most a year")?;
        E::check(self.close_timeout <= year, "ServerConfig.close_timeout", "at most a year")?;
        let stall_ok = !self.write_stall_timeout.is_zero() && self.write_stall_timeout <= year;
        E::check(stall_ok, "ServerConfig.write_stall_timeout", "between 1 ns and a year")?;
        if let Some(r) = self.rate_limit {
            let rate_ok = r.per_second.is_finite() && r.per_second > 0.0;
            E::check(rate_ok, "ServerConfig.rate_limit.per_second", "a positive number")?;
            E::check(r.burst >= 1.0, "ServerConfig.rate_limit.burst", "at least 1")?;
        }
        if let Some(r) = self.publisher_rate_limit {
            let rate_ok = r.per_second.is_finite() && r.per_second > 0.0;
            let field = "ServerConfig.publisher_rate_limit";
            E::check(rate_ok, field, "a positive rate")?;
            E::check(r.burst >= 1.0, field, "a burst of at least 1")?;
        }
        let r = self.signal_rate_limit;
        let field = "ServerConfig.signal_rate_limit";
        E::check(r.per_second.is_finite() && r.per_second > 0.0, field, "a positive rate")?;
        E::check(r.burst >= 1.0, field, "a burst of at least 1")?;
        Ok(())
    }
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            close_timeout: Duration::from_secs(5),
            rate_limit: Some(RateLimit::new(50.0, 200.0)),
            publisher_rate_limit: Some(RateLimit::new(10_000.0, 20_000.0)),
            max_connections_per_user: 100,
            write_stall_timeout: Duration::from_secs(15),
            signal_rate_limit: RateLimit::new(10.0, 20.0),
        }
    }
}

/// What every connection of a server counts, for `/metrics`.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct ConnectionCounters {
    /// Text frames received.
    pub commands: AtomicU64,
    /// Frames answered with `invalid_message`.
    pub invalid_messages: AtomicU64,
    /// Commands refused by the rate limit.
    pub rate_limited: AtomicU64,
    /// Commands refused as `forbidden`.
    pub forbidden: AtomicU64,
    /// Refused tokens (each closed with 4001).
    pub auth_failures: AtomicU64,
    /// Connections closed with 1009 for an oversized frame.
    pub oversized_closes: AtomicU64,
    /// Connections closed for silence (4009).
    pub idle_closes: AtomicU64,
    /// Connections closed because their token expired (4002).
    pub token_expired: AtomicU64,
    /// Connections closed because their socket accepted nothing for the write-stall timeout
    /// (4008).
    pub write_stalls: AtomicU64,
    /// `error` frames sent, per code (in the order of [`ErrorCode::ALL`]).
    pub errors: [AtomicU64; ErrorCode::ALL.len()],
}

impl ConnectionCounters {
    /// `error` frames sent with `code`.
    pub fn errors(&self, code: ErrorCode) -> u64 {
        let i = ErrorCode::ALL.iter().position(|c| *c == code).unwrap_or(0);
        self.errors[i].load(Relaxed)
    }
}

/// What a server's connections share: the config, the counters and who holds how many
/// connections.
#[derive(Debug, Default)]
pub struct ConnectionShared {
    /// The limits and timers.
    pub config: ConnectionConfig,
    /// The counters.
    pub counters: ConnectionCounters,
    /// Connections per authenticated user.
    users: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

impl ConnectionShared {
    /// What the connections of a server with `config` share.
    pub fn new(config: ConnectionConfig) -> ConnectionShared {
        ConnectionShared { config, ..ConnectionShared::default() }
    }

    fn users(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, usize>> {
        self.users.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts one more connection of `user`, unless the cap is reached.
    fn acquire_user(&self, user: &str) -> bool {
        let max = self.config.max_connections_per_user;
        let mut users = self.users();
        let n = users.entry(user.to_owned()).or_insert(0);
        if max > 0 && *n >= max {
            if *n == 0 {
                users.remove(user);
            }
            return false;
        }
        *n += 1;
        true
    }

    fn release_user(&self, user: &str) {
        let mut users = self.users();
        if let Some(n) = users.get_mut(user) {
            *n -= 1;
            if *n == 0 {
                users.remove(user);
            }
        }
    }

    /// Connections authenticated as `user` now.
    pub fn user_connections(&self, user: &str) -> usize {
        self.users().get(user).copied().unwrap_or(0)
    }
}

/// A close the driver is to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Close {
    /// The close code.
    pub code: CloseCode,
    /// Write the frames already queued to the client first (an error reply precedes its close).
    pub drain: bool,
    /// A `retry_after_ms` hint for the client's reconnect.
    pub retry_after: Option<Duration>,
}

impl Close {
    /// A close with `code`, after the queued frames if `drain`, without a hint.
    pub fn new(code: CloseCode, drain: bool) -> Close {
        Close { code, drain, retry_after: None }
    }

    /// The close frame's reason: what the code means, and the hint (`…; retry_after_ms=N`).
    pub fn reason(&self) -> String {
        let what = match self.code.0 {
            1001 => "server shutting down",
            1012 => "server restarting",
            1009 => "message too big",
            4001 => "unauthenticated",
            4002 => "token expired",
            4003 => "forbidden",
            4008 => "slow consumer",
            4009 => "idle timeout",
            4029 => "rate limited",
            4503 => "connection limit reached",
            _ => "",
        };
        match self.retry_after {
            Some(d) => format!("{what}; retry_after_ms={}", d.as_millis()),
            None => what.to_owned(),
        }
    }
}

/// Replayed events that cost one rate-limit token.
pub const REPLAY_EVENTS_PER_TOKEN: usize = 10;

/// Refused commands in a row after which a connection is closed with 4029 instead of being
/// answered `rate_limited` again.
pub const RATE_LIMIT_STRIKES: u8 = 20;

/// Work the connection needs done outside itself, by [`execute`]; its result goes back through
/// [`ServerConnection::handle_outcome`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Request {
    /// Verify an `auth` token.
    Auth {
        /// The token.
        token: String,
    },
    /// Authorize and subscribe (the engine queues the reply and the replay).
    Subscribe {
        /// The channel as sent.
        channel: String,
        /// The position to recover from.
        since: Option<Since>,
        /// Join the channel's presence.
        presence: bool,
    },
    /// Authorize and read who is on a channel.
    Presence {
        /// The channel as sent.
        channel: String,
    },
    /// Authorize and read the last events of a channel.
    History {
        /// The channel as sent.
        channel: String,
        /// How many, at most (already checked: 1..=100).
        limit: u32,
    },
    /// Authorize and send a signal (its name and size already checked).
    Signal {
        /// The channel as sent.
        channel: String,
        /// The signal's name.
        event: String,
        /// Its payload.
        data: serde_json::Value,
    },
    /// Unsubscribe.
    Unsubscribe {
        /// The channel as sent.
        channel: String,
    },
    /// Authorize and publish.
    Publish {
        /// The channel as sent.
        channel: String,
        /// The event kind.
        event: EventKind,
        /// The payload.
        data: serde_json::Value,
        /// Once per key and channel within the history window.
        idempotency_key: Option<String>,
    },
    /// After a change of identity: drop the held channels the identity may not read.
    Recheck,
}

/// The result of a [`Request`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Outcome {
    /// Of [`Request::Auth`].
    Auth(Result<Verified, RealtimeError>),
    /// Of [`Request::Subscribe`]: the events replayed; on success the engine queued the reply
    /// and the replay itself.
    Subscribe(Result<usize, RealtimeError>),
    /// Of [`Request::Unsubscribe`]: the canonical channel.
    Unsubscribe(Result<Channel, RealtimeError>),
    /// Of [`Request::Publish`]: the canonical channel and the outcome.
    Publish(Result<(Channel, Published), RealtimeError>),
    /// Of [`Request::Recheck`]: the channels dropped.
    Recheck(Vec<Channel>),
    /// Of [`Request::Presence`]: the channel, its members and whether some were left out.
    Presence(Result<(Channel, Vec<PresenceMember>, bool), RealtimeError>),
    /// Of [`Request::History`].
    History(Result<HistoryPage, RealtimeError>),
    /// Of [`Request::Signal`] (no reply on success).
    Signal(Result<(), RealtimeError>),
}

/// Carries out `request` for `client`, whose identity is `identity`: the one implementation of
/// every request, for every driver.
pub async fn execute(
    engine: &dyn Engine,
    authorizer: &dyn Authorizer,
    verifier: &dyn TokenVerifier,
    client: &Arc<HubClient>,
    identity: &Identity,
    request: Request,
    id: Option<&RequestId>,
) -> Outcome {
    match request {
        Request::Auth { token } => Outcome::Auth(verifier.verify(&token)),
        Request::Subscribe { channel, since, presence } => {
            let allowed = match Channel::parse(&channel) {
                Ok(ch) => authorizer.authorize_subscribe(identity, &ch).await,
                Err(e) => Err(e),
            };
            Outcome::Subscribe(match allowed {
                Ok(()) => {
                    let opts = SubscribeOptions::new(since.as_ref(), presence, id);
                    let s = engine.subscribe(client, &channel, opts).await;
                    s.map(|s| s.replayed)
                }
                Err(e) => Err(e),
            })
        }
        Request::Presence { channel } => {
            Outcome::Presence(match readable(authorizer, identity, &channel).await {
                Ok(ch) => engine.presence(&ch).await.map(|(m, t)| (ch, m, t)),
                Err(e) => Err(e),
            })
        }
        Request::History { channel, limit } => {
            Outcome::History(match readable(authorizer, identity, &channel).await {
                Ok(ch) => engine.history(client, &ch, limit as usize).await,
                Err(e) => Err(e),
            })
        }
        Request::Signal { channel, event, data } => Outcome::Signal(
            signal(engine, authorizer, identity, client, &channel, event, data).await,
        ),
        Request::Unsubscribe { channel } => {
            Outcome::Unsubscribe(engine.unsubscribe(client, &channel).map(|(ch, _)| ch))
        }
        Request::Publish { channel, event, data, idempotency_key } => {
            let event = (event, data, idempotency_key);
            let published = publish(engine, authorizer, identity, &channel, event).await;
            Outcome::Publish(published)
        }
        Request::Recheck => {
            client.set_user(identity.user());
            engine.hub().update_presence_user(client);
            let mut dropped = Vec::new();
            for ch in client.channels() {
                if authorizer.authorize_subscribe(identity, &ch).await.is_err()
                    && engine.unsubscribe(client, &ch.to_string()).is_ok_and(|(_, held)| held)
                {
                    dropped.push(ch);
                }
            }
            Outcome::Recheck(dropped)
        }
    }
}

impl Drop for ServerConnection {
    fn drop(&mut self) {
        self.release_slot();
    }
}

/// A command in flight.
#[derive(Debug)]
struct Pending {
    /// Until the driver takes it.
    request: Option<Request>,
    id: Option<RequestId>,
}

/// Publishes `event` on `channel` for `identity` if the authorizer lets it: the one publish path
/// of WebSocket and HTTP publishers. The canonical channel and the outcome.
///
/// # Errors
/// [`RealtimeError::InvalidChannel`], [`RealtimeError::Forbidden`], or the engine's error.
pub async fn publish(
    engine: &dyn Engine,
    authorizer: &dyn Authorizer,
    identity: &Identity,
    channel: &str,
    (event, data, idempotency_key): (EventKind, serde_json::Value, Option<String>),
) -> Result<(Channel, Published), RealtimeError> {
    let ch = Channel::parse(channel)?;
    authorizer.authorize_publish(identity, &ch).await?;
    crate::wire::idempotency_key(idempotency_key.as_deref())?;
    let event = RealtimeEvent::new(ch.to_string(), event, data);
    let published = engine.publish_with(event, idempotency_key).await?;
    Ok((ch, published))
}

/// `channel` parsed, if `identity` may read it.
async fn readable(
    authorizer: &dyn Authorizer,
    identity: &Identity,
    channel: &str,
) -> Result<Channel, RealtimeError> {
    let ch = Channel::parse(channel)?;
    authorizer.authorize_subscribe(identity, &ch).await?;
    Ok(ch)
}

/// Sends a signal from `client`: only on an item channel, only from a user who may read it; the
/// frame names the sender as the hub knows it.
async fn signal(
    engine: &dyn Engine,
    authorizer: &dyn Authorizer,
    identity: &Identity,
    client: &Arc<HubClient>,
    channel: &str,
    event: String,
    data: serde_json::Value,
) -> Result<(), RealtimeError> {
    let ch = Channel::parse(channel)?;
    if ch.item().is_none() {
        return Err(RealtimeError::Forbidden(
            "signals are only for item channels (repo:OWNER/NAME/prs/N, repo:OWNER/NAME/issues/N)"
                .into(),
        ));
    }
    let Some(user) = identity.user() else {
        return Err(RealtimeError::Forbidden("signals need an authenticated user".into()));
    };
    authorizer.authorize_subscribe(identity, &ch).await?;
    let msg = ServerMessage::Signal { channel: ch.to_string(), event, data, user: user.to_owned() };
    engine.signal(client, &ch, msg.encode()).await
}

/// The identity of a connection that never authenticated.
static ANONYMOUS: Identity = Identity::Anonymous;

/// The rules of one server connection (module docs). Kept small: every idle connection of a hub
/// holds one.
#[derive(Debug)]
pub struct ServerConnection {
    shared: Arc<ConnectionShared>,
    /// `None` while anonymous.
    identity: Option<Box<Identity>>,
    bucket: TokenBucket,
    last_seen: Duration,
    /// Open: when the next ping is due. Closing: when the connection is done.
    timer: Duration,
    /// The command in flight (until its outcome): its request until handed out, and its id.
    pending: Option<Box<Pending>>,
    /// Frames for the client's queue; emptied (and its storage given back) by the driver.
    out: Vec<Frame>,
    close: Option<Close>,
    closing: bool,
    ping_due: bool,
    /// Commands refused by the rate limit since the last one allowed.
    strikes: u8,
    /// When the identity's token expires.
    expires_at: Option<Duration>,
    /// Since when the socket has refused the frames waiting for it.
    write_blocked_since: Option<Duration>,
    /// The signal rate limit's bucket, from the first signal on.
    signals: Option<Box<TokenBucket>>,
}

impl ServerConnection {
    /// A new connection at `now`; `welcome` is its first frame. `shared.config` is expected to
    /// pass [`ConnectionConfig::validate`] (the server checks it once, at start).
    pub fn new(shared: Arc<ConnectionShared>, now: Duration, welcome: Frame) -> ServerConnection {
        let cfg = shared.config;
        ServerConnection {
            bucket: TokenBucket::new(&cfg.rate_limit.unwrap_or(RateLimit::new(0.0, 0.0)), now),
            shared,
            identity: None,
            last_seen: now,
            timer: now.saturating_add(cfg.ping_interval),
            pending: None,
            out: vec![welcome],
            close: None,
            closing: false,
            ping_due: false,
            strikes: 0,
            expires_at: None,
            write_blocked_since: None,
            signals: None,
        }
    }

    /// Who the connection is.
    pub fn identity(&self) -> &Identity {
        self.identity.as_deref().unwrap_or(&ANONYMOUS)
    }

    /// A request is in flight: hand nothing more in (stop reading) until its outcome.
    pub fn is_busy(&self) -> bool {
        self.pending.is_some()
    }

    /// Whether the connection is closing (a close was asked for or received).
    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// A text frame arrived.
    pub fn handle_text(&mut self, now: Duration, text: &str) {
        self.last_seen = now;
        if self.closing {
            return;
        }
        self.shared.counters.commands.fetch_add(1, Relaxed);
        let frame = match decode_client_frame(text) {
            Ok(f) => f,
            Err(e) => {
                if !self.over_limit(now, e.id.as_ref()) {
                    self.shared.counters.invalid_messages.fetch_add(1, Relaxed);
                    self.error(e.id.as_ref(), &e.to_error());
                }
                return;
            }
        };
        if self.over_limit(now, frame.id.as_ref()) {
            return;
        }
        let id = frame.id;
        let request = match frame.command {
            ClientCommand::Auth { token } => Request::Auth { token },
            ClientCommand::Subscribe { channel } => {
                Request::Subscribe { channel, since: frame.since, presence: frame.presence }
            }
            ClientCommand::Unsubscribe { channel } => Request::Unsubscribe { channel },
            ClientCommand::Publish { channel, event, data, idempotency_key } => {
                if let Err(e) = crate::wire::idempotency_key(idempotency_key.as_deref()) {
                    return self.invalid(id.as_ref(), &e);
                }
                Request::Publish { channel, event, data, idempotency_key }
            }
            ClientCommand::Ping => return self.reply(&ServerMessage::Pong, id.as_ref()),
            ClientCommand::Presence { channel } => Request::Presence { channel },
            ClientCommand::History { channel, limit } => {
                let limit = limit.unwrap_or(HISTORY_DEFAULT_LIMIT);
                if !(1..=HISTORY_MAX_LIMIT).contains(&limit) {
                    let e = RealtimeError::InvalidMessage(format!(
                        "history limit must be between 1 and {HISTORY_MAX_LIMIT}, not {limit}"
                    ));
                    return self.invalid(id.as_ref(), &e);
                }
                Request::History { channel, limit }
            }
            ClientCommand::Signal { channel, event, data } => {
                if let Err(e) = self.check_signal(now, &event, &data) {
                    return self.refused(id.as_ref(), &e);
                }
                Request::Signal { channel, event, data }
            }
        };
        self.start(request, id);
    }

    /// A signal's own limits: its rate (on top of the command rate), its name and its size.
    fn check_signal(
        &mut self,
        now: Duration,
        event: &str,
        data: &serde_json::Value,
    ) -> Result<(), RealtimeError> {
        let limit = self.shared.config.signal_rate_limit;
        let bucket = self.signals.get_or_insert_with(|| Box::new(TokenBucket::new(&limit, now)));
        if !bucket.allow(&limit, now) {
            self.shared.counters.rate_limited.fetch_add(1, Relaxed);
            return Err(RealtimeError::RateLimited(format!(
                "too many signals: at most {} per second; this one was not sent",
                limit.per_second
            )));
        }
        if !valid_signal_name(event) {
            self.shared.counters.invalid_messages.fetch_add(1, Relaxed);
            return Err(RealtimeError::InvalidMessage(
                "a signal's event is 1 to 64 of a-z 0-9 _ . -".into(),
            ));
        }
        let size = data.to_string().len();
        if size > MAX_SIGNAL_DATA {
            self.shared.counters.invalid_messages.fetch_add(1, Relaxed);
            return Err(RealtimeError::InvalidMessage(format!(
                "a signal's data is at most {MAX_SIGNAL_DATA} bytes encoded, not {size}"
            )));
        }
        Ok(())
    }

    /// Answers `invalid_message` (counted).
    fn invalid(&mut self, id: Option<&RequestId>, e: &RealtimeError) {
        self.shared.counters.invalid_messages.fetch_add(1, Relaxed);
        self.error(id, e);
    }

    /// A binary frame arrived (the protocol has none).
    pub fn handle_binary(&mut self, now: Duration) {
        self.last_seen = now;
        if self.closing || self.over_limit(now, None) {
            return;
        }
        self.shared.counters.invalid_messages.fetch_add(1, Relaxed);
        let e = RealtimeError::InvalidMessage(
            "binary frames are not supported; send JSON text frames".into(),
        );
        self.error(None, &e);
    }

    /// A pong (or another frame that needs no answer) arrived: the peer is alive.
    pub fn handle_control(&mut self, now: Duration) {
        self.last_seen = now;
    }

    /// A WebSocket ping arrived (the WebSocket layer answers it): it costs a rate-limit token
    /// like a command, unanswered when refused, so pings cannot flood the hub with pongs.
    pub fn handle_ping(&mut self, now: Duration) {
        self.last_seen = now;
        if !self.closing {
            self.take_token(now);
        }
    }

    /// The peer's close arrived (the driver's WebSocket answers it).
    pub fn handle_peer_close(&mut self, now: Duration) {
        self.last_seen = now;
        self.start_closing(now);
    }

    /// A frame over the size limit arrived: close with 1009 after what is queued.
    pub fn handle_oversized(&mut self, now: Duration) {
        if !self.closing {
            self.shared.counters.oversized_closes.fetch_add(1, Relaxed);
            self.begin_close(now, Close::new(CloseCode::MESSAGE_TOO_BIG, true));
        }
    }

    /// The client's queue was closed: as a slow consumer (4008), for the platform's revocation
    /// of the user (4003), or by the hub (1001).
    pub fn handle_queue_closed(&mut self, now: Duration, reason: Option<CloseReason>) {
        let code = match reason {
            Some(CloseReason::SlowConsumer) => CloseCode::SLOW_CONSUMER,
            Some(CloseReason::Revoked) => CloseCode::FORBIDDEN,
            _ => CloseCode::GOING_AWAY,
        };
        self.begin_close(now, Close::new(code, false));
    }

    /// The socket refused more bytes while frames wait for it: the write-stall clock runs from
    /// the first such call until [`ServerConnection::handle_write_progress`].
    pub fn handle_write_blocked(&mut self, now: Duration) {
        self.write_blocked_since.get_or_insert(now);
    }

    /// What waited went into the socket (a flush completed): the write-stall clock stops.
    pub fn handle_write_progress(&mut self) {
        self.write_blocked_since = None;
    }

    /// The server is shutting down: close with 1001 after what is queued.
    pub fn shutdown(&mut self, now: Duration) {
        self.begin_close(now, Close::new(CloseCode::GOING_AWAY, true));
    }

    /// The server is restarting (a deploy): close with 1012 after what is queued, telling the
    /// client to come back after `retry_after` (spread over the clients by the server, so that
    /// they do not all reconnect at once).
    pub fn restart(&mut self, now: Duration, retry_after: Option<Duration>) {
        let close = Close { code: CloseCode::SERVICE_RESTART, drain: true, retry_after };
        self.begin_close(now, close);
    }

    /// The result of the request in flight.
    pub fn handle_outcome(&mut self, now: Duration, outcome: Outcome) {
        let id = self.pending.take().and_then(|p| p.id);
        let id = id.as_ref();
        match outcome {
            Outcome::Auth(Ok(Verified { identity, expires_in })) => {
                if let Some(user) = identity.user() {
                    // The same user again holds the slot it has; another one needs its own.
                    if self.identity().user() != Some(user) {
                        if !self.shared.acquire_user(user) {
                            let max = self.shared.config.max_connections_per_user;
                            let e = RealtimeError::RateLimited(format!(
                                "too many connections for {user}: at most {max}"
                            ));
                            self.error(id, &e);
                            let hint = Some(Duration::from_secs(5));
                            let code = CloseCode::CONNECTION_LIMIT;
                            self.begin_close(now, Close { code, drain: true, retry_after: hint });
                            return;
                        }
                        self.release_slot();
                    }
                } else {
                    self.release_slot();
                }
                let user = identity.name().to_owned();
                let was_publisher = self.identity().can_publish();
                self.identity = (identity != Identity::Anonymous).then(|| Box::new(identity));
                if self.identity().can_publish() != was_publisher {
                    // Another limit applies from now on: its bucket starts full.
                    if let Some(limit) = self.limit() {
                        self.bucket = TokenBucket::new(&limit, now);
                    }
                }
                self.expires_at = expires_in.map(|d| now.saturating_add(d));
                let expires_in = expires_in.map(|d| d.as_secs());
                self.reply(&ServerMessage::Authenticated { user, expires_in }, id);
                self.start(Request::Recheck, None);
            }
            Outcome::Auth(Err(e)) => {
                self.shared.counters.auth_failures.fetch_add(1, Relaxed);
                self.error(id, &e);
                self.begin_close(now, Close::new(CloseCode::UNAUTHENTICATED, true));
            }
            // The client is gone (or going): nobody to answer.
            Outcome::Subscribe(Ok(replayed)) => self.charge_replay(now, replayed),
            Outcome::Subscribe(Err(
                RealtimeError::SlowConsumer(_) | RealtimeError::ChannelClosed,
            )) => {}
            Outcome::Subscribe(Err(e)) | Outcome::Publish(Err(e)) => self.refused(id, &e),
            Outcome::Unsubscribe(Ok(ch)) => {
                self.reply(&ServerMessage::Unsubscribed { channel: ch.to_string() }, id);
            }
            Outcome::Unsubscribe(Err(e)) => self.error(id, &e),
            Outcome::Publish(Ok((ch, p))) => {
                let (seq, duplicate) = (p.seq, p.duplicate);
                self.reply(
                    &ServerMessage::Published { channel: ch.to_string(), seq, duplicate },
                    id,
                );
            }
            Outcome::Recheck(dropped) => {
                for ch in dropped {
                    self.reply(&ServerMessage::Unsubscribed { channel: ch.to_string() }, None);
                }
            }
            Outcome::Presence(Ok((ch, members, truncated))) => {
                let msg = ServerMessage::Presence { channel: ch.to_string(), members, truncated };
                self.reply(&msg, id);
            }
            Outcome::History(Ok(page)) => self.out.push(page.frame(id)),
            Outcome::Signal(Ok(())) => {}
            Outcome::Presence(Err(e)) | Outcome::History(Err(e)) | Outcome::Signal(Err(e)) => {
                self.refused(id, &e)
            }
        }
    }

    /// Time passed: pings and the idle timeout.
    pub fn handle_timeout(&mut self, now: Duration) {
        if self.closing {
            return;
        }
        if self.expires_at.is_some_and(|at| now >= at) {
            self.shared.counters.token_expired.fetch_add(1, Relaxed);
            let e = RealtimeError::TokenExpired("send a new token with auth before exp".into());
            self.error(None, &e);
            self.begin_close(now, Close::new(CloseCode::TOKEN_EXPIRED, true));
            return;
        }
        let cfg = &self.shared.config;
        if self
            .write_blocked_since
            .is_some_and(|t| now >= t.saturating_add(cfg.write_stall_timeout))
        {
            self.shared.counters.write_stalls.fetch_add(1, Relaxed);
            self.begin_close(now, Close::new(CloseCode::SLOW_CONSUMER, false));
            return;
        }
        if now >= self.last_seen.saturating_add(cfg.idle_timeout) {
            self.shared.counters.idle_closes.fetch_add(1, Relaxed);
            self.begin_close(now, Close::new(CloseCode::SERVER_HEARTBEAT_TIMEOUT, false));
            return;
        }
        if now >= self.timer {
            self.ping_due = true;
            self.timer = now.saturating_add(cfg.ping_interval);
        }
    }

    /// The next frame for the client's queue (in order with the events the engine queues).
    pub fn poll_transmit(&mut self) -> Option<Frame> {
        if self.out.is_empty() {
            // An idle connection keeps no buffer.
            self.out = Vec::new();
            return None;
        }
        Some(self.out.remove(0))
    }

    /// The request to carry out (one at a time), with the command's id.
    pub fn poll_request(&mut self) -> Option<(Request, Option<RequestId>)> {
        let pending = self.pending.as_mut()?;
        Some((pending.request.take()?, pending.id.clone()))
    }

    /// The close to write, once.
    pub fn poll_close(&mut self) -> Option<Close> {
        self.close.take()
    }

    /// Whether a ping is due; [`ServerConnection::ping_sent`] once it is written.
    pub fn ping_due(&self) -> bool {
        self.ping_due && !self.closing
    }

    /// The due ping was written.
    pub fn ping_sent(&mut self) {
        self.ping_due = false;
    }

    /// When to call [`ServerConnection::handle_timeout`] next (or, closing, when it is done).
    pub fn poll_timeout(&self) -> Duration {
        if self.closing {
            return self.timer;
        }
        let cfg = &self.shared.config;
        let next = self.timer.min(self.last_seen.saturating_add(cfg.idle_timeout));
        let next = self.expires_at.map_or(next, |at| at.min(next));
        self.write_blocked_since
            .map_or(next, |t| t.saturating_add(cfg.write_stall_timeout).min(next))
    }

    /// Whether a closing connection's time is up: the driver drops it.
    pub fn is_done(&self, now: Duration) -> bool {
        self.closing && now >= self.timer
    }

    /// Gives the connection's user slot back (it is about to change identity, or is dropped).
    fn release_slot(&mut self) {
        if let Some(user) = self.identity.as_deref().and_then(Identity::user) {
            self.shared.release_user(user);
        }
    }

    fn start(&mut self, request: Request, id: Option<RequestId>) {
        self.pending = Some(Box::new(Pending { request: Some(request), id }));
    }

    fn start_closing(&mut self, now: Duration) {
        if !self.closing {
            self.closing = true;
            self.ping_due = false;
            self.timer = now.saturating_add(self.shared.config.close_timeout);
        }
    }

    /// Asks for `close` (the first close wins).
    fn begin_close(&mut self, now: Duration, close: Close) {
        if !self.closing {
            self.start_closing(now);
            self.close = Some(close);
        }
    }

    /// The rate limit that applies to the connection's identity.
    fn limit(&self) -> Option<RateLimit> {
        let cfg = &self.shared.config;
        if self.identity().can_publish() {
            cfg.publisher_rate_limit
        } else {
            cfg.rate_limit
        }
    }

    /// A replay costs a token per [`REPLAY_EVENTS_PER_TOKEN`] events, paid by the commands
    /// after it.
    fn charge_replay(&mut self, now: Duration, replayed: usize) {
        let Some(limit) = self.limit() else { return };
        let cost = replayed as f64 / REPLAY_EVENTS_PER_TOKEN as f64;
        self.bucket.charge(&limit, now, cost);
    }

    /// Takes a token; answers `rate_limited` when there is none.
    fn over_limit(&mut self, now: Duration, id: Option<&RequestId>) -> bool {
        if self.take_token(now) {
            return false;
        }
        if !self.closing {
            let per_second = self.limit().map_or(0.0, |l| l.per_second);
            let e = RealtimeError::RateLimited(format!(
                "too many commands: at most {per_second} per second; this one was not executed"
            ));
            self.error(id, &e);
        }
        true
    }

    /// Takes a token (under the publishers' own limit for identities with publish rights);
    /// `false` when there is none. A
    /// connection refused [`RATE_LIMIT_STRIKES`] times in a row is closed with 4029 and told to
    /// come back once its bucket is full again.
    fn take_token(&mut self, now: Duration) -> bool {
        let Some(limit) = self.limit() else { return true };
        if self.bucket.allow(&limit, now) {
            self.strikes = 0;
            return true;
        }
        self.shared.counters.rate_limited.fetch_add(1, Relaxed);
        self.strikes = self.strikes.saturating_add(1);
        if self.strikes >= RATE_LIMIT_STRIKES {
            let refill = Duration::try_from_secs_f64(limit.burst.max(1.0) / limit.per_second)
                .unwrap_or(Duration::from_secs(60));
            let retry_after = refill.clamp(Duration::from_secs(1), Duration::from_secs(60));
            let hint = Some(retry_after);
            self.begin_close(
                now,
                Close { code: CloseCode::RATE_LIMITED, drain: true, retry_after: hint },
            );
        }
        false
    }

    fn refused(&mut self, id: Option<&RequestId>, e: &RealtimeError) {
        if matches!(e, RealtimeError::Forbidden(_)) {
            self.shared.counters.forbidden.fetch_add(1, Relaxed);
        }
        self.error(id, e);
    }

    fn error(&mut self, id: Option<&RequestId>, e: &RealtimeError) {
        self.reply(&ServerMessage::error(e), id);
    }

    fn reply(&mut self, msg: &ServerMessage, id: Option<&RequestId>) {
        if let ServerMessage::Error { code: Some(code), .. } = msg {
            let i = ErrorCode::ALL.iter().position(|c| c == code).unwrap_or(0);
            self.shared.counters.errors[i].fetch_add(1, Relaxed);
        }
        self.out.push(msg.encode_with_id(id));
    }
}
