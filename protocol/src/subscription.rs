//! Channels: the strict grammar, the canonical form, and routing (which subscriptions an event
//! reaches).
//!
//! Grammar (nothing else is a channel, and nothing is silently truncated):
//!
//! ```text
//! channel  = "repo:" seg "/" seg [ "/prs" [ "/" number ] | "/issues" [ "/" number ] ]
//!          | "user:" seg | "org:" seg
//! seg      = 1..=100 of [A-Za-z0-9._-], and not "." or ".."
//! number   = "0" | [1-9][0-9]*   (a u64, no leading zero)
//! ```
//!
//! `repo:o/n/prs/7` and `repo:o/n/issues/7` are *item channels*: one pull request or issue.
//!
//! Routing ([`Channel::receives`], used by the hub to fan out and by the SDKs to dispatch):
//! an event emitted on channel `C` with kind `K` about item `N` (the item of `C`, else the
//! `number`, `pr_number` or `parent_number` of its data: [`item_of`]) reaches a subscription
//! to `S` when
//! - `S` *is* `C`; or
//! - `S` is `repo:o/n` and `C` is any channel of `o/n` (the repository channel sees everything
//!   of its repository); or
//! - `S` is `repo:o/n/prs` and `C` is `repo:o/n/prs/N`, or `C` is `repo:o/n` and `K` is a
//!   `pr_*` kind; or
//! - `S` is `repo:o/n/prs/N` and `C` is `repo:o/n` or `repo:o/n/prs`, `K` is a `pr_*` kind and
//!   the event is about item `N`;
//! - and the same with `issues` and `issue_*` kinds.
//!
//! All channels of one repository share one *stream* ([`Channel::stream`]): one sequence of `seq`
//! numbers, one history. A filtered channel sees a strictly increasing subsequence of it.

use crate::error::RealtimeError;
use crate::event::{EventKind, KindFamily};
use crate::prelude::*;
use core::fmt;
use serde::{Deserialize, Serialize};

/// How many channels one client may hold at once.
pub const MAX_SUBSCRIPTIONS_PER_CLIENT: usize = 100;

/// Longest channel segment, in characters.
pub const MAX_SEGMENT_LEN: usize = 100;

/// The item (pull request or issue number) an event's data names: its `number`, else its
/// `pr_number`, else its `parent_number` (the payloads of `pr_*`/`issue_*`, `pr_review` and
/// `*_comment` events). An event emitted on an item channel is about that channel's item instead.
///
/// ```
/// use guts_realtime::subscription::item_of;
/// assert_eq!(item_of(&serde_json::json!({"number": 7, "title": "Fix"})), Some(7));
/// assert_eq!(item_of(&serde_json::json!({"id": 3, "pr_number": 9})), Some(9));
/// assert_eq!(item_of(&serde_json::json!({"parent_number": 4})), Some(4));
/// assert_eq!(item_of(&serde_json::json!({"ref": "main"})), None);
/// ```
#[cfg(feature = "json")]
pub fn item_of(data: &serde_json::Value) -> Option<u64> {
    ["number", "pr_number", "parent_number"].iter().find_map(|k| data.get(k)?.as_u64())
}

/// The kind of channel (`"repository"`, `"user"`, `"organization"` when serialized).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelType {
    /// `repo:owner/name[/prs[/N]|/issues[/N]]`.
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
    /// `prs` or `issues` for a filtered repository channel; `prs/N` or `issues/N` for an item
    /// channel (one pull request or issue: [`Channel::item`]).
    pub filter: Option<String>,
}

/// The filter of a repository channel, typed (an item channel has its family's filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RepoFilter {
    /// `/prs` and `/prs/N`.
    Prs,
    /// `/issues` and `/issues/N`.
    Issues,
}

/// Which part of a channel string an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Segment {
    /// The owner of `repo:owner/name`.
    Owner,
    /// The name of `repo:owner/name`.
    RepoName,
    /// The name of `user:name`.
    UserName,
    /// The name of `org:name`.
    OrgName,
}

impl Segment {
    /// How error messages call it (`"owner"`, `"repository name"`, …).
    pub fn name(self) -> &'static str {
        match self {
            Segment::Owner => "owner",
            Segment::RepoName => "repository name",
            Segment::UserName => "user name",
            Segment::OrgName => "organization name",
        }
    }
}

