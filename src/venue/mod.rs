//! Venue wire protocols, sans-IO: endpoints and routes, channel names, subscribe and ping text,
//! per-venue limits and heartbeat policy as data, and decoding of frames and payloads.
//!
//! Owns no socket, task or clock: the feed drives connections and calls these pure functions.
//! Everything a venue puts on the wire lives in its own file (`binance.rs`, `bybit.rs`); this file
//! only dispatches by [`Venue`] and holds the few JSON helpers both share. Envelopes are split by
//! `scan.rs` so that decoding a data frame allocates nothing.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::marker::PhantomData;
use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;
use serde::de::{Deserialize, Deserializer, IgnoredAny, SeqAccess, Visitor};

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
mod binance_rest;
mod bybit;
mod bybit_rest;
pub mod rest;
mod scan;

/// Our id for a control request; the venue echoes it in its reply.
pub type RequestId = u64;

/// One decoded WebSocket text frame, borrowing from the frame's text.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame<'a> {
    /// A market-data message: `key` is the wire stream/topic name exactly as sent by the venue
    /// (Binance combined-stream "stream" field, e.g. "btcusdt@bookTicker"; Bybit "topic", e.g.
    /// "orderbook.1.BTCUSDT"), `payload` the raw JSON text of the data part (Binance "data", Bybit
    /// "data"), `ts_ms` Bybit's top-level "ts" (None on Binance).
    Data {
        /// Stream or topic name, the key the feed maps to a subscription slot.
        key: &'a str,
        /// Raw JSON of the data part, for [`decode_sample`].
        payload: &'a str,
        /// Bybit's envelope `ts` in ms since the Unix epoch.
        ts_ms: Option<i64>,
    },
    /// A subscribe/unsubscribe request of ours was accepted (Binance `{"result":null,"id":N}`;
    /// Bybit `success:true`, op subscribe/unsubscribe).
    Ack {
        /// The id we sent with the request; None when the venue did not echo a numeric one (Bybit's
        /// documented linear ack shows `"req_id":""`), and the oldest open request is meant.
        id: Option<RequestId>,
    },
    /// A request was refused (Binance `{"error":{"code":..,"msg":..},"id":N}` and the docs' flat
    /// `{"code","msg","id"}` form; Bybit `success:false`). `id` is None when absent or not numeric.
    Rejected {
        /// The id we sent with the request, when the venue echoed it as a number.
        id: Option<RequestId>,
        /// The venue's own message.
        reason: Cow<'a, str>,
    },
    /// Bybit's JSON pong (spot, linear/inverse shapes, and the `{"op":"pong"}` option shape).
    Pong,
    /// Binance serverShutdown event, raw `{"e":"serverShutdown",...}` or combined
    /// `{"stream":"!serverShutdown","data":{...}}`.
    ServerShutdown,
    /// A well-formed control frame we don't act on (e.g. LIST_SUBSCRIPTIONS result, Bybit ack
    /// without a numeric `req_id`).
    Other,
}

/// Why a frame or payload could not be decoded. The feed counts these; none is fatal to a
/// connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, or JSON whose fields have the wrong types for the expected shape.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// Valid JSON, but none of the venue's known shapes.
    #[error("unexpected message shape: {0}")]
    UnexpectedShape(&'static str),
    /// A price field that is not a decimal number, or a mid price out of range.
    #[error("`{0}` is not a decimal number in range")]
    BadNumber(&'static str),
}

impl From<serde_json::Error> for DecodeError {
    fn from(err: serde_json::Error) -> Self {
        DecodeError::Malformed(err.to_string())
    }
}

impl From<scan::ScanError> for DecodeError {
    fn from(err: scan::ScanError) -> Self {
        DecodeError::Malformed(err.to_string())
    }
}

/// How a connection proves it is alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeat {
    /// The server sends WebSocket pings; we answer with a pong echoing the payload. No ping within
    /// `timeout` => heartbeat dead.
    ServerPing {
        /// Longest silence from the server's pinger before the connection counts as dead.
        timeout: Duration,
    },
    /// We send the venue's JSON ping every `interval` and expect its pong within `timeout`.
    ClientPing {
        /// Time between our pings.
        interval: Duration,
        /// Deadline for the pong after each ping.
        timeout: Duration,
    },
}

