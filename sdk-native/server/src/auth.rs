//! Who a connection is ([`Identity`]), how it proves it (HS256 JWTs or the publish key, see
//! [`Verifier`]), and what it may do ([`Authorizer`], with the protocol's rules as
//! [`DefaultAuthorizer`]).
//!
//! Tokens are never logged, never echoed and never put into an error message: a refused token is
//! described by its failure kind only ("expired", "bad signature", …).

use guts_realtime::{Channel, ChannelType, RealtimeError};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// Who a connection (or an HTTP request) is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Identity {
    /// No `auth` yet (or never): may read `repo:` channels only.
    #[default]
    Anonymous,
    /// A user proven by a JWT.
    User {
        /// The `sub` claim.
        id: String,
        /// The `orgs` claim (empty when absent).
        orgs: Vec<String>,
        /// The `publish` claim (false when absent).
        publish: bool,
    },
    /// The holder of the hub's publish key (a backend).
    PublishKey,
}

impl Identity {
    /// The user id, for [`Identity::User`].
    pub fn user(&self) -> Option<&str> {
        match self {
            Identity::User { id, .. } => Some(id),
            _ => None,
        }
    }

    /// Whether the identity is a member of organization `org`.
    pub fn in_org(&self, org: &str) -> bool {
        matches!(self, Identity::User { orgs, .. } if orgs.iter().any(|o| o == org))
    }

    /// Whether the identity holds publish rights (the publish key, or a JWT with
    /// `publish: true`).
    pub fn can_publish(&self) -> bool {
        matches!(self, Identity::PublishKey | Identity::User { publish: true, .. })
    }

    /// The name the `authenticated` reply carries: the user id, `"publisher"` for the publish
    /// key, `"anonymous"` otherwise.
    pub fn name(&self) -> &str {
        match self {
            Identity::Anonymous => "anonymous",
            Identity::User { id, .. } => id,
            Identity::PublishKey => "publisher",
        }
    }
}

/// The access policy of a hub server. Both methods have the protocol's rules as their default
/// body, so an embedder overrides only what it changes (e.g. private repositories).
///
/// ```
/// use guts_realtime::{Channel, RealtimeError};
/// use guts_realtime_server::{Authorizer, Identity};
///
/// /// Like the default, but `repo:secret/*` is for members of org `secret` only.
/// struct Private;
/// impl Authorizer for Private {
///     fn authorize_subscribe(&self, who: &Identity, ch: &Channel) -> Result<(), RealtimeError> {
///         if ch.identifier.starts_with("secret/") && !who.in_org("secret") {
///             return Err(RealtimeError::Forbidden(format!("{ch} is private")));
///         }
///         guts_realtime_server::default_authorize_subscribe(who, ch)
///     }
/// }
/// ```
pub trait Authorizer: Send + Sync + 'static {
    /// Whether `identity` may subscribe to `channel`.
    ///
    /// # Errors
    /// [`RealtimeError::Forbidden`] (sent to the client as error `forbidden`; the connection
    /// stays open).
    fn authorize_subscribe(
        &self,
        identity: &Identity,
        channel: &Channel,
    ) -> Result<(), RealtimeError> {
        default_authorize_subscribe(identity, channel)
    }

    /// Whether `identity` may publish on `channel` (over WebSocket or HTTP).
    ///
    /// # Errors
    /// [`RealtimeError::Forbidden`].
    fn authorize_publish(
        &self,
        identity: &Identity,
        channel: &Channel,
    ) -> Result<(), RealtimeError> {
        default_authorize_publish(identity, channel)
    }
}

/// The protocol's rules, unchanged: see [`default_authorize_subscribe`] and
/// [`default_authorize_publish`].
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultAuthorizer;

impl Authorizer for DefaultAuthorizer {}

/// The protocol's subscribe rule: anyone may read `repo:` channels; `user:X` needs a token with
/// `sub == X`; `org:O` needs `O` in the token's `orgs`.
///
/// # Errors
/// [`RealtimeError::Forbidden`] otherwise.
pub fn default_authorize_subscribe(
    identity: &Identity,
    channel: &Channel,
) -> Result<(), RealtimeError> {
    let ok = match channel.channel_type {
        ChannelType::Repository => true,
        ChannelType::User => identity.user() == Some(channel.identifier.as_str()),
        ChannelType::Organization => identity.in_org(&channel.identifier),
    };
    if ok {
        Ok(())
    } else if *identity == Identity::Anonymous {
        Err(RealtimeError::Forbidden(format!("{channel} requires authentication")))
    } else {
        Err(RealtimeError::Forbidden(format!("{} may not read {channel}", identity.name())))
    }
}

