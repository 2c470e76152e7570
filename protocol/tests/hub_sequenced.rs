//! The hub behind a broker: events numbered elsewhere ([`EventHub::deliver`]), subscribes whose
//! history comes from the broker ([`EventHub::subscribe_sequenced`]), seq jumps (lost events ->
//! the lagging subscribers are disconnected, never a silent hole), epoch changes, and the race of
//! a subscribe with live delivery (no gap, no duplicate between replay and live).
#![cfg(feature = "hub")]

use guts_realtime::client::{CloseReason, TryRecvError};
use guts_realtime::{
    Channel, ClientReceiver, EventHub, EventKind, Frame, HubConfig, Recovery, RequestId, Sequenced,
    ServerMessage, Since, SubscribeOptions,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};

const EPOCH: &str = "cluster-epoch";

fn hub() -> EventHub {
    EventHub::with_config_and_epoch(HubConfig::default(), EPOCH.into())
}

/// The frame a broker would carry for event `seq` on `channel`.
fn sequenced(channel: &str, kind: EventKind, seq: u64) -> Sequenced {
    let text = format!(
        r#"{{"type":"event","channel":"{channel}","event":"{}","data":{{}},"timestamp":1,"event_id":"e{seq}","seq":{seq}}}"#,
        kind.wire_name()
    );
    Sequenced {
        seq,
        channel: Channel::parse(channel).unwrap(),
        kind: Some(kind),
        item: None,
        frame: Frame::from_string(text),
    }
}

fn push(seq: u64) -> Sequenced {
    sequenced("repo:o/n", EventKind::Push, seq)
}

/// The history a broker holds: events `from..=to` of `repo:o/n`.
fn source(head: u64, from: u64) -> Recovery {
    Recovery { head, complete: true, events: (from..=head).map(push).collect(), presence: None }
}

fn since(seq: u64) -> Since {
    Since { seq, epoch: EPOCH.into() }
}

/// Every frame queued: `subscribed` replies as `S<seq>:<recovered>`, events as their seq.
fn frames(rx: &mut ClientReceiver) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(f) = rx.try_recv() {
        let v: serde_json::Value = serde_json::from_str(f.as_str()).unwrap();
        match v["type"].as_str().unwrap() {
            "subscribed" => out.push(format!("S{}:{}", v["seq"], v["recovered"])),
            "event" => out.push(v["seq"].to_string()),
            other => out.push(other.to_owned()),
        }
    }
    out
}

#[test]
fn deliver_fans_out_the_broker_frame_itself_with_routing() {
    let hub = hub();
    let (all, mut all_rx) = hub.connect().unwrap();
    let (prs, mut prs_rx) = hub.connect().unwrap();
    let (issues, mut issues_rx) = hub.connect().unwrap();
    hub.subscribe_sequenced(
        &all,
        "repo:o/n",
        SubscribeOptions::new(None, false, None),
        Some(source(0, 1)),
    )
    .unwrap();
    hub.subscribe_sequenced(
        &prs,
        "repo:o/n/prs",
        SubscribeOptions::new(None, false, None),
        Some(source(0, 1)),
    )
    .unwrap();
    hub.subscribe_sequenced(
        &issues,
        "repo:o/n/issues",
        SubscribeOptions::new(None, false, None),
        Some(source(0, 1)),
    )
    .unwrap();
    for rx in [&mut all_rx, &mut prs_rx, &mut issues_rx] {
        assert_eq!(frames(rx), ["S0:null"]);
    }
    let ev = sequenced("repo:o/n", EventKind::PrOpened, 1);
    let d = hub.deliver(ev.clone()).unwrap();
    assert_eq!((d.delivered, d.gap_disconnects, d.stale), (2, 0, false));
    let a = all_rx.try_recv().unwrap();
    let p = prs_rx.try_recv().unwrap();
    assert_eq!(a, ev.frame);
    // Serialized once: every recipient shares the broker frame's bytes.
    assert_eq!(a.bytes().as_ptr(), ev.frame.bytes().as_ptr());
    assert_eq!(p.bytes().as_ptr(), ev.frame.bytes().as_ptr());
    assert_eq!(issues_rx.try_recv(), Err(TryRecvError::Empty));
    // A filtered channel's event reaches the repository channel too.
    hub.deliver(sequenced("repo:o/n/issues", EventKind::IssueOpened, 2)).unwrap();
    assert_eq!(frames(&mut all_rx), ["2"]);
    assert_eq!(frames(&mut issues_rx), ["2"]);
    assert_eq!(frames(&mut prs_rx), Vec::<String>::new());
    assert_eq!(hub.stream_head(&Channel::parse("repo:o/n/prs").unwrap()), Some(2));
    assert_eq!(hub.metrics().events_published, 0, "the hub published nothing itself");
}

