//! Limits per client address: [`PerAddress`] counts each address's WebSocket connections (the
//! cap `ServerConfig::max_connections_per_ip`), and [`KeyThrottle`] throttles wrong publish keys.
//!
//! Wrong publish keys, per client address: each address may fail
//! [`KEY_FAILURES`] times in a burst, one more per second after; beyond it, its requests to the
//! keyed endpoints are answered 429 without looking at the key, so a key cannot be guessed at
//! network speed. Bounded: at most [`MAX_ADDRESSES`] addresses are remembered; when full, those
//! whose allowance is whole again are forgotten, and if that frees nothing the table starts over.

use guts_realtime::server::{RateLimit, TokenBucket};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed attempts an address may make back to back.
pub(crate) const KEY_FAILURES: f64 = 10.0;
/// Addresses remembered at once.
pub(crate) const MAX_ADDRESSES: usize = 10_000;

const LIMIT: RateLimit = RateLimit { per_second: 1.0, burst: KEY_FAILURES };

/// The failures of each address.
#[derive(Debug)]
pub(crate) struct KeyThrottle {
    origin: Instant,
    failures: Mutex<HashMap<IpAddr, TokenBucket>>,
}

impl KeyThrottle {
    pub(crate) fn new() -> KeyThrottle {
        KeyThrottle { origin: Instant::now(), failures: Mutex::new(HashMap::new()) }
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// Whether `ip` may try a key now.
    pub(crate) fn may_try(&self, ip: IpAddr) -> bool {
        let now = self.now();
        let map = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(&ip).is_none_or(|b| b.has_token(&LIMIT, now))
    }

    /// `ip` presented a wrong key.
    pub(crate) fn failed(&self, ip: IpAddr) {
        let now = self.now();
        let mut map = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_ADDRESSES && !map.contains_key(&ip) {
            map.retain(|_, b| !b.is_full(&LIMIT, now));
            if map.len() >= MAX_ADDRESSES {
                map.clear();
            }
        }
        map.entry(ip).or_insert_with(|| TokenBucket::new(&LIMIT, now)).allow(&LIMIT, now);
    }
}

/// WebSocket connections per client address, for `ServerConfig::max_connections_per_ip`.
#[derive(Debug, Default)]
pub(crate) struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

impl PerAddress {
    /// Counts one more connection of `ip`, unless it holds `max` already.
    pub(crate) fn acquire(&self, ip: IpAddr, max: usize) -> bool {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = map.entry(ip).or_insert(0);
        if *n >= max {
            return false;
        }
        *n += 1;
        true
    }

    /// One connection of `ip` is gone.
    pub(crate) fn release(&self, ip: IpAddr) {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = map.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&ip);
            }
        }
    }
}
