//! Publishing: one encoding per event, queued to every subscription that receives it (one copy
//! per client), recorded in the history; notifications by preference; and the fan-out of events a
//! broker numbered ([`EventHub::deliver`]).

use super::slots::SlotKey;
use super::streams::{HistoryEntry, Stream};
use super::*;
use crate::subscription::item_of;

/// What a fan-out left to do once the stream's lock is released.
#[derive(Default)]
pub(super) struct FanOut {
    pub(super) delivered: usize,
    pub(super) failed: Vec<(Arc<HubClient>, PushError)>,
    pub(super) lagging: Vec<Arc<HubClient>>,
}

impl EventHub {
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
    pub fn publish_event(&self, event: RealtimeEvent) -> Result<Published, RealtimeError> {
        self.publish_once(event, None)
    }

    /// Publishes a prepared event, once per `idempotency_key` and channel while the first event
    /// with that key is in the stream's history: a repeat answers that event's seq with
    /// `duplicate` set and publishes nothing. Without a key, as [`EventHub::publish_event`].
    ///
    /// # Errors
    /// As [`EventHub::publish`].
    pub fn publish_once(
        &self,
        mut event: RealtimeEvent,
        idempotency_key: Option<&str>,
    ) -> Result<Published, RealtimeError> {
        let ch = Channel::parse(&event.channel)?;
        let kind = event.event;
        let item = item_of(&event.data);
        let mut copy = (self.event_tx.receiver_count() > 0).then(|| event.clone());
        let p = self.fan_out(&ch, Some(kind), item, idempotency_key, |seq| {
            event.seq = Some(seq);
            ServerMessage::Event(event).encode()
        })?;
        if let Some(mut e) = copy.take().filter(|_| !p.duplicate) {
            e.seq = Some(p.seq);
            let _ = self.event_tx.send(e);
        }
        Ok(p)
    }

