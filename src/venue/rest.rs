//! REST companion knowledge, sans-IO: the requests for server time, instrument lists and one
//! symbol's ticker, their weights and our budget per venue, decoding of the replies, and how an
//! HTTP failure must pace us.
//!
//! Owns no client, clock or timer: the poller sends [`RestRequest`]s and hands back status,
//! `Retry-After` and body. Each venue's paths and payloads live in `binance_rest.rs` and
//! `bybit_rest.rs`; this file dispatches by [`Venue`] and holds the types and helpers both share.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;

use super::{Text, binance_rest, bybit_rest, scan};
use crate::model::{Exchange, Venue};

/// The `endpoint` label of REST metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    /// Server time, for the clock offset.
    Time,
    /// The instrument list with trading status.
    Instruments,
    /// One symbol's last price.
    Ticker,
}

impl Endpoint {
    /// Every endpoint, in label order.
    pub const ALL: [Endpoint; 3] = [Endpoint::Time, Endpoint::Instruments, Endpoint::Ticker];

    /// The label value: `time`, `instruments` or `ticker`.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Time => "time",
            Endpoint::Instruments => "instruments",
            Endpoint::Ticker => "ticker",
        }
    }
}

/// One request to make: path with query (appended to the configured REST base URL) and its weight
/// in the venue's budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestRequest {
    /// Which endpoint, for metrics.
    pub endpoint: Endpoint,
    /// Path and query, e.g. `/api/v3/ticker/price?symbol=BTCUSDT`; query values are
    /// percent-encoded.
    pub path: String,
    /// What the venue charges for it, in units of [`RestBudget::weight`].
    pub weight: u32,
}

/// Budget per venue: at most `weight` units per `per` (ours, well below the venue's limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestBudget {
    /// Units that may be spent per window.
    pub weight: u32,
    /// The window.
    pub per: Duration,
}

/// The venue's documented REST base URL, used unless configuration overrides it.
pub fn default_rest_url(venue: Venue) -> &'static str {
    match venue {
        Venue::BinanceSpot => binance_rest::SPOT_URL,
        Venue::BinanceUsdm => binance_rest::USDM_URL,
        Venue::BybitSpot | Venue::BybitLinear | Venue::BybitInverse => bybit_rest::URL,
    }
}

/// Our request budget for the venue.
pub fn budget(venue: Venue) -> RestBudget {
    match venue {
        Venue::BinanceSpot => binance_rest::SPOT_BUDGET,
        Venue::BinanceUsdm => binance_rest::USDM_BUDGET,
        Venue::BybitSpot | Venue::BybitLinear | Venue::BybitInverse => bybit_rest::BUDGET,
    }
}

/// The request for the venue's server time.
pub fn time_request(venue: Venue) -> RestRequest {
    match venue.exchange() {
        Exchange::Binance => binance_rest::time_request(venue),
        Exchange::Bybit => bybit_rest::time_request(),
    }
}

/// Server time in nanoseconds since the epoch (Binance serverTime ms * 1e6; Bybit result.timeNano,
/// falling back to timeSecond * 1e9, then to the top-level time ms * 1e6).
pub fn parse_server_time(venue: Venue, body: &str) -> Result<i64, RestDecodeError> {
    match venue.exchange() {
        Exchange::Binance => binance_rest::parse_server_time(body),
        Exchange::Bybit => bybit_rest::parse_server_time(body),
    }
}

/// The request for one page of the venue's instruments; the first page when `cursor` is None.
///
/// Binance answers in one page and ignores `cursor`: spot `/api/v3/exchangeInfo` (weight 20),
/// USD-M `/fapi/v1/exchangeInfo` (weight 1). Bybit `/v5/market/instruments-info` (weight 1) pages
/// linear and inverse 1000 at a time with `cursor` (from [`InstrumentsPage::next_cursor`],
/// percent-encoded here); spot has no pagination and ignores `cursor`. Bybit lists only `Trading`
/// instruments unless asked for another `status` (see [`listing_statuses`]); Binance lists every
/// status at once and ignores `status`.
pub fn instruments_request(
    venue: Venue,
    status: Option<&str>,
    cursor: Option<&str>,
) -> RestRequest {
    match venue.exchange() {
        Exchange::Binance => binance_rest::instruments_request(venue),
        Exchange::Bybit => bybit_rest::instruments_request(venue, status, cursor),
    }
}

