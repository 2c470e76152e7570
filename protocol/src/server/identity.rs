//! Who a connection is ([`Identity`]) and the seam that proves it from a token
//! ([`TokenVerifier`]; the hub server's is HS256 JWTs plus the publish key).

use crate::error::RealtimeError;

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
        /// The `publish` claim as `true`: may publish on every `repo:` channel (false when
        /// absent).
        publish: bool,
        /// The `publish` claim as an array of channel patterns: may publish on the `repo:`
        /// channels they match ([`Identity::may_publish_on`]).
        publish_on: Vec<String>,
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

    /// Whether the identity holds publish rights (the publish key, or a JWT with a `publish`
    /// claim: `true` or channel patterns).
    pub fn can_publish(&self) -> bool {
        match self {
            Identity::PublishKey => true,
            Identity::User { publish, publish_on, .. } => *publish || !publish_on.is_empty(),
            Identity::Anonymous => false,
        }
    }

    /// Whether a user's `publish` claim covers the `repo:` channel `repo` (its identifier,
    /// `owner/name`): `true`, or a pattern `repo:owner/name` (that repository and its narrower
    /// channels) or `repo:owner/*` (every repository of owner); segments compare exactly.
    pub fn may_publish_on(&self, repo: &str) -> bool {
        let Identity::User { publish, publish_on, .. } = self else { return false };
        let Some((owner, name)) = repo.split_once('/') else { return false };
        let name = name.split('/').next().unwrap_or(name);
        *publish
            || publish_on.iter().any(|p| {
                let pattern = p.strip_prefix("repo:").and_then(|r| r.split_once('/'));
                pattern.is_some_and(|(o, n)| o == owner && (n == "*" || n == name))
            })
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

/// Turns the token of an `auth` command into an [`Identity`].
pub trait TokenVerifier: Send + Sync {
    /// The identity `token` proves.
    ///
    /// # Errors
    /// [`RealtimeError::Unauthenticated`] with the failure kind, never the token itself.
    fn verify(&self, token: &str) -> Result<Identity, RealtimeError>;
}