/// The protocol's publish rule: the publish key, or a token with `publish: true`.
///
/// # Errors
/// [`RealtimeError::Forbidden`] otherwise.
pub fn default_authorize_publish(
    identity: &Identity,
    channel: &Channel,
) -> Result<(), RealtimeError> {
    if identity.can_publish() {
        Ok(())
    } else {
        Err(RealtimeError::Forbidden(format!("publishing on {channel} requires publish rights")))
    }
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    orgs: Vec<String>,
    #[serde(default)]
    publish: bool,
}

/// Verifies `auth` tokens: the publish key (compared in constant time) or an HS256 JWT with
/// claims `sub`, `exp` (both required, no leeway), `orgs` and `publish` (optional).
pub(crate) struct Verifier {
    key: Option<DecodingKey>,
    validation: Validation,
    publish_key: Option<Vec<u8>>,
}

impl Verifier {
    pub(crate) fn new(token_secret: Option<&str>, publish_key: Option<&str>) -> Verifier {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
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

    /// The identity a token proves.
    ///
    /// # Errors
    /// [`RealtimeError::Unauthenticated`] with the failure kind (never the token).
    pub(crate) fn verify(&self, token: &str) -> Result<Identity, RealtimeError> {
        if self.is_publish_key(token) {
            return Ok(Identity::PublishKey);
        }
        let Some(key) = &self.key else {
            return Err(RealtimeError::Unauthenticated(
                "this hub has no token secret; only the publish key is accepted".into(),
            ));
        };
        match jsonwebtoken::decode::<Claims>(token, key, &self.validation) {
            Ok(data) if !data.claims.sub.is_empty() => Ok(Identity::User {
                id: data.claims.sub,
                orgs: data.claims.orgs,
                publish: data.claims.publish,
            }),
            Ok(_) => Err(RealtimeError::Unauthenticated("empty sub claim".into())),
            Err(e) => Err(RealtimeError::Unauthenticated(
                match e.kind() {
                    ErrorKind::ExpiredSignature => "token expired",
                    ErrorKind::ImmatureSignature => "token not yet valid",
                    ErrorKind::InvalidSignature => "bad token signature",
                    ErrorKind::InvalidAlgorithm => "token algorithm must be HS256",
                    ErrorKind::MissingRequiredClaim(_) => "token lacks a required claim (sub, exp)",
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

    fn ch(s: &str) -> Channel {
        Channel::parse(s).unwrap()
    }

    #[test]
    fn default_rules() {
        let anon = Identity::Anonymous;
        let alice =
            Identity::User { id: "alice".into(), orgs: vec!["acme".into()], publish: false };
        assert!(default_authorize_subscribe(&anon, &ch("repo:a/b/prs")).is_ok());
        assert!(default_authorize_subscribe(&anon, &ch("user:alice")).is_err());
        assert!(default_authorize_subscribe(&anon, &ch("org:acme")).is_err());
        assert!(default_authorize_subscribe(&alice, &ch("user:alice")).is_ok());
        assert!(default_authorize_subscribe(&alice, &ch("user:bob")).is_err());
        assert!(default_authorize_subscribe(&alice, &ch("org:acme")).is_ok());
        assert!(default_authorize_subscribe(&alice, &ch("org:other")).is_err());
        assert!(default_authorize_subscribe(&Identity::PublishKey, &ch("user:alice")).is_err());
        assert!(default_authorize_publish(&anon, &ch("repo:a/b")).is_err());
        assert!(default_authorize_publish(&alice, &ch("repo:a/b")).is_err());
        assert!(default_authorize_publish(&Identity::PublishKey, &ch("repo:a/b")).is_ok());
        let ci = Identity::User { id: "ci".into(), orgs: vec![], publish: true };
        assert!(default_authorize_publish(&ci, &ch("repo:a/b")).is_ok());
    }

    #[test]
    fn publish_key_and_errors_never_echo_the_token() {
        let v = Verifier::new(Some("secret"), Some("key"));
        assert_eq!(v.verify("key").unwrap(), Identity::PublishKey);
        assert!(!v.is_publish_key("kez"));
        assert!(!v.is_publish_key(""));
        let e = v.verify("not-a-jwt-Zq9").unwrap_err().to_string();
        assert!(!e.contains("Zq9"), "{e}");
        let none = Verifier::new(None, Some(""));
        assert!(none.verify("").is_err());
    }
}
