//! The session driven against the real server connection rules and the real in-memory
//! `EventHub` in simulated time: no sockets, no sleeps. The pair (`support/mod.rs`) plays the
//! transport and the token verifier; every rule under test is the session's own.

mod support;

use guts_realtime::session::{
    backoff_ceiling, Action, ConnectionState, Event, GapReason, Inbound, Session, SessionConfig,
    SubId, SubState,
};
use guts_realtime::{EventHub, EventKind, HubConfig, ServerMessage};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use support::{Pair as Harness, TokenPolicy, MS, S};

fn cfg() -> SessionConfig {
    SessionConfig::default()
}

#[test]
fn connects_subscribes_and_delivers_in_order() {
    let mut h = Harness::new(cfg());
    let sub = h.s.subscribe("repo:alice/app").unwrap();
    h.s.connect(h.now);
    h.settle();
    assert_eq!(h.s.state(), &ConnectionState::Connected);
    assert_eq!(h.states(), ["connecting", "connected"]);
    assert_eq!(h.s.sub_state(sub), Some(SubState::Subscribed { recovered: None }));
    let seqs: Vec<u64> = (0..5).map(|_| h.publish("repo:alice/app", EventKind::Push)).collect();
    h.settle();
    assert_eq!(h.messages(sub), seqs);
}

