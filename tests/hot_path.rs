//! Proves the per-message path allocates nothing: decoding a real frame of every data channel, decoding
//! its sample and recording it in the tracker, under an allocator that counts per thread.
//!
//! Counting per thread keeps the harness's other threads (and other tests of this binary) out of the
//! count, so the assertion is exact.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

use marketfeed_exporter::freshness::Rules;
use marketfeed_exporter::model::{Subscription, Venue};
use marketfeed_exporter::tracker::{ConnectionInfo, Tracker, unix_now};
use marketfeed_exporter::venue::{self, Frame};

thread_local! {
    /// Allocations made by this thread; `realloc` and `alloc_zeroed` count too, through their default
    /// implementations, which call `alloc`.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

struct PerThreadCounting;

// SAFETY: every call is forwarded unchanged to the system allocator. Counting touches only a
// const-initialised thread-local without destructor, which itself never allocates.
unsafe impl GlobalAlloc for PerThreadCounting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // The slot is gone only during thread teardown, which no measurement spans.
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` above with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: PerThreadCounting = PerThreadCounting;

/// Allocations this thread makes while running `f`.
fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

fn fixture(path: &str) -> String {
    let path = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// The text on one line, as frames arrive (the docs' examples are pretty-printed), keys in their order.
fn one_line(text: &str) -> String {
    let mut line = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else if c.is_ascii_whitespace() {
            continue;
        }
        line.push(c);
    }
    let json = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap();
    assert_eq!(json(&line), json(text), "{line}");
    line
}

/// A Binance payload fixture wrapped the way a combined stream delivers it.
fn combined(stream: &str, payload: &str) -> String {
    format!(
        r#"{{"stream":"{stream}","data":{}}}"#,
        one_line(&fixture(payload))
    )
}

/// One real frame of a channel, as the socket delivers it.
struct Case {
    venue: Venue,
    channel: &'static str,
    symbol: &'static str,
    frame: String,
}

fn case(venue: Venue, channel: &'static str, symbol: &'static str, frame: String) -> Case {
    Case {
        venue,
        channel,
        symbol,
        frame,
    }
}

/// Every data shape there is a fixture for; the default channels come first.
fn cases() -> Vec<Case> {
    use Venue::{BinanceSpot, BinanceUsdm, BybitLinear, BybitSpot};
    let as_sent = |path| one_line(&fixture(path));
    let orderbook = as_sent("bybit/orderbook50-snapshot-linear.json");
    vec![
        // Defaults.
        case(
            BinanceSpot,
            "depth5",
            "BNBBTC",
            combined("bnbbtc@depth5", "binance-spot/depth-partial.json"),
        ),
        case(
            BinanceSpot,
            "aggTrade",
            "NKNUSDT",
            as_sent("binance-spot/combined-aggTrade-real.json"),
        ),
        case(
            BinanceUsdm,
            "markPrice@1s",
            "BTCUSDT",
            combined("btcusdt@markPrice@1s", "binance-usdm/markPriceUpdate.json"),
        ),
        case(
            BinanceUsdm,
            "bookTicker",
            "ETHUSDT",
            combined(
                "ethusdt@bookTicker",
                "binance-usdm/bookTicker-2026-real.json",
            ),
        ),
        // The docs show no orderbook.1 frame; its data has the shape of every depth's.
        case(
            BybitLinear,
            "orderbook.1",
            "BTCUSDT",
            orderbook.replace("orderbook.50.", "orderbook.1."),
        ),
        case(
            BybitLinear,
            "tickers",
            "BTCUSDT",
            as_sent("bybit/tickers-linear-snapshot.json"),
        ),
        case(
            BybitLinear,
            "tickers",
            "AAVEUSDT",
            as_sent("bybit/tickers-linear-delta-real.json"),
        ),
        case(
            BybitSpot,
            "tickers",
            "BTCUSDT",
            as_sent("bybit/tickers-spot.json"),
        ),
        // Every other supported shape.
        case(
            BinanceSpot,
            "bookTicker",
            "NKNUSDT",
            as_sent("binance-spot/combined-bookTicker-real.json"),
        ),
        case(
            BinanceSpot,
            "kline_1m",
            "NKNUSDT",
            as_sent("binance-spot/combined-kline-real.json"),
        ),
        case(
            BinanceSpot,
            "trade",
            "BNBBTC",
            combined("bnbbtc@trade", "binance-spot/trade.json"),
        ),
        case(
            BinanceSpot,
            "ticker",
            "BNBBTC",
            combined("bnbbtc@ticker", "binance-spot/ticker-24hr.json"),
        ),
        case(
            BinanceSpot,
            "miniTicker",
            "BNBBTC",
            combined("bnbbtc@miniTicker", "binance-spot/miniTicker.json"),
        ),
        case(
            BinanceUsdm,
            "aggTrade",
            "BNBUSDT",
            combined("bnbusdt@aggTrade", "binance-usdm/aggTrade.json"),
        ),
        case(
            BinanceUsdm,
            "depth5",
            "BTCUSDT",
            combined("btcusdt@depth5", "binance-usdm/depth5-partial-doc.json"),
        ),
        case(
            BinanceUsdm,
            "kline_1m",
            "BTCUSDT",
            combined("btcusdt@kline_1m", "binance-usdm/kline_1m.json"),
        ),
        case(
            BinanceUsdm,
            "ticker",
            "BNBUSDT",
            combined("bnbusdt@ticker", "binance-usdm/ticker-24hr.json"),
        ),
        case(BybitLinear, "orderbook.50", "BTCUSDT", orderbook),
        case(
            BybitLinear,
            "orderbook.50",
            "BTCUSDT",
            as_sent("bybit/orderbook50-delta-linear.json"),
        ),
        case(
            BybitLinear,
            "publicTrade",
            "BTCUSDT",
            as_sent("bybit/publicTrade-linear.json"),
        ),
        case(
            BybitLinear,
            "kline.5",
            "BTCUSDT",
            as_sent("bybit/kline-linear.json"),
        ),
    ]
}

/// Messages decoded before counting, so that one-time work is not counted.
const WARM_UP: u64 = 3;
/// Messages counted per case.
const MEASURED: u64 = 100;

#[test]
fn the_counter_sees_allocations() {
    assert_eq!(allocations_in(|| drop(black_box(vec![0u8; 16]))), 1);
    assert_eq!(
        allocations_in(|| {
            black_box([0u8; 16]);
        }),
        0
    );
}

#[test]
fn ingest_allocates_nothing_per_message() {
    let mut allocating = Vec::new();
    for case in cases() {
        let channel = venue::channel(case.venue, case.channel).unwrap();
        let kind = channel.kind;
        let key = venue::wire_key(case.venue, case.channel, case.symbol);
        let subscription = Subscription {
            venue: case.venue,
            channel,
            symbol: case.symbol.into(),
        };
        let connections = vec![ConnectionInfo {
            venue: case.venue,
            index: 0,
            slots: vec![0],
        }];
        let tracker = Tracker::new(
            vec![subscription],
            connections,
            Rules::default(),
            unix_now(),
        );
        // What a session does per data frame.
        let ingest = || {
            let frame = venue::decode_frame(case.venue, black_box(&case.frame));
            let Ok(Frame::Data {
                key: got,
                payload,
                ts_ms,
            }) = frame
            else {
                panic!(
                    "{} {}: not a data frame: {frame:?}",
                    case.venue, case.channel
                )
            };
            assert_eq!(got, key);
            let sample = venue::decode_data(case.venue, kind, &case.frame, payload, ts_ms);
            let sample =
                sample.unwrap_or_else(|err| panic!("{} {}: {err}", case.venue, case.channel));
            tracker.record(0, unix_now(), &sample);
        };
        for _ in 0..WARM_UP {
            ingest();
        }
        let allocations = allocations_in(|| (0..MEASURED).for_each(|_| ingest()));
        assert_eq!(tracker.subscription(0).messages, WARM_UP + MEASURED);
        if allocations != 0 {
            allocating.push(format!(
                "{} {}: {allocations} in {MEASURED} messages",
                case.venue, case.channel
            ));
        }
    }
    assert_eq!(allocating, Vec::<String>::new());
}

#[test]
fn control_frames_allocate_nothing() {
    let frames = [
        (
            Venue::BinanceSpot,
            fixture("binance-spot/subscribe-ack.json"),
            Frame::Ack { id: Some(1) },
        ),
        (
            Venue::BinanceSpot,
            fixture("binance-spot/error-invalid-stream.json"),
            Frame::Rejected {
                id: Some(2),
                reason: "Invalid request: invalid stream".into(),
            },
        ),
        (
            Venue::BinanceSpot,
            fixture("binance-spot/server-shutdown-combined.json"),
            Frame::ServerShutdown,
        ),
        (
            Venue::BybitSpot,
            fixture("bybit/pong-spot.json"),
            Frame::Pong,
        ),
        (
            Venue::BybitLinear,
            fixture("bybit/pong-linear.json"),
            Frame::Pong,
        ),
        (
            Venue::BybitLinear,
            fixture("bybit/pong-option.json"),
            Frame::Pong,
        ),
        (
            Venue::BybitLinear,
            fixture("bybit/unsubscribe-ack-real.json"),
            Frame::Ack { id: Some(3) },
        ),
    ];
    for (venue, text, expected) in frames {
        let text = one_line(&text);
        let mut decoded = None;
        let allocations =
            allocations_in(|| decoded = Some(venue::decode_frame(venue, black_box(&text))));
        assert_eq!(decoded, Some(Ok(expected)), "{text}");
        assert_eq!(allocations, 0, "{text}");
    }
}
