//! How a connection proves who it is: [`Verifier`], the hub's [`TokenVerifier`] (HS256 JWTs or
//! the publish key). Who it then is ([`Identity`]) and what it may do (`Authorizer`) are the
//! protocol crate's (`guts_realtime::server`).
//!
//! Tokens are never logged, never echoed and never put into an error message: a refused token is
//! described by its failure kind only ("expired", "bad signature", …).

use guts_realtime::server::{Identity, TokenVerifier, User, Verified};
use guts_realtime::RealtimeError;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default)]
    orgs: Vec<String>,
    #[serde(default)]
    repos: Vec<String>,
    #[serde(default)]
    publish: PublishClaim,
}

/// The `publish` claim: `true`/`false`, or an array of channel patterns.
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum PublishClaim {
    #[default]
    None,
    All(bool),
    Channels(Vec<String>),
}

/// Verifies `auth` tokens: the publish key (compared in constant time) or an HS256 JWT with
/// claims `sub`, `exp` (both required, no leeway), `nbf` (honoured when present), `iss` and
/// `aud` (required to match when the server is configured with them), `orgs`, `repos` and
/// `publish` (optional). A claim of the wrong type refuses the token.
pub(crate) struct Verifier {
    key: Option<DecodingKey>,
    validation: Validation,
    publish_key: Option<Vec<u8>>,
}

impl Verifier {
    /// A verifier of JWTs signed with `token_secret` (whose `iss` and `aud` must be `issuer`
    /// and `audience`, when given) and of the publish key.
    pub(crate) fn new(
        token_secret: Option<&str>,
        publish_key: Option<&str>,
        issuer: Option<&str>,
        audience: Option<&str>,
    ) -> Verifier {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if let Some(iss) = issuer {
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        if let Some(aud) = audience {
            validation.set_audience(&[aud]);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        Verifier {
            key: token_secret.map(|s| DecodingKey::from_secret(s.as_bytes())),
            validation,
            publish_key: publish_key.filter(|k| !k.is_empty()).map(|k| k.as_bytes().to_vec()),
        }
    }

    /// Whether `key` is the publish key.
    pub(crate) fn is_publish_key(&self, key: &str) -> bool {
        self.publish_key.as_deref().is_some_and(|k| constant_time_eq(k, key.as_bytes()))
    }
}

/// Tokens are never logged, echoed or quoted: a refused one is described by its failure kind.
impl TokenVerifier for Verifier {
    fn verify(&self, token: &str) -> Result<Verified, RealtimeError> {
        if self.is_publish_key(token) {
            return Ok(Verified::new(Identity::PublishKey, None));
        }
        let Some(key) = &self.key else {
            return Err(RealtimeError::Unauthenticated(
                "this hub has no token secret; only the publish key is accepted".into(),
            ));
        };
        match jsonwebtoken::decode::<Claims>(token, key, &self.validation) {
            Ok(data) if !data.claims.sub.is_empty() => {
                let c = data.claims;
                let user = User::new(c.sub).orgs(c.orgs).repos(c.repos);
                let user = match c.publish {
                    PublishClaim::None => user,
                    PublishClaim::All(all) => user.publish(all),
                    PublishClaim::Channels(patterns) => user.publish_on(patterns),
                };
                // Until the second `exp` begins, to the millisecond: closed at expiry, not before.
                let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
                let left = Duration::from_secs(c.exp).saturating_sub(now);
                Ok(Verified::new(user.into(), Some(left)))
            }
            Ok(_) => Err(RealtimeError::Unauthenticated("empty sub claim".into())),
            Err(e) => Err(RealtimeError::Unauthenticated(
                match e.kind() {
                    ErrorKind::ExpiredSignature => "token expired",
                    ErrorKind::ImmatureSignature => "token not yet valid",
                    ErrorKind::InvalidSignature => "bad token signature",
                    ErrorKind::InvalidAlgorithm => "token algorithm must be HS256",
                    ErrorKind::MissingRequiredClaim(_) => "token lacks a required claim",
                    ErrorKind::InvalidIssuer => "token issuer is not accepted",
                    ErrorKind::InvalidAudience => "token audience is not accepted",
                    ErrorKind::InvalidClaimFormat(_) | ErrorKind::Json(_) => {
                        "token claims are malformed"
                    }
                    _ => "malformed token",
                }
                .into(),
            )),
        }
    }
}

/// Compares two byte strings without an early exit on the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_key_and_errors_never_echo_the_token() {
        let v = Verifier::new(Some("secret"), Some("key"), None, None);
        assert_eq!(v.verify("key").unwrap().identity, Identity::PublishKey);
        assert!(!v.is_publish_key("kez"));
        assert!(!v.is_publish_key(""));
        let e = v.verify("not-a-jwt-Zq9").unwrap_err().to_string();
        assert!(!e.contains("Zq9"), "{e}");
        let none = Verifier::new(None, Some(""), None, None);
        assert!(none.verify("").is_err());
    }
}
