//! `guts-sub` and `guts-pub` as a user runs them, against the real `guts-hub` process.

use guts_realtime_examples::hub_process::HubProcess;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::time::timeout;

const SUB: &str = env!("CARGO_BIN_EXE_guts-sub");
const PUB: &str = env!("CARGO_BIN_EXE_guts-pub");

async fn hub() -> HubProcess {
    HubProcess::start(env!("CARGO_BIN_EXE_guts-hub"), &[]).await.unwrap()
}

async fn guts_pub(hub: &HubProcess, key: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(PUB)
        .args(["--url", &hub.http_url(), "--key", key])
        .args(args)
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guts_pub_prints_the_seq_and_clear_errors() {
    let hub = hub().await;
    let key = hub.publish_key.clone();
    let (ok, out, _) = guts_pub(&hub, &key, &["repo:cli/app", "push", r#"{"ref":"main"}"#]).await;
    assert!(ok);
    let first: u64 = out.trim().parse().unwrap();
    let (ok, out, _) = guts_pub(&hub, &key, &["repo:cli/app", "pr_opened"]).await;
    assert!(ok);
    assert!(out.trim().parse::<u64>().unwrap() > first);
    let (ok, _, err) = guts_pub(&hub, "wrong", &["repo:cli/app", "push"]).await;
    assert!(!ok);
    assert!(err.contains("401"), "{err}");
    let (ok, _, err) = guts_pub(&hub, &key, &["repo:cli", "push"]).await;
    assert!(!ok);
    assert!(err.contains("400") && err.contains("invalid channel"), "{err}");
    let (ok, _, err) = guts_pub(&hub, &key, &["repo:cli/app", "push", "{nope"]).await;
    assert!(!ok);
    assert!(err.contains("not valid JSON"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guts_sub_prints_frames_and_exits_0_on_ctrl_c() {
    let hub = hub().await;
    let mut child = Command::new(SUB)
        .args(["--url", &hub.ws_url(), "repo:cli/sub", "repo:cli/sub/prs"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    // Wait until both subscriptions are confirmed (JSON lines on stderr).
    timeout(Duration::from_secs(10), async {
        let mut n = 0;
        while let Some(l) = stderr.next_line().await.unwrap() {
            let v: serde_json::Value = serde_json::from_str(&l).expect("stderr lines are JSON");
            if v["type"] == "subscribed" {
                n += 1;
                if n == 2 {
                    break;
                }
            }
        }
    })
    .await
    .unwrap();
    let seq =
        hub.publish("repo:cli/sub", "pr_opened", serde_json::json!({"number": 3})).await.unwrap();
    let line =
        timeout(Duration::from_secs(10), stdout.next_line()).await.unwrap().unwrap().unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["type"], "event");
    assert_eq!(v["seq"], seq);
    assert_eq!(v["event"], "pr_opened");
    assert!(
        line.starts_with(
            r#"{"type":"event","channel":"repo:cli/sub","event":"pr_opened","data":{"number":3}"#
        ),
        "{line}"
    );
    // One copy although two subscriptions match.
    let seq2 = hub.publish("repo:cli/sub", "push", serde_json::json!({})).await.unwrap();
    let line =
        timeout(Duration::from_secs(10), stdout.next_line()).await.unwrap().unwrap().unwrap();
    assert_eq!(serde_json::from_str::<serde_json::Value>(&line).unwrap()["seq"], seq2);
    let pid = child.id().unwrap();
    std::process::Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap();
    let status = timeout(Duration::from_secs(10), child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status:?}");
}

async fn guts_sub_fails(args: &[&str]) -> String {
    let out = timeout(Duration::from_secs(15), Command::new(SUB).args(args).output())
        .await
        .unwrap()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guts_sub_exits_non_zero_on_terminal_errors() {
    let hub = hub().await;
    let url = hub.ws_url();
    let err = guts_sub_fails(&["--url", &url, "--token", "bad-token", "repo:cli/x"]).await;
    assert!(err.contains("guts-sub: connection closed for good: unauthenticated"), "{err}");
    let err = guts_sub_fails(&["--url", &url, "repo:cli"]).await;
    assert!(
        err.contains("guts-sub: invalid channel: repository channel requires owner/name"),
        "{err}"
    );
    let err = guts_sub_fails(&["--url", &url, "user:someone"]).await;
    assert!(err.contains("refused") && err.contains("forbidden"), "{err}");
}
