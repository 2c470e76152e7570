//! The routing matrix: which subscriptions receive an event, by `Channel::receives`, by
//! `Channel::routes`, and through a real `EventHub` (who got exactly which frames).

use guts_realtime::{Channel, EventKind};
use proptest::prelude::*;
use std::collections::BTreeSet;

const BASE: &str = "repo:o/n";
const PRS: &str = "repo:o/n/prs";
const ISSUES: &str = "repo:o/n/issues";
const PR7: &str = "repo:o/n/prs/7";
const ISSUE7: &str = "repo:o/n/issues/7";

/// The subscriptions of the matrix: the channels of `o/n` (item 7 of each family, and pull
/// request 8 which the matrix's events are never about), and channels that must never receive
/// anything of `o/n`.
const SUBS: [&str; 13] = [
    BASE,
    PRS,
    ISSUES,
    PR7,
    "repo:o/n/prs/8",
    ISSUE7,
    "repo:o/other",
    "repo:o/other/prs",
    "repo:o/other/prs/7",
    "repo:x/n",
    "user:o",
    "org:o",
    "user:n",
];

const KINDS: [EventKind; 3] = [EventKind::Push, EventKind::PrOpened, EventKind::IssueOpened];

/// Where the matrix's events are emitted; each is about item 7 (its data's `number`).
const ON: [&str; 5] = [BASE, PRS, ISSUES, PR7, ISSUE7];

/// The expected matrix, written out: (emitted on, kind) → subscriptions that receive it.
fn expected(on: &str, kind: EventKind) -> &'static [&'static str] {
    match (on, kind) {
        (BASE, EventKind::Push) => &[BASE],
        (BASE, EventKind::PrOpened) => &[BASE, PRS, PR7],
        (BASE, EventKind::IssueOpened) => &[BASE, ISSUES, ISSUE7],
        // Emitted on a filtered channel: its own subscribers and the repository channel, whatever
        // the kind, and the item channel for a kind of the family; never the other filter.
        (PRS, EventKind::Push) => &[BASE, PRS],
        (PRS, EventKind::PrOpened) => &[BASE, PRS, PR7],
        (PRS, EventKind::IssueOpened) => &[BASE, PRS],
        (ISSUES, EventKind::Push) => &[BASE, ISSUES],
        (ISSUES, EventKind::PrOpened) => &[BASE, ISSUES],
        (ISSUES, EventKind::IssueOpened) => &[BASE, ISSUES, ISSUE7],
        // Emitted on an item channel: the item, its family and the repository, whatever the kind.
        (PR7, _) => &[BASE, PRS, PR7],
        (ISSUE7, _) => &[BASE, ISSUES, ISSUE7],
        _ => unreachable!(),
    }
}

fn ch(s: &str) -> Channel {
    Channel::parse(s).unwrap()
}

#[test]
fn matrix_by_receives() {
    for on in ON {
        for kind in KINDS {
            let got: Vec<&str> = SUBS
                .iter()
                .copied()
                .filter(|s| ch(s).receives(&ch(on), Some(kind), Some(7)))
                .collect();
            let mut want = expected(on, kind).to_vec();
            want.sort_by_key(|w| SUBS.iter().position(|s| s == w));
            assert_eq!(got, want, "event {kind:?} on {on}");
        }
    }
}

#[test]
fn matrix_by_routes() {
    for on in ON {
        for kind in KINDS {
            let got: Vec<String> =
                ch(on).routes(Some(kind), Some(7)).map(|c| c.to_string()).collect();
            // `routes` lists the emitted channel first.
            let mut want: Vec<String> = vec![on.to_owned()];
            want.extend(expected(on, kind).iter().filter(|s| **s != on).map(|s| s.to_string()));
            assert_eq!(got, want, "event {kind:?} on {on}");
        }
    }
}

