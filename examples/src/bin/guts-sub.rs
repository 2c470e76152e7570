//! `guts-sub`: subscribe to channels and print what arrives.
//!
//! Events and notifications go to stdout, one JSON line each (the frame as received, or only its
//! `data` / `notification` with `--data-only`), and so do the signals received and, with
//! `--presence`, the presence of each channel (`presence`, `join` and `leave` lines, as the
//! frames); connection states, gaps and errors go to stderr as JSON lines. Reconnects forever; exits 0 after `--count` events, or on Ctrl-C / SIGTERM
//! after a clean close, and non-zero with a clear message on a terminal error (bad token,
//! invalid channel, refused subscription). `--since SEQ:EPOCH` resumes from a saved position.

use clap::Parser;
use futures_util::StreamExt;
use guts_realtime::{ServerMessage, Since};
use guts_realtime_native::client::{ConnectionState, StateInfo};
use guts_realtime_native::{Client, Item, SubscribeOptions};
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
    /// Exit 0 after printing this many events.
    #[arg(long)]
    count: Option<u64>,
    /// Resume from this position (`SEQ:EPOCH`, as a `subscribed` or an event gives them): what
    /// came after it is replayed, or a gap is reported.
    #[arg(long, value_parser = parse_since)]
    since: Option<Since>,
    /// Print only each event's `data` (a notification's `notification`).
    #[arg(long)]
    data_only: bool,
    /// Join each channel's presence and print who is there, then who joins and leaves.
    #[arg(long)]
    presence: bool,
    /// Channels: repo:OWNER/NAME[/prs|/issues], user:NAME, org:NAME.
    #[arg(required = true)]
    channels: Vec<String>,
}

fn parse_since(s: &str) -> Result<Since, String> {
    let (seq, epoch) = s.split_once(':').ok_or("expected SEQ:EPOCH")?;
    let seq = seq.parse().map_err(|_| format!("{seq:?} is not a seq"))?;
    if epoch.is_empty() {
        return Err("the epoch is empty".into());
    }
    Ok(Since { seq, epoch: epoch.to_owned() })
}

/// Completes on SIGTERM (never elsewhere).
async fn sigterm() {
    #[cfg(unix)]
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        term.recv().await;
        return;
    }
    std::future::pending::<()>().await
}

/// A line for stdout.
enum Line {
    /// An event or notification: its unique id and text (counted by `--count`).
    Event(String, String),
    /// A presence or signal line.
    Other(String),
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
    // What to print: an event's (unique id, frame) — several subscriptions may receive the same
    // frame — or another line (presence, signal: no id, not counted by `--count`).
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Result<Line, String>>();
    let mut subs = Vec::new();
    for ch in &args.channels {
        let mut opts = SubscribeOptions::default().presence(args.presence);
        if let Some(since) = &args.since {
            opts = opts.since(since.clone());
        }
        let sub = client.subscribe_with(ch, opts).await;
        match sub {
            Ok(sub) => subs.push(sub),
            Err(e) => {
                eprintln!("guts-sub: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let data_only = args.data_only;
    for mut sub in subs {
        let tx = tx.clone();
        tokio::spawn(async move {
            let channel = sub.channel().to_owned();
            while let Some(item) = sub.next().await {
                let other = |m: ServerMessage| Ok(Line::Other(m.encode().to_string()));
                let line = match item {
                    Item::Event(e) if data_only => {
                        Ok(Line::Event(e.event_id.clone(), e.data.to_string()))
                    }
                    Item::Event(e) => Ok(Line::Event(
                        e.event_id.clone(),
                        ServerMessage::Event(e).encode().to_string(),
                    )),
                    Item::UnknownEvent(e) if data_only => {
                        Ok(Line::Event(e.event_id.clone(), e.data.to_string()))
                    }
                    Item::UnknownEvent(e) => Ok(Line::Event(
                        e.event_id.clone(),
                        ServerMessage::UnknownEvent(e).encode().to_string(),
                    )),
                    Item::Notification { notification, .. } if data_only => {
                        let line = serde_json::to_string(&notification).unwrap_or_default();
                        Ok(Line::Event(notification.id.clone(), line))
                    }
                    Item::Notification { notification, seq } => Ok(Line::Event(
                        notification.id.clone(),
                        ServerMessage::Notification { channel: channel.clone(), notification, seq }
                            .encode()
                            .to_string(),
                    )),
                    Item::Presence(members) => other(ServerMessage::Presence {
                        channel: channel.clone(),
                        members,
                        truncated: false,
                    }),
                    Item::Join(user) => {
                        other(ServerMessage::Join { channel: channel.clone(), user })
                    }
                    Item::Leave(user) => {
                        other(ServerMessage::Leave { channel: channel.clone(), user })
                    }
                    Item::Signal { event, data, user } => {
                        other(ServerMessage::Signal { channel: channel.clone(), event, data, user })
                    }
                    Item::Subscribed { recovered } => {
                        // `position`: what `--since` takes to resume from here.
                        let position = sub.position().map(|p| format!("{}:{}", p.seq, p.epoch));
                        status(json!({"type": "subscribed", "channel": channel,
                            "recovered": recovered, "position": position}));
                        continue;
                    }
                    Item::Gap { last_seq, resume_seq, reason } => {
                        status(json!({"type": "gap", "channel": channel, "last_seq": last_seq,
                            "resume_seq": resume_seq, "reason": reason.as_str()}));
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
    let mut printed = 0u64;
    if args.count == Some(0) {
        client.close().await;
        return ExitCode::SUCCESS;
    }
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                client.close().await;
                status(json!({"type": "state", "state": "closed", "reason": "interrupted"}));
                return ExitCode::SUCCESS;
            }
            () = sigterm() => {
                client.close().await;
                status(json!({"type": "state", "state": "closed", "reason": "terminated"}));
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
                Some(Ok(Line::Other(line)))
                    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() =>
                {
                    return ExitCode::FAILURE;
                }
                Some(Ok(Line::Other(_))) => {}
                Some(Ok(Line::Event(id, line))) => {
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
                    printed += 1;
                    if args.count == Some(printed) {
                        client.close().await;
                        return ExitCode::SUCCESS;
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
