//! [`EventHub`] as an [`Engine`]: one node in memory. Every method is the hub's own, answered at
//! once.

use super::{Engine, EngineFuture};
use guts_realtime::{
    Client, EventHub, HubMetrics, HubStats, Notification, NotificationPreferences, NotifyOutcome,
    Published, RealtimeError, RealtimeEvent, RequestId, Since, Subscription,
};
use std::future::ready;
use std::sync::Arc;

impl Engine for EventHub {
    fn hub(&self) -> &EventHub {
        self
    }

    fn subscribe<'a>(
        &'a self,
        client: &'a Arc<Client>,
        channel: &'a str,
        since: Option<&'a Since>,
        id: Option<&'a RequestId>,
    ) -> EngineFuture<'a, Result<Subscription, RealtimeError>> {
        Box::pin(ready(EventHub::subscribe(self, client, channel, since, id)))
    }

    fn publish(&self, event: RealtimeEvent) -> EngineFuture<'_, Result<Published, RealtimeError>> {
        Box::pin(ready(self.publish_event(event)))
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

    fn stats(&self) -> HubStats {
        EventHub::stats(self)
    }

    fn metrics(&self) -> HubMetrics {
        EventHub::metrics(self)
    }
}
