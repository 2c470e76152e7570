//! What an identity may do: the asynchronous [`Authorizer`] seam and the protocol's rules
//! ([`DefaultAuthorizer`], with its [`RepoAccess`] mode).

use super::Identity;
use crate::engine::EngineFuture;
use crate::error::RealtimeError;
use crate::subscription::{Channel, ChannelType};
use std::future::ready;

/// The future an [`Authorizer`] returns: `Ok(())` to allow.
pub type AuthorizeFuture<'a> = EngineFuture<'a, Result<(), RealtimeError>>;

/// The access policy of a hub server. Asynchronous, so a policy may ask a database or the
/// platform (the hub server's `ProxyAuthorizer` asks an HTTP endpoint); a decision in flight
/// stalls only its own connection's commands. Both methods have the protocol's rules as their
/// default body (repositories readable by tokens that grant them, [`RepoAccess::Token`]), so an
/// embedder overrides only what it changes.
///
/// ```
/// use guts_realtime::{Channel, RealtimeError};
/// use guts_realtime::server::{authorize_read, AuthorizeFuture, Authorizer, Identity, RepoAccess};
///
/// /// Every repository is public except those of owner `secret`, which are for members of org
/// /// `secret` only.
/// struct Private;
/// impl Authorizer for Private {
///     fn authorize_subscribe<'a>(
///         &'a self,
///         who: &'a Identity,
///         ch: &'a Channel,
///     ) -> AuthorizeFuture<'a> {
///         Box::pin(async move {
///             if ch.identifier.starts_with("secret/") && !who.in_org("secret") {
///                 return Err(RealtimeError::Forbidden(format!("{ch} is private")));
///             }
///             authorize_read(who, ch, RepoAccess::Public)
///         })
///     }
/// }
/// ```
pub trait Authorizer: Send + Sync + 'static {
    /// Whether `identity` may subscribe to `channel`.
    ///
    /// # Errors
    /// [`RealtimeError::Forbidden`] (sent to the client as error `forbidden`; the connection
    /// stays open), or [`RealtimeError::Unavailable`] when the policy could not be asked (never
    /// an allow).
    fn authorize_subscribe<'a>(
        &'a self,
        identity: &'a Identity,
        channel: &'a Channel,
    ) -> AuthorizeFuture<'a> {
        Box::pin(ready(default_authorize_subscribe(identity, channel)))
    }

    /// Whether `identity` may publish on `channel` (over WebSocket or HTTP).
    ///
    /// # Errors
    /// [`RealtimeError::Forbidden`].
    fn authorize_publish<'a>(
        &'a self,
        identity: &'a Identity,
        channel: &'a Channel,
    ) -> AuthorizeFuture<'a> {
        Box::pin(ready(default_authorize_publish(identity, channel)))
    }

    /// `user`'s access to `channel` was revoked (`POST /api/unsubscribe`): forget any decision
    /// kept for it (a `repo:` channel: for the whole repository). The default keeps none.
    fn forget(&self, user: &str, channel: &Channel) {
        let _ = (user, channel);
    }
}

/// Who may read `repo:` channels (base, `/prs`, `/issues`, and any narrower view).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RepoAccess {
    /// A connection whose token grants the repository (claim `repos`: `"owner/name"` or
    /// `"owner/*"`), and the publish key. The default: private repositories stay private.
    #[default]
    Token,
    /// Anyone, anonymous connections included (public repositories only, or a demo).
    Public,
}

impl RepoAccess {
    /// The mode's name, as `guts-hub --repo-access` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            RepoAccess::Token => "token",
            RepoAccess::Public => "public",
        }
    }
}

/// The protocol's rules, with repositories readable as `repo_access` says (see
/// [`authorize_read`] and [`default_authorize_publish`]).
///
/// ```
/// use guts_realtime::server::{DefaultAuthorizer, RepoAccess};
/// assert_eq!(DefaultAuthorizer::default().repo_access, RepoAccess::Token);
/// let demo = DefaultAuthorizer::new(RepoAccess::Public);
/// # let _ = demo;
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct DefaultAuthorizer {
    /// Who may read `repo:` channels.
    pub repo_access: RepoAccess,
}