#[test]
fn deliver_ignores_a_duplicate_or_older_event() {
    let hub = hub();
    let (c, mut rx) = hub.connect().unwrap();
    hub.subscribe_sequenced(
        &c,
        "repo:o/n",
        SubscribeOptions::new(None, false, None),
        Some(source(0, 1)),
    )
    .unwrap();
    hub.deliver(push(1)).unwrap();
    hub.deliver(push(2)).unwrap();
    assert!(hub.deliver(push(2)).unwrap().stale);
    assert!(hub.deliver(push(1)).unwrap().stale);
    assert_eq!(frames(&mut rx), ["S0:null", "1", "2"]);
}

/// The broker's numbering went back (its seq key was evicted or expired): an event at or below
/// the local head that is not the one held there is no duplicate. The stream starts over at it
/// and its subscribers are disconnected, to reconnect and report a gap — before, it was dropped
/// as "stale" and the subscribers silently missed it and everything up to the old head.
#[test]
fn a_seq_that_went_back_restarts_the_stream_and_disconnects_its_subscribers() {
    let hub = hub();
    let (c, mut rx) = hub.connect().unwrap();
    hub.subscribe_sequenced(
        &c,
        "repo:o/n",
        SubscribeOptions::new(None, false, None),
        Some(source(0, 1)),
    )
    .unwrap();
    hub.subscribe_sequenced(
        &c,
        "repo:o/n/prs",
        SubscribeOptions::new(None, false, None),
        Some(source(0, 1)),
    )
    .unwrap();
    for seq in 1..=3 {
        hub.deliver(push(seq)).unwrap();
    }
    assert_eq!(frames(&mut rx), ["S0:null", "S0:null", "1", "2", "3"]);
    // Renumbered from 1: another event with seq 1.
    let mut other = sequenced("repo:o/n", EventKind::PrOpened, 1);
    other.frame = Frame::from_string(other.frame.as_str().replace("\"e1\"", "\"new-1\""));
    let d = hub.deliver(other).unwrap();
    assert!(d.rewound && !d.stale, "{d:?}");
    assert_eq!(d.gap_disconnects, 1, "one client, however many of its channels");
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    assert_eq!(hub.stream_head(&Channel::parse("repo:o/n").unwrap()), Some(1));
    // A client resuming from the old numbering gets a gap, then the new numbering live.
    let (c, mut rx) = hub.connect().unwrap();
    hub.subscribe_sequenced(
        &c,
        "repo:o/n",
        SubscribeOptions::new(Some(&since(3)), false, None),
        Some(source(1, 1)),
    )
    .unwrap();
    assert_eq!(frames(&mut rx), ["S1:false"]);
    hub.deliver(push(2)).unwrap();
    assert_eq!(frames(&mut rx), ["2"]);
}

#[test]
fn subscribe_without_since_starts_after_the_later_of_broker_and_local_head() {
    let hub = hub();
    let (c, mut rx) = hub.connect().unwrap();
    // The broker is at 5; this hub has not received 4 and 5 yet (they are still in flight).
    hub.deliver(push(3)).unwrap();
    let s = hub
        .subscribe_sequenced(
            &c,
            "repo:o/n",
            SubscribeOptions::new(None, false, None),
            Some(source(5, 6)),
        )
        .unwrap();
    assert_eq!((s.seq, s.recovered, s.new), (5, None, true));
    for n in 4..=7 {
        hub.deliver(push(n)).unwrap();
    }
    assert_eq!(frames(&mut rx), ["S5:null", "6", "7"], "4 and 5 precede the subscription");
}

