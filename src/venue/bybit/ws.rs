//! Bybit v5 public (spot, linear, inverse) wire format: endpoints, topic names, `op` messages,
//! limits, and decoding of topic frames, op replies and their payloads.
//!
//! Owns no I/O. The three markets share one protocol and differ only in URL and request size.

use std::borrow::Cow;
use std::time::Duration;

use serde::Deserialize;

use crate::model::{ChannelKind, Sample, Venue};
use crate::venue::envelope::{self, Shape};
use crate::venue::plain;
use crate::venue::scan::{self, Split};
use crate::venue::wire::{
    BookSide, DecodeError, First, Frame, Heartbeat, JsonStrings, Last, Policy, RequestId, Text,
    book_mid, decimal, field, i64_field, non_null, request_id, str_field,
};

pub(super) const SPOT_URL: &str = "wss://stream.bybit.com/v5/public/spot";
pub(super) const LINEAR_URL: &str = "wss://stream.bybit.com/v5/public/linear";
pub(super) const INVERSE_URL: &str = "wss://stream.bybit.com/v5/public/inverse";

/// Each market has its own URL, so the configured base is used as is.
pub(super) const ROUTE: &str = "";

// orderbook.1 is the one topic documented to push on a quiet market (a repeated snapshot after 3 s
// without change); tickers adds last price and, on derivatives, mark-price movement.
pub(super) const CHANNELS: &[&str] = &["orderbook.1", "tickers"];

pub(super) const SPOT_POLICY: Policy = Policy {
    // No documented count; 200 topics stay far below the 21,000-character args budget.
    max_streams_per_connection: 200,
    // Spot allows at most 10 args per subscribe request.
    max_args_per_request: 10,
    // No documented message rate; keep control traffic gentle.
    request_interval: Duration::from_millis(200),
    // Bybit recommends a ping every 20 s and cuts idle connections after 10 minutes.
    heartbeat: Heartbeat::ClientPing {
        interval: Duration::from_secs(20),
        timeout: Duration::from_secs(10),
    },
    max_connection_age: None,
    // At most 10 + 300 attempts per 5 minutes against 500 allowed per IP and domain.
    connect_burst: 10,
    connect_refill: Duration::from_secs(1),
};

pub(super) const DERIVATIVES_POLICY: Policy = Policy {
    // Linear and inverse have no args limit; one bad topic fails the whole request, so keep
    // batches modest.
    max_args_per_request: 50,
    ..SPOT_POLICY
};

const ORDERBOOK_DEPTHS: [&str; 4] = ["1", "50", "200", "1000"];
const KLINE_INTERVALS: [&str; 13] = [
    "1", "3", "5", "15", "30", "60", "120", "240", "360", "720", "D", "W", "M",
];
const SUPPORTED: &str =
    "orderbook.<1|50|200|1000>, publicTrade, tickers, kline.<1|3|5|15|30|60|120|240|360|720|D|W|M>";

pub(super) fn parse_channel(venue: Venue, name: &str) -> Result<ChannelKind, String> {
    let (kind, what, value, allowed): (_, _, _, &[&str]) = match name.split_once('.') {
        None if name == "publicTrade" => return Ok(ChannelKind::Trade),
        None if name == "tickers" => return Ok(ChannelKind::Ticker),
        Some(("orderbook", depth)) => (
            // Only level 1 is snapshot-only; deeper books send deltas after the first snapshot.
            if depth == "1" {
                ChannelKind::BookTop
            } else {
                ChannelKind::BookDeltas
            },
            "orderbook depth",
            depth,
            &ORDERBOOK_DEPTHS,
        ),
        Some(("kline", interval)) => (
            ChannelKind::Kline,
            "kline interval",
            interval,
            &KLINE_INTERVALS,
        ),
        _ => {
            return Err(format!(
                "unknown channel {name:?} for {venue} (supported: {SUPPORTED})"
            ));
        }
    };
    if allowed.contains(&value) {
        return Ok(kind);
    }
    Err(format!(
        "unknown {what} {value:?} in channel {name:?} for {venue} (supported: {})",
        allowed.join(", ")
    ))
}

/// `orderbook.1` is snapshot-only, and "if 3 seconds have elapsed without a change in the orderbook, a snapshot
/// message will be pushed again" (bybit-exchange/docs v5/websocket/public/orderbook.mdx): the only scheduled
/// topic. Deeper books, trades, tickers and klines are pushed on change.
pub(super) fn expected_interval(name: &str) -> Option<Duration> {
    (name == "orderbook.1").then_some(Duration::from_secs(3))
}

