//! Bybit v5 market REST (spot, linear, inverse): base URL, paths, our budget, decoding of the
//! `retCode` envelope and of server time, instruments-info and tickers replies, and what a 403 or
//! retCode 10006 asks of us.
//!
//! Owns no I/O. The three markets share one host and one IP limit and differ only in `category`.

use std::time::Duration;

use serde::Deserialize;

use crate::model::Venue;
use crate::venue::rest_wire::{
    Endpoint, InstrumentsPage, QueryValue, RestBudget, RestDecodeError, RestFailure, RestRequest,
    RestTicker, instrument, price, retry_after,
};
use crate::venue::scan;
use crate::venue::wire::{First, Text};

pub(super) const URL: &str = "https://api.bybit.com";

// The venue allows 600 requests per 5 s per IP, shared by every market on api.bybit.com
// (bybit-exchange/docs v5/rate-limit/rate-limit.mdx). Each of the three venues gets 60, so all
// three together stay under a third of it.
pub(super) const BUDGET: RestBudget = RestBudget {
    weight: 60,
    per: Duration::from_secs(5),
};

/// The limit counts requests, whatever the endpoint.
const WEIGHT: u32 = 1;

/// The most instruments one page may carry (the default is 500, and linear has more).
const PAGE_LIMIT: u32 = 1000;

/// Instrument status of an open market.
const TRADING: &str = "Trading";

/// "403, access too frequent": "terminate all HTTP sessions and wait for at least 10 minutes"
/// (rate-limit.mdx, "HTTP IP limit").
const IP_BAN: Duration = Duration::from_secs(600);

/// `retCode` 10006, "Too many visits!" (rate-limit.mdx, "API Rate Limit"): a per-second limit,
/// so a minute is ample.
const TOO_MANY_VISITS: i64 = 10006;
const TOO_MANY_VISITS_WAIT: Duration = Duration::from_secs(60);

/// A 429 is not in Bybit's docs, but means the same from any server in front of it.
const RATE_LIMITED_DEFAULT: Duration = Duration::from_secs(60);

/// The `category` of the venue's market; the markets share every path.
fn category(venue: Venue) -> &'static str {
    match venue {
        Venue::BybitLinear => "linear",
        Venue::BybitInverse => "inverse",
        _ => "spot",
    }
}

pub(super) fn time_request() -> RestRequest {
    RestRequest {
        endpoint: Endpoint::Time,
        path: "/v5/market/time".to_owned(),
        weight: WEIGHT,
    }
}

pub(super) fn instruments_request(
    venue: Venue,
    status: Option<&str>,
    cursor: Option<&str>,
) -> RestRequest {
    let category = category(venue);
    let mut path = match (venue, cursor) {
        // "Spot does not support pagination, so `limit`, `cursor` are invalid"
        // (docs v5/market/instrument.mdx).
        (Venue::BybitSpot, _) => format!("/v5/market/instruments-info?category={category}"),
        (_, None) => {
            format!("/v5/market/instruments-info?category={category}&limit={PAGE_LIMIT}")
        }
        (_, Some(cursor)) => format!(
            "/v5/market/instruments-info?category={category}&limit={PAGE_LIMIT}&cursor={}",
            QueryValue(cursor)
        ),
    };
    if let Some(status) = status {
        path.push_str(&format!("&status={}", QueryValue(status)));
    }
    RestRequest {
        endpoint: Endpoint::Instruments,
        path,
        weight: WEIGHT,
    }
}

pub(super) fn ticker_request(venue: Venue, symbol: &str) -> RestRequest {
    RestRequest {
        endpoint: Endpoint::Ticker,
        path: format!(
            "/v5/market/tickers?category={}&symbol={}",
            category(venue),
            QueryValue(symbol)
        ),
        weight: WEIGHT,
    }
}

pub(super) fn classify_status(status: u16, header: Option<&str>) -> RestFailure {
    match status {
        403 => RestFailure::RateLimited {
            retry_after: retry_after(header, IP_BAN).max(IP_BAN),
        },
        429 => RestFailure::RateLimited {
            retry_after: retry_after(header, RATE_LIMITED_DEFAULT),
        },
        _ => RestFailure::Failed,
    }
}

