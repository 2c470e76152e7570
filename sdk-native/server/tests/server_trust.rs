//! Trust against the real server on 127.0.0.1: the `proxy` authorizer with a real HTTP backend
//! (decisions, caching, every failure an `unavailable`, a decision in flight stalling only its
//! connection), revocation (`/api/unsubscribe`, `/api/disconnect`) and token lifetimes
//! (`expires_in`, in-band refresh, `token_expired` + 4002). Bounded in time.

mod server_support;

use guts_realtime::HubConfig;
use guts_realtime_server::{ProxyAuthorizer, ServerConfig};
use serde_json::{json, Value};
use server_support::*;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A request the backend received: its `Authorization` header and its JSON body.
type Seen = Arc<Mutex<Vec<(String, Value)>>>;

/// What the backend answers a body with: a delay, then raw HTTP status and body.
type Answer = Arc<dyn Fn(&Value) -> (Duration, u16, String) + Send + Sync>;

/// A platform authorize endpoint on 127.0.0.1: records every request, answers with `answer`.
struct Backend {
    addr: SocketAddr,
    seen: Seen,
}

impl Backend {
    async fn start(
        answer: impl Fn(&Value) -> (Duration, u16, String) + Send + Sync + 'static,
    ) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Seen = Arc::default();
        let answer: Answer = Arc::new(answer);
        let record = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let (seen, answer) = (record.clone(), answer.clone());
                tokio::spawn(async move {
                    let Some((auth, body)) = read_request(&mut tcp).await else { return };
                    seen.lock().unwrap().push((auth, body.clone()));
                    let (delay, status, text) = answer(&body);
                    tokio::time::sleep(delay).await;
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{text}",
                        text.len()
                    );
                    let _ = tcp.write_all(resp.as_bytes()).await;
                });
            }
        });
        Backend { addr, seen }
    }

    fn url(&self) -> String {
        format!("http://{}/authorize", self.addr)
    }

    fn asked(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

/// Reads one HTTP/1.1 request: its `Authorization` header and its JSON body.
async fn read_request(tcp: &mut tokio::net::TcpStream) -> Option<(String, Value)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tcp.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        let Some(end) = text.find("\r\n\r\n") else { continue };
        let head = &text[..end];
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name)))
                .map(|(_, v)| v.trim().to_owned())
        };
        let len: usize = header("content-length")?.parse().ok()?;
        if buf.len() >= end + 4 + len {
            let body = serde_json::from_slice(&buf[end + 4..end + 4 + len]).ok()?;
            return Some((header("authorization").unwrap_or_default(), body));
        }
    }
}

/// Alice may read `repo:acme/*`; nobody else anything.
fn acme_for_alice(body: &Value) -> (Duration, u16, String) {
    let allow =
        body["user"] == "alice" && body["channel"].as_str().unwrap().starts_with("repo:acme/");
    (Duration::ZERO, 200, json!({ "allow": allow }).to_string())
}

fn proxy_config(backend: &Backend, cache: Duration) -> ServerConfig {
    let proxy = ProxyAuthorizer::new(&backend.url(), Some(KEY))
        .unwrap()
        .timeout(Duration::from_millis(500))
        .cache_ttl(cache);
    token_config().authorizer(proxy)
}

async fn alice(s: &TestServer, claims: Value) -> Ws {
    let mut c = s.ws().await;
    let mut all = json!({"sub": "alice", "exp": exp_in(600), "orgs": ["acme"]});
    all.as_object_mut().unwrap().extend(claims.as_object().unwrap().clone());
    assert_eq!(c.auth(&mint(all)).await["type"], "authenticated");
    c
}

fn subscribe(ch: &str) -> String {
    json!({"type": "subscribe", "channel": ch}).to_string()
}

#[tokio::test]
async fn the_proxy_decides_what_the_token_does_not_grant_and_its_decisions_are_cached() {
    let backend = Backend::start(acme_for_alice).await;
    let s =
        TestServer::start(HubConfig::default(), proxy_config(&backend, Duration::from_secs(30)))
            .await;
    let mut a = alice(&s, json!({"repos": ["granted/*"]})).await;
    a.subscribe("repo:acme/app").await;
    assert_eq!(backend.asked(), 1);
    {
        let seen = backend.seen.lock().unwrap();
        assert_eq!(seen[0].0, format!("Bearer {KEY}"), "the hub identifies itself");
        assert_eq!(
            seen[0].1,
            json!({"user": "alice", "orgs": ["acme"], "channel": "repo:acme/app"})
        );
    }
    // One decision per (user, repository): the narrower channels reuse it.
    a.subscribe("repo:acme/app/prs").await;
    a.subscribe("repo:acme/app/issues").await;
    assert_eq!(backend.asked(), 1);
    // What the token grants, and user/org channels, are not asked about.
    a.subscribe("repo:granted/tool").await;
    a.subscribe("user:alice").await;
    a.subscribe("org:acme").await;
    assert_eq!(backend.asked(), 1);
    // A deny is a deny (cached too), and the connection stays open.
    a.expect_error(&subscribe("repo:other/x"), "forbidden").await;
    a.expect_error(&subscribe("repo:other/x/prs"), "forbidden").await;
    assert_eq!(backend.asked(), 2);
    a.still_open().await;
    // Anonymous: asked with user null.
    let mut anon = s.ws().await;
    anon.expect_error(&subscribe("repo:acme/app"), "forbidden").await;
    assert_eq!(backend.seen.lock().unwrap()[2].1["user"], Value::Null);
    anon.still_open().await;
}

