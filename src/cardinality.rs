//! How many series a configuration exports, counted by rendering it rather than by a formula that would drift
//! from the collector: the configuration's trackers are built as the app builds them, brought to a steady state
//! (every subscription delivered, every connection up, every symbol listed, REST timed) and exposed once.
//!
//! Used by `--check-config`. Opens no socket and starts no task.

use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;

use crate::app::{ConnectionPlan, plan};
use crate::config::{Config, VenueConfig};
use crate::metrics::{BuildInfo, Metrics};
use crate::model::{Exchange, Sample, Venue};
use crate::rest::RestStats;
use crate::tracker::{Listing, Tracker, Trackers, unix_now};
use crate::venue::{self, rest::Endpoint};

/// The series count of a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Estimate {
    /// Series once every configured symbol delivered (`*` markets counted with no symbol).
    pub total: usize,
    /// Per watched market, the series one more symbol adds.
    pub per_symbol: Vec<(Venue, usize)>,
    /// Markets following every trading symbol (`*`), whose count grows with the venue's listing.
    pub all_symbols: Vec<Venue>,
}

/// Counts the series `config` exports in a steady state.
pub fn estimate(config: &Config) -> Estimate {
    let total = count(config, None, 0);
    // From one added symbol to two, so a `*` market's first symbol (which brings its per-channel histograms)
    // does not count as a symbol's share.
    let per_symbol = config
        .venues
        .iter()
        .map(|v| {
            let added = |n| count(config, Some(v.venue), n);
            (v.venue, added(2).saturating_sub(added(1)))
        })
        .collect();
    let all_symbols = config
        .venues
        .iter()
        .filter(|v| v.all_symbols)
        .map(|v| v.venue)
        .collect();
    Estimate {
        total,
        per_symbol,
        all_symbols,
    }
}

impl Estimate {
    /// One line for `--check-config`: `series: about 412 (per symbol: binance/spot 17, ...)`.
    pub fn line(&self) -> String {
        let per_symbol: Vec<String> = self
            .per_symbol
            .iter()
            .map(|(venue, n)| format!("{venue} {n}"))
            .collect();
        let mut line = format!(
            "series: about {} once every feed delivers (per added symbol: {})",
            self.total,
            per_symbol.join(", ")
        );
        if !self.all_symbols.is_empty() {
            let venues: Vec<String> = self.all_symbols.iter().map(Venue::to_string).collect();
            line.push_str(&format!(
                "; {} follow every trading symbol (*), so add the per-symbol figure for each listed symbol",
                venues.join(", ")
            ));
        }
        line
    }
}

/// Renders the configuration's exposition, with `added` more symbols on `extra` when given, and counts samples.
fn count(config: &Config, extra: Option<Venue>, added: usize) -> usize {
    let trackers = Arc::new(Trackers::new());
    let venues: Vec<Venue> = config.venues.iter().map(|v| v.venue).collect();
    let rest = Arc::new(RestStats::new(&venues));
    let now = unix_now();
    for vc in &config.venues {
        let mut symbols = vc.symbols.clone();
        if extra == Some(vc.venue) {
            symbols.extend((0..added).map(|i| format!("ESTIMATE{i}USDT")));
        }
        trackers.set(vc.venue, Arc::new(steady(config, vc, &symbols, now)));
        for endpoint in Endpoint::ALL {
            rest.observe(vc.venue, endpoint, Duration::from_millis(50));
        }
    }
    for exchange in Exchange::ALL {
        trackers.clock().set(exchange, 0);
    }
    let Ok(metrics) = Metrics::new(trackers, rest, BuildInfo::current(), true) else {
        return 0;
    };
    metrics
        .render()
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count()
}

/// A tracker of `symbols` on `vc` in which everything that can export a series has happened.
fn steady(config: &Config, vc: &VenueConfig, symbols: &[String], now: u64) -> Tracker {
    let (subscriptions, plans) = plan(vc, symbols, &venue::policy(vc.venue));
    let infos = plans.iter().map(ConnectionPlan::info).collect();
    let tracker = Tracker::new(subscriptions, infos, config.rules(vc), now);
    let sample = Sample {
        event_time_ms: Some((now / 1_000_000) as i64),
        price: Some(Decimal::ONE),
    };
    for slot in 0..tracker.len() {
        tracker.record(slot, now, &sample);
        tracker.set_acked(slot, true);
    }
    for (id, _) in plans.iter().enumerate() {
        tracker.connection_up(id, now);
    }
    for symbol in symbols {
        tracker.set_listing(vc.venue, symbol, Listing::Trading);
    }
    tracker
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Flags;

    fn config(vars: &[(&str, &str)]) -> Config {
        let vars = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        Config::load(vars, &Flags::default()).unwrap()
    }

    #[test]
    fn the_count_grows_by_the_per_symbol_figure() {
        let one = estimate(&config(&[("MARKETFEED_BYBIT_LINEAR_SYMBOLS", "BTCUSDT")]));
        let two = estimate(&config(&[(
            "MARKETFEED_BYBIT_LINEAR_SYMBOLS",
            "BTCUSDT,ETHUSDT",
        )]));
        let [(Venue::BybitLinear, per_symbol)] = one.per_symbol[..] else {
            panic!("{one:?}");
        };
        assert!(per_symbol > 2, "{one:?}");
        assert_eq!(two.total, one.total + per_symbol);
        assert!(one.all_symbols.is_empty());
        // One channel fewer, fewer series per symbol.
        let lean = estimate(&config(&[
            ("MARKETFEED_BYBIT_LINEAR_SYMBOLS", "BTCUSDT"),
            ("MARKETFEED_BYBIT_LINEAR_CHANNELS", "orderbook.1"),
        ]));
        assert!(lean.per_symbol[0].1 < per_symbol, "{lean:?} vs {one:?}");
    }

    #[test]
    fn star_markets_are_named() {
        let e = estimate(&config(&[("MARKETFEED_BINANCE_SPOT_SYMBOLS", "*")]));
        assert_eq!(e.all_symbols, [Venue::BinanceSpot]);
        assert!(
            e.line()
                .contains("binance/spot follow every trading symbol (*)"),
            "{}",
            e.line()
        );
        // The market's per-channel histograms come with its first symbol, not with each.
        let listed = estimate(&config(&[("MARKETFEED_BINANCE_SPOT_SYMBOLS", "BTCUSDT")]));
        assert_eq!(e.per_symbol, listed.per_symbol);
    }
}
