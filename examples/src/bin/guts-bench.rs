//! `guts-bench`: runs one scenario against guts-hub and the Node peers in one invocation (fresh
//! server per run, pinned with `taskset`), repeats it, and prints every run as a JSON line, then
//! the medians and the ratios to guts-hub. Run the harness itself on another CPU:
//! `taskset -c 1 guts-bench fanout --n 1000 --rate 200`. See `scripts/bench.sh`.

use clap::{Parser, ValueEnum};
use guts_realtime_examples::bench::scenarios::{self, hub_name, Load, Row};
use guts_realtime_examples::bench::server::{self, Binaries};
use guts_realtime_examples::bench::wire::Proto;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Mode {
    /// N subscribers on one channel, one publisher at --rate.
    Fanout,
    /// N clients on their own channels, the publisher round-robins at --rate.
    Channels,
    /// N connected, subscribed, idle clients: server memory per connection.
    Idle,
    /// N clients connect and subscribe at once: time until all are subscribed (cold, warm).
    Storm,
    /// One client stops reading under a --flood of 1 KiB events: server memory, others' losses.
    Slow,
    /// Raw loopback write() cost per frame, 1 and 4 frames per write (no hub).
    Floor,
    /// Two nodes of each hub sharing a redis-server: N subscribers on node B, the publisher on
    /// node A at --rate (guts-hub --broker, hub-ws-redis.js, hub-sio-redis.js).
    Redis,
    /// N native SDK clients across a SIGTERM and restart of guts-hub, once without and once with
    /// --spread-secs of reconnect spread: when each client is back (guts-hub only).
    Restart,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Hub {
    Guts,
    Ws,
    Sio,
}

/// Benchmark guts-hub side by side with the Node `ws` and socket.io peers (127.0.0.1 only).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Scenario.
    mode: Mode,
    /// Hubs to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_values = ["guts", "ws", "sio"])]
    hubs: Vec<Hub>,
    /// Clients.
    #[arg(long, default_value_t = 1000)]
    n: usize,
    /// Offered events per second (fanout, channels).
    #[arg(long, default_value_t = 200)]
    rate: u64,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    secs: f64,
    /// Warm-up seconds before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Repetitions (medians are reported).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Padding bytes per event (64 gives ~150-byte frames).
    #[arg(long, default_value_t = 64)]
    pad: usize,
    /// Events of the slow-consumer flood.
    #[arg(long, default_value_t = 20_000)]
    flood: usize,
    /// Frames per write in floor mode's batched run.
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// Path of guts-hub (default: next to this binary).
    #[arg(long)]
    hub_bin: Option<String>,
    /// Folder with the peers and their node_modules.
    #[arg(long, default_value = "target/peers")]
    peers: String,
    /// CPUs for the server (`taskset -c`).
    #[arg(long, default_value = "0")]
    server_cpus: String,
    /// The reconnect spread of `restart` mode's second run (its first has none).
    #[arg(long, default_value_t = 10.0)]
    spread_secs: f64,
    /// redis-server binary for `redis` mode (default: from PATH).
    #[arg(long)]
    redis_server: Option<String>,
}

