//! Ingest side by side (issue 14): the release binary against a bare tokio-tungstenite reader, in messages per
//! CPU-second, on a loopback flood of real frames. Prints figures; asserts only that data flowed.
//!
//! For each frame type (Binance spot aggTrade, bookTicker and depth5, USD-M markPrice@1s, Bybit linear
//! orderbook.1, tickers and publicTrade) and `ROUNDS` interleaved rounds (bare, exporter, bare, exporter...), a
//! fresh [`Flood`] venue sends `SYMBOLS` streams' frames as fast as the socket accepts them to one contender:
//!
//! - bare: this example again as a child process (`--bare`) on a current-thread runtime. It subscribes the same
//!   streams the way the exporter does (SUBSCRIBE requests of 100 streams on Binance, 50 topics on Bybit linear)
//!   and parses every text frame, envelope and payload in one pass, into borrowed structs holding what the exporter
//!   reads (price text, event time, the first book levels), and counts the data frames;
//! - exporter: the release binary with `env_clear()`, that one market and channel, metrics on, and its REST URL on
//!   a closed port (127.0.0.1:9), so its REST side fails and retries throughout, costing what that costs. Messages
//!   are the sum of `marketfeed_messages_total` scraped from `/metrics`.
//!
//! Each contender first gets every stream subscribed and a second of warm-up, then messages and the CPU time of its
//! process (every thread's `/proc/<pid>/task/<tid>/schedstat`; `utime + stime` if a thread ended in the window) are
//! sampled `SECONDS` apart. The flood runs in this process, so its CPU is not counted. The table shows each
//! contender's median over the rounds and the ratio exporter / bare.
//!
//! `cargo build --release && cargo run --release --example ingest_vs -- [BINARY] [SECONDS] [ROUNDS] [SYMBOLS]
//! [FRAMES]` (defaults: target/release/marketfeed_exporter, 5, 3, 100, every frame type; `FRAMES` keeps the frame
//! types whose name contains it, for example `bybit` or `bookTicker`)

use marketfeed_testkit as support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime};

use support::abuse::{example_args, family_sum, scrape_text};
use support::fake::FakeKind;
use support::flood::{Flood, sample_frame};
use wire::Parse;

/// The hidden first argument that makes this example the bare reader.
const BARE: &str = "--bare";
/// From the first subscription to the window: long enough for the exporter to subscribe everything.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(60);
const WARM_UP: Duration = Duration::from_secs(1);
/// `/proc/<pid>/stat` counts CPU time in ticks of 1/USER_HZ s, 100 on every Linux build in use.
const USER_HZ: f64 = 100.0;
/// Where the exporter's REST side is sent: nothing listens on the discard port.
const CLOSED_REST_URL: &str = "http://127.0.0.1:9";
const MESSAGES: &str = "marketfeed_messages_total";

/// One frame type: a venue market, one channel, and how the bare reader parses its frames.
struct Case {
    name: &'static str,
    kind: FakeKind,
    /// The `<MARKET>` of the exporter's `MARKETFEED_<MARKET>_*` variables.
    market: &'static str,
    rest_var: &'static str,
    channel: &'static str,
    parse: Parse,
}

const CASES: [Case; 7] = [
    Case {
        name: "binance spot aggTrade",
        kind: FakeKind::BinanceSpot,
        market: "BINANCE_SPOT",
        rest_var: "MARKETFEED_BINANCE_SPOT_REST_URL",
        channel: "aggTrade",
        parse: Parse::BinanceTrade,
    },
    Case {
        name: "binance spot bookTicker",
        kind: FakeKind::BinanceSpot,
        market: "BINANCE_SPOT",
        rest_var: "MARKETFEED_BINANCE_SPOT_REST_URL",
        channel: "bookTicker",
        parse: Parse::BinanceBookTicker,
    },
    Case {
        name: "binance spot depth5",
        kind: FakeKind::BinanceSpot,
        market: "BINANCE_SPOT",
        rest_var: "MARKETFEED_BINANCE_SPOT_REST_URL",
        channel: "depth5",
        parse: Parse::BinanceSpotDepth,
    },
    Case {
        name: "binance usdm markPrice@1s",
        kind: FakeKind::BinanceUsdm,
        market: "BINANCE_USDM",
        rest_var: "MARKETFEED_BINANCE_USDM_REST_URL",
        channel: "markPrice@1s",
        parse: Parse::BinanceMarkPrice,
    },
    Case {
        name: "bybit linear orderbook.1",
        kind: FakeKind::BybitLinear,
        market: "BYBIT_LINEAR",
        rest_var: "MARKETFEED_BYBIT_REST_URL",
        channel: "orderbook.1",
        parse: Parse::BybitOrderbook,
    },
    Case {
        name: "bybit linear tickers",
        kind: FakeKind::BybitLinear,
        market: "BYBIT_LINEAR",
        rest_var: "MARKETFEED_BYBIT_REST_URL",
        channel: "tickers",
        parse: Parse::BybitTickers,
    },
    Case {
        name: "bybit linear publicTrade",
        kind: FakeKind::BybitLinear,
        market: "BYBIT_LINEAR",
        rest_var: "MARKETFEED_BYBIT_REST_URL",
        channel: "publicTrade",
        parse: Parse::BybitTrade,
    },
];

