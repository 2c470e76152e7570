//! User notifications: what they carry and which kinds a user wants.
//!
//! The hub delivers a [`Notification`] on `user:<user_id>` when that user's
//! [`NotificationPreferences`] enable its [`NotificationType`].

use crate::prelude::*;
use serde::{Deserialize, Serialize};

/// Kind of a user notification (snake_case on the wire).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationType {
    /// The user was mentioned.
    Mention,
    /// The user was assigned.
    Assigned,
    /// A review was requested from the user.
    ReviewRequested,
    /// A PR was merged.
    PrMerged,
    /// A PR was closed.
    PrClosed,
    /// A new comment.
    NewComment,
    /// A review was submitted.
    ReviewSubmitted,
    /// An issue was closed.
    IssueClosed,
    /// A push.
    Push,
    /// The user was added to a team.
    TeamAdded,
    /// The user was added as a collaborator.
    CollaboratorAdded,
    /// A workflow completed.
    WorkflowCompleted,
}

impl NotificationType {
    /// A human-readable label.
    pub fn label(&self) -> &'static str {
        match self {
            NotificationType::Mention => "Mentioned",
            NotificationType::Assigned => "Assigned",
            NotificationType::ReviewRequested => "Review Requested",
            NotificationType::PrMerged => "PR Merged",
            NotificationType::PrClosed => "PR Closed",
            NotificationType::NewComment => "New Comment",
            NotificationType::ReviewSubmitted => "Review Submitted",
            NotificationType::IssueClosed => "Issue Closed",
            NotificationType::Push => "New Push",
            NotificationType::TeamAdded => "Added to Team",
            NotificationType::CollaboratorAdded => "Added as Collaborator",
            NotificationType::WorkflowCompleted => "Workflow Completed",
        }
    }

    /// An icon hint.
    pub fn icon(&self) -> &'static str {
        match self {
            NotificationType::Mention => "at",
            NotificationType::Assigned => "person",
            NotificationType::ReviewRequested => "eye",
            NotificationType::PrMerged => "git-merge",
            NotificationType::PrClosed => "git-pull-request-closed",
            NotificationType::NewComment => "comment",
            NotificationType::ReviewSubmitted => "check",
            NotificationType::IssueClosed => "issue-closed",
            NotificationType::Push => "upload",
            NotificationType::TeamAdded => "people",
            NotificationType::CollaboratorAdded => "person-add",
            NotificationType::WorkflowCompleted => "activity",
        }
    }
}

/// Optional context of a notification; absent fields are omitted on the wire.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationMetadata {
    /// `owner/name` of the repository concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub repo_key: Option<String>,
    /// PR number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub pr_number: Option<u64>,
    /// Issue number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub issue_number: Option<u64>,
    /// Who caused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub actor: Option<String>,
}

/// A notification for one user.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Unique id.
    pub id: String,
    /// The user it is for; delivered on `user:<user_id>`.
    pub user_id: String,
    /// Its kind.
    pub notification_type: NotificationType,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Link to the thing concerned.
    pub url: Option<String>,
    /// Whether the user read it.
    pub read: bool,
    /// Unix time in seconds.
    pub created_at: u64,
    /// Context.
    #[serde(default)]
    pub metadata: NotificationMetadata,
}

impl Notification {
    /// A new unread notification with a fresh UUID v4 and the current time (needs feature `hub`).
    #[cfg(feature = "hub")]
    pub fn new(
        user_id: impl Into<String>,
        notification_type: NotificationType,
        title: impl Into<String>,
        body: impl Into<String>,
    ) -> Self {
        Notification {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user_id.into(),
            notification_type,
            title: title.into(),
            body: body.into(),
            url: None,
            read: false,
            created_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            metadata: NotificationMetadata::default(),
        }
    }

    /// Sets the link.
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Sets the context.
    pub fn with_metadata(mut self, metadata: NotificationMetadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// Marks it read.
    pub fn mark_read(&mut self) {
        self.read = true;
    }
}

/// Which notification kinds a user wants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationPreferences {
    /// The user.
    pub user_id: String,
    /// The kinds delivered.
    pub enabled_types: Vec<NotificationType>,
    /// E-mail delivery (not used by the hub).
    pub email_enabled: bool,
    /// Push delivery (not used by the hub).
    pub push_enabled: bool,
}

impl Default for NotificationPreferences {
    /// Enabled by default: mention, assigned, review_requested, pr_merged, new_comment,
    /// review_submitted.
    fn default() -> Self {
        NotificationPreferences {
            user_id: String::new(),
            enabled_types: vec![
                NotificationType::Mention,
                NotificationType::Assigned,
                NotificationType::ReviewRequested,
                NotificationType::PrMerged,
                NotificationType::NewComment,
                NotificationType::ReviewSubmitted,
            ],
            email_enabled: false,
            push_enabled: false,
        }
    }
}

impl NotificationPreferences {
    /// The defaults for one user.
    pub fn for_user(user_id: impl Into<String>) -> Self {
        NotificationPreferences { user_id: user_id.into(), ..Default::default() }
    }

    /// Whether this kind is delivered.
    pub fn is_enabled(&self, t: NotificationType) -> bool {
        self.enabled_types.contains(&t)
    }
}
