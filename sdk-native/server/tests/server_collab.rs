//! Collaboration over the real server on 127.0.0.1: presence with several users and tabs (exact
//! join and leave counts), signals (named by the hub whatever the client claims, never echoed,
//! refused where they do not belong, rate limited), history handed over to a subscribe without
//! gap or duplicate, and item channels under the repository's authorization.

mod server_support;

use serde_json::{json, Value};
use server_support::*;
use std::collections::BTreeMap;
use std::time::Duration;

/// A connection authenticated as `user` (a token that reads every repository).
async fn as_user(s: &TestServer, user: &str) -> Ws {
    let mut c = s.ws().await;
    let r = c.auth(&mint(json!({"sub": user, "exp": exp_in(3600), "repos": ["*/*"]}))).await;
    assert_eq!(r["type"], "authenticated", "{r}");
    c
}

/// Subscribes with presence; the member list as user → connections.
async fn join(c: &mut Ws, channel: &str) -> BTreeMap<String, u64> {
    c.send_json(json!({"type": "subscribe", "channel": channel, "presence": true, "id": 1})).await;
    let r = c.recv().await;
    assert_eq!((r["type"].as_str(), r["id"].as_u64()), (Some("subscribed"), Some(1)), "{r}");
    let p = c.recv().await;
    assert_eq!(p["type"], "presence", "{p}");
    assert!(p.get("id").is_none() && p.get("truncated").is_none(), "{p}");
    p["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["user"].as_str().unwrap().to_owned(), m["connections"].as_u64().unwrap()))
        .collect()
}

/// Reads frames until none has come for `quiet` (pings do not count) and lists the `join` /
/// `leave` frames as (type, user).
async fn changes(c: &mut Ws, quiet: Duration) -> Vec<(String, String)> {
    use tokio_tungstenite::tungstenite::Message;
    let mut out = Vec::new();
    let mut until = tokio::time::Instant::now() + quiet;
    while let Ok(Some(Ok(m))) =
        tokio::time::timeout_at(until, futures_util::StreamExt::next(&mut c.ws)).await
    {
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(&t).unwrap();
            out.push((v["type"].as_str().unwrap().to_owned(), v["user"].as_str().unwrap().into()));
            until = tokio::time::Instant::now() + quiet;
        }
    }
    out
}

#[tokio::test]
async fn three_users_with_several_tabs_join_and_leave_exactly_once() {
    let s = TestServer::default().await;
    let ch = uniq("repo:o/presence") + "/prs/12";
    let mut watcher = as_user(&s, "watcher").await;
    assert_eq!(join(&mut watcher, &ch).await, BTreeMap::from([("watcher".into(), 1)]));
    let mut tabs = Vec::new();
    for (user, n) in [("alice", 3), ("bob", 2), ("carol", 1)] {
        for _ in 0..n {
            let mut c = as_user(&s, user).await;
            join(&mut c, &ch).await;
            tabs.push((user, c));
        }
    }
    let mut anon = s.ws().await;
    let list = join(&mut anon, &ch).await;
    let want: BTreeMap<String, u64> =
        [("alice", 3), ("bob", 2), ("carol", 1), ("watcher", 1)].map(|(u, n)| (u.into(), n)).into();
    assert_eq!(list, want, "the list counts every tab; the anonymous watcher is not a member");
    let joins: Vec<(String, String)> =
        ["alice", "bob", "carol"].into_iter().map(|u| ("join".to_owned(), u.to_owned())).collect();
    assert_eq!(changes(&mut watcher, Duration::from_millis(300)).await, joins);
    // Every tab but alice's last closes: only bob and carol leave.
    let last_alice = tabs.remove(0).1;
    for (_, tab) in tabs {
        drop(tab);
    }
    let leaves: Vec<(String, String)> =
        ["bob", "carol"].into_iter().map(|u| ("leave".to_owned(), u.to_owned())).collect();
    let mut got = changes(&mut watcher, Duration::from_millis(500)).await;
    got.sort();
    assert_eq!(got, leaves);
    drop(last_alice);
    assert_eq!(
        changes(&mut watcher, Duration::from_millis(500)).await,
        [("leave".to_owned(), "alice".to_owned())]
    );
    // The anonymous watcher came after the joins (they were in its list): it saw the leaves.
    let mut seen = changes(&mut anon, Duration::from_millis(100)).await;
    seen.sort();
    let all_left: Vec<(String, String)> =
        ["alice", "bob", "carol"].into_iter().map(|u| ("leave".to_owned(), u.to_owned())).collect();
    assert_eq!(seen, all_left);
    // The query answers with the id.
    let p = watcher.request(json!({"type": "presence", "channel": ch, "id": "q"})).await;
    assert_eq!(
        p,
        json!({"type": "presence", "channel": ch, "members": [{"user": "watcher", "connections": 1}], "id": "q"})
    );
}

