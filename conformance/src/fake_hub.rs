//! The scripted fake hub: a WebSocket server that plays a JSON [`Scenario`] against whatever
//! client connects and says whether the client did what the scenario expects. Client SDK
//! authors run their SDK against it (the same files drive `conformance/js/fake_hub.mjs`).
//!
//! A scenario's `steps` run in order on the current connection:
//!
//! | step | what |
//! |---|---|
//! | `{"accept": {"within_ms": 5000, "not_before_ms": 0}}` | the client's next connection (no sooner than `not_before_ms` after the last close) becomes the current one |
//! | `{"no_accept": {"ms": 1500}}` | no new connection for `ms` |
//! | `{"send": FRAME}` / `{"send_raw": "TEXT"}` | a frame (captures substituted) / text verbatim |
//! | `{"expect": PATTERN, "within_ms": 5000}` | the client's next text frame matches `PATTERN` |
//! | `{"expect_nothing": {"ms": 200}}` | no text frame for `ms` |
//! | `{"expect_close": {"code": 1000, "within_ms": 5000}}` | the client closes (with `code`, if given) |
//! | `{"close": {"code": 1012, "reason": "…"}}` / `{"drop": {}}` | the hub closes / drops the TCP connection |
//! | `{"sleep": {"ms": 50}}` | waits |
//!
//! A pattern matches when every key it has matches (extra keys are allowed; arrays element by
//! element, same length). `"$any"` matches any present value, `"$absent"` an absent key,
//! `"$name"` captures the value (or, once captured, must equal it; in `send` it is replaced by
//! it), `"$$x"` is the literal `"$x"`. `client` and `client_expects` are for the harness that
//! drives the SDK: what it does, and what the SDK must report.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// A scenario file.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Scenario {
    /// Its name.
    pub name: String,
    /// What it is about.
    #[serde(default)]
    pub description: String,
    /// For the harness: what the client does (`subscribe`, `token`, …).
    #[serde(default)]
    pub client: Value,
    /// For the harness: what the SDK must report (`events`, `gaps`, `final_state`).
    #[serde(default)]
    pub client_expects: Value,
    /// The steps.
    pub steps: Vec<Value>,
}

impl Scenario {
    /// Reads a scenario file.
    ///
    /// # Errors
    /// An unreadable file or bad JSON.
    pub fn load(path: &std::path::Path) -> Result<Scenario, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Where a scenario stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The index of the failed step.
    pub step: usize,
    /// What went wrong.
    pub error: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "step {}: {}", self.step, self.error)
    }
}

/// A running fake hub.
#[derive(Debug)]
pub struct FakeHub {
    /// `ws://ADDR/ws`.
    pub url: String,
    done: tokio::task::JoinHandle<Result<(), Failure>>,
}

impl FakeHub {
    /// Listens on `addr` (`127.0.0.1:0` for any port) and plays `scenario` to the clients that
    /// connect.
    ///
    /// # Errors
    /// When it cannot listen.
    pub async fn start(scenario: Scenario, addr: &str) -> std::io::Result<FakeHub> {
        let listener = TcpListener::bind(addr).await?;
        let url = format!("ws://{}/ws", listener.local_addr()?);
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    if let Ok(ws) = tokio_tungstenite::accept_async(tcp).await {
                        let _ = tx.send((Instant::now(), ws));
                    }
                });
            }
        });
        let done = tokio::spawn(play(scenario.steps, rx));
        Ok(FakeHub { url, done })
    }

    /// Waits for the scenario's end: `Ok` when the client did all it expects.
    ///
    /// # Errors
    /// The step that failed.
    pub async fn result(self) -> Result<(), Failure> {
        self.done.await.unwrap_or_else(|e| Err(Failure { step: 0, error: e.to_string() }))
    }
}

type Ws = WebSocketStream<TcpStream>;

struct Player {
    incoming: mpsc::UnboundedReceiver<(Instant, Ws)>,
    current: Option<Ws>,
    /// When the last connection was closed (by either side).
    closed_at: Option<Instant>,
    captures: HashMap<String, Value>,
}

