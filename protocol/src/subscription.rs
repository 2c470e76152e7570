//! Channels: the strict grammar, the canonical form, and routing (which subscriptions an event
//! reaches).
//!
//! Grammar (nothing else is a channel, and nothing is silently truncated):
//!
//! ```text
//! channel  = "repo:" seg "/" seg [ "/prs" | "/issues" ] | "user:" seg | "org:" seg
//! seg      = 1..=100 of [A-Za-z0-9._-], and not "." or ".."
//! ```
//!
//! Routing ([`Channel::receives`], used by the hub to fan out and by the SDKs to dispatch):
//! a subscription receives an event emitted on channel `C` with kind `K` when
//! - it *is* `C`; or
//! - it is `repo:o/n` and `C` is `repo:o/n/prs` or `repo:o/n/issues` (the repository channel sees
//!   everything of its repository); or
//! - it is `repo:o/n/prs` and `C` is `repo:o/n` and `K` is a `pr_*` kind, or it is
//!   `repo:o/n/issues` and `C` is `repo:o/n` and `K` is an `issue_*` kind.
//!
//! All channels of one repository share one *stream* ([`Channel::stream`]): one sequence of `seq`
//! numbers, one history. A filtered channel sees a strictly increasing subsequence of it.

use crate::error::RealtimeError;
use crate::event::{EventKind, KindFamily};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt;

/// How many channels one client may hold at once.
pub const MAX_SUBSCRIPTIONS_PER_CLIENT: usize = 100;

/// Longest channel segment, in characters.
pub const MAX_SEGMENT_LEN: usize = 100;

/// The kind of channel (`"repository"`, `"user"`, `"organization"` when serialized).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelType {
    /// `repo:owner/name[/prs|/issues]`.
    Repository,
    /// `user:name`.
    User,
    /// `org:name`.
    Organization,
}

impl ChannelType {
    /// The channel-string prefix (`repo`, `user`, `org`).
    pub fn prefix(self) -> &'static str {
        match self {
            ChannelType::Repository => "repo",
            ChannelType::User => "user",
            ChannelType::Organization => "org",
        }
    }
}

/// A parsed, valid channel. Build one with [`Channel::parse`] (or `str::parse`); its `Display`
/// is the canonical channel string.
///
/// ```
/// use guts_realtime::{Channel, ChannelType};
/// let ch = Channel::parse("repo:alice/myrepo/prs").unwrap();
/// assert_eq!(ch.channel_type, ChannelType::Repository);
/// assert_eq!(ch.identifier, "alice/myrepo");
/// assert_eq!(ch.filter.as_deref(), Some("prs"));
/// assert_eq!(ch.to_string(), "repo:alice/myrepo/prs");
/// assert!(Channel::parse("repo:alice").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Channel {
    /// The kind of channel.
    pub channel_type: ChannelType,
    /// `owner/name` for repositories, the name for users and organizations.
    pub identifier: String,
    /// `prs` or `issues` for a filtered repository channel.
    pub filter: Option<String>,
}

/// The filter of a repository channel, typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RepoFilter {
    /// `/prs`.
    Prs,
    /// `/issues`.
    Issues,
}

fn invalid(input: &str, why: impl fmt::Display) -> RealtimeError {
    // Echo at most 120 characters of the input, so a huge string stays a short error.
    let shown: String = input.chars().take(120).collect();
    let ellipsis = if shown.len() < input.len() { "…" } else { "" };
    RealtimeError::InvalidChannel(format!("{why}: {shown:?}{ellipsis}"))
}

fn check_segment(input: &str, what: &str, seg: &str) -> Result<(), RealtimeError> {
    if seg.is_empty() {
        return Err(invalid(input, format_args!("{what} is empty")));
    }
    let len = seg.chars().count();
    if len > MAX_SEGMENT_LEN {
        return Err(invalid(
            input,
            format_args!("{what} is too long ({len} > {MAX_SEGMENT_LEN} characters)"),
        ));
    }
    if let Some(c) =
        seg.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(invalid(
            input,
            format_args!("{what} contains {c:?} (allowed: A-Z a-z 0-9 . _ -)"),
        ));
    }
    if seg == "." || seg == ".." {
        return Err(invalid(input, format_args!("{what} may not be {seg:?}")));
    }
    Ok(())
}

