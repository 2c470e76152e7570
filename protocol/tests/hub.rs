//! The reference hub: slow consumers, connection and subscription caps, duplicate and unheld
//! (un)subscribes, seq order, serialize-once, recovery (and its race with live events),
//! notifications, and the replies of `handle_frame` (id echo, error codes), all pinned by exact
//! frame texts.
#![cfg(feature = "hub")]

use guts_realtime::client::{CloseReason, TryRecvError};
use guts_realtime::{
    decode_client_frame, Channel, ClientReceiver, EventHub, EventKind, Frame, HubClient, HubConfig,
    Notification, NotificationMetadata, NotificationPreferences, NotificationType, NotifyOutcome,
    Published, RealtimeError, RealtimeEvent, ServerMessage,
};
use serde_json::json;
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

const EPOCH: &str = "epoch-1";

fn hub_with(config: HubConfig) -> EventHub {
    EventHub::with_config_and_epoch(config, EPOCH.into())
}

fn drain(rx: &mut ClientReceiver) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(f) = rx.try_recv() {
        out.push(f.as_str().to_owned());
    }
    out
}

fn drain_frames(rx: &mut ClientReceiver) -> Vec<Frame> {
    let mut out = Vec::new();
    while let Ok(f) = rx.try_recv() {
        out.push(f);
    }
    out
}

/// An event with fixed stamps, so its frame text is known exactly.
fn ev(channel: &str, kind: EventKind, n: u64) -> RealtimeEvent {
    RealtimeEvent {
        event_type: "event".into(),
        channel: channel.into(),
        event: kind,
        data: json!({ "n": n }),
        timestamp: 1_700_000_000 + n,
        event_id: format!("ev-{n}"),
        seq: None,
    }
}

/// The exact frame text of `ev(channel, kind, n)` published with `seq`.
fn ev_text(channel: &str, kind: EventKind, n: u64, seq: u64) -> String {
    format!(
        r#"{{"type":"event","channel":"{channel}","event":"{}","data":{{"n":{n}}},"timestamp":{},"event_id":"ev-{n}","seq":{seq}}}"#,
        kind.wire_name(),
        1_700_000_000 + n
    )
}

/// Sends a client frame text through `handle_frame`.
fn send(hub: &EventHub, client: &Arc<HubClient>, text: &str) {
    hub.handle_frame(client, decode_client_frame(text).unwrap_or_else(|e| panic!("{text}: {e:?}")));
}

/// Sends a frame and returns every frame queued to the client afterwards.
fn ask(
    hub: &EventHub,
    client: &Arc<HubClient>,
    rx: &mut ClientReceiver,
    text: &str,
) -> Vec<String> {
    send(hub, client, text);
    drain(rx)
}

fn poll_once<F: Future>(f: F) -> Poll<F::Output> {
    let mut f = std::pin::pin!(f);
    f.as_mut().poll(&mut Context::from_waker(Waker::noop()))
}

// ---------------------------------------------------------------------------------------------
// Slow consumers
// ---------------------------------------------------------------------------------------------

