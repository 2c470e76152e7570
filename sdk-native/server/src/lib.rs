//! # guts-realtime-server
//!
//! The hub server: an [`Engine`] — one node's [`EventHub`], or a cluster of nodes sharing Redis
//! (`RedisBroker`, feature `redis`) — on the network over WebSocket and HTTP, with
//! authentication, authorization, limits and graceful shutdown.
//!
//! Endpoints of [`router`] / [`serve`]:
//!
//! | endpoint | what |
//! |---|---|
//! | `GET /ws` | the WebSocket: `welcome` first, then commands and events (`docs/PROTOCOL.md`) |
//! | `GET /healthz` | `200 ok`; `503 broker unavailable` while the engine cannot do its work ([`Engine::is_up`]: a `RedisBroker` that cannot reach Redis; the node still serves its connections) |
//! | `GET /readyz` | `200 ready` while the server accepts work; `503 draining` from the shutdown signal on, `503 broker unavailable` while the engine is down |
//! | `GET /metrics` | OpenMetrics text (`prometheus-client`): gauges, counters (closes and errors by code among them), histograms (delivery latency, fan-out duration, connection lifetime), `guts_hub_build_info` |
//! | `GET /admin` | the operator's page (HTTP Basic, the publish key as password), polling `GET /admin/api/snapshot` |
//! | `GET /api/stats` | [`HubStats`](guts_realtime::HubStats) as JSON, with `current_subscriptions` |
//! | `POST /api/publish` | `Authorization: Bearer <publish key>`, body `{"channel","event","data"}` → `200 {"seq":N,"delivered":M}` |
//! | `POST /api/notify` | same auth, body a [`Notification`](guts_realtime::Notification) → `200 {"seq":N,"delivered":M}`, or `200 {"suppressed":true,"delivered":0}` when the user's preferences disable its type |
//! | `POST /api/unsubscribe` | same auth, body `{"user","channel"}`: ends the user's subscriptions to the channel (a repository's base channel: all of the repository's) on every node, each told `{"type":"unsubscribed","channel":C,"reason":"revoked"}` → `200 {"revoked":true}` |
//! | `POST /api/disconnect` | same auth, body `{"user"}`: closes every connection of the user on every node with 4003 → `200 {"disconnected":true}` |
//! | `GET /*` | files of [`ServerConfig::static_dir`], if set |
//!
//! HTTP errors are `{"error":"…","code":"…"}` with the protocol's error codes: 400 for bad JSON,
//! an unknown event kind (`invalid_message`) or an invalid channel (`invalid_channel`), 401
//! without or with a wrong key (`unauthenticated`), 403 when the [`Authorizer`] refuses
//! (`forbidden`), 503 when the hub's stream limit is reached (`rate_limited`) or the engine's
//! backend is down (`unavailable`). The key is checked before the body is read; an address that
//! presented ten wrong keys is answered 429 (`Retry-After: 1`, one more try a second); a body not
//! complete within [`ServerConfig::request_body_timeout`] is answered 408 and the connection
//! closed; a request head over [`ServerConfig::max_request_head_bytes`] is answered 431.
//!
//! **Access.** Who reads what is the [`Authorizer`]'s (asynchronous: a decision may ask a
//! database or the platform, and holds only its own connection's commands). The default,
//! [`DefaultAuthorizer`], keeps `repo:` channels for tokens whose `repos` claim grants them
//! ([`RepoAccess::Token`]); [`RepoAccess::Public`] opens them to anyone; [`ProxyAuthorizer`] asks
//! an HTTP endpoint of the platform. [`serve_split`] keeps `/metrics` and `/api/*` off the public
//! listener; [`ServerConfig::allowed_origins`] refuses browsers of other sites.
//!
//! **Connection cap.** When [`EventHub::connect`] fails with `ConnectionLimit`, the upgrade is
//! refused with HTTP 503 and `Retry-After: 5` (the WebSocket never opens, so no close code is
//! involved; browsers report it as a failed connection and the SDK backs off). Refusing before the
//! upgrade costs the hub nothing for the refused client.
//!
//! **Shutdown.** When its shutdown future completes, [`serve`] answers `/readyz` with 503 and
//! goes on serving for [`ServerConfig::drain_timeout`] (so the load balancer stops sending new
//! clients), then stops accepting, sends every WebSocket client close 1012 (after the frames
//! already queued to it) with a `retry_after_ms` hint drawn uniformly over
//! [`ServerConfig::reconnect_spread`] (so the clients come back spread out, not in one storm),
//! lets HTTP requests in flight finish, waits up to [`ServerConfig::shutdown_timeout`] for the
//! clients to go, drops the rest and returns.
//!
//! **Slow request heads.** Under [`serve`], a connection that has not sent a whole request head
//! within [`ServerConfig::request_head_timeout`] (default 10 s) is closed, so half-open or
//! trickling clients cannot hold sockets and tasks (or the shutdown) indefinitely. An embedder of
//! [`router`] sets the equivalent on its own hyper server.
//!
//! **Logs.** The server logs with `tracing` and never logs a token, a key or a frame. tungstenite
//! (through the `log` crate) logs whole frames, `auth` tokens included, at trace level: an
//! embedder that bridges `log` should cap target `tungstenite` at debug, as `guts-hub` does.
//!
//! ```no_run
//! use guts_realtime::EventHub;
//! use guts_realtime_server::{serve, ServerConfig};
//! use std::sync::Arc;
//!
//! # async fn run() -> std::io::Result<()> {
//! let hub = Arc::new(EventHub::new());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:7800").await?;
//! let config = ServerConfig::default().token_secret("s3cret").publish_key("pubkey");
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! // ... keep `stop`; `stop.send(())` (or dropping it) shuts the server down gracefully.
//! # drop(stop);
//! serve(hub, listener, config, async move {
//!     let _ = stopped.await;
//! })
//! .await
//! # }
//! ```

