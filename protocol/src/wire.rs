//! The wire: every frame shape of the protocol, with its one encoder and its one decoder.
//!
//! Client → server: a [`ClientFrame`] is a [`ClientCommand`] (the seed's internally tagged
//! `{"type":"subscribe","channel":…}`) plus two optional envelope fields, `since` (subscribe only)
//! and `id` (echoed by the reply). [`ClientFrame::encode`] writes it without serde_json, so the
//! session and the browser SDK share the same encoder; [`decode_client_frame`] reads it.
//!
//! Server → client: a [`ServerFrame`] is a [`ServerMessage`] (replies, events, notifications,
//! welcome) plus the echoed `id`. [`ServerFrame::encode`] and [`decode_server_frame`] are the one
//! encoder and decoder (feature `json`). Key order is fixed and pinned by the vectors in
//! `tests/vectors/`.

use crate::frame::{push_json_str, push_u64};
use crate::prelude::*;
use core::fmt;
use serde::{Deserialize, Serialize};

/// The `id` of a command, echoed by its reply: a string (at most [`RequestId::MAX_LEN`] bytes) or
/// a non-negative integer.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    /// A number.
    Num(u64),
    /// A string.
    Str(String),
}

impl RequestId {
    /// Longest accepted string id.
    pub const MAX_LEN: usize = 128;

    fn push_json(&self, out: &mut String) {
        match self {
            RequestId::Num(n) => push_u64(out, *n),
            RequestId::Str(s) => push_json_str(out, s),
        }
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestId::Num(n) => write!(f, "{n}"),
            RequestId::Str(s) => f.write_str(s),
        }
    }
}

impl From<u64> for RequestId {
    fn from(n: u64) -> Self {
        RequestId::Num(n)
    }
}

/// A position in a stream: the last `seq` seen under hub `epoch`. Sent as `since` to recover.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Since {
    /// The last seq the client received.
    pub seq: u64,
    /// The hub epoch that seq belongs to.
    pub epoch: String,
}

/// A command from a client (internally tagged by `"type"`, snake_case).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClientCommand {
    /// `{"type":"subscribe","channel":C}`.
    Subscribe {
        /// The channel.
        channel: String,
    },
    /// `{"type":"unsubscribe","channel":C}`.
    Unsubscribe {
        /// The channel.
        channel: String,
    },
    /// `{"type":"ping"}` → `{"type":"pong"}`.
    Ping,
    /// `{"type":"auth","token":T}` → `{"type":"authenticated","user":U}`.
    Auth {
        /// A JWT, or the hub's publish key.
        token: String,
    },
    /// `{"type":"publish","channel":C,"event":K,"data":D}` → `{"type":"published","channel":C,"seq":N}`.
    /// With `"idempotency_key":K` (1 to [`MAX_IDEMPOTENCY_KEY`] bytes), published once per key
    /// and channel within the history window: a repeat answers the first one's seq with
    /// `"duplicate":true` and publishes nothing.
    #[cfg(feature = "json")]
    Publish {
        /// The channel.
        channel: String,
        /// The kind.
        event: crate::EventKind,
        /// The payload (`null` when absent).
        #[serde(default)]
        data: serde_json::Value,
        /// Makes a retried publish harmless.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        idempotency_key: Option<String>,
    },
    /// `{"type":"presence","channel":C}` → the `presence` frame: who is on the channel, without
    /// joining it.
    Presence {
        /// The channel.
        channel: String,
    },
    /// `{"type":"history","channel":C,"limit":N}` → the `history` frame: the last `N` (1..=100,
    /// default [`HISTORY_DEFAULT_LIMIT`]) events of the channel still in the history window.
    History {
        /// The channel.
        channel: String,
        /// How many events, at most.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        limit: Option<u32>,
    },
    /// `{"type":"signal","channel":C,"event":NAME,"data":D}`: an ephemeral message to the other
    /// subscribers of an item channel (see [`valid_signal_name`], [`MAX_SIGNAL_DATA`]).
    #[cfg(feature = "json")]
    Signal {
        /// The item channel.
        channel: String,
        /// The signal's name (`typing`, `cursor.moved`, …).
        event: String,
        /// The payload (`null` when absent).
        #[serde(default)]
        data: serde_json::Value,
    },
}

