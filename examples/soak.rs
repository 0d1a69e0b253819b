//! The soak: the release binary for an hour (or `SECONDS`) under everything at once, sampled every 30 s. Not part of
//! the test command; docs/benchmarks.md has a run's figures.
//!
//! - `*` on a fake Bybit linear venue listing 1000 trading symbols: 2000 subscriptions, one frame a second each;
//! - listing churn: every 5 minutes ten symbols are delisted and ten new ones listed (a make-before-break rebuild);
//! - forced drops: every 2 minutes the venue resets every connection;
//! - a scrape of `/metrics` (gzip) every second, with basic auth;
//! - a light HTTP abuse mix throughout: 50 silent, 50 slowloris, 50 scrapers and 2 password guessers asking once
//!   every 2 s each.
//!
//! Each sample prints RSS, open file descriptors, threads, the runtime's tasks (`marketfeed_runtime_tasks`) and the
//! ingest rate since the previous sample; the end compares the first ten minutes' averages with the last ten's.
//!
//! `cargo build --release && cargo run --release --example soak [BINARY] [SECONDS] [CHURN_SECS] [DROP_SECS]`

use marketfeed_testkit as support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::abuse::{
    Mix, Sizes, basic, basic_auth_file, example_args, family_sum, messages_total, request,
    scrape_text, source,
};
use support::churn::Churn;

const USER: &str = "prometheus";
const PASSWORD: &str = "soak-secret";

fn status_field(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[tokio::main]
async fn main() {
    let (binary, seconds) = example_args(3600);
    // Optional third and fourth arguments: seconds between listing changes and between forced drops, to
    // compress an hour's churn into a short run.
    let every = |n: usize, default: u64| {
        Duration::from_secs(
            std::env::args()
                .nth(n)
                .and_then(|s| s.parse().ok())
                .unwrap_or(default),
        )
    };
    let (churn_every, drop_every) = (every(3, 300), every(4, 120));

    let churn = Churn::start().await;
    let (venue, rest) = (&churn.venue, &churn.rest);
    let dir = std::env::temp_dir().join(format!("marketfeed-soak-{}", std::process::id()));
    let web = basic_auth_file(&dir, &[USER], PASSWORD);
    let addr = support::prom::free_addr();
    let mut child = Command::new(&binary)
        .env_clear()
        .env("MARKETFEED_BYBIT_LINEAR_SYMBOLS", "*")
        .env("MARKETFEED_BYBIT_LINEAR_URL", venue.base_url())
        .env("MARKETFEED_BYBIT_REST_URL", rest.base_url())
        .env("MARKETFEED_LOG_LEVEL", "error")
        .arg(format!("--web.listen-address={addr}"))
        .arg(format!("--web.config.file={}", web.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the exporter");
    let pid = child.id();
    let auth = basic(USER, PASSWORD);
    while request(source(1), addr, "/-/ready", "").await != Some(200) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mix = Mix::start(
        addr,
        Sizes {
            silent: 50,
            slowloris: 50,
            scrapers: 50,
            guessers: 2,
            // A steady load rather than the flood of the abuse benchmark (docs/benchmarks.md has that): each asks
            // once every 2 s; the guesses cost a bcrypt check each (about 0.1 s of a core at cost 10).
            pause: Duration::from_secs(2),
        },
        &auth,
        &basic(USER, "wrong"),
    );
    let scraper = {
        // As Prometheus asks: compressed.
        let auth = format!("{auth}Accept-Encoding: gzip\r\n");
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let _ = request(source(1), addr, "/metrics", &auth).await;
            }
        })
    };

    println!(
        "binary: {binary}, {seconds} s, listing change every {churn_every:?}, drops every {drop_every:?}\n"
    );
    println!("| minute | RSS MiB | open fds | threads | runtime tasks | ingest msg/s |");
    println!("|---|---|---|---|---|---|");
    let start = Instant::now();
    let mut samples: Vec<(f64, f64, f64, f64, f64, f64)> = Vec::new();
    let mut last = (Instant::now(), messages_total(addr, &auth).await);
    let mut generation = 0;
    let mut next_churn = start + churn_every;
    let mut next_drop = start + drop_every;
    while start.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_secs(30)).await;
        let now = Instant::now();
        if now >= next_churn {
            generation += 1;
            churn.list(generation);
            next_churn += churn_every;
        }
        if now >= next_drop {
            venue.reset_all();
            next_drop += drop_every;
        }
        let text = scrape_text(addr, &auth).await;
        let total = family_sum(&text, "marketfeed_messages_total");
        let rate = (total - last.1).max(0.0) / now.duration_since(last.0).as_secs_f64();
        last = (now, total);
        let sample = (
            start.elapsed().as_secs_f64() / 60.0,
            status_field(pid, "VmRSS:") / 1024.0,
            open_fds(pid) as f64,
            status_field(pid, "Threads:"),
            family_sum(&text, "marketfeed_runtime_tasks"),
            rate,
        );
        println!(
            "| {:.1} | {:.1} | {} | {} | {} | {:.0} |",
            sample.0, sample.1, sample.2, sample.3, sample.4, sample.5
        );
        samples.push(sample);
    }
    let window = |from: f64, to: f64| {
        let picked: Vec<_> = samples.iter().filter(|s| s.0 >= from && s.0 < to).collect();
        let n = picked.len().max(1) as f64;
        (
            picked.iter().map(|s| s.1).sum::<f64>() / n,
            picked.iter().map(|s| s.2).sum::<f64>() / n,
            picked.iter().map(|s| s.3).sum::<f64>() / n,
            picked.iter().map(|s| s.4).sum::<f64>() / n,
            picked.iter().map(|s| s.5).sum::<f64>() / n,
        )
    };
    let minutes = seconds as f64 / 60.0;
    let first = window(0.0, 10.0_f64.min(minutes / 2.0));
    let end = window(minutes - 10.0_f64.min(minutes / 2.0), f64::MAX);
    let change = |a: f64, b: f64| if a == 0.0 { 0.0 } else { (b - a) / a * 100.0 };
    println!(
        "\nfirst vs last ten minutes: RSS {:.1} -> {:.1} MiB ({:+.1} %), fds {:.0} -> {:.0} ({:+.1} %), threads {:.0} -> {:.0}, \
         tasks {:.0} -> {:.0} ({:+.1} %), ingest {:.0} -> {:.0} msg/s ({:+.1} %); listing generations {generation}",
        first.0,
        end.0,
        change(first.0, end.0),
        first.1,
        end.1,
        change(first.1, end.1),
        first.2,
        end.2,
        first.3,
        end.3,
        change(first.3, end.3),
        first.4,
        end.4,
        change(first.4, end.4),
    );
    scraper.abort();
    mix.stop();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    std::process::exit(0);
}
