//! Identity and rights: anonymous, users, orgs, refused tokens, re-auth, expiry, publishing,
//! revocation, notifications.

use super::{as_user, auth, check, expect_error, still_open};
use crate::conn::{Conn, Fail, WAIT};
use crate::hooks::{exp_in, hs256, http, mint, publish, uniq};
use crate::Target;
use serde_json::{json, Value};
use std::time::Duration;

pub(super) async fn auth_anonymous_is_repo_only(t: &Target) -> Result<(), Fail> {
    let mut c = Conn::open(t).await?;
    c.subscribe("repo:anyone/anything").await?;
    expect_error(&mut c, r#"{"type":"subscribe","channel":"user:victim"}"#, "forbidden").await?;
    expect_error(&mut c, r#"{"type":"subscribe","channel":"org:acme"}"#, "forbidden").await?;
    still_open(&mut c).await
}

pub(super) async fn auth_user_and_org_rights(t: &Target) -> Result<(), Fail> {
    let mut c = Conn::open(t).await?;
    let tok = mint(t, json!({"sub": "alice", "exp": exp_in(600), "orgs": ["acme"]})).await?;
    let r = auth(&mut c, &tok).await?;
    let expires_in = r["expires_in"].as_u64().unwrap_or(0);
    let ok =
        r["type"] == "authenticated" && r["user"] == "alice" && (590..=600).contains(&expires_in);
    check(ok, || format!("auth reply (expires_in: the token's 600 s): {r}"))?;
    c.subscribe("user:alice").await?;
    c.subscribe("org:acme").await?;
    expect_error(&mut c, r#"{"type":"subscribe","channel":"user:bob"}"#, "forbidden").await?;
    expect_error(&mut c, r#"{"type":"subscribe","channel":"org:other"}"#, "forbidden").await?;
    still_open(&mut c).await
}

pub(super) async fn auth_bad_tokens_close_4001(t: &Target) -> Result<(), Fail> {
    let expired = mint(t, json!({"sub": "alice", "exp": exp_in(-3600)})).await?;
    let forged = hs256("some other secret", &json!({"sub": "alice", "exp": exp_in(600)}));
    for (what, tok) in [("expired", expired), ("badly signed", forged), ("garbage", "xyz".into())] {
        let mut c = Conn::open(t).await?;
        let r = auth(&mut c, &tok).await?;
        check(r["type"] == "error" && r["code"] == "unauthenticated", || {
            format!("{what} token: {r}")
        })?;
        c.expect_close(4001, WAIT).await.map_err(|e| format!("{what} token: {e}"))?;
    }
    Ok(())
}

pub(super) async fn publish_rights(t: &Target) -> Result<(), Fail> {
    let ch = format!("repo:{}/pub", uniq("o"));
    let frame =
        json!({"type": "publish", "channel": ch, "event": "push", "data": {"a": 1}, "id": 3})
            .to_string();
    let mut watcher = Conn::open(t).await?;
    watcher.subscribe(&ch).await?;
    let mut anon = Conn::open(t).await?;
    expect_error(&mut anon, &frame, "forbidden").await?;
    let mut user = Conn::open(t).await?;
    auth(&mut user, &mint(t, json!({"sub": "bob", "exp": exp_in(600)})).await?).await?;
    expect_error(&mut user, &frame, "forbidden").await?;
    still_open(&mut watcher).await.map_err(|e| format!("a refused publish was published: {e}"))?;
    for tok in [key(t), mint(t, json!({"sub": "ci", "exp": exp_in(600), "publish": true})).await?] {
        let mut c = Conn::open(t).await?;
        let r = auth(&mut c, &tok).await?;
        check(r["type"] == "authenticated", || format!("auth: {r}"))?;
        c.send(&frame).await?;
        let r = c.recv().await?;
        check(
            r["type"] == "published"
                && r["channel"] == ch.as_str()
                && r["seq"].is_u64()
                && r["id"] == 3,
            || format!("publish reply: {r}"),
        )?;
    }
    Ok(())
}

pub(super) async fn notifications_follow_preferences(t: &Target) -> Result<(), Fail> {
    let user = uniq("n");
    let mut c = Conn::open(t).await?;
    auth(&mut c, &mint(t, json!({"sub": user, "exp": exp_in(600)})).await?).await?;
    c.subscribe(&format!("user:{user}")).await?;
    let note = |ty: &str| {
        json!({"id": uniq("id"), "user_id": user, "notification_type": ty, "title": "t", "body": "b",
               "url": null, "read": false, "created_at": 1, "metadata": {}})
        .to_string()
    };
    let key = format!("Bearer {}", key(t));
    let (s, text) = http(t, "POST", "/api/notify", Some(&key), Some(&note("push"))).await?;
    check(s / 100 == 2, || format!("notify (disabled type): {s} {text}"))?;
    let (s, text) = http(t, "POST", "/api/notify", Some(&key), Some(&note("mention"))).await?;
    check(s / 100 == 2, || format!("notify: {s} {text}"))?;
    let n = c.recv().await?;
    check(
        n["type"] == "notification"
            && n["channel"] == format!("user:{user}").as_str()
            && n["notification"]["notification_type"] == "mention"
            && n["seq"].is_u64(),
        || format!("expected the mention only (push is disabled by default), got {n}"),
    )?;
    let (s, _) = http(t, "POST", "/api/notify", None, Some(&note("mention"))).await?;
    check(s == 401, || format!("notify without key: {s}"))
}

/// The publish key (checks that use it need it).
fn key(t: &Target) -> String {
    t.publish_key.clone().unwrap_or_default()
}

pub(super) async fn reauth_drops_what_the_new_identity_may_not_read(
    t: &Target,
) -> Result<(), Fail> {
    let repo = format!("repo:{}/kept", uniq("o"));
    let mut c = as_user(t, "alice", json!({})).await?;
    c.subscribe("user:alice").await?;
    c.subscribe(&repo).await?;
    let bob = mint(t, json!({"sub": "bob", "exp": exp_in(600)})).await?;
    c.send(&json!({"type": "auth", "token": bob, "id": "a"}).to_string()).await?;
    let (first, second) = (c.recv().await?, c.recv().await?);
    let dropped = json!({"type": "unsubscribed", "channel": "user:alice"});
    let authed = |f: &Value| f["type"] == "authenticated" && f["user"] == "bob" && f["id"] == "a";
    check((first == dropped && authed(&second)) || (authed(&first) && second == dropped), || {
        format!("expected `authenticated` as bob and an unsolicited {dropped}, got {first} and {second}")
    })?;
    let seq = publish(t, &repo, "push", json!({})).await?;
    let e = c.recv().await?;
    check(e["seq"] == seq, || format!("the repository channel stays subscribed: {e}"))?;
    expect_error(&mut c, r#"{"type":"subscribe","channel":"user:alice"}"#, "forbidden").await?;
    still_open(&mut c).await
}

pub(super) async fn reauth_with_the_same_user_refreshes(t: &Target) -> Result<(), Fail> {
    let repo = format!("repo:{}/refresh", uniq("o"));
    let mut c = as_user(t, "alice", json!({})).await?;
    c.subscribe("user:alice").await?;
    c.subscribe(&repo).await?;
    let longer = mint(t, json!({"sub": "alice", "exp": exp_in(1200)})).await?;
    let r = auth(&mut c, &longer).await?;
    let expires_in = r["expires_in"].as_u64().unwrap_or(0);
    check(r["type"] == "authenticated" && (1190..=1200).contains(&expires_in), || {
        format!("refresh (a token of 1200 s): {r}")
    })?;
    // Nothing else happened: both channels are still held.
    for ch in [repo.as_str(), "user:alice"] {
        let seq = publish(t, ch, "push", json!({})).await?;
        let e = c.recv().await?;
        check(e["seq"] == seq && e["channel"] == ch, || format!("{ch} after the refresh: {e}"))?;
    }
    still_open(&mut c).await
}

pub(super) async fn expiry_closes_4002(t: &Target) -> Result<(), Fail> {
    let mut c = Conn::open(t).await?;
    let r = auth(&mut c, &mint(t, json!({"sub": "alice", "exp": exp_in(2)})).await?).await?;
    check(r["type"] == "authenticated", || format!("auth: {r}"))?;
    let e = c.recv_within(Duration::from_secs(6)).await?;
    check(e["type"] == "error" && e["code"] == "token_expired", || {
        format!("expected error token_expired when the token expires, got {e}")
    })?;
    c.expect_close(4002, WAIT).await
}

pub(super) async fn idempotent_publish_over_the_socket(t: &Target) -> Result<(), Fail> {
    let ch = format!("repo:{}/idem", uniq("o"));
    let mut sub = Conn::open(t).await?;
    sub.subscribe(&ch).await?;
    let mut p = Conn::open(t).await?;
    let r = auth(&mut p, &key(t)).await?;
    check(r["type"] == "authenticated", || format!("auth with the publish key: {r}"))?;
    let key = uniq("k");
    let frame = |id: u64| json!({"type": "publish", "channel": ch, "event": "push", "data": {}, "idempotency_key": key, "id": id});
    let first = p.request(frame(1)).await?;
    check(
        first["type"] == "published" && first["id"] == 1 && first["duplicate"].is_null(),
        || format!("first publish: {first}"),
    )?;
    let again = p.request(frame(2)).await?;
    check(again["seq"] == first["seq"] && again["duplicate"] == true && again["id"] == 2, || {
        format!("the same key again must answer the first seq with duplicate: {again}")
    })?;
    let e = sub.recv().await?;
    check(e["seq"] == first["seq"], || format!("the event: {e}"))?;
    still_open(&mut sub).await.map_err(|e| format!("the repeat was published: {e}"))?;
    let bad = json!({"type": "publish", "channel": ch, "event": "push", "idempotency_key": ""});
    expect_error(&mut p, &bad.to_string(), "invalid_message").await.map(drop)
}

pub(super) async fn revocation_unsubscribes(t: &Target) -> Result<(), Fail> {
    let user = uniq("rev");
    let repo = format!("repo:{}/secret", uniq("o"));
    let mut c = as_user(t, &user, json!({})).await?;
    c.subscribe(&format!("{repo}/prs")).await?;
    let auth_header = format!("Bearer {}", key(t));
    let body = json!({"user": user, "channel": repo}).to_string();
    let (s, text) = http(t, "POST", "/api/unsubscribe", Some(&auth_header), Some(&body)).await?;
    check(s == 200 && text.contains(r#""revoked":true"#), || {
        format!("/api/unsubscribe: {s} {text}")
    })?;
    let u = c.recv().await?;
    let want =
        json!({"type": "unsubscribed", "channel": format!("{repo}/prs"), "reason": "revoked"});
    check(u == want, || format!("expected {want}\n  got      {u}"))?;
    publish(t, &repo, "pr_opened", json!({"number": 1})).await?;
    still_open(&mut c).await.map_err(|e| format!("an event after the revocation: {e}"))
}

pub(super) async fn disconnect_closes_4003(t: &Target) -> Result<(), Fail> {
    let user = uniq("gone");
    let mut a = as_user(t, &user, json!({})).await?;
    let mut b = as_user(t, &user, json!({})).await?;
    let mut other = as_user(t, "someone-else", json!({})).await?;
    let auth_header = format!("Bearer {}", key(t));
    let body = json!({"user": user}).to_string();
    let (s, text) = http(t, "POST", "/api/disconnect", Some(&auth_header), Some(&body)).await?;
    check(s == 200 && text.contains(r#""disconnected":true"#), || {
        format!("/api/disconnect: {s} {text}")
    })?;
    a.expect_close(4003, WAIT).await?;
    b.expect_close(4003, WAIT).await?;
    still_open(&mut other).await
}