impl Case {
    fn binance(&self) -> bool {
        matches!(self.kind, FakeKind::BinanceSpot | FakeKind::BinanceUsdm)
    }

    /// `S0001USDT`, `S0002USDT`, ...: symbols no real venue lists, all the same length.
    fn symbols(count: usize) -> Vec<String> {
        (1..=count).map(|i| format!("S{i:04}USDT")).collect()
    }

    /// The stream name (Binance) or topic (Bybit) of one symbol.
    fn key(&self, symbol: &str) -> String {
        if self.binance() {
            format!("{}@{}", symbol.to_ascii_lowercase(), self.channel)
        } else {
            format!("{}.{symbol}", self.channel)
        }
    }

    /// The connection URL: Binance appends the channel's route to the base, Bybit's base is the market's URL.
    fn ws_url(&self, base: &str) -> String {
        let book = matches!(self.channel, "bookTicker") || self.channel.starts_with("depth");
        let route = match (self.kind, book) {
            (FakeKind::BinanceSpot, _) => "/stream",
            (FakeKind::BinanceUsdm, true) => "/public/stream",
            (FakeKind::BinanceUsdm, false) => "/market/stream",
            _ => "",
        };
        format!("{base}{route}")
    }

    /// The subscribe requests, batched as the exporter batches them.
    fn requests(&self, symbols: &[String]) -> Vec<String> {
        let keys: Vec<String> = symbols.iter().map(|s| self.key(s)).collect();
        let per_request = match self.kind {
            FakeKind::BinanceSpot | FakeKind::BinanceUsdm => 100,
            FakeKind::BybitSpot => 10,
            _ => 50,
        };
        keys.chunks(per_request)
            .enumerate()
            .map(|(i, chunk)| {
                let list = serde_json::to_string(chunk).expect("a list of names is JSON");
                if self.binance() {
                    format!(r#"{{"method":"SUBSCRIBE","params":{list},"id":{}}}"#, i + 1)
                } else {
                    format!(r#"{{"req_id":"{}","op":"subscribe","args":{list}}}"#, i + 1)
                }
            })
            .collect()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(BARE) {
        bare::run(&args[2..]);
        return;
    }
    let (binary, seconds) = example_args(5);
    let seconds = seconds.max(1);
    let number =
        |n: usize, default: usize| args.get(n).and_then(|s| s.parse().ok()).unwrap_or(default);
    let (rounds, symbols) = (number(3, 3).max(1), number(4, 100).max(1));
    let bench = Bench {
        rt: tokio::runtime::Runtime::new().expect("a tokio runtime for the flood"),
        binary,
        window: Duration::from_secs(seconds),
        symbols: Case::symbols(symbols),
    };
    println!(
        "`cargo run --release --example ingest_vs -- {} {seconds} {rounds} {symbols}{}`, {}\n",
        bench.binary,
        args.get(5).map(|f| format!(" {f}")).unwrap_or_default(),
        humantime::format_rfc3339_seconds(SystemTime::now())
    );
    println!(
        "{symbols} symbols (one stream each), {seconds} s windows after {} s of warm-up, {rounds} rounds \
         (bare, exporter, bare, exporter...); medians; ratio = exporter / bare. The exporter's REST URL is \
         {CLOSED_REST_URL}, a closed port: its REST side fails and retries throughout.\n",
        WARM_UP.as_secs()
    );
    let frames = args.get(5).map_or("", String::as_str);
    let rows: Vec<Row> = (CASES.iter().enumerate())
        .filter(|(_, case)| case.name.contains(frames))
        .map(|(index, case)| bench.row(index, case, rounds))
        .collect();
    print_tables(&bench, &rows);
}

/// What the contenders share: the flood's runtime, the binary, the window and the symbols.
struct Bench {
    rt: tokio::runtime::Runtime,
    binary: String,
    window: Duration,
    symbols: Vec<String>,
}

/// One frame type's rounds.
struct Row<'c> {
    case: &'c Case,
    bare: Vec<Run>,
    exporter: Vec<Run>,
}

/// One contender's window.
struct Run {
    messages: f64,
    cpu_seconds: f64,
    wall_seconds: f64,
    /// Frames the flood sent in the window.
    sent: f64,
    /// The CPU time came from `utime + stime` (10 ms ticks) because a thread ended in the window.
    coarse_cpu: bool,
    /// Exporter only, at the window's end: subscriptions whose `marketfeed_messages_total` moved at all, and the
    /// sums of `marketfeed_decode_errors_total` and `marketfeed_implausible_timestamps_total`.
    flowing: usize,
    decode_errors: f64,
    implausible: f64,
}

impl Run {
    fn per_cpu_second(&self) -> f64 {
        self.messages / self.cpu_seconds.max(1e-9)
    }

    fn per_wall_second(&self, value: f64) -> f64 {
        value / self.wall_seconds
    }
}

impl Bench {
    /// `rounds` windows of each contender, interleaved.
    fn row<'c>(&self, index: usize, case: &'c Case, rounds: usize) -> Row<'c> {
        let mut row = Row {
            case,
            bare: Vec::new(),
            exporter: Vec::new(),
        };
        for _ in 0..rounds {
            let (bare, exporter) = (self.bare(index, case), self.exporter(case));
            eprintln!(
                "{}: bare {:.0} msgs/CPU-s, exporter {:.0} msgs/CPU-s",
                case.name,
                bare.per_cpu_second(),
                exporter.per_cpu_second()
            );
            row.bare.push(bare);
            row.exporter.push(exporter);
        }
        row
    }

