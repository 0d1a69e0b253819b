//! The whole market on one process (issue 14, goal 3): every symbol of both venues under `*`, at realistic rates,
//! with bursts, for ten minutes. Prints figures; asserts only that data flowed.
//!
//! Five paced flood venues ([`Flood::start_paced`]) and the fake REST listings serve the market sizes of the
//! issue: Binance spot 2000 trading symbols, USD-M 500, Bybit spot 600, linear 500, inverse 25, each with the
//! exporter's default channels (7250 subscriptions). Each stream sends at its channel's rate (`RATES`): the
//! documented cadence where there is one (spot `depth5` and USD-M `markPrice@1s` once a second), otherwise an
//! average across a market where a few symbols are busy and most are quiet. About 19 400 messages a second in
//! all; every minute, from second 30 to 40, every rate is ten times that.
//!
//! The release binary runs with `env_clear()`, `*` on all five markets and the default settings. Once every
//! stream delivers and a minute of warm-up has passed (the first listing and clock checks are done), the run
//! samples every 5 s: the process's CPU time (`utime + stime`), RSS, open descriptors, and the frames the venues
//! sent. Every 15 s it scrapes `/metrics` as Prometheus does (gzip) and times it. The event-latency histogram,
//! read at the start and the end, gives the delay from the venue stamping a frame (the tick it is sent on) to the
//! exporter recording it: an upper bound of receive-to-record that includes the socket buffers.
//!
//! Steady state is every 5 s window that does not touch a burst or the 5 s after it.
//!
//! `cargo build --release --bins --examples && cargo run --release --example market_load -- [BINARY] [SECONDS] [SCALE]`
//! (defaults: target/release/marketfeed_exporter, 600, 1). `SCALE` multiplies every market's symbol count (and so
//! the rates): 1.38 makes 10 000 subscriptions, the size of the scrape goal.

use marketfeed_testkit as support;

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::abuse::{example_args, family_sum, scrape_text};
use support::fake::FakeKind;
use support::fake_rest::{FakeRest, RestKind};
use support::flood::{Flood, Pace};
use support::procfs;

/// One market of the load: its fake, its variables' `<MARKET>`, its size and its channels' rates.
#[derive(Clone, Copy)]
struct Market {
    kind: FakeKind,
    var: &'static str,
    /// Bybit's instruments-info category; Binance REST fakes serve one market each.
    category: &'static str,
    symbols: usize,
    /// Symbol names are `<prefix><n><quote>`: no real venue lists them, and markets never share one.
    prefix: &'static str,
    quote: &'static str,
    /// Messages per second per stream of each default channel.
    rates: &'static [(&'static str, f64)],
}

// Binance spot `depth5` is documented as pushed every second, USD-M `markPrice@1s` likewise. The others push on
// change: `aggTrade` averages 2 a second over 2000 spot symbols (a handful trade hundreds of times a second, most
// a few times a minute), USD-M `bookTicker` 10, Bybit `orderbook.1` (10 ms pushes on change) 5 and `tickers`
// (50 ms spot, 100 ms derivatives, on change) 2.
const BINANCE_SPOT_RATES: &[(&str, f64)] = &[("depth5", 1.0), ("aggTrade", 2.0)];
const BINANCE_USDM_RATES: &[(&str, f64)] = &[("markPrice@1s", 1.0), ("bookTicker", 10.0)];
const BYBIT_RATES: &[(&str, f64)] = &[("orderbook.1", 5.0), ("tickers", 2.0)];

const MARKETS: [Market; 5] = [
    Market {
        kind: FakeKind::BinanceSpot,
        var: "BINANCE_SPOT",
        category: "spot",
        symbols: 2000,
        prefix: "A",
        quote: "USDT",
        rates: BINANCE_SPOT_RATES,
    },
    Market {
        kind: FakeKind::BinanceUsdm,
        var: "BINANCE_USDM",
        category: "usdm",
        symbols: 500,
        prefix: "B",
        quote: "USDT",
        rates: BINANCE_USDM_RATES,
    },
    Market {
        kind: FakeKind::BybitSpot,
        var: "BYBIT_SPOT",
        category: "spot",
        symbols: 600,
        prefix: "C",
        quote: "USDT",
        rates: BYBIT_RATES,
    },
    Market {
        kind: FakeKind::BybitLinear,
        var: "BYBIT_LINEAR",
        category: "linear",
        symbols: 500,
        prefix: "D",
        quote: "USDT",
        rates: BYBIT_RATES,
    },
    Market {
        kind: FakeKind::BybitInverse,
        var: "BYBIT_INVERSE",
        category: "inverse",
        symbols: 25,
        prefix: "E",
        quote: "USD",
        rates: BYBIT_RATES,
    },
];