    /// Sets a user's notification preferences on this hub. Behind a broker, notifications
    /// follow the preferences the broker stores for every node: set them through
    /// [`Engine::set_preferences`](crate::Engine::set_preferences) instead.
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
        let p = self.fan_out(&ch, None, None, None, move |seq| {
            ServerMessage::Notification { channel, notification, seq: Some(seq) }.encode()
        })?;
        Ok(NotifyOutcome::Delivered(p))
    }

    pub(super) fn fan_out(
        &self,
        ch: &Channel,
        kind: Option<EventKind>,
        item: Option<u64>,
        key: Option<&str>,
        encode: impl FnOnce(u64) -> Frame,
    ) -> Result<Published, RealtimeError> {
        let mut out = FanOut::default();
        let mut s = self.lock_stream(&ch.stream(), Maker::Publisher)?;
        if let Some(key) = key {
            // (The history is bounded: a scan of at most `history_size` entries.)
            let first =
                s.history.iter().find(|e| e.key.as_deref() == Some(key) && e.channel == *ch);
            if let Some(first) = first {
                return Ok(Published { seq: first.seq, delivered: 0, duplicate: true });
            }
        }
        let stream = Arc::clone(parking_lot::ArcMutexGuard::mutex(&s));
        let seq = self.next_seq.fetch_add(1, Relaxed) + 1;
        let frame = encode(seq);
        let at = Sequenced { seq, channel: ch.clone(), kind, item, frame };
        self.push_locked(&mut s, at, false, key.map(Box::from), &mut out);
        drop(s); // settle() runs without the stream's lock
        self.counters.events.fetch_add(1, Relaxed);
        let delivered = out.delivered;
        self.settle(&stream, out);
        Ok(Published { seq, delivered, duplicate: false })
    }

    /// Queues the event to every subscriber of the stream that receives it and has not had it
    /// yet (one copy per client), records it in the history and advances the stream's head. With
    /// `jump` (events before its seq were lost), a subscriber that has not had the events just
    /// before it is set aside in `out.lagging` instead.
    pub(super) fn push_locked(
        &self,
        s: &mut Stream,
        ev: Sequenced,
        jump: bool,
        key: Option<Box<str>>,
        out: &mut FanOut,
    ) {
        let Sequenced { seq, channel: ch, kind, item, frame } = ev;
        s.head = seq;
        let now = Instant::now();
        s.last_publish = now;
        if !s.published {
            s.published = true;
            self.subscriber_streams.fetch_sub(1, Relaxed);
        }
        s.events += 1;
        if s.subscriber_count() == 0 {
            // Published to: the most recently used of the idle streams.
            self.mark_idle(ch.stream().to_string(), s);
        }
        // At most three slots; a client in an earlier one already got its copy.
        let keys: Vec<SlotKey> = ch.routes(kind, item).map(|c| SlotKey::of(&c)).collect();
        for (i, key) in keys.iter().enumerate() {
            let Some(slot) = s.slots.get(*key) else { continue };
            for (client, member) in &slot.members {
                let earlier = &keys[..i];
                if earlier
                    .iter()
                    .any(|k| s.slots.get(*k).is_some_and(|e| e.members.contains_key(client)))
                {
                    continue;
                }
                if member.min_seq >= seq {
                    continue;
                }
                if jump && member.min_seq + 1 < seq {
                    out.lagging.push(member.client.clone());
                    continue;
                }
                match member.client.queue().push_at(frame.clone(), Some(now)) {
                    Ok(()) => out.delivered += 1,
                    Err(e) => out.failed.push((member.client.clone(), e)),
                }
            }
        }
        self.fan_out_time.observe(now.elapsed());
        if self.config.history_size > 0 {
            let entry = HistoryEntry { seq, at: now, channel: ch, kind, item, frame, key };
            s.history.push_back(entry);
            self.counters.history.fetch_add(1, Relaxed);
        } else {
            s.floor = seq;
        }
        let removed = s.trim(now, &self.config);
        self.counters.history.fetch_sub(removed as u64, Relaxed);
    }

    /// After a fan-out, with the stream's lock released: counts, and disconnects the clients
    /// whose queue was full or closed and those that missed events.
    pub(super) fn settle(&self, stream: &Arc<Mutex<Stream>>, out: FanOut) {
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
            let mut more = FanOut::default();
            {
                let mut s = stream.lock();
                let keys: Vec<SlotKey> = s
                    .slots
                    .iter_mut()
                    .filter(|(_, slot)| slot.members.contains_key(&client.key))
                    .map(|(k, _)| k)
                    .collect();
                for key in keys {
                    self.take_member(&mut s, key, client.key, &mut more);
                }
            }
            if !more.failed.is_empty() {
                self.settle(stream, more);
            }
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
        let (seq, ch) = (event.seq, event.channel.clone());
        let mut out = FanOut::default();
        let mut s = self.lock_stream(&ch.stream(), Maker::Publisher)?;
        let stream = Arc::clone(parking_lot::ArcMutexGuard::mutex(&s));
        if seq <= s.head {
            // A duplicate (the same frame at that seq in the history) is ignored. Anything else
            // means the broker's numbering went back (its keys were lost): the stream starts
            // over at `seq`, and its subscribers, whose positions are in the old numbering, are
            // disconnected so that they reconnect and report a gap.
            let duplicate = s
                .history
                .iter()
                .rev()
                .find(|e| e.seq == seq)
                .is_some_and(|e| e.frame.as_str() == event.frame.as_str());
            if duplicate {
                return Ok(Delivered { stale: true, ..Delivered::default() });
            }
            self.counters.history.fetch_sub(s.history.len() as u64, Relaxed);
            s.history.clear();
            s.floor = seq.saturating_sub(1);
            s.head = s.floor;
            let mut gone = FanOut::default();
            out.lagging = self.take_all_members(&mut s, &mut gone);
            out.failed = gone.failed;
            self.push_locked(&mut s, event, false, None, &mut out);
            drop(s);
            let d = Delivered {
                gap_disconnects: out.lagging.len(),
                rewound: true,
                ..Delivered::default()
            };
            self.settle(&stream, out);
            return Ok(d);
        }
        let jump = seq > s.head + 1;
        self.push_locked(&mut s, event, jump, None, &mut out);
        drop(s); // settle() runs without the stream's lock
        let d = Delivered {
            delivered: out.delivered,
            gap_disconnects: out.lagging.len(),
            stale: false,
            rewound: false,
        };
        self.settle(&stream, out);
        Ok(d)
    }
}
