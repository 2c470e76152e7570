//! The HTTP endpoints: `/healthz`, `/readyz`, `/api/stats`, `/api/publish`, `/api/notify`,
//! `/api/unsubscribe` and `/api/disconnect`. Errors are JSON `{"error":"…","code":"…"}` with the protocol's error codes.

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

/// `GET /readyz`: `200 ready` while the server accepts work (its engine is up and it is not
/// draining), else `503` with the reason.
pub(crate) async fn readyz(State(state): State<Arc<ServerState>>) -> Response {
    if state.draining.load(Relaxed) || state.phase() != super::RUNNING {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else if !state.engine.is_up() {
        (StatusCode::SERVICE_UNAVAILABLE, "broker unavailable\n").into_response()
    } else {
        "ready\n".into_response()
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
