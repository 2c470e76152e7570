//! Repository events: the 23 [`EventKind`]s, their typed payloads, and the [`RealtimeEvent`] frame.
//!
//! The wire name of a kind is snake_case (`pr_opened`); `Display` keeps the seed's dotted form
//! (`pr.opened`) for logs only. [`EventKind::family`] says which filtered repository channel a kind
//! is routed to (`pr_*` → `/prs`, `issue_*` → `/issues`).

use crate::prelude::*;
use core::fmt;
use serde::{Deserialize, Serialize};

/// The kind of a repository event. Serialized snake_case (`"pr_opened"`).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Commits pushed to a ref.
    Push,
    /// A branch was created.
    BranchCreated,
    /// A branch was deleted.
    BranchDeleted,
    /// A tag was created.
    TagCreated,
    /// A tag was deleted.
    TagDeleted,
    /// A pull request was opened.
    PrOpened,
    /// A pull request was closed.
    PrClosed,
    /// A pull request was merged.
    PrMerged,
    /// A pull request was updated.
    PrUpdated,
    /// A pull request was reopened.
    PrReopened,
    /// A review was submitted on a pull request.
    PrReview,
    /// A comment was made on a pull request.
    PrComment,
    /// An issue was opened.
    IssueOpened,
    /// An issue was closed.
    IssueClosed,
    /// An issue was reopened.
    IssueReopened,
    /// An issue was updated.
    IssueUpdated,
    /// A comment was made on an issue.
    IssueComment,
    /// A label was added.
    LabelAdded,
    /// A label was removed.
    LabelRemoved,
    /// A repository was created.
    RepoCreated,
    /// A repository was updated.
    RepoUpdated,
    /// A collaborator was added.
    CollaboratorAdded,
    /// A collaborator was removed.
    CollaboratorRemoved,
}

/// The filtered repository channel a kind is routed to, besides the repository channel itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KindFamily {
    /// `pr_*` kinds: also delivered to `repo:o/n/prs`.
    PullRequests,
    /// `issue_*` kinds: also delivered to `repo:o/n/issues`.
    Issues,
    /// Everything else: only the repository channel.
    Other,
}

impl EventKind {
    /// All 23 kinds, in the seed's order.
    pub fn all() -> &'static [EventKind] {
        use EventKind::*;
        &[
            Push,
            BranchCreated,
            BranchDeleted,
            TagCreated,
            TagDeleted,
            PrOpened,
            PrClosed,
            PrMerged,
            PrUpdated,
            PrReopened,
            PrReview,
            PrComment,
            IssueOpened,
            IssueClosed,
            IssueReopened,
            IssueUpdated,
            IssueComment,
            LabelAdded,
            LabelRemoved,
            RepoCreated,
            RepoUpdated,
            CollaboratorAdded,
            CollaboratorRemoved,
        ]
    }

    /// The wire name (`"pr_opened"`), as serde writes it.
    pub fn wire_name(self) -> &'static str {
        use EventKind::*;
        match self {
            Push => "push",
            BranchCreated => "branch_created",
            BranchDeleted => "branch_deleted",
            TagCreated => "tag_created",
            TagDeleted => "tag_deleted",
            PrOpened => "pr_opened",
            PrClosed => "pr_closed",
            PrMerged => "pr_merged",
            PrUpdated => "pr_updated",
            PrReopened => "pr_reopened",
            PrReview => "pr_review",
            PrComment => "pr_comment",
            IssueOpened => "issue_opened",
            IssueClosed => "issue_closed",
            IssueReopened => "issue_reopened",
            IssueUpdated => "issue_updated",
            IssueComment => "issue_comment",
            LabelAdded => "label_added",
            LabelRemoved => "label_removed",
            RepoCreated => "repo_created",
            RepoUpdated => "repo_updated",
            CollaboratorAdded => "collaborator_added",
            CollaboratorRemoved => "collaborator_removed",
        }
    }

    /// Parses a wire name (`"pr_opened"`); `None` for an unknown name.
    pub fn from_wire(name: &str) -> Option<EventKind> {
        EventKind::all().iter().copied().find(|k| k.wire_name() == name)
    }

    /// Which filtered repository channel this kind is routed to.
    pub fn family(self) -> KindFamily {
        use EventKind::*;
        match self {
            PrOpened | PrClosed | PrMerged | PrUpdated | PrReopened | PrReview | PrComment => {
                KindFamily::PullRequests
            }
            IssueOpened | IssueClosed | IssueReopened | IssueUpdated | IssueComment => {
                KindFamily::Issues
            }
            _ => KindFamily::Other,
        }
    }
}

