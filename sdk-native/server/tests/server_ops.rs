//! What operators read: closes and errors counted by code, the connection lifetime histogram,
//! `/readyz`, and the admin page's authentication, snapshot and placement on the internal
//! listener.

mod server_support;

use futures_util::SinkExt;
use guts_realtime::{EventHub, HubConfig};
use guts_realtime_server::serve_split;
use serde_json::{json, Value};
use server_support::*;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// A sample's value in the `/metrics` text (`name` with its labels, e.g. `x_total{code="1"}`).
async fn sample(addr: std::net::SocketAddr, name: &str) -> f64 {
    let (status, text) = http(addr, "GET", "/metrics", None, None).await;
    assert_eq!(status, 200);
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("guts_hub_{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("sample {name} missing:\n{text}"))
}

/// `GET path` with `Authorization: Basic base64(user:password)`: status, head, body.
async fn get_basic(
    addr: std::net::SocketAddr,
    path: &str,
    credentials: Option<&str>,
) -> (u16, String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(c) = credentials {
        req.push_str(&format!("Authorization: Basic {}\r\n", base64(c.as_bytes())));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut raw)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

fn base64(data: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closes_and_errors_are_counted_by_code_and_lifetimes_observed() {
    let s = TestServer::default().await;
    let mut a = s.ws().await;
    a.expect_error(r#"{"type":"subscribe","channel":"nope"}"#, "invalid_channel").await;
    a.expect_error(r#"{"type":"subscribe","channel":"also bad"}"#, "invalid_channel").await;
    a.expect_error("not json", "invalid_message").await;
    a.ws.close(Some(CloseFrame { code: CloseCode::Normal, reason: "bye".into() })).await.unwrap();
    // The client's own close goes under 1000; a dropped socket under 1006; a code the protocol
    // does not define under `other` (clients cannot make new series).
    let b = s.ws().await;
    drop(b);
    let mut odd = s.ws().await;
    let frame = CloseFrame { code: CloseCode::from(4321), reason: "".into() };
    odd.ws.close(Some(frame)).await.unwrap();
    let mut waited = Duration::ZERO;
    while sample(s.addr, "connections").await > 0.0 && waited < WAIT {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
    assert_eq!(sample(s.addr, r#"errors_total{code="invalid_channel"}"#).await, 2.0);
    assert_eq!(sample(s.addr, r#"errors_total{code="invalid_message"}"#).await, 1.0);
    assert_eq!(sample(s.addr, r#"errors_total{code="forbidden"}"#).await, 0.0);
    assert_eq!(sample(s.addr, r#"closes_total{code="1000"}"#).await, 1.0);
    assert_eq!(sample(s.addr, r#"closes_total{code="1006"}"#).await, 1.0);
    assert_eq!(sample(s.addr, r#"closes_total{code="4008"}"#).await, 0.0, "listed at zero");
    assert_eq!(sample(s.addr, r#"closes_total{code="other"}"#).await, 1.0);
    assert_eq!(sample(s.addr, "connection_lifetime_seconds_count").await, 3.0);
    assert_eq!(sample(s.addr, r#"connection_lifetime_seconds_bucket{le="1.0"}"#).await, 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_page_and_its_snapshot_need_the_publish_key_as_basic_password() {
    let s = TestServer::default().await;
    for path in ["/admin", "/admin/api/snapshot"] {
        let (status, head, _) = get_basic(s.addr, path, None).await;
        assert_eq!(status, 401, "{path}");
        let head = head.to_ascii_lowercase();
        assert!(head.contains("www-authenticate: basic realm=\"guts-hub admin\""), "{head}");
        let (status, _, _) = get_basic(s.addr, path, Some("admin:wrong")).await;
        assert_eq!(status, 401, "{path} with a wrong password");
        let bearer = http(s.addr, "GET", path, Some(KEY), None).await.0;
        assert_eq!(bearer, 401, "{path}: the key as a Bearer token is not Basic");
    }
    let (status, head, body) = get_basic(s.addr, "/admin", Some(&format!("ops:{KEY}"))).await;
    assert_eq!(status, 200);
    let head = head.to_ascii_lowercase();
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(head.contains("content-security-policy: default-src 'none'"), "{head}");
    assert!(body.contains("guts-hub admin"), "the page");

    let mut c = s.ws().await;
    c.expect_error(r#"{"type":"subscribe","channel":"x"}"#, "invalid_channel").await;
    let who = c.auth(&mint(json!({"sub": "alice", "exp": exp_in(600)}))).await;
    assert_eq!(who["type"], "authenticated");
    c.subscribe("repo:adm/one").await;
    c.request(json!({"type": "subscribe", "channel": "repo:adm/one/prs/1", "presence": true}))
        .await;
    s.publish("repo:adm/one", "push", json!({})).await;
    s.publish("repo:adm/one", "push", json!({})).await;
    let (status, _, body) =
        get_basic(s.addr, "/admin/api/snapshot", Some(&format!(":{KEY}"))).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((v["connections"].as_u64(), v["ready"].as_bool()), (Some(1), Some(true)), "{v}");
    assert_eq!(v["subscriptions"], 2, "{v}");
    assert!(v["events_published"].as_u64() >= Some(2), "{v}");
    let one = v["channels"].as_array().unwrap().iter().find(|c| c["channel"] == "repo:adm/one");
    assert_eq!(one, Some(&json!({"channel": "repo:adm/one", "subscribers": 2, "events": 2})));
    assert_eq!(v["errors"], json!({"invalid_channel": 1}), "{v}");
    assert_eq!(v["closes"]["1000"], 0);
    let presence = &v["presence"];
    assert_eq!(presence.as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(presence[0]["channel"], "repo:adm/one/prs/1");
    assert_eq!(presence[0]["members"], json!([{"user": "alice", "connections": 1}]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_internal_listener_the_admin_page_is_served_only_there() {
    let hub = Arc::new(EventHub::with_config(HubConfig::default()));
    let public = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let internal = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (p, i) = (public.local_addr().unwrap(), internal.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve_split(hub, public, internal, config(), async move {
        let _ = stopped.await;
    }));
    let key = format!("admin:{KEY}");
    assert_eq!(get_basic(p, "/admin", Some(&key)).await.0, 404);
    assert_eq!(get_basic(p, "/admin/api/snapshot", Some(&key)).await.0, 404);
    assert_eq!(get_basic(i, "/admin", Some(&key)).await.0, 200);
    assert_eq!(get_basic(i, "/admin/api/snapshot", Some(&key)).await.0, 200);
    assert_eq!(get_basic(p, "/readyz", None).await.0, 200);
    assert_eq!(get_basic(i, "/readyz", None).await.0, 200);
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_write_observes_the_delivery_latency_once_per_write() {
    let s = TestServer::default().await;
    let mut c = s.ws().await;
    c.subscribe("repo:lat/one").await;
    for _ in 0..3 {
        s.publish("repo:lat/one", "push", json!({})).await;
        c.recv().await;
    }
    assert_eq!(sample(s.addr, "delivery_latency_seconds_count").await, 3.0);
    assert_eq!(sample(s.addr, "fan_out_duration_seconds_count").await, 3.0);
    // Loopback and an idle hub: each under 250 ms.
    assert_eq!(sample(s.addr, r#"delivery_latency_seconds_bucket{le="0.25"}"#).await, 3.0);
    // Replies (pongs) are not events: no observation.
    c.ws.send(Message::text(r#"{"type":"ping"}"#)).await.unwrap();
    c.recv().await;
    assert_eq!(sample(s.addr, "delivery_latency_seconds_count").await, 3.0);
}
