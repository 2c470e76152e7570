//! The engine suite: one set of cases, run against both implementations of
//! [`Engine`] — the in-memory [`EventHub`] and the [`RedisBroker`] (two nodes on one real
//! `redis-server` on 127.0.0.1, skipped like `redis_cluster.rs` when it is not installed). Each
//! case publishes on node `a` and reads on node `b`; in memory both are the same hub.
//!
//! What the server asks of an engine gets its test here, once: recovery, gaps, epochs, ordering,
//! filtered replay, unsubscribe, preferences, counters and revocation.

use guts_realtime::client::TryRecvError;
use guts_realtime::{
    ClientReceiver, EventHub, EventKind, HubClient, HubConfig, Notification, NotificationMetadata,
    NotificationType, NotifyOutcome, RealtimeEvent, Since, SubscribeOptions,
};
use guts_realtime_examples::redis_process::{redis_or_skip, RedisServer};
use guts_realtime_server::{Engine, RedisBroker, RedisConfig};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Memory,
    Redis,
}

/// Two nodes of one engine: `a` publishes, `b` serves the subscriber.
struct Nodes {
    a: Arc<dyn Engine>,
    b: Arc<dyn Engine>,
    _redis: Option<RedisServer>,
}

async fn broker(url: &str, config: HubConfig) -> Arc<dyn Engine> {
    let hub = Arc::new(EventHub::with_config(config));
    let cfg =
        RedisConfig::new(url).reconnect(Duration::from_millis(20), Duration::from_millis(200));
    let b = RedisBroker::connect(hub, cfg).await.expect("valid url");
    assert!(b.is_up(), "redis broker up");
    Arc::new(b)
}

/// The nodes of `kind` with `config`; `None` when the Redis run is skipped.
async fn nodes(kind: Kind, test: &str, config: HubConfig) -> Option<Nodes> {
    match kind {
        Kind::Memory => {
            let hub: Arc<dyn Engine> = Arc::new(EventHub::with_config(config));
            Some(Nodes { a: hub.clone(), b: hub, _redis: None })
        }
        Kind::Redis => {
            let bin = redis_or_skip(test)?;
            let redis = RedisServer::start(&bin, false).await.expect("redis-server starts");
            let a = broker(&redis.url(), config.clone()).await;
            let b = broker(&redis.url(), config).await;
            Some(Nodes { a, b, _redis: Some(redis) })
        }
    }
}

impl Nodes {
    /// A client of node `b`.
    fn connect(&self) -> (Arc<HubClient>, ClientReceiver) {
        self.b.hub().connect().expect("below the connection cap")
    }

    fn epoch(&self) -> String {
        self.b.hub().epoch()
    }

    /// Publishes on node `a`; the seq.
    async fn publish(&self, channel: &str, kind: EventKind, i: u64) -> u64 {
        let ev = RealtimeEvent::new(channel, kind, json!({ "i": i, "number": 7 }));
        self.a.publish(ev).await.expect("published").seq
    }
}

async fn next(rx: &mut ClientReceiver) -> Value {
    let f = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a frame in time")
        .expect("client open");
    serde_json::from_str(f.as_str()).expect("JSON frame")
}

/// Waits a little and asserts nothing more arrived.
async fn quiet(rx: &mut ClientReceiver) {
    tokio::time::sleep(Duration::from_millis(150)).await;
    match rx.try_recv() {
        Err(TryRecvError::Empty) => {}
        other => panic!("unexpected frame: {:?}", other.map(|f| f.as_str().to_owned())),
    }
}

/// `(type, seq, data.i)` of a frame.
fn key(v: &Value) -> (String, Option<u64>, Option<u64>) {
    (v["type"].as_str().unwrap_or("").to_owned(), v["seq"].as_u64(), v["data"]["i"].as_u64())
}

fn event(seq: u64, i: u64) -> (String, Option<u64>, Option<u64>) {
    ("event".to_owned(), Some(seq), Some(i))
}

