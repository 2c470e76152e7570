//! The hub's limits ([`HubConfig`]) and what it counts ([`HubStats`], [`HubMetrics`]).

use serde::Serialize;
use std::time::Duration;

/// Limits of an [`EventHub`](super::EventHub). Every field has a default; setters chain;
/// [`HubConfig::validate`] checks the bounds.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HubConfig {
    /// Most connections at once. The default value is 10 000, the seed's cap.
    pub max_connections: usize,
    /// Frames a client's outbound queue holds before the client is disconnected as a slow
    /// consumer. The default value is 4096: far above one replay ([`HubConfig::history_size`])
    /// plus live traffic, small enough that a stalled client costs at most a few MB.
    pub queue_capacity: usize,
    /// Bytes a client's outbound queue holds before the client is disconnected as a slow
    /// consumer (one frame always fits an empty queue). The default value is 4 MiB: a stalled
    /// client pins at most that, whatever the size of the frames.
    pub max_queue_bytes: usize,
    /// Events kept per stream for recovery. The default value is 512.
    pub history_size: usize,
    /// Most events one subscribe replays; a recovery that needs more answers `recovered: false`
    /// (the client reports a gap) instead of amplifying one small command into a flood. The
    /// default value is 300.
    pub max_replay_events: usize,
    /// Most bytes one subscribe replays (as [`HubConfig::max_replay_events`]). The default value
    /// is 1 MiB.
    pub max_replay_bytes: usize,
    /// How long an event stays recoverable. The default value is 10 minutes.
    pub history_ttl: Duration,
    /// Streams (repositories, users, orgs) kept at once. When full, a new stream evicts the
    /// stream that has been without subscribers the longest (its history is lost: `since` into
    /// it answers `recovered:false`); if every stream has subscribers, the publish fails. A
    /// stream without subscribers and history is freed at once. The default value is 100 000.
    pub max_streams: usize,
    /// Most streams one connection makes by subscribing to channels nothing was published on
    /// (over its lifetime; more are answered `rate_limited`). Streams made by subscribers alone
    /// also fill at most half of [`HubConfig::max_streams`]. The default value is 100.
    pub max_channels_per_connection: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            max_connections: 10_000,
            queue_capacity: 4096,
            max_queue_bytes: 4 * 1024 * 1024,
            history_size: 512,
            max_replay_events: 300,
            max_replay_bytes: 1024 * 1024,
            history_ttl: Duration::from_secs(600),
            max_streams: 100_000,
            max_channels_per_connection: 100,
        }
    }
}

crate::config_setters!(HubConfig {
    max_connections: usize,
    queue_capacity: usize,
    max_queue_bytes: usize,
    history_size: usize,
    max_replay_events: usize,
    max_replay_bytes: usize,
    history_ttl: Duration,
    max_streams: usize,
    max_channels_per_connection: usize,
});

impl HubConfig {
    /// Checks every bound: a queue of at least one frame, room for at least one stream.
    ///
    /// # Errors
    /// The first field out of bounds.
    pub fn validate(&self) -> Result<(), crate::InvalidConfig> {
        use crate::InvalidConfig as E;
        E::check(self.queue_capacity >= 1, "HubConfig.queue_capacity", "at least 1")?;
        let bytes_ok = self.max_queue_bytes >= 1024;
        E::check(bytes_ok, "HubConfig.max_queue_bytes", "at least 1024")?;
        E::check(self.max_streams >= 1, "HubConfig.max_streams", "at least 1")
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
    /// hub ([`EventHub::deliver`](super::EventHub::deliver) saw a seq jump); each reconnects and recovers.
    pub gap_disconnects: u64,
}
