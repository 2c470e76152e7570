//! The checks: one async function per rule of `docs/PROTOCOL.md`, grouped by area, and
//! [`ALL`], the registry that names each with the section it covers and what it needs.
//!
//! A check assumes a hub with the protocol's default limits (100 channels per connection,
//! 50 commands/s in bursts of 200, 64 KiB messages, 10 signals/s) and `repo:` channels readable
//! by anonymous connections (`guts-hub --repo-access public`).

mod auth;
mod collab;
mod http;
mod limits;
mod recovery;
mod routing;
mod wire;

use crate::conn::{Conn, Fail};
use crate::Target;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;

/// What a check needs beyond the WebSocket URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// The hub sends `welcome` (with the epoch recovery needs).
    Welcome,
    /// Client tokens: `--secret` (HS256) or `--token-cmd`.
    Tokens,
    /// A way to publish: the reference HTTP API or `--publish-cmd`.
    Publish,
    /// The reference HTTP API (`--http` and `--publish-key`, no `--publish-cmd`).
    HttpApi,
    /// The publish key, as a WebSocket `auth` token with publish rights.
    PublishKey,
    /// `--history-size`.
    HistorySize,
    /// `--idle-timeout-secs`.
    IdleTimeout,
    /// `--max-connections`.
    MaxConnections,
    /// `--shutdown-cmd`.
    Shutdown,
}

impl Need {
    /// Why a check with this need is skipped when it is not met.
    pub fn reason(self) -> &'static str {
        match self {
            Need::Welcome => "the hub sends no welcome (optional), so there is no epoch to resume from",
            Need::Tokens => "no way to mint tokens: give --secret (HS256) or --token-cmd",
            Need::Publish => "no way to publish: give --http and --publish-key, or --publish-cmd",
            Need::HttpApi => "checks the reference HTTP API: give --http and --publish-key (not with --publish-cmd)",
            Need::PublishKey => "no --publish-key to authenticate a publisher over the WebSocket",
            Need::HistorySize => "the hub's history size is unknown: give --history-size",
            Need::IdleTimeout => "the hub's idle timeout is unknown: give --idle-timeout-secs (a short one)",
            Need::MaxConnections => "the hub's connection cap is unknown: give --max-connections",
            Need::Shutdown => "no way to stop the hub: give --shutdown-cmd",
        }
    }
}

/// A check's function.
pub type CheckFn =
    for<'a> fn(&'a Target) -> Pin<Box<dyn Future<Output = Result<(), Fail>> + Send + 'a>>;

/// One check: a rule of the protocol.
#[derive(Debug, Clone, Copy)]
pub struct Check {
    /// Its name (`--only` matches on it).
    pub name: &'static str,
    /// The section of `docs/PROTOCOL.md` it checks.
    pub rule: &'static str,
    /// What it needs; it is skipped when one is missing.
    pub needs: &'static [Need],
    /// The check.
    pub run: CheckFn,
}

macro_rules! checks {
    ($($module:ident::$name:ident, $rule:literal, [$($need:ident),*];)*) => {
        /// Every check, in the order they run (the shutdown check last).
        pub const ALL: &[Check] = &[
            $(Check {
                name: stringify!($name),
                rule: $rule,
                needs: &[$(Need::$need),*],
                run: |t| Box::pin($module::$name(t)),
            }),*
        ];
    };
}

