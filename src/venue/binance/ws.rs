//! Binance spot and USD-M futures wire format: endpoints and routes, stream names, control
//! messages, limits, and decoding of combined-stream frames and their payloads.
//!
//! Owns no I/O. Only combined streams (`/stream`, `{"stream":..,"data":..}`) are spoken, so every
//! data frame names its stream.

use std::time::Duration;

use serde::Deserialize;

use crate::model::{ChannelKind, Sample, Venue};
use crate::venue::envelope::{self, Shape};
use crate::venue::plain;
use crate::venue::scan::{self, Split};
use crate::venue::wire::{
    BookSide, DecodeError, Frame, Heartbeat, JsonStrings, Policy, RequestId, Text, book_mid,
    decimal, field, mid, non_null, request_id, str_field,
};

pub(super) const SPOT_URL: &str = "wss://stream.binance.com:9443";
pub(super) const USDM_URL: &str = "wss://fstream.binance.com";

// The only channels documented to push on a quiet market: spot partial depth "every second",
// USD-M mark price every second. aggTrade and bookTicker add real activity on top.
pub(super) const SPOT_CHANNELS: &[&str] = &["depth5", "aggTrade"];
pub(super) const USDM_CHANNELS: &[&str] = &["markPrice@1s", "bookTicker"];

/// Renewing five minutes before the documented 24 h cut keeps the rollover ours, not the server's.
const MAX_CONNECTION_AGE: Option<Duration> = Some(Duration::from_secs(24 * 3600 - 5 * 60));

pub(super) const SPOT_POLICY: Policy = Policy {
    max_streams_per_connection: 1024,
    // No documented cap, but a 437-stream SUBSCRIBE was reported to fail silently.
    max_args_per_request: 100,
    // The 5 messages/s budget also counts our pongs, so control messages leave room for them.
    request_interval: Duration::from_millis(300),
    // Pings come every 20 s; the server itself gives up after 60 s without our pong.
    heartbeat: Heartbeat::ServerPing {
        timeout: Duration::from_secs(60),
    },
    max_connection_age: MAX_CONNECTION_AGE,
    // At most 10 + 150 attempts per 5 minutes, about half the 300 allowed per IP.
    connect_burst: 10,
    connect_refill: Duration::from_secs(2),
};

pub(super) const USDM_POLICY: Policy = Policy {
    // Current docs say 1024, older copies 200: stay within both.
    max_streams_per_connection: 200,
    max_args_per_request: 100,
    // 10 messages/s per connection.
    request_interval: Duration::from_millis(150),
    // Pings come every 3 minutes; the server gives up after 10 minutes without our pong.
    heartbeat: Heartbeat::ServerPing {
        timeout: Duration::from_secs(600),
    },
    max_connection_age: MAX_CONNECTION_AGE,
    // fstream documents no attempt limit; spot's 300 per 5 minutes is the safe ceiling.
    connect_burst: 10,
    connect_refill: Duration::from_secs(2),
};

/// A combined-stream frame announcing a shutdown rather than carrying market data.
const SHUTDOWN_STREAM: &str = "!serverShutdown";

const SPOT_SUPPORTED: &str = "bookTicker, aggTrade, trade, kline_<interval>, ticker, miniTicker, \
     depth<5|10|20>[@100ms|@1000ms]";
const USDM_SUPPORTED: &str = "bookTicker, aggTrade, markPrice, markPrice@1s, kline_<interval>, \
     ticker, miniTicker, depth<5|10|20>[@100ms|@500ms]";

/// Spot kline intervals; USD-M has all but the first (`1s`).
const KLINE_INTERVALS: [&str; 16] = [
    "1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w",
    "1M",
];
const DEPTH_LEVELS: [&str; 3] = ["5", "10", "20"];
const SPOT_DEPTH_SPEEDS: [&str; 2] = ["100ms", "1000ms"];
const USDM_DEPTH_SPEEDS: [&str; 2] = ["100ms", "500ms"];

pub(super) fn parse_channel(venue: Venue, name: &str) -> Result<ChannelKind, String> {
    let usdm = venue == Venue::BinanceUsdm;
    match name {
        "bookTicker" => Ok(ChannelKind::BookTop),
        "aggTrade" => Ok(ChannelKind::Trade),
        // `@trade` is not in the USD-M catalogue.
        "trade" if !usdm => Ok(ChannelKind::Trade),
        "markPrice" | "markPrice@1s" if usdm => Ok(ChannelKind::MarkPrice),
        "ticker" | "miniTicker" => Ok(ChannelKind::Ticker),
        _ => match (name.strip_prefix("kline_"), name.strip_prefix("depth")) {
            (Some(interval), _) => parse_kline(venue, name, interval),
            (_, Some(depth)) => parse_depth(venue, name, depth),
            _ => Err(unknown_channel(venue, name)),
        },
    }
}