#![warn(missing_docs, missing_debug_implementations)]

mod accept;
mod admin;
mod auth;
#[cfg(feature = "redis")]
mod broker;
mod config;
mod connection;
mod http;
mod metrics;
mod proxy;
mod throttle;

#[cfg(feature = "redis")]
pub use broker::{BrokerError, BrokerMetrics, RedisBroker, RedisConfig};
pub use config::ServerConfig;
pub use guts_realtime::engine::{Engine, EngineFuture, Metric, MetricKind};
pub use guts_realtime::server::{
    authorize_read, default_authorize_publish, default_authorize_subscribe, AuthorizeFuture,
    Authorizer, DefaultAuthorizer, Identity, RateLimit, RepoAccess, User,
};
pub use proxy::ProxyAuthorizer;

use auth::Verifier;
use axum::routing::{any, get, post};
use axum::Router;
use guts_realtime::server::ConnectionShared;
use guts_realtime::{EventHub, InvalidConfig};
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::services::ServeDir;

/// The shutdown phases broadcast to every connection.
pub(crate) const RUNNING: u8 = 0;
/// Close every WebSocket with 1012 (and a spread hint) after its queued frames.
pub(crate) const GRACEFUL: u8 = 1;
/// Drop every remaining connection now.
pub(crate) const FORCED: u8 = 2;

/// Counters of the HTTP side (the connections and the engine count the rest).
#[derive(Debug, Default)]
pub(crate) struct ServerCounters {
    pub(crate) upgrades_refused: AtomicU64,
    pub(crate) http_published: AtomicU64,
    pub(crate) key_failures: AtomicU64,
    pub(crate) key_throttled: AtomicU64,
    pub(crate) http_refused: AtomicU64,
}

/// Everything the handlers share.
pub(crate) struct ServerState {
    pub(crate) engine: Arc<dyn Engine>,
    pub(crate) config: ServerConfig,
    pub(crate) verifier: Verifier,
    pub(crate) shutdown: watch::Sender<u8>,
    /// WebSocket connections registered with the hub and not yet torn down.
    pub(crate) active: AtomicUsize,
    /// Connections of [`serve`] still speaking HTTP (not upgraded, not closed).
    pub(crate) http_open: AtomicUsize,
    pub(crate) counters: ServerCounters,
    /// The config and counters of every connection's rules.
    pub(crate) connections: Arc<ConnectionShared>,
    pub(crate) key_throttle: throttle::KeyThrottle,
    pub(crate) per_address: throttle::PerAddress,
    /// What the server measures itself (latency, lifetimes, closes by code).
    pub(crate) metrics: metrics::ServerMetrics,
    /// The shutdown signal came: `/readyz` answers 503 while clients are still served.
    pub(crate) draining: AtomicBool,
    pub(crate) started: Instant,
}

