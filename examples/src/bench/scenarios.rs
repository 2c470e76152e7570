//! The scenarios. Each connects its clients, drives load for a bounded time, reads the server from
//! `/proc`, and returns one [`Row`].

use super::proc;
use super::server::{Server, PUBLISH_KEY};
use super::wire::{self, Proto, Rx, Tx};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

/// One measured run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Row {
    /// Scenario name.
    pub scenario: String,
    /// Hub name.
    pub hub: String,
    /// Clients.
    pub n: usize,
    /// Offered events per second (0 when not a rate scenario).
    pub rate: u64,
    /// Named figures (delivered_per_s, p50_ms, p99_ms, us_per_delivery, rss_mb, ...).
    pub figures: BTreeMap<String, f64>,
}

impl Row {
    fn new(scenario: &str, s: &Server, n: usize, rate: u64) -> Row {
        Row { scenario: scenario.into(), hub: hub_name(s.proto).into(), n, rate, ..Row::default() }
    }
    fn set(&mut self, k: &str, v: f64) {
        self.figures.insert(k.into(), v);
    }
}

/// Display name of a hub.
pub fn hub_name(p: Proto) -> &'static str {
    match p {
        Proto::Guts => "guts-hub",
        Proto::Ws => "ws",
        Proto::Sio => "socket.io",
    }
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

/// Connects `n` clients, each subscribed to `channel(i)`, at most 256 handshakes in flight.
async fn connect_many(
    s: &Server,
    n: usize,
    channel: impl Fn(usize) -> String,
) -> Result<Vec<(Tx, Rx)>, String> {
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        let mut set = JoinSet::new();
        for j in i..(i + 256).min(n) {
            let (proto, addr, ch) = (s.proto, s.addr.clone(), channel(j));
            set.spawn(async move {
                let (mut tx, mut rx) = wire::connect(proto, &addr).await?;
                wire::subscribe(proto, &mut tx, &mut rx, &ch).await?;
                Ok::<_, String>((j, tx, rx))
            });
        }
        let mut batch: Vec<(usize, Tx, Rx)> = Vec::new();
        while let Some(r) = set.join_next().await {
            batch.push(r.map_err(|e| e.to_string())??);
        }
        batch.sort_by_key(|b| b.0);
        out.extend(batch.into_iter().map(|(_, t, r)| (t, r)));
        i += 256;
    }
    Ok(out)
}

async fn publisher(s: &Server) -> Result<Tx, String> {
    let (mut tx, mut rx) = wire::connect(s.proto, &s.addr).await?;
    if s.proto == Proto::Guts {
        let auth = format!(r#"{{"type":"auth","token":"{PUBLISH_KEY}"}}"#);
        tx.send(Message::text(auth)).await.map_err(|e| e.to_string())?;
        let r = wire::next_text(&mut rx, &mut tx, s.proto).await.ok_or("publisher auth")?;
        if !r.contains("authenticated") {
            return Err(format!("publisher auth: {r}"));
        }
    }
    // Drain the publisher's replies (`published`), so it is never a slow consumer itself.
    tokio::spawn(async move { while rx.next().await.is_some() {} });
    Ok(tx)
}

fn publish_frame(proto: Proto, channel: &str, ts: u64, pad: &str) -> Message {
    let json = format!(
        r#"{{"type":"publish","channel":"{channel}","event":"push","data":{{"ts":{ts},"pad":"{pad}"}}}}"#
    );
    wire::frame(proto, &json)
}

/// The offered load of a rate scenario.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Events per second.
    pub rate: u64,
    /// Unmeasured lead-in.
    pub warmup: Duration,
    /// Measured window.
    pub secs: Duration,
    /// Bytes of padding in each event's data (64 gives ~150-byte frames).
    pub pad: usize,
}

/// Rate scenarios: the publisher emits `rate` events/s for `warmup + secs`, over `channels`
/// round-robin; every client counts the events emitted inside the measured window and records
/// their emit→receive latency.
async fn rate_run(
    name: &str,
    s: &Server,
    clients: Vec<(Tx, Rx)>,
    channels: Vec<String>,
    load: Load,
) -> Result<Row, String> {
    rate_run_via(name, s, s, clients, channels, load).await
}