async fn play(
    steps: Vec<Value>,
    incoming: mpsc::UnboundedReceiver<(Instant, Ws)>,
) -> Result<(), Failure> {
    let mut p = Player { incoming, current: None, closed_at: None, captures: HashMap::new() };
    for (i, step) in steps.iter().enumerate() {
        p.step(step)
            .await
            .map_err(|error| Failure { step: i, error: format!("{step}: {error}") })?;
    }
    Ok(())
}

fn ms(v: &Value, key: &str, default: u64) -> Duration {
    Duration::from_millis(v.get(key).and_then(Value::as_u64).unwrap_or(default))
}

impl Player {
    fn ws(&mut self) -> Result<&mut Ws, String> {
        self.current.as_mut().ok_or_else(|| "no connection (accept first)".to_owned())
    }

    async fn step(&mut self, step: &Value) -> Result<(), String> {
        let obj = step.as_object().ok_or("a step is an object")?;
        let (kind, arg) =
            obj.iter().find(|(k, _)| k.as_str() != "within_ms").ok_or("an empty step")?;
        match kind.as_str() {
            "accept" => self.accept(arg).await,
            "no_accept" => match timeout(ms(arg, "ms", 1000), self.incoming.recv()).await {
                Err(_) => Ok(()),
                Ok(_) => Err("the client connected".to_owned()),
            },
            "send" => {
                let frame = substitute(arg, &self.captures).to_string();
                self.ws()?.send(Message::text(frame)).await.map_err(|e| e.to_string())
            }
            "send_raw" => {
                let text = arg.as_str().ok_or("send_raw takes a string")?.to_owned();
                self.ws()?.send(Message::text(text)).await.map_err(|e| e.to_string())
            }
            "expect" => {
                let within = ms(step, "within_ms", 5000);
                let text = timeout(within, next_text(self.ws()?))
                    .await
                    .map_err(|_| format!("no frame within {within:?}"))??;
                let got: Value =
                    serde_json::from_str(&text).map_err(|e| format!("not JSON ({e}): {text}"))?;
                let mut caps = self.captures.clone();
                if matches(arg, Some(&got), &mut caps) {
                    self.captures = caps;
                    Ok(())
                } else {
                    Err(format!("got {text}"))
                }
            }
            "expect_nothing" => {
                let d = ms(arg, "ms", 200);
                match timeout(d, next_text(self.ws()?)).await {
                    Err(_) => Ok(()),
                    Ok(Ok(text)) => Err(format!("got {text}")),
                    Ok(Err(e)) => Err(e),
                }
            }
            "expect_close" => {
                let within = ms(arg, "within_ms", 5000);
                let ws = self.ws()?;
                let code = timeout(within, async {
                    loop {
                        match ws.next().await {
                            Some(Ok(Message::Close(f))) => return Ok(f.map(|f| u16::from(f.code))),
                            Some(Ok(Message::Text(t))) => return Err(format!("got {t}")),
                            Some(Ok(_)) => continue,
                            _ => return Err("the connection dropped without a close".to_owned()),
                        }
                    }
                })
                .await
                .map_err(|_| format!("no close within {within:?}"))??;
                self.closed_at = Some(Instant::now());
                self.current = None;
                match arg.get("code").and_then(Value::as_u64) {
                    Some(want) if code != Some(want as u16) => {
                        Err(format!("closed with {code:?}, expected {want}"))
                    }
                    _ => Ok(()),
                }
            }
            "close" => {
                let code = arg.get("code").and_then(Value::as_u64).unwrap_or(1000) as u16;
                let reason = arg.get("reason").and_then(Value::as_str).unwrap_or("").to_owned();
                let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
                let mut ws = self.current.take().ok_or("no connection to close")?;
                self.closed_at = Some(Instant::now());
                let _ = ws.close(Some(frame)).await;
                // The client's close reply, briefly; the socket goes either way.
                let _ = timeout(Duration::from_millis(500), async {
                    while let Some(Ok(_)) = ws.next().await {}
                })
                .await;
                Ok(())
            }
            "drop" => {
                self.current = None;
                self.closed_at = Some(Instant::now());
                Ok(())
            }
            "sleep" => {
                tokio::time::sleep(ms(arg, "ms", 0)).await;
                Ok(())
            }
            other => Err(format!("unknown step {other:?}")),
        }
    }