#[test]
fn a_full_queue_disconnects_only_the_stalled_client() {
    let hub = hub_with(HubConfig::default().queue_capacity(4));
    let (stalled, mut stalled_rx) = hub.connect().unwrap();
    let (reader, mut reader_rx) = hub.connect().unwrap();
    send(&hub, &stalled, r#"{"type":"subscribe","channel":"repo:o/n"}"#);
    send(&hub, &reader, r#"{"type":"subscribe","channel":"repo:o/n"}"#);
    assert_eq!(drain(&mut reader_rx), [r#"{"type":"subscribed","channel":"repo:o/n","seq":0}"#]);
    assert_eq!(stalled_rx.len(), 1);

    let mut delivered = Vec::new();
    let mut got = Vec::new();
    for n in 1..=10 {
        let p = hub.publish_event(ev("repo:o/n", EventKind::Push, n)).unwrap();
        assert_eq!(p.seq, n);
        delivered.push(p.delivered);
        got.extend(drain(&mut reader_rx));
    }
    // `subscribed` + 3 events fill the stalled queue; the 4th event overflows it.
    assert_eq!(delivered, [2, 2, 2, 1, 1, 1, 1, 1, 1, 1]);
    let want: Vec<String> = (1..=10).map(|n| ev_text("repo:o/n", EventKind::Push, n, n)).collect();
    assert_eq!(got, want, "the reader got everything, in order");

    assert_eq!(stalled_rx.close_reason(), Some(CloseReason::SlowConsumer));
    assert_eq!(stalled.close_reason(), Some(CloseReason::SlowConsumer));
    assert_eq!(stalled_rx.try_recv(), Err(TryRecvError::Closed), "queued frames are dropped");
    assert_eq!(poll_once(stalled_rx.recv()), Poll::Ready(None));
    assert_eq!(stalled_rx.poll_recv(&mut Context::from_waker(Waker::noop())), Poll::Ready(None));
    assert!(!stalled.is_open());
    assert!(hub.get_client(&stalled.id).is_none());
    assert!(hub.get_client(&reader.id).is_some());
    assert_eq!(hub.connection_count(), 1);
    assert_eq!(stalled.send("x".to_string()).unwrap_err().to_string(), "channel closed");

    let m = hub.metrics();
    assert_eq!(m.slow_consumer_disconnects, 1);
    assert_eq!(m.queue_drops, 1);
    assert_eq!(m.connections, 1);
    assert_eq!(m.subscriptions, 1);
    assert_eq!(m.events_published, 10);
    assert_eq!(m.frames_delivered, 13);
}

#[test]
fn a_reply_that_does_not_fit_disconnects_as_slow_consumer() {
    let hub = hub_with(HubConfig::default().queue_capacity(2));
    let (c, rx) = hub.connect().unwrap();
    send(&hub, &c, r#"{"type":"ping"}"#);
    send(&hub, &c, r#"{"type":"ping"}"#);
    assert!(c.is_open());
    send(&hub, &c, r#"{"type":"ping","id":3}"#);
    assert_eq!(rx.close_reason(), Some(CloseReason::SlowConsumer));
    assert_eq!(hub.connection_count(), 0);
    assert_eq!(hub.metrics().slow_consumer_disconnects, 1);
    // A subscribe on the closed client is refused without a reply.
    assert!(matches!(hub.subscribe(&c, "repo:o/n", None, None), Err(RealtimeError::ChannelClosed)));
}

#[test]
fn a_dropped_receiver_is_disconnected_but_not_counted_as_slow() {
    let hub = hub_with(HubConfig::default());
    let (c, rx) = hub.connect().unwrap();
    hub.subscribe(&c, "repo:o/n", None, None).unwrap();
    drop(rx);
    assert!(!c.is_open());
    let p = hub.publish_event(ev("repo:o/n", EventKind::Push, 1)).unwrap();
    assert_eq!(p, Published { seq: 1, delivered: 0, duplicate: false });
    assert_eq!(hub.connection_count(), 0);
    let m = hub.metrics();
    assert_eq!((m.slow_consumer_disconnects, m.queue_drops, m.subscriptions), (0, 0, 0));
}

#[test]
fn disconnect_closes_the_receiver_and_drops_subscriptions() {
    let hub = hub_with(HubConfig::default());
    let (c, mut rx) = hub.connect().unwrap();
    hub.subscribe(&c, "repo:o/n", None, None).unwrap();
    hub.subscribe(&c, "repo:o/n/prs", None, None).unwrap();
    assert_eq!(hub.metrics().subscriptions, 2);
    hub.disconnect(&c.id);
    assert_eq!(rx.close_reason(), Some(CloseReason::Disconnected));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    assert_eq!(poll_once(rx.recv()), Poll::Ready(None));
    assert_eq!(c.subscription_count(), 0);
    assert_eq!(hub.metrics().subscriptions, 0);
    assert_eq!(hub.publish_event(ev("repo:o/n", EventKind::PrOpened, 1)).unwrap().delivered, 0);
}

#[test]
fn recv_many_takes_the_backlog_at_once() {
    let hub = hub_with(HubConfig::default());
    let (c, mut rx) = hub.connect().unwrap();
    hub.subscribe(&c, "repo:o/n", None, None).unwrap();
    for n in 1..=4 {
        hub.publish_event(ev("repo:o/n", EventKind::Push, n)).unwrap();
    }
    let mut buf = Vec::new();
    let mut cx = Context::from_waker(Waker::noop());
    assert_eq!(rx.poll_recv_many(&mut cx, &mut buf, 3), Poll::Ready(3));
    assert_eq!(poll_once(rx.recv_many(&mut buf, 10)), Poll::Ready(2));
    assert_eq!(rx.poll_recv_many(&mut cx, &mut buf, 10), Poll::Pending);
    let texts: Vec<&str> = buf.iter().map(Frame::as_str).collect();
    let mut want = vec![r#"{"type":"subscribed","channel":"repo:o/n","seq":0}"#.to_owned()];
    want.extend((1..=4).map(|n| ev_text("repo:o/n", EventKind::Push, n, n)));
    assert_eq!(texts, want);
}

// ---------------------------------------------------------------------------------------------
// Connection cap
// ---------------------------------------------------------------------------------------------

#[test]
fn connection_cap() {
    let hub = hub_with(HubConfig::default().max_connections(2));
    let (a, _ra) = hub.connect().unwrap();
    let (_b, _rb) = hub.connect().unwrap();
    let err = hub.connect().unwrap_err();
    assert!(matches!(err, RealtimeError::ConnectionLimit(2)));
    assert_eq!(err.to_string(), "connection limit reached: max 2 connections");
    assert_eq!(
        ServerMessage::error(&err).encode().as_str(),
        r#"{"type":"error","message":"connection limit reached: max 2 connections","code":"rate_limited"}"#
    );
    assert_eq!(hub.metrics().rejected_connections, 1);
    hub.disconnect(&a.id);
    let (_c, _rc) = hub.connect().unwrap();
    assert_eq!(hub.connection_count(), 2);
    let m = hub.metrics();
    assert_eq!((m.connections, m.total_connections, m.rejected_connections), (2, 3, 1));
}

#[test]
fn a_slow_consumer_frees_its_connection_slot() {
    let hub = hub_with(HubConfig::default().max_connections(1).queue_capacity(1));
    let (c, _rx) = hub.connect().unwrap();
    hub.subscribe(&c, "repo:o/n", None, None).unwrap();
    hub.publish_event(ev("repo:o/n", EventKind::Push, 1)).unwrap();
    assert!(!c.is_open());
    assert!(hub.connect().is_ok());
}

#[test]
fn simultaneous_connects_never_exceed_the_cap() {
    const CAP: usize = 8;
    const THREADS: usize = 32;
    let hub = hub_with(HubConfig::default().max_connections(CAP));
    let barrier = Barrier::new(THREADS);
    let ok = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let held: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let r = hub.connect();
                    if r.is_ok() {
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                    r.ok()
                })
            })
            .collect();
        let held: Vec<_> = held.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(held.iter().filter(|h| h.is_some()).count(), CAP);
    });
    assert_eq!(ok.load(Ordering::SeqCst), CAP);
    assert_eq!(hub.metrics().rejected_connections, (THREADS - CAP) as u64);
}

#[test]
fn connect_disconnect_churn_never_exceeds_the_cap() {
    const CAP: usize = 4;
    let hub = hub_with(HubConfig::default().max_connections(CAP));
    let live = AtomicUsize::new(0);
    let max_seen = AtomicUsize::new(0);
    let accepted = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..12 {
            s.spawn(|| {
                for _ in 0..400 {
                    if let Ok((c, _rx)) = hub.connect() {
                        accepted.fetch_add(1, Ordering::SeqCst);
                        let now = live.fetch_add(1, Ordering::SeqCst) + 1;
                        max_seen.fetch_max(now, Ordering::SeqCst);
                        assert!(now <= CAP, "{now} live connections");
                        assert!(hub.connection_count() <= CAP);
                        std::thread::yield_now();
                        live.fetch_sub(1, Ordering::SeqCst);
                        hub.disconnect(&c.id);
                    }
                }
            });
        }
    });
    assert!(max_seen.load(Ordering::SeqCst) <= CAP);
    assert_eq!(hub.connection_count(), 0);
    let m = hub.metrics();
    assert_eq!(m.total_connections, accepted.load(Ordering::SeqCst) as u64);
    assert_eq!(m.total_connections + m.rejected_connections, 12 * 400);
}

// ---------------------------------------------------------------------------------------------
// Subscriptions
// ---------------------------------------------------------------------------------------------

#[test]
fn subscription_cap_and_resubscribe_at_the_cap() {
    let hub = hub_with(HubConfig::default());
    let (c, mut rx) = hub.connect().unwrap();
    for i in 0..100 {
        let text = format!(r#"{{"type":"subscribe","channel":"user:u{i}","id":{i}}}"#);
        assert_eq!(
            ask(&hub, &c, &mut rx, &text),
            [format!(r#"{{"type":"subscribed","channel":"user:u{i}","seq":0,"id":{i}}}"#)]
        );
    }
    assert_eq!(
        ask(&hub, &c, &mut rx, r#"{"type":"subscribe","channel":"user:u100","id":100}"#),
        [
            r#"{"type":"error","message":"subscription limit exceeded: max 100 subscriptions","code":"subscription_limit","id":100}"#
        ]
    );
    assert_eq!(
        ask(&hub, &c, &mut rx, r#"{"type":"subscribe","channel":"user:u5","id":"again"}"#),
        [r#"{"type":"subscribed","channel":"user:u5","seq":0,"id":"again"}"#]
    );
    assert_eq!(c.subscription_count(), 100);
    assert_eq!(hub.stats().total_subscriptions, 100);
    // A failed subscribe left no trace: user:u100 receives nothing.
    hub.notify(note("u100", NotificationType::Mention, "n")).unwrap();
    assert_eq!(drain(&mut rx), Vec::<String>::new());
    // Making room lets the next one in.
    assert_eq!(
        ask(&hub, &c, &mut rx, r#"{"type":"unsubscribe","channel":"user:u0"}"#),
        [r#"{"type":"unsubscribed","channel":"user:u0"}"#]
    );
    assert_eq!(
        ask(&hub, &c, &mut rx, r#"{"type":"subscribe","channel":"user:u100"}"#),
        [r#"{"type":"subscribed","channel":"user:u100","seq":1}"#]
    );
    let m = hub.metrics();
    assert_eq!((m.subscriptions, m.total_subscriptions), (100, 101));
}

#[test]
fn duplicate_subscribe_replies_again_and_counts_once() {
    let hub = hub_with(HubConfig::default());
    let (c, mut rx) = hub.connect().unwrap();
    let sub = r#"{"type":"subscribe","channel":"repo:o/n","id":1}"#;
    let reply = [r#"{"type":"subscribed","channel":"repo:o/n","seq":0,"id":1}"#];
    assert_eq!(ask(&hub, &c, &mut rx, sub), reply);
    assert_eq!(ask(&hub, &c, &mut rx, sub), reply);
    assert_eq!(hub.stats().total_subscriptions, 1);
    assert_eq!(hub.metrics().subscriptions, 1);
    let s = hub.subscribe(&c, "repo:o/n", None, None).unwrap();
    assert!(!s.new);
    drain(&mut rx);
    assert_eq!(hub.publish_event(ev("repo:o/n", EventKind::Push, 1)).unwrap().delivered, 1);
    assert_eq!(drain(&mut rx), [ev_text("repo:o/n", EventKind::Push, 1, 1)]);
}

#[test]
fn unsubscribe_of_an_unheld_channel_replies_unsubscribed() {
    let hub = hub_with(HubConfig::default());
    let (c, mut rx) = hub.connect().unwrap();
    assert_eq!(
        ask(&hub, &c, &mut rx, r#"{"type":"unsubscribe","channel":"repo:never/held","id":1}"#),
        [r#"{"type":"unsubscribed","channel":"repo:never/held","id":1}"#]
    );
    send(&hub, &c, r#"{"type":"subscribe","channel":"repo:o/n"}"#);
    drain(&mut rx);
    let unsub = r#"{"type":"unsubscribe","channel":"repo:o/n","id":"u"}"#;
    let reply = [r#"{"type":"unsubscribed","channel":"repo:o/n","id":"u"}"#];
    assert_eq!(ask(&hub, &c, &mut rx, unsub), reply);
    assert_eq!(ask(&hub, &c, &mut rx, unsub), reply);
    let m = hub.metrics();
    assert_eq!((m.subscriptions, m.total_subscriptions), (0, 1));
    assert!(!hub.unsubscribe(&c, "repo:o/n").unwrap().1);
}

// ---------------------------------------------------------------------------------------------
// seq and serialize-once
// ---------------------------------------------------------------------------------------------

fn seq_of(text: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    v["seq"].as_u64().unwrap_or_else(|| panic!("no seq: {text}"))
}

#[test]
fn seq_is_strictly_increasing_per_stream_under_concurrent_publishers() {
    let hub = hub_with(HubConfig::default().queue_capacity(100_000));
    let streams = ["repo:a/b", "repo:c/d", "user:u", "org:g"];
    let mut subs = Vec::new();
    for s in streams {
        let (c, mut rx) = hub.connect().unwrap();
        hub.subscribe(&c, s, None, None).unwrap();
        drain(&mut rx);
        subs.push((c, rx));
    }
    // Publish on every stream (repo:a/b also through its filtered channels) from 4 threads.
    let channels = ["repo:a/b", "repo:a/b/prs", "repo:a/b/issues", "repo:c/d", "user:u", "org:g"];
    let published: Vec<Vec<(usize, u64)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4u64)
            .map(|t| {
                let hub = &hub;
                s.spawn(move || {
                    let mut mine = Vec::new();
                    for i in 0..300u64 {
                        let ci = ((t + i) % channels.len() as u64) as usize;
                        let p = hub
                            .publish_event(ev(channels[ci], EventKind::PrOpened, t * 1000 + i))
                            .unwrap();
                        mine.push((ci, p.seq));
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let all: Vec<(usize, u64)> = published.into_iter().flatten().collect();
    let seqs: BTreeSet<u64> = all.iter().map(|p| p.1).collect();
    assert_eq!(seqs.len(), 1200, "every seq is unique");
    assert_eq!(seqs, (1..=1200).collect::<BTreeSet<u64>>());
    for (si, (_, rx)) in subs.iter_mut().enumerate() {
        let got: Vec<u64> = drain(rx).iter().map(|t| seq_of(t)).collect();
        assert!(got.windows(2).all(|w| w[0] < w[1]), "{}: {got:?}", streams[si]);
        // Exactly the seqs published on this stream.
        let want: BTreeSet<u64> = all
            .iter()
            .filter(|(ci, _)| match si {
                0 => *ci <= 2,
                _ => *ci == si + 2,
            })
            .map(|p| p.1)
            .collect();
        assert_eq!(got.iter().copied().collect::<BTreeSet<u64>>(), want, "{}", streams[si]);
        assert_eq!(got.len(), want.len());
    }
}

#[test]
fn an_event_is_serialized_once_for_all_recipients_and_history() {
    let hub = hub_with(HubConfig::default());
    let mut rxs = Vec::new();
    for subs in [&["repo:o/n"][..], &["repo:o/n/prs"], &["repo:o/n", "repo:o/n/prs"]] {
        let (c, mut rx) = hub.connect().unwrap();
        for s in subs {
            hub.subscribe(&c, s, None, None).unwrap();
        }
        drain(&mut rx);
        rxs.push(rx);
    }
    let p = hub.publish_event(ev("repo:o/n", EventKind::PrOpened, 1)).unwrap();
    assert_eq!(p.delivered, 3);
    let frames: Vec<Frame> = rxs.iter_mut().flat_map(drain_frames).collect();
    assert_eq!(frames.len(), 3);
    let ptr = frames[0].bytes().as_ptr();
    for f in &frames {
        assert_eq!(f.bytes().as_ptr(), ptr, "one shared buffer");
        assert_eq!(f.as_str(), ev_text("repo:o/n", EventKind::PrOpened, 1, 1));
    }
    // The replay of a recovering client shares it too.
    let (c, mut rx) = hub.connect().unwrap();
    hub.subscribe(
        &c,
        "repo:o/n",
        Some(&guts_realtime::Since { seq: 0, epoch: EPOCH.into() }),
        None,
    )
    .unwrap();
    let replay = drain_frames(&mut rx);
    assert_eq!(replay.len(), 2);
    assert_eq!(replay[1].bytes().as_ptr(), ptr);
}

// ---------------------------------------------------------------------------------------------
// Recovery
// ---------------------------------------------------------------------------------------------

/// A hub where one client saw 5 events of `repo:o/n`, then left; returns their frame texts.
fn five_events(config: HubConfig) -> (EventHub, Vec<String>) {
    let hub = hub_with(config);
    let (c, mut rx) = hub.connect().unwrap();
    assert_eq!(
        ask(&hub, &c, &mut rx, r#"{"type":"subscribe","channel":"repo:o/n","id":1}"#),
        [r#"{"type":"subscribed","channel":"repo:o/n","seq":0,"id":1}"#]
    );
    let mut seen = Vec::new();
    for n in 1..=5 {
        let p = hub.publish_event(ev("repo:o/n", EventKind::Push, n)).unwrap();
        assert_eq!(p.seq, n);
        seen.extend(drain(&mut rx));
    }
    let want: Vec<String> = (1..=5).map(|n| ev_text("repo:o/n", EventKind::Push, n, n)).collect();
    assert_eq!(seen, want);
    hub.disconnect(&c.id);
    (hub, seen)
}

#[test]
fn recovery_replays_exactly_the_missed_events_in_order() {
    let (hub, seen) = five_events(HubConfig::default());
    let (c, mut rx) = hub.connect().unwrap();
    let got = ask(
        &hub,
        &c,
        &mut rx,
        r#"{"type":"subscribe","channel":"repo:o/n","since":{"seq":2,"epoch":"epoch-1"},"id":"r"}"#,
    );
    let mut want =
        vec![r#"{"type":"subscribed","channel":"repo:o/n","seq":5,"recovered":true,"id":"r"}"#
            .to_owned()];
    want.extend_from_slice(&seen[2..]);
    assert_eq!(got, want);
    assert_eq!(hub.metrics().frames_replayed, 3);
    // Then live events, without duplicates.
    hub.publish_event(ev("repo:o/n", EventKind::Push, 6)).unwrap();
    assert_eq!(drain(&mut rx), [ev_text("repo:o/n", EventKind::Push, 6, 6)]);
}

#[test]
fn recovery_edges() {
    let (hub, seen) = five_events(HubConfig::default());
    let (c, mut rx) = hub.connect().unwrap();
    // Up to date: recovered, nothing to replay.
    assert_eq!(
        ask(
            &hub,
            &c,
            &mut rx,
            r#"{"type":"subscribe","channel":"repo:o/n","since":{"seq":5,"epoch":"epoch-1"}}"#
        ),
        [r#"{"type":"subscribed","channel":"repo:o/n","seq":5,"recovered":true}"#]
    );
    // From the start: everything.
    let (c2, mut rx2) = hub.connect().unwrap();
    let got = ask(
        &hub,
        &c2,
        &mut rx2,
        r#"{"type":"subscribe","channel":"repo:o/n","since":{"seq":0,"epoch":"epoch-1"}}"#,
    );
    let mut want =
        vec![r#"{"type":"subscribed","channel":"repo:o/n","seq":5,"recovered":true}"#.to_owned()];
    want.extend_from_slice(&seen);
    assert_eq!(got, want);
    // From the future: a gap.
    let (c3, mut rx3) = hub.connect().unwrap();
    assert_eq!(
        ask(
            &hub,
            &c3,
            &mut rx3,
            r#"{"type":"subscribe","channel":"repo:o/n","since":{"seq":6,"epoch":"epoch-1"}}"#
        ),
        [r#"{"type":"subscribed","channel":"repo:o/n","seq":5,"recovered":false}"#]
    );
    // Re-subscribing a held channel with since replays again.
    assert_eq!(
        ask(
            &hub,
            &c,
            &mut rx,
            r#"{"type":"subscribe","channel":"repo:o/n","since":{"seq":4,"epoch":"epoch-1"},"id":2}"#
        ),
        [
            r#"{"type":"subscribed","channel":"repo:o/n","seq":5,"recovered":true,"id":2}"#,
            seen[4].as_str()
        ]
    );
}

#[test]
fn recovery_with_a_wrong_epoch_is_a_gap() {
    let (hub, _) = five_events(HubConfig::default());
    let (c, mut rx) = hub.connect().unwrap();
    assert_eq!(
        ask(
            &hub,
            &c,
            &mut rx,
            r#"{"type":"subscribe","channel":"repo:o/n","since":{"seq":2,"epoch":"epoch-0"},"id":3}"#
        ),
        [r#"{"type":"subscribed","channel":"repo:o/n","seq":5,"recovered":false,"id":3}"#]
    );
    assert_eq!(hub.metrics().frames_replayed, 0);
    hub.publish_event(ev("repo:o/n", EventKind::Push, 6)).unwrap();
    assert_eq!(drain(&mut rx), [ev_text("repo:o/n", EventKind::Push, 6, 6)]);
}

#[test]
fn recovery_older_than_the_history_is_a_gap() {
    let (hub, seen) = five_events(HubConfig::default().history_size(3));
    assert_eq!(hub.metrics().history_size, 3);
    let (c, mut rx) = hub.connect().unwrap();
    // History holds seqs 3..=5: since=1 misses seq 2.
    assert_eq!(
        ask(
            &hub,
            &c,
            &mut rx,
            r#"{"type":"subscribe","channel":"repo:o/n","since":{"seq":1,"epoch":"epoch-1"}}"#
        ),
        [r#"{"type":"subscribed","channel":"repo:o/n","seq":5,"recovered":false}"#]
    );
    // since=2 needs exactly 3..=5.
    let (c2, mut rx2) = hub.connect().unwrap();
    let got = ask(
        &hub,
        &c2,
        &mut rx2,
        r#"{"type":"subscribe","channel":"repo:o/n","since":{"seq":2,"epoch":"epoch-1"}}"#,
    );
    let mut want =
        vec![r#"{"type":"subscribed","channel":"repo:o/n","seq":5,"recovered":true}"#.to_owned()];
    want.extend_from_slice(&seen[2..]);
    assert_eq!(got, want);
}

#[test]
fn recovery_past_the_history_ttl_is_a_gap() {
    let (hub, _) = five_events(HubConfig::default().history_ttl(Duration::from_millis(1)));
    std::thread::sleep(Duration::from_millis(20));
    let (c, mut rx) = hub.connect().unwrap();
    assert_eq!(
        ask(
            &hub,
            &c,
            &mut rx,
            r#"{"type":"subscribe","channel":"repo:o/n","since":{"seq":4,"epoch":"epoch-1"}}"#
        ),
        [r#"{"type":"subscribed","channel":"repo:o/n","seq":5,"recovered":false}"#]
    );
    assert_eq!(hub.metrics().history_size, 0);
}

#[test]
fn recovery_with_history_disabled_is_a_gap_unless_up_to_date() {
    let (hub, _) = five_events(HubConfig::default().history_size(0));
    let (c, mut rx) = hub.connect().unwrap();
    assert_eq!(
        ask(
            &hub,
            &c,
            &mut rx,
            r#"{"type":"subscribe","channel":"repo:o/n","since":{"seq":4,"epoch":"epoch-1"}}"#
        ),
        [r#"{"type":"subscribed","channel":"repo:o/n","seq":5,"recovered":false}"#]
    );
    assert_eq!(
        ask(
            &hub,
            &c,
            &mut rx,
            r#"{"type":"subscribe","channel":"repo:o/n","since":{"seq":5,"epoch":"epoch-1"}}"#
        ),
        [r#"{"type":"subscribed","channel":"repo:o/n","seq":5,"recovered":true}"#]
    );
}

#[test]
fn recovery_on_a_filtered_channel_replays_only_what_it_receives() {
    let hub = hub_with(HubConfig::default());
    let (c, mut rx) = hub.connect().unwrap();
    send(&hub, &c, r#"{"type":"subscribe","channel":"repo:o/n"}"#);
    let kinds = [
        ("repo:o/n", EventKind::Push),
        ("repo:o/n", EventKind::PrOpened),
        ("repo:o/n", EventKind::IssueOpened),
        ("repo:o/n/prs", EventKind::Push),
        ("repo:o/n/issues", EventKind::IssueClosed),
        ("repo:o/n", EventKind::PrMerged),
    ];
    for (n, (ch, k)) in kinds.iter().enumerate() {
        hub.publish_event(ev(ch, *k, n as u64 + 1)).unwrap();
    }
    assert_eq!(drain(&mut rx).len(), 7);
    let (c2, mut rx2) = hub.connect().unwrap();
    assert_eq!(
        ask(
            &hub,
            &c2,
            &mut rx2,
            r#"{"type":"subscribe","channel":"repo:o/n/prs","since":{"seq":0,"epoch":"epoch-1"}}"#
        ),
        [
            r#"{"type":"subscribed","channel":"repo:o/n/prs","seq":6,"recovered":true}"#.to_owned(),
            ev_text("repo:o/n", EventKind::PrOpened, 2, 2),
            ev_text("repo:o/n/prs", EventKind::Push, 4, 4),
            ev_text("repo:o/n", EventKind::PrMerged, 6, 6),
        ]
    );
}

#[test]
fn a_replay_that_does_not_fit_the_queue_is_a_gap_not_a_disconnect() {
    let hub = hub_with(HubConfig::default().queue_capacity(4));
    let (c, mut rx) = hub.connect().unwrap();
    send(&hub, &c, r#"{"type":"subscribe","channel":"repo:o/n"}"#);
    drain(&mut rx);
    for n in 1..=6 {
        hub.publish_event(ev("repo:o/n", EventKind::Push, n)).unwrap();
        drain(&mut rx);
    }
    // 6 missed events + the reply do not fit in 4 frames.
    let (c2, mut rx2) = hub.connect().unwrap();
    assert_eq!(
        ask(
            &hub,
            &c2,
            &mut rx2,
            r#"{"type":"subscribe","channel":"repo:o/n","since":{"seq":0,"epoch":"epoch-1"},"id":1}"#
        ),
        [r#"{"type":"subscribed","channel":"repo:o/n","seq":6,"recovered":false,"id":1}"#]
    );
    assert!(c2.is_open());
    // 3 missed events + the reply fit exactly.
    let (c3, mut rx3) = hub.connect().unwrap();
    let got = ask(
        &hub,
        &c3,
        &mut rx3,
        r#"{"type":"subscribe","channel":"repo:o/n","since":{"seq":3,"epoch":"epoch-1"}}"#,
    );
    let mut want =
        vec![r#"{"type":"subscribed","channel":"repo:o/n","seq":6,"recovered":true}"#.to_owned()];
    want.extend((4..=6).map(|n| ev_text("repo:o/n", EventKind::Push, n, n)));
    assert_eq!(got, want);
    assert_eq!(hub.metrics().slow_consumer_disconnects, 0);
    hub.publish_event(ev("repo:o/n", EventKind::Push, 7)).unwrap();
    assert_eq!(drain(&mut rx2), [ev_text("repo:o/n", EventKind::Push, 7, 7)]);
}

#[test]
fn an_evicted_stream_cannot_be_recovered() {
    let hub = hub_with(HubConfig::default().max_streams(2));
    hub.publish_event(ev("repo:a/a", EventKind::Push, 1)).unwrap();
    hub.publish_event(ev("repo:b/b", EventKind::Push, 2)).unwrap();
    hub.publish_event(ev("repo:c/c", EventKind::Push, 3)).unwrap();
    let m = hub.metrics();
    assert_eq!((m.streams, m.history_size), (2, 2), "repo:a/a was evicted with its history");
    let (c, mut rx) = hub.connect().unwrap();
    assert_eq!(
        ask(
            &hub,
            &c,
            &mut rx,
            r#"{"type":"subscribe","channel":"repo:a/a","since":{"seq":0,"epoch":"epoch-1"}}"#
        ),
        [r#"{"type":"subscribed","channel":"repo:a/a","seq":1,"recovered":false}"#]
    );
    // Made again, repo:a/a continues at its old head: a client that had seq 1 has no gap.
    let (c1, mut rx1) = hub.connect().unwrap();
    assert_eq!(
        ask(
            &hub,
            &c1,
            &mut rx1,
            r#"{"type":"subscribe","channel":"repo:a/a","since":{"seq":1,"epoch":"epoch-1"}}"#
        ),
        [r#"{"type":"subscribed","channel":"repo:a/a","seq":1,"recovered":true}"#]
    );
    hub.disconnect(&c1.id);
    // repo:c/c is still there (it was created after seq 2: an older position is not provably
    // complete, so it is a gap).
    let (c2, mut rx2) = hub.connect().unwrap();
    assert_eq!(
        ask(
            &hub,
            &c2,
            &mut rx2,
            r#"{"type":"subscribe","channel":"repo:c/c","since":{"seq":1,"epoch":"epoch-1"}}"#
        ),
        [r#"{"type":"subscribed","channel":"repo:c/c","seq":3,"recovered":false}"#]
    );
    assert_eq!(
        ask(
            &hub,
            &c2,
            &mut rx2,
            r#"{"type":"subscribe","channel":"repo:c/c","since":{"seq":2,"epoch":"epoch-1"}}"#
        ),
        [
            r#"{"type":"subscribed","channel":"repo:c/c","seq":3,"recovered":true}"#.to_owned(),
            ev_text("repo:c/c", EventKind::Push, 3, 3)
        ]
    );
    // Both streams now have subscribers: a third can be neither created nor published to.
    let (c3, mut rx3) = hub.connect().unwrap();
    assert_eq!(
        ask(&hub, &c3, &mut rx3, r#"{"type":"subscribe","channel":"repo:d/d","id":9}"#),
        [
            r#"{"type":"error","message":"rate limited: stream limit reached: max 2 streams","code":"rate_limited","id":9}"#
        ]
    );
    assert_eq!(c3.subscription_count(), 0);
    // A publisher is not refused while a stream made by subscribers alone exists: repo:a/a
    // (made again by `c`'s subscribe, nothing published since) goes, and `c` is disconnected.
    hub.publish_event(ev("repo:d/d", EventKind::Push, 4)).unwrap();
    assert!(!c.is_open());
    // Now every stream has events and subscribers: a new one can be neither created nor
    // published to.
    assert_eq!(
        ask(&hub, &c3, &mut rx3, r#"{"type":"subscribe","channel":"repo:d/d"}"#),
        [r#"{"type":"subscribed","channel":"repo:d/d","seq":4}"#]
    );
    let err = hub.publish_event(ev("repo:e/e", EventKind::Push, 5)).unwrap_err();
    assert_eq!(err.to_string(), "rate limited: stream limit reached: max 2 streams");
}

/// Regression: a stream created after other streams' events started at head 0, below its floor,
/// so a client resuming from the `seq` of its `subscribed` reply always got `recovered:false`.
#[test]
fn a_quiet_stream_in_a_busy_hub_is_recoverable_from_its_subscribed_seq() {
    let hub = hub_with(HubConfig::default());
    for n in 1..=10 {
        hub.publish_event(ev("repo:busy/x", EventKind::Push, n)).unwrap();
    }
    let (c, mut rx) = hub.connect().unwrap();
    assert_eq!(
        ask(&hub, &c, &mut rx, r#"{"type":"subscribe","channel":"repo:o/n"}"#),
        [r#"{"type":"subscribed","channel":"repo:o/n","seq":10}"#]
    );
    hub.disconnect(&c.id);
    // Nothing happened on repo:o/n: resuming from 10 is complete.
    let (c, mut rx) = hub.connect().unwrap();
    assert_eq!(
        ask(
            &hub,
            &c,
            &mut rx,
            r#"{"type":"subscribe","channel":"repo:o/n","since":{"seq":10,"epoch":"epoch-1"}}"#
        ),
        [r#"{"type":"subscribed","channel":"repo:o/n","seq":10,"recovered":true}"#]
    );
    hub.disconnect(&c.id);
    hub.publish_event(ev("repo:busy/x", EventKind::Push, 11)).unwrap();
    hub.publish_event(ev("repo:o/n", EventKind::Push, 12)).unwrap();
    hub.publish_event(ev("repo:o/n", EventKind::Push, 13)).unwrap();
    // Two events happened: both are replayed.
    let (c, mut rx) = hub.connect().unwrap();
    assert_eq!(
        ask(
            &hub,
            &c,
            &mut rx,
            r#"{"type":"subscribe","channel":"repo:o/n","since":{"seq":10,"epoch":"epoch-1"}}"#
        ),
        [
            r#"{"type":"subscribed","channel":"repo:o/n","seq":13,"recovered":true}"#.to_owned(),
            ev_text("repo:o/n", EventKind::Push, 12, 12),
            ev_text("repo:o/n", EventKind::Push, 13, 13),
        ]
    );
}

/// Publishers run while clients subscribe with `since`: every client sees `subscribed`
/// (recovered) and then every seq after its `since`, each exactly once, in order.
#[test]
fn replay_and_live_events_never_interleave_wrongly() {
    const EVENTS: u64 = 4000;
    let hub = hub_with(
        HubConfig::default()
            .history_size(100_000)
            .queue_capacity(1_000_000)
            .max_replay_events(100_000)
            .max_replay_bytes(usize::MAX),
    );
    // Create the stream before the first seq, so every since >= 0 is recoverable.
    let (keeper, _krx) = hub.connect().unwrap();
    hub.subscribe(&keeper, "repo:o/n", None, None).unwrap();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for n in 1..=EVENTS {
                let kind = if n % 3 == 0 { EventKind::PrOpened } else { EventKind::Push };
                let ch = if n % 5 == 0 { "repo:o/n/prs" } else { "repo:o/n" };
                hub.publish_event(ev(ch, kind, n)).unwrap();
            }
            done.store(true, Ordering::SeqCst);
        });
        let subscribers: Vec<_> = (0..6u64)
            .map(|i| {
                let hub = &hub;
                let done = &done;
                s.spawn(move || {
                    // Wait for some progress, then recover from halfway back.
                    let target = (i + 1) * EVENTS / 8;
                    while hub.metrics().events_published < target && !done.load(Ordering::SeqCst) {
                        std::thread::yield_now();
                    }
                    let since = hub.metrics().events_published / 2;
                    let (c, mut rx) = hub.connect().unwrap();
                    let text = format!(
                        r#"{{"type":"subscribe","channel":"repo:o/n","since":{{"seq":{since},"epoch":"{EPOCH}"}},"id":{i}}}"#
                    );
                    send(hub, &c, &text);
                    let mut got = Vec::new();
                    loop {
                        let finished = done.load(Ordering::SeqCst);
                        got.extend(drain(&mut rx));
                        if finished {
                            got.extend(drain(&mut rx));
                            break;
                        }
                        std::thread::yield_now();
                    }
                    (since, got)
                })
            })
            .collect();
        for (i, h) in subscribers.into_iter().enumerate() {
            let (since, got) = h.join().unwrap();
            let head = {
                let v: serde_json::Value = serde_json::from_str(&got[0]).unwrap();
                v["seq"].as_u64().unwrap()
            };
            assert!(head >= since);
            assert_eq!(
                got[0],
                format!(
                    r#"{{"type":"subscribed","channel":"repo:o/n","seq":{head},"recovered":true,"id":{i}}}"#
                )
            );
            let seqs: Vec<u64> = got[1..].iter().map(|t| seq_of(t)).collect();
            let want: Vec<u64> = (since + 1..=EVENTS).collect();
            assert_eq!(seqs, want, "subscriber {i} (since {since}, head {head})");
            // Each frame is the event with that seq.
            for (t, seq) in got[1..].iter().zip(since + 1..) {
                let kind = if seq % 3 == 0 { EventKind::PrOpened } else { EventKind::Push };
                let ch = if seq % 5 == 0 { "repo:o/n/prs" } else { "repo:o/n" };
                assert_eq!(*t, ev_text(ch, kind, seq, seq));
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Notifications
// ---------------------------------------------------------------------------------------------

fn note(user: &str, t: NotificationType, id: &str) -> Notification {
    Notification {
        id: id.into(),
        user_id: user.into(),
        notification_type: t,
        title: "t".into(),
        body: "b".into(),
        url: None,
        read: false,
        created_at: 1_700_000_000,
        metadata: NotificationMetadata::default(),
    }
}

#[test]
fn notifications_follow_preferences() {
    let hub = hub_with(HubConfig::default());
    let (c, mut rx) = hub.connect().unwrap();
    let (other, mut other_rx) = hub.connect().unwrap();
    send(&hub, &c, r#"{"type":"subscribe","channel":"user:alice"}"#);
    send(&hub, &other, r#"{"type":"subscribe","channel":"repo:alice/app"}"#);
    send(&hub, &other, r#"{"type":"subscribe","channel":"user:bob"}"#);
    drain(&mut rx);
    drain(&mut other_rx);

    // Defaults: mention is delivered, push is not.
    let out = hub.notify(note("alice", NotificationType::Mention, "n-1")).unwrap();
    assert_eq!(out, NotifyOutcome::Delivered(Published { seq: 1, delivered: 1, duplicate: false }));
    assert_eq!(
        drain(&mut rx),
        [
            r#"{"type":"notification","channel":"user:alice","notification":{"id":"n-1","user_id":"alice","notification_type":"mention","title":"t","body":"b","url":null,"read":false,"created_at":1700000000,"metadata":{}},"seq":1}"#
        ]
    );
    assert_eq!(
        hub.notify(note("alice", NotificationType::Push, "n-2")).unwrap(),
        NotifyOutcome::Suppressed
    );
    assert_eq!(drain(&mut rx), Vec::<String>::new());
    assert_eq!(hub.stats().total_events, 1);

    // Preferences change it.
    let prefs = NotificationPreferences {
        user_id: "alice".into(),
        enabled_types: vec![NotificationType::Push],
        email_enabled: false,
        push_enabled: true,
    };
    hub.set_preferences(prefs.clone());
    assert_eq!(hub.preferences("alice"), prefs);
    assert_eq!(hub.preferences("bob"), NotificationPreferences::for_user("bob"));
    let n = note("alice", NotificationType::Push, "n-3")
        .with_url("https://guts.example/alice/app")
        .with_metadata(NotificationMetadata {
            repo_key: Some("alice/app".into()),
            actor: Some("bob".into()),
            ..Default::default()
        });
    assert_eq!(
        hub.notify(n).unwrap(),
        NotifyOutcome::Delivered(Published { seq: 2, delivered: 1, duplicate: false })
    );
    assert_eq!(
        drain(&mut rx),
        [
            r#"{"type":"notification","channel":"user:alice","notification":{"id":"n-3","user_id":"alice","notification_type":"push","title":"t","body":"b","url":"https://guts.example/alice/app","read":false,"created_at":1700000000,"metadata":{"repo_key":"alice/app","actor":"bob"}},"seq":2}"#
        ]
    );
    assert_eq!(
        hub.notify(note("alice", NotificationType::Mention, "n-4")).unwrap(),
        NotifyOutcome::Suppressed
    );
    assert_eq!(drain(&mut rx), Vec::<String>::new());

    // Nobody else got anything; a user with nobody listening still gets a seq.
    assert_eq!(drain(&mut other_rx), Vec::<String>::new());
    assert_eq!(
        hub.notify(note("carol", NotificationType::Mention, "n-5")).unwrap(),
        NotifyOutcome::Delivered(Published { seq: 3, delivered: 0, duplicate: false })
    );
    // Not a valid user channel.
    assert_eq!(
        hub.notify(note("a/b", NotificationType::Mention, "n-6")).unwrap_err().to_string(),
        r#"invalid channel: user name may not contain '/': "user:a/b""#
    );
}

#[test]
fn notifications_are_recoverable() {
    let hub = hub_with(HubConfig::default());
    hub.notify(note("alice", NotificationType::Mention, "n-1")).unwrap();
    hub.notify(note("alice", NotificationType::Assigned, "n-2")).unwrap();
    let (c, mut rx) = hub.connect().unwrap();
    assert_eq!(
        ask(
            &hub,
            &c,
            &mut rx,
            r#"{"type":"subscribe","channel":"user:alice","since":{"seq":1,"epoch":"epoch-1"}}"#
        ),
        [
            r#"{"type":"subscribed","channel":"user:alice","seq":2,"recovered":true}"#,
            r#"{"type":"notification","channel":"user:alice","notification":{"id":"n-2","user_id":"alice","notification_type":"assigned","title":"t","body":"b","url":null,"read":false,"created_at":1700000000,"metadata":{}},"seq":2}"#
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// handle_frame: replies, id echo, error codes
// ---------------------------------------------------------------------------------------------

#[test]
fn handle_frame_echoes_ids_and_error_codes() {
    let hub = hub_with(HubConfig::default());
    let (c, mut rx) = hub.connect().unwrap();
    let cases: &[(&str, &str)] = &[
        (r#"{"type":"ping"}"#, r#"{"type":"pong"}"#),
        (r#"{"type":"ping","id":7}"#, r#"{"type":"pong","id":7}"#),
        (r#"{"type":"ping","id":"p-1"}"#, r#"{"type":"pong","id":"p-1"}"#),
        (
            r#"{"type":"subscribe","channel":"repo:alice","id":7}"#,
            r#"{"type":"error","message":"invalid channel: repository channel requires owner/name: \"repo:alice\"","code":"invalid_channel","id":7}"#,
        ),
        (
            r#"{"type":"subscribe","channel":"repo:a/b/commits","id":"s"}"#,
            r#"{"type":"error","message":"invalid channel: unknown repository filter \"commits\" (expected prs or issues): \"repo:a/b/commits\"","code":"invalid_channel","id":"s"}"#,
        ),
        (
            r#"{"type":"unsubscribe","channel":"user:a/b","id":8}"#,
            r#"{"type":"error","message":"invalid channel: user name may not contain '/': \"user:a/b\"","code":"invalid_channel","id":8}"#,
        ),
        (
            r#"{"type":"auth","token":"t","id":3}"#,
            r#"{"type":"error","message":"unauthenticated: this hub has no authenticator; the server layer handles auth","code":"unauthenticated","id":3}"#,
        ),
        (
            r#"{"type":"publish","channel":"repo:a","event":"push","data":{},"id":4}"#,
            r#"{"type":"error","message":"invalid channel: repository channel requires owner/name: \"repo:a\"","code":"invalid_channel","id":4}"#,
        ),
        (
            r#"{"type":"subscribe","channel":"repo:a/b","since":{"seq":0,"epoch":"x"}}"#,
            r#"{"type":"subscribed","channel":"repo:a/b","seq":0,"recovered":false}"#,
        ),
        // `since` on another command is ignored.
        (r#"{"type":"ping","since":{"seq":0,"epoch":"x"},"id":0}"#, r#"{"type":"pong","id":0}"#),
    ];
    for (sent, reply) in cases {
        assert_eq!(ask(&hub, &c, &mut rx, sent), [*reply], "sent {sent}");
    }
    assert!(c.is_open());
}

#[test]
fn publish_replies_after_the_event_it_fans_out() {
    let hub = hub_with(HubConfig::default());
    let (c, mut rx) = hub.connect().unwrap();
    send(&hub, &c, r#"{"type":"subscribe","channel":"repo:a/b"}"#);
    drain(&mut rx);
    let got = ask(
        &hub,
        &c,
        &mut rx,
        r#"{"type":"publish","channel":"repo:a/b/prs","event":"pr_opened","data":{"number":1},"id":"p"}"#,
    );
    assert_eq!(got.len(), 2);
    let v: serde_json::Value = serde_json::from_str(&got[0]).unwrap();
    assert_eq!(
        got[0],
        format!(
            r#"{{"type":"event","channel":"repo:a/b/prs","event":"pr_opened","data":{{"number":1}},"timestamp":{},"event_id":"{}","seq":1}}"#,
            v["timestamp"],
            v["event_id"].as_str().unwrap()
        )
    );
    assert_eq!(got[1], r#"{"type":"published","channel":"repo:a/b/prs","seq":1,"id":"p"}"#);
}

#[test]
fn decode_errors_become_error_frames_with_the_readable_id() {
    // What a transport does with a text frame that does not decode.
    for (text, reply) in [
        (
            r#"{"type":"dance","id":9}"#,
            r#"{"type":"error","message":"Invalid message format: unknown variant `dance`, expected one of `subscribe`, `unsubscribe`, `ping`, `auth`, `publish`, `presence`, `history`, `signal` at line 1 column 23","code":"invalid_message","id":9}"#,
        ),
        (
            r#"{"type":"subscribe","id":"x"}"#,
            r#"{"type":"error","message":"Invalid message format: missing field `channel` at line 1 column 29","code":"invalid_message","id":"x"}"#,
        ),
        (
            "{not json",
            r#"{"type":"error","message":"Invalid message format: key must be a string at line 1 column 2","code":"invalid_message"}"#,
        ),
    ] {
        let e = decode_client_frame(text).unwrap_err();
        assert_eq!(
            ServerMessage::error(&e.to_error()).encode_with_id(e.id.as_ref()).as_str(),
            reply
        );
    }
}

#[test]
fn welcome_names_the_epoch_and_the_client() {
    let hub = hub_with(HubConfig::default());
    let (c, _rx) = hub.connect().unwrap();
    assert_eq!(hub.epoch(), EPOCH);
    assert_eq!(
        hub.welcome(&c).encode().as_str(),
        format!(r#"{{"type":"welcome","epoch":"epoch-1","client_id":"{}"}}"#, c.id)
    );
    // A fresh hub has a fresh 16-hex-digit epoch.
    let a = EventHub::new();
    let b = EventHub::new();
    assert_ne!(a.epoch(), b.epoch());
    assert_eq!(a.epoch().len(), 16);
    assert!(a.epoch().bytes().all(|b| b.is_ascii_hexdigit()));
}

/// Regression: with the stream limit reached, creating a stream evicted an idle one that another
/// thread had just fetched to subscribe to; that subscriber was then registered in the evicted
/// stream and silently received nothing. Every subscriber here must get its own event.
#[test]
fn stream_eviction_never_strands_a_subscriber() {
    let hub = hub_with(HubConfig::default().max_streams(4));
    let lost = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..4 {
            let (hub, lost) = (&hub, &lost);
            s.spawn(move || {
                for i in 0..20_000 {
                    let ch = format!("repo:t{t}/s{i}");
                    let (c, mut rx) = hub.connect().unwrap();
                    match hub.subscribe(&c, &ch, None, None) {
                        Ok(_) => {}
                        Err(RealtimeError::RateLimited(_)) => {
                            hub.disconnect(&c.id);
                            continue;
                        }
                        Err(e) => panic!("{e}"),
                    }
                    match hub.publish_event(ev(&ch, EventKind::Push, i)) {
                        Ok(p) if p.delivered == 1 => {
                            assert_eq!(drain(&mut rx).len(), 2);
                        }
                        Ok(_) => {
                            lost.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(RealtimeError::RateLimited(_)) => {}
                        Err(e) => panic!("{e}"),
                    }
                    hub.disconnect(&c.id);
                }
            });
        }
    });
    assert_eq!(lost.into_inner(), 0, "subscribers stranded in an evicted stream");
    assert!(hub.metrics().streams <= 4);
}

/// A disconnect from one thread racing subscribes from others: afterwards no stream holds the
/// client and the subscriptions gauge is back to zero (a subscribe that slipped in after the
/// disconnect took the client's channels used to leave a member behind, and the gauge one up).
#[test]
fn subscribe_racing_disconnect_leaves_no_member_and_no_count() {
    for round in 0..300usize {
        let hub = Arc::new(EventHub::new());
        let (c, _rx) = hub.connect().unwrap();
        let start = Arc::new(Barrier::new(3));
        let name = move |t: usize, i: usize| format!("repo:r{round}/t{t}x{i}");
        let subscribers: Vec<_> = (0..2)
            .map(|t| {
                let (hub, c, start) = (hub.clone(), c.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    for i in 0..16 {
                        let _ = hub.subscribe(&c, &name(t, i), None, None);
                    }
                })
            })
            .collect();
        let disconnect = {
            let (hub, c, start) = (hub.clone(), c.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                for _ in 0..round % 24 {
                    std::thread::yield_now();
                }
                hub.disconnect(&c.id);
            })
        };
        for s in subscribers {
            s.join().unwrap();
        }
        disconnect.join().unwrap();
        assert_eq!(hub.metrics().subscriptions, 0, "round {round}: gauge");
        for t in 0..2 {
            for i in 0..16 {
                let ch = Channel::parse(&name(t, i)).unwrap();
                assert_eq!(hub.stream_subscribers(&ch), 0, "round {round}: {ch} still held");
            }
        }
    }
}
