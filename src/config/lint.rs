//! Checks that catch values which parse but cannot be meant: URL paths the exporter would extend wrongly,
//! log filters that silence everything, flags a letter away from a real one, watchdog durations shorter than
//! the venues' own rhythm.
//!
//! Errors name the variable and, where one exists, the corrected value; doubtful values are warnings.

use std::time::Duration;

use super::{Config, ConfigError, IDLE_TIMEOUT, UrlProblem, human};
use crate::venue::PathFix;

/// The venues' heartbeat rhythm: Binance spot pings every 20 s and Bybit asks for a ping every 20 s. A connection
/// may carry no data for that long (an event-driven channel on a quiet market) and still be alive.
const VENUE_HEARTBEAT: Duration = Duration::from_secs(20);

/// Applies `fix` to the path of `url` (scheme, host and port kept): an error with the corrected URL when the
/// path is one the exporter would extend wrongly. URLs with a query are left alone.
pub(super) fn path(
    var: String,
    url: String,
    fix: impl Fn(&str) -> Option<PathFix>,
) -> Result<String, ConfigError> {
    if url.contains('?') {
        return Ok(url);
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Ok(url);
    };
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    match fix(path) {
        None => Ok(url),
        Some(PathFix { why, path }) => Err(ConfigError::InvalidUrl {
            var,
            problem: UrlProblem::Path {
                why,
                corrected: format!("{scheme}://{authority}{path}"),
            },
            url,
        }),
    }
}

/// A warning when `MARKETFEED_IDLE_TIMEOUT` is shorter than the venues need: below their heartbeat rhythm, or
/// below the deadline of the slowest watched scheduled channel, a healthy connection gets reconnected on a pause
/// the venue allows.
pub(super) fn idle_timeout(config: &Config) -> Option<String> {
    let slowest = config
        .venues
        .iter()
        .flat_map(|v| {
            let rules = config.rules(v);
            v.channels
                .iter()
                .filter_map(move |c| Some((rules.late_after(c.interval?), v.venue, &*c.name)))
        })
        .max_by_key(|(late, ..)| *late);
    let (need, reason) = match slowest {
        Some((late, venue, channel)) if late > VENUE_HEARTBEAT => (
            late,
            format!("{venue} {channel} is late only after {}", human(&late)),
        ),
        _ => (
            VENUE_HEARTBEAT,
            format!(
                "the venues' heartbeats are {} apart",
                human(&VENUE_HEARTBEAT)
            ),
        ),
    };
    (config.idle_timeout < need).then(|| {
        format!(
            "{IDLE_TIMEOUT}: {} is shorter than the venues need ({reason}): connections that are alive will be \
             reconnected during normal pauses; use at least {}",
            human(&config.idle_timeout),
            human(&need)
        )
    })
}

/// The most subscriptions one exporter is sized for: the shipped manifests' 64 MiB memory limit holds the peak
/// measured at this count (docs/benchmarks.md).
pub const MAX_SUBSCRIPTIONS: usize = 10_000;

/// A warning when the configuration names more subscriptions than the shipped memory limit is sized for.
pub(super) fn subscriptions(config: &Config) -> Option<String> {
    let count: usize = config
        .venues
        .iter()
        .map(|v| v.symbols.len() * v.channels.len())
        .sum();
    (count > MAX_SUBSCRIPTIONS).then(|| {
        format!(
            "{count} subscriptions: the shipped manifests' 64Mi memory limit is sized for at most {MAX_SUBSCRIPTIONS} \
             (about 48 MiB at the peak); raise it by about 5Mi per 1000 more, or split the symbols over more pods"
        )
    })
}

/// Every flag, for suggestions.
const FLAGS: [&str; 7] = [
    "--help",
    "--version",
    "--check-config",
    super::LISTEN_ADDRESS_FLAG,
    super::TELEMETRY_PATH_FLAG,
    super::WEB_CONFIG_FLAG,
    "-h",
];

/// The known flag a mistyped one most likely meant: a few edits away (`--web.listen_address`,
/// `-check-config`), or the same flag without its `web.` namespace (`--listen-address`, `--config.file`).
pub(super) fn nearest_flag(given: &str) -> Option<&'static str> {
    let bare = given.trim_start_matches('-');
    if bare.is_empty() {
        return None;
    }
    let candidates = FLAGS.iter().filter(|f| f.len() > 2);
    candidates
        .map(|&flag| {
            let name = flag.trim_start_matches('-');
            let distance = if name.strip_prefix("web.") == Some(bare) {
                1
            } else {
                super::edit_distance(bare, name)
            };
            (distance, flag)
        })
        .filter(|&(distance, _)| distance <= super::MAX_SUGGESTION_DISTANCE)
        .min()
        .map(|(_, flag)| flag)
}