#[tokio::test]
async fn a_dead_connection_leaves_within_its_heartbeat_timeout() {
    let mut cfg = config();
    cfg.ping_interval = Duration::from_millis(100);
    cfg.idle_timeout = Duration::from_millis(500);
    let s = TestServer::start(Default::default(), cfg).await;
    let ch = uniq("repo:o/dead") + "/prs/1";
    let mut watcher = as_user(&s, "watcher").await;
    join(&mut watcher, &ch).await;
    // Alice joins, then goes silent: nothing reads her socket, so no pong answers the hub's pings
    // (as with a frozen tab or a cable pulled: no close frame ever comes).
    let mut alice = as_user(&s, "alice").await;
    join(&mut alice, &ch).await;
    let t0 = std::time::Instant::now();
    assert_eq!(
        changes(&mut watcher, Duration::from_millis(200)).await,
        [("join".into(), "alice".into())]
    );
    let mut seen = Vec::new();
    while seen.is_empty() && t0.elapsed() < Duration::from_secs(5) {
        seen = changes(&mut watcher, Duration::from_millis(100)).await;
    }
    let waited = t0.elapsed();
    assert_eq!(seen, [("leave".to_owned(), "alice".to_owned())]);
    assert!(waited >= Duration::from_millis(400), "left after {waited:?}: before the timeout");
    assert!(waited < Duration::from_secs(2), "left after {waited:?}");
    assert_eq!(alice.closed(WAIT).await.0, 4009, "closed as idle");
}

#[tokio::test]
async fn signals_are_named_by_the_hub_never_echoed_and_refused_where_they_do_not_belong() {
    let s = TestServer::default().await;
    let ch = uniq("repo:o/sig") + "/issues/3";
    let mut alice = as_user(&s, "alice").await;
    let mut bob = as_user(&s, "bob").await;
    alice.subscribe(&ch).await;
    bob.subscribe(&ch).await;
    // A client-sent `user` is ignored: the hub names the sender.
    let spoof = json!({"type": "signal", "channel": ch, "event": "typing", "data": {"on": true}, "user": "mallory", "id": 4});
    alice.send_json(spoof).await;
    assert_eq!(
        bob.recv().await,
        json!({"type": "signal", "channel": ch, "event": "typing", "data": {"on": true}, "user": "alice"})
    );
    alice.still_open().await; // nothing came back to the sender
                              // Where signals do not belong.
    let sig = |channel: &str, event: &str, data: Value| {
        json!({"type": "signal", "channel": channel, "event": event, "data": data, "id": 9})
            .to_string()
    };
    let base = ch.rsplit_once("/issues").unwrap().0.to_owned();
    alice.expect_error(&sig(&base, "typing", json!({})), "forbidden").await;
    alice.expect_error(&sig("user:alice", "typing", json!({})), "forbidden").await;
    alice.expect_error(&sig(&ch, "Typing", json!({})), "invalid_message").await;
    alice.expect_error(&sig(&ch, &"x".repeat(65), json!({})), "invalid_message").await;
    alice.expect_error(&sig(&ch, "big", json!("x".repeat(4096))), "invalid_message").await;
    alice.expect_error(&sig("repo:bad", "typing", json!({})), "invalid_channel").await;
    let mut anon = s.ws().await;
    anon.expect_error(&sig(&ch, "typing", json!({})), "forbidden").await;
    // 64 characters and 4 KiB exactly are fine.
    alice.send(&sig(&ch, &"a.b-c_9".repeat(10)[..64], json!("x".repeat(4094)))).await;
    assert_eq!(bob.recv().await["user"], "alice");
    bob.still_open().await;
    // A token that may not read the repository may not signal on its items.
    let private = TestServer::start(Default::default(), token_config()).await;
    let mut eve = private.ws().await;
    eve.auth(&mint(json!({"sub": "eve", "exp": exp_in(60), "repos": ["other/*"]}))).await;
    eve.expect_error(&sig(&ch, "typing", json!({})), "forbidden").await;
    let mut eve_sub = private.ws().await;
    eve_sub.auth(&mint(json!({"sub": "eve", "exp": exp_in(60), "repos": ["other/*"]}))).await;
    eve_sub
        .expect_error(&json!({"type": "subscribe", "channel": ch}).to_string(), "forbidden")
        .await;
    let allowed = json!({"type": "subscribe", "channel": "repo:other/r/prs/1"});
    assert_eq!(eve_sub.request(allowed).await["type"], "subscribed");
}

