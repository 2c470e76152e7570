//! The JS-facing shapes: the options read from JavaScript and the objects handed to callbacks.
//!
//! Each type's TypeScript declaration is generated from it (feature `ts`, see
//! `tests/ts_types.rs`). The wasm's outputs name subscription states and gap reasons with the
//! names here; the driver in JavaScript (`js/`) lays them out as these objects, and reads and
//! checks the options.

use alloc::string::String;
use guts_realtime::session::{ConnectionState, SubState};
use guts_realtime::ErrorCode;

/// A JavaScript value (a function, a constructor): the driver keeps it in JavaScript; here only
/// its TypeScript type matters.
pub type JsValue = ();

/// Options of `new RealtimeClient(url, options)`. Every field is optional.
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename_all = "camelCase", optional_fields))]
#[derive(Debug, Default)]
pub struct ClientOptions {
    /// Called before every connect (and reconnect) for a fresh token, which is sent as the first
    /// frame. Return (or resolve to) a string; `null`/`undefined`/`""` connects anonymously. Throw
    /// or reject to retry with backoff — or, to stop for good, reject with an error whose `name` is
    /// `"UnauthorizedError"` (or that has `unauthorized: true`): the client goes to `closed`.
    /// Without it the client connects anonymously.
    #[cfg_attr(
        feature = "ts",
        ts(
            type = "() => Promise<string | null | undefined> | string | null | undefined",
            optional
        )
    )]
    pub token: Option<JsValue>,
    /// Reconnect backoff (full jitter): `random(0, min(max, base · 2^attempt))`.
    pub backoff: Option<Backoff>,
    /// Client heartbeat: ping after `interval` ms without any frame; declare the link dead when
    /// nothing arrives `timeout` ms after the ping.
    pub heartbeat: Option<Heartbeat>,
    /// How long fetching a token, opening the socket and the handshake may take, in ms
    /// (default 10000).
    pub connect_timeout: Option<f64>,
    /// The `WebSocket` constructor to use instead of the global one (e.g. the `ws` package's in
    /// Node 20). With neither, the client closes at once with a reason that names this option.
    #[cfg_attr(
        feature = "ts",
        ts(rename = "WebSocket", type = "new (url: string) => unknown", optional)
    )]
    pub web_socket: Option<JsValue>,
    /// Share one WebSocket among every tab of the origin that asks for it, through a
    /// `SharedWorker` (each tab keeps its own subscriptions, callbacks, gaps and presence; the
    /// connection outlives the tab that opened it). Where there is no `SharedWorker` the client
    /// opens its own socket. The tabs share the identity of the token the connection was opened
    /// with.
    pub shared: Option<bool>,
}

/// Backoff bounds, in milliseconds.
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[derive(Debug, Default)]
pub struct Backoff {
    /// First-retry ceiling (default 500).
    pub base: Option<f64>,
    /// Largest delay (default 20000).
    pub max: Option<f64>,
}

/// Heartbeat timings, in milliseconds.
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[derive(Debug, Default)]
pub struct Heartbeat {
    /// Idle time before a ping (default 20000).
    pub interval: Option<f64>,
    /// Wait for any frame after a ping before reconnecting (default 10000).
    pub timeout: Option<f64>,
}

/// A connection state name.
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename_all = "lowercase"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateName {
    /// Not started yet.
    Idle,
    /// Fetching a token or opening the socket.
    Connecting,
    /// Socket open, token sent, waiting for the hub to accept it.
    Authenticating,
    /// Live.
    Connected,
    /// Waiting `retryIn` ms before the next attempt.
    Reconnecting,
    /// Stopped: by `close()`, a terminal close code, or an authentication failure.
    Closed,
}

/// What `onState` listeners receive.
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename_all = "camelCase", optional_fields))]
#[derive(Debug, Clone, PartialEq)]
pub struct StateChange {
    /// The new state.
    pub state: StateName,
    /// Why (human-readable).
    pub reason: String,
    /// The WebSocket close code that caused it, if any (e.g. 4001 for a rejected token).
    pub code: Option<u16>,
    /// `reconnecting` only: milliseconds until the next attempt.
    pub retry_in: Option<f64>,
    /// `connecting` and `reconnecting`: failed attempts since the last stable connection.
    pub attempt: Option<u32>,
}

impl StateName {
    /// The JS string (`"connected"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            StateName::Idle => "idle",
            StateName::Connecting => "connecting",
            StateName::Authenticating => "authenticating",
            StateName::Connected => "connected",
            StateName::Reconnecting => "reconnecting",
            StateName::Closed => "closed",
        }
    }
}

impl StateChange {
    /// The change for a session state.
    pub fn new(state: &ConnectionState, reason: String, code: Option<u16>) -> StateChange {
        let (name, retry_in, attempt) = match state {
            ConnectionState::Idle => (StateName::Idle, None, None),
            ConnectionState::Connecting { attempt } => {
                (StateName::Connecting, None, Some(*attempt))
            }
            ConnectionState::Authenticating => (StateName::Authenticating, None, None),
            ConnectionState::Connected => (StateName::Connected, None, None),
            ConnectionState::Reconnecting { attempt, retry_in } => {
                (StateName::Reconnecting, Some(retry_in.as_secs_f64() * 1e3), Some(*attempt))
            }
            ConnectionState::Closed => (StateName::Closed, None, None),
        };
        StateChange { state: name, reason, code, retry_in, attempt }
    }
}

/// A subscription state name.
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename_all = "lowercase"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionStateName {
    /// Waiting to be (re)subscribed: not connected, or the subscribe is in flight.
    Subscribing,
    /// Live.
    Subscribed,
    /// Refused by the hub (e.g. `forbidden`); not retried.
    Failed,
    /// Ended by `unsubscribe()`.
    Unsubscribed,
}

