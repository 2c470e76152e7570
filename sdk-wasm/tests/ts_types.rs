//! Generates `npm/src/types.d.ts`, the TypeScript declarations of every wire frame, event kind
//! and payload (from the protocol crate's types) and of the SDK's options and callback objects
//! (from `guts_realtime_wasm::api`), with ts-rs. The file is checked in; this test fails when it
//! is out of date. Regenerate with
//! `UPDATE_TYPES=1 cargo test -p guts-realtime-wasm --features ts --test ts_types`.
#![cfg(all(feature = "ts", not(target_arch = "wasm32")))]

use guts_realtime::wire::ServerFrame;
use guts_realtime::*;
use guts_realtime_wasm::api::*;
use ts_rs::{Config, TS};

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../npm/src/types.d.ts");

fn decl<T: TS + ?Sized + 'static>(cfg: &Config, out: &mut String) {
    if let Some(docs) = T::docs() {
        out.push_str(&docs);
    }
    out.push_str("export ");
    out.push_str(&T::decl(cfg));
    out.push_str("\n\n");
}

fn generate() -> String {
    // u64 seqs and ids are JSON numbers (exact up to 2^53), not bigints.
    let cfg = Config::new().with_large_int("number");
    let mut out = String::from(
        "// Generated from the Rust types by sdk-wasm/tests/ts_types.rs (ts-rs). Do not edit.\n\
         // Regenerate: UPDATE_TYPES=1 cargo test -p guts-realtime-wasm --features ts --test ts_types\n\n",
    );
    let o = &mut out;
    // The wire: server → client.
    decl::<ServerMessage>(&cfg, o);
    decl::<ServerFrame>(&cfg, o);
    decl::<RealtimeEvent>(&cfg, o);
    decl::<EventKind>(&cfg, o);
    decl::<Notification>(&cfg, o);
    decl::<NotificationType>(&cfg, o);
    decl::<NotificationMetadata>(&cfg, o);
    decl::<ErrorCode>(&cfg, o);
    decl::<serde_json::Value>(&cfg, o);
    // Event payloads (the `data` of an event, by kind family).
    decl::<PushEventData>(&cfg, o);
    decl::<PullRequestEventData>(&cfg, o);
    decl::<IssueEventData>(&cfg, o);
    decl::<CommentEventData>(&cfg, o);
    decl::<ReviewEventData>(&cfg, o);
    // The wire: client → server.
    decl::<ClientFrame>(&cfg, o);
    decl::<ClientCommand>(&cfg, o);
    decl::<Since>(&cfg, o);
    decl::<RequestId>(&cfg, o);
    // The SDK's options and callback objects.
    decl::<ClientOptions>(&cfg, o);
    decl::<Backoff>(&cfg, o);
    decl::<Heartbeat>(&cfg, o);
    decl::<StateChange>(&cfg, o);
    decl::<StateName>(&cfg, o);
    decl::<SubscribeHandlers>(&cfg, o);
    decl::<SubscriptionState>(&cfg, o);
    decl::<SubscriptionStateName>(&cfg, o);
    decl::<Gap>(&cfg, o);
    decl::<GapReasonName>(&cfg, o);
    decl::<ErrorInfo>(&cfg, o);
    decl::<PresenceList>(&cfg, o);
    decl::<MemberChange>(&cfg, o);
    decl::<PresenceMember>(&cfg, o);
    events(o);
    channels(o);
    close_codes(o);
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

/// The TypeScript type of the `data` of each kind (`JsonValue` where no struct describes it).
/// Exhaustive: a new kind does not compile until it is given one.
fn data_type(kind: EventKind) -> &'static str {
    use EventKind::*;
    match kind {
        Push => "PushEventData",
        PrOpened | PrClosed | PrMerged | PrUpdated | PrReopened => "PullRequestEventData",
        PrReview => "ReviewEventData",
        PrComment | IssueComment => "CommentEventData",
        IssueOpened | IssueClosed | IssueReopened | IssueUpdated => "IssueEventData",
        BranchCreated | BranchDeleted | TagCreated | TagDeleted | LabelAdded | LabelRemoved
        | RepoCreated | RepoUpdated | CollaboratorAdded | CollaboratorRemoved => "JsonValue",
    }
}

/// Event frames as a union discriminated by `event`: after `ev.event === "pr_opened"`, `ev.data`
/// is `PullRequestEventData`.
fn events(o: &mut String) {
    o.push_str("/**\n * The type of the `data` of each event kind.\n */\nexport type EventDataByKind = {\n");
    for k in EventKind::all() {
        o.push_str(&format!("  {}: {};\n", k.wire_name(), data_type(*k)));
    }
    o.push_str(
        "};\n\n\
         /**\n * An `event` frame of kind `K`, as the client receives it.\n */\n\
         export type EventFrame<K extends EventKind = EventKind> = { [P in K]: {\n  \
         type: \"event\";\n  channel: Channel;\n  event: P;\n  data: EventDataByKind[P];\n  \
         timestamp: number;\n  event_id: string;\n  seq?: number;\n} }[K];\n\n\
         /**\n * An `event` frame of a kind this version does not know (sent by a newer hub): \
         delivered, never\n * dropped, but outside `EventFrame` so that narrowing on `event` \
         stays exact. Reach it from a\n * `default:` branch with a cast.\n */\n\
         export type UnknownEventFrame = {\n  type: \"event\";\n  channel: Channel;\n  \
         event: string;\n  data: JsonValue;\n  timestamp: number;\n  event_id: string;\n  \
         seq?: number;\n};\n\n",
    );
}

