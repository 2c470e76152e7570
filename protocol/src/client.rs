//! A connected client as the hub sees it: its id, metadata, subscriptions and outbound queue.

use crate::error::RealtimeError;
use crate::frame::Frame;
use crate::queue::{PushError, Queue};
use crate::subscription::{Channel, ClientSubscriptions};
use parking_lot::Mutex;
use std::sync::Arc;

pub use crate::queue::{ClientReceiver, CloseReason, TryRecvError};

/// The hub's id of a connection (a UUID v4 string).
pub type ClientId = String;

/// What is known about a connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientMetadata {
    /// Unix time in seconds when it connected.
    pub connected_at: u64,
    /// The authenticated user, if any.
    pub user_id: Option<String>,
    /// Remote address.
    pub ip_address: Option<String>,
    /// User agent.
    pub user_agent: Option<String>,
}

impl ClientMetadata {
    /// Metadata stamped with the current time.
    pub fn now() -> Self {
        ClientMetadata {
            connected_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            ..Default::default()
        }
    }
}

/// One connection held by the hub: its id, metadata, outbound queue and channels. Shared as
/// `Arc<HubClient>` between the hub and the transport. (The client SDKs' `Client` is the other
/// end of the socket.)
#[derive(Debug)]
pub struct HubClient {
    /// The connection id.
    pub id: ClientId,
    /// What is known about the connection.
    pub metadata: ClientMetadata,
    pub(crate) key: u64,
    queue: Arc<Queue>,
    subscriptions: Mutex<ClientSubscriptions>,
    /// Who the connection is authenticated as now (for revocation by user).
    user: Mutex<Option<Arc<str>>>,
    /// Streams its subscribes made (capped by `HubConfig::max_channels_per_connection`).
    pub(crate) streams_made: std::sync::atomic::AtomicUsize,
}

/// The seed's name of [`HubClient`], kept so seed-era code compiles unchanged.
pub type Client = HubClient;

/// A client and its receiver with an outbound queue of `capacity` frames (for tests and custom
/// hubs; [`EventHub::connect`](crate::EventHub::connect) is the usual way).
pub fn create_client(id: impl Into<ClientId>, capacity: usize) -> (Arc<HubClient>, ClientReceiver) {
    let max_bytes = crate::HubConfig::default().max_queue_bytes;
    create_client_with(id.into(), 0, capacity, max_bytes, ClientMetadata::now())
}

pub(crate) fn create_client_with(
    id: ClientId,
    key: u64,
    capacity: usize,
    max_bytes: usize,
    metadata: ClientMetadata,
) -> (Arc<HubClient>, ClientReceiver) {
    let queue = Queue::new(capacity, max_bytes);
    let client = Arc::new(HubClient {
        id,
        metadata,
        key,
        queue: queue.clone(),
        subscriptions: Mutex::new(ClientSubscriptions::new()),
        user: Mutex::new(None),
        streams_made: Default::default(),
    });
    (client, ClientReceiver::new(queue))
}

impl HubClient {
    /// Queues one frame for this client.
    ///
    /// # Errors
    /// [`RealtimeError::SlowConsumer`] if the queue was full (it is now closed and the client
    /// must be disconnected), [`RealtimeError::ChannelClosed`] if it was already closed.
    pub fn send(&self, frame: impl Into<Frame>) -> Result<(), RealtimeError> {
        self.queue.push(frame.into()).map_err(|e| self.push_error(e))
    }

    pub(crate) fn push_error(&self, e: PushError) -> RealtimeError {
        match e {
            PushError::Full => RealtimeError::SlowConsumer(self.queue.capacity()),
            PushError::Closed => RealtimeError::ChannelClosed,
        }
    }

    pub(crate) fn queue(&self) -> &Queue {
        &self.queue
    }

    /// The user the connection is authenticated as now (`None`: anonymous, or the publish key).
    pub fn user(&self) -> Option<Arc<str>> {
        self.user.lock().clone()
    }

    /// Records who the connection is authenticated as (the server's rules do, after `auth`).
    pub fn set_user(&self, user: Option<&str>) {
        let mut u = self.user.lock();
        if u.as_deref() != user {
            *u = user.map(Arc::from);
        }
    }

    /// Why the client's queue was closed, if it was.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.queue.close_reason()
    }

    /// Whether frames can still be queued.
    pub fn is_open(&self) -> bool {
        self.queue.is_open()
    }

    /// Frames waiting in the queue.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Bytes waiting in the queue.
    pub fn queued_bytes(&self) -> usize {
        self.queue.bytes()
    }

    /// Adds a subscription (bookkeeping only; use the hub to subscribe for real).
    ///
    /// # Errors
    /// [`RealtimeError::SubscriptionLimit`] past the cap.
    pub fn subscribe(&self, channel: Channel) -> Result<bool, RealtimeError> {
        self.subscriptions.lock().subscribe(channel)
    }

    /// Removes a subscription; whether it was held.
    pub fn unsubscribe(&self, channel: &Channel) -> bool {
        self.subscriptions.lock().unsubscribe(channel)
    }

    /// Whether the channel is held.
    pub fn is_subscribed(&self, channel: &Channel) -> bool {
        self.subscriptions.lock().is_subscribed(channel)
    }

    /// Seed compatibility: whether a held channel matches the event channel (no kind routing).
    pub fn matches_event(&self, event_channel: &str) -> bool {
        self.subscriptions.lock().matches_event(event_channel)
    }

    /// Number of channels held.
    pub fn subscription_count(&self) -> usize {
        self.subscriptions.lock().count()
    }

    /// The channels held.
    pub fn channels(&self) -> Vec<Channel> {
        self.subscriptions.lock().channels().cloned().collect()
    }

    /// Drops every subscription (bookkeeping only).
    pub fn clear_subscriptions(&self) {
        self.subscriptions.lock().clear();
    }

    pub(crate) fn take_subscriptions(&self) -> Vec<Channel> {
        let mut s = self.subscriptions.lock();
        let v = s.channels().cloned().collect();
        s.clear();
        v
    }
}
