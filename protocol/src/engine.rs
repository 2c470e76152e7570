//! The engine seam: everything that differs between one hub and a cluster of hubs goes through
//! [`Engine`] — subscribe (with `since`, replay and the `recovered` decision, and presence),
//! unsubscribe, publish, notify and notification preferences, presence, history, signals,
//! revocation, health, stats and metrics. The server talks to
//! nothing else, so a capability added here is written once for both implementations:
//!
//! - [`EventHub`] (below): one node, in memory, the embedded default;
//! - `RedisBroker` (crate `guts-realtime-server`, feature `redis`): several nodes sharing
//!   numbering, history, fan-out and preferences through Redis.
//!
//! Both keep the node's own connections in an [`EventHub`] ([`Engine::hub`]): its client queues
//! and its local fan-out are the same code on every node.

use crate::client::HubClient;
use crate::error::RealtimeError;
use crate::event::RealtimeEvent;
use crate::frame::Frame;
use crate::hub::{
    EventHub, HistoryPage, HubMetrics, HubStats, NotifyOutcome, Published, SubscribeOptions,
    Subscription,
};
use crate::notification::{Notification, NotificationPreferences};
use crate::subscription::Channel;
use crate::wire::PresenceMember;
use std::fmt;
use std::future::{ready, Future};
use std::pin::Pin;
use std::sync::Arc;