    /// One window of the bare reader: this example again, as a child.
    fn bare(&self, index: usize, case: &Case) -> Run {
        let flood = self.rt.block_on(Flood::start(case.kind));
        let exe = std::env::current_exe().expect("the path of this example");
        let child = Command::new(exe)
            .arg(BARE)
            .arg(index.to_string())
            .arg(case.ws_url(&flood.base_url()))
            .args(case.requests(&self.symbols))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the bare reader");
        let mut bare = BareChild::new(child);
        let pid = bare.pid();
        self.measure(&flood, pid, || bare.count(), |_| ())
    }

    /// One window of the release binary.
    fn exporter(&self, case: &Case) -> Run {
        let flood = self.rt.block_on(Flood::start(case.kind));
        let addr = support::prom::free_addr();
        let var = |what: &str| format!("MARKETFEED_{}_{what}", case.market);
        let child = Command::new(&self.binary)
            .env_clear()
            .env(var("SYMBOLS"), self.symbols.join(","))
            .env(var("CHANNELS"), case.channel)
            .env(var("URL"), flood.base_url())
            .env(case.rest_var, CLOSED_REST_URL)
            .env("MARKETFEED_LOG_LEVEL", "error")
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start the exporter {}: {e}", self.binary));
        let exporter = Reaped(child);
        let scrape = || self.rt.block_on(scrape_text(addr, ""));
        self.measure(
            &flood,
            exporter.0.id(),
            || family_sum(&scrape(), MESSAGES),
            |run| {
                let text = scrape();
                run.flowing = flowing(&text);
                run.decode_errors = family_sum(&text, "marketfeed_decode_errors_total");
                run.implausible = family_sum(&text, "marketfeed_implausible_timestamps_total");
            },
        )
    }

