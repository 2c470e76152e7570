//! The checks, one async function each. A check returns `Err(why)` on the first mismatch.

use super::conn::{Conn, Fail, WAIT};
use super::{Entry, Target};
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

macro_rules! entries {
    ($($name:ident $(: $secret:literal)?),* $(,)?) => {
        pub(crate) const ALL: &[Entry] = &[
            $((stringify!($name), entries!(@s $($secret)?), |t| Box::pin($name(t)))),*
        ];
    };
    (@s) => { false };
    (@s $s:literal) => { $s };
}

entries! {
    welcome_first,
    seed_ping_pong,
    id_is_echoed,
    subscribe_replies_canonical,
    duplicate_subscribe_and_unheld_unsubscribe,
    invalid_channels,
    invalid_messages_keep_the_connection,
    oversized_frame_closes_1009,
    subscription_limit,
    event_frame_shape,
    routing_matrix,
    one_copy_through_two_channels,
    http_endpoints,
    http_publish_errors,
    recovery_replays_missed_events,
    recovery_with_wrong_epoch_is_a_gap,
    auth_anonymous_is_repo_only: true,
    auth_user_and_org_rights: true,
    auth_bad_tokens_close_4001: true,
    publish_rights: true,
    notifications_follow_preferences: true,
    slow_consumer_is_closed_4008,
}

fn check(cond: bool, why: impl FnOnce() -> String) -> Result<(), Fail> {
    if cond {
        Ok(())
    } else {
        Err(why())
    }
}

fn uniq(prefix: &str) -> String {
    let n = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{prefix}{}", n % 1_000_000_000_000)
}

fn mint(t: &Target, claims: Value) -> String {
    let secret = t.secret.as_deref().unwrap_or_default();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap_or_default()
}

fn exp_in(secs: i64) -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0) + secs
}

async fn publish(t: &Target, channel: &str, event: &str, data: Value) -> Result<u64, Fail> {
    crate::hub_process::publish(&t.http, &t.publish_key, channel, event, data).await
}

async fn http(
    t: &Target,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&str>,
) -> Result<(u16, String), Fail> {
    let url = format!("{}{path}", t.http);
    let (method, auth, body) =
        (method.to_owned(), auth.map(str::to_owned), body.map(str::to_owned));
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent =
            ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let resp = if method == "GET" {
            agent.get(&url).call()
        } else {
            let mut req = agent.post(&url).header("content-type", "application/json");
            if let Some(a) = &auth {
                req = req.header("authorization", a);
            }
            req.send(body.unwrap_or_default())
        };
        let mut resp = resp.map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status().as_u16();
        Ok((status, resp.body_mut().read_to_string().unwrap_or_default()))
    })
    .await
    .map_err(|e| e.to_string())?
}

async fn expect_error(c: &mut Conn, sent: &str, code: &str) -> Result<Value, Fail> {
    c.send(sent).await?;
    let r = c.recv().await?;
    check(r["type"] == "error" && r["code"] == code && r["message"].is_string(), || {
        format!("sent {sent}: expected an error with code {code}, got {r}")
    })?;
    Ok(r)
}

