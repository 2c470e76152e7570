//! # guts-conformance
//!
//! The conformance suite of the guts-realtime protocol (`docs/PROTOCOL.md`), for people who
//! implement or embed a hub, and a scripted fake hub for people who implement a client SDK.
//!
//! - [`run`] checks a running hub over its WebSocket URL: every frame and rule of the protocol,
//!   one check per rule ([`checks`] lists them with the section of `docs/PROTOCOL.md` each
//!   covers). What a hub does not offer (the reference HTTP API, HS256 tokens, a `welcome`, a
//!   way to stop it) is asked of hooks ([`Target::publish_cmd`], [`Target::token_cmd`],
//!   [`Target::shutdown_cmd`]) or the checks that need it are skipped, with the reason.
//! - [`fake_hub`] plays a JSON scenario (frames to send, frames expected, closes, reconnects)
//!   against whatever client connects, and says whether the client behaved.
//!
//! The `guts-conformance` and `guts-fake-hub` binaries wrap both; `docs/CONFORMANCE.md` tells
//! how to run them and what each check means.
//!
//! ```no_run
//! # async fn f() {
//! let target = guts_conformance::Target::new("ws://127.0.0.1:7800/ws");
//! let report = guts_conformance::run(&target, &[], |r| println!("{r}")).await;
//! assert_eq!(report.failed(), 0);
//! # }
//! ```

#![warn(missing_docs, missing_debug_implementations)]

pub mod checks;
pub mod conn;
pub mod fake_hub;
pub mod hooks;
pub mod report;

pub use checks::{Check, Need};
pub use report::{CheckResult, Outcome, Report};

use std::time::{Duration, Instant};

/// The hub under test and what it offers.
#[derive(Debug, Clone)]
pub struct Target {
    /// WebSocket URL, e.g. `ws://127.0.0.1:7800/ws`.
    pub ws: String,
    /// HTTP base URL of the reference API (`/api/publish`, `/healthz`, …), e.g.
    /// `http://127.0.0.1:7800`. Checks of that API need it and [`Target::publish_key`].
    pub http: Option<String>,
    /// The publish key (HTTP Bearer and WebSocket `auth` token with publish rights).
    pub publish_key: Option<String>,
    /// The HS256 token secret: tokens are minted with it unless [`Target::token_cmd`] is set.
    pub secret: Option<String>,
    /// A shell command that publishes one event: it gets `{"channel","event","data"}` (and
    /// `idempotency_key` when a check uses one) as JSON on stdin and prints the event's seq (a
    /// number, or JSON with `seq`). Replaces `POST /api/publish`.
    pub publish_cmd: Option<String>,
    /// A shell command that mints a client token: it gets the claims as JSON on stdin
    /// (`sub`, `exp`, and `orgs`, `repos`, `publish` as a check needs) and prints the token.
    /// Replaces HS256 minting with [`Target::secret`].
    pub token_cmd: Option<String>,
    /// A shell command that stops the hub gracefully (e.g. `kill -TERM PID`): enables the
    /// shutdown check, which runs last.
    pub shutdown_cmd: Option<String>,
    /// The hub's history per stream (`history_size`): enables the trimmed-history check.
    pub history_size: Option<usize>,
    /// The hub's idle timeout: enables the idle-close check (keep it short: the check waits
    /// that long).
    pub idle_timeout: Option<Duration>,
    /// The hub's connection cap: enables the connection-cap check (it opens that many).
    pub max_connections: Option<usize>,
    /// Events of the slow-consumer flood (1 KiB each; more than the hub's outbound queue).
    pub flood: usize,
    /// Whether the hub sends `welcome` (found out by [`run`] when `None`).
    pub welcome: Option<bool>,
}

impl Target {
    /// A target with only its WebSocket URL: the checks that need more are skipped.
    pub fn new(ws: impl Into<String>) -> Target {
        Target {
            ws: ws.into(),
            http: None,
            publish_key: None,
            secret: None,
            publish_cmd: None,
            token_cmd: None,
            shutdown_cmd: None,
            history_size: None,
            idle_timeout: None,
            max_connections: None,
            flood: 20_000,
            welcome: None,
        }
    }

    /// The reason `need` is not met, if it is not.
    pub fn missing(&self, need: Need) -> Option<&'static str> {
        let api = self.http.is_some() && self.publish_key.is_some() && self.publish_cmd.is_none();
        let ok = match need {
            Need::Welcome => self.welcome == Some(true),
            Need::Tokens => self.secret.is_some() || self.token_cmd.is_some(),
            Need::Publish => api || self.publish_cmd.is_some(),
            Need::HttpApi => api,
            Need::PublishKey => self.publish_key.is_some(),
            Need::HistorySize => self.history_size.is_some(),
            Need::IdleTimeout => self.idle_timeout.is_some(),
            Need::MaxConnections => self.max_connections.is_some(),
            Need::Shutdown => self.shutdown_cmd.is_some(),
        };
        (!ok).then(|| need.reason())
    }
}

/// The longest a check may take (the slow-consumer flood is the longest by far).
pub const CHECK_LIMIT: Duration = Duration::from_secs(300);

/// Runs the checks whose name contains one of `only` (all when empty), in order, handing each
/// result to `each` as it comes; the shutdown check, when enabled, runs last.
pub async fn run(target: &Target, only: &[String], mut each: impl FnMut(&CheckResult)) -> Report {
    let mut target = target.clone();
    if target.welcome.is_none() {
        target.welcome = Some(conn::probe_welcome(&target.ws).await);
    }
    let mut report = Report::default();
    for check in checks::ALL {
        if !only.is_empty() && !only.iter().any(|o| check.name.contains(o.as_str())) {
            continue;
        }
        let started = Instant::now();
        let missing = check.needs.iter().find_map(|n| target.missing(*n));
        let outcome = match missing {
            Some(why) => Outcome::Skip(why.to_owned()),
            None => match tokio::time::timeout(CHECK_LIMIT, (check.run)(&target)).await {
                Ok(Ok(())) => Outcome::Pass,
                Ok(Err(e)) => Outcome::Fail(e),
                Err(_) => Outcome::Fail(format!("no verdict within {CHECK_LIMIT:?}")),
            },
        };
        let result = CheckResult {
            name: check.name,
            rule: check.rule,
            outcome,
            duration: started.elapsed(),
        };
        each(&result);
        report.results.push(result);
    }
    report
}