/// [`rate_run`] with the publisher on another server (`p`) than the subscribers (`s`); the server
/// figures are `s`'s, plus `pub_node_cpu_pct` when `p` is another process.
async fn rate_run_via(
    name: &str,
    s: &Server,
    p: &Server,
    clients: Vec<(Tx, Rx)>,
    channels: Vec<String>,
    load: Load,
) -> Result<Row, String> {
    let Load { rate, warmup, secs, pad } = load;
    let n = clients.len();
    let start = Instant::now();
    let window = (warmup.as_micros() as u64, (warmup + secs).as_micros() as u64);
    let stop_at = tokio::time::Instant::from_std(start + warmup + secs + Duration::from_secs(3));
    let mut readers = JoinSet::new();
    for (mut tx, mut rx) in clients {
        let proto = s.proto;
        readers.spawn(async move {
            let mut lat: Vec<u32> = Vec::new();
            let _ = tokio::time::timeout_at(stop_at, async {
                while let Some(t) = wire::next_text(&mut rx, &mut tx, proto).await {
                    let Some(ts) = wire::emit_ts(&t) else { continue };
                    if ts >= window.0 && ts < window.1 {
                        let now = start.elapsed().as_micros() as u64;
                        lat.push(now.saturating_sub(ts).min(u64::from(u32::MAX)) as u32);
                    }
                }
            })
            .await;
            lat
        });
    }
    let mut ptx = publisher(p).await?;
    let pad = "x".repeat(pad);
    let total = ((warmup + secs).as_secs_f64() * rate as f64) as u64;
    let mut cpu0 = None;
    let mut pub_cpu0 = None;
    let mut gen_cpu0 = None;
    let mut rss0 = 0;
    let mut in_window = 0u64;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1) as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for i in 0..total {
        tick.tick().await;
        let ts = start.elapsed().as_micros() as u64;
        if cpu0.is_none() && ts >= window.0 {
            cpu0 = proc::cpu_us(s.pid);
            pub_cpu0 = proc::cpu_us(p.pid);
            gen_cpu0 = proc::cpu_us(std::process::id());
            rss0 = proc::rss_kib(s.pid).unwrap_or(0);
        }
        if ts >= window.0 && ts < window.1 {
            in_window += 1;
        }
        let ch = &channels[(i as usize) % channels.len()];
        ptx.send(publish_frame(s.proto, ch, ts, &pad)).await.map_err(|e| e.to_string())?;
    }
    let cpu1 = proc::cpu_us(s.pid);
    let pub_cpu1 = proc::cpu_us(p.pid);
    let gen_cpu1 = proc::cpu_us(std::process::id());
    let window_secs = start.elapsed().as_secs_f64() - warmup.as_secs_f64();
    let rss1 = proc::rss_kib(s.pid).unwrap_or(0);
    let mut all: Vec<u32> = Vec::new();
    while let Some(r) = readers.join_next().await {
        all.extend(r.map_err(|e| e.to_string())?);
    }
    all.sort_unstable();
    let delivered = all.len() as f64;
    let offered_deliveries = in_window as f64 * if channels.len() == 1 { n as f64 } else { 1.0 };
    let mut row = Row::new(name, s, n, rate);
    row.set("delivered_per_s", delivered / secs.as_secs_f64());
    row.set("delivered_ratio", delivered / offered_deliveries.max(1.0));
    row.set("p50_ms", pct(&all, 0.50));
    row.set("p90_ms", pct(&all, 0.90));
    row.set("p99_ms", pct(&all, 0.99));
    row.set("max_ms", pct(&all, 1.0));
    if let (Some(c0), Some(c1)) = (cpu0, cpu1) {
        let cpu = (c1 - c0) as f64;
        row.set("server_cpu_pct", cpu / (window_secs * 1e6) * 100.0);
        row.set("us_per_delivery", cpu / delivered.max(1.0));
    }
    if let (Some(c0), Some(c1), true) = (pub_cpu0, pub_cpu1, p.pid != s.pid) {
        row.set("pub_node_cpu_pct", (c1 - c0) as f64 / (window_secs * 1e6) * 100.0);
    }
    if let (Some(c0), Some(c1)) = (gen_cpu0, gen_cpu1) {
        // The load generator's own CPU: near 100 % its receive queueing, not the hub's, is what
        // the latency figures measure.
        row.set("gen_cpu_pct", (c1 - c0) as f64 / (window_secs * 1e6) * 100.0);
    }
    row.set("server_rss_mb", rss1.max(rss0) as f64 / 1024.0);
    Ok(row)
}

