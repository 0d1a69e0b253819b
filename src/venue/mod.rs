//! Venue wire protocols, sans-IO: endpoints and routes, channel names, subscribe and ping text,
//! per-venue limits and heartbeat policy as data, and decoding of frames and payloads.
//!
//! Owns no socket, task or clock: the feed drives connections and calls these pure functions.
//! Everything an exchange puts on the wire lives in its folder (`binance/`, `bybit/`), each implementing
//! [`exchange::WsExchange`] and [`exchange::RestExchange`] on a zero-sized type; this file and `rest.rs` only
//! dispatch by [`Venue`]. The shared vocabulary is in `wire.rs` and `rest_wire.rs`, the envelope scanner in
//! `scan.rs`, so that decoding a data frame allocates nothing.

use std::time::Duration;

use crate::model::{Channel, ChannelKind, Exchange, Sample, Venue};

// Defined before the submodules so that their tests can use it too: macro scope is textual.
#[cfg(test)]
macro_rules! fixture {
    ($path:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/",
            $path
        ))
    };
}

mod binance;
mod bybit;
mod envelope;
mod exchange;
mod plain;
pub mod rest;
mod rest_wire;
mod scan;
mod wire;

use binance::Binance;
use bybit::Bybit;
use exchange::{Op, WsExchange};
pub use rest::rest_path_fix;
use scan::Split;
#[cfg(test)]
pub(crate) use wire::assert_outcome;
pub use wire::{DecodeError, Frame, Heartbeat, PathFix, Policy, RequestId};

/// The exchange's WebSocket knowledge. Adding an exchange adds its arm here (and in `rest::exchange`).
fn exchange(venue: Venue) -> &'static dyn WsExchange {
    match venue.exchange() {
        Exchange::Binance => &Binance,
        Exchange::Bybit => &Bybit,
    }
}

/// The venue's limits and heartbeat policy.
pub fn policy(venue: Venue) -> Policy {
    exchange(venue).policy(venue)
}

/// The venue's documented WebSocket base URL, used unless configuration overrides it.
pub fn default_url(venue: Venue) -> &'static str {
    exchange(venue).default_url(venue)
}

/// Checks the path of a WebSocket base URL for `venue`: Binance's routes (`/stream`, USD-M `/public/stream`
/// and `/market/stream`) are appended by the feed, so a base ending in one doubles it; a Bybit URL names its
/// market (`/v5/public/linear`), so one naming another market, or stopping short of the market, is wrong.
/// Paths of proxies that follow neither pattern (the root included) are left alone.
pub fn ws_path_fix(venue: Venue, path: &str) -> Option<PathFix> {
    exchange(venue).ws_path_fix(venue, path)
}

/// The channels watched when configuration names none for the venue.
pub fn default_channels(venue: Venue) -> &'static [&'static str] {
    exchange(venue).default_channels(venue)
}

/// Validates a configured channel name for a venue. Err is a human reason, e.g.
/// `unknown channel "foo" for binance/spot (supported: bookTicker, aggTrade, ...)`.
pub fn parse_channel(venue: Venue, name: &str) -> Result<ChannelKind, String> {
    exchange(venue).parse_channel(venue, name)
}

/// How often the venue pushes a channel whatever the market does, for the channels it documents as pushed on a
/// schedule; `None` for event-driven channels, whose silence may just be a quiet market. Only names
/// [`parse_channel`] accepts are meaningful here.
///
/// - Binance spot partial depth `depth<5|10|20>` and `@1000ms`: 1 s, `@100ms`: 100 ms ("pushed every second").
/// - Binance USD-M `markPrice`: 3 s, `markPrice@1s`: 1 s.
/// - Bybit `orderbook.1` (every market): 3 s, the snapshot re-sent when the book has not changed for 3 s.
pub fn expected_interval(venue: Venue, name: &str) -> Option<Duration> {
    exchange(venue).expected_interval(venue, name)
}

