//! Bybit v5 public spot, linear and inverse as the fake speaks them: the per-market path, JSON ping and
//! pong, subscribe and unsubscribe with whole-request failures, initial snapshots, sparse linear ticker
//! deltas, and payloads shaped like the real frames in `exchange-fixtures/bybit` (keys, order, types).
//!
//! Knows no sockets or timers: `conn` drives it (including the idle cut).

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use tokio_tungstenite::tungstenite::http::Uri;

use super::FakeKind;
use super::book::{Book, qty, unix_ms};
use super::conn::{Link, Out, Session as VenueSession};
use super::json::{Obj, array, quote};

/// Bybit spot refuses requests with more args than this.
const SPOT_MAX_ARGS: usize = 10;
/// Valid `kline.<interval>.<symbol>` intervals and their length.
const KLINE_INTERVALS: [(&str, u64); 13] = [
    ("1", 60_000),
    ("3", 180_000),
    ("5", 300_000),
    ("15", 900_000),
    ("30", 1_800_000),
    ("60", 3_600_000),
    ("120", 7_200_000),
    ("240", 14_400_000),
    ("360", 21_600_000),
    ("720", 43_200_000),
    ("D", 86_400_000),
    ("W", 604_800_000),
    ("M", 2_592_000_000),
];

/// Makes every connection's `conn_id` distinct, across fakes too.
static CONNECTIONS: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Topic {
    Orderbook(usize),
    PublicTrade,
    Tickers,
    Kline(&'static str, u64),
}

/// Parses `orderbook.<1|50|200|1000>.SYM`, `publicTrade.SYM`, `tickers.SYM` or `kline.<i>.SYM`; the symbol
/// must be uppercase ASCII letters and digits.
pub(crate) fn parse_topic(topic: &str) -> Option<(Topic, &str)> {
    let parts: Vec<&str> = topic.split('.').collect();
    let (kind, symbol) = match parts.as_slice() {
        ["orderbook", depth, symbol] => {
            let depth = [1, 50, 200, 1000]
                .into_iter()
                .find(|d| depth.parse() == Ok(*d))?;
            (Topic::Orderbook(depth), *symbol)
        }
        ["publicTrade", symbol] => (Topic::PublicTrade, *symbol),
        ["tickers", symbol] => (Topic::Tickers, *symbol),
        ["kline", interval, symbol] => {
            let &(label, ms) = KLINE_INTERVALS
                .iter()
                .find(|(label, _)| label == interval)?;
            (Topic::Kline(label, ms), *symbol)
        }
        _ => return None,
    };
    let valid = !symbol.is_empty()
        && symbol
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    valid.then_some((kind, symbol))
}

/// Bybit's side of one connection.
pub(super) struct Session {
    kind: FakeKind,
    conn_id: String,
}

impl VenueSession for Session {
    fn open(kind: FakeKind, uri: &Uri) -> Option<Self> {
        let market = match kind {
            FakeKind::BybitSpot => "spot",
            FakeKind::BybitLinear => "linear",
            _ => "inverse",
        };
        (uri.path() == format!("/v5/public/{market}")).then(|| Session {
            kind,
            conn_id: conn_id(),
        })
    }

    fn on_text(&mut self, link: &Link, text: &str) -> Vec<Out> {
        let Ok(request) = serde_json::from_str::<Value>(text) else {
            link.violation(format_args!("invalid JSON from client: {text:?}"));
            return Vec::new();
        };
        let req_id = match request.get("req_id") {
            None => String::new(),
            Some(Value::String(id)) => id.clone(),
            Some(other) => {
                link.violation(format_args!("req_id {other} is not a string"));
                other.to_string()
            }
        };
        match request.get("op").and_then(Value::as_str) {
            Some("ping") if link.settings().heartbeat => {
                vec![Out::KeepAlive, Out::Text(self.pong(&req_id))]
            }
            Some("ping") => vec![Out::KeepAlive],
            Some(op @ ("subscribe" | "unsubscribe")) => self.request(link, op, &req_id, &request),
            other => {
                link.violation(format_args!("unknown op {other:?} in {text}"));
                Vec::new()
            }
        }
    }

    fn frame(&self, key: &str, seq: u64) -> Option<String> {
        let (topic, symbol) = parse_topic(key)?;
        let now = unix_ms();
        let book = Book::new(symbol, seq);
        Some(match topic {
            Topic::Orderbook(depth) => self.orderbook(key, symbol, depth, &book, now),
            Topic::PublicTrade => self.trades(key, symbol, &book, now),
            Topic::Tickers if self.kind == FakeKind::BybitSpot => {
                spot_ticker(key, symbol, &book, now)
            }
            Topic::Tickers => futures_ticker(key, symbol, &book, now),
            Topic::Kline(label, ms) => kline(key, label, ms, symbol, &book, now),
        })
    }

    fn malformed(&self, link: &Link) -> String {
        let topic = link
            .subscriptions()
            .into_iter()
            .next()
            .unwrap_or_else(|| "orderbook.1.BTCUSDT".to_owned());
        format!(
            r#"{{"topic":{},"ts":{},"type":"snap"#,
            quote(&topic),
            unix_ms()
        )
    }

    fn shutdown_notice(&self) -> Option<String> {
        None
    }
}

impl Session {
    /// Subscribe or unsubscribe. Like Bybit, one bad topic fails the whole request and nothing in it applies.
    fn request(&self, link: &Link, op: &str, req_id: &str, request: &Value) -> Vec<Out> {
        let fail = |ret_msg: String| vec![Out::Text(self.reply(false, &ret_msg, req_id, op))];
        let args = request.get("args").and_then(Value::as_array);
        let Some(args) =
            args.and_then(|a| a.iter().map(Value::as_str).collect::<Option<Vec<&str>>>())
        else {
            link.violation(format_args!(
                "{op} without an array of topic strings: {request}"
            ));
            return fail("error:args invalid".to_owned());
        };
        if self.kind == FakeKind::BybitSpot && args.len() > SPOT_MAX_ARGS {
            link.violation(format_args!(
                "{} args in one {op} (limit {SPOT_MAX_ARGS})",
                args.len()
            ));
            return fail(format!("args size >{SPOT_MAX_ARGS}"));
        }
        if op == "unsubscribe" {
            for topic in &args {
                link.unsubscribe(topic);
            }
            return vec![Out::Text(self.ack(link, req_id, op))];
        }
        if let Some(bad) = args
            .iter()
            .find(|t| parse_topic(t).is_none() || link.is_rejected(t))
        {
            if parse_topic(bad).is_none() {
                link.violation(format_args!("invalid topic {bad:?}"));
            }
            return fail(format!("error:handler not found,topic:{bad}"));
        }
        let current = link.subscriptions();
        let repeated = args
            .iter()
            .enumerate()
            .find(|(i, t)| current.iter().any(|c| c == *t) || args[..*i].contains(t));
        if let Some((_, topic)) = repeated {
            link.violation(format_args!(
                "subscribe to already subscribed topic {topic}"
            ));
            return fail(format!("error:already subscribed,topic:{topic}"));
        }
        for topic in &args {
            link.subscribe(topic, true);
        }
        let mut out = vec![Out::Text(self.ack(link, req_id, op))];
        // Order books and tickers open with a snapshot right after the ack; trades and klines wait for data.
        for topic in &args {
            if matches!(
                parse_topic(topic),
                Some((Topic::Orderbook(_) | Topic::Tickers, _))
            ) {
                let frame = link
                    .take_frame(topic)
                    .and_then(|seq| self.frame(topic, seq));
                out.extend(frame.map(Out::Text));
            }
        }
        out
    }

    /// Spot's pong has no `req_id`; linear and inverse echo it (empty when the ping had none).
    fn pong(&self, req_id: &str) -> String {
        let spot = self.kind == FakeKind::BybitSpot;
        let pong = Obj::new()
            .json("success", true)
            .str("ret_msg", "pong")
            .str("conn_id", &self.conn_id);
        pong.when(!spot, |o| o.str("req_id", req_id))
            .str("op", "ping")
            .end()
    }

    /// Spot echoes the op in `ret_msg` of a successful ack; linear and inverse leave it empty.
    fn ack(&self, link: &Link, req_id: &str, op: &str) -> String {
        let req_id = if link.settings().echo_req_id {
            req_id
        } else {
            ""
        };
        let ret_msg = if self.kind == FakeKind::BybitSpot {
            op
        } else {
            ""
        };
        self.reply(true, ret_msg, req_id, op)
    }

    fn reply(&self, success: bool, ret_msg: &str, req_id: &str, op: &str) -> String {
        reply(&self.conn_id, success, ret_msg, req_id, op)
    }

    fn qty_decimals(&self) -> usize {
        if self.kind == FakeKind::BybitSpot {
            6
        } else {
            3
        }
    }

    /// Level 1 is snapshot-only (re-pushed at the data interval, as Bybit does every 3 s when unchanged);
    /// deeper books send one snapshot, then one-level deltas.
    fn orderbook(&self, topic: &str, symbol: &str, depth: usize, book: &Book, now: u64) -> String {
        let seq = book.seq();
        let (levels, kind) = if depth == 1 || seq == 0 {
            (depth.min(5), "snapshot")
        } else {
            (1, "delta")
        };
        let qd = self.qty_decimals();
        let data = Obj::new()
            .str("s", symbol)
            .json("b", book.levels(levels, true, qd))
            .json("a", book.levels(levels, false, qd))
            .json("u", 18_000_000 + seq)
            .json("seq", 66_000_000_000 + 7 * seq)
            .end();
        // Spot (every depth) and level 1 everywhere put `ts` before `type`; deeper futures books after it.
        let ts_first = self.kind == FakeKind::BybitSpot || depth == 1;
        Obj::new()
            .str("topic", topic)
            .when(ts_first, |o| o.json("ts", now))
            .str("type", kind)
            .when(!ts_first, |o| o.json("ts", now))
            .json("data", data)
            .json("cts", now.saturating_sub(2))
            .end()
    }

    /// Every third frame carries two trades, as busy symbols do.
    fn trades(&self, topic: &str, symbol: &str, book: &Book, now: u64) -> String {
        let seq = book.seq();
        let spot = self.kind == FakeKind::BybitSpot;
        let count = if seq % 3 == 2 { 2 } else { 1 };
        let trades = (0..count).map(|i| {
            let n = 2 * seq + i;
            // Spot trade ids are numeric strings; futures ones are UUIDs.
            let id = if spot {
                (2_290_000_000_000_000_000 + n).to_string()
            } else {
                format!("20f43950-d8dd-5b31-9112-{n:012x}")
            };
            Obj::new()
                .json("T", now.saturating_sub(3 - i))
                .str("s", symbol)
                .str("S", if n.is_multiple_of(2) { "Buy" } else { "Sell" })
                .str("v", &qty(n, self.qty_decimals()))
                .str("p", &book.px(book.bid + book.tick * i as f64))
                // The tick direction exists on futures only.
                .when(!spot, |o| {
                    o.str(
                        "L",
                        if n.is_multiple_of(2) {
                            "PlusTick"
                        } else {
                            "MinusTick"
                        },
                    )
                })
                .str("i", &id)
                .json("BT", false)
                .json("seq", 1_783_284_617 + seq)
                .end()
        });
        Obj::new()
            .str("topic", topic)
            .str("type", "snapshot")
            .json("ts", now)
            .json("data", array(trades))
            .end()
    }
}

/// Spot tickers are snapshots only, without bid or ask.
fn spot_ticker(topic: &str, symbol: &str, book: &Book, now: u64) -> String {
    let last = book.bid;
    let [last, high, low, prev, index] = [
        last,
        last * 1.01,
        last * 0.97,
        last * 0.98,
        last + book.tick,
    ]
    .map(|p| book.px(p));
    let data = Obj::new()
        .str("symbol", symbol)
        .str("lastPrice", &last)
        .str("highPrice24h", &high)
        .str("lowPrice24h", &low)
        .str("prevPrice24h", &prev)
        .str("volume24h", "6780.866843")
        .str("turnover24h", "141946527.22907118")
        .str("price24hPcnt", "0.0204")
        .str("usdIndexPrice", &index)
        .end();
    Obj::new()
        .str("topic", topic)
        .json("ts", now)
        .str("type", "snapshot")
        .json("cs", 2_588_407_389 + book.seq())
        .json("data", data)
        .end()
}

/// Linear and inverse: a full snapshot first, then sparse deltas where absent fields are unchanged.
/// Odd frames carry only the best bid and ask (no `lastPrice`); even ones add the last, mark and index.
fn futures_ticker(topic: &str, symbol: &str, book: &Book, now: u64) -> String {
    let seq = book.seq();
    let [bid, ask, last, index, prev, high, low] = [
        book.bid,
        book.ask(),
        book.bid,
        book.bid - book.tick,
        book.bid * 0.98,
        book.bid * 1.01,
        book.bid * 0.97,
    ]
    .map(|p| book.px(p));
    let tick = if seq % 4 < 2 { "PlusTick" } else { "MinusTick" };
    let quotes = |o: Obj| {
        o.str("bid1Price", &bid)
            .str("bid1Size", &qty(seq, 3))
            .str("ask1Price", &ask)
            .str("ask1Size", &qty(seq + 5, 3))
    };
    let data = Obj::new().str("symbol", symbol);
    let (kind, data) = match seq {
        0 => {
            let funding = (now / 28_800_000 + 1) * 28_800_000;
            let data = data
                .str("tickDirection", tick)
                .str("price24hPcnt", "0.020408")
                .str("lastPrice", &last)
                .str("prevPrice24h", &prev)
                .str("highPrice24h", &high)
                .str("lowPrice24h", &low)
                .str("prevPrice1h", &last)
                .str("markPrice", &last)
                .str("indexPrice", &index)
                .str("openInterest", "492373.72")
                .str("openInterestValue", "32824881841.75")
                .str("turnover24h", "4936790807.6521")
                .str("volume24h", "73191.3870")
                .str("fundingIntervalHour", "8")
                .str("fundingCap", "0.005")
                .str("nextFundingTime", &funding.to_string())
                .str("fundingRate", "0.0001");
            (
                "snapshot",
                quotes(data)
                    .str("preOpenPrice", "")
                    .str("preQty", "")
                    .str("curPreListingPhase", ""),
            )
        }
        s if s % 2 == 1 => ("delta", quotes(data)),
        _ => {
            let data = data
                .str("tickDirection", tick)
                .str("lastPrice", &last)
                .str("markPrice", &last);
            ("delta", quotes(data.str("indexPrice", &index)))
        }
    };
    Obj::new()
        .str("topic", topic)
        .str("type", kind)
        .json("data", data.end())
        .json("cs", 9_532_239_429 + seq)
        .json("ts", now)
        .end()
}

/// The open candle, re-sent with the latest close.
fn kline(topic: &str, label: &str, ms: u64, symbol: &str, book: &Book, now: u64) -> String {
    let seq = book.seq();
    let (open, close) = (Book::new(symbol, seq - seq % 10).bid, book.bid);
    let start = now - now % ms;
    let candle = Obj::new()
        .json("start", start)
        .json("end", start + ms - 1)
        .str("interval", label)
        .str("open", &book.px(open))
        .str("close", &book.px(close))
        .str("high", &book.px(open.max(close) + book.tick))
        .str("low", &book.px(open.min(close) - book.tick))
        .str("volume", &qty(seq, 3))
        .str("turnover", &book.px(close * 0.7))
        .json("confirm", false)
        .json("timestamp", now)
        .end();
    Obj::new()
        .str("topic", topic)
        .json("data", array([candle]))
        .json("ts", now)
        .str("type", "snapshot")
        .end()
}

/// A UUID-shaped id, like the `conn_id`s Bybit hands out.
fn conn_id() -> String {
    let n = CONNECTIONS.fetch_add(1, Ordering::Relaxed);
    let mixed = (unix_ms() ^ n.rotate_left(32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        mixed >> 32,
        n & 0xffff,
        mixed & 0xfff,
        (mixed >> 12) & 0xfff,
        mixed >> 16
    )
}

/// Bybit's answer to a subscribe, unsubscribe or ping request, in the venue's field order.
pub(crate) fn reply(conn_id: &str, success: bool, ret_msg: &str, req_id: &str, op: &str) -> String {
    Obj::new()
        .json("success", success)
        .str("ret_msg", ret_msg)
        .str("conn_id", conn_id)
        .str("req_id", req_id)
        .str("op", op)
        .end()
}