impl ServerState {
    fn new(engine: Arc<dyn Engine>, config: ServerConfig) -> ServerState {
        let verifier = Verifier::new(
            config.token_secret.as_deref(),
            config.publish_key.as_deref(),
            config.token_issuer.as_deref(),
            config.token_audience.as_deref(),
        );
        let connections = Arc::new(ConnectionShared::new(config.connection_config()));
        ServerState {
            key_throttle: throttle::KeyThrottle::new(),
            per_address: throttle::PerAddress::default(),
            connections,
            engine,
            config,
            verifier,
            shutdown: watch::Sender::new(RUNNING),
            active: AtomicUsize::new(0),
            http_open: AtomicUsize::new(0),
            counters: ServerCounters::default(),
            metrics: metrics::ServerMetrics::default(),
            draining: AtomicBool::new(false),
            started: Instant::now(),
        }
    }

    /// Whether `/readyz` answers 200: the engine is up and the server is not draining.
    pub(crate) fn is_ready(&self) -> bool {
        !self.draining.load(Relaxed) && self.phase() == RUNNING && self.engine.is_up()
    }

    /// This node's connections.
    pub(crate) fn hub(&self) -> &EventHub {
        self.engine.hub()
    }

    pub(crate) fn phase(&self) -> u8 {
        *self.shutdown.borrow()
    }

    /// Waits until every connection (WebSocket or HTTP) is gone or `limit` passed; whether all
    /// are gone.
    async fn wait_connections(&self, limit: Duration) -> bool {
        let now = Instant::now();
        let deadline = now.checked_add(limit).unwrap_or(now + Duration::from_secs(86_400 * 365));
        while self.active.load(Relaxed) + self.http_open.load(Relaxed) > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }
}

/// Which endpoints a router serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Surface {
    /// Every endpoint (one listener).
    All,
    /// What clients use: `/ws`, `/healthz` and the static files.
    Public,
    /// What the platform and operators use: `/healthz`, `/metrics`, `/api/*`.
    Internal,
}

fn routes(state: &Arc<ServerState>, surface: Surface) -> Router {
    let mut router =
        Router::new().route("/healthz", get(http::healthz)).route("/readyz", get(http::readyz));
    if surface != Surface::Internal {
        router = router.route("/ws", get(connection::upgrade));
    }
    if surface == Surface::Public {
        // Not found here, whatever the method (and not the static files' 405).
        let not_found = || async { axum::http::StatusCode::NOT_FOUND };
        router = router
            .route("/metrics", any(not_found))
            .route("/admin", any(not_found))
            .route("/admin/{*rest}", any(not_found))
            .route("/api", any(not_found))
            .route("/api/{*rest}", any(not_found));
    } else {
        router = router
            .route("/metrics", get(metrics::metrics))
            .merge(
                Router::new()
                    .route("/admin", get(admin::page))
                    .route("/admin/api/snapshot", get(admin::snapshot))
                    .route_layer(axum::middleware::from_fn_with_state(
                        state.clone(),
                        admin::require_key,
                    )),
            )
            .route("/api/stats", get(http::stats))
            .route("/api/publish", post(http::publish))
            .route("/api/notify", post(http::notify))
            .route("/api/unsubscribe", post(http::unsubscribe))
            .route("/api/disconnect", post(http::disconnect));
    }
    let mut router = router.with_state(state.clone());
    if let (Some(extra), false) = (&state.config.extra_routes, surface == Surface::Internal) {
        router = router.merge(extra.clone());
    }
    if let (Some(dir), false) = (&state.config.static_dir, surface == Surface::Internal) {
        router = router.fallback_service(ServeDir::new(dir));
    }
    router
}

