//! Subscribe and unsubscribe, with recovery: the `subscribed` reply and the replay queued under
//! the stream's lock, before any live event, or `recovered: false` when the replay cannot be
//! whole — for the hub's own numbering and for a broker's ([`EventHub::subscribe_sequenced`]).

use super::fan_out::FanOut;
use super::slots::{Member, SlotKey};
use super::streams::{HistoryEntry, Maker, StreamGuard};
use super::*;

/// What a subscribe asks for besides its channel.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct SubscribeOptions<'a> {
    /// Recover from this position.
    pub since: Option<&'a Since>,
    /// Join the channel's presence (and get its member list, then `join` and `leave`).
    pub presence: bool,
    /// The command's id, echoed by the `subscribed` reply.
    pub id: Option<&'a RequestId>,
}

impl<'a> SubscribeOptions<'a> {
    /// Options with `since`, `presence` and `id`.
    pub fn new(since: Option<&'a Since>, presence: bool, id: Option<&'a RequestId>) -> Self {
        SubscribeOptions { since, presence, id }
    }
}

impl EventHub {
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
        client: &Arc<HubClient>,
        channel: &str,
        since: Option<&Since>,
        id: Option<&RequestId>,
    ) -> Result<Subscription, RealtimeError> {
        self.subscribe_with(client, channel, SubscribeOptions::new(since, false, id))
    }

    /// [`EventHub::subscribe`] with every option: with `presence`, the client also joins the
    /// channel's presence (when it is authenticated as a user) and gets the member list after
    /// the reply, then `join` and `leave` frames.
    ///
    /// # Errors
    /// As [`EventHub::subscribe`].
    pub fn subscribe_with(
        &self,
        client: &Arc<HubClient>,
        channel: &str,
        opts: SubscribeOptions<'_>,
    ) -> Result<Subscription, RealtimeError> {
        self.subscribe_inner(client, channel, opts.since, Some(opts.id), opts.presence)
    }

    /// Registers `channel` for `client` and locks the stream it reads, re-fetching a stream that
    /// was evicted in between; a new channel counts as a new subscription.
    pub(super) fn enter_stream(
        &self,
        client: &Arc<HubClient>,
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
        match self.lock_stream(&ch.stream(), Maker::Subscriber(client)) {
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

    pub(super) fn subscribe_inner(
        &self,
        client: &Arc<HubClient>,
        channel: &str,
        since: Option<&Since>,
        reply: Option<Option<&RequestId>>,
        presence: bool,
    ) -> Result<Subscription, RealtimeError> {
        let (ch, new, mut s) = self.enter_stream(client, channel)?;
        let out = FanOut::default();
        self.put_member(&mut s, &ch, Member::new(client, 0));
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
                    .filter(|e| e.seq > since.seq && e.reaches(&ch))
                    .map(|e| e.frame.clone())
                    .collect();
            }
            recovered = Some(ok);
        }
        let result = Subscription { channel: ch.clone(), new, seq: head, recovered, replayed: 0 };
        self.reply_subscribed(s, client, result, replay, reply, presence, out)
    }

    /// Puts `member` in the slot of `ch`, in place of the client's earlier subscription to it
    /// (whose presence it keeps when it joined as the same user; the next reply settles it).
    fn put_member(&self, s: &mut Stream, ch: &Channel, mut member: Member) {
        let key = SlotKey::of(ch);
        let client = member.client.key;
        let old = s.slots.get_mut(key).and_then(|slot| slot.members.remove(&client));
        if let Some(old) = old {
            // Kept as a watcher until the reply decides (a subscribe without presence leaves).
            member.watches = old.watches;
            member.user = old.user;
        }
        s.slots.entry(key).members.insert(client, member);
    }

    /// Queues the `subscribed` reply and the replay to `client` while the stream's lock is held
    /// (so they precede any live event), or the reply alone with `recovered: false` when the
    /// replay is over [`HubConfig::max_replay_events`] or [`HubConfig::max_replay_bytes`], or
    /// does not fit in the client's queue.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn reply_subscribed(
        &self,
        mut s: StreamGuard,
        client: &Arc<HubClient>,
        mut result: Subscription,
        replay: Vec<Frame>,
        reply: Option<Option<&RequestId>>,
        presence: bool,
        mut out: FanOut,
    ) -> Result<Subscription, RealtimeError> {
        let Some(id) = reply else {
            self.set_presence(&mut s, &result.channel, client, presence, true, &mut out);
            let stream = Arc::clone(parking_lot::ArcMutexGuard::mutex(&s));
            drop(s);
            self.settle(&stream, out);
            return Ok(result);
        };
        let (mut replay, cfg) = (replay, &self.config);
        if replay.len() > cfg.max_replay_events
            || replay.iter().map(Frame::len).sum::<usize>() > cfg.max_replay_bytes
        {
            // More than one subscribe may cost: a gap, the client reads the history instead.
            replay.clear();
            result.recovered = result.recovered.map(|_| false);
        }
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
        // The member list follows the reply (and the replay), before any `join` or `leave`.
        self.set_presence(&mut s, &result.channel, client, presence, true, &mut out);
        let stream = Arc::clone(parking_lot::ArcMutexGuard::mutex(&s));
        drop(s);
        self.settle(&stream, out);
        Ok(result)
    }

    /// Unsubscribes a client; `Ok(true)` if the channel was held. Unheld channels are a no-op.
    ///
    /// # Errors
    /// [`RealtimeError::InvalidChannel`].
    pub fn unsubscribe(
        &self,
        client: &Arc<HubClient>,
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
        client: &Arc<HubClient>,
        channel: &str,
        opts: SubscribeOptions<'_>,
        recovery: Option<Recovery>,
    ) -> Result<Subscription, RealtimeError> {
        let SubscribeOptions { since, presence, id } = opts;
        let (ch, new, mut s) = self.enter_stream(client, channel)?;
        let mut out = FanOut::default();
        if let Some(remote) = recovery.as_ref().and_then(|r| r.presence.as_deref()) {
            if presence {
                self.sync_remote_locked(&mut s, &ch, remote, &mut out);
            }
        }
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
                            .filter(|e| ch.receives(&e.channel, e.kind, e.item))
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
                                    .filter(|e| e.reaches(&ch))
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
        self.put_member(&mut s, &ch, Member::new(client, head));
        let result = Subscription { channel: ch, new, seq: head, recovered, replayed: 0 };
        self.reply_subscribed(s, client, result, replay, Some(id), presence, out)
    }
}
