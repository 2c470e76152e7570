//! `guts-pub`: publish one event (`POST /api/publish`) or one notification (`guts-pub notify`,
//! `POST /api/notify`) through a hub, and print the event's `seq` (or, with `--json`, the hub's
//! whole reply). DATA `-` reads the JSON from stdin. Exit 0 on success, 1 when the hub refuses or
//! cannot be reached in time, 2 for bad arguments.

use clap::{Parser, Subcommand};
use std::io::Read as _;
use std::process::ExitCode;
use std::time::Duration;

/// Publish one event (or notification) to a guts-realtime hub.
#[derive(Debug, Parser)]
#[command(version, subcommand_negates_reqs = true)]
struct Args {
    /// HTTP base URL of the hub.
    #[arg(long, default_value = "http://127.0.0.1:7800", env = "GUTS_HUB_HTTP", global = true)]
    url: String,
    /// The hub's publish key.
    #[arg(long, env = "GUTS_HUB_PUBLISH_KEY", global = true)]
    key: Option<String>,
    /// Seconds to wait for the hub's answer.
    #[arg(long, default_value_t = 10.0, global = true)]
    timeout_secs: f64,
    /// Print the hub's reply as JSON (instead of the seq).
    #[arg(long, global = true)]
    json: bool,
    /// Publish once per key and channel: a repeat (a retry of this command) is answered with
    /// the first publish's seq and `"duplicate":true` (1 to 128 bytes).
    #[arg(long)]
    idempotency_key: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
    /// Channel, e.g. repo:alice/app.
    #[arg(required = true)]
    channel: Option<String>,
    /// Event kind, e.g. push, pr_opened.
    #[arg(required = true)]
    event: Option<String>,
    /// JSON payload (default `{}`); `-` reads it from stdin.
    data: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Publish a notification (`POST /api/notify`): NOTIFICATION is its JSON
    /// (`{"id","user_id","notification_type","title",...}`), or `-` for stdin.
    Notify {
        /// The notification as JSON, or `-`.
        notification: String,
    },
}

/// The JSON of `arg` (`-`: stdin).
fn json_arg(arg: &str) -> Result<serde_json::Value, String> {
    let text = if arg == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map_err(|e| format!("cannot read stdin: {e}"))?;
        s
    } else {
        arg.to_owned()
    };
    serde_json::from_str(&text).map_err(|e| format!("not valid JSON: {e}"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let Some(key) = args.key.clone() else {
        eprintln!("guts-pub: the publish key is needed: --key or GUTS_HUB_PUBLISH_KEY");
        return ExitCode::from(2);
    };
    let (endpoint, body) = match &args.command {
        Some(Command::Notify { notification }) => match json_arg(notification) {
            Ok(n) => ("notify", n),
            Err(e) => {
                eprintln!("guts-pub: NOTIFICATION is {e}");
                return ExitCode::from(2);
            }
        },
        None => {
            let data = match args.data.as_deref().map(json_arg).transpose() {
                Ok(d) => d.unwrap_or_else(|| serde_json::json!({})),
                Err(e) => {
                    eprintln!("guts-pub: DATA is {e}");
                    return ExitCode::from(2);
                }
            };
            let (channel, event) = (args.channel.clone(), args.event.clone());
            let mut body = serde_json::json!({"channel": channel, "event": event, "data": data});
            if let Some(key) = &args.idempotency_key {
                body["idempotency_key"] = key.clone().into();
            }
            ("publish", body)
        }
    };
    let timeout = Duration::try_from_secs_f64(args.timeout_secs).unwrap_or(Duration::from_secs(10));
    let reply = guts_realtime_examples::hub_process::post_api(
        &args.url,
        endpoint,
        &key,
        &body.to_string(),
        timeout,
    );
    let (status, text) = match reply {
        Ok(r) => r,
        Err(e) => {
            eprintln!("guts-pub: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    match status {
        200..=299 if args.json => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        200..=299 => match (json.get("seq").and_then(|s| s.as_u64()), json.get("suppressed")) {
            (Some(seq), _) => {
                println!("{seq}");
                ExitCode::SUCCESS
            }
            (None, Some(_)) => {
                println!("suppressed");
                ExitCode::SUCCESS
            }
            _ => {
                eprintln!("guts-pub: unexpected reply: {text}");
                ExitCode::FAILURE
            }
        },
        _ if args.json => {
            println!("{json}");
            ExitCode::FAILURE
        }
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
