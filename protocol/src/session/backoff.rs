//! Reconnect delays: full-jitter exponential backoff from a seedable random source.
//!
//! `delay(attempt) = random(0, min(max, base · 2^attempt))` — the "full jitter" of the AWS
//! architecture blog, as Centrifuge does it. Randomness comes from [`Rng`], a SplitMix64 the driver
//! seeds (from the OS in production, a constant in tests), so the session itself reads no entropy.

use core::time::Duration;

/// A small deterministic random source (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A generator seeded by the operating system (feature `json`, native targets): the one
    /// source of randomness of the native drivers (client jitter, the broker's epochs and
    /// reconnects).
    #[cfg(all(feature = "json", not(target_arch = "wasm32")))]
    pub fn from_os() -> Rng {
        // The OS source does not fail on the platforms this runs on; the clock is a last resort.
        let seed = getrandom::u64().unwrap_or_else(|_| {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            t.map_or(0, |d| d.as_nanos() as u64)
        });
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniformly random duration in `[0, max]` (millisecond resolution).
    pub fn duration_up_to(&mut self, max: Duration) -> Duration {
        let ms = max.as_millis().min(u64::MAX as u128) as u64;
        Duration::from_millis(self.next_u64() % (ms + 1))
    }
}

/// The backoff ceiling of an attempt: `min(max, base · 2^attempt)`.
pub fn ceiling(base: Duration, max: Duration, attempt: u32) -> Duration {
    let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
    base.checked_mul(factor).unwrap_or(max).min(max)
}

/// The full-jitter delay of an attempt (0-based).
pub fn delay(base: Duration, max: Duration, attempt: u32, rng: &mut Rng) -> Duration {
    rng.duration_up_to(ceiling(base, max, attempt))
}
