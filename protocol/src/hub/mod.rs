//! The reference in-memory [`EventHub`]: connections, subscriptions, fan-out, history and recovery.
//!
//! Design (the seed's weaknesses, fixed):
//! - **Serialize once.** An event is encoded into one [`Frame`] and every recipient's queue gets a
//!   clone of it (a reference-count increment).
//! - **No global lock across fan-out.** Channels of one repository form a *stream* with its own
//!   mutex; publishing locks only that stream. Subscribers are indexed per stream and slot
//!   (`repo:o/n`, `/prs`, `/issues`), so emit cost is proportional to recipients.
//! - **Bounded queues** with the slow-consumer policy of the `queue` module (a client over its
//!   limit is closed as a slow consumer).
//! - **Atomic connection cap** (no check-then-insert race).
//! - **Per-stream `seq` and bounded history** (count and age, [`HubConfig`]) so a subscribe with
//!   `since` replays what was missed, in order, before any live event — or says
//!   `recovered:false` when it cannot.
//!
//! Subscribe semantics: re-subscribing a held channel succeeds (even at the cap), does not count as
//! a new subscription, and answers `subscribed` again (replaying from `since` if given).
//! Unsubscribing a channel that is not held answers `unsubscribed` and changes nothing.
//!
//! `seq` numbers come from one hub-wide counter taken under the stream's lock: strictly
//! increasing within every stream, and never reused even if an idle stream is evicted.
//!
//! **Behind a broker** (several hubs sharing fan-out and history, e.g. through Redis) the hub does
//! not number events itself: the broker assigns each event its seq once, cluster-wide, and every
//! node hands the already-encoded frame to [`EventHub::deliver`], which fans it out locally. A
//! subscribe then takes its history from the broker ([`EventHub::subscribe_sequenced`] with a
//! [`Recovery`]) and keeps the same guarantee: the `subscribed` reply and the replay come before
//! any live event of the stream, with no gap and no duplicate between them.

mod config;
mod fan_out;
mod history;
mod outcome;
mod presence;
mod registry;
mod revoke;
mod seed;
mod signal;
mod slots;
mod streams;
mod subscribe;

use streams::{Maker, Stream, Tombstones};

pub use config::{HubConfig, HubMetrics, HubStats};
pub use history::HistoryPage;
pub use outcome::{Delivered, NotifyOutcome, Published, Recovery, Sequenced, Subscription};
pub use subscribe::SubscribeOptions;

use crate::client::{
    create_client_with, ClientId, ClientMetadata, ClientReceiver, CloseReason, HubClient,
};
use crate::error::RealtimeError;
use crate::event::{EventKind, RealtimeEvent};
use crate::frame::Frame;
use crate::histogram::Histogram;
use crate::notification::{Notification, NotificationPreferences};
use crate::queue::PushError;
use crate::subscription::{Channel, RepoFilter};
pub use crate::wire::{ClientCommand, ServerMessage};
use crate::wire::{ClientFrame, RequestId, Since};
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::broadcast;

/// Capacity of the [`EventHub::subscribe_events`] broadcast channel.
pub const BROADCAST_CAPACITY: usize = 1024;

#[derive(Default)]
struct Counters {
    total_connections: AtomicU64,
    rejected_connections: AtomicU64,
    subscriptions: AtomicU64,
    total_subscriptions: AtomicU64,
    events: AtomicU64,
    delivered: AtomicU64,
    replayed: AtomicU64,
    queue_drops: AtomicU64,
    slow_consumers: AtomicU64,
    history: AtomicU64,
    gap_disconnects: AtomicU64,
}

/// The in-memory hub. Thread-safe; share it as `Arc<EventHub>`.
///
/// ```
/// use guts_realtime::{EventHub, EventKind};
/// let hub = EventHub::new();
/// let (client, mut rx) = hub.connect().unwrap();
/// hub.subscribe(&client, "repo:alice/app/prs", None, None).unwrap();
/// let _subscribed = rx.try_recv().unwrap();
/// let p = hub.publish("repo:alice/app", EventKind::PrOpened, serde_json::json!({"number": 1})).unwrap();
/// assert_eq!(p.delivered, 1);
/// let frame = rx.try_recv().unwrap();
/// assert!(frame.as_str().starts_with(r#"{"type":"event","channel":"repo:alice/app","event":"pr_opened""#));
/// ```
pub struct EventHub {
    config: HubConfig,
    epoch: RwLock<String>,
    clients: RwLock<HashMap<ClientId, Arc<HubClient>>>,
    streams: RwLock<HashMap<String, Arc<Mutex<Stream>>>>,
    preferences: RwLock<HashMap<String, NotificationPreferences>>,
    connections: AtomicUsize,
    next_key: AtomicU64,
    next_seq: AtomicU64,
    counters: Counters,
    event_tx: broadcast::Sender<RealtimeEvent>,
    /// Streams without subscribers, least recently used first (stale entries skipped).
    idle: Mutex<VecDeque<(String, u64)>>,
    /// Streams made by subscribers that nothing was published to yet.
    subscriber_streams: AtomicUsize,
    /// Where freed and evicted streams stopped.
    tombstones: Mutex<Tombstones>,
    /// Streams made by subscribers, oldest first (entries of streams since published or gone
    /// are skipped).
    made: Mutex<VecDeque<String>>,
    /// Told of every revocation applied here ([`EventHub::on_revoke`]).
    revoke_hook: std::sync::OnceLock<revoke::RevokeHook>,
    /// Told of every change of this node's presence counts ([`EventHub::on_presence`]).
    presence_hook: std::sync::OnceLock<presence::PresenceHook>,
    /// How long queueing one event to its local subscribers took.
    fan_out_time: Histogram,
}

