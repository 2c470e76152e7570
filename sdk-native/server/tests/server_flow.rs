//! Recovery over the network (replay then live, and the race with concurrent publishes), the
//! slow-consumer policy, reading while a write is blocked, the idle timeout and graceful
//! shutdown, against the real server on 127.0.0.1. Bounded in time.

mod server_support;

use futures_util::{SinkExt, StreamExt};
use guts_realtime::close::retry_after_hint;
use guts_realtime::{EventKind, HubConfig};
use serde_json::{json, Value};
use server_support::*;
use std::time::Duration;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn reconnect_with_since_replays_then_goes_live() {
    let s = TestServer::default().await;
    let ch = uniq("repo:rec/r");
    let mut c = s.ws().await;
    let r = c.subscribe(&ch).await;
    let mut last = r["seq"].as_u64().unwrap();
    for _ in 0..2 {
        let seq = s.publish(&ch, "push", json!({})).await;
        assert_eq!(c.recv().await["seq"], seq);
        last = seq;
    }
    let epoch = c.epoch();
    drop(c);
    let mut missed = Vec::new();
    for kind in ["push", "pr_opened", "issue_opened"] {
        missed.push(s.publish(&ch, kind, json!({})).await);
    }
    // Another stream's events are not replayed.
    s.publish(&uniq("repo:rec/other"), "push", json!({})).await;
    let mut c = s.ws().await;
    assert_eq!(c.epoch(), epoch, "same hub, same epoch");
    c.send_json(json!({"type": "subscribe", "channel": ch, "since": {"seq": last, "epoch": epoch}, "id": "r"}))
        .await;
    let r = c.recv().await;
    assert_eq!(
        (r["type"].as_str(), r["recovered"].as_bool(), r["id"].as_str()),
        (Some("subscribed"), Some(true), Some("r"))
    );
    let got: Vec<u64> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(c.recv().await["seq"].as_u64().unwrap());
        }
        v
    };
    assert_eq!(got, missed);
    let live = s.publish(&ch, "push", json!({})).await;
    assert_eq!(c.recv().await["seq"], live);
    c.still_open().await;
    // A foreign epoch is a gap: recovered false, nothing replayed.
    let mut g = s.ws().await;
    g.send_json(json!({"type": "subscribe", "channel": ch, "since": {"seq": 0, "epoch": "other"}}))
        .await;
    let r = g.recv().await;
    assert_eq!(r["recovered"], false);
    g.still_open().await;
}