/// `interval` is the name without its `kline_` prefix, e.g. `1m`.
fn parse_kline(venue: Venue, name: &str, interval: &str) -> Result<ChannelKind, String> {
    let intervals = match venue {
        Venue::BinanceUsdm => &KLINE_INTERVALS[1..],
        _ => &KLINE_INTERVALS[..],
    };
    if intervals.contains(&interval) {
        return Ok(ChannelKind::Kline);
    }
    Err(format!(
        "unknown kline interval {interval:?} in channel {name:?} for {venue} (supported: {})",
        intervals.join(", ")
    ))
}

/// `depth` is the name without its `depth` prefix, e.g. `5@100ms`.
fn parse_depth(venue: Venue, name: &str, depth: &str) -> Result<ChannelKind, String> {
    let (levels, speed) = match depth.split_once('@') {
        Some((levels, speed)) => (levels, Some(speed)),
        None => (depth, None),
    };
    if levels.is_empty() {
        // A diff-depth message lists changed levels, not the top of the book, so it has no price.
        return Err(format!(
            "diff depth channel {name:?} is not supported for {venue}: \
             its updates carry no top of book (use depth5, depth10 or depth20)"
        ));
    }
    let speeds: &[&str] = match venue {
        Venue::BinanceUsdm => &USDM_DEPTH_SPEEDS,
        _ => &SPOT_DEPTH_SPEEDS,
    };
    if DEPTH_LEVELS.contains(&levels) && speed.is_none_or(|speed| speeds.contains(&speed)) {
        Ok(ChannelKind::BookLevels)
    } else {
        Err(unknown_channel(venue, name))
    }
}

/// Spot partial depth is "pushed every second", or every 100 ms with `@100ms` (binance-spot-api-docs
/// web-socket-streams.md, "Partial Book Depth Streams"); USD-M mark price is "pushed every 3 seconds or every
/// second" (`@1s`; derivatives docs, "Mark Price Stream"). Everything else Binance sends only on change: trades,
/// book tickers, diff and USD-M partial depth ("if existing"), klines, and tickers (phrased as pushing changes).
pub(super) fn expected_interval(venue: Venue, name: &str) -> Option<Duration> {
    match (venue, name) {
        (Venue::BinanceUsdm, "markPrice") => Some(Duration::from_secs(3)),
        (Venue::BinanceUsdm, "markPrice@1s") => Some(Duration::from_secs(1)),
        (Venue::BinanceSpot, _) => {
            let depth = name.strip_prefix("depth")?;
            let (levels, speed) = depth.split_once('@').unwrap_or((depth, "1000ms"));
            if !DEPTH_LEVELS.contains(&levels) {
                return None;
            }
            match speed {
                "1000ms" => Some(Duration::from_secs(1)),
                "100ms" => Some(Duration::from_millis(100)),
                _ => None,
            }
        }
        _ => None,
    }
}

fn unknown_channel(venue: Venue, name: &str) -> String {
    let supported = if venue == Venue::BinanceUsdm {
        USDM_SUPPORTED
    } else {
        SPOT_SUPPORTED
    };
    format!("unknown channel {name:?} for {venue} (supported: {supported})")
}

pub(super) fn route(venue: Venue, kind: ChannelKind) -> &'static str {
    match (venue, kind) {
        (Venue::BinanceUsdm, ChannelKind::BookTop | ChannelKind::BookLevels) => "/public/stream",
        (Venue::BinanceUsdm, _) => "/market/stream",
        _ => "/stream",
    }
}

pub(super) fn wire_key(channel: &str, symbol: &str) -> String {
    format!("{}@{channel}", symbol.to_ascii_lowercase())
}

/// Request shape (binance-spot-api-docs web-socket-streams.md, "Subscribe to a stream"):
/// `{"method":"SUBSCRIBE","params":["btcusdt@aggTrade","btcusdt@depth"],"id":1}`.
pub(super) fn request(method: &str, keys: &[&str], id: RequestId) -> String {
    format!(
        r#"{{"method":"{method}","params":{},"id":{id}}}"#,
        JsonStrings(keys)
    )
}

/// The `error` object of a refused request (real, ctubio/Krypto-trading-bot#1121):
/// `{"code":2,"msg":"Invalid request: invalid stream"}`.
#[derive(Deserialize)]
struct BinanceError<'a> {
    #[serde(borrow)]
    msg: Text<'a>,
}