/// Per-venue limits and heartbeat policy as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Most streams (topics) one connection may carry.
    pub max_streams_per_connection: usize,
    /// Most streams named in one subscribe or unsubscribe request.
    pub max_args_per_request: usize,
    /// Minimum spacing of our control messages on one connection.
    pub request_interval: Duration,
    /// Who pings whom, and the deadlines.
    pub heartbeat: Heartbeat,
    /// Age at which to replace a connection before the venue cuts it; `None` when it does not.
    pub max_connection_age: Option<Duration>,
    /// Connection attempts per exchange that may be made back to back (token bucket size).
    pub connect_burst: u32,
    /// Time to earn back one connection attempt.
    pub connect_refill: Duration,
}

/// The venue's limits and heartbeat policy.
pub fn policy(venue: Venue) -> Policy {
    match venue {
        Venue::BinanceSpot => binance::SPOT_POLICY,
        Venue::BinanceUsdm => binance::USDM_POLICY,
        Venue::BybitSpot => bybit::SPOT_POLICY,
        Venue::BybitLinear | Venue::BybitInverse => bybit::DERIVATIVES_POLICY,
    }
}

/// The venue's documented WebSocket base URL, used unless configuration overrides it.
pub fn default_url(venue: Venue) -> &'static str {
    match venue {
        Venue::BinanceSpot => binance::SPOT_URL,
        Venue::BinanceUsdm => binance::USDM_URL,
        Venue::BybitSpot => bybit::SPOT_URL,
        Venue::BybitLinear => bybit::LINEAR_URL,
        Venue::BybitInverse => bybit::INVERSE_URL,
    }
}

/// A configured base URL whose path the exporter would extend wrongly: why, and the path it should have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathFix {
    /// One clause saying what is wrong, e.g. "the exporter appends /stream itself".
    pub why: String,
    /// The path the base URL should have instead (possibly empty).
    pub path: String,
}

/// Checks the path of a WebSocket base URL for `venue`: Binance's routes (`/stream`, USD-M `/public/stream`
/// and `/market/stream`) are appended by the feed, so a base ending in one doubles it; a Bybit URL names its
/// market (`/v5/public/linear`), so one naming another market, or stopping short of the market, is wrong.
/// Paths of proxies that follow neither pattern (the root included) are left alone.
pub fn ws_path_fix(venue: Venue, path: &str) -> Option<PathFix> {
    match venue.exchange() {
        Exchange::Binance => strip_suffixes(path, &["/stream", "/ws", "/public", "/market"]).map(
            |(kept, removed)| PathFix {
                why: format!("the exporter appends the route ({removed} here) itself"),
                path: kept.to_owned(),
            },
        ),
        Exchange::Bybit => {
            let own = venue.market().as_str();
            let expected = format!("/v5/public/{own}");
            let trimmed = path.trim_end_matches('/');
            let (rest, last) = trimmed.rsplit_once('/').unwrap_or(("", trimmed));
            if matches!(trimmed, "/v5" | "/v5/public") {
                return Some(PathFix {
                    why: format!("a Bybit stream URL ends in its market's path, {expected}"),
                    path: expected,
                });
            }
            let markets = ["spot", "linear", "inverse", "option"];
            (markets.contains(&last) && last != own).then(|| PathFix {
                why: format!("the path is bybit/{last}'s stream, not {venue}'s"),
                path: format!("{rest}/{own}"),
            })
        }
    }
}

/// Checks the path of a REST base URL for `venue`: the exporter appends `/api/v3/...`, `/fapi/v1/...` or
/// `/v5/market/...` itself.
pub fn rest_path_fix(venue: Venue, path: &str) -> Option<PathFix> {
    let suffixes: &[&str] = match venue {
        Venue::BinanceSpot => &["/api/v3", "/api"],
        Venue::BinanceUsdm => &["/fapi/v1", "/fapi"],
        Venue::BybitSpot | Venue::BybitLinear | Venue::BybitInverse => &["/v5/market", "/v5"],
    };
    strip_suffixes(path, suffixes).map(|(kept, removed)| PathFix {
        why: format!("the exporter appends {removed}/... itself"),
        path: kept.to_owned(),
    })
}

