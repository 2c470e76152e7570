//! [`ProxyAuthorizer`]: `repo:` access decided by the platform over HTTP (`guts-hub
//! --repo-access proxy`), with a bounded cache of its decisions.
//!
//! For a `repo:` channel the token does not grant (claim `repos`), the hub POSTs
//! `{"user": SUB-or-null, "orgs": [...], "channel": CANONICAL}` with `Authorization: Bearer
//! <publish key>` to the authorize URL and expects `200 {"allow": true|false}`. Any other status,
//! a body that is not that (or longer than [`MAX_ANSWER_BYTES`]), or no answer within the timeout
//! is [`RealtimeError::Unavailable`]: never an allow. Decisions (allow and deny, not failures) are
//! cached per (user, repository) for the cache TTL; revocation drops them.

use guts_realtime::server::{authorize_read, AuthorizeFuture, Authorizer, Identity, RepoAccess};
use guts_realtime::{Channel, ChannelType, InvalidConfig, RealtimeError};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Longest answer body read from the authorize endpoint; a longer one is a failure.
pub const MAX_ANSWER_BYTES: usize = 4096;

/// Most cached decisions; when full, expired ones are dropped, and if none is, all are.
pub const MAX_CACHED: usize = 100_000;

/// Who asks about which repository: the cache key.
type Key = (Option<String>, String);

/// Asks the platform whether an identity may read a repository (module docs).
///
/// ```
/// use guts_realtime_server::{ProxyAuthorizer, ServerConfig};
/// use std::time::Duration;
/// let proxy = ProxyAuthorizer::new("http://127.0.0.1:9000/realtime/authorize", Some("pubkey"))
///     .unwrap()
///     .timeout(Duration::from_millis(500))
///     .cache_ttl(Duration::from_secs(60));
/// let config = ServerConfig::default().authorizer(proxy);
/// # let _ = config;
/// ```
#[derive(Debug)]
pub struct ProxyAuthorizer {
    /// `host:port` to connect to.
    authority: String,
    /// The request target (path and query).
    path: String,
    bearer: Option<String>,
    timeout: Duration,
    cache_ttl: Duration,
    /// Decisions and when they were made.
    cache: Mutex<HashMap<Key, (bool, Instant)>>,
}

impl ProxyAuthorizer {
    /// An authorizer asking `url` (`http://host[:port]/path`), sending `Authorization: Bearer
    /// <publish_key>` when given; timeout 2 s, decisions cached 30 s.
    ///
    /// # Errors
    /// A URL that is not `http://` with a host (TLS is not spoken here: run the endpoint on the
    /// internal network, or behind a local TLS-terminating proxy).
    pub fn new(url: &str, publish_key: Option<&str>) -> Result<ProxyAuthorizer, InvalidConfig> {
        let field = "--authorize-url";
        let rest = url.strip_prefix("http://");
        InvalidConfig::check(rest.is_some(), field, "an http:// URL")?;
        let rest = rest.unwrap_or_default();
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let ok = !authority.is_empty() && !authority.contains('@');
        InvalidConfig::check(ok, field, "an http:// URL with a host")?;
        let authority =
            if authority.contains(':') { authority.to_owned() } else { format!("{authority}:80") };
        Ok(ProxyAuthorizer {
            authority,
            path: path.to_owned(),
            bearer: publish_key.filter(|k| !k.is_empty()).map(str::to_owned),
            timeout: Duration::from_secs(2),
            cache_ttl: Duration::from_secs(30),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// How long an answer may take (then: `unavailable`). The default value is 2 s.
    pub fn timeout(mut self, timeout: Duration) -> ProxyAuthorizer {
        self.timeout = timeout;
        self
    }

    /// How long a decision is reused for the same (user, repository); zero disables the cache.
    /// The default value is 30 s.
    pub fn cache_ttl(mut self, ttl: Duration) -> ProxyAuthorizer {
        self.cache_ttl = ttl;
        self
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<Key, (bool, Instant)>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cached(&self, key: &Key) -> Option<bool> {
        let (allow, at) = *self.cache().get(key)?;
        (at.elapsed() < self.cache_ttl).then_some(allow)
    }

    fn remember(&self, key: Key, allow: bool) {
        if self.cache_ttl.is_zero() {
            return;
        }
        let mut cache = self.cache();
        if cache.len() >= MAX_CACHED {
            let ttl = self.cache_ttl;
            cache.retain(|_, (_, at)| at.elapsed() < ttl);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(key, (allow, Instant::now()));
    }

    /// Asks the endpoint; `Ok(allow)`, or why there is no answer.
    async fn ask(&self, identity: &Identity, channel: &Channel) -> Result<bool, String> {
        let body = serde_json::json!({
            "user": identity.user(),
            "orgs": identity.orgs(),
            "channel": channel.to_string(),
        })
        .to_string();
        let mut req = Request::post(self.path.as_str())
            .header(hyper::header::HOST, self.authority.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json");
        if let Some(key) = &self.bearer {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let req = req.body(Full::new(Bytes::from(body))).map_err(|e| e.to_string())?;
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        let conn = tokio::spawn(conn);
        let result = async {
            let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
            if resp.status() != hyper::StatusCode::OK {
                return Err(format!("answered {}", resp.status()));
            }
            let body = Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|_| format!("answer not read, or longer than {MAX_ANSWER_BYTES} bytes"))?
                .to_bytes();
            #[derive(serde::Deserialize)]
            struct Answer {
                allow: bool,
            }
            serde_json::from_slice::<Answer>(&body)
                .map(|a| a.allow)
                .map_err(|_| "answer is not {\"allow\": true|false}".to_owned())
        }
        .await;
        conn.abort();
        result
    }
}

impl Authorizer for ProxyAuthorizer {
    fn authorize_subscribe<'a>(
        &'a self,
        identity: &'a Identity,
        channel: &'a Channel,
    ) -> AuthorizeFuture<'a> {
        Box::pin(async move {
            let by_token = authorize_read(identity, channel, RepoAccess::Token);
            if by_token.is_ok() || channel.channel_type != ChannelType::Repository {
                return by_token;
            }
            let key = (identity.user().map(str::to_owned), channel.identifier.clone());
            let allow = match self.cached(&key) {
                Some(allow) => allow,
                None => match tokio::time::timeout(self.timeout, self.ask(identity, channel)).await
                {
                    Ok(Ok(allow)) => {
                        self.remember(key, allow);
                        allow
                    }
                    Ok(Err(why)) => {
                        tracing::warn!(%channel, "authorize endpoint: {why}");
                        return Err(RealtimeError::Unavailable(format!(
                            "cannot authorize {channel} now: the authorization service failed"
                        )));
                    }
                    Err(_) => {
                        tracing::warn!(%channel, "authorize endpoint: no answer in time");
                        return Err(RealtimeError::Unavailable(format!(
                            "cannot authorize {channel} now: the authorization service did not \
                             answer in time"
                        )));
                    }
                },
            };
            if allow {
                Ok(())
            } else {
                Err(RealtimeError::Forbidden(format!("{} may not read {channel}", identity.name())))
            }
        })
    }

    fn forget(&self, user: &str, channel: &Channel) {
        if channel.channel_type == ChannelType::Repository {
            self.cache().remove(&(Some(user.to_owned()), channel.identifier.clone()));
        }
    }
}
