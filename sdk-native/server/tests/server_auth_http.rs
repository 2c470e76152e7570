//! Auth matrix (anonymous, user, org, publish key, publish claim, expired, badly signed,
//! garbage), a custom `Authorizer`, every HTTP endpoint with its errors, static files and the
//! connection cap, against the real server on 127.0.0.1. Bounded in time.

mod server_support;

use guts_realtime::{Channel, HubConfig, NotificationPreferences, NotificationType, RealtimeError};
use guts_realtime_server::{authorize_read, AuthorizeFuture, Authorizer, Identity, RepoAccess};
use serde_json::{json, Value};
use server_support::*;
use std::time::Duration;

#[tokio::test]
async fn repositories_are_private_by_default() {
    let s = TestServer::start(HubConfig::default(), token_config()).await;
    let mut anon = s.ws().await;
    for ch in ["repo:acme/app", "repo:acme/app/prs", "repo:acme/app/issues"] {
        let frame = json!({"type": "subscribe", "channel": ch}).to_string();
        let e = anon.expect_error(&frame, "forbidden").await;
        assert!(e["message"].as_str().unwrap().contains(ch), "{e}");
    }
    anon.still_open().await;
    // A token's `repos` claim grants exactly what it names.
    let mut alice = s.ws().await;
    let tok = mint(json!({"sub": "alice", "exp": exp_in(600), "repos": ["acme/*", "bob/tool"]}));
    assert_eq!(alice.auth(&tok).await["type"], "authenticated");
    for ch in ["repo:acme/app", "repo:acme/web/prs", "repo:bob/tool/issues"] {
        alice.subscribe(ch).await;
    }
    for ch in ["repo:bob/other", "repo:acmex/app", "repo:bob/tools"] {
        let frame = json!({"type": "subscribe", "channel": ch}).to_string();
        alice.expect_error(&frame, "forbidden").await;
    }
    // Nothing of a private repository reaches the anonymous connection.
    s.publish("repo:acme/app", "push", json!({})).await;
    assert_eq!(alice.recv().await["channel"], "repo:acme/app");
    anon.still_open().await;
    // A `repos` claim of the wrong type refuses the token.
    let mut bad = s.ws().await;
    let tok = mint(json!({"sub": "mallory", "exp": exp_in(600), "repos": "acme/*"}));
    assert_eq!(bad.auth(&tok).await["code"], "unauthenticated");
}

