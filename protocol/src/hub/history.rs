//! Reading a channel's history ([`EventHub::history`]): the last events it received that are
//! still in the history window, with the position to subscribe from so that nothing is missed
//! and nothing is seen twice.

use super::streams::Maker;
use super::*;

/// What a `history` command answers: the last events of a channel, oldest first, each the frame
/// as it was delivered, and the stream's position when they were read (subscribing with
/// `since: {seq, epoch}` continues right after them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    /// The canonical channel.
    pub channel: Channel,
    /// The hub's epoch.
    pub epoch: String,
    /// The stream's last seq when the history was read.
    pub seq: u64,
    /// The event (or notification) frames.
    pub events: Vec<Frame>,
}

impl HistoryPage {
    /// The `history` frame answering the command `id`.
    pub fn frame(&self, id: Option<&RequestId>) -> Frame {
        let channel = self.channel.to_string();
        crate::wire::history_frame(&channel, &self.epoch, self.seq, &self.events, id)
    }
}

impl EventHub {
    /// The last `limit` events `channel` received that are still in the history window, and the
    /// stream's head. A stream that does not exist yet is made (as a subscribe by `client`
    /// would), so that a subscribe from the returned position finds it where it was.
    ///
    /// # Errors
    /// [`RealtimeError::InvalidChannel`]; [`RealtimeError::RateLimited`] when the stream may not
    /// be made (the stream limit, or `client` made too many).
    pub fn history(
        &self,
        client: &HubClient,
        channel: &str,
        limit: usize,
    ) -> Result<HistoryPage, RealtimeError> {
        let ch = Channel::parse(channel)?;
        let mut s = self.lock_stream(&ch.stream(), Maker::Subscriber(client))?;
        let removed = s.trim(Instant::now(), &self.config);
        self.counters.history.fetch_sub(removed as u64, Relaxed);
        let mut events: Vec<Frame> = s
            .history
            .iter()
            .rev()
            .filter(|e| e.reaches(&ch))
            .take(limit)
            .map(|e| e.frame.clone())
            .collect();
        events.reverse();
        Ok(HistoryPage { channel: ch, epoch: self.epoch(), seq: s.head, events })
    }
}
