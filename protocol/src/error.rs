//! Errors of the protocol crate and the machine-readable error codes carried by `error` frames.
//!
//! [`RealtimeError`] is what the hub's and the parsers' fallible operations return; its `Display`
//! strings are the seed's (`invalid channel: …`, `subscription limit exceeded: max 100 subscriptions`)
//! so logs and `error` frames read as before. [`ErrorCode`] is the stable wire code that an `error`
//! frame carries next to the human message; [`RealtimeError::code`] maps one to the other.

use crate::prelude::*;
use core::fmt;
use serde::{Deserialize, Serialize};

/// Result alias of this crate.
pub type Result<T, E = RealtimeError> = core::result::Result<T, E>;

/// An error of the realtime layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RealtimeError {
    /// The channel string does not follow the channel grammar; the text says why.
    /// Not retryable: fix the channel.
    #[error("invalid channel: {0}")]
    InvalidChannel(String),
    /// The client already holds the maximum number of subscriptions (re-subscribing a held
    /// channel never fails with this).
    #[error("subscription limit exceeded: max {0} subscriptions")]
    SubscriptionLimit(usize),
    /// No client with this id is connected.
    #[error("client not found: {0}")]
    ClientNotFound(String),
    /// A frame could not be queued (kept from the seed for compatibility).
    #[error("failed to send message: {0}")]
    SendFailed(String),
    /// The hub already holds its maximum number of connections. Retry later.
    #[error("connection limit reached: max {0} connections")]
    ConnectionLimit(usize),
    /// The client's outbound queue is full: it is being disconnected with
    /// [`CloseCode::SLOW_CONSUMER`](crate::CloseCode::SLOW_CONSUMER) and should reconnect and recover.
    #[error("slow consumer: outbound queue full ({0} frames)")]
    SlowConsumer(usize),
    /// A frame that is not a valid command (bad JSON, unknown `type`, missing field, wrong type).
    #[error("Invalid message format: {0}")]
    InvalidMessage(String),
    /// The connection is not allowed to do this (e.g. read another user's channel).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The token is missing, malformed, badly signed or expired. Terminal for the connection.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// Too many commands in too short a time. Slow down.
    #[error("rate limited: {0}")]
    RateLimited(String),
    /// A backend the hub needs is down (the broker, an authorization service): the command was
    /// not executed. Retry later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The connection's token expired without a new one (`auth` on the open socket): the server
    /// closes with 4002 right after, and the client reconnects with a fresh token.
    #[error("token expired: {0}")]
    TokenExpired(String),
    /// A JSON (de)serialization failure.
    #[cfg(feature = "json")]
    #[error("serialization error: {0}")]
    Serialization(#[from] serde_json::Error),
    /// The client's receiving side is gone.
    #[error("channel closed")]
    ChannelClosed,
}

impl RealtimeError {
    /// The wire code an `error` frame carries for this error.
    ///
    /// ```
    /// use guts_realtime::{ErrorCode, RealtimeError};
    /// assert_eq!(RealtimeError::SubscriptionLimit(100).code(), ErrorCode::SubscriptionLimit);
    /// ```
    pub fn code(&self) -> ErrorCode {
        match self {
            RealtimeError::InvalidChannel(_) => ErrorCode::InvalidChannel,
            RealtimeError::SubscriptionLimit(_) => ErrorCode::SubscriptionLimit,
            RealtimeError::Forbidden(_) => ErrorCode::Forbidden,
            RealtimeError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            RealtimeError::RateLimited(_) | RealtimeError::ConnectionLimit(_) => {
                ErrorCode::RateLimited
            }
            RealtimeError::Unavailable(_) => ErrorCode::Unavailable,
            RealtimeError::TokenExpired(_) => ErrorCode::TokenExpired,
            _ => ErrorCode::InvalidMessage,
        }
    }
}

/// Machine-readable code of an `error` frame (`"code"` on the wire, snake_case).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Malformed JSON, unknown `type`, missing or mistyped field, binary frame.
    InvalidMessage,
    /// The channel does not follow the grammar.
    InvalidChannel,
    /// More than [`MAX_SUBSCRIPTIONS_PER_CLIENT`](crate::MAX_SUBSCRIPTIONS_PER_CLIENT) subscriptions.
    SubscriptionLimit,
    /// Not allowed for this identity; the connection stays open.
    Forbidden,
    /// Bad or expired token; the server closes with 4001 right after.
    Unauthenticated,
    /// Too many commands; slow down.
    RateLimited,
    /// A backend of the hub (broker, authorization service) is down; retry later.
    Unavailable,
    /// The token expired and no new one came; the server closes with 4002 right after (the
    /// client reconnects with a fresh token).
    TokenExpired,
}

impl ErrorCode {
    /// All codes, in documentation order.
    pub const ALL: [ErrorCode; 8] = [
        ErrorCode::InvalidMessage,
        ErrorCode::InvalidChannel,
        ErrorCode::SubscriptionLimit,
        ErrorCode::Forbidden,
        ErrorCode::Unauthenticated,
        ErrorCode::RateLimited,
        ErrorCode::Unavailable,
        ErrorCode::TokenExpired,
    ];

    /// The wire name (`"invalid_channel"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidMessage => "invalid_message",
            ErrorCode::InvalidChannel => "invalid_channel",
            ErrorCode::SubscriptionLimit => "subscription_limit",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::TokenExpired => "token_expired",
        }
    }

    /// Parses a wire name; `None` for a code this version does not know.
    pub fn from_wire(s: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
