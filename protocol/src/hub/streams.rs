//! Streams (the channels of one repository, or one user / org channel): their subscribers per
//! slot, their history and its trimming, lookup, creation under the stream limit, and eviction.
//!
//! Bounded without scans: a stream that loses its last subscriber with nothing in its history is
//! freed at once; streams without subscribers wait in a least-recently-used queue (entries made
//! stale by a later subscriber or publish are skipped), and a new stream at the limit evicts the
//! queue's oldest — amortized O(1), never a walk of the table under its lock. Streams made by
//! subscribers alone (nothing published yet) may fill at most half of the table, one connection
//! makes at most [`HubConfig::max_channels_per_connection`] of them, and a publisher that finds
//! no idle stream evicts the oldest of them (disconnecting its subscribers, who lose no event)
//! before it is ever refused.

use super::fan_out::FanOut;
use super::slots::{Member, SlotKey, Slots};
use super::*;

pub(super) struct HistoryEntry {
    pub(super) seq: u64,
    pub(super) at: Instant,
    pub(super) channel: Channel,
    pub(super) kind: Option<EventKind>,
    /// The item the event is about ([`item_of`](crate::subscription::item_of) its data).
    pub(super) item: Option<u64>,
    pub(super) frame: Frame,
    /// The publish's idempotency key: a repeat on the same channel while this entry is kept is
    /// answered with this seq.
    pub(super) key: Option<Box<str>>,
}

impl HistoryEntry {
    /// Whether a subscription to `ch` receives this event.
    pub(super) fn reaches(&self, ch: &Channel) -> bool {
        ch.receives(&self.channel, self.kind, self.item)
    }
}

/// A stream locked through its `Arc` (the guard owns its reference).
pub(super) type StreamGuard = parking_lot::ArcMutexGuard<parking_lot::RawMutex, Stream>;

/// One stream: the channels of a repository (or one user / org channel).
pub(super) struct Stream {
    /// The stream's own channel (without filter).
    pub(super) channel: Channel,
    /// Subscribers per channel.
    pub(super) slots: Slots,
    pub(super) history: VecDeque<HistoryEntry>,
    /// Every event of this stream with seq > floor is in `history`.
    pub(super) floor: u64,
    pub(super) head: u64,
    pub(super) last_publish: Instant,
    /// Set (under the stream's lock) when the stream is evicted: whoever fetched it before the
    /// eviction and locks it afterwards must fetch the live stream again instead.
    pub(super) evicted: bool,
    /// Something was published to it (else a subscriber made it).
    pub(super) published: bool,
    /// Bumped whenever the stream enters the idle queue: only its latest entry there counts.
    pub(super) idle_gen: u64,
    /// Events fanned out on this node (for the admin page's events/s per channel).
    pub(super) events: u64,
}

/// The heads of streams that were freed or evicted (most `max_streams`, the oldest forgotten
/// first), so a stream made again continues where it stopped.
#[derive(Default)]
pub(super) struct Tombstones {
    heads: HashMap<String, u64>,
    order: VecDeque<String>,
}

impl Tombstones {
    pub(super) fn put(&mut self, name: &str, head: u64, max: usize) {
        if self.heads.insert(name.to_owned(), head).is_none() {
            self.order.push_back(name.to_owned());
        }
        while self.order.len() > max {
            if let Some(old) = self.order.pop_front() {
                self.heads.remove(&old);
            }
        }
    }

    pub(super) fn take(&mut self, name: &str) -> Option<u64> {
        // Its place in `order` stays until it is the oldest (then removing nothing or a newer
        // entry of the same name: at worst a resume into it reports a gap).
        self.heads.remove(name)
    }

    pub(super) fn clear(&mut self) {
        self.heads.clear();
        self.order.clear();
    }
}

/// Who needs a stream that does not exist yet.
#[derive(Clone, Copy)]
pub(super) enum Maker<'a> {
    /// A publish (or a broker's delivery).
    Publisher,
    /// A subscribe by this client.
    Subscriber(&'a HubClient),
}

