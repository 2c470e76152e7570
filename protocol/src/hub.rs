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

use crate::client::{
    create_client_with, Client, ClientId, ClientMetadata, ClientReceiver, CloseReason,
};
use crate::error::RealtimeError;
use crate::event::{EventKind, RealtimeEvent};
use crate::frame::Frame;
use crate::notification::{Notification, NotificationPreferences};
use crate::queue::PushError;
use crate::subscription::{Channel, RepoFilter};
pub use crate::wire::{ClientCommand, ServerMessage};
use crate::wire::{ClientFrame, RequestId, Since};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// Capacity of the [`EventHub::subscribe_events`] broadcast channel.
pub const BROADCAST_CAPACITY: usize = 1024;

/// Limits of an [`EventHub`]. Every field has a default; setters chain.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HubConfig {
    /// Most connections at once. The default value is 10 000, the seed's cap.
    pub max_connections: usize,
    /// Frames a client's outbound queue holds before the client is disconnected as a slow
    /// consumer. The default value is 4096: far above one replay ([`HubConfig::history_size`])
    /// plus live traffic, small enough that a stalled client costs at most a few MB.
    pub queue_capacity: usize,
    /// Events kept per stream for recovery. The default value is 512.
    pub history_size: usize,
    /// How long an event stays recoverable. The default value is 10 minutes.
    pub history_ttl: Duration,
    /// Streams (repositories, users, orgs) kept at once. When full, a new stream evicts the
    /// stream without subscribers that was published to least recently (its history is lost:
    /// `since` into it answers `recovered:false`); if every stream has subscribers, the publish
    /// fails. The default value is 100 000.
    pub max_streams: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            max_connections: 10_000,
            queue_capacity: 4096,
            history_size: 512,
            history_ttl: Duration::from_secs(600),
            max_streams: 100_000,
        }
    }
}

impl HubConfig {
    /// Sets [`HubConfig::max_connections`].
    pub fn max_connections(mut self, v: usize) -> Self {
        self.max_connections = v;
        self
    }
    /// Sets [`HubConfig::queue_capacity`].
    pub fn queue_capacity(mut self, v: usize) -> Self {
        self.queue_capacity = v.max(1);
        self
    }
    /// Sets [`HubConfig::history_size`].
    pub fn history_size(mut self, v: usize) -> Self {
        self.history_size = v;
        self
    }
    /// Sets [`HubConfig::history_ttl`].
    pub fn history_ttl(mut self, v: Duration) -> Self {
        self.history_ttl = v;
        self
    }
    /// Sets [`HubConfig::max_streams`].
    pub fn max_streams(mut self, v: usize) -> Self {
        self.max_streams = v.max(1);
        self
    }
}

/// The seed's counters, as served by `GET /api/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HubStats {
    /// Connections now.
    pub current_connections: usize,
    /// Connections ever accepted.
    pub total_connections: u64,
    /// New subscriptions ever made (a duplicate subscribe does not count).
    pub total_subscriptions: u64,
    /// Events and notifications ever published.
    pub total_events: u64,
}

/// Everything the hub counts, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HubMetrics {
    /// Connections now.
    pub connections: usize,
    /// Connections ever accepted.
    pub total_connections: u64,
    /// Connections refused at the cap.
    pub rejected_connections: u64,
    /// Subscriptions held now.
    pub subscriptions: u64,
    /// New subscriptions ever made.
    pub total_subscriptions: u64,
    /// Events and notifications published.
    pub events_published: u64,
    /// Frames queued to clients by fan-out (one per recipient).
    pub frames_delivered: u64,
    /// Frames replayed by recovery.
    pub frames_replayed: u64,
    /// Frames refused because a queue was full (each also disconnects its client).
    pub queue_drops: u64,
    /// Clients disconnected as slow consumers.
    pub slow_consumer_disconnects: u64,
    /// Streams held now.
    pub streams: usize,
    /// Events held in history now, over all streams.
    pub history_size: u64,
    /// Clients disconnected because events of a stream they read were lost on the way to this
    /// hub ([`EventHub::deliver`] saw a seq jump); each reconnects and recovers.
    pub gap_disconnects: u64,
}

/// The outcome of a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Published {
    /// The seq the event got in its stream.
    pub seq: u64,
    /// How many clients it was queued to.
    pub delivered: usize,
}

/// The outcome of a subscribe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The canonical channel.
    pub channel: Channel,
    /// Whether the channel is new for this client.
    pub new: bool,
    /// The stream's last seq when the subscription took effect.
    pub seq: u64,
    /// With `since`: whether every missed event is being replayed.
    pub recovered: Option<bool>,
    /// Events replayed.
    pub replayed: usize,
}

