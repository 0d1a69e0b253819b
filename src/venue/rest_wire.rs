//! The REST vocabulary every exchange shares, sans-IO: endpoints, requests and budgets, instruments and
//! tickers as decoded, how a failure must pace us, decode errors, and the helpers the exchanges' decoders use.
//! A leaf: it knows no exchange.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;

use super::scan;
use super::wire::Text;

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

/// One symbol's last price from REST, to cross-check a WebSocket symbol that went quiet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestTicker {
    /// Last traded price (Binance `price`, Bybit `result.list[0].lastPrice`).
    pub price: Decimal,
    /// Time of the last trade, ms since the epoch, where the reply carries it: USD-M `time`. None on
    /// Binance spot (no time) and Bybit (its envelope `time` is the reply's, not a trade's).
    pub trade_time_ms: Option<i64>,
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
pub(in crate::venue) const MAX_RETRY_AFTER: Duration = Duration::from_secs(3 * 24 * 3600);

/// The delay a `Retry-After` header asks for, in its delay-seconds form; `default` when absent or
/// unreadable.
pub(in crate::venue) fn retry_after(header: Option<&str>, default: Duration) -> Duration {
    header
        .and_then(|header| header.trim().parse().ok())
        .map_or(default, |seconds| {
            Duration::from_secs(seconds).min(MAX_RETRY_AFTER)
        })
}

/// Parses a decimal price field; `field` names it in the error.
pub(in crate::venue) fn price(field: &'static str, text: &str) -> Result<Decimal, RestDecodeError> {
    Decimal::from_str(text).map_err(|_| RestDecodeError::BadNumber(field))
}

/// An instrument from its wire fields, or None without a symbol. `trading_status` is the venue's
/// word for "open for trading".
pub(in crate::venue) fn instrument(
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
pub(in crate::venue) struct QueryValue<'a>(pub(in crate::venue) &'a str);

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
