//! Binance spot and USD-M public REST as the fake speaks them: paths, request weights, error bodies, and
//! payloads shaped like `exchange-fixtures/binance-spot/rest-*.json` and the real USD-M `exchangeInfo`
//! capture `binance-usdm/rest-exchangeInfo-2021-real.json` (keys, order, types; values substituted).
//!
//! Knows no sockets, state locking or failure queue: `mod.rs` drives it. `exchangeInfo` filters
//! (`symbol`, `symbols`, `symbolStatus`, `permissions`) are ignored.

use axum::http::StatusCode;

use super::json::{Obj, array};
use super::{Clock, Endpoint, Market, Reply, RestKind, param, split_symbol};

/// `REQUEST_WEIGHT` per minute, as `exchangeInfo.rateLimits` advertises it: the spot docs' example
/// and the real USD-M capture.
const SPOT_WEIGHT_LIMIT: u32 = 6000;
const USDM_WEIGHT_LIMIT: u32 = 2400;
/// A 418 without `Retry-After` bans for Binance's shortest ban, 2 minutes.
const DEFAULT_BAN_SECS: i128 = 120;
/// Binance's rule for symbol parameters; anything else is refused before the symbol is looked up.
const SYMBOL_RULE: &str = "^[A-Z0-9-_.]{1,20}$";

/// Spot `rateLimits`: the two IP pools from the spot docs (the doc example itself is a placeholder).
const SPOT_RATE_LIMITS: &str = r#"[{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000},{"rateLimitType":"RAW_REQUESTS","interval":"MINUTE","intervalNum":5,"limit":61000}]"#;
/// Spot `sors`, verbatim from the doc example.
const SPOT_SORS: &str = r#"[{"baseAsset":"BTC","symbols":["BTCUSDT","BTCUSDC"]}]"#;
const SPOT_ORDER_TYPES: &str = r#"["LIMIT","LIMIT_MAKER","MARKET","STOP_LOSS","STOP_LOSS_LIMIT","TAKE_PROFIT","TAKE_PROFIT_LIMIT"]"#;
/// USD-M `rateLimits`, verbatim from the real capture.
const USDM_RATE_LIMITS: &str = r#"[{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":2400},{"rateLimitType":"ORDERS","interval":"MINUTE","intervalNum":1,"limit":1200},{"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":300}]"#;
/// USD-M `assets`, the first two of the real capture.
const USDM_ASSETS: &str = r#"[{"asset":"USDT","marginAvailable":true,"autoAssetExchange":"-10000"},{"asset":"BTC","marginAvailable":true,"autoAssetExchange":"-0.00100000"}]"#;
/// USD-M per-symbol `filters`, `orderTypes` and `timeInForce`, verbatim from the capture's BTCUSDT.
const USDM_FILTERS: &str = r#"[{"minPrice":"556.72","maxPrice":"1000000","filterType":"PRICE_FILTER","tickSize":"0.01"},{"stepSize":"0.001","filterType":"LOT_SIZE","maxQty":"1000","minQty":"0.001"},{"stepSize":"0.001","filterType":"MARKET_LOT_SIZE","maxQty":"1000","minQty":"0.001"},{"limit":200,"filterType":"MAX_NUM_ORDERS"},{"limit":10,"filterType":"MAX_NUM_ALGO_ORDERS"},{"notional":"5","filterType":"MIN_NOTIONAL"},{"multiplierDown":"0.8500","multiplierUp":"1.1500","multiplierDecimal":"4","filterType":"PERCENT_PRICE"}]"#;
const USDM_ORDER_TYPES: &str = r#"["LIMIT","MARKET","STOP","STOP_MARKET","TAKE_PROFIT","TAKE_PROFIT_MARKET","TRAILING_STOP_MARKET"]"#;
const USDM_TIME_IN_FORCE: &str = r#"["GTC","IOC","FOK","GTX"]"#;

