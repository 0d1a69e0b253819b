//! The freshness part of the configuration: `MARKETFEED_HEARTBEAT_MISSES`, each market's own
//! `_DEGRADED_AFTER` / `_STALE_AFTER` / `_CRITICAL_AFTER`, and the one warning a configuration that loads can
//! still earn: an alert that can page before the exporter has tried to repair the silence it pages about.

use std::time::Duration;

use super::{
    CRITICAL_AFTER, Config, ConfigError, DEGRADED_AFTER, STALE_AFTER, VenueConfig, duration, human,
    venue_var,
};
use crate::freshness::{DEFAULT_HEARTBEAT_MISSES, Rules, Thresholds, repair_after};
use crate::model::Venue;

/// A market's threshold variables: the suffix after `MARKETFEED_<EXCHANGE>_<MARKET>_`, the global variable it
/// overrides, and the status it sets, in the order of `RawVenue::thresholds`.
pub(super) const THRESHOLDS: [(&str, &str, &str); 3] = [
    ("DEGRADED_AFTER", DEGRADED_AFTER, "degraded"),
    ("STALE_AFTER", STALE_AFTER, "stale"),
    ("CRITICAL_AFTER", CRITICAL_AFTER, "critical"),
];

/// `MARKETFEED_HEARTBEAT_MISSES`: a whole number of at least 1, default 5.
pub(super) fn heartbeat_misses(value: Option<&str>) -> Result<u32, ConfigError> {
    let Some(value) = value else {
        return Ok(DEFAULT_HEARTBEAT_MISSES);
    };
    match value.parse::<u32>() {
        Ok(misses) if misses >= 1 => Ok(misses),
        _ => Err(ConfigError::InvalidMisses(value.to_owned())),
    }
}

/// The thresholds in force for one market: its own variables where set, the global values elsewhere. `None`
/// when a problem was recorded (including one with the global values, reported on its own).
pub(super) fn market_thresholds(
    venue: Venue,
    raw: [Option<&str>; 3],
    global: Option<Thresholds>,
    errors: &mut Vec<ConfigError>,
) -> Option<Thresholds> {
    if raw.iter().all(Option::is_none) {
        return global;
    }
    let before = errors.len();
    let mut own = [None; 3];
    for (slot, ((suffix, ..), value)) in own.iter_mut().zip(THRESHOLDS.iter().zip(raw)) {
        if value.is_some() {
            *slot = super::keep(
                duration(&venue_var(venue, suffix), value, Duration::ZERO),
                errors,
            );
        }
    }
    let global = global?;
    if errors.len() > before {
        return None;
    }
    let inherited_values = [global.degraded, global.stale, global.critical];
    let [degraded, stale, critical] =
        std::array::from_fn(|i| own[i].unwrap_or(inherited_values[i]));
    if degraded < stale && stale < critical {
        return Some(Thresholds {
            degraded,
            stale,
            critical,
        });
    }
    let set: Vec<String> = THRESHOLDS
        .iter()
        .zip(raw)
        .filter(|(_, value)| value.is_some())
        .map(|((suffix, ..), _)| venue_var(venue, suffix))
        .collect();
    let inherited = THRESHOLDS
        .iter()
        .zip(raw)
        .filter(|(_, value)| value.is_none())
        .map(|((_, global, status), _)| (*status, *global))
        .collect();
    errors.push(ConfigError::MarketThresholdsOutOfOrder {
        vars: set.join(", "),
        venue,
        degraded,
        stale,
        critical,
        inherited,
    });
    None
}

impl Config {
    /// The freshness rules of one watched market: its thresholds and the heartbeat misses.
    pub fn rules(&self, venue: &VenueConfig) -> Rules {
        Rules {
            thresholds: venue.thresholds,
            heartbeat_misses: self.heartbeat_misses,
        }
    }