#[test]
fn recovery_replays_the_broker_history_then_live_without_duplicates() {
    let hub = hub();
    let (c, mut rx) = hub.connect().unwrap();
    hub.deliver(push(1)).unwrap();
    // The client saw 2 elsewhere; the broker has 3..=6; this hub is behind (at 1).
    let s = hub
        .subscribe_sequenced(
            &c,
            "repo:o/n",
            SubscribeOptions::new(Some(&since(2)), false, Some(&RequestId::Num(9))),
            Some(source(6, 1)),
        )
        .unwrap();
    assert_eq!((s.seq, s.recovered, s.replayed), (6, Some(true), 4));
    for n in 2..=8 {
        hub.deliver(push(n)).unwrap();
    }
    assert_eq!(frames(&mut rx), ["S6:true", "3", "4", "5", "6", "7", "8"]);
}

#[test]
fn recovery_bridges_events_this_hub_delivered_after_the_broker_read() {
    let hub = hub();
    let (c, mut rx) = hub.connect().unwrap();
    // Read at head 4, then 5 and 6 arrived live here before the subscribe took the lock.
    for n in 1..=6 {
        hub.deliver(push(n)).unwrap();
    }
    let s = hub
        .subscribe_sequenced(
            &c,
            "repo:o/n",
            SubscribeOptions::new(Some(&since(2)), false, None),
            Some(source(4, 3)),
        )
        .unwrap();
    assert_eq!((s.seq, s.recovered), (6, Some(true)));
    hub.deliver(push(7)).unwrap();
    assert_eq!(frames(&mut rx), ["S6:true", "3", "4", "5", "6", "7"]);

    // Without since, the position is simply the local one.
    let (d, mut drx) = hub.connect().unwrap();
    let s = hub
        .subscribe_sequenced(
            &d,
            "repo:o/n",
            SubscribeOptions::new(None, false, None),
            Some(source(4, 5)),
        )
        .unwrap();
    assert_eq!(s.seq, 7);
    hub.deliver(push(8)).unwrap();
    assert_eq!(frames(&mut drx), ["S7:null", "8"]);
}

#[test]
fn recovery_is_a_gap_when_anything_is_missing() {
    let hub = hub();
    let sub = |since_: Since, rec: Option<Recovery>| {
        let (c, mut rx) = hub.connect().unwrap();
        let s = hub
            .subscribe_sequenced(
                &c,
                "repo:o/n",
                SubscribeOptions::new(Some(&since_), false, None),
                rec,
            )
            .unwrap();
        (s, frames(&mut rx))
    };
    // The broker says events are gone.
    let (s, f) = sub(since(1), Some(Recovery { complete: false, ..source(5, 4) }));
    assert_eq!((s.recovered, f), (Some(false), vec!["S5:false".to_owned()]));
    // Another epoch.
    let (s, _) = sub(Since { seq: 1, epoch: "old".into() }, Some(source(5, 2)));
    assert_eq!(s.recovered, Some(false));
    // The broker is unreachable: the local position, and the truth.
    let (s, f) = sub(since(1), None);
    assert_eq!((s.seq, s.recovered, f), (0, Some(false), vec!["S0:false".to_owned()]));
    // A position ahead of the stream.
    let (s, _) = sub(since(9), Some(source(5, 6)));
    assert_eq!(s.recovered, Some(false));
    // Up to date: recovered, nothing to replay.
    let (s, f) = sub(since(5), Some(source(5, 6)));
    assert_eq!((s.recovered, f), (Some(true), vec!["S5:true".to_owned()]));
}

