//! The wire vectors in `tests/vectors/*.json` (format: `tests/vectors/README.md`), checked byte for
//! byte: every case decodes, re-encodes to exactly its `text` (key order included), and its
//! `text` parses to its `value`; for every file at least one case is also compared with a Rust
//! value built by hand here.
#![cfg(feature = "json")]

use guts_realtime::{
    decode_client_frame, decode_server_frame, ClientCommand, ClientFrame, ErrorCode, EventKind,
    Notification, NotificationMetadata, NotificationType, PresenceMember, RealtimeEvent, RequestId,
    ServerFrame, ServerMessage, Since,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const EP: &str = "9f8e7d6c5b4a3921";

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

struct Case {
    file: String,
    direction: String,
    name: String,
    text: String,
    value: Value,
}

fn load() -> Vec<Case> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let file = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let obj = doc.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["cases", "direction"], "{file}: top-level keys");
        let direction = doc["direction"].as_str().unwrap().to_owned();
        assert!(direction == "client" || direction == "server", "{file}: direction");
        let cases = doc["cases"].as_array().unwrap();
        assert!(!cases.is_empty(), "{file}: no cases");
        for c in cases {
            let mut keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(keys, ["name", "text", "value"], "{file}: case keys");
            out.push(Case {
                file: file.clone(),
                direction: direction.clone(),
                name: c["name"].as_str().unwrap().to_owned(),
                text: c["text"].as_str().unwrap().to_owned(),
                value: c["value"].clone(),
            });
        }
    }
    out
}

#[test]
fn the_vector_set_is_complete() {
    let cases = load();
    let mut files: BTreeMap<&str, &str> = BTreeMap::new();
    for c in &cases {
        files.insert(&c.file, &c.direction);
    }
    let want: BTreeMap<&str, &str> = [
        ("subscribe", "client"),
        ("subscribe_since", "client"),
        ("unsubscribe", "client"),
        ("ping", "client"),
        ("auth", "client"),
        ("publish", "client"),
        ("welcome", "server"),
        ("subscribed", "server"),
        ("subscribed_recovered", "server"),
        ("unsubscribed", "server"),
        ("pong", "server"),
        ("error", "server"),
        ("authenticated", "server"),
        ("published", "server"),
        ("event", "server"),
        ("notification", "server"),
        ("subscribe_presence", "client"),
        ("presence_query", "client"),
        ("history_query", "client"),
        ("signal_send", "client"),
        ("presence", "server"),
        ("join", "server"),
        ("leave", "server"),
        ("signal", "server"),
        ("history", "server"),
    ]
    .into_iter()
    .collect();
    assert_eq!(files, want);
    // Names are unique within a file.
    let mut seen = std::collections::BTreeSet::new();
    for c in &cases {
        assert!(seen.insert((c.file.clone(), c.name.clone())), "duplicate {}/{}", c.file, c.name);
    }
    // Every error code has a case.
    let codes: std::collections::BTreeSet<String> = cases
        .iter()
        .filter(|c| c.file == "error")
        .filter_map(|c| c.value.get("code").and_then(Value::as_str).map(str::to_owned))
        .collect();
    let all: std::collections::BTreeSet<String> =
        ErrorCode::ALL.iter().map(|c| c.as_str().to_owned()).collect();
    assert_eq!(codes, all);
    // With and without id, number and string, in every file that replies to a command.
    for f in [
        "subscribe",
        "subscribe_since",
        "unsubscribe",
        "ping",
        "auth",
        "publish",
        "subscribed",
        "subscribed_recovered",
        "unsubscribed",
        "pong",
        "error",
        "authenticated",
        "published",
        "subscribe_presence",
        "presence_query",
        "history_query",
        "signal_send",
        "presence",
        "history",
    ] {
        let ids: Vec<&Value> = cases
            .iter()
            .filter(|c| c.file == f)
            .map(|c| c.value.get("id").unwrap_or(&Value::Null))
            .collect();
        assert!(ids.iter().any(|v| v.is_null()), "{f}: a case without id");
        assert!(ids.iter().any(|v| v.is_u64()), "{f}: a case with a number id");
        assert!(ids.iter().any(|v| v.is_string()), "{f}: a case with a string id");
    }
    // Every number fits a JavaScript double exactly (the npm package reads these files).
    fn check_numbers(v: &Value, at: &str) {
        match v {
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    assert!(u < (1 << 53), "{at}: {u} is not a safe JS integer");
                }
                if let Some(f) = n.as_f64() {
                    assert!(
                        f.fract() != 0.0 || n.is_u64() || n.is_i64(),
                        "{at}: {n} (x.0 floats encode differently in JS)"
                    );
                }
            }
            Value::Array(a) => a.iter().for_each(|v| check_numbers(v, at)),
            Value::Object(o) => o.values().for_each(|v| check_numbers(v, at)),
            _ => {}
        }
    }
    for c in &cases {
        check_numbers(&c.value, &format!("{}/{}", c.file, c.name));
    }
}