#[test]
fn auth_is_first_frame_and_states_go_through_authenticating() {
    let mut h = Harness::new(cfg().auth(true));
    h.s.subscribe("user:alice").unwrap();
    h.s.connect(h.now);
    // Inspect what is sent before the harness consumes it.
    assert_eq!(h.s.poll_action(), Some(Action::FetchToken));
    h.s.handle_token(h.now, Ok(Some("good".into())));
    assert_eq!(h.s.poll_action(), Some(Action::Connect));
    h.accept();
    h.s.handle_open(h.now);
    let first = h.s.poll_transmit().unwrap();
    assert_eq!(first, r#"{"type":"auth","token":"good","id":1}"#);
    let second = h.s.poll_transmit().unwrap();
    assert_eq!(second, r#"{"type":"subscribe","channel":"user:alice","id":2}"#);
    // Feed them to the server's rules, in order: the auth reply comes from there.
    h.send_text(&first);
    h.send_text(&second);
    h.settle();
    assert_eq!(h.states(), ["connecting", "authenticating", "connected"]);
}

#[test]
fn bad_token_is_terminal_and_never_loops() {
    let mut h = Harness::new(cfg().auth(true));
    h.token = TokenPolicy::Bad;
    h.s.subscribe("repo:a/b").unwrap();
    h.s.connect(h.now);
    h.advance(600 * S);
    assert_eq!(h.s.state(), &ConnectionState::Closed);
    assert_eq!(h.connects, 1, "a terminal auth failure must not reconnect");
    assert_eq!(h.s.poll_timeout(), None);
}

#[test]
fn terminal_close_code_stops_and_reconnect_codes_retry() {
    for (code, terminal) in [
        (4001, true),
        (4003, true),
        (1000, true),
        (4008, false),
        (1001, false),
        (1006, false),
        (4503, false),
    ] {
        let mut h = Harness::new(cfg());
        h.s.subscribe("repo:a/b").unwrap();
        h.s.connect(h.now);
        h.settle();
        h.close_with(code, "");
        h.advance(120 * S);
        if terminal {
            assert_eq!(h.s.state(), &ConnectionState::Closed, "code {code}");
            assert_eq!(h.connects, 1, "code {code}");
        } else {
            assert_eq!(h.s.state(), &ConnectionState::Connected, "code {code}");
            assert_eq!(h.connects, 2, "code {code}");
        }
    }
}

#[test]
fn hinted_close_waits_at_least_the_hint() {
    let mut h = Harness::new(cfg());
    h.s.connect(h.now);
    h.settle();
    h.close_with(4503, "busy; retry_after_ms=7000");
    let retry_in = h
        .events
        .iter()
        .rev()
        .find_map(|(_, e)| match e {
            Event::State {
                state: ConnectionState::Reconnecting { retry_in, .. }, code, ..
            } => {
                assert_eq!(*code, Some(4503));
                Some(*retry_in)
            }
            _ => None,
        })
        .unwrap();
    assert!(retry_in >= 7 * S && retry_in <= 7 * S + 500 * MS, "{retry_in:?}");
}

#[test]
fn token_provider_failures() {
    let mut h = Harness::new(cfg().auth(true));
    h.token = TokenPolicy::Unauthorized;
    h.s.connect(h.now);
    h.advance(60 * S);
    assert_eq!(h.s.state(), &ConnectionState::Closed);
    assert_eq!(h.connects, 0);

    let mut h = Harness::new(cfg().auth(true));
    h.token = TokenPolicy::Transient;
    h.s.connect(h.now);
    h.advance(2 * S);
    assert!(matches!(h.s.state(), ConnectionState::Reconnecting { .. }));
    h.token = TokenPolicy::Good;
    h.advance(60 * S);
    assert_eq!(h.s.state(), &ConnectionState::Connected);
}

#[test]
fn token_is_fetched_before_every_connect() {
    let mut h = Harness::new(cfg().auth(true));
    h.s.connect(h.now);
    h.settle();
    for _ in 0..3 {
        h.cut();
        h.advance(30 * S);
    }
    let fetches = h
        .events
        .iter()
        .filter(|(_, e)| {
            matches!(e, Event::State { state: ConnectionState::Connecting { .. }, .. })
        })
        .count();
    assert_eq!(fetches, 4);
    assert_eq!(h.connects, 4);
}

#[test]
fn outage_is_recovered_without_loss_or_duplicates() {
    let mut h = Harness::new(cfg());
    let sub = h.s.subscribe("repo:o/n").unwrap();
    let prs = h.s.subscribe("repo:o/n/prs").unwrap();
    h.s.connect(h.now);
    h.settle();
    let mut all = vec![h.publish("repo:o/n", EventKind::Push)];
    let mut pr = vec![h.publish("repo:o/n", EventKind::PrOpened)];
    all.push(pr[0]);
    h.settle();
    h.cut();
    // Published during the outage.
    for _ in 0..3 {
        all.push(h.publish("repo:o/n", EventKind::Push));
        let s = h.publish("repo:o/n/prs", EventKind::PrMerged);
        all.push(s);
        pr.push(s);
    }
    h.advance(30 * S);
    assert_eq!(h.s.state(), &ConnectionState::Connected);
    all.push(h.publish("repo:o/n", EventKind::Push));
    h.settle();
    assert_eq!(h.messages(sub), all);
    assert_eq!(h.messages(prs), pr);
    assert!(h.gaps(sub).is_empty());
    let recovered = h.events.iter().any(|(_, e)| {
        matches!(e, Event::Subscription { sub: s, state: SubState::Subscribed { recovered: Some(true) }, .. } if *s == sub)
    });
    assert!(recovered);
}

#[test]
fn outage_with_no_event_before_it_still_recovers() {
    // socket.io#5538: recovery that fails when nothing arrived before the drop.
    let mut h = Harness::new(cfg());
    let sub = h.s.subscribe("repo:o/n").unwrap();
    h.s.connect(h.now);
    h.settle();
    h.cut();
    let s1 = h.publish("repo:o/n", EventKind::Push);
    h.advance(30 * S);
    assert_eq!(h.messages(sub), [s1]);
    assert!(h.gaps(sub).is_empty());
}

#[test]
fn hub_restart_gives_an_explicit_gap_then_live_events() {
    let mut h = Harness::new(cfg());
    let sub = h.s.subscribe("repo:o/n").unwrap();
    h.s.connect(h.now);
    h.settle();
    for _ in 0..10 {
        h.publish("repo:o/n", EventKind::Push);
    }
    h.settle();
    h.cut();
    h.hub = Arc::new(EventHub::new()); // new process: new epoch, seqs restart
    h.advance(30 * S);
    assert_eq!(h.gaps(sub), [GapReason::EpochChanged]);
    let s = h.publish("repo:o/n", EventKind::Push);
    h.settle();
    assert_eq!(*h.messages(sub).last().unwrap(), s, "live events flow after the gap");
}

#[test]
fn trimmed_history_gives_a_gap() {
    let hub = Arc::new(EventHub::with_config(HubConfig::default().history_size(2)));
    let mut h = Harness::with_hub(cfg(), hub);
    let sub = h.s.subscribe("repo:o/n").unwrap();
    h.s.connect(h.now);
    h.settle();
    h.cut();
    for _ in 0..5 {
        h.publish("repo:o/n", EventKind::Push);
    }
    h.advance(30 * S);
    assert_eq!(h.gaps(sub), [GapReason::NotRecovered]);
    assert!(h.messages(sub).is_empty(), "nothing replayed when recovery fails");
}

#[test]
fn stalled_link_is_detected_at_the_heartbeat_bound() {
    let mut h = Harness::new(cfg());
    h.s.subscribe("repo:o/n").unwrap();
    h.s.connect(h.now);
    h.settle();
    let last_rx = h.now;
    h.stalled = true; // bytes stop both ways, socket open
    h.advance(60 * S);
    let dead = h
        .events
        .iter()
        .find_map(|(t, e)| match e {
            Event::State {
                state: ConnectionState::Reconnecting { .. }, code: Some(4000), ..
            } => Some(*t),
            _ => None,
        })
        .expect("dead link declared");
    assert_eq!(dead - last_rx, 30 * S, "ping at 20 s, pong timeout 10 s");
}

#[test]
fn heartbeat_is_scheduled_from_the_last_received_frame() {
    let mut h = Harness::new(cfg());
    h.s.subscribe("repo:o/n").unwrap();
    h.s.connect(h.now);
    h.settle();
    // Traffic every 15 s keeps the session from pinging at all.
    for _ in 0..6 {
        h.advance(15 * S);
        h.publish("repo:o/n", EventKind::Push);
        h.settle();
    }
    assert_eq!(h.s.poll_timeout(), Some(h.now + 20 * S));
    assert_eq!(h.s.state(), &ConnectionState::Connected);
    assert_eq!(h.connects, 1);
}

#[test]
fn throttled_timer_wakes_late_and_still_verifies() {
    let mut h = Harness::new(cfg());
    h.s.connect(h.now);
    h.settle();
    // The driver's timer was throttled: it wakes 5 minutes late, link actually dead.
    h.stalled = true;
    h.now += 300 * S;
    h.s.handle_timeout(h.now);
    h.settle();
    assert_eq!(h.s.state(), &ConnectionState::Connected, "a ping goes out first");
    assert_eq!(h.s.poll_timeout(), Some(h.now + 10 * S));
    h.now += 600 * S; // wakes late again
    h.s.handle_timeout(h.now);
    h.settle();
    assert!(matches!(h.s.state(), ConnectionState::Reconnecting { .. }));
}

#[test]
fn check_liveness_pings_at_once() {
    let mut h = Harness::new(cfg());
    h.s.connect(h.now);
    h.settle();
    h.now += 3 * S;
    h.s.check_liveness(h.now);
    assert_eq!(h.s.poll_transmit().as_deref(), Some(r#"{"type":"ping","id":1}"#));
    assert_eq!(h.s.poll_timeout(), Some(h.now + 10 * S));
}

#[test]
fn online_event_skips_the_backoff() {
    let mut h = Harness::new(cfg().backoff_base(10 * S).backoff_max(60 * S));
    h.s.connect(h.now);
    h.settle();
    h.server_up = false;
    h.cut();
    h.advance(S);
    h.server_up = true;
    h.s.handle_network(h.now, true);
    h.settle();
    assert_eq!(h.s.state(), &ConnectionState::Connected);
}

#[test]
fn duplicate_and_out_of_order_frames_are_dropped() {
    let mut h = Harness::new(cfg());
    let sub = h.s.subscribe("repo:o/n").unwrap();
    h.s.connect(h.now);
    h.settle();
    let mk = |seq| Inbound::Event {
        channel: "repo:o/n".into(),
        kind: Some(EventKind::Push),
        seq: Some(seq),
        item: None,
        payload: ServerMessage::Pong,
    };
    for seq in [5, 5, 3, 6, 6, 4, 7] {
        h.s.handle_frame(h.now, mk(seq));
    }
    h.settle();
    assert_eq!(h.messages(sub), [5, 6, 7]);
}

#[test]
fn subscribe_while_disconnected_is_kept_and_reconciled() {
    let mut h = Harness::new(cfg());
    let a = h.s.subscribe("repo:o/a").unwrap();
    h.s.connect(h.now);
    h.settle();
    h.server_up = false;
    h.cut();
    let b = h.s.subscribe("repo:o/b").unwrap();
    h.s.unsubscribe(a).unwrap();
    let c = h.s.subscribe("repo:o/c").unwrap();
    h.s.unsubscribe(c).unwrap();
    h.server_up = true;
    h.advance(60 * S);
    assert_eq!(h.s.state(), &ConnectionState::Connected);
    let confirmed: Vec<&str> = h.s.confirmed_channels().collect();
    assert_eq!(confirmed, ["repo:o/b"]);
    assert_eq!(h.s.sub_state(b), Some(SubState::Subscribed { recovered: None }));
    let client = h.conn.as_ref().unwrap().client.clone();
    let held: Vec<String> = client.channels().iter().map(|c| c.to_string()).collect();
    assert_eq!(held, ["repo:o/b"]);
}

#[test]
fn server_refusal_surfaces_with_its_code_and_is_not_retried() {
    let mut h = Harness::new(cfg().max_channels(200));
    let subs: Vec<SubId> =
        (0..101).map(|i| h.s.subscribe(&format!("repo:o/r{i}")).unwrap()).collect();
    h.s.connect(h.now);
    h.settle();
    let failed: Vec<_> = h
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Subscription { sub, state: SubState::Failed { code, .. }, .. } => {
                Some((*sub, *code))
            }
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].1, Some(guts_realtime::ErrorCode::SubscriptionLimit));
    assert!(subs.contains(&failed[0].0));
    h.cut();
    h.advance(30 * S);
    assert_eq!(h.s.confirmed_channels().count(), 100);
}

#[test]
fn invalid_channel_is_refused_locally() {
    let mut h = Harness::new(cfg());
    assert!(h.s.subscribe("repo:alice").is_err());
    assert!(h.s.subscribe("user:a/b").is_err());
    h.s.connect(h.now);
    h.settle();
    assert_eq!(h.s.desired_channels().count(), 0);
}

#[test]
fn one_copy_per_handle_through_several_channels() {
    let mut h = Harness::new(cfg());
    let base = h.s.subscribe("repo:o/n").unwrap();
    let prs = h.s.subscribe("repo:o/n/prs").unwrap();
    let base2 = h.s.subscribe("repo:o/n").unwrap();
    h.s.connect(h.now);
    h.settle();
    let s = h.publish("repo:o/n", EventKind::PrOpened);
    let p = h.publish("repo:o/n", EventKind::Push);
    h.settle();
    assert_eq!(h.messages(base), [s, p]);
    assert_eq!(h.messages(base2), [s, p]);
    assert_eq!(h.messages(prs), [s]);
}

#[test]
fn close_stops_everything_and_connect_restarts() {
    let mut h = Harness::new(cfg());
    let sub = h.s.subscribe("repo:o/n").unwrap();
    h.s.connect(h.now);
    h.settle();
    h.s.close(h.now);
    h.settle();
    assert!(h.conn.is_none());
    assert_eq!(h.s.poll_timeout(), None);
    h.advance(600 * S);
    assert_eq!(h.connects, 1);
    h.s.connect(h.now);
    h.settle();
    assert_eq!(h.s.sub_state(sub), Some(SubState::Subscribed { recovered: Some(true) }));
}

#[test]
fn backoff_grows_within_bounds_and_resets_after_a_stable_connection() {
    let mut h = Harness::new(cfg());
    h.s.connect(h.now);
    h.settle();
    h.server_up = false;
    h.cut();
    h.advance(300 * S);
    let delays: Vec<(u32, Duration)> = h
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::State { state: ConnectionState::Reconnecting { attempt, retry_in }, .. } => {
                Some((*attempt, *retry_in))
            }
            _ => None,
        })
        .collect();
    assert!(delays.len() > 10);
    for (attempt, d) in &delays {
        let cap = backoff_ceiling(500 * MS, 20 * S, attempt - 1);
        assert!(*d <= cap, "attempt {attempt}: {d:?} > {cap:?}");
    }
    h.server_up = true;
    h.advance(30 * S);
    assert_eq!(h.s.state(), &ConnectionState::Connected);
    // Stays up 5 s: the counter resets, so the next retry is drawn from the first window.
    h.advance(6 * S);
    h.cut();
    match h.s.state() {
        ConnectionState::Reconnecting { attempt, retry_in } => {
            assert_eq!(*attempt, 1);
            assert!(*retry_in <= 500 * MS);
        }
        s => panic!("{s:?}"),
    }
    // A connection that drops at once does not reset it.
    h.advance(S);
    h.cut();
    assert!(matches!(h.s.state(), ConnectionState::Reconnecting { attempt: 2, .. }));
}