#[test]
fn recovery_is_a_gap_when_the_local_bridge_has_a_hole() {
    let hub = hub();
    hub.deliver(push(1)).unwrap();
    hub.deliver(push(4)).unwrap(); // 2 and 3 never arrived here
    let (c, mut rx) = hub.connect().unwrap();
    let s = hub
        .subscribe_sequenced(
            &c,
            "repo:o/n",
            SubscribeOptions::new(Some(&since(1)), false, None),
            Some(source(2, 2)),
        )
        .unwrap();
    assert_eq!((s.seq, s.recovered), (4, Some(false)));
    assert_eq!(frames(&mut rx), ["S4:false"]);

    let small = EventHub::with_config_and_epoch(HubConfig::default().history_size(0), EPOCH.into());
    small.deliver(push(1)).unwrap();
    small.deliver(push(2)).unwrap();
    let (c, _rx) = small.connect().unwrap();
    let s = small
        .subscribe_sequenced(
            &c,
            "repo:o/n",
            SubscribeOptions::new(Some(&since(0)), false, None),
            Some(source(1, 1)),
        )
        .unwrap();
    assert_eq!(s.recovered, Some(false), "no local history to bridge 2");
}

#[test]
fn a_replay_that_does_not_fit_is_a_gap() {
    let hub = EventHub::with_config_and_epoch(HubConfig::default().queue_capacity(4), EPOCH.into());
    let (c, mut rx) = hub.connect().unwrap();
    let s = hub
        .subscribe_sequenced(
            &c,
            "repo:o/n",
            SubscribeOptions::new(Some(&since(0)), false, None),
            Some(source(10, 1)),
        )
        .unwrap();
    assert_eq!((s.recovered, s.replayed), (Some(false), 0));
    hub.deliver(push(11)).unwrap();
    assert_eq!(frames(&mut rx), ["S10:false", "11"]);
}

#[test]
fn a_seq_jump_disconnects_only_the_subscribers_that_missed_events() {
    let hub = hub();
    let (behind, behind_rx) = hub.connect().unwrap();
    let (ahead, mut ahead_rx) = hub.connect().unwrap();
    hub.subscribe_sequenced(
        &behind,
        "repo:o/n",
        SubscribeOptions::new(None, false, None),
        Some(source(1, 2)),
    )
    .unwrap();
    hub.deliver(push(2)).unwrap();
    // `ahead` subscribed after reading head 4 from the broker: it has everything up to 4.
    hub.subscribe_sequenced(
        &ahead,
        "repo:o/n",
        SubscribeOptions::new(None, false, None),
        Some(source(4, 5)),
    )
    .unwrap();
    let d = hub.deliver(push(5)).unwrap(); // 3 and 4 were lost on the way here
    assert_eq!((d.delivered, d.gap_disconnects), (1, 1));
    assert_eq!(frames(&mut ahead_rx), ["S4:null", "5"]);
    assert_eq!(behind_rx.close_reason(), Some(CloseReason::Disconnected));
    assert!(hub.get_client(&behind.id).is_none());
    assert_eq!(hub.metrics().gap_disconnects, 1);
    assert_eq!(hub.stream_subscribers(&Channel::parse("repo:o/n").unwrap()), 1);
}

#[test]
fn change_epoch_drops_streams_and_disconnects_everyone() {
    let hub = hub();
    let (c, rx) = hub.connect().unwrap();
    hub.subscribe_sequenced(
        &c,
        "repo:o/n",
        SubscribeOptions::new(None, false, None),
        Some(source(0, 1)),
    )
    .unwrap();
    hub.deliver(push(1)).unwrap();
    assert!(!hub.change_epoch(EPOCH), "same epoch: nothing happens");
    assert!(c.is_open());
    assert!(hub.change_epoch("next"));
    assert_eq!(hub.epoch(), "next");
    assert_eq!(rx.close_reason(), Some(CloseReason::Disconnected));
    assert_eq!(hub.connection_count(), 0);
    let m = hub.metrics();
    assert_eq!((m.streams, m.history_size, m.subscriptions), (0, 0, 0));
    // Seqs restart with the new epoch.
    let (d, mut drx) = hub.connect().unwrap();
    match hub.welcome(&d) {
        ServerMessage::Welcome { epoch, .. } => assert_eq!(epoch, "next"),
        other => panic!("{other:?}"),
    }
    hub.subscribe_sequenced(
        &d,
        "repo:o/n",
        SubscribeOptions::new(None, false, None),
        Some(source(0, 1)),
    )
    .unwrap();
    hub.deliver(push(1)).unwrap();
    assert_eq!(frames(&mut drx), ["S0:null", "1"]);
}