impl DefaultAuthorizer {
    /// The protocol's rules with `repo_access`.
    pub fn new(repo_access: RepoAccess) -> DefaultAuthorizer {
        DefaultAuthorizer { repo_access }
    }
}

impl Authorizer for DefaultAuthorizer {
    fn authorize_subscribe<'a>(
        &'a self,
        identity: &'a Identity,
        channel: &'a Channel,
    ) -> AuthorizeFuture<'a> {
        Box::pin(ready(authorize_read(identity, channel, self.repo_access)))
    }

    fn authorize_publish<'a>(
        &'a self,
        identity: &'a Identity,
        channel: &'a Channel,
    ) -> AuthorizeFuture<'a> {
        Box::pin(ready(authorize_publish_as(identity, channel, self.repo_access)))
    }
}

/// The protocol's subscribe rule with [`RepoAccess::Token`]: see [`authorize_read`].
///
/// # Errors
/// [`RealtimeError::Forbidden`].
pub fn default_authorize_subscribe(
    identity: &Identity,
    channel: &Channel,
) -> Result<(), RealtimeError> {
    authorize_read(identity, channel, RepoAccess::Token)
}

/// The protocol's read rule: a `repo:` channel is readable as `access` says (the publish key
/// reads every one); `user:X` needs a token with `sub == X`; `org:O` needs `O` in the token's
/// `orgs`.
///
/// # Errors
/// [`RealtimeError::Forbidden`] otherwise.
pub fn authorize_read(
    identity: &Identity,
    channel: &Channel,
    access: RepoAccess,
) -> Result<(), RealtimeError> {
    let ok = match channel.channel_type {
        ChannelType::Repository => {
            access == RepoAccess::Public
                || *identity == Identity::PublishKey
                || identity.may_read_repo(&channel.identifier)
        }
        ChannelType::User => identity.user() == Some(channel.identifier.as_str()),
        ChannelType::Organization => identity.in_org(&channel.identifier),
    };
    if ok {
        Ok(())
    } else if *identity == Identity::Anonymous {
        Err(RealtimeError::Forbidden(format!("{channel} requires a token that grants it")))
    } else {
        Err(RealtimeError::Forbidden(format!("{} may not read {channel}", identity.name())))
    }
}

/// The protocol's publish rule (with [`RepoAccess::Token`]): the publish key publishes anywhere;
/// a token with `publish: true` publishes on the `repo:` channels it may read (its `repos`
/// claim), one with `publish: ["repo:owner/name", "repo:owner/*"]` on the `repo:` channels those
/// match; a user's or an organization's channel (notifications, private activity) is the publish
/// key's alone.
///
/// # Errors
/// [`RealtimeError::Forbidden`] otherwise.
pub fn default_authorize_publish(
    identity: &Identity,
    channel: &Channel,
) -> Result<(), RealtimeError> {
    authorize_publish_as(identity, channel, RepoAccess::Token)
}

