//! Several `guts-hub` processes sharing one real `redis-server` (`--broker`): cross-node delivery
//! (one seq per stream, the publisher's frame byte for byte), recovery of a client that moves to
//! another node, the unsubscribe-then-resubscribe race, and Redis restarts mid-stream with and
//! without persistence (same epoch and recovery / new epoch and a gap). Everything on 127.0.0.1,
//! bounded in time.
//!
//! Skipped (with a message) when `redis-server` is not installed, unless `GUTS_REQUIRE_REDIS` is
//! set: then a missing `redis-server` fails. `scripts/redis-test.sh` installs it and sets it.

use futures_util::StreamExt;
use guts_conformance::conn::Conn;
use guts_realtime_examples::hub_process::HubProcess;
use guts_realtime_examples::proxy::Proxy;
use guts_realtime_examples::redis_process::{redis_or_skip, RedisServer};
use guts_realtime_examples::sub_reader::{events, subscribed};
use guts_realtime_native::client::{ConnectionState, GapReason};
use guts_realtime_native::{Client, Item};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::time::timeout;

const HUB: &str = env!("CARGO_BIN_EXE_guts-hub");

async fn redis(test: &str, persistent: bool) -> Option<RedisServer> {
    let bin = redis_or_skip(test)?;
    Some(RedisServer::start(&bin, persistent).await.expect("redis-server starts"))
}

async fn node(r: &RedisServer, extra: &[&str]) -> HubProcess {
    let url = r.url();
    let mut args = vec!["--broker", url.as_str()];
    args.extend_from_slice(extra);
    HubProcess::start(HUB, &args).await.expect("guts-hub starts")
}

fn client(url: String) -> Client {
    Client::builder(url)
        .backoff(Duration::from_millis(50), Duration::from_millis(500))
        .heartbeat(Duration::from_millis(800), Duration::from_millis(800))
        .connect()
        .unwrap()
}

/// `GET` → (status, body).
async fn get(url: String) -> (u16, String) {
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent =
            ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let mut resp = agent.get(&url).call().expect("hub reachable");
        (resp.status().as_u16(), resp.body_mut().read_to_string().unwrap_or_default())
    })
    .await
    .unwrap()
}

async fn metric(hub: &HubProcess, name: &str) -> u64 {
    let (_, text) = get(format!("{}/metrics", hub.http_url())).await;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("guts_hub_{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric {name}"))
}