/// What is wrong with a channel string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChannelErrorKind {
    /// No `:` at all.
    MissingPrefix,
    /// The prefix is not `repo`, `user` or `org`.
    UnknownType,
    /// `repo:` without `owner/name`.
    MissingName,
    /// `repo:owner/name/filter/number/…`.
    TooManySegments,
    /// `repo:owner/name/x` where `x` is not `prs` or `issues`.
    UnknownFilter,
    /// `repo:owner/name/prs/x` where `x` is not a number without leading zeros that fits a u64.
    InvalidNumber,
    /// A segment is empty.
    Empty(Segment),
    /// A segment is longer than [`MAX_SEGMENT_LEN`] characters (its length in characters).
    TooLong(Segment, usize),
    /// A segment contains a character outside `[A-Za-z0-9._-]` (the first such).
    BadChar(Segment, char),
    /// A segment is `.` or `..` (which one).
    DotSegment(Segment, &'static str),
    /// A user or organization name contains `/`.
    Slash(Segment),
}

/// Why a string is not a channel: the [`ChannelErrorKind`] and the input. `Display` says it in
/// full (`owner is empty: "repo:/x"`, the input Debug-quoted and cut at 120 characters), which is
/// the text of [`RealtimeError::InvalidChannel`]. Nothing is formatted until it is displayed, so
/// [`Channel::try_parse`] costs no `core::fmt` (the browser SDK's wasm has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelError {
    kind: ChannelErrorKind,
    input: String,
}

/// The first `n` characters of `s`.
fn clip(s: &str, n: usize) -> &str {
    // Counted by UTF-8 lead bytes (no `char` decoding).
    let mut chars = 0;
    for (i, b) in s.bytes().enumerate() {
        if b & 0xC0 != 0x80 {
            if chars == n {
                return s.get(..i).unwrap_or(s);
            }
            chars += 1;
        }
    }
    s
}

impl ChannelError {
    /// What is wrong.
    pub fn kind(&self) -> ChannelErrorKind {
        self.kind
    }

    /// The rejected string.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// The prefix of an [`ChannelErrorKind::UnknownType`] or the filter of an
    /// [`ChannelErrorKind::UnknownFilter`] (at most 40 characters), as found in the input.
    fn offending_part(&self) -> &str {
        let (prefix, rest) = split_at_byte(&self.input, b':').unwrap_or((&self.input, ""));
        let part = match self.kind {
            ChannelErrorKind::UnknownType => prefix,
            // The third '/'-separated piece of the rest.
            ChannelErrorKind::UnknownFilter => split_at_byte(rest, b'/')
                .and_then(|(_, r)| split_at_byte(r, b'/'))
                .map_or("", |(_, f)| split_at_byte(f, b'/').map_or(f, |(f, _)| f)),
            _ => "",
        };
        clip(part, 40)
    }

    /// The problem without the input: the text before `: "input"`, with `quote` around quoted
    /// parts. Static pieces only.
    fn problem(&self, out: &mut String, quote: impl Fn(&mut String, &str, &str)) {
        use ChannelErrorKind as K;
        match self.kind {
            K::MissingPrefix => out.push_str("missing channel type prefix (repo:, user: or org:)"),
            K::UnknownType => {
                out.push_str("unknown channel type ");
                quote(out, self.offending_part(), "\"");
                out.push_str(" (expected repo, user or org)");
            }
            K::MissingName => out.push_str("repository channel requires owner/name"),
            K::TooManySegments => out.push_str(
                "repository channel has too many segments (expected owner/name[/prs|/issues[/N]])",
            ),
            K::InvalidNumber => out.push_str(
                "item number must be a decimal number without leading zeros (e.g. prs/42)",
            ),
            K::UnknownFilter => {
                out.push_str("unknown repository filter ");
                quote(out, self.offending_part(), "\"");
                out.push_str(" (expected prs or issues)");
            }
            K::Empty(seg) => {
                out.push_str(seg.name());
                out.push_str(" is empty");
            }
            K::TooLong(seg, len) => {
                out.push_str(seg.name());
                out.push_str(" is too long (");
                crate::frame::push_u64(out, len as u64);
                out.push_str(" > ");
                crate::frame::push_u64(out, MAX_SEGMENT_LEN as u64);
                out.push_str(" characters)");
            }
            K::BadChar(seg, c) => {
                out.push_str(seg.name());
                out.push_str(" contains ");
                let mut buf = [0u8; 4];
                quote(out, c.encode_utf8(&mut buf), "'");
                out.push_str(" (allowed: A-Z a-z 0-9 . _ -)");
            }
            K::DotSegment(seg, dots) => {
                out.push_str(seg.name());
                out.push_str(" may not be ");
                quote(out, dots, "\"");
            }
            K::Slash(seg) => {
                out.push_str(seg.name());
                out.push_str(" may not contain '/'");
            }
        }
    }

