//! `guts-sub`: subscribe to channels and print what arrives.
//!
//! Events and notifications go to stdout, one JSON line each (the frame as received); connection
//! states, gaps and errors go to stderr as JSON lines. Reconnects forever; exits 0 on Ctrl-C after
//! a clean close, and non-zero with a clear message on a terminal error (bad token, invalid
//! channel, refused subscription).

use clap::Parser;
use futures_util::StreamExt;
use guts_realtime::ServerMessage;
use guts_realtime_native::client::{ConnectionState, StateInfo};
use guts_realtime_native::{Client, Item};
use serde_json::json;
use std::io::Write;
use std::process::ExitCode;

/// Subscribe to guts-realtime channels and print every event as a JSON line.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// WebSocket URL of the hub.
    #[arg(long, default_value = "ws://127.0.0.1:7800/ws", env = "GUTS_HUB_URL")]
    url: String,
    /// Token (a JWT, or the hub's publish key) sent before every connect.
    #[arg(long, env = "GUTS_TOKEN")]
    token: Option<String>,
    /// Channels: repo:OWNER/NAME[/prs|/issues], user:NAME, org:NAME.
    #[arg(required = true)]
    channels: Vec<String>,
}

fn status(v: serde_json::Value) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{v}");
}

fn state_line(s: &StateInfo) -> serde_json::Value {
    let mut v = json!({"type": "state", "state": s.state.name(), "reason": s.reason});
    if let Some(code) = s.code {
        v["code"] = json!(code);
    }
    if let ConnectionState::Reconnecting { attempt, retry_in } = &s.state {
        v["attempt"] = json!(attempt);
        v["retry_in_ms"] = json!(retry_in.as_millis() as u64);
    }
    v
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let mut builder = Client::builder(&args.url);
    if let Some(t) = args.token.clone() {
        builder = builder.static_token(t);
    }
    let client = match builder.connect() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("guts-sub: {e}");
            return ExitCode::from(2);
        }
    };
    // (unique id, frame) per event; several subscriptions may receive the same frame.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Result<(String, String), String>>();
    let mut subs = Vec::new();
    for ch in &args.channels {
        match client.subscribe(ch).await {
            Ok(sub) => subs.push(sub),
            Err(e) => {
                eprintln!("guts-sub: {e}");
                return ExitCode::from(2);
            }
        }
    }
    for mut sub in subs {
        let tx = tx.clone();
        tokio::spawn(async move {
            let channel = sub.channel().to_owned();
            while let Some(item) = sub.next().await {
                let line = match item {
                    Item::Event(e) => {
                        Ok((e.event_id.clone(), ServerMessage::Event(e).encode().to_string()))
                    }
                    Item::Notification { notification, seq } => Ok((
                        notification.id.clone(),
                        ServerMessage::Notification { channel: channel.clone(), notification, seq }
                            .encode()
                            .to_string(),
                    )),
                    Item::Subscribed { recovered } => {
                        status(
                            json!({"type": "subscribed", "channel": channel, "recovered": recovered}),
                        );
                        continue;
                    }
                    Item::Gap { last_seq, resume_seq, reason } => {
                        status(json!({"type": "gap", "channel": channel, "last_seq": last_seq,
                            "resume_seq": resume_seq, "reason": format!("{reason:?}")}));
                        continue;
                    }
                    Item::Lagged(n) => {
                        status(json!({"type": "lagged", "channel": channel, "dropped": n}));
                        continue;
                    }
                    Item::Failed { code, message } => Err(format!(
                        "subscription to {channel} refused: {message} ({})",
                        code.map(|c| c.as_str()).unwrap_or("error")
                    )),
                    _ => continue,
                };
                let stop = line.is_err();
                if tx.send(line).is_err() || stop {
                    break;
                }
            }
        });
    }
    drop(tx);
    let mut state = client.state();
    let mut out = std::io::stdout().lock();
    // Ids of the frames printed last, so a frame reaching several subscriptions prints once.
    let mut recent: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                client.close().await;
                status(json!({"type": "state", "state": "closed", "reason": "interrupted"}));
                return ExitCode::SUCCESS;
            }
            changed = state.changed() => {
                if changed.is_err() {
                    return ExitCode::FAILURE;
                }
                let s = state.borrow_and_update().clone();
                status(state_line(&s));
                if s.state == ConnectionState::Closed {
                    eprintln!("guts-sub: connection closed for good: {}", s.reason);
                    return ExitCode::FAILURE;
                }
            }
            line = rx.recv() => match line {
                Some(Ok((id, line))) => {
                    if recent.contains(&id) {
                        continue;
                    }
                    if recent.len() == 1024 {
                        recent.pop_front();
                    }
                    recent.push_back(id);
                    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                        return ExitCode::FAILURE;
                    }
                }
                Some(Err(msg)) => {
                    eprintln!("guts-sub: {msg}");
                    client.close().await;
                    return ExitCode::FAILURE;
                }
                None => {}
            }
        }
    }
}
