//! A token bucket for the per-connection command rate limit.

use super::config::RateLimit;
use std::time::Instant;

/// A token bucket: starts full, refills continuously, one token per command.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    limit: RateLimit,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(limit: RateLimit, now: Instant) -> TokenBucket {
        TokenBucket { limit, tokens: limit.burst.max(1.0), last: now }
    }

    /// Takes one token if there is one; `false` means the command is over the limit.
    pub(crate) fn allow(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        let rate =
            if self.limit.per_second.is_finite() { self.limit.per_second.max(0.0) } else { 0.0 };
        self.tokens = (self.tokens + elapsed * rate).min(self.limit.burst.max(1.0));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(RateLimit::new(10.0, 5.0), t0);
        assert_eq!((0..8).filter(|_| b.allow(t0)).count(), 5);
        assert!(!b.allow(t0 + Duration::from_millis(50)));
        assert!(b.allow(t0 + Duration::from_millis(160)));
        assert!(!b.allow(t0 + Duration::from_millis(170)));
        // Refill is capped at the burst.
        let later = t0 + Duration::from_secs(100);
        assert_eq!((0..8).filter(|_| b.allow(later)).count(), 5);
    }

    #[test]
    fn odd_limits_do_not_panic() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(RateLimit::new(f64::NAN, 0.0), t0);
        assert!(b.allow(t0));
        assert!(!b.allow(t0 + Duration::from_secs(1)));
    }
}