#[test]
fn jitter_spreads_ten_thousand_first_retries() {
    // 10k clients dropped at once: their first retries must cover the 0..500 ms window evenly.
    let mut buckets = [0usize; 10];
    for seed in 0..10_000u64 {
        let mut s: Session<()> =
            Session::new(cfg().rng_seed(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 77));
        s.connect(Duration::ZERO);
        assert_eq!(s.poll_action(), Some(Action::Connect));
        s.handle_open(Duration::ZERO);
        s.handle_close(Duration::ZERO, 1006, "");
        let Some(ConnectionState::Reconnecting { retry_in, .. }) = Some(s.state().clone()) else {
            panic!()
        };
        assert!(retry_in <= 500 * MS);
        buckets[(retry_in.as_millis() as usize * 10 / 501).min(9)] += 1;
    }
    for (i, n) in buckets.iter().enumerate() {
        assert!((850..=1150).contains(n), "bucket {i} has {n} of 10000: {buckets:?}");
    }
}

// ---- property test ------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Subscribe(usize),
    Unsubscribe(usize),
    Publish(usize, bool),
    Cut,
    ServerDown,
    ServerUp,
    Stall(bool),
    Advance(u64),
    Close,
    Connect,
    Online,
}

const CHANNELS: [&str; 4] = ["repo:o/n", "repo:o/n/prs", "repo:o/m", "org:acme"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..CHANNELS.len()).prop_map(Op::Subscribe),
        1 => (0..8usize).prop_map(Op::Unsubscribe),
        6 => ((0..CHANNELS.len()), any::<bool>()).prop_map(|(c, pr)| Op::Publish(c, pr)),
        1 => Just(Op::Cut),
        1 => Just(Op::ServerDown),
        1 => Just(Op::ServerUp),
        1 => any::<bool>().prop_map(Op::Stall),
        3 => (0..40_000u64).prop_map(Op::Advance),
        1 => Just(Op::Close),
        1 => Just(Op::Connect),
        1 => Just(Op::Online),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_under_random_inputs(ops in proptest::collection::vec(op(), 1..60), seed in any::<u64>()) {
        // Authenticated as alice, a member of org acme: every channel of CHANNELS is hers.
        let mut h = Harness::new(cfg().auth(true).rng_seed(seed));
        h.s.connect(h.now);
        h.settle();
        let mut handles: Vec<SubId> = Vec::new();
        for op in ops {
            match op {
                Op::Subscribe(c) => handles.push(h.s.subscribe(CHANNELS[c]).unwrap()),
                Op::Unsubscribe(i) => {
                    if !handles.is_empty() {
                        let sub = handles.remove(i % handles.len());
                        h.s.unsubscribe(sub).unwrap();
                    }
                }
                Op::Publish(c, pr) => {
                    let kind = if pr { EventKind::PrOpened } else { EventKind::Push };
                    h.publish(CHANNELS[c], kind);
                }
                Op::Cut => h.cut(),
                Op::ServerDown => { h.server_up = false; h.cut(); }
                Op::ServerUp => h.server_up = true,
                Op::Stall(on) => h.stalled = on,
                Op::Advance(ms) => h.advance(Duration::from_millis(ms)),
                Op::Close => h.s.close(h.now),
                Op::Connect => h.s.connect(h.now),
                Op::Online => h.s.handle_network(h.now, true),
            }
            h.settle();
            prop_assert!(h.max_sockets_open <= 1, "more than one socket at once");
        }
        // Heal everything and let it converge.
        h.server_up = true;
        h.stalled = false;
        h.s.connect(h.now);
        h.advance(120 * S);
        prop_assert_eq!(h.s.state(), &ConnectionState::Connected);
        let desired: BTreeSet<String> = h.s.desired_channels().map(str::to_owned).collect();
        let confirmed: BTreeSet<String> = h.s.confirmed_channels().map(str::to_owned).collect();
        prop_assert_eq!(&desired, &confirmed);
        let wanted: BTreeSet<String> = handles.iter().map(|s| h.s.channel_of(*s).unwrap().to_owned()).collect();
        prop_assert_eq!(&desired, &wanted);
        let client = h.conn.as_ref().unwrap().client.clone();
        let on_hub: BTreeSet<String> = client.channels().iter().map(|c| c.to_string()).collect();
        prop_assert_eq!(&on_hub, &wanted, "the hub holds exactly the desired channels, once");

        // No handle ever sees a seq twice or out of order.
        let mut per: BTreeMap<SubId, Vec<u64>> = BTreeMap::new();
        for (_, e) in &h.events {
            if let Event::Message { sub, seq: Some(seq), .. } = e {
                per.entry(*sub).or_default().push(*seq);
            }
            if let Event::State { state: ConnectionState::Reconnecting { attempt, retry_in }, .. } = e {
                let cap = backoff_ceiling(500 * MS, 20 * S, attempt.saturating_sub(1)) + Duration::from_secs(10);
                prop_assert!(*retry_in <= cap);
            }
        }
        for (sub, seqs) in &per {
            prop_assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{} got {:?}", sub, seqs);
        }
        // Nothing lost without a gap: after the live handles are settled, a new event reaches
        // every one of them exactly once.
        let before: BTreeMap<SubId, usize> = handles.iter().map(|s| (*s, h.messages(*s).len())).collect();
        let seq = h.publish("repo:o/n", EventKind::PrOpened);
        h.settle();
        for s in &handles {
            let ch = h.s.channel_of(*s).unwrap();
            let gets = ch == "repo:o/n" || ch == "repo:o/n/prs";
            let msgs = h.messages(*s);
            prop_assert_eq!(msgs.len() - before[s], usize::from(gets));
            if gets { prop_assert_eq!(*msgs.last().unwrap(), seq); }
        }
    }
}

