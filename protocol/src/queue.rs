//! The bounded per-client outbound queue.
//!
//! Bounded twice: in frames and in bytes (a few large frames must not pin as much memory as
//! thousands of small ones). Policy when full: the frame is **not** queued, the queue is closed with
//! [`CloseReason::SlowConsumer`], and the receiver returns `None` at once (dropping what was still
//! queued). The transport then closes the socket with
//! [`CloseCode::SLOW_CONSUMER`](crate::CloseCode::SLOW_CONSUMER); the client reconnects and
//! recovers what it missed with `since`. So memory per client is bounded, nothing is dropped
//! silently, and the other clients are never slowed down.
//!
//! A mutex-protected `VecDeque` plus one waker: a push is one uncontended lock; the receiver can
//! take every queued frame at once ([`ClientReceiver::poll_recv_many`]) so a transport can write
//! them with one syscall.

use crate::frame::Frame;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// Why a client's queue was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The queue filled up: the client did not read fast enough.
    SlowConsumer,
    /// The hub disconnected the client ([`EventHub::disconnect`](crate::EventHub::disconnect)).
    Disconnected,
    /// The platform disconnected the client's user
    /// ([`EventHub::disconnect_user_local`](crate::EventHub::disconnect_user_local)): the
    /// transport closes with [`CloseCode::FORBIDDEN`](crate::CloseCode::FORBIDDEN).
    Revoked,
}

/// A queued frame, with the instant of its event's fan-out (events only: for the delivery
/// latency metric).
#[derive(Debug)]
struct Queued {
    frame: Frame,
    at: Option<Instant>,
}

#[derive(Debug)]
struct Inner {
    frames: VecDeque<Queued>,
    /// The bytes of `frames`.
    bytes: usize,
    waker: Option<Waker>,
    closed: Option<CloseReason>,
    receiver_alive: bool,
}

#[derive(Debug)]
pub(crate) struct Queue {
    inner: Mutex<Inner>,
    capacity: usize,
    max_bytes: usize,
}

/// Why a push failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The queue was full; it is now closed as a slow consumer.
    Full,
    /// The queue was already closed or the receiver is gone.
    Closed,
}

