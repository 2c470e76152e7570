//! `RealtimeEvent::typed`: each kind's payload as its type, and a payload that does not fit its
//! kind is an error, not a silent default.
#![cfg(feature = "json")]

use guts_realtime::{EventKind, EventPayload, RealtimeEvent};
use serde_json::json;

fn event(kind: EventKind, data: serde_json::Value) -> RealtimeEvent {
    serde_json::from_value(json!({
        "type": "event", "channel": "repo:a/b", "event": kind, "data": data,
        "timestamp": 1, "event_id": "e"
    }))
    .unwrap()
}

#[test]
fn every_kind_has_its_variant() {
    let pr = json!({"number": 7, "title": "t", "author": "a", "source_branch": "s", "target_branch": "m", "state": "open"});
    let review = json!({"id": 1, "pr_number": 7, "reviewer": "r", "state": "approved"});
    let comment = json!({"id": 2, "author": "a", "body_preview": "b", "parent_number": 4});
    let issue = json!({"number": 4, "title": "t", "author": "a", "state": "open"});
    let push = json!({"ref": "refs/heads/main", "before": "a", "after": "b", "pusher": "p", "commit_count": 1});
    for kind in EventKind::all() {
        let data = match kind.wire_name() {
            "push" => push.clone(),
            "pr_review" => review.clone(),
            "pr_comment" | "issue_comment" => comment.clone(),
            k if k.starts_with("pr_") => pr.clone(),
            k if k.starts_with("issue_") => issue.clone(),
            _ => json!({"any": true}),
        };
        let typed = event(*kind, data.clone()).typed().unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        // The variant is named as the kind: its Debug starts with the kind's CamelCase name.
        let name = format!("{kind:?}");
        assert!(format!("{typed:?}").starts_with(&format!("{name}(")), "{kind:?} → {typed:?}");
    }
    match event(EventKind::PrReview, review).typed().unwrap() {
        EventPayload::PrReview(r) => assert_eq!((r.pr_number, r.state.as_str()), (7, "approved")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_payload_that_does_not_fit_its_kind_is_an_error() {
    assert!(event(EventKind::PrOpened, json!({"number": "seven"})).typed().is_err());
    assert!(event(EventKind::Push, json!(null)).typed().is_err());
}
