//! The HTTP abuse mix, measured: how long the kubelet's probes and an authorised scrape take while hostile and
//! greedy clients hit the exporter at once. Prints figures; asserts nothing (docs/benchmarks.md has the results).
//!
//! Starts a fake Bybit linear venue (20 symbols) and the release binary with basic auth over plain HTTP (bcrypt
//! cost 10), then for `SECONDS` (default 20) runs, each from its own loopback source address:
//!
//! - 200 silent connections from 127.0.0.2, reopened as they close;
//! - 200 slowloris connections from 127.0.0.3, one header line every 3 s, reopened as they close;
//! - 1000 concurrent authorised scrapes from 127.0.0.4, in a loop;
//! - a wrong-password flood from 127.0.0.5 at concurrency 160;
//!
//! while 127.0.0.1 probes `/-/healthy`, `/-/ready` and an authorised `/metrics` every 100 ms on fresh connections,
//! as the kubelet and a Prometheus do, and midway a second user logs in for the first time from 127.0.0.6 (its
//! credentials not yet remembered, as after a restart or a password rotation). A probe counts as failed after 3 s
//! (the shipped probes' `timeoutSeconds`).
//!
//! `cargo build --release && cargo run --release --example http_abuse [BINARY] [SECONDS]`

use marketfeed_testkit as support;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use support::abuse::{
    Mix, Sizes, basic, basic_auth_file, example_args, messages_total, request, source,
};
use support::fake::{FakeKind, FakeVenue};

const USER: &str = "prometheus";
const PASSWORD: &str = "scrape-secret";
/// A second user whose first login happens during the mix, as after a restart or a password rotation.
const LATECOMER: &str = "grafana-agent";
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Default)]
struct Probe {
    latencies: std::sync::Mutex<Vec<Duration>>,
    failed: AtomicU64,
}

impl Probe {
    fn report(&self, name: &str) {
        let mut l = self.latencies.lock().unwrap().clone();
        l.sort();
        let pick = |q: f64| {
            l.get(((l.len() as f64 * q) as usize).min(l.len().saturating_sub(1)))
                .map_or("-".to_owned(), |d| {
                    format!("{:.0} ms", d.as_secs_f64() * 1e3)
                })
        };
        println!(
            "| {name} | {} | {} | {} | {} | {} |",
            l.len(),
            self.failed.load(Relaxed),
            pick(0.5),
            pick(0.99),
            pick(1.0),
        );
    }
}

#[tokio::main]
async fn main() {
    let (binary, seconds) = example_args(20);

    let fake = FakeVenue::start(FakeKind::BybitLinear).await;
    fake.set_data_interval(Duration::from_millis(100));
    let dir = std::env::temp_dir().join(format!("marketfeed-abuse-{}", std::process::id()));
    let web = basic_auth_file(&dir, &[USER, LATECOMER], PASSWORD);
    let addr = support::prom::free_addr();
    let symbols: Vec<String> = (0..20).map(|i| format!("S{i}USDT")).collect();
    let mut child = Command::new(&binary)
        .env_clear()
        .env("MARKETFEED_BYBIT_LINEAR_SYMBOLS", symbols.join(","))
        .env("MARKETFEED_BYBIT_LINEAR_URL", fake.base_url())
        .env("MARKETFEED_BYBIT_REST_URL", "http://127.0.0.1:9")
        .env("MARKETFEED_LOG_LEVEL", "error")
        .arg(format!("--web.listen-address={addr}"))
        .arg(format!("--web.config.file={}", web.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the exporter");
    let auth = basic(USER, PASSWORD);
    while request(source(1), addr, "/-/healthy", "").await != Some(200) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A first authorised scrape so the credentials are remembered, as for a Prometheus that has been running.
    while request(source(1), addr, "/metrics", &auth).await != Some(200) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mix = Mix::start(addr, Sizes::default(), &auth, &basic(USER, "wrong"));
    tokio::time::sleep(Duration::from_secs(2)).await;

    let ingest_before = (Instant::now(), messages_total(addr, &auth).await);
    let probes = [
        ("`/-/healthy`", "/-/healthy", ""),
        ("`/-/ready`", "/-/ready", ""),
        ("authorised `/metrics`", "/metrics", auth.as_str()),
    ];
    let results: Vec<Arc<Probe>> = probes.iter().map(|_| Arc::new(Probe::default())).collect();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut probers = Vec::new();
    for ((_, path, credentials), result) in probes.iter().zip(&results) {
        let (path, credentials, result) =
            (path.to_string(), credentials.to_string(), result.clone());
        probers.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let start = Instant::now();
                let answer = tokio::time::timeout(
                    PROBE_TIMEOUT,
                    request(source(1), addr, &path, &credentials),
                )
                .await;
                match answer {
                    Ok(Some(200)) => result.latencies.lock().unwrap().push(start.elapsed()),
                    _ => {
                        result.failed.fetch_add(1, Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    }
    // Midway, a client whose credentials are not remembered yet logs in for the first time.
    tokio::time::sleep(Duration::from_secs(seconds / 2)).await;
    let first_login = Instant::now();
    let latecomer = tokio::time::timeout(
        Duration::from_secs(30),
        request(source(6), addr, "/metrics", &basic(LATECOMER, PASSWORD)),
    )
    .await;
    let first_login = (latecomer, first_login.elapsed());
    for prober in probers {
        let _ = prober.await;
    }
    let ingest_after = (Instant::now(), messages_total(addr, &auth).await);

    println!("binary: {binary}, {seconds} s under the mix\n");
    println!("| probe from 127.0.0.1 | answered | failed (3 s) | p50 | p99 | max |");
    println!("|---|---|---|---|---|---|");
    for ((name, ..), result) in probes.iter().zip(&results) {
        result.report(name);
    }
    println!(
        "\nfirst login of another user (127.0.0.6) midway: {:?} after {:.0} ms",
        first_login.0.ok().flatten(),
        first_login.1.as_secs_f64() * 1e3
    );
    let rate = (ingest_after.1 - ingest_before.1)
        / ingest_after.0.duration_since(ingest_before.0).as_secs_f64();
    println!(
        "\ningest during the mix: {rate:.0} messages/s (the fake venue sends 400/s); greedy scrapes answered: {}; \
         password guesses answered 401: {}, 429: {}",
        mix.scrapes.load(Relaxed),
        mix.denied.load(Relaxed),
        mix.busy.load(Relaxed),
    );
    mix.stop();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    std::process::exit(0);
}
