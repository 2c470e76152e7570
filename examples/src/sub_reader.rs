//! Reading a native [`Subscription`] in tests: wait for the hub's confirmation, collect events
//! and gaps. Every wait is bounded.

use futures_util::StreamExt;
use guts_realtime_native::client::GapReason;
use guts_realtime_native::{Item, Subscription};
use std::time::Duration;
use tokio::time::timeout;

/// Reads items until `n` events arrived; returns their seqs and every gap seen.
///
/// # Panics
/// If the stream ends or `n` events do not arrive within 30 s.
pub async fn events(sub: &mut Subscription, n: usize) -> (Vec<u64>, Vec<GapReason>) {
    let mut seqs = Vec::new();
    let mut gaps = Vec::new();
    let r = timeout(Duration::from_secs(30), async {
        while seqs.len() < n {
            match sub.next().await.expect("stream open") {
                Item::Event(e) => seqs.push(e.seq.unwrap_or(0)),
                Item::Gap { reason, .. } => gaps.push(reason),
                _ => {}
            }
        }
    })
    .await;
    assert!(r.is_ok(), "timed out with {seqs:?} {gaps:?}");
    (seqs, gaps)
}

/// Waits for the hub's confirmation; returns its `recovered`.
///
/// # Panics
/// If the stream ends or no confirmation arrives within 20 s.
pub async fn subscribed(sub: &mut Subscription) -> Option<bool> {
    timeout(Duration::from_secs(20), async {
        loop {
            if let Item::Subscribed { recovered } = sub.next().await.expect("open") {
                return recovered;
            }
        }
    })
    .await
    .expect("subscribed in time")
}