#[tokio::test]
async fn without_a_cache_every_subscribe_asks() {
    let backend = Backend::start(acme_for_alice).await;
    let s = TestServer::start(HubConfig::default(), proxy_config(&backend, Duration::ZERO)).await;
    let mut a = alice(&s, json!({})).await;
    a.subscribe("repo:acme/app").await;
    a.subscribe("repo:acme/app/prs").await;
    assert_eq!(backend.asked(), 2);
}

#[tokio::test]
async fn every_failure_of_the_backend_is_unavailable_never_an_allow() {
    let big = format!("{{\"allow\": true, \"pad\": \"{}\"}}", "x".repeat(10_000));
    for (what, status, body, delay) in [
        ("a 500", 500, r#"{"allow": true}"#.to_owned(), Duration::ZERO),
        ("a 403", 403, r#"{"allow": true}"#.to_owned(), Duration::ZERO),
        ("a bad body", 200, r#"{"allow": "yes"}"#.to_owned(), Duration::ZERO),
        ("not JSON", 200, "allow".to_owned(), Duration::ZERO),
        ("an oversized answer", 200, big, Duration::ZERO),
        ("no answer in time", 200, r#"{"allow": true}"#.to_owned(), Duration::from_secs(3)),
    ] {
        let backend = Backend::start(move |_| (delay, status, body.clone())).await;
        let s = TestServer::start(
            HubConfig::default(),
            proxy_config(&backend, Duration::from_secs(30)),
        )
        .await;
        let mut a = alice(&s, json!({})).await;
        let started = Instant::now();
        let e = a.expect_error(&subscribe("repo:acme/app"), "unavailable").await;
        assert!(started.elapsed() < Duration::from_secs(2), "{what}: the timeout applies");
        assert!(!e["message"].as_str().unwrap().contains("pad"), "{what}: {e}");
        // Failures are not cached: the next subscribe asks again.
        a.expect_error(&subscribe("repo:acme/app"), "unavailable").await;
        assert_eq!(backend.asked(), 2, "{what}");
        a.still_open().await;
    }
    // Nobody listening at all.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/authorize", closed.local_addr().unwrap());
    drop(closed);
    let proxy = ProxyAuthorizer::new(&url, Some(KEY)).unwrap();
    let s = TestServer::start(HubConfig::default(), token_config().authorizer(proxy)).await;
    let mut a = alice(&s, json!({})).await;
    a.expect_error(&subscribe("repo:acme/app"), "unavailable").await;
}

#[tokio::test]
async fn a_decision_in_flight_stalls_only_its_own_connection_and_keeps_its_events_flowing() {
    let backend = Backend::start(|body: &Value| {
        let slow = body["channel"] == "repo:acme/slow";
        let delay = if slow { Duration::from_millis(1500) } else { Duration::ZERO };
        (delay, 200, r#"{"allow": true}"#.to_owned())
    })
    .await;
    let proxy =
        ProxyAuthorizer::new(&backend.url(), Some(KEY)).unwrap().timeout(Duration::from_secs(5));
    let s = TestServer::start(HubConfig::default(), token_config().authorizer(proxy)).await;
    let mut a = alice(&s, json!({})).await;
    a.subscribe("user:alice").await;
    a.send(&subscribe("repo:acme/slow")).await;
    a.send(r#"{"type":"ping","id":"after"}"#).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Meanwhile: A's events arrive, and another connection is served at once.
    let seq = s.publish("user:alice", "push", json!({})).await;
    let e = a.recv().await;
    assert_eq!((e["type"].as_str(), e["seq"].as_u64()), (Some("event"), Some(seq)));
    let mut b = alice(&s, json!({})).await;
    let started = Instant::now();
    b.subscribe("repo:acme/fast").await;
    assert!(started.elapsed() < Duration::from_millis(700), "B waited for A's decision");
    // A's commands run in order once the decision came.
    assert_eq!(a.recv().await["type"], "subscribed");
    assert_eq!(a.recv().await, json!({"type": "pong", "id": "after"}));
}

#[tokio::test]
async fn revocation_ends_subscriptions_on_every_connection_of_the_user() {
    let backend = Backend::start(acme_for_alice).await;
    let s =
        TestServer::start(HubConfig::default(), proxy_config(&backend, Duration::from_secs(30)))
            .await;
    let mut tabs = [alice(&s, json!({})).await, alice(&s, json!({})).await];
    for t in &mut tabs {
        for ch in ["repo:acme/app", "repo:acme/app/prs", "repo:acme/web", "user:alice"] {
            t.subscribe(ch).await;
        }
    }
    assert_eq!(backend.asked(), 2, "acme/app and acme/web, once each");
    let mut bob = s.ws().await;
    let tok = mint(json!({"sub": "bob", "exp": exp_in(600), "repos": ["acme/app"]}));
    bob.auth(&tok).await;
    bob.subscribe("repo:acme/app").await;
    // Without the key: refused.
    let body = r#"{"user":"alice","channel":"repo:acme/app"}"#;
    assert_eq!(http(s.addr, "POST", "/api/unsubscribe", None, Some(body)).await.0, 401);
    let bad = r#"{"user":"alice","channel":"repo:nope"}"#;
    assert_eq!(http(s.addr, "POST", "/api/unsubscribe", Some(KEY), Some(bad)).await.0, 400);
    let (status, reply) = http(s.addr, "POST", "/api/unsubscribe", Some(KEY), Some(body)).await;
    assert_eq!(status, 200, "{reply}");
    for t in &mut tabs {
        let mut ended = vec![t.recv().await, t.recv().await];
        ended.sort_by_key(|v| v["channel"].as_str().unwrap().to_owned());
        assert_eq!(
            ended,
            [
                json!({"type": "unsubscribed", "channel": "repo:acme/app", "reason": "revoked"}),
                json!({"type": "unsubscribed", "channel": "repo:acme/app/prs", "reason": "revoked"}),
            ]
        );
        t.still_open().await;
    }
    // The repository's events no longer reach alice; bob and alice's other channels go on.
    s.publish("repo:acme/app", "pr_opened", json!({"number": 1})).await;
    assert_eq!(bob.recv().await["channel"], "repo:acme/app");
    s.publish("repo:acme/web", "push", json!({})).await;
    for t in &mut tabs {
        assert_eq!(
            t.recv().await["channel"],
            "repo:acme/web",
            "acme/app's event was not delivered"
        );
    }
    // The cached decision went with it: subscribing again asks the platform again.
    tabs[0].subscribe("repo:acme/app").await;
    assert_eq!(backend.asked(), 3);
    // Disconnect: every connection of alice closes with 4003; bob stays.
    let body = r#"{"user":"alice"}"#;
    assert_eq!(http(s.addr, "POST", "/api/disconnect", Some(KEY), Some(body)).await.0, 200);
    for t in &mut tabs {
        assert_eq!(t.closed(WAIT).await.0, 4003);
    }
    bob.still_open().await;
}

#[tokio::test]
async fn a_token_refreshed_in_band_keeps_the_connection_and_an_expired_one_closes_it_with_4002() {
    let s = TestServer::default().await;
    // Expiring in 2 s, refreshed after 1 s with the same sub: nothing else happens.
    let mut c = s.ws().await;
    let r = c.auth(&mint(json!({"sub": "alice", "exp": exp_in(2)}))).await;
    assert!((1..=2).contains(&r["expires_in"].as_u64().unwrap()), "{r}");
    c.subscribe("user:alice").await;
    c.subscribe("repo:a/b").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let r = c.auth(&mint(json!({"sub": "alice", "exp": exp_in(600)}))).await;
    assert_eq!(r["type"], "authenticated", "{r}");
    assert!(r["expires_in"].as_u64().unwrap() >= 598, "{r}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let seq = s.publish("user:alice", "push", json!({})).await;
    let e = c.recv().await;
    assert_eq!(
        (e["type"].as_str(), e["seq"].as_u64()),
        (Some("event"), Some(seq)),
        "no unsubscribe"
    );
    c.still_open().await;
    // Not refreshed: `token_expired`, then 4002, at expiry.
    let mut d = s.ws().await;
    let exp = exp_in(2);
    d.auth(&mint(json!({"sub": "bob", "exp": exp}))).await;
    let e = d.recv().await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    assert!(now.as_secs_f64() >= exp as f64 - 0.05, "closed before exp: {now:?} < {exp}");
    assert_eq!((e["type"].as_str(), e["code"].as_str()), (Some("error"), Some("token_expired")));
    assert_eq!(d.closed(WAIT).await, (4002, "token expired".into()));
    // The publish key does not expire.
    let mut p = s.ws().await;
    assert_eq!(p.auth(KEY).await, json!({"type": "authenticated", "user": "publisher"}));
}
