//! The native client's error type.

use guts_realtime::session::SessionError;

/// An error of the native client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL is not a `ws://` or `wss://` URL.
    #[error("invalid url {0:?}: expected ws:// or wss://")]
    InvalidUrl(String),
    /// Subscribe or unsubscribe refused locally (invalid channel, limit).
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The connection is closed for good; the text says why (terminal close code, bad token, or
    /// [`Client::close`](super::Client::close)).
    #[error("connection closed: {0}")]
    Closed(String),
}

impl Error {
    /// Whether this error means the client will not reconnect.
    pub fn is_closed(&self) -> bool {
        matches!(self, Error::Closed(_))
    }
}
