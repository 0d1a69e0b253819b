//! Prints the figures behind docs/benchmarks.md: ingest cost per message on real payload shapes (time and
//! heap allocations), and scrape cost for a large configuration. Run with `cargo bench --bench ingest`.
//!
//! Figures, never assertions: these machines are shared and noisy. The allocation count is exact though,
//! and the hot-path rule is that it is zero.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use marketfeed_exporter::freshness::Rules;
use marketfeed_exporter::metrics::{BuildInfo, Metrics};
use marketfeed_exporter::model::{Sample, Subscription, Venue};
use marketfeed_exporter::tracker::{ConnectionInfo, Tracker, unix_now};
use marketfeed_exporter::venue::{self, Frame};

/// Counts every allocation of the process, to prove the ingest path makes none.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn fixture(path: &str) -> String {
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap_or_else(|e| panic!("{path}: {e}"));
    // Frames arrive on one line, their members in the venue's order; the doc examples are pretty-printed.
    marketfeed_testkit::flood::compact(&text)
}

/// One benchmark case: a venue, a channel, and one real frame of it as the socket delivers it.
struct Case {
    name: &'static str,
    venue: Venue,
    channel: &'static str,
    symbol: &'static str,
    frame: String,
}

fn cases() -> Vec<Case> {
    let combined = |stream: &str, data: &str| {
        format!("{{\"stream\":\"{stream}\",\"data\":{}}}", fixture(data))
    };
    vec![
        Case {
            name: "binance spot depth5",
            venue: Venue::BinanceSpot,
            channel: "depth5",
            symbol: "BNBBTC",
            frame: combined("bnbbtc@depth5", "binance-spot/depth-partial.json"),
        },
        Case {
            name: "binance spot aggTrade",
            venue: Venue::BinanceSpot,
            channel: "aggTrade",
            symbol: "NKNUSDT",
            frame: fixture("binance-spot/combined-aggTrade-real.json"),
        },
        Case {
            name: "binance usdm markPrice@1s",
            venue: Venue::BinanceUsdm,
            channel: "markPrice@1s",
            symbol: "BTCUSDT",
            frame: combined("btcusdt@markPrice@1s", "binance-usdm/markPriceUpdate.json"),
        },
        Case {
            name: "binance usdm bookTicker",
            venue: Venue::BinanceUsdm,
            channel: "bookTicker",
            symbol: "ETHUSDT",
            frame: combined(
                "ethusdt@bookTicker",
                "binance-usdm/bookTicker-2026-real.json",
            ),
        },
        Case {
            name: "bybit linear orderbook.1",
            venue: Venue::BybitLinear,
            channel: "orderbook.1",
            symbol: "BTCUSDT",
            frame: fixture("bybit/orderbook50-snapshot-linear.json")
                .replace("orderbook.50.", "orderbook.1."),
        },
        Case {
            name: "bybit linear tickers (delta)",
            venue: Venue::BybitLinear,
            channel: "tickers",
            symbol: "AAVEUSDT",
            frame: fixture("bybit/tickers-linear-delta-real.json"),
        },
        Case {
            name: "bybit linear publicTrade",
            venue: Venue::BybitLinear,
            channel: "publicTrade",
            symbol: "BTCUSDT",
            frame: fixture("bybit/publicTrade-linear.json"),
        },
    ]
}

/// What the session does per data frame: decode the envelope, find the slot, decode the sample, record.
#[inline(never)]
fn ingest(
    case: &Case,
    lookup: &marketfeed_exporter::feed::lookup::StreamLookup<'_>,
    tracker: &Tracker,
    kind: marketfeed_exporter::model::ChannelKind,
    shift: u64,
) {
    let Ok(Frame::Data {
        key,
        payload,
        ts_ms,
    }) = venue::decode_frame(case.venue, &case.frame)
    else {
        panic!("{}: not a data frame", case.name)
    };
    let slot = *lookup.get(key).expect("known key");
    let sample =
        venue::decode_data(case.venue, kind, &case.frame, payload, ts_ms).expect("decodes");
    // The fixtures were recorded years ago: shift the clock back so their event times read as 5 ms old, and
    // the latency path is measured rather than the implausible-time one.
    tracker.record(slot, unix_now().wrapping_sub(shift), &sample);
}

fn bench_ingest() {
    println!("## Ingest: decode + slot lookup + record, per message (one core)\n");
    println!("| case | frame bytes | ns/msg | msgs/s | allocations/msg |");
    println!("|---|---|---|---|---|");
    for case in cases() {
        let channel = venue::channel(case.venue, case.channel).unwrap();
        let kind = channel.kind;
        let sub = Subscription {
            venue: case.venue,
            channel,
            symbol: case.symbol.into(),
        };
        let conns = vec![ConnectionInfo {
            venue: case.venue,
            index: 0,
            slots: vec![0],
        }];
        let tracker = Tracker::new(vec![sub], conns, Rules::default(), unix_now());
        // The session's own map type and hash.
        let key = venue::wire_key(case.venue, case.channel, case.symbol);
        let lookup = [(key.as_str(), 0)].into_iter().collect();
        let shift = match venue::decode_frame(case.venue, &case.frame) {
            Ok(Frame::Data { payload, ts_ms, .. }) => {
                venue::decode_sample(case.venue, kind, payload, ts_ms)
                    .ok()
                    .and_then(|s| s.event_time_ms)
                    .map_or(0, |ms| unix_now() - (ms as u64) * 1_000_000 - 5_000_000)
            }
            _ => 0,
        };
        for _ in 0..10_000 {
            ingest(&case, &lookup, &tracker, kind, shift);
        }
        let n: u64 = 1_000_000;
        let allocations = ALLOCATIONS.load(Relaxed);
        let start = Instant::now();
        for _ in 0..n {
            ingest(black_box(&case), &lookup, &tracker, kind, shift);
        }
        let elapsed = start.elapsed();
        let allocated = ALLOCATIONS.load(Relaxed) - allocations;
        assert_eq!(tracker.subscription(0).messages, n + 10_000);
        assert_eq!(
            tracker.implausible_times(),
            0,
            "{}: the latency path",
            case.name
        );
        let ns = elapsed.as_nanos() as f64 / n as f64;
        println!(
            "| {} | {} | {:.0} | {:.2} M | {} |",
            case.name,
            case.frame.len(),
            ns,
            1e3 / ns,
            allocated as f64 / n as f64
        );
    }
}

