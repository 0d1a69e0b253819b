//! Configuration: `MARKETFEED_*` environment variables and Prometheus-style flags, checked strictly,
//! with every problem reported at once.
//!
//! Owns parsing, defaults and validation only. It opens no socket, and knows venues only through
//! `venue`'s default URLs, default channels and channel names. The freshness settings (heartbeat misses,
//! per-market thresholds, and the warning when an alert can page before the exporter repairs) are in
//! [`freshness`].
//!
//! - `flags`: the command line;
//! - `env`: the `MARKETFEED_*` variables, read and each value checked;
//! - `error`: `ConfigError`, one per problem, and `ConfigErrors`;
//! - `help`: `--help`;
//! - `freshness` and `lint`: the freshness settings, and values that parse but cannot be meant.
//!
//! This file holds `Config` and `VenueConfig`, the defaults, and `Config::load`, which puts them together.

mod freshness;
mod lint;

use std::collections::HashSet;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use humantime::format_duration;
use serde::Deserialize;
use tokio_tungstenite::tungstenite::http::Uri;

use crate::freshness::{DEFAULT_HEARTBEAT_MISSES, LATE_GRACE, Thresholds};
use crate::model::{Channel, Exchange, Venue};
use crate::shard::Shard;
use crate::venue;
use crate::web::config::ClientAuth;
use crate::web::{Settings, WebConfig, WebConfigError};

/// The prefix of every configuration variable; other environment variables are ignored.
pub const ENV_PREFIX: &str = "MARKETFEED_";

const DEGRADED_AFTER: &str = "MARKETFEED_DEGRADED_AFTER";
const STALE_AFTER: &str = "MARKETFEED_STALE_AFTER";
const CRITICAL_AFTER: &str = "MARKETFEED_CRITICAL_AFTER";
const IDLE_TIMEOUT: &str = "MARKETFEED_IDLE_TIMEOUT";
const RESUBSCRIBE_AFTER: &str = "MARKETFEED_RESUBSCRIBE_AFTER";
const HEARTBEAT_MISSES: &str = "MARKETFEED_HEARTBEAT_MISSES";
const LOG_FORMAT: &str = "MARKETFEED_LOG_FORMAT";
const LOG_LEVEL: &str = "MARKETFEED_LOG_LEVEL";
const SHARD: &str = "MARKETFEED_SHARD";

const LISTEN_ADDRESS_FLAG: &str = "--web.listen-address";
const TELEMETRY_PATH_FLAG: &str = "--web.telemetry-path";
const WEB_CONFIG_FLAG: &str = "--web.config.file";

/// Symbols watched when no `*_SYMBOLS` variable is set. Bybit's inverse contracts are coin-margined and
/// named without the quote's "T" (BTCUSD); BTCUSDT does not exist there.
fn default_symbols(venue: Venue) -> [&'static str; 2] {
    match venue {
        Venue::BybitInverse => ["BTCUSD", "ETHUSD"],
        _ => ["BTCUSDT", "ETHUSDT"],
    }
}
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_RESUBSCRIBE_AFTER: Duration = Duration::from_secs(10 * 60);
const DEFAULT_LOG_LEVEL: &str = "info";
const DEFAULT_LISTEN_ADDRESS: &str = ":10066";
const DEFAULT_TELEMETRY_PATH: &str = "/metrics";

/// The shortest duration any variable takes: the feeds' watchdogs tick every 100 ms, so anything shorter than a
/// second is a typo (`1ms` for `1m`) that would make them thrash.
pub const MIN_DURATION: Duration = Duration::from_secs(1);

/// A suggestion further than this from the mistyped name would be noise rather than help.
const MAX_SUGGESTION_DISTANCE: usize = 3;

/// The validated configuration of one exporter process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The watched venues only, in [`Venue::ALL`] order.
    pub venues: Vec<VenueConfig>,
    /// When a silent subscription changes status, unless its market overrides them ([`VenueConfig::thresholds`]).
    pub thresholds: Thresholds,
    /// No data at all on a connection for this long: reconnect.
    pub idle_timeout: Duration,
    /// One subscription silent this long while its connection flows: resubscribe it.
    pub resubscribe_after: Duration,
    /// Expected intervals a scheduled channel may miss (plus a grace) before it is late and resubscribed.
    pub heartbeat_misses: u32,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// A `tracing` `EnvFilter` directive string, already checked to parse.
    pub log_level: String,
    /// Where the HTTP server listens.
    pub listen_address: SocketAddr,
    /// Where metrics are served, e.g. `/metrics`.
    pub telemetry_path: String,
    /// TLS and basic auth from `--web.config.file`; `None` serves plain HTTP to everyone.
    pub web: Option<WebConfig>,
    /// `MARKETFEED_*` variables that Kubernetes service links injected (a Service named `marketfeed-...` in the
    /// namespace), sorted; ignored rather than refused, and named once in the log.
    pub ignored_variables: Vec<String>,
    /// `_URL`, `_CHANNELS` and threshold variables of markets that are not watched, sorted: checked like the
    /// others and then unused, so one base ConfigMap can serve bots that watch different markets.
    pub unwatched_variables: Vec<String>,
    /// `MARKETFEED_SHARD`: this process watches only this shard's symbols (already applied to the listed ones;
    /// a `*` market applies it to each listing). `None`: every symbol.
    pub shard: Option<Shard>,
}

/// What is watched on one venue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenueConfig {
    /// Which venue.
    pub venue: Venue,
    /// WebSocket base URL, without a trailing `/`.
    pub url: String,
    /// REST base URL, without a trailing `/` (shared by Bybit's three markets).
    pub rest_url: String,
    /// Uppercase symbols, in the configured order, without duplicates; empty when `all_symbols`.
    pub symbols: Vec<String>,
    /// `*`: every symbol the venue lists as trading, followed as listings change.
    pub all_symbols: bool,
    /// Channels, in the configured order, without duplicates.
    pub channels: Vec<Channel>,
    /// The thresholds in force for this market: the global ones, or its own `_DEGRADED_AFTER`, `_STALE_AFTER`,
    /// `_CRITICAL_AFTER`.
    pub thresholds: Thresholds,
}

impl VenueConfig {
    /// Keeps only `shard`'s part of the listed symbols (a `*` market is split as each listing arrives).
    fn sharded(mut self, shard: Option<Shard>) -> Self {
        crate::shard::retain_part(shard, &mut self.symbols);
        self
    }
}

