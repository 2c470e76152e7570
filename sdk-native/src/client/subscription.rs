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
use guts_realtime::{ErrorCode, Notification, RealtimeEvent};
use std::collections::VecDeque;
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
}

#[derive(Debug)]
struct Inner {
    items: VecDeque<Item>,
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
        let waker = {
            let Ok(mut q) = self.inner.lock() else { return };
            if q.ended {
                return;
            }
            if droppable && q.items.len() >= self.capacity {
                match q.items.back_mut() {
                    Some(Item::Lagged(n)) => *n += 1,
                    _ => q.items.push_back(Item::Lagged(1)),
                }
                return;
            }
            let end = matches!(item, Item::Failed { .. });
            q.items.push_back(item);
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
}

impl Subscription {
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

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        let Ok(mut q) = self.mailbox.inner.lock() else { return Poll::Ready(None) };
        if let Some(item) = q.items.pop_front() {
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
