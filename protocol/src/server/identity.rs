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

/// Turns the token of an `auth` command into an [`Identity`].
pub trait TokenVerifier: Send + Sync {
    /// The identity `token` proves.
    ///
    /// # Errors
    /// [`RealtimeError::Unauthenticated`] with the failure kind, never the token itself.
    fn verify(&self, token: &str) -> Result<Identity, RealtimeError>;
}