pub(super) fn wire_key(channel: &str, symbol: &str) -> String {
    format!("{channel}.{}", symbol.to_ascii_uppercase())
}

/// Request shape (bybit-exchange/docs v5/websocket/wss-authentication.mdx, "How to Subscribe to
/// Topics"): `{"req_id":"test","op":"subscribe","args":["orderbook.1.BTCUSDT",...]}`.
pub(super) fn request(op: &str, keys: &[&str], id: RequestId) -> String {
    format!(
        r#"{{"req_id":"{id}","op":"{op}","args":{}}}"#,
        JsonStrings(keys)
    )
}

/// Same source, "How to Send the Heartbeat Packet": `{"req_id":"100001","op":"ping"}`.
pub(super) fn ping(id: RequestId) -> String {
    format!(r#"{{"req_id":"{id}","op":"ping"}}"#)
}

/// Every data frame: `{"topic":"<topic>",..,"data":<payload>,..}` with `type`, `ts` and, for some topics, `cs`
/// or `cts` around the payload.
const DATA: Shape = Shape {
    name: "topic",
    time: Some("ts"),
    ignored: &["type", "cs", "cts"],
};

/// Classifies any frame on a public connection: data carries `topic`, replies to our ops carry
/// `op` and `success`.
///
/// Data (bybit-exchange/docs v5/websocket/public/orderbook.mdx, via nautilus_trader's test
/// resources):
///
/// ```json
/// {"topic":"orderbook.50.BTCUSDT","type":"snapshot","ts":1672304484978,
///  "data":{"s":"BTCUSDT","b":[["16493.50","0.006"],...],...}}
/// ```
///
/// Ack (real, quoted in ccxt ts/src/pro/bybit.ts) and refusal (real, sieblyio/bybit-api#561):
///
/// ```json
/// {"success":true,"ret_msg":"","conn_id":"7188110e-6908-41e9-b863-6365127e92ad","req_id":"3",
///  "op":"unsubscribe"}
/// {"success":false,"ret_msg":"error:handler not found,topic:dcp.future",
///  "conn_id":"d9jhogatbetvf6evjmc0-8eoj","req_id":"dcp.future","op":"subscribe"}
/// ```
///
/// Pongs (wss-authentication.mdx, "Pong"): spot, then linear/inverse, then option/spread:
///
/// ```json
/// {"success":true,"ret_msg":"pong","conn_id":"0970e817-426e-429a-a679-ff7f55e0b16a","op":"ping"}
/// {"success":true,"ret_msg":"pong","conn_id":"465772b1-7630-4fdc-a492-e003e6f0f260","req_id":"",
///  "op":"ping"}
/// {"args":["1672916271846"],"op":"pong"}
/// ```
pub(super) fn decode_frame(text: &str, split: Split) -> Result<Frame<'_>, DecodeError> {
    if split == Split::Presume
        && let Some(parts) = envelope::split(text, &DATA)
        // An event time past i64 is the scan's to refuse.
        && let Ok(ts_ms) = parts.time.map(str::parse).transpose()
    {
        return Ok(Frame::Data {
            key: parts.name,
            payload: parts.payload,
            ts_ms,
        });
    }
    let [topic, data, ts, op, success, ret_msg, req_id] = scan::pick_data(
        text,
        ["topic", "data", "ts", "op", "success", "ret_msg", "req_id"],
        "data",
        split,
    )?;
    // Every member read is type-checked before any is acted on, so a frame is malformed or not
    // whatever its shape turns out to be.
    let topic = str_field(topic)?;
    let ts = i64_field(ts)?;
    let op = str_field(op)?;
    let success: Option<bool> = field(success)?;
    let ret_msg: Option<Text<'_>> = field(ret_msg)?;
    let req_id: Option<Text<'_>> = field(req_id)?;
    if let Some(key) = topic {
        let payload =
            non_null(data).ok_or(DecodeError::UnexpectedShape("topic frame without data"))?;
        return Ok(Frame::Data {
            key,
            payload,
            ts_ms: ts,
        });
    }
    let id = req_id.and_then(|Text(id)| request_id(&id));
    match (op, success) {
        (Some("pong"), _) | (Some("ping"), Some(true)) => Ok(Frame::Pong),
        (_, Some(false)) => {
            let reason = ret_msg.map_or(Cow::Borrowed("(no ret_msg)"), |Text(reason)| reason);
            Ok(Frame::Rejected { id, reason })
        }
        (Some("subscribe" | "unsubscribe"), Some(true)) => Ok(Frame::Ack { id }),
        (_, Some(true)) => Ok(Frame::Other),
        (_, None) => Err(DecodeError::UnexpectedShape(
            "neither topic data nor an op reply",
        )),
    }
}