/// Fan-out: `n` subscribers on one channel, one publisher at `rate`.
///
/// # Errors
/// When clients cannot connect.
pub async fn fanout(s: &Server, n: usize, load: Load) -> Result<Row, String> {
    let ch = "repo:bench/fanout".to_owned();
    let clients = connect_many(s, n, |_| ch.clone()).await?;
    rate_run("fanout", s, clients, vec![ch], load).await
}

/// Multi-node fan-out: `n` subscribers on one channel on node `b`, the publisher on node `a`;
/// the two nodes share a broker (Redis). Server figures are node `b`'s.
///
/// # Errors
/// When clients cannot connect.
pub async fn multinode(a: &Server, b: &Server, n: usize, load: Load) -> Result<Row, String> {
    let ch = "repo:bench/fanout".to_owned();
    let clients = connect_many(b, n, |_| ch.clone()).await?;
    // Let node B's broker subscription settle before the first event.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut row = rate_run_via("multinode", b, a, clients, vec![ch], load).await?;
    row.hub.push_str("+redis");
    Ok(row)
}

/// Many channels: `n` clients each on its own channel; the publisher round-robins.
///
/// # Errors
/// When clients cannot connect.
pub async fn channels(s: &Server, n: usize, load: Load) -> Result<Row, String> {
    let name = |i: usize| format!("repo:bench/c{i}");
    let clients = connect_many(s, n, name).await?;
    rate_run("channels", s, clients, (0..n).map(name).collect(), load).await
}

/// Idle: `n` connected and subscribed clients held for `hold`; server memory per connection.
///
/// # Errors
/// When clients cannot connect.
pub async fn idle(s: &Server, n: usize, hold: Duration) -> Result<Row, String> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss0 = proc::rss_kib(s.pid).unwrap_or(0);
    let tcp0 = proc::tcp_mem_pages().unwrap_or(0);
    let clients = connect_many(s, n, |i| format!("repo:bench/idle{i}")).await?;
    tokio::time::sleep(hold).await;
    let rss1 = proc::rss_kib(s.pid).unwrap_or(0);
    let tcp1 = proc::tcp_mem_pages().unwrap_or(0);
    let mut row = Row::new("idle", s, n, 0);
    row.set("kb_per_conn", (rss1.saturating_sub(rss0)) as f64 * 1.024 / n as f64);
    row.set("server_rss_mb", rss1 as f64 / 1024.0);
    row.set("kernel_tcp_kb_per_conn", (tcp1.saturating_sub(tcp0)) as f64 * 4.096 / n as f64);
    drop(clients);
    Ok(row)
}

