//! What goes into and out of a [`Session`](super::Session): the decoded-frame view it reads
//! ([`Inbound`]), the actions it asks of the driver ([`Action`]), and what the application sees
//! ([`Event`], [`ConnectionState`], [`SubState`]).

use crate::error::ErrorCode;
use crate::event::EventKind;
use crate::prelude::*;
use crate::subscription::ChannelError;
use core::fmt;
use core::time::Duration;

/// The fields of a server frame the session needs, plus the application's payload `P` for events.
///
/// Native drivers build it from a decoded [`ServerFrame`](crate::ServerFrame) with
/// [`Inbound::from_server_frame`]; the browser driver builds it from the object `JSON.parse`
/// returned, handing that object itself through as `P`.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound<P> {
    /// `welcome`: the hub's epoch.
    Welcome {
        /// The epoch.
        epoch: String,
    },
    /// `authenticated`.
    Authenticated {
        /// Echoed id.
        id: Option<u64>,
        /// The identity.
        user: String,
        /// Whole seconds until the token expires, when it does.
        expires_in: Option<u64>,
    },
    /// `subscribed`.
    Subscribed {
        /// Echoed id.
        id: Option<u64>,
        /// Canonical channel.
        channel: String,
        /// Stream head at subscription time.
        seq: Option<u64>,
        /// Present when the subscribe carried `since`.
        recovered: Option<bool>,
    },
    /// `unsubscribed`.
    Unsubscribed {
        /// Echoed id.
        id: Option<u64>,
        /// Canonical channel.
        channel: String,
        /// Why the hub ended it by itself (`"revoked"`); `None` for a reply to `unsubscribe`.
        reason: Option<String>,
    },
    /// `pong`.
    Pong {
        /// Echoed id.
        id: Option<u64>,
    },
    /// `error`.
    Error {
        /// Echoed id.
        id: Option<u64>,
        /// Machine-readable code, when known.
        code: Option<ErrorCode>,
        /// Human-readable message.
        message: String,
    },
    /// `event` (with `kind`) or `notification` (without).
    Event {
        /// The channel it was emitted on.
        channel: String,
        /// The event kind; `None` for notifications.
        kind: Option<EventKind>,
        /// Its position in the stream.
        seq: Option<u64>,
        /// The item (pull request or issue number) its data names
        /// ([`item_of`](crate::subscription::item_of)), for item channels.
        item: Option<u64>,
        /// What the application receives.
        payload: P,
    },
    /// `presence`: a channel's members, after a subscribe with presence or answering a
    /// `presence` command (`id`).
    Presence {
        /// Echoed id.
        id: Option<u64>,
        /// Canonical channel.
        channel: String,
        /// Each member's user and connections, as listed.
        members: Vec<(String, u32)>,
        /// The frame, for the application when it answers a request.
        payload: P,
    },
    /// `join`.
    Join {
        /// Canonical channel.
        channel: String,
        /// Who joined.
        user: String,
    },
    /// `leave`.
    Leave {
        /// Canonical channel.
        channel: String,
        /// Who left.
        user: String,
    },
    /// `signal`: an ephemeral message for the subscribers of `channel`.
    Signal {
        /// The item channel.
        channel: String,
        /// What the application receives.
        payload: P,
    },
    /// `history`, answering the request `id`.
    History {
        /// Echoed id.
        id: Option<u64>,
        /// What the application receives.
        payload: P,
    },
    /// `published`, answering the publish request `id`.
    Published {
        /// Echoed id.
        id: Option<u64>,
        /// What the application receives.
        payload: P,
    },
    /// Any other frame: counts as liveness, otherwise ignored.
    Other,
}