/// Removes every trailing occurrence of the `suffixes` (first match wins each round): the path kept and
/// the part removed. None when nothing matched.
fn strip_suffixes<'a>(path: &'a str, suffixes: &[&str]) -> Option<(&'a str, &'a str)> {
    let path = path.trim_end_matches('/');
    let mut kept = path;
    while let Some(suffix) = suffixes.iter().find(|s| kept.ends_with(*s)) {
        kept = &kept[..kept.len() - suffix.len()];
    }
    (kept.len() < path.len()).then(|| (kept, &path[kept.len()..]))
}

/// The channels watched when configuration names none for the venue.
pub fn default_channels(venue: Venue) -> &'static [&'static str] {
    match venue {
        Venue::BinanceSpot => binance::SPOT_CHANNELS,
        Venue::BinanceUsdm => binance::USDM_CHANNELS,
        Venue::BybitSpot | Venue::BybitLinear | Venue::BybitInverse => bybit::CHANNELS,
    }
}

/// Validates a configured channel name for a venue. Err is a human reason, e.g.
/// `unknown channel "foo" for binance/spot (supported: bookTicker, aggTrade, ...)`.
pub fn parse_channel(venue: Venue, name: &str) -> Result<ChannelKind, String> {
    match venue.exchange() {
        Exchange::Binance => binance::parse_channel(venue, name),
        Exchange::Bybit => bybit::parse_channel(venue, name),
    }
}

/// How often the venue pushes a channel whatever the market does, for the channels it documents as pushed on a
/// schedule; `None` for event-driven channels, whose silence may just be a quiet market. Only names
/// [`parse_channel`] accepts are meaningful here.
///
/// - Binance spot partial depth `depth<5|10|20>` and `@1000ms`: 1 s, `@100ms`: 100 ms ("pushed every second").
/// - Binance USD-M `markPrice`: 3 s, `markPrice@1s`: 1 s.
/// - Bybit `orderbook.1` (every market): 3 s, the snapshot re-sent when the book has not changed for 3 s.
pub fn expected_interval(venue: Venue, name: &str) -> Option<Duration> {
    match venue.exchange() {
        Exchange::Binance => binance::expected_interval(venue, name),
        Exchange::Bybit => bybit::expected_interval(name),
    }
}

/// A configured channel of a venue: its payload kind from [`parse_channel`] and its cadence from
/// [`expected_interval`].
pub fn channel(venue: Venue, name: &str) -> Result<Channel, String> {
    Ok(Channel {
        name: name.to_owned(),
        kind: parse_channel(venue, name)?,
        interval: expected_interval(venue, name),
    })
}

/// The URL path a connection carrying this channel must use, appended to the configured base URL
/// (base with trailing '/' trimmed): BinanceSpot "/stream"; BinanceUsdm "/public/stream" for
/// bookTicker and depth kinds, "/market/stream" for everything else; Bybit "" (base used as is).
pub fn route(venue: Venue, kind: ChannelKind) -> &'static str {
    match venue.exchange() {
        Exchange::Binance => binance::route(venue, kind),
        Exchange::Bybit => bybit::ROUTE,
    }
}

/// The wire key of a subscription: Binance "{lowercase symbol}@{channel}" e.g.
/// "btcusdt@markPrice@1s"; Bybit "{channel}.{SYMBOL}" e.g. "orderbook.1.BTCUSDT".
pub fn wire_key(venue: Venue, channel: &str, symbol: &str) -> String {
    match venue.exchange() {
        Exchange::Binance => binance::wire_key(channel, symbol),
        Exchange::Bybit => bybit::wire_key(channel, symbol),
    }
}

/// The text of a request subscribing to `keys` (wire keys from [`wire_key`]).
pub fn subscribe_message(venue: Venue, keys: &[&str], id: RequestId) -> String {
    match venue.exchange() {
        Exchange::Binance => binance::request("SUBSCRIBE", keys, id),
        Exchange::Bybit => bybit::request("subscribe", keys, id),
    }
}

/// The text of a request unsubscribing from `keys`.
pub fn unsubscribe_message(venue: Venue, keys: &[&str], id: RequestId) -> String {
    match venue.exchange() {
        Exchange::Binance => binance::request("UNSUBSCRIBE", keys, id),
        Exchange::Bybit => bybit::request("unsubscribe", keys, id),
    }
}