#[tokio::test]
async fn signals_have_their_own_rate_limit() {
    let s = TestServer::default().await;
    let ch = uniq("repo:o/rate") + "/prs/1";
    let mut alice = as_user(&s, "alice").await;
    let mut bob = as_user(&s, "bob").await;
    bob.subscribe(&ch).await;
    let sig = json!({"type": "signal", "channel": ch, "event": "cursor", "data": {}}).to_string();
    for _ in 0..20 {
        alice.send(&sig).await;
    }
    let e = alice.expect_error(&sig, "rate_limited").await;
    assert!(e["message"].as_str().unwrap().contains("signals"), "{e}");
    for _ in 0..20 {
        assert_eq!(bob.recv().await["type"], "signal");
    }
    // Other commands still pass, and another connection of the same user has its own bucket.
    alice.still_open().await;
    let mut alice2 = as_user(&s, "alice").await;
    alice2.send(&sig).await;
    assert_eq!(bob.recv().await["user"], "alice");
}

#[tokio::test]
async fn history_then_subscribe_since_misses_nothing_and_repeats_nothing() {
    let s = TestServer::default().await;
    let base = uniq("repo:o/hist");
    let item = format!("{base}/prs/5");
    let mut live = s.ws().await;
    live.subscribe(&item).await;
    let mut delivered = Vec::new();
    for i in 1..=3 {
        s.publish(&base, "pr_updated", json!({"number": 5, "i": i})).await;
        s.publish(&base, "pr_updated", json!({"number": 6, "i": i})).await;
        delivered.push(live.recv_text().await);
    }
    let mut c = s.ws().await;
    let h = c.request(json!({"type": "history", "channel": item, "limit": 2, "id": 7})).await;
    assert_eq!((h["type"].as_str(), h["id"].as_u64()), (Some("history"), Some(7)), "{h}");
    assert_eq!(h["epoch"], s.hub.epoch());
    let events: Vec<String> =
        h["events"].as_array().unwrap().iter().map(|e| e.to_string()).collect();
    let as_json = |t: &String| serde_json::from_str::<Value>(t).unwrap().to_string();
    assert_eq!(events, delivered[1..].iter().map(as_json).collect::<Vec<_>>());
    let after = [
        s.publish(&base, "pr_merged", json!({"number": 5})).await,
        s.publish(&item, "pr_comment", json!({"parent_number": 5})).await,
    ];
    let since = json!({"seq": h["seq"], "epoch": h["epoch"]});
    let r = c.request(json!({"type": "subscribe", "channel": item, "since": since})).await;
    assert_eq!(r["recovered"], true, "{r}");
    for seq in after {
        assert_eq!(c.recv().await["seq"], seq);
    }
    c.still_open().await;
    // The default limit is 20; 0 and 101 are refused.
    let h = c.request(json!({"type": "history", "channel": base})).await;
    assert_eq!(h["events"].as_array().unwrap().len(), 8);
    for limit in [0, 101] {
        let bad = json!({"type": "history", "channel": base, "limit": limit}).to_string();
        c.expect_error(&bad, "invalid_message").await;
    }
    // Authorization as for subscribe.
    let private = TestServer::start(Default::default(), token_config()).await;
    let mut anon = private.ws().await;
    let h = json!({"type": "history", "channel": "repo:p/q/prs/1"}).to_string();
    anon.expect_error(&h, "forbidden").await;
    let p = json!({"type": "presence", "channel": "repo:p/q/prs/1"}).to_string();
    anon.expect_error(&p, "forbidden").await;
}
