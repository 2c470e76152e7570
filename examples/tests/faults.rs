//! Fault tests of the native SDK against the real `guts-hub` process, through a loopback proxy
//! the test controls: connection cut, stall, hub killed and restarted, terminal close, and 1000
//! subscribers in one process. Everything on 127.0.0.1, bounded in time.

use futures_util::StreamExt;
use guts_realtime_examples::hub_process::HubProcess;
use guts_realtime_examples::proxy::Proxy;
use guts_realtime_examples::sub_reader::{events, subscribed};
use guts_realtime_native::client::{ConnectionState, GapReason};
use guts_realtime_native::{Client, Item};
use std::time::{Duration, Instant};
use tokio::time::timeout;

const HUB: &str = env!("CARGO_BIN_EXE_guts-hub");

async fn hub() -> HubProcess {
    HubProcess::start(HUB, &[]).await.expect("guts-hub starts")
}

fn client(url: String) -> Client {
    Client::builder(url)
        .backoff(Duration::from_millis(50), Duration::from_millis(500))
        .heartbeat(Duration::from_millis(800), Duration::from_millis(800))
        .connect()
        .unwrap()
}

async fn wait_state(c: &Client, f: impl Fn(&ConnectionState) -> bool) -> Instant {
    let mut rx = c.state();
    timeout(Duration::from_secs(20), rx.wait_for(|s| f(&s.state))).await.unwrap().unwrap();
    Instant::now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_connection_reconnects_and_recovers_without_loss_or_duplicates() {
    let hub = hub().await;
    let proxy = Proxy::start(hub.addr()).await.unwrap();
    let c = client(format!("ws://{}/ws", proxy.addr()));
    let mut sub = c.subscribe("repo:fault/cut").await.unwrap();
    subscribed(&mut sub).await;
    let mut published = Vec::new();
    for i in 0..5 {
        published.push(
            hub.publish("repo:fault/cut", "push", serde_json::json!({ "i": i })).await.unwrap(),
        );
    }
    let (mut got, _) = events(&mut sub, 5).await;
    // Outage: the link is cut and reconnects are refused while events are published.
    proxy.refuse(true);
    proxy.cut();
    wait_state(&c, |s| matches!(s, ConnectionState::Reconnecting { .. })).await;
    for i in 5..10 {
        published.push(
            hub.publish("repo:fault/cut", "push", serde_json::json!({ "i": i })).await.unwrap(),
        );
    }
    proxy.refuse(false);
    wait_state(&c, |s| *s == ConnectionState::Connected).await;
    for i in 10..13 {
        published.push(
            hub.publish("repo:fault/cut", "push", serde_json::json!({ "i": i })).await.unwrap(),
        );
    }
    let (rest, gaps) = events(&mut sub, 8).await;
    got.extend(rest);
    assert_eq!(got, published, "zero lost, zero duplicated, in order");
    assert!(gaps.is_empty());
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_link_is_detected_within_the_heartbeat_bound() {
    let hub = hub().await;
    let proxy = Proxy::start(hub.addr()).await.unwrap();
    let c = client(format!("ws://{}/ws", proxy.addr()));
    let mut sub = c.subscribe("repo:fault/stall").await.unwrap();
    subscribed(&mut sub).await;
    let first = hub.publish("repo:fault/stall", "push", serde_json::json!({})).await.unwrap();
    assert_eq!(events(&mut sub, 1).await.0, [first]);
    let stalled_at = Instant::now();
    proxy.stall(true);
    let during = hub.publish("repo:fault/stall", "push", serde_json::json!({})).await.unwrap();
    let detected = wait_state(&c, |s| matches!(s, ConnectionState::Reconnecting { .. })).await;
    // Heartbeat 0.8 s + 0.8 s: the bound is 1.6 s after the last frame; allow scheduling slack.
    let took = detected - stalled_at;
    assert!(took <= Duration::from_millis(3000), "dead link found after {took:?}");
    wait_state(&c, |s| *s == ConnectionState::Connected).await;
    let after = hub.publish("repo:fault/stall", "push", serde_json::json!({})).await.unwrap();
    let (seqs, gaps) = events(&mut sub, 2).await;
    assert_eq!(seqs, [during, after], "nothing lost across the stall");
    assert!(gaps.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_killed_and_restarted_gives_a_gap_then_live_events() {
    let mut old = hub().await;
    let proxy = Proxy::start(old.addr()).await.unwrap();
    let c = client(format!("ws://{}/ws", proxy.addr()));
    let mut sub = c.subscribe("repo:fault/restart").await.unwrap();
    subscribed(&mut sub).await;
    let s1 = old.publish("repo:fault/restart", "push", serde_json::json!({})).await.unwrap();
    assert_eq!(events(&mut sub, 1).await.0, [s1]);
    old.kill().await;
    let new = hub().await;
    proxy.set_upstream(new.addr());
    let mut gap = None;
    timeout(Duration::from_secs(20), async {
        loop {
            // The session reports the resubscription, then the gap.
            if let Item::Gap { reason, .. } = sub.next().await.unwrap() {
                gap = Some(reason);
                break;
            }
        }
    })
    .await
    .expect("resubscribed on the new hub");
    assert_eq!(gap, Some(GapReason::EpochChanged));
    let s2 = new.publish("repo:fault/restart", "push", serde_json::json!({})).await.unwrap();
    assert_eq!(events(&mut sub, 1).await.0, [s2], "new events flow after the gap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_close_does_not_loop() {
    let hub = hub().await;
    let proxy = Proxy::start(hub.addr()).await.unwrap();
    let c = Client::builder(format!("ws://{}/ws", proxy.addr()))
        .backoff(Duration::from_millis(10), Duration::from_millis(50))
        .static_token("not-a-valid-token")
        .connect()
        .unwrap();
    let err = timeout(Duration::from_secs(10), c.connected()).await.unwrap().unwrap_err();
    assert!(err.is_closed(), "{err}");
    assert!(err.to_string().contains("unauthenticated"), "{err}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(proxy.accepted(), 1, "a terminal close never reconnects");
    assert_eq!(c.state().borrow().state, ConnectionState::Closed);
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Documented in the native SDK's docs: at most 64 KiB of client-process memory per connected,
/// subscribed client.
const MAX_KIB_PER_CLIENT: u64 = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_subscribers_in_one_process_stay_within_memory() {
    let hub = hub().await;
    let url = hub.ws_url();
    let before = rss_kib();
    let mut clients = Vec::new();
    let mut subs = Vec::new();
    for chunk in 0..10 {
        let mut batch = Vec::new();
        for i in 0..100 {
            let c = client(url.clone());
            let sub = c.subscribe("repo:fault/many").await.unwrap();
            batch.push(sub);
            clients.push(c);
            let _ = (chunk, i);
        }
        for sub in &mut batch {
            subscribed(sub).await;
        }
        subs.extend(batch);
    }
    let seq = hub.publish("repo:fault/many", "push", serde_json::json!({})).await.unwrap();
    for sub in &mut subs {
        assert_eq!(events(sub, 1).await.0, [seq]);
    }
    let per_client = (rss_kib().saturating_sub(before)) / 1000;
    eprintln!("1000 subscribed clients: {per_client} KiB each (RSS delta / 1000)");
    assert!(per_client <= MAX_KIB_PER_CLIENT, "{per_client} KiB per client");
    for c in &clients {
        c.close().await;
    }
}

/// A publisher whose first reply is lost on the way back retries with the same idempotency key:
/// the event is published once (the retry is answered as a duplicate of it), and a subscriber
/// gets it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_retried_after_a_lost_reply_publishes_once() {
    use guts_realtime::EventKind;
    let hub = hub().await;
    let c = client(hub.ws_url());
    let mut sub = c.subscribe("repo:fault/retry").await.unwrap();
    subscribed(&mut sub).await;
    let proxy = Proxy::start(hub.addr()).await.unwrap();
    proxy.lose_replies(1);
    let publisher = guts_realtime_native::Publisher::builder(
        format!("http://{}", proxy.addr()),
        "conformance-publish-key",
    )
    .backoff(Duration::from_millis(20), Duration::from_millis(100))
    .timeout(Duration::from_secs(5))
    .build()
    .unwrap();
    let p = publisher
        .publish("repo:fault/retry", EventKind::Push, serde_json::json!({"i": 1}))
        .await
        .unwrap();
    assert!(p.duplicate, "the retry was answered as a duplicate: {p:?}");
    assert_eq!(proxy.accepted(), 2, "one lost reply, one retry");
    let (seqs, gaps) = events(&mut sub, 1).await;
    assert_eq!((seqs, gaps), (vec![p.seq], vec![]));
    // Nothing more: the retry published nothing.
    assert!(timeout(Duration::from_millis(300), sub.next()).await.is_err(), "no second event");
    // Over the socket too: Client::publish with a token holding publish rights (the key).
    let publisher_client =
        Client::builder(hub.ws_url()).static_token("conformance-publish-key").connect().unwrap();
    let q = publisher_client
        .publish("repo:fault/retry", EventKind::Push, serde_json::json!({"i": 2}))
        .await
        .unwrap();
    assert!(!q.duplicate && q.seq > p.seq, "{q:?}");
    let mut keyed = Vec::new();
    for _ in 0..2 {
        let data = serde_json::json!({"i": 3});
        let key = Some("k".to_owned());
        keyed.push(
            publisher_client
                .publish_with_key("repo:fault/retry", EventKind::Push, data, key)
                .await
                .unwrap(),
        );
    }
    let (again, dup) = (keyed[0], keyed[1]);
    assert_eq!((dup.seq, dup.duplicate), (again.seq, true));
    let (seqs, _) = events(&mut sub, 2).await;
    assert_eq!(seqs, vec![q.seq, again.seq]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_hub_spreads_its_clients_and_the_native_sdk_waits_its_hint() {
    let mut hub = HubProcess::start(HUB, &["--reconnect-spread-secs", "3"]).await.unwrap();
    let addr = hub.addr().to_string();
    let clients: Vec<Client> = (0..8).map(|_| client(hub.ws_url())).collect();
    for c in &clients {
        timeout(Duration::from_secs(20), c.connected()).await.unwrap().unwrap();
    }
    let mut waits: Vec<_> = clients
        .iter()
        .map(|c| {
            let mut rx = c.state();
            tokio::spawn(async move {
                let s = rx.wait_for(|s| matches!(s.state, ConnectionState::Reconnecting { .. }));
                let s = timeout(Duration::from_secs(20), s).await.unwrap().unwrap().clone();
                let ConnectionState::Reconnecting { retry_in, .. } = s.state else {
                    unreachable!()
                };
                (s.code, s.reason, retry_in)
            })
        })
        .collect();
    let stopped = Instant::now();
    hub.terminate(Duration::from_secs(20)).await;
    let _next = HubProcess::start(HUB, &["--listen", &addr]).await.unwrap();
    let mut hints = Vec::new();
    for w in waits.drain(..) {
        let (code, reason, retry_in) = w.await.unwrap();
        assert_eq!(code, Some(1012), "{reason}");
        let hint = guts_realtime::close::retry_after_hint(&reason).expect("the hint is reported");
        assert!(hint <= Duration::from_secs(3), "{reason}");
        // The hint, plus at most the first backoff step (50 ms).
        assert!(retry_in >= hint && retry_in <= hint + Duration::from_millis(50), "{retry_in:?}");
        hints.push(hint);
    }
    for (c, hint) in clients.iter().zip(&hints) {
        let back = wait_state(c, |s| *s == ConnectionState::Connected).await;
        assert!(back - stopped >= *hint, "back after {:?}, hint {hint:?}", back - stopped);
    }
    assert!(hints.iter().any(|h| *h != hints[0]), "spread, not one value: {hints:?}");
}
