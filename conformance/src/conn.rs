//! [`Conn`]: a raw WebSocket test connection — send text, read exact frames, expect closes. The
//! suite checks the wire itself, so it goes through no SDK.

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
    /// The `welcome` frame (`Null` for a hub that sends none).
    pub welcome: Value,
}

/// Whether the hub at `url` sends a `welcome` first (within 2 s of the upgrade).
pub async fn probe_welcome(url: &str) -> bool {
    let Ok(Ok((mut ws, _))) = timeout(WAIT, tokio_tungstenite::connect_async(url)).await else {
        return false;
    };
    let first = timeout(Duration::from_secs(2), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => return Some(t.to_string()),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                _ => return None,
            }
        }
    })
    .await;
    let first: Option<Value> = first.ok().flatten().and_then(|t| serde_json::from_str(&t).ok());
    first.is_some_and(|v| v["type"] == "welcome")
}

/// A check's failure.
pub type Fail = String;

impl Conn {
    /// Connects to the target and, if it sends one, reads the `welcome` frame.
    ///
    /// # Errors
    /// When the hub cannot be reached, or its first frame is not the expected welcome.
    pub async fn open(t: &crate::Target) -> Result<Conn, Fail> {
        let mut c = Conn::connect(&t.ws).await?;
        if t.welcome == Some(true) {
            let w = c.recv().await?;
            if w["type"] != "welcome" || !w["epoch"].is_string() {
                return Err(format!("first frame is not a welcome with an epoch: {w}"));
            }
            c.welcome = w;
        }
        Ok(c)
    }

    /// Connects to `url` and reads the `welcome` frame (a hub that sends one).
    ///
    /// # Errors
    /// When the hub cannot be reached or its first frame is not a welcome.
    pub async fn welcomed(url: &str) -> Result<Conn, Fail> {
        let mut t = crate::Target::new(url);
        t.welcome = Some(true);
        Conn::open(&t).await
    }

    /// Connects without reading anything.
    ///
    /// # Errors
    /// When the upgrade fails (with the HTTP status if there was one).
    pub async fn connect(url: &str) -> Result<Conn, Fail> {
        let (ws, _) = timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .map_err(|_| "connect timed out".to_owned())?
            .map_err(|e| match e {
                tokio_tungstenite::tungstenite::Error::Http(r) => {
                    format!("upgrade refused: HTTP {}", r.status().as_u16())
                }
                e => format!("connect failed: {e}"),
            })?;
        Ok(Conn { ws, welcome: Value::Null })
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
        timeout(WAIT, self.ws.send(Message::text(text)))
            .await
            .map_err(|_| "send timed out (the hub reads nothing)".to_owned())?
            .map_err(|e| format!("send failed: {e}"))
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
        timeout(WAIT, self.next_text())
            .await
            .map_err(|_| "timed out waiting for a frame".to_owned())?
    }

    /// The next text frame, parsed, waiting up to `d` for it.
    ///
    /// # Errors
    /// As [`Conn::recv`].
    pub async fn recv_within(&mut self, d: Duration) -> Result<Value, Fail> {
        let t =
            timeout(d, self.next_text()).await.map_err(|_| format!("no frame within {d:?}"))??;
        serde_json::from_str(&t).map_err(|e| format!("not JSON ({e}): {t}"))
    }

    /// The next text frame, however long it takes (pings and pongs skipped).
    async fn next_text(&mut self) -> Result<String, Fail> {
        loop {
            match self.ws.next().await {
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
        self.expect_close_reason(code, within).await.map(drop)
    }

    /// As [`Conn::expect_close`], returning the close reason.
    ///
    /// # Errors
    /// On another code, no close, or timeout.
    pub async fn expect_close_reason(
        &mut self,
        code: u16,
        within: Duration,
    ) -> Result<String, Fail> {
        let (got, reason) = self.closed(within).await?;
        if got == code {
            Ok(reason)
        } else {
            Err(format!("closed with {got} {reason:?}, expected {code}"))
        }
    }

    /// Waits for the close frame (skipping text frames): its code and reason.
    ///
    /// # Errors
    /// No close frame within `within`.
    pub async fn closed(&mut self, within: Duration) -> Result<(u16, String), Fail> {
        timeout(within, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Close(Some(f)))) => {
                        return Ok((u16::from(f.code), f.reason.to_string()))
                    }
                    Some(Ok(Message::Close(None))) => {
                        return Err("closed without a code".to_owned())
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(format!("socket error instead of a close: {e}")),
                    None => return Err("socket ended without a close frame".to_owned()),
                }
            }
        })
        .await
        .map_err(|_| format!("no close within {within:?}"))?
    }

    /// Expects no text frame for `d` (pings are answered meanwhile).
    ///
    /// # Errors
    /// The frame that came.
    pub async fn expect_nothing(&mut self, d: Duration) -> Result<(), Fail> {
        match timeout(d, self.recv_text()).await {
            Err(_) => Ok(()),
            Ok(Ok(t)) => Err(format!("unexpected frame: {t}")),
            Ok(Err(e)) => Err(e),
        }
    }

    /// Closes with `code` (the client side of a close).
    ///
    /// # Errors
    /// When the socket is gone.
    pub async fn close(&mut self, code: u16) -> Result<(), Fail> {
        use tokio_tungstenite::tungstenite::protocol::CloseFrame;
        let frame = CloseFrame { code: code.into(), reason: "".into() };
        self.ws.close(Some(frame)).await.map_err(|e| format!("close failed: {e}"))
    }

    /// Sends `frame` (JSON) and returns the next frame.
    ///
    /// # Errors
    /// As [`Conn::send`] and [`Conn::recv`].
    pub async fn request(&mut self, frame: Value) -> Result<Value, Fail> {
        self.send(&frame.to_string()).await?;
        self.recv().await
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