/// The endpoint behind a request path of this market.
pub(super) fn endpoint(kind: RestKind, path: &str) -> Option<Endpoint> {
    let usdm = kind == RestKind::BinanceUsdm;
    match path {
        "/api/v3/time" if !usdm => Some(Endpoint::Time),
        "/api/v3/exchangeInfo" if !usdm => Some(Endpoint::Instruments),
        "/api/v3/ticker/price" if !usdm => Some(Endpoint::Ticker),
        "/fapi/v1/time" if usdm => Some(Endpoint::Time),
        "/fapi/v1/exchangeInfo" if usdm => Some(Endpoint::Instruments),
        "/fapi/v2/ticker/price" if usdm => Some(Endpoint::Ticker),
        _ => None,
    }
}

/// The documented request weight (rest-api.md; USD-M market-data API).
pub(super) fn weight(kind: RestKind, endpoint: Endpoint, query: &[(String, String)]) -> u32 {
    let usdm = kind == RestKind::BinanceUsdm;
    let one_symbol = param(query, "symbol").is_some();
    match (endpoint, usdm, one_symbol) {
        (Endpoint::Time, _, _) | (Endpoint::Instruments, true, _) => 1,
        (Endpoint::Instruments, false, _) => 20,
        (Endpoint::Ticker, false, true) | (Endpoint::Ticker, true, false) => 2,
        (Endpoint::Ticker, false, false) => 4,
        (Endpoint::Ticker, true, true) => 1,
    }
}

/// A successful or refused answer from the market's current listing and prices.
pub(super) fn answer(
    kind: RestKind,
    endpoint: Endpoint,
    query: &[(String, String)],
    market: &Market,
    clock: Clock,
) -> Reply {
    let usdm = kind == RestKind::BinanceUsdm;
    let body = match endpoint {
        Endpoint::Time => Obj::new().json("serverTime", clock.ms()).end(),
        Endpoint::Instruments if usdm => usdm_exchange_info(market, clock),
        Endpoint::Instruments => spot_exchange_info(market, clock),
        Endpoint::Ticker => match param(query, "symbol") {
            None => array(
                market
                    .tickers()
                    .into_iter()
                    .map(|(s, p)| ticker(usdm, s, p, clock)),
            ),
            Some(symbol) if !legal_symbol(symbol) => {
                let msg = format!(
                    "Illegal characters found in parameter 'symbol'; legal range is '{SYMBOL_RULE}'."
                );
                return Reply::json(StatusCode::BAD_REQUEST, error(-1100, &msg));
            }
            Some(symbol) => match market.price(symbol) {
                Some(price) => ticker(usdm, symbol, price, clock),
                None => {
                    return Reply::json(StatusCode::BAD_REQUEST, error(-1121, "Invalid symbol."));
                }
            },
        },
    };
    Reply::json(StatusCode::OK, body)
}

/// Binance's body for an injected failure: `-1003` for 429 and 418 (as logged from the real API),
/// `-1001` for anything else.
pub(super) fn refusal(
    kind: RestKind,
    status: StatusCode,
    retry_after: Option<&str>,
    clock: Clock,
) -> Reply {
    let usdm = kind == RestKind::BinanceUsdm;
    let msg = match status {
        StatusCode::TOO_MANY_REQUESTS if usdm => format!(
            "Too many requests; current limit of IP(127.0.0.1) is {USDM_WEIGHT_LIMIT} requests per minute. \
             Please use the websocket for live updates to avoid polling the API."
        ),
        StatusCode::TOO_MANY_REQUESTS => format!(
            "Too much request weight used; current limit is {SPOT_WEIGHT_LIMIT} request weight per 1 MINUTE. \
             Please use WebSocket Streams for live updates to avoid polling the API."
        ),
        StatusCode::IM_A_TEAPOT => {
            let secs = retry_after
                .and_then(|s| s.parse().ok())
                .unwrap_or(DEFAULT_BAN_SECS);
            format!(
                "Way too many requests; IP(127.0.0.1) banned until {}. Please use the websocket for live \
                 updates to avoid bans.",
                clock.ms().saturating_add(secs.saturating_mul(1000))
            )
        }
        _ => {
            let msg = "Internal error; unable to process your request. Please try again.";
            return Reply::json(status, error(-1001, msg));
        }
    };
    Reply::json(status, error(-1003, &msg))
}

/// `{"code":-1121,"msg":"Invalid symbol."}`.
fn error(code: i64, msg: &str) -> String {
    Obj::new().json("code", code).str("msg", msg).end()
}