/// The longest `idempotency_key` of a publish, in bytes.
pub const MAX_IDEMPOTENCY_KEY: usize = 128;

/// Checks a publish's idempotency key: 1 to [`MAX_IDEMPOTENCY_KEY`] bytes.
///
/// # Errors
/// [`RealtimeError::InvalidMessage`](crate::RealtimeError::InvalidMessage) naming the bound.
pub fn idempotency_key(key: Option<&str>) -> Result<Option<&str>, crate::RealtimeError> {
    match key {
        Some(k) if k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY => Err(
            crate::RealtimeError::InvalidMessage("idempotency_key must be 1 to 128 bytes".into()),
        ),
        k => Ok(k),
    }
}

/// Events a `history` command returns when it gives no `limit`.
pub const HISTORY_DEFAULT_LIMIT: u32 = 20;

/// The largest `limit` of a `history` command.
pub const HISTORY_MAX_LIMIT: u32 = 100;

/// The most members a `presence` frame lists (more: `"truncated":true`).
pub const MAX_PRESENCE_MEMBERS: usize = 1000;

/// The most bytes a signal's encoded `data` may have.
pub const MAX_SIGNAL_DATA: usize = 4096;

/// Whether `name` may name a signal: 1 to 64 of `[a-z0-9_.-]`.
pub fn valid_signal_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
}

/// The text of a `signal` command (the one encoder, shared with [`ClientFrame::encode`]):
/// `data` is JSON text, written as it is.
///
/// ```
/// use guts_realtime::RequestId;
/// assert_eq!(
///     guts_realtime::wire::encode_signal("repo:a/b/prs/1", "typing", "{}", Some(&RequestId::Num(4))),
///     r#"{"type":"signal","channel":"repo:a/b/prs/1","event":"typing","data":{},"id":4}"#
/// );
/// ```
pub fn encode_signal(channel: &str, event: &str, data: &str, id: Option<&RequestId>) -> String {
    let mut out = String::with_capacity(64 + data.len());
    out.push_str("{\"type\":");
    push_signal(&mut out, channel, event, data);
    if let Some(id) = id {
        out.push_str(",\"id\":");
        id.push_json(&mut out);
    }
    out.push('}');
    out
}

/// A signal's fields after `{"type":`.
fn push_signal(out: &mut String, channel: &str, event: &str, data: &str) {
    out.push_str("\"signal\",\"channel\":");
    push_json_str(out, channel);
    out.push_str(",\"event\":");
    push_json_str(out, event);
    out.push_str(",\"data\":");
    out.push_str(data);
}

/// A client frame: a command plus the optional envelope fields `since`, `presence` and `id`.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ClientFrame {
    /// The command.
    #[serde(flatten)]
    pub command: ClientCommand,
    /// Recover from this position (subscribe only; ignored on other commands).
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub since: Option<Since>,
    /// Join the channel's presence (subscribe only; ignored on other commands): the hub sends
    /// the member list after `subscribed`, then `join` and `leave` as it changes.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(as = "Option<bool>", optional))]
    pub presence: bool,
    /// Echoed by the reply.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub id: Option<RequestId>,
}

impl From<ClientCommand> for ClientFrame {
    fn from(command: ClientCommand) -> Self {
        ClientFrame { command, since: None, presence: false, id: None }
    }
}

