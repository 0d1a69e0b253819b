//! Does a `*` market's rebuild leak? The exporter in process (so the listing can be re-read every second, which
//! the binary's 10-minute refresh does not allow), a fake Bybit linear venue listing 1000 symbols (2000
//! subscriptions) of which ten change after each rebuild and `CHURN_SECS`, each change a make-before-break
//! rebuild. Prints the
//! process's RSS every `SAMPLE_SECS` with the number of rebuilds so far: a leak grows with the rebuilds, the
//! allocator's high-water mark levels off. Not part of the test command; docs/benchmarks.md has a run.
//!
//! `cargo run --release --example rebuilds [REBUILDS] [CHURN_SECS]`

use std::time::Duration;

use marketfeed_exporter::app::{self, Tuning};
use marketfeed_exporter::config::{Config, parse_flags};
use marketfeed_exporter::model::Venue;
use marketfeed_exporter::rest::RestSettings;
use marketfeed_testkit as support;
use support::fake::{FakeKind, FakeVenue};
use support::fake_rest::{FakeRest, RestKind};

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn listing(generation: usize) -> Vec<(String, &'static str)> {
    (0..1000)
        .map(|i| {
            let i = if i < 10 { i + 10_000 * generation } else { i };
            (format!("S{i}USDT"), "Trading")
        })
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let arg = |n: usize, default: u64| {
        std::env::args()
            .nth(n)
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let (rebuilds, churn_secs) = (arg(1, 100) as usize, arg(2, 3));
    // LOG=info shows the exporter's log lines.
    if let Ok(filter) = std::env::var("LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .init();
    }
    let venue = FakeVenue::start(FakeKind::BybitLinear).await;
    venue.set_data_interval(Duration::from_secs(1));
    // Bybit's own cut after 10 minutes without a client ping (the fake scales it down for the tests).
    venue.set_idle_cut(Duration::from_secs(600));
    let rest = FakeRest::start(RestKind::Bybit).await;
    let set = |generation: usize| {
        let list = listing(generation);
        let pairs: Vec<(&str, &str)> = list.iter().map(|(s, t)| (s.as_str(), *t)).collect();
        rest.set_instruments("linear", &pairs);
    };
    set(0);
    let vars = [
        ("MARKETFEED_BYBIT_LINEAR_SYMBOLS", "*".to_owned()),
        ("MARKETFEED_BYBIT_LINEAR_URL", venue.base_url()),
        ("MARKETFEED_BYBIT_REST_URL", rest.base_url()),
        ("MARKETFEED_LOG_LEVEL", "error".to_owned()),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    let flags = parse_flags(["--web.listen-address=127.0.0.1:0".to_owned()]).unwrap();
    let config = Config::load(vars, &flags).unwrap();
    let tuning = Tuning {
        rest: RestSettings {
            discovery_interval: Duration::from_secs(1),
            ..RestSettings::default()
        },
        ..Tuning::default()
    };
    let running = app::start(&config, tuning).await.unwrap();
    // Everything subscribed and flowing before the first sample.
    tokio::time::sleep(Duration::from_secs(10)).await;
    println!(
        "| rebuilds | RSS MiB |\n|---|---|\n| 0 | {:.1} |",
        rss_mib()
    );
    for generation in 1..=rebuilds {
        set(generation);
        // Until the new set is the one recorded (the rebuild done), then a pause with both sets gone quiet.
        let newest = format!("S{}USDT", 10_000 * generation);
        let rebuilt = || {
            running
                .trackers
                .get(Venue::BybitLinear)
                .is_some_and(|t| t.symbols().any(|(_, s)| s == newest))
        };
        while !rebuilt() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(churn_secs)).await;
        if generation % 10 == 0 {
            println!("| {generation} | {:.1} |", rss_mib());
        }
    }
    running.stop().await;
}