/// `orderbook.1.<symbol>` data, a snapshot every time, so its levels are the best ones. The shape
/// is that of every depth (nautilus_trader test resources: the official orderbook.50 snapshot
/// example):
///
/// ```json
/// {"s":"BTCUSDT","b":[["16493.50","0.006"],["16493.00","0.100"]],
///  "a":[["16611.00","0.029"],["16612.00","0.213"]],"u":18521288,"seq":7961638724}
/// ```
#[derive(Deserialize)]
struct BookTop<'a> {
    #[serde(rename = "b", borrow)]
    bids: BookSide<'a>,
    #[serde(rename = "a", borrow)]
    asks: BookSide<'a>,
}

pub(super) fn decode_orderbook(payload: &str, ts_ms: Option<i64>) -> Result<Sample, DecodeError> {
    let book: BookTop<'_> = serde_json::from_str(payload)?;
    Ok(Sample {
        event_time_ms: ts_ms,
        price: book_mid(book.bids, book.asks)?,
    })
}

/// `orderbook.<50|200|1000>.<symbol>` data: one snapshot, then deltas that list changed levels,
/// size `"0"` deleting one (bybit-exchange/docs v5/websocket/public/orderbook.mdx, "Delta"):
///
/// ```json
/// {"s":"BTCUSDT","b":[["30247.20","30.028"],...,["30240.00","0"]],
///  "a":[["30248.70","0"],["30249.30","0.892"],...],"u":177400507,"seq":66544703342}
/// ```
///
/// A delta's first level is not the best without the book it applies to, so no price is read;
/// the message still counts, stamped with the envelope's `ts`.
pub(super) fn decode_orderbook_levels(
    payload: &str,
    ts_ms: Option<i64>,
) -> Result<Sample, DecodeError> {
    scan::validate(payload)?;
    Ok(Sample {
        event_time_ms: ts_ms,
        price: None,
    })
}

/// One element of `publicTrade.<symbol>` data, which is sorted by fill time (bybit-exchange/docs
/// v5/websocket/public/trade.mdx):
///
/// ```json
/// {"T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick",
///  "i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false,"seq":1783284617}
/// ```
#[derive(Deserialize)]
struct BybitTrade<'a> {
    #[serde(rename = "p")]
    price: &'a str,
    #[serde(rename = "T")]
    fill_time: i64,
}

pub(super) fn decode_public_trade(payload: &str) -> Result<Sample, DecodeError> {
    let Last(trade) = serde_json::from_str::<Last<BybitTrade<'_>>>(payload)?;
    match trade {
        Some(trade) => Ok(Sample {
            event_time_ms: Some(trade.fill_time),
            price: Some(decimal("p", trade.price)?),
        }),
        None => Ok(Sample::default()),
    }
}

/// `tickers.<symbol>` data. Linear/inverse deltas carry only changed fields (real, quoted in ccxt
/// ts/src/pro/bybit.ts); snapshots and spot tickers carry `lastPrice` (bybit-exchange/docs
/// v5/websocket/public/ticker.mdx, "Spot"):
///
/// ```json
/// {"symbol":"AAVEUSDT","bid1Price":"112.89","bid1Size":"2.12","ask1Price":"112.90",
///  "ask1Size":"5.02"}
/// {"symbol":"BTCUSDT","lastPrice":"21109.77","highPrice24h":"21426.99",...}
/// ```
#[derive(Deserialize)]
struct BybitTicker<'a> {
    #[serde(rename = "lastPrice")]
    last_price: Option<&'a str>,
}

/// [`BybitTicker`] read without serde from a payload in the plain form Bybit writes; `None` for serde to read.
#[inline]
fn plain_ticker(payload: &str) -> Option<BybitTicker<'_>> {
    let [last_price] = plain::flat(payload, ["lastPrice"])?;
    Some(BybitTicker {
        last_price: match last_price {
            Some(price) => Some(price.str(payload)?),
            None => None,
        },
    })
}