/// A configured channel of a venue: its payload kind from [`parse_channel`] and its cadence from
/// [`expected_interval`].
pub fn channel(venue: Venue, name: &str) -> Result<Channel, String> {
    Ok(Channel {
        name: name.into(),
        kind: parse_channel(venue, name)?,
        interval: expected_interval(venue, name),
    })
}

/// The URL path a connection carrying this channel must use, appended to the configured base URL
/// (base with trailing '/' trimmed): BinanceSpot "/stream"; BinanceUsdm "/public/stream" for
/// bookTicker and depth kinds, "/market/stream" for everything else; Bybit "" (base used as is).
pub fn route(venue: Venue, kind: ChannelKind) -> &'static str {
    exchange(venue).route(venue, kind)
}

/// The wire key of a subscription: Binance "{lowercase symbol}@{channel}" e.g.
/// "btcusdt@markPrice@1s"; Bybit "{channel}.{SYMBOL}" e.g. "orderbook.1.BTCUSDT".
pub fn wire_key(venue: Venue, channel: &str, symbol: &str) -> String {
    exchange(venue).wire_key(channel, symbol)
}

/// The text of a request subscribing to `keys` (wire keys from [`wire_key`]).
pub fn subscribe_message(venue: Venue, keys: &[&str], id: RequestId) -> String {
    exchange(venue).request(Op::Subscribe, keys, id)
}

/// The text of a request unsubscribing from `keys`.
pub fn unsubscribe_message(venue: Venue, keys: &[&str], id: RequestId) -> String {
    exchange(venue).request(Op::Unsubscribe, keys, id)
}

/// The venue's JSON ping, for [`Heartbeat::ClientPing`] venues; `None` where the server pings.
pub fn ping_message(venue: Venue, id: RequestId) -> Option<String> {
    exchange(venue).ping(id)
}

/// Classifies one text frame and, for market data, splits it into key and payload without copying. Hot path:
/// dispatched statically. Every frame but data is validated whole. A data frame's payload is not walked here:
/// where the members after it are plain, as the venues send them, its end is presumed from the frame's end, and
/// otherwise it is only delimited; its decoder parses it, and so validates it, anyway (one walk of the frame
/// instead of two). Decode the payload with [`decode_data`], or check it with [`validate_data`], which settle a
/// presumed end that was wrong.
#[inline]
pub fn decode_frame(venue: Venue, text: &str) -> Result<Frame<'_>, DecodeError> {
    split_frame(venue, text, Split::Presume)
}

#[inline]
fn split_frame(venue: Venue, text: &str, split: Split) -> Result<Frame<'_>, DecodeError> {
    let frame = match venue.exchange() {
        Exchange::Binance => Binance.decode_frame(text, split),
        Exchange::Bybit => Bybit.decode_frame(text, split),
    };
    match frame {
        data @ Ok(Frame::Data { .. }) => data,
        // Only a data frame leaves part of itself (its payload) to a decoder to validate; anything else is
        // validated whole, so that a damaged reply is malformed rather than of an unexpected shape.
        other => {
            scan::validate(text)?;
            other
        }
    }
}

/// A data frame's payload looked at again when it was refused: [`decode_frame`] presumed its end, and the one
/// way to presume wrong (a member after the payload holding a container) leaves trailing members in it. The
/// frame's error where it is malformed, `Ok(None)` where the payload was right, the payload and `ts` otherwise.
#[cold]
fn delimited<'a>(
    venue: Venue,
    frame: &'a str,
    payload: &str,
) -> Result<Option<(&'a str, Option<i64>)>, DecodeError> {
    match split_frame(venue, frame, Split::Delimit)? {
        Frame::Data {
            payload: found,
            ts_ms,
            ..
        } if found.len() != payload.len() => Ok(Some((found, ts_ms))),
        _ => Ok(None),
    }
}