    /// What a configuration that loads still gets wrong, one line each (at most one today): markets where the
    /// stale alert can page before the exporter resubscribes anything, because every channel's repair deadline
    /// is at or past the stale threshold. With a scheduled channel the repair comes seconds after the silence
    /// starts; with event-driven channels only it waits for `MARKETFEED_RESUBSCRIBE_AFTER`.
    pub fn warnings(&self) -> Vec<String> {
        let late: Vec<String> = self
            .venues
            .iter()
            .filter_map(|v| {
                let rules = self.rules(v);
                let quiet_after = rules.quiet_after(v.channels.iter().filter_map(|c| c.interval));
                let first_repair = v
                    .channels
                    .iter()
                    .map(|c| {
                        repair_after(rules.limit(c.interval, quiet_after), self.resubscribe_after)
                    })
                    .min()?;
                let scheduled = v.channels.iter().any(|c| c.interval.is_some());
                (first_repair >= v.thresholds.stale).then(|| {
                    format!(
                        "{} (stale after {}, first resubscribe after {}{})",
                        v.venue,
                        human(&v.thresholds.stale),
                        human(&first_repair),
                        if scheduled {
                            ""
                        } else {
                            ": event-driven channels only"
                        }
                    )
                })
            })
            .collect();
        let mut warnings: Vec<String> = super::lint::idle_timeout(self)
            .into_iter()
            .chain(super::lint::subscriptions(self))
            .collect();
        if !late.is_empty() {
            warnings.push(format!(
                "the stale alert can page before the exporter resubscribes a silent symbol on {}; lower {} (event-driven \
                 channels) or {} (scheduled ones) below the stale threshold, or watch a scheduled channel",
                late.join(", "),
                super::RESUBSCRIBE_AFTER,
                super::HEARTBEAT_MISSES,
            ));
        }
        warnings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigErrors, Flags};

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
        let vars = pairs.iter().map(|&(k, v)| (k.to_owned(), v.to_owned()));
        Config::load(vars, &Flags::default())
    }

    fn errors(pairs: &[(&str, &str)]) -> Vec<String> {
        match load(pairs) {
            Ok(config) => panic!("{pairs:?}: expected errors, got {config:?}"),
            Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
        }
    }

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn heartbeat_misses_is_a_whole_number_of_at_least_one() {
        assert_eq!(load(&[]).unwrap().heartbeat_misses, 5);
        for (value, misses) in [("1", 1), (" 12 ", 12), ("+3", 3)] {
            let config = load(&[("MARKETFEED_HEARTBEAT_MISSES", value)]).unwrap();
            assert_eq!(config.heartbeat_misses, misses, "{value:?}");
        }
        for value in ["0", "-1", "1.5", "five", "", "4294967296", "5s"] {
            assert_eq!(
                errors(&[("MARKETFEED_HEARTBEAT_MISSES", value)]),
                [format!(
                    "MARKETFEED_HEARTBEAT_MISSES: invalid value {:?} (a whole number of at least 1)",
                    value.trim()
                )],
                "{value:?}"
            );
        }
    }

    #[test]
    fn a_market_overrides_the_global_thresholds() {
        let config = load(&[
            ("MARKETFEED_BINANCE_USDM_SYMBOLS", "BTCUSDT"),
            ("MARKETFEED_BINANCE_USDM_DEGRADED_AFTER", "20s"),
            ("MARKETFEED_BINANCE_USDM_STALE_AFTER", "30s"),
            ("MARKETFEED_BINANCE_SPOT_SYMBOLS", "BTCUSDT"),
            ("MARKETFEED_BYBIT_LINEAR_SYMBOLS", "BTCUSDT"),
            ("MARKETFEED_BYBIT_LINEAR_CRITICAL_AFTER", "2h"),
            ("MARKETFEED_STALE_AFTER", "6m"),
        ])
        .unwrap();
        let thresholds: Vec<(Venue, [Duration; 3])> = config
            .venues
            .iter()
            .map(|v| {
                let t = v.thresholds;
                (v.venue, [t.degraded, t.stale, t.critical])
            })
            .collect();
        assert_eq!(
            thresholds,
            [
                (Venue::BinanceSpot, [s(180), s(360), s(3600)]),
                (Venue::BinanceUsdm, [s(20), s(30), s(3600)]),
                (Venue::BybitLinear, [s(180), s(360), s(7200)]),
            ]
        );
        assert_eq!(config.thresholds.stale, s(360), "the global values stay");
        let summary = config.summary();
        assert!(
            summary.lines().any(|l| l.starts_with("binance/usdm: ")
                && l.ends_with(
                    ", thresholds: degraded after 20s, stale after 30s, critical after 1h"
                )),
            "{summary}"
        );
        assert!(
            summary
                .lines()
                .any(|l| l.starts_with("binance/spot: ") && !l.contains("thresholds")),
            "{summary}"
        );
        let rules = config.rules(&config.venues[1]);
        assert_eq!((rules.thresholds.stale, rules.heartbeat_misses), (s(30), 5));
    }

    /// Every problem at once, each naming its variables; a market's order is checked with the global values it
    /// inherits, which the message names too.
    #[test]
    fn market_threshold_problems_are_reported_together() {
        let found = errors(&[
            ("MARKETFEED_BINANCE_USDM_SYMBOLS", "BTCUSDT"),
            ("MARKETFEED_BINANCE_USDM_STALE_AFTER", "30s"),
            ("MARKETFEED_BYBIT_LINEAR_SYMBOLS", "BTCUSDT"),
            ("MARKETFEED_BYBIT_LINEAR_DEGRADED_AFTER", "soon"),
            ("MARKETFEED_BYBIT_LINEAR_CRITICAL_AFTER", "0s"),
            ("MARKETFEED_BYBIT_SPOT_SYMBOLS", "BTCUSDT"),
            ("MARKETFEED_BYBIT_SPOT_DEGRADED_AFTER", "10m"),
            ("MARKETFEED_BYBIT_SPOT_STALE_AFTER", "5m"),
            ("MARKETFEED_BYBIT_INVERSE_STALE_AFTER", "1m"),
            ("MARKETFEED_HEARTBEAT_MISSES", "0"),
        ]);
        assert_eq!(
            found,
            [
                "MARKETFEED_BINANCE_USDM_STALE_AFTER: binance/usdm thresholds out of order (degraded 3m, stale 30s, critical 1h); need degraded < stale < critical (degraded from MARKETFEED_DEGRADED_AFTER, critical from MARKETFEED_CRITICAL_AFTER)",
                // Not watched, still checked: a shared ConfigMap must be right for the bots that do watch it.
                "MARKETFEED_BYBIT_INVERSE_STALE_AFTER: bybit/inverse thresholds out of order (degraded 3m, stale 1m, critical 1h); need degraded < stale < critical (degraded from MARKETFEED_DEGRADED_AFTER, critical from MARKETFEED_CRITICAL_AFTER)",
                r#"MARKETFEED_BYBIT_LINEAR_CRITICAL_AFTER: must be at least 1s (got "0s")"#,
                r#"MARKETFEED_BYBIT_LINEAR_DEGRADED_AFTER: invalid duration "soon" (use e.g. 30s, 5m, 1h)"#,
                "MARKETFEED_BYBIT_SPOT_DEGRADED_AFTER, MARKETFEED_BYBIT_SPOT_STALE_AFTER: bybit/spot thresholds out of order (degraded 10m, stale 5m, critical 1h); need degraded < stale < critical (critical from MARKETFEED_CRITICAL_AFTER)",
                "MARKETFEED_HEARTBEAT_MISSES: invalid value \"0\" (a whole number of at least 1)",
            ]
        );
        // A bad global value is reported once, not again for every market that inherits it.
        assert_eq!(
            errors(&[
                ("MARKETFEED_STALE_AFTER", "1h"),
                ("MARKETFEED_BYBIT_LINEAR_SYMBOLS", "BTCUSDT"),
                ("MARKETFEED_BYBIT_LINEAR_DEGRADED_AFTER", "10s"),
            ]),
            [
                "MARKETFEED_DEGRADED_AFTER, MARKETFEED_STALE_AFTER, MARKETFEED_CRITICAL_AFTER: thresholds out of order (3m, 1h, 1h); need degraded < stale < critical"
            ]
        );
    }

    #[test]
    fn no_warning_when_the_repair_comes_before_the_page() {
        assert_eq!(load(&[]).unwrap().warnings(), Vec::<String>::new());
        // 30 s stale on USD-M: markPrice@1s is repaired after 7 s.
        let config = load(&[
            ("MARKETFEED_BINANCE_USDM_SYMBOLS", "BTCUSDT"),
            ("MARKETFEED_BINANCE_USDM_DEGRADED_AFTER", "20s"),
            ("MARKETFEED_BINANCE_USDM_STALE_AFTER", "30s"),
        ])
        .unwrap();
        assert!(config.warnings().is_empty());
        // Event-driven channels only, but resubscribed before the page.
        let config = load(&[
            ("MARKETFEED_BINANCE_SPOT_SYMBOLS", "BTCUSDT"),
            ("MARKETFEED_BINANCE_SPOT_CHANNELS", "aggTrade"),
            ("MARKETFEED_RESUBSCRIBE_AFTER", "2m"),
        ])
        .unwrap();
        assert!(config.warnings().is_empty());
    }

    #[test]
    fn one_warning_line_when_a_page_can_come_first() {
        let config = load(&[
            ("MARKETFEED_BINANCE_SPOT_SYMBOLS", "BTCUSDT"),
            ("MARKETFEED_BINANCE_SPOT_CHANNELS", "aggTrade,bookTicker"),
            ("MARKETFEED_BYBIT_LINEAR_SYMBOLS", "BTCUSDT"),
            ("MARKETFEED_BYBIT_LINEAR_DEGRADED_AFTER", "5s"),
            ("MARKETFEED_BYBIT_LINEAR_STALE_AFTER", "15s"),
            ("MARKETFEED_BINANCE_USDM_SYMBOLS", "BTCUSDT"),
        ])
        .unwrap();
        assert_eq!(
            config.warnings(),
            [
                "the stale alert can page before the exporter resubscribes a silent symbol on binance/spot (stale after 5m, first resubscribe after 10m: event-driven channels only), bybit/linear (stale after 15s, first resubscribe after 17s); lower MARKETFEED_RESUBSCRIBE_AFTER (event-driven channels) or MARKETFEED_HEARTBEAT_MISSES (scheduled ones) below the stale threshold, or watch a scheduled channel"
            ]
        );
        let fewer_misses = load(&[
            ("MARKETFEED_BYBIT_LINEAR_SYMBOLS", "BTCUSDT"),
            ("MARKETFEED_BYBIT_LINEAR_DEGRADED_AFTER", "5s"),
            ("MARKETFEED_BYBIT_LINEAR_STALE_AFTER", "15s"),
            ("MARKETFEED_HEARTBEAT_MISSES", "3"),
        ])
        .unwrap();
        assert!(
            fewer_misses.warnings().is_empty(),
            "3 × 3 s + 2 s = 11 s < 15 s"
        );
    }
}