impl Channel {
    /// Parses a channel string strictly (see the module docs for the grammar).
    ///
    /// # Errors
    /// [`RealtimeError::InvalidChannel`] with a message that says what is wrong.
    pub fn parse(s: &str) -> Result<Self, RealtimeError> {
        let Some((prefix, rest)) = s.split_once(':') else {
            return Err(invalid(s, "missing channel type prefix (repo:, user: or org:)"));
        };
        let channel_type = match prefix {
            "repo" => ChannelType::Repository,
            "user" => ChannelType::User,
            "org" => ChannelType::Organization,
            _ => {
                let p: String = prefix.chars().take(40).collect();
                return Err(invalid(
                    s,
                    format_args!("unknown channel type {p:?} (expected repo, user or org)"),
                ));
            }
        };
        match channel_type {
            ChannelType::Repository => {
                let mut parts = rest.split('/');
                let owner = parts.next().unwrap_or("");
                let Some(name) = parts.next() else {
                    return Err(invalid(s, "repository channel requires owner/name"));
                };
                let filter = parts.next();
                if parts.next().is_some() {
                    return Err(invalid(
                        s,
                        "repository channel has too many segments (expected owner/name[/prs|/issues])",
                    ));
                }
                check_segment(s, "owner", owner)?;
                check_segment(s, "repository name", name)?;
                let filter = match filter {
                    None => None,
                    Some(f @ ("prs" | "issues")) => Some(f.to_owned()),
                    Some(f) => {
                        let f: String = f.chars().take(40).collect();
                        return Err(invalid(
                            s,
                            format_args!(
                                "unknown repository filter {f:?} (expected prs or issues)"
                            ),
                        ));
                    }
                };
                Ok(Channel { channel_type, identifier: format!("{owner}/{name}"), filter })
            }
            ChannelType::User | ChannelType::Organization => {
                let what = if channel_type == ChannelType::User {
                    "user name"
                } else {
                    "organization name"
                };
                if rest.contains('/') {
                    return Err(invalid(s, format_args!("{what} may not contain '/'")));
                }
                check_segment(s, what, rest)?;
                Ok(Channel { channel_type, identifier: rest.to_owned(), filter: None })
            }
        }
    }

    /// `repo:owner/name` (no filter).
    pub fn repo(owner: &str, name: &str) -> Result<Self, RealtimeError> {
        Channel::parse(&format!("repo:{owner}/{name}"))
    }

    /// `user:name`.
    pub fn user(name: &str) -> Result<Self, RealtimeError> {
        Channel::parse(&format!("user:{name}"))
    }

    /// `org:name`.
    pub fn org(name: &str) -> Result<Self, RealtimeError> {
        Channel::parse(&format!("org:{name}"))
    }

    /// The typed filter of a repository channel.
    pub fn repo_filter(&self) -> Option<RepoFilter> {
        match self.filter.as_deref() {
            Some("prs") => Some(RepoFilter::Prs),
            Some("issues") => Some(RepoFilter::Issues),
            _ => None,
        }
    }

    /// The channel whose stream (seq numbers, history) this channel reads: the channel itself
    /// without its filter.
    pub fn stream(&self) -> Channel {
        Channel { filter: None, ..self.clone() }
    }

    /// Whether `self` and `other` belong to the same stream.
    pub fn same_stream(&self, other: &Channel) -> bool {
        self.channel_type == other.channel_type && self.identifier == other.identifier
    }

    /// The routing rule: whether a subscription to `self` receives an event emitted on
    /// `event_channel` with kind `kind` (`None` for frames without a kind, e.g. notifications,
    /// which reach only their exact channel). This one function is used by the hub to fan out and
    /// by the SDKs to dispatch, so both agree by construction.
    ///
    /// ```
    /// use guts_realtime::{Channel, EventKind};
    /// let base = Channel::parse("repo:o/n").unwrap();
    /// let prs = Channel::parse("repo:o/n/prs").unwrap();
    /// let issues = Channel::parse("repo:o/n/issues").unwrap();
    /// assert!(prs.receives(&base, Some(EventKind::PrOpened)));
    /// assert!(!issues.receives(&base, Some(EventKind::PrOpened)));
    /// assert!(base.receives(&prs, Some(EventKind::PrMerged)));
    /// assert!(!prs.receives(&base, Some(EventKind::Push)));
    /// ```
    pub fn receives(&self, event_channel: &Channel, kind: Option<EventKind>) -> bool {
        if !self.same_stream(event_channel) {
            return false;
        }
        match (&self.filter, &event_channel.filter) {
            (a, b) if a == b => true,
            (None, Some(_)) => true,
            (Some(_), None) => matches!(
                (self.repo_filter(), kind.map(EventKind::family)),
                (Some(RepoFilter::Prs), Some(KindFamily::PullRequests))
                    | (Some(RepoFilter::Issues), Some(KindFamily::Issues))
            ),
            _ => false,
        }
    }

