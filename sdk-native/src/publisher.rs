//! Publishing from backend services over HTTP: `POST /api/publish` and `POST /api/notify` with the
//! hub's publish key, with a timeout per attempt and retries with backoff. Every publish carries
//! one idempotency key for all its attempts (the caller's, or one made here), so a retry after a
//! lost reply is answered as a duplicate instead of publishing twice.
//!
//! ```no_run
//! # async fn run() -> Result<(), guts_realtime_native::PublishError> {
//! use guts_realtime::EventKind;
//! use guts_realtime_native::Publisher;
//! let publisher = Publisher::builder("https://hub.internal:7801", "publish-key").build()?;
//! let p = publisher
//!     .publish("repo:acme/app/prs", EventKind::PrOpened, serde_json::json!({"number": 7, "title": "Fix"}))
//!     .await?;
//! println!("seq {} (duplicate: {})", p.seq, p.duplicate);
//! # Ok(()) }
//! ```

use guts_realtime::{EventKind, Notification};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use std::sync::Arc;
use std::time::Duration;

/// What the hub answered a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// The seq the event got in its stream (the first publish's, for a duplicate).
    pub seq: u64,
    /// How many subscribers it was queued to (HTTP only; `None` over a socket).
    pub delivered: Option<usize>,
    /// The idempotency key was seen before: nothing was published this time.
    pub duplicate: bool,
}

/// What the hub answered a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notified {
    /// Published on the user's channel.
    Delivered(Published),
    /// The user's preferences turn this notification type off: nothing was published.
    Suppressed,
}

/// Why a publish failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The hub's URL is not `http://` or `https://` with a host.
    #[error("invalid url {0:?}: expected http:// or https://")]
    InvalidUrl(String),
    /// The hub refused the request (HTTP `status`, its error `code` and message). Not retried,
    /// but for `503 unavailable` (a shared backend down), which is.
    #[error("refused ({status}): {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The hub's error code, when it sent one.
        code: Option<guts_realtime::ErrorCode>,
        /// The hub's message.
        message: String,
    },
    /// No answer after every attempt (connection refused, timeout, connection lost); the last
    /// reason.
    #[error("no answer after {attempts} attempts: {last}")]
    Unreachable {
        /// How many attempts were made.
        attempts: u32,
        /// What the last one ran into.
        last: String,
    },
}

/// Builds a [`Publisher`].
#[derive(Debug, Clone)]
pub struct PublisherBuilder {
    url: String,
    key: String,
    timeout: Duration,
    attempts: u32,
    backoff: (Duration, Duration),
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl PublisherBuilder {
    /// How long one attempt may take, connecting included (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many attempts a publish makes at most (default 4; at least 1).
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// The delay before a retry: full jitter, `random(0, min(max, base · 2^retry))` (default
    /// 200 ms and 5 s).
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff = (base, max);
        self
    }

    /// The TLS configuration of `https://` hubs (default: rustls with the Mozilla roots of
    /// `webpki-roots`).
    pub fn tls(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// The publisher.
    ///
    /// # Errors
    /// [`PublishError::InvalidUrl`].
    pub fn build(self) -> Result<Publisher, PublishError> {
        let bad = || PublishError::InvalidUrl(self.url.clone());
        let uri: hyper::Uri = self.url.trim_end_matches('/').parse().map_err(|_| bad())?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(bad()),
        };
        let host = uri.host().ok_or_else(bad)?.trim_matches(['[', ']']).to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = uri.authority().ok_or_else(bad)?.to_string();
        let tls = https.then(|| {
            self.tls.unwrap_or_else(|| {
                let _ = rustls::crypto::ring::default_provider().install_default();
                let roots =
                    rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
                Arc::new(
                    rustls::ClientConfig::builder()
                        .with_root_certificates(roots)
                        .with_no_client_auth(),
                )
            })
        });
        let inner = Inner {
            host,
            port,
            authority,
            prefix: uri.path().trim_end_matches('/').to_owned(),
            key: self.key,
            timeout: self.timeout,
            attempts: self.attempts,
            backoff: self.backoff,
            tls,
            rng: std::sync::Mutex::new(guts_realtime::session::Rng::from_os()),
        };
        Ok(Publisher { inner: Arc::new(inner) })
    }
}

/// Publishes events and notifications through a hub's HTTP API with its publish key (see the
/// module docs). Cheap to clone; one per service.
#[derive(Debug, Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    host: String,
    port: u16,
    authority: String,
    prefix: String,
    key: String,
    timeout: Duration,
    attempts: u32,
    backoff: (Duration, Duration),
    tls: Option<Arc<rustls::ClientConfig>>,
    rng: std::sync::Mutex<guts_realtime::session::Rng>,
}

/// One attempt's failure: retried or not.
enum Failure {
    Retry(String),
    Final(PublishError),
}

impl Publisher {
    /// A builder for the hub at `url` (its HTTP base, e.g. `https://hub.internal:7801`) with
    /// its publish key.
    pub fn builder(url: impl Into<String>, publish_key: impl Into<String>) -> PublisherBuilder {
        PublisherBuilder {
            url: url.into(),
            key: publish_key.into(),
            timeout: Duration::from_secs(10),
            attempts: 4,
            backoff: (Duration::from_millis(200), Duration::from_secs(5)),
            tls: None,
        }
    }

    /// Publishes an event, with an idempotency key made here for all its attempts.
    ///
    /// # Errors
    /// [`PublishError::Refused`] (bad key, invalid channel, …), or
    /// [`PublishError::Unreachable`] after the last attempt.
    pub async fn publish(
        &self,
        channel: &str,
        event: EventKind,
        data: serde_json::Value,
    ) -> Result<Published, PublishError> {
        let key = self.new_key();
        self.publish_with_key(channel, event, data, &key).await
    }