/// Classifies any frame on a combined-stream connection by which members are present:
///
/// - data (real, cryptofeed capture of stream.binance.com, 2021-10-11):
///   `{"stream":"nknusdt@bookTicker","data":{"u":499869768,"s":"NKNUSDT","b":"0.35210000",...}}`
/// - ack (binance-spot-api-docs web-socket-streams.md, "Subscribe to a stream"):
///   `{"result":null,"id":1}`
/// - list result (same, "Listing Subscriptions"): `{"result":["btcusdt@aggTrade"],"id":3}`
/// - error (real frame quoted in ctubio/Krypto-trading-bot#1121):
///   `{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":2}`; the docs' table shows
///   it flat, `{"code":2,"msg":"Invalid request: ...","id":..}`
/// - shutdown (web-socket-streams.md, "Server Shutdown"):
///   `{"e":"serverShutdown","E":1770123456789}`, or combined
///   `{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}`
pub(super) fn decode_frame(text: &str, split: Split) -> Result<Frame<'_>, DecodeError> {
    if split == Split::Presume
        && let Some(parts) = envelope::split(text, &DATA)
        && parts.name != SHUTDOWN_STREAM
    {
        return Ok(Frame::Data {
            key: parts.name,
            payload: parts.payload,
            ts_ms: None,
        });
    }
    let [stream, data, result, id, error, msg, event] = scan::pick_data(
        text,
        ["stream", "data", "result", "id", "error", "msg", "e"],
        "data",
        split,
    )?;
    // Every member read is type-checked before any is acted on, so a frame is malformed or not
    // whatever its shape turns out to be.
    let stream = str_field(stream)?;
    let error: Option<BinanceError<'_>> = field(error)?;
    let msg: Option<Text<'_>> = field(msg)?;
    let event = str_field(event)?;
    if let Some(key) = stream {
        if key == SHUTDOWN_STREAM {
            return Ok(Frame::ServerShutdown);
        }
        let payload =
            non_null(data).ok_or(DecodeError::UnexpectedShape("stream frame without data"))?;
        return Ok(Frame::Data {
            key,
            payload,
            ts_ms: None,
        });
    }
    if event == Some("serverShutdown") {
        return Ok(Frame::ServerShutdown);
    }
    // Read raw: Binance ids may also be strings or `null`, which are not ours.
    let id = id.and_then(request_id);
    if let Some(Text(reason)) = error.map(|error| error.msg).or(msg) {
        return Ok(Frame::Rejected { id, reason });
    }
    match (result, id) {
        // `"result":null` is an accepted request; any other result answers a query.
        (Some("null"), Some(id)) => Ok(Frame::Ack { id: Some(id) }),
        (Some(_), _) => Ok(Frame::Other),
        (None, _) => Err(DecodeError::UnexpectedShape(
            "neither stream data, a reply nor an event",
        )),
    }
}

/// Every data frame: `{"stream":"<name>","data":<payload>}`.
const DATA: Shape = Shape {
    name: "stream",
    time: None,
    ignored: &[],
};

/// `<symbol>@bookTicker`. Spot has no event time (real, cryptofeed capture of stream.binance.com,
/// 2021-10-11):
///
/// ```json
/// {"u":499869768,"s":"NKNUSDT","b":"0.35210000","B":"672.00000000","a":"0.35260000",
///  "A":"3199.00000000"}
/// ```
///
/// USD-M adds `E` (real ETHUSDT frame, July 2026, nemanull/arbitrage-observatory
/// docs/profiles/binance/websocket.md):
///
/// ```json
/// {"e":"bookTicker","u":11139947831981,"s":"ETHUSDT","ps":"ETHUSDT","b":"1943.64","B":"113.445",
///  "a":"1943.65","A":"182.433","T":1785121247583,"E":1785121247584,"st":1}
/// ```
#[derive(Deserialize)]
struct BookTop<'a> {
    #[serde(rename = "b")]
    bid: &'a str,
    #[serde(rename = "a")]
    ask: &'a str,
    #[serde(rename = "E")]
    event_time: Option<i64>,
}

pub(super) fn decode_book_ticker(payload: &str) -> Result<Sample, DecodeError> {
    let ticker = plain_book_top(payload).map_or_else(|| serde_json::from_str(payload), Ok)?;
    let price = mid(decimal("b", ticker.bid)?, decimal("a", ticker.ask)?)?;
    Ok(Sample {
        event_time_ms: ticker.event_time,
        price: Some(price),
    })
}