/// The levels a filter directive may name.
const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// Checks a `MARKETFEED_LOG_LEVEL` value more strictly than `EnvFilter`, which reads a bare word such as
/// `verbose` as "everything from the target named verbose" and so silences the exporter: each directive must
/// be a level, or `target=level`.
pub(super) fn log_filter(value: &str) -> Result<(), String> {
    // EnvFilter takes "" as "log nothing but errors", which an empty ConfigMap entry hardly means.
    if value.trim().is_empty() {
        return Err("empty; use a level such as info".to_owned());
    }
    for directive in value.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let level = match directive.rsplit_once('=') {
            Some((target, _)) if target.trim().is_empty() => {
                return Err(format!("{directive:?} names no target before '='"));
            }
            Some((_, level)) => level.trim(),
            None => directive,
        };
        if !LEVELS.iter().any(|l| l.eq_ignore_ascii_case(level)) {
            let near = LEVELS
                .iter()
                .map(|l| (super::edit_distance(&level.to_ascii_lowercase(), l), l))
                .filter(|(d, _)| *d <= 2)
                .min();
            let hint = match near {
                Some((_, l)) => format!("; did you mean {l}?"),
                None if !directive.contains('=') => {
                    "; to set one target's level write target=level".to_owned()
                }
                None => String::new(),
            };
            return Err(format!(
                "{level:?} is not a level ({}){hint}",
                LEVELS.join(", ")
            ));
        }
    }
    tracing_subscriber::EnvFilter::try_new(value)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Config {
        let vars = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        Config::load(vars, &super::super::Flags::default()).unwrap()
    }

    #[test]
    fn an_idle_timeout_shorter_than_the_venues_need_is_a_warning() {
        let linear = |idle, misses| {
            config(&[
                ("MARKETFEED_BYBIT_LINEAR_SYMBOLS", "BTCUSDT"),
                ("MARKETFEED_IDLE_TIMEOUT", idle),
                ("MARKETFEED_HEARTBEAT_MISSES", misses),
            ])
        };
        assert_eq!(
            idle_timeout(&linear("1s", "5")).as_deref(),
            Some(
                "MARKETFEED_IDLE_TIMEOUT: 1s is shorter than the venues need (the venues' heartbeats are 20s apart): \
                 connections that are alive will be reconnected during normal pauses; use at least 20s"
            )
        );
        assert_eq!(idle_timeout(&linear("20s", "5")), None);
        // orderbook.1 pushes every 3 s: ten misses and the grace make it late after 32 s.
        assert_eq!(
            idle_timeout(&linear("30s", "10")).as_deref(),
            Some(
                "MARKETFEED_IDLE_TIMEOUT: 30s is shorter than the venues need (bybit/linear orderbook.1 is late only \
                 after 32s): connections that are alive will be reconnected during normal pauses; use at least 32s"
            )
        );
        assert!(
            config(&[]).warnings().is_empty(),
            "the defaults need no warning"
        );
    }

    #[test]
    fn more_subscriptions_than_the_memory_limit_holds_is_a_warning() {
        let symbols = |n: usize| {
            (0..n)
                .map(|i| format!("S{i}USDT"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let at_limit = config(&[("MARKETFEED_BINANCE_SPOT_SYMBOLS", &symbols(5000))]);
        assert_eq!(subscriptions(&at_limit), None);
        let over = config(&[("MARKETFEED_BINANCE_SPOT_SYMBOLS", &symbols(5001))]);
        assert_eq!(
            subscriptions(&over).as_deref(),
            Some(
                "10002 subscriptions: the shipped manifests' 64Mi memory limit is sized for at most 10000 (about 48 MiB \
                 at the peak); raise it by about 5Mi per 1000 more, or split the symbols over more pods"
            )
        );
    }

    #[test]
    fn mistyped_flags_get_the_nearest_real_one() {
        let cases = [
            ("--web.listen_address", Some("--web.listen-address")),
            ("--listen-address", Some("--web.listen-address")),
            ("--config.file", Some("--web.config.file")),
            ("--web.telemetry_path", Some("--web.telemetry-path")),
            ("-check-config", Some("--check-config")),
            ("--versoin", Some("--version")),
            ("--web.frobnicate", None),
            ("--", None),
        ];
        for (given, expected) in cases {
            assert_eq!(nearest_flag(given), expected, "{given}");
        }
    }

    #[test]
    fn log_filters_must_name_levels() {
        for ok in [
            "info",
            "WARN",
            "info,marketfeed_exporter=debug",
            "hyper=warn, debug",
            "off",
        ] {
            assert_eq!(log_filter(ok), Ok(()), "{ok}");
        }
        let cases = [
            (
                "verbose",
                r#""verbose" is not a level (trace, debug, info, warn, error, off); to set one target's level write target=level"#,
            ),
            (
                "inf",
                r#""inf" is not a level (trace, debug, info, warn, error, off); did you mean info?"#,
            ),
            (
                "info,marketfeed_exporter=dbug",
                r#""dbug" is not a level (trace, debug, info, warn, error, off); did you mean debug?"#,
            ),
            ("=debug", r#""=debug" names no target before '='"#),
            ("  ", "empty; use a level such as info"),
        ];
        for (value, problem) in cases {
            assert_eq!(log_filter(value), Err(problem.to_owned()), "{value}");
        }
    }
}