/// The venue's JSON ping, for [`Heartbeat::ClientPing`] venues; `None` where the server pings.
pub fn ping_message(venue: Venue, id: RequestId) -> Option<String> {
    match venue.exchange() {
        Exchange::Binance => None,
        Exchange::Bybit => Some(bybit::ping(id)),
    }
}

/// Classifies one text frame and, for market data, splits it into key and payload without copying.
pub fn decode_frame(venue: Venue, text: &str) -> Result<Frame<'_>, DecodeError> {
    match venue.exchange() {
        Exchange::Binance => binance::decode_frame(text),
        Exchange::Bybit => bybit::decode_frame(text),
    }
}

/// Decodes the payload of a Data frame for its channel kind. `ts_ms` is the envelope's ts (Bybit)
/// used as event time where the kind says so.
pub fn decode_sample(
    kind: ChannelKind,
    payload: &str,
    ts_ms: Option<i64>,
) -> Result<Sample, DecodeError> {
    match kind {
        ChannelKind::BinanceBookTicker => binance::decode_book_ticker(payload),
        ChannelKind::BinanceTrade => binance::decode_trade(payload),
        ChannelKind::BinanceMarkPrice => binance::decode_mark_price(payload),
        ChannelKind::BinanceKline => binance::decode_kline(payload),
        ChannelKind::BinanceTicker => binance::decode_ticker(payload),
        ChannelKind::BinanceSpotPartialDepth => binance::decode_spot_partial_depth(payload),
        ChannelKind::BinanceDepthUpdate => binance::decode_depth_update(payload),
        ChannelKind::BybitOrderbook => bybit::decode_orderbook(payload, ts_ms),
        ChannelKind::BybitOrderbookLevels => bybit::decode_orderbook_levels(payload, ts_ms),
        ChannelKind::BybitPublicTrade => bybit::decode_public_trade(payload),
        ChannelKind::BybitTickers => bybit::decode_tickers(payload, ts_ms),
        ChannelKind::BybitKline => bybit::decode_kline(payload, ts_ms),
    }
}

/// Parses a request id the venue echoed back; ids of ours are plain unsigned integers.
fn request_id(text: &str) -> Option<RequestId> {
    text.parse().ok()
}

/// Parses a decimal price field; `field` names it in the error.
fn decimal(field: &'static str, text: &str) -> Result<Decimal, DecodeError> {
    Decimal::from_str(text).map_err(|_| DecodeError::BadNumber(field))
}

/// `(bid + ask) / 2`, checked because both come from the peer and `Decimal`'s `+` panics on
/// overflow.
fn mid(bid: Decimal, ask: Decimal) -> Result<Decimal, DecodeError> {
    bid.checked_add(ask)
        .map(|sum| sum / Decimal::TWO)
        .ok_or(DecodeError::BadNumber("bid + ask"))
}

/// Mid of the first level of each side; `None` when either side is empty.
fn book_mid(bids: BookSide<'_>, asks: BookSide<'_>) -> Result<Option<Decimal>, DecodeError> {
    match (bids.0, asks.0) {
        (Some((bid, _)), Some((ask, _))) => {
            mid(decimal("bid", bid)?, decimal("ask", ask)?).map(Some)
        }
        _ => Ok(None),
    }
}

/// One book level, `["price", "qty"]` on both venues; only the price is read.
type Level<'a> = (&'a str, IgnoredAny);

/// One side of a book, best level first; only that level is kept.
type BookSide<'a> = First<Level<'a>>;

/// The first element of a JSON array; the rest are skipped without being built, so no `Vec`.
struct First<T>(Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for First<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FirstVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for FirstVisitor<T> {
            type Value = First<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<First<T>, A::Error> {
                let first = seq.next_element()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(First(first))
            }
        }

        deserializer.deserialize_seq(FirstVisitor(PhantomData))
    }
}

/// The last element of a JSON array; every element is decoded, but only one is kept.
struct Last<T>(Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Last<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LastVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for LastVisitor<T> {
            type Value = Last<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Last<T>, A::Error> {
                let mut last = None;
                while let Some(item) = seq.next_element()? {
                    last = Some(item);
                }
                Ok(Last(last))
            }
        }

        deserializer.deserialize_seq(LastVisitor(PhantomData))
    }
}