#[test]
fn every_case_round_trips_byte_for_byte() {
    let cases = load();
    assert!(cases.len() >= 50, "{} cases", cases.len());
    for c in &cases {
        let at = format!("{}/{}", c.file, c.name);
        assert_eq!(serde_json::from_str::<Value>(&c.text).unwrap(), c.value, "{at}: text vs value");
        if c.direction == "client" {
            let f = decode_client_frame(&c.text).unwrap_or_else(|e| panic!("{at}: {e:?}"));
            assert_eq!(f.encode(), c.text, "{at}: ClientFrame::encode");
            assert_eq!(decode_client_frame(&f.encode()).unwrap(), f, "{at}: decode(encode)");
            assert_eq!(c.value["type"], client_type(&f.command), "{at}");
            if f.since.is_none() && f.id.is_none() && !f.presence {
                // The derived serde encoding of the bare command is the same text.
                assert_eq!(serde_json::to_string(&f.command).unwrap(), c.text, "{at}: serde");
                assert_eq!(serde_json::from_str::<ClientCommand>(&c.text).unwrap(), f.command);
            }
        } else {
            let f = decode_server_frame(&c.text).unwrap_or_else(|e| panic!("{at}: {e}"));
            assert_eq!(f.encode().as_str(), c.text, "{at}: ServerFrame::encode");
            assert_eq!(
                serde_json::to_string(&f).unwrap(),
                c.text,
                "{at}: Serialize for ServerFrame"
            );
            assert_eq!(
                f.message.encode_with_id(f.id.as_ref()).as_str(),
                c.text,
                "{at}: encode_with_id"
            );
            if f.id.is_none() {
                assert_eq!(f.message.encode().as_str(), c.text, "{at}: ServerMessage::encode");
                assert_eq!(serde_json::to_string(&f.message).unwrap(), c.text, "{at}");
            }
            assert_eq!(decode_server_frame(f.encode().as_str()).unwrap(), f, "{at}");
            assert_eq!(c.value["type"], f.message.type_name(), "{at}");
            let unknown = matches!(f.message, ServerMessage::UnknownEvent(_));
            assert_eq!(unknown, c.name == "of_a_kind_this_version_does_not_know", "{at}");
            if let ServerMessage::Event(e) = &f.message {
                // The item an event names (routing to `…/prs/N`): the rule the npm package's
                // test checks its own reading against.
                let d = &e.data;
                let first =
                    ["number", "pr_number", "parent_number"].iter().find_map(|k| d[k].as_u64());
                assert_eq!(guts_realtime::subscription::item_of(d), first, "{at}: item");
            }
            // A client frame is never a server frame and vice versa, but for the three types
            // both directions have (`presence`, `history`, `signal`): decoders ignore unknown
            // keys, so a server's frame of these types also reads as the command.
            if !["presence", "history", "signal"].contains(&f.message.type_name()) {
                assert!(decode_client_frame(&c.text).is_err(), "{at} decodes as a client frame");
            }
        }
    }
}

fn client_type(c: &ClientCommand) -> &'static str {
    match c {
        ClientCommand::Subscribe { .. } => "subscribe",
        ClientCommand::Unsubscribe { .. } => "unsubscribe",
        ClientCommand::Ping => "ping",
        ClientCommand::Auth { .. } => "auth",
        ClientCommand::Publish { .. } => "publish",
        ClientCommand::Presence { .. } => "presence",
        ClientCommand::History { .. } => "history",
        ClientCommand::Signal { .. } => "signal",
        _ => unreachable!(),
    }
}

fn sub(channel: &str) -> ClientCommand {
    ClientCommand::Subscribe { channel: channel.into() }
}

fn cf(command: ClientCommand, since: Option<Since>, id: Option<RequestId>) -> ClientFrame {
    ClientFrame { command, since, presence: false, id }
}