impl Queue {
    /// A queue of at most `capacity` frames and `max_bytes` bytes (one frame always fits an
    /// empty queue, whatever its size).
    pub(crate) fn new(capacity: usize, max_bytes: usize) -> Arc<Queue> {
        Arc::new(Queue {
            inner: Mutex::new(Inner {
                frames: VecDeque::new(),
                bytes: 0,
                waker: None,
                closed: None,
                receiver_alive: true,
            }),
            capacity: capacity.max(1),
            max_bytes,
        })
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Queues one frame, or closes the queue as a slow consumer when it is full.
    pub(crate) fn push(&self, frame: Frame) -> Result<(), PushError> {
        self.push_at(frame, None)
    }

    /// As [`Queue::push`], for an event frame fanned out at `at`.
    pub(crate) fn push_at(&self, frame: Frame, at: Option<Instant>) -> Result<(), PushError> {
        let waker = {
            let mut q = self.inner.lock();
            if q.closed.is_some() || !q.receiver_alive {
                return Err(PushError::Closed);
            }
            let over_bytes = q.bytes.saturating_add(frame.len()) > self.max_bytes;
            if q.frames.len() >= self.capacity || (over_bytes && !q.frames.is_empty()) {
                q.closed = Some(CloseReason::SlowConsumer);
                q.frames = VecDeque::new();
                q.bytes = 0;
                let w = q.waker.take();
                drop(q);
                if let Some(w) = w {
                    w.wake();
                }
                return Err(PushError::Full);
            }
            q.bytes += frame.len();
            q.frames.push_back(Queued { frame, at });
            q.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Queues several frames atomically if all fit; `false` (nothing queued) otherwise.
    pub(crate) fn push_all_or_none(&self, frames: &[Frame]) -> Result<bool, PushError> {
        let waker = {
            let mut q = self.inner.lock();
            if q.closed.is_some() || !q.receiver_alive {
                return Err(PushError::Closed);
            }
            let bytes: usize = frames.iter().map(Frame::len).sum();
            if q.frames.len() + frames.len() > self.capacity
                || (q.bytes.saturating_add(bytes) > self.max_bytes && !q.frames.is_empty())
            {
                return Ok(false);
            }
            q.bytes += bytes;
            q.frames.extend(frames.iter().map(|f| Queued { frame: f.clone(), at: None }));
            q.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(true)
    }

    pub(crate) fn close(&self, reason: CloseReason) {
        let w = {
            let mut q = self.inner.lock();
            if q.closed.is_none() {
                q.closed = Some(reason);
            }
            q.waker.take()
        };
        if let Some(w) = w {
            w.wake();
        }
    }

    pub(crate) fn close_reason(&self) -> Option<CloseReason> {
        self.inner.lock().closed
    }

    pub(crate) fn is_open(&self) -> bool {
        let q = self.inner.lock();
        q.closed.is_none() && q.receiver_alive
    }

    pub(crate) fn len(&self) -> usize {
        self.inner.lock().frames.len()
    }

    /// Bytes queued now.
    pub(crate) fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }
}

/// The receiving end of a client's outbound queue: every item is one complete JSON text frame
/// (welcome, replies, events, notifications) in the order the client must see them.
#[derive(Debug)]
pub struct ClientReceiver {
    queue: Arc<Queue>,
}

/// Why [`ClientReceiver::try_recv`] returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryRecvError {
    /// Nothing queued right now.
    #[error("queue empty")]
    Empty,
    /// The queue is closed ([`ClientReceiver::close_reason`] says why).
    #[error("queue closed")]
    Closed,
}

impl ClientReceiver {
    pub(crate) fn new(queue: Arc<Queue>) -> ClientReceiver {
        ClientReceiver { queue }
    }

    /// The next frame; `None` once the queue is closed (see [`ClientReceiver::close_reason`]).
    pub async fn recv(&mut self) -> Option<Frame> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Poll form of [`ClientReceiver::recv`].
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Frame>> {
        let mut q = self.queue.inner.lock();
        if q.closed.is_some() {
            return Poll::Ready(None);
        }
        match q.frames.pop_front() {
            Some(Queued { frame, .. }) => {
                q.bytes -= frame.len();
                Poll::Ready(Some(frame))
            }
            None => {
                q.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Moves up to `max` queued frames into `buf`; `Ready(0)` once the queue is closed. Lets a
    /// transport coalesce a backlog into one write.
    pub fn poll_recv_many(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut Vec<Frame>,
        max: usize,
    ) -> Poll<usize> {
        self.poll_recv_many_timed(cx, buf, max).map(|(n, _)| n)
    }

    /// As [`ClientReceiver::poll_recv_many`], with the fan-out instant of the oldest event frame
    /// taken (for the publish → write latency).
    pub fn poll_recv_many_timed(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut Vec<Frame>,
        max: usize,
    ) -> Poll<(usize, Option<Instant>)> {
        let mut q = self.queue.inner.lock();
        if q.closed.is_some() {
            return Poll::Ready((0, None));
        }
        if q.frames.is_empty() {
            q.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = q.frames.len().min(max.max(1));
        let mut taken = 0;
        let mut oldest: Option<Instant> = None;
        buf.extend(q.frames.drain(..n).map(|Queued { frame, at }| {
            taken += frame.len();
            oldest = match (oldest, at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            frame
        }));
        q.bytes -= taken;
        Poll::Ready((n, oldest))
    }

    /// Async form of [`ClientReceiver::poll_recv_many`].
    pub async fn recv_many(&mut self, buf: &mut Vec<Frame>, max: usize) -> usize {
        poll_fn(|cx| self.poll_recv_many(cx, buf, max)).await
    }

    /// The next frame without waiting.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] when nothing is queued, [`TryRecvError::Closed`] once closed.
    pub fn try_recv(&mut self) -> Result<Frame, TryRecvError> {
        let mut q = self.queue.inner.lock();
        if q.closed.is_some() {
            return Err(TryRecvError::Closed);
        }
        let f = q.frames.pop_front().ok_or(TryRecvError::Empty)?;
        q.bytes -= f.frame.len();
        Ok(f.frame)
    }

    /// Gives the queue's storage back when nothing is queued (an idle connection then holds
    /// none; the next frame allocates it again). For transports that wait long between bursts.
    pub fn release_if_empty(&mut self) {
        let mut q = self.queue.inner.lock();
        if q.frames.is_empty() && q.frames.capacity() > 0 {
            q.frames = VecDeque::new();
        }
    }

    /// Why the queue was closed, if it was.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.queue.close_reason()
    }

    /// Frames queued now.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for ClientReceiver {
    fn drop(&mut self) {
        let mut q = self.queue.inner.lock();
        q.receiver_alive = false;
        q.frames.clear();
        q.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_if_empty_frees_the_storage_of_an_idle_queue_only() {
        let q = Queue::new(8, usize::MAX);
        let mut rx = ClientReceiver::new(q.clone());
        let frame = || Frame::from_static("{}");
        q.push(frame()).unwrap();
        rx.release_if_empty(); // not empty: kept
        assert_eq!(rx.len(), 1);
        assert!(rx.try_recv().is_ok());
        rx.release_if_empty();
        assert_eq!(q.inner.lock().frames.capacity(), 0);
        // The next frame allocates again and flows as before.
        q.push(frame()).unwrap();
        assert_eq!(rx.try_recv().ok(), Some(frame()));
    }
}