fn note(id: &str, t: NotificationType) -> Notification {
    Notification {
        id: id.into(),
        user_id: "alice".into(),
        notification_type: t,
        title: "t".into(),
        body: "b".into(),
        url: None,
        created_at: 1,
        read: false,
        metadata: NotificationMetadata::default(),
    }
}

/// A subscribe with `since` replays exactly the missed events, in order, then live events follow
/// with no gap and no duplicate.
async fn recovery(kind: Kind) {
    let Some(n) = nodes(kind, "engine_recovery", HubConfig::default()).await else { return };
    let ch = "repo:eng/recovery";
    let mut seqs = Vec::new();
    for i in 1..=5 {
        seqs.push(n.publish(ch, EventKind::Push, i).await);
    }
    assert!(seqs.windows(2).all(|w| w[1] > w[0]), "{seqs:?}");
    let (c, mut rx) = n.connect();
    let since = Since { seq: seqs[1], epoch: n.epoch() };
    let s = n.b.subscribe(&c, ch, SubscribeOptions::new(Some(&since), false, None)).await.unwrap();
    assert_eq!((s.recovered, s.replayed, s.seq), (Some(true), 3, seqs[4]));
    let sub = next(&mut rx).await;
    assert_eq!(
        (sub["type"].as_str(), sub["recovered"].as_bool()),
        (Some("subscribed"), Some(true))
    );
    assert_eq!(sub["seq"].as_u64(), Some(seqs[4]));
    for (i, seq) in (3..=5).zip(&seqs[2..]) {
        assert_eq!(key(&next(&mut rx).await), event(*seq, i));
    }
    let live = n.publish(ch, EventKind::Push, 6).await;
    assert_eq!(key(&next(&mut rx).await), event(live, 6));
    quiet(&mut rx).await;

    // Up to date: recovered, nothing replayed.
    let (c2, mut rx2) = n.connect();
    let since = Since { seq: live, epoch: n.epoch() };
    let s = n.b.subscribe(&c2, ch, SubscribeOptions::new(Some(&since), false, None)).await.unwrap();
    assert_eq!((s.recovered, s.replayed), (Some(true), 0));
    assert_eq!(next(&mut rx2).await["recovered"], true);
    quiet(&mut rx2).await;
}

/// Events older than the history window cannot be replayed: `recovered: false`, nothing replayed,
/// live events still arrive.
async fn gap_past_the_history(kind: Kind) {
    let config = HubConfig::default().history_size(3);
    let Some(n) = nodes(kind, "engine_gap", config).await else { return };
    let ch = "repo:eng/gap";
    let mut seqs = Vec::new();
    for i in 1..=6 {
        seqs.push(n.publish(ch, EventKind::Push, i).await);
    }
    let (c, mut rx) = n.connect();
    let since = Since { seq: seqs[0], epoch: n.epoch() };
    let s = n.b.subscribe(&c, ch, SubscribeOptions::new(Some(&since), false, None)).await.unwrap();
    assert_eq!((s.recovered, s.replayed), (Some(false), 0));
    let sub = next(&mut rx).await;
    assert_eq!((sub["recovered"].as_bool(), sub["seq"].as_u64()), (Some(false), Some(seqs[5])));
    // Still inside the window: recovered.
    let (c2, mut rx2) = n.connect();
    let since = Since { seq: seqs[2], epoch: n.epoch() };
    let s = n.b.subscribe(&c2, ch, SubscribeOptions::new(Some(&since), false, None)).await.unwrap();
    assert_eq!((s.recovered, s.replayed), (Some(true), 3));
    let _ = next(&mut rx2).await;
    for (i, seq) in (4..=6).zip(&seqs[3..]) {
        assert_eq!(key(&next(&mut rx2).await), event(*seq, i));
    }
    let live = n.publish(ch, EventKind::Push, 7).await;
    assert_eq!(key(&next(&mut rx).await), event(live, 7));
    assert_eq!(key(&next(&mut rx2).await), event(live, 7));
}

