//! Streams (the channels of one repository, or one user / org channel): their subscribers per
//! slot, their history and its trimming, lookup, creation under the stream limit, and eviction.

use super::*;

pub(super) struct HistoryEntry {
    pub(super) seq: u64,
    pub(super) at: Instant,
    pub(super) channel: Channel,
    pub(super) kind: Option<EventKind>,
    pub(super) frame: Frame,
}

/// A subscriber of a stream slot.
pub(super) struct Member {
    pub(super) client: Arc<HubClient>,
    /// Live events up to this seq were already queued to it (by the `subscribed` reply and its
    /// replay); [`EventHub::deliver`] skips them. 0 for the hub's own publishes.
    pub(super) min_seq: u64,
}

/// A stream locked through its `Arc` (the guard owns its reference).
pub(super) type StreamGuard = parking_lot::ArcMutexGuard<parking_lot::RawMutex, Stream>;

/// One stream: the channels of a repository (or one user / org channel).
pub(super) struct Stream {
    /// Subscribers per slot: 0 = the channel itself, 1 = `/prs`, 2 = `/issues`.
    pub(super) slots: [HashMap<u64, Member>; 3],
    pub(super) history: VecDeque<HistoryEntry>,
    /// Every event of this stream with seq > floor is in `history`.
    pub(super) floor: u64,
    pub(super) head: u64,
    pub(super) last_publish: Instant,
    /// Set (under the stream's lock) when the stream is evicted: whoever fetched it before the
    /// eviction and locks it afterwards must fetch the live stream again instead.
    pub(super) evicted: bool,
}

impl Stream {
    pub(super) fn subscriber_count(&self) -> usize {
        self.slots.iter().map(HashMap::len).sum()
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

pub(super) fn slot(channel: &Channel) -> usize {
    match channel.repo_filter() {
        None => 0,
        Some(RepoFilter::Prs) => 1,
        Some(RepoFilter::Issues) => 2,
    }
}

impl EventHub {
    pub(super) fn stream(&self, key: &Channel, create: bool) -> Option<Arc<Mutex<Stream>>> {
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

    pub(super) fn evict_idle_stream(
        &self,
        streams: &mut HashMap<String, Arc<Mutex<Stream>>>,
    ) -> bool {
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
        self.stream(&channel.stream(), false).map_or(0, |s| s.lock().subscriber_count())
    }

    /// The last seq of `channel`'s stream on this hub (`None` if it holds no such stream).
    pub fn stream_head(&self, channel: &Channel) -> Option<u64> {
        self.stream(&channel.stream(), false).map(|s| s.lock().head)
    }

    pub(super) fn remove_from_stream(&self, client: &HubClient, ch: &Channel) {
        if let Some(s) = self.stream(&ch.stream(), false) {
            s.lock().slots[slot(ch)].remove(&client.key);
        }
    }

    /// Locks the stream `key` (creating it), re-fetching it if it was evicted between the lookup
    /// and the lock, so nothing lands in a stream that is no longer in the map.
    pub(super) fn lock_stream(&self, key: &Channel) -> Result<StreamGuard, RealtimeError> {
        loop {
            let live = self.stream(key, true).ok_or_else(|| self.stream_limit())?;
            let s = live.lock_arc();
            if !s.evicted {
                return Ok(s);
            }
        }
    }
}
