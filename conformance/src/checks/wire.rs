//! The frames themselves: the welcome, ping, the `id` rule, canonical replies, invalid input,
//! the event frame's exact shape.

use super::{check, expect_error, still_open};
use crate::conn::{Conn, Fail};
use crate::hooks::{publish, uniq};
use crate::Target;
use serde_json::{json, Value};

pub(super) async fn welcome_first(t: &Target) -> Result<(), Fail> {
    let c = Conn::open(t).await?;
    let keys: Vec<&String> = c.welcome.as_object().map(|o| o.keys().collect()).unwrap_or_default();
    check(c.welcome["client_id"].is_string(), || {
        format!("welcome lacks client_id: {}", c.welcome)
    })?;
    check(keys.len() >= 3, || format!("welcome: {}", c.welcome))
}

pub(super) async fn seed_ping_pong(t: &Target) -> Result<(), Fail> {
    let mut c = Conn::open(t).await?;
    // Any JSON layout is a frame: whitespace, key order, unknown keys.
    c.roundtrip("{ \"type\" : \"ping\" }", r#"{"type":"pong"}"#).await?;
    c.roundtrip(r#"{"x":1,"type":"ping"}"#, r#"{"type":"pong"}"#).await?;
    still_open(&mut c).await
}

pub(super) async fn id_is_echoed(t: &Target) -> Result<(), Fail> {
    let mut c = Conn::open(t).await?;
    c.roundtrip(r#"{"type":"ping","id":42}"#, r#"{"type":"pong","id":42}"#).await?;
    c.roundtrip(r#"{"type":"ping","id":"req-7"}"#, r#"{"type":"pong","id":"req-7"}"#).await?;
    let e = expect_error(
        &mut c,
        r#"{"type":"subscribe","channel":"repo:x","id":9}"#,
        "invalid_channel",
    )
    .await?;
    check(e["id"] == 9, || format!("error does not echo the id: {e}"))?;
    let e = expect_error(&mut c, r#"{"type":"dance","id":"d"}"#, "invalid_message").await?;
    check(e["id"] == "d", || format!("invalid_message does not echo the id: {e}"))
}

pub(super) async fn subscribe_replies_canonical(t: &Target) -> Result<(), Fail> {
    let mut c = Conn::open(t).await?;
    let ch = format!("repo:{}/app", uniq("o"));
    c.send(&json!({"type": "subscribe", "channel": ch, "id": 1}).to_string()).await?;
    let text = c.recv_text().await?;
    let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let seq = v["seq"].as_u64().ok_or_else(|| format!("subscribed without seq: {text}"))?;
    let want = format!(r#"{{"type":"subscribed","channel":"{ch}","seq":{seq},"id":1}}"#);
    check(text == want, || format!("expected {want}\n  got      {text}"))?;
    c.roundtrip(
        &json!({"type": "unsubscribe", "channel": ch}).to_string(),
        &format!(r#"{{"type":"unsubscribed","channel":"{ch}"}}"#),
    )
    .await
}

pub(super) async fn duplicate_subscribe_and_unheld_unsubscribe(t: &Target) -> Result<(), Fail> {
    let mut c = Conn::open(t).await?;
    let ch = format!("repo:{}/dup", uniq("o"));
    c.subscribe(&ch).await?;
    c.subscribe(&ch).await?;
    let seq = publish(t, &ch, "push", json!({})).await?;
    let e = c.recv().await?;
    check(e["seq"] == seq, || format!("expected the event, got {e}"))?;
    // Exactly one copy despite the duplicate subscribe.
    still_open(&mut c).await?;
    c.roundtrip(
        r#"{"type":"unsubscribe","channel":"repo:never/held"}"#,
        r#"{"type":"unsubscribed","channel":"repo:never/held"}"#,
    )
    .await
}

pub(super) async fn invalid_channels(t: &Target) -> Result<(), Fail> {
    let mut c = Conn::open(t).await?;
    let long = "x".repeat(300);
    let bad = [
        "repo:alice".to_owned(),
        "repo:/".into(),
        "repo:alice/".into(),
        "repo:a/b/commits".into(),
        "user:a/b".into(),
        "REPO:a/b".into(),
        "repo:a b/c".into(),
        format!("repo:{long}/x"),
        "repo:./x".into(),
        "repo:a/..".into(),
        "org:".into(),
        "invalid".into(),
        "".into(),
    ];
    for ch in bad {
        let e = expect_error(
            &mut c,
            &json!({"type": "subscribe", "channel": ch}).to_string(),
            "invalid_channel",
        )
        .await?;
        let msg = e["message"].as_str().unwrap_or_default();
        check(msg.starts_with("invalid channel: ") && msg.len() < 400, || {
            format!("{ch:?}: message {msg:?}")
        })?;
    }
    still_open(&mut c).await
}

pub(super) async fn invalid_messages_keep_the_connection(t: &Target) -> Result<(), Fail> {
    let mut c = Conn::open(t).await?;
    for bad in [
        "{not json",
        r#"{"type":"dance"}"#,
        r#"{"type":"subscribe"}"#,
        r#"{"type":"subscribe","channel":5}"#,
        r#"{"channel":"repo:a/b"}"#,
        r#"[1,2,3]"#,
        r#""text""#,
        r#"{"type":"Subscribe","channel":"repo:a/b"}"#,
    ] {
        expect_error(&mut c, bad, "invalid_message").await?;
    }
    c.send_binary(b"{\"type\":\"ping\"}".to_vec()).await?;
    let r = c.recv().await?;
    check(r["type"] == "error" && r["code"] == "invalid_message", || format!("binary frame: {r}"))?;
    still_open(&mut c).await
}

pub(super) async fn event_frame_shape(t: &Target) -> Result<(), Fail> {
    let mut c = Conn::open(t).await?;
    let ch = format!("repo:{}/shape", uniq("o"));
    c.subscribe(&ch).await?;
    let seq = publish(t, &ch, "pr_opened", json!({"number": 7, "title": "x"})).await?;
    let text = c.recv_text().await?;
    let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let ts = v["timestamp"].as_u64().ok_or("no timestamp")?;
    let id = v["event_id"].as_str().ok_or("no event_id")?;
    let want = format!(
        r#"{{"type":"event","channel":"{ch}","event":"pr_opened","data":{{"number":7,"title":"x"}},"timestamp":{ts},"event_id":"{id}","seq":{seq}}}"#
    );
    check(text == want, || format!("expected {want}\n  got      {text}"))
}