/// The presence events of a handle, as `join U`, `leave U` and `list` (the member list, read
/// with `Session::members`, is there or was rebuilt).
fn presence_log(h: &Harness, sub: SubId) -> Vec<String> {
    h.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Member { sub: s, user, joined: true } if *s == sub => {
                Some(format!("join {user}"))
            }
            Event::Member { sub: s, user, .. } if *s == sub => Some(format!("leave {user}")),
            Event::Presence { sub: s } if *s == sub => Some("list".into()),
            _ => None,
        })
        .collect()
}

/// The users of the session's member list of `ch`.
fn listed(h: &Harness, ch: &str) -> String {
    let members = h.s.members(ch).unwrap_or_default();
    members.iter().map(|(u, _)| u.as_str()).collect::<Vec<_>>().join(",")
}

/// A member of `ch` on the hub directly (another user's tab).
fn member(h: &Harness, user: &str, ch: &str) -> Arc<guts_realtime::HubClient> {
    let (c, rx) = h.hub.connect().unwrap();
    std::mem::forget(rx); // keeps the queue open: the member stays until disconnected
    c.set_user(Some(user));
    let opts = guts_realtime::SubscribeOptions::new(None, true, None);
    h.hub.subscribe_with(&c, ch, opts).unwrap();
    c
}

