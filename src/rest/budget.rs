//! The request budget of one REST host: a token bucket counted in the venue's request weights, plus the
//! back-off a 429, 418 or 403 imposes. Owns no HTTP.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::bucket::TokenBucket;
use crate::venue::rest::RestBudget;

#[derive(Debug)]
struct State {
    bucket: TokenBucket,
    blocked_until: Option<Instant>,
}

/// Weight budget shared by every request to one REST host.
#[derive(Debug)]
pub struct Budget {
    state: Mutex<State>,
}

impl Budget {
    /// At most `budget.weight` units in any `budget.per`, starting full.
    pub fn new(budget: RestBudget) -> Self {
        Self {
            state: Mutex::new(State {
                bucket: TokenBucket::per(budget.weight, budget.per, Instant::now()),
                blocked_until: None,
            }),
        }
    }

    /// Waits until `weight` units are available and no back-off is in force, then takes them. A request heavier
    /// than the whole bucket still goes out once the bucket is full.
    pub async fn acquire(&self, weight: u32) {
        loop {
            let wait = {
                let mut s = self.state.lock().await;
                let now = Instant::now();
                match s.blocked_until {
                    Some(until) if until > now => until - now,
                    _ => {
                        s.blocked_until = None;
                        match s.bucket.take(f64::from(weight), now) {
                            Ok(()) => return,
                            Err(wait) => wait,
                        }
                    }
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// No request until `duration` from now (a venue's Retry-After, ban or rate-limit window).
    pub async fn block_for(&self, duration: Duration) {
        let until = Instant::now() + duration;
        let mut s = self.state.lock().await;
        s.blocked_until = Some(s.blocked_until.map_or(until, |current| current.max(until)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spends_weight_and_refills_at_the_budget_rate() {
        let budget = Budget::new(RestBudget {
            weight: 10,
            per: Duration::from_secs(10),
        });
        let start = Instant::now();
        budget.acquire(6).await;
        budget.acquire(4).await;
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "the full bucket is spent at once"
        );
        budget.acquire(3).await;
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(3),
            "then one unit per second"
        );
        budget.acquire(50).await;
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(13),
            "an oversized request waits for a full bucket"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_back_off_holds_every_request() {
        let budget = Budget::new(RestBudget {
            weight: 100,
            per: Duration::from_secs(60),
        });
        let start = Instant::now();
        budget.block_for(Duration::from_secs(7)).await;
        budget.block_for(Duration::from_secs(2)).await;
        budget.acquire(1).await;
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(7),
            "the longer back-off wins"
        );
    }
}