#[test]
fn an_event_about_no_item_reaches_no_item_channel_but_its_own() {
    for kind in KINDS {
        assert!(!ch(PR7).receives(&ch(BASE), Some(kind), None));
        assert!(!ch(PR7).receives(&ch(PRS), Some(kind), None));
        assert!(ch(PR7).receives(&ch(PR7), Some(kind), None));
        // The item of an item channel wins over what the data says.
        assert!(ch(PR7).receives(&ch(PR7), Some(kind), Some(8)));
        assert!(!ch("repo:o/n/prs/8").receives(&ch(PR7), Some(kind), Some(8)));
    }
    // Every `pr_*` kind about 7 reaches `/prs/7`: reviews (`pr_number`) and comments
    // (`parent_number`) too, once the item is read from their data.
    let about = |data: serde_json::Value| guts_realtime::subscription::item_of(&data);
    for (kind, data) in [
        (EventKind::PrReview, serde_json::json!({"id": 1, "pr_number": 7})),
        (EventKind::PrComment, serde_json::json!({"id": 2, "parent_number": 7})),
        (EventKind::PrMerged, serde_json::json!({"number": 7, "pr_number": 9})),
    ] {
        assert!(ch(PR7).receives(&ch(BASE), Some(kind), about(data)), "{kind:?}");
    }
}

#[test]
fn notifications_and_kindless_frames_reach_only_their_channel() {
    // `None` = a frame without a kind (a notification).
    assert!(ch("user:o").receives(&ch("user:o"), None, None));
    assert!(!ch("user:n").receives(&ch("user:o"), None, None));
    assert!(!ch("org:o").receives(&ch("user:o"), None, None));
    assert!(ch(BASE).receives(&ch(PRS), None, None));
    assert!(!ch(PRS).receives(&ch(BASE), None, None));
    let routes: Vec<String> = ch(BASE).routes(None, Some(7)).map(|c| c.to_string()).collect();
    assert_eq!(routes, vec![BASE.to_owned()]);
    let routes: Vec<String> = ch(PRS).routes(None, None).map(|c| c.to_string()).collect();
    assert_eq!(routes, vec![PRS.to_owned(), BASE.to_owned()]);
    let routes: Vec<String> =
        ch("user:o").routes(Some(EventKind::PrOpened), Some(7)).map(|c| c.to_string()).collect();
    assert_eq!(routes, vec!["user:o".to_owned()]);
    let routes: Vec<String> =
        ch("org:o").routes(Some(EventKind::IssueOpened), None).map(|c| c.to_string()).collect();
    assert_eq!(routes, vec!["org:o".to_owned()]);
}

#[test]
fn every_kind_is_routed_by_its_family() {
    use guts_realtime::KindFamily;
    let prs: Vec<EventKind> = EventKind::all()
        .iter()
        .copied()
        .filter(|k| ch(PRS).receives(&ch(BASE), Some(*k), None))
        .collect();
    assert_eq!(
        prs,
        vec![
            EventKind::PrOpened,
            EventKind::PrClosed,
            EventKind::PrMerged,
            EventKind::PrUpdated,
            EventKind::PrReopened,
            EventKind::PrReview,
            EventKind::PrComment
        ]
    );
    let issues: Vec<EventKind> = EventKind::all()
        .iter()
        .copied()
        .filter(|k| ch(ISSUES).receives(&ch(BASE), Some(*k), None))
        .collect();
    assert_eq!(
        issues,
        vec![
            EventKind::IssueOpened,
            EventKind::IssueClosed,
            EventKind::IssueReopened,
            EventKind::IssueUpdated,
            EventKind::IssueComment
        ]
    );
    for k in EventKind::all() {
        let fam = match k.wire_name() {
            n if n.starts_with("pr_") => KindFamily::PullRequests,
            n if n.starts_with("issue_") => KindFamily::Issues,
            _ => KindFamily::Other,
        };
        assert_eq!(k.family(), fam, "{k:?}");
    }
}

