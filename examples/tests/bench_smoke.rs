//! Smoke run of the benchmark harness against guts-hub (a few hundred clients, a couple of
//! seconds), so the harness cannot rot. It asserts what is functional (everything delivered,
//! nothing lost), never a timing.

use guts_realtime_examples::bench::scenarios::{self, Load};
use guts_realtime_examples::bench::server::{self, Binaries};
use guts_realtime_examples::bench::wire::Proto;
use std::time::Duration;

fn bins() -> Binaries {
    Binaries {
        guts_hub: env!("CARGO_BIN_EXE_guts-hub").into(),
        peers: String::new(),
        server_cpus: "0-1".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_smoke() {
    let load = Load {
        rate: 50,
        warmup: Duration::from_millis(500),
        secs: Duration::from_secs(2),
        pad: 64,
    };
    let s = server::start(Proto::Guts, &bins()).await.unwrap();
    let r = scenarios::fanout(&s, 200, load).await.unwrap();
    println!("{}", serde_json::to_string(&r).unwrap());
    assert_eq!(r.figures["delivered_ratio"], 1.0, "{r:?}");
    assert!(r.figures["us_per_delivery"] > 0.0);

    let r = scenarios::channels(&s, 200, Load { rate: 400, ..load }).await.unwrap();
    assert_eq!(r.figures["delivered_ratio"], 1.0, "{r:?}");

    let r = scenarios::idle(&s, 300, Duration::from_millis(500)).await.unwrap();
    assert!(r.figures["kb_per_conn"] >= 0.0);

    let r = scenarios::storm(&s, 300).await.unwrap();
    assert!(r.figures["round2_s"] > 0.0);
    drop(s);

    let s = server::start(Proto::Guts, &bins()).await.unwrap();
    let r = scenarios::slow(&s, 3, 2000).await.unwrap();
    assert_eq!(r.figures["readers_complete"], 3.0, "{r:?}");

    let r = scenarios::floor(50, 20_000, 4).await.unwrap();
    assert!(r.figures["us_per_frame_batch1"] > 0.0);
}