impl SubscriptionStateName {
    /// The JS string.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStateName::Subscribing => "subscribing",
            SubscriptionStateName::Subscribed => "subscribed",
            SubscriptionStateName::Failed => "failed",
            SubscriptionStateName::Unsubscribed => "unsubscribed",
        }
    }
}

/// What a subscription's `onState` handler receives.
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionState {
    /// The canonical channel.
    pub channel: String,
    /// The new state.
    pub state: SubscriptionStateName,
    /// `subscribed` after a resubscribe: whether every missed event is being replayed
    /// (`false` comes with an `onGap` call).
    pub recovered: Option<bool>,
    /// `failed`: the hub's error code.
    pub code: Option<ErrorCode>,
    /// `failed`: the hub's message.
    pub message: Option<String>,
}

impl SubscriptionState {
    /// The state of a session handle.
    pub fn new(channel: String, state: SubState) -> SubscriptionState {
        let mut s = SubscriptionState {
            channel,
            state: SubscriptionStateName::Subscribing,
            recovered: None,
            code: None,
            message: None,
        };
        match state {
            SubState::Subscribing => {}
            SubState::Subscribed { recovered } => {
                s.state = SubscriptionStateName::Subscribed;
                s.recovered = recovered;
            }
            SubState::Failed { code, message } => {
                s.state = SubscriptionStateName::Failed;
                s.code = code;
                s.message = Some(message);
            }
            SubState::Unsubscribed => s.state = SubscriptionStateName::Unsubscribed,
        }
        s
    }
}

/// Why a subscription has a gap.
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename_all = "snake_case"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapReasonName {
    /// The hub lost its history (it restarted): a new epoch.
    EpochChanged,
    /// The hub no longer has every missed event.
    NotRecovered,
    /// There was no position to resume from.
    NoPosition,
}

/// What a subscription's `onGap` handler receives: events may have been missed — refetch what
/// the view shows. Live events follow.
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename_all = "camelCase", optional_fields))]
#[derive(Debug, Clone, PartialEq)]
pub struct Gap {
    /// The canonical channel.
    pub channel: String,
    /// The last seq delivered before the gap.
    pub last_seq: Option<u64>,
    /// The stream position live delivery resumes after.
    pub resume_seq: Option<u64>,
    /// Why.
    pub reason: GapReasonName,
}

/// What `onError` listeners receive: an `error` frame from the hub that concerns no subscription
/// (e.g. `rate_limited`).
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorInfo {
    /// The machine-readable code, when the hub sent a known one.
    pub code: Option<ErrorCode>,
    /// The hub's message.
    pub message: String,
}

/// The optional third argument of `subscribe(channel, onEvent, handlers)`.
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename_all = "camelCase", optional_fields))]
#[derive(Debug, Default)]
pub struct SubscribeHandlers {
    /// State changes of this subscription: `subscribing`, `subscribed` (with `recovered` after a
    /// resubscribe), `failed`, `unsubscribed`.
    #[cfg_attr(feature = "ts", ts(type = "(state: SubscriptionState) => void", optional))]
    pub on_state: Option<JsValue>,
    /// Events may have been missed (the hub restarted, or its history no longer reaches back):
    /// refetch what the view shows. Live events follow; none is ever delivered twice.
    #[cfg_attr(feature = "ts", ts(type = "(gap: Gap) => void", optional))]
    pub on_gap: Option<JsValue>,
    /// Join the channel's presence (implied by `onPresence`, `onJoin` or `onLeave`): the
    /// subscription is one of the channel's members while the client is authenticated as a
    /// user, and `handle.members` is who is there.
    pub presence: Option<bool>,
    /// Who is on the channel: after the subscribe, and again after each reconnect (after the
    /// joins and leaves the reconnect brought).
    #[cfg_attr(feature = "ts", ts(type = "(presence: PresenceList) => void", optional))]
    pub on_presence: Option<JsValue>,
    /// A user joined the channel (their first connection).
    #[cfg_attr(feature = "ts", ts(type = "(change: MemberChange) => void", optional))]
    pub on_join: Option<JsValue>,
    /// A user left the channel (their last connection).
    #[cfg_attr(feature = "ts", ts(type = "(change: MemberChange) => void", optional))]
    pub on_leave: Option<JsValue>,
    /// A signal from another subscriber of the channel (its `user` is set by the hub).
    #[cfg_attr(
        feature = "ts",
        ts(type = "(signal: Extract<ServerMessage, { type: \"signal\" }>) => void", optional)
    )]
    pub on_signal: Option<JsValue>,
    /// Continue from this position (a `sub.position` saved earlier, or a history's `seq` and
    /// `epoch`): the events after it are replayed — or `onGap` says they cannot be — and none
    /// is delivered twice.
    #[cfg_attr(feature = "ts", ts(type = "Since", optional))]
    pub since: Option<JsValue>,
    /// Unsubscribes when this signal aborts (e.g. a component's `AbortController` on unmount).
    #[cfg_attr(feature = "ts", ts(type = "AbortSignal", optional))]
    pub signal: Option<JsValue>,
}

/// What `onPresence` receives.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq)]
pub struct PresenceList {
    /// The canonical channel.
    pub channel: String,
    /// Every member, by user name.
    #[cfg_attr(feature = "ts", ts(type = "PresenceMember[]"))]
    pub members: alloc::vec::Vec<(String, u32)>,
}

/// What `onJoin` and `onLeave` receive.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq)]
pub struct MemberChange {
    /// The canonical channel.
    pub channel: String,
    /// Who joined or left.
    pub user: String,
}
