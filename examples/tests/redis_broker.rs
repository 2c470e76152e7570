//! The Rust API of the Redis engine, in process: two [`EventHub`]s, each with its
//! [`RedisBroker`], on one real `redis-server`. The topic refcount under a fast
//! subscribe/unsubscribe churn (grace 0, hundreds of rounds), notifications, and a broker that
//! starts before Redis exists (unhealthy, honest, then joins). Skipped like `redis_cluster.rs`.

use guts_realtime::client::TryRecvError;
use guts_realtime::{
    ClientReceiver, EventHub, EventKind, HubConfig, Notification, NotificationMetadata,
    NotificationType, NotifyOutcome, RealtimeEvent, Since, SubscribeOptions,
};
use guts_realtime_examples::redis_process::{free_port, redis_or_skip, RedisServer};
use guts_realtime_server::{RedisBroker, RedisConfig};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn broker(url: &str, grace: Duration) -> RedisBroker {
    let hub = Arc::new(EventHub::with_config(HubConfig::default()));
    let cfg = RedisConfig::new(url)
        .unsubscribe_grace(grace)
        .reconnect(Duration::from_millis(20), Duration::from_millis(200));
    RedisBroker::connect(hub, cfg).await.expect("valid url")
}

/// Waits for the next frame of a hub client.
async fn next(rx: &mut ClientReceiver) -> Value {
    let f = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a frame in time")
        .expect("client open");
    serde_json::from_str(f.as_str()).unwrap()
}

