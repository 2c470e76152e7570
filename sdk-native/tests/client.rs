//! The native client against the real server on 127.0.0.1: stream items, the Lagged policy,
//! unsubscribe on drop, close, auth and shared use from many tasks.

#[path = "../server/tests/server_support/mod.rs"]
mod server_support;

use futures_util::StreamExt;
use guts_realtime::session::TokenError;
use guts_realtime::HubConfig;
use guts_realtime_native::client::{ConnectionState, Item, StateInfo};
use guts_realtime_native::{Client, Error, Subscription};
use serde_json::json;
use server_support::{exp_in, mint, token_config, TestServer, KEY};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

async fn next(sub: &mut Subscription) -> Item {
    timeout(WAIT, sub.next()).await.expect("item in time").expect("stream open")
}

async fn until_subscribed(sub: &mut Subscription) {
    loop {
        if let Item::Subscribed { .. } = next(sub).await {
            return;
        }
    }
}

#[tokio::test]
async fn events_arrive_typed_and_in_order() {
    let server = TestServer::default().await;
    let client = Client::builder(server.ws_url()).connect().unwrap();
    let mut sub = client.subscribe("repo:native/app").await.unwrap();
    assert_eq!(sub.channel(), "repo:native/app");
    until_subscribed(&mut sub).await;
    let a = server.publish("repo:native/app", "pr_opened", json!({"number": 1})).await;
    let b = server.publish("repo:native/app", "push", json!({})).await;
    for want in [a, b] {
        match next(&mut sub).await {
            Item::Event(e) => {
                assert_eq!(e.seq, Some(want));
                assert_eq!(e.channel, "repo:native/app");
            }
            other => panic!("{other:?}"),
        }
    }
    client.close().await;
    assert!(timeout(WAIT, sub.next()).await.unwrap().is_none(), "close ends the streams");
}

#[tokio::test]
async fn a_slow_application_gets_lagged_at_the_place_of_the_loss() {
    let server = TestServer::default().await;
    let client = Client::builder(server.ws_url()).buffer(4).connect().unwrap();
    let mut sub = client.subscribe("repo:native/lag").await.unwrap();
    until_subscribed(&mut sub).await;
    let mut seqs = Vec::new();
    for i in 0..10 {
        seqs.push(server.publish("repo:native/lag", "push", json!({ "i": i })).await);
    }
    // Let every frame reach the client before reading anything.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(match next(&mut sub).await {
            Item::Event(e) => format!("event {}", e.seq.unwrap()),
            Item::Lagged(n) => format!("lagged {n}"),
            other => format!("{other:?}"),
        });
    }
    let want: Vec<String> =
        seqs[..4].iter().map(|s| format!("event {s}")).chain(["lagged 6".to_owned()]).collect();
    assert_eq!(got, want);
    // Delivery goes on after the loss.
    let s = server.publish("repo:native/lag", "push", json!({})).await;
    assert!(matches!(next(&mut sub).await, Item::Event(e) if e.seq == Some(s)));
}

#[tokio::test]
async fn dropping_a_subscription_unsubscribes() {
    let server = TestServer::default().await;
    let client = Client::builder(server.ws_url()).connect().unwrap();
    let mut sub = client.subscribe("repo:native/drop").await.unwrap();
    until_subscribed(&mut sub).await;
    assert_eq!(server.hub.metrics().subscriptions, 1);
    drop(sub);
    timeout(WAIT, async {
        while server.hub.metrics().subscriptions != 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("unsubscribed on the hub");
}

#[tokio::test]
async fn state_watch_and_clean_close() {
    let server = TestServer::default().await;
    let client = Client::builder(server.ws_url()).connect().unwrap();
    client.connected().await.unwrap();
    assert_eq!(client.state().borrow().state, ConnectionState::Connected);
    client.close().await;
    let StateInfo { state, reason, .. } = client.state().borrow().clone();
    assert_eq!(state, ConnectionState::Closed);
    assert_eq!(reason, "closed by the application");
    assert!(matches!(client.subscribe("repo:a/b").await, Err(Error::Closed(_))));
    timeout(WAIT, async {
        while server.hub.connection_count() != 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the hub saw the close");
}

#[tokio::test]
async fn token_provider_gives_user_channels() {
    let server = TestServer::default().await;
    let client = Client::builder(server.ws_url())
        .token(|| async { Ok(mint(json!({"sub": "alice", "exp": exp_in(600)}))) })
        .connect()
        .unwrap();
    let mut mine = client.subscribe("user:alice").await.unwrap();
    until_subscribed(&mut mine).await;
    let mut theirs = client.subscribe("user:bob").await.unwrap();
    match next(&mut theirs).await {
        Item::Failed { code, .. } => assert_eq!(code, Some(guts_realtime::ErrorCode::Forbidden)),
        other => panic!("{other:?}"),
    }
    assert!(timeout(WAIT, theirs.next()).await.unwrap().is_none(), "a refused stream ends");
}

#[tokio::test]
async fn invalid_channel_and_bad_url_fail_at_once() {
    assert!(matches!(Client::builder("http://x").connect(), Err(Error::InvalidUrl(_))));
    let server = TestServer::default().await;
    let client = Client::builder(server.ws_url()).connect().unwrap();
    let err = client.subscribe("repo:alice").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid channel: repository channel requires owner/name: "repo:alice""#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_shared_by_many_tasks() {
    let server = TestServer::default().await;
    let client = Client::builder(server.ws_url()).connect().unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut sub = c.subscribe(&format!("repo:native/t{}", i % 4)).await.unwrap();
            until_subscribed(&mut sub).await;
            sub
        }));
    }
    let mut subs = Vec::new();
    for t in tasks {
        subs.push(t.await.unwrap());
    }
    let seq = server.publish("repo:native/t1", "push", json!({})).await;
    for (i, sub) in subs.iter_mut().enumerate() {
        if i % 4 == 1 {
            assert!(matches!(next(sub).await, Item::Event(e) if e.seq == Some(seq)));
        }
    }
    assert_eq!(server.hub.connection_count(), 1, "all clones share one connection");
}

