//! The WebSocket endpoint against the real server on 127.0.0.1: welcome, id echo, replies,
//! routing, and every bad input (malformed JSON, unknown type, missing field, binary frame,
//! oversized frame, 101st subscription). The rate limit is tested in virtual time
//! (`protocol/tests/server_rules.rs`). Bounded in time.

mod server_support;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use server_support::*;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn welcome_is_first_with_the_hub_epoch() {
    let s = TestServer::default().await;
    let c = s.ws().await;
    assert_eq!(c.welcome["epoch"], s.hub.epoch());
    let id = c.welcome["client_id"].as_str().unwrap();
    assert!(s.hub.get_client(id).is_some(), "the welcome names a registered client");
    // Even with events already flowing on the hub, a new client's first frame is the welcome.
    s.hub.broadcast_all(r#"{"type":"noise"}"#);
    let c2 = s.ws().await;
    assert_ne!(c2.welcome["client_id"], c.welcome["client_id"]);
}

#[tokio::test]
async fn ping_pong_and_id_echo() {
    let s = TestServer::default().await;
    let mut c = s.ws().await;
    c.send(r#"{"type":"ping"}"#).await;
    assert_eq!(c.recv_text().await, r#"{"type":"pong"}"#);
    c.send(r#"{"type":"ping","id":42}"#).await;
    assert_eq!(c.recv_text().await, r#"{"type":"pong","id":42}"#);
    c.send(r#"{"type":"ping","id":"req-7"}"#).await;
    assert_eq!(c.recv_text().await, r#"{"type":"pong","id":"req-7"}"#);
    let e = c
        .expect_error(r#"{"type":"subscribe","channel":"repo:x","id":9}"#, "invalid_channel")
        .await;
    assert_eq!(e["id"], 9);
    let e = c.expect_error(r#"{"type":"dance","id":"d"}"#, "invalid_message").await;
    assert_eq!(e["id"], "d");
    let ch = uniq("repo:o/id");
    c.send(&json!({"type": "subscribe", "channel": ch, "id": 1}).to_string()).await;
    let text = c.recv_text().await;
    assert!(
        text.starts_with(&format!(r#"{{"type":"subscribed","channel":"{ch}","seq":"#)),
        "{text}"
    );
    assert!(text.ends_with(r#","id":1}"#), "{text}");
    c.send(&json!({"type": "unsubscribe", "channel": ch, "id": "u"}).to_string()).await;
    assert_eq!(
        c.recv_text().await,
        format!(r#"{{"type":"unsubscribed","channel":"{ch}","id":"u"}}"#)
    );
}

#[tokio::test]
async fn bad_input_is_invalid_message_and_the_connection_stays_open() {
    let s = TestServer::default().await;
    let mut c = s.ws().await;
    for bad in [
        "{not json",
        "",
        r#"{"type":"dance"}"#,
        r#"{"type":"subscribe"}"#,
        r#"{"type":"subscribe","channel":5}"#,
        r#"{"channel":"repo:a/b"}"#,
        r#"{"type":"auth"}"#,
        r#"{"type":"publish","channel":"repo:a/b","event":"nope"}"#,
        r#"{"type":"ping","id":-1}"#,
        r#"{"type":"ping","id":{"a":1}}"#,
        r#"[1,2,3]"#,
        r#""text""#,
        "null",
        "\u{0}\u{1}garbage\u{7f}",
        r#"{"type":"Subscribe","channel":"repo:a/b"}"#,
    ] {
        c.expect_error(bad, "invalid_message").await;
    }
    let long_id = format!(r#"{{"type":"ping","id":"{}"}}"#, "x".repeat(200));
    let e = c.expect_error(&long_id, "invalid_message").await;
    assert!(e.get("id").is_none(), "an over-long id is not echoed: {e}");
    c.still_open().await;
}

#[tokio::test]
async fn binary_frames_are_invalid_message() {
    let s = TestServer::default().await;
    let mut c = s.ws().await;
    c.ws.send(Message::binary(b"{\"type\":\"ping\"}".to_vec())).await.unwrap();
    let r = c.recv().await;
    assert_eq!((r["type"].as_str(), r["code"].as_str()), (Some("error"), Some("invalid_message")));
    c.ws.send(Message::binary(vec![0xff; 1000])).await.unwrap();
    let r = c.recv().await;
    assert_eq!(r["code"], "invalid_message");
    c.still_open().await;
}

#[tokio::test]
async fn a_frame_at_the_limit_is_read_and_one_byte_more_closes_1009() {
    let s = TestServer::default().await;
    let mut c = s.ws().await;
    // Exactly 64 KiB: read and answered (it is not a valid command).
    let at = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(64 * 1024 - 24));
    assert_eq!(at.len(), 64 * 1024);
    c.send(&at).await;
    let r = c.recv().await;
    assert_eq!(r["type"], "pong", "unknown fields are ignored: {r}");
    // 64 KiB + 1: closed with 1009.
    let over = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(64 * 1024 - 23));
    assert_eq!(over.len(), 64 * 1024 + 1);
    c.send(&over).await;
    assert_eq!(c.closed(WAIT).await, (1009, "message too big".into()));
    // A frame far over the limit (refused from its header) is closed with 1009 as well.
    let mut c = s.ws().await;
    c.send(&"y".repeat(1024 * 1024)).await;
    assert_eq!(c.closed(WAIT).await.0, 1009);
    assert_eq!(metric(s.addr, "oversized_closes_total").await, 2);
}

#[tokio::test]
async fn the_101st_subscription_is_refused_and_held_channels_still_resubscribe() {
    let s = TestServer::default().await;
    let mut c = s.ws().await;
    let o = uniq("lim");
    for i in 0..100 {
        c.subscribe(&format!("repo:{o}/r{i}")).await;
    }
    let e = c
        .expect_error(
            &json!({"type": "subscribe", "channel": format!("repo:{o}/r100"), "id": 5}).to_string(),
            "subscription_limit",
        )
        .await;
    assert_eq!(e["id"], 5);
    c.subscribe(&format!("repo:{o}/r7")).await;
    c.still_open().await;
    assert_eq!(s.hub.metrics().subscriptions, 100);
}

#[tokio::test]
async fn routing_over_the_network() {
    let s = TestServer::default().await;
    let base = uniq("repo:route/r");
    let prs = format!("{base}/prs");
    let issues = format!("{base}/issues");
    let mut cb = s.ws().await;
    let mut cp = s.ws().await;
    let mut ci = s.ws().await;
    let mut both = s.ws().await;
    let mut other = s.ws().await;
    cb.subscribe(&base).await;
    cp.subscribe(&prs).await;
    ci.subscribe(&issues).await;
    both.subscribe(&base).await;
    both.subscribe(&prs).await;
    other.subscribe(&uniq("repo:route/other")).await;
    let cases = [
        (&base, "push", [true, false, false]),
        (&base, "pr_opened", [true, true, false]),
        (&base, "issue_opened", [true, false, true]),
        (&prs, "pr_merged", [true, true, false]),
        (&issues, "issue_closed", [true, false, true]),
        (&prs, "push", [true, true, false]),
    ];
    let mut expected: [Vec<u64>; 3] = Default::default();
    for (ch, kind, who) in cases {
        let seq = s.publish(ch, kind, json!({"k": kind})).await;
        for (i, gets) in who.iter().enumerate() {
            if *gets {
                expected[i].push(seq);
            }
        }
    }
    for (i, c) in [&mut cb, &mut cp, &mut ci].into_iter().enumerate() {
        let mut got = Vec::new();
        for _ in 0..expected[i].len() {
            let e = c.recv().await;
            assert_eq!(e["type"], "event");
            got.push(e["seq"].as_u64().unwrap());
        }
        c.still_open().await;
        assert_eq!(got, expected[i], "subscriber {i}");
    }
    // Subscribed to base and /prs: one copy of each event.
    let mut got = Vec::new();
    for _ in 0..expected[0].len() {
        got.push(both.recv().await["seq"].as_u64().unwrap());
    }
    both.still_open().await;
    assert_eq!(got, expected[0]);
    other.still_open().await;
}

#[tokio::test]
async fn publish_over_websocket_routes_like_http() {
    let s = TestServer::default().await;
    let ch = uniq("repo:wsp/app");
    let mut sub = s.ws().await;
    sub.subscribe(&format!("{ch}/issues")).await;
    let mut p = s.ws().await;
    p.auth(KEY).await;
    let r = p
        .request(json!({"type": "publish", "channel": ch, "event": "issue_opened", "data": {"n": 1}, "id": "p1"}))
        .await;
    assert_eq!(r["type"], "published");
    assert_eq!(r["channel"], ch.as_str());
    assert_eq!(r["id"], "p1");
    let e = sub.recv().await;
    assert_eq!((e["event"].as_str(), e["seq"].as_u64()), (Some("issue_opened"), r["seq"].as_u64()));
    assert_eq!(e["data"], json!({"n": 1}));
    let e = p
        .expect_error(
            r#"{"type":"publish","channel":"repo:nope","event":"push"}"#,
            "invalid_channel",
        )
        .await;
    assert!(e["message"].as_str().unwrap().starts_with("invalid channel"));
}

/// WebSocket pings cost rate-limit tokens like commands, and a connection that keeps exceeding
/// the limit is closed with 4029 and a `retry_after_ms` hint instead of being answered forever
/// (before: 20 000 pings drew 20 000 pongs, and every refused command an error).
#[tokio::test]
async fn a_flood_of_pings_or_commands_is_closed_4029_with_a_hint() {
    let s = TestServer::default().await;
    let mut pinger = s.ws().await;
    for _ in 0..2000 {
        pinger.ws.feed(Message::Ping(Default::default())).await.unwrap();
    }
    pinger.ws.flush().await.unwrap();
    let (code, reason) = pinger.closed(WAIT).await;
    assert_eq!((code, reason.as_str()), (4029, "rate limited; retry_after_ms=4000"));

    let mut flooder = s.ws().await;
    for i in 0..400 {
        flooder.ws.feed(Message::text(format!(r#"{{"type":"ping","id":{i}}}"#))).await.unwrap();
    }
    flooder.ws.flush().await.unwrap();
    let mut answered = 0;
    let code = loop {
        match tokio::time::timeout(WAIT, flooder.ws.next()).await.expect("a frame in time") {
            Some(Ok(Message::Text(_))) => answered += 1,
            Some(Ok(Message::Close(Some(f)))) => break u16::from(f.code),
            Some(Ok(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(code, 4029);
    assert!((200..240).contains(&answered), "the burst of 200 and at most 19 refusals: {answered}");
    assert!(metric(s.addr, "rate_limited_total").await >= 40);
}
