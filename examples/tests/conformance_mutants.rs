//! The conformance suite is shown to fail: each mutant below is a real `guts-hub` behind a
//! proxy that breaks one rule of the protocol (`guts_realtime_examples::mutant_proxy`), and the
//! suite must report exactly the checks listed for it — no more (a check that fails for the
//! wrong reason), no fewer (a broken rule nobody noticed). Through the proxy that breaks
//! nothing, every check passes. The checks that no mutant makes fail are printed and must be
//! none: each check is shown to be able to fail.

use guts_conformance::checks::ALL;
use guts_realtime_examples::hub_process::{conformance_target, HubProcess, CONFORMANCE_FLAGS};
use guts_realtime_examples::mutant_proxy::{Ctx, Mutant, MutantProxy, ToHub};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

/// `v` (an object) changed by `f`, serialized.
fn edit(v: &Value, f: impl FnOnce(&mut Map<String, Value>)) -> String {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        f(o);
    }
    v.to_string()
}

fn is(v: &Value, ty: &str) -> bool {
    v["type"] == ty
}

const M: Mutant = Mutant::IDENTITY;

/// Every mutant: the rule it breaks (its name) and the checks that must catch it.
const MUTANTS: &[Mutant] = &[
    Mutant {
        name: "welcome_without_client_id",
        fails: &["welcome_first"],
        to_client: |_, _, v| {
            is(v, "welcome").then(|| vec![edit(v, |o| drop(o.remove("client_id")))])
        },
        ..M
    },
    Mutant {
        name: "frames_parsed_as_text_not_json",
        fails: &["seed_ping_pong"],
        to_hub: |_, t, _| {
            t.contains(" : ").then(|| ToHub {
                forward: None,
                reply: vec![
                    r#"{"type":"error","message":"unknown frame","code":"invalid_message"}"#.into(),
                ],
            })
        },
        ..M
    },
    Mutant {
        name: "string_ids_not_echoed_on_pong",
        fails: &["id_is_echoed", "signal_rate_limit"],
        to_client: |_, _, v| {
            (is(v, "pong") && v["id"].is_string()).then(|| vec![edit(v, |o| drop(o.remove("id")))])
        },
        ..M
    },
    Mutant {
        name: "subscribed_keys_out_of_order",
        fails: &["subscribe_replies_canonical"],
        to_client: |_, _, v| {
            (is(v, "subscribed") && v["id"].is_u64()).then(|| {
                let id = &v["id"];
                vec![format!(
                    r#"{{"type":"subscribed","id":{id},"channel":{},"seq":{}}}"#,
                    v["channel"], v["seq"]
                )]
            })
        },
        ..M
    },
    Mutant {
        name: "unsubscribe_of_an_unheld_channel_is_an_error",
        fails: &["duplicate_subscribe_and_unheld_unsubscribe"],
        to_hub: |ctx, _, v| {
            let held = v["channel"].as_str().is_some_and(|c| ctx.subscribed.iter().any(|s| s == c));
            (is(v, "unsubscribe") && !held).then(|| ToHub {
                forward: None,
                reply: vec![
                    r#"{"type":"error","message":"not subscribed","code":"invalid_channel"}"#
                        .into(),
                ],
            })
        },
        ..M
    },
    Mutant {
        name: "dot_dot_repository_accepted",
        fails: &["invalid_channels"],
        to_hub: |_, _, v| {
            let ch = v["channel"].as_str().unwrap_or_default().to_owned();
            (is(v, "subscribe") && ch.ends_with("/..")).then(|| ToHub {
                forward: None,
                reply: vec![json!({"type": "subscribed", "channel": ch, "seq": 0}).to_string()],
            })
        },
        ..M
    },
    Mutant {
        name: "invalid_message_closes_the_connection",
        fails: &[
            "invalid_messages_keep_the_connection",
            "history_limit_bounds",
            "signal_names_and_sizes",
        ],
        to_client: |ctx, _, v| {
            if is(v, "error") && v["code"] == "invalid_message" {
                ctx.close_after = Some(1008);
            }
            None
        },
        ..M
    },
    Mutant {
        name: "event_without_event_id",
        fails: &["event_frame_shape"],
        to_client: |_, _, v| {
            (is(v, "event") && v["event"] == "pr_opened")
                .then(|| vec![edit(v, |o| drop(o.remove("event_id")))])
        },
        ..M
    },
    Mutant {
        name: "issue_events_on_the_base_channel_miss_issues_subscribers",
        fails: &["routing_matrix"],
        to_client: |ctx, _, v| {
            let base = v["channel"].as_str().is_some_and(|c| c.matches('/').count() == 1);
            let issues = ctx.subscribed.iter().any(|c| c.ends_with("/issues"));
            (is(v, "event") && base && issues && v["event"] == "issue_opened").then(Vec::new)
        },
        ..M
    },
    Mutant {
        name: "events_about_an_item_by_pr_number_miss_its_channel",
        fails: &["item_channels"],
        to_client: |_, _, v| (is(v, "event") && v["data"]["pr_number"].is_u64()).then(Vec::new),
        ..M
    },
    Mutant {
        name: "two_channels_two_copies",
        fails: &[
            "duplicate_subscribe_and_unheld_unsubscribe",
            "one_copy_through_two_channels",
            "reauth_with_the_same_user_refreshes",
        ],
        to_client: |ctx, t, v| {
            (is(v, "event") && ctx.subscribed.len() >= 2).then(|| vec![t.to_owned(), t.to_owned()])
        },
        ..M
    },
    Mutant {
        name: "replay_skips_an_event",
        fails: &["recovery_replays_missed_events"],
        to_client: |ctx, _, v| {
            (is(v, "event") && ctx.since.is_some() && ctx.after_recovered == 2).then(Vec::new)
        },
        ..M
    },
    Mutant {
        name: "another_epoch_recovers",
        fails: &["recovery_with_wrong_epoch_is_a_gap"],
        to_client: |ctx, _, v| {
            let other = ctx.since.as_ref().is_some_and(|(_, e)| Some(e) != ctx.epoch.as_ref());
            (is(v, "subscribed") && other)
                .then(|| vec![edit(v, |o| drop(o.insert("recovered".into(), json!(true))))])
        },
        ..M
    },
    Mutant {
        name: "a_position_beyond_the_head_recovers",
        fails: &["recovery_beyond_the_head_is_a_gap"],
        to_client: |ctx, _, v| {
            let beyond = ctx.since.as_ref().is_some_and(|(s, _)| Some(*s) > v["seq"].as_u64());
            (is(v, "subscribed") && beyond)
                .then(|| vec![edit(v, |o| drop(o.insert("recovered".into(), json!(true))))])
        },
        ..M
    },
    Mutant {
        name: "trimmed_history_recovers",
        fails: &["recovery_past_trimmed_history_is_a_gap"],
        to_client: |ctx, _, v| {
            let within = ctx.since.as_ref().is_some_and(|(s, e)| {
                Some(*s) <= v["seq"].as_u64() && Some(e) == ctx.epoch.as_ref()
            });
            (is(v, "subscribed") && within && v["recovered"] == false)
                .then(|| vec![edit(v, |o| drop(o.insert("recovered".into(), json!(true))))])
        },
        ..M
    },
    Mutant {
        name: "a_resume_at_the_head_replays_the_last_event",
        fails: &["recovery_at_the_head_replays_nothing"],
        to_client: |ctx, t, v| {
            let at_head = ctx.since.as_ref().is_some_and(|(s, _)| Some(*s) == v["seq"].as_u64());
            let ch = v["channel"].as_str().unwrap_or_default();
            let last = ctx.shared.last_event.lock().unwrap().get(ch).cloned();
            (is(v, "subscribed") && at_head && v["recovered"] == true && last.is_some())
                .then(|| vec![t.to_owned(), last.unwrap_or_default()])
        },
        ..M
    },
    Mutant {
        name: "history_newest_first",
        fails: &["history_returns_the_last_events"],
        to_client: |_, _, v| {
            (is(v, "history") && v["events"].as_array().is_some_and(|e| e.len() > 1)).then(|| {
                vec![edit(v, |o| {
                    if let Some(Value::Array(e)) = o.get_mut("events") {
                        e.reverse();
                    }
                })]
            })
        },
        ..M
    },
    Mutant {
        name: "history_head_one_behind",
        fails: &["history_returns_the_last_events", "history_then_since_misses_nothing"],
        to_client: |_, _, v| {
            is(v, "history").then(|| {
                vec![edit(v, |o| {
                    drop(o.insert(
                        "seq".into(),
                        json!(v["seq"].as_u64().unwrap_or(1).saturating_sub(1)),
                    ))
                })]
            })
        },
        ..M
    },
    Mutant {
        name: "history_limit_not_checked",
        fails: &["history_limit_bounds"],
        to_client: |ctx, _, v| {
            let zero =
                ctx.last_sent.as_ref().is_some_and(|l| l["type"] == "history" && l["limit"] == 0);
            (is(v, "error") && zero)
                .then(|| vec![json!({"type": "history", "events": []}).to_string()])
        },
        ..M
    },
    Mutant {
        name: "no_join_frames",
        fails: &["presence_lists_joins_and_leaves", "presence_counts_connections_per_user"],
        to_client: |_, _, v| is(v, "join").then(Vec::new),
        ..M
    },
    Mutant {
        name: "members_newest_first",
        fails: &["presence_lists_joins_and_leaves", "presence_counts_connections_per_user"],
        to_client: |_, _, v| {
            (is(v, "presence") && v["members"].as_array().is_some_and(|m| m.len() > 1)).then(|| {
                vec![edit(v, |o| {
                    if let Some(Value::Array(m)) = o.get_mut("members") {
                        m.reverse();
                    }
                })]
            })
        },
        ..M
    },
    Mutant {
        name: "a_leave_when_one_of_the_users_connections_goes",
        // Also a second leave when a user's only connection goes.
        fails: &["presence_counts_connections_per_user", "presence_lists_joins_and_leaves"],
        closed: |ctx: &Ctx| {
            if let Some(user) = &ctx.user {
                for ch in &ctx.watching {
                    let leave = json!({"type": "leave", "channel": ch, "user": user}).to_string();
                    ctx.shared.to_watchers(ctx.id, ch, &leave);
                }
            }
        },
        ..M
    },
    Mutant {
        name: "reading_presence_joins",
        fails: &["presence_command_reads_without_joining"],
        to_hub: |ctx, _, v| {
            if let (true, Some(user), Some(ch)) =
                (is(v, "presence"), &ctx.user, v["channel"].as_str())
            {
                let join = json!({"type": "join", "channel": ch, "user": user}).to_string();
                ctx.shared.to_watchers(ctx.id, ch, &join);
            }
            None
        },
        ..M
    },
    Mutant {
        name: "anonymous_watchers_listed",
        fails: &["anonymous_watchers_are_not_members"],
        to_client: |ctx, _, v| {
            (is(v, "presence") && ctx.user.is_none() && v["id"].is_null()).then(|| {
                vec![edit(v, |o| {
                    if let Some(Value::Array(m)) = o.get_mut("members") {
                        m.push(json!({"user": "anonymous", "connections": 1}));
                    }
                })]
            })
        },
        ..M
    },
    Mutant {
        name: "signal_user_chosen_by_the_client",
        fails: &["signals_reach_the_others_with_the_hub_user"],
        to_client: |ctx, _, v| {
            let claimed = ctx.shared.claimed_user.lock().unwrap().clone();
            (is(v, "signal") && claimed.is_some())
                .then(|| vec![edit(v, |o| drop(o.insert("user".into(), json!(claimed))))])
        },
        ..M
    },
    Mutant {
        name: "signals_echoed_to_the_sender",
        fails: &[
            "signal_names_and_sizes",
            "signal_rate_limit",
            "signals_need_an_item_channel_and_a_user",
            "signals_reach_the_others_with_the_hub_user",
        ],
        to_hub: |ctx, t, v| {
            is(v, "signal").then(|| {
                let echo = edit(v, |o| drop(o.insert("user".into(), json!(ctx.user))));
                ToHub { forward: Some(t.to_owned()), reply: vec![echo] }
            })
        },
        ..M
    },
    Mutant {
        name: "anonymous_signals_dropped_silently",
        fails: &["signals_need_an_item_channel_and_a_user"],
        to_client: |_, _, v| {
            (is(v, "error") && v["code"] == "forbidden" && v["id"] == 5).then(Vec::new)
        },
        ..M
    },
    Mutant {
        name: "bad_signal_names_dropped_silently",
        fails: &["signal_names_and_sizes"],
        to_client: |ctx, _, v| {
            let signal = ctx.last_sent.as_ref().is_some_and(|l| l["type"] == "signal");
            (is(v, "error") && v["code"] == "invalid_message" && signal).then(Vec::new)
        },
        ..M
    },
    Mutant {
        name: "signal_refusals_not_reported",
        fails: &["signal_rate_limit"],
        // Signals carry no id: their refusals neither.
        to_client: |_, _, v| {
            (is(v, "error") && v["code"] == "rate_limited" && v["id"].is_null()).then(Vec::new)
        },
        ..M
    },
    Mutant {
        name: "anonymous_reads_user_channels",
        fails: &["auth_anonymous_is_repo_only"],
        to_client: |ctx, _, v| {
            let ch = ctx.last_sent.as_ref().and_then(|l| l["channel"].as_str().map(str::to_owned));
            let victim = ch.as_deref() == Some("user:victim");
            (is(v, "error") && victim).then(|| {
                vec![json!({"type": "subscribed", "channel": "user:victim", "seq": 0}).to_string()]
            })
        },
        ..M
    },
    Mutant {
        name: "any_org_readable",
        fails: &["auth_user_and_org_rights"],
        to_client: |ctx, _, v| {
            let ch = ctx.last_sent.as_ref().and_then(|l| l["channel"].as_str().map(str::to_owned));
            (is(v, "error") && ch.as_deref() == Some("org:other")).then(|| {
                vec![json!({"type": "subscribed", "channel": "org:other", "seq": 0}).to_string()]
            })
        },
        ..M
    },
    Mutant {
        name: "refused_token_closes_1008",
        fails: &["auth_bad_tokens_close_4001"],
        close: |code, reason| (if code == 4001 { 1008 } else { code }, reason.to_owned()),
        ..M
    },
    Mutant {
        name: "reauth_keeps_every_channel",
        fails: &["reauth_drops_what_the_new_identity_may_not_read"],
        to_client: |ctx, _, v| {
            let after_auth = ctx.last_sent.as_ref().is_some_and(|l| l["type"] == "auth");
            (is(v, "unsubscribed") && v["id"].is_null() && after_auth).then(Vec::new)
        },
        ..M
    },
    Mutant {
        name: "refresh_keeps_the_old_expiry",
        fails: &["reauth_with_the_same_user_refreshes"],
        to_client: |_, _, v| {
            (is(v, "authenticated") && v["expires_in"].as_u64() > Some(900))
                .then(|| vec![edit(v, |o| drop(o.insert("expires_in".into(), json!(600))))])
        },
        ..M
    },
    Mutant {
        name: "expiry_closes_4001",
        fails: &["expiry_closes_4002"],
        close: |code, reason| (if code == 4002 { 4001 } else { code }, reason.to_owned()),
        ..M
    },
    Mutant {
        name: "published_without_id",
        fails: &["publish_rights", "idempotent_publish_over_the_socket"],
        to_client: |_, _, v| is(v, "published").then(|| vec![edit(v, |o| drop(o.remove("id")))]),
        ..M
    },
    Mutant {
        name: "socket_duplicate_not_flagged",
        fails: &["idempotent_publish_over_the_socket"],
        to_client: |_, _, v| {
            (is(v, "published") && v["duplicate"] == true)
                .then(|| vec![edit(v, |o| drop(o.remove("duplicate")))])
        },
        ..M
    },
    Mutant {
        name: "revocation_without_reason",
        fails: &["revocation_unsubscribes"],
        to_client: |_, _, v| {
            (is(v, "unsubscribed") && v["reason"] == "revoked")
                .then(|| vec![edit(v, |o| drop(o.remove("reason")))])
        },
        ..M
    },
    Mutant {
        name: "disconnect_closes_1000",
        fails: &["disconnect_closes_4003"],
        close: |code, reason| (if code == 4003 { 1000 } else { code }, reason.to_owned()),
        ..M
    },
    Mutant {
        name: "notification_without_seq",
        fails: &["notifications_follow_preferences"],
        to_client: |_, _, v| {
            is(v, "notification").then(|| vec![edit(v, |o| drop(o.remove("seq")))])
        },
        ..M
    },
    Mutant {
        name: "stats_without_total_events",
        fails: &["http_endpoints"],
        http: |path, status, body| {
            if path == "/api/stats" {
                (status, body.replace("total_events", "events"))
            } else {
                (status, body.to_owned())
            }
        },
        ..M
    },
    Mutant {
        name: "bad_publish_body_is_a_500",
        fails: &["http_publish_errors"],
        http: |path, status, body| {
            (if path == "/api/publish" && status == 400 { 500 } else { status }, body.to_owned())
        },
        ..M
    },
    Mutant {
        name: "http_duplicate_not_flagged",
        fails: &["http_idempotent_publish"],
        http: |_, status, body| (status, body.replace(r#","duplicate":true"#, "")),
        ..M
    },
    Mutant {
        name: "oversized_frame_closes_1011",
        fails: &["oversized_frame_closes_1009"],
        close: |code, reason| (if code == 1009 { 1011 } else { code }, reason.to_owned()),
        ..M
    },
    Mutant {
        name: "subscription_limit_reported_as_rate_limited",
        fails: &["subscription_limit"],
        to_client: |_, _, v| {
            (v["code"] == "subscription_limit")
                .then(|| vec![edit(v, |o| drop(o.insert("code".into(), json!("rate_limited"))))])
        },
        ..M
    },
    Mutant {
        name: "rate_limit_close_without_hint",
        fails: &["rate_limit_refuses_then_closes_4029"],
        close: |code, reason| {
            (code, if code == 4029 { "rate limited".into() } else { reason.to_owned() })
        },
        ..M
    },
    Mutant {
        name: "per_user_cap_close_without_hint",
        fails: &["per_user_connection_cap_closes_4503"],
        close: |code, reason| (code, if code == 4503 { "busy".into() } else { reason.to_owned() }),
        ..M
    },
    Mutant {
        name: "connection_cap_accepts_then_closes",
        fails: &["connection_cap_refuses_the_upgrade"],
        accept_refused: true,
        ..M
    },
    Mutant {
        name: "idle_close_1001",
        fails: &["idle_connection_closes_4009"],
        close: |code, reason| (if code == 4009 { 1001 } else { code }, reason.to_owned()),
        ..M
    },
    Mutant {
        name: "slow_consumer_close_1011",
        fails: &["slow_consumer_is_closed_4008"],
        close: |code, reason| (if code == 4008 { 1011 } else { code }, reason.to_owned()),
        ..M
    },
    Mutant {
        name: "shutdown_closes_1000",
        fails: &["shutdown_closes_every_client"],
        close: |code, reason| (if code == 1012 { 1000 } else { code }, reason.to_owned()),
        ..M
    },
];

/// Runs the whole suite against a fresh hub behind `mutant`: the names of the failed checks.
async fn failures(mutant: Mutant) -> (BTreeSet<String>, String) {
    let mut flags = CONFORMANCE_FLAGS.to_vec();
    flags.extend(["--queue-capacity", "512"]);
    let hub = HubProcess::start(env!("CARGO_BIN_EXE_guts-hub"), &flags).await.unwrap();
    let proxy = MutantProxy::start(hub.addr(), mutant).await.unwrap();
    let mut target = conformance_target(&hub, proxy.ws_url.clone());
    target.http = Some(proxy.http_url.clone());
    // More than the kernel buffers between the hub, the proxy and the client hold.
    target.flood = 25_000;
    let report = guts_conformance::run(&target, &[], |_| {}).await;
    let log: Vec<String> = report.results.iter().map(ToString::to_string).collect();
    let failed = report.failures().into_iter().map(str::to_owned).collect();
    (failed, log.join("\n"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mutant_fails_exactly_its_checks_and_every_check_has_a_mutant() {
    let (through, log) = failures(Mutant::IDENTITY).await;
    assert!(through.is_empty(), "the proxy that breaks nothing must pass:\n{log}");
    let mut wrong = Vec::new();
    let mut caught: BTreeSet<&str> = BTreeSet::new();
    for batch in MUTANTS.chunks(3) {
        let runs = batch.iter().map(|m| async move { (m, failures(*m).await) });
        for (m, (failed, log)) in futures_util::future::join_all(runs).await {
            let want: BTreeSet<String> = m.fails.iter().map(|s| (*s).to_owned()).collect();
            eprintln!("mutant {:<58} fails {:?}", m.name, failed);
            if failed != want {
                wrong.push(format!("{}: expected {want:?}, got {failed:?}\n{log}", m.name));
            }
            caught.extend(m.fails.iter().copied());
        }
    }
    let uncaught: Vec<&str> = ALL.iter().map(|c| c.name).filter(|n| !caught.contains(n)).collect();
    eprintln!("checks no mutant makes fail: {uncaught:?}");
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
    assert!(uncaught.is_empty(), "checks never shown to fail: {uncaught:?}");
}