/// The listings to read for a complete picture: `None` is the venue's default listing. Bybit's default
/// holds only `Trading` instruments, so telling a halted symbol from an unknown one takes one listing per
/// other status; Binance's one listing has every status.
pub fn listing_statuses(venue: Venue) -> &'static [Option<&'static str>] {
    match venue {
        // Bybit spot has only `Trading` instruments ("spot has Trading only", docs v5/market/instrument.mdx).
        Venue::BinanceSpot | Venue::BinanceUsdm | Venue::BybitSpot => &[None],
        Venue::BybitLinear | Venue::BybitInverse => {
            &[None, Some("PreLaunch"), Some("Delivering"), Some("Closed")]
        }
    }
}

/// One listed instrument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instrument {
    /// The venue's symbol, e.g. `BTCUSDT`.
    pub symbol: String,
    /// The venue's status word as sent, e.g. `TRADING`, `BREAK` (Binance), `Trading`,
    /// `PreLaunch` (Bybit); empty when the venue sent none.
    pub status: String,
    /// Open for trading: Binance status `TRADING`, Bybit status `Trading`.
    pub trading: bool,
}

/// One page of instruments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstrumentsPage {
    /// The instruments on this page; entries without a symbol are skipped.
    pub instruments: Vec<Instrument>,
    /// Cursor of the next page: Bybit's `nextPageCursor` when not empty; always None on Binance.
    pub next_cursor: Option<String>,
}

/// Decodes an instruments reply. Nothing is filtered out by contract type or status: USD-M lists
/// perpetuals and quarterlies alike, and the caller looks its own symbols up.
pub fn parse_instruments(venue: Venue, body: &str) -> Result<InstrumentsPage, RestDecodeError> {
    match venue.exchange() {
        Exchange::Binance => binance_rest::parse_instruments(body),
        Exchange::Bybit => bybit_rest::parse_instruments(body),
    }
}

/// The request for one symbol's last price: spot `/api/v3/ticker/price` (weight 2), USD-M
/// `/fapi/v2/ticker/price` (weight 1), Bybit `/v5/market/tickers` in the venue's category
/// (weight 1). The symbol is sent as given, percent-encoded.
pub fn ticker_request(venue: Venue, symbol: &str) -> RestRequest {
    match venue.exchange() {
        Exchange::Binance => binance_rest::ticker_request(venue, symbol),
        Exchange::Bybit => bybit_rest::ticker_request(venue, symbol),
    }
}

/// One symbol's last price from REST, to cross-check a WebSocket symbol that went quiet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestTicker {
    /// Last traded price (Binance `price`, Bybit `result.list[0].lastPrice`).
    pub price: Decimal,
    /// Time of the last trade, ms since the epoch, where the reply carries it: USD-M `time`. None on
    /// Binance spot (no time) and Bybit (its envelope `time` is the reply's, not a trade's).
    pub trade_time_ms: Option<i64>,
}

/// Decodes a ticker reply.
pub fn parse_ticker(venue: Venue, body: &str) -> Result<RestTicker, RestDecodeError> {
    match venue.exchange() {
        Exchange::Binance => binance_rest::parse_ticker(body),
        Exchange::Bybit => bybit_rest::parse_ticker(body),
    }
}

