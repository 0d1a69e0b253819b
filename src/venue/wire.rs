//! The wire vocabulary every exchange shares: request ids, decoded frames and their errors, heartbeat and limit
//! policies as data, URL path fixes, and the JSON helpers the decoders use (`First`, `Last`, borrowed `Text`,
//! checked decimals and book mids). A leaf: it knows no exchange.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::marker::PhantomData;
use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;
use serde::de::{Deserialize, Deserializer, IgnoredAny, SeqAccess, Visitor};

use super::scan;

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
        /// Raw text of the data part, for [`decode_data`](super::decode_data): located, not yet validated (the
        /// decoder parses it, which validates it; [`validate_data`](super::validate_data) for a frame nobody
        /// decodes).
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

/// A configured base URL whose path the exporter would extend wrongly: why, and the path it should have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathFix {
    /// One clause saying what is wrong, e.g. "the exporter appends /stream itself".
    pub why: String,
    /// The path the base URL should have instead (possibly empty).
    pub path: String,
}

/// Removes every trailing occurrence of the `suffixes` (first match wins each round): the path kept and
/// the part removed. None when nothing matched.
pub(super) fn strip_suffixes<'a>(path: &'a str, suffixes: &[&str]) -> Option<(&'a str, &'a str)> {
    let path = path.trim_end_matches('/');
    let mut kept = path;
    while let Some(suffix) = suffixes.iter().find(|s| kept.ends_with(*s)) {
        kept = &kept[..kept.len() - suffix.len()];
    }
    (kept.len() < path.len()).then(|| (kept, &path[kept.len()..]))
}

/// Parses a request id the venue echoed back; ids of ours are plain unsigned integers.
pub(super) fn request_id(text: &str) -> Option<RequestId> {
    text.parse().ok()
}

/// Parses a decimal price field; `field` names it in the error.
#[inline]
pub(super) fn decimal(field: &'static str, text: &str) -> Result<Decimal, DecodeError> {
    match plain_decimal(text) {
        Some(value) => Ok(value),
        None => Decimal::from_str(text).map_err(|_| DecodeError::BadNumber(field)),
    }
}

/// A price as venues write them, digits with at most one point between digits and at most 18 in all: the
/// `Decimal` that `from_str` makes of that text (every digit kept, trailing zeros too), in one pass (11 to 14 ns
/// against `from_str`'s 17 on this machine's prices). `None` for any other text, which `from_str` reads.
#[inline]
fn plain_decimal(text: &str) -> Option<Decimal> {
    let bytes = text.as_bytes();
    // 18 digits always fit an i64.
    if bytes.is_empty() || bytes.len() > 18 {
        return None;
    }
    let mut mantissa: i64 = 0;
    let mut point = None;
    for (i, &byte) in bytes.iter().enumerate() {
        match byte {
            b'0'..=b'9' => mantissa = mantissa * 10 + i64::from(byte - b'0'),
            b'.' if point.is_none() && i > 0 && i + 1 < bytes.len() => point = Some(i),
            _ => return None,
        }
    }
    // At most 16 digits after the point: within `Decimal`'s 28.
    let scale = point.map_or(0, |point| bytes.len() - point - 1) as u32;
    Some(Decimal::new(mantissa, scale))
}

/// `(bid + ask) / 2`, checked because both come from the peer and `Decimal`'s `+` panics on
/// overflow.
#[inline]
pub(super) fn mid(bid: Decimal, ask: Decimal) -> Result<Decimal, DecodeError> {
    bid.checked_add(ask)
        .map(half)
        .ok_or(DecodeError::BadNumber("bid + ask"))
}

/// `sum / 2` exactly as `Decimal`'s division writes it, without the division for the sums of prices venues send
/// (not zero, a mantissa below 2^56, a scale below 15): an even mantissa is halved at the same scale; an odd one is
/// multiplied by 50 at two more (`3 / 2` is `1.50` to `Decimal`).
#[inline]
fn half(sum: Decimal) -> Decimal {
    let (mantissa, scale) = (sum.mantissa(), sum.scale());
    // Zero divides to a zero of scale 0.
    if mantissa == 0 || mantissa.unsigned_abs() >= 1 << 56 || scale >= 15 {
        return sum / Decimal::TWO;
    }
    // Both fit an i64: |mantissa| * 50 < 2^62.
    let mantissa = mantissa as i64;
    if mantissa % 2 == 0 {
        Decimal::new(mantissa / 2, scale)
    } else {
        Decimal::new(mantissa * 50, scale + 2)
    }
}

/// Mid of the first level of each side; `None` when either side is empty.
pub(super) fn book_mid(
    bids: BookSide<'_>,
    asks: BookSide<'_>,
) -> Result<Option<Decimal>, DecodeError> {
    match (bids.0, asks.0) {
        (Some((bid, _)), Some((ask, _))) => {
            mid(decimal("bid", bid)?, decimal("ask", ask)?).map(Some)
        }
        _ => Ok(None),
    }
}

/// One book level, `["price", "qty"]` on both venues; only the price is read.
pub(super) type Level<'a> = (&'a str, IgnoredAny);