impl<P> Inbound<P> {
    /// The same frame with its payload transformed (e.g. wrapped in an `Arc`).
    pub fn map<Q>(self, f: impl FnOnce(P) -> Q) -> Inbound<Q> {
        match self {
            Inbound::Welcome { epoch } => Inbound::Welcome { epoch },
            Inbound::Authenticated { id, user, expires_in } => {
                Inbound::Authenticated { id, user, expires_in }
            }
            Inbound::Subscribed { id, channel, seq, recovered } => {
                Inbound::Subscribed { id, channel, seq, recovered }
            }
            Inbound::Unsubscribed { id, channel, reason } => {
                Inbound::Unsubscribed { id, channel, reason }
            }
            Inbound::Pong { id } => Inbound::Pong { id },
            Inbound::Error { id, code, message } => Inbound::Error { id, code, message },
            Inbound::Event { channel, kind, seq, item, payload } => {
                Inbound::Event { channel, kind, seq, item, payload: f(payload) }
            }
            Inbound::Presence { id, channel, members, payload } => {
                Inbound::Presence { id, channel, members, payload: f(payload) }
            }
            Inbound::Join { channel, user } => Inbound::Join { channel, user },
            Inbound::Leave { channel, user } => Inbound::Leave { channel, user },
            Inbound::Signal { channel, payload } => {
                Inbound::Signal { channel, payload: f(payload) }
            }
            Inbound::History { id, payload } => Inbound::History { id, payload: f(payload) },
            Inbound::Published { id, payload } => Inbound::Published { id, payload: f(payload) },
            Inbound::Other => Inbound::Other,
        }
    }
}

#[cfg(feature = "json")]
impl Inbound<crate::wire::ServerMessage> {
    /// The session's view of a decoded server frame; events and notifications carry the whole
    /// message as payload.
    pub fn from_server_frame(frame: crate::wire::ServerFrame) -> Self {
        use crate::wire::{RequestId, ServerMessage as M};
        let id = match frame.id {
            Some(RequestId::Num(n)) => Some(n),
            _ => None,
        };
        match frame.message {
            M::Welcome { epoch, .. } => Inbound::Welcome { epoch },
            M::Authenticated { user, expires_in } => {
                Inbound::Authenticated { id, user, expires_in }
            }
            M::Subscribed { channel, seq, recovered } => {
                Inbound::Subscribed { id, channel, seq, recovered }
            }
            M::Unsubscribed { channel } => Inbound::Unsubscribed { id, channel, reason: None },
            M::Ended { channel, reason } => {
                Inbound::Unsubscribed { id, channel, reason: Some(reason) }
            }
            M::Pong => Inbound::Pong { id },
            M::Error { message, code } => Inbound::Error { id, code, message },
            M::Event(e) => Inbound::Event {
                channel: e.channel.clone(),
                kind: Some(e.event),
                seq: e.seq,
                item: crate::subscription::item_of(&e.data),
                payload: M::Event(e),
            },
            // A kind this version does not know: an event still, for the channels that take
            // every kind.
            M::UnknownEvent(e) => Inbound::Event {
                channel: e.channel.clone(),
                kind: None,
                seq: e.seq,
                item: crate::subscription::item_of(&e.data),
                payload: M::UnknownEvent(e),
            },
            M::Notification { channel, notification, seq } => Inbound::Event {
                channel: channel.clone(),
                kind: None,
                seq,
                item: None,
                payload: M::Notification { channel, notification, seq },
            },
            M::Presence { channel, members, truncated } => Inbound::Presence {
                id,
                channel: channel.clone(),
                members: members.iter().map(|m| (m.user.clone(), m.connections)).collect(),
                payload: M::Presence { channel, members, truncated },
            },
            M::Join { channel, user } => Inbound::Join { channel, user },
            M::Leave { channel, user } => Inbound::Leave { channel, user },
            m @ M::Signal { .. } => {
                let M::Signal { channel, .. } = &m else { return Inbound::Other };
                Inbound::Signal { channel: channel.clone(), payload: m }
            }
            m @ M::History { .. } => Inbound::History { id, payload: m },
            m @ M::Published { .. } => Inbound::Published { id, payload: m },
        }
    }
}

/// Something the driver must do for the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Get a token from the application (sync or async) and answer with
    /// [`Session::handle_token`](super::Session::handle_token).
    FetchToken,
    /// Open a new socket now and report [`Session::handle_open`](super::Session::handle_open) or
    /// [`Session::handle_close`](super::Session::handle_close).
    Connect,
    /// Close the current socket with this code and reason, then drop it: report nothing more
    /// about that socket.
    Close {
        /// Close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
}

