//! `guts-hub`: the reference hub server. An [`EventHub`] served over WebSocket and HTTP by
//! `guts_realtime_server`, with the demo page at `/`.
//!
//! Needs a token secret and a publish key (flags, environment or files); `--dev` and `--demo`
//! generate the missing ones and print them. Prints a line `guts-hub listening on http://ADDR`
//! (and `guts-hub internal on http://ADDR` with `--internal-listen`) to stdout; logs go to
//! stderr (`RUST_LOG`, default `info`). A configuration error exits with status 2, naming the
//! setting. SIGINT or SIGTERM shuts it down gracefully (every client gets close 1001) and it
//! exits 0.
//!
//! With `--broker redis://HOST:PORT` several `guts-hub` processes behind a load balancer share
//! fan-out and history through Redis (see `docs/DEPLOY.md`).

mod config_file;

use clap::{CommandFactory, FromArgMatches, Parser};
use guts_realtime::{EventHub, EventKind, HubConfig};
use guts_realtime_server::{
    serve, serve_split, DefaultAuthorizer, Engine, ProxyAuthorizer, RateLimit, RedisBroker,
    RedisConfig, RepoAccess, ServerConfig,
};
use serde_json::json;
use std::ffi::OsString;
use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// The Guts real-time hub: WebSocket at /ws, HTTP publish at /api/publish, demo page at /.
#[derive(Debug, Parser)]
#[command(version, args_override_self = true)]
struct Args {
    /// TOML file of settings: keys are the flags' names (`max_connections = 5000`). Flags and
    /// environment variables override it.
    #[arg(long, env = "GUTS_HUB_CONFIG")]
    config: Option<PathBuf>,
    /// Print the effective configuration (as a file for --config; secrets masked) and exit.
    #[arg(long)]
    print_config: bool,
    /// Log format on stderr: `text` (colours only on a terminal) or `json` (one object per
    /// line). Levels from `RUST_LOG` (default `info`).
    #[arg(long, env = "GUTS_HUB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Address to listen on (port 0 picks a free port; the real one is printed).
    #[arg(long, env = "GUTS_HUB_LISTEN", default_value = "127.0.0.1:7800")]
    listen: String,
    /// Address of the internal listener: when set, `/metrics` and `/api/*` are served only
    /// there, and the public listener keeps `/ws`, `/healthz` and the demo page.
    #[arg(long, env = "GUTS_HUB_INTERNAL_LISTEN")]
    internal_listen: Option<String>,
    /// HS256 secret of client tokens (JWT claims sub, exp, orgs, repos, publish); at least 32
    /// bytes unless --dev.
    #[arg(long, env = "GUTS_HUB_TOKEN_SECRET", hide_env_values = true)]
    token_secret: Option<String>,
    /// File holding the token secret (surrounding whitespace ignored).
    #[arg(long, env = "GUTS_HUB_TOKEN_SECRET_FILE", conflicts_with = "token_secret")]
    token_secret_file: Option<PathBuf>,
    /// Key that grants publish rights (HTTP Bearer or WebSocket auth token).
    #[arg(long, env = "GUTS_HUB_PUBLISH_KEY", hide_env_values = true)]
    publish_key: Option<String>,
    /// File holding the publish key (surrounding whitespace ignored).
    #[arg(long, env = "GUTS_HUB_PUBLISH_KEY_FILE", conflicts_with = "publish_key")]
    publish_key_file: Option<PathBuf>,
    /// Development mode: generate the token secret and publish key that are not given, and
    /// print them.
    #[arg(long, env = "GUTS_HUB_DEV")]
    dev: bool,
    /// Who reads `repo:` channels: `token` (tokens whose `repos` claim grants the repository),
    /// `public` (anyone) or `proxy` (asks --authorize-url for what the token does not grant).
    /// Default `token`; `public` with --demo.
    #[arg(long, env = "GUTS_HUB_REPO_ACCESS", value_enum)]
    repo_access: Option<RepoAccessMode>,
    /// With --repo-access proxy: the platform's endpoint, POSTed
    /// `{"user","orgs","channel"}`, answering `{"allow": true|false}`.
    #[arg(long, env = "GUTS_HUB_AUTHORIZE_URL")]
    authorize_url: Option<String>,
    /// Milliseconds the authorize endpoint may take (then: error `unavailable`).
    #[arg(long, env = "GUTS_HUB_AUTHORIZE_TIMEOUT_MS", default_value_t = 2000)]
    authorize_timeout_ms: u64,
    /// Seconds a decision of the authorize endpoint is reused per (user, repository); 0: never.
    #[arg(long, env = "GUTS_HUB_AUTHORIZE_CACHE_SECS", value_parser = seconds, default_value_t = 30.0)]
    authorize_cache_secs: f64,
    /// Browser origins allowed to open a WebSocket, comma-separated `scheme://host[:port]`, or
    /// `*`; others get HTTP 403. Requests without `Origin` are allowed. Default: any.
    #[arg(long, env = "GUTS_HUB_ALLOWED_ORIGINS", value_delimiter = ',')]
    allowed_origins: Option<Vec<String>>,
    /// When set, a client token's `iss` claim must be this.
    #[arg(long, env = "GUTS_HUB_TOKEN_ISSUER")]
    token_issuer: Option<String>,
    /// When set, a client token's `aud` claim must be (or contain) this.
    #[arg(long, env = "GUTS_HUB_TOKEN_AUDIENCE")]
    token_audience: Option<String>,
    /// Most WebSocket connections at once; more are refused with HTTP 503.
    #[arg(long, env = "GUTS_HUB_MAX_CONNECTIONS", default_value_t = HubConfig::default().max_connections)]
    max_connections: usize,
    /// Most WebSocket connections from one client address (0: no cap). For hubs that clients
    /// reach directly: behind a proxy every client has the proxy's address.
    #[arg(long, env = "GUTS_HUB_MAX_CONNECTIONS_PER_IP",
          default_value_t = ServerConfig::default().max_connections_per_ip)]
    max_connections_per_ip: usize,
    /// Most connections still speaking HTTP (not upgraded); beyond it: 503 and closed.
    #[arg(long, env = "GUTS_HUB_MAX_HTTP_CONNECTIONS",
          default_value_t = ServerConfig::default().max_http_connections)]
    max_http_connections: usize,
    /// Most connections authenticated as one user (0: no cap); beyond it close 4503.
    #[arg(long, env = "GUTS_HUB_MAX_CONNECTIONS_PER_USER",
          default_value_t = ServerConfig::default().max_connections_per_user)]
    max_connections_per_user: usize,
    /// Emit synthetic events every second on a few `repo:demo/…` channels.
    #[arg(long, env = "GUTS_HUB_DEMO")]
    demo: bool,
    /// Events kept per stream for recovery.
    #[arg(long, env = "GUTS_HUB_HISTORY_SIZE", default_value_t = HubConfig::default().history_size)]
    history_size: usize,
    /// Most events one subscribe replays (more: `recovered: false`, the client reports a gap).
    #[arg(long, env = "GUTS_HUB_MAX_REPLAY_EVENTS", default_value_t = HubConfig::default().max_replay_events)]
    max_replay_events: usize,
    /// Most bytes one subscribe replays.
    #[arg(long, env = "GUTS_HUB_MAX_REPLAY_BYTES", default_value_t = HubConfig::default().max_replay_bytes)]
    max_replay_bytes: usize,
    /// Seconds an event stays recoverable.
    #[arg(long, env = "GUTS_HUB_HISTORY_TTL_SECS", value_parser = seconds, default_value_t = HubConfig::default().history_ttl.as_secs_f64())]
    history_ttl_secs: f64,
    /// Frames a client's outbound queue holds before it is closed as a slow consumer (4008).
    #[arg(long, env = "GUTS_HUB_QUEUE_CAPACITY", default_value_t = HubConfig::default().queue_capacity)]
    queue_capacity: usize,
    /// Most new channels (streams nothing was published on) one connection makes by subscribing;
    /// more are answered `rate_limited`.
    #[arg(long, env = "GUTS_HUB_MAX_CHANNELS_PER_CONNECTION", default_value_t = HubConfig::default().max_channels_per_connection)]
    max_channels_per_connection: usize,
    /// Bytes a client's outbound queue holds before it is closed as a slow consumer (4008).
    #[arg(long, env = "GUTS_HUB_MAX_QUEUE_BYTES", default_value_t = HubConfig::default().max_queue_bytes)]
    max_queue_bytes: usize,
    /// Seconds a socket may accept nothing while frames wait for it (then: close 4008).
    #[arg(long, alias = "write-stall-timeout", env = "GUTS_HUB_WRITE_STALL_SECS", value_parser = seconds, default_value_t = ServerConfig::default().write_stall_timeout.as_secs_f64())]
    write_stall_secs: f64,
    /// Largest inbound WebSocket message and HTTP body in bytes (bigger: close 1009 / 413).
    #[arg(long, env = "GUTS_HUB_MAX_FRAME_BYTES", default_value_t = ServerConfig::default().max_frame_bytes)]
    max_frame_bytes: usize,
    /// Per-connection WebSocket read buffer in bytes (it grows for a larger frame; every idle
    /// connection pays it).
    #[arg(long, alias = "read-buffer-size", env = "GUTS_HUB_READ_BUFFER_BYTES", default_value_t = ServerConfig::default().read_buffer_size)]
    read_buffer_bytes: usize,
    /// Bytes the WebSocket writer buffers before it writes to the socket.
    #[arg(long, alias = "write-buffer-size", env = "GUTS_HUB_WRITE_BUFFER_BYTES", default_value_t = ServerConfig::default().write_buffer_size)]
    write_buffer_bytes: usize,
    /// Most queued frames one write (one flush) takes.
    #[arg(long, env = "GUTS_HUB_WRITE_BATCH", default_value_t = ServerConfig::default().write_batch)]
    write_batch: usize,
    /// Commands per second per connection (0 disables the limit; publishers have their own).
    #[arg(long, env = "GUTS_HUB_COMMANDS_PER_SEC", default_value_t = ServerConfig::default().rate_limit.map_or(0.0, |r| r.per_second))]
    commands_per_sec: f64,
    /// Command burst per connection.
    #[arg(long, env = "GUTS_HUB_COMMAND_BURST", default_value_t = ServerConfig::default().rate_limit.map_or(0.0, |r| r.burst))]
    command_burst: f64,
    /// Commands per second per connection with publish rights (0 disables the limit).
    #[arg(long, env = "GUTS_HUB_PUBLISHER_COMMANDS_PER_SEC", default_value_t = ServerConfig::default().publisher_rate_limit.map_or(0.0, |r| r.per_second))]
    publisher_commands_per_sec: f64,
    /// Command burst per connection with publish rights.
    #[arg(long, env = "GUTS_HUB_PUBLISHER_COMMAND_BURST", default_value_t = ServerConfig::default().publisher_rate_limit.map_or(0.0, |r| r.burst))]
    publisher_command_burst: f64,
    /// Seconds between server pings.
    #[arg(long, alias = "ping-interval", env = "GUTS_HUB_PING_INTERVAL_SECS", value_parser = seconds, default_value_t = ServerConfig::default().ping_interval.as_secs_f64())]
    ping_interval_secs: f64,
    /// Signals per second per connection (on top of the command rate limit).
    #[arg(long, env = "GUTS_HUB_SIGNALS_PER_SEC", default_value_t = ServerConfig::default().signal_rate_limit.per_second)]
    signals_per_sec: f64,
    /// Signal burst per connection.
    #[arg(long, env = "GUTS_HUB_SIGNAL_BURST", default_value_t = ServerConfig::default().signal_rate_limit.burst)]
    signal_burst: f64,
    /// Seconds of silence (no frame, no pong) after which a client is closed with 4009.
    #[arg(long, alias = "idle-timeout", env = "GUTS_HUB_IDLE_TIMEOUT_SECS", value_parser = seconds, default_value_t = ServerConfig::default().idle_timeout.as_secs_f64())]
    idle_timeout_secs: f64,
    /// Seconds a closing connection waits for the client's close frame before it is dropped.
    #[arg(long, alias = "close-timeout", env = "GUTS_HUB_CLOSE_TIMEOUT_SECS", value_parser = seconds, default_value_t = ServerConfig::default().close_timeout.as_secs_f64())]
    close_timeout_secs: f64,
    /// Seconds the shutdown waits for clients to take their close (and HTTP requests to finish)
    /// before it drops what remains.
    #[arg(long, alias = "shutdown-timeout", env = "GUTS_HUB_SHUTDOWN_TIMEOUT_SECS", value_parser = seconds, default_value_t = ServerConfig::default().shutdown_timeout.as_secs_f64())]
    shutdown_timeout_secs: f64,
    /// On SIGTERM: seconds `/readyz` answers 503 (so the load balancer stops sending new clients)
    /// before the clients are closed.
    #[arg(long, alias = "drain-timeout", env = "GUTS_HUB_DRAIN_SECS", value_parser = seconds, default_value_t = ServerConfig::default().drain_timeout.as_secs_f64())]
    drain_secs: f64,
    /// On shutdown every client is closed with 1012 and a `retry_after_ms` hint spread uniformly
    /// over this many seconds, so that they do not all come back at once (0: no hint).
    #[arg(long, alias = "reconnect-spread", env = "GUTS_HUB_RECONNECT_SPREAD_SECS", value_parser = seconds, default_value_t = ServerConfig::default().reconnect_spread.as_secs_f64())]
    reconnect_spread_secs: f64,
    /// Seconds a new connection may take to send its whole request head (the WebSocket
    /// handshake included) before it is closed.
    #[arg(long, alias = "request-head-timeout", env = "GUTS_HUB_REQUEST_HEAD_TIMEOUT_SECS", value_parser = seconds,
          default_value_t = ServerConfig::default().request_head_timeout.as_secs_f64())]
    request_head_timeout_secs: f64,
    /// Seconds a publish or notify request may take to send its body (then: 408, closed).
    #[arg(long, alias = "request-body-timeout", env = "GUTS_HUB_REQUEST_BODY_TIMEOUT_SECS", value_parser = seconds,
          default_value_t = ServerConfig::default().request_body_timeout.as_secs_f64())]
    request_body_timeout_secs: f64,
    /// Largest HTTP request head in bytes (bigger: 431); at least 8192.
    #[arg(long, env = "GUTS_HUB_MAX_REQUEST_HEAD_BYTES",
          default_value_t = ServerConfig::default().max_request_head_bytes)]
    max_request_head_bytes: usize,
    /// Redis URL (`redis://127.0.0.1:6379`): share fan-out, seq numbering and history with the
    /// other hubs on the same Redis. Without it the hub is alone, in memory.
    #[arg(long, env = "GUTS_HUB_BROKER")]
    broker: Option<String>,
    /// Prefix of the broker's Redis keys and topics (hubs sharing a prefix form one cluster).
    #[arg(long, env = "GUTS_HUB_BROKER_PREFIX", default_value_t = RedisConfig::new("").prefix)]
    broker_prefix: String,
    /// Seconds a node stays subscribed to a stream's Redis topic after its last local subscriber
    /// left.
    #[arg(long, env = "GUTS_HUB_BROKER_GRACE_SECS", value_parser = seconds, default_value_t = RedisConfig::new("").unsubscribe_grace.as_secs_f64())]
    broker_grace_secs: f64,
    /// Listen backlog: connections the kernel holds before they are accepted (a reconnect storm
    /// arrives at once; the kernel caps it at `net.core.somaxconn`).
    #[arg(long, env = "GUTS_HUB_BACKLOG", default_value_t = 4096)]
    backlog: u32,
    /// Least milliseconds between two writes to one connection (0: write at once). Frames queued
    /// meanwhile share one write: less CPU per delivery on a busy hub, up to this much latency
    /// for a connection that gets more than one frame per interval.
    #[arg(long, env = "GUTS_HUB_WRITE_INTERVAL_MS", value_parser = seconds, default_value_t = ServerConfig::default().write_interval.as_secs_f64() * 1000.0)]
    write_interval_ms: f64,
    /// Directory served at `/`.
    #[arg(long, env = "GUTS_HUB_WEB_DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/web"))]
    web_dir: PathBuf,
}

