//! `guts-conformance`: checks a running hub against `docs/PROTOCOL.md`. Prints one line per
//! check (or a JSON or JUnit report) and exits 0 only when no check failed (skips do not fail);
//! 2 for a bad command line.

use clap::{Parser, ValueEnum};
use guts_conformance::{checks, run, Target};
use std::process::ExitCode;
use std::time::Duration;

/// Check a guts-realtime hub against the protocol (docs/PROTOCOL.md, docs/CONFORMANCE.md).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// WebSocket URL of the hub.
    #[arg(long, default_value = "ws://127.0.0.1:7800/ws")]
    url: String,
    /// HTTP base URL of the reference API (`/api/publish`, `/healthz`, …); default: the
    /// WebSocket URL's host with http(s).
    #[arg(long)]
    http: Option<String>,
    /// HS256 token secret, to mint client tokens (or use --token-cmd).
    #[arg(long, env = "GUTS_HUB_TOKEN_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Publish key: HTTP Bearer of the reference API, WebSocket `auth` token of a publisher.
    #[arg(long, env = "GUTS_HUB_PUBLISH_KEY", hide_env_values = true)]
    publish_key: Option<String>,
    /// Command that publishes one event: gets {"channel","event","data"} as JSON on stdin,
    /// prints the event's seq (a number or JSON with "seq"). Replaces POST /api/publish.
    #[arg(long)]
    publish_cmd: Option<String>,
    /// Command that mints a client token: gets the claims as JSON on stdin, prints the token.
    #[arg(long)]
    token_cmd: Option<String>,
    /// Command that stops the hub gracefully (run last, by the shutdown check).
    #[arg(long)]
    shutdown_cmd: Option<String>,
    /// The hub's history per stream: enables the trimmed-history check.
    #[arg(long)]
    history_size: Option<usize>,
    /// The hub's idle timeout in seconds: enables the idle-close check.
    #[arg(long)]
    idle_timeout_secs: Option<f64>,
    /// The hub's connection cap: enables the connection-cap check.
    #[arg(long)]
    max_connections: Option<usize>,
    /// Events of the slow-consumer flood (1 KiB each).
    #[arg(long, default_value_t = 20_000)]
    flood: usize,
    /// Run only the checks whose name contains one of these (comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// List the checks (name, rule, needs) and exit.
    #[arg(long)]
    list: bool,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// One line per check as it runs, then the summary.
    Text,
    /// One JSON document at the end.
    Json,
    /// JUnit XML at the end.
    Junit,
}

#[tokio::main]
async fn main() -> ExitCode {
    let a = Args::parse();
    if a.list {
        for c in checks::ALL {
            let needs: Vec<String> = c.needs.iter().map(|n| format!("{n:?}")).collect();
            println!("{:<52} {} [{}]", c.name, c.rule, needs.join(", "));
        }
        return ExitCode::SUCCESS;
    }
    let unknown: Vec<&String> = a
        .only
        .iter()
        .filter(|o| !checks::ALL.iter().any(|c| c.name.contains(o.as_str())))
        .collect();
    if !unknown.is_empty() {
        eprintln!("guts-conformance: --only {unknown:?} matches no check (see --list)");
        return ExitCode::from(2);
    }
    let http = a.http.unwrap_or_else(|| http_of(&a.url));
    let mut target = Target::new(a.url);
    target.http = Some(http);
    target.secret = a.secret;
    target.publish_key = a.publish_key;
    target.publish_cmd = a.publish_cmd;
    target.token_cmd = a.token_cmd;
    target.shutdown_cmd = a.shutdown_cmd;
    target.history_size = a.history_size;
    target.idle_timeout = a.idle_timeout_secs.and_then(|s| Duration::try_from_secs_f64(s).ok());
    target.max_connections = a.max_connections;
    target.flood = a.flood;
    let text = a.format == Format::Text;
    let report = run(&target, &a.only, |r| {
        if text {
            println!("{r}");
        }
    })
    .await;
    match a.format {
        Format::Text => println!("{}", report.summary()),
        Format::Json => println!("{}", report.to_json()),
        Format::Junit => print!("{}", report.to_junit()),
    }
    if report.failed() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `ws://host:port/path` → `http://host:port` (`wss` → `https`).
fn http_of(ws: &str) -> String {
    let (scheme, rest) = ws.split_once("://").unwrap_or(("ws", ws));
    let host = rest.split('/').next().unwrap_or(rest);
    let scheme = if scheme == "wss" { "https" } else { "http" };
    format!("{scheme}://{host}")
}
