//! The command line: Prometheus-style `--web.*` flags and the action flags, parsed without checking values
//! (that is [`Config::load`](super::Config::load)'s work).

use super::*;

/// What the process was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Action {
    /// Serve (no action flag).
    #[default]
    Run,
    /// `--check-config`: validate, print the summary, exit.
    CheckConfig,
    /// `--help` or `-h`: print [`help_text`], exit. Wins over every other action.
    Help,
    /// `--version`: print the version, exit. Wins over `--check-config`.
    Version,
}

/// The parsed command line; values are checked by [`Config::load`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flags {
    /// What to do.
    pub action: Action,
    /// `--web.listen-address`, default `:10066`.
    pub listen_address: String,
    /// `--web.telemetry-path`, default `/metrics`.
    pub telemetry_path: String,
    /// `--web.config.file`, empty when not given.
    pub web_config_file: String,
}

impl Default for Flags {
    fn default() -> Self {
        Flags {
            action: Action::Run,
            listen_address: DEFAULT_LISTEN_ADDRESS.to_owned(),
            telemetry_path: DEFAULT_TELEMETRY_PATH.to_owned(),
            web_config_file: String::new(),
        }
    }
}

/// Parses the command line, `args` without the program name.
///
/// Accepts `--flag=value` and `--flag value`, `--help`/`-h`, `--version` and `--check-config`.
pub fn parse_flags(args: impl IntoIterator<Item = String>) -> Result<Flags, ConfigErrors> {
    let mut flags = Flags::default();
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    let mut args = args.into_iter().peekable();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (arg.as_str(), None),
        };
        let (flag, target) = match name {
            "-h" | "--help" => ("--help", None),
            "--version" => ("--version", None),
            "--check-config" => ("--check-config", None),
            LISTEN_ADDRESS_FLAG => (LISTEN_ADDRESS_FLAG, Some(&mut flags.listen_address)),
            TELEMETRY_PATH_FLAG => (TELEMETRY_PATH_FLAG, Some(&mut flags.telemetry_path)),
            WEB_CONFIG_FLAG => (WEB_CONFIG_FLAG, Some(&mut flags.web_config_file)),
            _ => {
                errors.push(ConfigError::UnknownFlag {
                    name: name.to_owned(),
                    suggestion: lint::nearest_flag(name).map(str::to_owned),
                });
                continue;
            }
        };
        let repeated = !seen.insert(flag);
        match target {
            None if inline.is_some() => errors.push(ConfigError::UnexpectedValue(flag)),
            None => {}
            Some(target) => {
                // A following flag is no value: no address or path starts with '-'.
                let value = inline
                    .map(str::to_owned)
                    .or_else(|| args.next_if(|next| !next.starts_with('-')));
                match value {
                    None => errors.push(ConfigError::MissingValue(flag)),
                    Some(_) if repeated => errors.push(ConfigError::RepeatedFlag(flag)),
                    Some(value) => *target = value,
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors::sorted(errors));
    }
    flags.action = if seen.contains("--help") {
        Action::Help
    } else if seen.contains("--version") {
        Action::Version
    } else if seen.contains("--check-config") {
        Action::CheckConfig
    } else {
        Action::Run
    };
    Ok(flags)
}