/// The log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines (default).
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl LogFormat {
    /// The variable's spelling: `text` or `json`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

mod env;
mod error;
mod flags;
mod help;

use env::*;
use error::*;
pub use error::{ConfigError, ConfigErrors, UrlProblem};
pub use flags::{Action, Flags, parse_flags};
pub use help::help_text;
use help::*;

impl Config {
    /// Builds the configuration from `vars`, the whole environment (the caller passes
    /// `std::env::vars()`), and the parsed `flags`.
    ///
    /// Only names starting with [`ENV_PREFIX`] are read, and an unknown one is an error.
    pub fn load(
        vars: impl IntoIterator<Item = (String, String)>,
        flags: &Flags,
    ) -> Result<Config, ConfigErrors> {
        let mut errors = Vec::new();
        let listen_address = keep(listen_address(&flags.listen_address), &mut errors);
        let telemetry_path = keep(telemetry_path(&flags.telemetry_path), &mut errors);
        let web = keep(web_config(&flags.web_config_file), &mut errors);
        let (env, ignored_variables) = read_env(vars, &mut errors);
        let thresholds = thresholds(&env, &mut errors);
        // Setting any _SYMBOLS opts every other venue out of the defaults, so that a sidecar for
        // one market does not quietly watch four more.
        let watch_by_default = Venue::ALL.iter().all(|&v| env.venue(v).symbols.is_none());
        let mut unwatched_variables = Vec::new();
        let venues: Vec<VenueConfig> = Venue::ALL
            .into_iter()
            .filter_map(|v| {
                let raw = env.venue(v);
                let watched = raw.symbols.is_some() || watch_by_default;
                if !watched {
                    unwatched_variables.extend(raw.set_variables(v));
                }
                let config = venue_config(v, raw, watch_by_default, thresholds, &mut errors);
                config.filter(|_| watched)
            })
            .collect();
        unwatched_variables.sort();
        let heartbeat_misses = keep(
            freshness::heartbeat_misses(value(&env.heartbeat_misses)),
            &mut errors,
        );
        let idle_timeout = keep(
            duration(IDLE_TIMEOUT, value(&env.idle_timeout), DEFAULT_IDLE_TIMEOUT),
            &mut errors,
        );
        let resubscribe_after = keep(
            duration(
                RESUBSCRIBE_AFTER,
                value(&env.resubscribe_after),
                DEFAULT_RESUBSCRIBE_AFTER,
            ),
            &mut errors,
        );
        let log_format = keep(log_format(value(&env.log_format)), &mut errors);
        let log_level = keep(log_level(value(&env.log_level)), &mut errors);
        let shard = keep(env::shard(value(&env.shard)), &mut errors);

        // Every `None` above recorded its problem, so the fallback arm never returns an empty list.
        match (
            thresholds,
            idle_timeout,
            resubscribe_after,
            heartbeat_misses,
            log_format,
            log_level,
            listen_address,
            telemetry_path,
            web,
            shard,
        ) {
            (
                Some(thresholds),
                Some(idle_timeout),
                Some(resubscribe_after),
                Some(heartbeat_misses),
                Some(log_format),
                Some(log_level),
                Some(listen_address),
                Some(telemetry_path),
                Some(web),
                Some(shard),
            ) if errors.is_empty() => Ok(Config {
                venues: venues.into_iter().map(|v| v.sharded(shard)).collect(),
                thresholds,
                idle_timeout,
                resubscribe_after,
                heartbeat_misses,
                log_format,
                log_level,
                listen_address,
                telemetry_path,
                web,
                ignored_variables,
                unwatched_variables,
                shard,
            }),
            _ => Err(ConfigErrors::sorted(errors)),
        }
    }

    /// A few lines saying what will be watched and served, for `--check-config` and the startup log.
    pub fn summary(&self) -> String {
        let mut lines: Vec<String> = self
            .venues
            .iter()
            .map(|v| {
                let channels: Vec<String> = v
                    .channels
                    .iter()
                    .map(|c| match c.interval {
                        Some(interval) => format!(
                            "{} (every {}, late after {})",
                            c.name,
                            human(&interval),
                            human(&self.rules(v).late_after(interval))
                        ),
                        None => c.name.to_string(),
                    })
                    .collect();
                let thresholds = if v.thresholds == self.thresholds {
                    String::new()
                } else {
                    format!(", {}", thresholds_line(&v.thresholds))
                };
                format!(
                    "{}: {}, rest {}, channels {}, symbols {}{thresholds}",
                    v.venue,
                    v.url,
                    v.rest_url,
                    channels.join(" + "),
                    if v.all_symbols {
                        "* (every trading symbol)".to_owned()
                    } else {
                        v.symbols.join(",")
                    }
                )
            })
            .collect();
        if let Some(shard) = self.shard {
            lines.push(format!(
                "shard {shard}: only the symbols whose hash falls in shard {} of {} (listed ones above already split)",
                shard.index(),
                shard.count()
            ));
        }
        lines.push(thresholds_line(&self.thresholds));
        lines.push(format!(
            "idle timeout {}, resubscribe after {}, scheduled channels late after {} missed intervals + {}",
            human(&self.idle_timeout),
            human(&self.resubscribe_after),
            self.heartbeat_misses,
            human(&LATE_GRACE)
        ));
        lines.push(format!(
            "log format {}, level {:?}",
            self.log_format.as_str(),
            self.log_level
        ));
        let tls = self.web.as_ref().and_then(|w| w.tls.as_ref());
        lines.push(format!(
            "metrics at {}://{}{}",
            if tls.is_some() { "https" } else { "http" },
            self.listen_address,
            self.telemetry_path
        ));
        if let Some(web) = &self.web {
            // Names and counts only: the summary goes to the log.
            let client_auth = match tls.map(|t| t.client_auth) {
                Some(ClientAuth::RequireAndVerify) => ", client certificates required",
                Some(ClientAuth::VerifyIfGiven) => ", client certificates verified if given",
                _ => "",
            };
            lines.push(format!(
                "web config {}: TLS {}{client_auth}, basic auth {}",
                web.path.display(),
                if tls.is_some() { "on" } else { "off" },
                match web.users.len() {
                    0 => "off".to_owned(),
                    1 => "on (1 user)".to_owned(),
                    n => format!("on ({n} users)"),
                }
            ));
        }
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::model::ChannelKind;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
        Config::load(vars(pairs), &Flags::default())
    }

    fn load_errors(pairs: &[(&str, &str)], flags: &Flags) -> Vec<String> {
        match Config::load(vars(pairs), flags) {
            Ok(config) => panic!("{pairs:?}: expected errors, got {config:?}"),
            Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
        }
    }

    /// A channel as configuration must build it; the cadences of the default channels are spelt out here, so
    /// that loading checks the venue table too.
    fn channel(name: &str, kind: ChannelKind) -> Channel {
        let interval = match name {
            "depth5" | "markPrice@1s" => Some(Duration::from_secs(1)),
            "orderbook.1" => Some(Duration::from_secs(3)),
            _ => None,
        };
        Channel {
            name: name.into(),
            kind,
            interval,
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|&s| s.to_owned()).collect()
    }

    fn default_venues() -> Vec<VenueConfig> {
        let bybit = |venue, market, symbols: &[&str]| VenueConfig {
            venue,
            url: format!("wss://stream.bybit.com/v5/public/{market}"),
            rest_url: "https://api.bybit.com".to_owned(),
            symbols: strings(symbols),
            all_symbols: false,
            channels: vec![
                channel("orderbook.1", ChannelKind::BookTop),
                channel("tickers", ChannelKind::Ticker),
            ],
            thresholds: Thresholds::default(),
        };
        vec![
            VenueConfig {
                venue: Venue::BinanceSpot,
                url: "wss://stream.binance.com:9443".to_owned(),
                rest_url: "https://api.binance.com".to_owned(),
                symbols: strings(&["BTCUSDT", "ETHUSDT"]),
                all_symbols: false,
                channels: vec![
                    channel("depth5", ChannelKind::BookLevels),
                    channel("aggTrade", ChannelKind::Trade),
                ],
                thresholds: Thresholds::default(),
            },
            VenueConfig {
                venue: Venue::BinanceUsdm,
                url: "wss://fstream.binance.com".to_owned(),
                rest_url: "https://fapi.binance.com".to_owned(),
                symbols: strings(&["BTCUSDT", "ETHUSDT"]),
                all_symbols: false,
                channels: vec![
                    channel("markPrice@1s", ChannelKind::MarkPrice),
                    channel("bookTicker", ChannelKind::BookTop),
                ],
                thresholds: Thresholds::default(),
            },
            bybit(Venue::BybitSpot, "spot", &["BTCUSDT", "ETHUSDT"]),
            bybit(Venue::BybitLinear, "linear", &["BTCUSDT", "ETHUSDT"]),
            bybit(Venue::BybitInverse, "inverse", &["BTCUSD", "ETHUSD"]),
        ]
    }

    fn default_config() -> Config {
        Config {
            venues: default_venues(),
            thresholds: Thresholds {
                degraded: Duration::from_secs(180),
                stale: Duration::from_secs(300),
                critical: Duration::from_secs(3600),
            },
            idle_timeout: Duration::from_secs(60),
            resubscribe_after: Duration::from_secs(600),
            heartbeat_misses: 5,
            log_format: LogFormat::Text,
            log_level: "info".to_owned(),
            listen_address: SocketAddr::from((Ipv6Addr::UNSPECIFIED, 10066)),
            telemetry_path: "/metrics".to_owned(),
            web: None,
            ignored_variables: Vec::new(),
            unwatched_variables: Vec::new(),
            shard: None,
        }
    }

    #[test]
    fn no_variables_gives_the_defaults() {
        assert_eq!(load(&[]), Ok(default_config()));
    }

    #[test]
    fn other_variables_are_ignored() {
        let config = load(&[
            ("PATH", "/bin"),
            ("marketfeed_log_level", "x"),
            ("MARKETFEED", "x"),
        ]);
        assert_eq!(config, Ok(default_config()));
    }

    #[test]
    fn full_valid_config() {
        let config = load(&[
            ("MARKETFEED_BINANCE_SPOT_SYMBOLS", "btcusdt"),
            ("MARKETFEED_BINANCE_SPOT_URL", "ws://127.0.0.1:9001/"),
            ("MARKETFEED_BINANCE_SPOT_CHANNELS", "bookTicker"),
            ("MARKETFEED_BINANCE_USDM_SYMBOLS", "SOLUSDT"),
            (
                "MARKETFEED_BINANCE_USDM_URL",
                "wss://fstream.binancefuture.com",
            ),
            ("MARKETFEED_BINANCE_USDM_CHANNELS", "aggTrade,markPrice@1s"),
            ("MARKETFEED_BYBIT_SPOT_SYMBOLS", "ETHUSDT"),
            (
                "MARKETFEED_BYBIT_SPOT_URL",
                "wss://stream-testnet.bybit.com/v5/public/spot",
            ),
            ("MARKETFEED_BYBIT_SPOT_CHANNELS", "tickers"),
            ("MARKETFEED_BYBIT_LINEAR_SYMBOLS", "BTCPERP"),
            (
                "MARKETFEED_BYBIT_LINEAR_URL",
                "ws://[::1]:9002/v5/public/linear",
            ),
            ("MARKETFEED_BYBIT_LINEAR_CHANNELS", "orderbook.1"),
            ("MARKETFEED_BYBIT_INVERSE_SYMBOLS", "BTCUSD,BTCUSDH26"),
            ("MARKETFEED_BYBIT_INVERSE_URL", "wss://localhost"),
            ("MARKETFEED_BYBIT_INVERSE_CHANNELS", "tickers,orderbook.1"),
            ("MARKETFEED_DEGRADED_AFTER", "30s"),
            ("MARKETFEED_STALE_AFTER", "1m 30s"),
            ("MARKETFEED_CRITICAL_AFTER", "2h"),
            ("MARKETFEED_IDLE_TIMEOUT", "15s"),
            ("MARKETFEED_RESUBSCRIBE_AFTER", "2m"),
            ("MARKETFEED_LOG_FORMAT", "json"),
            ("MARKETFEED_LOG_LEVEL", "info,marketfeed_exporter=debug"),
        ]);
        let thresholds = Thresholds {
            degraded: Duration::from_secs(30),
            stale: Duration::from_secs(90),
            critical: Duration::from_secs(7200),
        };
        let venue = |venue, url: &str, symbols: &[&str], channels| VenueConfig {
            venue,
            url: url.to_owned(),
            rest_url: venue::rest::default_rest_url(venue).to_owned(),
            symbols: strings(symbols),
            all_symbols: false,
            channels,
            thresholds,
        };
        let expected = Config {
            venues: vec![
                venue(
                    Venue::BinanceSpot,
                    "ws://127.0.0.1:9001",
                    &["BTCUSDT"],
                    vec![channel("bookTicker", ChannelKind::BookTop)],
                ),
                venue(
                    Venue::BinanceUsdm,
                    "wss://fstream.binancefuture.com",
                    &["SOLUSDT"],
                    vec![
                        channel("aggTrade", ChannelKind::Trade),
                        channel("markPrice@1s", ChannelKind::MarkPrice),
                    ],
                ),
                venue(
                    Venue::BybitSpot,
                    "wss://stream-testnet.bybit.com/v5/public/spot",
                    &["ETHUSDT"],
                    vec![channel("tickers", ChannelKind::Ticker)],
                ),
                venue(
                    Venue::BybitLinear,
                    "ws://[::1]:9002/v5/public/linear",
                    &["BTCPERP"],
                    vec![channel("orderbook.1", ChannelKind::BookTop)],
                ),
                venue(
                    Venue::BybitInverse,
                    "wss://localhost",
                    &["BTCUSD", "BTCUSDH26"],
                    vec![
                        channel("tickers", ChannelKind::Ticker),
                        channel("orderbook.1", ChannelKind::BookTop),
                    ],
                ),
            ],
            thresholds,
            idle_timeout: Duration::from_secs(15),
            resubscribe_after: Duration::from_secs(120),
            log_format: LogFormat::Json,
            log_level: "info,marketfeed_exporter=debug".to_owned(),
            ..default_config()
        };
        assert_eq!(config, Ok(expected));
    }

    #[test]
    fn only_venues_with_symbols_are_watched() {
        let config = load(&[
            ("MARKETFEED_BYBIT_LINEAR_SYMBOLS", "BTCUSDT"),
            ("MARKETFEED_BINANCE_USDM_SYMBOLS", "ETHUSDT"),
        ]);
        let watched: Vec<(Venue, Vec<String>)> = config
            .unwrap_or_else(|e| panic!("{e}"))
            .venues
            .into_iter()
            .map(|v| (v.venue, v.symbols))
            .collect();
        assert_eq!(
            watched,
            [
                (Venue::BinanceUsdm, strings(&["ETHUSDT"])),
                (Venue::BybitLinear, strings(&["BTCUSDT"])),
            ]
        );
    }

    #[test]
    fn lists_and_values_are_normalised() {
        let cases: &[(&str, &str, &[&str])] = &[
            ("MARKETFEED_BYBIT_SPOT_SYMBOLS", "btcusdt", &["BTCUSDT"]),
            (
                "MARKETFEED_BYBIT_SPOT_SYMBOLS",
                " ethusdt , BtcUsdt,,",
                &["ETHUSDT", "BTCUSDT"],
            ),
            (
                "MARKETFEED_BYBIT_SPOT_SYMBOLS",
                "1000pepe-usdt_x\n",
                &["1000PEPE-USDT_X"],
            ),
        ];
        for &(var, value, expected) in cases {
            let config = load(&[(var, value)]).unwrap_or_else(|e| panic!("{value:?}: {e}"));
            assert_eq!(config.venues[0].symbols, strings(expected), "{value:?}");
        }
        let urls = [
            (
                "wss://stream.bybit.com/v5/public/spot/",
                "wss://stream.bybit.com/v5/public/spot",
            ),
            ("ws://127.0.0.1:9001//", "ws://127.0.0.1:9001"),
            (" wss://x\n", "wss://x"),
        ];
        for (value, expected) in urls {
            let config = load(&[("MARKETFEED_BYBIT_SPOT_URL", value)]);
            let url = config.map(|c| c.venues[2].url.clone());
            assert_eq!(url, Ok(expected.to_owned()), "{value:?}");
        }
        let config = load(&[
            ("MARKETFEED_LOG_FORMAT", "json\n"),
            ("MARKETFEED_STALE_AFTER", " 4m "),
        ]);
        let config = config.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.thresholds.stale, Duration::from_secs(240));
    }

    #[test]
    fn each_problem_is_reported_exactly() {
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
        let cases: &[Case] = &[
            (
                &[("MARKETFEED_BINANCE_SPOT_SYMBOL", "BTCUSDT")],
                &[
                    "MARKETFEED_BINANCE_SPOT_SYMBOL: unknown variable (did you mean MARKETFEED_BINANCE_SPOT_SYMBOLS?)",
                ],
            ),
            (
                &[("MARKETFEED_LOG_LEVL", "debug")],
                &["MARKETFEED_LOG_LEVL: unknown variable (did you mean MARKETFEED_LOG_LEVEL?)"],
            ),
            (
                &[("MARKETFEED_log_level", "debug")],
                &["MARKETFEED_log_level: unknown variable (did you mean MARKETFEED_LOG_LEVEL?)"],
            ),
            (
                &[("MARKETFEED_FOO", "1")],
                &["MARKETFEED_FOO: unknown variable"],
            ),
            (&[("MARKETFEED_", "1")], &["MARKETFEED_: unknown variable"]),
            (
                &[("MARKETFEED_BYBIT_SPOT_SYMBOLS", "")],
                &["MARKETFEED_BYBIT_SPOT_SYMBOLS: empty symbol list"],
            ),
            (
                &[("MARKETFEED_BYBIT_SPOT_SYMBOLS", " , ,")],
                &["MARKETFEED_BYBIT_SPOT_SYMBOLS: empty symbol list"],
            ),
            (
                &[("MARKETFEED_BYBIT_SPOT_SYMBOLS", "BTC/USDT")],
                &[
                    r#"MARKETFEED_BYBIT_SPOT_SYMBOLS: invalid symbol "BTC/USDT" (letters, digits, '-' and '_' only)"#,
                ],
            ),
            (
                &[(
                    "MARKETFEED_BYBIT_SPOT_SYMBOLS",
                    "BTCUSDT,x y,btcusdt,ETHUSDT,BTCUSDT,é",
                )],
                &[
                    r#"MARKETFEED_BYBIT_SPOT_SYMBOLS: invalid symbol "x y" (letters, digits, '-' and '_' only)"#,
                    r#"MARKETFEED_BYBIT_SPOT_SYMBOLS: symbol "BTCUSDT" listed twice"#,
                    r#"MARKETFEED_BYBIT_SPOT_SYMBOLS: invalid symbol "é" (letters, digits, '-' and '_' only)"#,
                ],
            ),
            (
                &[("MARKETFEED_BINANCE_SPOT_URL", "http://x")],
                &[
                    r#"MARKETFEED_BINANCE_SPOT_URL: invalid URL "http://x": scheme must be ws or wss"#,
                ],
            ),
            (
                &[("MARKETFEED_BINANCE_SPOT_URL", "stream.binance.com:9443")],
                &[
                    r#"MARKETFEED_BINANCE_SPOT_URL: invalid URL "stream.binance.com:9443": scheme must be ws or wss"#,
                ],
            ),
            (
                &[("MARKETFEED_BINANCE_SPOT_URL", "wss://:9443")],
                &[r#"MARKETFEED_BINANCE_SPOT_URL: invalid URL "wss://:9443": missing host"#],
            ),
            (
                &[("MARKETFEED_BINANCE_SPOT_URL", "wss://stream binance")],
                &[
                    r#"MARKETFEED_BINANCE_SPOT_URL: invalid URL "wss://stream binance": invalid uri character"#,
                ],
            ),
            (
                &[("MARKETFEED_BINANCE_SPOT_URL", "")],
                &[r#"MARKETFEED_BINANCE_SPOT_URL: invalid URL "": empty string"#],
            ),
            (
                // An unwatched market's variables are accepted, but still checked.
                &[
                    ("MARKETFEED_BINANCE_SPOT_SYMBOLS", "BTCUSDT"),
                    ("MARKETFEED_BYBIT_SPOT_URL", "wss://x/v5/public/linear"),
                    ("MARKETFEED_BYBIT_SPOT_CHANNELS", "ticker"),
                ],
                &[
                    r#"MARKETFEED_BYBIT_SPOT_CHANNELS: unknown channel "ticker" for bybit/spot (supported: orderbook.<1|50|200|1000>, publicTrade, tickers, kline.<1|3|5|15|30|60|120|240|360|720|D|W|M>)"#,
                    r#"MARKETFEED_BYBIT_SPOT_URL: invalid URL "wss://x/v5/public/linear": the path is bybit/linear's stream, not bybit/spot's; use "wss://x/v5/public/spot""#,
                ],
            ),
            (
                &[("MARKETFEED_BINANCE_SPOT_CHANNELS", " , ")],
                &["MARKETFEED_BINANCE_SPOT_CHANNELS: empty channel list"],
            ),
            (
                &[(
                    "MARKETFEED_BINANCE_SPOT_CHANNELS",
                    "aggTrade,depth5, aggTrade,aggTrade",
                )],
                &[r#"MARKETFEED_BINANCE_SPOT_CHANNELS: channel "aggTrade" listed twice"#],
            ),
            (
                &[("MARKETFEED_STALE_AFTER", "5")],
                &[r#"MARKETFEED_STALE_AFTER: invalid duration "5" (use e.g. 30s, 5m, 1h)"#],
            ),
            (
                &[("MARKETFEED_RESUBSCRIBE_AFTER", "-1s")],
                &[r#"MARKETFEED_RESUBSCRIBE_AFTER: invalid duration "-1s" (use e.g. 30s, 5m, 1h)"#],
            ),
            (
                &[("MARKETFEED_IDLE_TIMEOUT", "0s")],
                &[r#"MARKETFEED_IDLE_TIMEOUT: must be at least 1s (got "0s")"#],
            ),
            (
                // A millisecond makes the watchdogs thrash: refused, with the floor named.
                &[
                    ("MARKETFEED_IDLE_TIMEOUT", "1ms"),
                    ("MARKETFEED_RESUBSCRIBE_AFTER", "999ms"),
                ],
                &[
                    r#"MARKETFEED_IDLE_TIMEOUT: must be at least 1s (got "1ms")"#,
                    r#"MARKETFEED_RESUBSCRIBE_AFTER: must be at least 1s (got "999ms")"#,
                ],
            ),
            (
                &[("MARKETFEED_DEGRADED_AFTER", "0m")],
                &[r#"MARKETFEED_DEGRADED_AFTER: must be at least 1s (got "0m")"#],
            ),
            (
                &[
                    ("MARKETFEED_DEGRADED_AFTER", "5m"),
                    ("MARKETFEED_STALE_AFTER", "3m"),
                ],
                &[
                    "MARKETFEED_DEGRADED_AFTER, MARKETFEED_STALE_AFTER, MARKETFEED_CRITICAL_AFTER: thresholds out of order (5m, 3m, 1h); need degraded < stale < critical",
                ],
            ),
            (
                &[("MARKETFEED_CRITICAL_AFTER", "300s")],
                &[
                    "MARKETFEED_DEGRADED_AFTER, MARKETFEED_STALE_AFTER, MARKETFEED_CRITICAL_AFTER: thresholds out of order (3m, 5m, 5m); need degraded < stale < critical",
                ],
            ),
            // An unreadable threshold is not also compared.
            (
                &[
                    ("MARKETFEED_DEGRADED_AFTER", "soon"),
                    ("MARKETFEED_CRITICAL_AFTER", "1s"),
                ],
                &[r#"MARKETFEED_DEGRADED_AFTER: invalid duration "soon" (use e.g. 30s, 5m, 1h)"#],
            ),
            (
                &[("MARKETFEED_LOG_FORMAT", "xml")],
                &[r#"MARKETFEED_LOG_FORMAT: invalid value "xml" (expected text or json)"#],
            ),
            (
                &[("MARKETFEED_LOG_FORMAT", "JSON")],
                &[r#"MARKETFEED_LOG_FORMAT: invalid value "JSON" (expected text or json)"#],
            ),
            (
                &[("MARKETFEED_LOG_LEVEL", "marketfeed=loud")],
                &[
                    r#"MARKETFEED_LOG_LEVEL: invalid filter "marketfeed=loud": "loud" is not a level (trace, debug, info, warn, error, off)"#,
                ],
            ),
            (
                &[("MARKETFEED_LOG_LEVEL", " ")],
                &[r#"MARKETFEED_LOG_LEVEL: invalid filter "": empty; use a level such as info"#],
            ),
            // Everything at once, sorted by variable, items of one variable in their own order.
            (
                &[
                    ("MARKETFEED_STALE_AFTER", "5 mins ago"),
                    ("MARKETFEED_BYBIT_SPOT_SYMBOLS", "a.b,c.d"),
                    ("MARKETFEED_BINANCE_SPOT_SYMBOL", "BTCUSDT"),
                    ("MARKETFEED_LOG_FORMAT", "yaml"),
                ],
                &[
                    "MARKETFEED_BINANCE_SPOT_SYMBOL: unknown variable (did you mean MARKETFEED_BINANCE_SPOT_SYMBOLS?)",
                    r#"MARKETFEED_BYBIT_SPOT_SYMBOLS: invalid symbol "a.b" (letters, digits, '-' and '_' only)"#,
                    r#"MARKETFEED_BYBIT_SPOT_SYMBOLS: invalid symbol "c.d" (letters, digits, '-' and '_' only)"#,
                    r#"MARKETFEED_LOG_FORMAT: invalid value "yaml" (expected text or json)"#,
                    r#"MARKETFEED_STALE_AFTER: invalid duration "5 mins ago" (use e.g. 30s, 5m, 1h)"#,
                ],
            ),
        ];
        for &(pairs, expected) in cases {
            assert_eq!(load_errors(pairs, &Flags::default()), expected, "{pairs:?}");
        }
    }

    #[test]
    fn urls_the_exporter_would_extend_wrongly_name_the_corrected_value() {
        let cases = [
            (
                "MARKETFEED_BINANCE_SPOT_URL",
                "wss://stream.binance.com:9443/stream",
                "the exporter appends the route (/stream here) itself; use \"wss://stream.binance.com:9443\"",
            ),
            (
                "MARKETFEED_BINANCE_SPOT_URL",
                "wss://stream.binance.com:9443/ws/",
                "the exporter appends the route (/ws here) itself; use \"wss://stream.binance.com:9443\"",
            ),
            (
                "MARKETFEED_BINANCE_USDM_URL",
                "wss://fstream.binance.com/market/stream",
                "the exporter appends the route (/market/stream here) itself; use \"wss://fstream.binance.com\"",
            ),
            (
                "MARKETFEED_BINANCE_USDM_URL",
                "wss://proxy.example/binance/public",
                "the exporter appends the route (/public here) itself; use \"wss://proxy.example/binance\"",
            ),
            (
                "MARKETFEED_BYBIT_LINEAR_URL",
                "wss://stream.bybit.com/v5/public/spot",
                "the path is bybit/spot's stream, not bybit/linear's; use \"wss://stream.bybit.com/v5/public/linear\"",
            ),
            (
                "MARKETFEED_BYBIT_INVERSE_URL",
                "wss://stream.bybit.com/v5/public",
                "a Bybit stream URL ends in its market's path, /v5/public/inverse; use \"wss://stream.bybit.com/v5/public/inverse\"",
            ),
            (
                "MARKETFEED_BYBIT_REST_URL",
                "https://api.bybit.com/v5",
                "the exporter appends /v5/... itself; use \"https://api.bybit.com\"",
            ),
            (
                "MARKETFEED_BYBIT_REST_URL",
                "https://api.bybit.com/v5/market/",
                "the exporter appends /v5/market/... itself; use \"https://api.bybit.com\"",
            ),
            (
                "MARKETFEED_BINANCE_SPOT_REST_URL",
                "https://api.binance.com/api/v3",
                "the exporter appends /api/v3/... itself; use \"https://api.binance.com\"",
            ),
            (
                "MARKETFEED_BINANCE_USDM_REST_URL",
                "https://fapi.binance.com/fapi",
                "the exporter appends /fapi/... itself; use \"https://fapi.binance.com\"",
            ),
        ];
        for (var, url, problem) in cases {
            let given = url.trim_end_matches('/');
            assert_eq!(
                load_errors(&[(var, url)], &Flags::default()),
                [format!("{var}: invalid URL {given:?}: {problem}")],
                "{url}"
            );
        }
        // Right paths, and proxies' own paths, pass.
        for (var, url) in [
            (
                "MARKETFEED_BINANCE_SPOT_URL",
                "wss://proxy.example/binance-spot",
            ),
            (
                "MARKETFEED_BYBIT_LINEAR_URL",
                "wss://stream-testnet.bybit.com/v5/public/linear",
            ),
            ("MARKETFEED_BYBIT_SPOT_URL", "ws://127.0.0.1:9001"),
            ("MARKETFEED_BYBIT_REST_URL", "https://proxy.example/bybit"),
            (
                "MARKETFEED_BINANCE_USDM_URL",
                "wss://fstream.binance.com/?timeUnit=MICROSECOND",
            ),
        ] {
            let loaded = load(&[(var, url)]);
            assert!(loaded.is_ok(), "{url}: {loaded:?}");
        }
    }

    #[test]
    fn one_base_configmap_serves_bots_that_watch_different_markets() {
        let mut base: Vec<(&str, &str)> = Venue::ALL
            .iter()
            .map(|&v| match v {
                Venue::BinanceSpot => (
                    "MARKETFEED_BINANCE_SPOT_URL",
                    "wss://stream.binance.com:9443",
                ),
                Venue::BinanceUsdm => ("MARKETFEED_BINANCE_USDM_URL", "wss://fstream.binance.com"),
                Venue::BybitSpot => (
                    "MARKETFEED_BYBIT_SPOT_URL",
                    "wss://stream.bybit.com/v5/public/spot",
                ),
                Venue::BybitLinear => (
                    "MARKETFEED_BYBIT_LINEAR_URL",
                    "wss://stream.bybit.com/v5/public/linear",
                ),
                Venue::BybitInverse => (
                    "MARKETFEED_BYBIT_INVERSE_URL",
                    "wss://stream.bybit.com/v5/public/inverse",
                ),
            })
            .collect();
        base.extend([
            ("MARKETFEED_BINANCE_USDM_CHANNELS", "bookTicker"),
            ("MARKETFEED_BYBIT_INVERSE_STALE_AFTER", "10m"),
            (
                "MARKETFEED_BINANCE_USDM_REST_URL",
                "https://fapi.binance.com",
            ),
        ]);
        base.push(("MARKETFEED_BYBIT_LINEAR_SYMBOLS", "BTCUSDT"));
        let config = load(&base).unwrap();
        assert_eq!(config.venues.len(), 1);
        assert_eq!(config.venues[0].venue, Venue::BybitLinear);
        assert_eq!(
            config.unwatched_variables,
            [
                "MARKETFEED_BINANCE_SPOT_URL",
                "MARKETFEED_BINANCE_USDM_CHANNELS",
                "MARKETFEED_BINANCE_USDM_REST_URL",
                "MARKETFEED_BINANCE_USDM_URL",
                "MARKETFEED_BYBIT_INVERSE_STALE_AFTER",
                "MARKETFEED_BYBIT_INVERSE_URL",
                "MARKETFEED_BYBIT_SPOT_URL",
            ]
        );
        // With no _SYMBOLS at all every market is watched, and nothing is unused.
        base.pop();
        let config = load(&base).unwrap();
        assert_eq!(config.venues.len(), 5);
        assert!(config.unwatched_variables.is_empty());
    }

    #[test]
    fn unknown_channel_carries_the_venue_modules_reason() {
        let var = "MARKETFEED_BINANCE_SPOT_CHANNELS";
        let reason = venue::parse_channel(Venue::BinanceSpot, "foo").err();
        let expected = reason.map(|reason| vec![format!("{var}: {reason}")]);
        assert_eq!(
            Some(load_errors(&[(var, "foo")], &Flags::default())),
            expected
        );
    }

    #[test]
    fn bad_flag_values_are_reported_first() {
        let flags = |listen_address: &str, telemetry_path: &str| Flags {
            action: Action::Run,
            listen_address: listen_address.to_owned(),
            telemetry_path: telemetry_path.to_owned(),
            web_config_file: String::new(),
        };
        let path_error = "--web.telemetry-path: must start with '/', use only letters, digits and '/._-', and must not be '/', '/-/...' or '/api/...'";
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "nonsense",
                "/metrics",
                &[r#"--web.listen-address: invalid address "nonsense""#],
            ),
            (
                ":99999",
                "/metrics",
                &[r#"--web.listen-address: invalid address ":99999""#],
            ),
            (
                "",
                "/metrics",
                &[r#"--web.listen-address: invalid address """#],
            ),
            (":10066", "metrics", &[path_error]),
            (":10066", "/", &[path_error]),
            (":10066", "/-/metrics", &[path_error]),
            (":10066", "/api/metrics", &[path_error]),
            (":10066", "/{metrics}", &[path_error]),
            (":10066", "/metrics/*rest", &[path_error]),
            (":10066", "/met rics", &[path_error]),
            (
                "1.2.3:80",
                "",
                &[
                    r#"--web.listen-address: invalid address "1.2.3:80""#,
                    path_error,
                ],
            ),
        ];
        for &(listen_address, telemetry_path, expected) in cases {
            let errors = load_errors(&[], &flags(listen_address, telemetry_path));
            assert_eq!(errors, expected, "{listen_address:?} {telemetry_path:?}");
        }
        let errors = load_errors(&[("MARKETFEED_A", "")], &flags("x", "/metrics"));
        assert_eq!(
            errors,
            [
                r#"--web.listen-address: invalid address "x""#,
                "MARKETFEED_A: unknown variable"
            ]
        );
    }

    #[test]
    fn listen_address_forms() {
        let cases = [
            (":10066", SocketAddr::from((Ipv6Addr::UNSPECIFIED, 10066))),
            (
                "0.0.0.0:10066",
                SocketAddr::from((Ipv4Addr::UNSPECIFIED, 10066)),
            ),
            (
                "127.0.0.1:9000",
                SocketAddr::from((Ipv4Addr::LOCALHOST, 9000)),
            ),
            ("[::1]:9000", SocketAddr::from((Ipv6Addr::LOCALHOST, 9000))),
            (
                "[::]:10066",
                SocketAddr::from((Ipv6Addr::UNSPECIFIED, 10066)),
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(listen_address(value), Ok(expected), "{value:?}");
        }
        let resolved = listen_address("localhost:1234").map(|a| (a.ip().is_loopback(), a.port()));
        assert_eq!(resolved, Ok((true, 1234)));
    }

    #[test]
    fn telemetry_path_forms() {
        for path in ["/metrics", "/api", "/-", "/x/metrics"] {
            assert_eq!(telemetry_path(path), Ok(path.to_owned()));
        }
    }

    #[test]
    fn flags_forms() {
        let flags = |action, listen_address: &str, telemetry_path: &str| Flags {
            action,
            listen_address: listen_address.to_owned(),
            telemetry_path: telemetry_path.to_owned(),
            web_config_file: String::new(),
        };
        type Case<'a> = (&'a [&'a str], Result<Flags, &'a [&'a str]>);
        let cases: &[Case] = &[
            (&[], Ok(Flags::default())),
            (
                &["--check-config"],
                Ok(flags(Action::CheckConfig, ":10066", "/metrics")),
            ),
            (
                &["--version"],
                Ok(flags(Action::Version, ":10066", "/metrics")),
            ),
            (&["-h"], Ok(flags(Action::Help, ":10066", "/metrics"))),
            (
                &["--version", "--help", "--check-config"],
                Ok(flags(Action::Help, ":10066", "/metrics")),
            ),
            (
                &["--check-config", "--version"],
                Ok(flags(Action::Version, ":10066", "/metrics")),
            ),
            (
                &["--web.listen-address=:9999", "--web.telemetry-path", "/m"],
                Ok(flags(Action::Run, ":9999", "/m")),
            ),
            (
                &[
                    "--web.listen-address",
                    "[::1]:80",
                    "--web.telemetry-path=/a=b",
                ],
                Ok(flags(Action::Run, "[::1]:80", "/a=b")),
            ),
            // The value is checked by `Config::load`, not here.
            (
                &["--web.telemetry-path="],
                Ok(flags(Action::Run, ":10066", "")),
            ),
            (&["--foo"], Err(&["unknown flag --foo (see --help)"])),
            (
                &["--foo=bar", "baz"],
                Err(&[
                    "unknown flag --foo (see --help)",
                    "unknown flag baz (see --help)",
                ]),
            ),
            (
                &["--web.listen-address"],
                Err(&["--web.listen-address: missing value"]),
            ),
            (
                &["--web.listen-address", "--check-config"],
                Err(&["--web.listen-address: missing value"]),
            ),
            (
                &["--web.telemetry-path=/a", "--web.telemetry-path", "/b"],
                Err(&["--web.telemetry-path: given more than once"]),
            ),
            (&["--help=yes"], Err(&["--help: takes no value"])),
            (
                &[
                    "--web.telemetry-path",
                    "--web.listen-address",
                    "-h",
                    "--zzz",
                ],
                Err(&[
                    "--web.listen-address: missing value",
                    "--web.telemetry-path: missing value",
                    "unknown flag --zzz (see --help)",
                ]),
            ),
        ];
        for (args, expected) in cases {
            let parsed = parse_flags(args.iter().map(|&a| a.to_owned()));
            let parsed =
                parsed.map_err(|e| e.0.iter().map(ToString::to_string).collect::<Vec<_>>());
            let expected = expected.clone().map_err(strings);
            assert_eq!(parsed, expected, "{args:?}");
        }
    }

    #[test]
    fn errors_display_one_per_line() {
        let errors = load(&[("MARKETFEED_A", ""), ("MARKETFEED_B", "")]).err();
        let text = errors.map(|e| e.to_string());
        assert_eq!(
            text.as_deref(),
            Some("MARKETFEED_A: unknown variable\nMARKETFEED_B: unknown variable")
        );
    }

    #[test]
    fn summary_of_the_defaults() {
        let expected = "\
binance/spot: wss://stream.binance.com:9443, rest https://api.binance.com, channels depth5 (every 1s, late after 7s) + aggTrade, symbols BTCUSDT,ETHUSDT
binance/usdm: wss://fstream.binance.com, rest https://fapi.binance.com, channels markPrice@1s (every 1s, late after 7s) + bookTicker, symbols BTCUSDT,ETHUSDT
bybit/spot: wss://stream.bybit.com/v5/public/spot, rest https://api.bybit.com, channels orderbook.1 (every 3s, late after 17s) + tickers, symbols BTCUSDT,ETHUSDT
bybit/linear: wss://stream.bybit.com/v5/public/linear, rest https://api.bybit.com, channels orderbook.1 (every 3s, late after 17s) + tickers, symbols BTCUSDT,ETHUSDT
bybit/inverse: wss://stream.bybit.com/v5/public/inverse, rest https://api.bybit.com, channels orderbook.1 (every 3s, late after 17s) + tickers, symbols BTCUSD,ETHUSD
thresholds: degraded after 3m, stale after 5m, critical after 1h
idle timeout 1m, resubscribe after 10m, scheduled channels late after 5 missed intervals + 2s
log format text, level \"info\"
metrics at http://[::]:10066/metrics";
        assert_eq!(default_config().summary(), expected);
    }

    #[test]
    fn help_lists_every_variable_with_its_default() {
        let help = help_text();
        let expected_lines = [
            "  MARKETFEED_BINANCE_SPOT_SYMBOLS          Comma-separated symbols to watch on binance/spot, or * for every trading symbol; setting any *_SYMBOLS watches only those venues.",
            "                                           default: BTCUSDT,ETHUSDT when no *_SYMBOLS variable is set",
            "  MARKETFEED_BINANCE_USDM_CHANNELS         Comma-separated binance/usdm stream names to subscribe to.",
            "                                           default: markPrice@1s,bookTicker",
            "                                           default: wss://stream.bybit.com/v5/public/inverse",
            "  MARKETFEED_DEGRADED_AFTER                A subscription silent this long is degraded.",
            "                                           default: 3m",
            "  MARKETFEED_BINANCE_USDM_STALE_AFTER      A binance/usdm subscription silent this long is stale.",
            "                                           default: MARKETFEED_STALE_AFTER",
            "  MARKETFEED_HEARTBEAT_MISSES              A channel the venue pushes on a schedule (depth5, markPrice@1s, orderbook.1) silent for this many expected intervals plus 2s is late, and resubscribed at once while its connection flows.",
            "                                           default: 5",
            "                                           default: 10m",
            "  MARKETFEED_LOG_LEVEL                     tracing EnvFilter directives, e.g. info,marketfeed_exporter=debug.",
            "                                           default: https://api.bybit.com",
        ];
        for line in expected_lines {
            assert!(
                help.lines().any(|l| l == line),
                "missing {line:?} in\n{help}"
            );
        }
        let listed = help
            .lines()
            .filter(|l| l.starts_with("  MARKETFEED_"))
            .count();
        assert_eq!(listed, 42);
    }

    #[test]
    fn a_shard_keeps_its_part_of_the_listed_symbols() {
        let symbols = "BTCUSDT,ETHUSDT,SOLUSDT,XRPUSDT,BNBUSDT,DOGEUSDT,ADAUSDT,LTCUSDT";
        let parts: Vec<Vec<String>> = (0..3)
            .map(|i| {
                let shard = format!("{i}/3");
                let config = load(&[
                    ("MARKETFEED_BINANCE_SPOT_SYMBOLS", symbols),
                    ("MARKETFEED_BYBIT_LINEAR_SYMBOLS", "*"),
                    ("MARKETFEED_SHARD", &shard),
                ])
                .unwrap();
                assert_eq!(config.shard, Shard::new(i, 3));
                assert!(config.summary().contains(&format!("shard {i}/3: ")));
                assert!(config.venues[1].all_symbols, "* is split per listing");
                config.venues[0].symbols.clone()
            })
            .collect();
        // Each symbol on exactly one shard, in the configured order.
        let mut all: Vec<&String> = parts.iter().flatten().collect();
        assert_eq!(all.len(), 8);
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 8);
        for part in &parts {
            let order: Vec<usize> = part
                .iter()
                .map(|s| symbols.find(s.as_str()).unwrap())
                .collect();
            assert!(order.is_sorted(), "{part:?}");
        }
        let errors = load_errors(&[("MARKETFEED_SHARD", "3/3")], &Flags::default());
        assert_eq!(
            errors,
            [
                r#"MARKETFEED_SHARD: invalid value "3/3": index 3 is out of range: shards are numbered from 0, so 0 to 2 of 3"#
            ]
        );
        assert_eq!(load(&[]).unwrap().shard, None);
    }

    #[test]
    fn star_watches_every_trading_symbol() {
        let config = load(&[("MARKETFEED_BYBIT_LINEAR_SYMBOLS", " * ")]).unwrap();
        assert_eq!(config.venues.len(), 1);
        assert!(config.venues[0].all_symbols);
        assert!(config.venues[0].symbols.is_empty());
        assert!(
            config
                .summary()
                .contains("symbols * (every trading symbol)")
        );
        let errors = load_errors(
            &[("MARKETFEED_BYBIT_LINEAR_SYMBOLS", "*,BTCUSDT")],
            &Flags::default(),
        );
        assert_eq!(
            errors,
            [
                r#"MARKETFEED_BYBIT_LINEAR_SYMBOLS: invalid symbol "*" (letters, digits, '-' and '_' only)"#
            ]
        );
        let listed = load(&[("MARKETFEED_BYBIT_LINEAR_SYMBOLS", "BTCUSDT")]).unwrap();
        assert!(!listed.venues[0].all_symbols);
    }

    #[test]
    fn rest_urls_default_per_host_and_are_checked_once() {
        let config = load(&[("MARKETFEED_BINANCE_USDM_REST_URL", "http://127.0.0.1:9/")]).unwrap();
        let rest: Vec<&str> = config.venues.iter().map(|v| v.rest_url.as_str()).collect();
        assert_eq!(
            rest,
            [
                "https://api.binance.com",
                "http://127.0.0.1:9",
                "https://api.bybit.com",
                "https://api.bybit.com",
                "https://api.bybit.com"
            ]
        );
        let errors = load_errors(
            &[("MARKETFEED_BYBIT_REST_URL", "wss://api.bybit.com")],
            &Flags::default(),
        );
        assert_eq!(
            errors,
            [
                r#"MARKETFEED_BYBIT_REST_URL: invalid URL "wss://api.bybit.com": scheme must be http or https"#
            ],
            "one line for the three Bybit markets sharing the variable"
        );
    }

    /// The known names and `RawEnv`'s fields must agree, or a documented variable would be
    /// accepted and then silently dropped by envy.
    #[test]
    fn every_known_variable_reaches_envy() {
        let names: Vec<String> = variables().into_iter().map(|v| v.name).collect();
        assert_eq!(names.len(), 42);
        assert_eq!(names.iter().collect::<HashSet<_>>().len(), names.len());
        for name in names {
            let mut errors = Vec::new();
            let (raw, _) = read_env([(name.clone(), "x".to_owned())], &mut errors);
            assert_eq!(
                (errors, raw == RawEnv::default()),
                (vec![], false),
                "{name}"
            );
        }
    }

    /// The variables Kubernetes injects into every container of a pod with service links on, for a Service named
    /// `marketfeed-exporter` with a port named `metrics` (10066/TCP): ignored, named once; a typo still fails.
    #[test]
    fn kubernetes_service_links_are_ignored_and_named() {
        let links = [
            ("MARKETFEED_EXPORTER_SERVICE_HOST", "10.96.12.7"),
            ("MARKETFEED_EXPORTER_SERVICE_PORT", "10066"),
            ("MARKETFEED_EXPORTER_SERVICE_PORT_METRICS", "10066"),
            ("MARKETFEED_EXPORTER_PORT", "tcp://10.96.12.7:10066"),
            (
                "MARKETFEED_EXPORTER_PORT_10066_TCP",
                "tcp://10.96.12.7:10066",
            ),
            ("MARKETFEED_EXPORTER_PORT_10066_TCP_PROTO", "tcp"),
            ("MARKETFEED_EXPORTER_PORT_10066_TCP_PORT", "10066"),
            ("MARKETFEED_EXPORTER_PORT_10066_TCP_ADDR", "10.96.12.7"),
            ("MARKETFEED_DB_PORT_5432_UDP", "udp://10.96.0.9:5432"),
        ];
        let config = load(&links).unwrap();
        let mut names: Vec<String> = links.iter().map(|(k, _)| (*k).to_owned()).collect();
        names.sort();
        assert_eq!(config.ignored_variables, names);
        assert_eq!(
            Config {
                ignored_variables: Vec::new(),
                ..config
            },
            default_config(),
            "nothing else changes"
        );
        let mut typo = links.to_vec();
        typo.push(("MARKETFEED_BINANCE_SPOT_SYMBOL", "BTCUSDT"));
        assert_eq!(
            load_errors(&typo, &Flags::default()),
            [
                "MARKETFEED_BINANCE_SPOT_SYMBOL: unknown variable (did you mean MARKETFEED_BINANCE_SPOT_SYMBOLS?)"
            ]
        );
        for near_miss in [
            "MARKETFEED_PORT_10066_TCP_NAME",
            "MARKETFEED_X_PORT_10066_HTTP",
            "MARKETFEED_X_PORT_ABC_TCP",
            "MARKETFEED_SERVICE_HOSTS",
            "MARKETFEED_PORTS",
        ] {
            assert!(!is_service_link(near_miss), "{near_miss}");
            assert!(load(&[(near_miss, "x")]).is_err(), "{near_miss}");
        }
    }

    #[test]
    fn edit_distances() {
        let cases = [
            ("", "", 0),
            ("abc", "", 3),
            ("", "ab", 2),
            ("kitten", "sitting", 3),
            ("ab", "ba", 2),
            ("é", "e", 1),
        ];
        for (a, b, expected) in cases {
            assert_eq!(edit_distance(a, b), expected, "{a:?} {b:?}");
        }
    }
}