/// How an HTTP failure must be treated. None for 2xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestFailure {
    /// Slow down: no request to this venue until `retry_after` has passed (Binance 429 with
    /// Retry-After, default 60 s; Bybit HTTP 403 "access too frequent": 10 minutes per the docs;
    /// Bybit retCode 10006 inside a 200: 60 s).
    RateLimited {
        /// How long to send nothing to the venue.
        retry_after: Duration,
    },
    /// Binance 418: IP banned for `retry_after` (Retry-After header seconds; default 120 s).
    Banned {
        /// How long the ban lasts.
        retry_after: Duration,
    },
    /// Anything else non-2xx (5xx, 404...): count it, retry on the next cycle.
    Failed,
}

/// Classifies an HTTP status; `retry_after` is the raw `Retry-After` header. Only its
/// delay-seconds form is read: an HTTP date, or anything else, gets the default delay.
pub fn classify_status(
    venue: Venue,
    status: u16,
    retry_after: Option<&str>,
) -> Option<RestFailure> {
    if (200..300).contains(&status) {
        return None;
    }
    Some(match venue.exchange() {
        Exchange::Binance => binance_rest::classify_status(status, retry_after),
        Exchange::Bybit => bybit_rest::classify_status(status, retry_after),
    })
}

/// Why a REST body could not be decoded, or the venue's own error inside it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestDecodeError {
    /// Not JSON, or JSON whose fields have the wrong types for the expected shape.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// The venue's error: a Binance `{"code","msg"}` body, or a Bybit `retCode` other than 0.
    #[error("venue error {code}: {message}")]
    Venue {
        /// Binance `code` (negative) or Bybit `retCode` (positive).
        code: i64,
        /// Binance `msg` or Bybit `retMsg`.
        message: String,
    },
    /// Well-formed, but without a value we need, e.g. a ticker reply with an empty list.
    #[error("response has no `{0}`")]
    Missing(&'static str),
    /// A number field that does not parse, or a time that overflows nanoseconds.
    #[error("`{0}` is not a number in range")]
    BadNumber(&'static str),
}

impl RestDecodeError {
    /// The pacing the error asks for: Bybit retCode 10006 is a rate limit sent inside a 200.
    /// None for everything else, which is counted and retried on the next cycle.
    pub fn failure(&self) -> Option<RestFailure> {
        match self {
            // Binance codes are negative, so a code names its venue.
            RestDecodeError::Venue { code, .. } => bybit_rest::ret_code_failure(*code),
            _ => None,
        }
    }

    /// The `code` label value: `malformed`, `venue_<code>` (e.g. `venue_-1121`, `venue_10001`),
    /// `missing` or `bad_number`.
    pub fn code_label(&self) -> String {
        match self {
            RestDecodeError::Malformed(_) => "malformed".to_owned(),
            RestDecodeError::Venue { code, .. } => format!("venue_{code}"),
            RestDecodeError::Missing(_) => "missing".to_owned(),
            RestDecodeError::BadNumber(_) => "bad_number".to_owned(),
        }
    }
}

impl From<serde_json::Error> for RestDecodeError {
    fn from(err: serde_json::Error) -> Self {
        RestDecodeError::Malformed(err.to_string())
    }
}

impl From<scan::ScanError> for RestDecodeError {
    fn from(err: scan::ScanError) -> Self {
        RestDecodeError::Malformed(err.to_string())
    }
}

/// Binance's longest documented ban. A longer `Retry-After` is cut to it, which also keeps the
/// caller's `Instant + retry_after` from overflowing on an absurd header.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3 * 24 * 3600);

/// The delay a `Retry-After` header asks for, in its delay-seconds form; `default` when absent or
/// unreadable.
pub(super) fn retry_after(header: Option<&str>, default: Duration) -> Duration {
    header
        .and_then(|header| header.trim().parse().ok())
        .map_or(default, |seconds| {
            Duration::from_secs(seconds).min(MAX_RETRY_AFTER)
        })
}

/// Parses a decimal price field; `field` names it in the error.
pub(super) fn price(field: &'static str, text: &str) -> Result<Decimal, RestDecodeError> {
    Decimal::from_str(text).map_err(|_| RestDecodeError::BadNumber(field))
}

/// An instrument from its wire fields, or None without a symbol. `trading_status` is the venue's
/// word for "open for trading".
pub(super) fn instrument(
    symbol: Option<Text<'_>>,
    status: Option<Text<'_>>,
    trading_status: &str,
) -> Option<Instrument> {
    let Text(symbol) = symbol?;
    let status = status.map_or(Cow::Borrowed(""), |Text(status)| status);
    Some(Instrument {
        symbol: symbol.into_owned(),
        trading: status == trading_status,
        status: status.into_owned(),
    })
}

/// Displays a query value percent-encoded: everything but RFC 3986's unreserved characters, so
/// that a Bybit cursor's own `%`, `=` and `&` reach the venue as the text it sent us.
pub(super) struct QueryValue<'a>(pub(super) &'a str);