    async fn accept(&mut self, arg: &Value) -> Result<(), String> {
        let within = ms(arg, "within_ms", 5000);
        let (at, ws) = timeout(within, self.incoming.recv())
            .await
            .map_err(|_| format!("no connection within {within:?}"))?
            .ok_or("the listener stopped")?;
        if let (Some(closed), Some(nb)) = (self.closed_at, arg.get("not_before_ms")) {
            let not_before = Duration::from_millis(nb.as_u64().unwrap_or(0));
            let after = at.saturating_duration_since(closed);
            if after < not_before {
                return Err(format!(
                    "the client reconnected after {after:?}, before {not_before:?}"
                ));
            }
        }
        self.current = Some(ws);
        Ok(())
    }
}

/// The next text frame (pings and pongs skipped).
async fn next_text(ws: &mut Ws) -> Result<String, String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(t.to_string()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(f))) => return Err(format!("the client closed: {f:?}")),
            Some(Ok(other)) => return Err(format!("unexpected frame {other:?}")),
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("the connection dropped".to_owned()),
        }
    }
}

/// A capture name: `$` then `[a-z0-9_]+`, not `any` or `absent`.
fn capture(s: &str) -> Option<&str> {
    let name = s.strip_prefix('$')?;
    let ok = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && name != "any"
        && name != "absent";
    ok.then_some(name)
}

/// Whether `got` (absent: `None`) matches `pattern`, capturing into `caps`.
pub fn matches(pattern: &Value, got: Option<&Value>, caps: &mut HashMap<String, Value>) -> bool {
    match pattern {
        Value::String(s) if s == "$absent" => got.is_none(),
        Value::String(s) if s == "$any" => got.is_some(),
        Value::String(s) if capture(s).is_some() => {
            let (Some(name), Some(got)) = (capture(s), got) else { return false };
            match caps.get(name) {
                Some(v) => v == got,
                None => {
                    caps.insert(name.to_owned(), got.clone());
                    true
                }
            }
        }
        Value::String(s) if s.starts_with("$$") => got == Some(&Value::String(s[1..].to_owned())),
        Value::Object(p) => {
            let Some(Value::Object(g)) = got else { return false };
            p.iter().all(|(k, v)| matches(v, g.get(k), caps))
        }
        Value::Array(p) => {
            let Some(Value::Array(g)) = got else { return false };
            p.len() == g.len() && p.iter().zip(g).all(|(p, g)| matches(p, Some(g), caps))
        }
        scalar => got == Some(scalar),
    }
}

/// `v` with every `"$name"` replaced by its capture (and `"$$x"` by `"$x"`).
pub fn substitute(v: &Value, caps: &HashMap<String, Value>) -> Value {
    match v {
        Value::String(s) if s.starts_with("$$") => Value::String(s[1..].to_owned()),
        Value::String(s) => {
            capture(s).and_then(|n| caps.get(n)).cloned().unwrap_or_else(|| v.clone())
        }
        Value::Object(o) => Value::Object(
            o.iter().map(|(k, v)| (k.clone(), substitute(v, caps))).collect::<Map<_, _>>(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| substitute(v, caps)).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patterns_match_subsets_capture_and_substitute() {
        let mut caps = HashMap::new();
        let got = json!({"type": "subscribe", "channel": "repo:a/b", "id": 3, "extra": true});
        assert!(matches(&json!({"type": "subscribe", "id": "$sub"}), Some(&got), &mut caps));
        assert_eq!(caps["sub"], 3);
        assert!(matches(&json!({"id": "$sub", "since": "$absent"}), Some(&got), &mut caps));
        assert!(!matches(&json!({"id": "$sub", "channel": "$absent"}), Some(&got), &mut caps));
        assert!(!matches(&json!({"since": "$any"}), Some(&got), &mut caps));
        let other = json!({"id": 4});
        assert!(!matches(&json!({"id": "$sub"}), Some(&other), &mut caps), "bound: must equal");
        assert!(matches(&json!({"x": "$$lit"}), Some(&json!({"x": "$lit"})), &mut caps));
        assert!(!matches(&json!([1, 2]), Some(&json!([1, 2, 3])), &mut caps));
        let sent = substitute(&json!({"type": "subscribed", "id": "$sub", "s": "$$sub"}), &caps);
        assert_eq!(sent, json!({"type": "subscribed", "id": 3, "s": "$sub"}));
    }
}
