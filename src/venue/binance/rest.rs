//! Binance spot and USD-M REST: base URLs, paths and weights, our budgets, decoding of server time,
//! exchangeInfo and price ticker replies and of the `{"code","msg"}` error body, and what a 429 or
//! 418 asks of us.
//!
//! Owns no I/O. Spot and USD-M differ here only in paths, weights and the ticker's `time`.

use std::time::Duration;

use serde::Deserialize;

use crate::model::Venue;
use crate::venue::rest_wire::{
    Endpoint, InstrumentsPage, QueryValue, RestBudget, RestDecodeError, RestFailure, RestRequest,
    RestTicker, instrument, price, retry_after,
};
use crate::venue::wire::Text;

pub(super) const SPOT_URL: &str = "https://api.binance.com";
pub(super) const USDM_URL: &str = "https://fapi.binance.com";

// Request weight is counted per IP, so a tenth of the published pool (spot 6000/min, USD-M
// 2400/min, both in exchangeInfo `rateLimits`) leaves room for anything else on the same address.
pub(super) const SPOT_BUDGET: RestBudget = RestBudget {
    weight: 600,
    per: Duration::from_secs(60),
};
pub(super) const USDM_BUDGET: RestBudget = RestBudget {
    weight: 240,
    per: Duration::from_secs(60),
};

/// The paths and weights of one Binance API (binance-spot-api-docs rest-api.md; binance-connector-js
/// USD-M market-data-api.ts).
struct BinanceApi {
    time: &'static str,
    exchange_info: &'static str,
    exchange_info_weight: u32,
    ticker_price: &'static str,
    ticker_price_weight: u32,
}

const SPOT: BinanceApi = BinanceApi {
    time: "/api/v3/time",
    exchange_info: "/api/v3/exchangeInfo",
    exchange_info_weight: 20,
    ticker_price: "/api/v3/ticker/price",
    ticker_price_weight: 2,
};

const USDM: BinanceApi = BinanceApi {
    time: "/fapi/v1/time",
    exchange_info: "/fapi/v1/exchangeInfo",
    exchange_info_weight: 1,
    // v1 is deprecated; v2 is the one with `time`.
    ticker_price: "/fapi/v2/ticker/price",
    ticker_price_weight: 1,
};

fn api(venue: Venue) -> &'static BinanceApi {
    match venue {
        Venue::BinanceUsdm => &USDM,
        _ => &SPOT,
    }
}

/// Both APIs answer with status `TRADING` for an open symbol; `HALT`, `BREAK`, `CANCEL_ONLY`,
/// `PENDING_TRADING` and the like mean no trading.
const TRADING: &str = "TRADING";

/// The 429 and 418 defaults when `Retry-After` is absent: a minute is the window of the weight
/// limit, two minutes the shortest auto-ban (binance-spot-api-docs rest-api.md, "LIMITS").
const RATE_LIMITED_DEFAULT: Duration = Duration::from_secs(60);
const BANNED_DEFAULT: Duration = Duration::from_secs(120);

pub(super) fn time_request(venue: Venue) -> RestRequest {
    RestRequest {
        endpoint: Endpoint::Time,
        path: api(venue).time.to_owned(),
        weight: 1,
    }
}

pub(super) fn instruments_request(venue: Venue) -> RestRequest {
    let api = api(venue);
    RestRequest {
        endpoint: Endpoint::Instruments,
        path: api.exchange_info.to_owned(),
        weight: api.exchange_info_weight,
    }
}

pub(super) fn ticker_request(venue: Venue, symbol: &str) -> RestRequest {
    let api = api(venue);
    RestRequest {
        endpoint: Endpoint::Ticker,
        path: format!("{}?symbol={}", api.ticker_price, QueryValue(symbol)),
        weight: api.ticker_price_weight,
    }
}