impl fmt::Display for QueryValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &byte in self.0.as_bytes() {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                f.write_char(char::from(byte))?;
            } else {
                write!(f, "%{byte:02X}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bybit_derivatives_need_a_listing_per_status() {
        assert_eq!(listing_statuses(Venue::BinanceSpot), [None]);
        assert_eq!(listing_statuses(Venue::BybitSpot), [None]);
        assert_eq!(
            listing_statuses(Venue::BybitLinear),
            [None, Some("PreLaunch"), Some("Delivering"), Some("Closed")]
        );
    }

    use serde::de::IgnoredAny;

    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn urls_and_budgets() {
        let minute = 60 * SECOND;
        let cases = [
            (Venue::BinanceSpot, "https://api.binance.com", 600, minute),
            (Venue::BinanceUsdm, "https://fapi.binance.com", 240, minute),
            (Venue::BybitSpot, "https://api.bybit.com", 60, 5 * SECOND),
            (Venue::BybitLinear, "https://api.bybit.com", 60, 5 * SECOND),
            (Venue::BybitInverse, "https://api.bybit.com", 60, 5 * SECOND),
        ];
        for (venue, url, weight, per) in cases {
            assert_eq!(default_rest_url(venue), url, "{venue}");
            assert_eq!(budget(venue), RestBudget { weight, per }, "{venue}");
        }
    }

    /// Every request fits its venue's budget many times over, so one cycle never waits a window.
    #[test]
    fn requests_fit_budgets() {
        for venue in Venue::ALL {
            let requests = [
                time_request(venue),
                instruments_request(venue, None, None),
                ticker_request(venue, "BTCUSDT"),
            ];
            assert_eq!(
                requests.each_ref().map(|r| r.endpoint),
                Endpoint::ALL,
                "{venue}"
            );
            for request in requests {
                assert!(request.path.starts_with('/'), "{venue} {request:?}");
                assert!(
                    request.weight * 10 <= budget(venue).weight,
                    "{venue} {request:?}"
                );
            }
        }
    }

    #[test]
    fn endpoint_labels() {
        assert_eq!(
            Endpoint::ALL.map(Endpoint::as_str),
            ["time", "instruments", "ticker"]
        );
    }

    #[test]
    fn query_values_are_percent_encoded() {
        let cases = [
            ("BTCUSDT", "BTCUSDT"),
            ("a-b.c_d~e", "a-b.c_d~e"),
            ("first=1&last=2", "first%3D1%26last%3D2"),
            ("50%", "50%25"),
            (" +/?#", "%20%2B%2F%3F%23"),
            ("币", "%E5%B8%81"),
            ("", ""),
        ];
        for (value, encoded) in cases {
            assert_eq!(QueryValue(value).to_string(), encoded, "{value}");
        }
    }

    #[test]
    fn retry_after_header() {
        let default = 60 * SECOND;
        let cases = [
            (None, default),
            (Some("30"), 30 * SECOND),
            (Some(" 30 "), 30 * SECOND),
            (Some("0"), Duration::ZERO),
            (Some(""), default),
            (Some("-5"), default),
            (Some("1.5"), default),
            (Some("Wed, 21 Oct 2015 07:28:00 GMT"), default),
            (Some("18446744073709551615"), MAX_RETRY_AFTER),
            (Some("18446744073709551616"), default),
        ];
        for (header, expected) in cases {
            assert_eq!(retry_after(header, default), expected, "{header:?}");
        }
    }

    #[test]
    fn errors_read_well_and_label_themselves() {
        let cases = [
            (
                RestDecodeError::Malformed("EOF while parsing a value at line 1 column 0".into()),
                "malformed response: EOF while parsing a value at line 1 column 0",
                "malformed",
                None,
            ),
            (
                RestDecodeError::Venue {
                    code: -1121,
                    message: "Invalid symbol.".into(),
                },
                "venue error -1121: Invalid symbol.",
                "venue_-1121",
                None,
            ),
            (
                RestDecodeError::Venue {
                    code: 10001,
                    message: "params error".into(),
                },
                "venue error 10001: params error",
                "venue_10001",
                None,
            ),
            (
                RestDecodeError::Venue {
                    code: 10006,
                    message: "Too many visits!".into(),
                },
                "venue error 10006: Too many visits!",
                "venue_10006",
                Some(RestFailure::RateLimited {
                    retry_after: 60 * SECOND,
                }),
            ),
            (
                RestDecodeError::Missing("result.list[0]"),
                "response has no `result.list[0]`",
                "missing",
                None,
            ),
            (
                RestDecodeError::BadNumber("price"),
                "`price` is not a number in range",
                "bad_number",
                None,
            ),
        ];
        for (err, text, label, failure) in cases {
            assert_eq!(err.to_string(), text);
            assert_eq!(err.code_label(), label, "{err}");
            assert_eq!(err.failure(), failure, "{err}");
        }
    }

    #[test]
    fn two_hundreds_are_not_failures() {
        for venue in Venue::ALL {
            for status in [200, 204, 299] {
                assert_eq!(classify_status(venue, status, Some("5")), None, "{venue}");
            }
            for status in [100, 199, 300, 301, 400, 404, 500, 502, 503, 504] {
                assert_eq!(
                    classify_status(venue, status, None),
                    Some(RestFailure::Failed),
                    "{venue} {status}"
                );
            }
        }
    }

    /// Every truncation and single-byte corruption of a few replies, through every parser of both
    /// venues: no panic, and what serde_json rejects as JSON is malformed, never anything else.
    #[test]
    fn damaged_replies_are_handled() {
        let compact = |text: &str| {
            serde_json::from_str::<serde_json::Value>(text)
                .unwrap()
                .to_string()
        };
        let replies = [
            compact(fixture!("binance-spot/rest-time.json")),
            compact(fixture!("binance-spot/rest-ticker-price.json")),
            r#"{"symbol":"BTCUSDT","price":"6000.01","time":1589437530011}"#.to_owned(),
            r#"{"code":-1121,"msg":"Invalid symbol."}"#.to_owned(),
            compact(fixture!("bybit/rest-time.json")),
            compact(fixture!("bybit/rest-tickers-spot.json")),
        ];
        let mut damaged = Vec::new();
        for reply in &replies {
            damaged.extend(
                (0..reply.len())
                    .filter_map(|end| reply.get(..end))
                    .map(str::to_owned),
            );
            for at in 0..reply.len() {
                for &byte in b"\"\\{}[]:,-0 " {
                    let mut bytes = reply.as_bytes().to_vec();
                    bytes[at] = byte;
                    damaged.extend(String::from_utf8(bytes).ok());
                }
            }
        }
        for text in &damaged {
            let json = serde_json::from_str::<IgnoredAny>(text).is_ok();
            for venue in [Venue::BinanceUsdm, Venue::BybitLinear] {
                let errors = [
                    parse_server_time(venue, text).err(),
                    parse_instruments(venue, text).err(),
                    parse_ticker(venue, text).err(),
                ];
                for err in errors.into_iter().flatten() {
                    assert!(
                        json || matches!(err, RestDecodeError::Malformed(_)),
                        "{venue} {text}: {err:?}"
                    );
                }
            }
        }
    }
}