/// The handle of one subscription made with [`Session::subscribe`](super::Session::subscribe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubId(pub u64);

impl fmt::Display for SubId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sub#")?;
        fmt::Display::fmt(&self.0, f)
    }
}

/// The connection's state, as the application sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    /// Not started.
    Idle,
    /// Fetching a token or opening the socket (attempt counts failures since the last stable
    /// connection).
    Connecting {
        /// Failed attempts so far.
        attempt: u32,
    },
    /// The socket is open and the token was sent; waiting for the hub to accept it.
    Authenticating,
    /// Live.
    Connected,
    /// Waiting `retry_in` before the next attempt.
    Reconnecting {
        /// Failed attempts so far.
        attempt: u32,
        /// Delay until the next attempt.
        retry_in: Duration,
    },
    /// Stopped: by the application, by a terminal close code or by an authentication failure.
    /// Only [`Session::connect`](super::Session::connect) starts it again.
    Closed,
}

impl ConnectionState {
    /// Lowercase name (`"connecting"`, `"reconnecting"`, …).
    pub fn name(&self) -> &'static str {
        match self {
            ConnectionState::Idle => "idle",
            ConnectionState::Connecting { .. } => "connecting",
            ConnectionState::Authenticating => "authenticating",
            ConnectionState::Connected => "connected",
            ConnectionState::Reconnecting { .. } => "reconnecting",
            ConnectionState::Closed => "closed",
        }
    }
}

/// The state of one subscription handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubState {
    /// Waiting to be (re)subscribed: not connected yet, or the subscribe is in flight.
    Subscribing,
    /// Live. `recovered` is `Some` when this subscribe resumed from a position.
    Subscribed {
        /// Whether the missed events are being replayed (`Some(false)` comes with a [`Event::Gap`]).
        recovered: Option<bool>,
    },
    /// The hub refused it, or ended it (access revoked: `message` is `"revoked"`); it is not
    /// retried until subscribed again.
    Failed {
        /// The error code.
        code: Option<ErrorCode>,
        /// The hub's message.
        message: String,
    },
    /// Unsubscribed by the application.
    Unsubscribed,
}

/// Why a subscription has a gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapReason {
    /// The hub lost its history (restart): a new epoch.
    EpochChanged,
    /// The hub no longer has every missed event (history trimmed, or replay too large).
    NotRecovered,
    /// The session had no position to resume from (the hub sent no `seq`).
    NoPosition,
}

impl GapReason {
    /// The name SDKs and tools show (`"epoch_changed"`, `"not_recovered"`, `"no_position"`).
    pub fn as_str(self) -> &'static str {
        match self {
            GapReason::EpochChanged => "epoch_changed",
            GapReason::NotRecovered => "not_recovered",
            GapReason::NoPosition => "no_position",
        }
    }
}

