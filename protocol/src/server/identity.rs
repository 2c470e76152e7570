//! Who a connection is ([`Identity`], a [`User`]'s claims) and the seam that proves it from a
//! token ([`TokenVerifier`]; the hub server's is HS256 JWTs plus the publish key).

use crate::error::RealtimeError;
use std::time::Duration;

/// Who a connection (or an HTTP request) is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Identity {
    /// No `auth` yet (or never): may read `repo:` channels only where they are public
    /// ([`RepoAccess::Public`](super::RepoAccess::Public)).
    #[default]
    Anonymous,
    /// A user proven by a token.
    User(User),
    /// The holder of the hub's publish key (a backend).
    PublishKey,
}

/// A user and what their token grants.
///
/// ```
/// use guts_realtime::server::{Identity, User};
/// let alice = Identity::from(User::new("alice").orgs(["acme"]).repos(["acme/*"]));
/// assert!(alice.may_read_repo("acme/web"));
/// assert!(!alice.may_read_repo("bob/app"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct User {
    /// The `sub` claim.
    pub id: String,
    /// The `orgs` claim (empty when absent).
    pub orgs: Vec<String>,
    /// The `repos` claim: repositories readable under
    /// [`RepoAccess::Token`](super::RepoAccess::Token), as `"owner/name"` (exact) or `"owner/*"`.
    pub repos: Vec<String>,
    /// The `publish` claim as `true`: may publish on every `repo:` channel (false when absent).
    pub publish: bool,
    /// The `publish` claim as an array of channel patterns: may publish on the `repo:` channels
    /// they match ([`Identity::may_publish_on`]).
    pub publish_on: Vec<String>,
}

impl User {
    /// A user with id `id` and no claims beyond it.
    pub fn new(id: impl Into<String>) -> User {
        User { id: id.into(), ..User::default() }
    }

    /// Sets [`User::orgs`].
    pub fn orgs<S: Into<String>>(mut self, orgs: impl IntoIterator<Item = S>) -> User {
        self.orgs = orgs.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`User::repos`].
    pub fn repos<S: Into<String>>(mut self, repos: impl IntoIterator<Item = S>) -> User {
        self.repos = repos.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`User::publish`].
    pub fn publish(mut self, publish: bool) -> User {
        self.publish = publish;
        self
    }

    /// Sets [`User::publish_on`].
    pub fn publish_on<S: Into<String>>(mut self, patterns: impl IntoIterator<Item = S>) -> User {
        self.publish_on = patterns.into_iter().map(Into::into).collect();
        self
    }
}

impl From<User> for Identity {
    fn from(user: User) -> Identity {
        Identity::User(user)
    }
}

/// Whether `pattern` (`owner/name` or `owner/*`) covers the repository of `repo` (a `repo:`
/// channel's identifier, `owner/name`); segments compare exactly.
fn repo_matches(pattern: &str, repo: &str) -> bool {
    let (Some((owner, name)), Some((o, n))) = (repo.split_once('/'), pattern.split_once('/'))
    else {
        return false;
    };
    o == owner && (n == "*" || n == name)
}

impl Identity {
    /// The user, for [`Identity::User`].
    pub fn as_user(&self) -> Option<&User> {
        match self {
            Identity::User(u) => Some(u),
            _ => None,
        }
    }

    /// The user id, for [`Identity::User`].
    pub fn user(&self) -> Option<&str> {
        self.as_user().map(|u| u.id.as_str())
    }

    /// The organizations of a user (none otherwise).
    pub fn orgs(&self) -> &[String] {
        self.as_user().map_or(&[], |u| &u.orgs)
    }

    /// Whether the identity is a member of organization `org`.
    pub fn in_org(&self, org: &str) -> bool {
        self.orgs().iter().any(|o| o == org)
    }

    /// Whether a user's `repos` claim grants the repository `repo` (`owner/name`).
    pub fn may_read_repo(&self, repo: &str) -> bool {
        self.as_user().is_some_and(|u| u.repos.iter().any(|p| repo_matches(p, repo)))
    }

    /// Whether the identity holds publish rights (the publish key, or a JWT with a `publish`
    /// claim: `true` or channel patterns).
    pub fn can_publish(&self) -> bool {
        match self {
            Identity::PublishKey => true,
            Identity::User(u) => u.publish || !u.publish_on.is_empty(),
            Identity::Anonymous => false,
        }
    }

    /// Whether a user's `publish` claim covers the `repo:` channel `repo` (its identifier,
    /// `owner/name`): `true`, or a pattern `repo:owner/name` (that repository and its narrower
    /// channels) or `repo:owner/*` (every repository of owner); segments compare exactly.
    pub fn may_publish_on(&self, repo: &str) -> bool {
        self.as_user().is_some_and(|u| u.publish) || self.may_publish_on_patterns(repo)
    }

    /// Whether a user's `publish` claim patterns name the `repo:` channel `repo`.
    pub fn may_publish_on_patterns(&self, repo: &str) -> bool {
        self.as_user().is_some_and(|u| {
            u.publish_on
                .iter()
                .any(|p| p.strip_prefix("repo:").is_some_and(|p| repo_matches(p, repo)))
        })
    }

    /// The name the `authenticated` reply carries: the user id, `"publisher"` for the publish
    /// key, `"anonymous"` otherwise.
    pub fn name(&self) -> &str {
        match self {
            Identity::Anonymous => "anonymous",
            Identity::User(u) => &u.id,
            Identity::PublishKey => "publisher",
        }
    }
}

/// What a token proved: who, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verified {
    /// The identity.
    pub identity: Identity,
    /// Time left until the token expires (its `exp`); `None` for a token without one (the
    /// publish key). The connection is closed with 4002 when it runs out.
    pub expires_in: Option<Duration>,
}

impl Verified {
    /// `identity`, valid for `expires_in`.
    pub fn new(identity: Identity, expires_in: Option<Duration>) -> Verified {
        Verified { identity, expires_in }
    }
}

/// Turns the token of an `auth` command into an [`Identity`] and its lifetime.
pub trait TokenVerifier: Send + Sync {
    /// What `token` proves.
    ///
    /// # Errors
    /// [`RealtimeError::Unauthenticated`] with the failure kind, never the token itself.
    fn verify(&self, token: &str) -> Result<Verified, RealtimeError>;
}
