//! `GET /metrics`: every counter, gauge and histogram of the server, its connections and its
//! engine, encoded by `prometheus-client` in the OpenMetrics text format (which Prometheus reads
//! too). The values live where they are counted (atomics of the hub, the connections' rules, the
//! broker, [`ServerMetrics`]); each scrape reads them into a fresh registry.

use super::ServerState;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use guts_realtime::engine::MetricKind;
use guts_realtime::histogram::{Histogram, HistogramSnapshot, LATENCY_BUCKETS, LIFETIME_BUCKETS};
use guts_realtime::{CloseCode, ErrorCode};
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Mutex;

/// What the server itself measures (the hub and the rules count the rest).
#[derive(Debug)]
pub(crate) struct ServerMetrics {
    /// From an event's fan-out on this node to the write of its frame into a client's socket:
    /// the oldest event frame of each write.
    pub(crate) delivery_latency: Histogram,
    /// How long WebSocket connections lived.
    pub(crate) connection_lifetime: Histogram,
    /// Closed WebSocket connections per close code (sent or received; 1006 without a close).
    closes: Mutex<BTreeMap<u16, u64>>,
}

impl Default for ServerMetrics {
    fn default() -> Self {
        ServerMetrics {
            delivery_latency: Histogram::new(LATENCY_BUCKETS),
            connection_lifetime: Histogram::new(LIFETIME_BUCKETS),
            closes: Mutex::new(BTreeMap::new()),
        }
    }
}

impl ServerMetrics {
    /// Counts a connection closed with `code`: one the close-code registry names, or 0
    /// ("other") for any other a client sent — a client cannot make new series.
    pub(crate) fn closed(&self, code: u16) {
        let code = if CloseCode(code).name() == "unknown" { 0 } else { code };
        *self.closes.lock().unwrap_or_else(|e| e.into_inner()).entry(code).or_insert(0) += 1;
    }

    /// Closed connections per close code: the codes this server sends or sees most (at zero
    /// until counted, so that rates over them exist from the start) and any other seen.
    pub(crate) fn closes(&self) -> BTreeMap<u16, u64> {
        const KNOWN: [u16; 12] =
            [1000, 1001, 1006, 1009, 1012, 4001, 4002, 4003, 4008, 4009, 4029, 4503];
        let mut all: BTreeMap<u16, u64> = KNOWN.iter().map(|&c| (c, 0)).collect();
        all.extend(self.closes.lock().unwrap_or_else(|e| e.into_inner()).iter());
        all
    }
}

/// A [`HistogramSnapshot`] as a `prometheus-client` metric.
#[derive(Debug)]
struct HistogramMetric(HistogramSnapshot);

