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
    /// The connection was closed for good by the hub with this close code (4001 for a refused
    /// token, 1009, 4003, …); the text says why.
    #[error("connection closed ({0}): {1}")]
    ClosedWith(u16, String),
    /// The first connection was not established within
    /// [`ClientBuilder::connect_timeout`](super::ClientBuilder::connect_timeout).
    #[error("not connected within {0:?}")]
    ConnectTimeout(std::time::Duration),
    /// A request (presence, history, signal) was refused by the hub (`code`), or got no answer
    /// in time (`None`).
    #[error("request failed: {message}")]
    Request {
        /// The hub's error code (`None`: timed out, or the client closed).
        code: Option<guts_realtime::ErrorCode>,
        /// What happened.
        message: String,
    },
}

impl Error {
    /// The close code of a terminal close by the hub, if that is what this error is.
    pub fn close_code(&self) -> Option<u16> {
        match self {
            Error::ClosedWith(code, _) => Some(*code),
            _ => None,
        }
    }

    /// Whether this error means the client will not reconnect.
    pub fn is_closed(&self) -> bool {
        matches!(self, Error::Closed(_) | Error::ClosedWith(..))
    }
}
