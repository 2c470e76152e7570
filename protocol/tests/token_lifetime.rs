//! Token lifetimes in virtual time, with the real client session, the real server connection
//! rules and the real in-memory hub (the pair of `support/mod.rs`): `expires_in`, the in-band
//! refresh at `exp − max(10 s, 10 %)`, `token_expired` + 4002 at expiry, the reconnect with a
//! fresh token and the recovery after it, and revoked subscriptions — counting token fetches,
//! not state events.

mod support;

use guts_realtime::server::RepoAccess;
use guts_realtime::session::{ConnectionState, Event, SessionConfig, SubState};
use guts_realtime::{Channel, EventKind};
use serde_json::Value;
use support::{Pair, TokenPolicy, S};

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// A connected pair whose tokens live `secs` seconds, subscribed to `channel`.
fn connected(secs: u64, channel: &str) -> (Pair, guts_realtime::session::SubId) {
    let mut p = Pair::new(SessionConfig::default().auth(true));
    p.token = TokenPolicy::Expiring(secs);
    let sub = p.s.subscribe(channel).unwrap();
    p.s.connect(p.now);
    p.settle();
    assert_eq!(p.s.state(), &ConnectionState::Connected);
    (p, sub)
}

/// The frames of type `ty` the client sent.
fn sent(p: &Pair, ty: &str) -> usize {
    p.sent.iter().filter(|t| json(t)["type"] == ty).count()
}

#[test]
fn the_authenticated_reply_says_when_the_token_expires() {
    let (p, _) = connected(3600, "user:alice");
    let auth = p.received.iter().map(|t| json(t)).find(|v| v["type"] == "authenticated").unwrap();
    assert_eq!(auth["expires_in"], 3600);
}

#[test]
fn the_session_refreshes_in_band_before_expiry_without_reconnecting() {
    // A 60 s token: refreshed at 60 − max(10, 6) = 50 s, every 50 s from then on.
    let (mut p, sub) = connected(60, "user:alice");
    assert_eq!(p.token_fetches, 1);
    p.run_until(50 * S - S / 10);
    assert_eq!(p.token_fetches, 1, "not before exp − 10 s");
    p.run_until(50 * S);
    assert_eq!(p.token_fetches, 2, "at exp − 10 s");
    assert_eq!(sent(&p, "auth"), 2, "the new token went on the open socket");
    let seq = p.publish("user:alice", EventKind::Push);
    p.advance(S);
    assert_eq!(p.messages(sub), [seq]);
    // An hour on: a refresh every 50 s, never a reconnect, a resubscribe or a close.
    p.run_until(3600 * S);
    assert_eq!(p.token_fetches, 1 + 3600 / 50);
    assert_eq!(p.connects, 1);
    assert_eq!(sent(&p, "subscribe"), 1);
    assert!(p.server_closes.is_empty(), "{:?}", p.server_closes);
    // A long-lived token: 10 % of its lifetime ahead (3600 s → at 3240 s).
    let (mut p, _) = connected(3600, "user:alice");
    p.run_until(3240 * S - S / 10);
    assert_eq!(p.token_fetches, 1);
    p.run_until(3240 * S);
    assert_eq!(p.token_fetches, 2);
}

#[test]
fn a_token_not_refreshed_in_time_closes_4002_and_the_session_reconnects_and_recovers() {
    let (mut p, sub) = connected(60, "user:alice");
    let first = p.publish("user:alice", EventKind::Push);
    p.advance(S);
    // The provider fails (transiently) from the refresh on: asked again every 5 s.
    p.token = TokenPolicy::Transient;
    p.run_until(60 * S - S / 10);
    assert!(p.server_closes.is_empty());
    assert_eq!(p.token_fetches, 1 + 2, "at 50 s and 55 s");
    p.run_until(60 * S);
    assert_eq!(p.server_closes.iter().map(|c| c.1).collect::<Vec<_>>(), [4002]);
    assert_eq!(p.close_reasons, ["token expired"]);
    let expired = p.received.iter().map(|t| json(t)).find(|v| v["code"] == "token_expired");
    assert!(expired.is_some(), "an error frame precedes the close");
    assert!(matches!(p.s.state(), ConnectionState::Reconnecting { .. }), "4002 reconnects");
    // Missed while away, then a fresh token: reconnected and recovered, no gap.
    let missed = p.publish("user:alice", EventKind::Push);
    p.token = TokenPolicy::Expiring(60);
    p.advance(60 * S);
    assert_eq!(p.s.state(), &ConnectionState::Connected);
    assert_eq!(p.connects, 2);
    assert_eq!(p.messages(sub), [first, missed]);
    assert!(p.gaps(sub).is_empty());
}

#[test]
fn a_provider_that_refuses_at_refresh_ends_the_session_at_expiry() {
    let (mut p, _) = connected(60, "user:alice");
    p.token = TokenPolicy::Unauthorized;
    p.run_until(61 * S);
    assert_eq!(p.server_closes.iter().map(|c| c.1).collect::<Vec<_>>(), [4002]);
    p.advance(60 * S);
    assert_eq!(p.s.state(), &ConnectionState::Closed, "refused for good: no retry loop");
    assert_eq!(p.connects, 1);
}

#[test]
fn a_revoked_subscription_fails_with_the_reason_and_is_not_resubscribed() {
    let (mut p, sub) = connected(3600, "repo:acme/app/prs");
    p.repo_access = RepoAccess::Token;
    let other = p.s.subscribe("repo:acme/web").unwrap();
    p.settle();
    let ended = p.hub.revoke_local("alice", &Channel::parse("repo:acme/app").unwrap());
    assert_eq!(ended, 1);
    p.settle();
    let failed = p.events.iter().rev().find_map(|(_, e)| match e {
        Event::Subscription { sub: s, state, .. } if *s == sub => Some(state.clone()),
        _ => None,
    });
    assert!(
        matches!(&failed, Some(SubState::Failed { message, .. }) if message == "revoked"),
        "{failed:?}"
    );
    // Not resubscribed: not now, not after a reconnect; the other channel goes on.
    p.cut();
    p.advance(30 * S);
    assert_eq!(p.s.state(), &ConnectionState::Connected);
    assert_eq!(p.s.confirmed_channels().collect::<Vec<_>>(), ["repo:acme/web"]);
    let seq = p.publish("repo:acme/app", EventKind::PrOpened);
    let web = p.publish("repo:acme/web", EventKind::Push);
    p.advance(S);
    assert!(!p.messages(sub).contains(&seq));
    assert_eq!(p.messages(other), [web]);
}
