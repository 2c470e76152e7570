//! The `guts-conformance` command line without a hub: `--list`, `--only` that matches nothing,
//! the exit status and the JSON and JUnit reports of a run whose hub cannot be reached, and the
//! skips (with their reasons) of what the command line does not give.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_guts-conformance");
/// Nothing listens there.
const NOWHERE: &str = "ws://127.0.0.1:9/ws";

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("GUTS_HUB_TOKEN_SECRET")
        .env_remove("GUTS_HUB_PUBLISH_KEY")
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn list_names_every_check_with_its_rule_and_needs() {
    let (code, out) = run(&["--list"]);
    assert_eq!(code, Some(0));
    assert_eq!(out.lines().count(), guts_conformance::checks::ALL.len());
    for c in guts_conformance::checks::ALL {
        assert!(out.lines().any(|l| l.starts_with(c.name) && l.contains(c.rule)), "{}", c.name);
    }
    assert!(out.contains("presence_counts_connections_per_user") && out.contains("[Tokens]"));
}

#[test]
fn only_matching_nothing_is_a_usage_error() {
    assert_eq!(run(&["--only", "no_such_check"]).0, Some(2));
}

#[test]
fn a_failed_check_exits_1_in_every_format() {
    let (code, out) = run(&["--url", NOWHERE, "--only", "seed_ping_pong"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("FAIL seed_ping_pong: connect failed"), "{out}");
    assert!(out.ends_with("0 passed, 1 failed, 0 skipped\n"), "{out}");

    let (code, out) = run(&["--url", NOWHERE, "--only", "seed_ping,welcome", "--format", "json"]);
    assert_eq!(code, Some(1), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["passed"].as_u64(), v["failed"].as_u64(), v["skipped"].as_u64()),
        (Some(0), Some(1), Some(1))
    );
    let welcome =
        v["checks"].as_array().unwrap().iter().find(|c| c["name"] == "welcome_first").unwrap();
    assert_eq!(welcome["status"], "skip");
    assert!(welcome["message"].as_str().unwrap().contains("no welcome"), "{welcome}");

    let (code, out) = run(&["--url", NOWHERE, "--only", "seed_ping_pong", "--format", "junit"]);
    assert_eq!(code, Some(1));
    assert!(out.contains(r#"<testsuite name="guts-conformance" tests="1" failures="1""#), "{out}");
    assert!(
        out.contains(r#"<testcase classname="Client frames › ping" name="seed_ping_pong""#),
        "{out}"
    );
}

#[test]
fn what_the_command_line_does_not_give_is_skipped_with_the_reason() {
    let only = "presence_lists,http_endpoints,recovery_past,connection_cap,idle_conn,shutdown";
    let (code, out) = run(&["--url", NOWHERE, "--only", only]);
    assert_eq!(code, Some(0), "skips are not failures: {out}");
    for (check, why) in [
        ("presence_lists_joins_and_leaves", "give --secret (HS256) or --token-cmd"),
        ("http_endpoints", "give --http and --publish-key"),
        ("recovery_past_trimmed_history_is_a_gap", "sends no welcome"),
        ("connection_cap_refuses_the_upgrade", "give --max-connections"),
        ("idle_connection_closes_4009", "give --idle-timeout-secs"),
        ("shutdown_closes_every_client", "give --shutdown-cmd"),
    ] {
        let line =
            out.lines().find(|l| l.starts_with(&format!("skip {check}: "))).unwrap_or_default();
        assert!(line.contains(why), "{check}: {line:?} in\n{out}");
    }
}
