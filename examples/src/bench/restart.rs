//! `guts-bench restart`: N native SDK clients ([`guts_realtime_native::Client`]) connected to a
//! guts-hub that gets SIGTERM and is started again on the same port: when each client is
//! connected again, counted from the SIGTERM. With `--reconnect-spread-secs 0` the clients
//! come back on their own backoff; with a spread, after the hub's `retry_after_ms` hint.

use crate::hub_process::HubProcess;
use guts_realtime::session::ConnectionState;
use guts_realtime_native::Client;
use std::time::Duration;
use tokio::time::Instant;

/// What one restart measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RestartRun {
    /// `--reconnect-spread-secs` of the stopped hub.
    pub spread_secs: f64,
    /// Clients.
    pub clients: usize,
    /// Seconds from the SIGTERM to each client's next `connected`, sorted.
    pub reconnect_secs: Vec<f64>,
    /// Clients not connected again within the limit.
    pub missing: usize,
    /// Most reconnections within one 100 ms window.
    pub peak_per_100ms: usize,
}

impl RestartRun {
    /// The `q` quantile (0..=1) of the reconnect times.
    pub fn quantile(&self, q: f64) -> f64 {
        let v = &self.reconnect_secs;
        if v.is_empty() {
            return f64::NAN;
        }
        v[((v.len() - 1) as f64 * q).round() as usize]
    }

    /// Counts per `bin`-second bin from 0 to the last reconnection.
    pub fn histogram(&self, bin: f64) -> Vec<usize> {
        let last = self.reconnect_secs.last().copied().unwrap_or(0.0);
        let mut bins = vec![0; (last / bin) as usize + 1];
        for t in &self.reconnect_secs {
            bins[(t / bin) as usize] += 1;
        }
        bins
    }
}

/// Connects `n` clients to a fresh hub started with `--reconnect-spread-secs spread`, stops it
/// with SIGTERM, starts a new one on the same port, and times every client's return (at most
/// `spread + 30` s).
///
/// # Errors
/// When a hub does not start or the clients do not all connect first.
pub async fn run(hub_bin: &str, n: usize, spread: f64) -> Result<RestartRun, String> {
    let spread_flag = spread.to_string();
    let flags = ["--reconnect-spread-secs", &spread_flag, "--max-connections", "100000"];
    let mut hub = HubProcess::start(hub_bin, &flags).await.map_err(|e| e.to_string())?;
    let addr = hub.addr();
    let url = hub.ws_url();
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        let c = Client::builder(&url).connect().map_err(|e| e.to_string())?;
        clients.push(c);
    }
    for c in &clients {
        tokio::time::timeout(Duration::from_secs(60), c.connected())
            .await
            .map_err(|_| "clients not connected within 60 s")?
            .map_err(|e| e.to_string())?;
    }
    // Each client's next `connected` after it lost the link.
    let limit = Duration::from_secs_f64(spread + 30.0);
    let t0 = Instant::now();
    let watchers: Vec<_> = clients
        .iter()
        .map(|c| {
            let mut state = c.state();
            tokio::spawn(async move {
                let lost = state.wait_for(|s| s.state != ConnectionState::Connected);
                tokio::time::timeout(limit, lost).await.ok()?.ok()?;
                let back = state.wait_for(|s| s.state == ConnectionState::Connected);
                tokio::time::timeout(limit, back).await.ok()?.ok()?;
                Some(t0.elapsed().as_secs_f64())
            })
        })
        .collect();
    hub.terminate(Duration::from_secs(30)).await;
    let listen = addr.to_string();
    let next =
        HubProcess::start(hub_bin, &["--listen", &listen]).await.map_err(|e| e.to_string())?;
    let mut reconnect_secs = Vec::with_capacity(n);
    let mut missing = 0;
    for w in watchers {
        match w.await {
            Ok(Some(t)) => reconnect_secs.push(t),
            _ => missing += 1,
        }
    }
    reconnect_secs.sort_by(f64::total_cmp);
    let mut peak = 0;
    let mut start = 0;
    for end in 0..reconnect_secs.len() {
        while reconnect_secs[end] - reconnect_secs[start] >= 0.1 {
            start += 1;
        }
        peak = peak.max(end + 1 - start);
    }
    for c in &clients {
        c.close().await;
    }
    drop(next);
    Ok(RestartRun {
        spread_secs: spread,
        clients: n,
        reconnect_secs,
        missing,
        peak_per_100ms: peak,
    })
}