    /// The `Display` text built without `core::fmt`: quoted parts are put between quotes as they
    /// are instead of Debug-escaped, so the two agree on every input without quotes, backslashes
    /// or unprintable characters. This is what the browser SDK throws.
    pub fn message(&self) -> String {
        let raw = |out: &mut String, s: &str, q: &str| {
            out.push_str(q);
            out.push_str(s);
            out.push_str(q);
        };
        let mut out = String::new();
        self.problem(&mut out, raw);
        out.push_str(": ");
        let shown = clip(&self.input, 120);
        raw(&mut out, shown, "\"");
        if shown.len() < self.input.len() {
            out.push('\u{2026}');
        }
        out
    }
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let debug = |out: &mut String, s: &str, q: &str| {
            use core::fmt::Write;
            let _ = if q == "'" {
                write!(out, "{:?}", s.chars().next().unwrap_or_default())
            } else {
                write!(out, "{s:?}")
            };
        };
        let mut problem = String::new();
        self.problem(&mut problem, debug);
        // Echo at most 120 characters of the input, so a huge string stays a short error.
        let shown = clip(&self.input, 120);
        let ellipsis = if shown.len() < self.input.len() { "\u{2026}" } else { "" };
        write!(f, "{problem}: {shown:?}{ellipsis}")
    }
}

impl core::error::Error for ChannelError {}

impl From<ChannelError> for RealtimeError {
    fn from(e: ChannelError) -> Self {
        RealtimeError::InvalidChannel(e.to_string())
    }
}

/// `s` split around the first `b` (an ASCII byte), without it.
fn split_at_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    let i = s.bytes().position(|c| c == b)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// An item number: decimal digits without a leading zero (but `0` itself), fitting a u64.
fn parse_item(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty() || (b[0] == b'0' && b.len() > 1) || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    b.iter().try_fold(0u64, |n, d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
}

/// Checks one segment (`[A-Za-z0-9._-]{1,100}`, not `.` or `..`), in the order the errors are
/// reported: empty, too long, bad character, dots.
fn check_segment(seg: &str, which: Segment) -> Result<(), ChannelErrorKind> {
    if seg.is_empty() {
        return Err(ChannelErrorKind::Empty(which));
    }
    // More bytes than the limit may still be few enough characters: count them (UTF-8 lead bytes).
    if seg.len() > MAX_SEGMENT_LEN {
        let len = seg.bytes().filter(|b| b & 0xC0 != 0x80).count();
        if len > MAX_SEGMENT_LEN {
            return Err(ChannelErrorKind::TooLong(which, len));
        }
    }
    if let Some(c) =
        seg.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(ChannelErrorKind::BadChar(which, c));
    }
    match seg {
        "." => Err(ChannelErrorKind::DotSegment(which, ".")),
        ".." => Err(ChannelErrorKind::DotSegment(which, "..")),
        _ => Ok(()),
    }
}

impl Channel {
    /// Parses a channel string strictly (see the module docs for the grammar).
    ///
    /// # Errors
    /// [`RealtimeError::InvalidChannel`] with a message that says what is wrong (the
    /// [`ChannelError`] of [`Channel::try_parse`], displayed).
    pub fn parse(s: &str) -> Result<Self, RealtimeError> {
        Channel::try_parse(s).map_err(RealtimeError::from)
    }

    /// [`Channel::parse`] with the error as a [`ChannelError`], formatted only when displayed.
    /// A valid channel string is its own canonical form: `Display` gives `s` back.
    ///
    /// # Errors
    /// A [`ChannelError`] that says what is wrong.
    pub fn try_parse(s: &str) -> Result<Self, ChannelError> {
        Channel::check(s).map_err(|kind| ChannelError { kind, input: s.to_owned() })
    }