fn sf(message: ServerMessage, id: Option<RequestId>) -> ServerFrame {
    ServerFrame { message, id }
}

fn s(id: &str) -> Option<RequestId> {
    Some(RequestId::Str(id.into()))
}

fn n(id: u64) -> Option<RequestId> {
    Some(RequestId::Num(id))
}

fn since(seq: u64, epoch: &str) -> Option<Since> {
    Some(Since { seq, epoch: epoch.into() })
}

/// Hand-built values for some cases: `(file, case) → the client frame`.
fn expected_client(file: &str, name: &str) -> Option<ClientFrame> {
    Some(match (file, name) {
        ("subscribe", "seed") => cf(sub("repo:alice/myrepo"), None, None),
        ("subscribe", "issues_string_id") => cf(sub("repo:alice/myrepo/issues"), None, s("sub-1")),
        ("subscribe", "user_number_id") => cf(sub("user:alice"), None, n(1)),
        ("subscribe", "org_id_zero") => cf(sub("org:guts"), None, n(0)),
        ("subscribe_since", "since") => cf(sub("repo:alice/myrepo"), since(42, EP), None),
        ("subscribe_since", "since_number_id") => {
            cf(sub("repo:alice/myrepo/prs"), since(42, EP), n(7))
        }
        ("subscribe_since", "since_string_id") => cf(sub("user:alice"), since(0, EP), s("resub-3")),
        ("unsubscribe", "seed") => {
            cf(ClientCommand::Unsubscribe { channel: "repo:alice/myrepo".into() }, None, None)
        }
        ("unsubscribe", "string_id") => {
            cf(ClientCommand::Unsubscribe { channel: "user:alice".into() }, None, s("unsub-1"))
        }
        ("ping", "seed") => cf(ClientCommand::Ping, None, None),
        ("ping", "number_id") => cf(ClientCommand::Ping, None, n(42)),
        ("ping", "string_id") => cf(ClientCommand::Ping, None, s("req-7")),
        ("auth", "number_id") => cf(ClientCommand::Auth { token: "pubkey".into() }, None, n(1)),
        ("auth", "string_id_and_escapes") => cf(
            ClientCommand::Auth {
                token: "q\"b\\s/n\nt\tr\rb\u{8}f\u{c}c\u{1}\u{1f}é€😀\u{7f}".into(),
            },
            None,
            s("auth-1"),
        ),
        ("publish", "push") => cf(
            ClientCommand::Publish {
                channel: "repo:alice/myrepo".into(),
                event: EventKind::Push,
                data: json!({"ref": "refs/heads/main", "before": "abc123", "after": "def456"}),
                idempotency_key: None,
            },
            None,
            None,
        ),
        ("publish", "pr_opened_number_id") => cf(
            ClientCommand::Publish {
                channel: "repo:alice/myrepo".into(),
                event: EventKind::PrOpened,
                data: json!({"number": 1, "title": "Fix the build"}),
                idempotency_key: None,
            },
            None,
            n(3),
        ),
        ("publish", "null_data") => cf(
            ClientCommand::Publish {
                channel: "org:guts".into(),
                event: EventKind::RepoCreated,
                data: Value::Null,
                idempotency_key: None,
            },
            None,
            None,
        ),
        ("subscribe_presence", "since_string_id") => ClientFrame {
            presence: true,
            ..cf(sub("repo:alice/myrepo/issues/3"), since(42, EP), s("watch-1"))
        },
        ("presence_query", "number_id") => {
            cf(ClientCommand::Presence { channel: "repo:alice/myrepo/prs/7".into() }, None, n(3))
        }
        ("history_query", "limit_number_id") => cf(
            ClientCommand::History { channel: "repo:alice/myrepo/prs/7".into(), limit: Some(50) },
            None,
            n(4),
        ),
        ("history_query", "default_limit") => cf(
            ClientCommand::History { channel: "repo:alice/myrepo".into(), limit: None },
            None,
            None,
        ),
        ("signal_send", "typing") => cf(
            ClientCommand::Signal {
                channel: "repo:alice/myrepo/prs/7".into(),
                event: "typing".into(),
                data: json!({"line": 12}),
            },
            None,
            None,
        ),
        _ => return None,
    })
}

fn event(
    channel: &str,
    kind: EventKind,
    data: Value,
    ts: u64,
    id: &str,
    seq: Option<u64>,
) -> ServerMessage {
    ServerMessage::Event(RealtimeEvent {
        event_type: "event".into(),
        channel: channel.into(),
        event: kind,
        data,
        timestamp: ts,
        event_id: id.into(),
        seq,
    })
}

