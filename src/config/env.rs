//! The environment: `MARKETFEED_*` variables read into raw strings (unknown ones refused with a suggestion,
//! Kubernetes service links set aside), then each value parsed and checked into its typed setting.

use super::*;

/// The known variables, as `envy` fills them in; field names are the variable names without the
/// prefix, lowercased.
#[derive(Debug, Default, PartialEq, Deserialize)]
pub(super) struct RawEnv {
    pub(super) binance_spot_symbols: Option<String>,
    pub(super) binance_spot_url: Option<String>,
    pub(super) binance_spot_channels: Option<String>,
    pub(super) binance_usdm_symbols: Option<String>,
    pub(super) binance_usdm_url: Option<String>,
    pub(super) binance_usdm_channels: Option<String>,
    pub(super) bybit_spot_symbols: Option<String>,
    pub(super) bybit_spot_url: Option<String>,
    pub(super) bybit_spot_channels: Option<String>,
    pub(super) bybit_linear_symbols: Option<String>,
    pub(super) bybit_linear_url: Option<String>,
    pub(super) bybit_linear_channels: Option<String>,
    pub(super) bybit_inverse_symbols: Option<String>,
    pub(super) bybit_inverse_url: Option<String>,
    pub(super) bybit_inverse_channels: Option<String>,
    pub(super) binance_spot_rest_url: Option<String>,
    pub(super) binance_usdm_rest_url: Option<String>,
    pub(super) bybit_rest_url: Option<String>,
    pub(super) binance_spot_degraded_after: Option<String>,
    pub(super) binance_spot_stale_after: Option<String>,
    pub(super) binance_spot_critical_after: Option<String>,
    pub(super) binance_usdm_degraded_after: Option<String>,
    pub(super) binance_usdm_stale_after: Option<String>,
    pub(super) binance_usdm_critical_after: Option<String>,
    pub(super) bybit_spot_degraded_after: Option<String>,
    pub(super) bybit_spot_stale_after: Option<String>,
    pub(super) bybit_spot_critical_after: Option<String>,
    pub(super) bybit_linear_degraded_after: Option<String>,
    pub(super) bybit_linear_stale_after: Option<String>,
    pub(super) bybit_linear_critical_after: Option<String>,
    pub(super) bybit_inverse_degraded_after: Option<String>,
    pub(super) bybit_inverse_stale_after: Option<String>,
    pub(super) bybit_inverse_critical_after: Option<String>,
    pub(super) heartbeat_misses: Option<String>,
    pub(super) degraded_after: Option<String>,
    pub(super) stale_after: Option<String>,
    pub(super) critical_after: Option<String>,
    pub(super) idle_timeout: Option<String>,
    pub(super) resubscribe_after: Option<String>,
    pub(super) log_format: Option<String>,
    pub(super) log_level: Option<String>,
    pub(super) shard: Option<String>,
}

/// One venue's variables, trimmed.
pub(super) struct RawVenue<'a> {
    pub(super) symbols: Option<&'a str>,
    pub(super) url: Option<&'a str>,
    pub(super) channels: Option<&'a str>,
    pub(super) rest_url: Option<&'a str>,
    /// `_DEGRADED_AFTER`, `_STALE_AFTER`, `_CRITICAL_AFTER`, in [`freshness::THRESHOLDS`] order.
    pub(super) thresholds: [Option<&'a str>; 3],
}

impl RawVenue<'_> {
    /// The names of the market's own variables that are set, `_SYMBOLS` aside (Bybit's shared REST URL is
    /// no one market's).
    pub(super) fn set_variables(&self, venue: Venue) -> Vec<String> {
        let rest = match venue.exchange() {
            Exchange::Binance => self.rest_url,
            Exchange::Bybit => None,
        };
        let own = [
            ("URL", self.url),
            ("CHANNELS", self.channels),
            ("REST_URL", rest),
        ];
        let thresholds = freshness::THRESHOLDS.map(|(suffix, ..)| suffix).into_iter();
        own.into_iter()
            .chain(thresholds.zip(self.thresholds))
            .filter(|(_, value)| value.is_some())
            .map(|(suffix, _)| venue_var(venue, suffix))
            .collect()
    }
}