impl EncodeMetric for HistogramMetric {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let h = &self.0;
        encoder.encode_histogram::<NoLabelSet>(h.sum, h.count, &h.buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

type Labelled = Family<Vec<(&'static str, String)>, Counter>;

fn gauge(v: u64) -> ConstGauge<i64> {
    ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX))
}

/// The OpenMetrics text of every metric now.
pub(crate) fn render(state: &ServerState) -> String {
    let mut r = Registry::with_prefix("guts_hub");
    let m = state.engine.metrics();
    let c = &state.counters;
    let k = &state.connections.counters;
    let info = vec![("version", env!("CARGO_PKG_VERSION").to_owned())];
    r.register("build", "The hub's version (value 1)", Info::new(info));
    r.register("connections", "WebSocket connections now", gauge(m.connections as u64));
    r.register("subscriptions", "Subscriptions held now", gauge(m.subscriptions));
    r.register("streams", "Streams (repositories, users, orgs) held now", gauge(m.streams as u64));
    r.register(
        "history_size",
        "Events held in history now, over all streams",
        gauge(m.history_size),
    );
    r.register("ready", "1 while /readyz answers 200", gauge(u64::from(state.is_ready())));
    let counters: [(&str, &str, u64); 22] = [
        ("connections_accepted", "WebSocket connections ever accepted", m.total_connections),
        ("connections_rejected", "Upgrades refused (connection caps, origin, shutdown)", c.upgrades_refused.load(Relaxed)),
        ("subscriptions_made", "Subscriptions ever made", m.total_subscriptions),
        ("events_published", "Events and notifications published on this node (events in)", m.events_published),
        ("http_published", "Events and notifications published over HTTP", c.http_published.load(Relaxed)),
        ("frames_delivered", "Event frames queued to clients by fan-out (events out)", m.frames_delivered),
        ("frames_replayed", "Frames replayed by recovery", m.frames_replayed),
        ("queue_drops", "Frames refused because a client's queue was full", m.queue_drops),
        ("slow_consumer_disconnects", "Clients closed as slow consumers (4008)", m.slow_consumer_disconnects),
        ("gap_disconnects", "Clients disconnected because events of their streams were lost on the way here", m.gap_disconnects),
        ("commands", "WebSocket text frames received", k.commands.load(Relaxed)),
        ("invalid_messages", "Frames answered with invalid_message", k.invalid_messages.load(Relaxed)),
        ("rate_limited", "Commands refused by the rate limit", k.rate_limited.load(Relaxed)),
        ("forbidden", "Commands refused as forbidden", k.forbidden.load(Relaxed)),
        ("auth_failures", "Refused tokens (each closed with 4001)", k.auth_failures.load(Relaxed)),
        ("oversized_closes", "Connections closed with 1009 for an oversized frame", k.oversized_closes.load(Relaxed)),
        ("idle_closes", "Connections closed for silence past the idle timeout (4009)", k.idle_closes.load(Relaxed)),
        ("write_stall_closes", "Connections closed (4008) because their socket accepted nothing for the write-stall timeout", k.write_stalls.load(Relaxed)),
        ("token_expired_closes", "Connections closed (4002) because their token expired", k.token_expired.load(Relaxed)),
        ("http_connections_refused", "TCP connections answered 503 at the cap on connections still speaking HTTP", c.http_refused.load(Relaxed)),
        ("http_key_failures", "HTTP requests with a missing or wrong publish key (401)", c.key_failures.load(Relaxed)),
        ("http_key_throttled", "HTTP requests refused (429) after too many wrong keys from their address", c.key_throttled.load(Relaxed)),
    ];
    for (name, help, value) in counters {
        r.register(name, help, ConstCounter::new(value));
    }
    let closes = Labelled::default();
    for (code, n) in state.metrics.closes() {
        let code = if code == 0 { "other".to_owned() } else { code.to_string() };
        closes.get_or_create(&vec![("code", code)]).inc_by(n);
    }
    r.register(
        "closes",
        "WebSocket connections closed, by close code (1006: no close frame; other: a code the protocol does not define)",
        closes,
    );
    let errors = Labelled::default();
    for code in ErrorCode::ALL {
        errors.get_or_create(&vec![("code", code.as_str().to_owned())]).inc_by(k.errors(code));
    }
    r.register("errors", "Error frames sent to clients, by error code", errors);
    let histograms = [
        ("delivery_latency", "From an event's fan-out on this node to the write of its frame into a client's socket (the oldest frame of each write)", &state.metrics.delivery_latency),
        ("fan_out_duration", "Time to queue one event to every local subscriber", state.engine.hub().fan_out_time()),
        ("connection_lifetime", "How long closed WebSocket connections lived", &state.metrics.connection_lifetime),
    ];
    for (name, help, h) in histograms {
        r.register_with_unit(name, help, Unit::Seconds, HistogramMetric(h.snapshot()));
    }
    for x in state.engine.extra_metrics() {
        match x.kind {
            MetricKind::Gauge => r.register(x.name, x.help.trim_end_matches('.'), gauge(x.value)),
            MetricKind::Counter => {
                let name = x.name.strip_suffix("_total").unwrap_or(x.name);
                r.register(name, x.help.trim_end_matches('.'), ConstCounter::new(x.value));
            }
        }
    }
    let mut out = String::with_capacity(8192);
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &r);
    out
}

/// `GET /metrics`.
pub(crate) async fn metrics(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<ServerState>>,
) -> Response {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], render(&state)).into_response()
}