/// The outcome of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyOutcome {
    /// Published on `user:<id>`.
    Delivered(Published),
    /// The user's preferences disable this type; nothing was published.
    Suppressed,
}

/// An event numbered outside this hub (by a broker), already encoded: the unit of
/// [`EventHub::deliver`] and of a [`Recovery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequenced {
    /// Its seq in its stream. Within one stream a broker numbers events consecutively
    /// (`n`, `n + 1`, ...), so a jump means events were lost.
    pub seq: u64,
    /// The channel it was published on.
    pub channel: Channel,
    /// Its kind (`None` for notifications), for routing to filtered channels.
    pub kind: Option<EventKind>,
    /// The complete frame, `seq` included.
    pub frame: Frame,
}

/// What a history source (a broker) answered for a subscribe, read **after** this hub started
/// receiving the stream's live events (so every event after `head` reaches
/// [`EventHub::deliver`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The stream's last seq in the source.
    pub head: u64,
    /// For a subscribe with `since`: whether `events` holds every event of the stream with a seq
    /// in `(since.seq, head]` (false: some are gone, the client has a gap).
    pub complete: bool,
    /// Those events, in seq order.
    pub events: Vec<Sequenced>,
}

/// The outcome of [`EventHub::deliver`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Clients the frame was queued to.
    pub delivered: usize,
    /// Clients disconnected because they missed events before this one (a seq jump).
    pub gap_disconnects: usize,
    /// Whether the event was older than the stream's position here (a duplicate) and ignored.
    pub stale: bool,
}

struct HistoryEntry {
    seq: u64,
    at: Instant,
    channel: Channel,
    kind: Option<EventKind>,
    frame: Frame,
}

/// A subscriber of a stream slot.
struct Member {
    client: Arc<Client>,
    /// Live events up to this seq were already queued to it (by the `subscribed` reply and its
    /// replay); [`EventHub::deliver`] skips them. 0 for the hub's own publishes.
    min_seq: u64,
}

/// A stream locked through its `Arc` (the guard owns its reference).
type StreamGuard = parking_lot::ArcMutexGuard<parking_lot::RawMutex, Stream>;

/// One stream: the channels of a repository (or one user / org channel).
struct Stream {
    /// Subscribers per slot: 0 = the channel itself, 1 = `/prs`, 2 = `/issues`.
    slots: [HashMap<u64, Member>; 3],
    history: VecDeque<HistoryEntry>,
    /// Every event of this stream with seq > floor is in `history`.
    floor: u64,
    head: u64,
    last_publish: Instant,
    /// Set (under the stream's lock) when the stream is evicted: whoever fetched it before the
    /// eviction and locks it afterwards must fetch the live stream again instead.
    evicted: bool,
}

impl Stream {
    fn subscriber_count(&self) -> usize {
        self.slots.iter().map(HashMap::len).sum()
    }

    fn trim(&mut self, now: Instant, cfg: &HubConfig) -> usize {
        let mut removed = 0;
        while let Some(front) = self.history.front() {
            if self.history.len() > cfg.history_size
                || now.duration_since(front.at) > cfg.history_ttl
            {
                self.floor = front.seq;
                self.history.pop_front();
                removed += 1;
            } else {
                break;
            }
        }
        removed
    }
}

fn slot(channel: &Channel) -> usize {
    match channel.repo_filter() {
        None => 0,
        Some(RepoFilter::Prs) => 1,
        Some(RepoFilter::Issues) => 2,
    }
}