/// A flag's number of seconds (or milliseconds): finite, not negative, at most a year.
fn seconds(text: &str) -> Result<f64, String> {
    let v: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if v.is_finite() && (0.0..=1e12).contains(&v) {
        Ok(v)
    } else {
        Err("expected a number of seconds, at least 0".to_owned())
    }
}

fn secs(v: f64) -> Duration {
    Duration::try_from_secs_f64(v).unwrap_or_default()
}

fn invalid(e: guts_realtime::InvalidConfig) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, e)
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// `--repo-access`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum RepoAccessMode {
    Token,
    Public,
    Proxy,
}

fn generated() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A secret from its flag (or env) or its file; generated and printed in dev mode; otherwise a
/// configuration error naming the flags.
fn secret(
    value: &Option<String>,
    file: &Option<PathBuf>,
    dev: bool,
    what: &str,
    flag: &str,
    out: &mut impl std::io::Write,
) -> std::io::Result<String> {
    if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
        return Ok(v.clone());
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            let msg = format!("{flag}-file {}: {e}", path.display());
            std::io::Error::new(std::io::ErrorKind::InvalidInput, msg)
        })?;
        let v = text.trim();
        if v.is_empty() {
            let msg = format!("{flag}-file {}: the file is empty", path.display());
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, msg));
        }
        return Ok(v.to_owned());
    }
    if dev {
        let v = generated();
        let _ = writeln!(out, "guts-hub: generated {what}: {v}");
        return Ok(v);
    }
    let msg = format!(
        "no {what}: give {flag} (or {flag}-file, or the environment variables), or run with \
         --dev to generate one"
    );
    Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, msg))
}

