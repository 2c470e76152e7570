//! The native SDK against the scripted fake hub (`guts_conformance::fake_hub`): every scenario
//! of `conformance/scenarios/` (the files the JS SDK is tested with too) is played to a
//! `guts_realtime_native::Client` driven as its `client` section says, and what the SDK reports
//! must equal its `client_expects`. A raw client that breaks a scenario's rule is failed at the
//! step that checks it.

use futures_util::{SinkExt, StreamExt};
use guts_conformance::fake_hub::{FakeHub, Scenario};
use guts_realtime_native::{Client, Item};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::timeout;

fn scenarios() -> Vec<(PathBuf, Scenario)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../conformance/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "scenarios in {}", dir.display());
    files.into_iter().map(|p| (p.clone(), Scenario::load(&p).unwrap())).collect()
}

/// What the application saw: seqs delivered and gaps per channel, the last state.
#[derive(Debug, Default, Clone, PartialEq)]
struct Seen {
    events: BTreeMap<String, Vec<u64>>,
    gaps: BTreeMap<String, usize>,
    state: String,
}

impl Seen {
    /// Whether this is what `expects` (a scenario's `client_expects`) asks for.
    fn meets(&self, expects: &Value, channels: &[String]) -> bool {
        let state = expects["final_state"].as_str().unwrap_or("connected");
        channels.iter().all(|ch| {
            let want: Vec<u64> = expects["events"][ch]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default();
            let gaps = expects["gaps"][ch].as_u64().unwrap_or(0) as usize;
            self.events.get(ch).cloned().unwrap_or_default() == want
                && self.gaps.get(ch).copied().unwrap_or(0) == gaps
        }) && self.state == state
    }
}

/// Plays `scenario` to the native SDK: the hub's result, whether the application saw what
/// `client_expects` says (before it closed the client), and what it saw.
async fn run(scenario: Scenario) -> (Result<(), String>, bool, Seen) {
    let client_cfg = scenario.client.clone();
    let expects = scenario.client_expects.clone();
    let hub = FakeHub::start(scenario, "127.0.0.1:0").await.unwrap();
    let url = hub.url.replace("/ws", client_cfg["url_path"].as_str().unwrap_or("/ws"));
    let mut builder =
        Client::builder(url).backoff(Duration::from_millis(50), Duration::from_millis(500));
    if let Some(token) = client_cfg["token"].as_str() {
        builder = builder.static_token(token);
    }
    let client = builder.connect().unwrap();
    let channels: Vec<String> = client_cfg["subscribe"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let seen = Arc::new(Mutex::new(Seen::default()));
    for ch in &channels {
        let mut sub = client.subscribe(ch).await.unwrap();
        let (seen, ch) = (seen.clone(), ch.clone());
        tokio::spawn(async move {
            while let Some(item) = sub.next().await {
                let mut s = seen.lock().unwrap();
                match item {
                    Item::Event(e) => {
                        s.events.entry(ch.clone()).or_default().push(e.seq.unwrap_or(0))
                    }
                    Item::Gap { .. } => *s.gaps.entry(ch.clone()).or_default() += 1,
                    _ => {}
                }
            }
        });
    }
    let mut state = client.state();
    let watch_seen = seen.clone();
    tokio::spawn(async move {
        loop {
            watch_seen.lock().unwrap().state = state.borrow_and_update().state.name().to_owned();
            if state.changed().await.is_err() {
                return;
            }
        }
    });
    // The application closes the client once it saw what the scenario expects (unless the
    // hub closed it for good).
    let closer = {
        let (seen, expects, channels) = (seen.clone(), expects.clone(), channels.clone());
        async move {
            let closed = expects["final_state"] == "closed";
            for _ in 0..400 {
                if seen.lock().unwrap().meets(&expects, &channels) {
                    if !closed {
                        client.close().await;
                    }
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            false
        }
    };
    let (result, met) = tokio::join!(timeout(Duration::from_secs(20), hub.result()), closer);
    let result = result
        .map_err(|_| "the scenario did not end".to_owned())
        .and_then(|r| r.map_err(|f| f.to_string()));
    let seen = seen.lock().unwrap().clone();
    (result, met, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_native_sdk_passes_every_scenario() {
    for (path, scenario) in scenarios() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (expects, channels): (Value, Vec<String>) = (
            scenario.client_expects.clone(),
            scenario.client["subscribe"]
                .as_array()
                .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
        );
        let (result, met, seen) = run(scenario).await;
        assert_eq!(result, Ok(()), "{name}: the hub's verdict (the SDK saw {seen:?})");
        assert!(met, "{name}: expected {expects}, the SDK saw {seen:?} ({channels:?})");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_resubscribes_without_since_fails_at_that_step() {
    let (_, scenario) =
        scenarios().into_iter().find(|(p, _)| p.ends_with("resume_after_restart.json")).unwrap();
    let step = scenario
        .steps
        .iter()
        .position(|s| s["expect"]["since"]["seq"].is_u64())
        .expect("the step that checks since");
    let hub = FakeHub::start(scenario, "127.0.0.1:0").await.unwrap();
    let url = hub.url.clone();
    // A naive client: subscribes on every connection, never with `since`, waits 400 ms.
    let naive = tokio::spawn(async move {
        for _ in 0..2 {
            let Ok((mut ws, _)) = tokio_tungstenite::connect_async(&url).await else { return };
            let sub = json!({"type": "subscribe", "channel": "repo:acme/app", "id": 1});
            let _ = ws.send(tokio_tungstenite::tungstenite::Message::text(sub.to_string())).await;
            while let Some(Ok(m)) = ws.next().await {
                if m.is_close() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
    });
    let failure = timeout(Duration::from_secs(20), hub.result()).await.unwrap().unwrap_err();
    naive.abort();
    assert_eq!(failure.step, step, "{failure}");
    assert!(failure.error.contains("received"), "{failure}");
}