/// [`decode_sample`] for the `payload` and `ts_ms` that [`decode_frame`] split from `frame`: a refusal is final
/// only once the frame's payload is known to end where it was presumed to. Hot path.
#[inline]
pub fn decode_data(
    venue: Venue,
    kind: ChannelKind,
    frame: &str,
    payload: &str,
    ts_ms: Option<i64>,
) -> Result<Sample, DecodeError> {
    decode_sample(venue, kind, payload, ts_ms).or_else(|refused| {
        match delimited(venue, frame, payload)? {
            Some((payload, ts_ms)) => decode_sample(venue, kind, payload, ts_ms),
            None => Err(refused),
        }
    })
}

/// Checks that a data frame's payload is JSON, for a frame no decoder reads (a stream the connection does not
/// carry): [`decode_frame`] does not walk the payload, and [`decode_data`] validates what it decodes.
pub fn validate_data(venue: Venue, frame: &str, payload: &str) -> Result<(), DecodeError> {
    scan::validate_value(payload).or_else(|refused| match delimited(venue, frame, payload)? {
        Some((payload, _)) => scan::validate_value(payload).map_err(DecodeError::from),
        None => Err(DecodeError::from(refused)),
    })
}

/// Decodes the payload of a Data frame for its channel kind. `ts_ms` is the envelope's ts (Bybit)
/// used as event time where the kind says so. Hot path: dispatched statically. For a payload split from a
/// frame by [`decode_frame`], [`decode_data`].
#[inline]
pub fn decode_sample(
    venue: Venue,
    kind: ChannelKind,
    payload: &str,
    ts_ms: Option<i64>,
) -> Result<Sample, DecodeError> {
    match venue.exchange() {
        Exchange::Binance => Binance.decode_sample(venue, kind, payload, ts_ms),
        Exchange::Bybit => Bybit.decode_sample(venue, kind, payload, ts_ms),
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;
    use serde::de::IgnoredAny;

    use super::wire::*;
    use super::*;

    fn dec(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    #[test]
    fn policies() {
        let hours_24_less_5_min = Some(Duration::from_secs(24 * 3600 - 300));
        let cases = [
            (
                Venue::BinanceSpot,
                Policy {
                    max_streams_per_connection: 1024,
                    max_args_per_request: 100,
                    request_interval: Duration::from_millis(300),
                    heartbeat: Heartbeat::ServerPing {
                        timeout: Duration::from_secs(60),
                    },
                    max_connection_age: hours_24_less_5_min,
                    connect_burst: 10,
                    connect_refill: Duration::from_secs(2),
                },
            ),
            (
                Venue::BinanceUsdm,
                Policy {
                    max_streams_per_connection: 200,
                    max_args_per_request: 100,
                    request_interval: Duration::from_millis(150),
                    heartbeat: Heartbeat::ServerPing {
                        timeout: Duration::from_secs(600),
                    },
                    max_connection_age: hours_24_less_5_min,
                    connect_burst: 10,
                    connect_refill: Duration::from_secs(2),
                },
            ),
            (
                Venue::BybitSpot,
                Policy {
                    max_streams_per_connection: 200,
                    max_args_per_request: 10,
                    request_interval: Duration::from_millis(200),
                    heartbeat: Heartbeat::ClientPing {
                        interval: Duration::from_secs(20),
                        timeout: Duration::from_secs(10),
                    },
                    max_connection_age: None,
                    connect_burst: 10,
                    connect_refill: Duration::from_secs(1),
                },
            ),
        ];
        for (venue, expected) in cases {
            assert_eq!(policy(venue), expected, "{venue}");
        }
        let linear = Policy {
            max_args_per_request: 50,
            ..policy(Venue::BybitSpot)
        };
        assert_eq!(policy(Venue::BybitLinear), linear);
        assert_eq!(policy(Venue::BybitInverse), linear);
    }

    #[test]
    fn urls() {
        let cases = [
            (Venue::BinanceSpot, "wss://stream.binance.com:9443"),
            (Venue::BinanceUsdm, "wss://fstream.binance.com"),
            (Venue::BybitSpot, "wss://stream.bybit.com/v5/public/spot"),
            (
                Venue::BybitLinear,
                "wss://stream.bybit.com/v5/public/linear",
            ),
            (
                Venue::BybitInverse,
                "wss://stream.bybit.com/v5/public/inverse",
            ),
        ];
        for (venue, url) in cases {
            assert_eq!(default_url(venue), url, "{venue}");
        }
    }

    #[test]
    fn default_channels_parse_to_their_kinds_and_routes() {
        use ChannelKind::*;
        let bybit = [("orderbook.1", BookTop, ""), ("tickers", Ticker, "")];
        let cases = [
            (
                Venue::BinanceSpot,
                [
                    ("depth5", BookLevels, "/stream"),
                    ("aggTrade", Trade, "/stream"),
                ],
            ),
            (
                Venue::BinanceUsdm,
                [
                    ("markPrice@1s", MarkPrice, "/market/stream"),
                    ("bookTicker", BookTop, "/public/stream"),
                ],
            ),
            (Venue::BybitSpot, bybit),
            (Venue::BybitLinear, bybit),
            (Venue::BybitInverse, bybit),
        ];
        for (venue, expected) in cases {
            assert_eq!(
                default_channels(venue),
                expected.map(|(name, _, _)| name),
                "{venue}"
            );
            for (name, kind, path) in expected {
                assert_eq!(parse_channel(venue, name), Ok(kind), "{venue} {name}");
                assert_eq!(route(venue, kind), path, "{venue} {name}");
            }
        }
    }

    /// The cadence table, per venue and channel: only the channels the venues document as pushed on a schedule
    /// have an interval; everything event-driven has none.
    #[test]
    fn cadence_of_every_channel_kind() {
        use Venue::*;
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        let bybit = |venue| {
            [
                (venue, "orderbook.1", Some(s(3))),
                (venue, "orderbook.50", None),
                (venue, "orderbook.200", None),
                (venue, "orderbook.1000", None),
                (venue, "publicTrade", None),
                (venue, "tickers", None),
                (venue, "kline.1", None),
                (venue, "kline.D", None),
            ]
        };
        let mut cases = vec![
            (BinanceSpot, "depth5", Some(s(1))),
            (BinanceSpot, "depth10", Some(s(1))),
            (BinanceSpot, "depth20", Some(s(1))),
            (BinanceSpot, "depth5@1000ms", Some(s(1))),
            (BinanceSpot, "depth20@100ms", Some(ms(100))),
            (BinanceSpot, "bookTicker", None),
            (BinanceSpot, "aggTrade", None),
            (BinanceSpot, "trade", None),
            (BinanceSpot, "kline_1s", None),
            (BinanceSpot, "kline_1m", None),
            (BinanceSpot, "ticker", None),
            (BinanceSpot, "miniTicker", None),
            (BinanceUsdm, "markPrice", Some(s(3))),
            (BinanceUsdm, "markPrice@1s", Some(s(1))),
            (BinanceUsdm, "bookTicker", None),
            (BinanceUsdm, "aggTrade", None),
            (BinanceUsdm, "depth5", None),
            (BinanceUsdm, "depth10@100ms", None),
            (BinanceUsdm, "depth20@500ms", None),
            (BinanceUsdm, "kline_1m", None),
            (BinanceUsdm, "ticker", None),
            (BinanceUsdm, "miniTicker", None),
        ];
        for venue in [BybitSpot, BybitLinear, BybitInverse] {
            cases.extend(bybit(venue));
        }
        for (venue, name, interval) in cases {
            let kind = parse_channel(venue, name).expect("the table lists valid channels only");
            assert_eq!(expected_interval(venue, name), interval, "{venue} {name}");
            assert_eq!(
                channel(venue, name),
                Ok(Channel {
                    name: name.into(),
                    kind,
                    interval,
                }),
                "{venue} {name}"
            );
        }
        assert!(channel(BinanceSpot, "depth7").is_err());
        // Every market's default pair has one scheduled channel, which is what tells a dead feed from a quiet
        // market.
        for venue in Venue::ALL {
            let scheduled = default_channels(venue)
                .iter()
                .filter(|name| expected_interval(venue, name).is_some())
                .count();
            assert_eq!(scheduled, 1, "{venue}");
        }
    }

    #[test]
    fn messages_escape_keys() {
        let keys = ["a\"b", "c\\d", "e\u{1}f", "é"];
        let text = subscribe_message(Venue::BinanceSpot, &keys, 1);
        assert_eq!(
            text,
            r#"{"method":"SUBSCRIBE","params":["a\"b","c\\d","e\u0001f","é"],"id":1}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["params"], serde_json::json!(keys));
        assert_eq!(
            subscribe_message(Venue::BybitLinear, &[], 2),
            r#"{"req_id":"2","op":"subscribe","args":[]}"#
        );
    }

    /// A frame with a container after its payload (no venue sends one) makes [`decode_frame`] presume the payload
    /// wrong; [`decode_data`] and [`validate_data`] look again before refusing, and a damaged one stays refused.
    #[test]
    fn a_payload_presumed_wrong_is_looked_at_again() {
        let binance = r#"{"e":"aggTrade","E":1633998523963,"p":"0.35280000"}"#;
        let bybit = r#"[{"T":1633998523963,"p":"0.35280000"}]"#;
        let cases = [
            (
                Venue::BinanceSpot,
                binance,
                format!(r#"{{"stream":"a@aggTrade","data":{binance},"x":{{"y":[1]}}}}"#),
                None,
            ),
            (
                Venue::BybitLinear,
                bybit,
                format!(r#"{{"topic":"t","data":{bybit},"x":[],"ts":5}}"#),
                Some(5),
            ),
        ];
        for (venue, trade, text, ts) in cases {
            let Ok(Frame::Data { payload, ts_ms, .. }) = decode_frame(venue, &text) else {
                panic!("{text}: not a data frame");
            };
            assert_ne!(payload, trade, "{text}: presumed");
            assert_eq!(ts_ms, ts);
            let sample = decode_data(venue, ChannelKind::Trade, &text, payload, ts_ms);
            assert_eq!(sample.unwrap().price, Some(dec("0.35280000")), "{text}");
            assert_eq!(validate_data(venue, &text, payload), Ok(()), "{text}");
            // Damaged after the payload: the second look finds it.
            let damaged = text.replace("[1]", "[1 2]").replace("[]", "[,]");
            let Ok(Frame::Data { payload, ts_ms, .. }) = decode_frame(venue, &damaged) else {
                panic!("{damaged}: not a data frame");
            };
            assert!(matches!(
                decode_data(venue, ChannelKind::Trade, &damaged, payload, ts_ms),
                Err(DecodeError::Malformed(_))
            ));
            assert!(validate_data(venue, &damaged, payload).is_err());
        }
    }

    #[test]
    fn mid_is_checked() {
        assert_eq!(mid(dec("1.5"), dec("2.5")), Ok(dec("2")));
        assert_eq!(
            mid(Decimal::MAX, Decimal::MAX),
            Err(DecodeError::BadNumber("bid + ask"))
        );
        let huge = Decimal::MAX.to_string();
        let payload = format!(r#"{{"b":"{huge}","a":"{huge}"}}"#);
        assert_eq!(
            decode_sample(Venue::BinanceSpot, ChannelKind::BookTop, &payload, None),
            Err(DecodeError::BadNumber("bid + ask"))
        );
    }

    #[test]
    fn first_and_last_elements() {
        let first = |text| {
            serde_json::from_str::<BookSide<'_>>(text).map(|side| side.0.map(|(price, _)| price))
        };
        assert_eq!(
            first(r#"[["1","2"],["3","4"],{"x":[1]}]"#).unwrap(),
            Some("1")
        );
        assert_eq!(first("[]").unwrap(), None);
        assert!(first(r#"[["1"]]"#).is_err(), "a level without a quantity");
        assert!(first(r#"{"1":"2"}"#).is_err(), "not an array");

        let last = |text| serde_json::from_str::<Last<u8>>(text).map(|last| last.0);
        assert_eq!(last("[1,2,3]").unwrap(), Some(3));
        assert_eq!(last("[]").unwrap(), None);
        assert!(last(r#"[1,"x"]"#).is_err());
    }

    /// Every truncation and every single-byte corruption of a few real frames: the scanner accepts
    /// exactly the objects serde_json accepts, and no decoder panics on what gets through. (Payloads
    /// that are not JSON stop in serde_json, before any code of ours.)
    #[test]
    fn damaged_frames_are_handled() {
        use ChannelKind::*;
        let kinds = [
            BookTop, BookLevels, BookDeltas, Trade, Ticker, Kline, MarkPrice,
        ];
        // On one line as on the wire (keys sorted, which no decoder minds), but for the pong, which
        // keeps the docs' whitespace.
        let compact = |text: &str| {
            serde_json::from_str::<serde_json::Value>(text)
                .unwrap()
                .to_string()
        };
        let frames = [
            format!(
                r#"{{"stream":"bnbbtc@depth5","data":{}}}"#,
                compact(fixture!("binance-spot/depth-partial.json"))
            ),
            fixture!("binance-spot/combined-kline-real.json").to_owned(),
            fixture!("binance-spot/error-invalid-stream.json").to_owned(),
            compact(fixture!("bybit/orderbook50-delta-linear.json")),
            compact(fixture!("bybit/publicTrade-linear.json")),
            fixture!("bybit/pong-linear.json").to_owned(),
        ];
        let mut damaged = Vec::new();
        for frame in &frames {
            damaged.extend(
                (0..frame.len())
                    .filter_map(|end| frame.get(..end))
                    .map(str::to_owned),
            );
            damaged.extend(scan::one_byte_damages(frame));
        }
        for text in &damaged {
            let is_object = text
                .trim_start_matches([' ', '\t', '\n', '\r'])
                .starts_with('{');
            let serde_accepts = is_object && serde_json::from_str::<IgnoredAny>(text).is_ok();
            assert_eq!(scan::validate(text).is_ok(), serde_accepts, "{text}");
            for venue in [Venue::BinanceSpot, Venue::BybitLinear] {
                match decode_frame(venue, text) {
                    // The payload is not walked: whatever reads it must refuse a damaged one.
                    Ok(Frame::Data { payload, ts_ms, .. }) => {
                        // The rest was validated: a damaged data frame is damaged in its payload.
                        assert_eq!(
                            validate_data(venue, text, payload).is_ok(),
                            serde_accepts,
                            "{text}"
                        );
                        for (market, kind) in
                            Venue::ALL.into_iter().flat_map(|v| kinds.map(|k| (v, k)))
                        {
                            let sample = decode_data(market, kind, text, payload, ts_ms);
                            assert!(
                                serde_accepts || sample.is_err(),
                                "{market} {kind:?} decoded a frame that is no JSON: {text}"
                            );
                        }
                    }
                    Err(DecodeError::Malformed(_)) => {}
                    other => assert!(serde_accepts, "{venue} {text}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn error_messages_read_well() {
        let cases = [
            (
                DecodeError::UnexpectedShape("no topic"),
                "unexpected message shape: no topic",
            ),
            (
                DecodeError::BadNumber("p"),
                "`p` is not a decimal number in range",
            ),
            (
                decode_frame(Venue::BinanceSpot, "{").unwrap_err(),
                "malformed message: expected a key at byte 1",
            ),
            (
                decode_sample(Venue::BinanceSpot, ChannelKind::Trade, "{", None).unwrap_err(),
                "malformed message: EOF while parsing an object at line 1 column 1",
            ),
        ];
        for (err, text) in cases {
            assert_eq!(err.to_string(), text);
        }
    }
}