pub(super) fn classify_status(status: u16, header: Option<&str>) -> RestFailure {
    match status {
        429 => RestFailure::RateLimited {
            retry_after: retry_after(header, RATE_LIMITED_DEFAULT),
        },
        418 => RestFailure::Banned {
            retry_after: retry_after(header, BANNED_DEFAULT),
        },
        // 403 is a WAF refusal, which names no wait: the next cycle is soon enough to try again.
        _ => RestFailure::Failed,
    }
}

/// The error body of every endpoint, sent with a 4xx status (binance-spot-api-docs errors.md):
/// `{"code":-1121,"msg":"Invalid symbol."}`.
#[derive(Deserialize)]
struct BinanceError<'a> {
    code: i64,
    #[serde(borrow)]
    msg: Text<'a>,
}

/// Decodes `body` as `T`, or as the venue's error when it is not a `T`.
fn decode<'a, T: Deserialize<'a>>(body: &'a str) -> Result<T, RestDecodeError> {
    serde_json::from_str(body).map_err(|err| match serde_json::from_str::<BinanceError<'_>>(body) {
        Ok(BinanceError {
            code,
            msg: Text(msg),
        }) => RestDecodeError::Venue {
            code,
            message: msg.into_owned(),
        },
        Err(_) => err.into(),
    })
}

/// GET `/api/v3/time` and `/fapi/v1/time` (binance-spot-api-docs rest-api.md, "Check server time";
/// USD-M has the same shape): `{"serverTime":1499827319559}`, ms.
#[derive(Deserialize)]
struct BinanceTime {
    #[serde(rename = "serverTime")]
    server_time: i64,
}

pub(super) fn parse_server_time(body: &str) -> Result<i64, RestDecodeError> {
    let time: BinanceTime = decode(body)?;
    time.server_time
        .checked_mul(1_000_000)
        .ok_or(RestDecodeError::BadNumber("serverTime"))
}

/// GET `/fapi/v1/exchangeInfo` (real, cryptofeed sample_data/BINANCE_FUTURES.0, 2021-07) and
/// `/api/v3/exchangeInfo` (binance-spot-api-docs rest-api.md, "Exchange information"), of which
/// only `symbols[].symbol` and `status` are read:
///
/// ```json
/// {"timezone":"UTC","serverTime":1626858243909,"futuresType":"U_MARGINED","rateLimits":[
///  {"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":2400},...],
///  "exchangeFilters":[],"assets":[...],"symbols":[{"symbol":"BTCUSDT","pair":"BTCUSDT",
///  "contractType":"PERPETUAL","deliveryDate":4133404800000,"onboardDate":1569398400000,
///  "status":"TRADING",...},...,{"symbol":"BTCSTUSDT",...,"contractType":"","status":"PENDING_TRADING",...}]}
/// {"timezone":"UTC","serverTime":1565246363776,"rateLimits":[{}],"exchangeFilters":[],
///  "symbols":[{"symbol":"ETHBTC","status":"TRADING","baseAsset":"ETH",...}],"sors":[...]}
/// ```
#[derive(Deserialize)]
struct BinanceExchangeInfo<'a> {
    #[serde(borrow)]
    symbols: Vec<BinanceSymbol<'a>>,
}

/// One element of [`BinanceExchangeInfo`]'s `symbols`.
#[derive(Deserialize)]
struct BinanceSymbol<'a> {
    #[serde(borrow)]
    symbol: Option<Text<'a>>,
    #[serde(borrow)]
    status: Option<Text<'a>>,
}

pub(super) fn parse_instruments(body: &str) -> Result<InstrumentsPage, RestDecodeError> {
    let info: BinanceExchangeInfo<'_> = decode(body)?;
    Ok(InstrumentsPage {
        instruments: info
            .symbols
            .into_iter()
            .filter_map(|symbol| instrument(symbol.symbol, symbol.status, TRADING))
            .collect(),
        next_cursor: None,
    })
}

