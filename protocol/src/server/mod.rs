//! The hub side of a connection, without I/O (feature `hub`): who a connection is
//! ([`Identity`], proved by a [`TokenVerifier`]), what it may do ([`Authorizer`]), its rate limit
//! ([`RateLimit`]) and the rules of the connection itself ([`ServerConnection`], whose requests
//! [`execute`] carries out against an [`Engine`](crate::Engine)). The hub server
//! (`guts-realtime-server`) drives it over WebSocket, the tests in virtual time.

mod authorize;
mod connection;
mod identity;
mod rate;

pub use authorize::{
    authorize_publish_as, authorize_read, default_authorize_publish, default_authorize_subscribe,
    AuthorizeFuture, Authorizer, DefaultAuthorizer, RepoAccess,
};
pub use connection::{
    execute, publish, Close, ConnectionConfig, ConnectionCounters, ConnectionShared, Outcome,
    Request, ServerConnection,
};
pub use identity::{Identity, TokenVerifier, User, Verified};
pub use rate::{RateLimit, TokenBucket};