#[test]
fn stream_subscribers_counts_every_channel_of_the_stream() {
    let hub = hub();
    let base = Channel::parse("repo:o/n").unwrap();
    assert_eq!(hub.stream_subscribers(&base), 0);
    assert_eq!(hub.stream_head(&base), None);
    let (a, _ra) = hub.connect().unwrap();
    let (b, _rb) = hub.connect().unwrap();
    hub.subscribe_sequenced(&a, "repo:o/n/prs", SubscribeOptions::new(None, false, None), None)
        .unwrap();
    hub.subscribe_sequenced(&b, "repo:o/n", SubscribeOptions::new(None, false, None), None)
        .unwrap();
    hub.subscribe_sequenced(&b, "repo:o/n/issues", SubscribeOptions::new(None, false, None), None)
        .unwrap();
    assert_eq!(hub.stream_subscribers(&base), 3);
    hub.unsubscribe(&b, "repo:o/n").unwrap();
    assert_eq!(hub.stream_subscribers(&Channel::parse("repo:o/n/prs").unwrap()), 2);
    hub.disconnect(&a.id);
    hub.disconnect(&b.id);
    assert_eq!(hub.stream_subscribers(&base), 0);
}

/// The race: live events are delivered on one thread while clients subscribe with `since` on
/// others, each reading the broker's head at an arbitrary moment (after it started receiving the
/// live feed, as a broker subscription guarantees). Every client must see `subscribed`, then
/// exactly the events after its `since`, each once, in order.
#[test]
fn subscribe_racing_live_delivery_has_no_gap_and_no_duplicate() {
    const N: u64 = 400;
    for round in 0..20u64 {
        let hub = Arc::new(EventHub::with_config_and_epoch(
            // History holds the whole run, so however long a subscriber is preempted between
            // reading the broker's head and taking the stream lock, the local bridge is complete
            // (a bridge with a hole is a gap: `recovery_is_a_gap_when_the_local_bridge_has_a_hole`).
            HubConfig::default().history_size(N as usize),
            EPOCH.into(),
        ));
        // The broker: an event exists there before it is delivered to the hub.
        let published = Arc::new(AtomicU64::new(0));
        let start = Arc::new(Barrier::new(4));
        let live = {
            let (hub, published, start) = (hub.clone(), published.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                for n in 1..=N {
                    published.store(n, Ordering::SeqCst);
                    hub.deliver(push(n)).unwrap();
                    if n % 50 == 0 {
                        std::thread::yield_now();
                    }
                }
            })
        };
        let subscribers: Vec<_> = (0..3u64)
            .map(|i| {
                let (hub, published, start) = (hub.clone(), published.clone(), start.clone());
                std::thread::spawn(move || {
                    let (c, rx) = hub.connect().unwrap();
                    start.wait();
                    for _ in 0..(round * 7 + i * 13) % 40 {
                        std::thread::yield_now();
                    }
                    let head = published.load(Ordering::SeqCst);
                    let from = head.saturating_sub((round + i) % 5);
                    let rec = Recovery {
                        head,
                        complete: true,
                        events: (from + 1..=head).map(push).collect(),
                        presence: None,
                    };
                    hub.subscribe_sequenced(
                        &c,
                        "repo:o/n",
                        SubscribeOptions::new(Some(&since(from)), false, None),
                        Some(rec),
                    )
                    .unwrap();
                    (from, rx)
                })
            })
            .collect();
        live.join().unwrap();
        for s in subscribers {
            let (from, mut rx) = s.join().unwrap();
            let got = frames(&mut rx);
            assert!(got[0].starts_with('S') && got[0].ends_with(":true"), "{got:?}");
            let seqs: Vec<u64> = got[1..].iter().map(|s| s.parse().unwrap()).collect();
            let want: Vec<u64> = (from + 1..=N).collect();
            assert_eq!(seqs, want, "round {round}: since {from}");
        }
    }
}
