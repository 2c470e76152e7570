//! Signals on this node ([`EventHub::signal_local`]): an ephemeral frame to the subscribers of
//! one channel, except the connection that sent it. No seq, no history, no replay.

use super::fan_out::FanOut;
use super::slots::SlotKey;
use super::*;

impl EventHub {
    /// Queues `frame` to every subscriber of exactly `channel` on this node but the connection
    /// `except` (the sender); returns how many got it. A subscriber whose queue is full is
    /// disconnected as a slow consumer.
    pub fn signal_local(
        &self,
        channel: &Channel,
        frame: &Frame,
        except: Option<&HubClient>,
    ) -> usize {
        let Some(stream) = self.existing(&channel.stream()) else { return 0 };
        let except = except.map(|c| c.key);
        let mut out = FanOut::default();
        {
            let s = stream.lock();
            let Some(slot) = s.slots.get(SlotKey::of(channel)) else { return 0 };
            for (key, m) in &slot.members {
                if Some(*key) == except {
                    continue;
                }
                match m.client.queue().push(frame.clone()) {
                    Ok(()) => out.delivered += 1,
                    Err(e) => out.failed.push((m.client.clone(), e)),
                }
            }
        }
        let delivered = out.delivered;
        out.delivered = 0; // signals are not events: not counted as deliveries
        self.settle(&stream, out);
        delivered
    }
}