/// A token provider that counts its calls and mints tokens for alice (`repo:acme/*`) living
/// `lifetime` seconds, or fails transiently while `failing` is set.
struct Provider {
    calls: AtomicUsize,
    failing: AtomicBool,
    lifetime: i64,
}

impl Provider {
    fn new(lifetime: i64) -> Arc<Provider> {
        Arc::new(Provider { calls: AtomicUsize::new(0), failing: AtomicBool::new(false), lifetime })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn install(self: &Arc<Self>, builder: guts_realtime_native::ClientBuilder) -> Client {
        let p = self.clone();
        builder
            .token(move || {
                p.calls.fetch_add(1, Ordering::SeqCst);
                let claims =
                    json!({"sub": "alice", "exp": exp_in(p.lifetime), "repos": ["acme/*"]});
                std::future::ready(if p.failing.load(Ordering::SeqCst) {
                    Err(TokenError::Transient("token service down".into()))
                } else {
                    Ok(mint(claims))
                })
            })
            .backoff(Duration::from_millis(100), Duration::from_millis(500))
            .connect()
            .unwrap()
    }
}

#[tokio::test]
async fn the_token_is_refreshed_in_band_and_fetched_again_for_the_reconnect_after_4002() {
    let server = TestServer::start(HubConfig::default(), token_config()).await;
    // A 3 s token: refreshed a second after each authentication (exp − 10 s is already past;
    // never sooner than a second).
    let provider = Provider::new(3);
    let client = provider.install(Client::builder(server.ws_url()));
    let mut sub = client.subscribe("repo:acme/app").await.unwrap();
    until_subscribed(&mut sub).await;
    assert_eq!(provider.calls(), 1);
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let refreshed = provider.calls();
    assert!((2..=4).contains(&refreshed), "refreshes on the open socket: {refreshed}");
    assert_eq!(server.hub.stats().total_connections, 1, "no reconnect");
    assert_eq!(server.hub.stats().total_subscriptions, 1, "no resubscribe");
    let first = server.publish("repo:acme/app", "push", json!({})).await;
    assert!(matches!(next(&mut sub).await, Item::Event(e) if e.seq == Some(first)));
    // The token service goes down: the token expires, the hub closes 4002, the client keeps
    // asking for a token (with backoff) and reconnects once it gets one.
    provider.failing.store(true, Ordering::SeqCst);
    timeout(Duration::from_secs(10), async {
        while server.hub.connection_count() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("closed at expiry");
    let missed = server.publish("repo:acme/app", "push", json!({})).await;
    let before = provider.calls();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(provider.calls() > before, "the reconnect asks the provider");
    provider.failing.store(false, Ordering::SeqCst);
    loop {
        match next(&mut sub).await {
            Item::Subscribed { recovered } => assert_eq!(recovered, Some(true)),
            Item::Event(e) => {
                assert_eq!(e.seq, Some(missed), "recovered after the reconnect");
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(server.hub.stats().total_connections, 2);
}

#[tokio::test]
async fn a_revoked_subscription_fails_with_the_reason_and_is_not_resubscribed() {
    let server = TestServer::start(HubConfig::default(), token_config()).await;
    let provider = Provider::new(600);
    let client = provider.install(Client::builder(server.ws_url()));
    let mut app = client.subscribe("repo:acme/app/prs").await.unwrap();
    let mut web = client.subscribe("repo:acme/web").await.unwrap();
    until_subscribed(&mut app).await;
    until_subscribed(&mut web).await;
    let body = r#"{"user":"alice","channel":"repo:acme/app"}"#;
    let (status, _) =
        server_support::http(server.addr, "POST", "/api/unsubscribe", Some(KEY), Some(body)).await;
    assert_eq!(status, 200);
    match next(&mut app).await {
        Item::Failed { code, message } => {
            assert_eq!(
                (code, message.as_str()),
                (Some(guts_realtime::ErrorCode::Forbidden), "revoked")
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(timeout(WAIT, app.next()).await.unwrap().is_none(), "a revoked stream ends");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.hub.stats().total_subscriptions, 2, "not subscribed again");
    let seq = server.publish("repo:acme/web", "push", json!({})).await;
    match next(&mut web).await {
        Item::Event(e) => assert_eq!(e.seq, Some(seq)),
        other => panic!("{other:?}"),
    }
    assert_eq!(provider.calls(), 1);
}

#[tokio::test]
async fn a_subscribe_future_dropped_by_a_timeout_leaves_no_subscription() {
    use futures_util::FutureExt;
    let server = TestServer::default().await;
    let client = Client::builder(server.ws_url()).connect().unwrap();
    client.connected().await.unwrap();
    // Polled once (the command is sent) and dropped before the driver answers: nothing stays.
    for _ in 0..20 {
        assert!(client.subscribe("repo:cancel/me").now_or_never().is_none());
    }
    // Under a timeout that sometimes fires first and sometimes not: what completed is held,
    // what timed out is not.
    let mut held = Vec::new();
    for i in 0..40 {
        let sub = timeout(Duration::ZERO, client.subscribe(&format!("repo:cancel/t{i}"))).await;
        if let Ok(sub) = sub {
            held.push(sub.unwrap());
        }
    }
    let mut kept = client.subscribe("repo:cancel/kept").await.unwrap();
    until_subscribed(&mut kept).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        server.hub.metrics().subscriptions,
        1 + held.len() as u64,
        "only the subscriptions whose future completed"
    );
}

#[tokio::test]
async fn connected_fails_fast_when_the_first_connection_cannot_be_made() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/ws", closed.local_addr().unwrap());
    drop(closed);
    let client =
        Client::builder(url).connect_timeout(Duration::from_millis(300)).connect().unwrap();
    let started = std::time::Instant::now();
    let e = client.connected().await.unwrap_err();
    assert_eq!(e, Error::ConnectTimeout(Duration::from_millis(300)));
    assert!(started.elapsed() < Duration::from_secs(3));
    // A hub that is there: connected within the timeout.
    let server = TestServer::default().await;
    let client =
        Client::builder(server.ws_url()).connect_timeout(Duration::from_secs(5)).connect().unwrap();
    client.connected().await.unwrap();
}

#[tokio::test]
async fn hub_errors_reach_the_application_and_a_terminal_close_keeps_its_code() {
    let server = TestServer::default().await;
    // A token that expires, and a provider that fails from then on: `token_expired` arrives
    // as an error of the client, not only as a log line.
    let first = std::sync::atomic::AtomicBool::new(true);
    let client = Client::builder(server.ws_url())
        .token(move || {
            let ok = first.swap(false, Ordering::SeqCst);
            std::future::ready(if ok {
                Ok(mint(json!({"sub": "alice", "exp": exp_in(2)})))
            } else {
                Err(TokenError::Transient("down".into()))
            })
        })
        .connect()
        .unwrap();
    let mut errors = client.errors();
    client.connected().await.unwrap();
    let e = timeout(WAIT, errors.recv()).await.expect("an error in time").unwrap();
    assert_eq!(e.code, Some(guts_realtime::ErrorCode::TokenExpired), "{e:?}");
    // A refused token ends the client: the error says 4001.
    let client = Client::builder(server.ws_url()).static_token("forged").connect().unwrap();
    let e = client.connected().await.unwrap_err();
    assert_eq!(e.close_code(), Some(4001), "{e}");
    assert!(e.is_closed());
}

#[tokio::test]
async fn a_worker_resumes_from_its_saved_position_or_is_told_of_the_gap() {
    let server = TestServer::default().await;
    let client = Client::builder(server.ws_url()).connect().unwrap();
    let mut sub = client.subscribe("repo:worker/app").await.unwrap();
    until_subscribed(&mut sub).await;
    for i in 1..=2 {
        server.publish("repo:worker/app", "push", json!({"i": i})).await;
        assert!(matches!(next(&mut sub).await, Item::Event(_)));
    }
    let saved = sub.position().expect("a position after events");
    client.close().await;
    // Down while two more are published; back with the saved position: exactly those two.
    let missed = [
        server.publish("repo:worker/app", "push", json!({"i": 3})).await,
        server.publish("repo:worker/app", "push", json!({"i": 4})).await,
    ];
    let client = Client::builder(server.ws_url()).connect().unwrap();
    let mut sub = client.subscribe_from("repo:worker/app", saved.clone()).await.unwrap();
    assert_eq!(next(&mut sub).await, Item::Subscribed { recovered: Some(true) });
    for seq in missed {
        assert!(matches!(next(&mut sub).await, Item::Event(e) if e.seq == Some(seq)));
    }
    assert_eq!(sub.position().map(|p| p.seq), Some(missed[1]));
    // A position from another epoch (a hub restart): a gap, then live.
    let stale = guts_realtime::Since { seq: saved.seq, epoch: "another-epoch".into() };
    let mut sub = client.subscribe_from("repo:worker/other", stale).await.unwrap();
    loop {
        match next(&mut sub).await {
            Item::Gap { reason, .. } => {
                assert_eq!(reason, guts_realtime::session::GapReason::EpochChanged);
                break;
            }
            Item::Subscribed { .. } => {}
            other => panic!("{other:?}"),
        }
    }
}

/// A client authenticated as `user` (reads every repository).
fn client_as(server: &TestServer, user: &str) -> Client {
    let token = mint(json!({"sub": user, "exp": exp_in(3600), "repos": ["*/*"]}));
    Client::builder(server.ws_url()).static_token(token).connect().unwrap()
}

#[tokio::test]
async fn presence_signals_and_history_through_the_client() {
    use guts_realtime_native::SubscribeOptions;
    let server = TestServer::default().await;
    let ch = "repo:native/collab/prs/3";
    let alice = client_as(&server, "alice");
    let bob = client_as(&server, "bob");
    let presence = SubscribeOptions::default().presence(true);
    let mut a = alice.subscribe_with(ch, presence.clone()).await.unwrap();
    assert_eq!(next(&mut a).await, Item::Subscribed { recovered: None });
    let Item::Presence(list) = next(&mut a).await else { panic!("the member list first") };
    assert_eq!(list.iter().map(|m| m.user.as_str()).collect::<Vec<_>>(), ["alice"]);
    let mut b = bob.subscribe_with(ch, presence).await.unwrap();
    until_subscribed(&mut b).await;
    assert_eq!(next(&mut a).await, Item::Join("bob".into()));
    assert_eq!(a.members().collect::<Vec<_>>(), [("alice", 1), ("bob", 1)]);
    // Bob types: alice hears it from "bob"; bob hears nothing back.
    bob.signal(ch, "typing", &json!({"line": 3})).await.unwrap();
    assert_eq!(
        next(&mut a).await,
        Item::Signal { event: "typing".into(), data: json!({"line": 3}), user: "bob".into() }
    );
    // A refused signal comes back on the errors stream.
    let mut errors = bob.errors();
    bob.signal("repo:native/collab", "typing", &json!({})).await.unwrap();
    let e = timeout(WAIT, errors.recv()).await.unwrap().unwrap();
    assert_eq!(e.code, Some(guts_realtime::ErrorCode::Forbidden));
    assert!(matches!(next(&mut b).await, Item::Presence(_)));
    assert!(timeout(Duration::from_millis(200), b.next()).await.is_err(), "no echo");
    // The query without joining.
    let who = alice.presence(ch).await.unwrap();
    assert_eq!(who.iter().map(|m| m.user.as_str()).collect::<Vec<_>>(), ["alice", "bob"]);
    // Bob leaves.
    drop(b);
    assert_eq!(next(&mut a).await, Item::Leave("bob".into()));
    assert_eq!(a.members().collect::<Vec<_>>(), [("alice", 1)]);
    // History, then the live stream from its position: nothing missed, nothing twice.
    let seqs = [
        server.publish("repo:native/collab", "pr_updated", json!({"number": 3})).await,
        server.publish("repo:native/collab", "pr_updated", json!({"number": 4})).await,
        server.publish(ch, "pr_comment", json!({"parent_number": 3})).await,
    ];
    let history = alice.history(ch, Some(10)).await.unwrap();
    let got: Vec<u64> = history
        .items
        .iter()
        .map(|i| match i {
            Item::Event(e) => e.seq.unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(got, [seqs[0], seqs[2]]);
    let later = server.publish(ch, "pr_merged", json!({})).await;
    let mut resumed = bob.subscribe_from(ch, history.position).await.unwrap();
    assert_eq!(next(&mut resumed).await, Item::Subscribed { recovered: Some(true) });
    assert!(matches!(next(&mut resumed).await, Item::Event(e) if e.seq == Some(later)));
    let bad = alice.history(ch, Some(0)).await.unwrap_err();
    assert!(
        matches!(bad, Error::Request { code: Some(guts_realtime::ErrorCode::InvalidMessage), .. }),
        "{bad}"
    );
}

/// An event of a kind this version does not know (a newer hub's) reaches the application with
/// its kind string, in order with the others. A scripted hub sends it: this version's hub only
/// publishes the kinds it knows.
#[tokio::test]
async fn an_event_of_an_unknown_kind_is_delivered_with_its_kind() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let welcome = json!({"type": "welcome", "epoch": "ep-1", "client_id": "c"});
        ws.send(Message::text(welcome.to_string())).await.unwrap();
        while let Some(Ok(Message::Text(t))) = ws.next().await {
            let f: serde_json::Value = serde_json::from_str(&t).unwrap();
            if f["type"] != "subscribe" {
                continue;
            }
            let ch = f["channel"].as_str().unwrap();
            let frames = [
                json!({"type": "subscribed", "channel": ch, "seq": 0, "id": f["id"]}),
                json!({"type": "event", "channel": ch, "event": "pr_auto_merge_enabled",
                       "data": {"number": 7}, "timestamp": 1, "event_id": "e1", "seq": 1}),
                json!({"type": "event", "channel": ch, "event": "push", "data": {},
                       "timestamp": 2, "event_id": "e2", "seq": 2}),
            ];
            for frame in frames {
                ws.send(Message::text(frame.to_string())).await.unwrap();
            }
        }
    });
    let client = Client::builder(url).connect().unwrap();
    let mut sub = client.subscribe("repo:native/newer").await.unwrap();
    until_subscribed(&mut sub).await;
    match next(&mut sub).await {
        Item::UnknownEvent(e) => {
            assert_eq!(
                (e.event.as_str(), e.seq, e.data["number"].as_u64()),
                ("pr_auto_merge_enabled", Some(1), Some(7))
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(next(&mut sub).await, Item::Event(e) if e.seq == Some(2)));
    assert_eq!(sub.position().map(|p| p.seq), Some(2));
    client.close().await;
}

/// The Publisher over HTTP: a publish reaches a subscriber; a repeat with the same key is a
/// duplicate; a notification is delivered; a wrong key is refused at once (not retried).
#[tokio::test]
async fn the_publisher_publishes_notifies_and_reports_refusals() {
    use guts_realtime::{EventKind, Notification, NotificationMetadata, NotificationType};
    use guts_realtime_native::{Notified, PublishError, Publisher};
    let server = TestServer::default().await;
    let client = Client::builder(server.ws_url()).connect().unwrap();
    let mut sub = client.subscribe("repo:pub/app").await.unwrap();
    until_subscribed(&mut sub).await;
    let publisher = Publisher::builder(format!("http://{}", server.addr), KEY).build().unwrap();
    let data = json!({"number": 3});
    let p = publisher
        .publish_with_key("repo:pub/app", EventKind::PrOpened, data.clone(), "k1")
        .await
        .unwrap();
    assert!(!p.duplicate && p.delivered == Some(1), "{p:?}");
    let again =
        publisher.publish_with_key("repo:pub/app", EventKind::PrOpened, data, "k1").await.unwrap();
    assert_eq!((again.seq, again.duplicate), (p.seq, true));
    assert!(matches!(next(&mut sub).await, Item::Event(e) if e.seq == Some(p.seq)));
    let note = Notification {
        id: "n1".into(),
        user_id: "alice".into(),
        notification_type: NotificationType::Mention,
        title: "t".into(),
        body: "b".into(),
        url: None,
        created_at: 1,
        read: false,
        metadata: NotificationMetadata::default(),
    };
    assert!(matches!(publisher.notify(&note).await.unwrap(), Notified::Delivered(_)));
    let wrong = Publisher::builder(format!("http://{}", server.addr), "wrong").build().unwrap();
    let e = wrong.publish("repo:pub/app", EventKind::Push, json!({})).await.unwrap_err();
    assert!(matches!(e, PublishError::Refused { status: 401, .. }), "{e:?}");
    assert!(Publisher::builder("ftp://x", KEY).build().is_err());
}