impl Stream {
    pub(super) fn subscriber_count(&self) -> usize {
        self.slots.subscriber_count()
    }

    /// The channel of the slot `key`.
    pub(super) fn channel_of(&self, key: SlotKey) -> Channel {
        match key {
            SlotKey::Base => self.channel.clone(),
            SlotKey::Family(f) => Channel {
                filter: Some(if f == RepoFilter::Prs { "prs" } else { "issues" }.into()),
                ..self.channel.clone()
            },
            SlotKey::Item(f, n) => self.channel.item_channel(f, n).unwrap_or(self.channel.clone()),
        }
    }

    pub(super) fn trim(&mut self, now: Instant, cfg: &HubConfig) -> usize {
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

impl EventHub {
    /// The stream `key`, made for `maker` if missing (`Err` when it may not be made).
    pub(super) fn stream(
        &self,
        key: &Channel,
        maker: Maker<'_>,
    ) -> Result<Arc<Mutex<Stream>>, RealtimeError> {
        let name = key.to_string();
        if let Some(s) = self.streams.read().get(&name) {
            return Ok(s.clone());
        }
        let mut stranded = Vec::new();
        let made = self.make_stream(name, maker, &mut stranded);
        // Subscribers of a stream evicted to make room (nothing was ever published on it): they
        // reconnect (and resubscribe) like any disconnected client.
        for client in stranded {
            self.counters.gap_disconnects.fetch_add(1, Relaxed);
            self.disconnect(&client.id);
        }
        made
    }

    /// [`EventHub::stream`] under the table's write lock; the subscribers of a stream evicted
    /// for the room go to `stranded`.
    fn make_stream(
        &self,
        name: String,
        maker: Maker<'_>,
        stranded: &mut Vec<Arc<HubClient>>,
    ) -> Result<Arc<Mutex<Stream>>, RealtimeError> {
        let mut streams = self.streams.write();
        if let Some(s) = streams.get(&name) {
            return Ok(s.clone());
        }
        let by_subscriber = matches!(maker, Maker::Subscriber(_));
        if let Maker::Subscriber(client) = maker {
            let max = self.config.max_channels_per_connection;
            if client.streams_made.load(Relaxed) >= max {
                return Err(RealtimeError::RateLimited(format!(
                    "too many new channels: this connection already made {max} (channels \
                     nothing was published on)"
                )));
            }
        }
        let cap = self.config.max_streams;
        let subscriber_cap = cap.div_ceil(2);
        while streams.len() >= cap
            || (by_subscriber && self.subscriber_streams.load(Relaxed) >= subscriber_cap)
        {
            if !self.evict_idle_stream(&mut streams)
                && (by_subscriber || !self.evict_subscriber_made(&mut streams, stranded))
            {
                return Err(self.stream_limit());
            }
        }
        if let Maker::Subscriber(client) = maker {
            client.streams_made.fetch_add(1, Relaxed);
            self.subscriber_streams.fetch_add(1, Relaxed);
            self.made.lock().push_back(name.clone());
        }
        // Every event of the new stream gets a seq above `floor`, and `head` starts there too: a
        // client that subscribes now is told `seq: floor` and can later resume `since` it (a head
        // of 0 would be below the floor, so that resume would always be a false gap). A stream
        // freed or evicted before starts at its old head: nothing was published on it since, so
        // a client that had everything up to there still has no gap.
        let floor = self.tombstones.lock().take(&name).unwrap_or(self.next_seq.load(Relaxed));
        let s = Arc::new(Mutex::new(Stream {
            channel: Channel::parse(&name)?,
            slots: Slots::default(),
            history: VecDeque::new(),
            floor,
            head: floor,
            last_publish: Instant::now(),
            evicted: false,
            published: !by_subscriber,
            idle_gen: 0,
            events: 0,
        }));
        streams.insert(name.clone(), s.clone());
        // Nobody reads it yet (a subscriber that made it joins next, which makes this entry
        // stale; one that fails to leaves it evictable).
        self.idle.lock().push_back((name, 0));
        Ok(s)
    }

    /// Puts the stream `name` (locked as `s`, without subscribers) at the back of the idle
    /// queue; the queue is rebuilt from the table when stale entries make it twice its size.
    pub(super) fn mark_idle(&self, name: String, s: &mut Stream) {
        s.idle_gen += 1;
        let mut idle = self.idle.lock();
        idle.push_back((name, s.idle_gen));
        if idle.len() > 2 * self.config.max_streams + 1024 {
            // Amortized: one pass per `max_streams` entries pushed. Keeps each stream's latest.
            let mut seen = std::collections::HashSet::new();
            let old = std::mem::take(&mut *idle);
            for (n, g) in old.into_iter().rev() {
                if seen.insert(n.clone()) {
                    idle.push_front((n, g));
                }
            }
        }
    }

    /// Removes the stream `name` from `streams` (the table's write lock is held) if, locked, it
    /// passes `evictable`; its history is dropped.
    fn remove_stream(
        &self,
        streams: &mut HashMap<String, Arc<Mutex<Stream>>>,
        name: &str,
        evictable: impl FnOnce(&Stream) -> bool,
    ) -> bool {
        let Some(stream) = streams.get(name).cloned() else { return false };
        let Some(mut s) = stream.try_lock() else { return false };
        if s.subscriber_count() != 0 || !evictable(&s) {
            return false;
        }
        s.evicted = true;
        self.counters.history.fetch_sub(s.history.len() as u64, Relaxed);
        if !s.published {
            self.subscriber_streams.fetch_sub(1, Relaxed);
        }
        self.tombstones.lock().put(name, s.head, self.config.max_streams);
        drop(s);
        streams.remove(name);
        true
    }

    /// For a publisher at the limit with no idle stream: evicts the oldest stream made by
    /// subscribers alone (nothing was ever published on it, so its subscribers lose nothing but
    /// the connection); its subscribers go to `stranded`.
    fn evict_subscriber_made(
        &self,
        streams: &mut HashMap<String, Arc<Mutex<Stream>>>,
        stranded: &mut Vec<Arc<HubClient>>,
    ) -> bool {
        loop {
            let Some(name) = self.made.lock().pop_front() else { return false };
            let Some(stream) = streams.get(&name).cloned() else { continue };
            let Some(mut s) = stream.try_lock() else { continue };
            if s.published {
                continue;
            }
            s.evicted = true;
            let mut out = FanOut::default();
            stranded.extend(self.take_all_members(&mut s, &mut out));
            stranded.extend(out.failed.into_iter().map(|(c, _)| c));
            self.subscriber_streams.fetch_sub(1, Relaxed);
            self.tombstones.lock().put(&name, s.head, self.config.max_streams);
            drop(s);
            streams.remove(&name);
            return true;
        }
    }

    /// Frees the stream `name` if it has no subscriber and nothing in its history.
    pub(super) fn free_if_empty(&self, name: &str) {
        let mut streams = self.streams.write();
        self.remove_stream(&mut streams, name, |s| s.history.is_empty());
    }

    /// Evicts the stream that has been without subscribers the longest (the idle queue's oldest
    /// entry still current); `false` when there is none.
    pub(super) fn evict_idle_stream(
        &self,
        streams: &mut HashMap<String, Arc<Mutex<Stream>>>,
    ) -> bool {
        loop {
            let Some((name, gen)) = self.idle.lock().pop_front() else { return false };
            if self.remove_stream(streams, &name, |s| s.idle_gen == gen) {
                return true;
            }
        }
    }

    pub(super) fn stream_limit(&self) -> RealtimeError {
        RealtimeError::RateLimited(format!(
            "stream limit reached: max {} streams",
            self.config.max_streams
        ))
    }

    /// Subscriptions on this hub to the channels of `channel`'s stream (the channel itself
    /// without its filter, and its filtered channels). A broker holds its subscription to a
    /// stream while this is above zero.
    pub fn stream_subscribers(&self, channel: &Channel) -> usize {
        self.existing(&channel.stream()).map_or(0, |s| s.lock().subscriber_count())
    }

    /// Every stream on this node with its subscribers here and the events fanned out on it here
    /// (since the stream was made; a stream freed or evicted starts over).
    pub fn channel_activity(&self) -> Vec<ChannelActivity> {
        let streams: Vec<Arc<Mutex<Stream>>> = self.streams.read().values().cloned().collect();
        streams
            .iter()
            .map(|stream| {
                let s = stream.lock();
                ChannelActivity {
                    channel: s.channel.to_string(),
                    subscribers: s.subscriber_count(),
                    events: s.events,
                }
            })
            .collect()
    }

    /// The last seq of `channel`'s stream on this hub (`None` if it holds no such stream).
    pub fn stream_head(&self, channel: &Channel) -> Option<u64> {
        self.existing(&channel.stream()).map(|s| s.lock().head)
    }

    /// The stream `key`, if it exists.
    pub(super) fn existing(&self, key: &Channel) -> Option<Arc<Mutex<Stream>>> {
        self.streams.read().get(&key.to_string()).cloned()
    }

    /// Takes `client` out of `ch`'s stream (with its presence there); a stream left without
    /// subscribers is queued as idle, or freed when its history is empty too.
    pub(super) fn remove_from_stream(&self, client: &HubClient, ch: &Channel) {
        let key = ch.stream();
        let Some(stream) = self.existing(&key) else { return };
        let mut s = stream.lock();
        let mut out = FanOut::default();
        let removed = self.take_member(&mut s, SlotKey::of(ch), client.key, &mut out).is_some();
        if removed && s.subscriber_count() == 0 {
            // Queued as idle first: if it cannot be freed now (someone holds it), it stays
            // evictable.
            self.mark_idle(key.to_string(), &mut s);
        }
        let free = removed && s.subscriber_count() == 0 && s.history.is_empty();
        drop(s);
        if free {
            self.free_if_empty(&key.to_string());
        }
        self.settle(&stream, out);
    }

    /// Removes the member `client` of the slot `key` with its presence (a `leave` to the
    /// watchers when it was its user's last connection there).
    pub(super) fn take_member(
        &self,
        s: &mut Stream,
        key: SlotKey,
        client: u64,
        out: &mut FanOut,
    ) -> Option<Member> {
        let channel = s.channel_of(key);
        let slot = s.slots.get_mut(key)?;
        let member = slot.members.remove(&client)?;
        let changes = slot.forget(&channel, &member, out);
        s.slots.prune(key);
        for change in changes {
            self.presence_changed(&channel, &change);
        }
        Some(member)
    }

    /// Removes every member of the stream (with their presence); their clients, each once.
    pub(super) fn take_all_members(&self, s: &mut Stream, out: &mut FanOut) -> Vec<Arc<HubClient>> {
        let mut all: Vec<(SlotKey, u64)> = Vec::new();
        for (key, slot) in s.slots.iter_mut() {
            all.extend(slot.members.keys().map(|k| (key, *k)));
        }
        let mut seen = std::collections::HashSet::new();
        let mut clients = Vec::new();
        for (key, client) in all {
            if let Some(m) = self.take_member(s, key, client, out) {
                if seen.insert(client) {
                    clients.push(m.client);
                }
            }
        }
        clients
    }

    /// Locks the stream `key` (made for `maker` if missing), re-fetching it if it was evicted
    /// between the lookup and the lock, so nothing lands in a stream that is no longer in the map.
    pub(super) fn lock_stream(
        &self,
        key: &Channel,
        maker: Maker<'_>,
    ) -> Result<StreamGuard, RealtimeError> {
        loop {
            let live = self.stream(key, maker)?;
            let s = live.lock_arc();
            if !s.evicted {
                return Ok(s);
            }
        }
    }
}
