//! The token-bucket arithmetic both limiters share (connection attempts per exchange, REST weight per host): a
//! pure value that is told the time, so it is tested without a clock. Owns no lock and no sleep.

use std::time::Duration;

use tokio::time::Instant;

/// Up to `capacity` units, refilled continuously at `rate` units a second, starting full.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    /// Units per second; infinite for a bucket that is always full.
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// `capacity` units (at least 1), refilled at `capacity` per `per`; a zero `per` never runs dry.
    pub fn per(capacity: u32, per: Duration, now: Instant) -> Self {
        let capacity = f64::from(capacity.max(1));
        Self::with_rate(capacity, capacity / per.as_secs_f64(), now)
    }

    /// `burst` units (at least 1), then one every `every`; a zero `every` never runs dry.
    pub fn every(burst: u32, every: Duration, now: Instant) -> Self {
        Self::with_rate(f64::from(burst.max(1)), 1.0 / every.as_secs_f64(), now)
    }

    fn with_rate(capacity: f64, rate: f64, now: Instant) -> Self {
        Self {
            capacity,
            rate,
            tokens: capacity,
            last: now,
        }
    }

    /// Takes `weight` units at `now`, or says how long until they are there. A weight above the capacity is taken
    /// as the whole bucket, so an oversized request still goes out once the bucket is full.
    pub fn take(&mut self, weight: f64, now: Instant) -> Result<(), Duration> {
        let weight = weight.min(self.capacity);
        self.tokens = if self.rate.is_infinite() {
            self.capacity
        } else {
            let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
            (self.tokens + elapsed * self.rate).min(self.capacity)
        };
        self.last = now;
        if self.tokens >= weight {
            self.tokens -= weight;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((weight - self.tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_burst_then_one_per_interval() {
        let t0 = Instant::now();
        let mut b = TokenBucket::every(3, 2 * S, t0);
        for _ in 0..3 {
            assert_eq!(b.take(1.0, t0), Ok(()));
        }
        assert_eq!(b.take(1.0, t0), Err(2 * S));
        assert_eq!(b.take(1.0, t0 + S), Err(S));
        assert_eq!(b.take(1.0, t0 + 2 * S), Ok(()));
    }

    #[test]
    fn weights_refill_at_capacity_per_period_and_cap_at_capacity() {
        let t0 = Instant::now();
        let mut b = TokenBucket::per(10, 10 * S, t0);
        assert_eq!(b.take(6.0, t0), Ok(()));
        assert_eq!(b.take(4.0, t0), Ok(()));
        assert_eq!(b.take(3.0, t0), Err(3 * S));
        // An hour idle refills to the capacity, not beyond.
        let later = t0 + 3600 * S;
        assert_eq!(b.take(10.0, later), Ok(()));
        assert_eq!(b.take(1.0, later), Err(S));
        // Oversized: the whole bucket.
        assert_eq!(b.take(50.0, later + 10 * S), Ok(()));
    }

    #[test]
    fn a_zero_interval_never_runs_dry_and_time_going_back_is_no_refill() {
        let t0 = Instant::now() + 10 * S;
        let mut b = TokenBucket::every(1, Duration::ZERO, t0);
        for _ in 0..100 {
            assert_eq!(b.take(1.0, t0), Ok(()));
        }
        let mut b = TokenBucket::every(1, S, t0);
        assert_eq!(b.take(1.0, t0), Ok(()));
        assert!(b.take(1.0, t0 - 5 * S).is_err());
    }
}
