//! REST companion knowledge, sans-IO: the requests for server time, instrument lists and one
//! symbol's ticker, their weights and our budget per venue, decoding of the replies, and how an
//! HTTP failure must pace us.
//!
//! Owns no client, clock or timer: the poller sends [`RestRequest`]s and hands back status,
//! `Retry-After` and body. Each exchange's paths and payloads live in its folder (`binance/rest.rs`,
//! `bybit/rest.rs`) behind [`RestExchange`]; this file dispatches by [`Venue`], and the shared types are in
//! `rest_wire.rs`.

use super::exchange::RestExchange;
pub use super::rest_wire::{
    Endpoint, Instrument, InstrumentsPage, RestBudget, RestDecodeError, RestFailure, RestRequest,
    RestTicker,
};
use super::{binance, bybit};
use crate::model::{Exchange, Venue};

/// The exchange's REST knowledge. Adding an exchange adds its arm here.
fn exchange(venue: Venue) -> &'static dyn RestExchange {
    match venue.exchange() {
        Exchange::Binance => &binance::Binance,
        Exchange::Bybit => &bybit::Bybit,
    }
}

/// The pacing a decode error asks for: the venue's own error code inside a successful answer (Bybit
/// retCode 10006 is a rate limit sent inside a 200). None for everything else, which is counted and retried on
/// the next cycle.
pub fn decode_failure(venue: Venue, error: &RestDecodeError) -> Option<RestFailure> {
    match error {
        RestDecodeError::Venue { code, .. } => exchange(venue).venue_error(*code),
        _ => None,
    }
}

/// Checks the path of a REST base URL for `venue`: the exporter appends `/api/v3/...`, `/fapi/v1/...` or
/// `/v5/market/...` itself.
pub fn rest_path_fix(venue: Venue, path: &str) -> Option<super::wire::PathFix> {
    exchange(venue).path_fix(venue, path)
}

/// The venue's documented REST base URL, used unless configuration overrides it.
pub fn default_rest_url(venue: Venue) -> &'static str {
    exchange(venue).default_url(venue)
}

/// Our request budget for the venue.
pub fn budget(venue: Venue) -> RestBudget {
    exchange(venue).budget(venue)
}

/// The request for the venue's server time.
pub fn time_request(venue: Venue) -> RestRequest {
    exchange(venue).time_request(venue)
}

/// Server time in nanoseconds since the epoch (Binance serverTime ms * 1e6; Bybit result.timeNano,
/// falling back to timeSecond * 1e9, then to the top-level time ms * 1e6).
pub fn parse_server_time(venue: Venue, body: &str) -> Result<i64, RestDecodeError> {
    exchange(venue).parse_server_time(body)
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
    exchange(venue).instruments_request(venue, status, cursor)
}

/// The listings to read for a complete picture: `None` is the venue's default listing. Bybit's default
/// holds only `Trading` instruments, so telling a halted symbol from an unknown one takes one listing per
/// other status; Binance's one listing has every status.
pub fn listing_statuses(venue: Venue) -> &'static [Option<&'static str>] {
    exchange(venue).listing_statuses(venue)
}

/// Decodes an instruments reply. Nothing is filtered out by contract type or status: USD-M lists
/// perpetuals and quarterlies alike, and the caller looks its own symbols up.
pub fn parse_instruments(venue: Venue, body: &str) -> Result<InstrumentsPage, RestDecodeError> {
    exchange(venue).parse_instruments(body)
}

/// The request for one symbol's last price: spot `/api/v3/ticker/price` (weight 2), USD-M
/// `/fapi/v2/ticker/price` (weight 1), Bybit `/v5/market/tickers` in the venue's category
/// (weight 1). The symbol is sent as given, percent-encoded.
pub fn ticker_request(venue: Venue, symbol: &str) -> RestRequest {
    exchange(venue).ticker_request(venue, symbol)
}

/// Decodes a ticker reply.
pub fn parse_ticker(venue: Venue, body: &str) -> Result<RestTicker, RestDecodeError> {
    exchange(venue).parse_ticker(body)
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
    Some(exchange(venue).classify_status(status, retry_after))
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

    use std::time::Duration;

    use serde::de::IgnoredAny;

    use super::*;
    use crate::venue::rest_wire::{MAX_RETRY_AFTER, QueryValue, retry_after};

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
            // Binance codes are negative, Bybit's positive.
            let venue = match &err {
                RestDecodeError::Venue { code, .. } if *code < 0 => Venue::BinanceSpot,
                _ => Venue::BybitLinear,
            };
            assert_eq!(decode_failure(venue, &err), failure, "{err}");
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
