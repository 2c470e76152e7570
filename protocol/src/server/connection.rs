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
//! with publish rights are exempt) and one over the limit is answered `rate_limited`, not run;
//! commands run one at a time, in order; `auth` replaces the identity and drops the channels the
//! new one may not read, or is answered `unauthenticated` and closed with 4001; a ping goes out
//! every [`ConnectionConfig::ping_interval`]; a connection silent for
//! [`ConnectionConfig::idle_timeout`] is closed with 4009; an oversized frame closes with 1009, a
//! shutdown with 1001 and a queue closed as a slow consumer with 4008; once closing, nothing more
//! is read and the connection is done at [`ConnectionConfig::close_timeout`].

use super::{Authorizer, Identity, RateLimit, TokenBucket, TokenVerifier};
use crate::client::HubClient;
use crate::close::CloseCode;
use crate::engine::Engine;
use crate::error::RealtimeError;
use crate::event::{EventKind, RealtimeEvent};
use crate::frame::Frame;
use crate::subscription::Channel;
use crate::wire::{decode_client_frame, ClientCommand, RequestId, ServerMessage, Since};
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
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            close_timeout: Duration::from_secs(5),
            rate_limit: Some(RateLimit::new(50.0, 200.0)),
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
}

/// What a server's connections share: the config and the counters.
#[derive(Debug, Default)]
pub struct ConnectionShared {
    /// The limits and timers.
    pub config: ConnectionConfig,
    /// The counters.
    pub counters: ConnectionCounters,
}

/// A close the driver is to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Close {
    /// The close code.
    pub code: CloseCode,
    /// Write the frames already queued to the client first (an error reply precedes its close).
    pub drain: bool,
}

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
    },
    /// After a change of identity: drop the held channels the identity may not read.
    Recheck,
}

/// The result of a [`Request`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Outcome {
    /// Of [`Request::Auth`].
    Auth(Result<Identity, RealtimeError>),
    /// Of [`Request::Subscribe`]; on success the engine queued the reply itself.
    Subscribe(Result<(), RealtimeError>),
    /// Of [`Request::Unsubscribe`]: the canonical channel.
    Unsubscribe(Result<Channel, RealtimeError>),
    /// Of [`Request::Publish`]: the canonical channel and the event's seq.
    Publish(Result<(Channel, u64), RealtimeError>),
    /// Of [`Request::Recheck`]: the channels dropped.
    Recheck(Vec<Channel>),
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
        Request::Subscribe { channel, since } => {
            let allowed = Channel::parse(&channel)
                .and_then(|ch| authorizer.authorize_subscribe(identity, &ch));
            Outcome::Subscribe(match allowed {
                Ok(()) => engine.subscribe(client, &channel, since.as_ref(), id).await.map(drop),
                Err(e) => Err(e),
            })
        }
        Request::Unsubscribe { channel } => {
            Outcome::Unsubscribe(engine.unsubscribe(client, &channel).map(|(ch, _)| ch))
        }
        Request::Publish { channel, event, data } => {
            let checked = Channel::parse(&channel).and_then(|ch| {
                authorizer.authorize_publish(identity, &ch)?;
                Ok(ch)
            });
            Outcome::Publish(match checked {
                Ok(ch) => {
                    let ev = RealtimeEvent::new(ch.to_string(), event, data);
                    engine.publish(ev).await.map(|p| (ch, p.seq))
                }
                Err(e) => Err(e),
            })
        }
        Request::Recheck => {
            let mut dropped = Vec::new();
            for ch in client.channels() {
                if authorizer.authorize_subscribe(identity, &ch).is_err()
                    && engine.unsubscribe(client, &ch.to_string()).is_ok_and(|(_, held)| held)
                {
                    dropped.push(ch);
                }
            }
            Outcome::Recheck(dropped)
        }
    }
}

/// A command in flight.
#[derive(Debug)]
struct Pending {
    /// Until the driver takes it.
    request: Option<Request>,
    id: Option<RequestId>,
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
}

impl ServerConnection {
    /// A new connection at `now`; `welcome` is its first frame.
    pub fn new(shared: Arc<ConnectionShared>, now: Duration, welcome: Frame) -> ServerConnection {
        let cfg = shared.config;
        ServerConnection {
            bucket: TokenBucket::new(&cfg.rate_limit.unwrap_or(RateLimit::new(0.0, 0.0)), now),
            shared,
            identity: None,
            last_seen: now,
            timer: now.saturating_add(ping_interval(&cfg)),
            pending: None,
            out: vec![welcome],
            close: None,
            closing: false,
            ping_due: false,
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
                Request::Subscribe { channel, since: frame.since }
            }
            ClientCommand::Unsubscribe { channel } => Request::Unsubscribe { channel },
            ClientCommand::Publish { channel, event, data } => {
                Request::Publish { channel, event, data }
            }
            ClientCommand::Ping => return self.reply(&ServerMessage::Pong, id.as_ref()),
        };
        self.start(request, id);
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

