//! The HTTP endpoints: `/healthz`, `/metrics` (Prometheus text), `/api/stats`, `/api/publish` and
//! `/api/notify`. Errors are JSON `{"error":"…","code":"…"}` with the protocol's error codes.

use super::ServerState;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::extract::State;
use axum::http::{header, Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use guts_realtime::server::{publish as publish_as, Identity};
use guts_realtime::{Channel, EventKind, HubStats, Notification, NotifyOutcome, RealtimeError};
use serde::Deserialize;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// `GET /healthz`: `200 ok`, or `503 broker unavailable` while a configured broker cannot reach
/// Redis (the node keeps serving its connections; a load balancer sends new ones elsewhere).
pub(crate) async fn healthz(State(state): State<Arc<ServerState>>) -> Response {
    if state.engine.is_up() {
        "ok".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "broker unavailable\n").into_response()
    }
}

/// `GET /api/stats`: the hub's [`HubStats`] (the seed's four counters) and the subscriptions
/// held now.
pub(crate) async fn stats(State(state): State<Arc<ServerState>>) -> Json<Stats> {
    let current_subscriptions = state.engine.metrics().subscriptions;
    Json(Stats { hub: state.engine.stats(), current_subscriptions })
}

/// The body of `GET /api/stats`.
#[derive(serde::Serialize)]
pub(crate) struct Stats {
    #[serde(flatten)]
    hub: HubStats,
    /// Subscriptions held now (one per connection and channel).
    current_subscriptions: u64,
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(state): State<Arc<ServerState>>) -> Response {
    let m = state.engine.metrics();
    let c = &state.counters;
    let k = &state.connections.counters;
    let mut out = String::with_capacity(4096);
    let mut put = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = write!(
            out,
            "# HELP guts_hub_{name} {help}\n# TYPE guts_hub_{name} {kind}\nguts_hub_{name} {value}\n"
        );
    };
    put("connections", "gauge", "WebSocket connections now.", m.connections as u64);
    put("connections_total", "counter", "Connections ever accepted.", m.total_connections);
    put(
        "connections_rejected_total",
        "counter",
        "Upgrades refused at the connection cap or during shutdown.",
        c.upgrades_refused.load(Relaxed),
    );
    put("subscriptions", "gauge", "Subscriptions held now.", m.subscriptions);
    put("subscriptions_total", "counter", "New subscriptions ever made.", m.total_subscriptions);
    put(
        "events_published_total",
        "counter",
        "Events and notifications published (events in).",
        m.events_published,
    );
    put(
        "http_published_total",
        "counter",
        "Events and notifications published over HTTP.",
        c.http_published.load(Relaxed),
    );
    put(
        "frames_delivered_total",
        "counter",
        "Event frames queued to clients by fan-out (events out).",
        m.frames_delivered,
    );
    put("frames_replayed_total", "counter", "Frames replayed by recovery.", m.frames_replayed);
    put("queue_drops_total", "counter", "Frames refused because a queue was full.", m.queue_drops);
    put(
        "slow_consumer_disconnects_total",
        "counter",
        "Clients closed as slow consumers (4008).",
        m.slow_consumer_disconnects,
    );
    put("streams", "gauge", "Streams (repositories, users, orgs) held now.", m.streams as u64);
    put("history_size", "gauge", "Events held in history now, over all streams.", m.history_size);
    put("commands_total", "counter", "WebSocket text frames received.", k.commands.load(Relaxed));
    put(
        "invalid_messages_total",
        "counter",
        "Frames answered with invalid_message.",
        k.invalid_messages.load(Relaxed),
    );
    put(
        "rate_limited_total",
        "counter",
        "Commands refused by the rate limit.",
        k.rate_limited.load(Relaxed),
    );
    put("forbidden_total", "counter", "Commands refused as forbidden.", k.forbidden.load(Relaxed));
    put(
        "auth_failures_total",
        "counter",
        "Refused tokens (each closed with 4001).",
        k.auth_failures.load(Relaxed),
    );
    put(
        "oversized_closes_total",
        "counter",
        "Connections closed with 1009 for an oversized frame.",
        k.oversized_closes.load(Relaxed),
    );
    put(
        "idle_closes_total",
        "counter",
        "Connections closed for silence past the idle timeout (4009).",
        k.idle_closes.load(Relaxed),
    );
    put(
        "write_stall_closes_total",
        "counter",
        "Connections closed (4008) because their socket accepted nothing for the write-stall timeout.",
        k.write_stalls.load(Relaxed),
    );
    put(
        "token_expired_closes_total",
        "counter",
        "Connections closed (4002) because their token expired.",
        k.token_expired.load(Relaxed),
    );
    put(
        "gap_disconnects_total",
        "counter",
        "Clients disconnected because events of their streams were lost on the way here.",
        m.gap_disconnects,
    );
    put(
        "http_connections_refused_total",
        "counter",
        "TCP connections answered 503 at the cap on connections still speaking HTTP.",
        c.http_refused.load(Relaxed),
    );
    put(
        "http_key_failures_total",
        "counter",
        "HTTP requests with a missing or wrong publish key (401).",
        c.key_failures.load(Relaxed),
    );
    put(
        "http_key_throttled_total",
        "counter",
        "HTTP requests refused (429) after too many wrong keys from their address.",
        c.key_throttled.load(Relaxed),
    );
    for x in state.engine.extra_metrics() {
        put(x.name, x.kind.as_str(), x.help, x.value);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out).into_response()
}