#[tokio::test]
async fn anonymous_clients_read_public_repo_channels_only() {
    let s = TestServer::default().await;
    let mut c = s.ws().await;
    c.subscribe("repo:anyone/anything").await;
    c.subscribe("repo:anyone/anything/prs").await;
    let e =
        c.expect_error(r#"{"type":"subscribe","channel":"user:victim","id":1}"#, "forbidden").await;
    assert_eq!(e["id"], 1);
    c.expect_error(r#"{"type":"subscribe","channel":"org:acme"}"#, "forbidden").await;
    c.still_open().await;
    // Nothing published on user:victim reaches the anonymous client.
    s.hub.publish("user:victim", guts_realtime::EventKind::Push, json!({})).unwrap();
    c.still_open().await;
}

#[tokio::test]
async fn users_read_their_own_channel_and_their_orgs() {
    let s = TestServer::default().await;
    let mut c = s.ws().await;
    let tok = mint(json!({"sub": "alice", "exp": exp_in(600), "orgs": ["acme", "guts"]}));
    c.send_json(json!({"type": "auth", "token": tok, "id": "a"})).await;
    let r = c.recv().await;
    assert_eq!((r["user"].as_str(), r["id"].as_str()), (Some("alice"), Some("a")), "{r}");
    // `expires_in`: the whole seconds left of the token's 600.
    assert!((599..=600).contains(&r["expires_in"].as_u64().unwrap()), "{r}");
    c.subscribe("user:alice").await;
    c.subscribe("org:acme").await;
    c.subscribe("org:guts").await;
    c.subscribe("repo:x/y").await;
    c.expect_error(r#"{"type":"subscribe","channel":"user:bob"}"#, "forbidden").await;
    c.expect_error(r#"{"type":"subscribe","channel":"org:other"}"#, "forbidden").await;
    c.still_open().await;
    // Routing to the user channel works.
    let seq = s.publish("user:alice", "push", json!({"x": 1})).await;
    let e = c.recv().await;
    assert_eq!((e["channel"].as_str(), e["seq"].as_u64()), (Some("user:alice"), Some(seq)));
    // Re-authenticating as someone else drops the channels the new identity may not read.
    let bob = mint(json!({"sub": "bob", "exp": exp_in(600)}));
    assert_eq!(c.auth(&bob).await["user"], "bob");
    let mut dropped = Vec::new();
    for _ in 0..3 {
        let r = c.recv().await;
        assert_eq!(r["type"], "unsubscribed", "{r}");
        dropped.push(r["channel"].as_str().unwrap().to_owned());
    }
    dropped.sort();
    assert_eq!(dropped, ["org:acme", "org:guts", "user:alice"]);
    c.still_open().await;
    s.publish("user:alice", "push", json!({})).await;
    c.still_open().await;
}

#[tokio::test]
async fn bad_tokens_get_unauthenticated_then_close_4001() {
    let s = TestServer::default().await;
    let expired = mint(json!({"sub": "alice", "exp": exp_in(-3600)}));
    let forged = mint_with("another secret", json!({"sub": "alice", "exp": exp_in(600)}));
    let no_exp = mint(json!({"sub": "alice"}));
    let no_sub = mint(json!({"exp": exp_in(600)}));
    let bad_orgs = mint(json!({"sub": "alice", "exp": exp_in(600), "orgs": "acme"}));
    for (what, tok) in [
        ("expired", expired),
        ("badly signed", forged),
        ("no exp", no_exp),
        ("no sub", no_sub),
        ("orgs not an array", bad_orgs),
        ("garbage", "xyz.abc.def".into()),
        ("empty", String::new()),
    ] {
        let mut c = s.ws().await;
        c.send_json(json!({"type": "auth", "token": tok, "id": 7})).await;
        let r = c.recv().await;
        assert!(r["type"] == "error" && r["code"] == "unauthenticated", "{what}: {r}");
        assert_eq!(r["id"], 7, "{what}");
        if !tok.is_empty() {
            assert!(!r.to_string().contains(&tok), "{what}: the token is echoed");
        }
        assert_eq!(c.closed(WAIT).await, (4001, "unauthenticated".into()), "{what}");
    }
    assert_eq!(metric(s.addr, "auth_failures_total").await, 7);
}

#[tokio::test]
async fn publish_rights_over_websocket() {
    let s = TestServer::default().await;
    let ch = uniq("repo:pub/r");
    let frame =
        json!({"type": "publish", "channel": ch, "event": "push", "data": {"a": 1}, "id": 3})
            .to_string();
    let mut anon = s.ws().await;
    let e = anon.expect_error(&frame, "forbidden").await;
    assert_eq!(e["id"], 3);
    anon.still_open().await;
    let mut user = s.ws().await;
    user.auth(&mint(json!({"sub": "bob", "exp": exp_in(600)}))).await;
    user.expect_error(&frame, "forbidden").await;
    let mut sub = s.ws().await;
    sub.subscribe(&ch).await;
    for (who, tok) in [
        ("publish key", KEY.to_owned()),
        ("publish claim", mint(json!({"sub": "ci", "exp": exp_in(600), "publish": true}))),
    ] {
        let mut c = s.ws().await;
        let r = c.auth(&tok).await;
        assert_eq!(r["type"], "authenticated", "{who}: {r}");
        let r = c.request(serde_json::from_str(&frame).unwrap()).await;
        assert!(
            r["type"] == "published" && r["channel"] == ch.as_str() && r["id"] == 3,
            "{who}: {r}"
        );
        let e = sub.recv().await;
        assert_eq!(e["seq"], r["seq"], "{who}");
    }
    // The publish key authenticates as the publisher identity.
    let mut c = s.ws().await;
    assert_eq!(c.auth(KEY).await["user"], "publisher");
}

/// A `publish: true` token publishes on `repo:` channels only: `user:` and `org:` channels are
/// the publish key's (before, such a token could inject events into anyone's channel).
#[tokio::test]
async fn a_publish_claim_cannot_inject_into_user_or_org_channels() {
    let s = TestServer::default().await;
    let mut c = s.ws().await;
    c.auth(&mint(json!({"sub": "ci", "exp": exp_in(600), "publish": true}))).await;
    for ch in ["user:victim", "org:acme"] {
        let frame = json!({"type": "publish", "channel": ch, "event": "push", "data": {}, "id": 1});
        let e = c.expect_error(&frame.to_string(), "forbidden").await;
        assert!(e["message"].as_str().unwrap().contains("only the publish key"), "{e}");
    }
    let mut k = s.ws().await;
    k.auth(KEY).await;
    let frame = json!({"type": "publish", "channel": "user:victim", "event": "push", "data": {}});
    assert_eq!(k.request(frame).await["type"], "published");
}

/// `nbf` is honoured; `iss` and `aud` are checked when the server names them.
#[tokio::test]
async fn nbf_issuer_and_audience_are_checked() {
    let s = TestServer::default().await;
    let later = mint(json!({"sub": "alice", "exp": exp_in(600), "nbf": exp_in(300)}));
    let mut c = s.ws().await;
    let e = c.auth(&later).await;
    assert_eq!(
        (e["code"].as_str(), e["message"].as_str()),
        (Some("unauthenticated"), Some("unauthenticated: token not yet valid"))
    );
    let now_valid = mint(json!({"sub": "alice", "exp": exp_in(600), "nbf": exp_in(-5)}));
    assert_eq!(s.ws().await.auth(&now_valid).await["type"], "authenticated");

    let cfg = config().token_issuer(Some("guts".into())).token_audience(Some("realtime".into()));
    let s = TestServer::start(HubConfig::default(), cfg).await;
    let claims = |extra: Value| {
        let mut c = json!({"sub": "alice", "exp": exp_in(600)});
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        mint(c)
    };
    for (what, tok, ok) in [
        ("right iss and aud", claims(json!({"iss": "guts", "aud": "realtime"})), true),
        ("no iss", claims(json!({"aud": "realtime"})), false),
        ("other iss", claims(json!({"iss": "evil", "aud": "realtime"})), false),
        ("no aud", claims(json!({"iss": "guts"})), false),
        ("other aud", claims(json!({"iss": "guts", "aud": "other"})), false),
    ] {
        let r = s.ws().await.auth(&tok).await;
        let want = if ok { "authenticated" } else { "error" };
        assert_eq!(r["type"], want, "{what}: {r}");
    }
}

/// Private repositories: `repo:secret/*` only for members of org `secret`.
struct Private;

impl Authorizer for Private {
    fn authorize_subscribe<'a>(
        &'a self,
        who: &'a Identity,
        ch: &'a Channel,
    ) -> AuthorizeFuture<'a> {
        Box::pin(async move {
            if ch.identifier.starts_with("secret/") && !who.in_org("secret") {
                return Err(RealtimeError::Forbidden(format!("{ch} is private")));
            }
            authorize_read(who, ch, RepoAccess::Public)
        })
    }
}

#[tokio::test]
async fn a_custom_authorizer_is_applied() {
    let s = TestServer::start(HubConfig::default(), config().authorizer(Private)).await;
    let mut anon = s.ws().await;
    anon.expect_error(r#"{"type":"subscribe","channel":"repo:secret/plans"}"#, "forbidden").await;
    anon.subscribe("repo:open/src").await;
    let mut member = s.ws().await;
    member.auth(&mint(json!({"sub": "eve", "exp": exp_in(600), "orgs": ["secret"]}))).await;
    member.subscribe("repo:secret/plans").await;
    // Losing the membership by re-authenticating revokes the private channel.
    member.auth(&mint(json!({"sub": "eve", "exp": exp_in(600)}))).await;
    assert_eq!(
        member.recv().await,
        json!({"type": "unsubscribed", "channel": "repo:secret/plans"})
    );
}

#[tokio::test]
async fn health_stats_and_metrics() {
    let s = TestServer::default().await;
    let (status, body) = http(s.addr, "GET", "/healthz", None, None).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let mut c = s.ws().await;
    c.subscribe("repo:st/a").await;
    s.publish("repo:st/a", "push", json!({})).await;
    c.recv().await;
    let (status, body) = http(s.addr, "GET", "/api/stats", None, None).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v,
        json!({"current_connections": 1, "total_connections": 1, "total_subscriptions": 1,
               "total_events": 1, "current_subscriptions": 1})
    );
    let (status, head, body) = http_full(s.addr, "GET", "/metrics", None, None).await;
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"),
        "{head}"
    );
    for (name, kind) in [
        ("connections", "gauge"),
        ("subscriptions", "gauge"),
        ("connections_accepted", "counter"),
        ("subscriptions_made", "counter"),
        ("events_published", "counter"),
        ("frames_delivered", "counter"),
        ("queue_drops", "counter"),
        ("slow_consumer_disconnects", "counter"),
        ("history_size", "gauge"),
        ("rate_limited", "counter"),
        ("auth_failures", "counter"),
        ("closes", "counter"),
        ("errors", "counter"),
        ("build", "info"),
        ("delivery_latency_seconds", "histogram"),
        ("fan_out_duration_seconds", "histogram"),
        ("connection_lifetime_seconds", "histogram"),
    ] {
        let line = format!("# TYPE guts_hub_{name} {kind}\n");
        assert!(body.contains(&line), "{name} missing:\n{body}");
    }
    assert!(body.contains("guts_hub_build_info{version=\""), "{body}");
    assert!(body.contains("guts_hub_fan_out_duration_seconds_count 1\n"), "one event fanned out");
    assert!(body.contains("guts_hub_delivery_latency_seconds_count 1\n"), "one frame written");
    assert!(body.contains("guts_hub_errors_total{code=\"invalid_channel\"} 0\n"), "{body}");
    assert_openmetrics(&body);
    assert_eq!(metric(s.addr, "connections").await, 1);
    assert_eq!(metric(s.addr, "frames_delivered_total").await, 1);
    assert_eq!(metric(s.addr, "history_size").await, 1);
    let (status, _) = http(s.addr, "GET", "/nope", None, None).await;
    assert_eq!(status, 404, "no static dir configured");
}

/// OpenMetrics rules a scraper enforces: every family declared once, no family named like
/// another's sample (a gauge `x` beside a counter `x` whose sample is `x_total`), every sample
/// belonging to a declared family with its type's suffixes, and `# EOF` at the end.
fn assert_openmetrics(body: &str) {
    assert!(body.ends_with("# EOF\n"), "no # EOF");
    let mut families = std::collections::HashMap::new();
    for line in body.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let (name, kind) = line.split_once(' ').unwrap();
        assert!(families.insert(name.to_owned(), kind.to_owned()).is_none(), "{name} twice");
    }
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        let sample = line.split(['{', ' ']).next().unwrap();
        let owner = families.iter().find(|(f, kind)| {
            let suffixes: &[&str] = match kind.as_str() {
                "counter" => &["_total", "_created"],
                "histogram" => &["_bucket", "_sum", "_count", "_created"],
                "info" => &["_info"],
                _ => &[""],
            };
            suffixes.iter().any(|s| sample.strip_suffix(s) == Some(f.as_str()))
        });
        assert!(owner.is_some(), "sample {sample} has no family");
    }
    for name in families.keys() {
        for suffix in ["_total", "_info", "_count", "_sum", "_bucket"] {
            let clash = format!("{name}{suffix}");
            assert!(!families.contains_key(&clash), "family {clash} clashes with {name}");
        }
    }
}

