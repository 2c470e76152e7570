//! Recovery: `since` within the epoch and history, and each way it cannot be honoured.

use super::{check, still_open};
use crate::conn::{Conn, Fail};
use crate::hooks::{publish, uniq};
use crate::Target;
use serde_json::{json, Value};

pub(super) async fn recovery_replays_missed_events(t: &Target) -> Result<(), Fail> {
    let ch = format!("repo:{}/rec", uniq("o"));
    let mut c = Conn::open(t).await?;
    let r = c.subscribe(&ch).await?;
    let mut last = r["seq"].as_u64().ok_or("subscribed without seq")?;
    for _ in 0..2 {
        let s = publish(t, &ch, "push", json!({})).await?;
        let e = c.recv().await?;
        check(e["seq"] == s, || format!("live event: {e}"))?;
        last = s;
    }
    let epoch = c.epoch();
    drop(c);
    let mut missed = Vec::new();
    for _ in 0..3 {
        missed.push(publish(t, &ch, "push", json!({})).await?);
    }
    let mut c = Conn::open(t).await?;
    c.send(&json!({"type": "subscribe", "channel": ch, "since": {"seq": last, "epoch": epoch}, "id": "r"}).to_string()).await?;
    let r = c.recv().await?;
    check(r["type"] == "subscribed" && r["recovered"] == true && r["id"] == "r", || {
        format!("expected subscribed recovered:true, got {r}")
    })?;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(c.recv().await?["seq"].as_u64().unwrap_or(0));
    }
    check(got == missed, || format!("replayed {got:?}, expected {missed:?}"))?;
    let live = publish(t, &ch, "push", json!({})).await?;
    let e = c.recv().await?;
    check(e["seq"] == live, || format!("live after replay: {e}"))?;
    still_open(&mut c).await
}

pub(super) async fn recovery_with_wrong_epoch_is_a_gap(t: &Target) -> Result<(), Fail> {
    let ch = format!("repo:{}/gap", uniq("o"));
    publish(t, &ch, "push", json!({})).await?;
    let mut c = Conn::open(t).await?;
    c.send(&json!({"type": "subscribe", "channel": ch, "since": {"seq": 0, "epoch": "not-this-epoch"}}).to_string()).await?;
    let r = c.recv().await?;
    check(r["type"] == "subscribed" && r["recovered"] == false, || {
        format!("expected recovered:false, got {r}")
    })?;
    still_open(&mut c).await.map_err(|e| format!("nothing may be replayed on a gap: {e}"))
}

/// A subscription's position and the connection's epoch, after `n` live events.
async fn position(t: &Target, ch: &str, n: usize) -> Result<(u64, String), Fail> {
    let mut c = Conn::open(t).await?;
    let r = c.subscribe(ch).await?;
    let mut last = r["seq"].as_u64().ok_or("subscribed without seq")?;
    for _ in 0..n {
        last = publish(t, ch, "push", json!({})).await?;
        let e = c.recv().await?;
        check(e["seq"] == last, || format!("live event: {e}"))?;
    }
    Ok((last, c.epoch()))
}

/// Subscribes to `ch` with `since` on a new connection; the connection and the reply.
async fn resume(t: &Target, ch: &str, seq: u64, epoch: &str) -> Result<(Conn, Value), Fail> {
    let mut c = Conn::open(t).await?;
    let since = json!({"seq": seq, "epoch": epoch});
    let r = c.request(json!({"type": "subscribe", "channel": ch, "since": since})).await?;
    check(r["type"] == "subscribed", || format!("expected subscribed, got {r}"))?;
    Ok((c, r))
}

pub(super) async fn recovery_beyond_the_head_is_a_gap(t: &Target) -> Result<(), Fail> {
    let ch = format!("repo:{}/ahead", uniq("o"));
    let (last, epoch) = position(t, &ch, 1).await?;
    let (mut c, r) = resume(t, &ch, last + 1_000_000, &epoch).await?;
    check(r["recovered"] == false, || format!("since beyond the head: {r}"))?;
    still_open(&mut c).await.map_err(|e| format!("nothing may be replayed on a gap: {e}"))
}

pub(super) async fn recovery_at_the_head_replays_nothing(t: &Target) -> Result<(), Fail> {
    let ch = format!("repo:{}/head", uniq("o"));
    let (last, epoch) = position(t, &ch, 2).await?;
    let (mut c, r) = resume(t, &ch, last, &epoch).await?;
    check(r["recovered"] == true && r["seq"] == last, || format!("since at the head: {r}"))?;
    still_open(&mut c)
        .await
        .map_err(|e| format!("nothing was missed, nothing may be replayed: {e}"))
}

pub(super) async fn recovery_past_trimmed_history_is_a_gap(t: &Target) -> Result<(), Fail> {
    let ch = format!("repo:{}/trim", uniq("o"));
    let (last, epoch) = position(t, &ch, 1).await?;
    let size = t.history_size.unwrap_or(0);
    let mut seqs = Vec::new();
    for i in 0..size + 2 {
        seqs.push(publish(t, &ch, "push", json!({ "i": i })).await?);
    }
    // A position still in the history recovers (so a `false` below is the trim, not a refusal).
    let recent = seqs[seqs.len().saturating_sub(4)];
    let (_, r) = resume(t, &ch, recent, &epoch).await?;
    check(r["recovered"] == true, || format!("a position 3 events back: {r}"))?;
    let (mut c, r) = resume(t, &ch, last, &epoch).await?;
    check(r["recovered"] == false, || {
        format!("{} events published since, over a history of {size}: {r}", size + 2)
    })?;
    still_open(&mut c).await.map_err(|e| format!("nothing may be replayed on a gap: {e}"))
}
