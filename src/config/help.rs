//! `--help`: usage, flags and every `MARKETFEED_*` variable with its meaning and default.

use super::*;

/// `thresholds: degraded after 3m, stale after 5m, critical after 1h`.
pub(super) fn thresholds_line(t: &Thresholds) -> String {
    format!(
        "thresholds: degraded after {}, stale after {}, critical after {}",
        human(&t.degraded),
        human(&t.stale),
        human(&t.critical)
    )
}

/// Usage, flags, and every `MARKETFEED_*` variable with its meaning and default.
pub fn help_text() -> String {
    let variables = variables();
    let width = variables.iter().map(|v| v.name.len()).max().unwrap_or(0);
    let table: String = variables
        .iter()
        .map(|v| {
            format!(
                "  {:width$}  {}\n  {:width$}  default: {}\n",
                v.name, v.meaning, "", v.default
            )
        })
        .collect();
    format!(
        "Usage: {program} [FLAGS]

Exports the freshness of Binance and Bybit public WebSocket market data, per symbol, for Prometheus.

Flags:
  -h, --help                     Show this help and exit.
      --version                  Show the version and exit.
      --check-config             Check the configuration, print a summary and exit.
      --web.listen-address=ADDR  Address to listen on; \":port\" means every interface, IPv4 and IPv6 (default \"{DEFAULT_LISTEN_ADDRESS}\").
      --web.telemetry-path=PATH  Path under which to expose metrics (default \"{DEFAULT_TELEMETRY_PATH}\").
      --web.config.file=FILE     Prometheus exporter-toolkit web configuration: TLS, client certificates, basic
                                 auth (see docs/reference.md#security). Re-read when it or its files change.

Environment (durations are written like 30s, 5m, 1h; an unknown {ENV_PREFIX}* variable is an error):
{table}",
        program = env!("CARGO_PKG_NAME"),
    )
}

/// One known variable, as [`help_text`] lists it.
pub(super) struct Variable {
    pub(super) name: String,
    pub(super) default: String,
    pub(super) meaning: String,
}

impl Variable {
    pub(super) fn new(
        name: impl Into<String>,
        default: impl ToString,
        meaning: impl Into<String>,
    ) -> Self {
        Variable {
            name: name.into(),
            default: default.to_string(),
            meaning: meaning.into(),
        }
    }
}

/// Every known variable: the single list behind the unknown-variable check and [`help_text`].
pub(super) fn variables() -> Vec<Variable> {
    let mut variables: Vec<Variable> = Venue::ALL
        .into_iter()
        .flat_map(|venue| {
            [
                Variable::new(
                    venue_var(venue, "SYMBOLS"),
                    format_args!("{} when no *_SYMBOLS variable is set", default_symbols(venue).join(",")),
                    format!("Comma-separated symbols to watch on {venue}, or * for every trading symbol; setting any *_SYMBOLS watches only those venues."),
                ),
                Variable::new(
                    venue_var(venue, "URL"),
                    venue::default_url(venue),
                    format!("WebSocket base URL of {venue} (ws:// or wss://)."),
                ),
                Variable::new(
                    venue_var(venue, "CHANNELS"),
                    venue::default_channels(venue).join(","),
                    format!("Comma-separated {venue} stream names to subscribe to."),
                ),
            ]
            .into_iter()
            .chain(freshness::THRESHOLDS.map(|(suffix, global, status)| {
                Variable::new(
                    venue_var(venue, suffix),
                    format_args!("{global}"),
                    format!("A {venue} subscription silent this long is {status}."),
                )
            }))
        })
        .collect();
    variables.extend(
        [Venue::BinanceSpot, Venue::BinanceUsdm, Venue::BybitSpot].map(|venue| {
            let what = match venue {
                Venue::BybitSpot => "bybit (all three markets)".to_owned(),
                _ => venue.to_string(),
            };
            Variable::new(
                rest_var(venue),
                venue::rest::default_rest_url(venue),
                format!("REST base URL of {what} (http:// or https://): server time, instruments, tickers."),
            )
        }),
    );
    let silent = |status| format!("A subscription silent this long is {status}.");
    let t = Thresholds::default();
    variables.extend([
        Variable::new(DEGRADED_AFTER, human(&t.degraded), silent("degraded")),
        Variable::new(STALE_AFTER, human(&t.stale), silent("stale")),
        Variable::new(CRITICAL_AFTER, human(&t.critical), silent("critical")),
        Variable::new(
            IDLE_TIMEOUT,
            human(&DEFAULT_IDLE_TIMEOUT),
            "No data at all on a connection this long: reconnect.",
        ),
        Variable::new(
            RESUBSCRIBE_AFTER,
            human(&DEFAULT_RESUBSCRIBE_AFTER),
            "One subscription silent this long while its connection flows: resubscribe it.",
        ),
        Variable::new(
            HEARTBEAT_MISSES,
            DEFAULT_HEARTBEAT_MISSES,
            format!(
                "A channel the venue pushes on a schedule (depth5, markPrice@1s, orderbook.1) silent for this many expected intervals plus {} is late, and resubscribed at once while its connection flows.",
                human(&LATE_GRACE)
            ),
        ),
        Variable::new(
            LOG_FORMAT,
            LogFormat::default().as_str(),
            "Log line format: text or json.",
        ),
        Variable::new(
            LOG_LEVEL,
            DEFAULT_LOG_LEVEL,
            "tracing EnvFilter directives, e.g. info,marketfeed_exporter=debug.",
        ),
        Variable::new(
            SHARD,
            "unset (every symbol)",
            "<index>/<count>, e.g. 0/4 (index from 0): watch only the symbols whose stable hash falls in this shard, for listed symbols and * alike.",
        ),
    ]);
    variables
}