impl ClientFrame {
    /// The JSON text of this frame, keys in the order `type`, command fields, `since`,
    /// `presence`, `id`.
    ///
    /// ```
    /// use guts_realtime::{ClientCommand, ClientFrame, RequestId, Since};
    /// let f = ClientFrame {
    ///     command: ClientCommand::Subscribe { channel: "repo:a/b".into() },
    ///     since: Some(Since { seq: 7, epoch: "e1".into() }),
    ///     presence: false,
    ///     id: Some(RequestId::Num(3)),
    /// };
    /// assert_eq!(
    ///     f.encode(),
    ///     r#"{"type":"subscribe","channel":"repo:a/b","since":{"seq":7,"epoch":"e1"},"id":3}"#
    /// );
    /// ```
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(64);
        out.push_str("{\"type\":");
        match &self.command {
            ClientCommand::Subscribe { channel } => {
                out.push_str("\"subscribe\",\"channel\":");
                push_json_str(&mut out, channel);
            }
            ClientCommand::Unsubscribe { channel } => {
                out.push_str("\"unsubscribe\",\"channel\":");
                push_json_str(&mut out, channel);
            }
            ClientCommand::Ping => out.push_str("\"ping\""),
            ClientCommand::Auth { token } => {
                out.push_str("\"auth\",\"token\":");
                push_json_str(&mut out, token);
            }
            #[cfg(feature = "json")]
            ClientCommand::Publish { channel, event, data, idempotency_key } => {
                out.push_str("\"publish\",\"channel\":");
                push_json_str(&mut out, channel);
                out.push_str(",\"event\":");
                push_json_str(&mut out, event.wire_name());
                out.push_str(",\"data\":");
                out.push_str(&data.to_string());
                if let Some(key) = idempotency_key {
                    out.push_str(",\"idempotency_key\":");
                    push_json_str(&mut out, key);
                }
            }
            ClientCommand::Presence { channel } => {
                out.push_str("\"presence\",\"channel\":");
                push_json_str(&mut out, channel);
            }
            ClientCommand::History { channel, limit } => {
                out.push_str("\"history\",\"channel\":");
                push_json_str(&mut out, channel);
                if let Some(limit) = limit {
                    out.push_str(",\"limit\":");
                    push_u64(&mut out, u64::from(*limit));
                }
            }
            #[cfg(feature = "json")]
            ClientCommand::Signal { channel, event, data } => {
                push_signal(&mut out, channel, event, &data.to_string());
            }
        }
        if let Some(since) = &self.since {
            out.push_str(",\"since\":{\"seq\":");
            push_u64(&mut out, since.seq);
            out.push_str(",\"epoch\":");
            push_json_str(&mut out, &since.epoch);
            out.push('}');
        }
        if self.presence {
            out.push_str(",\"presence\":true");
        }
        if let Some(id) = &self.id {
            out.push_str(",\"id\":");
            id.push_json(&mut out);
        }
        out.push('}');
        out
    }
}

#[cfg(feature = "json")]
pub use self::json::*;

#[cfg(feature = "json")]
mod json {
    use super::{ClientFrame, RequestId};
    use crate::error::{ErrorCode, RealtimeError};
    use crate::event::{EventKind, RealtimeEvent, UnknownEvent};
    use crate::frame::Frame;
    use crate::notification::Notification;
    use serde::ser::SerializeMap;
    use serde::{Deserialize, Serialize, Serializer};

