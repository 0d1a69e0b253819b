//! Bybit v5 public market REST as the fake speaks them: `/v5/market/time`, `instruments-info` with its
//! default `Trading` status filter and cursor pagination (linear and inverse; spot has none), `tickers`,
//! `retCode` errors inside HTTP 200, and the plain-text 403 of the IP limit. Payloads are shaped like
//! `exchange-fixtures/bybit/rest-*.json` (keys, order, types; values substituted).
//!
//! Knows no sockets, state locking or failure queue: `mod.rs` drives it. `instruments-info` ignores
//! `symbol`, `baseCoin` and `symbolType`.

use axum::http::StatusCode;

use super::json::{Obj, array};
use super::{Category, Clock, Endpoint, Instrument, Market, Markets, Reply, param, split_symbol};

/// Bybit's bounds for `limit`, and its value when the client sends none.
const MAX_LIMIT: usize = 1000;
const DEFAULT_LIMIT: usize = 500;
/// The documented default of the `status` filter on linear, inverse and spot.
const DEFAULT_STATUS: &str = "Trading";
/// `retCode` of every parameter error.
const PARAMS_ERROR: i64 = 10001;
/// Opaque-looking cursor around the next page's offset. Real cursors carry literal `%3D`/`%26` text
/// (`first%3D...%26last%3D...`), so a client that does not percent-encode them sends something else.
const CURSOR_PREFIX: &str = "first%3D";
const CURSOR_SUFFIX: &str = "%26dir%3Dnext=";

/// The endpoint behind a request path.
pub(super) fn endpoint(path: &str) -> Option<Endpoint> {
    match path {
        "/v5/market/time" => Some(Endpoint::Time),
        "/v5/market/instruments-info" => Some(Endpoint::Instruments),
        "/v5/market/tickers" => Some(Endpoint::Ticker),
        _ => None,
    }
}

/// A successful answer, or a parameter error (HTTP 200, `retCode` 10001) for a bad category, symbol,
/// limit or cursor.
pub(super) fn answer(
    endpoint: Endpoint,
    query: &[(String, String)],
    markets: &Markets,
    page_size: usize,
    clock: Clock,
) -> Reply {
    let result = match endpoint {
        Endpoint::Time => Ok(Obj::new()
            .str("timeSecond", &clock.secs().to_string())
            .str("timeNano", &clock.unix_ns.to_string())
            .end()),
        Endpoint::Instruments => instruments(query, markets, page_size),
        Endpoint::Ticker => tickers(query, markets),
    };
    match result {
        Ok(result) => envelope(0, "OK", &result, clock),
        Err(msg) => envelope(PARAMS_ERROR, msg, "{}", clock),
    }
}

/// `{"retCode":..,"retMsg":..,"result":..,"retExtInfo":{},"time":ms}`, always HTTP 200.
pub(super) fn envelope(code: i64, msg: &str, result: &str, clock: Clock) -> Reply {
    let body = Obj::new()
        .json("retCode", code)
        .str("retMsg", msg)
        .json("result", result)
        .json("retExtInfo", "{}")
        .json("time", clock.ms())
        .end();
    Reply::json(StatusCode::OK, body)
}

/// Bybit's answer to an injected failure: the IP limit's 403 says `access too frequent` in plain text;
/// other statuses carry their reason phrase.
pub(super) fn refusal(status: StatusCode) -> Reply {
    let body = match status {
        StatusCode::FORBIDDEN => "access too frequent",
        _ => status.canonical_reason().unwrap_or_default(),
    };
    Reply::text(status, body.to_owned())
}

fn category(query: &[(String, String)]) -> Result<Category, &'static str> {
    param(query, "category")
        .and_then(Category::parse)
        .ok_or("params error: category invalid")
}

/// `result` of instruments-info: the instruments in the requested status (default `Trading`), one page.
fn instruments(
    query: &[(String, String)],
    markets: &Markets,
    page_size: usize,
) -> Result<String, &'static str> {
    let category = category(query)?;
    let status = param(query, "status").unwrap_or(DEFAULT_STATUS);
    // symbolId is the position in the whole listing, so it stays put whatever the filter.
    let listed: Vec<(usize, &Instrument)> = markets
        .get(category)
        .instruments
        .iter()
        .enumerate()
        .filter(|(_, i)| i.status == status)
        .map(|(at, i)| (at + 1, i))
        .collect();
    if category == Category::Spot {
        // "Spot does not support pagination, so limit, cursor are invalid": all of it, and no nextPageCursor.
        let list = array(listed.iter().map(|&(id, i)| spot_instrument(id, i)));
        return Ok(Obj::new().str("category", "spot").json("list", list).end());
    }
    let limit = match param(query, "limit") {
        None => DEFAULT_LIMIT,
        Some(limit) => limit
            .parse()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or("params error: limit invalid")?,
    };
    let start = match param(query, "cursor") {
        None | Some("") => 0,
        Some(cursor) => parse_cursor(cursor)
            .filter(|&start| start <= listed.len())
            .ok_or("params error: cursor invalid")?,
    };
    let end = listed.len().min(start + limit.min(page_size));
    let next = if end < listed.len() {
        format!("{CURSOR_PREFIX}{end}{CURSOR_SUFFIX}")
    } else {
        String::new()
    };
    let page = listed.get(start..end).unwrap_or_default();
    let list = array(
        page.iter()
            .map(|&(id, i)| derivative_instrument(category, id, i)),
    );
    Ok(Obj::new()
        .str("category", category.as_str())
        .json("list", list)
        .str("nextPageCursor", &next)
        .end())
}

fn parse_cursor(cursor: &str) -> Option<usize> {
    cursor
        .strip_prefix(CURSOR_PREFIX)?
        .strip_suffix(CURSOR_SUFFIX)?
        .parse()
        .ok()
}

