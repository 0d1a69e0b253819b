//! Process entry: flags and configuration, logging, run until SIGTERM or SIGINT, exit code.

use std::process::ExitCode;

use marketfeed_exporter::app::{self, Tuning};
use marketfeed_exporter::config::{self, Action, Config, LogFormat};

/// Exit code for a configuration error, so orchestration can tell it from a crash.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let flags = match config::parse_flags(std::env::args().skip(1)) {
        Ok(flags) => flags,
        Err(errors) => return config_error(&errors),
    };
    match flags.action {
        Action::Help => return print(&config::help_text()),
        Action::Version => {
            let build = marketfeed_exporter::metrics::BuildInfo::current();
            return print(&format!(
                "marketfeed_exporter {} (revision {}, rustc {})\n",
                build.version, build.revision, build.rustc_version
            ));
        }
        Action::Run | Action::CheckConfig => {}
    }
    let config = match Config::load(std::env::vars(), &flags) {
        Ok(config) => config,
        Err(errors) => return config_error(&errors),
    };
    if flags.action == Action::CheckConfig {
        if !config.ignored_variables.is_empty() {
            eprintln!(
                "marketfeed_exporter: ignoring Kubernetes service-link variables: {}",
                config.ignored_variables.join(", ")
            );
        }
        if !config.unwatched_variables.is_empty() {
            eprintln!(
                "marketfeed_exporter: set for markets that are not watched, so unused here: {}",
                config.unwatched_variables.join(", ")
            );
        }
        // A warning is no error: the configuration is valid and the exit code stays 0.
        for warning in config.warnings() {
            eprintln!("marketfeed_exporter: warning: {warning}");
        }
        let series = marketfeed_exporter::cardinality::estimate(&config);
        return print(&format!(
            "configuration OK\n{}\n{}\n",
            config.summary(),
            series.line()
        ));
    }
    init_logging(&config);
    marketfeed_exporter::memory::tune_allocator();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("marketfeed_exporter: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        "starting\n{}",
        config.summary()
    );
    if !config.ignored_variables.is_empty() {
        tracing::info!(
            variables = config.ignored_variables.join(","),
            "ignoring Kubernetes service-link variables (a Service named marketfeed-... in the namespace)"
        );
    }
    if !config.unwatched_variables.is_empty() {
        tracing::info!(
            variables = config.unwatched_variables.join(","),
            "set for markets that are not watched, so unused here"
        );
    }
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    match runtime.block_on(app::run(&config, Tuning::default(), shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "exporter failed");
            ExitCode::FAILURE
        }
    }
}

/// Writes to stdout; a reader that went away (`--help | head`) is no failure, unlike `println!`'s panic.
fn print(text: &str) -> ExitCode {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("marketfeed_exporter: cannot write to stdout: {e}");
            ExitCode::FAILURE
        }
    }
}

fn config_error(errors: &config::ConfigErrors) -> ExitCode {
    eprintln!("marketfeed_exporter: invalid configuration:\n{errors}");
    ExitCode::from(EXIT_CONFIG)
}

fn init_logging(config: &Config) {
    // The level was validated with the configuration; the fallback only guards against a race-free impossibility.
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.with_ansi(false).init(),
    }
}

/// Resolves on SIGTERM (Kubernetes, systemd) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
