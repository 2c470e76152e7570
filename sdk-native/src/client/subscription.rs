//! [`Subscription`]: one channel's items as a `futures::Stream`, through a bounded mailbox.
//!
//! Policy when the application does not keep up: the mailbox holds
//! [`ClientBuilder::buffer`](super::ClientBuilder::buffer) items (default 1024). When it is full,
//! new events are dropped and counted in one [`Item::Lagged`]`(n)` item at the place of the loss
//! (after the events that were kept) — memory stays bounded and the loss is never silent. State
//! items (subscribed, gaps, failures) are never dropped.

use super::driver::Command;
use futures_util::Stream;
use guts_realtime::session::{GapReason, SubId};
use guts_realtime::{ErrorCode, Notification, PresenceMember, RealtimeEvent, Since};
use std::collections::{BTreeMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use tokio::sync::mpsc;

/// One item of a subscription.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Item {
    /// A repository event.
    Event(RealtimeEvent),
    /// An event of a kind this version does not know (sent by a newer hub), with its kind
    /// string: delivered, never dropped.
    UnknownEvent(guts_realtime::UnknownEvent),
    /// A user notification (on `user:` channels).
    Notification {
        /// The notification.
        notification: Notification,
        /// Its position in the user's stream.
        seq: Option<u64>,
    },
    /// The hub confirmed the subscription; `recovered` is `Some` after a reconnect.
    Subscribed {
        /// Whether the missed events are being replayed.
        recovered: Option<bool>,
    },
    /// Events may have been missed (hub restart or history exceeded): refetch what you show.
    Gap {
        /// The last seq delivered before the gap.
        last_seq: Option<u64>,
        /// Live delivery resumes after this seq.
        resume_seq: Option<u64>,
        /// Why.
        reason: GapReason,
    },
    /// The application fell behind and this many events were dropped from the mailbox.
    Lagged(u64),
    /// The hub refused the subscription; the stream ends after this item.
    Failed {
        /// The error code.
        code: Option<ErrorCode>,
        /// The hub's message.
        message: String,
    },
    /// The members of the channel's presence (subscribed with presence): after the subscribe,
    /// and again after each reconnect (after the joins and leaves it brought).
    Presence(Vec<PresenceMember>),
    /// A user joined the channel's presence.
    Join(String),
    /// A user left the channel's presence.
    Leave(String),
    /// A signal from another subscriber of the channel (ephemeral: never replayed).
    Signal {
        /// The signal's name.
        event: String,
        /// Its payload.
        data: serde_json::Value,
        /// The sender, as the hub authenticated it.
        user: String,
    },
}

impl Item {
    /// The item of an event or notification frame (a history page's entries).
    pub(crate) fn from_frame(frame: &guts_realtime::ServerMessage) -> Option<Item> {
        match frame {
            guts_realtime::ServerMessage::Event(e) => Some(Item::Event(e.clone())),
            guts_realtime::ServerMessage::UnknownEvent(e) => Some(Item::UnknownEvent(e.clone())),
            guts_realtime::ServerMessage::Notification { notification, seq, .. } => {
                Some(Item::Notification { notification: notification.clone(), seq: *seq })
            }
            _ => None,
        }
    }
}

#[derive(Debug)]
struct Inner {
    /// Each item with the position it leaves the subscription at, when it says one (a
    /// `Subscribed` or a `Gap`; an event's is its seq).
    items: VecDeque<(Item, Option<Since>)>,
    waker: Option<Waker>,
    ended: bool,
}

/// The driver's end of a subscription's mailbox.
#[derive(Debug, Clone)]
pub(crate) struct Mailbox {
    inner: Arc<Mutex<Inner>>,
    capacity: usize,
}

impl Mailbox {
    pub(crate) fn new(capacity: usize) -> Mailbox {
        Mailbox {
            inner: Arc::new(Mutex::new(Inner {
                items: VecDeque::new(),
                waker: None,
                ended: false,
            })),
            capacity: capacity.max(1),
        }
    }

    /// Delivers an item; events past the capacity are counted as lagged instead.
    pub(crate) fn push(&self, item: Item, droppable: bool) {
        self.push_at(item, droppable, None);
    }

    /// Queues `item`, which leaves the subscription at position `at`.
    pub(crate) fn push_at(&self, item: Item, droppable: bool, at: Option<Since>) {
        let waker = {
            let Ok(mut q) = self.inner.lock() else { return };
            if q.ended {
                return;
            }
            if droppable && q.items.len() >= self.capacity {
                match q.items.back_mut() {
                    Some((Item::Lagged(n), _)) => *n += 1,
                    _ => q.items.push_back((Item::Lagged(1), None)),
                }
                return;
            }
            let end = matches!(item, Item::Failed { .. });
            q.items.push_back((item, at));
            q.ended |= end;
            q.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Ends the stream (client closed).
    pub(crate) fn end(&self) {
        let waker = self.inner.lock().ok().and_then(|mut q| {
            q.ended = true;
            q.waker.take()
        });
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// A live subscription: a `Stream` of [`Item`]s. Dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    pub(crate) id: SubId,
    pub(crate) channel: String,
    pub(crate) mailbox: Mailbox,
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    /// Where the items taken so far leave the subscription.
    pub(crate) position: Option<Since>,
    /// The presence members as of the items taken so far.
    pub(crate) members: BTreeMap<String, u32>,
}

impl Subscription {
    /// The position of the last item taken from the stream (seq and epoch): save it, and resume
    /// from it with [`Client::subscribe_from`](super::Client::subscribe_from) — after a restart
    /// the hub replays what came after it, or the stream says [`Item::Gap`]. `None` before the
    /// first [`Item::Subscribed`].
    pub fn position(&self) -> Option<Since> {
        self.position.clone()
    }

    /// The members of the channel's presence as of the items taken from the stream (user and
    /// connections, by user): empty unless subscribed with presence
    /// ([`SubscribeOptions::presence`](super::SubscribeOptions::presence)).
    pub fn members(&self) -> impl Iterator<Item = (&str, u32)> {
        self.members.iter().map(|(u, n)| (u.as_str(), *n))
    }

    /// The canonical channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The session's handle id.
    pub fn id(&self) -> SubId {
        self.id
    }
}

impl Stream for Subscription {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        let this = &mut *self;
        let Ok(mut q) = this.mailbox.inner.lock() else { return Poll::Ready(None) };
        if let Some((item, at)) = q.items.pop_front() {
            let seq = match &item {
                Item::Event(e) => e.seq,
                Item::UnknownEvent(e) => e.seq,
                Item::Notification { seq, .. } => *seq,
                _ => None,
            };
            match (at, seq, &mut this.position) {
                (Some(at), _, position) => *position = Some(at),
                (None, Some(seq), Some(position)) => position.seq = seq,
                _ => {}
            }
            match &item {
                Item::Presence(members) => {
                    this.members =
                        members.iter().map(|m| (m.user.clone(), m.connections)).collect();
                }
                Item::Join(user) => {
                    this.members.entry(user.clone()).or_insert(1);
                }
                Item::Leave(user) => {
                    this.members.remove(user);
                }
                _ => {}
            }
            return Poll::Ready(Some(item));
        }
        if q.ended {
            return Poll::Ready(None);
        }
        q.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Unsubscribe(self.id));
    }
}