/// `<symbol>@aggTrade` and `<symbol>@trade` (real, cryptofeed capture of stream.binance.com,
/// 2021-10-11):
///
/// ```json
/// {"e":"aggTrade","E":1633998523963,"s":"NKNUSDT","a":15683430,"p":"0.35280000",
///  "q":"58.00000000","f":19862790,"l":19862790,"T":1633998523963,"m":false,"M":true}
/// ```
#[derive(Deserialize)]
struct Trade<'a> {
    #[serde(rename = "p")]
    price: &'a str,
    #[serde(rename = "E")]
    event_time: i64,
}

pub(super) fn decode_trade(payload: &str) -> Result<Sample, DecodeError> {
    let trade = match plain_priced(payload, "p") {
        Some((price, event_time)) => Trade { price, event_time },
        None => serde_json::from_str(payload)?,
    };
    Ok(Sample {
        event_time_ms: Some(trade.event_time),
        price: Some(decimal("p", trade.price)?),
    })
}

/// [`BookTop`] read without serde from a payload in the plain form Binance writes; `None` for serde to read.
#[inline]
fn plain_book_top(payload: &str) -> Option<BookTop<'_>> {
    let [Some(bid), Some(ask), event_time] = plain::flat(payload, ["b", "a", "E"])? else {
        return None;
    };
    Some(BookTop {
        bid: bid.str(payload)?,
        ask: ask.str(payload)?,
        event_time: match event_time {
            Some(time) => Some(time.i64(payload)?),
            None => None,
        },
    })
}

/// The price member `price` and the event time `E` read without serde from a payload in the plain form Binance
/// writes; `None` for serde to read.
#[inline]
fn plain_priced<'a>(payload: &'a str, price: &str) -> Option<(&'a str, i64)> {
    let [Some(value), Some(event_time)] = plain::flat(payload, [price, "E"])? else {
        return None;
    };
    Some((value.str(payload)?, event_time.i64(payload)?))
}

/// USD-M `<symbol>@markPrice[@1s]` (binance-connector-rust, USD-M market_api.rs, from Binance's
/// OpenAPI examples):
///
/// ```json
/// {"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT","p":"11794.15000000",
///  "i":"11784.62659091","P":"11784.25641265","r":"0.00038167","ap":"11794.15000000",
///  "T":1562306400000,"st":1}
/// ```
#[derive(Deserialize)]
struct MarkPrice<'a> {
    #[serde(rename = "p")]
    mark_price: &'a str,
    #[serde(rename = "E")]
    event_time: i64,
}

pub(super) fn decode_mark_price(payload: &str) -> Result<Sample, DecodeError> {
    let mark = match plain_priced(payload, "p") {
        Some((mark_price, event_time)) => MarkPrice {
            mark_price,
            event_time,
        },
        None => serde_json::from_str(payload)?,
    };
    Ok(Sample {
        event_time_ms: Some(mark.event_time),
        price: Some(decimal("p", mark.mark_price)?),
    })
}

/// `<symbol>@kline_<interval>` (real, cryptofeed capture of stream.binance.com, 2021-10-11):
///
/// ```json
/// {"e":"kline","E":1633998523963,"s":"NKNUSDT","k":{"t":1633998480000,"T":1633998539999,
///  "s":"NKNUSDT","i":"1m",...,"o":"0.35270000","c":"0.35280000","h":"0.35280000",
///  "l":"0.35220000",...,"x":false,...}}
/// ```
#[derive(Deserialize)]
struct Kline<'a> {
    #[serde(rename = "E")]
    event_time: i64,
    #[serde(rename = "k", borrow)]
    bar: BinanceKlineBar<'a>,
}

/// The `k` object of [`Kline`]; `c` is the close so far.
#[derive(Deserialize)]
struct BinanceKlineBar<'a> {
    #[serde(rename = "c")]
    close: &'a str,
}

pub(super) fn decode_kline(payload: &str) -> Result<Sample, DecodeError> {
    let kline: Kline<'_> = serde_json::from_str(payload)?;
    Ok(Sample {
        event_time_ms: Some(kline.event_time),
        price: Some(decimal("k.c", kline.bar.close)?),
    })
}

/// `<symbol>@ticker` and `<symbol>@miniTicker` (binance-spot-api-docs web-socket-streams.md,
/// "Individual Symbol Mini Ticker Stream"):
///
/// ```json
/// {"e":"24hrMiniTicker","E":1672515782136,"s":"BNBBTC","c":"0.0025","o":"0.0010","h":"0.0025",
///  "l":"0.0010","v":"10000","q":"18"}
/// ```
#[derive(Deserialize)]
struct Ticker<'a> {
    #[serde(rename = "c")]
    last_price: &'a str,
    #[serde(rename = "E")]
    event_time: i64,
}