/// One side of a book, best level first; only that level is kept.
pub(super) type BookSide<'a> = First<Level<'a>>;

/// The first element of a JSON array; the rest are skipped without being built, so no `Vec`.
pub(super) struct First<T>(pub(super) Option<T>);

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
pub(super) struct Last<T>(pub(super) Option<T>);

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
pub(super) struct Text<'a>(#[serde(borrow)] pub(super) Cow<'a, str>);

/// Decodes a member's raw value from [`scan::pick`]. Absent and `null` are both `None`, as for an
/// `Option` field of a derived `Deserialize`.
pub(super) fn field<'a, T: Deserialize<'a>>(
    raw: Option<&'a str>,
) -> Result<Option<T>, DecodeError> {
    Ok(raw
        .map(serde_json::from_str::<Option<T>>)
        .transpose()?
        .flatten())
}

/// [`field`] for a string, without serde when the raw value (which the scanner validated) is a string without
/// escapes, as stream names and topics are: the same result, a quarter of the work on the ingest path.
pub(super) fn str_field(raw: Option<&str>) -> Result<Option<&str>, DecodeError> {
    let plain = raw
        .and_then(|raw| raw.strip_prefix('"'))
        .and_then(|raw| raw.strip_suffix('"'))
        .filter(|inner| !inner.contains('\\'));
    match plain {
        Some(inner) => Ok(Some(inner)),
        None => field(raw),
    }
}

/// [`field`] for an integer, without serde when the raw value is a plain one (event times, `ts`).
pub(super) fn i64_field(raw: Option<&str>) -> Result<Option<i64>, DecodeError> {
    // serde_json reads `-0` as a float, which is no i64: that one goes the slow way, to its error.
    match raw
        .filter(|raw| !raw.starts_with("-0"))
        .and_then(|raw| raw.parse().ok())
    {
        Some(value) => Ok(Some(value)),
        None => field(raw),
    }
}

/// A raw member value that is present and not `null`.
pub(super) fn non_null(raw: Option<&str>) -> Option<&str> {
    raw.filter(|raw| *raw != "null")
}

/// Displays string slices as a JSON array of strings; `format!` over it cannot fail, unlike
/// `serde_json::to_string`.
pub(super) struct JsonStrings<'a>(pub(super) &'a [&'a str]);

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

    /// The fast decimal is `from_str`'s, to the bit (value and scale), wherever it answers; and it answers for
    /// the prices venues write.
    #[test]
    fn plain_decimals_are_from_str_decimals() {
        let mut rng = fastrand::Rng::with_seed(14);
        let alphabet = b"0123456789.-+e";
        let mut answered = 0;
        for n in 0..200_000 {
            let len = 1 + n % 21;
            let text: String = (0..len)
                .map(|_| {
                    // Mostly digits, so that many texts are prices.
                    let i = if rng.u8(..4) == 0 {
                        rng.usize(..alphabet.len())
                    } else {
                        rng.usize(..10)
                    };
                    char::from(alphabet[i])
                })
                .collect();
            let fast = plain_decimal(&text);
            if fast.is_some() {
                answered += 1;
            }
            if let Some(fast) = fast {
                let slow = Decimal::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
                assert_eq!(fast.serialize(), slow.serialize(), "{text}");
            }
        }
        assert!(answered > 50_000, "{answered}");
        for price in [
            "0.35280000",
            "16578.50",
            "0",
            "0.0",
            "007",
            "112.890",
            "999999999999999999",
        ] {
            assert!(plain_decimal(price).is_some(), "{price}");
        }
    }

    /// Halving a sum is `Decimal`'s division by two, to the bit.
    #[test]
    fn half_is_division_by_two() {
        let mut rng = fastrand::Rng::with_seed(2);
        for _ in 0..200_000 {
            let mantissa = match rng.u8(..3) {
                0 => rng.i64(-1000..1000),
                1 => rng.i64(..),
                _ => rng.i64(..1 << 61),
            };
            let sum = Decimal::new(mantissa, rng.u32(..=20));
            assert_eq!(
                half(sum).serialize(),
                (sum / Decimal::TWO).serialize(),
                "{sum}"
            );
        }
    }

    /// The fast paths answer exactly what serde answers, errors included, for every kind of raw value the
    /// scanner can hand them.
    #[test]
    fn fast_fields_agree_with_serde() {
        let raws = [
            r#""btcusdt@aggTrade""#,
            r#""""#,
            r#""a\"b""#,
            r#""\u00e9""#,
            "null",
            "1",
            "-0",
            "1.5",
            "1e3",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775809",
            "true",
            "[]",
            "{}",
        ];
        for raw in raws.map(Some).into_iter().chain([None]) {
            assert_eq!(
                format!("{:?}", str_field(raw)),
                format!("{:?}", field::<&str>(raw)),
                "{raw:?}"
            );
            assert_eq!(
                format!("{:?}", i64_field(raw)),
                format!("{:?}", field::<i64>(raw)),
                "{raw:?}"
            );
        }
    }
}
