//! # guts-realtime-native
//!
//! The native (tokio) SDK of guts-realtime:
//! - [`client`]: a reconnecting subscriber, the tokio-tungstenite driver of the protocol crate's
//!   sans-IO [`Session`](guts_realtime::session::Session). Every rule of behaviour (backoff,
//!   heartbeat, resubscribe, recovery, dispatch) lives in the session; this crate only does
//!   sockets, timers and channels.
//! - [`publisher`]: publishing from backend services over the hub's HTTP API, with retries that
//!   never publish twice (one idempotency key per publish).
//!
//! The hub server that puts an engine on the network is the crate `guts-realtime-server`.
#![warn(missing_docs, missing_debug_implementations)]

pub mod client;
pub mod publisher;

pub use client::{
    Client, ClientBuilder, Error, History, HubError, Item, SubscribeOptions, Subscription,
};
pub use guts_realtime;
pub use publisher::{Notified, PublishError, Published, Publisher, PublisherBuilder};
/// The TLS library of `wss://` connections ([`ClientBuilder::tls`]), re-exported so versions match.
pub use rustls;