pub(super) fn decode_tickers(payload: &str, ts_ms: Option<i64>) -> Result<Sample, DecodeError> {
    let ticker = plain_ticker(payload).map_or_else(|| serde_json::from_str(payload), Ok)?;
    // Bybit writes "" for values it does not have (see `preOpenPrice` in linear snapshots).
    let price = match ticker.last_price {
        Some(last) if !last.is_empty() => Some(decimal("lastPrice", last)?),
        _ => None,
    };
    Ok(Sample {
        event_time_ms: ts_ms,
        price,
    })
}

/// One element of `kline.<interval>.<symbol>` data, the open bar first (bybit-exchange/docs
/// v5/websocket/public/kline.mdx):
///
/// ```json
/// {"start":1672324800000,"end":1672325099999,"interval":"5","open":"16649.5","close":"16677",
///  "high":"16677","low":"16608","volume":"2.081","turnover":"34666.4005","confirm":false,
///  "timestamp":1672324988882}
/// ```
#[derive(Deserialize)]
struct BybitKlineBar<'a> {
    close: &'a str,
}

pub(super) fn decode_kline(payload: &str, ts_ms: Option<i64>) -> Result<Sample, DecodeError> {
    let First(bar) = serde_json::from_str::<First<BybitKlineBar<'_>>>(payload)?;
    let price = bar.map(|bar| decimal("close", bar.close)).transpose()?;
    Ok(Sample {
        event_time_ms: ts_ms,
        price,
    })
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use crate::model::{ChannelKind, Sample, Venue};
    use crate::venue::{
        DecodeError, Frame, assert_outcome, decode_frame, decode_sample, parse_channel,
        ping_message, route, subscribe_message, unsubscribe_message, wire_key,
    };

    const VENUES: [Venue; 3] = [Venue::BybitSpot, Venue::BybitLinear, Venue::BybitInverse];

    fn dec(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    #[test]
    fn decodes_data_frames() {
        // The docs have no orderbook.1 example; its data has the same shape as every depth's.
        let orderbook_1 = fixture!("bybit/orderbook50-snapshot-linear.json")
            .replace("orderbook.50.", "orderbook.1.");
        let cases = [
            (
                Venue::BybitLinear,
                "orderbook.1",
                orderbook_1.as_str(),
                "orderbook.1.BTCUSDT",
                Some("16552.25"),
                1672304484978,
            ),
            // Deeper books give no price, even on a snapshot.
            (
                Venue::BybitLinear,
                "orderbook.50",
                fixture!("bybit/orderbook50-snapshot-linear.json"),
                "orderbook.50.BTCUSDT",
                None,
                1672304484978,
            ),
            (
                Venue::BybitLinear,
                "orderbook.50",
                fixture!("bybit/orderbook50-delta-linear.json"),
                "orderbook.50.BTCUSDT",
                None,
                1687940967466,
            ),
            (
                Venue::BybitLinear,
                "tickers",
                fixture!("bybit/tickers-linear-snapshot.json"),
                "tickers.BTCUSDT",
                Some("66666.60"),
                1760325052630,
            ),
            (
                Venue::BybitLinear,
                "tickers",
                fixture!("bybit/tickers-linear-delta-real.json"),
                "tickers.AAVEUSDT",
                None,
                1709210212704,
            ),
            (
                Venue::BybitSpot,
                "tickers",
                fixture!("bybit/tickers-spot.json"),
                "tickers.BTCUSDT",
                Some("21109.77"),
                1673853746003,
            ),
            (
                Venue::BybitLinear,
                "publicTrade",
                fixture!("bybit/publicTrade-linear.json"),
                "publicTrade.BTCUSDT",
                Some("16578.50"),
                // The trade's own fill time `T`, not the envelope's 1672304486868.
                1672304486865,
            ),
            (
                Venue::BybitLinear,
                "kline.5",
                fixture!("bybit/kline-linear.json"),
                "kline.5.BTCUSDT",
                Some("16677"),
                1672324988882,
            ),
        ];
        for (venue, channel, text, key, price, event_time) in cases {
            let kind = parse_channel(venue, channel).unwrap();
            let Ok(Frame::Data {
                key: got_key,
                payload,
                ts_ms,
            }) = decode_frame(venue, text)
            else {
                panic!(
                    "{venue} {channel}: not a data frame: {:?}",
                    decode_frame(venue, text)
                );
            };
            assert_eq!(got_key, key);
            assert_eq!(
                decode_sample(venue, kind, payload, ts_ms),
                Ok(Sample {
                    event_time_ms: Some(event_time),
                    price: price.map(dec)
                }),
                "{venue} {channel}"
            );
        }
    }

    #[test]
    fn decodes_control_frames() {
        let cases = [
            // The docs' spot ack echoes req_id; linear/inverse echoed an empty one there.
            (
                fixture!("bybit/subscribe-ack-spot.json"),
                Frame::Ack { id: Some(10001) },
            ),
            (
                fixture!("bybit/subscribe-ack-linear.json"),
                Frame::Ack { id: None },
            ),
            (
                fixture!("bybit/unsubscribe-ack-real.json"),
                Frame::Ack { id: Some(3) },
            ),
            (fixture!("bybit/subscribe-ack-option.json"), Frame::Other),
            (
                fixture!("bybit/subscribe-error-handler-not-found.json"),
                Frame::Rejected {
                    id: None,
                    reason: "error:handler not found,topic:dcp.future".into(),
                },
            ),
            (
                r#"{"success":false,"ret_msg":"Invalid symbol :[orderbook.1.NOPE]","req_id":"17","op":"subscribe"}"#,
                Frame::Rejected {
                    id: Some(17),
                    reason: "Invalid symbol :[orderbook.1.NOPE]".into(),
                },
            ),
            (
                r#"{"success":false,"op":"subscribe"}"#,
                Frame::Rejected {
                    id: None,
                    reason: "(no ret_msg)".into(),
                },
            ),
            (fixture!("bybit/pong-spot.json"), Frame::Pong),
            (fixture!("bybit/pong-linear.json"), Frame::Pong),
            (fixture!("bybit/pong-option.json"), Frame::Pong),
        ];
        for venue in VENUES {
            for (text, expected) in &cases {
                assert_eq!(
                    decode_frame(venue, text).as_ref(),
                    Ok(expected),
                    "{venue} {text}"
                );
            }
        }
    }

    #[test]
    fn rejects_malformed_frames() {
        let shape = |what| Err(DecodeError::UnexpectedShape(what));
        let cases = [
            (r#"{"topic":"tickers.BTCUSDT","ts":1,"data":{"lastPr"#, None),
            ("{}", Some(shape("neither topic data nor an op reply"))),
            ("7", None),
            ("null", None),
            (
                r#"{"op":"ping"}"#,
                Some(shape("neither topic data nor an op reply")),
            ),
            (
                r#"{"topic":"tickers.BTCUSDT","ts":1}"#,
                Some(shape("topic frame without data")),
            ),
            (r#"{"topic":"tickers.BTCUSDT","ts":"soon","data":{}}"#, None),
            (r#"{"success":"yes","op":"subscribe"}"#, None),
        ];
        for (text, expected) in cases {
            assert_outcome(decode_frame(Venue::BybitLinear, text), expected, text);
        }
    }

    #[test]
    fn rejects_bad_payloads() {
        use ChannelKind::*;
        let sample = |event_time_ms, price: Option<&str>| {
            Ok(Sample {
                event_time_ms,
                price: price.map(dec),
            })
        };
        let bad = |field| Err(DecodeError::BadNumber(field));
        let cases = [
            (
                BookTop,
                r#"{"s":"BTCUSDT","b":[],"a":[["1","2"]]}"#,
                Some(sample(Some(9), None)),
            ),
            (
                BookTop,
                r#"{"s":"BTCUSDT","b":[],"a":[]}"#,
                Some(sample(Some(9), None)),
            ),
            (
                BookTop,
                r#"{"b":[["abc","1"]],"a":[["1","2"]]}"#,
                Some(bad("bid")),
            ),
            (BookTop, r#"{"b":[["1","1"]]}"#, None),
            (
                BookDeltas,
                r#"{"s":"BTCUSDT","b":[["abc","0"]],"a":[]}"#,
                Some(sample(Some(9), None)),
            ),
            (BookDeltas, r#"{"b":[["1","0"]],"a":[}"#, None),
            (BookDeltas, "[]", None),
            (
                Ticker,
                r#"{"symbol":"BTCUSDT","lastPrice":"abc"}"#,
                Some(bad("lastPrice")),
            ),
            (
                Ticker,
                r#"{"symbol":"BTCUSDT","lastPrice":""}"#,
                Some(sample(Some(9), None)),
            ),
            (Ticker, r#"{"symbol":"BTCUSDT","lastPrice":1}"#, None),
            (Ticker, "[]", None),
            (Trade, "[]", Some(sample(None, None))),
            (
                Trade,
                r#"[{"T":1,"p":"1.5"},{"T":2,"p":"2.5"}]"#,
                Some(sample(Some(2), Some("2.5"))),
            ),
            (Trade, r#"[{"T":1,"p":"abc"}]"#, Some(bad("p"))),
            (Trade, r#"[{"T":1}]"#, None),
            (Trade, r#"{"T":1,"p":"1"}"#, None),
            (Kline, "[]", Some(sample(Some(9), None))),
            (
                Kline,
                r#"[{"close":"2"},{"close":"x"}]"#,
                Some(sample(Some(9), Some("2"))),
            ),
            (Kline, r#"[{"close":"x"}]"#, Some(bad("close"))),
        ];
        for (kind, payload, expected) in cases {
            let got = decode_sample(Venue::BybitLinear, kind, payload, Some(9));
            assert_outcome(got, expected, &format!("{kind:?} {payload}"));
        }
    }

    #[test]
    fn parses_channels() {
        use ChannelKind::*;
        let ok = [
            ("orderbook.1", BookTop),
            ("orderbook.50", BookDeltas),
            ("orderbook.200", BookDeltas),
            ("orderbook.1000", BookDeltas),
            ("publicTrade", Trade),
            ("tickers", Ticker),
            ("kline.1", Kline),
            ("kline.720", Kline),
            ("kline.D", Kline),
            ("kline.M", Kline),
        ];
        let supported = "orderbook.<1|50|200|1000>, publicTrade, tickers, \
                         kline.<1|3|5|15|30|60|120|240|360|720|D|W|M>";
        let err = [
            ("foo", format!(r#"unknown channel "foo" for bybit/linear (supported: {supported})"#)),
            ("orderbook", format!(r#"unknown channel "orderbook" for bybit/linear (supported: {supported})"#)),
            ("tickers.BTCUSDT", format!(r#"unknown channel "tickers.BTCUSDT" for bybit/linear (supported: {supported})"#)),
            (
                "orderbook.01",
                r#"unknown orderbook depth "01" in channel "orderbook.01" for bybit/linear (supported: 1, 50, 200, 1000)"#
                    .to_owned(),
            ),
            (
                "orderbook.500",
                r#"unknown orderbook depth "500" in channel "orderbook.500" for bybit/linear (supported: 1, 50, 200, 1000)"#
                    .to_owned(),
            ),
            (
                "kline.2",
                r#"unknown kline interval "2" in channel "kline.2" for bybit/linear (supported: 1, 3, 5, 15, 30, 60, 120, 240, 360, 720, D, W, M)"#
                    .to_owned(),
            ),
        ];
        for venue in VENUES {
            for (name, kind) in ok {
                assert_eq!(parse_channel(venue, name), Ok(kind), "{venue} {name}");
                assert_eq!(route(venue, kind), "", "{venue} {name}");
            }
        }
        for (name, reason) in err {
            assert_eq!(
                parse_channel(Venue::BybitLinear, name),
                Err(reason),
                "{name}"
            );
        }
        assert_eq!(
            parse_channel(Venue::BybitSpot, "trade"),
            Err(format!(
                r#"unknown channel "trade" for bybit/spot (supported: {supported})"#
            ))
        );
    }

    #[test]
    fn builds_wire_keys_and_messages() {
        assert_eq!(
            wire_key(Venue::BybitSpot, "orderbook.1", "BTCUSDT"),
            "orderbook.1.BTCUSDT"
        );
        assert_eq!(
            wire_key(Venue::BybitInverse, "kline.D", "btcusd"),
            "kline.D.BTCUSD"
        );
        let keys = ["orderbook.1.BTCUSDT", "publicTrade.BTCUSDT"];
        for venue in VENUES {
            assert_eq!(
                subscribe_message(venue, &keys, 7),
                r#"{"req_id":"7","op":"subscribe","args":["orderbook.1.BTCUSDT","publicTrade.BTCUSDT"]}"#
            );
            assert_eq!(
                unsubscribe_message(venue, &keys[1..], 8),
                r#"{"req_id":"8","op":"unsubscribe","args":["publicTrade.BTCUSDT"]}"#
            );
            let ping = ping_message(venue, 100001).unwrap();
            assert_eq!(ping, r#"{"req_id":"100001","op":"ping"}"#);
            // Same JSON as the docs' own ping.
            let json = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap();
            assert_eq!(json(&ping), json(fixture!("bybit/ping-request.json")));
        }
    }
}