/// Something the application should see.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<P> {
    /// The connection changed state.
    State {
        /// The new state.
        state: ConnectionState,
        /// Why.
        reason: String,
        /// The close code that caused it, if any.
        code: Option<u16>,
    },
    /// A subscription handle changed state (its channel: [`Session::channel_of`](super::Session::channel_of),
    /// while the handle is held).
    Subscription {
        /// The handle.
        sub: SubId,
        /// The new state.
        state: SubState,
    },
    /// An event (or notification) for one subscription handle. Each handle whose channel
    /// receives it gets one copy, never a seq it already had.
    Message {
        /// The handle.
        sub: SubId,
        /// Position in the stream.
        seq: Option<u64>,
        /// The application's payload.
        payload: P,
    },
    /// Events may have been missed on this subscription: refetch. Live events follow.
    Gap {
        /// The handle.
        sub: SubId,
        /// The last seq delivered before the gap.
        last_seq: Option<u64>,
        /// The stream position live delivery resumes after.
        resume_seq: Option<u64>,
        /// Why.
        reason: GapReason,
    },
    /// The hub's identity for this connection.
    Authenticated {
        /// The user.
        user: String,
    },
    /// An error frame not tied to a subscription or a request (e.g. `rate_limited`).
    Error {
        /// The code.
        code: Option<ErrorCode>,
        /// The message.
        message: String,
    },
    /// The member list of the handle's channel ([`Session::members`](super::Session::members))
    /// is there, or was rebuilt: after the subscribe, after each reconnect (after the
    /// [`Event::Member`] changes it brought), or at once for a handle added to a channel whose
    /// members are known. Only handles that asked for presence get it.
    Presence {
        /// The handle.
        sub: SubId,
    },
    /// A user joined (`joined`) or left a channel with presence: their first connection came or
    /// their last one went (also reported after a reconnect, for a change that happened
    /// meanwhile).
    Member {
        /// The handle.
        sub: SubId,
        /// Who.
        user: String,
        /// Joined, or left.
        joined: bool,
    },
    /// A signal for one subscription handle of its channel.
    Signal {
        /// The handle.
        sub: SubId,
        /// The application's payload.
        payload: P,
    },
    /// The answer to a request ([`Session::presence`](super::Session::presence),
    /// [`Session::history`](super::Session::history)).
    Reply {
        /// The request.
        req: ReqId,
        /// The answer's payload, or why there is none.
        result: Result<P, RequestError>,
    },
}

/// The handle of one request, its `id` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReqId(pub u64);

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    /// The hub's error code (`None`: the session gave up: timeout, closed).
    pub code: Option<ErrorCode>,
    /// What happened.
    pub message: String,
}

/// Why a subscribe or unsubscribe call failed at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionError {
    /// The channel does not follow the grammar.
    InvalidChannel(ChannelError),
    /// Too many channels or handles.
    SubscriptionLimit(usize),
    /// No such handle.
    UnknownSubscription(SubId),
    /// Not connected (a signal is only sent on a live connection).
    NotConnected,
    /// Too many requests waiting for an answer.
    TooManyRequests(usize),
}

/// `invalid channel: …`, `subscription limit exceeded: max N`, `unknown subscription sub#N`
/// (written piece by piece: no formatting macro in the bundle's modules).
impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::InvalidChannel(e) => {
                f.write_str("invalid channel: ")?;
                fmt::Display::fmt(e, f)
            }
            SessionError::SubscriptionLimit(max) => {
                f.write_str("subscription limit exceeded: max ")?;
                fmt::Display::fmt(max, f)
            }
            SessionError::UnknownSubscription(sub) => {
                f.write_str("unknown subscription ")?;
                fmt::Display::fmt(sub, f)
            }
            SessionError::NotConnected | SessionError::TooManyRequests(_) => {
                f.write_str(&self.message())
            }
        }
    }
}

impl core::error::Error for SessionError {}

impl SessionError {
    /// The `Display` text built without `core::fmt` (see [`ChannelError::message`]: the same
    /// text, but an invalid channel is quoted as is). What the browser SDK throws.
    pub fn message(&self) -> String {
        let mut out = String::new();
        match self {
            SessionError::InvalidChannel(e) => {
                out.push_str("invalid channel: ");
                out.push_str(&e.message());
            }
            SessionError::SubscriptionLimit(max) => {
                out.push_str("subscription limit exceeded: max ");
                crate::frame::push_u64(&mut out, *max as u64);
            }
            SessionError::UnknownSubscription(sub) => {
                out.push_str("unknown subscription sub#");
                crate::frame::push_u64(&mut out, sub.0);
            }
            SessionError::NotConnected => out.push_str("not connected"),
            SessionError::TooManyRequests(max) => {
                out.push_str("too many requests waiting for an answer: max ");
                crate::frame::push_u64(&mut out, *max as u64);
            }
        }
        out
    }
}

/// The answer of a token provider that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// The application says the user is not allowed: terminal.
    Unauthorized(String),
    /// A transient failure (network, ...): retried with backoff.
    Transient(String),
}