#[test]
fn presence_is_rebuilt_after_a_reconnect_reporting_only_real_changes() {
    let mut h = Harness::new(cfg().auth(true));
    let ch = "repo:acme/app/prs/4";
    let bob = member(&h, "bob", ch);
    let dave = member(&h, "dave", ch);
    let sub = h.s.subscribe_with(ch, None, true).unwrap();
    let plain = h.s.subscribe(ch).unwrap();
    h.s.connect(h.now);
    h.settle();
    assert_eq!(presence_log(&h, sub), ["list"]);
    assert_eq!(listed(&h, ch), "alice,bob,dave");
    member(&h, "carol", ch);
    h.settle();
    assert_eq!(presence_log(&h, sub).last().unwrap(), "join carol");
    // Down for a while: bob leaves, erin joins, dave stays; alice's own connection went too.
    h.cut();
    h.hub.disconnect(&bob.id);
    member(&h, "erin", ch);
    h.advance(30 * S);
    assert_eq!(h.s.state(), &ConnectionState::Connected);
    assert_eq!(presence_log(&h, sub), ["list", "join carol", "join erin", "leave bob", "list"]);
    assert_eq!(listed(&h, ch), "alice,carol,dave,erin");
    assert!(presence_log(&h, plain).is_empty(), "a handle without presence hears nothing of it");
    // A live leave, and a second handle asking for presence gets the list at once.
    h.hub.disconnect(&dave.id);
    h.settle();
    let late = h.s.subscribe_with(ch, None, true).unwrap();
    h.settle();
    assert_eq!(presence_log(&h, sub).last().unwrap(), "leave dave");
    assert_eq!(presence_log(&h, late), ["list"]);
    assert_eq!(listed(&h, ch), "alice,carol,erin");
}

