//! How the load generator talks to each hub: our JSON protocol (guts-hub and the `ws` peer) or
//! Socket.IO's framing around the same JSON (the socket.io peer).

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A hub under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// guts-hub: our JSON; the publisher authenticates with the publish key.
    Guts,
    /// `hub-ws.js`: our JSON, no auth.
    Ws,
    /// `hub-sio.js`: Socket.IO v4 framing, event `msg`.
    Sio,
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The sending half of a bench connection.
pub type Tx = SplitSink<Ws, Message>;
/// The receiving half of a bench connection.
pub type Rx = SplitStream<Ws>;

/// A WebSocket config with small buffers, so 10k clients fit in one process.
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0)
}

/// Opens a connection and performs the hub's handshake (Socket.IO's `40`, our `welcome`).
///
/// # Errors
/// On connect failure.
pub async fn connect(proto: Proto, addr: &str) -> Result<(Tx, Rx), String> {
    let url = match proto {
        Proto::Guts => format!("ws://{addr}/ws"),
        Proto::Ws => format!("ws://{addr}/"),
        Proto::Sio => format!("ws://{addr}/socket.io/?EIO=4&transport=websocket"),
    };
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(ws_config()), true)
        .await
        .map_err(|e| e.to_string())?;
    let (mut tx, mut rx) = ws.split();
    match proto {
        Proto::Guts => {
            next_text(&mut rx, &mut tx, proto).await.ok_or("no welcome")?;
        }
        Proto::Sio => {
            next_text(&mut rx, &mut tx, proto).await.ok_or("no engine.io open")?;
            tx.send(Message::text("40")).await.map_err(|e| e.to_string())?;
            next_text(&mut rx, &mut tx, proto).await.ok_or("no socket.io connect")?;
        }
        Proto::Ws => {}
    }
    Ok((tx, rx))
}

/// Wraps one JSON message in the hub's framing.
pub fn frame(proto: Proto, json: &str) -> Message {
    match proto {
        Proto::Sio => Message::text(format!("42[\"msg\",{json}]")),
        _ => Message::text(json.to_owned()),
    }
}

/// The next text payload (unwrapped from Socket.IO framing, answering its pings); `None` when
/// the connection ends.
pub async fn next_text(rx: &mut Rx, tx: &mut Tx, proto: Proto) -> Option<String> {
    loop {
        match rx.next().await? {
            Ok(Message::Text(t)) => {
                if proto != Proto::Sio {
                    return Some(t.to_string());
                }
                let s = t.as_str();
                if s == "2" {
                    let _ = tx.send(Message::text("3")).await;
                    continue;
                }
                if let Some(body) = s.strip_prefix("42[\"msg\",") {
                    return Some(body.strip_suffix(']').unwrap_or(body).to_owned());
                }
                if s.starts_with('0') || s.starts_with("40") {
                    return Some(s.to_owned());
                }
            }
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Subscribes and waits for the reply.
///
/// # Errors
/// When the hub does not confirm.
pub async fn subscribe(
    proto: Proto,
    tx: &mut Tx,
    rx: &mut Rx,
    channel: &str,
) -> Result<(), String> {
    let msg = format!(r#"{{"type":"subscribe","channel":"{channel}"}}"#);
    tx.send(frame(proto, &msg)).await.map_err(|e| e.to_string())?;
    loop {
        let t = next_text(rx, tx, proto).await.ok_or("closed before subscribed")?;
        if t.contains("\"subscribed\"") {
            return Ok(());
        }
    }
}

/// The emit time (`data.ts`, µs since the run's start) of an event frame; `None` for any other
/// frame. Every hub writes compact JSON (`"type":"event"`, `"ts":N`), so two substring searches
/// do; a full JSON parse per frame would cost the load generator more than the hub's side of
/// the delivery and push its core to saturation first.
pub fn emit_ts(frame: &str) -> Option<u64> {
    if !frame.contains(r#""type":"event""#) {
        return None;
    }
    let at = frame.find(r#""ts":"#)? + 5;
    let digits = frame[at..].bytes().take_while(u8::is_ascii_digit).count();
    frame[at..at + digits].parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn emit_ts_reads_events_only() {
        let ev = r#"{"type":"event","channel":"repo:b/f","event":"push","data":{"ts":12345,"pad":"xx"},"seq":3}"#;
        assert_eq!(super::emit_ts(ev), Some(12345));
        assert_eq!(super::emit_ts(r#"{"type":"subscribed","channel":"repo:b/f","seq":0}"#), None);
        assert_eq!(super::emit_ts(r#"{"type":"event","data":{}}"#), None);
    }
}
