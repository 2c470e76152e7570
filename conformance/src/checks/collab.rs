//! Collaboration: history, presence (members, joins, leaves, one member per user), signals
//! (delivered to the others, with the hub's user, rate limited).

use super::{as_user, check, expect_error, still_open};
use crate::conn::{Conn, Fail};
use crate::hooks::{publish, uniq};
use crate::Target;
use serde_json::{json, Value};
use std::time::Duration;

/// A fresh pull-request channel.
fn item() -> String {
    format!("repo:{}/app/prs/7", uniq("o"))
}

/// Subscribes `c` to `ch` with presence; the member list it gets after `subscribed`.
async fn watch(c: &mut Conn, ch: &str) -> Result<Value, Fail> {
    let r = c.request(json!({"type": "subscribe", "channel": ch, "presence": true})).await?;
    check(r["type"] == "subscribed", || format!("subscribe with presence: {r}"))?;
    let p = c.recv().await?;
    check(p["type"] == "presence" && p["channel"] == ch && p["id"].is_null(), || {
        format!("expected the presence frame right after subscribed, got {p}")
    })?;
    Ok(p["members"].clone())
}

/// Expects `{"type": kind, "channel": ch, "user": user}` next.
async fn expect_member(c: &mut Conn, kind: &str, ch: &str, user: &str) -> Result<(), Fail> {
    let f = c.recv().await?;
    check(f == json!({"type": kind, "channel": ch, "user": user}), || {
        format!("expected {kind} of {user}, got {f}")
    })
}

pub(super) async fn history_returns_the_last_events(t: &Target) -> Result<(), Fail> {
    let ch = format!("repo:{}/hist", uniq("o"));
    let mut c = Conn::open(t).await?;
    c.subscribe(&ch).await?;
    let mut frames = Vec::new();
    let mut last = 0;
    for i in 0..3 {
        last = publish(t, &ch, "push", json!({ "i": i })).await?;
        frames.push(c.recv().await?);
    }
    let h = c.request(json!({"type": "history", "channel": ch, "limit": 2, "id": "h"})).await?;
    check(h["type"] == "history" && h["channel"] == ch.as_str() && h["id"] == "h", || {
        format!("history reply: {h}")
    })?;
    check(h["seq"] == last && h["epoch"] == c.epoch().as_str(), || {
        format!("history must carry the head {last} and the epoch {}: {h}", c.epoch())
    })?;
    check(h["events"] == json!(frames[1..]), || {
        format!(
            "expected the last two frames as delivered, oldest first: {:?}\n  got {}",
            &frames[1..],
            h["events"]
        )
    })
}

pub(super) async fn history_then_since_misses_nothing(t: &Target) -> Result<(), Fail> {
    let ch = format!("repo:{}/hsince", uniq("o"));
    publish(t, &ch, "push", json!({})).await?;
    let mut c = Conn::open(t).await?;
    let h = c.request(json!({"type": "history", "channel": ch})).await?;
    let head = h["seq"].as_u64().ok_or_else(|| format!("history without seq: {h}"))?;
    let after = publish(t, &ch, "push", json!({"after": true})).await?;
    let since = json!({"seq": head, "epoch": h["epoch"]});
    let r = c.request(json!({"type": "subscribe", "channel": ch, "since": since})).await?;
    check(r["recovered"] == true, || format!("subscribe since the history's head: {r}"))?;
    let e = c.recv().await?;
    check(e["seq"] == after, || format!("expected the event after the history, got {e}"))?;
    still_open(&mut c).await
}