    /// Every frame a server sends (internally tagged by `"type"`, snake_case). Events are a
    /// variant too, so one decode call reads any server frame.
    #[cfg_attr(feature = "ts", derive(ts_rs::TS))]
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case", from = "Tagged")]
    #[non_exhaustive]
    pub enum ServerMessage {
        /// First frame of a connection: `{"type":"welcome","epoch":E,"client_id":ID}`.
        Welcome {
            /// Changes whenever the hub loses history (a restart); `since` is only honoured
            /// within one epoch.
            epoch: String,
            /// The hub's id for this connection.
            client_id: String,
        },
        /// `{"type":"subscribed","channel":C,"seq":N,"recovered":B}`. `channel` is canonical;
        /// `seq` is the stream's last seq at subscription time (resume from it); `recovered` is
        /// present when the subscribe carried `since`.
        Subscribed {
            /// The canonical channel.
            channel: String,
            /// The stream head when the subscription started.
            #[serde(default)]
            #[cfg_attr(feature = "ts", ts(optional))]
            seq: Option<u64>,
            /// Whether everything after `since` is being replayed (only with `since`).
            #[serde(default)]
            #[cfg_attr(feature = "ts", ts(optional))]
            recovered: Option<bool>,
        },
        /// `{"type":"unsubscribed","channel":C}`: the reply to `unsubscribe` (or a channel the
        /// identity lost at a re-`auth`).
        Unsubscribed {
            /// The canonical channel.
            channel: String,
        },
        /// `{"type":"unsubscribed","channel":C,"reason":R}`: the hub ended the subscription by
        /// itself; with `R = "revoked"` the platform withdrew access (`POST /api/unsubscribe`),
        /// so the client does not subscribe again.
        #[serde(rename = "unsubscribed")]
        Ended {
            /// The canonical channel.
            channel: String,
            /// Why (`"revoked"`).
            reason: String,
        },
        /// `{"type":"pong"}`.
        Pong,
        /// `{"type":"error","message":M,"code":C}`.
        Error {
            /// Human-readable.
            message: String,
            /// Machine-readable: absent from seed-era servers, and `None` for a code this version
            /// does not know (so a newer server's new code never makes the frame undecodable).
            #[serde(default, deserialize_with = "known_code")]
            #[cfg_attr(feature = "ts", ts(optional))]
            code: Option<ErrorCode>,
        },
        /// `{"type":"authenticated","user":U,"expires_in":S}`.
        Authenticated {
            /// The authenticated identity.
            user: String,
            /// Whole seconds until the token expires (absent for a token without `exp`): send a
            /// new `auth` before then, or the connection is closed with 4002.
            #[serde(default)]
            #[cfg_attr(feature = "ts", ts(optional))]
            expires_in: Option<u64>,
        },
        /// `{"type":"published","channel":C,"seq":N}`.
        Published {
            /// The canonical channel.
            channel: String,
            /// The seq the event got.
            seq: u64,
            /// The publish repeated an idempotency key: `seq` is the first one's, and nothing
            /// was published (`"duplicate":true`, absent otherwise).
            #[serde(default, skip_serializing_if = "core::ops::Not::not")]
            #[cfg_attr(feature = "ts", ts(as = "Option<bool>", optional))]
            duplicate: bool,
        },
        /// An event frame (see [`RealtimeEvent`]).
        Event(RealtimeEvent),
        /// An event frame of a kind this version does not know (a newer hub's): decoded, not
        /// dropped (see [`UnknownEvent`]). Hubs of this version never send one.
        #[cfg_attr(feature = "ts", ts(skip))]
        UnknownEvent(UnknownEvent),
        /// `{"type":"notification","channel":"user:U","notification":{…},"seq":N}`.
        Notification {
            /// `user:<user_id>`.
            channel: String,
            /// The notification.
            notification: Notification,
            /// Position in the user's stream.
            #[serde(default)]
            #[cfg_attr(feature = "ts", ts(optional))]
            seq: Option<u64>,
        },
        /// `{"type":"presence","channel":C,"members":[{"user":U,"connections":K},…]}`: who is on
        /// a channel (after a `subscribe` with `presence: true`, or answering a `presence`
        /// command), with `"truncated":true` when there were more than
        /// [`MAX_PRESENCE_MEMBERS`](super::MAX_PRESENCE_MEMBERS).
        Presence {
            /// The canonical channel.
            channel: String,
            /// The members, by user name.
            members: Vec<PresenceMember>,
            /// Whether members were left out.
            #[serde(default)]
            #[cfg_attr(feature = "ts", ts(as = "Option<bool>", optional))]
            truncated: bool,
        },
        /// `{"type":"join","channel":C,"user":U}`: the first connection of `U` joined.
        Join {
            /// The canonical channel.
            channel: String,
            /// Who joined.
            user: String,
        },
        /// `{"type":"leave","channel":C,"user":U}`: the last connection of `U` left.
        Leave {
            /// The canonical channel.
            channel: String,
            /// Who left.
            user: String,
        },
        /// `{"type":"signal","channel":C,"event":NAME,"data":D,"user":U}`: an ephemeral message
        /// from `U` (set by the hub) to the channel's other subscribers.
        Signal {
            /// The item channel.
            channel: String,
            /// The signal's name.
            event: String,
            /// Its payload.
            data: serde_json::Value,
            /// The sender, as authenticated by the hub.
            user: String,
        },
        /// `{"type":"history","channel":C,"epoch":E,"seq":H,"events":[…]}`: the last events of
        /// the channel still in the history window, oldest first, each the frame as it was
        /// delivered. Subscribing with `since: {seq: H, epoch: E}` continues after them with no
        /// gap and no duplicate.
        History {
            /// The canonical channel.
            channel: String,
            /// The hub's epoch.
            epoch: String,
            /// The stream's last seq when the history was read.
            seq: u64,
            /// The event (or notification) frames.
            events: Vec<ServerMessage>,
        },
    }

