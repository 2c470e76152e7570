//! In-process hub benchmarks: publish to 1 / 100 / 10 000 subscribers (ns per delivery),
//! allocations per event, and frame encode/decode. `cargo bench -p guts-realtime`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use guts_realtime::{
    decode_client_frame, decode_server_frame, ClientReceiver, EventHub, EventKind, HubConfig,
    RealtimeEvent, ServerMessage,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Counts allocations so the report can show allocations per published event.
struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn hub_with(n: usize) -> (Arc<EventHub>, Vec<ClientReceiver>) {
    let hub = Arc::new(EventHub::with_config(
        HubConfig::default().max_connections(n + 1).queue_capacity(1 << 20),
    ));
    let mut rxs = Vec::with_capacity(n);
    for _ in 0..n {
        let (c, rx) = hub.connect().unwrap();
        hub.subscribe(&c, "repo:bench/hub", None, None).unwrap();
        rxs.push(rx);
    }
    (hub, rxs)
}

fn drain(rxs: &mut [ClientReceiver]) {
    for rx in rxs {
        while rx.try_recv().is_ok() {}
    }
}

fn publish(c: &mut Criterion) {
    let mut g = c.benchmark_group("publish");
    for n in [1usize, 100, 10_000] {
        let (hub, mut rxs) = hub_with(n);
        drain(&mut rxs);
        let data = serde_json::json!({"ref": "refs/heads/main", "pad": "x".repeat(64)});
        g.throughput(Throughput::Elements(n as u64));
        // Only the publishes are timed: draining the queues is the connection writers' work
        // (measured by the server benchmarks), done between batches outside the clock.
        g.bench_with_input(BenchmarkId::new("subscribers", n), &n, |b, _| {
            b.iter_custom(|iters| {
                let mut spent = std::time::Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let batch = left.min(64);
                    let start = std::time::Instant::now();
                    for _ in 0..batch {
                        hub.publish("repo:bench/hub", EventKind::Push, data.clone()).unwrap();
                    }
                    spent += start.elapsed();
                    drain(&mut rxs);
                    left -= batch;
                }
                spent
            })
        });
        drain(&mut rxs);
        let before = ALLOCS.load(Ordering::Relaxed);
        for _ in 0..100 {
            hub.publish("repo:bench/hub", EventKind::Push, data.clone()).unwrap();
        }
        let per_event = (ALLOCS.load(Ordering::Relaxed) - before) as f64 / 100.0;
        drain(&mut rxs);
        println!("allocations per published event with {n} subscribers: {per_event:.1}");
    }
    g.finish();
}

fn frames(c: &mut Criterion) {
    let ev = RealtimeEvent {
        event_type: "event".into(),
        channel: "repo:alice/app".into(),
        event: EventKind::PrOpened,
        data: serde_json::json!({"number": 42, "title": "Fix the thing", "author": "alice"}),
        timestamp: 1_703_145_600,
        event_id: "6f1c2a9e-3b7d-4c55-9d1e-2f0a8b7c6d5e".into(),
        seq: Some(17),
    };
    let msg = ServerMessage::Event(ev);
    let text = msg.encode().to_string();
    let mut g = c.benchmark_group("frame");
    g.bench_function("encode_event", |b| b.iter(|| msg.encode()));
    g.bench_function("decode_event", |b| b.iter(|| decode_server_frame(&text).unwrap()));
    let cmd =
        r#"{"type":"subscribe","channel":"repo:alice/app","since":{"seq":7,"epoch":"e1"},"id":3}"#;
    g.bench_function("decode_subscribe", |b| b.iter(|| decode_client_frame(cmd).unwrap()));
    g.finish();
}

/// What one native client can consume on one core: decode a frame, hand it to the session
/// (routing, dedupe) and take the event out — the work of the native SDK per event, minus the
/// socket read.
fn client_dispatch(c: &mut Criterion) {
    use guts_realtime::session::{Inbound, Session, SessionConfig};
    let mut s: Session<ServerMessage> = Session::new(SessionConfig::default());
    s.subscribe("repo:alice/app").unwrap();
    s.subscribe("repo:alice/app/prs").unwrap();
    s.connect(std::time::Duration::ZERO);
    while s.poll_action().is_some() {}
    s.handle_open(std::time::Duration::ZERO);
    while s.poll_transmit().is_some() {}
    let now = std::time::Duration::ZERO;
    s.handle_frame(now, Inbound::Welcome { epoch: "e".into() });
    for (id, ch) in [(1, "repo:alice/app"), (2, "repo:alice/app/prs")] {
        s.handle_frame(
            now,
            Inbound::Subscribed { id: Some(id), channel: ch.into(), seq: Some(0), recovered: None },
        );
    }
    while s.poll_event().is_some() {}
    let mut seq = 0u64;
    let mut g = c.benchmark_group("client");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decode_and_dispatch_event", |b| {
        b.iter(|| {
            seq += 1;
            let text = format!(
                r#"{{"type":"event","channel":"repo:alice/app","event":"pr_opened","data":{{"number":{seq},"title":"Fix the thing"}},"timestamp":1703145600,"event_id":"6f1c2a9e-3b7d-4c55-9d1e-2f0a8b7c6d5e","seq":{seq}}}"#
            );
            let frame = decode_server_frame(&text).unwrap();
            s.handle_frame(now, Inbound::from_server_frame(frame));
            let mut n = 0;
            while let Some(e) = s.poll_event() {
                n += usize::from(matches!(e, guts_realtime::session::Event::Message { .. }));
            }
            assert_eq!(n, 2);
        })
    });
    g.finish();
}

/// A publish that makes a new stream in a full table (evicting the least recently used idle
/// stream) against one below the limit: eviction must not scan the table.
fn new_stream_at_the_limit(c: &mut Criterion) {
    let mut g = c.benchmark_group("new_stream");
    for (name, full) in [("below_the_limit", false), ("at_the_limit_100k", true)] {
        let n = 100_000;
        let hub =
            EventHub::with_config(HubConfig::default().max_streams(if full { n } else { 10 * n }));
        for i in 0..n {
            hub.publish(&format!("repo:fill/r{i}"), EventKind::Push, serde_json::json!({}))
                .unwrap();
        }
        let mut i = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                i += 1;
                hub.publish(&format!("repo:more/r{i}"), EventKind::Push, serde_json::json!({}))
                    .unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, publish, frames, client_dispatch, new_stream_at_the_limit);
criterion_main!(benches);