/// Hand-built values for some cases: `(file, case) → the server frame`.
fn expected_server(file: &str, name: &str) -> Option<ServerFrame> {
    use ServerMessage as M;
    let subscribed = |ch: &str, seq: Option<u64>, recovered: Option<bool>| M::Subscribed {
        channel: ch.into(),
        seq,
        recovered,
    };
    let error = |m: &str, code: Option<ErrorCode>| M::Error { message: m.into(), code };
    Some(match (file, name) {
        ("welcome", "welcome") => sf(
            M::Welcome {
                epoch: EP.into(),
                client_id: "0b9f6a7e-3c1d-4e2f-8a5b-6c7d8e9f0a1b".into(),
            },
            None,
        ),
        ("subscribed", "seed") => sf(subscribed("repo:alice/myrepo", None, None), None),
        ("subscribed", "with_seq") => sf(subscribed("repo:alice/myrepo", Some(0), None), None),
        ("subscribed", "number_id") => {
            sf(subscribed("repo:alice/myrepo/prs", Some(17), None), n(1))
        }
        ("subscribed", "string_id") => sf(subscribed("user:alice", Some(17), None), s("sub-1")),
        ("subscribed_recovered", "recovered") => {
            sf(subscribed("repo:alice/myrepo", Some(57), Some(true)), None)
        }
        ("subscribed_recovered", "recovered_number_id") => {
            sf(subscribed("repo:alice/myrepo/prs", Some(57), Some(true)), n(7))
        }
        ("subscribed_recovered", "gap") => {
            sf(subscribed("repo:alice/myrepo", Some(57), Some(false)), None)
        }
        ("subscribed_recovered", "gap_string_id") => {
            sf(subscribed("user:alice", Some(0), Some(false)), s("resub-3"))
        }
        ("unsubscribed", "seed") => {
            sf(M::Unsubscribed { channel: "repo:alice/myrepo".into() }, None)
        }
        ("unsubscribed", "number_id") => {
            sf(M::Unsubscribed { channel: "repo:alice/myrepo/prs".into() }, n(2))
        }
        ("pong", "seed") => sf(M::Pong, None),
        ("pong", "number_id") => sf(M::Pong, n(42)),
        ("pong", "string_id") => sf(M::Pong, s("req-7")),
        ("error", "seed_without_code") => sf(
            error("Invalid message format: missing field `channel` at line 1 column 20", None),
            None,
        ),
        ("error", "invalid_channel_number_id") => sf(
            error(
                r#"invalid channel: repository channel requires owner/name: "repo:alice""#,
                Some(ErrorCode::InvalidChannel),
            ),
            n(7),
        ),
        ("error", "subscription_limit") => sf(
            error(
                "subscription limit exceeded: max 100 subscriptions",
                Some(ErrorCode::SubscriptionLimit),
            ),
            n(101),
        ),
        ("error", "forbidden") => {
            sf(error("forbidden: user:bob", Some(ErrorCode::Forbidden)), s("sub-2"))
        }
        ("error", "unauthenticated") => {
            sf(error("unauthenticated: token expired", Some(ErrorCode::Unauthenticated)), None)
        }
        ("error", "rate_limited") => {
            sf(error("rate limited: too many commands", Some(ErrorCode::RateLimited)), None)
        }
        ("error", "unavailable") => sf(
            error(
                "unavailable: broker unavailable: Redis is not reachable; retry later",
                Some(ErrorCode::Unavailable),
            ),
            s("pub-1"),
        ),
        ("authenticated", "user") => {
            sf(M::Authenticated { user: "alice".into(), expires_in: None }, None)
        }
        ("authenticated", "string_id") => {
            sf(M::Authenticated { user: "publisher".into(), expires_in: None }, s("auth-1"))
        }
        ("authenticated", "expires_in") => {
            sf(M::Authenticated { user: "alice".into(), expires_in: Some(3600) }, n(1))
        }
        ("unsubscribed", "revoked") => {
            sf(M::Ended { channel: "repo:acme/secret/prs".into(), reason: "revoked".into() }, None)
        }
        ("error", "token_expired") => sf(
            error(
                "token expired: send a new token with auth before exp",
                Some(ErrorCode::TokenExpired),
            ),
            None,
        ),
        ("published", "published") => sf(
            M::Published { channel: "repo:alice/myrepo".into(), seq: 58, duplicate: false },
            None,
        ),
        ("published", "number_id") => sf(
            M::Published { channel: "repo:alice/myrepo".into(), seq: 59, duplicate: false },
            n(3),
        ),
        ("event", "seed_without_seq") => sf(
            event(
                "repo:alice/myrepo",
                EventKind::Push,
                json!({"ref": "refs/heads/main", "before": "abc123", "after": "def456"}),
                1_703_145_600,
                "6f1c2b3a-0d4e-4f5a-8b6c-7d8e9f0a1b2c",
                None,
            ),
            None,
        ),
        ("event", "pr_opened") => sf(
            event(
                "repo:alice/myrepo",
                EventKind::PrOpened,
                json!({"number": 7, "title": "x"}),
                1_703_145_601,
                "ev-43",
                Some(43),
            ),
            None,
        ),
        ("event", "null_data") => {
            sf(event("org:guts", EventKind::RepoCreated, Value::Null, 0, "", Some(1)), None)
        }
        ("notification", "mention") => sf(
            M::Notification {
                channel: "user:alice".into(),
                notification: Notification {
                    id: "3a2b1c0d-9e8f-4a7b-b6c5-d4e3f2a1b0c9".into(),
                    user_id: "alice".into(),
                    notification_type: NotificationType::Mention,
                    title: "You were mentioned".into(),
                    body: "@alice look at this".into(),
                    url: None,
                    read: false,
                    created_at: 1_703_145_600,
                    metadata: NotificationMetadata::default(),
                },
                seq: Some(12),
            },
            None,
        ),
        ("notification", "with_url_and_metadata") => sf(
            M::Notification {
                channel: "user:alice".into(),
                notification: Notification {
                    id: "n-2".into(),
                    user_id: "alice".into(),
                    notification_type: NotificationType::ReviewRequested,
                    title: "Review requested".into(),
                    body: "bob asked for your review".into(),
                    url: Some("https://guts.example/alice/myrepo/pulls/7".into()),
                    read: false,
                    created_at: 1_703_145_601,
                    metadata: NotificationMetadata {
                        repo_key: Some("alice/myrepo".into()),
                        pr_number: Some(7),
                        issue_number: Some(3),
                        actor: Some("bob".into()),
                    },
                },
                seq: Some(13),
            },
            None,
        ),
        ("presence", "members") => sf(
            M::Presence {
                channel: "repo:alice/myrepo/prs/7".into(),
                members: vec![
                    PresenceMember { user: "alice".into(), connections: 2 },
                    PresenceMember { user: "bob".into(), connections: 1 },
                ],
                truncated: false,
            },
            None,
        ),
        ("presence", "truncated_string_id") => sf(
            M::Presence {
                channel: "repo:acme/big/issues/1".into(),
                members: vec![PresenceMember { user: "u0000".into(), connections: 1 }],
                truncated: true,
            },
            s("who"),
        ),
        ("join", "join") => {
            sf(M::Join { channel: "repo:alice/myrepo/prs/7".into(), user: "bob".into() }, None)
        }
        ("leave", "leave") => {
            sf(M::Leave { channel: "repo:alice/myrepo/prs/7".into(), user: "bob".into() }, None)
        }
        ("signal", "typing") => sf(
            M::Signal {
                channel: "repo:alice/myrepo/prs/7".into(),
                event: "typing".into(),
                data: json!({"line": 12}),
                user: "alice".into(),
            },
            None,
        ),
        ("history", "events") => sf(
            M::History {
                channel: "repo:alice/myrepo/prs/7".into(),
                epoch: EP.into(),
                seq: 61,
                events: vec![
                    event(
                        "repo:alice/myrepo",
                        EventKind::PrUpdated,
                        json!({"number": 7, "title": "Fix"}),
                        1_703_145_600,
                        "ev-58",
                        Some(58),
                    ),
                    event(
                        "repo:alice/myrepo/prs/7",
                        EventKind::PrComment,
                        json!({"id": 3, "parent_number": 7, "author": "bob", "body_preview": "LGTM"}),
                        1_703_145_601,
                        "ev-60",
                        Some(60),
                    ),
                ],
            },
            None,
        ),
        ("history", "empty_number_id") => sf(
            M::History {
                channel: "repo:alice/myrepo/prs/7".into(),
                epoch: EP.into(),
                seq: 0,
                events: Vec::new(),
            },
            n(4),
        ),
        ("notification", "without_seq") => sf(
            M::Notification {
                channel: "user:alice".into(),
                notification: Notification {
                    id: "n-3".into(),
                    user_id: "alice".into(),
                    notification_type: NotificationType::PrMerged,
                    title: "Merged".into(),
                    body: String::new(),
                    url: None,
                    read: true,
                    created_at: 1_703_145_602,
                    metadata: NotificationMetadata {
                        actor: Some("bob".into()),
                        ..Default::default()
                    },
                },
                seq: None,
            },
            None,
        ),
        _ => return None,
    })
}