fn build(engine: Arc<dyn Engine>, config: ServerConfig) -> Arc<ServerState> {
    let state = Arc::new(ServerState::new(engine, config));
    let authorizer = state.config.authorizer.clone();
    state.hub().on_revoke(move |user, channel| authorizer.forget(user, channel));
    state
}

/// The server's routes over `engine` (an `Arc<EventHub>`, or a cluster engine such as a
/// `RedisBroker`), for embedding in an existing axum application. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` to record client addresses. Graceful
/// shutdown with close 1012 needs [`serve`].
///
/// # Errors
/// A config that fails [`ServerConfig::validate`].
pub fn router(engine: Arc<dyn Engine>, config: ServerConfig) -> Result<Router, InvalidConfig> {
    config.validate()?;
    Ok(routes(&build(engine, config), Surface::All))
}

/// Serves `engine` (an `Arc<EventHub>`, or a cluster engine such as a `RedisBroker`) on
/// `listener` until `shutdown` completes, then shuts down gracefully: answers `/readyz` 503 for
/// [`ServerConfig::drain_timeout`], stops accepting, sends every WebSocket client close 1012 with
/// a spread `retry_after_ms` hint, lets every HTTP request in flight finish,
/// waits up to [`ServerConfig::shutdown_timeout`] for all of them to go, drops what remains, and
/// returns. A connection that has not sent a whole request head within
/// [`ServerConfig::request_head_timeout`] is closed.
///
/// # Errors
/// [`io::ErrorKind::InvalidInput`] for a config that fails [`ServerConfig::validate`]. A failed
/// accept (out of file descriptors, a peer that reset first) is logged and retried.
pub async fn serve(
    engine: Arc<dyn Engine>,
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    run(engine, listener, None, config, shutdown).await
}

/// As [`serve`], with the endpoints split over two listeners: `public` serves `/ws`, `/healthz`
/// and the static files (and answers 404 for the rest), `internal` serves `/healthz`,
/// `/readyz`, `/metrics`, `/admin` and `/api/*` — put only `public` where clients reach it.
///
/// # Errors
/// As [`serve`].
pub async fn serve_split(
    engine: Arc<dyn Engine>,
    public: TcpListener,
    internal: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    run(engine, public, Some(internal), config, shutdown).await
}

async fn run(
    engine: Arc<dyn Engine>,
    public: TcpListener,
    internal: Option<TcpListener>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    config.validate().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let state = build(engine, config);
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let drain = state.config.drain_timeout;
    let draining = state.clone();
    let trigger = async move {
        shutdown.await;
        draining.draining.store(true, Relaxed);
        if !drain.is_zero() {
            tracing::info!(secs = drain.as_secs_f64(), "draining: /readyz answers 503");
            tokio::time::sleep(drain).await;
        }
        stop_tx.send_replace(true);
    };
    let public_surface = if internal.is_some() { Surface::Public } else { Surface::All };
    let public_router = routes(&state, public_surface);
    let internal_router = routes(&state, Surface::Internal);
    tokio::join!(
        trigger,
        accept::accept_until(&public, &public_router, &state, stopped(stop_rx.clone())),
        async {
            if let Some(l) = &internal {
                accept::accept_until(l, &internal_router, &state, stopped(stop_rx.clone())).await;
            }
        },
    );
    drop((public, internal));
    tracing::info!(
        connections = state.active.load(Relaxed),
        spread_secs = state.config.reconnect_spread.as_secs_f64(),
        "shutting down: closing every WebSocket with 1012"
    );
    state.shutdown.send_replace(GRACEFUL);
    if !state.wait_connections(state.config.shutdown_timeout).await {
        tracing::warn!(
            websockets = state.active.load(Relaxed),
            http = state.http_open.load(Relaxed),
            "shutdown timeout: dropping the remaining connections"
        );
        state.shutdown.send_replace(FORCED);
        state.wait_connections(Duration::from_secs(1)).await;
    }
    tracing::info!("hub server stopped");
    Ok(())
}