/// A JSON string that borrows from the frame unless it contains escapes (venue error messages may).
#[derive(serde::Deserialize)]
#[serde(transparent)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// Decodes a member's raw value from [`scan::pick`]. Absent and `null` are both `None`, as for an
/// `Option` field of a derived `Deserialize`.
fn field<'a, T: Deserialize<'a>>(raw: Option<&'a str>) -> Result<Option<T>, DecodeError> {
    Ok(raw
        .map(serde_json::from_str::<Option<T>>)
        .transpose()?
        .flatten())
}

/// A raw member value that is present and not `null`.
fn non_null(raw: Option<&str>) -> Option<&str> {
    raw.filter(|raw| *raw != "null")
}

/// Displays string slices as a JSON array of strings; `format!` over it cannot fail, unlike
/// `serde_json::to_string`.
struct JsonStrings<'a>(&'a [&'a str]);

impl fmt::Display for JsonStrings<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('[')?;
        for (i, item) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_char(',')?;
            }
            f.write_char('"')?;
            for c in item.chars() {
                match c {
                    '"' => f.write_str("\\\"")?,
                    '\\' => f.write_str("\\\\")?,
                    c if c < ' ' => write!(f, "\\u{:04x}", u32::from(c))?,
                    c => f.write_char(c)?,
                }
            }
            f.write_char('"')?;
        }
        f.write_char(']')
    }
}

/// The decoder tests' one comparison: `Some(outcome)` must be exactly what came out; `None` stands for any
/// `Malformed` error, whose wording is serde_json's.
#[cfg(test)]
pub(crate) fn assert_outcome<T: fmt::Debug + PartialEq>(
    got: Result<T, DecodeError>,
    expected: Option<Result<T, DecodeError>>,
    case: &str,
) {
    match expected {
        Some(expected) => assert_eq!(got, expected, "{case}"),
        None => assert!(
            matches!(got, Err(DecodeError::Malformed(_))),
            "{case}: {got:?}"
        ),
    }
}

#[cfg(test)]
mod tests {
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
        let bybit = [
            ("orderbook.1", BybitOrderbook, ""),
            ("tickers", BybitTickers, ""),
        ];
        let cases = [
            (
                Venue::BinanceSpot,
                [
                    ("depth5", BinanceSpotPartialDepth, "/stream"),
                    ("aggTrade", BinanceTrade, "/stream"),
                ],
            ),
            (
                Venue::BinanceUsdm,
                [
                    ("markPrice@1s", BinanceMarkPrice, "/market/stream"),
                    ("bookTicker", BinanceBookTicker, "/public/stream"),
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
                    name: name.to_owned(),
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
            decode_sample(ChannelKind::BinanceBookTicker, &payload, None),
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
            BinanceBookTicker,
            BinanceTrade,
            BinanceMarkPrice,
            BinanceKline,
            BinanceTicker,
            BinanceSpotPartialDepth,
            BinanceDepthUpdate,
            BybitOrderbook,
            BybitOrderbookLevels,
            BybitPublicTrade,
            BybitTickers,
            BybitKline,
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
            for at in 0..frame.len() {
                let mut bytes = frame.as_bytes().to_vec();
                bytes.remove(at);
                damaged.extend(String::from_utf8(bytes).ok());
                for &byte in b"\"\\{}[]:,-.0e \x01" {
                    let mut bytes = frame.as_bytes().to_vec();
                    bytes[at] = byte;
                    damaged.extend(String::from_utf8(bytes).ok());
                }
            }
        }
        for text in &damaged {
            let is_object = text
                .trim_start_matches([' ', '\t', '\n', '\r'])
                .starts_with('{');
            let serde_accepts = is_object && serde_json::from_str::<IgnoredAny>(text).is_ok();
            assert_eq!(scan::validate(text).is_ok(), serde_accepts, "{text}");
            for venue in [Venue::BinanceSpot, Venue::BybitLinear] {
                match decode_frame(venue, text) {
                    Ok(Frame::Data { payload, ts_ms, .. }) => {
                        for kind in kinds {
                            let _ = decode_sample(kind, payload, ts_ms);
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
                decode_sample(ChannelKind::BinanceTrade, "{", None).unwrap_err(),
                "malformed message: EOF while parsing an object at line 1 column 1",
            ),
        ];
        for (err, text) in cases {
            assert_eq!(err.to_string(), text);
        }
    }
}