/// The pacing a `retCode` asks for.
pub(super) fn ret_code_failure(code: i64) -> Option<RestFailure> {
    (code == TOO_MANY_VISITS).then_some(RestFailure::RateLimited {
        retry_after: TOO_MANY_VISITS_WAIT,
    })
}

/// The envelope of every reply, HTTP 200 even for errors (docs v5/market/time.mdx; an error, real,
/// quoted in ccxt ts/src/bybit.ts):
///
/// ```json
/// {"retCode":0,"retMsg":"OK","result":{"timeSecond":"1688639403",
///  "timeNano":"1688639403423213947"},"retExtInfo":{},"time":1688639403423}
/// {"retCode":10001,"retMsg":"empty value: apiTimestamp[] apiKey[] apiSignature[xxxxxxxxxxxxxxxxxxxxxxx]: openapi sign params error!",
///  "result":null,"retExtInfo":null,"time":1664789597123}
/// ```
///
/// `result` is kept raw: its shape is only known once `retCode` says it is not an error.
struct BybitResponse<'a> {
    result: Option<&'a str>,
    /// When the reply was made, ms since the epoch.
    time: Option<i64>,
}

/// Splits the envelope; a `retCode` other than 0 is the venue's error.
fn envelope(body: &str) -> Result<BybitResponse<'_>, RestDecodeError> {
    let [ret_code, ret_msg, result, time] =
        scan::pick(body, ["retCode", "retMsg", "result", "time"])?;
    // Every member read is type-checked before any is acted on, so a reply is malformed or not
    // whatever its retCode.
    let ret_code: i64 = member(ret_code)?.ok_or(RestDecodeError::Missing("retCode"))?;
    let ret_msg: Option<Text<'_>> = member(ret_msg)?;
    let time: Option<i64> = member(time)?;
    if ret_code != 0 {
        return Err(RestDecodeError::Venue {
            code: ret_code,
            message: ret_msg
                .map(|Text(msg)| msg.into_owned())
                .unwrap_or_default(),
        });
    }
    Ok(BybitResponse {
        result: result.filter(|raw| *raw != "null"),
        time,
    })
}

/// Decodes a member's raw value from [`scan::pick`]; absent and `null` are both `None`.
fn member<'a, T: Deserialize<'a>>(raw: Option<&'a str>) -> Result<Option<T>, RestDecodeError> {
    Ok(raw
        .map(serde_json::from_str::<Option<T>>)
        .transpose()?
        .flatten())
}

/// The envelope's `result`, which a successful reply must carry.
fn result<'a, T: Deserialize<'a>>(reply: &BybitResponse<'a>) -> Result<T, RestDecodeError> {
    member(reply.result)?.ok_or(RestDecodeError::Missing("result"))
}

/// Bybit writes `""` for values it does not have.
fn non_empty(text: Option<&str>) -> Option<&str> {
    text.filter(|text| !text.is_empty())
}

/// `result` of GET `/v5/market/time` (docs v5/market/time.mdx):
/// `{"timeSecond":"1688639403","timeNano":"1688639403423213947"}`.
#[derive(Deserialize)]
struct BybitTime<'a> {
    #[serde(rename = "timeSecond")]
    seconds: Option<&'a str>,
    #[serde(rename = "timeNano")]
    nanos: Option<&'a str>,
}

pub(super) fn parse_server_time(body: &str) -> Result<i64, RestDecodeError> {
    let reply = envelope(body)?;
    let time: Option<BybitTime<'_>> = member(reply.result)?;
    let (seconds, nanos) = time.map_or((None, None), |time| {
        (non_empty(time.seconds), non_empty(time.nanos))
    });
    if let Some(nanos) = nanos {
        return nanos
            .parse()
            .map_err(|_| RestDecodeError::BadNumber("result.timeNano"));
    }
    if let Some(seconds) = seconds {
        return seconds
            .parse::<i64>()
            .ok()
            .and_then(|seconds| seconds.checked_mul(1_000_000_000))
            .ok_or(RestDecodeError::BadNumber("result.timeSecond"));
    }
    // The envelope's own stamp, only ms but from the same clock.
    reply
        .time
        .ok_or(RestDecodeError::Missing("result.timeNano"))?
        .checked_mul(1_000_000)
        .ok_or(RestDecodeError::BadNumber("time"))
}

