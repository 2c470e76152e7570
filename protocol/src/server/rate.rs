//! The per-connection command rate limit: [`RateLimit`] and its token bucket.

use core::time::Duration;

/// A per-connection command rate limit: a token bucket refilled at `per_second` tokens a second
/// that holds at most `burst` tokens. Every inbound data frame costs one token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Tokens added per second.
    pub per_second: f64,
    /// Bucket size: the most commands accepted back to back.
    pub burst: f64,
}

impl RateLimit {
    /// A limit of `per_second` commands a second with bursts of `burst`.
    pub fn new(per_second: f64, burst: f64) -> Self {
        RateLimit { per_second, burst }
    }

    fn rate(&self) -> f64 {
        if self.per_second.is_finite() {
            self.per_second.max(0.0)
        } else {
            0.0
        }
    }

    fn capacity(&self) -> f64 {
        self.burst.max(1.0)
    }
}

/// A token bucket: starts full, refills continuously, one token per command. The limit is an
/// argument, not a field, so a connection stores only its tokens and when it last counted them.
///
/// ```
/// use guts_realtime::server::{RateLimit, TokenBucket};
/// use std::time::Duration;
/// let limit = RateLimit::new(1.0, 2.0);
/// let mut b = TokenBucket::new(&limit, Duration::ZERO);
/// assert!(b.allow(&limit, Duration::ZERO) && b.allow(&limit, Duration::ZERO));
/// assert!(!b.allow(&limit, Duration::ZERO));
/// assert!(b.allow(&limit, Duration::from_secs(1)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenBucket {
    tokens: f64,
    last: Duration,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(limit: &RateLimit, now: Duration) -> TokenBucket {
        TokenBucket { tokens: limit.capacity(), last: now }
    }

    /// Takes `n` tokens whether or not they are there (down to minus a burst): work already
    /// done that is paid for by the commands after it.
    pub fn charge(&mut self, limit: &RateLimit, now: Duration, n: f64) {
        let elapsed = now.saturating_sub(self.last).as_secs_f64();
        self.last = self.last.max(now);
        let tokens = (self.tokens + elapsed * limit.rate()).min(limit.capacity());
        self.tokens = (tokens - n).max(-limit.capacity());
    }

    /// Whether a token is there at `now` (nothing is taken).
    pub fn has_token(&self, limit: &RateLimit, now: Duration) -> bool {
        let elapsed = now.saturating_sub(self.last).as_secs_f64();
        (self.tokens + elapsed * limit.rate()).min(limit.capacity()) >= 1.0
    }

    /// Whether the bucket is full at `now` (it may as well be forgotten).
    pub fn is_full(&self, limit: &RateLimit, now: Duration) -> bool {
        let elapsed = now.saturating_sub(self.last).as_secs_f64();
        self.tokens + elapsed * limit.rate() >= limit.capacity()
    }

    /// Takes one token if there is one; `false` means the command is over the limit.
    pub fn allow(&mut self, limit: &RateLimit, now: Duration) -> bool {
        let elapsed = now.saturating_sub(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * limit.rate()).min(limit.capacity());
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

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn burst_then_refill() {
        let l = RateLimit::new(10.0, 5.0);
        let mut b = TokenBucket::new(&l, Duration::ZERO);
        assert_eq!((0..8).filter(|_| b.allow(&l, Duration::ZERO)).count(), 5);
        assert!(!b.allow(&l, 50 * MS));
        assert!(b.allow(&l, 160 * MS));
        assert!(!b.allow(&l, 170 * MS));
        // Refill is capped at the burst.
        let later = Duration::from_secs(100);
        assert_eq!((0..8).filter(|_| b.allow(&l, later)).count(), 5);
    }

    #[test]
    fn odd_limits_do_not_panic() {
        let l = RateLimit::new(f64::NAN, 0.0);
        let mut b = TokenBucket::new(&l, Duration::ZERO);
        assert!(b.allow(&l, Duration::ZERO));
        assert!(!b.allow(&l, Duration::from_secs(1)));
        // Time going back is not a refill.
        assert!(!b.allow(&RateLimit::new(10.0, 5.0), Duration::ZERO));
    }
}
