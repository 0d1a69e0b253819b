//! A `*` market that keeps changing, for the long-running examples (the soak, the rebuild probe): a fake Bybit
//! linear venue and its REST listing of 1000 trading symbols (2000 subscriptions with the default channels), one
//! frame a second each, of which each generation replaces ten.

use std::time::Duration;

use super::fake::{FakeKind, FakeVenue};
use super::fake_rest::{FakeRest, RestKind};

/// The venue, its REST side, and the listing's generation.
pub struct Churn {
    /// The WebSocket side.
    pub venue: FakeVenue,
    /// The REST side, whose listing changes.
    pub rest: FakeRest,
}

impl Churn {
    /// Both fakes, listing generation 0.
    pub async fn start() -> Churn {
        let venue = FakeVenue::start(FakeKind::BybitLinear).await;
        venue.set_data_interval(Duration::from_secs(1));
        // Bybit's own cut after 10 minutes without a client ping (the fake scales it down for the tests).
        venue.set_idle_cut(Duration::from_secs(600));
        let rest = FakeRest::start(RestKind::Bybit).await;
        let churn = Churn { venue, rest };
        churn.list(0);
        churn
    }

    /// Lists generation `generation`: symbols 10 to 999 never change, the first ten are new each generation.
    pub fn list(&self, generation: usize) {
        let symbols: Vec<String> = (0..1000)
            .map(|i| {
                let i = if i < 10 { i + 10_000 * generation } else { i };
                format!("S{i}USDT")
            })
            .collect();
        let pairs: Vec<(&str, &str)> = symbols.iter().map(|s| (s.as_str(), "Trading")).collect();
        self.rest.set_instruments("linear", &pairs);
    }

    /// The symbol first listed by `generation`.
    pub fn newest(generation: usize) -> String {
        format!("S{}USDT", 10_000 * generation)
    }
}
