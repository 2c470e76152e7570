//! Runs the conformance suite (crate `guts-conformance`) against the real `guts-hub` binary on
//! 127.0.0.1, with every check enabled: HS256 tokens, the HTTP API, a short idle timeout, a
//! connection cap, the history size and, last, SIGTERM.

use guts_conformance::{run, Outcome, Target};
use guts_realtime_examples::hub_process::HubProcess;
use std::time::Duration;

/// The flags the suite is told about (and the hub started with).
pub const HUB_FLAGS: [&str; 10] = [
    "--idle-timeout-secs",
    "4",
    "--ping-interval-secs",
    "1",
    "--max-connections",
    "300",
    "--history-size",
    "64",
    "--reconnect-spread-secs",
    "1",
];

/// A target for `hub` with everything the suite can use.
pub fn full_target(hub: &HubProcess, ws: String) -> Target {
    let mut t = Target::new(ws);
    t.http = Some(hub.http_url());
    t.secret = Some(hub.token_secret.clone());
    t.publish_key = Some(hub.publish_key.clone());
    t.history_size = Some(64);
    t.idle_timeout = Some(Duration::from_secs(4));
    t.max_connections = Some(300);
    t.shutdown_cmd = hub.pid().map(|p| format!("kill -TERM {p}"));
    t.flood = 20_000;
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guts_hub_passes_the_conformance_suite() {
    let hub = HubProcess::start(env!("CARGO_BIN_EXE_guts-hub"), &HUB_FLAGS).await.unwrap();
    let target = full_target(&hub, hub.ws_url());
    let report = run(&target, &[], |r| eprintln!("{r}")).await;
    let failed: Vec<String> = report
        .results
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Fail(e) => Some(format!("{}: {e}", r.name)),
            _ => None,
        })
        .collect();
    assert!(failed.is_empty(), "conformance failures:\n{}", failed.join("\n"));
    assert_eq!(report.skipped(), 0, "every check runs against guts-hub");
    assert_eq!(report.passed(), guts_conformance::checks::ALL.len());
}
