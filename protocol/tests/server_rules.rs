//! The server connection's timing and limits in virtual time: the real client session, the real
//! server connection rules and the real in-memory hub (the pair of `support/mod.rs`). Idle close,
//! pings, the rate limit, the draining shutdown, the close timeout and re-auth — each to the
//! millisecond, with no sleep.

mod support;

use guts_realtime::server::{ConnectionConfig, RateLimit};
use guts_realtime::session::{ConnectionState, SessionConfig, SubState};
use guts_realtime::{EventHub, EventKind};
use serde_json::Value;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use support::{Pair, MS, S};

fn server(f: impl FnOnce(&mut ConnectionConfig)) -> ConnectionConfig {
    let mut c = ConnectionConfig::default();
    f(&mut c);
    c
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// The frames the client received since `from`, parsed.
fn since_frames(p: &Pair, from: usize) -> Vec<Value> {
    p.received[from..].iter().map(|t| json(t)).collect()
}

#[test]
fn a_silent_client_is_closed_4009_at_the_idle_timeout_and_an_answering_one_stays() {
    // A session whose own heartbeat is slower than the server's idle timeout, so the server
    // decides first.
    let slow_heartbeat = SessionConfig::default().ping_interval(300 * S);
    let mut p = Pair::new(slow_heartbeat);
    p.s.connect(p.now);
    p.settle();
    assert_eq!(p.s.state(), &ConnectionState::Connected);
    // Answering the server's pings: open for ten minutes, one connection.
    p.advance(600 * S);
    assert_eq!((p.connects, p.server_closes.len()), (1, 0));

    // The client's bytes stop reaching the server: closed with 4009 exactly 60 s after the last
    // pong (the ping at 600 s was answered), and the session reconnects.
    p.mute = true;
    let last_pong = *p.pings.last().unwrap();
    p.advance(120 * S);
    assert_eq!(p.server_closes.first(), Some(&(last_pong + 60 * S, 4009)));
    assert_eq!(p.shared.counters.idle_closes.load(Relaxed), 1);
    p.mute = false;
    p.advance(30 * S);
    assert_eq!(p.s.state(), &ConnectionState::Connected);
}

#[test]
fn the_server_pings_every_interval() {
    let cfg = server(|c| c.ping_interval = 7 * S);
    let mut p = Pair::with(SessionConfig::default(), cfg, Arc::new(EventHub::new()));
    p.s.connect(p.now);
    p.advance(50 * S);
    let want: Vec<_> = (1..=7).map(|i| i * 7 * S).collect();
    assert_eq!(p.pings, want);
}

#[test]
fn commands_over_the_rate_limit_are_refused_and_refill_and_publishers_have_their_own_limit() {
    let cfg = server(|c| {
        c.rate_limit = Some(RateLimit::new(5.0, 10.0));
        c.publisher_rate_limit = Some(RateLimit::new(100.0, 40.0));
    });
    let mut p = Pair::with(SessionConfig::default(), cfg, Arc::new(EventHub::new()));
    p.accept();
    p.settle();
    let start = p.received.len();
    for i in 0..15 {
        p.send_text(&format!(r#"{{"type":"ping","id":{i}}}"#));
    }
    p.settle();
    let got = since_frames(&p, start);
    assert_eq!(got.len(), 15);
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r["id"], i as u64, "{r}");
        let want = if i < 10 { "pong" } else { "error" };
        assert_eq!(r["type"], want, "{r}");
        if i >= 10 {
            assert_eq!(r["code"], "rate_limited", "{r}");
        }
    }
    assert_eq!(p.shared.counters.rate_limited.load(Relaxed), 5);
    // 400 ms later two tokens are back, not three.
    p.advance(400 * MS);
    let start = p.received.len();
    for _ in 0..3 {
        p.send_text(r#"{"type":"ping"}"#);
    }
    p.settle();
    let kinds: Vec<_> = since_frames(&p, start).iter().map(|r| r["type"].clone()).collect();
    assert_eq!(kinds, ["pong", "pong", "error"]);
    // With publish rights (the auth itself still costs a token), the publishers' limit: here
    // 100/s with bursts of 40.
    p.advance(S);
    p.send_text(r#"{"type":"auth","token":"publisher"}"#);
    p.settle();
    let start = p.received.len();
    for _ in 0..45 {
        p.send_text(r#"{"type":"ping"}"#);
    }
    p.settle();
    let kinds: Vec<_> = since_frames(&p, start).iter().map(|r| r["type"].clone()).collect();
    let pongs = kinds.iter().filter(|k| *k == "pong").count();
    assert!((35..=40).contains(&pongs), "{kinds:?}");
    assert_eq!(kinds.len(), 45);
}

#[test]
fn a_restart_closes_1012_with_its_hint_and_the_session_waits_that_long() {
    let mut p = Pair::new(SessionConfig::default());
    let sub = p.s.subscribe("repo:o/n").unwrap();
    p.s.connect(p.now);
    p.settle();
    let first = p.publish("repo:o/n", EventKind::Push);
    p.restart(Some(Duration::from_millis(3000)));
    assert_eq!(p.server_closes.len(), 1);
    assert_eq!(p.server_closes[0].1, 1012);
    assert_eq!(p.close_reasons[0], "server restarting; retry_after_ms=3000");
    assert_eq!(p.messages(sub), [first], "the queued event, then the close");
    let closed = p.server_closes[0].0;
    // The hint, plus the session's first backoff (at most `backoff_base`, 500 ms).
    p.advance(closed + Duration::from_millis(2990) - p.now);
    assert_eq!(p.connects, 1, "not before the hint");
    p.advance(Duration::from_millis(600));
    assert_eq!(p.connects, 2, "right after the hint");
    assert_eq!(p.s.sub_state(sub), Some(SubState::Subscribed { recovered: Some(true) }));
}

#[test]
fn shutdown_closes_1001_after_the_queued_events_and_the_client_recovers() {
    let mut p = Pair::new(SessionConfig::default());
    let sub = p.s.subscribe("repo:o/n").unwrap();
    p.s.connect(p.now);
    p.settle();
    let first = p.publish("repo:o/n", EventKind::Push);
    p.settle();
    // Three events queued and not yet written when the shutdown comes.
    p.stalled = true;
    let queued: Vec<u64> = (0..3).map(|_| p.publish("repo:o/n", EventKind::Push)).collect();
    p.shutdown();
    p.stalled = false;
    p.settle();
    assert_eq!(p.server_closes.len(), 1);
    assert_eq!(p.server_closes[0].1, 1001);
    assert_eq!(
        p.messages(sub),
        [vec![first], queued.clone()].concat(),
        "the events, then the close"
    );
    // 1001 is a reconnect code: the session comes back and resumes from its position.
    let during = p.publish("repo:o/n", EventKind::Push);
    p.advance(30 * S);
    assert_eq!(p.connects, 2);
    assert_eq!(p.s.sub_state(sub), Some(SubState::Subscribed { recovered: Some(true) }));
    assert_eq!(p.messages(sub), [vec![first], queued, vec![during]].concat());
    assert!(p.gaps(sub).is_empty());
}

#[test]
fn a_close_the_peer_never_reads_ends_the_connection_at_the_close_timeout() {
    let cfg = server(|c| c.close_timeout = 3 * S);
    let mut p = Pair::with(SessionConfig::default(), cfg, Arc::new(EventHub::new()));
    p.s.connect(p.now);
    p.settle();
    p.stalled = true;
    let at = p.now;
    p.shutdown();
    p.run_until(at + 3 * S - MS);
    assert_eq!(p.hub.connection_count(), 1, "still waiting for the peer");
    p.run_until(at + 3 * S);
    assert_eq!(p.hub.connection_count(), 0, "dropped at the close timeout");
    assert!(p.server_closes.is_empty(), "the close never reached the client");
}

#[test]
fn a_refused_token_is_answered_then_closed_4001() {
    let mut p = Pair::new(SessionConfig::default());
    p.accept();
    p.settle();
    let start = p.received.len();
    p.send_text(r#"{"type":"auth","token":"forged","id":"a1"}"#);
    p.send_text(r#"{"type":"ping"}"#); // after the close was asked for: not read
    p.settle();
    let got = since_frames(&p, start);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        (got[0]["code"].as_str(), got[0]["id"].as_str()),
        (Some("unauthenticated"), Some("a1"))
    );
    assert_eq!(p.server_closes.iter().map(|c| c.1).collect::<Vec<_>>(), [4001]);
    assert_eq!(p.shared.counters.auth_failures.load(Relaxed), 1);
}

#[test]
fn re_auth_as_another_user_drops_what_the_new_identity_may_not_read() {
    let mut p = Pair::new(SessionConfig::default());
    p.accept();
    p.settle();
    p.send_text(r#"{"type":"auth","token":"good"}"#);
    p.send_text(r#"{"type":"subscribe","channel":"user:alice"}"#);
    p.send_text(r#"{"type":"subscribe","channel":"repo:o/n"}"#);
    p.settle();
    let start = p.received.len();
    p.send_text(r#"{"type":"auth","token":"bob","id":9}"#);
    p.settle();
    let got = since_frames(&p, start);
    assert_eq!(got[0]["type"], "authenticated");
    assert_eq!((got[0]["user"].as_str(), got[0]["id"].as_u64()), (Some("bob"), Some(9)));
    assert_eq!(got[1]["type"], "unsubscribed");
    assert_eq!(got[1]["channel"], "user:alice");
    assert_eq!(got.len(), 2, "repo:o/n is kept: {got:?}");
    let held: Vec<String> =
        p.conn.as_ref().unwrap().client.channels().iter().map(|c| c.to_string()).collect();
    assert_eq!(held, ["repo:o/n"]);
}

#[test]
fn a_connection_that_keeps_exceeding_the_limit_is_closed_4029_with_a_hint() {
    let cfg = server(|c| c.rate_limit = Some(RateLimit::new(5.0, 10.0)));
    let mut p = Pair::with(SessionConfig::default(), cfg, Arc::new(EventHub::new()));
    p.s.connect(p.now);
    p.settle();
    let start = p.received.len();
    let t0 = p.now;
    for _ in 0..100 {
        p.send_text(r#"{"type":"ping"}"#);
    }
    p.settle();
    let kinds: Vec<String> = since_frames(&p, start)
        .iter()
        .map(|r| r["type"].as_str().unwrap_or("").to_owned())
        .collect();
    // The burst, then 19 answered refusals; the 20th refusal closes instead of answering.
    let want: Vec<&str> = [["pong"; 10].as_slice(), ["error"; 19].as_slice()].concat();
    assert_eq!(kinds, want);
    assert_eq!(p.server_closes.iter().map(|c| c.1).collect::<Vec<_>>(), [4029]);
    // The hint is the time the bucket takes to fill again: 10 tokens at 5/s.
    assert_eq!(p.close_reasons, ["rate limited; retry_after_ms=2000"]);
    // The session honours it: no reconnect before 2 s.
    p.run_until(t0 + 2 * S - MS);
    assert_eq!(p.connects, 1);
    p.run_until(t0 + 13 * S);
    assert_eq!((p.connects, p.s.state()), (2, &ConnectionState::Connected));
}

#[test]
fn websocket_pings_cost_tokens_too() {
    let cfg = server(|c| c.rate_limit = Some(RateLimit::new(5.0, 10.0)));
    let mut p = Pair::with(SessionConfig::default(), cfg, Arc::new(EventHub::new()));
    p.accept();
    p.settle();
    for _ in 0..29 {
        p.send_ping();
    }
    p.settle();
    assert!(p.server_closes.is_empty(), "10 allowed, 19 refused: still open");
    p.send_ping();
    p.settle();
    assert_eq!(p.server_closes.iter().map(|c| c.1).collect::<Vec<_>>(), [4029]);
    assert_eq!(p.shared.counters.rate_limited.load(Relaxed), 20);
}

#[test]
fn a_replay_costs_rate_limit_tokens_in_proportion_to_its_size() {
    let cfg = server(|c| c.rate_limit = Some(RateLimit::new(5.0, 10.0)));
    let hub = Arc::new(EventHub::new());
    let mut p = Pair::with(SessionConfig::default(), cfg, hub.clone());
    p.accept();
    p.settle();
    let epoch = hub.epoch();
    let first = p.publish("repo:o/replay", EventKind::Push);
    for _ in 0..100 {
        p.publish("repo:o/replay", EventKind::Push);
    }
    let start = p.received.len();
    let since = format!(
        r#"{{"type":"subscribe","channel":"repo:o/replay","since":{{"seq":{first},"epoch":"{epoch}"}}}}"#
    );
    p.send_text(&since);
    p.send_text(r#"{"type":"ping"}"#);
    p.settle();
    let got = since_frames(&p, start);
    assert_eq!(got[0]["recovered"], true);
    assert_eq!(got.len(), 1 + 100 + 1, "reply, replay, the ping's answer");
    // The subscribe took one token and its 100 replayed events ten more: the ping is refused.
    assert_eq!(got[101]["code"], "rate_limited", "{}", got[101]);
    // A subscribe without replay costs one token, as any command.
    p.advance(5 * S);
    let start = p.received.len();
    p.send_text(r#"{"type":"subscribe","channel":"repo:o/other"}"#);
    p.send_text(r#"{"type":"ping"}"#);
    p.settle();
    let kinds: Vec<_> = since_frames(&p, start).iter().map(|r| r["type"].clone()).collect();
    assert_eq!(kinds, ["subscribed", "pong"]);
}

#[test]
fn a_user_holds_at_most_max_connections_per_user() {
    use guts_realtime::server::{ConnectionShared, Identity, Outcome, Request, ServerConnection};
    let mut cfg = ConnectionConfig::default();
    cfg.max_connections_per_user = 2;
    let shared = Arc::new(ConnectionShared::new(cfg));
    let alice = || Identity::from(guts_realtime::server::User::new("alice"));
    let welcome = || guts_realtime::Frame::from_string("{}".to_owned());
    let now = std::time::Duration::ZERO;
    // A connection that authenticates as `who`: its frames after the welcome, and whether a
    // close was asked for (the request is answered as the verifier would).
    let auth = |conn: &mut ServerConnection, who: Identity| {
        conn.handle_text(now, r#"{"type":"auth","token":"t","id":1}"#);
        assert!(matches!(conn.poll_request(), Some((Request::Auth { .. }, _))));
        conn.handle_outcome(
            now,
            Outcome::Auth(Ok(guts_realtime::server::Verified::new(who, None))),
        );
        if let Some((Request::Recheck, _)) = conn.poll_request() {
            conn.handle_outcome(now, Outcome::Recheck(Vec::new()));
        }
        let frames: Vec<Value> =
            std::iter::from_fn(|| conn.poll_transmit()).map(|f| json(f.as_str())).collect();
        (frames, conn.poll_close().map(|c| (c.code.0, c.reason())))
    };
    let open = || {
        let mut conn = ServerConnection::new(shared.clone(), now, welcome());
        assert_eq!(conn.poll_transmit().map(|f| f.as_str().to_owned()), Some("{}".to_owned()));
        conn
    };
    let (mut a, mut b, mut c) = (open(), open(), open());
    assert_eq!(auth(&mut a, alice()).0[0]["type"], "authenticated");
    assert_eq!(auth(&mut b, alice()).0[0]["type"], "authenticated");
    assert_eq!(shared.user_connections("alice"), 2);
    let (frames, close) = auth(&mut c, alice());
    assert_eq!(
        (frames[0]["code"].as_str(), frames[0]["id"].as_u64()),
        (Some("rate_limited"), Some(1))
    );
    assert_eq!(close, Some((4503, "connection limit reached; retry_after_ms=5000".into())));
    assert_eq!(shared.user_connections("alice"), 2);
    // Re-authenticating as the same user keeps its slot; another identity gives it back.
    assert_eq!(auth(&mut a, alice()).0[0]["type"], "authenticated");
    assert_eq!(shared.user_connections("alice"), 2);
    auth(&mut a, Identity::PublishKey);
    assert_eq!(shared.user_connections("alice"), 1);
    // A connection dropped gives its slot back.
    drop(b);
    assert_eq!(shared.user_connections("alice"), 0);
    let mut d = open();
    assert_eq!(auth(&mut d, alice()).0[0]["type"], "authenticated");
}

#[test]
fn a_socket_that_takes_nothing_for_the_write_stall_timeout_is_closed_4008_pings_or_not() {
    let mut p = Pair::new(SessionConfig::default());
    p.s.subscribe("repo:o/n").unwrap();
    p.s.connect(p.now);
    p.settle();
    // The client stops reading; what it sends (its pings) still arrives.
    p.stalled = true;
    let start = p.now;
    p.publish("repo:o/n", EventKind::Push);
    p.advance(15 * S - MS);
    let closing = |p: &Pair| p.conn.as_ref().and_then(|c| c.closing.map(|(close, _)| close.code.0));
    assert_eq!(closing(&p), None, "not before 15 s");
    p.advance(MS);
    assert_eq!(closing(&p), Some(4008), "at {:?}", p.now - start);
    assert_eq!(p.shared.counters.write_stalls.load(Relaxed), 1);
    // A reader that keeps up is never stalled, however long it lives.
    let mut p = Pair::new(SessionConfig::default());
    p.s.subscribe("repo:o/n").unwrap();
    p.s.connect(p.now);
    p.settle();
    for _ in 0..120 {
        p.publish("repo:o/n", EventKind::Push);
        p.advance(S);
    }
    assert!(p.server_closes.is_empty(), "{:?}", p.server_closes);
}
