//! Runs the conformance suite (crate `guts-conformance`) against the real `guts-hub` binary on
//! 127.0.0.1, with every check enabled: HS256 tokens, the HTTP API, a short idle timeout, a
//! connection cap, the history size and, last, SIGTERM.

use guts_conformance::{run, Outcome};
use guts_realtime_examples::hub_process::{conformance_target, HubProcess, CONFORMANCE_FLAGS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guts_hub_passes_the_conformance_suite() {
    let hub = HubProcess::start(env!("CARGO_BIN_EXE_guts-hub"), &CONFORMANCE_FLAGS).await.unwrap();
    let target = conformance_target(&hub, hub.ws_url());
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