impl RawEnv {
    pub(super) fn venue(&self, venue: Venue) -> RawVenue<'_> {
        let (symbols, url, channels, thresholds) = match venue {
            Venue::BinanceSpot => (
                &self.binance_spot_symbols,
                &self.binance_spot_url,
                &self.binance_spot_channels,
                [
                    &self.binance_spot_degraded_after,
                    &self.binance_spot_stale_after,
                    &self.binance_spot_critical_after,
                ],
            ),
            Venue::BinanceUsdm => (
                &self.binance_usdm_symbols,
                &self.binance_usdm_url,
                &self.binance_usdm_channels,
                [
                    &self.binance_usdm_degraded_after,
                    &self.binance_usdm_stale_after,
                    &self.binance_usdm_critical_after,
                ],
            ),
            Venue::BybitSpot => (
                &self.bybit_spot_symbols,
                &self.bybit_spot_url,
                &self.bybit_spot_channels,
                [
                    &self.bybit_spot_degraded_after,
                    &self.bybit_spot_stale_after,
                    &self.bybit_spot_critical_after,
                ],
            ),
            Venue::BybitLinear => (
                &self.bybit_linear_symbols,
                &self.bybit_linear_url,
                &self.bybit_linear_channels,
                [
                    &self.bybit_linear_degraded_after,
                    &self.bybit_linear_stale_after,
                    &self.bybit_linear_critical_after,
                ],
            ),
            Venue::BybitInverse => (
                &self.bybit_inverse_symbols,
                &self.bybit_inverse_url,
                &self.bybit_inverse_channels,
                [
                    &self.bybit_inverse_degraded_after,
                    &self.bybit_inverse_stale_after,
                    &self.bybit_inverse_critical_after,
                ],
            ),
        };
        let rest_url = match venue.exchange() {
            Exchange::Binance if venue == Venue::BinanceSpot => &self.binance_spot_rest_url,
            Exchange::Binance => &self.binance_usdm_rest_url,
            Exchange::Bybit => &self.bybit_rest_url,
        };
        RawVenue {
            symbols: value(symbols),
            url: value(url),
            channels: value(channels),
            rest_url: value(rest_url),
            thresholds: thresholds.map(value),
        }
    }
}

/// A set variable's value, trimmed: ConfigMap values written as YAML block scalars end in a newline.
pub(super) fn value(field: &Option<String>) -> Option<&str> {
    field.as_deref().map(str::trim)
}

/// Keeps the value, or records the problem.
pub(super) fn keep<T>(result: Result<T, ConfigError>, errors: &mut Vec<ConfigError>) -> Option<T> {
    result.map_err(|error| errors.push(error)).ok()
}

pub(super) fn venue_var(venue: Venue, suffix: &str) -> String {
    format!("{ENV_PREFIX}{}_{suffix}", venue.env_name())
}

/// Rejects unknown `MARKETFEED_*` names (all of them, which `envy` alone would not), except the ones Kubernetes
/// service links inject, which it returns sorted, and lets `envy` read the rest.
pub(super) fn read_env(
    vars: impl IntoIterator<Item = (String, String)>,
    errors: &mut Vec<ConfigError>,
) -> (RawEnv, Vec<String>) {
    let known: Vec<String> = variables().into_iter().map(|v| v.name).collect();
    let (ours, unknown): (Vec<_>, Vec<_>) = vars
        .into_iter()
        .filter(|(name, _)| name.starts_with(ENV_PREFIX))
        .partition(|(name, _)| known.contains(name));
    let (mut links, unknown): (Vec<_>, Vec<_>) = unknown
        .into_iter()
        .map(|(name, _)| name)
        .partition(|name| is_service_link(name));
    links.sort();
    errors.extend(
        unknown
            .into_iter()
            .map(|name| unknown_variable(name, &known)),
    );
    let env = envy::prefixed(ENV_PREFIX)
        .from_iter(ours)
        .unwrap_or_else(|error| {
            errors.push(ConfigError::Environment(error.to_string()));
            RawEnv::default()
        });
    (env, links)
}