/// `result` of GET `/v5/market/instruments-info`, linear (docs v5/market/instrument.mdx, tab
/// "Linear"); spot has no `nextPageCursor` (tab "Spot"). Only `symbol` and `status` are read:
///
/// ```json
/// {"category":"linear","list":[{"symbol":"BTCUSDT","symbolId":5,"contractType":"LinearPerpetual",
///  "status":"Trading","baseCoin":"BTC","quoteCoin":"USDT",...}],"nextPageCursor":""}
/// {"category":"spot","list":[{"symbolId":9,"symbol":"BTCUSDT","baseCoin":"BTC",
///  "quoteCoin":"USDT","innovation":"0","status":"Trading",...}]}
/// ```
#[derive(Deserialize)]
struct BybitInstruments<'a> {
    #[serde(borrow)]
    list: Vec<BybitInstrument<'a>>,
    #[serde(rename = "nextPageCursor", borrow)]
    next_page_cursor: Option<Text<'a>>,
}

/// One element of [`BybitInstruments`]'s `list`.
#[derive(Deserialize)]
struct BybitInstrument<'a> {
    #[serde(borrow)]
    symbol: Option<Text<'a>>,
    #[serde(borrow)]
    status: Option<Text<'a>>,
}

pub(super) fn parse_instruments(body: &str) -> Result<InstrumentsPage, RestDecodeError> {
    let page: BybitInstruments<'_> = result(&envelope(body)?)?;
    Ok(InstrumentsPage {
        instruments: page
            .list
            .into_iter()
            .filter_map(|item| instrument(item.symbol, item.status, TRADING))
            .collect(),
        next_cursor: page
            .next_page_cursor
            .map(|Text(cursor)| cursor.into_owned())
            .filter(|cursor| !cursor.is_empty()),
    })
}

/// `result` of GET `/v5/market/tickers?category=spot&symbol=BTCUSDT` (docs v5/market/tickers.mdx,
/// tab "Spot"; linear and inverse add mark, index and funding fields). Only the first element's
/// `lastPrice` is read:
///
/// ```json
/// {"category":"spot","list":[{"symbol":"BTCUSDT","bid1Price":"20517.96","bid1Size":"2",
///  "ask1Price":"20527.77","ask1Size":"1.862172","lastPrice":"20533.13",...}]}
/// ```
#[derive(Deserialize)]
struct BybitTickers<'a> {
    #[serde(borrow)]
    list: First<BybitTicker<'a>>,
}

/// One element of [`BybitTickers`]'s `list`.
#[derive(Deserialize)]
struct BybitTicker<'a> {
    #[serde(rename = "lastPrice")]
    last_price: Option<&'a str>,
}

