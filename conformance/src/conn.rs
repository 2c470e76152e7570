//! A raw WebSocket test connection: send text, read exact frames, expect closes. The suite
//! checks the wire itself, so it does not go through the SDK.

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long one expected frame may take.
pub const WAIT: Duration = Duration::from_secs(5);

/// One raw connection.
#[derive(Debug)]
pub struct Conn {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The `welcome` frame.
    pub welcome: Value,
}

/// A check's failure.
pub type Fail = String;

impl Conn {
    /// Connects and reads the `welcome` frame.
    ///
    /// # Errors
    /// When the hub cannot be reached or does not welcome.
    pub async fn open(url: &str) -> Result<Conn, Fail> {
        let (ws, _) = timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .map_err(|_| "connect timed out".to_owned())?
            .map_err(|e| format!("connect failed: {e}"))?;
        let mut c = Conn { ws, welcome: Value::Null };
        let w = c.recv().await?;
        if w["type"] != "welcome" || !w["epoch"].is_string() {
            return Err(format!("first frame is not a welcome with an epoch: {w}"));
        }
        c.welcome = w;
        Ok(c)
    }

    /// The hub's epoch from the welcome.
    pub fn epoch(&self) -> String {
        self.welcome["epoch"].as_str().unwrap_or_default().to_owned()
    }

    /// Sends a text frame.
    ///
    /// # Errors
    /// When the socket is gone.
    pub async fn send(&mut self, text: &str) -> Result<(), Fail> {
        self.ws.send(Message::text(text)).await.map_err(|e| format!("send failed: {e}"))
    }

    /// Sends a binary frame.
    ///
    /// # Errors
    /// When the socket is gone.
    pub async fn send_binary(&mut self, data: Vec<u8>) -> Result<(), Fail> {
        self.ws.send(Message::binary(data)).await.map_err(|e| format!("send failed: {e}"))
    }

    /// The next text frame as raw text.
    ///
    /// # Errors
    /// On timeout, close or a non-text frame.
    pub async fn recv_text(&mut self) -> Result<String, Fail> {
        loop {
            let msg = timeout(WAIT, self.ws.next())
                .await
                .map_err(|_| "timed out waiting for a frame".to_owned())?;
            match msg {
                Some(Ok(Message::Text(t))) => return Ok(t.to_string()),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(f))) => return Err(format!("closed: {f:?}")),
                Some(Ok(other)) => return Err(format!("unexpected frame {other:?}")),
                Some(Err(e)) => return Err(format!("socket error: {e}")),
                None => return Err("socket closed".into()),
            }
        }
    }

    /// The next text frame, parsed.
    ///
    /// # Errors
    /// As [`Conn::recv_text`], or if it is not JSON.
    pub async fn recv(&mut self) -> Result<Value, Fail> {
        let t = self.recv_text().await?;
        serde_json::from_str(&t).map_err(|e| format!("not JSON ({e}): {t}"))
    }

    /// Sends `text` and expects exactly `reply` (JSON equality, key order included when
    /// `exact_text`).
    ///
    /// # Errors
    /// On a different reply.
    pub async fn roundtrip(&mut self, text: &str, reply: &str) -> Result<(), Fail> {
        self.send(text).await?;
        let got = self.recv_text().await?;
        if got != reply {
            return Err(format!("sent {text}\n  expected {reply}\n  got      {got}"));
        }
        Ok(())
    }

    /// Expects the connection to be closed with `code`, skipping text frames before it.
    ///
    /// # Errors
    /// On another code, no close, or timeout.
    pub async fn expect_close(&mut self, code: u16, within: Duration) -> Result<(), Fail> {
        let r = timeout(within, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Close(Some(f)))) => return Ok(u16::from(f.code)),
                    Some(Ok(Message::Close(None))) => {
                        return Err("closed without a code".to_owned())
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        return Err(format!("socket error instead of close {code}: {e}"))
                    }
                    None => return Err(format!("socket ended without close {code}")),
                }
            }
        })
        .await
        .map_err(|_| format!("no close {code} within {within:?}"))??;
        if r == code {
            Ok(())
        } else {
            Err(format!("closed with {r}, expected {code}"))
        }
    }

    /// Subscribes and returns the `subscribed` reply.
    ///
    /// # Errors
    /// If the reply is not `subscribed`.
    pub async fn subscribe(&mut self, channel: &str) -> Result<Value, Fail> {
        self.send(&serde_json::json!({"type": "subscribe", "channel": channel}).to_string())
            .await?;
        let r = self.recv().await?;
        if r["type"] != "subscribed" {
            return Err(format!("subscribe {channel}: expected subscribed, got {r}"));
        }
        Ok(r)
    }
}