    /// Waits for every stream and the warm-up, then samples messages and CPU time a window apart; `finish` adds
    /// what else the contender reports.
    fn measure(
        &self,
        flood: &Flood,
        pid: u32,
        mut messages: impl FnMut() -> f64,
        finish: impl FnOnce(&mut Run),
    ) -> Run {
        let streams = self.symbols.len();
        let deadline = Instant::now() + SUBSCRIBE_TIMEOUT;
        while flood.streams() < streams {
            assert!(
                Instant::now() < deadline,
                "only {} of {streams} streams subscribed after {SUBSCRIBE_TIMEOUT:?} ({} connections)",
                flood.streams(),
                flood.open_connections()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(WARM_UP);
        let (sent, start) = (flood.frames_sent(), Instant::now());
        let (messages_at_start, cpu_at_start) = (messages(), Cpu::of(pid));
        std::thread::sleep(self.window);
        let (messages_at_end, cpu_at_end) = (messages(), Cpu::of(pid));
        let sent = (flood.frames_sent() - sent) as f64;
        let messages = messages_at_end - messages_at_start;
        assert!(
            messages > 0.0,
            "no data flowed in the window (pid {pid}, the flood sent {sent} frames)"
        );
        let (cpu_seconds, coarse_cpu) = cpu_at_start.until(&cpu_at_end);
        let mut run = Run {
            messages,
            cpu_seconds,
            wall_seconds: start.elapsed().as_secs_f64(),
            sent,
            coarse_cpu,
            flowing: streams,
            decode_errors: 0.0,
            implausible: 0.0,
        };
        finish(&mut run);
        run
    }
}

/// Subscriptions whose `marketfeed_messages_total` is above zero in an exposition.
fn flowing(text: &str) -> usize {
    (text.lines())
        .filter(|l| {
            l.strip_prefix(MESSAGES)
                .is_some_and(|rest| rest.starts_with('{'))
        })
        .filter(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) > Some(0.0))
        .count()
}

/// A child process killed (if still running) and reaped on drop, panics included.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The bare reader as the parent drives it: a line on its stdin asks for its count, which it prints on a line;
/// closing its stdin stops it.
struct BareChild {
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    child: Child,
}

impl BareChild {
    fn new(mut child: Child) -> BareChild {
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        BareChild {
            stdin: Some(stdin),
            stdout,
            child,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn count(&mut self) -> f64 {
        let stdin = self.stdin.as_mut().expect("the bare reader is running");
        let mut line = String::new();
        let answered = writeln!(stdin).and_then(|()| self.stdout.read_line(&mut line));
        match answered {
            Ok(0) | Err(_) => panic!("the bare reader exited (its error is above)"),
            Ok(_) => line
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("the bare reader answered {line:?}, not a count")),
        }
    }
}

impl Drop for BareChild {
    fn drop(&mut self) {
        // End of input is its signal to exit; a reader stuck elsewhere is killed.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(2);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process's CPU time so far: nanoseconds on CPU per live thread, and the whole process's ticks.
struct Cpu {
    threads: BTreeMap<u32, u64>,
    ticks: u64,
}

impl Cpu {
    /// `/proc/<pid>/schedstat` is the main thread's alone, so every thread's is read.
    fn of(pid: u32) -> Cpu {
        let dir = format!("/proc/{pid}/task");
        let threads = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .filter_map(|entry| {
                let tid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
                let text = std::fs::read_to_string(format!("{dir}/{tid}/schedstat")).ok()?;
                Some((tid, text.split_whitespace().next()?.parse().ok()?))
            })
            .collect();
        let ticks = support::procfs::cpu_ticks(pid);
        Cpu { threads, ticks }
    }

    /// CPU seconds from `self` to `end`, and whether they had to come from ticks: a thread that ended in between
    /// took its schedstat with it.
    fn until(&self, end: &Cpu) -> (f64, bool) {
        if self.threads.keys().all(|tid| end.threads.contains_key(tid)) {
            let ns: u64 = (end.threads.iter())
                .map(|(tid, ns)| ns.saturating_sub(*self.threads.get(tid).unwrap_or(&0)))
                .sum();
            (ns as f64 / 1e9, false)
        } else {
            (end.ticks.saturating_sub(self.ticks) as f64 / USER_HZ, true)
        }
    }
}

fn median(runs: &[Run], value: impl Fn(&Run) -> f64) -> f64 {
    let mut values: Vec<f64> = runs.iter().map(value).collect();
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        f64::midpoint(values[mid - 1], values[mid])
    } else {
        values[mid]
    }
}

/// Figures the way docs/benchmarks.md shows them: `1.23 M`, `456 k`.
fn si(value: f64) -> String {
    match value {
        v if v >= 1e6 => format!("{:.2} M", v / 1e6),
        v if v >= 1e3 => format!("{:.0} k", v / 1e3),
        v => format!("{v:.0}"),
    }
}

fn print_tables(bench: &Bench, rows: &[Row]) {
    println!("| frame | bytes | bare msgs per CPU-s | exporter msgs per CPU-s | ratio |");
    println!("|---|---|---|---|---|");
    for row in rows {
        let key = row.case.key(&bench.symbols[0]);
        let bytes = sample_frame(row.case.kind, &key).map_or(0, |frame| frame.len());
        let bare = median(&row.bare, Run::per_cpu_second);
        let exporter = median(&row.exporter, Run::per_cpu_second);
        println!(
            "| {} | {bytes} | {} | {} | {:.2} |",
            row.case.name,
            si(bare),
            si(exporter),
            exporter / bare
        );
    }
    println!(
        "\nContext (medians): messages per wall second, CPU (CPU-s per wall s), the flood's frames per wall second.\n"
    );
    println!(
        "| frame | bare msgs/s | bare CPU | exporter msgs/s | exporter CPU | flood to bare, to exporter |"
    );
    println!("|---|---|---|---|---|---|");
    for row in rows {
        let (bare, exporter) = (&row.bare, &row.exporter);
        println!(
            "| {} | {} | {:.0} % | {} | {:.0} % | {}, {} |",
            row.case.name,
            si(median(bare, |r| r.per_wall_second(r.messages))),
            median(bare, |r| r.per_wall_second(r.cpu_seconds)) * 100.0,
            si(median(exporter, |r| r.per_wall_second(r.messages))),
            median(exporter, |r| r.per_wall_second(r.cpu_seconds)) * 100.0,
            si(median(bare, |r| r.per_wall_second(r.sent))),
            si(median(exporter, |r| r.per_wall_second(r.sent))),
        );
    }
    let exporter_runs = || rows.iter().flat_map(|row| row.exporter.iter());
    let decode_errors: f64 = exporter_runs().map(|r| r.decode_errors).sum();
    let implausible: f64 = exporter_runs().map(|r| r.implausible).sum();
    let least_flowing = exporter_runs().map(|r| r.flowing).min().unwrap_or(0);
    let coarse = (rows.iter())
        .flat_map(|row| row.bare.iter().chain(&row.exporter))
        .filter(|r| r.coarse_cpu)
        .count();
    println!(
        "\nExporter runs: {decode_errors} decode errors and {implausible} implausible timestamps in all; at least \
         {least_flowing} of {} subscriptions counted messages in each. Windows timed from utime + stime (a thread \
         ended in them): {coarse}.",
        bench.symbols.len()
    );
}

/// The bare reader: connect, subscribe, parse and count; answer count requests on stdin.
mod bare {
    use super::*;

    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    /// Data frames parsed so far.
    static COUNT: AtomicU64 = AtomicU64::new(0);

