//! The reference HTTP API: health, stats, metrics, publish and its errors.

use super::check;
use crate::conn::Fail;
use crate::hooks::{http, publish_answer, uniq};
use crate::Target;
use serde_json::{json, Value};

pub(super) async fn http_endpoints(t: &Target) -> Result<(), Fail> {
    let (s, body) = http(t, "GET", "/healthz", None, None).await?;
    check(s == 200 && body.trim() == "ok", || format!("/healthz: {s} {body:?}"))?;
    let (s, body) = http(t, "GET", "/readyz", None, None).await?;
    check(s == 200 && body.trim() == "ready", || format!("/readyz: {s} {body:?}"))?;
    let (s, body) = http(t, "GET", "/api/stats", None, None).await?;
    let v: Value = serde_json::from_str(&body).map_err(|e| format!("/api/stats: {e}: {body}"))?;
    for k in ["current_connections", "total_connections", "total_subscriptions", "total_events"] {
        check(s == 200 && v[k].is_u64(), || format!("/api/stats lacks {k}: {body}"))?;
    }
    let (s, body) = http(t, "GET", "/metrics", None, None).await?;
    check(s == 200 && body.contains("# TYPE"), || format!("/metrics: {s} {body:.200}"))
}

pub(super) async fn http_publish_errors(t: &Target) -> Result<(), Fail> {
    let good = r#"{"channel":"repo:a/b","event":"push","data":{}}"#;
    let (s, _) = http(t, "POST", "/api/publish", None, Some(good)).await?;
    check(s == 401, || format!("no key: {s}"))?;
    let (s, _) = http(t, "POST", "/api/publish", Some("Bearer wrong"), Some(good)).await?;
    check(s == 401, || format!("wrong key: {s}"))?;
    let key = format!("Bearer {}", t.publish_key.as_deref().unwrap_or_default());
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

pub(super) async fn http_idempotent_publish(t: &Target) -> Result<(), Fail> {
    let ch = format!("repo:{}/idem", uniq("o"));
    let key = uniq("k");
    let body = json!({"channel": ch, "event": "push", "data": {}, "idempotency_key": key});
    let first = publish_answer(t, body.clone()).await?;
    check(first["seq"].is_u64() && first["duplicate"].is_null(), || format!("first: {first}"))?;
    let again = publish_answer(t, body).await?;
    check(
        again["seq"] == first["seq"] && again["duplicate"] == true && again["delivered"] == 0,
        || format!("a repeat of the key must answer the first seq, duplicate: {again}"),
    )
}