pub(super) fn decode_ticker(payload: &str) -> Result<Sample, DecodeError> {
    let ticker = match plain_priced(payload, "c") {
        Some((last_price, event_time)) => Ticker {
            last_price,
            event_time,
        },
        None => serde_json::from_str(payload)?,
    };
    Ok(Sample {
        event_time_ms: Some(ticker.event_time),
        price: Some(decimal("c", ticker.last_price)?),
    })
}

/// Spot `<symbol>@depth<5|10|20>[@100ms|@1000ms]`, best levels first, no event time
/// (binance-spot-api-docs web-socket-streams.md, "Partial Book Depth Streams"):
/// `{"lastUpdateId":160,"bids":[["0.0024","10"]],"asks":[["0.0026","100"]]}`.
#[derive(Deserialize)]
struct SpotPartialDepth<'a> {
    #[serde(borrow)]
    bids: BookSide<'a>,
    #[serde(borrow)]
    asks: BookSide<'a>,
}

pub(super) fn decode_spot_partial_depth(payload: &str) -> Result<Sample, DecodeError> {
    let depth: SpotPartialDepth<'_> = serde_json::from_str(payload)?;
    Ok(Sample {
        event_time_ms: None,
        price: book_mid(depth.bids, depth.asks)?,
    })
}

/// USD-M `<symbol>@depth<5|10|20>[@100ms|@500ms]`, a top-of-book snapshot in the
/// `depthUpdate` shape, best levels first (Binance USD-M docs, "Partial Book Depth Streams"):
///
/// ```json
/// {"e":"depthUpdate","E":1571889248277,"T":1571889248276,"s":"BTCUSDT","U":390497796,
///  "u":390497878,"pu":390497794,"b":[["7403.89","0.002"],...],"a":[["7405.96","3.340"],...]}
/// ```
#[derive(Deserialize)]
struct DepthUpdate<'a> {
    #[serde(rename = "E")]
    event_time: i64,
    #[serde(rename = "b", borrow)]
    bids: BookSide<'a>,
    #[serde(rename = "a", borrow)]
    asks: BookSide<'a>,
}