    /// Publishes an event with the caller's idempotency key (1 to 128 bytes): the same key on
    /// the same channel, while the first event is in the stream's history, is answered as a
    /// duplicate — across retries here, and across restarts of the caller.
    ///
    /// # Errors
    /// As [`Publisher::publish`].
    pub async fn publish_with_key(
        &self,
        channel: &str,
        event: EventKind,
        data: serde_json::Value,
        idempotency_key: &str,
    ) -> Result<Published, PublishError> {
        let body = serde_json::json!({
            "channel": channel,
            "event": event,
            "data": data,
            "idempotency_key": idempotency_key,
        });
        let reply = self.post("/api/publish", body.to_string(), true).await?;
        Ok(published(&reply))
    }

    /// Publishes a notification on `user:<user_id>` (unless the user's preferences turn its
    /// type off). Retried only when the hub could not have received it (the connection failed)
    /// or answered 503: notifications have no idempotency key.
    ///
    /// # Errors
    /// As [`Publisher::publish`].
    pub async fn notify(&self, notification: &Notification) -> Result<Notified, PublishError> {
        let body = serde_json::to_string(notification).unwrap_or_default();
        let reply = self.post("/api/notify", body, false).await?;
        Ok(if reply.get("suppressed").is_some() {
            Notified::Suppressed
        } else {
            Notified::Delivered(published(&reply))
        })
    }

    /// A fresh idempotency key: 128 random bits.
    fn new_key(&self) -> String {
        let mut rng = self.inner.rng.lock().unwrap_or_else(|e| e.into_inner());
        format!("p-{:016x}{:016x}", rng.next_u64(), rng.next_u64())
    }

    /// POSTs `body` to `path`, retrying what may be retried; the reply's JSON.
    async fn post(
        &self,
        path: &str,
        body: String,
        after_send: bool,
    ) -> Result<serde_json::Value, PublishError> {
        let i = &self.inner;
        let mut last = String::new();
        for attempt in 0..i.attempts {
            if attempt > 0 {
                let (base, max) = i.backoff;
                // The session's full-jitter backoff, the same as the clients'.
                let delay = {
                    let mut rng = i.rng.lock().unwrap_or_else(|e| e.into_inner());
                    guts_realtime::session::backoff_delay(base, max, attempt - 1, &mut rng)
                };
                tokio::time::sleep(delay).await;
            }
            let once = self.once(path, &body, after_send);
            match tokio::time::timeout(i.timeout, once).await {
                Ok(Ok(reply)) => return Ok(reply),
                Ok(Err(Failure::Final(e))) => return Err(e),
                Ok(Err(Failure::Retry(why))) => last = why,
                Err(_) => {
                    last = format!("no answer within {:?}", i.timeout);
                    if !after_send {
                        // The request may have been received: a notification is not resent.
                        break;
                    }
                }
            }
            tracing::debug!(attempt, %last, "publish attempt failed");
        }
        Err(PublishError::Unreachable { attempts: i.attempts, last })
    }

    /// One attempt: connect, send, read the answer.
    async fn once(
        &self,
        path: &str,
        body: &str,
        after_send: bool,
    ) -> Result<serde_json::Value, Failure> {
        let i = &self.inner;
        let tcp = tokio::net::TcpStream::connect((i.host.as_str(), i.port))
            .await
            .map_err(|e| Failure::Retry(format!("connect: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let request = hyper::Request::post(format!("{}{path}", i.prefix))
            .header(hyper::header::HOST, &i.authority)
            .header(hyper::header::AUTHORIZATION, format!("Bearer {}", i.key))
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_owned())))
            .map_err(|e| Failure::Final(PublishError::InvalidUrl(e.to_string())))?;
        let lost = |e: String| {
            if after_send {
                Failure::Retry(e)
            } else {
                Failure::Final(PublishError::Unreachable { attempts: 1, last: e })
            }
        };
        let response = match &i.tls {
            Some(tls) => {
                let name = rustls::pki_types::ServerName::try_from(i.host.clone())
                    .map_err(|e| Failure::Final(PublishError::InvalidUrl(e.to_string())))?;
                let stream = tokio_rustls::TlsConnector::from(tls.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| Failure::Retry(format!("TLS: {e}")))?;
                send(stream, request).await
            }
            None => send(tcp, request).await,
        }
        .map_err(lost)?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| lost(format!("reading the answer: {e}")))?
            .to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        match status {
            200..=299 => Ok(json),
            503 => Err(Failure::Retry(format!("503: {}", message(&json)))),
            _ => Err(Failure::Final(PublishError::Refused {
                status,
                code: json
                    .get("code")
                    .and_then(|c| c.as_str())
                    .and_then(guts_realtime::ErrorCode::from_wire),
                message: message(&json),
            })),
        }
    }
}

/// Sends `request` on a fresh HTTP/1.1 connection over `io`.
async fn send<T>(
    io: T,
    request: hyper::Request<Full<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender.send_request(request).await.map_err(|e| format!("lost the answer: {e}"))
}

/// The hub's error message in an error body.
fn message(json: &serde_json::Value) -> String {
    json.get("error")
        .or_else(|| json.get("message"))
        .and_then(|m| m.as_str())
        .unwrap_or("")
        .to_owned()
}

/// A `{"seq","delivered","duplicate"}` reply.
fn published(json: &serde_json::Value) -> Published {
    Published {
        seq: json.get("seq").and_then(serde_json::Value::as_u64).unwrap_or(0),
        delivered: json.get("delivered").and_then(serde_json::Value::as_u64).map(|d| d as usize),
        duplicate: json.get("duplicate").and_then(serde_json::Value::as_bool).unwrap_or(false),
    }
}