/// Reconnect storm: `n` clients connect and subscribe at once; time until all are subscribed,
/// cold (round 1) and warm (round 2, after all closed).
///
/// # Errors
/// When clients cannot connect.
pub async fn storm(s: &Server, n: usize) -> Result<Row, String> {
    let mut row = Row::new("storm", s, n, 0);
    for round in 1..=2 {
        let cpu0 = (proc::cpu_us(s.pid), proc::cpu_us(std::process::id()));
        let t0 = Instant::now();
        let mut set = JoinSet::new();
        for i in 0..n {
            let (proto, addr) = (s.proto, s.addr.clone());
            set.spawn(async move {
                let (mut tx, mut rx) = wire::connect(proto, &addr).await?;
                wire::subscribe(proto, &mut tx, &mut rx, &format!("repo:bench/s{}", i % 100))
                    .await?;
                Ok::<_, String>((tx, rx))
            });
        }
        let mut held = Vec::with_capacity(n);
        while let Some(r) = set.join_next().await {
            held.push(r.map_err(|e| e.to_string())??);
        }
        row.set(&format!("round{round}_s"), t0.elapsed().as_secs_f64());
        // CPU seconds each side spent on the round: which one bounds the time.
        let cpu1 = (proc::cpu_us(s.pid), proc::cpu_us(std::process::id()));
        if let ((Some(a0), Some(b0)), (Some(a1), Some(b1))) = (cpu0, cpu1) {
            row.set(&format!("round{round}_server_cpu_s"), (a1 - a0) as f64 / 1e6);
            row.set(&format!("round{round}_gen_cpu_s"), (b1 - b0) as f64 / 1e6);
        }
        drop(held);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(row)
}

/// Slow consumer: `n` readers and one client that never reads, under a flood of `flood` 1 KiB
/// events; reports server memory growth and whether the readers lost anything.
///
/// # Errors
/// When clients cannot connect.
pub async fn slow(s: &Server, n: usize, flood: usize) -> Result<Row, String> {
    let ch = "repo:bench/slow".to_owned();
    let stalled = connect_many(s, 1, |_| ch.clone()).await?;
    let readers_c = connect_many(s, n, |_| ch.clone()).await?;
    let rss0 = proc::rss_kib(s.pid).unwrap_or(0);
    let peak = Arc::new(AtomicU64::new(rss0));
    let (pk, pid) = (peak.clone(), s.pid);
    let sampler = tokio::spawn(async move {
        loop {
            let r = proc::rss_kib(pid).unwrap_or(0);
            pk.fetch_max(r, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let mut readers = JoinSet::new();
    for (mut tx, mut rx) in readers_c {
        let proto = s.proto;
        readers.spawn(async move {
            let mut got = 0usize;
            let _ = tokio::time::timeout(Duration::from_secs(120), async {
                while got < flood {
                    let Some(t) = wire::next_text(&mut rx, &mut tx, proto).await else { break };
                    if t.contains("\"event\"") {
                        got += 1;
                    }
                }
            })
            .await;
            got
        });
    }
    let mut ptx = publisher(s).await?;
    let pad = "x".repeat(1024);
    for i in 0..flood {
        ptx.send(publish_frame(s.proto, &ch, i as u64, &pad)).await.map_err(|e| e.to_string())?;
    }
    let mut complete = 0usize;
    while let Some(r) = readers.join_next().await {
        if r.map_err(|e| e.to_string())? == flood {
            complete += 1;
        }
    }
    sampler.abort();
    let mut row = Row::new("slow", s, n, 0);
    row.set("rss_growth_mb", peak.load(Ordering::Relaxed).saturating_sub(rss0) as f64 / 1024.0);
    row.set("readers_complete", complete as f64);
    row.set("readers", n as f64);
    drop(stalled);
    Ok(row)
}

/// The physical floor: CPU per `write()` of a ~150-byte frame to loopback TCP sockets, one frame
/// per write and `batch` frames per write, measured on the writing thread in this process.
///
/// # Errors
/// When sockets cannot be made.
pub async fn floor(n: usize, frames: usize, batch: usize) -> Result<Row, String> {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let mut writers = Vec::new();
    let mut readers = Vec::new();
    for _ in 0..n {
        let w = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
        let (r, _) = listener.accept().map_err(|e| e.to_string())?;
        let _ = w.set_nodelay(true);
        writers.push(w);
        readers.push(r);
    }
    let drain = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0usize;
        for r in &readers {
            r.set_nonblocking(true).ok();
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut idle = 0;
        while Instant::now() < deadline && idle < 2000 {
            let mut any = false;
            for mut r in &readers {
                if let Ok(k) = r.read(&mut buf) {
                    if k > 0 {
                        total += k;
                        any = true;
                    }
                }
            }
            if any {
                idle = 0
            } else {
                idle += 1;
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        total
    });
    let frame = [b'x'; 150];
    let mut row =
        Row { scenario: "floor".into(), hub: "raw write()".into(), n, rate: 0, ..Row::default() };
    for b in [1usize, batch.max(1)] {
        let payload: Vec<u8> = frame.iter().copied().cycle().take(150 * b).collect();
        let writes = frames / b;
        let t = std::thread::spawn({
            let ws: Vec<std::net::TcpStream> =
                writers.iter().filter_map(|w| w.try_clone().ok()).collect();
            move || {
                let c0 = proc::thread_cpu_us();
                for i in 0..writes {
                    let mut w = &ws[i % ws.len()];
                    let _ = w.write_all(&payload);
                }
                proc::thread_cpu_us().saturating_sub(c0)
            }
        });
        let cpu = t.join().map_err(|_| "writer panicked")?;
        row.set(&format!("us_per_frame_batch{b}"), cpu as f64 / (writes * b) as f64);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    drop(writers);
    let _ = drain.join();
    Ok(row)
}
