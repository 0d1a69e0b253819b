//! What a bad configuration says: one `ConfigError` per problem, each message starting with the flag or
//! variable it is about, collected into `ConfigErrors`.

use super::*;

/// Why a URL variable was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlProblem {
    /// The parser's own message.
    #[error("{0}")]
    Syntax(String),
    /// Not one of the accepted schemes (`ws or wss`, `http or https`).
    #[error("scheme must be {0}")]
    Scheme(&'static str),
    /// No host, or an empty one.
    #[error("missing host")]
    MissingHost,
    /// A path the exporter would extend wrongly (a Binance route appended twice, a Bybit market's path on
    /// another market): why, and the URL to use instead.
    #[error("{why}; use {corrected:?}")]
    Path {
        /// What is wrong.
        why: String,
        /// The URL with the path fixed.
        corrected: String,
    },
}

/// One configuration problem; its message starts with the flag or variable it is about.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A command-line argument that is no known flag.
    #[error("unknown flag {name}{} (see --help)", did_you_mean(.suggestion))]
    UnknownFlag {
        /// The flag as given, without any `=value`.
        name: String,
        /// The nearest known flag, when near enough.
        suggestion: Option<String>,
    },
    /// A flag that needs a value came last, or before another flag.
    #[error("{0}: missing value")]
    MissingValue(&'static str),
    /// A switch such as `--help` given `=value`.
    #[error("{0}: takes no value")]
    UnexpectedValue(&'static str),
    /// A value flag given twice.
    #[error("{0}: given more than once")]
    RepeatedFlag(&'static str),
    /// `--web.listen-address` that does not resolve to a socket address.
    #[error("--web.listen-address: invalid address {0:?}")]
    InvalidListenAddress(String),
    /// `--web.telemetry-path` that is relative, collides with the fixed endpoints, or holds characters the
    /// router would read as a pattern.
    #[error(
        "--web.telemetry-path: must start with '/', use only letters, digits and '/._-', and must not be '/', '/-/...' or '/api/...'"
    )]
    InvalidTelemetryPath(String),
    /// `--web.config.file` that cannot be read, parsed, or whose certificate or key files do not load.
    #[error("--web.config.file: {path}: {problem}")]
    InvalidWebConfig {
        /// The file as given.
        path: String,
        /// What is wrong; never quotes a password hash or key material.
        problem: WebConfigError,
    },
    /// A `MARKETFEED_*` variable that nothing reads: most likely a typo.
    #[error("{name}: unknown variable{}", did_you_mean(.suggestion))]
    UnknownVariable {
        /// The variable as set.
        name: String,
        /// The nearest known variable, when near enough.
        suggestion: Option<String>,
    },
    /// A `_SYMBOLS` variable with no symbol in it.
    #[error("{var}: empty symbol list")]
    EmptySymbols {
        /// The variable.
        var: String,
    },
    /// A symbol with characters no venue uses.
    #[error("{var}: invalid symbol {symbol:?} (letters, digits, '-' and '_' only)")]
    InvalidSymbol {
        /// The variable.
        var: String,
        /// The symbol as given.
        symbol: String,
    },
    /// A symbol listed twice (compared after uppercasing).
    #[error("{var}: symbol {symbol:?} listed twice")]
    DuplicateSymbol {
        /// The variable.
        var: String,
        /// The uppercased symbol.
        symbol: String,
    },
    /// A `_URL` variable that is no WebSocket URL.
    #[error("{var}: invalid URL {url:?}: {problem}")]
    InvalidUrl {
        /// The variable.
        var: String,
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        problem: UrlProblem,
    },
    /// A `_CHANNELS` variable with no channel in it.
    #[error("{var}: empty channel list")]
    EmptyChannels {
        /// The variable.
        var: String,
    },
    /// A channel the venue module does not know.
    #[error("{var}: {reason}")]
    InvalidChannel {
        /// The variable.
        var: String,
        /// The venue module's explanation.
        reason: String,
    },
    /// A channel listed twice.
    #[error("{var}: channel {channel:?} listed twice")]
    DuplicateChannel {
        /// The variable.
        var: String,
        /// The channel as given.
        channel: String,
    },
    /// A duration `humantime` cannot parse.
    #[error("{var}: invalid duration {value:?} (use e.g. 30s, 5m, 1h)")]
    InvalidDuration {
        /// The variable.
        var: String,
        /// The value as given.
        value: String,
    },
    /// A duration below [`MIN_DURATION`]: zero would make a watchdog or a status meaningless, a millisecond makes
    /// the exporter thrash.
    #[error("{var}: must be at least {} (got {value:?})", human(&MIN_DURATION))]
    TooShort {
        /// The variable.
        var: String,
        /// The value as given.
        value: String,
    },
    /// `MARKETFEED_HEARTBEAT_MISSES` that is not a whole number of at least 1.
    #[error("{HEARTBEAT_MISSES}: invalid value {0:?} (a whole number of at least 1)")]
    InvalidMisses(String),
    /// Thresholds not strictly increasing.
    #[error(
        "{DEGRADED_AFTER}, {STALE_AFTER}, {CRITICAL_AFTER}: thresholds out of order ({}, {}, {}); need degraded < stale < critical",
        human(.degraded), human(.stale), human(.critical)
    )]
    ThresholdsOutOfOrder {
        /// Degraded threshold.
        degraded: Duration,
        /// Stale threshold.
        stale: Duration,
        /// Critical threshold.
        critical: Duration,
    },
    /// One market's thresholds, overrides and global values together, not strictly increasing.
    #[error(
        "{vars}: {venue} thresholds out of order (degraded {}, stale {}, critical {}); need degraded < stale < critical{}",
        human(.degraded), human(.stale), human(.critical), inherited_from(.inherited)
    )]
    MarketThresholdsOutOfOrder {
        /// The market's own threshold variables that are set, comma-separated.
        vars: String,
        /// The market.
        venue: Venue,
        /// Degraded threshold in force.
        degraded: Duration,
        /// Stale threshold in force.
        stale: Duration,
        /// Critical threshold in force.
        critical: Duration,
        /// The thresholds the market did not set, with the global variables they came from.
        inherited: Vec<(&'static str, &'static str)>,
    },
    /// A log format other than `text` or `json`.
    #[error("{LOG_FORMAT}: invalid value {0:?} (expected text or json)")]
    InvalidLogFormat(String),
    /// A log level `EnvFilter` rejects, or an empty one.
    #[error("{LOG_LEVEL}: invalid filter {value:?}: {problem}")]
    InvalidLogLevel {
        /// The value as given.
        value: String,
        /// What is wrong, with the nearest level when one is near.
        problem: String,
    },
    /// A shard that is not `<index>/<count>` with `index < count`.
    #[error("{SHARD}: invalid value {value:?}: {problem}")]
    InvalidShard {
        /// The value as given.
        value: String,
        /// What is wrong.
        problem: String,
    },
    /// `envy` rejected the known variables; cannot happen while every field is an optional string.
    #[error("{ENV_PREFIX}*: {0}")]
    Environment(String),
}