/// `restart` mode: each rep runs without and with the spread, back to back.
async fn restart(a: &Args, hub_bin: &str) -> ExitCode {
    use guts_realtime_examples::bench::restart;
    let mut ok = true;
    for rep in 0..a.reps {
        for spread in [0.0, a.spread_secs] {
            let run = match restart::run(hub_bin, a.n, spread).await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("rep {rep} spread {spread}: {e}");
                    ok = false;
                    continue;
                }
            };
            let bin = if spread > 0.0 { 1.0 } else { 0.25 };
            println!(
                "restart n={} spread={spread}s: p50 {:.2}s p90 {:.2}s p99 {:.2}s max {:.2}s, \
                 peak {} reconnects/100ms, missing {}",
                run.clients,
                run.quantile(0.5),
                run.quantile(0.9),
                run.quantile(0.99),
                run.quantile(1.0),
                run.peak_per_100ms,
                run.missing,
            );
            for (i, count) in run.histogram(bin).iter().enumerate() {
                let from = i as f64 * bin;
                let bar = "#".repeat((count * 60).div_ceil(a.n.max(1)));
                println!("  {from:>5.2}-{:<5.2}s {count:>5} {bar}", from + bin);
            }
            ok &= run.missing == 0;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

async fn run_one(a: &Args, bins: &Binaries, hub: Hub) -> Result<Row, String> {
    let proto = match hub {
        Hub::Guts => Proto::Guts,
        Hub::Ws => Proto::Ws,
        Hub::Sio => Proto::Sio,
    };
    let load = Load {
        rate: a.rate,
        warmup: Duration::from_secs_f64(a.warmup),
        secs: Duration::from_secs_f64(a.secs),
        pad: a.pad,
    };
    if a.mode == Mode::Redis {
        return run_multinode(a, bins, proto, load).await;
    }
    let s = server::start(proto, bins).await?;
    match a.mode {
        Mode::Fanout => scenarios::fanout(&s, a.n, load).await,
        Mode::Channels => scenarios::channels(&s, a.n, load).await,
        Mode::Idle => scenarios::idle(&s, a.n, Duration::from_secs_f64(a.secs)).await,
        Mode::Storm => scenarios::storm(&s, a.n).await,
        Mode::Slow => scenarios::slow(&s, a.n, a.flood).await,
        Mode::Floor | Mode::Redis | Mode::Restart => {
            unreachable!("floor and restart run on their own, redis above")
        }
    }
}

/// `redis` mode: a fresh redis-server (pinned with the hubs) and two nodes of the hub.
async fn run_multinode(a: &Args, bins: &Binaries, proto: Proto, load: Load) -> Result<Row, String> {
    use guts_realtime_examples::redis_process::{find_redis_server, RedisServer};
    let bin = a
        .redis_server
        .clone()
        .map(std::path::PathBuf::from)
        .or_else(find_redis_server)
        .ok_or("redis-server not found (apt-get install redis-server)")?;
    let redis = RedisServer::start(&bin, false).await.map_err(|e| e.to_string())?;
    if let Some(pid) = redis.pid() {
        let _ = std::process::Command::new("taskset")
            .args(["-pc", &a.server_cpus, &pid.to_string()])
            .stdout(std::process::Stdio::null())
            .status();
    }
    let url = redis.url();
    let node_a = server::start_node(proto, bins, Some(&url)).await?;
    let node_b = server::start_node(proto, bins, Some(&url)).await?;
    scenarios::multinode(&node_a, &node_b, a.n, load).await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let a = Args::parse();
    let hub_bin = a.hub_bin.clone().unwrap_or_else(|| {
        let me = std::env::current_exe().unwrap_or_default();
        me.with_file_name("guts-hub").to_string_lossy().into_owned()
    });
    let bins =
        Binaries { guts_hub: hub_bin, peers: a.peers.clone(), server_cpus: a.server_cpus.clone() };
    if a.mode == Mode::Restart {
        return restart(&a, &bins.guts_hub).await;
    }
    let mut rows: Vec<Row> = Vec::new();
    for rep in 0..a.reps {
        if a.mode == Mode::Floor {
            match scenarios::floor(a.n.min(1000), 400_000, a.batch).await {
                Ok(r) => {
                    println!("{}", serde_json::to_string(&r).unwrap_or_default());
                    rows.push(r);
                }
                Err(e) => eprintln!("floor: {e}"),
            }
            continue;
        }
        for hub in &a.hubs {
            match run_one(&a, &bins, *hub).await {
                Ok(r) => {
                    println!("{}", serde_json::to_string(&r).unwrap_or_default());
                    rows.push(r);
                }
                Err(e) => eprintln!("rep {rep} {hub:?}: {e}"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    // Medians per hub and figure, then ratios to guts-hub.
    let mut by: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for r in &rows {
        for (k, v) in &r.figures {
            by.entry((r.hub.clone(), k.clone())).or_default().push(*v);
        }
    }
    let hubs: Vec<String> = {
        let mut h: Vec<String> = rows.iter().map(|r| r.hub.clone()).collect();
        h.dedup();
        h.sort();
        h.dedup();
        h
    };
    let figures: Vec<String> = {
        let mut f: Vec<String> = by.keys().map(|(_, k)| k.clone()).collect();
        f.sort();
        f.dedup();
        f
    };
    println!();
    println!("{:?} n={} rate={} reps={} (medians)", a.mode, a.n, a.rate, a.reps);
    print!("{:<24}", "figure");
    for h in &hubs {
        print!("{h:>14}");
    }
    // guts-hub, or guts-hub+redis in redis mode.
    let guts =
        hubs.iter().find(|h| h.starts_with(hub_name(Proto::Guts))).cloned().unwrap_or_default();
    let others: Vec<&String> = if hubs.contains(&guts) {
        hubs.iter().filter(|h| **h != guts).collect()
    } else {
        Vec::new()
    };
    for o in &others {
        print!("{:>16}", format!("guts/{o}"));
    }
    println!();
    for f in &figures {
        print!("{f:<24}");
        let med = |h: &String| {
            by.get(&(h.clone(), f.clone())).map(|v| median(v.clone())).unwrap_or(f64::NAN)
        };
        for h in &hubs {
            print!("{:>14.3}", med(h));
        }
        for o in &others {
            print!("{:>16.3}", med(&guts) / med(o));
        }
        println!();
    }
    if rows.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