/// The command line merged with the `--config` file, and the printed configuration if
/// `--print-config`. Exits on a usage error (2), `--help` or `--version` (0).
fn parse_args() -> Result<(Args, Option<String>), String> {
    let cmd = Args::command();
    let argv: Vec<OsString> = std::env::args_os().collect();
    let first = cmd.clone().try_get_matches_from(&argv).unwrap_or_else(|e| e.exit());
    let mut file = config_file::FileSettings::default();
    let matches = match first.get_one::<PathBuf>("config") {
        None => first,
        Some(path) => {
            file = config_file::read(&cmd, path)?;
            let merged = argv.iter().take(1).chain(&file.args).chain(argv.iter().skip(1));
            cmd.clone().try_get_matches_from(merged).unwrap_or_else(|e| e.exit())
        }
    };
    let printed =
        matches.get_flag("print_config").then(|| config_file::print(&cmd, &matches, &file));
    let args = Args::from_arg_matches(&matches).map_err(|e| e.to_string())?;
    Ok((args, printed))
}

/// Logs to stderr as text (ANSI colours only on a terminal) or JSON lines.
fn init_logs(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).init(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok((_, Some(printed))) => {
            print!("{printed}");
            return ExitCode::SUCCESS;
        }
        Ok((args, None)) => args,
        Err(e) => {
            eprintln!("guts-hub: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    init_logs(args.log_format);
    // No `log` bridge (tracing-subscriber without its `tracing-log` feature): tungstenite's
    // `log` records, whole frames with `auth` tokens among them at trace level, never reach the
    // output, and each of its per-frame `trace!` calls costs one atomic load, not a trip through
    // the filter (that was 5 % of the hub's CPU under fan-out).
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            eprintln!("guts-hub: invalid configuration: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("guts-hub: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let dev = args.dev || args.demo;
    let token_secret = secret(
        &args.token_secret,
        &args.token_secret_file,
        dev,
        "token secret",
        "--token-secret",
        &mut out,
    )?;
    if token_secret.len() < 32 && !dev {
        let msg = format!(
            "the token secret is {} bytes: --token-secret needs at least 32 bytes (random; e.g. \
             `openssl rand -hex 32`), or run with --dev",
            token_secret.len()
        );
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, msg));
    }
    let publish_key = secret(
        &args.publish_key,
        &args.publish_key_file,
        dev,
        "publish key",
        "--publish-key",
        &mut out,
    )?;
    let mode = args.repo_access.unwrap_or(if args.demo {
        RepoAccessMode::Public
    } else {
        RepoAccessMode::Token
    });
    let hub_config = HubConfig::default()
        .max_connections(args.max_connections)
        .history_size(args.history_size)
        .max_replay_events(args.max_replay_events)
        .max_replay_bytes(args.max_replay_bytes)
        .history_ttl(secs(args.history_ttl_secs))
        .queue_capacity(args.queue_capacity)
        .max_queue_bytes(args.max_queue_bytes)
        .max_channels_per_connection(args.max_channels_per_connection);
    hub_config.validate().map_err(invalid)?;
    let hub = Arc::new(EventHub::with_config(hub_config));
    let rate = (args.commands_per_sec > 0.0)
        .then(|| RateLimit::new(args.commands_per_sec, args.command_burst));
    let mut config =
        ServerConfig::default()
            .token_secret(token_secret)
            .publish_key(publish_key.clone())
            .token_issuer(args.token_issuer.clone())
            .token_audience(args.token_audience.clone())
            .max_frame_bytes(args.max_frame_bytes)
            .read_buffer_size(args.read_buffer_bytes)
            .rate_limit(rate)
            .publisher_rate_limit((args.publisher_commands_per_sec > 0.0).then(|| {
                RateLimit::new(args.publisher_commands_per_sec, args.publisher_command_burst)
            }))
            .ping_interval(secs(args.ping_interval_secs))
            .idle_timeout(secs(args.idle_timeout_secs))
            .write_stall_timeout(secs(args.write_stall_secs))
            .request_head_timeout(secs(args.request_head_timeout_secs))
            .max_request_head_bytes(args.max_request_head_bytes)
            .max_connections_per_ip(args.max_connections_per_ip)
            .max_http_connections(args.max_http_connections)
            .max_connections_per_user(args.max_connections_per_user)
            .request_body_timeout(secs(args.request_body_timeout_secs))
            .close_timeout(secs(args.close_timeout_secs))
            .shutdown_timeout(secs(args.shutdown_timeout_secs))
            .drain_timeout(secs(args.drain_secs))
            .reconnect_spread(secs(args.reconnect_spread_secs))
            .write_buffer_size(args.write_buffer_bytes)
            .write_batch(args.write_batch)
            .signal_rate_limit(RateLimit::new(args.signals_per_sec, args.signal_burst))
            .write_interval(
                Duration::try_from_secs_f64(args.write_interval_ms / 1000.0).unwrap_or_default(),
            )
            .allowed_origins(args.allowed_origins.clone());
    config = match (mode, &args.authorize_url) {
        (RepoAccessMode::Token, _) => config.authorizer(DefaultAuthorizer::new(RepoAccess::Token)),
        (RepoAccessMode::Public, _) => {
            config.authorizer(DefaultAuthorizer::new(RepoAccess::Public))
        }
        (RepoAccessMode::Proxy, Some(url)) => config.authorizer(
            ProxyAuthorizer::new(url, Some(&publish_key))
                .map_err(invalid)?
                .timeout(Duration::from_millis(args.authorize_timeout_ms))
                .cache_ttl(secs(args.authorize_cache_secs)),
        ),
        (RepoAccessMode::Proxy, None) => {
            let msg = "--repo-access proxy needs --authorize-url (env GUTS_HUB_AUTHORIZE_URL)";
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, msg));
        }
    };
    config.validate().map_err(invalid)?;
    if args.demo {
        let routes = demo_routes(config.token_secret.clone());
        config = config.extra_routes(Some(routes));
    }
    if args.web_dir.is_dir() {
        config = config.static_dir(&args.web_dir);
    } else {
        tracing::warn!(dir = %args.web_dir.display(), "web dir not found: / serves nothing");
    }
    let engine: Arc<dyn Engine> = if let Some(url) = &args.broker {
        let cfg =
            RedisConfig::new(url.clone()).prefix(args.broker_prefix.clone()).unsubscribe_grace(
                Duration::try_from_secs_f64(args.broker_grace_secs).unwrap_or_default(),
            );
        let b = RedisBroker::connect(hub.clone(), cfg).await.map_err(std::io::Error::other)?;
        let state = if b.is_up() { "connected" } else { "not reachable yet, retrying" };
        let _ = writeln!(out, "guts-hub: broker {} ({state})", config_file::redact_url(url));
        Arc::new(b)
    } else {
        hub.clone()
    };
    let listener = listen(&args.listen, args.backlog).await?;
    let addr = listener.local_addr()?;
    let internal = match &args.internal_listen {
        Some(a) => Some(listen(a, 1024).await?),
        None => None,
    };
    // The internal address first: the listening line is the last of the start-up lines.
    if let Some(l) = &internal {
        let _ = writeln!(out, "guts-hub internal on http://{}", l.local_addr()?);
    }
    let _ = writeln!(out, "guts-hub listening on http://{addr}");
    let _ = out.flush();
    drop(out);
    tracing::info!(%addr, epoch = %hub.epoch(), repo_access = ?mode, "guts-hub started");
    if args.demo {
        tokio::spawn(demo(engine.clone()));
    }
    match internal {
        Some(internal) => serve_split(engine, listener, internal, config, shutdown_signal()).await,
        None => serve(engine, listener, config, shutdown_signal()).await,
    }
}