/// An error answer: `{"error": message, "code": code}`.
fn error(status: StatusCode, e: &RealtimeError) -> Response {
    let body = serde_json::json!({"error": e.to_string(), "code": e.code().as_str()});
    let mut resp = (status, Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    }
    resp
}

fn status_of(e: &RealtimeError) -> StatusCode {
    match e {
        RealtimeError::InvalidChannel(_) | RealtimeError::InvalidMessage(_) => {
            StatusCode::BAD_REQUEST
        }
        RealtimeError::Forbidden(_) => StatusCode::FORBIDDEN,
        RealtimeError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        RealtimeError::RateLimited(_)
        | RealtimeError::ConnectionLimit(_)
        | RealtimeError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Checks `Authorization: Bearer <publish key>`.
fn check_key(state: &ServerState, headers: &HeaderMap) -> Result<(), RealtimeError> {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match key {
        Some(k) if state.verifier.is_publish_key(k) => Ok(()),
        _ => Err(RealtimeError::Unauthenticated(
            "missing or wrong publish key (Authorization: Bearer <key>)".into(),
        )),
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, RealtimeError> {
    serde_json::from_slice(body)
        .map_err(|e| RealtimeError::InvalidMessage(format!("bad body: {e}")))
}

#[derive(Deserialize)]
struct PublishBody {
    channel: String,
    event: EventKind,
    #[serde(default)]
    data: serde_json::Value,
    /// Published once per key and channel within the history window.
    #[serde(default)]
    idempotency_key: Option<String>,
}

/// The body of a request with the publish key, read only after the key was checked (a client
/// without it never gets the hub to read, or wait for, its body), up to
/// [`ServerConfig::max_frame_bytes`](crate::ServerConfig::max_frame_bytes) and within
/// [`ServerConfig::request_body_timeout`](crate::ServerConfig::request_body_timeout) (408, and
/// the connection closed, after it).
async fn keyed_body(
    state: &ServerState,
    headers: &HeaderMap,
    extensions: &Extensions,
    body: Body,
) -> Result<Bytes, Response> {
    let peer = extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    if peer.is_some_and(|ip| !state.key_throttle.may_try(ip)) {
        state.counters.key_throttled.fetch_add(1, Relaxed);
        let e = RealtimeError::RateLimited("too many wrong publish keys from this address".into());
        let mut resp = error(StatusCode::TOO_MANY_REQUESTS, &e);
        resp.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return Err(resp);
    }
    if let Err(e) = check_key(state, headers) {
        state.counters.key_failures.fetch_add(1, Relaxed);
        if let Some(ip) = peer {
            state.key_throttle.failed(ip);
        }
        return Err(error(status_of(&e), &e));
    }
    let read = axum::body::to_bytes(body, state.config.max_frame_bytes);
    let Ok(read) = tokio::time::timeout(state.config.request_body_timeout, read).await else {
        let e = RealtimeError::InvalidMessage("body not complete in time".into());
        let mut resp = error(StatusCode::REQUEST_TIMEOUT, &e);
        resp.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
        return Err(resp);
    };
    match read {
        Ok(bytes) => Ok(bytes),
        Err(e) => {
            let too_big = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            let (status, why) = if too_big {
                (StatusCode::PAYLOAD_TOO_LARGE, "body larger than the hub's max_frame_bytes")
            } else {
                (StatusCode::BAD_REQUEST, "body could not be read")
            };
            Err(error(status, &RealtimeError::InvalidMessage(why.into())))
        }
    }
}

/// A request with the publish key whose body is the JSON of a `T`: `run` it, and answer what it
/// returns as JSON, or its error.
async fn keyed_json<T, R, Fut>(
    state: &ServerState,
    headers: &HeaderMap,
    extensions: &Extensions,
    body: Body,
    run: impl FnOnce(T) -> Fut,
) -> Response
where
    T: serde::de::DeserializeOwned,
    R: serde::Serialize,
    Fut: std::future::Future<Output = Result<R, RealtimeError>>,
{
    let body = match keyed_body(state, headers, extensions, body).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let result = match parse::<T>(&body) {
        Ok(req) => run(req).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(reply) => Json(reply).into_response(),
        Err(e) => error(status_of(&e), &e),
    }
}

/// `POST /api/publish`.
pub(crate) async fn publish(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    extensions: Extensions,
    body: Body,
) -> Response {
    let state = &*state;
    keyed_json(state, &headers, &extensions, body, move |req: PublishBody| async move {
        let (engine, authorizer) = (&*state.engine, &*state.config.authorizer);
        let who = &Identity::PublishKey;
        let event = (req.event, req.data, req.idempotency_key);
        let (_, p) = publish_as(engine, authorizer, who, &req.channel, event).await?;
        state.counters.http_published.fetch_add(1, Relaxed);
        Ok(p)
    })
    .await
}

/// `POST /api/notify`.
pub(crate) async fn notify(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    extensions: Extensions,
    body: Body,
) -> Response {
    let state = &*state;
    keyed_json(state, &headers, &extensions, body, move |note: Notification| async move {
        let ch = Channel::user(&note.user_id)?;
        state.config.authorizer.authorize_publish(&Identity::PublishKey, &ch).await?;
        Ok(match state.engine.notify(note).await? {
            NotifyOutcome::Delivered(p) => {
                state.counters.http_published.fetch_add(1, Relaxed);
                serde_json::to_value(p).unwrap_or_default()
            }
            NotifyOutcome::Suppressed => serde_json::json!({"suppressed": true, "delivered": 0}),
        })
    })
    .await
}

#[derive(Deserialize)]
struct UnsubscribeBody {
    user: String,
    channel: String,
}

#[derive(Deserialize)]
struct DisconnectBody {
    user: String,
}

/// `POST /api/unsubscribe` `{"user","channel"}`: ends the user's subscriptions to the channel on
/// every node (a repository's base channel: all of its channels), each told
/// `{"type":"unsubscribed","channel":C,"reason":"revoked"}`, and drops the authorizer's cached
/// decisions for them. `200 {"revoked":true}`.
pub(crate) async fn unsubscribe(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    extensions: Extensions,
    body: Body,
) -> Response {
    let state = &*state;
    keyed_json(state, &headers, &extensions, body, move |req: UnsubscribeBody| async move {
        let ch = Channel::parse(&req.channel)?;
        state.engine.revoke(&req.user, &ch).await?;
        Ok(serde_json::json!({"revoked": true}))
    })
    .await
}

/// `POST /api/disconnect` `{"user"}`: closes every connection of the user on every node with
/// 4003. `200 {"disconnected":true}`.
pub(crate) async fn disconnect(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    extensions: Extensions,
    body: Body,
) -> Response {
    let state = &*state;
    keyed_json(state, &headers, &extensions, body, move |req: DisconnectBody| async move {
        state.engine.disconnect_user(&req.user).await?;
        Ok(serde_json::json!({"disconnected": true}))
    })
    .await
}
