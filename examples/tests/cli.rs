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
async fn guts_pub_with_an_idempotency_key_publishes_once() {
    let hub = hub().await;
    let key = hub.publish_key.clone();
    let args = ["--json", "--idempotency-key", "release-1", "repo:cli/idem", "push"];
    let (ok, first, _) = guts_pub(&hub, &key, &args).await;
    assert!(ok);
    let first: serde_json::Value = serde_json::from_str(first.trim()).unwrap();
    assert!(first.get("duplicate").is_none(), "{first}");
    let (ok, again, _) = guts_pub(&hub, &key, &args).await;
    assert!(ok);
    let again: serde_json::Value = serde_json::from_str(again.trim()).unwrap();
    assert_eq!(again, serde_json::json!({"seq": first["seq"], "delivered": 0, "duplicate": true}));
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

/// Runs `guts-pub` with `stdin` piped in.
async fn guts_pub_stdin(hub: &HubProcess, args: &[&str], stdin: &str) -> (bool, String, String) {
    use tokio::io::AsyncWriteExt;
    let mut child = Command::new(PUB)
        .args(["--url", &hub.http_url(), "--key", &hub.publish_key])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let out = timeout(Duration::from_secs(20), child.wait_with_output()).await.unwrap().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guts_pub_reads_stdin_notifies_prints_json_and_times_out() {
    let hub = hub().await;
    let (ok, out, err) = guts_pub_stdin(&hub, &["repo:cli/stdin", "push", "-"], r#"{"n":1}"#).await;
    assert!(ok, "{err}");
    assert!(out.trim().parse::<u64>().is_ok(), "{out}");
    let (ok, out, _) =
        guts_pub(&hub, &hub.publish_key, &["--json", "repo:cli/stdin", "push", "{}"]).await;
    assert!(ok);
    let reply: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(reply["seq"].is_u64() && reply["delivered"].is_u64(), "{reply}");
    let note = r#"{"id":"n1","user_id":"alice","notification_type":"mention","title":"hi","body":"b","read":false,"created_at":1}"#;
    let (ok, out, err) = guts_pub_stdin(&hub, &["notify", "-"], note).await;
    assert!(ok, "{err}");
    assert!(out.trim().parse::<u64>().is_ok(), "{out}");
    let (ok, out, _) = guts_pub(&hub, &hub.publish_key, &["--json", "notify", note]).await;
    assert!(ok);
    assert!(out.contains("\"seq\""), "{out}");
    // A hub that accepts the connection and never answers: the timeout applies.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let started = std::time::Instant::now();
    let out = Command::new(PUB)
        .args(["--url", &url, "--key", "k", "--timeout-secs", "1", "repo:a/b", "push"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
}

/// Starts `guts-sub` with `args`; its stdout lines and the child.
fn guts_sub(hub: &HubProcess, args: &[&str]) -> tokio::process::Child {
    Command::new(SUB)
        .args(["--url", &hub.ws_url()])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Waits for a `subscribed` status line on the child's stderr; returns it.
async fn subscribed(child: &mut tokio::process::Child) -> serde_json::Value {
    status_line(child, "subscribed").await
}

/// Waits for a status line of type `kind` on the child's stderr (then drains the rest); returns
/// it.
async fn status_line(child: &mut tokio::process::Child, kind: &str) -> serde_json::Value {
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let line = timeout(Duration::from_secs(20), async {
        loop {
            let l = err.next_line().await.unwrap().expect("a status line");
            let v: serde_json::Value = serde_json::from_str(&l).unwrap();
            if v["type"] == kind {
                return v;
            }
        }
    })
    .await
    .unwrap();
    tokio::spawn(async move { while let Ok(Some(_)) = err.next_line().await {} });
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guts_sub_count_data_only_since_and_sigterm() {
    let hub = hub().await;
    // --count 2 --data-only: exactly two payloads, then exit 0.
    let mut child = guts_sub(&hub, &["--count", "2", "--data-only", "repo:cli/count"]);
    let position = subscribed(&mut child).await["position"].as_str().unwrap().to_owned();
    for i in 1..=3 {
        let (ok, ..) = guts_pub(
            &hub,
            &hub.publish_key,
            &["repo:cli/count", "push", &format!(r#"{{"i":{i}}}"#)],
        )
        .await;
        assert!(ok);
    }
    let out = timeout(Duration::from_secs(20), child.wait_with_output()).await.unwrap().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "{\"i\":1}\n{\"i\":2}\n");
    // --since the position printed at subscribe: all three are replayed.
    let mut child = guts_sub(&hub, &["--since", &position, "--count", "3", "repo:cli/count"]);
    let sub = subscribed(&mut child).await;
    assert_eq!(sub["recovered"], true, "{sub}");
    let out = timeout(Duration::from_secs(20), child.wait_with_output()).await.unwrap().unwrap();
    assert!(out.status.success());
    let seqs: Vec<u64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["data"]["i"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    // SIGTERM: a clean exit 0.
    let mut child = guts_sub(&hub, &["repo:cli/term"]);
    subscribed(&mut child).await;
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = timeout(Duration::from_secs(20), child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guts_sub_presence_prints_who_is_there_and_the_signals_it_receives() {
    use guts_conformance::conn::Conn;
    let hub = hub().await;
    let ch = "repo:cli/collab/prs/2";
    let token = |user: &str| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &serde_json::json!({"sub": user, "exp": 4_000_000_000u64}),
            &jsonwebtoken::EncodingKey::from_secret(hub.token_secret.as_bytes()),
        )
        .unwrap()
    };
    let mut child = Command::new(SUB)
        .args(["--url", &hub.ws_url(), "--token", &token("alice"), "--presence", ch])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    async fn next(
        lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    ) -> serde_json::Value {
        let l = timeout(Duration::from_secs(20), lines.next_line()).await.unwrap().unwrap();
        serde_json::from_str(&l.expect("a line")).unwrap()
    }
    let first = next(&mut lines).await;
    assert_eq!(first["type"], "presence", "{first}");
    assert_eq!(first["members"], serde_json::json!([{"user": "alice", "connections": 1}]));
    let mut bob = Conn::welcomed(&hub.ws_url()).await.unwrap();
    bob.send(&serde_json::json!({"type": "auth", "token": token("bob")}).to_string())
        .await
        .unwrap();
    bob.recv().await.unwrap();
    let sub = serde_json::json!({"type": "subscribe", "channel": ch, "presence": true});
    bob.send(&sub.to_string()).await.unwrap();
    assert_eq!(
        next(&mut lines).await,
        serde_json::json!({"type": "join", "channel": ch, "user": "bob"})
    );
    let sig = serde_json::json!({"type": "signal", "channel": ch, "event": "typing", "data": {}});
    bob.send(&sig.to_string()).await.unwrap();
    assert_eq!(
        next(&mut lines).await,
        serde_json::json!({"type": "signal", "channel": ch, "event": "typing", "data": {}, "user": "bob"})
    );
    drop(bob);
    assert_eq!(
        next(&mut lines).await,
        serde_json::json!({"type": "leave", "channel": ch, "user": "bob"})
    );
}

/// A worker (guts-sub) killed with SIGKILL and started again from the last position it saved
/// receives exactly what it missed; from a position of a hub that has since restarted, it is
/// told of the gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_and_restarted_from_its_position_misses_nothing_or_is_told_of_the_gap() {
    let hub = hub().await;
    let ch = "repo:cli/worker";
    let publish = |i: u64| {
        let (url, key) = (hub.http_url(), hub.publish_key.clone());
        async move {
            let body = format!(r#"{{"channel":"{ch}","event":"push","data":{{"i":{i}}}}}"#);
            let r = guts_realtime_examples::hub_process::post_publish(&url, &key, &body).unwrap();
            serde_json::from_str::<serde_json::Value>(&r.1).unwrap()["seq"].as_u64().unwrap()
        }
    };
    let mut worker = guts_sub(&hub, &[ch]);
    let start = subscribed(&mut worker).await["position"].as_str().unwrap().to_owned();
    let epoch = start.split_once(':').unwrap().1.to_owned();
    let mut out = BufReader::new(worker.stdout.take().unwrap()).lines();
    let mut saved = 0;
    for i in 1..=2 {
        publish(i).await;
        let line =
            timeout(Duration::from_secs(10), out.next_line()).await.unwrap().unwrap().unwrap();
        saved = serde_json::from_str::<serde_json::Value>(&line).unwrap()["seq"].as_u64().unwrap();
    }
    worker.start_kill().unwrap();
    worker.wait().await.unwrap();
    let missed = [publish(3).await, publish(4).await];
    let position = format!("{saved}:{epoch}");
    let again = guts_sub(&hub, &["--since", &position, "--count", "2", ch]);
    let out = timeout(Duration::from_secs(20), again.wait_with_output()).await.unwrap().unwrap();
    assert!(out.status.success());
    let seqs: Vec<u64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, missed);
    // The hub restarted meanwhile (another process, another epoch): the gap is reported.
    let restarted = self::hub().await;
    let mut late = guts_sub(&restarted, &["--since", &position, ch]);
    let gap = status_line(&mut late, "gap").await;
    assert_eq!(gap["reason"], "epoch_changed", "{gap}");
    late.start_kill().unwrap();
}
