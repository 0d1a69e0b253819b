//! A token bucket that spaces connection attempts per exchange, so reconnect storms stay far below the venues'
//! connection-attempt limits (Binance: 300 per 5 min per IP; Bybit: 500 per 5 min per IP).
//!
//! Owns only the bucket; knows nothing of sockets.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Connection-attempt budget shared by every connection to one exchange.
#[derive(Debug)]
pub struct ConnectLimiter {
    burst: f64,
    refill: Duration,
    state: Mutex<(f64, Instant)>,
}

impl ConnectLimiter {
    /// At most `burst` attempts at once, then one per `refill`.
    pub fn new(burst: u32, refill: Duration) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            burst,
            refill,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Waits until an attempt is allowed and takes it.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let mut state = self.state.lock().await;
                let (tokens, last) = &mut *state;
                let now = Instant::now();
                if !self.refill.is_zero() {
                    *tokens = (*tokens + (now - *last).as_secs_f64() / self.refill.as_secs_f64())
                        .min(self.burst);
                } else {
                    *tokens = self.burst;
                }
                *last = now;
                if *tokens >= 1.0 {
                    *tokens -= 1.0;
                    return;
                }
                self.refill.mul_f64(1.0 - *tokens)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bursts_then_spaces_attempts() {
        let limiter = ConnectLimiter::new(3, Duration::from_secs(2));
        let start = Instant::now();
        for _ in 0..3 {
            limiter.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "the burst is immediate");
        limiter.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        limiter.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_secs(4));
        // 300 attempts in 5 minutes is Binance's limit: the default 10 / 2 s allows at most 159.
        let limiter = ConnectLimiter::new(10, Duration::from_secs(2));
        let start = Instant::now();
        let mut attempts = 0;
        while start.elapsed() < Duration::from_secs(300) {
            limiter.acquire().await;
            attempts += 1;
        }
        assert!(
            (150..=160).contains(&attempts),
            "{attempts} attempts in 5 minutes"
        );
    }
}
