//! # Guts Real-time
//!
//! The wire protocol, channels, reference in-memory hub and sans-IO client session of the Guts
//! code-collaboration platform's real-time layer.
//!
//! - [`wire`]: every frame shape ([`ClientCommand`], [`ClientFrame`], [`ServerMessage`],
//!   [`ServerFrame`]) with its one encoder and decoder. The wire format is the seed's
//!   (internally tagged `"type"`, snake_case) plus optional additions: `id`, error `code`,
//!   `auth`, `publish`, `welcome`, `seq`, `since`/`recovered`, notifications
//!   (see `docs/PROTOCOL.md`).
//! - [`subscription`]: the strict channel grammar and the routing rule ([`Channel::receives`])
//!   shared by the hub and the SDKs.
//! - [`close`]: the close-code registry (reconnect / reconnect after a hint / terminal).
//! - [`hub`] (feature `hub`, default): the reference [`EventHub`]: serialize once, per-stream
//!   locks, bounded queues, seq and history for recovery, notifications.
//!
//! Features: `hub` (default; implies `json`), `json` (serde_json encode/decode of server
//! frames; implies `std`) and `std` (the standard library: `std::error::Error` impls,
//! [`ClientSubscriptions`]). With no features the crate is `no_std` (with `alloc`), has no
//! serde_json and no tokio, and builds for `wasm32-unknown-unknown`: the browser SDK's wasm
//! carries no `std` panic or formatting machinery.
//!
//! ## Channel types
//! - `repo:owner/name` — all events of a repository
//! - `repo:owner/name/prs` — pull-request events only
//! - `repo:owner/name/issues` — issue events only
//! - `repo:owner/name/prs/N`, `repo:owner/name/issues/N` — one pull request or issue (item
//!   channels: presence, signals)
//! - `user:username` — user notifications
//! - `org:orgname` — organization events
//!
//! ## Example
//! The seed crate's example, unchanged:
//!
//! ```
//! # #[cfg(feature = "hub")] {
//! use guts_realtime::{EventHub, EventKind};
//! use std::sync::Arc;
//!
//! // Create the event hub
//! let hub = Arc::new(EventHub::new());
//!
//! // Connect a client
//! let (client, receiver) = hub.connect().unwrap();
//!
//! // Subscribe to a repository
//! hub.handle_command(
//!     &client,
//!     guts_realtime::ClientCommand::Subscribe {
//!         channel: "repo:alice/myrepo".to_string(),
//!     },
//! ).unwrap();
//!
//! // Emit an event
//! hub.emit_event(
//!     "repo:alice/myrepo".to_string(),
//!     EventKind::Push,
//!     serde_json::json!({
//!         "ref": "refs/heads/main",
//!         "before": "abc123",
//!         "after": "def456"
//!     }),
//! );
//! # }
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs, missing_debug_implementations)]

extern crate alloc;

/// What the `std` prelude gives, for the `no_std` build (the browser SDK's wasm).
#[allow(unused_imports)]
mod prelude {
    pub(crate) use alloc::borrow::ToOwned;
    pub(crate) use alloc::boxed::Box;
    pub(crate) use alloc::format;
    pub(crate) use alloc::string::{String, ToString};
    pub(crate) use alloc::vec;
    pub(crate) use alloc::vec::Vec;
}

pub mod close;
pub mod config;
pub mod error;
pub mod event;
pub mod frame;
pub mod notification;
pub mod session;
pub mod subscription;
pub mod wire;

#[cfg(feature = "hub")]
pub mod client;
#[cfg(feature = "hub")]
pub mod engine;
#[cfg(feature = "hub")]
pub mod histogram;
#[cfg(feature = "hub")]
pub mod hub;
#[cfg(feature = "hub")]
mod queue;
#[cfg(feature = "hub")]
pub mod server;

pub use close::{CloseAction, CloseCode};
pub use config::InvalidConfig;
pub use error::{ErrorCode, RealtimeError};
pub use event::{
    CommentEventData, EventKind, IssueEventData, KindFamily, PullRequestEventData, PushEventData,
    ReviewEventData,
};
pub use frame::Frame;
pub use notification::{
    Notification, NotificationMetadata, NotificationPreferences, NotificationType,
};
#[cfg(feature = "std")]
pub use subscription::ClientSubscriptions;
pub use subscription::{
    Channel, ChannelError, ChannelErrorKind, ChannelType, RepoFilter, Segment,
    MAX_SUBSCRIPTIONS_PER_CLIENT,
};
pub use wire::{ClientCommand, ClientFrame, RequestId, Since};

#[cfg(feature = "json")]
pub use event::{EventPayload, RealtimeEvent, UnknownEvent};
#[cfg(feature = "json")]
pub use wire::{
    decode_client_frame, decode_server_frame, DecodeError, PresenceMember, ServerFrame,
    ServerMessage,
};

#[cfg(feature = "hub")]
pub use client::{Client, ClientId, ClientReceiver, HubClient};
#[cfg(feature = "hub")]
pub use engine::Engine;
#[cfg(feature = "hub")]
pub use hub::{
    ChannelActivity, Delivered, EventHub, HistoryPage, HubConfig, HubMetrics, HubStats,
    NotifyOutcome, Published, Recovery, Sequenced, SubscribeOptions, Subscription,
};
