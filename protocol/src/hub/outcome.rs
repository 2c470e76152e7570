//! What the hub's operations answer: [`Published`], [`Subscription`], [`NotifyOutcome`], and the
//! units a broker hands it ([`Sequenced`], [`Recovery`], [`Delivered`]).

use crate::event::EventKind;
use crate::frame::Frame;
use crate::subscription::Channel;
use serde::Serialize;

/// The outcome of a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Published {
    /// The seq the event got in its stream.
    pub seq: u64,
    /// How many clients it was queued to.
    pub delivered: usize,
    /// The publish repeated an idempotency key still in the history window: `seq` is the first
    /// publish's, and nothing was published (`delivered` is 0).
    #[serde(skip_serializing_if = "core::ops::Not::not")]
    pub duplicate: bool,
}

/// The outcome of a subscribe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The canonical channel.
    pub channel: Channel,
    /// Whether the channel is new for this client.
    pub new: bool,
    /// The stream's last seq when the subscription took effect.
    pub seq: u64,
    /// With `since`: whether every missed event is being replayed.
    pub recovered: Option<bool>,
    /// Events replayed.
    pub replayed: usize,
}

/// The outcome of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyOutcome {
    /// Published on `user:<id>`.
    Delivered(Published),
    /// The user's preferences disable this type; nothing was published.
    Suppressed,
}

/// An event numbered outside this hub (by a broker), already encoded: the unit of
/// [`EventHub::deliver`](super::EventHub::deliver) and of a [`Recovery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequenced {
    /// Its seq in its stream. Within one stream a broker numbers events consecutively
    /// (`n`, `n + 1`, ...), so a jump means events were lost.
    pub seq: u64,
    /// The channel it was published on.
    pub channel: Channel,
    /// Its kind (`None` for notifications), for routing to filtered channels.
    pub kind: Option<EventKind>,
    /// The item it is about ([`item_of`](crate::subscription::item_of) its data), for routing
    /// to item channels.
    pub item: Option<u64>,
    /// The complete frame, `seq` included.
    pub frame: Frame,
}

/// What a history source (a broker) answered for a subscribe, read **after** this hub started
/// receiving the stream's live events (so every event after `head` reaches
/// [`EventHub::deliver`](super::EventHub::deliver)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The stream's last seq in the source.
    pub head: u64,
    /// For a subscribe with `since`: whether `events` holds every event of the stream with a seq
    /// in `(since.seq, head]` (false: some are gone, the client has a gap).
    pub complete: bool,
    /// Those events, in seq order.
    pub events: Vec<Sequenced>,
    /// For a subscribe with presence: the connections of each user on the channel on the other
    /// nodes (`None`: not known).
    pub presence: Option<Vec<(std::sync::Arc<str>, u32)>>,
}

/// The outcome of [`EventHub::deliver`](super::EventHub::deliver).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Clients the frame was queued to.
    pub delivered: usize,
    /// Clients disconnected because they missed events before this one (a seq jump).
    pub gap_disconnects: usize,
    /// Whether the event was older than the stream's position here (a duplicate) and ignored.
    pub stale: bool,
    /// Whether the event was numbered below the stream's position here but is not a duplicate:
    /// the broker's numbering went back. The stream started over and its subscribers were
    /// disconnected (counted in `gap_disconnects`) to report a gap.
    pub rewound: bool,
}