    /// `--bare <case index> <ws url> [<request>...]`.
    pub(super) fn run(args: &[String]) {
        let [index, url, requests @ ..] = args else {
            fail(format_args!(
                "usage: ingest_vs {BARE} <case index> <ws url> [<request>...]"
            ));
        };
        let Some(case) = index.parse().ok().and_then(|i: usize| CASES.get(i)) else {
            fail(format_args!("no frame type {index}"));
        };
        std::thread::spawn(answer_counts);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| fail(format_args!("a current-thread runtime: {e}")));
        rt.block_on(read(url, requests, case.parse));
    }

    fn fail(what: std::fmt::Arguments) -> ! {
        eprintln!("ingest_vs {BARE}: {what}");
        std::process::exit(1)
    }

    /// One count per line asked; the end of input (the parent closed it, or died) ends the process.
    fn answer_counts() {
        let mut stdout = std::io::stdout();
        for line in std::io::stdin().lines() {
            if line.is_err() || writeln!(stdout, "{}", COUNT.load(Relaxed)).is_err() {
                break;
            }
            let _ = stdout.flush();
        }
        std::process::exit(0);
    }

    async fn read(url: &str, requests: &[String], parse: Parse) {
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .unwrap_or_else(|e| fail(format_args!("connect {url}: {e}")));
        for request in requests {
            if let Err(e) = ws.send(Message::text(request.as_str())).await {
                fail(format_args!("subscribe: {e}"));
            }
        }
        let mut count = 0;
        // tungstenite answers the venue's pings as it reads.
        while let Some(message) = ws.next().await {
            match message {
                Ok(Message::Text(text)) if parse.data(&text) => {
                    count += 1;
                    COUNT.store(count, Relaxed);
                }
                Ok(_) => {}
                Err(e) => fail(format_args!("read: {e}")),
            }
        }
        fail(format_args!("the venue closed the connection"));
    }
}

/// The bare reader's structs: what the exporter reads of each frame, borrowed from the text. The fields are
/// parsed (typed, checked, borrowed) and then dropped unread, as the parse is what is measured.
#[allow(dead_code)]
mod wire {
    use std::hint::black_box;