#[test]
fn asking_for_presence_on_a_subscribed_channel_subscribes_again_with_it() {
    let mut h = Harness::new(cfg().auth(true));
    let ch = "repo:acme/app/issues/9";
    member(&h, "bob", ch);
    let plain = h.s.subscribe(ch).unwrap();
    h.s.connect(h.now);
    h.settle();
    let sent = h.sent.len();
    let watching = h.s.subscribe_with(ch, None, true).unwrap();
    h.settle();
    assert!(h.sent[sent].contains(r#""presence":true"#), "{:?}", &h.sent[sent..]);
    assert_eq!(presence_log(&h, watching), ["list"]);
    assert_eq!(listed(&h, ch), "alice,bob");
    // The last watcher goes: subscribed again without presence, alice leaves for the others.
    h.s.unsubscribe(watching).unwrap();
    h.settle();
    assert!(!h.sent.last().unwrap().contains("presence"), "{:?}", h.sent.last());
    let (members, _) = h.hub.presence(&guts_realtime::Channel::parse(ch).unwrap());
    assert_eq!(members.iter().map(|m| m.user.as_str()).collect::<Vec<_>>(), ["bob"]);
    assert_eq!(h.s.sub_state(plain), Some(SubState::Subscribed { recovered: Some(true) }));
}

/// The replies the session gave: request id → the history's seqs, or the error message.
fn replies(h: &Harness) -> Vec<(u64, Result<Vec<u64>, String>)> {
    h.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Reply { req, result } => Some((
                req.0,
                match result {
                    Ok(ServerMessage::History { events, .. }) => Ok(events
                        .iter()
                        .map(|e| match e {
                            ServerMessage::Event(e) => e.seq.unwrap(),
                            _ => 0,
                        })
                        .collect()),
                    Ok(ServerMessage::Presence { members, .. }) => Ok(vec![members.len() as u64]),
                    Ok(other) => Err(format!("{other:?}")),
                    Err(e) => Err(e.message.clone()),
                },
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn requests_wait_for_a_connection_are_sent_again_after_a_drop_and_time_out() {
    let mut h = Harness::new(cfg());
    let ch = "repo:o/hist";
    let seqs: Vec<u64> = (0..4).map(|_| h.publish(ch, EventKind::Push)).collect();
    // Asked before connecting: sent once connected.
    let first = h.s.history(h.now, ch, Some(2)).unwrap();
    assert!(h.sent.is_empty());
    h.s.connect(h.now);
    h.settle();
    assert_eq!(replies(&h), [(first.0, Ok(seqs[2..].to_vec()))]);
    // Sent on a socket that dies before the answer: sent again on the next one.
    h.mute = true;
    let second = h.s.presence(h.now, ch).unwrap();
    h.settle();
    h.mute = false;
    h.cut();
    h.advance(5 * S);
    assert_eq!(replies(&h)[1], (second.0, Ok(vec![0])));
    // No hub at all: the request fails after its timeout, not before.
    h.server_up = false;
    h.cut();
    h.close_with(1006, "");
    h.drop_socket();
    let t0 = h.now;
    let third = h.s.history(h.now, ch, None).unwrap();
    h.advance(9 * S);
    assert_eq!(replies(&h).len(), 2);
    h.advance(2 * S);
    assert_eq!(replies(&h)[2], (third.0, Err("request timed out".into())));
    assert!(h.now - t0 >= 10 * S);
    // Closed for good: what waits fails at once.
    let fourth = h.s.history(h.now, ch, None).unwrap();
    h.s.close(h.now);
    h.settle();
    assert_eq!(replies(&h)[3], (fourth.0, Err("closed by the application".into())));
}

#[test]
fn signals_go_out_only_on_a_live_connection_and_refusals_come_back_as_errors() {
    let mut h = Harness::new(cfg().auth(true));
    let ch = "repo:acme/app/prs/2";
    assert_eq!(
        h.s.signal(ch, "typing", "{}"),
        Err(guts_realtime::session::SessionError::NotConnected)
    );
    let bob = member(&h, "bob", ch);
    let _ = bob;
    h.s.connect(h.now);
    h.settle();
    h.s.signal(ch, "typing", r#"{"on":true}"#).unwrap();
    h.s.signal("repo:acme/app", "typing", "{}").unwrap();
    h.settle();
    let errors: Vec<_> = h
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Error { code, .. } => *code,
            _ => None,
        })
        .collect();
    assert_eq!(errors, [guts_realtime::ErrorCode::Forbidden]);
}