#[tokio::test]
async fn http_publish_auth_and_errors() {
    let s = TestServer::default().await;
    let good = r#"{"channel":"repo:a/b","event":"push","data":{}}"#;
    let (status, head, body) = http_full(s.addr, "POST", "/api/publish", None, Some(good)).await;
    assert_eq!(status, 401, "{body}");
    assert!(head.to_ascii_lowercase().contains("www-authenticate: bearer"));
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["code"], "unauthenticated");
    let (status, _) = http(s.addr, "POST", "/api/publish", Some("wrong"), Some(good)).await;
    assert_eq!(status, 401);
    let (status, _) = http(s.addr, "POST", "/api/publish", Some(""), Some(good)).await;
    assert_eq!(status, 401);
    for (body, code) in [
        ("{nope", "invalid_message"),
        ("", "invalid_message"),
        ("[]", "invalid_message"),
        (r#"{"event":"push","data":{}}"#, "invalid_message"),
        (r#"{"channel":"repo:a/b","event":"pr.opened","data":{}}"#, "invalid_message"),
        (r#"{"channel":"repo:a/b","event":7}"#, "invalid_message"),
        (r#"{"channel":"repo:a","event":"push","data":{}}"#, "invalid_channel"),
        (r#"{"channel":"user:a/b","event":"push"}"#, "invalid_channel"),
    ] {
        let (status, text) = http(s.addr, "POST", "/api/publish", Some(KEY), Some(body)).await;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(status, 400, "{body}: {text}");
        assert!(v["error"].is_string(), "{body}: {text}");
        assert_eq!(v["code"], code, "{body}: {text}");
    }
    let big = format!(r#"{{"channel":"repo:a/b","event":"push","data":"{}"}}"#, "x".repeat(70_000));
    let (status, _) = http(s.addr, "POST", "/api/publish", Some(KEY), Some(&big)).await;
    assert_eq!(status, 413);
    let mut c = s.ws().await;
    c.subscribe("repo:a/b/prs").await;
    let (status, text) = http(
        s.addr,
        "POST",
        "/api/publish",
        Some(KEY),
        Some(r#"{"channel":"repo:a/b","event":"pr_opened","data":{"number":1}}"#),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["delivered"], 1);
    let e = c.recv().await;
    assert_eq!(e["seq"], v["seq"]);
    // `data` may be absent (null).
    let (status, _) = http(
        s.addr,
        "POST",
        "/api/publish",
        Some(KEY),
        Some(r#"{"channel":"repo:a/b","event":"push"}"#),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = http(s.addr, "GET", "/api/publish", None, None).await;
    assert_eq!(status, 405);
}

fn note(user: &str, ty: &str) -> String {
    json!({"id": uniq("n"), "user_id": user, "notification_type": ty, "title": "t", "body": "b",
           "url": null, "read": false, "created_at": 1, "metadata": {}})
    .to_string()
}

#[tokio::test]
async fn http_notify_follows_preferences() {
    let s = TestServer::default().await;
    let mut c = s.ws().await;
    c.auth(&mint(json!({"sub": "nina", "exp": exp_in(600)}))).await;
    c.subscribe("user:nina").await;
    // `push` is disabled by default: suppressed, nothing delivered.
    let (status, text) =
        http(s.addr, "POST", "/api/notify", Some(KEY), Some(&note("nina", "push"))).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"suppressed": true, "delivered": 0})
    );
    let (status, text) =
        http(s.addr, "POST", "/api/notify", Some(KEY), Some(&note("nina", "mention"))).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let n = c.recv().await;
    assert_eq!(n["type"], "notification");
    assert_eq!(n["channel"], "user:nina");
    assert_eq!(n["notification"]["notification_type"], "mention");
    assert_eq!(n["seq"], v["seq"]);
    // Preferences set through the Rust API.
    s.hub.set_preferences(NotificationPreferences {
        enabled_types: vec![NotificationType::Push],
        ..NotificationPreferences::for_user("nina")
    });
    let (_, text) =
        http(s.addr, "POST", "/api/notify", Some(KEY), Some(&note("nina", "push"))).await;
    assert!(text.contains("\"seq\""), "{text}");
    assert_eq!(c.recv().await["notification"]["notification_type"], "push");
    let (status, _) =
        http(s.addr, "POST", "/api/notify", None, Some(&note("nina", "mention"))).await;
    assert_eq!(status, 401);
    let (status, text) =
        http(s.addr, "POST", "/api/notify", Some(KEY), Some(&note("a/b", "mention"))).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("invalid_channel"));
    let (status, _) = http(s.addr, "POST", "/api/notify", Some(KEY), Some("{}")).await;
    assert_eq!(status, 400);
    c.still_open().await;
}

#[tokio::test]
async fn static_files_are_served_at_the_root() {
    let dir = std::env::temp_dir().join(uniq(&format!("guts-web-{}-", std::process::id())));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), "<h1>demo</h1>").unwrap();
    let s = TestServer::start(HubConfig::default(), config().static_dir(&dir)).await;
    let (status, head, body) = http_full(s.addr, "GET", "/", None, None).await;
    assert_eq!((status, body.as_str()), (200, "<h1>demo</h1>"));
    assert!(head.to_ascii_lowercase().contains("content-type: text/html"), "{head}");
    let (status, _) = http(s.addr, "GET", "/missing.js", None, None).await;
    assert_eq!(status, 404);
    let (status, _) = http(s.addr, "GET", "/../../etc/passwd", None, None).await;
    assert_ne!(status, 200);
    // The API routes still win.
    let (status, _) = http(s.addr, "GET", "/healthz", None, None).await;
    assert_eq!(status, 200);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_connection_cap_refuses_the_upgrade_with_503() {
    let s = TestServer::start(HubConfig::default().max_connections(2), config()).await;
    let mut a = s.ws().await;
    let _b = s.ws().await;
    let err = Ws::connect(&s.ws_url()).await.err().expect("the third connection is refused");
    match err {
        tokio_tungstenite::tungstenite::Error::Http(resp) => {
            assert_eq!(resp.status().as_u16(), 503);
            assert_eq!(resp.headers().get("retry-after").unwrap(), "5");
        }
        other => panic!("expected HTTP 503, got {other:?}"),
    }
    assert_eq!(s.hub.metrics().rejected_connections, 1);
    assert_eq!(metric(s.addr, "connections_rejected_total").await, 1);
    // A slot frees when a client leaves.
    a.ws.close(None).await.unwrap();
    drop(a);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while s.hub.connection_count() > 1 {
        assert!(tokio::time::Instant::now() < deadline, "the slot was not freed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut c = s.ws().await;
    c.still_open().await;
}

/// Wrong publish keys are throttled per client address: ten in a burst, then 429 (even for the
/// right key) until the allowance refills, one a second; both are counted in /metrics (before,
/// 300 wrong keys were tried in 0.07 s).
#[tokio::test]
async fn wrong_publish_keys_are_throttled_per_address() {
    let s = TestServer::default().await;
    let body = r#"{"channel":"repo:a/b","event":"push","data":{}}"#;
    let mut statuses = Vec::new();
    for _ in 0..30 {
        statuses.push(http(s.addr, "POST", "/api/publish", Some("guess"), Some(body)).await.0);
    }
    let unauthorized = statuses.iter().filter(|&&c| c == 401).count();
    assert!((10..=12).contains(&unauthorized), "{statuses:?}");
    assert!(statuses[..10].iter().all(|&c| c == 401), "{statuses:?}");
    assert_eq!(*statuses.last().unwrap(), 429, "{statuses:?}");
    let (status, _) = http(s.addr, "POST", "/api/publish", Some(KEY), Some(body)).await;
    assert_eq!(status, 429, "throttled whatever the key");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _) = http(s.addr, "POST", "/api/publish", Some(KEY), Some(body)).await;
    assert_eq!(status, 200, "one attempt a second again");
    assert_eq!(metric(s.addr, "http_key_failures_total").await as usize, unauthorized);
    assert!(metric(s.addr, "http_key_throttled_total").await >= 18);
}

/// `max_connections_per_ip` keeps one address from taking every connection slot (before, one
/// client address could hold all of them); the slot is the address's again once it closes.
#[tokio::test]
async fn one_address_cannot_take_more_than_its_connections() {
    let s = TestServer::start(HubConfig::default(), config().max_connections_per_ip(2)).await;
    let mut a = s.ws().await;
    let _b = s.ws().await;
    match Ws::connect(&s.ws_url()).await.err().expect("the third from 127.0.0.1 is refused") {
        tokio_tungstenite::tungstenite::Error::Http(resp) => {
            assert_eq!(resp.status().as_u16(), 503);
            assert_eq!(resp.headers().get("retry-after").unwrap(), "5");
        }
        other => panic!("expected HTTP 503, got {other:?}"),
    }
    assert_eq!(s.hub.connection_count(), 2, "the hub itself had room");
    a.ws.close(None).await.unwrap();
    drop(a);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(mut c) = Ws::connect(&s.ws_url()).await {
            assert_eq!(c.recv().await["type"], "welcome");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the address's slot was not freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `publish` claim may be channel patterns: the token publishes on the `repo:` channels they
/// match and nowhere else; a claim of the wrong type is refused like any malformed token.
#[tokio::test]
async fn a_publish_claim_of_channel_patterns_scopes_publishing() {
    let s = TestServer::default().await;
    let mut c = s.ws().await;
    let token = mint(
        json!({"sub": "bot", "exp": exp_in(600), "publish": ["repo:acme/*", "repo:alice/app"]}),
    );
    assert_eq!(c.auth(&token).await["type"], "authenticated");
    for (ch, ok) in [
        ("repo:acme/web", true),
        ("repo:alice/app/prs", true),
        ("repo:alice/other", false),
        ("repo:bob/x", false),
    ] {
        let r =
            c.request(json!({"type": "publish", "channel": ch, "event": "push", "data": {}})).await;
        let want = if ok { "published" } else { "error" };
        assert_eq!(r["type"], want, "{ch}: {r}");
        if !ok {
            assert_eq!(r["code"], "forbidden", "{ch}: {r}");
        }
    }
    let mut bad = s.ws().await;
    let e = bad.auth(&mint(json!({"sub": "bot", "exp": exp_in(600), "publish": "yes"}))).await;
    assert_eq!(e["code"], "unauthenticated", "{e}");
}

/// Under `token` access, `publish: true` covers the repositories the token may read, not every
/// repository: a CI token cannot inject events into someone else's private repository.
#[tokio::test]
async fn publish_true_covers_the_repositories_the_token_may_read() {
    let s = TestServer::start(HubConfig::default(), token_config()).await;
    let mut ci = s.ws().await;
    let tok = mint(json!({"sub": "ci", "exp": exp_in(600), "publish": true, "repos": ["acme/*"]}));
    assert_eq!(ci.auth(&tok).await["type"], "authenticated");
    let ok = ci
        .request(
            json!({"type": "publish", "channel": "repo:acme/app/prs", "event": "push", "data": {}}),
        )
        .await;
    assert_eq!(ok["type"], "published", "{ok}");
    let e = ci
        .request(json!({"type": "publish", "channel": "repo:victim/secret", "event": "push", "data": {}}))
        .await;
    assert_eq!(e["code"], "forbidden", "{e}");
}

/// An idempotency key makes a retried publish harmless, over HTTP and over the socket: the
/// repeat answers the first seq with `"duplicate":true` and nothing is delivered twice. A key
/// of more than 128 bytes is refused.
#[tokio::test]
async fn a_publish_repeated_with_its_idempotency_key_is_published_once() {
    let s = TestServer::default().await;
    let ch = uniq("repo:o/idem");
    let mut sub = s.ws().await;
    sub.subscribe(&ch).await;
    let body = serde_json::json!({"channel": ch, "event": "push", "data": {"n": 1}, "idempotency_key": "deploy-1"}).to_string();
    let (status, first) = http(s.addr, "POST", "/api/publish", Some(KEY), Some(&body)).await;
    assert_eq!(status, 200, "{first}");
    let first: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert!(first.get("duplicate").is_none(), "{first}");
    let (status, again) = http(s.addr, "POST", "/api/publish", Some(KEY), Some(&body)).await;
    assert_eq!(status, 200);
    let again: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again, serde_json::json!({"seq": first["seq"], "delivered": 0, "duplicate": true}));
    // Over the socket, with the publish key as the token: the same key is the same publish.
    let mut publisher = s.ws().await;
    publisher.auth(KEY).await;
    let frame = serde_json::json!({"type": "publish", "channel": ch, "event": "push", "data": {"n": 1}, "idempotency_key": "deploy-1", "id": 5});
    let reply = publisher.request(frame).await;
    assert_eq!(
        reply,
        serde_json::json!({"type": "published", "channel": ch, "seq": first["seq"], "duplicate": true, "id": 5})
    );
    assert_eq!(sub.recv().await["seq"], first["seq"]);
    sub.still_open().await;
    // Too long a key.
    let long = "k".repeat(129);
    let body =
        serde_json::json!({"channel": ch, "event": "push", "idempotency_key": long}).to_string();
    let (status, text) = http(s.addr, "POST", "/api/publish", Some(KEY), Some(&body)).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("idempotency_key must be 1 to 128 bytes"), "{text}");
}