fn push(channel: &str, i: u64) -> RealtimeEvent {
    RealtimeEvent::new(channel, EventKind::Push, json!({ "i": i }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_refcount_survives_subscribe_unsubscribe_churn() {
    let Some(bin) = redis_or_skip("topic_refcount_churn") else { return };
    let redis = RedisServer::start(&bin, false).await.unwrap();
    let a = broker(&redis.url(), Duration::ZERO).await;
    let b = broker(&redis.url(), Duration::ZERO).await;
    assert!(a.is_up() && b.is_up());
    assert_eq!(a.hub().epoch(), b.hub().epoch());
    let hub = b.hub().clone();
    let ch = "repo:churn/it";
    let (c, mut rx) = hub.connect().unwrap();
    for round in 0..200u64 {
        b.subscribe(&c, ch, SubscribeOptions::new(None, false, None)).await.unwrap();
        assert_eq!(next(&mut rx).await["type"], "subscribed");
        hub.unsubscribe(&c, ch).unwrap();
        // Resubscribe at once, or after the sweep may have unsubscribed the topic from Redis.
        if round % 3 == 1 {
            tokio::time::sleep(Duration::from_millis(round % 50)).await;
        }
        b.subscribe(&c, ch, SubscribeOptions::new(None, false, None)).await.unwrap();
        assert_eq!(next(&mut rx).await["type"], "subscribed");
        let p = a.publish(push(ch, round)).await.unwrap();
        let ev = next(&mut rx).await;
        assert_eq!((ev["seq"].as_u64(), ev["data"]["i"].as_u64()), (Some(p.seq), Some(round)));
        hub.unsubscribe(&c, ch).unwrap();
    }
    let m = b.metrics();
    assert!(m.topic_unsubscribes > 0, "{m:?}");
    assert_eq!(m.topic_subscribes, m.topic_unsubscribes + u64::from(m.topics == 1), "{m:?}");
    // With nothing held, the topic goes away.
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.metrics().topics != 0 {
        assert!(Instant::now() < deadline, "topic still held: {:?}", b.metrics());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_cross_nodes_and_respect_preferences() {
    let Some(bin) = redis_or_skip("notifications_cross_nodes") else { return };
    let redis = RedisServer::start(&bin, false).await.unwrap();
    let a = broker(&redis.url(), Duration::from_secs(5)).await;
    let b = broker(&redis.url(), Duration::from_secs(5)).await;
    let (c, mut rx) = b.hub().connect().unwrap();
    b.subscribe(&c, "user:alice", SubscribeOptions::new(None, false, None)).await.unwrap();
    assert_eq!(next(&mut rx).await["seq"], 0);
    let note = |id: &str, t: NotificationType| Notification {
        id: id.into(),
        user_id: "alice".into(),
        notification_type: t,
        title: "t".into(),
        body: "b".into(),
        url: None,
        created_at: 1,
        read: false,
        metadata: NotificationMetadata::default(),
    };
    let out = a.notify(note("n1", NotificationType::Mention)).await.unwrap();
    assert!(matches!(out, NotifyOutcome::Delivered(p) if p.seq == 1 && p.delivered == 1));
    let got = next(&mut rx).await;
    assert_eq!((got["type"].as_str(), got["seq"].as_u64()), (Some("notification"), Some(1)));
    assert_eq!(got["notification"]["id"], "n1");
    // Preferences are Redis's, whichever node set them (the engine suite, `engine.rs`, covers
    // them in full).
    let mut prefs = b.preferences("alice").await.unwrap();
    prefs.enabled_types.retain(|t| *t != NotificationType::Mention);
    b.set_preferences(prefs).await.unwrap();
    let out = a.notify(note("n2", NotificationType::Mention)).await.unwrap();
    assert_eq!(out, NotifyOutcome::Suppressed);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rx.try_recv().err(), Some(TryRecvError::Empty));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_started_before_redis_is_honest_then_joins() {
    let Some(bin) = redis_or_skip("broker_before_redis") else { return };
    let port = free_port().unwrap();
    let url = format!("redis://127.0.0.1:{port}");
    let b = broker(&url, Duration::from_secs(5)).await;
    assert!(!b.is_up());
    let hub = b.hub().clone();
    let local_epoch = hub.epoch();
    // Local connections work; publishes fail; recovery says the truth.
    let (c, mut rx) = hub.connect().unwrap();
    let since = Since { seq: 3, epoch: local_epoch.clone() };
    let s = b
        .subscribe(&c, "repo:early/one", SubscribeOptions::new(Some(&since), false, None))
        .await
        .unwrap();
    assert_eq!(s.recovered, Some(false));
    assert_eq!(next(&mut rx).await["recovered"], false);
    let err = b.publish(push("repo:early/one", 0)).await.unwrap_err();
    assert!(err.to_string().contains("broker unavailable"), "{err}");
    assert_eq!(err.code(), guts_realtime::ErrorCode::Unavailable);
    assert!(b.metrics().publish_errors >= 1);

    // Redis appears: the broker joins, offers its own epoch (Redis has none), and its client's
    // topic is subscribed on Redis.
    let _redis = RedisServer::start_on(&bin, port, false).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.is_up() {
        assert!(Instant::now() < deadline, "broker did not join");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(hub.epoch(), local_epoch, "first contact with an empty Redis keeps the epoch");
    assert!(c.is_open());
    let other = broker(&url, Duration::from_secs(5)).await;
    assert_eq!(other.hub().epoch(), local_epoch);
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.metrics().topic_subscribes == 0 {
        assert!(Instant::now() < deadline, "topic not resubscribed: {:?}", b.metrics());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for i in 1..=3 {
        let p = other.publish(push("repo:early/one", i)).await.unwrap();
        assert_eq!((p.seq, p.delivered), (i, 1), "the first node holds its client's topic");
        let ev = next(&mut rx).await;
        assert_eq!((ev["type"].as_str(), ev["seq"].as_u64()), (Some("event"), Some(i)));
    }
}

/// A stream's keys lost in Redis (evicted, expired): Redis numbers it from 1 again. The node
/// that holds subscribers at seq 3 notices at the next delivery and disconnects them (they
/// reconnect and report a gap) — before, seqs 1..=3 of the new numbering were dropped as
/// "stale" and the subscribers silently missed them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_stream_keys_are_a_gap_for_the_subscribers_never_a_silent_loss() {
    let Some(bin) = redis_or_skip("lost_stream_keys") else { return };
    let redis = RedisServer::start(&bin, false).await.expect("redis-server starts");
    let (a, b) =
        (broker(&redis.url(), Duration::ZERO).await, broker(&redis.url(), Duration::ZERO).await);
    let (c, mut rx) = b.hub().connect().unwrap();
    b.subscribe(&c, "repo:lost/keys", SubscribeOptions::new(None, false, None)).await.unwrap();
    assert_eq!(next(&mut rx).await["type"], "subscribed");
    for i in 1..=3 {
        assert_eq!(a.publish(push("repo:lost/keys", i)).await.unwrap().seq, i);
        assert_eq!(next(&mut rx).await["seq"], i);
    }
    let reply = redis.command("DEL guts:{repo:lost/keys}:seq guts:{repo:lost/keys}:h").await;
    assert_eq!(reply.as_deref(), Some(":2\r\n"));
    assert_eq!(a.publish(push("repo:lost/keys", 4)).await.unwrap().seq, 1, "renumbered");
    let closed = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("in time");
    assert!(closed.is_none(), "the subscriber is disconnected, not left behind: {closed:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.metrics().rewinds == 0 {
        assert!(Instant::now() < deadline, "no rewind counted: {:?}", b.metrics());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(b.metrics().rewinds, 1);
    assert_eq!(b.hub().metrics().gap_disconnects, 1);
    // Resuming from the old numbering is a gap.
    let (c, mut rx) = b.hub().connect().unwrap();
    let since = Since { seq: 3, epoch: b.hub().epoch() };
    let s = b
        .subscribe(&c, "repo:lost/keys", SubscribeOptions::new(Some(&since), false, None))
        .await
        .unwrap();
    assert_eq!(s.recovered, Some(false));
    assert_eq!(next(&mut rx).await["recovered"], false);
}

/// One slow reply (a script keeping Redis busy for 1.2 s, past the 1 s command timeout) fails
/// that command but keeps the link: before, every timeout tore the link down and reconnected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_slow_redis_reply_does_not_reset_the_link() {
    let Some(bin) = redis_or_skip("slow_redis_reply") else { return };
    let redis = RedisServer::start(&bin, false).await.expect("redis-server starts");
    let hub = Arc::new(EventHub::with_config(HubConfig::default()));
    let cfg = RedisConfig::new(redis.url())
        .command_timeout(Duration::from_secs(1))
        .health_interval(Duration::from_secs(1))
        .reconnect(Duration::from_millis(20), Duration::from_millis(200));
    let b = RedisBroker::connect(hub, cfg).await.unwrap();
    assert_eq!(b.metrics().connects, 1);
    let busy = r#"EVAL "local t=redis.call('TIME') local s=t[1]*1000000+t[2] while true do local n=redis.call('TIME') if n[1]*1000000+n[2]-s>1200000 then break end end return 1" 0"#;
    let blocker = {
        let addr = redis.addr();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(format!("{busy}\r\n").as_bytes()).await.unwrap();
            let mut buf = [0u8; 64];
            let _ = s.read(&mut buf).await;
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = b.publish(push("repo:slow/reply", 1)).await.unwrap_err();
    assert_eq!(err.code(), guts_realtime::ErrorCode::Unavailable, "{err}");
    blocker.await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(b.is_up());
    assert_eq!(b.metrics().connects, 1, "the link was kept: {:?}", b.metrics());
    assert!(b.publish(push("repo:slow/reply", 2)).await.is_ok());
}

/// A Redis that may evict keys is reported: a warning at connect and `may_evict`
/// (`guts_hub_broker_redis_may_evict 1`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicting_maxmemory_policy_is_reported() {
    let Some(bin) = redis_or_skip("evicting_policy") else { return };
    let redis = RedisServer::start(&bin, false).await.expect("redis-server starts");
    assert!(!broker(&redis.url(), Duration::ZERO).await.metrics().may_evict);
    let reply = redis.command("CONFIG SET maxmemory-policy allkeys-lru").await;
    assert_eq!(reply.as_deref(), Some("+OK\r\n"));
    assert!(broker(&redis.url(), Duration::ZERO).await.metrics().may_evict);
}
