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

/// Writes `text` as an executable script in a fresh temp dir; its path.
fn script(name: &str, text: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("guts-conformance-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_replace_hs256_minting_and_the_http_api() {
    let hub = HubProcess::start(env!("CARGO_BIN_EXE_guts-hub"), &CONFORMANCE_FLAGS).await.unwrap();
    let log =
        std::env::temp_dir().join(format!("guts-conformance-hooks-{}.log", std::process::id()));
    let log = log.display().to_string();
    // A platform's own token service and publish API, as a hub author would plug them in.
    let mint = script(
        "mint.py",
        &format!(
            "#!/usr/bin/env python3\nimport sys, json, hmac, hashlib, base64\n\
             b = lambda d: base64.urlsafe_b64encode(d).rstrip(b'=')\n\
             claims = json.load(sys.stdin)\nopen({log:?}, 'a').write('token\\n')\n\
             h = b(json.dumps({{'alg': 'HS256', 'typ': 'JWT'}}).encode()) + b'.' + b(json.dumps(claims).encode())\n\
             s = b(hmac.new({secret:?}.encode(), h, hashlib.sha256).digest())\n\
             print((h + b'.' + s).decode())\n",
            secret = hub.token_secret
        ),
    );
    let publish = script(
        "publish.py",
        &format!(
            "#!/usr/bin/env python3\nimport sys, urllib.request\nbody = sys.stdin.read().encode()\n\
             open({log:?}, 'a').write('publish\\n')\n\
             r = urllib.request.Request({url:?}, data=body, headers={{'Authorization': 'Bearer {key}', 'Content-Type': 'application/json'}})\n\
             print(urllib.request.urlopen(r).read().decode())\n",
            url = format!("{}/api/publish", hub.http_url()),
            key = hub.publish_key
        ),
    );
    let mut target = conformance_target(&hub, hub.ws_url());
    target.secret = None;
    target.token_cmd = Some(mint);
    target.publish_cmd = Some(publish);
    let report = run(&target, &[], |_| {}).await;
    let lines: Vec<String> = report.results.iter().map(ToString::to_string).collect();
    assert_eq!(report.failed(), 0, "{}", lines.join("\n"));
    let skipped: Vec<&str> = report
        .results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Skip(_)))
        .map(|r| r.name)
        .collect();
    let http_api = [
        "revocation_unsubscribes",
        "disconnect_closes_4003",
        "notifications_follow_preferences",
        "http_endpoints",
        "http_publish_errors",
        "http_idempotent_publish",
    ];
    assert_eq!(skipped, http_api, "only the reference HTTP API's checks are skipped");
    let calls = std::fs::read_to_string(&log).unwrap();
    let (tokens, publishes) = (calls.matches("token").count(), calls.matches("publish").count());
    assert!(
        tokens >= 20 && publishes >= 50,
        "the hooks were used: {tokens} tokens, {publishes} publishes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_without_welcome_skips_only_what_needs_its_epoch() {
    use guts_realtime_examples::mutant_proxy::{Mutant, MutantProxy};
    let hub = HubProcess::start(env!("CARGO_BIN_EXE_guts-hub"), &CONFORMANCE_FLAGS).await.unwrap();
    let no_welcome = Mutant {
        name: "no_welcome",
        to_client: |_, _, v| (v["type"] == "welcome").then(Vec::new),
        ..Mutant::IDENTITY
    };
    let proxy = MutantProxy::start(hub.addr(), no_welcome).await.unwrap();
    let mut target = conformance_target(&hub, proxy.ws_url.clone());
    target.http = Some(proxy.http_url.clone());
    target.flood = 25_000;
    let only: Vec<String> = ["welcome", "recovery", "history", "seed", "routing", "presence_lists"]
        .map(str::to_owned)
        .to_vec();
    let report = run(&target, &only, |_| {}).await;
    let lines: Vec<String> = report.results.iter().map(ToString::to_string).collect();
    assert_eq!(report.failed(), 0, "{}", lines.join("\n"));
    let skipped: Vec<&str> = report
        .results
        .iter()
        .filter(|r| matches!(&r.outcome, Outcome::Skip(why) if why.contains("no welcome")))
        .map(|r| r.name)
        .collect();
    assert_eq!(
        skipped,
        [
            "welcome_first",
            "recovery_replays_missed_events",
            "recovery_beyond_the_head_is_a_gap",
            "recovery_at_the_head_replays_nothing",
            "recovery_past_trimmed_history_is_a_gap",
            "history_returns_the_last_events",
            "history_then_since_misses_nothing",
        ]
    );
    assert!(report.passed() >= 5, "{}", lines.join("\n"));
}