const SAMPLE_EVERY: Duration = Duration::from_secs(5);
const SCRAPE_EVERY: Duration = Duration::from_secs(15);
const WARM_UP: Duration = Duration::from_secs(60);
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(300);
/// Each minute's burst: from this second, for this long, at this factor.
const BURST_AT: u64 = 30;
const BURST_FOR: u64 = 10;
const BURST_FACTOR: f64 = 10.0;
/// `/proc/<pid>/stat` counts CPU time in ticks of 1/USER_HZ s, 100 on every Linux build in use.
const USER_HZ: f64 = 100.0;
const LATENCY: &str = "marketfeed_event_latency_seconds_bucket";

impl Market {
    fn names(&self) -> Vec<String> {
        (0..self.symbols)
            .map(|i| format!("{}{i:04}{}", self.prefix, self.quote))
            .collect()
    }

    fn streams(&self) -> usize {
        self.symbols * self.rates.len()
    }

    fn rate(&self) -> f64 {
        self.symbols as f64 * self.rates.iter().map(|(_, r)| r).sum::<f64>()
    }
}

/// One sample of the exporter process and the venues.
#[derive(Clone, Copy)]
struct Sample {
    at: f64,
    cpu_ticks: u64,
    rss_mib: f64,
    fds: usize,
    sent: u64,
}

fn proc_sample(pid: u32, at: f64, sent: u64) -> Sample {
    Sample {
        at,
        cpu_ticks: procfs::cpu_ticks(pid),
        rss_mib: procfs::field(&procfs::status(pid), "VmRSS:") / 1024.0,
        fds: procfs::open_fds(pid),
        sent,
    }
}

/// One gzip scrape as Prometheus asks for it: its time to the last byte and the bytes received (headers included).
/// Blocking I/O on a thread of its own, as Prometheus is a process of its own: on the runtime that also runs the
/// flood venues, each read of the answer would wait behind their tasks and the time would be theirs as much as
/// the exporter's.
async fn timed_scrape(to: SocketAddr) -> (Duration, usize) {
    let scrape = move || {
        use std::io::{Read, Write};
        let start = std::time::Instant::now();
        let Ok(mut stream) = std::net::TcpStream::connect(to) else {
            return (start.elapsed(), 0);
        };
        let request = "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n";
        let mut body = Vec::new();
        if stream.write_all(request.as_bytes()).is_ok() {
            let _ = stream.read_to_end(&mut body);
        }
        (start.elapsed(), body.len())
    };
    tokio::task::spawn_blocking(scrape)
        .await
        .unwrap_or_default()
}

/// The event-latency buckets of one scrape, summed over every series: `(le, cumulative count)` in order.
fn latency_buckets(text: &str) -> Vec<(f64, f64)> {
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for line in text.lines().filter(|l| l.starts_with(LATENCY)) {
        let Some((_, after)) = line.split_once("le=\"") else {
            continue;
        };
        let Some((le, _)) = after.split_once('"') else {
            continue;
        };
        let le = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().unwrap_or(f64::NAN)
        };
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        match buckets.iter_mut().find(|(b, _)| *b == le) {
            Some((_, sum)) => *sum += value,
            None => buckets.push((le, value)),
        }
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
}