/// What a fan-out left to do once the stream's lock is released.
#[derive(Default)]
struct FanOut {
    delivered: usize,
    failed: Vec<(Arc<Client>, PushError)>,
    lagging: Vec<Arc<Client>>,
}

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
    clients: RwLock<HashMap<ClientId, Arc<Client>>>,
    streams: RwLock<HashMap<String, Arc<Mutex<Stream>>>>,
    preferences: RwLock<HashMap<String, NotificationPreferences>>,
    connections: AtomicUsize,
    next_key: AtomicU64,
    next_seq: AtomicU64,
    counters: Counters,
    event_tx: broadcast::Sender<RealtimeEvent>,
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

    /// A hub with this configuration.
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
        let dropped: Vec<Arc<Mutex<Stream>>> =
            self.streams.write().drain().map(|(_, s)| s).collect();
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

    /// The `welcome` frame for a client.
    pub fn welcome(&self, client: &Client) -> ServerMessage {
        ServerMessage::Welcome { epoch: self.epoch(), client_id: client.id.clone() }
    }

    /// Registers a connection.
    ///
    /// # Errors
    /// [`RealtimeError::ConnectionLimit`] at [`HubConfig::max_connections`].
    pub fn connect(&self) -> Result<(Arc<Client>, ClientReceiver), RealtimeError> {
        self.connect_with(ClientMetadata::now())
    }

    /// Registers a connection with its metadata.
    ///
    /// # Errors
    /// [`RealtimeError::ConnectionLimit`] at [`HubConfig::max_connections`].
    pub fn connect_with(
        &self,
        metadata: ClientMetadata,
    ) -> Result<(Arc<Client>, ClientReceiver), RealtimeError> {
        let max = self.config.max_connections;
        if self.connections.fetch_update(Relaxed, Relaxed, |n| (n < max).then_some(n + 1)).is_err()
        {
            self.counters.rejected_connections.fetch_add(1, Relaxed);
            return Err(RealtimeError::ConnectionLimit(max));
        }
        let key = self.next_key.fetch_add(1, Relaxed);
        let id = uuid::Uuid::new_v4().to_string();
        let (client, rx) =
            create_client_with(id.clone(), key, self.config.queue_capacity, metadata);
        self.clients.write().insert(id, client.clone());
        self.counters.total_connections.fetch_add(1, Relaxed);
        Ok((client, rx))
    }

    /// Removes a connection and all its subscriptions; its receiver then yields `None`.
    /// Unknown ids are ignored.
    pub fn disconnect(&self, id: &str) {
        let removed = self.clients.write().remove(id);
        if let Some(client) = removed {
            self.connections.fetch_sub(1, Relaxed);
            client.queue().close(CloseReason::Disconnected);
            for ch in client.take_subscriptions() {
                self.remove_from_stream(&client, &ch);
                self.counters.subscriptions.fetch_sub(1, Relaxed);
            }
        }
    }

    /// The client with this id.
    pub fn get_client(&self, id: &str) -> Option<Arc<Client>> {
        self.clients.read().get(id).cloned()
    }

    /// Connections now.
    pub fn connection_count(&self) -> usize {
        self.connections.load(Relaxed)
    }

    fn stream(&self, key: &Channel, create: bool) -> Option<Arc<Mutex<Stream>>> {
        let name = key.to_string();
        if let Some(s) = self.streams.read().get(&name) {
            return Some(s.clone());
        }
        if !create {
            return None;
        }
        let mut streams = self.streams.write();
        if let Some(s) = streams.get(&name) {
            return Some(s.clone());
        }
        if streams.len() >= self.config.max_streams && !self.evict_idle_stream(&mut streams) {
            return None;
        }
        // Every event of the new stream gets a seq above `floor`, and `head` starts there too: a
        // client that subscribes now is told `seq: floor` and can later resume `since` it (a head
        // of 0 would be below the floor, so that resume would always be a false gap).
        let floor = self.next_seq.load(Relaxed);
        let s = Arc::new(Mutex::new(Stream {
            slots: Default::default(),
            history: VecDeque::new(),
            floor,
            head: floor,
            last_publish: Instant::now(),
            evicted: false,
        }));
        streams.insert(name, s.clone());
        Some(s)
    }

    fn evict_idle_stream(&self, streams: &mut HashMap<String, Arc<Mutex<Stream>>>) -> bool {
        // A few tries: the chosen victim may get a subscriber (from a thread that fetched it
        // before we took the map's write lock) between the scan and the eviction.
        for _ in 0..3 {
            let victim = streams
                .iter()
                .filter_map(|(k, s)| {
                    let s = s.try_lock()?;
                    (s.subscriber_count() == 0).then(|| (s.last_publish, k.clone()))
                })
                .min();
            let Some((_, k)) = victim else { return false };
            let Some(stream) = streams.get(&k).cloned() else { return false };
            let Some(mut s) = stream.try_lock() else { continue };
            if s.subscriber_count() != 0 {
                continue;
            }
            s.evicted = true;
            self.counters.history.fetch_sub(s.history.len() as u64, Relaxed);
            drop(s);
            streams.remove(&k);
            return true;
        }
        false
    }

    fn stream_limit(&self) -> RealtimeError {
        RealtimeError::RateLimited(format!(
            "stream limit reached: max {} streams",
            self.config.max_streams
        ))
    }

    /// Subscriptions on this hub to the channels of `channel`'s stream (the channel itself
    /// without its filter, and its filtered channels). A broker holds its subscription to a
    /// stream while this is above zero.
    pub fn stream_subscribers(&self, channel: &Channel) -> usize {
        self.stream(&channel.stream(), false).map_or(0, |s| s.lock().subscriber_count())
    }

    /// The last seq of `channel`'s stream on this hub (`None` if it holds no such stream).
    pub fn stream_head(&self, channel: &Channel) -> Option<u64> {
        self.stream(&channel.stream(), false).map(|s| s.lock().head)
    }

    fn remove_from_stream(&self, client: &Client, ch: &Channel) {
        if let Some(s) = self.stream(&ch.stream(), false) {
            s.lock().slots[slot(ch)].remove(&client.key);
        }
    }

    /// Subscribes a client and queues the `subscribed` reply (echoing `id`) followed, with
    /// `since`, by the replay of every missed event — all before any live event of the stream.
    ///
    /// Recovery succeeds (`recovered: true`) when `since.epoch` is this hub's epoch, the history
    /// still holds every event after `since.seq`, and the replay fits in the client's queue;
    /// otherwise nothing is replayed and the reply says `recovered: false` (the client has a gap).
    ///
    /// # Errors
    /// [`RealtimeError::InvalidChannel`], [`RealtimeError::SubscriptionLimit`], or
    /// [`RealtimeError::ChannelClosed`] / [`RealtimeError::SlowConsumer`] if the client is gone.
    pub fn subscribe(
        &self,
        client: &Arc<Client>,
        channel: &str,
        since: Option<&Since>,
        id: Option<&RequestId>,
    ) -> Result<Subscription, RealtimeError> {
        self.subscribe_inner(client, channel, since, Some(id))
    }

    /// Registers `channel` for `client` and locks the stream it reads, re-fetching a stream that
    /// was evicted in between; a new channel counts as a new subscription.
    fn enter_stream(
        &self,
        client: &Arc<Client>,
        channel: &str,
    ) -> Result<(Channel, bool, StreamGuard), RealtimeError> {
        let ch = Channel::parse(channel)?;
        if !client.is_open() {
            return Err(RealtimeError::ChannelClosed);
        }
        let new = client.subscribe(ch.clone())?;
        // Counted as soon as it is in the client's set: whoever takes it out again (this
        // function's undo, `unsubscribe` or `disconnect`) uncounts it, exactly once.
        if new {
            self.counters.subscriptions.fetch_add(1, Relaxed);
        }
        let undo = || {
            if new && client.unsubscribe(&ch) {
                self.counters.subscriptions.fetch_sub(1, Relaxed);
            }
        };
        match self.lock_stream(&ch.stream()) {
            // Checked again under the stream's lock: a `disconnect` that closed the client after
            // the first check either took this channel from its set (and removes the member once
            // it gets the lock) or closed the queue before this check (caught here), so no member
            // outlives its client.
            Ok(s) if client.is_open() => {
                if new {
                    self.counters.total_subscriptions.fetch_add(1, Relaxed);
                }
                Ok((ch, new, s))
            }
            Ok(s) => {
                drop(s);
                undo();
                Err(RealtimeError::ChannelClosed)
            }
            Err(e) => {
                undo();
                Err(e)
            }
        }
    }

    /// Locks the stream `key` (creating it), re-fetching it if it was evicted between the lookup
    /// and the lock, so nothing lands in a stream that is no longer in the map.
    fn lock_stream(&self, key: &Channel) -> Result<StreamGuard, RealtimeError> {
        loop {
            let live = self.stream(key, true).ok_or_else(|| self.stream_limit())?;
            let s = live.lock_arc();
            if !s.evicted {
                return Ok(s);
            }
        }
    }

    fn subscribe_inner(
        &self,
        client: &Arc<Client>,
        channel: &str,
        since: Option<&Since>,
        reply: Option<Option<&RequestId>>,
    ) -> Result<Subscription, RealtimeError> {
        let (ch, new, mut s) = self.enter_stream(client, channel)?;
        s.slots[slot(&ch)].insert(client.key, Member { client: client.clone(), min_seq: 0 });
        let head = s.head;
        let mut recovered = None;
        let mut replay: Vec<Frame> = Vec::new();
        if let Some(since) = since {
            let removed = s.trim(Instant::now(), &self.config);
            self.counters.history.fetch_sub(removed as u64, Relaxed);
            let ok = since.epoch == *self.epoch.read()
                && since.seq >= s.floor
                && since.seq <= head.max(s.floor);
            if ok {
                replay = s
                    .history
                    .iter()
                    .filter(|e| e.seq > since.seq && ch.receives(&e.channel, e.kind))
                    .map(|e| e.frame.clone())
                    .collect();
            }
            recovered = Some(ok);
        }
        let result = Subscription { channel: ch.clone(), new, seq: head, recovered, replayed: 0 };
        self.reply_subscribed(s, client, result, replay, reply)
    }

    /// Queues the `subscribed` reply and the replay to `client` while the stream's lock is held
    /// (so they precede any live event), or the reply alone with `recovered: false` when the
    /// replay does not fit in the client's queue.
    fn reply_subscribed(
        &self,
        s: StreamGuard,
        client: &Arc<Client>,
        mut result: Subscription,
        replay: Vec<Frame>,
        reply: Option<Option<&RequestId>>,
    ) -> Result<Subscription, RealtimeError> {
        let Some(id) = reply else { return Ok(result) };
        let (channel, head) = (result.channel.to_string(), result.seq);
        let msg = ServerMessage::Subscribed {
            channel: channel.clone(),
            seq: Some(head),
            recovered: result.recovered,
        };
        let mut frames = Vec::with_capacity(replay.len() + 1);
        frames.push(msg.encode_with_id(id));
        frames.extend(replay);
        match client.queue().push_all_or_none(&frames) {
            Ok(true) => result.replayed = frames.len() - 1,
            Ok(false) if frames.len() > 1 => {
                // The replay does not fit: tell the truth (a gap) instead of overflowing.
                result.recovered = Some(false);
                let msg =
                    ServerMessage::Subscribed { channel, seq: Some(head), recovered: Some(false) };
                if let Err(e) = client.queue().push(msg.encode_with_id(id)) {
                    drop(s);
                    return Err(self.push_failed(client, e));
                }
            }
            Ok(false) => {
                drop(s);
                return Err(self.push_failed(client, PushError::Full));
            }
            Err(e) => {
                drop(s);
                return Err(self.push_failed(client, e));
            }
        }
        self.counters.replayed.fetch_add(result.replayed as u64, Relaxed);
        Ok(result)
    }

    fn push_failed(&self, client: &Arc<Client>, e: PushError) -> RealtimeError {
        if e == PushError::Full {
            client.queue().close(CloseReason::SlowConsumer);
            self.counters.queue_drops.fetch_add(1, Relaxed);
            self.counters.slow_consumers.fetch_add(1, Relaxed);
        }
        self.disconnect(&client.id);
        client.push_error(e)
    }

    /// Unsubscribes a client; `Ok(true)` if the channel was held. Unheld channels are a no-op.
    ///
    /// # Errors
    /// [`RealtimeError::InvalidChannel`].
    pub fn unsubscribe(
        &self,
        client: &Arc<Client>,
        channel: &str,
    ) -> Result<(Channel, bool), RealtimeError> {
        let ch = Channel::parse(channel)?;
        let held = client.unsubscribe(&ch);
        if held {
            self.remove_from_stream(client, &ch);
            self.counters.subscriptions.fetch_sub(1, Relaxed);
        }
        Ok((ch, held))
    }

    /// Seed API: handles a command and **returns** the reply for the caller to send (subscribe
    /// here never replays; use [`EventHub::handle_frame`] for `since` and ordered replies).
    ///
    /// # Errors
    /// The error to report to the client (its `error` frame is `ServerMessage::error(&e)`).
    pub fn handle_command(
        &self,
        client: &Arc<Client>,
        command: ClientCommand,
    ) -> Result<ServerMessage, RealtimeError> {
        match command {
            ClientCommand::Subscribe { channel } => {
                let s = self.subscribe_inner(client, &channel, None, None)?;
                Ok(ServerMessage::Subscribed {
                    channel: s.channel.to_string(),
                    seq: Some(s.seq),
                    recovered: None,
                })
            }
            ClientCommand::Unsubscribe { channel } => {
                let (ch, _) = self.unsubscribe(client, &channel)?;
                Ok(ServerMessage::Unsubscribed { channel: ch.to_string() })
            }
            ClientCommand::Ping => Ok(ServerMessage::Pong),
            ClientCommand::Publish { channel, event, data } => {
                let p = self.publish(&channel, event, data)?;
                let channel = Channel::parse(&channel)?.to_string();
                Ok(ServerMessage::Published { channel, seq: p.seq })
            }
            ClientCommand::Auth { .. } => Err(RealtimeError::Unauthenticated(
                "this hub has no authenticator; the server layer handles auth".into(),
            )),
        }
    }

    /// Handles one decoded client frame and queues its reply (echoing the frame's `id`) to the
    /// client, in order with events. Subscribe honours `since`. Auth and publish rights are the
    /// transport's to check before calling this.
    pub fn handle_frame(&self, client: &Arc<Client>, frame: ClientFrame) {
        let id = frame.id.as_ref();
        let result = match frame.command {
            ClientCommand::Subscribe { channel } => {
                match self.subscribe(client, &channel, frame.since.as_ref(), id) {
                    Ok(_) => return,
                    Err(RealtimeError::SlowConsumer(_) | RealtimeError::ChannelClosed) => return,
                    Err(e) => Err(e),
                }
            }
            other => self.handle_command(client, other),
        };
        let msg = result.unwrap_or_else(|e| ServerMessage::error(&e));
        self.send(client, msg.encode_with_id(id));
    }

    /// Queues a frame to one client, disconnecting it as a slow consumer if its queue is full.
    /// Returns whether the frame was queued.
    pub fn send(&self, client: &Arc<Client>, frame: Frame) -> bool {
        match client.queue().push(frame) {
            Ok(()) => true,
            Err(e) => {
                self.push_failed(client, e);
                false
            }
        }
    }

    /// Publishes an event on a channel: stamps its seq, serializes it once, records it in the
    /// stream's history and queues it to every subscription that receives it (one copy per
    /// client).
    ///
    /// # Errors
    /// [`RealtimeError::InvalidChannel`]; [`RealtimeError::RateLimited`] if the stream limit is
    /// reached and no idle stream can be evicted.
    pub fn publish(
        &self,
        channel: &str,
        kind: EventKind,
        data: serde_json::Value,
    ) -> Result<Published, RealtimeError> {
        self.publish_event(RealtimeEvent::new(channel, kind, data))
    }

    /// Publishes a prepared event (its `seq` is overwritten); [`EventHub::subscribe_events`]
    /// sees it too.
    ///
    /// # Errors
    /// As [`EventHub::publish`].
    pub fn publish_event(&self, mut event: RealtimeEvent) -> Result<Published, RealtimeError> {
        let ch = Channel::parse(&event.channel)?;
        let kind = event.event;
        let mut copy = (self.event_tx.receiver_count() > 0).then(|| event.clone());
        let p = self.fan_out(&ch, Some(kind), |seq| {
            event.seq = Some(seq);
            ServerMessage::Event(event).encode()
        })?;
        if let Some(mut e) = copy.take() {
            e.seq = Some(p.seq);
            let _ = self.event_tx.send(e);
        }
        Ok(p)
    }

    /// Seed API: publishes an event; `None` if its channel is invalid (use
    /// [`EventHub::publish_event`] to get the error).
    pub fn emit(&self, event: RealtimeEvent) -> Option<Published> {
        self.publish_event(event).ok()
    }

    /// Seed API: builds and publishes an event; `None` if the channel is invalid.
    pub fn emit_event(
        &self,
        channel: String,
        kind: EventKind,
        data: serde_json::Value,
    ) -> Option<Published> {
        self.emit(RealtimeEvent::new(channel, kind, data))
    }

    /// Seed API: every event published on this hub ([`EventHub::emit`], [`EventHub::publish`]),
    /// unfiltered. A receiver more
    /// than [`BROADCAST_CAPACITY`] events behind gets `Lagged`.
    pub fn subscribe_events(&self) -> broadcast::Receiver<RealtimeEvent> {
        self.event_tx.subscribe()
    }

    /// Sets a user's notification preferences.
    pub fn set_preferences(&self, prefs: NotificationPreferences) {
        self.preferences.write().insert(prefs.user_id.clone(), prefs);
    }

    /// A user's notification preferences (the defaults if never set).
    pub fn preferences(&self, user_id: &str) -> NotificationPreferences {
        self.preferences
            .read()
            .get(user_id)
            .cloned()
            .unwrap_or_else(|| NotificationPreferences::for_user(user_id))
    }

    /// Delivers a notification on `user:<user_id>` if that user's preferences enable its type.
    ///
    /// # Errors
    /// [`RealtimeError::InvalidChannel`] if `user_id` is not a valid channel name.
    pub fn notify(&self, notification: Notification) -> Result<NotifyOutcome, RealtimeError> {
        let ch = Channel::user(&notification.user_id)?;
        if !self.preferences(&notification.user_id).is_enabled(notification.notification_type) {
            return Ok(NotifyOutcome::Suppressed);
        }
        let channel = ch.to_string();
        let p = self.fan_out(&ch, None, move |seq| {
            ServerMessage::Notification { channel, notification, seq: Some(seq) }.encode()
        })?;
        Ok(NotifyOutcome::Delivered(p))
    }

    fn fan_out(
        &self,
        ch: &Channel,
        kind: Option<EventKind>,
        encode: impl FnOnce(u64) -> Frame,
    ) -> Result<Published, RealtimeError> {
        let mut out = FanOut::default();
        let mut s = self.lock_stream(&ch.stream())?;
        let stream = Arc::clone(parking_lot::ArcMutexGuard::mutex(&s));
        let seq = self.next_seq.fetch_add(1, Relaxed) + 1;
        let frame = encode(seq);
        self.push_locked(&mut s, ch, kind, seq, frame, false, &mut out);
        drop(s); // settle() runs without the stream's lock
        self.counters.events.fetch_add(1, Relaxed);
        let delivered = out.delivered;
        self.settle(&stream, out);
        Ok(Published { seq, delivered })
    }

    /// Queues `frame` (seq `seq`) to every subscriber of the stream that receives it and has not
    /// had it yet, records it in the history and advances the stream's head. With `jump` (events
    /// before `seq` were lost), a subscriber that has not had the events just before `seq` is
    /// set aside in `out.lagging` instead.
    #[allow(clippy::too_many_arguments)]
    fn push_locked(
        &self,
        s: &mut Stream,
        ch: &Channel,
        kind: Option<EventKind>,
        seq: u64,
        frame: Frame,
        jump: bool,
        out: &mut FanOut,
    ) {
        s.head = seq;
        let now = Instant::now();
        s.last_publish = now;
        let mut routes = ch.routes(kind);
        let first = routes.next().map(|c| slot(&c)).unwrap_or(0);
        let second = routes.next().map(|c| slot(&c));
        for (i, slot_ix) in std::iter::once(first).chain(second).enumerate() {
            for (key, member) in &s.slots[slot_ix] {
                if i == 1 && s.slots[first].contains_key(key) {
                    continue;
                }
                if member.min_seq >= seq {
                    continue;
                }
                if jump && member.min_seq + 1 < seq {
                    out.lagging.push(member.client.clone());
                    continue;
                }
                match member.client.queue().push(frame.clone()) {
                    Ok(()) => out.delivered += 1,
                    Err(e) => out.failed.push((member.client.clone(), e)),
                }
            }
        }
        if self.config.history_size > 0 {
            s.history.push_back(HistoryEntry { seq, at: now, channel: ch.clone(), kind, frame });
            self.counters.history.fetch_add(1, Relaxed);
        } else {
            s.floor = seq;
        }
        let removed = s.trim(now, &self.config);
        self.counters.history.fetch_sub(removed as u64, Relaxed);
    }

    /// After a fan-out, with the stream's lock released: counts, and disconnects the clients
    /// whose queue was full or closed and those that missed events.
    fn settle(&self, stream: &Arc<Mutex<Stream>>, out: FanOut) {
        self.counters.delivered.fetch_add(out.delivered as u64, Relaxed);
        let lagging = out.lagging.into_iter().map(|c| (c, None));
        for (client, e) in out.failed.into_iter().map(|(c, e)| (c, Some(e))).chain(lagging) {
            match e {
                Some(PushError::Full) => {
                    self.counters.queue_drops.fetch_add(1, Relaxed);
                    self.counters.slow_consumers.fetch_add(1, Relaxed);
                }
                Some(PushError::Closed) => {}
                None => {
                    self.counters.gap_disconnects.fetch_add(1, Relaxed);
                }
            }
            self.disconnect(&client.id);
            // A client closed by another path may linger in this stream; drop it here too.
            stream.lock().slots.iter_mut().for_each(|m| {
                m.remove(&client.key);
            });
        }
    }

    /// Fans out an event numbered by a broker, encoded once by its publisher: queues the frame to
    /// every local subscription that receives it, in seq order, and keeps it in the stream's
    /// local history (which covers the short window between a subscriber's history read and its
    /// first live event). The hub assigns no seq.
    ///
    /// Within a stream, seqs must arrive in order and consecutively. An event at or below the
    /// stream's position here is a duplicate and is ignored (`stale`). An event after a jump
    /// (events were lost on the way, e.g. the broker connection dropped) is still delivered to
    /// subscribers that already had everything before it (their replay went that far); every
    /// other subscriber of the stream is disconnected, so it reconnects and recovers the missing
    /// events from the broker's history — never a silent hole.
    ///
    /// Mixing this with [`EventHub::publish`] on one hub is not supported: with a broker, every
    /// publish goes through the broker.
    ///
    /// # Errors
    /// [`RealtimeError::RateLimited`] if the stream limit is reached and no idle stream can be
    /// evicted.
    pub fn deliver(&self, event: Sequenced) -> Result<Delivered, RealtimeError> {
        let Sequenced { seq, channel: ch, kind, frame } = event;
        let mut out = FanOut::default();
        let mut s = self.lock_stream(&ch.stream())?;
        let stream = Arc::clone(parking_lot::ArcMutexGuard::mutex(&s));
        if seq <= s.head {
            return Ok(Delivered { stale: true, ..Delivered::default() });
        }
        let jump = seq > s.head + 1;
        self.push_locked(&mut s, &ch, kind, seq, frame, jump, &mut out);
        drop(s); // settle() runs without the stream's lock
        let d = Delivered {
            delivered: out.delivered,
            gap_disconnects: out.lagging.len(),
            stale: false,
        };
        self.settle(&stream, out);
        Ok(d)
    }

    /// Subscribes a client to a stream whose events are numbered by a broker, with the history
    /// the broker returned (`recovery`, read after this hub started receiving the stream's live
    /// events through [`EventHub::deliver`]; `None` when the broker is unreachable).
    ///
    /// Under the stream's lock it queues the `subscribed` reply (seq: the later of the broker's
    /// head and this hub's position) and, with `since`, the replay: the broker's events after
    /// `since.seq`, then the events this hub delivered after the broker's head. Later live events
    /// reach the client only above that seq, so there is no gap and no duplicate between the
    /// replay and the live events. `recovered` is `true` only when the epoch matches, the broker
    /// had every missed event (`recovery.complete`), this hub's history bridges the rest, and the
    /// replay fits in the client's queue; otherwise nothing is replayed and it is `false`.
    ///
    /// # Errors
    /// As [`EventHub::subscribe`].
    pub fn subscribe_sequenced(
        &self,
        client: &Arc<Client>,
        channel: &str,
        since: Option<&Since>,
        id: Option<&RequestId>,
        recovery: Option<Recovery>,
    ) -> Result<Subscription, RealtimeError> {
        let (ch, new, mut s) = self.enter_stream(client, channel)?;
        let local = s.head;
        let (head, recovered, replay) = match (recovery, since) {
            (None, since) => (local, since.map(|_| false), Vec::new()),
            (Some(r), None) => (r.head.max(local), None, Vec::new()),
            (Some(r), Some(since)) => {
                let head = r.head.max(local);
                let mut replay = Vec::new();
                let mut ok = r.complete && since.epoch == *self.epoch.read() && since.seq <= head;
                if ok {
                    replay.extend(
                        r.events
                            .iter()
                            .filter(|e| e.seq > since.seq && e.seq <= r.head)
                            .filter(|e| ch.receives(&e.channel, e.kind))
                            .map(|e| e.frame.clone()),
                    );
                    if local > r.head {
                        // Events delivered here after the broker's read: bridge them from the
                        // local history, which must hold every one of them.
                        let from = r.head.max(since.seq);
                        let window: Vec<&HistoryEntry> =
                            s.history.iter().filter(|e| e.seq > from && e.seq <= local).collect();
                        if window.len() as u64 == local - from {
                            replay.extend(
                                window
                                    .into_iter()
                                    .filter(|e| ch.receives(&e.channel, e.kind))
                                    .map(|e| e.frame.clone()),
                            );
                        } else {
                            ok = false;
                            replay.clear();
                        }
                    }
                }
                (head, Some(ok), replay)
            }
        };
        s.slots[slot(&ch)].insert(client.key, Member { client: client.clone(), min_seq: head });
        let result = Subscription { channel: ch, new, seq: head, recovered, replayed: 0 };
        self.reply_subscribed(s, client, result, replay, Some(id))
    }

    /// Seed API: queues a raw text frame to every connected client, regardless of
    /// subscriptions. Returns how many got it.
    pub fn broadcast_all(&self, message: &str) -> usize {
        let frame = Frame::from_string(message.to_owned());
        let clients: Vec<Arc<Client>> = self.clients.read().values().cloned().collect();
        clients.iter().filter(|c| self.send(c, frame.clone())).count()
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