    /// A control frame (ping, pong) arrived: the peer is alive.
    pub fn handle_control(&mut self, now: Duration) {
        self.last_seen = now;
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
            self.begin_close(now, Close { code: CloseCode::MESSAGE_TOO_BIG, drain: true });
        }
    }

    /// The client's queue was closed: as a slow consumer (4008), or by the hub (1001).
    pub fn handle_queue_closed(&mut self, now: Duration, slow_consumer: bool) {
        let code = if slow_consumer { CloseCode::SLOW_CONSUMER } else { CloseCode::GOING_AWAY };
        self.begin_close(now, Close { code, drain: false });
    }

    /// The server is shutting down: close with 1001 after what is queued.
    pub fn shutdown(&mut self, now: Duration) {
        self.begin_close(now, Close { code: CloseCode::GOING_AWAY, drain: true });
    }

    /// The result of the request in flight.
    pub fn handle_outcome(&mut self, now: Duration, outcome: Outcome) {
        let id = self.pending.take().and_then(|p| p.id);
        let id = id.as_ref();
        match outcome {
            Outcome::Auth(Ok(identity)) => {
                let user = identity.name().to_owned();
                self.identity = (identity != Identity::Anonymous).then(|| Box::new(identity));
                self.reply(&ServerMessage::Authenticated { user }, id);
                self.start(Request::Recheck, None);
            }
            Outcome::Auth(Err(e)) => {
                self.shared.counters.auth_failures.fetch_add(1, Relaxed);
                self.error(id, &e);
                self.begin_close(now, Close { code: CloseCode::UNAUTHENTICATED, drain: true });
            }
            // The client is gone (or going): nobody to answer.
            Outcome::Subscribe(Ok(()))
            | Outcome::Subscribe(Err(
                RealtimeError::SlowConsumer(_) | RealtimeError::ChannelClosed,
            )) => {}
            Outcome::Subscribe(Err(e)) | Outcome::Publish(Err(e)) => self.refused(id, &e),
            Outcome::Unsubscribe(Ok(ch)) => {
                self.reply(&ServerMessage::Unsubscribed { channel: ch.to_string() }, id);
            }
            Outcome::Unsubscribe(Err(e)) => self.error(id, &e),
            Outcome::Publish(Ok((ch, seq))) => {
                self.reply(&ServerMessage::Published { channel: ch.to_string(), seq }, id);
            }
            Outcome::Recheck(dropped) => {
                for ch in dropped {
                    self.reply(&ServerMessage::Unsubscribed { channel: ch.to_string() }, None);
                }
            }
        }
    }

    /// Time passed: pings and the idle timeout.
    pub fn handle_timeout(&mut self, now: Duration) {
        if self.closing {
            return;
        }
        let cfg = &self.shared.config;
        if now >= self.last_seen.saturating_add(cfg.idle_timeout) {
            self.shared.counters.idle_closes.fetch_add(1, Relaxed);
            self.begin_close(
                now,
                Close { code: CloseCode::SERVER_HEARTBEAT_TIMEOUT, drain: false },
            );
            return;
        }
        if now >= self.timer {
            self.ping_due = true;
            self.timer = now.saturating_add(ping_interval(cfg));
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
        self.timer.min(self.last_seen.saturating_add(self.shared.config.idle_timeout))
    }

    /// Whether a closing connection's time is up: the driver drops it.
    pub fn is_done(&self, now: Duration) -> bool {
        self.closing && now >= self.timer
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

    /// Takes a token; answers `rate_limited` when there is none.
    fn over_limit(&mut self, now: Duration, id: Option<&RequestId>) -> bool {
        let Some(limit) = self.shared.config.rate_limit else { return false };
        if self.identity().can_publish() || self.bucket.allow(&limit, now) {
            return false;
        }
        self.shared.counters.rate_limited.fetch_add(1, Relaxed);
        let e = RealtimeError::RateLimited(format!(
            "too many commands: at most {} per second; this one was not executed",
            limit.per_second
        ));
        self.error(id, &e);
        true
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
        self.out.push(msg.encode_with_id(id));
    }
}

fn ping_interval(cfg: &ConnectionConfig) -> Duration {
    cfg.ping_interval.max(Duration::from_millis(10))
}