impl fmt::Display for EventKind {
    /// The seed's dotted display name (`pr.opened`); the wire name is [`EventKind::wire_name`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let wire = self.wire_name();
        match wire.find('_') {
            Some(i) => write!(f, "{}.{}", &wire[..i], &wire[i + 1..]),
            None => f.write_str(wire),
        }
    }
}

/// Payload of a push event.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushEventData {
    /// The pushed ref (`"ref"` on the wire).
    #[serde(rename = "ref")]
    pub ref_name: String,
    /// Old commit.
    pub before: String,
    /// New commit.
    pub after: String,
    /// Who pushed.
    pub pusher: String,
    /// Number of commits pushed.
    pub commit_count: usize,
}

/// Payload of a pull-request event.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequestEventData {
    /// PR number.
    pub number: u64,
    /// Title.
    pub title: String,
    /// Author.
    pub author: String,
    /// Source branch.
    pub source_branch: String,
    /// Target branch.
    pub target_branch: String,
    /// `open`, `closed` or `merged`.
    pub state: String,
}

/// Payload of an issue event.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueEventData {
    /// Issue number.
    pub number: u64,
    /// Title.
    pub title: String,
    /// Author.
    pub author: String,
    /// `open` or `closed`.
    pub state: String,
}

/// Payload of a comment event.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentEventData {
    /// Comment id.
    pub id: u64,
    /// Number of the PR or issue commented on.
    pub parent_number: u64,
    /// Author.
    pub author: String,
    /// The first characters of the body.
    pub body_preview: String,
}

/// Payload of a review event.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewEventData {
    /// Review id.
    pub id: u64,
    /// PR number.
    pub pr_number: u64,
    /// Reviewer.
    pub reviewer: String,
    /// `approved`, `changes_requested` or `commented`.
    pub state: String,
}

#[cfg(feature = "json")]
pub use self::frame::{EventPayload, RealtimeEvent, UnknownEvent};

#[cfg(feature = "json")]
mod frame {
    use super::EventKind;
    use serde::{Deserialize, Serialize};

    fn event_type() -> String {
        "event".to_owned()
    }

    /// An event frame: `{"type":"event","channel","event","data","timestamp","event_id","seq"}`.
    ///
    /// `seq` is set by the hub when the event is published (strictly increasing within the
    /// channel's stream) and omitted while `None`.
    #[cfg_attr(feature = "ts", derive(ts_rs::TS))]
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct RealtimeEvent {
        /// Always `"event"` (`"type"` on the wire).
        #[serde(rename = "type", default = "event_type")]
        #[cfg_attr(feature = "ts", ts(type = "\"event\""))]
        pub event_type: String,
        /// The channel the event was emitted on.
        pub channel: String,
        /// The kind of event.
        pub event: EventKind,
        /// Free-form payload (often one of the `*EventData` structs).
        pub data: serde_json::Value,
        /// Unix time in seconds.
        pub timestamp: u64,
        /// A unique id (UUID v4 when made by [`RealtimeEvent::new`]).
        pub event_id: String,
        /// Position in the channel's stream, stamped by the hub.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        pub seq: Option<u64>,
    }

    impl RealtimeEvent {
        /// The payload (`data`) as a `T`, e.g. [`PullRequestEventData`](super::PullRequestEventData) for `pr_*` events.
        ///
        /// ```
        /// use guts_realtime::{EventKind, PullRequestEventData, RealtimeEvent};
        /// # let json = r#"{"type":"event","channel":"repo:a/b","event":"pr_opened","data":{"number":7,"title":"Fix","author":"alice","source_branch":"fix","target_branch":"main","state":"open"},"timestamp":1,"event_id":"e"}"#;
        /// let ev: RealtimeEvent = serde_json::from_str(json).unwrap();
        /// let pr: PullRequestEventData = ev.payload().unwrap();
        /// assert_eq!((pr.number, pr.author.as_str()), (7, "alice"));
        /// ```
        ///
        /// # Errors
        /// The serde error when `data` is not a `T`.
        pub fn payload<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
            T::deserialize(&self.data)
        }