    /// One member of a channel's presence.
    #[cfg_attr(feature = "ts", derive(ts_rs::TS))]
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct PresenceMember {
        /// The user.
        pub user: String,
        /// The user's connections subscribed to the channel with presence.
        pub connections: u32,
    }

    impl ServerMessage {
        /// The `error` reply for an error.
        pub fn error(err: &RealtimeError) -> ServerMessage {
            ServerMessage::Error { message: err.to_string(), code: Some(err.code()) }
        }

        /// The `type` tag of this message.
        pub fn type_name(&self) -> &'static str {
            match self {
                ServerMessage::Welcome { .. } => "welcome",
                ServerMessage::Subscribed { .. } => "subscribed",
                ServerMessage::Unsubscribed { .. } | ServerMessage::Ended { .. } => "unsubscribed",
                ServerMessage::Pong => "pong",
                ServerMessage::Error { .. } => "error",
                ServerMessage::Authenticated { .. } => "authenticated",
                ServerMessage::Published { .. } => "published",
                ServerMessage::Event(_) | ServerMessage::UnknownEvent(_) => "event",
                ServerMessage::Notification { .. } => "notification",
                ServerMessage::Presence { .. } => "presence",
                ServerMessage::Join { .. } => "join",
                ServerMessage::Leave { .. } => "leave",
                ServerMessage::Signal { .. } => "signal",
                ServerMessage::History { .. } => "history",
            }
        }

        /// Encodes this message with an echoed `id`.
        pub fn encode_with_id(&self, id: Option<&RequestId>) -> Frame {
            if let ServerMessage::History { channel, epoch, seq, events } = self {
                let frames: Vec<Frame> = events.iter().map(ServerMessage::encode).collect();
                return history_frame(channel, epoch, *seq, &frames, id);
            }
            Frame::from_string(serde_json::to_string(&WithId { message: self, id }).unwrap_or_else(
                |e| format!("{{\"type\":\"error\",\"message\":{:?}}}", e.to_string()),
            ))
        }