/// One subscribe replays at most `max_replay_events` events and `max_replay_bytes` bytes; a
/// recovery that needs more is a gap (`recovered: false`, nothing replayed), not a flood.
async fn replay_is_capped(kind: Kind) {
    let config = HubConfig::default().max_replay_events(5).max_replay_bytes(4096);
    let Some(n) = nodes(kind, "engine_replay_cap", config).await else { return };
    let ch = "repo:eng/cap";
    let mut seqs = Vec::new();
    for i in 1..=8 {
        seqs.push(n.publish(ch, EventKind::Push, i).await);
    }
    let (c, mut rx) = n.connect();
    let six = Since { seq: seqs[1], epoch: n.epoch() };
    let s = n.b.subscribe(&c, ch, SubscribeOptions::new(Some(&six), false, None)).await.unwrap();
    assert_eq!((s.recovered, s.replayed), (Some(false), 0), "6 events to replay, cap 5");
    assert_eq!(next(&mut rx).await["recovered"], false);
    quiet(&mut rx).await;
    let five = Since { seq: seqs[2], epoch: n.epoch() };
    let (c2, mut rx2) = n.connect();
    let s = n.b.subscribe(&c2, ch, SubscribeOptions::new(Some(&five), false, None)).await.unwrap();
    assert_eq!((s.recovered, s.replayed), (Some(true), 5));
    let _ = next(&mut rx2).await;
    for (i, seq) in (4..=8).zip(&seqs[3..]) {
        assert_eq!(key(&next(&mut rx2).await), event(*seq, i));
    }
    // The byte cap: two events of ~3 KB each are over 4096 bytes.
    let big = "x".repeat(3000);
    let mut last = 0;
    for _ in 0..2 {
        let ev = RealtimeEvent::new(ch, EventKind::Push, json!({ "pad": big }));
        last = n.a.publish(ev).await.unwrap().seq;
    }
    let (c3, mut rx3) = n.connect();
    let before_big = Since { seq: seqs[7], epoch: n.epoch() };
    let s =
        n.b.subscribe(&c3, ch, SubscribeOptions::new(Some(&before_big), false, None))
            .await
            .unwrap();
    assert_eq!((s.recovered, s.replayed, s.seq), (Some(false), 0, last));
    assert_eq!(next(&mut rx3).await["recovered"], false);
}

/// A position from another epoch is a gap, whatever its seq.
async fn wrong_epoch(kind: Kind) {
    let Some(n) = nodes(kind, "engine_epoch", HubConfig::default()).await else { return };
    let ch = "repo:eng/epoch";
    let first = n.publish(ch, EventKind::Push, 1).await;
    n.publish(ch, EventKind::Push, 2).await;
    let (c, mut rx) = n.connect();
    let since = Since { seq: first, epoch: "not-this-epoch".into() };
    let s = n.b.subscribe(&c, ch, SubscribeOptions::new(Some(&since), false, None)).await.unwrap();
    assert_eq!((s.recovered, s.replayed), (Some(false), 0));
    let sub = next(&mut rx).await;
    assert_eq!(sub["recovered"], false);
    quiet(&mut rx).await;
}