/// Every channel `routes` can produce for events on the universe, and more.
fn universe() -> Vec<Channel> {
    let mut out = Vec::new();
    for owner in ["o", "p"] {
        for name in ["n", "m", "prs"] {
            for f in [
                "",
                "/prs",
                "/issues",
                "/prs/0",
                "/prs/7",
                "/prs/8",
                "/issues/0",
                "/issues/7",
                "/issues/8",
            ] {
                out.push(ch(&format!("repo:{owner}/{name}{f}")));
            }
        }
        out.push(ch(&format!("user:{owner}")));
        out.push(ch(&format!("org:{owner}")));
    }
    out.push(ch("user:n"));
    out.push(ch("org:n"));
    out
}

fn kinds_and_none() -> Vec<Option<EventKind>> {
    std::iter::once(None).chain(EventKind::all().iter().copied().map(Some)).collect()
}

#[test]
fn routes_agrees_with_receives_exhaustively() {
    let all = universe();
    for on in &all {
        for kind in kinds_and_none() {
            for item in [None, Some(0), Some(7), Some(8)] {
                let routes: Vec<Channel> = on.routes(kind, item).collect();
                assert_eq!(&routes[0], on, "routes starts with the emitted channel");
                assert!(routes.len() <= 3);
                let set: BTreeSet<String> = routes.iter().map(|c| c.to_string()).collect();
                assert_eq!(set.len(), routes.len(), "no duplicates in routes of {on} {kind:?}");
                let by_receives: BTreeSet<String> = all
                    .iter()
                    .filter(|s| s.receives(on, kind, item))
                    .map(|c| c.to_string())
                    .collect();
                assert_eq!(set, by_receives, "event {kind:?} on {on} about {item:?}");
            }
        }
    }
}

fn seg() -> impl Strategy<Value = String> {
    prop_oneof![Just("o".to_owned()), Just("n".to_owned()), Just("prs".to_owned()), "[a-z]{1,3}"]
}

fn channel() -> impl Strategy<Value = Channel> {
    (0..7u8, seg(), seg(), 0..3u64).prop_map(|(t, a, b, n)| match t {
        0 => ch(&format!("repo:{a}/{b}")),
        1 => ch(&format!("repo:{a}/{b}/prs")),
        2 => ch(&format!("repo:{a}/{b}/issues")),
        3 => ch(&format!("repo:{a}/{b}/prs/{n}")),
        4 => ch(&format!("repo:{a}/{b}/issues/{n}")),
        5 => ch(&format!("user:{a}")),
        _ => ch(&format!("org:{a}")),
    })
}

fn item() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![Just(None), (0..3u64).prop_map(Some)]
}