pub(super) fn decode_depth_update(payload: &str) -> Result<Sample, DecodeError> {
    let depth: DepthUpdate<'_> = serde_json::from_str(payload)?;
    Ok(Sample {
        event_time_ms: Some(depth.event_time),
        price: book_mid(depth.bids, depth.asks)?,
    })
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use rust_decimal::Decimal;

    use crate::model::{ChannelKind, Sample, Venue};
    use crate::venue::{
        DecodeError, Frame, assert_outcome, decode_frame, decode_sample, parse_channel,
        ping_message, route, subscribe_message, unsubscribe_message, wire_key,
    };

    fn dec(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    /// Wraps a raw payload the way a combined stream delivers it.
    fn combined(key: &str, payload: &str) -> String {
        format!(r#"{{"stream":"{key}","data":{payload}}}"#)
    }

    #[test]
    fn decodes_data_frames() {
        use Venue::{BinanceSpot as Spot, BinanceUsdm as Usdm};
        let cases = [
            (
                Spot,
                "depth5",
                combined("bnbbtc@depth5", fixture!("binance-spot/depth-partial.json")),
                "bnbbtc@depth5",
                "0.0025",
                None,
            ),
            (
                Spot,
                "bookTicker",
                fixture!("binance-spot/combined-bookTicker-real.json").to_owned(),
                "nknusdt@bookTicker",
                "0.35235",
                None,
            ),
            (
                Spot,
                "aggTrade",
                fixture!("binance-spot/combined-aggTrade-real.json").to_owned(),
                "nknusdt@aggTrade",
                "0.3528",
                Some(1633998523963),
            ),
            (
                Spot,
                "kline_1m",
                fixture!("binance-spot/combined-kline-real.json").to_owned(),
                "nknusdt@kline_1m",
                "0.3528",
                Some(1633998523963),
            ),
            (
                Spot,
                "trade",
                combined("bnbbtc@trade", fixture!("binance-spot/trade.json")),
                "bnbbtc@trade",
                "0.001",
                Some(1672515782136),
            ),
            (
                Spot,
                "ticker",
                combined("bnbbtc@ticker", fixture!("binance-spot/ticker-24hr.json")),
                "bnbbtc@ticker",
                "0.0025",
                Some(1672515782136),
            ),
            (
                Spot,
                "miniTicker",
                combined(
                    "bnbbtc@miniTicker",
                    fixture!("binance-spot/miniTicker.json"),
                ),
                "bnbbtc@miniTicker",
                "0.0025",
                Some(1672515782136),
            ),
            (
                Usdm,
                "ticker",
                combined("bnbusdt@ticker", fixture!("binance-usdm/ticker-24hr.json")),
                "bnbusdt@ticker",
                "0.0025",
                Some(123456789),
            ),
            (
                Usdm,
                "markPrice@1s",
                combined(
                    "btcusdt@markPrice@1s",
                    fixture!("binance-usdm/markPriceUpdate.json"),
                ),
                "btcusdt@markPrice@1s",
                "11794.15",
                Some(1562305380000),
            ),
            (
                Usdm,
                "bookTicker",
                combined(
                    "ethusdt@bookTicker",
                    fixture!("binance-usdm/bookTicker-2026-real.json"),
                ),
                "ethusdt@bookTicker",
                "1943.645",
                Some(1785121247584),
            ),
            (
                Usdm,
                "aggTrade",
                combined("bnbusdt@aggTrade", fixture!("binance-usdm/aggTrade.json")),
                "bnbusdt@aggTrade",
                "0.001",
                Some(123456789),
            ),
            (
                Usdm,
                "depth5",
                combined(
                    "btcusdt@depth5",
                    fixture!("binance-usdm/depth5-partial-doc.json"),
                ),
                "btcusdt@depth5",
                "7404.925",
                Some(1571889248277),
            ),
            (
                Usdm,
                "kline_1m",
                combined("btcusdt@kline_1m", fixture!("binance-usdm/kline_1m.json")),
                "btcusdt@kline_1m",
                "0.002",
                Some(1638747660000),
            ),
            (
                Usdm,
                "miniTicker",
                combined(
                    "bnbusdt@miniTicker",
                    fixture!("binance-usdm/miniTicker.json"),
                ),
                "bnbusdt@miniTicker",
                "0.0025",
                Some(123456789),
            ),
        ];
        for (venue, channel, text, key, price, event_time) in cases {
            let kind = parse_channel(venue, channel).unwrap();
            let Ok(Frame::Data {
                key: got_key,
                payload,
                ts_ms: None,
            }) = decode_frame(venue, &text)
            else {
                panic!(
                    "{venue} {channel}: not a data frame: {:?}",
                    decode_frame(venue, &text)
                );
            };
            assert_eq!(got_key, key);
            assert_eq!(
                decode_sample(venue, kind, payload, None),
                Ok(Sample {
                    event_time_ms: event_time,
                    price: Some(dec(price))
                }),
                "{venue} {channel}"
            );
        }
    }

    #[test]
    fn decodes_control_frames() {
        let cases = [
            (
                fixture!("binance-spot/subscribe-ack.json"),
                Frame::Ack { id: Some(1) },
            ),
            (
                fixture!("binance-spot/unsubscribe-ack.json"),
                Frame::Ack { id: Some(312) },
            ),
            (
                fixture!("binance-spot/list-subscriptions-response.json"),
                Frame::Other,
            ),
            (
                fixture!("binance-spot/error-invalid-stream.json"),
                Frame::Rejected {
                    id: Some(2),
                    reason: "Invalid request: invalid stream".into(),
                },
            ),
            // The docs' flat error form, and an id that is not one of ours.
            (
                r#"{"code":0,"msg":"Unknown property","id":"abc"}"#,
                Frame::Rejected {
                    id: None,
                    reason: "Unknown property".into(),
                },
            ),
            (
                r#"{"error":{"code":3,"msg":"Invalid JSON: \"x\""},"id":null}"#,
                Frame::Rejected {
                    id: None,
                    reason: r#"Invalid JSON: "x""#.into(),
                },
            ),
            (r#"{"result":null,"id":"client-7"}"#, Frame::Other),
            (
                fixture!("binance-spot/server-shutdown.json"),
                Frame::ServerShutdown,
            ),
            (
                fixture!("binance-spot/server-shutdown-combined.json"),
                Frame::ServerShutdown,
            ),
        ];
        for venue in [Venue::BinanceSpot, Venue::BinanceUsdm] {
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
    fn rejection_reason_borrows_from_the_frame() {
        let text = fixture!("binance-spot/error-invalid-stream.json");
        let Ok(Frame::Rejected { reason, .. }) = decode_frame(Venue::BinanceSpot, text) else {
            panic!()
        };
        assert!(matches!(reason, Cow::Borrowed(_)));
    }

    #[test]
    fn rejects_malformed_frames() {
        let shape = |what| Err(DecodeError::UnexpectedShape(what));
        let neither = shape("neither stream data, a reply nor an event");
        let cases = [
            (r#"{"stream":"btcusdt@aggTrade","data":{"e":"agg"#, None),
            ("{}", Some(neither.clone())),
            ("42", None),
            ("", None),
            (r#"{"id":1}"#, Some(neither.clone())),
            (r#"{"e":"aggTrade","E":1,"p":"1"}"#, Some(neither)),
            (
                r#"{"stream":"btcusdt@aggTrade"}"#,
                Some(shape("stream frame without data")),
            ),
            (r#"{"stream":7,"data":{}}"#, None),
        ];
        for (text, expected) in cases {
            assert_outcome(decode_frame(Venue::BinanceSpot, text), expected, text);
        }
    }

    #[test]
    fn rejects_bad_payloads() {
        use ChannelKind::*;
        use Venue::{BinanceSpot as Spot, BinanceUsdm as Usdm};
        let bad = |field| Err(DecodeError::BadNumber(field));
        let none = Ok(Sample {
            event_time_ms: None,
            price: None,
        });
        let cases = [
            (Spot, Trade, r#"{"E":1,"p":"abc"}"#, Some(bad("p"))),
            (Spot, Trade, r#"{"E":1,"p":""}"#, Some(bad("p"))),
            (Spot, Trade, r#"{"E":1}"#, None),
            (Spot, Trade, r#"{"E":"1","p":"1"}"#, None),
            (Usdm, MarkPrice, r#"{"E":1,"p":1.5}"#, None),
            (Spot, BookTop, r#"{"b":"1","a":"x"}"#, Some(bad("a"))),
            (Spot, Kline, r#"{"E":1,"k":{}}"#, None),
            (Spot, Ticker, r#"{"E":1,"c":"NaN"}"#, Some(bad("c"))),
            (
                Spot,
                BookLevels,
                r#"{"bids":[],"asks":[["1","2"]]}"#,
                Some(none),
            ),
            (
                Spot,
                BookLevels,
                r#"{"bids":[["x","1"]],"asks":[["1","2"]]}"#,
                Some(bad("bid")),
            ),
            (
                Usdm,
                BookLevels,
                r#"{"E":5,"b":[["1","2"]],"a":[]}"#,
                Some(Ok(Sample {
                    event_time_ms: Some(5),
                    price: None,
                })),
            ),
            (
                Usdm,
                BookLevels,
                r#"{"E":5,"b":[["1","2"]],"a":null}"#,
                None,
            ),
            (Usdm, BookLevels, "[", None),
        ];
        for (venue, kind, payload, expected) in cases {
            let got = decode_sample(venue, kind, payload, None);
            assert_outcome(got, expected, &format!("{venue} {kind:?} {payload}"));
        }
    }

    #[test]
    fn parses_channels() {
        use ChannelKind::*;
        use Venue::{BinanceSpot as Spot, BinanceUsdm as Usdm};
        let ok = [
            (Spot, "bookTicker", BookTop),
            (Spot, "aggTrade", Trade),
            (Spot, "trade", Trade),
            (Spot, "kline_1s", Kline),
            (Spot, "kline_1M", Kline),
            (Spot, "ticker", Ticker),
            (Spot, "miniTicker", Ticker),
            (Spot, "depth5", BookLevels),
            (Spot, "depth10@100ms", BookLevels),
            (Spot, "depth20@1000ms", BookLevels),
            (Usdm, "bookTicker", BookTop),
            (Usdm, "aggTrade", Trade),
            (Usdm, "markPrice", MarkPrice),
            (Usdm, "markPrice@1s", MarkPrice),
            (Usdm, "kline_1m", Kline),
            (Usdm, "kline_12h", Kline),
            (Usdm, "ticker", Ticker),
            (Usdm, "miniTicker", Ticker),
            (Usdm, "depth5", BookLevels),
            (Usdm, "depth20@500ms", BookLevels),
            (Usdm, "depth10@500ms", BookLevels),
        ];
        for (venue, name, kind) in ok {
            assert_eq!(parse_channel(venue, name), Ok(kind), "{venue} {name}");
        }

        let spot_list = "bookTicker, aggTrade, trade, kline_<interval>, ticker, miniTicker, \
                         depth<5|10|20>[@100ms|@1000ms]";
        let usdm_list = "bookTicker, aggTrade, markPrice, markPrice@1s, kline_<interval>, ticker, \
                         miniTicker, depth<5|10|20>[@100ms|@500ms]";
        let err = [
            (Spot, "foo", format!(r#"unknown channel "foo" for binance/spot (supported: {spot_list})"#)),
            (Spot, "markPrice", format!(r#"unknown channel "markPrice" for binance/spot (supported: {spot_list})"#)),
            (Spot, "BookTicker", format!(r#"unknown channel "BookTicker" for binance/spot (supported: {spot_list})"#)),
            (Usdm, "trade", format!(r#"unknown channel "trade" for binance/usdm (supported: {usdm_list})"#)),
            (Spot, "depth15", format!(r#"unknown channel "depth15" for binance/spot (supported: {spot_list})"#)),
            (Spot, "depth5@250ms", format!(r#"unknown channel "depth5@250ms" for binance/spot (supported: {spot_list})"#)),
            (Usdm, "depth5@1000ms", format!(r#"unknown channel "depth5@1000ms" for binance/usdm (supported: {usdm_list})"#)),
            (Usdm, "depth5@250ms", format!(r#"unknown channel "depth5@250ms" for binance/usdm (supported: {usdm_list})"#)),
            (
                Spot,
                "depth",
                r#"diff depth channel "depth" is not supported for binance/spot: its updates carry no top of book (use depth5, depth10 or depth20)"#.to_owned(),
            ),
            (
                Usdm,
                "depth@100ms",
                r#"diff depth channel "depth@100ms" is not supported for binance/usdm: its updates carry no top of book (use depth5, depth10 or depth20)"#.to_owned(),
            ),
            (
                Usdm,
                "kline_1s",
                r#"unknown kline interval "1s" in channel "kline_1s" for binance/usdm (supported: 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, 8h, 12h, 1d, 3d, 1w, 1M)"#.to_owned(),
            ),
            (
                Spot,
                "kline_7m",
                r#"unknown kline interval "7m" in channel "kline_7m" for binance/spot (supported: 1s, 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, 8h, 12h, 1d, 3d, 1w, 1M)"#.to_owned(),
            ),
        ];
        for (venue, name, reason) in err {
            assert_eq!(parse_channel(venue, name), Err(reason), "{venue} {name}");
        }
    }

    #[test]
    fn routes() {
        use ChannelKind::*;
        let cases = [
            (Venue::BinanceSpot, BookTop, "/stream"),
            (Venue::BinanceSpot, BookLevels, "/stream"),
            (Venue::BinanceSpot, Trade, "/stream"),
            (Venue::BinanceUsdm, BookTop, "/public/stream"),
            (Venue::BinanceUsdm, BookLevels, "/public/stream"),
            (Venue::BinanceUsdm, Trade, "/market/stream"),
            (Venue::BinanceUsdm, MarkPrice, "/market/stream"),
            (Venue::BinanceUsdm, Kline, "/market/stream"),
            (Venue::BinanceUsdm, Ticker, "/market/stream"),
        ];
        for (venue, kind, path) in cases {
            assert_eq!(route(venue, kind), path, "{venue} {kind:?}");
        }
    }

    #[test]
    fn builds_wire_keys_and_messages() {
        assert_eq!(
            wire_key(Venue::BinanceUsdm, "markPrice@1s", "BTCUSDT"),
            "btcusdt@markPrice@1s"
        );
        assert_eq!(
            wire_key(Venue::BinanceSpot, "depth5", "EthUsdt"),
            "ethusdt@depth5"
        );

        let subscribe = subscribe_message(
            Venue::BinanceSpot,
            &["btcusdt@aggTrade", "btcusdt@depth"],
            1,
        );
        assert_eq!(
            subscribe,
            r#"{"method":"SUBSCRIBE","params":["btcusdt@aggTrade","btcusdt@depth"],"id":1}"#
        );
        let unsubscribe = unsubscribe_message(Venue::BinanceUsdm, &["btcusdt@depth"], 312);
        assert_eq!(
            unsubscribe,
            r#"{"method":"UNSUBSCRIBE","params":["btcusdt@depth"],"id":312}"#
        );

        // Same JSON as the docs' own requests.
        let json = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap();
        assert_eq!(
            json(&subscribe),
            json(fixture!("binance-spot/subscribe-request.json"))
        );
        assert_eq!(
            json(&unsubscribe),
            json(fixture!("binance-spot/unsubscribe-request.json"))
        );

        assert_eq!(ping_message(Venue::BinanceSpot, 1), None);
        assert_eq!(ping_message(Venue::BinanceUsdm, 1), None);
    }
}
