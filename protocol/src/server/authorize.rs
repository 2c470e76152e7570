//! What an identity may do: the [`Authorizer`] seam and the protocol's rules
//! ([`DefaultAuthorizer`]).

use super::Identity;
use crate::error::RealtimeError;
use crate::subscription::{Channel, ChannelType};

/// The access policy of a hub server. Both methods have the protocol's rules as their default
/// body, so an embedder overrides only what it changes (e.g. private repositories).
///
/// ```
/// use guts_realtime::{Channel, RealtimeError};
/// use guts_realtime::server::{Authorizer, Identity};
///
/// /// Like the default, but `repo:secret/*` is for members of org `secret` only.
/// struct Private;
/// impl Authorizer for Private {
///     fn authorize_subscribe(&self, who: &Identity, ch: &Channel) -> Result<(), RealtimeError> {
///         if ch.identifier.starts_with("secret/") && !who.in_org("secret") {
///             return Err(RealtimeError::Forbidden(format!("{ch} is private")));
///         }
///         guts_realtime::server::default_authorize_subscribe(who, ch)
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

/// The protocol's publish rule: the publish key publishes anywhere; a token with `publish: true`
/// publishes on every `repo:` channel, one with `publish: ["repo:owner/name", "repo:owner/*"]` on
/// the `repo:` channels those match; a user's or an organization's channel (notifications,
/// private activity) is the publish key's alone.
///
/// # Errors
/// [`RealtimeError::Forbidden`] otherwise.
pub fn default_authorize_publish(
    identity: &Identity,
    channel: &Channel,
) -> Result<(), RealtimeError> {
    let ok = match identity {
        Identity::PublishKey => true,
        who @ Identity::User { .. } => {
            channel.channel_type == ChannelType::Repository
                && who.may_publish_on(&channel.identifier)
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

    fn ch(s: &str) -> Channel {
        Channel::parse(s).unwrap()
    }

    #[test]
    fn default_rules() {
        let anon = Identity::Anonymous;
        let alice = Identity::User {
            id: "alice".into(),
            orgs: vec!["acme".into()],
            publish: false,
            publish_on: vec![],
        };
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
        let ci =
            Identity::User { id: "ci".into(), orgs: vec![], publish: true, publish_on: vec![] };
        let scoped = Identity::User {
            id: "bot".into(),
            orgs: vec![],
            publish: false,
            publish_on: vec!["repo:acme/*".into(), "repo:alice/app".into(), "junk".into()],
        };
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
        assert!(default_authorize_publish(&ci, &ch("repo:a/b")).is_ok());
        assert!(default_authorize_publish(&ci, &ch("user:alice")).is_err());
        assert!(default_authorize_publish(&ci, &ch("org:acme")).is_err());
        assert!(default_authorize_publish(&Identity::PublishKey, &ch("user:alice")).is_ok());
    }
}
