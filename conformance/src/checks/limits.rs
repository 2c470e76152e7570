//! Limits and the closes they end in: message size, channels, command rate, connection caps,
//! idle connections, slow consumers, shutdown.

use super::{auth, check, expect_error, still_open};
use crate::conn::WAIT;
use crate::conn::{Conn, Fail};
use crate::hooks::uniq;
use crate::Target;
use serde_json::json;
use std::time::Duration;

pub(super) async fn oversized_frame_closes_1009(t: &Target) -> Result<(), Fail> {
    let mut c = Conn::open(t).await?;
    let big = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(64 * 1024));
    c.send(&big).await?;
    c.expect_close(1009, WAIT).await
}

pub(super) async fn subscription_limit(t: &Target) -> Result<(), Fail> {
    let mut c = Conn::open(t).await?;
    let o = uniq("lim");
    for i in 0..100 {
        c.subscribe(&format!("repo:{o}/r{i}")).await?;
    }
    expect_error(
        &mut c,
        &json!({"type": "subscribe", "channel": format!("repo:{o}/r100")}).to_string(),
        "subscription_limit",
    )
    .await?;
    c.subscribe(&format!("repo:{o}/r7"))
        .await
        .map_err(|e| format!("re-subscribing a held channel at the cap: {e}"))?;
    still_open(&mut c).await
}