pub(super) fn parse_ticker(body: &str) -> Result<RestTicker, RestDecodeError> {
    let reply = envelope(body)?;
    let BybitTickers {
        list: First(ticker),
    } = result(&reply)?;
    let ticker = ticker.ok_or(RestDecodeError::Missing("result.list[0]"))?;
    let last =
        non_empty(ticker.last_price).ok_or(RestDecodeError::Missing("result.list[0].lastPrice"))?;
    Ok(RestTicker {
        price: price("result.list[0].lastPrice", last)?,
        // The envelope's `time` is when Bybit answered, not when the symbol last traded.
        trade_time_ms: None,
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

    const VENUES: [Venue; 3] = [Venue::BybitSpot, Venue::BybitLinear, Venue::BybitInverse];

    /// A real error reply, quoted in ccxt ts/src/bybit.ts.
    const PARAMS_ERROR: &str = r#"{"retCode":10001,"retMsg":"empty value: apiTimestamp[] apiKey[] apiSignature[xxxxxxxxxxxxxxxxxxxxxxx]: openapi sign params error!","result":null,"retExtInfo":null,"time":1664789597123}"#;

    /// The API rate limit reply as rate-limit.mdx words it, in the envelope of every error.
    const TOO_MANY_VISITS: &str = r#"{"retCode":10006,"retMsg":"Too many visits!","result":{},"retExtInfo":{},"time":1672738134824}"#;

    fn dec(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    fn malformed(message: &str) -> RestDecodeError {
        RestDecodeError::Malformed(message.to_owned())
    }

    fn request(endpoint: Endpoint, path: &str) -> RestRequest {
        RestRequest {
            endpoint,
            path: path.to_owned(),
            weight: 1,
        }
    }

    #[test]
    fn builds_requests() {
        use Endpoint::*;
        let cases = [
            (
                Venue::BybitSpot,
                "/v5/market/instruments-info?category=spot",
                "/v5/market/instruments-info?category=spot",
                "/v5/market/tickers?category=spot&symbol=BTCUSDT",
            ),
            (
                Venue::BybitLinear,
                "/v5/market/instruments-info?category=linear&limit=1000",
                "/v5/market/instruments-info?category=linear&limit=1000&cursor=first%253D1%2526last%253D10",
                "/v5/market/tickers?category=linear&symbol=BTCUSDT",
            ),
            (
                Venue::BybitInverse,
                "/v5/market/instruments-info?category=inverse&limit=1000",
                "/v5/market/instruments-info?category=inverse&limit=1000&cursor=first%253D1%2526last%253D10",
                "/v5/market/tickers?category=inverse&symbol=BTCUSDT",
            ),
        ];
        // Cursors come already percent-encoded, and go back encoded once more.
        let cursor = "first%3D1%26last%3D10";
        for (venue, first, next, ticker) in cases {
            assert_eq!(
                time_request(venue),
                request(Time, "/v5/market/time"),
                "{venue}"
            );
            assert_eq!(
                instruments_request(venue, None, None),
                request(Instruments, first),
                "{venue}"
            );
            assert_eq!(
                instruments_request(venue, None, Some(cursor)),
                request(Instruments, next),
                "{venue}"
            );
            assert_eq!(
                ticker_request(venue, "BTCUSDT"),
                request(Ticker, ticker),
                "{venue}"
            );
        }
        assert_eq!(
            instruments_request(Venue::BybitLinear, None, Some("a=b&c d/é~")).path,
            "/v5/market/instruments-info?category=linear&limit=1000&cursor=a%3Db%26c%20d%2F%C3%A9~"
        );
        assert_eq!(
            instruments_request(Venue::BybitLinear, Some("Delivering"), Some("x")).path,
            "/v5/market/instruments-info?category=linear&limit=1000&cursor=x&status=Delivering"
        );
        assert_eq!(
            instruments_request(Venue::BybitSpot, Some("Closed"), None).path,
            "/v5/market/instruments-info?category=spot&status=Closed"
        );
        assert_eq!(
            ticker_request(Venue::BybitInverse, "BTC USD").path,
            "/v5/market/tickers?category=inverse&symbol=BTC%20USD"
        );
    }

    #[test]
    fn parses_server_time() {
        let fixture = fixture!("bybit/rest-time.json");
        let cases = [
            (fixture.to_owned(), Ok(1_688_639_403_423_213_947)),
            // Falls back to seconds, then to the envelope's ms.
            (
                fixture.replace(r#""1688639403423213947""#, r#""""#),
                Ok(1_688_639_403_000_000_000),
            ),
            (
                fixture.replace(r#""timeNano""#, r#""other""#),
                Ok(1_688_639_403_000_000_000),
            ),
            (
                r#"{"retCode":0,"retMsg":"OK","result":{},"time":1688639403423}"#.to_owned(),
                Ok(1_688_639_403_423_000_000),
            ),
            (
                r#"{"retCode":0,"retMsg":"OK","time":1688639403423}"#.to_owned(),
                Ok(1_688_639_403_423_000_000),
            ),
            (
                r#"{"retCode":0,"retMsg":"OK","result":{"timeSecond":""}}"#.to_owned(),
                Err(RestDecodeError::Missing("result.timeNano")),
            ),
            (
                fixture.replace("1688639403423213947", "1688639403.4"),
                Err(RestDecodeError::BadNumber("result.timeNano")),
            ),
            (
                fixture.replace("1688639403423213947", "99999999999999999999"),
                Err(RestDecodeError::BadNumber("result.timeNano")),
            ),
            (
                r#"{"retCode":0,"result":{"timeSecond":"9223372037"}}"#.to_owned(),
                Err(RestDecodeError::BadNumber("result.timeSecond")),
            ),
            (
                r#"{"retCode":0,"time":9223372036855}"#.to_owned(),
                Err(RestDecodeError::BadNumber("time")),
            ),
            (
                r#"{"retCode":0,"result":{"timeNano":1688639403423213947}}"#.to_owned(),
                Err(malformed(
                    "invalid type: integer `1688639403423213947`, expected a borrowed string at line 1 column 31",
                )),
            ),
        ];
        for venue in VENUES {
            for (body, expected) in &cases {
                assert_eq!(&parse_server_time(venue, body), expected, "{venue} {body}");
            }
        }
    }

    #[test]
    fn parses_instruments() {
        let btcusdt = InstrumentsPage {
            instruments: vec![Instrument {
                symbol: "BTCUSDT".into(),
                status: "Trading".into(),
                trading: true,
            }],
            next_cursor: None,
        };
        let linear = fixture!("bybit/rest-instruments-info-linear.json");
        let cases = [
            (Venue::BybitLinear, linear.to_owned(), btcusdt.clone()),
            (
                Venue::BybitSpot,
                fixture!("bybit/rest-instruments-info-spot.json").to_owned(),
                btcusdt.clone(),
            ),
            (
                Venue::BybitInverse,
                linear.replace(
                    r#""nextPageCursor": """#,
                    r#""nextPageCursor": "first%3D1%26last%3D10""#,
                ),
                InstrumentsPage {
                    next_cursor: Some("first%3D1%26last%3D10".into()),
                    ..btcusdt
                },
            ),
            (
                Venue::BybitLinear,
                linear.replace(r#""status": "Trading""#, r#""status": "PreLaunch""#),
                InstrumentsPage {
                    instruments: vec![Instrument {
                        symbol: "BTCUSDT".into(),
                        status: "PreLaunch".into(),
                        trading: false,
                    }],
                    next_cursor: None,
                },
            ),
            (
                Venue::BybitLinear,
                r#"{"retCode":0,"result":{"list":[{"status":"Trading"},{"symbol":"A\u0042"}],"nextPageCursor":null}}"#.to_owned(),
                InstrumentsPage {
                    instruments: vec![Instrument {
                        symbol: "AB".into(),
                        status: "".into(),
                        trading: false,
                    }],
                    next_cursor: None,
                },
            ),
            (
                Venue::BybitLinear,
                r#"{"retCode":0,"result":{"list":[]}}"#.to_owned(),
                InstrumentsPage {
                    instruments: vec![],
                    next_cursor: None,
                },
            ),
        ];
        for (venue, body, expected) in cases {
            assert_eq!(
                parse_instruments(venue, &body),
                Ok(expected),
                "{venue} {body}"
            );
        }
    }

    #[test]
    fn parses_tickers() {
        let cases = [
            (
                Venue::BybitSpot,
                fixture!("bybit/rest-tickers-spot.json"),
                "20533.13",
            ),
            // Linear has the inverse shape. The envelope's `time` is the reply's: no trade time.
            (
                Venue::BybitLinear,
                fixture!("bybit/rest-tickers-inverse.json"),
                "120635.50",
            ),
            (
                Venue::BybitInverse,
                fixture!("bybit/rest-tickers-inverse.json"),
                "120635.50",
            ),
        ];
        for (venue, body, price) in cases {
            assert_eq!(
                parse_ticker(venue, body),
                Ok(RestTicker {
                    price: dec(price),
                    trade_time_ms: None
                }),
                "{venue}"
            );
        }
    }

    #[test]
    fn reads_venue_errors() {
        let params = RestDecodeError::Venue {
            code: 10001,
            message: "empty value: apiTimestamp[] apiKey[] apiSignature[xxxxxxxxxxxxxxxxxxxxxxx]: openapi sign params error!".into(),
        };
        let visits = RestDecodeError::Venue {
            code: 10006,
            message: "Too many visits!".into(),
        };
        for venue in VENUES {
            for (body, expected) in [(PARAMS_ERROR, &params), (TOO_MANY_VISITS, &visits)] {
                assert_eq!(
                    parse_server_time(venue, body).as_ref(),
                    Err(expected),
                    "{venue}"
                );
                assert_eq!(
                    parse_instruments(venue, body).as_ref(),
                    Err(expected),
                    "{venue}"
                );
                assert_eq!(parse_ticker(venue, body).as_ref(), Err(expected), "{venue}");
            }
        }
        let failure = |e| crate::venue::rest::decode_failure(Venue::BybitLinear, e);
        assert_eq!(failure(&params), None);
        assert_eq!(
            failure(&visits),
            Some(RestFailure::RateLimited {
                retry_after: Duration::from_secs(60)
            })
        );
        assert_eq!(
            parse_ticker(Venue::BybitLinear, r#"{"retCode":10001}"#),
            Err(RestDecodeError::Venue {
                code: 10001,
                message: "".into()
            })
        );
    }

    #[test]
    fn rejects_bad_replies() {
        let spot = fixture!("bybit/rest-tickers-spot.json");
        let cases = [
            ("".to_owned(), malformed("expected '{' at byte 0")),
            (
                spot[..spot.len() / 2].to_owned(),
                malformed("expected a value at byte 305"),
            ),
            ("[]".to_owned(), malformed("expected '{' at byte 0")),
            (
                r#"{"retCode":"0","result":{}}"#.to_owned(),
                malformed("invalid type: string \"0\", expected i64 at line 1 column 3"),
            ),
            (
                r#"{"retCode":0,"retMsg":7,"result":{}}"#.to_owned(),
                // Positions are within the member's own text.
                malformed("invalid type: integer `7`, expected a string at line 1 column 1"),
            ),
            (
                r#"{"result":{"list":[]}}"#.to_owned(),
                RestDecodeError::Missing("retCode"),
            ),
            (
                r#"{"retCode":0,"result":null}"#.to_owned(),
                RestDecodeError::Missing("result"),
            ),
            (
                r#"{"retCode":0,"result":{}}"#.to_owned(),
                malformed("missing field `list` at line 1 column 2"),
            ),
            (
                r#"{"retCode":0,"result":{"list":[]}}"#.to_owned(),
                RestDecodeError::Missing("result.list[0]"),
            ),
            (
                spot.replace(r#""lastPrice": "20533.13""#, r#""lastPrice": """#),
                RestDecodeError::Missing("result.list[0].lastPrice"),
            ),
            (
                spot.replace(r#""lastPrice": "20533.13""#, r#""lastPrice": "20533,13""#),
                RestDecodeError::BadNumber("result.list[0].lastPrice"),
            ),
            (
                spot.replace(r#""lastPrice": "20533.13""#, r#""lastPrice": 20533.13"#),
                malformed(
                    "invalid type: floating point `20533.13`, expected a borrowed string at line 10 column 29",
                ),
            ),
            (
                spot.replace(r#""time": 1673859087947"#, r#""time": "1673859087947""#),
                malformed(
                    "invalid type: string \"1673859087947\", expected i64 at line 1 column 15",
                ),
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(
                parse_ticker(Venue::BybitSpot, &body),
                Err(expected),
                "{body}"
            );
        }
        let linear = fixture!("bybit/rest-instruments-info-linear.json");
        let cases = [
            (
                linear.replace(r#""list": ["#, r#""list": 7, "x": ["#),
                malformed("invalid type: integer `7`, expected a sequence at line 3 column 13"),
            ),
            (
                linear.replace(r#""symbol": "BTCUSDT""#, r#""symbol": 5"#),
                malformed("invalid type: integer `5`, expected a string at line 5 column 19"),
            ),
            (
                linear.replace(r#""nextPageCursor": """#, r#""nextPageCursor": 1"#),
                malformed("invalid type: integer `1`, expected a string at line 48 column 23"),
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(
                parse_instruments(Venue::BybitLinear, &body),
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
        let cases = [
            (200, None, None),
            (200, Some("600"), None),
            // "Wait for at least 10 minutes", whatever a header says.
            (403, None, rate_limited(600)),
            (403, Some("60"), rate_limited(600)),
            (403, Some("1200"), rate_limited(1200)),
            (403, Some("later"), rate_limited(600)),
            (429, None, rate_limited(60)),
            (429, Some("5"), rate_limited(5)),
            (418, Some("7200"), Some(RestFailure::Failed)),
            (404, None, Some(RestFailure::Failed)),
            (500, None, Some(RestFailure::Failed)),
            (502, Some("5"), Some(RestFailure::Failed)),
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