fn bench_scrape() {
    println!("\n## Scrape: render /metrics over a large configuration\n");
    println!(
        "| subscriptions | connections | render ms (median of 20) | exposition bytes | gzip ms (median of 20) | gzip bytes | render and gzip as a scrape gets them, ms (median of 20) |"
    );
    println!("|---|---|---|---|---|---|---|");
    // The exposition's own threads, reached the way a scrape reaches them.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    for symbols in [100usize, 1000, 5000] {
        let mut subs = Vec::new();
        for i in 0..symbols {
            for channel in ["markPrice@1s", "bookTicker"] {
                subs.push(Subscription {
                    venue: Venue::BinanceUsdm,
                    channel: venue::channel(Venue::BinanceUsdm, channel).unwrap(),
                    symbol: format!("SYM{i}USDT").into(),
                });
            }
        }
        let n = subs.len();
        let conns: Vec<ConnectionInfo> = (0..n)
            .collect::<Vec<_>>()
            .chunks(200)
            .enumerate()
            .map(|(index, slots)| ConnectionInfo {
                venue: Venue::BinanceUsdm,
                index,
                slots: slots.to_vec(),
            })
            .collect();
        let connections = conns.len();
        let tracker = Arc::new(Tracker::new(subs, conns, Rules::default(), unix_now()));
        // Values that differ from series to series, as live ones do, so the gzip size is not flattered.
        for slot in 0..n {
            for round in 0..3 {
                let step = (slot * 3 + round) as i64;
                let now = unix_now();
                // A few milliseconds old, so the latency histograms and event gauges are there too.
                let event_ms = (now / 1_000_000) as i64 - 5 - step % 40;
                tracker.record(
                    slot,
                    now,
                    &Sample {
                        event_time_ms: Some(event_ms),
                        price: Some(rust_decimal::Decimal::new(4_300_015 + step * 7, 2)),
                    },
                );
            }
        }
        let build = BuildInfo {
            version: "bench".into(),
            revision: "bench".into(),
            rustc_version: "bench".into(),
        };
        let rest = Arc::new(marketfeed_exporter::rest::RestStats::new(&[
            Venue::BinanceUsdm,
        ]));
        let trackers = Arc::new(marketfeed_exporter::tracker::Trackers::new());
        trackers.set(Venue::BinanceUsdm, tracker);
        let metrics = Arc::new(Metrics::new(trackers, rest, build, false).unwrap());
        let mut times: Vec<Duration> = (0..20)
            .map(|_| {
                let start = Instant::now();
                black_box(metrics.render());
                start.elapsed()
            })
            .collect();
        times.sort();
        // What a Prometheus scrape gets: the text compressed at the exporter's level.
        let text = metrics.render();
        for family in [
            "marketfeed_event_latency_seconds_bucket",
            "marketfeed_last_event_timestamp_seconds{",
            "marketfeed_last_price{",
        ] {
            assert!(text.contains(family), "every series present: {family}");
        }
        let mut zipped = Vec::new();
        let mut gzip_times: Vec<Duration> = (0..20)
            .map(|_| {
                let start = Instant::now();
                zipped = marketfeed_exporter::http::gzip_body(text.as_bytes()).expect("in memory");
                start.elapsed()
            })
            .collect();
        gzip_times.sort();
        // Rendered in pieces, each compressed on a second thread while the next is written.
        let mut scrape_times: Vec<Duration> = (0..20)
            .map(|_| {
                let start = Instant::now();
                let (len, gz) = runtime
                    .block_on(marketfeed_exporter::http::render_gzip(metrics.clone()))
                    .expect("the exposition's threads");
                let elapsed = start.elapsed();
                assert_eq!(len, text.len());
                black_box(gz);
                elapsed
            })
            .collect();
        scrape_times.sort();
        println!(
            "| {n} | {connections} | {:.2} | {} | {:.2} | {} | {:.2} |",
            times[10].as_secs_f64() * 1e3,
            text.len(),
            gzip_times[10].as_secs_f64() * 1e3,
            zipped.len(),
            scrape_times[10].as_secs_f64() * 1e3,
        );
    }
}

fn main() {
    // `cargo test` runs benches only when asked; `cargo bench` passes --bench. `-- ingest` or `-- scrape` runs
    // one half.
    let only = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    if only.as_deref() != Some("scrape") {
        bench_ingest();
    }
    if only.as_deref() != Some("ingest") {
        bench_scrape();
    }
}