/// The protocol's publish rule with repositories readable as `access` says: as
/// [`default_authorize_publish`], where `publish: true` covers the `repo:` channels the identity
/// may read (under [`RepoAccess::Token`]: those its `repos` claim grants; under
/// [`RepoAccess::Public`]: all), and channel patterns cover what they name.
///
/// # Errors
/// [`RealtimeError::Forbidden`].
pub fn authorize_publish_as(
    identity: &Identity,
    channel: &Channel,
    access: RepoAccess,
) -> Result<(), RealtimeError> {
    let repo = &channel.identifier;
    let ok = match identity {
        Identity::PublishKey => true,
        Identity::User(u) if channel.channel_type == ChannelType::Repository => {
            let by_pattern = !u.publish_on.is_empty() && identity.may_publish_on_patterns(repo);
            let readable = access == RepoAccess::Public || identity.may_read_repo(repo);
            by_pattern || (u.publish && readable)
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else if identity.can_publish() && channel.channel_type != ChannelType::Repository {
        Err(RealtimeError::Forbidden(format!("only the publish key publishes on {channel}")))
    } else if identity.can_publish() {
        Err(RealtimeError::Forbidden(format!("the token's publish claim does not cover {channel}")))
    } else {
        Err(RealtimeError::Forbidden(format!("publishing on {channel} requires publish rights")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::User;

    fn ch(s: &str) -> Channel {
        Channel::parse(s).unwrap()
    }

    #[test]
    fn default_rules() {
        let anon = Identity::Anonymous;
        let alice =
            Identity::from(User::new("alice").orgs(["acme"]).repos(["acme/*", "alice/app"]));
        let public = |who: &Identity, c: &str| authorize_read(who, &ch(c), RepoAccess::Public);
        assert!(public(&anon, "repo:a/b/prs").is_ok());
        assert!(default_authorize_subscribe(&anon, &ch("repo:a/b/prs")).is_err());
        for (c, ok) in [
            ("repo:acme/web", true),
            ("repo:acme/web/prs", true),
            ("repo:alice/app/issues", true),
            ("repo:alice/other", false),
            ("repo:acmex/web", false),
            ("repo:alice/app2", false),
        ] {
            assert_eq!(default_authorize_subscribe(&alice, &ch(c)).is_ok(), ok, "{c}");
        }
        assert!(default_authorize_subscribe(&Identity::PublishKey, &ch("repo:x/y")).is_ok());
        assert!(default_authorize_subscribe(&anon, &ch("user:alice")).is_err());
        assert!(public(&anon, "user:alice").is_err());
        assert!(default_authorize_subscribe(&anon, &ch("org:acme")).is_err());
        assert!(default_authorize_subscribe(&alice, &ch("user:alice")).is_ok());
        assert!(default_authorize_subscribe(&alice, &ch("user:bob")).is_err());
        assert!(default_authorize_subscribe(&alice, &ch("org:acme")).is_ok());
        assert!(default_authorize_subscribe(&alice, &ch("org:other")).is_err());
        assert!(default_authorize_subscribe(&Identity::PublishKey, &ch("user:alice")).is_err());
        assert!(default_authorize_publish(&anon, &ch("repo:a/b")).is_err());
        assert!(default_authorize_publish(&alice, &ch("repo:a/b")).is_err());
        assert!(default_authorize_publish(&Identity::PublishKey, &ch("repo:a/b")).is_ok());
        let ci = Identity::from(User::new("ci").publish(true));
        let scoped =
            Identity::from(User::new("bot").publish_on(["repo:acme/*", "repo:alice/app", "junk"]));
        for (ch_name, ok) in [
            ("repo:acme/web", true),
            ("repo:acme/web/prs", true),
            ("repo:alice/app/issues", true),
            ("repo:alice/other", false),
            ("repo:acmex/web", false),
            ("user:acme", false),
        ] {
            assert_eq!(default_authorize_publish(&scoped, &ch(ch_name)).is_ok(), ok, "{ch_name}");
        }
        assert!(default_authorize_publish(&ci, &ch("repo:a/b")).is_err(), "not readable");
        assert!(authorize_publish_as(&ci, &ch("repo:a/b"), RepoAccess::Public).is_ok());
        let ci_acme = Identity::from(User::new("ci").publish(true).repos(["acme/*"]));
        assert!(default_authorize_publish(&ci_acme, &ch("repo:acme/web/prs")).is_ok());
        assert!(default_authorize_publish(&ci_acme, &ch("repo:other/web")).is_err());
        assert!(default_authorize_publish(&ci, &ch("user:alice")).is_err());
        assert!(default_authorize_publish(&ci, &ch("org:acme")).is_err());
        assert!(default_authorize_publish(&Identity::PublishKey, &ch("user:alice")).is_ok());
    }
}
