//! Runs the conformance suite against the real `guts-hub` binary on 127.0.0.1.

use guts_realtime_examples::conformance::{run, Target};
use guts_realtime_examples::hub_process::HubProcess;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guts_hub_passes_the_conformance_suite() {
    let hub = HubProcess::start(env!("CARGO_BIN_EXE_guts-hub"), &[]).await.unwrap();
    let target = Target {
        ws: hub.ws_url(),
        http: hub.http_url(),
        secret: Some(hub.token_secret.clone()),
        publish_key: hub.publish_key.clone(),
        flood: 20_000,
    };
    let report = run(&target, None).await;
    let failed: Vec<_> = report
        .results
        .iter()
        .filter_map(|r| match &r.outcome {
            Some(Err(e)) => Some(format!("{}: {e}", r.name)),
            _ => None,
        })
        .collect();
    assert!(failed.is_empty(), "conformance failures:\n{}", failed.join("\n"));
    assert_eq!(report.skipped(), 0);
    assert!(report.passed() >= 22);
}
