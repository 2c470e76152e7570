//! `guts-conformance`: checks a running hub against docs/PROTOCOL.md, one line per check, ending
//! with `N passed, M failed`. Exit code 0 only when nothing failed.

use clap::Parser;
use guts_realtime_examples::conformance::{run, Target};
use std::process::ExitCode;

/// Check a guts-realtime hub against the protocol.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// WebSocket URL.
    #[arg(long, default_value = "ws://127.0.0.1:7800/ws")]
    url: String,
    /// HTTP base URL.
    #[arg(long, default_value = "http://127.0.0.1:7800")]
    http: String,
    /// Token secret, to mint tokens for the auth checks (skipped without it).
    #[arg(long, env = "GUTS_HUB_TOKEN_SECRET")]
    secret: Option<String>,
    /// Publish key.
    #[arg(long, env = "GUTS_HUB_PUBLISH_KEY")]
    publish_key: String,
    /// Events of the slow-consumer flood (1 KiB each).
    #[arg(long, default_value_t = 20_000)]
    flood: usize,
    /// Run only checks whose name contains this.
    #[arg(long)]
    only: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let a = Args::parse();
    let target = Target {
        ws: a.url,
        http: a.http.trim_end_matches('/').to_owned(),
        secret: a.secret,
        publish_key: a.publish_key,
        flood: a.flood,
    };
    let report = run(&target, a.only.as_deref()).await;
    if report.failed() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