/// Whether an unknown name is one that Kubernetes injects for every Service of the namespace when service links
/// are on (the pod default): `<SVC>_SERVICE_HOST`, `<SVC>_SERVICE_PORT`, `<SVC>_SERVICE_PORT_<NAME>`, `<SVC>_PORT`
/// and `<SVC>_PORT_<N>_<PROTO>` with its `_PROTO`, `_PORT` and `_ADDR` siblings. A Service called
/// `marketfeed-exporter` yields `MARKETFEED_EXPORTER_SERVICE_HOST` and the rest. No variable of ours ends so.
pub(super) fn is_service_link(name: &str) -> bool {
    if name.ends_with("_SERVICE_HOST")
        || name.ends_with("_SERVICE_PORT")
        || name.contains("_SERVICE_PORT_")
        || name.ends_with("_PORT")
    {
        return true;
    }
    // <SVC>_PORT_<number>_<TCP|UDP|SCTP>[_PROTO|_PORT|_ADDR]
    name.match_indices("_PORT_").any(|(at, _)| {
        let mut rest = name[at + "_PORT_".len()..].split('_');
        let number = rest.next().unwrap_or("");
        let protocol = rest.next().unwrap_or("");
        let suffix = rest.next();
        !number.is_empty()
            && number.bytes().all(|b| b.is_ascii_digit())
            && matches!(protocol, "TCP" | "UDP" | "SCTP")
            && matches!(suffix, None | Some("PROTO" | "PORT" | "ADDR"))
            && rest.next().is_none()
    })
}

pub(super) fn unknown_variable(name: String, known: &[String]) -> ConfigError {
    // Compared uppercased, so that a lowercase spelling of a known name is pointed to it.
    let upper = name.to_uppercase();
    let suggestion = known
        .iter()
        .map(|candidate| (edit_distance(&upper, candidate), candidate))
        .min_by_key(|&(distance, _)| distance)
        .filter(|&(distance, _)| distance <= MAX_SUGGESTION_DISTANCE)
        .map(|(_, candidate)| candidate.clone());
    ConfigError::UnknownVariable { name, suggestion }
}

/// Levenshtein distance, in characters.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// A venue's settings, or `None` when it is not watched or a problem was recorded.
pub(super) fn venue_config(
    venue: Venue,
    raw: RawVenue<'_>,
    watch_by_default: bool,
    global: Option<Thresholds>,
    errors: &mut Vec<ConfigError>,
) -> Option<VenueConfig> {
    let symbols = match raw.symbols {
        Some(value) => symbols(&venue_var(venue, "SYMBOLS"), value, errors),
        None if watch_by_default => Some(default_symbols(venue).map(str::to_owned).to_vec()),
        // Not watched: its other variables are still checked (they may serve another bot), the caller drops it.
        None => Some(Vec::new()),
    };
    let ws_url = match raw.url {
        Some(value) => keep(
            url(venue_var(venue, "URL"), value, &["ws", "wss"]).and_then(|u| {
                lint::path(venue_var(venue, "URL"), u, |p| venue::ws_path_fix(venue, p))
            }),
            errors,
        ),
        None => Some(venue::default_url(venue).to_owned()),
    };
    let rest_url = match raw.rest_url {
        // Bybit's markets share one variable: report a bad value once, not per market.
        Some(value) => match url(rest_var(venue), value, &["http", "https"])
            .and_then(|u| lint::path(rest_var(venue), u, |p| venue::rest_path_fix(venue, p)))
        {
            Ok(url) => Some(url),
            Err(error) => {
                push_once(errors, error);
                None
            }
        },
        None => Some(venue::rest::default_rest_url(venue).to_owned()),
    };
    let channels_var = venue_var(venue, "CHANNELS");
    // The defaults go through the same check, so a venue module that lists a channel it cannot
    // parse fails loudly instead of watching less.
    let channels = match raw.channels {
        Some(value) => channels(venue, &channels_var, list_items(value), errors),
        None => channels(
            venue,
            &channels_var,
            venue::default_channels(venue).iter().copied(),
            errors,
        ),
    };
    let thresholds = freshness::market_thresholds(venue, raw.thresholds, global, errors);
    Some(VenueConfig {
        venue,
        url: ws_url?,
        rest_url: rest_url?,
        all_symbols: symbols.as_ref().is_some_and(Vec::is_empty),
        symbols: symbols?,
        channels: channels?,
        thresholds: thresholds?,
    })
}