/// The channel names as template-literal types.
fn channels(o: &mut String) {
    o.push_str(
        "/**\n * A repository's channels: all of it, its pull requests or issues, or one of \
         them.\n */\n\
         export type RepoChannel =\n  | `repo:${string}/${string}`\n  \
         | `repo:${string}/${string}/prs`\n  | `repo:${string}/${string}/issues`\n  \
         | `repo:${string}/${string}/prs/${number}`\n  \
         | `repo:${string}/${string}/issues/${number}`;\n\n\
         /**\n * A channel name (`docs/PROTOCOL.md`, \"Channels\").\n */\n\
         export type Channel = RepoChannel | `user:${string}` | `org:${string}`;\n\n",
    );
}

/// The close-code registry (`guts_realtime::CloseCode::action`): what the client does after
/// each named code, and the default delay of the hinted ones.
fn close_codes(o: &mut String) {
    use guts_realtime::{CloseAction, CloseCode};
    o.push_str(
        "/**\n * The close-code registry: what the client does after a close with each code \
         (`terminal`: stays\n * closed; `reconnect`: with backoff; `hinted`: after `delayMs`, \
         or the close reason's\n * `retry_after_ms=N`). Codes not listed: 3500–3999 and \
         4500–4999 are terminal, the rest reconnect.\n */\nexport type CloseCodeRegistry = {\n",
    );
    let codes = (1000..=1014).chain([4000, 4001, 4002, 4003, 4008, 4009, 4029, 4503]);
    for c in codes.map(CloseCode) {
        if c.name() == "unknown" {
            continue;
        }
        let action = match c.action("") {
            CloseAction::Terminal => "action: \"terminal\"".to_owned(),
            CloseAction::Reconnect => "action: \"reconnect\"".to_owned(),
            CloseAction::ReconnectAfter(d) => {
                format!("action: \"hinted\"; delayMs: {}", d.as_millis())
            }
        };
        o.push_str(&format!("  {}: {{ name: \"{}\"; {action} }};\n", c.0, c.name()));
    }
    o.push_str(
        "};\n\n/**\n * A close code of the registry.\n */\n\
         export type CloseCode = keyof CloseCodeRegistry;\n\n\
         /**\n * The codes after which the client stays closed.\n */\n\
         export type TerminalCloseCode = { [C in CloseCode]: CloseCodeRegistry[C][\"action\"] \
         extends \"terminal\" ? C : never }[CloseCode];\n",
    );
}

#[test]
fn types_d_ts_is_up_to_date() {
    let fresh = generate();
    if std::env::var_os("UPDATE_TYPES").is_some() {
        std::fs::write(PATH, &fresh).expect("write types.d.ts");
        return;
    }
    let current = std::fs::read_to_string(PATH).unwrap_or_default();
    assert!(
        current == fresh,
        "npm/src/types.d.ts is out of date: run \
         UPDATE_TYPES=1 cargo test -p guts-realtime-wasm --features ts --test ts_types"
    );
}

/// The names the driver writes at run time are the ones the declarations promise.
#[test]
fn runtime_names_match_the_declarations() {
    let cfg = Config::new();
    let has = |decl: String, names: &[&str]| {
        for n in names {
            assert!(decl.contains(&format!("\"{n}\"")), "{n} missing from {decl}");
        }
    };
    use guts_realtime::session::GapReason as G;
    use StateName as S;
    use SubscriptionStateName as U;
    let states =
        [S::Idle, S::Connecting, S::Authenticating, S::Connected, S::Reconnecting, S::Closed];
    has(StateName::decl(&cfg), &states.map(S::as_str));
    has(
        SubscriptionStateName::decl(&cfg),
        &[U::Subscribing, U::Subscribed, U::Failed, U::Unsubscribed].map(U::as_str),
    );
    has(
        GapReasonName::decl(&cfg),
        &[G::EpochChanged, G::NotRecovered, G::NoPosition].map(G::as_str),
    );
    for (decl, fields) in [
        (StateChange::decl(&cfg), &["state", "reason", "code?", "retryIn?", "attempt?"][..]),
        (Gap::decl(&cfg), &["channel", "lastSeq?", "resumeSeq?", "reason"]),
        (SubscriptionState::decl(&cfg), &["channel", "state", "recovered?", "code?", "message?"]),
        (ErrorInfo::decl(&cfg), &["code?", "message"]),
        (SubscribeHandlers::decl(&cfg), &["onState?", "onGap?"]),
        (ClientOptions::decl(&cfg), &["token?", "backoff?", "heartbeat?", "connectTimeout?"]),
    ] {
        for f in fields {
            assert!(decl.contains(&format!("{f}:")), "{f} missing from {decl}");
        }
    }
}
