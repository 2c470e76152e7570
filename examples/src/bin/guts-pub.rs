//! `guts-pub`: publish one event through a hub's `POST /api/publish` and print its `seq`.

use clap::Parser;
use std::process::ExitCode;

/// Publish one event to a guts-realtime hub.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// HTTP base URL of the hub.
    #[arg(long, default_value = "http://127.0.0.1:7800", env = "GUTS_HUB_HTTP")]
    url: String,
    /// The hub's publish key.
    #[arg(long, env = "GUTS_HUB_PUBLISH_KEY")]
    key: String,
    /// Channel, e.g. repo:alice/app.
    channel: String,
    /// Event kind, e.g. push, pr_opened.
    event: String,
    /// JSON payload (default `{}`).
    data: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let data: serde_json::Value = match args.data.as_deref().map(serde_json::from_str).transpose() {
        Ok(d) => d.unwrap_or_else(|| serde_json::json!({})),
        Err(e) => {
            eprintln!("guts-pub: DATA_JSON is not valid JSON: {e}");
            return ExitCode::from(2);
        }
    };
    let body = serde_json::json!({"channel": args.channel, "event": args.event, "data": data});
    let (status, text) = match guts_realtime_examples::hub_process::post_publish(
        &args.url,
        &args.key,
        &body.to_string(),
    ) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("guts-pub: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    match status {
        200..=299 => match json.get("seq").and_then(|s| s.as_u64()) {
            Some(seq) => {
                println!("{seq}");
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("guts-pub: unexpected reply: {text}");
                ExitCode::FAILURE
            }
        },
        401 => {
            eprintln!("guts-pub: 401 unauthorized: wrong or missing publish key");
            ExitCode::FAILURE
        }
        _ => {
            let msg = json.get("error").and_then(|e| e.as_str()).unwrap_or(text.as_str());
            eprintln!("guts-pub: {status}: {msg}");
            ExitCode::FAILURE
        }
    }
}