async fn still_open(c: &mut Conn) -> Result<(), Fail> {
    c.roundtrip(r#"{"type":"ping"}"#, r#"{"type":"pong"}"#).await
}

async fn welcome_first(t: &Target) -> Result<(), Fail> {
    let c = Conn::open(&t.ws).await?;
    let keys: Vec<&String> = c.welcome.as_object().map(|o| o.keys().collect()).unwrap_or_default();
    check(c.welcome["client_id"].is_string(), || {
        format!("welcome lacks client_id: {}", c.welcome)
    })?;
    check(keys.len() >= 3, || format!("welcome: {}", c.welcome))
}

async fn seed_ping_pong(t: &Target) -> Result<(), Fail> {
    let mut c = Conn::open(&t.ws).await?;
    still_open(&mut c).await
}

async fn id_is_echoed(t: &Target) -> Result<(), Fail> {
    let mut c = Conn::open(&t.ws).await?;
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

async fn subscribe_replies_canonical(t: &Target) -> Result<(), Fail> {
    let mut c = Conn::open(&t.ws).await?;
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

async fn duplicate_subscribe_and_unheld_unsubscribe(t: &Target) -> Result<(), Fail> {
    let mut c = Conn::open(&t.ws).await?;
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

async fn invalid_channels(t: &Target) -> Result<(), Fail> {
    let mut c = Conn::open(&t.ws).await?;
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

async fn invalid_messages_keep_the_connection(t: &Target) -> Result<(), Fail> {
    let mut c = Conn::open(&t.ws).await?;
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

async fn oversized_frame_closes_1009(t: &Target) -> Result<(), Fail> {
    let mut c = Conn::open(&t.ws).await?;
    let big = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(64 * 1024));
    c.send(&big).await?;
    c.expect_close(1009, WAIT).await
}

async fn subscription_limit(t: &Target) -> Result<(), Fail> {
    let mut c = Conn::open(&t.ws).await?;
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

async fn event_frame_shape(t: &Target) -> Result<(), Fail> {
    let mut c = Conn::open(&t.ws).await?;
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

async fn routing_matrix(t: &Target) -> Result<(), Fail> {
    let base = format!("repo:{}/r", uniq("route"));
    let prs = format!("{base}/prs");
    let issues = format!("{base}/issues");
    let mut cb = Conn::open(&t.ws).await?;
    let mut cp = Conn::open(&t.ws).await?;
    let mut ci = Conn::open(&t.ws).await?;
    cb.subscribe(&base).await?;
    cp.subscribe(&prs).await?;
    ci.subscribe(&issues).await?;
    // (emit channel, kind) → which of base / prs / issues receive it.
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
        let seq = publish(t, ch, kind, json!({})).await?;
        for (i, gets) in who.iter().enumerate() {
            if *gets {
                expected[i].push(seq);
            }
        }
    }
    for (i, c) in [&mut cb, &mut cp, &mut ci].into_iter().enumerate() {
        let mut got = Vec::new();
        for _ in 0..expected[i].len() {
            got.push(c.recv().await?["seq"].as_u64().unwrap_or(0));
        }
        still_open(c).await.map_err(|e| format!("subscriber {i} got an extra event: {e}"))?;
        check(got == expected[i], || {
            format!("subscriber {i}: expected seqs {:?}, got {got:?}", expected[i])
        })?;
    }
    Ok(())
}

async fn one_copy_through_two_channels(t: &Target) -> Result<(), Fail> {
    let base = format!("repo:{}/two", uniq("o"));
    let mut c = Conn::open(&t.ws).await?;
    c.subscribe(&base).await?;
    c.subscribe(&format!("{base}/prs")).await?;
    let seq = publish(t, &base, "pr_opened", json!({})).await?;
    let e = c.recv().await?;
    check(e["seq"] == seq, || format!("got {e}"))?;
    still_open(&mut c).await.map_err(|e| format!("a second copy arrived: {e}"))
}

async fn http_endpoints(t: &Target) -> Result<(), Fail> {
    let (s, body) = http(t, "GET", "/healthz", None, None).await?;
    check(s == 200 && body.trim() == "ok", || format!("/healthz: {s} {body:?}"))?;
    let (s, body) = http(t, "GET", "/api/stats", None, None).await?;
    let v: Value = serde_json::from_str(&body).map_err(|e| format!("/api/stats: {e}: {body}"))?;
    for k in ["current_connections", "total_connections", "total_subscriptions", "total_events"] {
        check(s == 200 && v[k].is_u64(), || format!("/api/stats lacks {k}: {body}"))?;
    }
    let (s, body) = http(t, "GET", "/metrics", None, None).await?;
    check(s == 200 && body.contains("# TYPE"), || format!("/metrics: {s} {body:.200}"))
}

async fn http_publish_errors(t: &Target) -> Result<(), Fail> {
    let good = r#"{"channel":"repo:a/b","event":"push","data":{}}"#;
    let (s, _) = http(t, "POST", "/api/publish", None, Some(good)).await?;
    check(s == 401, || format!("no key: {s}"))?;
    let (s, _) = http(t, "POST", "/api/publish", Some("Bearer wrong"), Some(good)).await?;
    check(s == 401, || format!("wrong key: {s}"))?;
    let key = format!("Bearer {}", t.publish_key);
    for (body, code) in [
        ("{nope", None),
        (r#"{"channel":"repo:a","event":"push","data":{}}"#, Some("invalid_channel")),
        (r#"{"channel":"repo:a/b","event":"pr.opened","data":{}}"#, None),
    ] {
        let (s, text) = http(t, "POST", "/api/publish", Some(&key), Some(body)).await?;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        check(s == 400 && v["error"].is_string(), || format!("{body}: {s} {text}"))?;
        if let Some(code) = code {
            check(v["code"] == code, || format!("{body}: expected code {code}: {text}"))?;
        }
    }
    let (s, text) = http(t, "POST", "/api/publish", Some(&key), Some(good)).await?;
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    check(s / 100 == 2 && v["seq"].is_u64() && v["delivered"].is_u64(), || {
        format!("good publish: {s} {text}")
    })
}

async fn recovery_replays_missed_events(t: &Target) -> Result<(), Fail> {
    let ch = format!("repo:{}/rec", uniq("o"));
    let mut c = Conn::open(&t.ws).await?;
    let r = c.subscribe(&ch).await?;
    let mut last = r["seq"].as_u64().ok_or("subscribed without seq")?;
    for _ in 0..2 {
        let s = publish(t, &ch, "push", json!({})).await?;
        let e = c.recv().await?;
        check(e["seq"] == s, || format!("live event: {e}"))?;
        last = s;
    }
    let epoch = c.epoch();
    drop(c);
    let mut missed = Vec::new();
    for _ in 0..3 {
        missed.push(publish(t, &ch, "push", json!({})).await?);
    }
    let mut c = Conn::open(&t.ws).await?;
    c.send(&json!({"type": "subscribe", "channel": ch, "since": {"seq": last, "epoch": epoch}, "id": "r"}).to_string()).await?;
    let r = c.recv().await?;
    check(r["type"] == "subscribed" && r["recovered"] == true && r["id"] == "r", || {
        format!("expected subscribed recovered:true, got {r}")
    })?;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(c.recv().await?["seq"].as_u64().unwrap_or(0));
    }
    check(got == missed, || format!("replayed {got:?}, expected {missed:?}"))?;
    let live = publish(t, &ch, "push", json!({})).await?;
    let e = c.recv().await?;
    check(e["seq"] == live, || format!("live after replay: {e}"))?;
    still_open(&mut c).await
}

async fn recovery_with_wrong_epoch_is_a_gap(t: &Target) -> Result<(), Fail> {
    let ch = format!("repo:{}/gap", uniq("o"));
    publish(t, &ch, "push", json!({})).await?;
    let mut c = Conn::open(&t.ws).await?;
    c.send(&json!({"type": "subscribe", "channel": ch, "since": {"seq": 0, "epoch": "not-this-epoch"}}).to_string()).await?;
    let r = c.recv().await?;
    check(r["type"] == "subscribed" && r["recovered"] == false, || {
        format!("expected recovered:false, got {r}")
    })?;
    still_open(&mut c).await.map_err(|e| format!("nothing may be replayed on a gap: {e}"))
}

async fn auth(c: &mut Conn, token: &str) -> Result<Value, Fail> {
    c.send(&json!({"type": "auth", "token": token}).to_string()).await?;
    c.recv().await
}

async fn auth_anonymous_is_repo_only(t: &Target) -> Result<(), Fail> {
    let mut c = Conn::open(&t.ws).await?;
    c.subscribe("repo:anyone/anything").await?;
    expect_error(&mut c, r#"{"type":"subscribe","channel":"user:victim"}"#, "forbidden").await?;
    expect_error(&mut c, r#"{"type":"subscribe","channel":"org:acme"}"#, "forbidden").await?;
    still_open(&mut c).await
}

async fn auth_user_and_org_rights(t: &Target) -> Result<(), Fail> {
    let mut c = Conn::open(&t.ws).await?;
    let tok = mint(t, json!({"sub": "alice", "exp": exp_in(600), "orgs": ["acme"]}));
    let r = auth(&mut c, &tok).await?;
    let expires_in = r["expires_in"].as_u64().unwrap_or(0);
    let ok =
        r["type"] == "authenticated" && r["user"] == "alice" && (590..=600).contains(&expires_in);
    check(ok, || format!("auth reply (expires_in: the token's 600 s): {r}"))?;
    c.subscribe("user:alice").await?;
    c.subscribe("org:acme").await?;
    expect_error(&mut c, r#"{"type":"subscribe","channel":"user:bob"}"#, "forbidden").await?;
    expect_error(&mut c, r#"{"type":"subscribe","channel":"org:other"}"#, "forbidden").await?;
    still_open(&mut c).await
}

async fn auth_bad_tokens_close_4001(t: &Target) -> Result<(), Fail> {
    let expired = mint(t, json!({"sub": "alice", "exp": exp_in(-3600)}));
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "alice", "exp": exp_in(600)}),
        &jsonwebtoken::EncodingKey::from_secret(b"some other secret"),
    )
    .unwrap_or_default();
    for (what, tok) in [("expired", expired), ("badly signed", forged), ("garbage", "xyz".into())] {
        let mut c = Conn::open(&t.ws).await?;
        let r = auth(&mut c, &tok).await?;
        check(r["type"] == "error" && r["code"] == "unauthenticated", || {
            format!("{what} token: {r}")
        })?;
        c.expect_close(4001, WAIT).await.map_err(|e| format!("{what} token: {e}"))?;
    }
    Ok(())
}

async fn publish_rights(t: &Target) -> Result<(), Fail> {
    let ch = format!("repo:{}/pub", uniq("o"));
    let frame =
        json!({"type": "publish", "channel": ch, "event": "push", "data": {"a": 1}, "id": 3})
            .to_string();
    let mut anon = Conn::open(&t.ws).await?;
    expect_error(&mut anon, &frame, "forbidden").await?;
    let mut user = Conn::open(&t.ws).await?;
    auth(&mut user, &mint(t, json!({"sub": "bob", "exp": exp_in(600)}))).await?;
    expect_error(&mut user, &frame, "forbidden").await?;
    for tok in
        [t.publish_key.clone(), mint(t, json!({"sub": "ci", "exp": exp_in(600), "publish": true}))]
    {
        let mut c = Conn::open(&t.ws).await?;
        let r = auth(&mut c, &tok).await?;
        check(r["type"] == "authenticated", || format!("auth: {r}"))?;
        c.send(&frame).await?;
        let r = c.recv().await?;
        check(
            r["type"] == "published"
                && r["channel"] == ch.as_str()
                && r["seq"].is_u64()
                && r["id"] == 3,
            || format!("publish reply: {r}"),
        )?;
    }
    Ok(())
}

async fn notifications_follow_preferences(t: &Target) -> Result<(), Fail> {
    let user = uniq("n");
    let mut c = Conn::open(&t.ws).await?;
    auth(&mut c, &mint(t, json!({"sub": user, "exp": exp_in(600)}))).await?;
    c.subscribe(&format!("user:{user}")).await?;
    let note = |ty: &str| {
        json!({"id": uniq("id"), "user_id": user, "notification_type": ty, "title": "t", "body": "b",
               "url": null, "read": false, "created_at": 1, "metadata": {}})
        .to_string()
    };
    let key = format!("Bearer {}", t.publish_key);
    let (s, text) = http(t, "POST", "/api/notify", Some(&key), Some(&note("push"))).await?;
    check(s / 100 == 2, || format!("notify (disabled type): {s} {text}"))?;
    let (s, text) = http(t, "POST", "/api/notify", Some(&key), Some(&note("mention"))).await?;
    check(s / 100 == 2, || format!("notify: {s} {text}"))?;
    let n = c.recv().await?;
    check(
        n["type"] == "notification"
            && n["channel"] == format!("user:{user}").as_str()
            && n["notification"]["notification_type"] == "mention"
            && n["seq"].is_u64(),
        || format!("expected the mention only (push is disabled by default), got {n}"),
    )?;
    let (s, _) = http(t, "POST", "/api/notify", None, Some(&note("mention"))).await?;
    check(s == 401, || format!("notify without key: {s}"))
}

async fn slow_consumer_is_closed_4008(t: &Target) -> Result<(), Fail> {
    let ch = format!("repo:{}/flood", uniq("o"));
    let mut stalled = Conn::open(&t.ws).await?;
    stalled.subscribe(&ch).await?;
    let mut reader = Conn::open(&t.ws).await?;
    reader.subscribe(&ch).await?;
    let mut publisher = Conn::open(&t.ws).await?;
    let r = auth(&mut publisher, &t.publish_key).await?;
    check(r["type"] == "authenticated", || format!("publisher auth: {r}"))?;
    let pad = "x".repeat(1024);
    let n = t.flood;
    // The reader reads everything while the publisher floods and `stalled` reads nothing.
    let read = tokio::spawn(async move {
        let mut count = 0usize;
        let mut last = 0u64;
        while count < n {
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
        if i % 256 == 255 {
            // Drain the publisher's replies so it is never the slow one.
            for _ in 0..256 {
                publisher.recv().await?;
            }
        }
    }
    let got = tokio::time::timeout(Duration::from_secs(120), read)
        .await
        .map_err(|_| "the well-behaved reader did not get every event in 120 s".to_owned())?
        .map_err(|e| e.to_string())??;
    check(got == n, || format!("reader got {got} of {n}"))?;
    stalled
        .expect_close(4008, Duration::from_secs(30))
        .await
        .map_err(|e| format!("the stalled client was not closed as a slow consumer: {e}"))
}
