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
    #[cfg(feature = "json")]
    Publish {
        /// The channel.
        channel: String,
        /// The kind.
        event: crate::EventKind,
        /// The payload (`null` when absent).
        #[serde(default)]
        data: serde_json::Value,
    },
}

/// A client frame: a command plus the optional envelope fields `since` and `id`.
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
    /// Echoed by the reply.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub id: Option<RequestId>,
}

impl From<ClientCommand> for ClientFrame {
    fn from(command: ClientCommand) -> Self {
        ClientFrame { command, since: None, id: None }
    }
}

impl ClientFrame {
    /// The JSON text of this frame, keys in the order `type`, command fields, `since`, `id`.
    ///
    /// ```
    /// use guts_realtime::{ClientCommand, ClientFrame, RequestId, Since};
    /// let f = ClientFrame {
    ///     command: ClientCommand::Subscribe { channel: "repo:a/b".into() },
    ///     since: Some(Since { seq: 7, epoch: "e1".into() }),
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
            ClientCommand::Publish { channel, event, data } => {
                out.push_str("\"publish\",\"channel\":");
                push_json_str(&mut out, channel);
                out.push_str(",\"event\":");
                push_json_str(&mut out, event.wire_name());
                out.push_str(",\"data\":");
                out.push_str(&data.to_string());
            }
        }
        if let Some(since) = &self.since {
            out.push_str(",\"since\":{\"seq\":");
            push_u64(&mut out, since.seq);
            out.push_str(",\"epoch\":");
            push_json_str(&mut out, &since.epoch);
            out.push('}');
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
    use crate::event::RealtimeEvent;
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
        },
        /// An event frame (see [`RealtimeEvent`]).
        Event(RealtimeEvent),
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
                ServerMessage::Event(_) => "event",
                ServerMessage::Notification { .. } => "notification",
            }
        }

        /// Encodes this message with an echoed `id`.
        pub fn encode_with_id(&self, id: Option<&RequestId>) -> Frame {
            Frame::from_string(serde_json::to_string(&WithId { message: self, id }).unwrap_or_else(
                |e| format!("{{\"type\":\"error\",\"message\":{:?}}}", e.to_string()),
            ))
        }

        /// Encodes this message.
        pub fn encode(&self) -> Frame {
            self.encode_with_id(None)
        }
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
                ServerMessage::Published { channel, seq } => {
                    m.serialize_entry("channel", channel)?;
                    m.serialize_entry("seq", seq)?;
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
                ServerMessage::Notification { channel, notification, seq } => {
                    m.serialize_entry("channel", channel)?;
                    m.serialize_entry("notification", notification)?;
                    if let Some(seq) = seq {
                        m.serialize_entry("seq", seq)?;
                    }
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
        },
        Event(RealtimeEvent),
        Notification {
            channel: String,
            notification: Notification,
            #[serde(default)]
            seq: Option<u64>,
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
                Tagged::Published { channel, seq } => ServerMessage::Published { channel, seq },
                Tagged::Event(e) => ServerMessage::Event(e),
                Tagged::Notification { channel, notification, seq } => {
                    ServerMessage::Notification { channel, notification, seq }
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