/// The race: events are published continuously from another thread while the client
/// reconnects and its replay is in flight. It must see every event after its position exactly
/// once, in strictly increasing seq order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_races_with_concurrent_publishes_without_gap_or_duplicate() {
    let hub = HubConfig::default().history_size(10_000).max_replay_events(10_000);
    let s = TestServer::start(hub.max_replay_bytes(usize::MAX), config()).await;
    let ch = uniq("repo:race/r");
    let mut c = s.ws().await;
    let r = c.subscribe(&ch).await;
    let epoch = c.epoch();
    let mut last = r["seq"].as_u64().unwrap();
    for _ in 0..5 {
        last = s.publish(&ch, "push", json!({})).await;
        assert_eq!(c.recv().await["seq"], last);
    }
    drop(c);
    // Missed while away.
    let mut published: Vec<u64> = (0..300)
        .map(|i| s.hub.publish(&ch, EventKind::PrUpdated, json!({"i": i})).unwrap().seq)
        .collect();
    // Published while the client reconnects and its replay is being queued.
    let hub = s.hub.clone();
    let ch2 = ch.clone();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = count.clone();
    let (go, start) = std::sync::mpsc::channel::<()>();
    let publisher = std::thread::spawn(move || {
        let _ = start.recv();
        let mut seqs = Vec::new();
        for i in 0..3000u64 {
            let kind = if i % 3 == 0 { EventKind::PrOpened } else { EventKind::Push };
            seqs.push(hub.publish(&ch2, kind, json!({"live": i})).unwrap().seq);
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if i % 20 == 0 {
                std::thread::sleep(Duration::from_micros(500));
            }
        }
        seqs
    });
    let mut c = s.ws().await;
    go.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(2)).await;
    c.send_json(
        json!({"type": "subscribe", "channel": ch, "since": {"seq": last, "epoch": epoch}}),
    )
    .await;
    let r = c.recv().await;
    let at = count.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        (r["type"].as_str(), r["recovered"].as_bool()),
        (Some("subscribed"), Some(true)),
        "{r}"
    );
    let live = tokio::task::spawn_blocking(move || publisher.join().unwrap()).await.unwrap();
    eprintln!(
        "live events published when the subscribe was answered: {at} of 3000; replayed {}",
        s.hub.metrics().frames_replayed
    );
    published.extend(live);
    let target = *published.last().unwrap();
    let mut got = Vec::new();
    timeout(Duration::from_secs(60), async {
        while got.last() != Some(&target) {
            let e = c.recv().await;
            assert_eq!(e["type"], "event", "{e}");
            got.push(e["seq"].as_u64().unwrap());
        }
    })
    .await
    .expect("every event arrives");
    assert!(got.windows(2).all(|w| w[0] < w[1]), "strictly increasing, no duplicate");
    assert_eq!(got, published, "no gap: exactly the events after `since`, in order");
    c.still_open().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_is_closed_4008_while_others_get_everything() {
    let hub_cfg = HubConfig::default().queue_capacity(256);
    let s = TestServer::start(hub_cfg, config()).await;
    let ch = uniq("repo:slow/r");
    let mut stalled = s.ws().await;
    stalled.subscribe(&ch).await;
    let stalled_id = stalled.welcome["client_id"].as_str().unwrap().to_owned();
    let mut reader = s.ws().await;
    reader.subscribe(&ch).await;
    let n = 3000u64;
    let pad = "x".repeat(16 * 1024);
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = progress.clone();
    let read = tokio::spawn(async move {
        let mut seqs = Vec::new();
        while (seqs.len() as u64) < n {
            let e = reader.recv().await;
            seqs.push(e["seq"].as_u64().unwrap());
            seen.store(seqs.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        (reader, seqs)
    });
    let mut published = Vec::new();
    for i in 0..n {
        published
            .push(s.hub.publish(&ch, EventKind::Push, json!({"i": i, "pad": pad})).unwrap().seq);
        // Paced by the reader (at most 128 events ahead of it), so only the stalled client's
        // queue can fill up, however slow this machine is.
        let deadline = Instant::now() + Duration::from_secs(60);
        while i + 1 > progress.load(std::sync::atomic::Ordering::Relaxed) + 128 {
            assert!(Instant::now() < deadline, "the reader stopped reading");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let (mut reader, seqs) =
        timeout(Duration::from_secs(120), read).await.expect("the reader keeps up").unwrap();
    assert_eq!(seqs, published, "the well-behaved reader got every event in order");
    let m = s.hub.metrics();
    assert_eq!(m.slow_consumer_disconnects, 1, "{m:?}");
    assert!(m.queue_drops >= 1);
    assert!(s.hub.get_client(&stalled_id).is_none(), "the stalled client's queue is released");
    assert_eq!(metric(s.addr, "slow_consumer_disconnects_total").await, 1);
    assert_eq!(s.hub.metrics().subscriptions, 1, "only the reader's subscription is left");
    // The stalled client reads what was already written, then the slow-consumer close.
    let (code, reason) = stalled.closed(Duration::from_secs(60)).await;
    assert_eq!((code, reason.as_str()), (4008, "slow consumer"));
    reader.still_open().await;
}

#[tokio::test]
async fn a_client_whose_socket_is_full_is_still_read() {
    // One task drives both directions of a connection: a write blocked on a full socket must not
    // stop its commands from being read and executed.
    let hub_cfg = HubConfig::default().queue_capacity(4096);
    let s = TestServer::start(hub_cfg, config()).await;
    let ch = uniq("repo:full/r");
    let mut stalled = s.ws().await;
    stalled.subscribe(&ch).await;
    let id = stalled.welcome["client_id"].as_str().unwrap().to_owned();
    let client = s.hub.get_client(&id).unwrap();
    let pad = "x".repeat(16 * 1024);
    let deadline = Instant::now() + Duration::from_secs(30);
    // Publish until frames stay queued: the socket (and the kernel's buffers) are full.
    let mut published = 0;
    loop {
        assert!(Instant::now() < deadline, "the socket never filled ({published} events)");
        for _ in 0..64 {
            s.hub.publish(&ch, EventKind::Push, json!({"pad": pad})).unwrap();
            published += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        if client.queued() > 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if client.queued() > 0 {
                break;
            }
        }
    }
    let other = uniq("repo:full/other");
    stalled.send_json(json!({"type": "subscribe", "channel": other})).await;
    let want = other.parse::<guts_realtime::Channel>().unwrap();
    while !client.channels().contains(&want) {
        assert!(Instant::now() < deadline, "the command was not read while the write was blocked");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(client.queued() > 0, "the write is still blocked");
}

/// Publishes one event on `ch` and returns when `c` got it.
async fn publish_and_recv(s: &TestServer, c: &mut Ws, ch: &str, i: u64) -> Instant {
    let seq = s.hub.publish(ch, EventKind::Push, json!({ "i": i })).unwrap().seq;
    let e = c.recv().await;
    assert_eq!(e["seq"].as_u64(), Some(seq), "{e}");
    Instant::now()
}

#[tokio::test]
async fn a_write_interval_holds_frames_back_and_sends_them_together() {
    let interval = Duration::from_millis(300);
    let s = TestServer::start(HubConfig::default(), config().write_interval(interval)).await;
    let ch = uniq("repo:wi/r");
    let connecting = Instant::now();
    let mut c = s.ws().await;
    assert!(connecting.elapsed() < interval, "the welcome is not held: {:?}", connecting.elapsed());
    c.subscribe(&ch).await;
    // Long after the last write: the first frame goes out at once.
    tokio::time::sleep(interval).await;
    let sent = Instant::now();
    let first = publish_and_recv(&s, &mut c, &ch, 0).await;
    assert!(first - sent < interval, "an idle connection is not delayed: {:?}", first - sent);
    // Right after a write: held until the interval has passed, then all of them at once.
    let seqs: Vec<u64> = (1..=3)
        .map(|i| s.hub.publish(&ch, EventKind::Push, json!({ "i": i })).unwrap().seq)
        .collect();
    for seq in &seqs {
        assert_eq!(c.recv().await["seq"].as_u64(), Some(*seq));
    }
    let held = first.elapsed();
    assert!(held >= interval - Duration::from_millis(50), "held for {held:?}");
    // Without an interval nothing waits (the default).
    let s = TestServer::default().await;
    let mut c = s.ws().await;
    c.subscribe(&ch).await;
    let first = publish_and_recv(&s, &mut c, &ch, 0).await;
    publish_and_recv(&s, &mut c, &ch, 1).await;
    assert!(first.elapsed() < interval, "no interval, no wait: {:?}", first.elapsed());
}

#[tokio::test]
async fn a_close_asked_for_while_frames_are_held_follows_them() {
    // An event held by the write interval, then a refused token: the event, the error reply
    // and the 4001 close, in that order, well before the close timeout.
    let cfg = config().write_interval(Duration::from_millis(300));
    let s = TestServer::start(HubConfig::default(), cfg).await;
    let ch = uniq("repo:wi/close");
    let mut c = s.ws().await;
    c.subscribe(&ch).await;
    let seq = s.hub.publish(&ch, EventKind::Push, json!({})).unwrap().seq;
    c.send_json(json!({"type": "auth", "token": "xyz.abc.def", "id": 1})).await;
    assert_eq!(c.recv().await["seq"].as_u64(), Some(seq));
    let r = c.recv().await;
    assert_eq!((r["type"].as_str(), r["code"].as_str()), (Some("error"), Some("unauthenticated")));
    assert_eq!(c.closed(Duration::from_secs(3)).await, (4001, "unauthenticated".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_flooding_commands_still_gets_every_reply() {
    // One task reads and writes a connection: a client that never stops sending must not keep
    // its replies from being written (they would pile up to a slow-consumer close).
    let s = TestServer::start(HubConfig::default(), config().rate_limit(None)).await;
    let c = s.ws().await;
    let (mut tx, mut rx) = c.ws.split();
    let n = 100_000u32;
    let send = tokio::spawn(async move {
        for i in 0..n {
            let ping = format!(r#"{{"type":"ping","id":{i}}}"#);
            tx.feed(Message::text(ping)).await.unwrap();
        }
        tx.flush().await.unwrap();
    });
    let mut pongs = 0;
    while pongs < n {
        match timeout(WAIT, rx.next()).await.expect("a reply in time") {
            Some(Ok(Message::Text(t))) => {
                assert!(t.starts_with(r#"{"type":"pong""#), "{t}");
                pongs += 1;
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("after {pongs} pongs: {other:?}"),
        }
    }
    send.await.unwrap();
}

/// The driver's side of the pings and the idle close: that the rules' decisions reach the wire
/// through its timer. The rules themselves (timing to the millisecond, rate limit, drain, close
/// timeout) are tested in virtual time in `protocol/tests/server_rules.rs`.
#[tokio::test]
async fn silent_clients_are_closed_4009_and_answering_ones_stay() {
    let cfg =
        config().ping_interval(Duration::from_millis(100)).idle_timeout(Duration::from_millis(250));
    let s = TestServer::start(HubConfig::default(), cfg).await;
    let mut silent = s.ws().await;
    let mut alive = s.ws().await;
    // `alive` keeps reading, so tungstenite answers every ping with a pong.
    let until = Instant::now() + Duration::from_millis(600);
    let mut pings = 0;
    while let Ok(msg) = tokio::time::timeout_at(until, alive.ws.next()).await {
        match msg {
            Some(Ok(Message::Ping(_))) => pings += 1,
            other => panic!("the answering client got {other:?}"),
        }
    }
    assert!(pings >= 3, "server pings arrive every 100 ms: {pings}");
    alive.still_open().await;
    // `silent` never read, so it never answered: it was closed.
    let (code, reason) = silent.closed(WAIT).await;
    assert_eq!((code, reason.as_str()), (4009, "idle timeout"));
    assert_eq!(metric(s.addr, "idle_closes_total").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_closes_every_client_with_1012_and_returns() {
    let cfg = config().close_timeout(Duration::from_millis(300));
    let mut s = TestServer::start(HubConfig::default(), cfg).await;
    let ch = uniq("repo:bye/r");
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut c = s.ws().await;
        c.subscribe(&ch).await;
        clients.push(c);
    }
    // One more that never reads and never answers the close.
    let _deaf = s.ws().await;
    let seq = s.publish(&ch, "push", json!({})).await;
    let addr = s.addr;
    let started = Instant::now();
    s.stop().await.expect("serve returns Ok");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    for c in &mut clients {
        // The event queued before the shutdown is delivered before the close.
        let e: Value = c.recv().await;
        assert_eq!(e["seq"], seq);
        let (code, reason) = c.closed(WAIT).await;
        assert_eq!(code, 1012, "{reason}");
        let hint = retry_after_hint(&reason).expect("a retry_after_ms hint");
        assert!(hint <= Duration::from_secs(10), "{reason}: within the default spread");
    }
    assert_eq!(s.hub.connection_count(), 0, "every client was removed from the hub");
    assert!(Ws::connect(&format!("ws://{addr}/ws")).await.is_err(), "no longer accepting");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconnect_hints_of_a_shutdown_are_spread_uniformly() {
    let spread = Duration::from_secs(8);
    let cfg = config().reconnect_spread(spread).rate_limit(None);
    let mut s = TestServer::start(HubConfig::default(), cfg).await;
    let mut clients = Vec::new();
    for _ in 0..200 {
        clients.push(s.ws().await);
    }
    s.stop().await.expect("serve returns Ok");
    let mut quarters = [0usize; 4];
    for c in &mut clients {
        let (code, reason) = c.closed(WAIT).await;
        assert_eq!(code, 1012);
        let hint = retry_after_hint(&reason).expect("a hint");
        assert!(hint <= spread, "{reason}");
        quarters[(hint.as_secs_f64() / 2.0).min(3.0) as usize] += 1;
    }
    // Uniform over 8 s: each 2 s quarter holds 50 of 200 on average (≥ 25 fails once in ~10⁶).
    assert!(quarters.iter().all(|&n| n >= 25), "hints per 2 s: {quarters:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_spread_the_shutdown_close_carries_no_hint() {
    let cfg = config().reconnect_spread(Duration::ZERO);
    let mut s = TestServer::start(HubConfig::default(), cfg).await;
    let mut c = s.ws().await;
    s.stop().await.expect("serve returns Ok");
    assert_eq!(c.closed(WAIT).await, (1012, "server restarting".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_turns_readyz_503_while_clients_are_still_served() {
    let drain = Duration::from_millis(800);
    let cfg = config().drain_timeout(drain);
    let mut s = TestServer::start(HubConfig::default(), cfg).await;
    let ch = uniq("repo:drain/r");
    let mut c = s.ws().await;
    c.subscribe(&ch).await;
    assert_eq!(http(s.addr, "GET", "/readyz", None, None).await, (200, "ready\n".into()));
    let started = Instant::now();
    s.signal_stop();
    let mut status = 200;
    while status == 200 && started.elapsed() < WAIT {
        status = http(s.addr, "GET", "/readyz", None, None).await.0;
    }
    assert_eq!(status, 503, "/readyz during the drain");
    assert_eq!(http(s.addr, "GET", "/readyz", None, None).await.1, "draining\n");
    assert_eq!(http(s.addr, "GET", "/healthz", None, None).await.0, 200, "still alive");
    // Still served: a publish reaches the client, and a new client can connect.
    let seq = s.publish(&ch, "push", json!({})).await;
    let e: Value = c.recv().await;
    assert_eq!(e["seq"], seq);
    let mut late = s.ws().await;
    late.subscribe(&ch).await;
    let (code, _) = c.closed(WAIT).await;
    assert_eq!(code, 1012);
    assert!(started.elapsed() >= drain, "closed after the drain, not {:?}", started.elapsed());
    assert_eq!(late.closed(WAIT).await.0, 1012);
    s.stop().await.expect("serve returns Ok");
}
/// Whether the server closes `tcp` within `limit` (whatever it sends first is read and dropped).
async fn closed_within(tcp: &mut tokio::net::TcpStream, limit: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 512];
    timeout(limit, async { while matches!(tcp.read(&mut buf).await, Ok(1..)) {} }).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_not_finished_in_time_closes_the_connection() {
    use tokio::io::AsyncWriteExt;
    let cfg = config().request_head_timeout(Duration::from_millis(300));
    let s = TestServer::start(HubConfig::default(), cfg).await;
    // One connection says nothing, one trickles half a WebSocket handshake.
    let mut silent = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let mut trickle = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    trickle.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: webso").await.unwrap();
    let started = Instant::now();
    assert!(closed_within(&mut trickle, Duration::from_secs(5)).await, "trickle");
    assert!(closed_within(&mut silent, Duration::from_secs(5)).await, "silent");
    assert!(started.elapsed() >= Duration::from_millis(250), "{:?}", started.elapsed());
    // A client that sends its head at once is served as ever.
    let mut c = s.ws().await;
    c.subscribe(&uniq("repo:head/r")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_not_held_by_a_half_sent_request() {
    use tokio::io::AsyncWriteExt;
    let cfg = config().shutdown_timeout(Duration::from_millis(500));
    let mut s = TestServer::start(HubConfig::default(), cfg).await;
    let mut half = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHo").await.unwrap();
    let mut c = s.ws().await;
    c.subscribe(&uniq("repo:half/r")).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    timeout(Duration::from_secs(5), s.stop())
        .await
        .expect("serve returns within the shutdown timeout, half-sent request or not")
        .expect("serve returns Ok");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert_eq!(c.closed(WAIT).await.0, 1012);
    assert!(closed_within(&mut half, Duration::from_secs(5)).await);
}

/// Sends `request` raw and reads the status line's code (0 when the connection closes first).
async fn raw_status(addr: std::net::SocketAddr, request: &[u8], within: Duration) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(within, tcp.read(&mut buf)).await.ok()?.unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]).to_string();
    Some(text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0))
}

/// A request head over 16 KiB is answered 431 (before, a 290 KB head was answered 200).
#[tokio::test]
async fn a_request_head_over_16_kib_is_answered_431() {
    let s = TestServer::default().await;
    let head = |pad: usize| {
        format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n", "p".repeat(pad))
            .into_bytes()
    };
    assert_eq!(raw_status(s.addr, &head(8 * 1024), WAIT).await, Some(200));
    assert_eq!(raw_status(s.addr, &head(20 * 1024), WAIT).await, Some(431));
}

/// The publish key is checked before the body is read: a wrong key is answered 401 at once, even
/// while the body has not arrived (before, the hub waited for the whole body first).
#[tokio::test]
async fn the_publish_key_is_checked_before_the_body_is_read() {
    let s = TestServer::default().await;
    for path in ["/api/publish", "/api/notify"] {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"channel\""
        );
        let status = raw_status(s.addr, req.as_bytes(), Duration::from_secs(2)).await;
        assert_eq!(status, Some(401), "{path}: no answer before the body, or not 401");
    }
}

/// A publish whose body does not arrive in time is answered 408 and its connection closed (before,
/// 20 of 20 trickling POSTs stayed open past 22 s).
#[tokio::test]
async fn a_body_not_complete_in_time_is_answered_408_and_closed() {
    let cfg = config().request_body_timeout(Duration::from_millis(300));
    let s = TestServer::start(HubConfig::default(), cfg).await;
    let req = format!(
        "POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"channel\""
    );
    let started = Instant::now();
    assert_eq!(raw_status(s.addr, req.as_bytes(), Duration::from_secs(3)).await, Some(408));
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}

/// Connections still speaking HTTP are capped: beyond `max_http_connections`, a new one is
/// answered 503 and closed at once, and a slot frees when one goes (before, any number of silent
/// sockets was held, each with its task).
#[tokio::test]
async fn connections_speaking_http_are_capped() {
    use tokio::io::AsyncReadExt;
    let s = TestServer::start(HubConfig::default(), config().max_http_connections(2)).await;
    let silent_a = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let _silent_b = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let mut answer = String::new();
    timeout(WAIT, third.read_to_string(&mut answer)).await.expect("closed at once").unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    drop(silent_a);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let req = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        if raw_status(s.addr, req, WAIT).await == Some(200) {
            break;
        }
        assert!(Instant::now() < deadline, "the slot was not freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(metric(s.addr, "http_connections_refused_total").await >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbound_queue_is_bounded_in_bytes_too() {
    // Room for 100 000 frames, but 1 MiB: a client that stops reading is closed as a slow
    // consumer once 1 MiB of large frames waits for it, not 6 GB later.
    let hub_cfg = HubConfig::default().queue_capacity(100_000).max_queue_bytes(1 << 20);
    let s = TestServer::start(hub_cfg, config()).await;
    let ch = uniq("repo:bytes/r");
    let mut stalled = s.ws().await;
    stalled.subscribe(&ch).await;
    let id = stalled.welcome["client_id"].as_str().unwrap().to_owned();
    let client = s.hub.get_client(&id).unwrap();
    let pad = "x".repeat(64 * 1024);
    let mut most = 0;
    for i in 0..400 {
        if !client.is_open() {
            break;
        }
        s.hub.publish(&ch, EventKind::Push, json!({"i": i, "pad": pad})).unwrap();
        most = most.max(client.queued_bytes());
    }
    assert!(!client.is_open(), "closed within 400 × 64 KiB (25 MiB)");
    assert!(most <= 1 << 20, "never more than 1 MiB queued: {most}");
    assert_eq!(s.hub.metrics().slow_consumer_disconnects, 1);
    let (code, _) = stalled.closed(Duration::from_secs(30)).await;
    assert_eq!(code, 4008);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_but_pings_is_closed_at_the_write_stall_timeout() {
    // The queue could hold it all: only the stall ends it.
    let hub_cfg = HubConfig::default().queue_capacity(1_000_000).max_queue_bytes(1 << 30);
    let cfg = config()
        .write_stall_timeout(Duration::from_secs(1))
        .close_timeout(Duration::from_millis(500));
    let s = TestServer::start(hub_cfg, cfg).await;
    let ch = uniq("repo:stall/r");
    let mut stalled = s.ws().await;
    stalled.subscribe(&ch).await;
    // More than the socket buffers on both sides of loopback hold.
    let pad = "x".repeat(512 * 1024);
    for i in 0..80 {
        s.hub.publish(&ch, EventKind::Push, json!({"i": i, "pad": pad})).unwrap();
    }
    let started = Instant::now();
    // Still talking (pings every 200 ms), never reading.
    let pinger = tokio::spawn(async move {
        for _ in 0..40 {
            stalled.send(r#"{"type":"ping"}"#).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        stalled
    });
    timeout(Duration::from_secs(6), async {
        while s.hub.connection_count() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("dropped within the stall timeout and the close timeout");
    eprintln!("stalled connection dropped after {:?}", started.elapsed());
    assert_eq!(metric(s.addr, "write_stall_closes_total").await, 1);
    pinger.abort();
}