/// The future an [`Engine`] method returns (boxed, so the server holds any engine as
/// `Arc<dyn Engine>`).
pub type EngineFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the server asks of the engine that delivers events: one node's [`EventHub`], or a cluster
/// of them (`RedisBroker` in crate `guts-realtime-server`), which the server (`serve`, `router`)
/// puts on the network.
///
/// ```
/// use guts_realtime::{Engine, EventHub, EventKind, RealtimeEvent};
/// use std::sync::Arc;
///
/// let engine: Arc<dyn Engine> = Arc::new(EventHub::new());
/// let event = RealtimeEvent::new("repo:alice/app", EventKind::Push, serde_json::json!({}));
/// // The in-memory engine answers at once: its futures are ready when made.
/// let published = guts_realtime::engine::now_or_never(engine.publish(event)).unwrap().unwrap();
/// assert_eq!((published.seq, published.delivered), (1, 0));
/// assert_eq!(engine.stats().total_events, 1);
/// ```
pub trait Engine: Send + Sync + fmt::Debug + 'static {
    /// This node's connections: their queues, subscriptions and local fan-out.
    fn hub(&self) -> &EventHub;

    /// Subscribes `client` to `channel` and queues, before any live event of the stream, the
    /// `subscribed` reply (echoing `opts.id`) and, with `opts.since`, the replay of every missed
    /// event — or `recovered: false` when they cannot all be replayed. With `opts.presence` the
    /// client joins the channel's presence (as seen by every node) and the member list follows.
    ///
    /// # Errors
    /// As [`EventHub::subscribe`].
    fn subscribe<'a>(
        &'a self,
        client: &'a Arc<HubClient>,
        channel: &'a str,
        opts: SubscribeOptions<'a>,
    ) -> EngineFuture<'a, Result<Subscription, RealtimeError>>;

    /// Who is on `channel` on every node, without joining: at most
    /// [`MAX_PRESENCE_MEMBERS`](crate::wire::MAX_PRESENCE_MEMBERS) members, and whether some were
    /// left out.
    ///
    /// # Errors
    /// [`RealtimeError::Unavailable`] when a shared backend is down.
    fn presence<'a>(
        &'a self,
        channel: &'a Channel,
    ) -> EngineFuture<'a, Result<(Vec<PresenceMember>, bool), RealtimeError>>;

    /// The last `limit` events `channel` received that are still in the history window, and
    /// the position to subscribe from after them ([`EventHub::history`]).
    ///
    /// # Errors
    /// As [`EventHub::history`]; [`RealtimeError::Unavailable`] when a shared backend is down.
    fn history<'a>(
        &'a self,
        client: &'a Arc<HubClient>,
        channel: &'a Channel,
        limit: usize,
    ) -> EngineFuture<'a, Result<HistoryPage, RealtimeError>>;

    /// Sends the signal `frame` (encoded once) to the subscribers of exactly `channel` on every
    /// node, but not back to `sender`.
    ///
    /// # Errors
    /// [`RealtimeError::Unavailable`] when a shared backend is down.
    fn signal<'a>(
        &'a self,
        sender: &'a Arc<HubClient>,
        channel: &'a Channel,
        frame: Frame,
    ) -> EngineFuture<'a, Result<(), RealtimeError>>;

    /// Unsubscribes `client` from `channel`; `true` if it was held.
    ///
    /// # Errors
    /// [`RealtimeError::InvalidChannel`].
    fn unsubscribe(
        &self,
        client: &Arc<HubClient>,
        channel: &str,
    ) -> Result<(Channel, bool), RealtimeError> {
        self.hub().unsubscribe(client, channel)
    }

    /// Publishes an event (its `seq` is assigned here) to every node's subscribers.
    ///
    /// # Errors
    /// [`RealtimeError::InvalidChannel`]; [`RealtimeError::RateLimited`] at the stream limit;
    /// [`RealtimeError::Unavailable`] when a shared backend is down.
    fn publish(&self, event: RealtimeEvent) -> EngineFuture<'_, Result<Published, RealtimeError>> {
        self.publish_with(event, None)
    }

    /// [`Engine::publish`], once per `idempotency_key` and channel (on every node) while the
    /// first event with that key is in the stream's history: a repeat answers that event's seq
    /// with [`Published::duplicate`] set and publishes nothing.
    ///
    /// # Errors
    /// As [`Engine::publish`].
    fn publish_with(
        &self,
        event: RealtimeEvent,
        idempotency_key: Option<String>,
    ) -> EngineFuture<'_, Result<Published, RealtimeError>>;

    /// Publishes a notification on `user:<user_id>` unless that user's preferences disable its
    /// type.
    ///
    /// # Errors
    /// As [`Engine::publish`].
    fn notify(
        &self,
        notification: Notification,
    ) -> EngineFuture<'_, Result<NotifyOutcome, RealtimeError>>;

    /// Stores a user's notification preferences (for every node of a cluster).
    ///
    /// # Errors
    /// [`RealtimeError::Unavailable`] when a shared backend is down.
    fn set_preferences(
        &self,
        preferences: NotificationPreferences,
    ) -> EngineFuture<'_, Result<(), RealtimeError>>;

    /// A user's notification preferences (the defaults if never set).
    ///
    /// # Errors
    /// [`RealtimeError::Unavailable`] when a shared backend is down.
    fn preferences<'a>(
        &'a self,
        user_id: &'a str,
    ) -> EngineFuture<'a, Result<NotificationPreferences, RealtimeError>>;

    /// Ends `user`'s subscriptions to `channel` on every node (a repository's base channel ends
    /// all of the repository's channels), each with an `unsubscribed` frame whose `reason` is
    /// `"revoked"` ([`EventHub::revoke_local`] on each node).
    ///
    /// # Errors
    /// [`RealtimeError::Unavailable`] when a shared backend is down.
    fn revoke<'a>(
        &'a self,
        user: &'a str,
        channel: &'a Channel,
    ) -> EngineFuture<'a, Result<(), RealtimeError>>;

    /// Closes every connection of `user` on every node with 4003
    /// ([`EventHub::disconnect_user_local`] on each node).
    ///
    /// # Errors
    /// [`RealtimeError::Unavailable`] when a shared backend is down.
    fn disconnect_user<'a>(&'a self, user: &'a str) -> EngineFuture<'a, Result<(), RealtimeError>>;

    /// Whether the engine can do its work now (a cluster engine: its backend is reachable).
    fn is_up(&self) -> bool {
        true
    }

    /// The counters of `GET /api/stats`.
    fn stats(&self) -> HubStats;

    /// The hub's counters, for `/metrics`.
    fn metrics(&self) -> HubMetrics;

    /// The engine's own `/metrics` lines beyond [`Engine::metrics`] (a broker's link state).
    fn extra_metrics(&self) -> Vec<Metric> {
        Vec::new()
    }
}

