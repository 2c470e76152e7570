//! The operator's page, `GET /admin` (one self-contained HTML file, `admin.html`), and the
//! snapshot it polls, `GET /admin/api/snapshot`. Both answer only to HTTP Basic authentication
//! with the publish key as the password (any user name); they are served on the internal
//! listener when there is one.

use super::ServerState;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, Extensions, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use guts_realtime::{CloseCode, ErrorCode};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// The page.
const PAGE: &str = include_str!("admin.html");

/// Streams listed per ranking (by subscribers, by events): the page shows the top ten of each.
const TOP: usize = 20;

/// Presence channels listed (those with the most members), and members listed per channel.
const TOP_PRESENCE: usize = 50;

/// The layer of both admin routes: 401 with a Basic challenge unless the request carries the
/// publish key as its Basic password.
pub(crate) async fn require_key(
    State(state): State<Arc<ServerState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if authorized(&state, request.headers(), request.extensions()) {
        next.run(request).await
    } else {
        denied()
    }
}

/// `GET /admin`.
pub(crate) async fn page() -> Response {
    let csp = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
               connect-src 'self'; img-src data:; frame-ancestors 'none'";
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp)),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    ];
    (headers, PAGE).into_response()
}

/// The body of `GET /admin/api/snapshot`: gauges now, counters since the start (the page
/// derives rates from two snapshots).
#[derive(Debug, Serialize)]
pub(crate) struct Snapshot {
    version: &'static str,
    epoch: String,
    uptime_secs: f64,
    ready: bool,
    draining: bool,
    connections: usize,
    subscriptions: u64,
    events_published: u64,
    frames_delivered: u64,
    /// The top streams by subscribers and by events here.
    channels: Vec<guts_realtime::ChannelActivity>,
    /// Closed connections per close code.
    closes: BTreeMap<String, u64>,
    /// The registry's name of each code in `closes` (`CloseCode::name`).
    close_names: BTreeMap<String, &'static str>,
    /// Error frames sent per error code (codes never sent are left out).
    errors: BTreeMap<&'static str, u64>,
    /// Presence on this node: the channels with the most members here (at most
    /// [`TOP_PRESENCE`]).
    presence: Vec<PresenceChannel>,
}

#[derive(Debug, Serialize)]
struct PresenceChannel {
    channel: String,
    /// Users present here (`members` lists at most [`TOP_PRESENCE`], most connections first).
    count: usize,
    members: Vec<PresenceUser>,
}

#[derive(Debug, Serialize)]
struct PresenceUser {
    user: String,
    connections: u32,
}

/// `GET /admin/api/snapshot`.
pub(crate) async fn snapshot(State(state): State<Arc<ServerState>>) -> Response {
    let hub = state.hub();
    let m = state.engine.metrics();
    let mut all = hub.channel_activity();
    all.sort_by(|a, b| b.subscribers.cmp(&a.subscribers).then(a.channel.cmp(&b.channel)));
    let mut channels: Vec<_> = all.iter().take(TOP).cloned().collect();
    all.sort_by(|a, b| b.events.cmp(&a.events).then(a.channel.cmp(&b.channel)));
    for c in all.into_iter().take(TOP) {
        if !channels.iter().any(|x| x.channel == c.channel) {
            channels.push(c);
        }
    }
    let mut by_channel: BTreeMap<String, Vec<PresenceUser>> = BTreeMap::new();
    for (channel, user, connections) in hub.local_presence() {
        let users = by_channel.entry(channel.to_string()).or_default();
        users.push(PresenceUser { user, connections });
    }
    let mut presence: Vec<PresenceChannel> = by_channel
        .into_iter()
        .map(|(channel, mut members)| {
            members.sort_by(|a, b| b.connections.cmp(&a.connections).then(a.user.cmp(&b.user)));
            let count = members.len();
            members.truncate(TOP_PRESENCE);
            PresenceChannel { channel, count, members }
        })
        .collect();
    presence.sort_by(|a, b| b.count.cmp(&a.count).then(a.channel.cmp(&b.channel)));
    presence.truncate(TOP_PRESENCE);
    let counters = &state.connections.counters;
    let errors = ErrorCode::ALL
        .into_iter()
        .map(|code| (code.as_str(), counters.errors(code)))
        .filter(|(_, n)| *n > 0)
        .collect();
    let closes = state.metrics.closes();
    let label = |code: u16| if code == 0 { "other".to_owned() } else { code.to_string() };
    let snapshot = Snapshot {
        version: env!("CARGO_PKG_VERSION"),
        epoch: hub.epoch(),
        uptime_secs: state.started.elapsed().as_secs_f64(),
        ready: state.is_ready(),
        draining: state.draining.load(Relaxed),
        connections: m.connections,
        subscriptions: m.subscriptions,
        events_published: m.events_published,
        frames_delivered: m.frames_delivered,
        channels,
        closes: closes.iter().map(|(k, v)| (label(*k), *v)).collect(),
        close_names: closes.keys().map(|k| (label(*k), CloseCode(*k).name())).collect(),
        errors,
        presence,
    };
    let mut resp = Json(snapshot).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Whether `Authorization: Basic base64(user:publish key)` is there (never when the server has
/// no publish key). A wrong password counts as a wrong publish key, against the same per-address
/// throttle: after ten, one try a second.
fn authorized(state: &ServerState, headers: &HeaderMap, extensions: &Extensions) -> bool {
    let peer = extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    if peer.is_some_and(|ip| !state.key_throttle.may_try(ip)) {
        state.counters.key_throttled.fetch_add(1, Relaxed);
        return false;
    }
    let password = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| decode_base64(b64.trim()))
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| pair.split_once(':').map(|(_, p)| p.to_owned()));
    if password.as_deref().is_some_and(|p| state.verifier.is_publish_key(p)) {
        return true;
    }
    if password.is_some() {
        state.counters.key_failures.fetch_add(1, Relaxed);
        if let Some(ip) = peer {
            state.key_throttle.failed(ip);
        }
    }
    false
}

/// 401 with a Basic challenge (the browser asks for the credentials).
fn denied() -> Response {
    let challenge = HeaderValue::from_static("Basic realm=\"guts-hub admin\", charset=\"UTF-8\"");
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, challenge)], "unauthorized\n")
        .into_response()
}

/// Standard base64 (with or without padding); `None` if malformed.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let text = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for &c in text {
        acc = (acc << 6) | u32::from(value(c)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::decode_base64;

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(decode_base64("YWRtaW46a2V5").unwrap(), b"admin:key");
        assert_eq!(decode_base64("YTpi").unwrap(), b"a:b");
        assert_eq!(decode_base64("YQ==").unwrap(), b"a");
        assert_eq!(decode_base64("YQ").unwrap(), b"a");
        assert!(decode_base64("a b").is_none());
    }
}