/// A stream's activity on this node ([`EventHub::channel_activity`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ChannelActivity {
    /// The stream's channel (a repository, user or org channel without filter).
    pub channel: String,
    /// Subscriptions to its channels here.
    pub subscribers: usize,
    /// Events fanned out on it here.
    pub events: u64,
}

impl std::fmt::Debug for EventHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventHub")
            .field("epoch", &*self.epoch.read())
            .field("connections", &self.connection_count())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Default for EventHub {
    fn default() -> Self {
        Self::new()
    }
}

fn new_epoch() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_owned()
}

impl EventHub {
    /// A hub with the default [`HubConfig`] and a fresh random epoch.
    pub fn new() -> Self {
        Self::with_config(HubConfig::default())
    }

    /// A hub with this configuration, used as given ([`HubConfig::validate`] tells what makes
    /// sense: a queue of zero frames closes every client as a slow consumer, room for zero
    /// streams refuses every subscribe and publish).
    pub fn with_config(config: HubConfig) -> Self {
        Self::with_config_and_epoch(config, new_epoch())
    }

    /// A hub with a given epoch (e.g. restored together with its history).
    pub fn with_config_and_epoch(config: HubConfig, epoch: String) -> Self {
        let (event_tx, _) = broadcast::channel(BROADCAST_CAPACITY);
        EventHub {
            config,
            epoch: RwLock::new(epoch),
            clients: RwLock::new(HashMap::new()),
            streams: RwLock::new(HashMap::new()),
            preferences: RwLock::new(HashMap::new()),
            connections: AtomicUsize::new(0),
            next_key: AtomicU64::new(1),
            next_seq: AtomicU64::new(0),
            counters: Counters::default(),
            event_tx,
            revoke_hook: std::sync::OnceLock::new(),
            presence_hook: std::sync::OnceLock::new(),
            fan_out_time: Histogram::new(crate::histogram::LATENCY_BUCKETS),
            idle: Mutex::new(VecDeque::new()),
            subscriber_streams: AtomicUsize::new(0),
            tombstones: Mutex::new(Tombstones::default()),
            made: Mutex::new(VecDeque::new()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// The epoch: `since` positions are honoured only within it.
    pub fn epoch(&self) -> String {
        self.epoch.read().clone()
    }

    /// Starts another epoch (a broker lost its history): if `epoch` differs from the current
    /// one, every stream (position and history) is dropped and every client is disconnected, so
    /// it reconnects, sees the new epoch in its `welcome` and reports a gap for each channel.
    /// Returns whether the epoch changed.
    pub fn change_epoch(&self, epoch: &str) -> bool {
        {
            let mut e = self.epoch.write();
            if *e == epoch {
                return false;
            }
            *e = epoch.to_owned();
        }
        let dropped: Vec<Arc<Mutex<Stream>>> = {
            let mut streams = self.streams.write();
            self.idle.lock().clear();
            self.subscriber_streams.store(0, Relaxed);
            self.tombstones.lock().clear();
            self.made.lock().clear();
            streams.drain().map(|(_, s)| s).collect()
        };
        for stream in dropped {
            let mut s = stream.lock();
            s.evicted = true;
            self.counters.history.fetch_sub(s.history.len() as u64, Relaxed);
            s.history.clear();
        }
        let clients: Vec<String> = self.clients.read().keys().cloned().collect();
        for id in clients {
            self.disconnect(&id);
        }
        true
    }

    /// The seed's counters.
    pub fn stats(&self) -> HubStats {
        HubStats {
            current_connections: self.connection_count(),
            total_connections: self.counters.total_connections.load(Relaxed),
            total_subscriptions: self.counters.total_subscriptions.load(Relaxed),
            total_events: self.counters.events.load(Relaxed),
        }
    }

    /// How long fanning one event out to this node's subscribers took (queueing its frame to
    /// each; the sockets are written later), per event.
    pub fn fan_out_time(&self) -> &Histogram {
        &self.fan_out_time
    }

    /// Every counter.
    pub fn metrics(&self) -> HubMetrics {
        let c = &self.counters;
        HubMetrics {
            connections: self.connection_count(),
            total_connections: c.total_connections.load(Relaxed),
            rejected_connections: c.rejected_connections.load(Relaxed),
            subscriptions: c.subscriptions.load(Relaxed),
            total_subscriptions: c.total_subscriptions.load(Relaxed),
            events_published: c.events.load(Relaxed),
            frames_delivered: c.delivered.load(Relaxed),
            frames_replayed: c.replayed.load(Relaxed),
            queue_drops: c.queue_drops.load(Relaxed),
            slow_consumer_disconnects: c.slow_consumers.load(Relaxed),
            streams: self.streams.read().len(),
            history_size: c.history.load(Relaxed),
            gap_disconnects: c.gap_disconnects.load(Relaxed),
        }
    }
}
