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
//! RSS is read three ways. The point sample (`VmRSS`) catches whatever is in flight: with a scrape or two always
//! open (a 1 MB text and its gzip copy, returned when freed), it reads up to 3.5 MiB above what the process keeps.
//! So each sample also reads `/proc/<pid>/status` ten times 100 ms apart and keeps the lowest, split into the
//! process's own memory (`RssAnon`: heap, stacks, buffers; where a leak shows) and the mapped files (`RssFile`:
//! the binary's code and the libraries, paged in as code paths first run and never growing past the binary).
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
use support::procfs::{self, field, open_fds};

const USER: &str = "prometheus";
const PASSWORD: &str = "soak-secret";

fn status_field(pid: u32, name: &str) -> f64 {
    field(&procfs::status(pid), name)
}

/// One sample of the run; MiB for the memory fields.
struct Sample {
    minute: f64,
    rss: f64,
    floor: f64,
    anon: f64,
    file: f64,
    fds: f64,
    threads: f64,
    tasks: f64,
    rate: f64,
}

/// The lowest `VmRSS` of ten reads 100 ms apart, with its `RssAnon` and `RssFile`, in MiB.
async fn lowest_rss(pid: u32) -> (f64, f64, f64) {
    let mut lowest = (f64::MAX, 0.0, 0.0);
    for _ in 0..10 {
        // One read of the file, so the three figures are of the same moment.
        let status = procfs::status(pid);
        let [rss, anon, file] = ["VmRSS:", "RssAnon:", "RssFile:"].map(|f| field(&status, f));
        if rss < lowest.0 {
            lowest = (rss, anon, file);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (lowest.0 / 1024.0, lowest.1 / 1024.0, lowest.2 / 1024.0)
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
    println!(
        "| minute | RSS MiB | lowest RSS MiB | its RssAnon MiB | its RssFile MiB | open fds | threads | runtime tasks | ingest msg/s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let start = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
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
        let rss = status_field(pid, "VmRSS:") / 1024.0;
        let (floor, anon, file) = lowest_rss(pid).await;
        let sample = Sample {
            minute: start.elapsed().as_secs_f64() / 60.0,
            rss,
            floor,
            anon,
            file,
            fds: open_fds(pid) as f64,
            threads: status_field(pid, "Threads:"),
            tasks: family_sum(&text, "marketfeed_runtime_tasks"),
            rate,
        };
        println!(
            "| {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {:.0} |",
            sample.minute,
            sample.rss,
            sample.floor,
            sample.anon,
            sample.file,
            sample.fds,
            sample.threads,
            sample.tasks,
            sample.rate
        );
        samples.push(sample);
    }
    // The mean of each field over the samples of a window.
    let window = |from: f64, to: f64| {
        let picked: Vec<_> = (samples.iter())
            .filter(|s| s.minute >= from && s.minute < to)
            .collect();
        let n = picked.len().max(1) as f64;
        let mean = |f: fn(&Sample) -> f64| picked.iter().map(|s| f(s)).sum::<f64>() / n;
        Sample {
            minute: from,
            rss: mean(|s| s.rss),
            floor: mean(|s| s.floor),
            anon: mean(|s| s.anon),
            file: mean(|s| s.file),
            fds: mean(|s| s.fds),
            threads: mean(|s| s.threads),
            tasks: mean(|s| s.tasks),
            rate: mean(|s| s.rate),
        }
    };
    let minutes = seconds as f64 / 60.0;
    let first = window(0.0, 10.0_f64.min(minutes / 2.0));
    let end = window(minutes - 10.0_f64.min(minutes / 2.0), f64::MAX);
    let change = |a: f64, b: f64| if a == 0.0 { 0.0 } else { (b - a) / a * 100.0 };
    let line = |what: &str, unit: &str, a: f64, b: f64| {
        println!("{what}: {a:.1} -> {b:.1}{unit} ({:+.1} %)", change(a, b));
    };
    println!(
        "\nfirst vs last ten minutes, means of the samples (listing generations: {generation}):"
    );
    line("RSS, point samples", " MiB", first.rss, end.rss);
    line(
        "RSS, lowest of each sample's ten reads",
        " MiB",
        first.floor,
        end.floor,
    );
    line("  of which RssAnon", " MiB", first.anon, end.anon);
    line("  of which RssFile", " MiB", first.file, end.file);
    line("open fds", "", first.fds, end.fds);
    line("threads", "", first.threads, end.threads);
    line("runtime tasks", "", first.tasks, end.tasks);
    line("ingest", " msg/s", first.rate, end.rate);
    scraper.abort();
    mix.stop();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    std::process::exit(0);
}