/// The `q` quantile of the observations between two bucket readings, interpolated inside its bucket as
/// Prometheus's `histogram_quantile` does.
fn quantile(q: f64, start: &[(f64, f64)], end: &[(f64, f64)]) -> f64 {
    let delta: Vec<(f64, f64)> = (end.iter())
        .map(|&(le, n)| {
            (
                le,
                n - start.iter().find(|(b, _)| *b == le).map_or(0.0, |b| b.1),
            )
        })
        .collect();
    let total = delta.last().map_or(0.0, |b| b.1);
    let rank = q * total;
    let mut below = (0.0, 0.0);
    for &(le, n) in &delta {
        if n >= rank {
            if le.is_infinite() {
                return below.0;
            }
            return below.0 + (le - below.0) * (rank - below.1) / (n - below.1).max(1.0);
        }
        below = (le, n);
    }
    f64::NAN
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Whether a window touches a burst or the 5 s after one (seconds since the start of the run, whose minutes the
/// bursts follow).
fn in_burst(from: f64, to: f64) -> bool {
    let (start, end) = (BURST_AT as f64, (BURST_AT + BURST_FOR) as f64 + 5.0);
    let minute = (from / 60.0).floor() * 60.0;
    [minute, minute + 60.0]
        .iter()
        .any(|m| from < m + end && to > m + start)
}

#[tokio::main]
async fn main() {
    let (binary, seconds) = example_args(600);
    let scale: f64 = std::env::args()
        .nth(3)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let markets: Vec<Market> = (MARKETS.iter())
        .map(|m| Market {
            symbols: (m.symbols as f64 * scale).round() as usize,
            ..*m
        })
        .collect();
    let mut floods = Vec::new();
    let mut paces = Vec::new();
    let binance_spot_rest = FakeRest::start(RestKind::BinanceSpot).await;
    let binance_usdm_rest = FakeRest::start(RestKind::BinanceUsdm).await;
    let bybit_rest = FakeRest::start(RestKind::Bybit).await;
    let mut vars: Vec<(String, String)> = vec![
        ("MARKETFEED_LOG_LEVEL".into(), "warn".into()),
        (
            "MARKETFEED_BINANCE_SPOT_REST_URL".into(),
            binance_spot_rest.base_url(),
        ),
        (
            "MARKETFEED_BINANCE_USDM_REST_URL".into(),
            binance_usdm_rest.base_url(),
        ),
        ("MARKETFEED_BYBIT_REST_URL".into(), bybit_rest.base_url()),
    ];
    for market in &markets {
        let names = market.names();
        let (rest, status) = match market.kind {
            FakeKind::BinanceSpot => (&binance_spot_rest, "TRADING"),
            FakeKind::BinanceUsdm => (&binance_usdm_rest, "TRADING"),
            _ => (&bybit_rest, "Trading"),
        };
        let listing: Vec<(&str, &str)> = names.iter().map(|s| (s.as_str(), status)).collect();
        rest.set_instruments(market.category, &listing);
        let pace = Pace::new(market.rates);
        let flood = Flood::start_paced(market.kind, pace.clone()).await;
        vars.push((format!("MARKETFEED_{}_SYMBOLS", market.var), "*".into()));
        vars.push((format!("MARKETFEED_{}_URL", market.var), flood.base_url()));
        floods.push(flood);
        paces.push(pace);
    }
    let expected: usize = markets.iter().map(Market::streams).sum();
    let nominal: f64 = markets.iter().map(Market::rate).sum();

    let dir = std::env::temp_dir().join(format!("marketfeed-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log_path = dir.join("exporter.log");
    let addr = support::prom::free_addr();
    let mut child = Command::new(&binary)
        .env_clear()
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("start {binary}: {e}"));
    let pid = child.id();
    println!(
        "binary: {binary}; {} symbols, {expected} subscriptions, {nominal:.0} msg/s nominal, x{BURST_FACTOR} for \
         {BURST_FOR} s each minute; {seconds} s measured",
        markets.iter().map(|m| m.symbols).sum::<usize>()
    );

    let launched = Instant::now();
    let streams = |floods: &[Flood]| floods.iter().map(Flood::streams).sum::<usize>();
    while streams(&floods) < expected {
        assert!(
            launched.elapsed() < SUBSCRIBE_TIMEOUT,
            "only {} of {expected} streams subscribed after {SUBSCRIBE_TIMEOUT:?}; the exporter's log is {}",
            streams(&floods),
            log_path.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let subscribed_in = launched.elapsed();
    println!(
        "every stream subscribed {:.1} s after start",
        subscribed_in.as_secs_f64()
    );
    tokio::time::sleep(WARM_UP).await;

    let sent = |floods: &[Flood]| floods.iter().map(Flood::frames_sent).sum::<u64>();
    let text = scrape_text(addr, "").await;
    let (latency_start, messages_start) = (
        latency_buckets(&text),
        family_sum(&text, "marketfeed_messages_total"),
    );
    let start = Instant::now();
    let mut samples = vec![proc_sample(pid, 0.0, sent(&floods))];
    let mut scrapes: Vec<(Duration, usize)> = Vec::new();
    let mut next_scrape = start;
    let mut burst = false;
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::from_std(start) + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    while start.elapsed() < Duration::from_secs(seconds) {
        tick.tick().await;
        let elapsed = start.elapsed().as_secs();
        let want = (BURST_AT..BURST_AT + BURST_FOR).contains(&(elapsed % 60));
        if want != burst {
            burst = want;
            let factor = if burst { BURST_FACTOR } else { 1.0 };
            paces.iter().for_each(|p| p.set_factor(factor));
        }
        if Instant::now() >= next_scrape {
            next_scrape += SCRAPE_EVERY;
            scrapes.push(timed_scrape(addr).await);
        }
        if elapsed.is_multiple_of(SAMPLE_EVERY.as_secs()) {
            samples.push(proc_sample(
                pid,
                start.elapsed().as_secs_f64(),
                sent(&floods),
            ));
            print!(".");
            let _ = std::io::stdout().flush();
        }
    }
    paces.iter().for_each(|p| p.set_factor(1.0));
    // Let what was sent arrive before the last reading.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent_total = sent(&floods) - samples[0].sent;
    let text = scrape_text(addr, "").await;
    let (latency_end, messages_end) = (
        latency_buckets(&text),
        family_sum(&text, "marketfeed_messages_total"),
    );
    let exposition = text.len();
    let _ = child.kill();
    let _ = child.wait();
    println!();

    let mut steady = Vec::new();
    let mut bursts = Vec::new();
    for pair in samples.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let secs = b.at - a.at;
        let cpu = (b.cpu_ticks - a.cpu_ticks) as f64 / USER_HZ;
        let messages = (b.sent - a.sent) as f64;
        let window = (
            cpu / secs * 100.0,
            messages / secs,
            cpu / messages.max(1.0) * 1e6,
        );
        if in_burst(a.at, b.at) {
            // Only the windows wholly inside a burst say what a burst costs (samples fall on whole seconds).
            let from = a.at.round() as u64 % 60;
            let to = from + secs.round() as u64;
            if from >= BURST_AT && to <= BURST_AT + BURST_FOR {
                bursts.push(window);
            }
        } else {
            steady.push(window);
        }
    }
    let column = |w: &[(f64, f64, f64)], i: usize| -> Vec<f64> {
        w.iter().map(|t| [t.0, t.1, t.2][i]).collect()
    };
    let all_cpu = (samples.last().unwrap().cpu_ticks - samples[0].cpu_ticks) as f64 / USER_HZ;
    let rss: Vec<f64> = samples.iter().map(|s| s.rss_mib).collect();
    let fds: Vec<f64> = samples.iter().map(|s| s.fds as f64).collect();
    let scrape_ms: Vec<f64> = scrapes.iter().map(|s| s.0.as_secs_f64() * 1000.0).collect();
    let max = |v: &[f64]| v.iter().copied().fold(f64::MIN, f64::max);
    let min = |v: &[f64]| v.iter().copied().fold(f64::MAX, f64::min);
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();

    println!("| measure | figure |");
    println!("|---|---|");
    println!(
        "| steady state: CPU, % of one core (median of {} windows of 5 s) | {:.1} % |",
        steady.len(),
        median(column(&steady, 0))
    );
    println!(
        "| steady state: messages per second (median) | {:.0} |",
        median(column(&steady, 1))
    );
    println!(
        "| steady state: CPU per message (median) | {:.2} µs |",
        median(column(&steady, 2))
    );
    println!(
        "| bursts (x{BURST_FACTOR}): CPU, % of one core (median of {} windows) | {:.1} % |",
        bursts.len(),
        median(column(&bursts, 0))
    );
    println!(
        "| bursts: messages per second (median) | {:.0} |",
        median(column(&bursts, 1))
    );
    println!(
        "| bursts: CPU per message (median) | {:.2} µs |",
        median(column(&bursts, 2))
    );
    println!(
        "| whole run: CPU per message (all CPU / all messages) | {:.2} µs |",
        all_cpu / sent_total.max(1) as f64 * 1e6
    );
    println!(
        "| RSS: median, lowest, highest | {:.1} / {:.1} / {:.1} MiB |",
        median(rss.clone()),
        min(&rss),
        max(&rss)
    );
    println!(
        "| open file descriptors: lowest, highest | {:.0} / {:.0} |",
        min(&fds),
        max(&fds)
    );
    println!(
        "| gzip scrape every 15 s ({} scrapes): median, highest | {:.1} / {:.1} ms |",
        scrapes.len(),
        median(scrape_ms.clone()),
        max(&scrape_ms)
    );
    println!(
        "| exposition: uncompressed, gzip (last scrape) | {:.2} MB / {:.0} KB |",
        exposition as f64 / 1e6,
        scrapes.last().map_or(0, |s| s.1) as f64 / 1e3
    );
    println!(
        "| stamp-to-record delay: p50, p99, p99.9 | {:.2} / {:.2} / {:.2} ms |",
        quantile(0.5, &latency_start, &latency_end) * 1e3,
        quantile(0.99, &latency_start, &latency_end) * 1e3,
        quantile(0.999, &latency_start, &latency_end) * 1e3
    );
    println!(
        "| messages sent by the venues, recorded by the exporter | {sent_total} / {:.0} |",
        messages_end - messages_start
    );
    println!(
        "| exporter log lines at warn and above | {} |",
        log.lines().count()
    );
    for line in log.lines().take(5) {
        println!("  {line}");
    }
    assert!(
        messages_end > messages_start,
        "no messages recorded; the exporter's log is {}",
        log_path.display()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
