//! [`Histogram`]: a lock-free histogram of durations with fixed buckets, for the hub's and the
//! server's metrics (fan-out time, delivery latency, connection lifetime). Observing is a few
//! relaxed atomic additions; reading takes a [`HistogramSnapshot`] that an exporter encodes.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Bucket bounds (seconds) for sub-millisecond to second-scale work: fan-out, delivery latency.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// Bucket bounds (seconds) for connection lifetimes: a second to a day.
pub const LIFETIME_BUCKETS: &[f64] =
    &[1.0, 10.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 4.0 * 3600.0, 12.0 * 3600.0, 86_400.0];

/// Counts of durations per bucket, their sum and count.
///
/// ```
/// use guts_realtime::histogram::{Histogram, LATENCY_BUCKETS};
/// use std::time::Duration;
/// let h = Histogram::new(LATENCY_BUCKETS);
/// h.observe(Duration::from_micros(300));
/// let s = h.snapshot();
/// assert_eq!(s.count, 1);
/// assert_eq!(s.buckets.iter().find(|(le, _)| *le == 0.0005).unwrap().1, 1);
/// assert_eq!(s.buckets.last().unwrap(), &(f64::INFINITY, 0));
/// ```
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket (not cumulative); the last is `+Inf`.
    counts: Box<[AtomicU64]>,
    /// In microseconds: a u64 of them lasts 584 000 years of summed durations (nanoseconds
    /// would wrap after 21 days of 10 000 connections' lifetimes).
    sum_micros: AtomicU64,
}

/// What a [`Histogram`] held when it was read.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Sum of the observed durations, in seconds.
    pub sum: f64,
    /// Observations.
    pub count: u64,
    /// `(upper bound in seconds, observations in this bucket)`, the last bound `f64::INFINITY`
    /// (not cumulative: the OpenMetrics encoders add them up).
    pub buckets: Vec<(f64, u64)>,
}

impl Histogram {
    /// An empty histogram with `bounds` (seconds, ascending).
    pub fn new(bounds: &'static [f64]) -> Histogram {
        let counts = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        Histogram { bounds, counts, sum_micros: AtomicU64::new(0) }
    }

    /// Counts one duration.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = self.bounds.iter().position(|&b| secs <= b).unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Relaxed);
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Relaxed);
    }

    /// The counts now.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let bounds = self.bounds.iter().copied().chain([f64::INFINITY]);
        let buckets: Vec<(f64, u64)> =
            bounds.zip(self.counts.iter()).map(|(b, n)| (b, n.load(Relaxed))).collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        HistogramSnapshot { sum, count, buckets }
    }
}