/// `result` of tickers: one symbol, or every symbol the market knows.
fn tickers(query: &[(String, String)], markets: &Markets) -> Result<String, &'static str> {
    let category = category(query)?;
    let market: &Market = markets.get(category);
    let rows = match param(query, "symbol") {
        Some(symbol) => {
            let price = market.price(symbol).ok_or("params error: symbol invalid")?;
            vec![(symbol, price)]
        }
        None => market.tickers(),
    };
    let list = array(rows.into_iter().map(|(s, p)| ticker(category, s, p)));
    Ok(Obj::new()
        .str("category", category.as_str())
        .json("list", list)
        .end())
}

/// Shaped like `bybit/rest-instruments-info-spot.json`.
fn spot_instrument(id: usize, i: &Instrument) -> String {
    let (base, quote) = split_symbol(&i.symbol);
    Obj::new()
        .json("symbolId", id)
        .str("symbol", &i.symbol)
        .str("baseCoin", base)
        .str("quoteCoin", quote)
        .str("innovation", "0")
        .str("status", &i.status)
        .str("marginTrading", "utaOnly")
        .str("stTag", "0")
        .json(
            "lotSizeFilter",
            r#"{"basePrecision":"0.000001","quotePrecision":"0.0000001","minOrderQty":"0.000011","maxOrderQty":"83","minOrderAmt":"5","maxOrderAmt":"8000000","maxLimitOrderQty":"83","maxMarketOrderQty":"41.5","postOnlyMaxLimitOrderSize":"60000"}"#,
        )
        .json("priceFilter", r#"{"tickSize":"0.1"}"#)
        .json("riskParameters", r#"{"priceLimitRatioX":"0.005","priceLimitRatioY":"0.01"}"#)
        .str("symbolType", "")
        .end()
}

/// Shaped like `bybit/rest-instruments-info-linear.json`; inverse contracts settle in the base coin.
fn derivative_instrument(category: Category, id: usize, i: &Instrument) -> String {
    let (base, quote) = split_symbol(&i.symbol);
    let (contract_type, settle) = match category {
        Category::Inverse => ("InversePerpetual", base),
        _ => ("LinearPerpetual", quote),
    };
    Obj::new()
        .str("symbol", &i.symbol)
        .json("symbolId", id)
        .str("contractType", contract_type)
        .str("status", &i.status)
        .str("baseCoin", base)
        .str("quoteCoin", quote)
        .str("launchTime", "1585526400000")
        .str("deliveryTime", "0")
        .str("deliveryFeeRate", "")
        .str("priceScale", "2")
        .json(
            "leverageFilter",
            r#"{"minLeverage":"1","maxLeverage":"100.00","leverageStep":"0.01"}"#,
        )
        .json(
            "priceFilter",
            r#"{"minPrice":"0.10","maxPrice":"1999999.80","tickSize":"0.10"}"#,
        )
        .json(
            "lotSizeFilter",
            r#"{"maxOrderQty":"1190.000","minOrderQty":"0.001","qtyStep":"0.001","postOnlyMaxOrderQty":"1190.000","maxMktOrderQty":"500.000","minNotionalValue":"5"}"#,
        )
        .json("unifiedMarginTrade", true)
        .json("fundingInterval", 480)
        .str("settleCoin", settle)
        .str("copyTrading", "both")
        .str("upperFundingRate", "0.00375")
        .str("lowerFundingRate", "-0.00375")
        .json("isPreListing", false)
        .json("preListingInfo", "null")
        .json("riskParameters", r#"{"priceLimitRatioX":"0.01","priceLimitRatioY":"0.02"}"#)
        .str("symbolType", "")
        .end()
}

/// Shaped like `bybit/rest-tickers-spot.json` or (linear and inverse) `rest-tickers-inverse.json`;
/// every price field is the set price, so a flat market.
fn ticker(category: Category, symbol: &str, price: &str) -> String {
    if category == Category::Spot {
        return Obj::new()
            .str("symbol", symbol)
            .str("bid1Price", price)
            .str("bid1Size", "2")
            .str("ask1Price", price)
            .str("ask1Size", "1.862172")
            .str("lastPrice", price)
            .str("prevPrice24h", price)
            .str("price24hPcnt", "0")
            .str("highPrice24h", price)
            .str("lowPrice24h", price)
            .str("turnover24h", "243765620.65899866")
            .str("volume24h", "11801.27771")
            .str("usdIndexPrice", price)
            .end();
    }
    Obj::new()
        .str("symbol", symbol)
        .str("lastPrice", price)
        .str("indexPrice", price)
        .str("markPrice", price)
        .str("prevPrice24h", price)
        .str("price24hPcnt", "0")
        .str("highPrice24h", price)
        .str("lowPrice24h", price)
        .str("prevPrice1h", price)
        .str("openInterest", "240113967")
        .str("openInterestValue", "2089.79")
        .str("turnover24h", "115.6907")
        .str("volume24h", "13713832.0000")
        .str("fundingRate", "0.0001")
        .str("nextFundingTime", "1760371200000")
        .str("predictedDeliveryPrice", "")
        .str("basisRate", "")
        .str("deliveryFeeRate", "")
        .str("deliveryTime", "0")
        .str("ask1Size", "9854")
        .str("bid1Price", price)
        .str("ask1Price", price)
        .str("bid1Size", "1063")
        .str("basis", "")
        .str("preOpenPrice", "")
        .str("preQty", "")
        .str("curPreListingPhase", "")
        .str("fundingIntervalHour", "8")
        .str("basisRateYear", "")
        .str("fundingCap", "0.005")
        .end()
}