        /// Encodes this message.
        pub fn encode(&self) -> Frame {
            self.encode_with_id(None)
        }
    }

    /// The `history` frame of `events`, each already encoded (as the hub keeps them): they are
    /// copied in as they are. Keys: `type`, `channel`, `epoch`, `seq`, `events`, `id`.
    pub fn history_frame(
        channel: &str,
        epoch: &str,
        seq: u64,
        events: &[Frame],
        id: Option<&RequestId>,
    ) -> Frame {
        let len: usize = events.iter().map(|f| f.len() + 1).sum();
        let mut out = String::with_capacity(96 + channel.len() + len);
        out.push_str("{\"type\":\"history\",\"channel\":");
        super::push_json_str(&mut out, channel);
        out.push_str(",\"epoch\":");
        super::push_json_str(&mut out, epoch);
        out.push_str(",\"seq\":");
        super::push_u64(&mut out, seq);
        out.push_str(",\"events\":[");
        for (i, f) in events.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(f.as_str());
        }
        out.push(']');
        if let Some(id) = id {
            out.push_str(",\"id\":");
            id.push_json(&mut out);
        }
        out.push('}');
        Frame::from_string(out)
    }

    struct WithId<'a> {
        message: &'a ServerMessage,
        id: Option<&'a RequestId>,
    }

    impl Serialize for ServerMessage {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            WithId { message: self, id: None }.serialize(s)
        }
    }

    impl Serialize for WithId<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut m = s.serialize_map(None)?;
            m.serialize_entry("type", self.message.type_name())?;
            match self.message {
                ServerMessage::Welcome { epoch, client_id } => {
                    m.serialize_entry("epoch", epoch)?;
                    m.serialize_entry("client_id", client_id)?;
                }
                ServerMessage::Subscribed { channel, seq, recovered } => {
                    m.serialize_entry("channel", channel)?;
                    if let Some(seq) = seq {
                        m.serialize_entry("seq", seq)?;
                    }
                    if let Some(r) = recovered {
                        m.serialize_entry("recovered", r)?;
                    }
                }
                ServerMessage::Unsubscribed { channel } => m.serialize_entry("channel", channel)?,
                ServerMessage::Ended { channel, reason } => {
                    m.serialize_entry("channel", channel)?;
                    m.serialize_entry("reason", reason)?;
                }
                ServerMessage::Pong => {}
                ServerMessage::Error { message, code } => {
                    m.serialize_entry("message", message)?;
                    if let Some(code) = code {
                        m.serialize_entry("code", code)?;
                    }
                }
                ServerMessage::Authenticated { user, expires_in } => {
                    m.serialize_entry("user", user)?;
                    if let Some(s) = expires_in {
                        m.serialize_entry("expires_in", s)?;
                    }
                }
                ServerMessage::Published { channel, seq, duplicate } => {
                    m.serialize_entry("channel", channel)?;
                    m.serialize_entry("seq", seq)?;
                    if *duplicate {
                        m.serialize_entry("duplicate", &true)?;
                    }
                }
                ServerMessage::Event(e) => {
                    m.serialize_entry("channel", &e.channel)?;
                    m.serialize_entry("event", &e.event)?;
                    m.serialize_entry("data", &e.data)?;
                    m.serialize_entry("timestamp", &e.timestamp)?;
                    m.serialize_entry("event_id", &e.event_id)?;
                    if let Some(seq) = e.seq {
                        m.serialize_entry("seq", &seq)?;
                    }
                }
                ServerMessage::UnknownEvent(e) => {
                    m.serialize_entry("channel", &e.channel)?;
                    m.serialize_entry("event", &e.event)?;
                    m.serialize_entry("data", &e.data)?;
                    m.serialize_entry("timestamp", &e.timestamp)?;
                    m.serialize_entry("event_id", &e.event_id)?;
                    if let Some(seq) = e.seq {
                        m.serialize_entry("seq", &seq)?;
                    }
                }
                ServerMessage::Notification { channel, notification, seq } => {
                    m.serialize_entry("channel", channel)?;
                    m.serialize_entry("notification", notification)?;
                    if let Some(seq) = seq {
                        m.serialize_entry("seq", seq)?;
                    }
                }
                ServerMessage::Presence { channel, members, truncated } => {
                    m.serialize_entry("channel", channel)?;
                    m.serialize_entry("members", members)?;
                    if *truncated {
                        m.serialize_entry("truncated", &true)?;
                    }
                }
                ServerMessage::Join { channel, user } | ServerMessage::Leave { channel, user } => {
                    m.serialize_entry("channel", channel)?;
                    m.serialize_entry("user", user)?;
                }
                ServerMessage::Signal { channel, event, data, user } => {
                    m.serialize_entry("channel", channel)?;
                    m.serialize_entry("event", event)?;
                    m.serialize_entry("data", data)?;
                    m.serialize_entry("user", user)?;
                }
                ServerMessage::History { channel, epoch, seq, events } => {
                    m.serialize_entry("channel", channel)?;
                    m.serialize_entry("epoch", epoch)?;
                    m.serialize_entry("seq", seq)?;
                    m.serialize_entry("events", events)?;
                }
            }
            if let Some(id) = self.id {
                m.serialize_entry("id", id)?;
            }
            m.end()
        }
    }

    /// What [`ServerMessage`] decodes from: the same frames, with `unsubscribed` either plain or
    /// with a `reason` ([`ServerMessage::Ended`]).
    #[derive(Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Tagged {
        Welcome {
            epoch: String,
            client_id: String,
        },
        Subscribed {
            channel: String,
            #[serde(default)]
            seq: Option<u64>,
            #[serde(default)]
            recovered: Option<bool>,
        },
        Unsubscribed {
            channel: String,
            #[serde(default)]
            reason: Option<String>,
        },
        Pong,
        Error {
            message: String,
            #[serde(default, deserialize_with = "known_code")]
            code: Option<ErrorCode>,
        },
        Authenticated {
            user: String,
            #[serde(default)]
            expires_in: Option<u64>,
        },
        Published {
            channel: String,
            seq: u64,
            #[serde(default)]
            duplicate: bool,
        },
        /// Any kind: [`ServerMessage::Event`] when this version knows it.
        Event(UnknownEvent),
        Notification {
            channel: String,
            notification: Notification,
            #[serde(default)]
            seq: Option<u64>,
        },
        Presence {
            channel: String,
            members: Vec<PresenceMember>,
            #[serde(default)]
            truncated: bool,
        },
        Join {
            channel: String,
            user: String,
        },
        Leave {
            channel: String,
            user: String,
        },
        Signal {
            channel: String,
            event: String,
            #[serde(default)]
            data: serde_json::Value,
            user: String,
        },
        History {
            channel: String,
            epoch: String,
            seq: u64,
            events: Vec<ServerMessage>,
        },
    }

    impl From<Tagged> for ServerMessage {
        fn from(t: Tagged) -> ServerMessage {
            match t {
                Tagged::Welcome { epoch, client_id } => ServerMessage::Welcome { epoch, client_id },
                Tagged::Subscribed { channel, seq, recovered } => {
                    ServerMessage::Subscribed { channel, seq, recovered }
                }
                Tagged::Unsubscribed { channel, reason: None } => {
                    ServerMessage::Unsubscribed { channel }
                }
                Tagged::Unsubscribed { channel, reason: Some(reason) } => {
                    ServerMessage::Ended { channel, reason }
                }
                Tagged::Pong => ServerMessage::Pong,
                Tagged::Error { message, code } => ServerMessage::Error { message, code },
                Tagged::Authenticated { user, expires_in } => {
                    ServerMessage::Authenticated { user, expires_in }
                }
                Tagged::Published { channel, seq, duplicate } => {
                    ServerMessage::Published { channel, seq, duplicate }
                }
                Tagged::Event(e) => match EventKind::from_wire(&e.event) {
                    Some(kind) => ServerMessage::Event(RealtimeEvent {
                        event_type: "event".into(),
                        channel: e.channel,
                        event: kind,
                        data: e.data,
                        timestamp: e.timestamp,
                        event_id: e.event_id,
                        seq: e.seq,
                    }),
                    None => ServerMessage::UnknownEvent(e),
                },
                Tagged::Notification { channel, notification, seq } => {
                    ServerMessage::Notification { channel, notification, seq }
                }
                Tagged::Presence { channel, members, truncated } => {
                    ServerMessage::Presence { channel, members, truncated }
                }
                Tagged::Join { channel, user } => ServerMessage::Join { channel, user },
                Tagged::Leave { channel, user } => ServerMessage::Leave { channel, user },
                Tagged::Signal { channel, event, data, user } => {
                    ServerMessage::Signal { channel, event, data, user }
                }
                Tagged::History { channel, epoch, seq, events } => {
                    ServerMessage::History { channel, epoch, seq, events }
                }
            }
        }
    }

    /// An error `code` as a known [`ErrorCode`], or `None` when absent, `null` or unknown.
    fn known_code<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<ErrorCode>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.and_then(|c| ErrorCode::from_wire(&c)))
    }

    /// A server frame: a message plus the `id` of the command it answers.
    #[cfg_attr(feature = "ts", derive(ts_rs::TS))]
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    pub struct ServerFrame {
        /// The message.
        #[serde(flatten)]
        pub message: ServerMessage,
        /// The echoed command id.
        #[serde(default)]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub id: Option<RequestId>,
    }

    impl ServerFrame {
        /// The JSON text, keys in the order `type`, message fields, `id`.
        pub fn encode(&self) -> Frame {
            self.message.encode_with_id(self.id.as_ref())
        }
    }

    impl Serialize for ServerFrame {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            WithId { message: &self.message, id: self.id.as_ref() }.serialize(s)
        }
    }

    /// A client frame that could not be decoded: the reason, and the `id` if one could be read
    /// (so the error reply can still echo it).
    #[derive(Debug, Clone, PartialEq)]
    pub struct DecodeError {
        /// The id of the frame, when readable.
        pub id: Option<RequestId>,
        /// What is wrong.
        pub error: String,
    }

    impl DecodeError {
        /// The `invalid_message` error.
        pub fn to_error(&self) -> RealtimeError {
            RealtimeError::InvalidMessage(self.error.clone())
        }
    }

    /// Decodes one client frame (any command, with its optional `since` and `id`).
    ///
    /// # Errors
    /// A [`DecodeError`] for malformed JSON, an unknown `type`, a missing or mistyped field, or
    /// an `id` that is neither a non-negative integer nor a string of at most 128 bytes.
    ///
    /// ```
    /// use guts_realtime::{decode_client_frame, ClientCommand, RequestId};
    /// let f = decode_client_frame(r#"{"type":"ping","id":"a"}"#).unwrap();
    /// assert_eq!(f.command, ClientCommand::Ping);
    /// assert_eq!(f.id, Some(RequestId::Str("a".into())));
    /// let err = decode_client_frame(r#"{"type":"dance","id":9}"#).unwrap_err();
    /// assert_eq!(err.id, Some(RequestId::Num(9)));
    /// ```
    pub fn decode_client_frame(text: &str) -> Result<ClientFrame, DecodeError> {
        match serde_json::from_str::<ClientFrame>(text) {
            Ok(f) => match &f.id {
                Some(RequestId::Str(s)) if s.len() > RequestId::MAX_LEN => Err(DecodeError {
                    id: None,
                    error: format!("id is longer than {} bytes", RequestId::MAX_LEN),
                }),
                _ => Ok(f),
            },
            Err(e) => {
                #[derive(Deserialize)]
                struct IdOnly {
                    #[serde(default)]
                    id: Option<RequestId>,
                }
                let id = serde_json::from_str::<IdOnly>(text)
                    .ok()
                    .and_then(|x| x.id)
                    .filter(|id| !matches!(id, RequestId::Str(s) if s.len() > RequestId::MAX_LEN));
                Err(DecodeError { id, error: bounded(&e.to_string()) })
            }
        }
    }

    /// The most bytes of the input an error message quotes.
    const QUOTE_MAX: usize = 128;

    /// The longest error message: serde's text around one quote of at most [`QUOTE_MAX`].
    const MESSAGE_MAX: usize = 2 * QUOTE_MAX + 64;

    /// A decode error's message, short whatever the input: each quote cut to [`QUOTE_MAX`]
    /// bytes, and the whole cut to [`MESSAGE_MAX`] (a quote character inside the input ends a
    /// quote early, so the quote cut alone is not a bound).
    fn bounded(message: &str) -> String {
        let mut out = quote_at_most(message, QUOTE_MAX);
        if out.len() > MESSAGE_MAX {
            let mut end = MESSAGE_MAX;
            while !out.is_char_boundary(end) {
                end -= 1;
            }
            out.truncate(end);
            out.push('…');
        }
        out
    }

    /// `message` with every quoted stretch (between backticks or double quotes, as serde quotes
    /// the input) cut to `max` bytes and an ellipsis, so an error reply never echoes a big frame.
    fn quote_at_most(message: &str, max: usize) -> String {
        let mut out = String::with_capacity(message.len().min(512));
        // Inside a quote: its closing character, the bytes kept, whether it was cut.
        let mut quote: Option<(char, usize, bool)> = None;
        for c in message.chars() {
            quote = match quote {
                Some((q, ..)) if c == q => {
                    out.push(c);
                    None
                }
                Some((q, n, false)) if n + c.len_utf8() <= max => {
                    out.push(c);
                    Some((q, n + c.len_utf8(), false))
                }
                Some((q, n, false)) => {
                    out.push('…');
                    Some((q, n, true))
                }
                Some(cut) => Some(cut),
                None => {
                    out.push(c);
                    (c == '`' || c == '"').then_some((c, 0, false))
                }
            };
        }
        out
    }

    /// Decodes one server frame (replies, events, notifications, welcome).
    ///
    /// # Errors
    /// The serde_json error for anything that is not a known server frame.
    ///
    /// ```
    /// use guts_realtime::{decode_server_frame, ServerMessage};
    /// let f = decode_server_frame(r#"{"type":"pong","id":1}"#).unwrap();
    /// assert_eq!(f.message, ServerMessage::Pong);
    /// ```
    pub fn decode_server_frame(text: &str) -> Result<ServerFrame, serde_json::Error> {
        serde_json::from_str(text)
    }
}