checks! {
    wire::welcome_first, "Server frames › welcome", [Welcome];
    wire::seed_ping_pong, "Client frames › ping", [];
    wire::id_is_echoed, "The id rule", [];
    wire::subscribe_replies_canonical, "Client frames › subscribe; Server frames › subscribed", [];
    wire::duplicate_subscribe_and_unheld_unsubscribe, "Subscribe and unsubscribe semantics", [Publish];
    wire::invalid_channels, "Channels › invalid channels", [];
    wire::invalid_messages_keep_the_connection, "Error codes › invalid_message", [];
    wire::event_frame_shape, "Server frames › event", [Publish];
    routing::routing_matrix, "Routing", [Publish];
    routing::item_channels, "Routing › item channels", [Publish];
    routing::one_copy_through_two_channels, "Routing › one copy", [Publish];
    recovery::recovery_replays_missed_events, "Recovery", [Welcome, Publish];
    recovery::recovery_with_wrong_epoch_is_a_gap, "Recovery › another epoch", [Publish];
    recovery::recovery_beyond_the_head_is_a_gap, "Recovery › S beyond the head", [Welcome, Publish];
    recovery::recovery_at_the_head_replays_nothing, "Recovery › S at the head", [Welcome, Publish];
    recovery::recovery_past_trimmed_history_is_a_gap, "Recovery › S older than the history", [Welcome, Publish, HistorySize];
    collab::history_returns_the_last_events, "History", [Welcome, Publish];
    collab::history_then_since_misses_nothing, "History › then subscribe with since", [Welcome, Publish];
    collab::history_limit_bounds, "Limits › history limit", [];
    collab::presence_lists_joins_and_leaves, "Presence", [Tokens];
    collab::presence_counts_connections_per_user, "Presence › one member per user", [Tokens];
    collab::presence_command_reads_without_joining, "Client frames › presence", [Tokens];
    collab::anonymous_watchers_are_not_members, "Presence › anonymous watchers", [Tokens];
    collab::signals_reach_the_others_with_the_hub_user, "Signals", [Tokens];
    collab::signals_need_an_item_channel_and_a_user, "Signals › forbidden", [Tokens];
    collab::signal_names_and_sizes, "Client frames › signal", [Tokens];
    collab::signal_rate_limit, "Limits › signals per connection", [Tokens];
    auth::auth_anonymous_is_repo_only, "Authentication and authorization", [];
    auth::auth_user_and_org_rights, "Authentication and authorization › user and org", [Tokens];
    auth::auth_bad_tokens_close_4001, "Authentication and authorization › refused token", [Tokens];
    auth::reauth_drops_what_the_new_identity_may_not_read, "Client frames › auth (another identity)", [Tokens];
    auth::reauth_with_the_same_user_refreshes, "Token lifetime › refresh", [Tokens, Publish];
    auth::expiry_closes_4002, "Token lifetime › expiry", [Tokens];
    auth::publish_rights, "Client frames › publish", [Tokens, PublishKey];
    auth::idempotent_publish_over_the_socket, "Client frames › publish › idempotency", [PublishKey];
    auth::revocation_unsubscribes, "Revocation › /api/unsubscribe", [Tokens, HttpApi];
    auth::disconnect_closes_4003, "Revocation › /api/disconnect", [Tokens, HttpApi];
    auth::notifications_follow_preferences, "Notifications", [Tokens, HttpApi];
    http::http_endpoints, "HTTP API › /healthz, /readyz, /api/stats, /metrics", [HttpApi];
    http::http_publish_errors, "HTTP API › POST /api/publish", [HttpApi];
    http::http_idempotent_publish, "HTTP API › idempotency", [HttpApi];
    limits::oversized_frame_closes_1009, "Limits › inbound message size", [];
    limits::subscription_limit, "Limits › channels per connection", [];
    limits::rate_limit_refuses_then_closes_4029, "Limits › commands per connection", [];
    limits::per_user_connection_cap_closes_4503, "Limits › connections per user", [Tokens];
    limits::connection_cap_refuses_the_upgrade, "Limits › connections per hub", [MaxConnections];
    limits::idle_connection_closes_4009, "Limits › idle connection", [IdleTimeout];
    limits::slow_consumer_is_closed_4008, "Limits and slow consumers", [PublishKey];
    limits::shutdown_closes_every_client, "Close codes › shutdown", [Shutdown];
}

/// `Ok` when `cond`, else `Err(why())`.
pub(crate) fn check(cond: bool, why: impl FnOnce() -> String) -> Result<(), Fail> {
    if cond {
        Ok(())
    } else {
        Err(why())
    }
}

/// Sends `sent` and expects an error with `code`; the error frame.
pub(crate) async fn expect_error(c: &mut Conn, sent: &str, code: &str) -> Result<Value, Fail> {
    c.send(sent).await?;
    let r = c.recv().await?;
    check(r["type"] == "error" && r["code"] == code && r["message"].is_string(), || {
        format!("sent {sent}: expected an error with code {code}, got {r}")
    })?;
    Ok(r)
}

/// A ping round trip: the connection is open and nothing else was queued before the pong.
pub(crate) async fn still_open(c: &mut Conn) -> Result<(), Fail> {
    c.roundtrip(r#"{"type":"ping"}"#, r#"{"type":"pong"}"#).await
}

/// Sends `auth` with `token`; the reply.
pub(crate) async fn auth(c: &mut Conn, token: &str) -> Result<Value, Fail> {
    c.request(serde_json::json!({"type": "auth", "token": token})).await
}

/// A connection authenticated as `user` (a token valid for 10 minutes, plus `extra` claims).
pub(crate) async fn as_user(t: &Target, user: &str, extra: Value) -> Result<Conn, Fail> {
    let mut claims = serde_json::json!({"sub": user, "exp": crate::hooks::exp_in(600)});
    if let (Some(c), Some(e)) = (claims.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    let mut c = Conn::open(t).await?;
    let r = auth(&mut c, &crate::hooks::mint(t, claims).await?).await?;
    check(r["type"] == "authenticated" && r["user"] == user, || format!("auth as {user}: {r}"))?;
    Ok(c)
}