impl ConfigError {
    /// The flag or variable the error is about, flags first: the order errors are reported in.
    pub(super) fn subject(&self) -> (bool, &str) {
        use ConfigError::*;
        match self {
            UnknownFlag { name, .. } => (false, name),
            MissingValue(flag) | UnexpectedValue(flag) | RepeatedFlag(flag) => (false, flag),
            InvalidListenAddress(_) => (false, LISTEN_ADDRESS_FLAG),
            InvalidTelemetryPath(_) => (false, TELEMETRY_PATH_FLAG),
            InvalidWebConfig { .. } => (false, WEB_CONFIG_FLAG),
            UnknownVariable { name: var, .. }
            | EmptySymbols { var }
            | InvalidSymbol { var, .. }
            | DuplicateSymbol { var, .. }
            | InvalidUrl { var, .. }
            | EmptyChannels { var }
            | InvalidChannel { var, .. }
            | DuplicateChannel { var, .. } => (true, var),
            InvalidDuration { var, .. } | TooShort { var, .. } => (true, var),
            InvalidMisses(_) => (true, HEARTBEAT_MISSES),
            ThresholdsOutOfOrder { .. } => (true, DEGRADED_AFTER),
            MarketThresholdsOutOfOrder { vars, .. } => (true, vars),
            InvalidLogFormat(_) => (true, LOG_FORMAT),
            InvalidLogLevel { .. } => (true, LOG_LEVEL),
            InvalidShard { .. } => (true, SHARD),
            Environment(_) => (true, ENV_PREFIX),
        }
    }
}

pub(super) fn did_you_mean(suggestion: &Option<String>) -> String {
    suggestion
        .as_ref()
        .map(|known| format!(" (did you mean {known}?)"))
        .unwrap_or_default()
}

pub(super) fn human(duration: &Duration) -> humantime::FormattedDuration {
    format_duration(*duration)
}

/// `" (degraded from MARKETFEED_DEGRADED_AFTER, ...)"`, naming where the values a market did not set came from.
pub(super) fn inherited_from(from: &[(&'static str, &'static str)]) -> String {
    if from.is_empty() {
        return String::new();
    }
    let from: Vec<String> = from
        .iter()
        .map(|(threshold, var)| format!("{threshold} from {var}"))
        .collect();
    format!(" ({})", from.join(", "))
}

/// Every problem found, sorted by the flag or variable it names (flags first); never empty.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The sort is stable, so problems with one variable keep the order of its items.
    pub(super) fn sorted(mut errors: Vec<ConfigError>) -> Self {
        errors.sort_by(|a, b| a.subject().cmp(&b.subject()));
        ConfigErrors(errors)
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