    /// Every subscription channel an event emitted on `self` with `kind` reaches: `self` first,
    /// then at most one more. Equivalent to filtering all channels with [`Channel::receives`].
    pub fn routes(&self, kind: Option<EventKind>) -> impl Iterator<Item = Channel> {
        let extra = match (&self.filter, self.channel_type) {
            (Some(_), ChannelType::Repository) => Some(self.stream()),
            (None, ChannelType::Repository) => match kind.map(EventKind::family) {
                Some(KindFamily::PullRequests) => {
                    Some(Channel { filter: Some("prs".into()), ..self.clone() })
                }
                Some(KindFamily::Issues) => {
                    Some(Channel { filter: Some("issues".into()), ..self.clone() })
                }
                _ => None,
            },
            _ => None,
        };
        std::iter::once(self.clone()).chain(extra)
    }

    /// Seed compatibility: whether this subscription matches an event channel string, without
    /// kind routing (an unfiltered repository channel matches its filtered channels; a filtered
    /// one matches only itself). Unparsable strings match nothing. Prefer [`Channel::receives`].
    pub fn matches(&self, event_channel: &str) -> bool {
        Channel::parse(event_channel).is_ok_and(|ev| self.receives(&ev, None))
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.channel_type.prefix(), self.identifier)?;
        if let Some(filter) = &self.filter {
            write!(f, "/{filter}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Channel {
    type Err = RealtimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::parse(s)
    }
}

/// The set of channels one client holds, capped at [`MAX_SUBSCRIPTIONS_PER_CLIENT`].
#[derive(Debug, Default, Clone)]
pub struct ClientSubscriptions {
    channels: HashSet<Channel>,
}

impl ClientSubscriptions {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a channel. `Ok(true)` if it is new, `Ok(false)` if it was already held (this
    /// succeeds even at the cap).
    ///
    /// # Errors
    /// [`RealtimeError::SubscriptionLimit`] when a new channel would exceed the cap.
    pub fn subscribe(&mut self, channel: Channel) -> Result<bool, RealtimeError> {
        if self.channels.contains(&channel) {
            return Ok(false);
        }
        if self.channels.len() >= MAX_SUBSCRIPTIONS_PER_CLIENT {
            return Err(RealtimeError::SubscriptionLimit(MAX_SUBSCRIPTIONS_PER_CLIENT));
        }
        Ok(self.channels.insert(channel))
    }

    /// Removes a channel; whether it was held.
    pub fn unsubscribe(&mut self, channel: &Channel) -> bool {
        self.channels.remove(channel)
    }

    /// Whether the channel is held.
    pub fn is_subscribed(&self, channel: &Channel) -> bool {
        self.channels.contains(channel)
    }

    /// Seed compatibility: whether any held channel matches the event channel string (no kind
    /// routing; see [`Channel::matches`]).
    pub fn matches_event(&self, event_channel: &str) -> bool {
        match Channel::parse(event_channel) {
            Ok(ev) => self.channels.iter().any(|c| c.receives(&ev, None)),
            Err(_) => false,
        }
    }

    /// Whether any held channel receives this event (kind routing).
    pub fn receives(&self, event_channel: &Channel, kind: Option<EventKind>) -> bool {
        self.channels.iter().any(|c| c.receives(event_channel, kind))
    }

    /// The held channels.
    pub fn channels(&self) -> impl Iterator<Item = &Channel> {
        self.channels.iter()
    }

    /// How many channels are held.
    pub fn count(&self) -> usize {
        self.channels.len()
    }

    /// Drops every channel.
    pub fn clear(&mut self) {
        self.channels.clear();
    }
}
