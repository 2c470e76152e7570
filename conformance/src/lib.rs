//! A conformance suite that checks any hub, over its URLs, against `docs/PROTOCOL.md`: the seed
//! wire format, canonical channels, every invalid input, routing, limits, the auth matrix,
//! recovery, notifications and the slow-consumer policy.
//!
//! Run it with the `guts-conformance` binary or call [`run`]; each check prints one line and the
//! report ends with `N passed, M failed`.

mod checks;
pub mod conn;

use std::future::Future;
use std::pin::Pin;

/// The hub under test.
#[derive(Debug, Clone)]
pub struct Target {
    /// WebSocket URL, e.g. `ws://127.0.0.1:7800/ws`.
    pub ws: String,
    /// HTTP base URL, e.g. `http://127.0.0.1:7800`.
    pub http: String,
    /// The HS256 token secret (auth checks are skipped without it).
    pub secret: Option<String>,
    /// The publish key.
    pub publish_key: String,
    /// Events the slow-consumer check floods with (each with 1 KiB of data).
    pub flood: usize,
}

/// One check's outcome.
#[derive(Debug, Clone)]
pub struct CheckResult {
    /// Its name.
    pub name: &'static str,
    /// `Ok` or why it failed; `None` when skipped.
    pub outcome: Option<Result<(), String>>,
}

/// The outcome of a run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every check, in order.
    pub results: Vec<CheckResult>,
}

impl Report {
    /// Checks passed.
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| matches!(r.outcome, Some(Ok(())))).count()
    }

    /// Checks failed.
    pub fn failed(&self) -> usize {
        self.results.iter().filter(|r| matches!(r.outcome, Some(Err(_)))).count()
    }

    /// Checks skipped.
    pub fn skipped(&self) -> usize {
        self.results.iter().filter(|r| r.outcome.is_none()).count()
    }
}

type CheckFn =
    for<'a> fn(&'a Target) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Runs every check whose name contains `filter` (all with `None`), printing one line per check
/// to stdout as it goes.
pub async fn run(target: &Target, filter: Option<&str>) -> Report {
    let mut report = Report::default();
    for (name, needs_secret, check) in checks::ALL {
        if filter.is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let outcome = if *needs_secret && target.secret.is_none() {
            println!("skip {name} (no --secret)");
            None
        } else {
            let r = check(target).await;
            match &r {
                Ok(()) => println!("ok   {name}"),
                Err(e) => println!("FAIL {name}: {}", e.replace('\n', "\n     ")),
            }
            Some(r)
        };
        report.results.push(CheckResult { name, outcome });
    }
    let skipped = report.skipped();
    if skipped > 0 {
        println!("{} passed, {} failed, {} skipped", report.passed(), report.failed(), skipped);
    } else {
        println!("{} passed, {} failed", report.passed(), report.failed());
    }
    report
}

pub(crate) type Entry = (&'static str, bool, CheckFn);