pub(super) async fn history_limit_bounds(t: &Target) -> Result<(), Fail> {
    let ch = format!("repo:{}/hlim", uniq("o"));
    let mut c = Conn::open(t).await?;
    for limit in [0, 101] {
        let bad = json!({"type": "history", "channel": ch, "limit": limit}).to_string();
        expect_error(&mut c, &bad, "invalid_message").await?;
    }
    let h = c.request(json!({"type": "history", "channel": ch, "limit": 100})).await?;
    check(h["type"] == "history" && h["events"].is_array(), || format!("limit 100: {h}"))?;
    expect_error(&mut c, r#"{"type":"history","channel":"repo:nope"}"#, "invalid_channel").await?;
    still_open(&mut c).await
}

pub(super) async fn presence_lists_joins_and_leaves(t: &Target) -> Result<(), Fail> {
    let ch = item();
    let mut alice = as_user(t, "alice", json!({})).await?;
    let members = watch(&mut alice, &ch).await?;
    check(members == json!([{"user": "alice", "connections": 1}]), || {
        format!("alice alone: {members}")
    })?;
    let mut bob = as_user(t, "bob", json!({})).await?;
    let members = watch(&mut bob, &ch).await?;
    let both = json!([{"user": "alice", "connections": 1}, {"user": "bob", "connections": 1}]);
    check(members == both, || format!("bob's list (by user name): {members}"))?;
    expect_member(&mut alice, "join", &ch, "bob").await?;
    still_open(&mut bob).await.map_err(|e| format!("no join of one's own: {e}"))?;
    bob.request(json!({"type": "unsubscribe", "channel": ch})).await?;
    expect_member(&mut alice, "leave", &ch, "bob").await?;
    let mut carol = as_user(t, "carol", json!({})).await?;
    watch(&mut carol, &ch).await?;
    expect_member(&mut alice, "join", &ch, "carol").await?;
    carol.close(1000).await?;
    expect_member(&mut alice, "leave", &ch, "carol").await?;
    still_open(&mut alice).await
}

pub(super) async fn presence_counts_connections_per_user(t: &Target) -> Result<(), Fail> {
    let ch = item();
    let mut carol = as_user(t, "carol", json!({})).await?;
    watch(&mut carol, &ch).await?;
    let mut tab1 = as_user(t, "alice", json!({})).await?;
    watch(&mut tab1, &ch).await?;
    expect_member(&mut carol, "join", &ch, "alice").await?;
    let mut tab2 = as_user(t, "alice", json!({})).await?;
    let members = watch(&mut tab2, &ch).await?;
    let two = members.as_array().and_then(|m| m.iter().find(|m| m["user"] == "alice")).cloned();
    check(two == Some(json!({"user": "alice", "connections": 2})), || {
        format!("alice's second tab: {members}")
    })?;
    tab1.close(1000).await?;
    // Alice is still here (tab 2): no leave. Read the list until the hub counted the close.
    let one = json!([{"user": "alice", "connections": 1}, {"user": "carol", "connections": 1}]);
    let mut p = Value::Null;
    for i in 0..50 {
        p = carol.request(json!({"type": "presence", "channel": ch, "id": i})).await?;
        check(p["type"] == "presence", || {
            format!("expected no leave while tab 2 is open, got {p}")
        })?;
        if p["members"] == one {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    check(p["members"] == one, || format!("after tab 1 closed: {p}"))?;
    tab2.close(1000).await?;
    expect_member(&mut carol, "leave", &ch, "alice").await?;
    still_open(&mut carol).await
}

pub(super) async fn presence_command_reads_without_joining(t: &Target) -> Result<(), Fail> {
    let ch = item();
    let mut alice = as_user(t, "alice", json!({})).await?;
    watch(&mut alice, &ch).await?;
    let mut dave = as_user(t, "dave", json!({})).await?;
    let p = dave.request(json!({"type": "presence", "channel": ch, "id": "p"})).await?;
    let want = json!({"type": "presence", "channel": ch, "members": [{"user": "alice", "connections": 1}], "id": "p"});
    check(p == want, || format!("expected {want}\n  got      {p}"))?;
    still_open(&mut alice).await.map_err(|e| format!("reading presence is not joining: {e}"))
}

pub(super) async fn anonymous_watchers_are_not_members(t: &Target) -> Result<(), Fail> {
    let ch = item();
    let mut alice = as_user(t, "alice", json!({})).await?;
    watch(&mut alice, &ch).await?;
    let mut anon = Conn::open(t).await?;
    let members = watch(&mut anon, &ch).await?;
    check(members == json!([{"user": "alice", "connections": 1}]), || {
        format!("an anonymous watcher sees the members, without itself: {members}")
    })?;
    still_open(&mut alice).await.map_err(|e| format!("an anonymous watcher joined: {e}"))
}

pub(super) async fn signals_reach_the_others_with_the_hub_user(t: &Target) -> Result<(), Fail> {
    let ch = item();
    let base = ch.trim_end_matches("/prs/7").to_owned();
    let mut alice = as_user(t, "alice", json!({})).await?;
    alice.subscribe(&ch).await?;
    let mut bob = as_user(t, "bob", json!({})).await?;
    bob.subscribe(&ch).await?;
    let mut repo = Conn::open(t).await?;
    repo.subscribe(&base).await?;
    let sent = json!({"type": "signal", "channel": ch, "event": "typing", "data": {"line": 3}, "user": "mallory"});
    alice.send(&sent.to_string()).await?;
    let got = bob.recv().await?;
    let want = json!({"type": "signal", "channel": ch, "event": "typing", "data": {"line": 3}, "user": "alice"});
    check(got == want, || format!("expected {want}\n  got      {got}"))?;
    still_open(&mut alice).await.map_err(|e| format!("the sender got its own signal back: {e}"))?;
    still_open(&mut repo).await.map_err(|e| format!("the repository channel got a signal: {e}"))
}

pub(super) async fn signals_need_an_item_channel_and_a_user(t: &Target) -> Result<(), Fail> {
    let ch = item();
    let mut anon = Conn::open(t).await?;
    anon.subscribe(&ch).await?;
    let frame =
        |ch: &str| json!({"type": "signal", "channel": ch, "event": "typing", "id": 5}).to_string();
    let e = expect_error(&mut anon, &frame(&ch), "forbidden").await?;
    check(e["id"] == 5, || format!("the error echoes the id: {e}"))?;
    let mut alice = as_user(t, "alice", json!({})).await?;
    let base = ch.trim_end_matches("/prs/7");
    expect_error(&mut alice, &frame(base), "forbidden").await?;
    still_open(&mut alice).await
}

pub(super) async fn signal_names_and_sizes(t: &Target) -> Result<(), Fail> {
    let ch = item();
    let mut alice = as_user(t, "alice", json!({})).await?;
    alice.subscribe(&ch).await?;
    for event in ["", "Typing", "a b", &"x".repeat(65)] {
        let f = json!({"type": "signal", "channel": ch, "event": event});
        expect_error(&mut alice, &f.to_string(), "invalid_message").await?;
    }
    let big = json!({"type": "signal", "channel": ch, "event": "cursor", "data": "x".repeat(4200)});
    expect_error(&mut alice, &big.to_string(), "invalid_message").await?;
    still_open(&mut alice).await
}

pub(super) async fn signal_rate_limit(t: &Target) -> Result<(), Fail> {
    let ch = item();
    let mut alice = as_user(t, "alice", json!({})).await?;
    alice.subscribe(&ch).await?;
    let mut bob = as_user(t, "bob", json!({})).await?;
    bob.subscribe(&ch).await?;
    for i in 0..40 {
        let f = json!({"type": "signal", "channel": ch, "event": "cursor", "data": i});
        alice.send(&f.to_string()).await?;
    }
    alice.send(r#"{"type":"ping","id":"end"}"#).await?;
    let mut refused = 0;
    loop {
        let f = alice.recv().await?;
        if f["id"] == "end" {
            break;
        }
        check(f["code"] == "rate_limited", || format!("expected rate_limited errors, got {f}"))?;
        refused += 1;
    }
    check((10..=25).contains(&refused), || {
        format!("40 signals at once, bursts of 20 at 10/s: {refused} refused")
    })?;
    for _ in 0..40 - refused {
        let s = bob.recv().await?;
        check(s["type"] == "signal", || format!("expected a signal, got {s}"))?;
    }
    still_open(&mut bob).await.map_err(|e| format!("a refused signal was sent anyway: {e}"))
}