pub(super) async fn slow_consumer_is_closed_4008(t: &Target) -> Result<(), Fail> {
    let ch = format!("repo:{}/flood", uniq("o"));
    let mut stalled = Conn::open(t).await?;
    stalled.subscribe(&ch).await?;
    let mut reader = Conn::open(t).await?;
    reader.subscribe(&ch).await?;
    let mut publisher = Conn::open(t).await?;
    let r = auth(&mut publisher, t.publish_key.as_deref().unwrap_or_default()).await?;
    check(r["type"] == "authenticated", || format!("publisher auth: {r}"))?;
    let pad = "x".repeat(1024);
    let n = t.flood;
    // The reader reads everything while the publisher floods and `stalled` reads nothing.
    let read = tokio::spawn(async move {
        let mut count = 0usize;
        let mut last = 0u64;
        let mut next_ping = 1000;
        while count < n {
            if count >= next_ping {
                // Not silent for the idle timeout while it reads a long flood.
                next_ping += 1000;
                reader.send(r#"{"type":"ping"}"#).await?;
            }
            let v = reader.recv().await?;
            if v["type"] == "event" {
                let s = v["seq"].as_u64().unwrap_or(0);
                if s <= last {
                    return Err(format!("reader saw seq {s} after {last}"));
                }
                last = s;
                count += 1;
            }
        }
        Ok::<usize, Fail>(count)
    });
    for i in 0..n {
        let f = json!({"type": "publish", "channel": ch, "event": "push", "data": {"i": i, "pad": pad}});
        publisher.send(&f.to_string()).await?;
        if i % 1000 == 999 {
            // Not silent for the idle timeout (the stalled client writes, it only never reads).
            let _ = stalled.send(r#"{"type":"ping"}"#).await;
        }
        if i % 256 == 255 {
            // Drain the publisher's replies so it is never the slow one.
            for _ in 0..256 {
                publisher.recv().await?;
            }
        }
    }
    // Every publish answered: every event was queued (or overflowed) by now.
    for _ in 0..n % 256 {
        publisher.recv().await?;
    }
    // The stalled client reads only now: what was queued before its close, then the close.
    let closed = stalled.expect_close(4008, Duration::from_secs(60));
    let (closed, got) = tokio::join!(closed, tokio::time::timeout(Duration::from_secs(120), read));
    let got = got
        .map_err(|_| "the well-behaved reader did not get every event in 120 s".to_owned())?
        .map_err(|e| e.to_string())??;
    check(got == n, || format!("reader got {got} of {n}"))?;
    closed.map_err(|e| format!("the stalled client was not closed as a slow consumer: {e}"))
}

pub(super) async fn rate_limit_refuses_then_closes_4029(t: &Target) -> Result<(), Fail> {
    let mut c = Conn::open(t).await?;
    for i in 0..400 {
        // The hub may close mid-way (that is the point): later sends may fail.
        if c.send(&json!({"type": "ping", "id": i}).to_string()).await.is_err() {
            break;
        }
    }
    let (mut pongs, mut refused) = (0, 0);
    let reason = loop {
        match c.recv().await {
            Ok(f) if f["type"] == "pong" => pongs += 1,
            Ok(f) => {
                check(f["code"] == "rate_limited" && f["id"].is_u64(), || {
                    format!("expected pongs, then rate_limited errors with their ids, got {f}")
                })?;
                refused += 1;
            }
            Err(e) if e.starts_with("closed") => break e,
            Err(e) => return Err(format!("after {pongs} pongs and {refused} refusals: {e}")),
        }
    };
    check(pongs >= 150 && refused >= 1, || {
        format!("400 pings at once, bursts of 200 at 50/s: {pongs} pongs, {refused} refused")
    })?;
    check(reason.contains("4029") && reason.contains("retry_after_ms="), || {
        format!("20 refusals in a row close 4029 with a retry_after_ms hint: {reason}")
    })
}

pub(super) async fn per_user_connection_cap_closes_4503(t: &Target) -> Result<(), Fail> {
    let user = uniq("many");
    // One token for all: quick (a token hook may be slow), so no connection idles out meanwhile.
    let token =
        crate::hooks::mint(t, json!({"sub": user, "exp": crate::hooks::exp_in(600)})).await?;
    let mut held = Vec::new();
    for _ in 0..100 {
        let mut c = Conn::open(t).await?;
        let r = auth(&mut c, &token).await?;
        check(r["type"] == "authenticated", || format!("connection {}: {r}", held.len() + 1))?;
        held.push(c);
    }
    let mut c = Conn::open(t).await?;
    let r = c.request(json!({"type": "auth", "token": token, "id": "cap"})).await?;
    check(r["type"] == "error" && r["code"] == "rate_limited" && r["id"] == "cap", || {
        format!("the 101st connection of one user: {r}")
    })?;
    let reason = c.expect_close_reason(4503, WAIT).await?;
    check(reason.contains("retry_after_ms="), || format!("4503 without a hint: {reason:?}"))?;
    held.pop();
    Ok(())
}

pub(super) async fn connection_cap_refuses_the_upgrade(t: &Target) -> Result<(), Fail> {
    let max = t.max_connections.unwrap_or(0);
    // Connections of earlier checks may still be going away: wait for room first.
    let mut held = Vec::new();
    let mut refused = None;
    for i in 0..=max {
        match Conn::connect(&t.ws).await {
            Ok(c) => held.push(c),
            Err(e) => {
                refused = Some((i, e));
                break;
            }
        }
    }
    let (at, why) =
        refused.ok_or_else(|| format!("{} connections accepted, cap {max}", max + 1))?;
    check(at + 5 >= max && why.contains("HTTP 503"), || {
        format!("refused at connection {} of a cap of {max}: {why}", at + 1)
    })?;
    held.clear();
    tokio::time::sleep(Duration::from_millis(300)).await;
    Conn::open(t).await.map(drop).map_err(|e| format!("after the others closed: {e}"))
}

pub(super) async fn idle_connection_closes_4009(t: &Target) -> Result<(), Fail> {
    let idle = t.idle_timeout.unwrap_or_default();
    let mut c = Conn::open(t).await?;
    // Reading nothing answers no ping: the connection is silent.
    tokio::time::sleep(idle + Duration::from_millis(500)).await;
    c.expect_close(4009, idle + WAIT).await
}

pub(super) async fn shutdown_closes_every_client(t: &Target) -> Result<(), Fail> {
    let ch = format!("repo:{}/bye", uniq("o"));
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut c = Conn::open(t).await?;
        c.subscribe(&ch).await?;
        clients.push(c);
    }
    crate::hooks::shell(t.shutdown_cmd.as_deref().unwrap_or("false"), "").await?;
    for c in &mut clients {
        let (code, reason) = c.closed(Duration::from_secs(60)).await?;
        check(code == 1001 || code == 1012, || {
            format!("a shutdown closes with 1001 or 1012, got {code} {reason:?}")
        })?;
        let hint = reason.split("retry_after_ms=").nth(1);
        let digits = hint.map(|h| h.chars().take_while(char::is_ascii_digit).count());
        check(hint.is_none() || digits > Some(0), || format!("a malformed hint: {reason:?}"))?;
    }
    Ok(())
}