/// GET `/api/v3/ticker/price?symbol=` (binance-spot-api-docs rest-api.md, "Symbol price ticker"),
/// then `/fapi/v2/ticker/price?symbol=` with its transaction time (Binance USD-M docs, "Symbol Price
/// Ticker V2"):
///
/// ```json
/// {"symbol":"LTCBTC","price":"4.00000200"}
/// {"symbol":"BTCUSDT","price":"6000.01","time":1589437530011}
/// ```
#[derive(Deserialize)]
struct BinancePrice<'a> {
    price: &'a str,
    time: Option<i64>,
}

pub(super) fn parse_ticker(body: &str) -> Result<RestTicker, RestDecodeError> {
    let ticker: BinancePrice<'_> = decode(body)?;
    Ok(RestTicker {
        price: price("price", ticker.price)?,
        trade_time_ms: ticker.time,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rust_decimal::Decimal;

    use crate::model::Venue;
    use crate::venue::rest::{
        Endpoint, Instrument, InstrumentsPage, RestDecodeError, RestFailure, RestRequest,
        RestTicker, classify_status, instruments_request, parse_instruments, parse_server_time,
        parse_ticker, ticker_request, time_request,
    };

    const VENUES: [Venue; 2] = [Venue::BinanceSpot, Venue::BinanceUsdm];

    /// The USD-M docs' "Symbol Price Ticker V2" response; the shared fixtures have no USD-M ticker.
    const USDM_TICKER: &str = r#"{"symbol":"BTCUSDT","price":"6000.01","time":1589437530011}"#;

    fn dec(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    fn malformed(message: &str) -> RestDecodeError {
        RestDecodeError::Malformed(message.to_owned())
    }

    fn request(endpoint: Endpoint, path: &str, weight: u32) -> RestRequest {
        RestRequest {
            endpoint,
            path: path.to_owned(),
            weight,
        }
    }

    #[test]
    fn builds_requests() {
        use Endpoint::*;
        let cases = [
            (
                Venue::BinanceSpot,
                [
                    request(Time, "/api/v3/time", 1),
                    request(Instruments, "/api/v3/exchangeInfo", 20),
                    request(Ticker, "/api/v3/ticker/price?symbol=BTCUSDT", 2),
                ],
            ),
            (
                Venue::BinanceUsdm,
                [
                    request(Time, "/fapi/v1/time", 1),
                    request(Instruments, "/fapi/v1/exchangeInfo", 1),
                    request(Ticker, "/fapi/v2/ticker/price?symbol=BTCUSDT", 1),
                ],
            ),
        ];
        for (venue, [time, instruments, ticker]) in cases {
            assert_eq!(time_request(venue), time, "{venue}");
            assert_eq!(
                instruments_request(venue, None, None),
                instruments,
                "{venue}"
            );
            // One page with every status: a status or a cursor changes nothing.
            assert_eq!(
                instruments_request(venue, Some("BREAK"), Some("x=1")),
                instruments,
                "{venue}"
            );
            assert_eq!(ticker_request(venue, "BTCUSDT"), ticker, "{venue}");
        }
        assert_eq!(
            ticker_request(Venue::BinanceSpot, "币安人生USDT").path,
            "/api/v3/ticker/price?symbol=%E5%B8%81%E5%AE%89%E4%BA%BA%E7%94%9FUSDT"
        );
        assert_eq!(
            ticker_request(Venue::BinanceUsdm, "BTC&x=1").path,
            "/fapi/v2/ticker/price?symbol=BTC%26x%3D1"
        );
    }

    #[test]
    fn parses_server_time() {
        for venue in VENUES {
            assert_eq!(
                parse_server_time(venue, fixture!("binance-spot/rest-time.json")),
                Ok(1_499_827_319_559_000_000),
                "{venue}"
            );
        }
    }

    #[test]
    fn parses_tickers() {
        let cases = [
            (
                Venue::BinanceSpot,
                fixture!("binance-spot/rest-ticker-price.json"),
                "4.00000200",
                None,
            ),
            (
                Venue::BinanceUsdm,
                USDM_TICKER,
                "6000.01",
                Some(1589437530011),
            ),
        ];
        for (venue, body, price, trade_time_ms) in cases {
            assert_eq!(
                parse_ticker(venue, body),
                Ok(RestTicker {
                    price: dec(price),
                    trade_time_ms
                }),
                "{venue}"
            );
        }
    }

    #[test]
    fn parses_doc_exchange_info() {
        assert_eq!(
            parse_instruments(
                Venue::BinanceSpot,
                fixture!("binance-spot/rest-exchangeInfo-doc.json")
            ),
            Ok(InstrumentsPage {
                instruments: vec![Instrument {
                    symbol: "ETHBTC".into(),
                    status: "TRADING".into(),
                    trading: true,
                }],
                next_cursor: None,
            })
        );
    }

    #[test]
    fn parses_real_usdm_exchange_info() {
        let page = parse_instruments(
            Venue::BinanceUsdm,
            fixture!("binance-usdm/rest-exchangeInfo-2021-real.json"),
        )
        .unwrap();
        assert_eq!(page.next_cursor, None);
        assert_eq!(page.instruments.len(), 122);
        assert_eq!(page.instruments.iter().filter(|i| i.trading).count(), 121);
        let find = |symbol: &str| {
            page.instruments
                .iter()
                .find(|i| i.symbol == symbol)
                .map(|i| (i.status.as_str(), i.trading))
        };
        assert_eq!(find("BTCUSDT"), Some(("TRADING", true)));
        // Quarterlies are listed like perpetuals.
        assert_eq!(find("BTCUSDT_210924"), Some(("TRADING", true)));
        assert_eq!(find("BTCSTUSDT"), Some(("PENDING_TRADING", false)));
        assert_eq!(find("NOPEUSDT"), None);
        assert_eq!(page.instruments[0].symbol, "BTCUSDT");
        assert_eq!(page.instruments[121].symbol, "TLMUSDT");
    }

    #[test]
    fn lists_what_it_can() {
        let body = r#"{"symbols":[{"status":"TRADING"},{"symbol":"A","status":"BREAK"},
            {"symbol":"B"},{"symbol":"C\u0021","status":"TRADING","st":1}]}"#;
        let expected = [
            ("A", "BREAK", false),
            ("B", "", false),
            ("C!", "TRADING", true),
        ];
        assert_eq!(
            parse_instruments(Venue::BinanceSpot, body),
            Ok(InstrumentsPage {
                instruments: expected
                    .map(|(symbol, status, trading)| Instrument {
                        symbol: symbol.into(),
                        status: status.into(),
                        trading,
                    })
                    .to_vec(),
                next_cursor: None,
            })
        );
        assert_eq!(
            parse_instruments(Venue::BinanceSpot, r#"{"symbols":[]}"#),
            Ok(InstrumentsPage {
                instruments: vec![],
                next_cursor: None,
            })
        );
    }

    /// The venue's error body is read whatever the status it came with; 400 for a bad symbol.
    #[test]
    fn reads_venue_errors() {
        let invalid = r#"{"code":-1121,"msg":"Invalid symbol."}"#;
        let too_many = r#"{"code":-1003,"msg":"Too many requests; current limit is 2400 requests per minute. \"Please\" use the websocket."}"#;
        let venue_error = |code, message: &str| RestDecodeError::Venue {
            code,
            message: message.to_owned(),
        };
        for venue in VENUES {
            assert_eq!(
                parse_ticker(venue, invalid),
                Err(venue_error(-1121, "Invalid symbol.")),
                "{venue}"
            );
            assert_eq!(
                parse_server_time(venue, invalid),
                Err(venue_error(-1121, "Invalid symbol.")),
                "{venue}"
            );
            assert_eq!(
                parse_instruments(venue, too_many),
                Err(venue_error(
                    -1003,
                    "Too many requests; current limit is 2400 requests per minute. \"Please\" use the websocket."
                )),
                "{venue}"
            );
        }
        // Binance paces by HTTP status only: no code inside an answer, not even Bybit's rate-limit code, asks for
        // a pause.
        for code in [-1003, 10006] {
            assert_eq!(
                crate::venue::rest::decode_failure(Venue::BinanceSpot, &venue_error(code, "")),
                None
            );
        }
    }

    #[test]
    fn rejects_bad_replies() {
        let cases = [
            (
                "",
                malformed("EOF while parsing a value at line 1 column 0"),
            ),
            (
                r#"{"symbol":"LTCBTC","price":"4.0"#,
                malformed("EOF while parsing a string at line 1 column 31"),
            ),
            (
                r#"{"symbol":"LTCBTC","price":4.0}"#,
                malformed(
                    "invalid type: floating point `4.0`, expected a borrowed string at line 1 column 30",
                ),
            ),
            (
                r#"{"symbol":"LTCBTC","price":"4.0","time":"now"}"#,
                malformed("invalid type: string \"now\", expected i64 at line 1 column 45"),
            ),
            (
                r#"{"symbol":"LTCBTC"}"#,
                malformed("missing field `price` at line 1 column 19"),
            ),
            (
                r#"[{"symbol":"LTCBTC","price":"4.0"}]"#,
                // The all-symbols shape; serde reads a struct from an array by position.
                malformed("invalid type: map, expected a borrowed string at line 1 column 1"),
            ),
            (
                r#"{"symbol":"LTCBTC","price":"four"}"#,
                RestDecodeError::BadNumber("price"),
            ),
            (
                r#"{"symbol":"LTCBTC","price":""}"#,
                RestDecodeError::BadNumber("price"),
            ),
            (
                r#"{"code":"-1121","msg":"Invalid symbol."}"#,
                malformed("missing field `price` at line 1 column 40"),
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(
                parse_ticker(Venue::BinanceSpot, body),
                Err(expected),
                "{body}"
            );
        }
        let cases = [
            (
                r#"{"serverTime":"1499827319559"}"#,
                malformed(
                    "invalid type: string \"1499827319559\", expected i64 at line 1 column 29",
                ),
            ),
            (
                r#"{"serverTime":9223372036855}"#,
                RestDecodeError::BadNumber("serverTime"),
            ),
            (
                r#"{}"#,
                malformed("missing field `serverTime` at line 1 column 2"),
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(
                parse_server_time(Venue::BinanceUsdm, body),
                Err(expected),
                "{body}"
            );
        }
        let cases = [
            (
                r#"{"symbols":{}}"#,
                malformed("invalid type: map, expected a sequence at line 1 column 11"),
            ),
            (
                r#"{"symbols":[{"symbol":7}]}"#,
                malformed("invalid type: integer `7`, expected a string at line 1 column 23"),
            ),
            (
                r#"{"rateLimits":[]}"#,
                malformed("missing field `symbols` at line 1 column 17"),
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(
                parse_instruments(Venue::BinanceUsdm, body),
                Err(expected),
                "{body}"
            );
        }
    }

    #[test]
    fn classifies_statuses() {
        let secs = Duration::from_secs;
        let rate_limited = |s| {
            Some(RestFailure::RateLimited {
                retry_after: secs(s),
            })
        };
        let banned = |s| {
            Some(RestFailure::Banned {
                retry_after: secs(s),
            })
        };
        let cases = [
            (200, None, None),
            (200, Some("30"), None),
            (429, Some("30"), rate_limited(30)),
            (429, None, rate_limited(60)),
            (429, Some("soon"), rate_limited(60)),
            (418, Some("7200"), banned(7200)),
            (418, None, banned(120)),
            (418, Some("Wed, 21 Oct 2015 07:28:00 GMT"), banned(120)),
            (403, None, Some(RestFailure::Failed)),
            (403, Some("600"), Some(RestFailure::Failed)),
            (400, None, Some(RestFailure::Failed)),
            (404, None, Some(RestFailure::Failed)),
            (500, Some("30"), Some(RestFailure::Failed)),
            (503, None, Some(RestFailure::Failed)),
        ];
        for venue in VENUES {
            for (status, header, expected) in cases {
                assert_eq!(
                    classify_status(venue, status, header),
                    expected,
                    "{venue} {status} {header:?}"
                );
            }
        }
    }
}