    use serde::Deserialize;

    /// Which payload the bare reader parses, by frame type.
    #[derive(Debug, Clone, Copy)]
    pub(super) enum Parse {
        BinanceTrade,
        BinanceBookTicker,
        BinanceSpotDepth,
        BinanceMarkPrice,
        BybitOrderbook,
        BybitTickers,
        BybitTrade,
    }

    impl Parse {
        /// Parses one frame; true for a data frame (acks and pongs have no `data`).
        pub(super) fn data(self, text: &str) -> bool {
            match self {
                Parse::BinanceTrade => combined::<Trade>(text),
                Parse::BinanceBookTicker => combined::<BookTicker>(text),
                Parse::BinanceSpotDepth => combined::<SpotDepth>(text),
                Parse::BinanceMarkPrice => combined::<MarkPrice>(text),
                Parse::BybitOrderbook => topic::<Orderbook>(text),
                Parse::BybitTickers => topic::<Ticker>(text),
                Parse::BybitTrade => topic::<Vec<BybitTrade>>(text),
            }
        }
    }

    fn combined<'a, T: Deserialize<'a>>(text: &'a str) -> bool {
        serde_json::from_str::<Combined<T>>(text)
            .map(black_box)
            .is_ok_and(|frame| frame.stream.is_some() && frame.data.is_some())
    }

    fn topic<'a, T: Deserialize<'a>>(text: &'a str) -> bool {
        serde_json::from_str::<Topic<T>>(text)
            .map(black_box)
            .is_ok_and(|frame| frame.topic.is_some() && frame.data.is_some())
    }

    /// `{"stream":"<key>","data":{..}}`; a reply to a request has neither.
    #[derive(Deserialize)]
    struct Combined<'a, T> {
        stream: Option<&'a str>,
        data: Option<T>,
    }

    /// `{"e":"aggTrade","E":..,"s":..,"p":"0.35280000",..}`
    #[derive(Deserialize)]
    struct Trade<'a> {
        p: &'a str,
        #[serde(rename = "E")]
        event_time: i64,
    }

    /// `{"u":..,"s":..,"b":"0.35210000","B":..,"a":"0.35260000","A":..}` (spot has no `E`).
    #[derive(Deserialize)]
    struct BookTicker<'a> {
        b: &'a str,
        a: &'a str,
        #[serde(rename = "E")]
        event_time: Option<i64>,
    }

    /// `{"lastUpdateId":160,"bids":[["0.0024","10"]],"asks":[["0.0026","100"]]}`
    #[derive(Deserialize)]
    struct SpotDepth<'a> {
        #[serde(borrow)]
        bids: Vec<(&'a str, &'a str)>,
        #[serde(borrow)]
        asks: Vec<(&'a str, &'a str)>,
    }

    /// `{"e":"markPriceUpdate","E":..,"s":..,"p":"11794.15000000",..}`
    #[derive(Deserialize)]
    struct MarkPrice<'a> {
        p: &'a str,
        #[serde(rename = "E")]
        event_time: i64,
    }

    /// `{"topic":"<topic>","type":..,"ts":..,"data":..}`; op replies have neither topic nor data.
    #[derive(Deserialize)]
    struct Topic<'a, T> {
        topic: Option<&'a str>,
        ts: Option<i64>,
        data: Option<T>,
    }

    /// `{"s":..,"b":[["16493.50","0.006"],..],"a":[["16611.00","0.029"],..],"u":..,"seq":..}`
    #[derive(Deserialize)]
    struct Orderbook<'a> {
        #[serde(borrow)]
        b: Vec<(&'a str, &'a str)>,
        #[serde(borrow)]
        a: Vec<(&'a str, &'a str)>,
    }

    /// `{"symbol":..,"bid1Price":..,..}`: a linear delta carries `lastPrice` only when it changed.
    #[derive(Deserialize)]
    struct Ticker<'a> {
        #[serde(rename = "lastPrice")]
        last_price: Option<&'a str>,
    }

    /// `{"T":1672304486865,"s":..,"S":"Buy","v":..,"p":"16578.50",..}`
    #[derive(Deserialize)]
    struct BybitTrade<'a> {
        p: &'a str,
        #[serde(rename = "T")]
        fill_time: i64,
    }
}