/// Concurrent publishers on both nodes: every subscriber sees every event once, in seq order,
/// and a stream's seqs are consecutive.
async fn ordering(kind: Kind) {
    let Some(n) = nodes(kind, "engine_ordering", HubConfig::default()).await else { return };
    let ch = "repo:eng/order";
    let (c, mut rx) = n.connect();
    n.b.subscribe(&c, ch, SubscribeOptions::new(None, false, None)).await.unwrap();
    assert_eq!(next(&mut rx).await["type"], "subscribed");
    let tasks: Vec<_> = [n.a.clone(), n.b.clone()]
        .into_iter()
        .enumerate()
        .map(|(node, engine)| {
            tokio::spawn(async move {
                for i in 0..50u64 {
                    let ev = RealtimeEvent::new(
                        ch,
                        EventKind::Push,
                        json!({ "i": node as u64 * 100 + i }),
                    );
                    engine.publish(ev).await.expect("published");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let mut seqs = Vec::new();
    let mut per_node = [Vec::new(), Vec::new()];
    for _ in 0..100 {
        let (t, seq, i) = key(&next(&mut rx).await);
        assert_eq!(t, "event");
        seqs.push(seq.unwrap());
        let i = i.unwrap();
        per_node[(i / 100) as usize].push(i % 100);
    }
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "consecutive, in order: {seqs:?}");
    for got in per_node {
        assert_eq!(got, (0..50).collect::<Vec<_>>(), "each publisher's events in its order");
    }
    quiet(&mut rx).await;
}

/// A filtered channel's replay holds only what it receives; one copy per client across
/// overlapping subscriptions.
async fn filtered_replay(kind: Kind) {
    let Some(n) = nodes(kind, "engine_filtered", HubConfig::default()).await else { return };
    let base = "repo:eng/filter";
    let start = n.publish(base, EventKind::Push, 0).await;
    let pr = n.publish(base, EventKind::PrOpened, 1).await;
    n.publish(base, EventKind::IssueOpened, 2).await;
    let pr2 = n.publish(&format!("{base}/prs"), EventKind::PrMerged, 3).await;
    let (c, mut rx) = n.connect();
    let since = Since { seq: start, epoch: n.epoch() };
    let s =
        n.b.subscribe(&c, &format!("{base}/prs"), SubscribeOptions::new(Some(&since), false, None))
            .await
            .unwrap();
    assert_eq!((s.recovered, s.replayed), (Some(true), 2));
    assert_eq!(next(&mut rx).await["type"], "subscribed");
    assert_eq!(key(&next(&mut rx).await), event(pr, 1));
    assert_eq!(key(&next(&mut rx).await), event(pr2, 3));
    // The base channel too: a PR event still arrives once.
    n.b.subscribe(&c, base, SubscribeOptions::new(None, false, None)).await.unwrap();
    assert_eq!(next(&mut rx).await["type"], "subscribed");
    let live = n.publish(base, EventKind::PrClosed, 4).await;
    assert_eq!(key(&next(&mut rx).await), event(live, 4));
    quiet(&mut rx).await;
}

/// After unsubscribe, nothing of the channel arrives; the subscription gauge goes back.
async fn unsubscribe(kind: Kind) {
    let Some(n) = nodes(kind, "engine_unsubscribe", HubConfig::default()).await else { return };
    let ch = "repo:eng/unsub";
    let (c, mut rx) = n.connect();
    n.b.subscribe(&c, ch, SubscribeOptions::new(None, false, None)).await.unwrap();
    assert_eq!(next(&mut rx).await["type"], "subscribed");
    assert_eq!(n.b.metrics().subscriptions, 1);
    let (canonical, held) = n.b.unsubscribe(&c, ch).unwrap();
    assert_eq!((canonical.to_string().as_str(), held), (ch, true));
    assert!(!n.b.unsubscribe(&c, ch).unwrap().1, "no longer held");
    assert_eq!(n.b.metrics().subscriptions, 0);
    n.publish(ch, EventKind::Push, 1).await;
    quiet(&mut rx).await;
}

/// Preferences set through one node apply to notifications published by any node.
async fn preferences(kind: Kind) {
    let Some(n) = nodes(kind, "engine_preferences", HubConfig::default()).await else { return };
    let (c, mut rx) = n.connect();
    n.b.subscribe(&c, "user:alice", SubscribeOptions::new(None, false, None)).await.unwrap();
    assert_eq!(next(&mut rx).await["type"], "subscribed");
    let out = n.a.notify(note("n1", NotificationType::Mention)).await.unwrap();
    assert!(matches!(out, NotifyOutcome::Delivered(_)), "{out:?}");
    let got = next(&mut rx).await;
    assert_eq!(
        (got["type"].as_str(), got["notification"]["id"].as_str()),
        (Some("notification"), Some("n1"))
    );
    // Off by default: never published.
    let out = n.a.notify(note("n2", NotificationType::Push)).await.unwrap();
    assert_eq!(out, NotifyOutcome::Suppressed);

    let mut prefs = n.b.preferences("alice").await.unwrap();
    prefs.enabled_types.retain(|t| *t != NotificationType::Mention);
    prefs.enabled_types.push(NotificationType::Push);
    n.b.set_preferences(prefs.clone()).await.unwrap();
    assert_eq!(n.a.preferences("alice").await.unwrap().enabled_types, prefs.enabled_types);
    let out = n.a.notify(note("n3", NotificationType::Mention)).await.unwrap();
    assert_eq!(out, NotifyOutcome::Suppressed, "preferences set on b hold on a");
    let out = n.a.notify(note("n4", NotificationType::Push)).await.unwrap();
    assert!(matches!(out, NotifyOutcome::Delivered(_)), "{out:?}");
    assert_eq!(next(&mut rx).await["notification"]["id"], "n4");
    quiet(&mut rx).await;
    // Someone else keeps the defaults.
    assert!(n.a.preferences("bob").await.unwrap().is_enabled(NotificationType::Mention));
}

/// `total_events` and `events_published` count what the node published, events and
/// notifications alike.
async fn counters(kind: Kind) {
    let Some(n) = nodes(kind, "engine_counters", HubConfig::default()).await else { return };
    let (c, mut rx) = n.connect();
    n.b.subscribe(&c, "repo:eng/count", SubscribeOptions::new(None, false, None)).await.unwrap();
    let _ = next(&mut rx).await;
    for i in 0..3 {
        n.publish("repo:eng/count", EventKind::Push, i).await;
    }
    n.a.notify(note("n1", NotificationType::Mention)).await.unwrap();
    assert_eq!(n.a.stats().total_events, 4);
    assert_eq!(n.a.metrics().events_published, 4);
    for _ in 0..3 {
        assert_eq!(next(&mut rx).await["type"], "event");
    }
    let s = n.b.stats();
    assert_eq!((s.current_connections, s.total_subscriptions), (1, 1));
    assert_eq!(n.b.metrics().frames_delivered, 3);
}

/// Revocation through node `a` reaches the user's connections on node `b`: the repository's
/// channels end with `reason: "revoked"`, other users and channels stay; disconnecting the user
/// closes their connections (the queue says why: `Revoked`, which the server closes 4003).
async fn revocation(kind: Kind) {
    let Some(n) = nodes(kind, "engine_revocation", HubConfig::default()).await else { return };
    let (alice, mut rx) = n.connect();
    alice.set_user(Some("alice"));
    let (bob, mut bob_rx) = n.connect();
    bob.set_user(Some("bob"));
    for ch in ["repo:eng/rev", "repo:eng/rev/prs", "user:alice"] {
        n.b.subscribe(&alice, ch, SubscribeOptions::new(None, false, None)).await.unwrap();
        assert_eq!(next(&mut rx).await["type"], "subscribed");
    }
    n.b.subscribe(&bob, "repo:eng/rev", SubscribeOptions::new(None, false, None)).await.unwrap();
    assert_eq!(next(&mut bob_rx).await["type"], "subscribed");
    let repo = guts_realtime::Channel::parse("repo:eng/rev").unwrap();
    n.a.revoke("alice", &repo).await.unwrap();
    let mut ended = vec![next(&mut rx).await, next(&mut rx).await];
    ended.sort_by_key(|v| v["channel"].as_str().unwrap().to_owned());
    assert_eq!(
        ended,
        [
            json!({"type": "unsubscribed", "channel": "repo:eng/rev", "reason": "revoked"}),
            json!({"type": "unsubscribed", "channel": "repo:eng/rev/prs", "reason": "revoked"}),
        ]
    );
    let held: Vec<String> = alice.channels().iter().map(ToString::to_string).collect();
    assert_eq!(held, ["user:alice"]);
    n.publish("repo:eng/rev", EventKind::Push, 1).await;
    assert_eq!(next(&mut bob_rx).await["type"], "event");
    quiet(&mut rx).await;
    n.a.disconnect_user("alice").await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), async {
        while alice.is_open() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("alice disconnected in time");
    assert_eq!(rx.close_reason(), Some(guts_realtime::client::CloseReason::Revoked));
    assert!(bob.is_open());
}

/// A connection of `node` authenticated as `user` (`None`: anonymous).
fn user_on(node: &Arc<dyn Engine>, user: Option<&str>) -> (Arc<HubClient>, ClientReceiver) {
    let (c, rx) = node.hub().connect().expect("below the connection cap");
    c.set_user(user);
    (c, rx)
}

/// Subscribes with presence; the `subscribed` reply and the member list (as user → connections).
async fn watch(
    node: &Arc<dyn Engine>,
    c: &Arc<HubClient>,
    rx: &mut ClientReceiver,
    ch: &str,
) -> Vec<(String, u64)> {
    node.subscribe(c, ch, SubscribeOptions::new(None, true, None)).await.unwrap();
    assert_eq!(next(rx).await["type"], "subscribed");
    let p = next(rx).await;
    assert_eq!((p["type"].as_str(), p["channel"].as_str()), (Some("presence"), Some(ch)), "{p}");
    members(&p)
}

fn members(p: &Value) -> Vec<(String, u64)> {
    p["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["user"].as_str().unwrap().to_owned(), m["connections"].as_u64().unwrap()))
        .collect()
}

fn m(list: &[(&str, u64)]) -> Vec<(String, u64)> {
    list.iter().map(|(u, n)| ((*u).to_owned(), *n)).collect()
}

/// Presence across nodes: a user is one member whatever their connections (tabs) on whichever
/// node: one `join` when the first arrives, one `leave` when the last goes; an anonymous watcher
/// is never a member; the member list counts connections; every watcher sees every change once.
async fn presence(kind: Kind) {
    let Some(n) = nodes(kind, "engine_presence", HubConfig::default()).await else { return };
    let ch = "repo:eng/presence/prs/7";
    let (w, mut wrx) = user_on(&n.b, Some("watcher"));
    assert_eq!(watch(&n.b, &w, &mut wrx, ch).await, m(&[("watcher", 1)]));
    // Node B writes its members to Redis in the background: node A's first reader of the
    // channel reads them there, once they are written.
    let channel = guts_realtime::Channel::parse(ch).unwrap();
    for _ in 0..500 {
        let (list, _) = n.a.presence(&channel).await.unwrap();
        if list.iter().any(|p| p.user == "watcher") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (a1, mut a1rx) = user_on(&n.a, Some("alice"));
    assert_eq!(watch(&n.a, &a1, &mut a1rx, ch).await, m(&[("alice", 1), ("watcher", 1)]));
    assert_eq!(next(&mut wrx).await, json!({"type": "join", "channel": ch, "user": "alice"}));
    // A second tab of alice, on the other node: no join; the list counts both.
    let (a2, mut a2rx) = user_on(&n.b, Some("alice"));
    assert_eq!(watch(&n.b, &a2, &mut a2rx, ch).await, m(&[("alice", 2), ("watcher", 1)]));
    let (b1, mut b1rx) = user_on(&n.a, Some("bob"));
    watch(&n.a, &b1, &mut b1rx, ch).await;
    for rx in [&mut wrx, &mut a1rx, &mut a2rx] {
        assert_eq!(next(rx).await, json!({"type": "join", "channel": ch, "user": "bob"}));
    }
    // Anonymous: gets the list, joins nothing.
    let (anon, mut anon_rx) = user_on(&n.b, None);
    assert_eq!(
        watch(&n.b, &anon, &mut anon_rx, ch).await,
        m(&[("alice", 2), ("bob", 1), ("watcher", 1)])
    );
    // The query, from either node, without joining.
    for node in [&n.a, &n.b] {
        let c = guts_realtime::Channel::parse(ch).unwrap();
        let (list, truncated) = node.presence(&c).await.unwrap();
        let list: Vec<(String, u64)> =
            list.into_iter().map(|p| (p.user, u64::from(p.connections))).collect();
        assert_eq!((list, truncated), (m(&[("alice", 2), ("bob", 1), ("watcher", 1)]), false));
    }
    // Alice's first tab goes: nothing; her last goes: one leave, for everyone.
    n.a.unsubscribe(&a1, ch).unwrap();
    n.b.hub().disconnect(&a2.id);
    for rx in [&mut wrx, &mut b1rx, &mut anon_rx] {
        assert_eq!(next(rx).await, json!({"type": "leave", "channel": ch, "user": "alice"}));
    }
    // Bob subscribed again without presence: he leaves, though still subscribed.
    n.a.subscribe(&b1, ch, SubscribeOptions::new(None, false, None)).await.unwrap();
    assert_eq!(next(&mut b1rx).await["type"], "subscribed");
    for rx in [&mut wrx, &mut anon_rx] {
        assert_eq!(next(rx).await, json!({"type": "leave", "channel": ch, "user": "bob"}));
    }
    quiet(&mut wrx).await;
    quiet(&mut anon_rx).await;
    quiet(&mut a1rx).await;
    quiet(&mut b1rx).await;
    // Presence is per channel: the repository's channel has none.
    let base = guts_realtime::Channel::parse("repo:eng/presence").unwrap();
    assert_eq!(n.a.presence(&base).await.unwrap(), (Vec::new(), false));
}

/// `history` returns the last events a channel received, oldest first, as delivered, with the
/// position after which a subscribe continues: no gap, no duplicate.
async fn history(kind: Kind) {
    let Some(n) = nodes(kind, "engine_history", HubConfig::default()).await else { return };
    let base = "repo:eng/history";
    let item = "repo:eng/history/prs/7";
    let mut seqs = Vec::new();
    for i in 1..=5 {
        // Events about PR 7 (the helper's data names `number: 7`) and pushes in between.
        seqs.push(n.publish(base, EventKind::PrUpdated, i).await);
        n.publish(base, EventKind::Push, 100 + i).await;
    }
    let (c, mut rx) = n.connect();
    let ch = guts_realtime::Channel::parse(item).unwrap();
    let page = n.b.history(&c, &ch, 3).await.unwrap();
    let got: Vec<u64> = page.events.iter().map(|f| frame_seq(f.as_str())).collect();
    assert_eq!(got, seqs[2..]);
    assert_eq!(page.epoch, n.epoch());
    let frame: Value = serde_json::from_str(page.frame(None).as_str()).unwrap();
    assert_eq!((frame["type"].as_str(), frame["seq"].as_u64()), (Some("history"), Some(page.seq)));
    // Published after the read: exactly these come with the subscribe from the page's position.
    let after = [
        n.publish(base, EventKind::PrMerged, 6).await,
        n.publish(base, EventKind::Push, 7).await,
        n.publish(item, EventKind::PrComment, 8).await,
    ];
    let since = Since { seq: page.seq, epoch: page.epoch.clone() };
    let s =
        n.b.subscribe(&c, item, SubscribeOptions::new(Some(&since), false, None)).await.unwrap();
    assert_eq!(s.recovered, Some(true));
    assert_eq!(next(&mut rx).await["recovered"], true);
    assert_eq!(key(&next(&mut rx).await), event(after[0], 6));
    assert_eq!(key(&next(&mut rx).await), event(after[2], 8));
    let live = n.publish(base, EventKind::PrClosed, 9).await;
    assert_eq!(key(&next(&mut rx).await), event(live, 9));
    quiet(&mut rx).await;
    // The repository channel's history has every kind; a limit above what is kept gives all.
    let all = n.b.history(&c, &guts_realtime::Channel::parse(base).unwrap(), 100).await.unwrap();
    assert_eq!(all.events.len(), 14);
    assert_eq!(all.seq, live);
}

fn frame_seq(text: &str) -> u64 {
    serde_json::from_str::<Value>(text).unwrap()["seq"].as_u64().unwrap()
}

/// A signal reaches the other subscribers of exactly its channel, on every node, never its
/// sender, never another channel's subscribers.
async fn signals(kind: Kind) {
    let Some(n) = nodes(kind, "engine_signals", HubConfig::default()).await else { return };
    let ch = "repo:eng/sig/prs/3";
    let (alice, mut alice_rx) = user_on(&n.a, Some("alice"));
    let (bob, mut bob_rx) = user_on(&n.b, Some("bob"));
    let (carol, mut carol_rx) = user_on(&n.a, Some("carol"));
    let (base, mut base_rx) = user_on(&n.b, Some("dave"));
    for (node, c, rx, channel) in [
        (&n.a, &alice, &mut alice_rx, ch),
        (&n.b, &bob, &mut bob_rx, ch),
        (&n.a, &carol, &mut carol_rx, ch),
        (&n.b, &base, &mut base_rx, "repo:eng/sig"),
    ] {
        node.subscribe(c, channel, SubscribeOptions::new(None, false, None)).await.unwrap();
        assert_eq!(next(rx).await["type"], "subscribed");
    }
    let msg = guts_realtime::ServerMessage::Signal {
        channel: ch.into(),
        event: "typing".into(),
        data: json!({"line": 4}),
        user: "alice".into(),
    };
    let c = guts_realtime::Channel::parse(ch).unwrap();
    n.a.signal(&alice, &c, msg.encode()).await.unwrap();
    let want = json!({"type": "signal", "channel": ch, "event": "typing", "data": {"line": 4}, "user": "alice"});
    assert_eq!(next(&mut bob_rx).await, want);
    assert_eq!(next(&mut carol_rx).await, want);
    quiet(&mut alice_rx).await;
    quiet(&mut base_rx).await;
    quiet(&mut bob_rx).await;
    // Not recorded: the history has no signal.
    let page = n.b.history(&bob, &c, 10).await.unwrap();
    assert!(page.events.is_empty());
}

/// A publish with an idempotency key happens once per key and channel while its event is in the
/// history, on every node: a repeat (on the other node too) answers the first seq with
/// `duplicate` and delivers nothing; another channel, or the key after its event left the
/// history, publishes anew.
async fn idempotent_publish(kind: Kind) {
    let config = HubConfig::default().history_size(3);
    let Some(n) = nodes(kind, "engine_idempotent", config).await else { return };
    let ch = "repo:eng/idem";
    let (c, mut rx) = n.connect();
    n.b.subscribe(&c, ch, SubscribeOptions::new(None, false, None)).await.unwrap();
    assert_eq!(next(&mut rx).await["type"], "subscribed");
    let ev = |i: u64| RealtimeEvent::new(ch, EventKind::Push, json!({ "i": i }));
    let first = n.a.publish_with(ev(1), Some("k-1".into())).await.unwrap();
    assert!(!first.duplicate);
    for node in [&n.a, &n.b] {
        let again = node.publish_with(ev(2), Some("k-1".into())).await.unwrap();
        assert_eq!((again.seq, again.duplicate, again.delivered), (first.seq, true, 0));
    }
    assert_eq!(key(&next(&mut rx).await), event(first.seq, 1));
    quiet(&mut rx).await;
    // The same key on another channel (of the same stream) is another publish.
    let pr = RealtimeEvent::new("repo:eng/idem/prs", EventKind::PrOpened, json!({ "i": 7 }));
    let other = n.a.publish_with(pr, Some("k-1".into())).await.unwrap();
    assert!(!other.duplicate);
    assert_eq!(key(&next(&mut rx).await), event(other.seq, 7));
    // Two more events push the first out of the history (3 entries): the key is free again.
    for i in 3..=4 {
        n.a.publish_with(ev(i), None).await.unwrap();
    }
    let late = n.a.publish_with(ev(6), Some("k-1".into())).await.unwrap();
    assert!(!late.duplicate && late.seq > first.seq, "{late:?}");
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Kind::Memory).await
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Kind::Redis).await
                }
            )*
        }
    };
}

suite!(
    recovery,
    gap_past_the_history,
    replay_is_capped,
    wrong_epoch,
    ordering,
    filtered_replay,
    unsubscribe,
    preferences,
    counters,
    presence,
    history,
    signals,
    revocation,
    idempotent_publish,
);