/// Comma-separated items, trimmed, empty ones skipped.
pub(super) fn list_items(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// The configured symbols; an empty list stands for `*` (every trading symbol of the venue).
pub(super) fn symbols(
    var: &str,
    value: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Vec<String>> {
    if value == "*" {
        return Some(Vec::new());
    }
    let before = errors.len();
    let mut symbols = Vec::new();
    let mut seen = HashSet::new();
    for item in list_items(value) {
        if !item
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            errors.push(ConfigError::InvalidSymbol {
                var: var.to_owned(),
                symbol: item.to_owned(),
            });
            continue;
        }
        let symbol = item.to_ascii_uppercase();
        if seen.insert(symbol.clone()) {
            symbols.push(symbol);
        } else {
            push_once(
                errors,
                ConfigError::DuplicateSymbol {
                    var: var.to_owned(),
                    symbol,
                },
            );
        }
    }
    if errors.len() == before && symbols.is_empty() {
        errors.push(ConfigError::EmptySymbols {
            var: var.to_owned(),
        });
    }
    (errors.len() == before).then_some(symbols)
}

pub(super) fn channels<'a>(
    venue: Venue,
    var: &str,
    names: impl Iterator<Item = &'a str>,
    errors: &mut Vec<ConfigError>,
) -> Option<Vec<Channel>> {
    let before = errors.len();
    let mut channels: Vec<Channel> = Vec::new();
    for name in names {
        match venue::channel(venue, name) {
            Err(reason) => errors.push(ConfigError::InvalidChannel {
                var: var.to_owned(),
                reason,
            }),
            Ok(_) if channels.iter().any(|c| *c.name == *name) => push_once(
                errors,
                ConfigError::DuplicateChannel {
                    var: var.to_owned(),
                    channel: name.to_owned(),
                },
            ),
            Ok(channel) => channels.push(channel),
        }
    }
    if errors.len() == before && channels.is_empty() {
        errors.push(ConfigError::EmptyChannels {
            var: var.to_owned(),
        });
    }
    (errors.len() == before).then_some(channels)
}

/// An item listed three times is still one problem.
pub(super) fn push_once(errors: &mut Vec<ConfigError>, error: ConfigError) {
    if !errors.contains(&error) {
        errors.push(error);
    }
}

/// The REST base URL variable of a venue; Bybit's three markets share one.
pub(super) fn rest_var(venue: Venue) -> String {
    match venue {
        Venue::BinanceSpot | Venue::BinanceUsdm => venue_var(venue, "REST_URL"),
        Venue::BybitSpot | Venue::BybitLinear | Venue::BybitInverse => {
            format!("{ENV_PREFIX}BYBIT_REST_URL")
        }
    }
}

