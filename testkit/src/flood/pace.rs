//! Paced sending, for load tests rather than throughput: each stream at its channel's rate, with a market-wide
//! factor that can be raised live for a burst.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::fake::FakeKind;
use crate::fake::binance;

/// How fast a paced flood sends: messages per second per stream of each channel, times a factor that can be
/// changed while the flood runs. Clones share the factor.
#[derive(Clone)]
pub struct Pace(Arc<Inner>);

struct Inner {
    /// Channel name (Binance `aggTrade`, `markPrice@1s`; Bybit `orderbook.1`, `tickers`) and its rate.
    rates: Vec<(String, f64)>,
    /// The factor's `f64` bits.
    factor: AtomicU64,
}

impl Pace {
    /// `rates`: messages per second per stream, by channel name as it appears in the stream name or topic.
    /// A channel not listed is sent once a second.
    pub fn new(rates: &[(&str, f64)]) -> Pace {
        Pace(Arc::new(Inner {
            rates: rates.iter().map(|&(c, r)| (c.to_owned(), r)).collect(),
            factor: AtomicU64::new(1.0_f64.to_bits()),
        }))
    }

    /// Multiplies every rate by `factor` from the next tick on: 1 is the listed rates, 10 a burst.
    pub fn set_factor(&self, factor: f64) {
        self.0.factor.store(factor.to_bits(), Relaxed);
    }

    /// The current factor.
    pub fn factor(&self) -> f64 {
        f64::from_bits(self.0.factor.load(Relaxed))
    }

    /// The listed rate of one stream (a Binance stream name or a Bybit topic), before the factor.
    pub(super) fn per_second(&self, kind: FakeKind, key: &str) -> f64 {
        let channel = match kind {
            FakeKind::BinanceSpot | FakeKind::BinanceUsdm => {
                binance::split_key(key).map(|(_, c)| c)
            }
            // `orderbook.1.BTCUSDT`, `tickers.BTCUSDT`: the symbol is the last part.
            _ => key.rsplit_once('.').map(|(c, _)| c),
        };
        let listed = self
            .0
            .rates
            .iter()
            .find(|(c, _)| Some(c.as_str()) == channel);
        listed.map_or(1.0, |&(_, rate)| rate)
    }
}

/// Where in its period a stream starts, in [0, 1): a hash of its name, so that streams of one rate spread over
/// the ticks instead of all sending on the same one, and a rerun sends the same pattern.
pub(super) fn phase(key: &str) -> f64 {
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash >> 11) as f64 / (1_u64 << 53) as f64
}