#[test]
fn hand_built_values_equal_the_decoded_ones() {
    let cases = load();
    let mut covered: BTreeMap<String, usize> = BTreeMap::new();
    for c in &cases {
        covered.entry(c.file.clone()).or_default();
        let at = format!("{}/{}", c.file, c.name);
        if c.direction == "client" {
            if let Some(want) = expected_client(&c.file, &c.name) {
                assert_eq!(decode_client_frame(&c.text).unwrap(), want, "{at}");
                assert_eq!(want.encode(), c.text, "{at}: encoding the hand-built value");
                *covered.get_mut(&c.file).unwrap() += 1;
            }
        } else if let Some(want) = expected_server(&c.file, &c.name) {
            assert_eq!(decode_server_frame(&c.text).unwrap(), want, "{at}");
            assert_eq!(want.encode().as_str(), c.text, "{at}: encoding the hand-built value");
            *covered.get_mut(&c.file).unwrap() += 1;
        }
    }
    for (file, n) in &covered {
        assert!(*n >= 1, "{file}: no case compared with a hand-built value");
    }
    assert_eq!(covered.len(), 25);
}

#[test]
fn the_hub_builds_the_same_error_frames_as_the_vectors() {
    // The `error` vectors carry real messages: check the ones the crate itself produces.
    let err = guts_realtime::Channel::parse("repo:alice").unwrap_err();
    assert_eq!(
        ServerMessage::error(&err).encode_with_id(Some(&RequestId::Num(7))).as_str(),
        r#"{"type":"error","message":"invalid channel: repository channel requires owner/name: \"repo:alice\"","code":"invalid_channel","id":7}"#
    );
    let e = decode_client_frame(r#"{"type":"subscribe"}"#).unwrap_err();
    assert_eq!(
        ServerMessage::Error { message: e.to_error().to_string(), code: None }.encode().as_str(),
        r#"{"type":"error","message":"Invalid message format: missing field `channel` at line 1 column 20"}"#
    );
    let e = decode_client_frame(r#"{"type":"subscribe","id":"x"}"#).unwrap_err();
    assert_eq!(
        ServerMessage::error(&e.to_error()).encode_with_id(e.id.as_ref()).as_str(),
        r#"{"type":"error","message":"Invalid message format: missing field `channel` at line 1 column 29","code":"invalid_message","id":"x"}"#
    );
    let e = decode_client_frame(r#"{"type":"dance"}"#).unwrap_err();
    assert_eq!(
        ServerMessage::error(&e.to_error()).encode().as_str(),
        r#"{"type":"error","message":"Invalid message format: unknown variant `dance`, expected one of `subscribe`, `unsubscribe`, `ping`, `auth`, `publish`, `presence`, `history`, `signal` at line 1 column 16","code":"invalid_message"}"#
    );
}

/// Texts that are not canonical still decode; they re-encode to the canonical text.
#[test]
fn non_canonical_client_texts_decode_to_canonical_frames() {
    let cases = [
        (
            r#"{ "channel" : "repo:a/b", "type" : "subscribe" }"#,
            r#"{"type":"subscribe","channel":"repo:a/b"}"#,
        ),
        (
            r#"{"id":5,"since":{"epoch":"e","seq":3},"channel":"repo:a/b","type":"subscribe"}"#,
            r#"{"type":"subscribe","channel":"repo:a/b","since":{"seq":3,"epoch":"e"},"id":5}"#,
        ),
        // Unknown fields are ignored (seed behaviour); `null` id and since are absent.
        (r#"{"type":"ping","extra":[1,2],"id":null,"since":null}"#, r#"{"type":"ping"}"#),
        // `data` defaults to null.
        (
            r#"{"type":"publish","channel":"repo:a/b","event":"push"}"#,
            r#"{"type":"publish","channel":"repo:a/b","event":"push","data":null}"#,
        ),
        // Object keys of `data` come out sorted.
        (
            r#"{"type":"publish","channel":"repo:a/b","event":"push","data":{"z":1,"a":2}}"#,
            r#"{"type":"publish","channel":"repo:a/b","event":"push","data":{"a":2,"z":1}}"#,
        ),
        // Escapes are normalized.
        (r#"{"type":"auth","token":"\u0041\/"}"#, r#"{"type":"auth","token":"A/"}"#),
        // `since` on a command other than subscribe is kept (and ignored by the hub).
        (
            r#"{"type":"ping","since":{"seq":1,"epoch":"e"}}"#,
            r#"{"type":"ping","since":{"seq":1,"epoch":"e"}}"#,
        ),
    ];
    for (text, canonical) in cases {
        let f = decode_client_frame(text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
        assert_eq!(f.encode(), canonical, "{text}");
    }
}

#[test]
fn invalid_client_texts_are_rejected_with_the_id_when_readable() {
    let long = "x".repeat(129);
    let cases: Vec<(String, Option<RequestId>)> = vec![
        ("{not json".into(), None),
        (r#"{"type":"dance","id":9}"#.into(), n(9)),
        (r#"{"type":"subscribe","id":"a"}"#.into(), s("a")),
        (r#"{"type":"subscribe","channel":5,"id":1}"#.into(), n(1)),
        (r#"{"channel":"repo:a/b","id":2}"#.into(), n(2)),
        (r#"{"type":"Subscribe","channel":"repo:a/b"}"#.into(), None),
        (r#"{"type":"ping","id":-1}"#.into(), None),
        (r#"{"type":"ping","id":1.5}"#.into(), None),
        (r#"{"type":"ping","id":true}"#.into(), None),
        (format!(r#"{{"type":"ping","id":"{long}"}}"#), None),
        (format!(r#"{{"type":"dance","id":"{long}"}}"#), None),
        (r#"{"type":"subscribe","channel":"repo:a/b","since":{"seq":1}}"#.into(), None),
        (
            r#"{"type":"subscribe","channel":"repo:a/b","since":{"seq":-1,"epoch":"e"},"id":3}"#
                .into(),
            n(3),
        ),
        (r#"{"type":"publish","channel":"repo:a/b","event":"pr.opened","data":{}}"#.into(), None),
        ("[1,2,3]".into(), None),
        (r#""text""#.into(), None),
        ("".into(), None),
    ];
    for (text, id) in cases {
        let e = decode_client_frame(&text).expect_err(&text);
        assert_eq!(e.id, id, "{text}: {}", e.error);
        assert_eq!(e.to_error().code(), ErrorCode::InvalidMessage);
    }
    // A 128-byte string id is accepted.
    let ok = "y".repeat(128);
    let f = decode_client_frame(&format!(r#"{{"type":"ping","id":"{ok}"}}"#)).unwrap();
    assert_eq!(f.id, Some(RequestId::Str(ok)));
    let e = decode_client_frame(&format!(r#"{{"type":"ping","id":"{long}"}}"#)).unwrap_err();
    assert_eq!(e.error, "id is longer than 128 bytes");
}

/// Regression: an `error` frame with a code this version does not know (from a newer server) made
/// the whole frame undecodable; it now decodes with `code: None`, like a seed-era error.
#[test]
fn an_unknown_error_code_decodes_as_no_code() {
    for text in [
        r#"{"type":"error","message":"m","code":"teapot","id":4}"#,
        r#"{"type":"error","message":"m","code":null,"id":4}"#,
        r#"{"type":"error","message":"m","id":4}"#,
    ] {
        let f = decode_server_frame(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(f, sf(ServerMessage::Error { message: "m".into(), code: None }, n(4)), "{text}");
        assert_eq!(f.encode().as_str(), r#"{"type":"error","message":"m","id":4}"#);
    }
    for code in ErrorCode::ALL {
        let text = format!(r#"{{"type":"error","message":"m","code":"{code}"}}"#);
        let f = decode_server_frame(&text).unwrap();
        assert_eq!(f.message, ServerMessage::Error { message: "m".into(), code: Some(code) });
        assert_eq!(f.encode().as_str(), text);
    }
    // A code that is not a string is still malformed.
    assert!(decode_server_frame(r#"{"type":"error","message":"m","code":5}"#).is_err());
}