/// A base URL with one of `schemes` (`["ws", "wss"]` or `["http", "https"]`).
pub(super) fn url(
    var: String,
    value: &str,
    schemes: &[&'static str; 2],
) -> Result<String, ConfigError> {
    let expected = match schemes {
        ["ws", "wss"] => "ws or wss",
        _ => "http or https",
    };
    let problem = match value.parse::<Uri>() {
        Err(error) => Some(UrlProblem::Syntax(error.to_string())),
        Ok(uri) if !uri.scheme_str().is_some_and(|s| schemes.contains(&s)) => {
            Some(UrlProblem::Scheme(expected))
        }
        Ok(uri) if uri.host().is_none_or(str::is_empty) => Some(UrlProblem::MissingHost),
        Ok(_) => None,
    };
    match problem {
        Some(problem) => Err(ConfigError::InvalidUrl {
            var,
            url: value.to_owned(),
            problem,
        }),
        // The feed appends its routes (`/stream`, `/ws`, `/public`), which must not double the slash.
        None => Ok(value.trim_end_matches('/').to_owned()),
    }
}

/// A duration variable: `default` when unset.
pub(super) fn duration(
    var: &str,
    value: Option<&str>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    match humantime::parse_duration(value) {
        Err(_) => Err(ConfigError::InvalidDuration {
            var: var.to_owned(),
            value: value.to_owned(),
        }),
        Ok(duration) if duration < MIN_DURATION => Err(ConfigError::TooShort {
            var: var.to_owned(),
            value: value.to_owned(),
        }),
        Ok(duration) => Ok(duration),
    }
}

pub(super) fn thresholds(env: &RawEnv, errors: &mut Vec<ConfigError>) -> Option<Thresholds> {
    let default = Thresholds::default();
    let mut read = |var, field, default| keep(duration(var, value(field), default), errors);
    let degraded = read(DEGRADED_AFTER, &env.degraded_after, default.degraded);
    let stale = read(STALE_AFTER, &env.stale_after, default.stale);
    let critical = read(CRITICAL_AFTER, &env.critical_after, default.critical);
    let (degraded, stale, critical) = (degraded?, stale?, critical?);
    if degraded < stale && stale < critical {
        Some(Thresholds {
            degraded,
            stale,
            critical,
        })
    } else {
        errors.push(ConfigError::ThresholdsOutOfOrder {
            degraded,
            stale,
            critical,
        });
        None
    }
}

pub(super) fn log_format(value: Option<&str>) -> Result<LogFormat, ConfigError> {
    match value {
        None => Ok(LogFormat::default()),
        Some("text") => Ok(LogFormat::Text),
        Some("json") => Ok(LogFormat::Json),
        Some(other) => Err(ConfigError::InvalidLogFormat(other.to_owned())),
    }
}

pub(super) fn shard(value: Option<&str>) -> Result<Option<Shard>, ConfigError> {
    value
        .map(|text| {
            Shard::parse(text).map_err(|problem| ConfigError::InvalidShard {
                value: text.to_owned(),
                problem,
            })
        })
        .transpose()
}

pub(super) fn log_level(value: Option<&str>) -> Result<String, ConfigError> {
    let level = value.unwrap_or(DEFAULT_LOG_LEVEL);
    lint::log_filter(level)
        .map(|()| level.to_owned())
        .map_err(|problem| ConfigError::InvalidLogLevel {
            value: level.to_owned(),
            problem,
        })
}

pub(super) fn listen_address(value: &str) -> Result<SocketAddr, ConfigError> {
    let invalid = || ConfigError::InvalidListenAddress(value.to_owned());
    // Prometheus exporters spell "every interface" as ":port": IPv6 and IPv4 (see `web::listen`).
    let address = match value.strip_prefix(':') {
        Some(port) => format!("[::]:{port}"),
        None => value.to_owned(),
    };
    if let Ok(address) = address.parse::<SocketAddr>() {
        return Ok(address);
    }
    // Only a host name goes to the resolver: getaddrinfo would read "1.2.3:80" as 1.2.0.3.
    let host = address.rsplit_once(':').map_or("", |(host, _)| host);
    if host.is_empty() || host.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(invalid());
    }
    address
        .to_socket_addrs()
        .map_err(|_| invalid())?
        .next()
        .ok_or_else(invalid)
}

/// Loads the web configuration and its certificate, key and CA files, so that `--check-config` and the start
/// fail on what the server would fail on.
pub(super) fn web_config(path: &str) -> Result<Option<WebConfig>, ConfigError> {
    if path.is_empty() {
        return Ok(None);
    }
    let problem = |problem| ConfigError::InvalidWebConfig {
        path: path.to_owned(),
        problem,
    };
    let web = WebConfig::load(std::path::Path::new(path)).map_err(problem)?;
    Settings::build(&web).map_err(problem)?;
    Ok(Some(web))
}

pub(super) fn telemetry_path(value: &str) -> Result<String, ConfigError> {
    // `/`, `/-/` and `/api/` belong to the landing page, health checks and the JSON API.
    let reserved = value == "/" || value.starts_with("/-/") || value.starts_with("/api/");
    // `{`, `}` and `*` are route patterns to axum, which panics on a malformed one.
    let plain = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b));
    if !value.starts_with('/') || reserved || !plain {
        return Err(ConfigError::InvalidTelemetryPath(value.to_owned()));
    }
    Ok(value.to_owned())
}