/// Binds `addr` (the first of its resolved addresses that binds) with a listen backlog of
/// `backlog`: tokio's `TcpListener::bind` uses 1024, and SYNs beyond the backlog are retried by the
/// clients only after a second.
async fn listen(addr: &str, backlog: u32) -> std::io::Result<tokio::net::TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        let socket = if a.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(a).and_then(|()| socket.listen(backlog)) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other(format!("{addr}: no address to listen on"))))
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `GET /demo/token?user=NAME` (with `--demo` only): a token for `NAME` (1 to 32 of
/// `[a-z0-9_-]`), valid for an hour, so that the demo page can log two tabs in as two users. A
/// real deployment mints tokens in the platform, never in the hub.
fn demo_routes(secret: Option<String>) -> axum::Router {
    let secret = Arc::new(secret.unwrap_or_default());
    axum::Router::new().route(
        "/demo/token",
        axum::routing::get(
            move |q: axum::extract::Query<std::collections::HashMap<String, String>>| {
                let secret = secret.clone();
                async move {
                    let user = q.get("user").map(String::as_str).unwrap_or("");
                    let ok = (1..=32).contains(&user.len())
                        && user.bytes().all(|b| {
                            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                        });
                    if !ok {
                        return Err((
                            axum::http::StatusCode::BAD_REQUEST,
                            "user: 1 to 32 of a-z 0-9 _ -".to_owned(),
                        ));
                    }
                    let exp = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs())
                        + 3600;
                    let claims = json!({"sub": user, "exp": exp, "repos": ["demo/*"]});
                    jsonwebtoken::encode(
                        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
                        &claims,
                        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
                    )
                    .map_err(|e| (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
                }
            },
        ),
    )
}

/// Synthetic repository activity: one event a second, cycling over channels and kinds (through
/// the engine, so with a broker every node's clients see it).
async fn demo(engine: Arc<dyn Engine>) {
    const REPOS: [&str; 3] = ["demo/app", "demo/api", "demo/web"];
    const USERS: [&str; 4] = ["alice", "bob", "carol", "dave"];
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        n += 1;
        let repo = REPOS[(n % 3) as usize];
        let who = USERS[(n % 4) as usize];
        let number = n % 50 + 1;
        let (kind, data) = match n % 8 {
            0 => (
                EventKind::Push,
                json!({"ref": "refs/heads/main", "before": format!("{:040x}", n - 1),
                       "after": format!("{n:040x}"), "pusher": who, "commit_count": n % 5 + 1}),
            ),
            1 => (EventKind::PrOpened, pr(number, who, "open")),
            2 => (EventKind::IssueOpened, issue(number, who, "open")),
            3 => (
                EventKind::PrReview,
                json!({"id": n, "pr_number": number, "reviewer": who, "state": "approved"}),
            ),
            4 => (
                EventKind::IssueComment,
                json!({"id": n, "parent_number": number, "author": who,
                       "body_preview": "Looks good to me"}),
            ),
            5 => (EventKind::PrMerged, pr(number, who, "merged")),
            6 => (EventKind::IssueClosed, issue(number, who, "closed")),
            _ => (EventKind::BranchCreated, json!({"ref": format!("refs/heads/feature-{n}")})),
        };
        let event = guts_realtime::RealtimeEvent::new(format!("repo:{repo}"), kind, data);
        if let Err(e) = engine.publish(event).await {
            tracing::debug!("demo event not published: {e}");
        }
    }
}

fn pr(number: u64, author: &str, state: &str) -> serde_json::Value {
    json!({"number": number, "title": format!("Demo change #{number}"), "author": author,
           "source_branch": format!("feature-{number}"), "target_branch": "main", "state": state})
}

fn issue(number: u64, author: &str, state: &str) -> serde_json::Value {
    json!({"number": number, "title": format!("Demo issue #{number}"), "author": author,
           "state": state})
}
