//! The scripted fake hub: a WebSocket server that plays a JSON [`Scenario`] against whatever
//! client connects and says whether the client did what the scenario expects. Client SDK
//! authors run their SDK against it (the same files drive `conformance/js/fake_hub.mjs`).
//!
//! A scenario's `steps` run in order on the current connection:
//!
//! | step | what |
//! |---|---|
//! | `{"accept": {"within_ms": 5000, "not_before_ms": 0}}` | the client's next connection becomes the current one (a current one still open is dropped); it may not arrive sooner than `not_before_ms` after the previous connection ended (the hub's `close`/`drop`, the client's close as seen by the hub, this step if it was still open, or the hub's start) |
//! | `{"no_accept": {"ms": 1500}}` | no new connection for `ms` |
//! | `{"send": FRAME}` / `{"send_raw": "TEXT"}` | a frame (captures substituted) / text verbatim |
//! | `{"expect": PATTERN, "within_ms": 5000}` | the client's next text frame matches `PATTERN` |
//! | `{"expect_nothing": {"ms": 200}}` | no text frame for `ms` (a close is not one: it is kept for `expect_close`) |
//! | `{"expect_close": {"code": 1000, "within_ms": 5000}}` | the client's close comes next (with `code`, if given; 1005: a close frame without code, 1006: no close frame) |
//! | `{"close": {"code": 1012, "reason": "…"}}` / `{"drop": {}}` | the hub closes / drops the TCP connection (nothing once the client closed) |
//! | `{"sleep": {"ms": 50}}` | waits |
//!
//! A pattern matches when every key it has matches (extra keys are allowed; arrays element by
//! element, same length). `"$any"` matches any present value, `"$absent"` an absent key,
//! `"$name"` captures the value (or, once captured, must equal it; in `send` it is replaced by
//! it; sending one not captured yet fails the step), `"$$x"` is the literal `"$x"`; numbers
//! compare by value. Waits default to 5000 ms; `no_accept`, `expect_nothing` and `sleep` need
//! their `ms`. [`Scenario::check`] refuses a malformed step, naming it. `client` and
//! `client_expects` are for the harness that drives the SDK: what it does, and what the SDK must
//! report.

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
    /// Reads and checks a scenario file.
    ///
    /// # Errors
    /// An unreadable file, bad JSON, or a malformed step (named).
    pub fn load(path: &std::path::Path) -> Result<Scenario, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let s: Scenario =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        s.check().map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(s)
    }

    /// Checks every step: one kind each (and `within_ms` only beside `expect`), known keys,
    /// required values, a close code a server may send.
    ///
    /// # Errors
    /// The first malformed step.
    pub fn check(&self) -> Result<(), String> {
        const ARGS: [(&str, &[&str], &[&str]); 7] = [
            ("accept", &["within_ms", "not_before_ms"], &[]),
            ("no_accept", &["ms"], &["ms"]),
            ("expect_nothing", &["ms"], &["ms"]),
            ("expect_close", &["code", "within_ms"], &[]),
            ("close", &["code", "reason"], &["code"]),
            ("drop", &[], &[]),
            ("sleep", &["ms"], &["ms"]),
        ];
        if self.steps.is_empty() {
            return Err("a scenario needs a non-empty `steps` array".into());
        }
        for (i, step) in self.steps.iter().enumerate() {
            let bad = |why: &str| Err(format!("step {i} {step}: {why}"));
            let Some(obj) = step.as_object() else { return bad("a step is an object") };
            let kinds: Vec<&String> = obj
                .keys()
                .filter(|k| !(k.as_str() == "within_ms" && obj.contains_key("expect")))
                .collect();
            let [kind] = kinds[..] else {
                return bad("a step has exactly one kind (and `within_ms` beside `expect`)");
            };
            let arg = &obj[kind.as_str()];
            match kind.as_str() {
                "send" | "expect" => {}
                "send_raw" if arg.is_string() => {}
                "send_raw" => return bad("send_raw takes a string"),
                k => {
                    let Some((_, known, required)) = ARGS.iter().find(|(n, _, _)| *n == k) else {
                        return bad(&format!("unknown step kind `{k}`"));
                    };
                    let Some(a) = arg.as_object() else { return bad("takes an object") };
                    if let Some(key) = a.keys().find(|key| !known.contains(&key.as_str())) {
                        return bad(&format!("unknown key `{key}`"));
                    }
                    if let Some(key) = required.iter().find(|key| !a.contains_key(**key)) {
                        return bad(&format!("`{key}` is required"));
                    }
                    let ms = ["ms", "within_ms", "not_before_ms"];
                    if ms.iter().any(|m| a.get(*m).is_some_and(|v| !v.is_u64())) {
                        return bad("times are integers >= 0 (ms)");
                    }
                    if k == "close" {
                        let c = a["code"].as_u64().unwrap_or(0);
                        let sendable = ((1000..=1014).contains(&c)
                            && ![1004, 1005, 1006].contains(&c))
                            || (3000..=4999).contains(&c);
                        if !sendable {
                            return bad(&format!(
                                "close code {c} cannot be sent (use drop for 1006)"
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
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
    /// A malformed scenario, or an address it cannot listen on.
    pub async fn start(scenario: Scenario, addr: &str) -> std::io::Result<FakeHub> {
        scenario.check().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
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

/// What the client sent next.
enum Next {
    Text(String),
    /// Its close code (1005: a close frame without code, 1006: no close frame).
    Closed(u16),
}

struct Player {
    incoming: mpsc::UnboundedReceiver<(Instant, Ws)>,
    current: Option<Ws>,
    /// The current connection's close, once seen (the code).
    client_closed: Option<u16>,
    /// When the last connection ended (the reference of `not_before_ms`).
    ended_at: Instant,
    captures: HashMap<String, Value>,
}

async fn play(
    steps: Vec<Value>,
    incoming: mpsc::UnboundedReceiver<(Instant, Ws)>,
) -> Result<(), Failure> {
    let mut p = Player {
        incoming,
        current: None,
        client_closed: None,
        ended_at: Instant::now(),
        captures: HashMap::new(),
    };
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
    /// The current connection, still open.
    fn open(&mut self) -> Result<&mut Ws, String> {
        if let Some(code) = self.client_closed {
            return Err(format!("the client closed ({code})"));
        }
        self.current.as_mut().ok_or_else(|| "no connection (accept first)".to_owned())
    }

    /// The client's next text frame or close, within `d`.
    async fn next(&mut self, d: Duration) -> Result<Option<Next>, String> {
        let ws = self.open()?;
        let got = timeout(d, async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(t))) => return Ok(Next::Text(t.to_string())),
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                    Some(Ok(Message::Binary(_))) => return Err("a binary frame".to_owned()),
                    Some(Ok(Message::Close(f))) => {
                        return Ok(Next::Closed(f.map_or(1005, |f| u16::from(f.code))))
                    }
                    Some(Err(_)) | None => return Ok(Next::Closed(1006)),
                }
            }
        })
        .await;
        match got {
            Err(_) => Ok(None),
            Ok(Ok(Next::Closed(code))) => {
                self.client_closed = Some(code);
                self.ended_at = Instant::now();
                Ok(Some(Next::Closed(code)))
            }
            Ok(r) => r.map(Some),
        }
    }

    async fn step(&mut self, step: &Value) -> Result<(), String> {
        let obj = step.as_object().ok_or("a step is an object")?;
        let (kind, arg) = obj
            .iter()
            .find(|(k, _)| k.as_str() != "within_ms" || !obj.contains_key("expect"))
            .ok_or("an empty step")?;
        match kind.as_str() {
            "accept" => self.accept(arg).await,
            "no_accept" => match timeout(ms(arg, "ms", 0), self.incoming.recv()).await {
                Err(_) => Ok(()),
                Ok(_) => Err("a new connection arrived".to_owned()),
            },
            "send" => {
                let frame = substitute(arg, &self.captures)?.to_string();
                self.open()?.send(Message::text(frame)).await.map_err(|e| e.to_string())
            }
            "send_raw" => {
                let text = arg.as_str().unwrap_or_default().to_owned();
                self.open()?.send(Message::text(text)).await.map_err(|e| e.to_string())
            }
            "expect" => {
                let within = ms(step, "within_ms", 5000);
                match self.next(within).await? {
                    None => Err(format!("no frame within {within:?}")),
                    Some(Next::Closed(code)) => Err(format!("the client closed ({code})")),
                    Some(Next::Text(text)) => {
                        let got: Value = serde_json::from_str(&text)
                            .map_err(|e| format!("not JSON ({e}): {text}"))?;
                        let mut caps = self.captures.clone();
                        if matches(arg, Some(&got), &mut caps) {
                            self.captures = caps;
                            Ok(())
                        } else {
                            Err(format!("received {text}"))
                        }
                    }
                }
            }
            "expect_nothing" => {
                if self.client_closed.is_some() {
                    return Ok(());
                }
                match self.next(ms(arg, "ms", 0)).await? {
                    Some(Next::Text(text)) => Err(format!("received {text}")),
                    // A close is not a frame; it is kept for `expect_close`.
                    _ => Ok(()),
                }
            }
            "expect_close" => {
                let within = ms(arg, "within_ms", 5000);
                let code = match self.client_closed {
                    Some(code) => code,
                    None => match self.next(within).await? {
                        None => return Err(format!("no close within {within:?}")),
                        Some(Next::Text(text)) => return Err(format!("received {text}")),
                        Some(Next::Closed(code)) => code,
                    },
                };
                match arg.get("code").and_then(Value::as_u64) {
                    Some(want) if u64::from(code) != want => {
                        Err(format!("closed with {code}, expected {want}"))
                    }
                    _ => Ok(()),
                }
            }
            "close" => {
                if self.client_closed.is_some() || self.current.is_none() {
                    return Ok(());
                }
                let code = arg.get("code").and_then(Value::as_u64).unwrap_or(1000) as u16;
                let reason = arg.get("reason").and_then(Value::as_str).unwrap_or("").to_owned();
                let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
                let mut ws = self.current.take().ok_or("no connection")?;
                self.ended_at = Instant::now();
                let _ = ws.close(Some(frame)).await;
                // The client's close reply, briefly; the socket goes either way.
                let _ = timeout(Duration::from_millis(500), async {
                    while let Some(Ok(_)) = ws.next().await {}
                })
                .await;
                Ok(())
            }
            "drop" => {
                if self.current.take().is_some() && self.client_closed.is_none() {
                    self.ended_at = Instant::now();
                }
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
        let started = Instant::now();
        if self.current.take().is_some() && self.client_closed.is_none() {
            // Still open: dropped, and the reference point is now.
            self.ended_at = started;
        }
        self.client_closed = None;
        let within = ms(arg, "within_ms", 5000);
        let (at, ws) = timeout(within, self.incoming.recv())
            .await
            .map_err(|_| format!("no connection within {within:?}"))?
            .ok_or("the listener stopped")?;
        let not_before = ms(arg, "not_before_ms", 0);
        let after = at.saturating_duration_since(self.ended_at);
        if after < not_before {
            return Err(format!("the client reconnected after {after:?}, before {not_before:?}"));
        }
        self.current = Some(ws);
        Ok(())
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
        Value::Number(n) => got.and_then(Value::as_f64).is_some_and(|g| n.as_f64() == Some(g)),
        scalar => got == Some(scalar),
    }
}

/// `v` with every `"$name"` replaced by its capture (and `"$$x"` by `"$x"`).
///
/// # Errors
/// A `"$name"` not captured yet, `"$any"` or `"$absent"`.
pub fn substitute(v: &Value, caps: &HashMap<String, Value>) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) if s.starts_with("$$") => Value::String(s[1..].to_owned()),
        Value::String(s) if s == "$any" || s == "$absent" => {
            return Err(format!("{s} cannot be sent"))
        }
        Value::String(s) => match capture(s) {
            Some(n) => caps.get(n).cloned().ok_or_else(|| format!("{s} was not captured"))?,
            None => v.clone(),
        },
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| Ok((k.clone(), substitute(v, caps)?)))
                .collect::<Result<Map<_, _>, String>>()?,
        ),
        Value::Array(a) => {
            Value::Array(a.iter().map(|v| substitute(v, caps)).collect::<Result<_, _>>()?)
        }
        other => other.clone(),
    })
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
        assert_eq!(sent.unwrap(), json!({"type": "subscribed", "id": 3, "s": "$sub"}));
        assert!(substitute(&json!({"id": "$nope"}), &caps).is_err());
        assert!(matches(&json!({"seq": 1}), Some(&json!({"seq": 1.0})), &mut caps), "by value");
    }
}