/// Waits until `/healthz` answers `status`; returns its body.
async fn health(hub: &HubProcess, status: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (s, body) = get(format!("{}/healthz", hub.http_url())).await;
        if s == status {
            return body;
        }
        assert!(Instant::now() < deadline, "/healthz stayed {s} {body:?}, expected {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The next `event` frame on a raw connection (skipping nothing else: any other frame fails).
async fn next_event(c: &mut Conn) -> (Value, String) {
    let text = c.recv_text().await.expect("an event");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["type"], "event", "{text}");
    (v, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_published_on_any_node_reach_subscribers_on_every_node() {
    let Some(r) = redis("cross_node", false).await else { return };
    let (a, b, c) = (node(&r, &[]).await, node(&r, &[]).await, node(&r, &[]).await);
    let mut on_a = Conn::welcomed(&a.ws_url()).await.unwrap();
    let mut on_b = Conn::welcomed(&b.ws_url()).await.unwrap();
    let mut on_c = Conn::welcomed(&c.ws_url()).await.unwrap();
    assert_eq!(on_a.epoch(), on_b.epoch(), "one cluster, one epoch");
    assert_eq!(on_b.epoch(), on_c.epoch());
    assert_eq!(on_b.subscribe("repo:x/y").await.unwrap()["seq"], 0);
    assert_eq!(on_c.subscribe("repo:x/y/prs").await.unwrap()["seq"], 0);

    for i in 1..=3u64 {
        assert_eq!(a.publish("repo:x/y", "pr_opened", json!({ "i": i })).await.unwrap(), i);
        let (vb, tb) = next_event(&mut on_b).await;
        let (_, tc) = next_event(&mut on_c).await;
        assert_eq!(vb["seq"], i);
        assert_eq!(vb["data"]["i"], i);
        assert_eq!(tb, tc, "every node sends the publisher's frame, byte for byte");
    }
    // A push reaches the repository channel on B, not the /prs channel on C.
    assert_eq!(c.publish("repo:x/y", "push", json!({})).await.unwrap(), 4);
    assert_eq!(next_event(&mut on_b).await.0["seq"], 4);
    // Publishing over WebSocket on B, and on a node that has no subscriber itself.
    on_a.send(&json!({"type": "auth", "token": a.publish_key}).to_string()).await.unwrap();
    assert_eq!(on_a.recv().await.unwrap()["type"], "authenticated");
    on_a.send(r#"{"type":"publish","channel":"repo:x/y/prs","event":"pr_merged","id":7}"#)
        .await
        .unwrap();
    let reply = on_a.recv().await.unwrap();
    assert_eq!((reply["type"].as_str(), reply["seq"].as_u64()), (Some("published"), Some(5)));
    let (_, tb) = next_event(&mut on_b).await;
    let (vc, tc) = next_event(&mut on_c).await;
    assert_eq!((vc["seq"].as_u64(), tb), (Some(5), tc));
    // Another stream has its own seqs.
    assert_eq!(b.publish("repo:other/one", "push", json!({})).await.unwrap(), 1);

    assert_eq!(metric(&b, "broker_up").await, 1);
    assert_eq!(metric(&b, "broker_sharded").await, 1, "redis 7: sharded pub/sub");
    assert!(metric(&b, "broker_received_total").await >= 5);
    assert_eq!(metric(&b, "events_published_total").await, 1, "what this node published");
    let (status, body) = get(format!("{}/healthz", a.http_url())).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_moves_to_another_node_recovers_without_loss_or_duplicates() {
    let Some(r) = redis("recovery_across_nodes", false).await else { return };
    let (a, b, publisher) = (node(&r, &[]).await, node(&r, &[]).await, node(&r, &[]).await);
    // The proxy plays the load balancer: first node A, then node B.
    let lb = Proxy::start(a.addr()).await.unwrap();
    let c = client(format!("ws://{}/ws", lb.addr()));
    let mut sub = c.subscribe("repo:move/it").await.unwrap();
    assert_eq!(subscribed(&mut sub).await, None);
    for i in 0..5 {
        publisher.publish("repo:move/it", "push", json!({ "i": i })).await.unwrap();
    }
    let (mut got, gaps) = events(&mut sub, 5).await;
    assert!(gaps.is_empty());

    // Node A goes away; events keep coming while the client is disconnected.
    lb.refuse(true);
    lb.cut();
    let mut state = c.state();
    timeout(
        Duration::from_secs(20),
        state.wait_for(|s| matches!(s.state, ConnectionState::Reconnecting { .. })),
    )
    .await
    .unwrap()
    .unwrap();
    for i in 5..10 {
        publisher.publish("repo:move/it", "push", json!({ "i": i })).await.unwrap();
    }
    lb.set_upstream(b.addr());
    lb.refuse(false);
    assert_eq!(subscribed(&mut sub).await, Some(true), "recovered from Redis on node B");
    let (more, gaps) = events(&mut sub, 5).await;
    got.extend(more);
    assert!(gaps.is_empty(), "{gaps:?}");
    // Live again, through B.
    for i in 10..13 {
        a.publish("repo:move/it", "push", json!({ "i": i })).await.unwrap();
    }
    let (more, gaps) = events(&mut sub, 3).await;
    got.extend(more);
    assert!(gaps.is_empty());
    assert_eq!(got, (1..=13).collect::<Vec<u64>>(), "no loss, no duplicate, in order");
    assert!(metric(&b, "frames_replayed_total").await >= 5);
    drop(c);
}

/// The peer bug: with an immediate broker unsubscribe when a channel's last local subscriber
/// leaves, a quick resubscribe lost the stream. Here the grace period is 0 (the node unsubscribes
/// from Redis as soon as it can) and the resubscribe comes at varying delays around it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_then_immediate_resubscribe_never_loses_the_stream() {
    let Some(r) = redis("unsubscribe_race", false).await else { return };
    let publisher = node(&r, &[]).await;
    let b = node(&r, &["--broker-grace-secs", "0"]).await;
    let ch = "repo:race/r";
    let mut conn = Conn::welcomed(&b.ws_url()).await.unwrap();
    for round in 0..30u64 {
        conn.subscribe(ch).await.unwrap();
        conn.send(&json!({"type": "unsubscribe", "channel": ch}).to_string()).await.unwrap();
        assert_eq!(conn.recv().await.unwrap()["type"], "unsubscribed");
        tokio::time::sleep(Duration::from_millis(round * 7 % 45)).await;
        conn.subscribe(ch).await.unwrap();
        let seq = publisher.publish(ch, "push", json!({ "round": round })).await.unwrap();
        let (v, _) = next_event(&mut conn).await;
        assert_eq!((v["seq"].as_u64(), v["data"]["round"].as_u64()), (Some(seq), Some(round)));
    }
    // The handover: one run's subscribers leave, the next run's arrive at once.
    for round in 0..10u64 {
        let mut next = Conn::welcomed(&b.ws_url()).await.unwrap();
        drop(conn);
        tokio::time::sleep(Duration::from_millis(round * 11 % 40)).await;
        next.subscribe(ch).await.unwrap();
        let seq = publisher.publish(ch, "push", json!({})).await.unwrap();
        assert_eq!(next_event(&mut next).await.0["seq"].as_u64(), Some(seq));
        conn = next;
    }
    assert!(
        metric(&b, "broker_topic_unsubscribes_total").await > 0,
        "the node did unsubscribe from Redis in between (the race was exercised)"
    );

    // With the default 5 s grace, an unsubscribe does not reach Redis at once.
    let lazy = node(&r, &[]).await;
    let mut l = Conn::welcomed(&lazy.ws_url()).await.unwrap();
    l.subscribe(ch).await.unwrap();
    l.send(&json!({"type": "unsubscribe", "channel": ch}).to_string()).await.unwrap();
    assert_eq!(l.recv().await.unwrap()["type"], "unsubscribed");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(metric(&lazy, "broker_topic_unsubscribes_total").await, 0);
    assert_eq!(metric(&lazy, "broker_topics").await, 1);
    l.subscribe(ch).await.unwrap();
    let seq = publisher.publish(ch, "push", json!({})).await.unwrap();
    assert_eq!(next_event(&mut l).await.0["seq"].as_u64(), Some(seq));
    assert_eq!(metric(&lazy, "broker_topic_subscribes_total").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_with_persistence_keeps_the_epoch_and_nothing_is_lost() {
    let Some(mut r) = redis("restart_persistent", true).await else { return };
    let (a, b) = (node(&r, &[]).await, node(&r, &[]).await);
    let ch = "repo:keep/it";
    let c = client(b.ws_url());
    let mut sub = c.subscribe(ch).await.unwrap();
    subscribed(&mut sub).await;
    for i in 0..3 {
        a.publish(ch, "push", json!({ "i": i })).await.unwrap();
    }
    let (mut got, _) = events(&mut sub, 3).await;
    // The publishing node counts what it published, in /api/stats and /metrics alike.
    let (_, stats) = get(format!("{}/api/stats", a.http_url())).await;
    assert!(stats.contains(r#""total_events":3"#), "{stats}");
    assert_eq!(metric(&a, "events_published_total").await, 3);
    let mut local = Conn::welcomed(&a.ws_url()).await.unwrap();
    let epoch = local.epoch();

    // Redis goes down: local connections are still served, health tells the truth.
    r.stop().await;
    assert_eq!(health(&a, 503).await, "broker unavailable\n");
    health(&b, 503).await;
    let ready = get(format!("{}/readyz", a.http_url())).await;
    assert_eq!(ready, (503, "broker unavailable\n".to_owned()), "not ready without Redis");
    assert_eq!(metric(&a, "broker_up").await, 0);
    let err = a.publish(ch, "push", json!({})).await.unwrap_err();
    assert!(err.starts_with("503") && err.contains("broker unavailable"), "{err}");
    assert!(err.contains(r#""code":"unavailable""#), "{err}");
    local.roundtrip(r#"{"type":"ping"}"#, r#"{"type":"pong"}"#).await.unwrap();
    let since = json!({"type": "subscribe", "channel": ch, "since": {"seq": 1, "epoch": epoch}});
    local.send(&since.to_string()).await.unwrap();
    let reply = local.recv().await.unwrap();
    assert_eq!(reply["recovered"], false, "no pretending while Redis is down: {reply}");

    r.restart().await.unwrap();
    health(&a, 200).await;
    assert_eq!(get(format!("{}/readyz", a.http_url())).await.0, 200, "ready again");
    health(&b, 200).await;
    assert_eq!(
        Conn::welcomed(&b.ws_url()).await.unwrap().epoch(),
        epoch,
        "history kept: same epoch"
    );
    for i in 3..6 {
        a.publish(ch, "push", json!({ "i": i })).await.unwrap();
    }
    let (more, gaps) = events(&mut sub, 3).await;
    got.extend(more);
    assert!(gaps.is_empty(), "{gaps:?}");
    assert_eq!(got, (1..=6).collect::<Vec<u64>>());
    // Recovery across the restart, on another node.
    let mut late = Conn::welcomed(&b.ws_url()).await.unwrap();
    late.send(&since.to_string()).await.unwrap();
    let reply = late.recv().await.unwrap();
    assert_eq!((reply["recovered"].as_bool(), reply["seq"].as_u64()), (Some(true), Some(6)));
    for want in 2..=6u64 {
        assert_eq!(next_event(&mut late).await.0["seq"].as_u64(), Some(want));
    }
    assert!(metric(&a, "broker_connects_total").await >= 2);
    assert_eq!(metric(&a, "broker_epoch_changes_total").await, 0);
    drop(c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_without_persistence_changes_the_epoch_and_reports_a_gap() {
    let Some(mut r) = redis("restart_empty", false).await else { return };
    let (a, b) = (node(&r, &[]).await, node(&r, &[]).await);
    let ch = "repo:lose/it";
    let c = client(b.ws_url());
    let mut sub = c.subscribe(ch).await.unwrap();
    subscribed(&mut sub).await;
    for _ in 0..2 {
        a.publish(ch, "push", json!({})).await.unwrap();
    }
    let (got, _) = events(&mut sub, 2).await;
    assert_eq!(got, [1, 2]);
    let old = Conn::welcomed(&a.ws_url()).await.unwrap().epoch();

    r.kill().await;
    r.restart().await.unwrap();
    // Both nodes adopt one new epoch; their clients reconnect and learn of the gap.
    let deadline = Instant::now() + Duration::from_secs(30);
    let new = loop {
        health(&a, 200).await;
        health(&b, 200).await;
        let (ea, eb) = (
            Conn::welcomed(&a.ws_url()).await.unwrap().epoch(),
            Conn::welcomed(&b.ws_url()).await.unwrap().epoch(),
        );
        if ea != old && ea == eb {
            break ea;
        }
        assert!(Instant::now() < deadline, "epochs {old} -> {ea} / {eb}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut gap = None;
    timeout(Duration::from_secs(20), async {
        while gap.is_none() {
            if let Item::Gap { reason, .. } = sub.next().await.expect("open") {
                gap = Some(reason);
            }
        }
    })
    .await
    .expect("a gap is reported");
    assert_eq!(gap, Some(GapReason::EpochChanged));
    // Numbering restarts in the new epoch and live delivery goes on.
    let mut seq = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while seq == 0 {
        match a.publish(ch, "push", json!({})).await {
            Ok(s) => seq = s,
            Err(e) => {
                assert!(Instant::now() < deadline, "{e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert_eq!(seq, 1);
    let (got, _) = events(&mut sub, 1).await;
    assert_eq!(got, [1]);
    // A client that missed the change asks for the old position: the truth is a gap.
    let mut late = Conn::welcomed(&b.ws_url()).await.unwrap();
    assert_eq!(late.epoch(), new);
    let since = json!({"type": "subscribe", "channel": ch, "since": {"seq": 2, "epoch": old}});
    late.send(&since.to_string()).await.unwrap();
    assert_eq!(late.recv().await.unwrap()["recovered"], false);
    assert!(
        metric(&a, "broker_epoch_changes_total").await
            + metric(&b, "broker_epoch_changes_total").await
            >= 2
    );
    drop(c);
}

/// Smoke run of `guts-bench redis` (two guts-hub nodes on one Redis, subscribers on B, the
/// publisher on A), so the harness mode cannot rot. Functional assertions only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multinode_bench_harness_smoke() {
    use guts_realtime_examples::bench::scenarios::{self, Load};
    use guts_realtime_examples::bench::server::{self, Binaries};
    use guts_realtime_examples::bench::wire::Proto;
    let Some(r) = redis("multinode_bench_smoke", false).await else { return };
    let bins = Binaries { guts_hub: HUB.into(), peers: String::new(), server_cpus: "0-1".into() };
    let url = r.url();
    let a = server::start_node(Proto::Guts, &bins, Some(&url)).await.unwrap();
    let b = server::start_node(Proto::Guts, &bins, Some(&url)).await.unwrap();
    let load = Load {
        rate: 50,
        warmup: Duration::from_millis(500),
        secs: Duration::from_secs(1),
        pad: 64,
    };
    let row = scenarios::multinode(&a, &b, 100, load).await.unwrap();
    assert_eq!(row.hub, "guts-hub+redis");
    assert_eq!(row.figures["delivered_ratio"], 1.0, "{row:?}");
}

/// `POST` with the publish key → status.
async fn post(url: String, key: String, body: Value) -> u16 {
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent =
            ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let resp = agent
            .post(&url)
            .header("Authorization", &format!("Bearer {key}"))
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .expect("hub reachable");
        resp.status().as_u16()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_node_reaches_the_users_connections_on_every_node() {
    let Some(r) = redis("revocation", false).await else { return };
    let (a, b) =
        (node(&r, &["--repo-access", "token"]).await, node(&r, &["--repo-access", "token"]).await);
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "alice", "exp": 4_000_000_000u64, "repos": ["x/*"]}),
        &jsonwebtoken::EncodingKey::from_secret(b.token_secret.as_bytes()),
    )
    .unwrap();
    let mut on_b = Conn::welcomed(&b.ws_url()).await.unwrap();
    on_b.send(&json!({"type": "auth", "token": token}).to_string()).await.unwrap();
    assert_eq!(on_b.recv().await.unwrap()["type"], "authenticated");
    on_b.subscribe("repo:x/rev/prs").await.unwrap();
    on_b.subscribe("user:alice").await.unwrap();
    let status = post(
        format!("{}/api/unsubscribe", a.http_url()),
        a.publish_key.clone(),
        json!({"user": "alice", "channel": "repo:x/rev"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        on_b.recv().await.unwrap(),
        json!({"type": "unsubscribed", "channel": "repo:x/rev/prs", "reason": "revoked"})
    );
    let disconnect = json!({"user": "alice"});
    let url = format!("{}/api/disconnect", a.http_url());
    assert_eq!(post(url, a.publish_key.clone(), disconnect).await, 200);
    on_b.expect_close(4003, Duration::from_secs(10)).await.unwrap();
}

/// A connection to `hub` authenticated as `user`.
async fn user_conn(hub: &HubProcess, user: &str) -> Conn {
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": user, "exp": 4_000_000_000u64}),
        &jsonwebtoken::EncodingKey::from_secret(hub.token_secret.as_bytes()),
    )
    .unwrap();
    let mut c = Conn::welcomed(&hub.ws_url()).await.unwrap();
    c.send(&json!({"type": "auth", "token": token}).to_string()).await.unwrap();
    assert_eq!(c.recv().await.unwrap()["type"], "authenticated");
    c
}

/// Subscribes with presence; the member list's users.
async fn join_presence(c: &mut Conn, channel: &str) -> Vec<String> {
    let cmd = json!({"type": "subscribe", "channel": channel, "presence": true});
    c.send(&cmd.to_string()).await.unwrap();
    assert_eq!(c.recv().await.unwrap()["type"], "subscribed");
    let p = c.recv().await.unwrap();
    assert_eq!(p["type"], "presence", "{p}");
    p["members"].as_array().unwrap().iter().map(|m| m["user"].as_str().unwrap().into()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_s_presence_members_leave_on_the_other_nodes_and_signals_cross_nodes() {
    let Some(r) = redis("presence_kill", false).await else { return };
    let (mut a, b) = (node(&r, &[]).await, node(&r, &[]).await);
    let ch = "repo:x/p/prs/1";
    let mut watcher = user_conn(&b, "watcher").await;
    assert_eq!(join_presence(&mut watcher, ch).await, ["watcher"]);
    let mut alice1 = user_conn(&a, "alice").await;
    let mut alice2 = user_conn(&a, "alice").await;
    let mut bob = user_conn(&b, "bob").await;
    join_presence(&mut alice1, ch).await;
    join_presence(&mut alice2, ch).await;
    let join = |u: &str| json!({"type": "join", "channel": ch, "user": u});
    // Node B learns of alice through Redis: once its watcher saw her join, B's list has her.
    assert_eq!(watcher.recv().await.unwrap(), join("alice"));
    assert_eq!(join_presence(&mut bob, ch).await, ["alice", "bob", "watcher"]);
    assert_eq!(watcher.recv().await.unwrap(), join("bob"));
    // A signal from node A reaches node B's subscribers, named by the hub, not the sender.
    let forged = json!({"type": "signal", "channel": ch, "event": "typing", "data": {"l": 1}, "user": "mallory"});
    alice1.send(&forged.to_string()).await.unwrap();
    let want = json!({"type": "signal", "channel": ch, "event": "typing", "data": {"l": 1}, "user": "alice"});
    assert_eq!(watcher.recv().await.unwrap(), want);
    assert_eq!(bob.recv().await.unwrap(), want);
    // (Bob's join reaches alice2 through Redis, the signal through her own node: either first.)
    let mut got = alice2.recv().await.unwrap();
    if got == join("bob") {
        got = alice2.recv().await.unwrap();
    }
    assert_eq!(got, want, "the sender's other tab is another connection");
    // kill -9 of node A: both of alice's connections are gone without a word; node B tells its
    // watchers she left, once, within the presence timeout (10 s) plus a heartbeat.
    let killed = Instant::now();
    a.kill().await;
    let leave = loop {
        match watcher.recv().await {
            Ok(v) => break v,
            Err(e) => assert!(killed.elapsed() < Duration::from_secs(30), "no leave in 30 s: {e}"),
        }
    };
    assert_eq!(leave, json!({"type": "leave", "channel": ch, "user": "alice"}));
    let took = killed.elapsed();
    assert_eq!(bob.recv().await.unwrap(), json!({"type": "leave", "channel": ch, "user": "alice"}));
    eprintln!("a killed node's members left after {took:?}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    // Bob is still there; nothing more came.
    watcher.send(&json!({"type": "presence", "channel": ch, "id": 5}).to_string()).await.unwrap();
    let p = watcher.recv().await.unwrap();
    assert_eq!(
        p,
        json!({"type": "presence", "channel": ch, "members": [
            {"user": "bob", "connections": 1}, {"user": "watcher", "connections": 1}
        ], "id": 5})
    );
}
