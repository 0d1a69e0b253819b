//! A token bucket that spaces connection attempts per exchange, so reconnect storms stay far below the venues'
//! connection-attempt limits (Binance: 300 per 5 min per IP; Bybit: 500 per 5 min per IP).
//!
//! Owns only the bucket; knows nothing of sockets.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::bucket::TokenBucket;

/// Connection-attempt budget shared by every connection to one exchange.
#[derive(Debug)]
pub struct ConnectLimiter {
    bucket: Mutex<TokenBucket>,
}

impl ConnectLimiter {
    /// At most `burst` attempts at once, then one per `refill`.
    pub fn new(burst: u32, refill: Duration) -> Self {
        Self {
            bucket: Mutex::new(TokenBucket::every(burst, refill, Instant::now())),
        }
    }

    /// Waits until an attempt is allowed and takes it.
    pub async fn acquire(&self) {
        loop {
            let taken = self.bucket.lock().await.take(1.0, Instant::now());
            match taken {
                Ok(()) => return,
                Err(wait) => tokio::time::sleep(wait).await,
            }
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