fn kind() -> impl Strategy<Value = Option<EventKind>> {
    prop_oneof![Just(None), prop::sample::select(EventKind::all()).prop_map(Some)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    #[test]
    fn routes_agrees_with_receives(on in channel(), sub in channel(), k in kind(), i in item()) {
        let in_routes = on.routes(k, i).any(|c| c == sub);
        prop_assert_eq!(
            in_routes, sub.receives(&on, k, i), "sub {} event {:?} on {} about {:?}", sub, k, on, i
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Through a real hub.
// ---------------------------------------------------------------------------------------------

#[cfg(feature = "hub")]
mod hub {
    use super::*;
    use guts_realtime::{
        decode_server_frame, ClientReceiver, EventHub, RealtimeEvent, ServerMessage,
    };
    use std::sync::Arc;

    fn drain(rx: &mut ClientReceiver) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(f) = rx.try_recv() {
            out.push(f.as_str().to_owned());
        }
        out
    }

    fn event(on: &str, kind: EventKind, n: u64) -> RealtimeEvent {
        RealtimeEvent {
            event_type: "event".into(),
            channel: on.into(),
            event: kind,
            data: serde_json::json!({ "n": n, "number": 7 }),
            timestamp: 1_700_000_000 + n,
            event_id: format!("ev-{n}"),
            seq: None,
        }
    }

    struct Sub {
        name: String,
        client: Arc<guts_realtime::HubClient>,
        rx: ClientReceiver,
    }

    /// One client per subscription of the matrix, plus one holding both `repo:o/n` and
    /// `repo:o/n/prs`.
    fn setup(hub: &EventHub) -> Vec<Sub> {
        let mut subs = Vec::new();
        for s in SUBS {
            let (client, mut rx) = hub.connect().unwrap();
            hub.subscribe(&client, s, None, None).unwrap();
            assert_eq!(
                drain(&mut rx),
                vec![format!(r#"{{"type":"subscribed","channel":"{s}","seq":0}}"#)]
            );
            subs.push(Sub { name: s.to_owned(), client, rx });
        }
        let (client, mut rx) = hub.connect().unwrap();
        hub.subscribe(&client, BASE, None, None).unwrap();
        hub.subscribe(&client, PRS, None, None).unwrap();
        assert_eq!(drain(&mut rx).len(), 2);
        subs.push(Sub { name: "both".into(), client, rx });
        subs
    }

    #[test]
    fn matrix_through_the_hub() {
        let hub = EventHub::new();
        let mut subs = setup(&hub);
        let mut n = 0;
        for on in ON {
            for kind in KINDS {
                n += 1;
                let ev = event(on, kind, n);
                let p = hub.publish_event(ev.clone()).unwrap();
                assert_eq!(p.seq, n);
                let want = expected(on, kind);
                let both = want.contains(&BASE) || want.contains(&PRS);
                assert_eq!(p.delivered, want.len() + usize::from(both), "{kind:?} on {on}");
                let frame = ServerMessage::Event(RealtimeEvent { seq: Some(n), ..ev }).encode();
                for sub in &mut subs {
                    let got = drain(&mut sub.rx);
                    let gets =
                        if sub.name == "both" { both } else { want.contains(&sub.name.as_str()) };
                    let expect: Vec<String> =
                        if gets { vec![frame.as_str().to_owned()] } else { Vec::new() };
                    assert_eq!(got, expect, "{} for {kind:?} on {on}", sub.name);
                }
            }
        }
        assert!(subs.iter().all(|s| s.client.is_open()));
    }

    #[test]
    fn base_and_prs_subscriber_gets_exactly_one_copy_of_everything() {
        let hub = EventHub::new();
        let (client, mut rx) = hub.connect().unwrap();
        hub.subscribe(&client, BASE, None, None).unwrap();
        hub.subscribe(&client, PRS, None, None).unwrap();
        hub.subscribe(&client, ISSUES, None, None).unwrap();
        hub.subscribe(&client, PR7, None, None).unwrap();
        assert_eq!(drain(&mut rx).len(), 4);
        let mut n = 0;
        for on in ON {
            for kind in EventKind::all() {
                n += 1;
                let p = hub.publish_event(event(on, *kind, n)).unwrap();
                assert_eq!(p.delivered, 1, "{kind:?} on {on}");
                let got = drain(&mut rx);
                assert_eq!(got.len(), 1, "{kind:?} on {on}: {got:?}");
                let f = decode_server_frame(&got[0]).unwrap();
                let ServerMessage::Event(e) = f.message else { panic!("{got:?}") };
                assert_eq!((e.channel.as_str(), e.event, e.seq), (on, *kind, Some(n)));
            }
        }
        assert_eq!(hub.metrics().frames_delivered, n);
    }

    #[test]
    fn unsubscribing_one_of_two_routes_keeps_the_other() {
        let hub = EventHub::new();
        let (client, mut rx) = hub.connect().unwrap();
        hub.subscribe(&client, BASE, None, None).unwrap();
        hub.subscribe(&client, PRS, None, None).unwrap();
        hub.unsubscribe(&client, BASE).unwrap();
        drain(&mut rx);
        assert_eq!(hub.publish_event(event(BASE, EventKind::Push, 1)).unwrap().delivered, 0);
        assert_eq!(hub.publish_event(event(BASE, EventKind::PrMerged, 2)).unwrap().delivered, 1);
        assert_eq!(drain(&mut rx).len(), 1);
    }
}