fn legal_symbol(symbol: &str) -> bool {
    (1..=20).contains(&symbol.len())
        && symbol
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

/// `{"symbol":"LTCBTC","price":"4.00000200"}` (spot) or `{"symbol","price","time"}` (USD-M v2).
fn ticker(usdm: bool, symbol: &str, price: &str, clock: Clock) -> String {
    Obj::new()
        .str("symbol", symbol)
        .str("price", price)
        .when(usdm, |o| o.json("time", clock.ms()))
        .end()
}

/// Shaped like `binance-spot/rest-exchangeInfo-doc.json`.
fn spot_exchange_info(market: &Market, clock: Clock) -> String {
    let symbols = market.instruments.iter().map(|i| {
        let (base, quote) = split_symbol(&i.symbol);
        Obj::new()
            .str("symbol", &i.symbol)
            .str("status", &i.status)
            .str("baseAsset", base)
            .json("baseAssetPrecision", 8)
            .str("quoteAsset", quote)
            .json("quotePrecision", 8)
            .json("quoteAssetPrecision", 8)
            .json("baseCommissionPrecision", 8)
            .json("quoteCommissionPrecision", 8)
            .json("orderTypes", SPOT_ORDER_TYPES)
            .json("icebergAllowed", true)
            .json("ocoAllowed", true)
            .json("otoAllowed", true)
            .json("opoAllowed", true)
            .json("quoteOrderQtyMarketAllowed", true)
            .json("allowTrailingStop", false)
            .json("cancelReplaceAllowed", false)
            .json("amendAllowed", false)
            .json("pegInstructionsAllowed", true)
            .json("isSpotTradingAllowed", true)
            .json("isMarginTradingAllowed", true)
            .json("filters", "[]")
            .json("permissions", "[]")
            .json("permissionSets", r#"[["SPOT","MARGIN"]]"#)
            .str("defaultSelfTradePreventionMode", "NONE")
            .json("allowedSelfTradePreventionModes", r#"["NONE"]"#)
            .end()
    });
    Obj::new()
        .str("timezone", "UTC")
        .json("serverTime", clock.ms())
        .json("rateLimits", SPOT_RATE_LIMITS)
        .json("exchangeFilters", "[]")
        .json("symbols", array(symbols))
        .json("sors", SPOT_SORS)
        .end()
}

/// Shaped like `binance-usdm/rest-exchangeInfo-2021-real.json`; every symbol is a perpetual.
fn usdm_exchange_info(market: &Market, clock: Clock) -> String {
    let symbols = market.instruments.iter().map(|i| {
        let (base, quote) = split_symbol(&i.symbol);
        Obj::new()
            .str("symbol", &i.symbol)
            .str("pair", &i.symbol)
            .str("contractType", "PERPETUAL")
            .json("deliveryDate", 4_133_404_800_000_u64)
            .json("onboardDate", 1_569_398_400_000_u64)
            .str("status", &i.status)
            .str("maintMarginPercent", "2.5000")
            .str("requiredMarginPercent", "5.0000")
            .str("baseAsset", base)
            .str("quoteAsset", quote)
            .str("marginAsset", quote)
            .json("pricePrecision", 2)
            .json("quantityPrecision", 3)
            .json("baseAssetPrecision", 8)
            .json("quotePrecision", 8)
            .str("underlyingType", "COIN")
            .json("underlyingSubType", "[]")
            .json("settlePlan", 0)
            .str("triggerProtect", "0.0500")
            .str("liquidationFee", "0.012000")
            .str("marketTakeBound", "0.30")
            .json("filters", USDM_FILTERS)
            .json("orderTypes", USDM_ORDER_TYPES)
            .json("timeInForce", USDM_TIME_IN_FORCE)
            .end()
    });
    Obj::new()
        .str("timezone", "UTC")
        .json("serverTime", clock.ms())
        .str("futuresType", "U_MARGINED")
        .json("rateLimits", USDM_RATE_LIMITS)
        .json("exchangeFilters", "[]")
        .json("assets", USDM_ASSETS)
        .json("symbols", array(symbols))
        .end()
}