    fn check(s: &str) -> Result<Self, ChannelErrorKind> {
        use ChannelErrorKind as K;
        // Byte splits (no `str` pattern searchers: smaller wasm); ':' and '/' are ASCII.
        let (prefix, rest) = split_at_byte(s, b':').ok_or(K::MissingPrefix)?;
        let channel_type = match prefix {
            "repo" => ChannelType::Repository,
            "user" => ChannelType::User,
            "org" => ChannelType::Organization,
            _ => return Err(K::UnknownType),
        };
        match channel_type {
            ChannelType::Repository => {
                let (owner, rest) = split_at_byte(rest, b'/').ok_or(K::MissingName)?;
                let (name, filter) = match split_at_byte(rest, b'/') {
                    Some((name, filter)) => (name, Some(filter)),
                    None => (rest, None),
                };
                let (family, number) = match filter.and_then(|f| split_at_byte(f, b'/')) {
                    Some((family, number)) => (Some(family), Some(number)),
                    None => (filter, None),
                };
                if number.is_some_and(|n| n.bytes().any(|b| b == b'/')) {
                    return Err(K::TooManySegments);
                }
                check_segment(owner, Segment::Owner)?;
                check_segment(name, Segment::RepoName)?;
                if !matches!(family, None | Some("prs" | "issues")) {
                    return Err(K::UnknownFilter);
                }
                if number.is_some_and(|n| parse_item(n).is_none()) {
                    return Err(K::InvalidNumber);
                }
                let filter = filter.map(ToOwned::to_owned);
                Ok(Channel {
                    channel_type,
                    identifier: crate::frame::cat(&[owner, "/", name]),
                    filter,
                })
            }
            ChannelType::User | ChannelType::Organization => {
                let which = if channel_type == ChannelType::User {
                    Segment::UserName
                } else {
                    Segment::OrgName
                };
                if rest.bytes().any(|b| b == b'/') {
                    return Err(K::Slash(which));
                }
                check_segment(rest, which)?;
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

    /// The typed filter of a repository channel (an item channel's is its family's).
    pub fn repo_filter(&self) -> Option<RepoFilter> {
        let f = self.filter.as_deref()?;
        let family = split_at_byte(f, b'/').map_or(f, |(family, _)| family);
        match family {
            "prs" => Some(RepoFilter::Prs),
            "issues" => Some(RepoFilter::Issues),
            _ => None,
        }
    }

    /// The number of an item channel (`repo:o/n/prs/7` → 7).
    ///
    /// ```
    /// use guts_realtime::Channel;
    /// assert_eq!(Channel::parse("repo:o/n/prs/7").unwrap().item(), Some(7));
    /// assert_eq!(Channel::parse("repo:o/n/prs").unwrap().item(), None);
    /// assert!(Channel::parse("repo:o/n/prs/07").is_err());
    /// ```
    pub fn item(&self) -> Option<u64> {
        parse_item(split_at_byte(self.filter.as_deref()?, b'/')?.1)
    }

    /// The item channel `repo:o/n/prs/N` or `repo:o/n/issues/N` of this channel's repository
    /// (`None` for a user or organization channel).
    pub fn item_channel(&self, filter: RepoFilter, number: u64) -> Option<Channel> {
        if self.channel_type != ChannelType::Repository {
            return None;
        }
        let mut f = String::from(match filter {
            RepoFilter::Prs => "prs/",
            RepoFilter::Issues => "issues/",
        });
        crate::frame::push_u64(&mut f, number);
        Some(Channel { filter: Some(f), ..self.stream() })
    }

    /// The filtered channel `repo:o/n/prs` or `repo:o/n/issues` of this channel's repository.
    fn family_channel(&self, filter: RepoFilter) -> Channel {
        let f = match filter {
            RepoFilter::Prs => "prs",
            RepoFilter::Issues => "issues",
        };
        Channel { filter: Some(f.into()), ..self.stream() }
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
    /// which reach only their exact channel) about item `item` (what [`item_of`] finds in its
    /// data; an item channel's own number wins). This one function is used by the hub to fan
    /// out and by the SDKs to dispatch, so both agree by construction.
    ///
    /// ```
    /// use guts_realtime::{Channel, EventKind};
    /// let base = Channel::parse("repo:o/n").unwrap();
    /// let prs = Channel::parse("repo:o/n/prs").unwrap();
    /// let pr7 = Channel::parse("repo:o/n/prs/7").unwrap();
    /// let issues = Channel::parse("repo:o/n/issues").unwrap();
    /// assert!(prs.receives(&base, Some(EventKind::PrOpened), None));
    /// assert!(!issues.receives(&base, Some(EventKind::PrOpened), None));
    /// assert!(base.receives(&prs, Some(EventKind::PrMerged), None));
    /// assert!(!prs.receives(&base, Some(EventKind::Push), None));
    /// assert!(pr7.receives(&base, Some(EventKind::PrMerged), Some(7)));
    /// assert!(!pr7.receives(&base, Some(EventKind::PrMerged), Some(8)));
    /// assert!(prs.receives(&pr7, Some(EventKind::PrComment), None));
    /// ```
    pub fn receives(
        &self,
        event_channel: &Channel,
        kind: Option<EventKind>,
        item: Option<u64>,
    ) -> bool {
        if !self.same_stream(event_channel) {
            return false;
        }
        if self.filter == event_channel.filter {
            return true;
        }
        let Some(family) = self.repo_filter() else {
            return true; // the repository channel sees every channel of its repository
        };
        let of_family = |f: KindFamily| {
            matches!(
                (family, f),
                (RepoFilter::Prs, KindFamily::PullRequests)
                    | (RepoFilter::Issues, KindFamily::Issues)
            )
        };
        let kind_fits = kind.is_some_and(|k| of_family(k.family()));
        match (self.item(), event_channel.repo_filter(), event_channel.item()) {
            // `/prs`: its items' channels, and `pr_*` kinds on the repository channel.
            (None, Some(f), Some(_)) => f == family,
            (None, None, _) => kind_fits,
            (None, Some(_), None) => false,
            // `/prs/N`: `pr_*` kinds about N on the repository channel or on `/prs`.
            (Some(n), ev_family, None) => {
                ev_family.is_none_or(|f| f == family) && kind_fits && item == Some(n)
            }
            (Some(_), _, Some(_)) => false,
        }
    }

    /// Every subscription channel an event emitted on `self` with `kind` about `item` reaches
    /// (see [`Channel::receives`]): `self` first, then at most two more. Equivalent to filtering
    /// all channels with [`Channel::receives`].
    pub fn routes(
        &self,
        kind: Option<EventKind>,
        item: Option<u64>,
    ) -> impl Iterator<Item = Channel> {
        let mut extra: [Option<Channel>; 2] = [None, None];
        if self.channel_type == ChannelType::Repository {
            let kind_family = match kind.map(EventKind::family) {
                Some(KindFamily::PullRequests) => Some(RepoFilter::Prs),
                Some(KindFamily::Issues) => Some(RepoFilter::Issues),
                _ => None,
            };
            match (self.repo_filter(), self.item()) {
                (None, _) => {
                    if let Some(f) = kind_family {
                        extra[0] = Some(self.family_channel(f));
                        extra[1] = item.and_then(|n| self.item_channel(f, n));
                    }
                }
                (Some(f), None) => {
                    extra[0] = Some(self.stream());
                    if kind_family == Some(f) {
                        extra[1] = item.and_then(|n| self.item_channel(f, n));
                    }
                }
                (Some(f), Some(_)) => {
                    extra[0] = Some(self.stream());
                    extra[1] = Some(self.family_channel(f));
                }
            }
        }
        core::iter::once(self.clone()).chain(extra.into_iter().flatten())
    }

    /// Seed compatibility: whether this subscription matches an event channel string, without
    /// kind routing (an unfiltered repository channel matches its filtered channels; a filtered
    /// one matches only itself). Unparsable strings match nothing. Prefer [`Channel::receives`].
    pub fn matches(&self, event_channel: &str) -> bool {
        Channel::parse(event_channel).is_ok_and(|ev| self.receives(&ev, None, None))
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

impl core::str::FromStr for Channel {
    type Err = RealtimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::parse(s)
    }
}

/// The set of channels one client holds, capped at [`MAX_SUBSCRIPTIONS_PER_CLIENT`] (feature
/// `std`), in the order they were subscribed.
///
/// A `Vec` grown one slot at a time: with at most 100 channels a linear search costs less than
/// hashing, and a client holding one channel holds one 56-byte slot (a hash set's smallest table
/// is four slots and a control block: ~250 bytes per idle connection).
#[cfg(feature = "std")]
#[derive(Debug, Default, Clone)]
pub struct ClientSubscriptions {
    channels: Vec<Channel>,
}

#[cfg(feature = "std")]
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
        self.channels.reserve_exact(1);
        self.channels.push(channel);
        Ok(true)
    }

    /// Removes a channel; whether it was held.
    pub fn unsubscribe(&mut self, channel: &Channel) -> bool {
        match self.channels.iter().position(|c| c == channel) {
            Some(i) => {
                self.channels.remove(i);
                if self.channels.is_empty() {
                    self.channels = Vec::new();
                }
                true
            }
            None => false,
        }
    }

    /// Whether the channel is held.
    pub fn is_subscribed(&self, channel: &Channel) -> bool {
        self.channels.contains(channel)
    }

    /// Seed compatibility: whether any held channel matches the event channel string (no kind
    /// routing; see [`Channel::matches`]).
    pub fn matches_event(&self, event_channel: &str) -> bool {
        match Channel::parse(event_channel) {
            Ok(ev) => self.channels.iter().any(|c| c.receives(&ev, None, None)),
            Err(_) => false,
        }
    }

    /// Whether any held channel receives this event (kind and item routing).
    pub fn receives(
        &self,
        event_channel: &Channel,
        kind: Option<EventKind>,
        item: Option<u64>,
    ) -> bool {
        self.channels.iter().any(|c| c.receives(event_channel, kind, item))
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
        self.channels = Vec::new();
    }
}