        /// The payload typed by the event's kind (a [`EventPayload`] variant per kind).
        ///
        /// ```
        /// use guts_realtime::{EventPayload, RealtimeEvent};
        /// # let json = r#"{"type":"event","channel":"repo:a/b","event":"pr_merged","data":{"number":7,"title":"Fix","author":"alice","source_branch":"fix","target_branch":"main","state":"merged"},"timestamp":1,"event_id":"e"}"#;
        /// let ev: RealtimeEvent = serde_json::from_str(json).unwrap();
        /// match ev.typed().unwrap() {
        ///     EventPayload::PrMerged(pr) => assert_eq!(pr.number, 7),
        ///     other => panic!("{other:?}"),
        /// }
        /// ```
        ///
        /// # Errors
        /// The serde error when `data` is not what the kind's payload type says.
        pub fn typed(&self) -> Result<EventPayload, serde_json::Error> {
            use EventKind as K;
            use EventPayload as P;
            let d = || self.data.clone();
            Ok(match self.event {
                K::Push => P::Push(self.payload()?),
                K::BranchCreated => P::BranchCreated(d()),
                K::BranchDeleted => P::BranchDeleted(d()),
                K::TagCreated => P::TagCreated(d()),
                K::TagDeleted => P::TagDeleted(d()),
                K::PrOpened => P::PrOpened(self.payload()?),
                K::PrClosed => P::PrClosed(self.payload()?),
                K::PrMerged => P::PrMerged(self.payload()?),
                K::PrUpdated => P::PrUpdated(self.payload()?),
                K::PrReopened => P::PrReopened(self.payload()?),
                K::PrReview => P::PrReview(self.payload()?),
                K::PrComment => P::PrComment(self.payload()?),
                K::IssueOpened => P::IssueOpened(self.payload()?),
                K::IssueClosed => P::IssueClosed(self.payload()?),
                K::IssueReopened => P::IssueReopened(self.payload()?),
                K::IssueUpdated => P::IssueUpdated(self.payload()?),
                K::IssueComment => P::IssueComment(self.payload()?),
                K::LabelAdded => P::LabelAdded(d()),
                K::LabelRemoved => P::LabelRemoved(d()),
                K::RepoCreated => P::RepoCreated(d()),
                K::RepoUpdated => P::RepoUpdated(d()),
                K::CollaboratorAdded => P::CollaboratorAdded(d()),
                K::CollaboratorRemoved => P::CollaboratorRemoved(d()),
            })
        }

        /// A new event stamped with the current time and a fresh UUID v4 (needs feature `hub`).
        #[cfg(feature = "hub")]
        pub fn new(channel: impl Into<String>, kind: EventKind, data: serde_json::Value) -> Self {
            let timestamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            RealtimeEvent {
                event_type: event_type(),
                channel: channel.into(),
                event: kind,
                data,
                timestamp,
                event_id: uuid::Uuid::new_v4().to_string(),
                seq: None,
            }
        }
    }

    /// An event frame of a kind this version does not know (sent by a newer hub), kept with its
    /// kind string: clients deliver it, never drop it. It is routed as the kinds of no family
    /// are: to the channel it was published on and to the repository's channel.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct UnknownEvent {
        /// The channel the event was emitted on.
        pub channel: String,
        /// The kind, as the hub named it.
        pub event: String,
        /// Free-form payload.
        #[serde(default)]
        pub data: serde_json::Value,
        /// Unix time in seconds.
        #[serde(default)]
        pub timestamp: u64,
        /// The event's id.
        #[serde(default)]
        pub event_id: String,
        /// Position in the channel's stream.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub seq: Option<u64>,
    }

    impl UnknownEvent {
        /// The payload (`data`) as a `T`.
        ///
        /// # Errors
        /// The serde error when `data` is not a `T`.
        pub fn payload<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
            T::deserialize(&self.data)
        }
    }

    /// An event's payload typed by its kind ([`RealtimeEvent::typed`]): the kinds with a payload
    /// struct carry it, the others their JSON as it came. The same mapping as the TypeScript
    /// `EventDataByKind` of the npm package.
    #[derive(Debug, Clone, PartialEq)]
    #[allow(missing_docs)] // one variant per kind, named as the kind
    pub enum EventPayload {
        Push(super::PushEventData),
        BranchCreated(serde_json::Value),
        BranchDeleted(serde_json::Value),
        TagCreated(serde_json::Value),
        TagDeleted(serde_json::Value),
        PrOpened(super::PullRequestEventData),
        PrClosed(super::PullRequestEventData),
        PrMerged(super::PullRequestEventData),
        PrUpdated(super::PullRequestEventData),
        PrReopened(super::PullRequestEventData),
        PrReview(super::ReviewEventData),
        PrComment(super::CommentEventData),
        IssueOpened(super::IssueEventData),
        IssueClosed(super::IssueEventData),
        IssueReopened(super::IssueEventData),
        IssueUpdated(super::IssueEventData),
        IssueComment(super::CommentEventData),
        LabelAdded(serde_json::Value),
        LabelRemoved(serde_json::Value),
        RepoCreated(serde_json::Value),
        RepoUpdated(serde_json::Value),
        CollaboratorAdded(serde_json::Value),
        CollaboratorRemoved(serde_json::Value),
    }
}
