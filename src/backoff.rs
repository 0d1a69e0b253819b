//! Reconnect delays: capped exponential backoff with full jitter, as a pure function.
//!
//! Owns the arithmetic only; the feed supplies the attempt number and the random draw, so tests need no clock
//! and no randomness.

use std::time::Duration;

/// Backoff parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Ceiling of the first retry.
    pub base: Duration,
    /// Ceiling of every retry: the exponential stops growing here.
    pub cap: Duration,
}

impl Default for Backoff {
    /// 1 s doubling to 60 s: a venue outage of minutes costs one attempt a minute per connection, while a
    /// blip is retried within a second or two.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (0 for the first retry), with `jitter` drawn uniformly from
    /// `[0, 1)`. Full jitter (AWS architecture blog, "Exponential Backoff And Jitter"): uniform in
    /// `[0, min(cap, base * 2^attempt))`, which spreads reconnecting connections apart instead of letting
    /// them retry in lockstep.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX));
        let jitter = if jitter.is_nan() {
            0.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        ceiling.min(self.cap).mul_f64(jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_is_bounded_by_the_exponential_ceiling_and_the_cap() {
        let b = Backoff::default();
        for (attempt, ceiling) in [
            (0, 1),
            (1, 2),
            (2, 4),
            (5, 32),
            (6, 60),
            (7, 60),
            (31, 60),
            (1000, 60),
        ] {
            let max = Duration::from_secs(ceiling);
            assert_eq!(b.delay(attempt, 0.0), Duration::ZERO, "attempt {attempt}");
            assert_eq!(b.delay(attempt, 0.5), max / 2, "attempt {attempt}");
            assert!(b.delay(attempt, 0.999_999) < max, "attempt {attempt}");
            assert!(
                b.delay(attempt, 0.999_999) > max.mul_f64(0.99),
                "attempt {attempt}"
            );
        }
    }

    #[test]
    fn jitter_outside_the_unit_interval_is_clamped() {
        let b = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
        };
        assert_eq!(b.delay(3, 7.0), Duration::from_millis(800));
        assert_eq!(b.delay(3, -1.0), Duration::ZERO);
        assert_eq!(b.delay(3, f64::NAN), Duration::ZERO);
    }
}