/// One Prometheus sample an engine adds to `/metrics` (`guts_hub_<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    /// The name after `guts_hub_`.
    pub name: &'static str,
    /// `gauge` or `counter`.
    pub kind: MetricKind,
    /// The `# HELP` text.
    pub help: &'static str,
    /// The value.
    pub value: u64,
}

/// The type of a [`Metric`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A value that goes up and down.
    Gauge,
    /// A value that only goes up.
    Counter,
}

impl MetricKind {
    /// The Prometheus `# TYPE` name.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Gauge => "gauge",
            MetricKind::Counter => "counter",
        }
    }
}

/// Polls `future` once: its output if it is ready at once (every [`EventHub`] future is), `None`
/// otherwise. For drivers in virtual time and examples; a runtime awaits engine futures instead.
pub fn now_or_never<F: Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

/// [`EventHub`] as an [`Engine`]: one node in memory. Every method is the hub's own, answered
/// at once.
impl Engine for EventHub {
    fn hub(&self) -> &EventHub {
        self
    }

    fn subscribe<'a>(
        &'a self,
        client: &'a Arc<HubClient>,
        channel: &'a str,
        opts: SubscribeOptions<'a>,
    ) -> EngineFuture<'a, Result<Subscription, RealtimeError>> {
        Box::pin(ready(self.subscribe_with(client, channel, opts)))
    }

    fn presence<'a>(
        &'a self,
        channel: &'a Channel,
    ) -> EngineFuture<'a, Result<(Vec<PresenceMember>, bool), RealtimeError>> {
        Box::pin(ready(Ok(EventHub::presence(self, channel))))
    }

    fn history<'a>(
        &'a self,
        client: &'a Arc<HubClient>,
        channel: &'a Channel,
        limit: usize,
    ) -> EngineFuture<'a, Result<HistoryPage, RealtimeError>> {
        Box::pin(ready(EventHub::history(self, client, &channel.to_string(), limit)))
    }

    fn signal<'a>(
        &'a self,
        sender: &'a Arc<HubClient>,
        channel: &'a Channel,
        frame: Frame,
    ) -> EngineFuture<'a, Result<(), RealtimeError>> {
        self.signal_local(channel, &frame, Some(sender));
        Box::pin(ready(Ok(())))
    }

    fn publish_with(
        &self,
        event: RealtimeEvent,
        idempotency_key: Option<String>,
    ) -> EngineFuture<'_, Result<Published, RealtimeError>> {
        Box::pin(ready(self.publish_once(event, idempotency_key.as_deref())))
    }

    fn notify(
        &self,
        notification: Notification,
    ) -> EngineFuture<'_, Result<NotifyOutcome, RealtimeError>> {
        Box::pin(ready(EventHub::notify(self, notification)))
    }

    fn set_preferences(
        &self,
        preferences: NotificationPreferences,
    ) -> EngineFuture<'_, Result<(), RealtimeError>> {
        EventHub::set_preferences(self, preferences);
        Box::pin(ready(Ok(())))
    }

    fn preferences<'a>(
        &'a self,
        user_id: &'a str,
    ) -> EngineFuture<'a, Result<NotificationPreferences, RealtimeError>> {
        Box::pin(ready(Ok(EventHub::preferences(self, user_id))))
    }

    fn revoke<'a>(
        &'a self,
        user: &'a str,
        channel: &'a Channel,
    ) -> EngineFuture<'a, Result<(), RealtimeError>> {
        self.revoke_local(user, channel);
        Box::pin(ready(Ok(())))
    }

    fn disconnect_user<'a>(&'a self, user: &'a str) -> EngineFuture<'a, Result<(), RealtimeError>> {
        self.disconnect_user_local(user);
        Box::pin(ready(Ok(())))
    }

    fn stats(&self) -> HubStats {
        EventHub::stats(self)
    }

    fn metrics(&self) -> HubMetrics {
        EventHub::metrics(self)
    }
}
