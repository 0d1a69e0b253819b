//! Binance spot and USD-M as the fake speaks them: URL routes, the SUBSCRIBE family of control messages
//! with their acks and `{"error":{..}}` replies, and data payloads shaped like the real frames in
//! `exchange-fixtures/binance-spot` and `binance-usdm` (keys, key order and types; values substituted).
//!
//! Knows no sockets, timers or heartbeats: `conn` drives it.

use serde_json::Value;
use tokio_tungstenite::tungstenite::http::Uri;

use super::FakeKind;
use super::book::{Book, qty, unix_ms};
use super::conn::{Link, Out, Session as VenueSession};
use super::json::{Obj, array, quote};

const INVALID_STREAM: &str = "Invalid request: invalid stream";
/// Documented streams per connection; more is recorded as a violation (the fake still serves them).
const MAX_STREAMS: usize = 1024;
/// Every 8 h, the USD-M funding schedule the markPrice `T` field points at.
const FUNDING_PERIOD_MS: u64 = 8 * 3_600_000;
/// Valid `kline_<i>` intervals and their length.
const KLINE_INTERVALS: [(&str, u64); 16] = [
    ("1s", 1_000),
    ("1m", 60_000),
    ("3m", 180_000),
    ("5m", 300_000),
    ("15m", 900_000),
    ("30m", 1_800_000),
    ("1h", 3_600_000),
    ("2h", 7_200_000),
    ("4h", 14_400_000),
    ("6h", 21_600_000),
    ("8h", 28_800_000),
    ("12h", 43_200_000),
    ("1d", 86_400_000),
    ("3d", 259_200_000),
    ("1w", 604_800_000),
    ("1M", 2_592_000_000),
];

/// The URL route of a connection. USD-M splits book data (`/public`) from everything else (`/market`);
/// an unrouted legacy URL is served like `/public`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Spot,
    Public,
    Market,
    Unrouted,
}

/// A stream's channel: the part of the key after `<symbol>@`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Channel {
    AggTrade,
    Trade,
    BookTicker,
    PartialDepth(usize),
    DiffDepth,
    Kline(&'static str, u64),
    MarkPrice,
    Ticker,
    MiniTicker,
}

impl Channel {
    /// Channels this fake serves on the given market; anything else is acked and stays silent.
    pub(crate) fn parse(kind: FakeKind, name: &str) -> Option<Channel> {
        let usdm = kind == FakeKind::BinanceUsdm;
        let (base, speed) = name
            .split_once('@')
            .map_or((name, None), |(b, s)| (b, Some(s)));
        let depth_speed = match speed {
            None => true,
            Some(s) if usdm => matches!(s, "100ms" | "500ms"),
            Some(s) => matches!(s, "100ms" | "1000ms"),
        };
        Some(match (base, speed) {
            ("aggTrade", None) => Channel::AggTrade,
            ("trade", None) if !usdm => Channel::Trade,
            ("bookTicker", None) => Channel::BookTicker,
            ("depth", _) if depth_speed => Channel::DiffDepth,
            ("depth5", _) if depth_speed => Channel::PartialDepth(5),
            ("depth10", _) if depth_speed => Channel::PartialDepth(10),
            ("depth20", _) if depth_speed => Channel::PartialDepth(20),
            ("markPrice", None | Some("1s")) if usdm => Channel::MarkPrice,
            ("ticker", None) => Channel::Ticker,
            ("miniTicker", None) => Channel::MiniTicker,
            (base, None) => {
                let interval = base.strip_prefix("kline_")?;
                let &(label, ms) = KLINE_INTERVALS
                    .iter()
                    .find(|(label, _)| *label == interval)?;
                Channel::Kline(label, ms)
            }
            _ => return None,
        })
    }

    pub(crate) fn route(self) -> Route {
        match self {
            Channel::BookTicker | Channel::PartialDepth(_) | Channel::DiffDepth => Route::Public,
            _ => Route::Market,
        }
    }
}

/// Splits `<symbol>@<channel>`; the symbol must be ASCII alphanumeric.
pub(crate) fn split_key(key: &str) -> Option<(&str, &str)> {
    let (symbol, channel) = key.split_once('@')?;
    let valid = !symbol.is_empty()
        && symbol.bytes().all(|b| b.is_ascii_alphanumeric())
        && !channel.is_empty();
    valid.then_some((symbol, channel))
}

/// Binance's side of one connection.
pub(super) struct Session {
    kind: FakeKind,
    route: Route,
    path: String,
    /// Combined streams wrap payloads in `{"stream","data"}`, raw `/ws` ones do not; `SET_PROPERTY` flips it.
    combined: bool,
    /// Streams named in the URL (`/ws/<s>` or `?streams=a/b`), subscribed without an ack.
    url_streams: Vec<String>,
}

/// A refused request: Binance's error code and message.
type Refusal = (u8, String);

impl VenueSession for Session {
    fn open(kind: FakeKind, uri: &Uri) -> Option<Self> {
        let path = uri.path();
        let (route, rest) = match kind {
            FakeKind::BinanceUsdm => {
                match (path.strip_prefix("/public"), path.strip_prefix("/market")) {
                    (Some(rest), _) => (Route::Public, rest),
                    (_, Some(rest)) => (Route::Market, rest),
                    _ => (Route::Unrouted, path),
                }
            }
            _ => (Route::Spot, path),
        };
        let combined = match rest {
            "/stream" => true,
            r if r == "/ws" || r.starts_with("/ws/") => false,
            _ if route == Route::Unrouted => true,
            _ => return None,
        };
        let in_path = rest
            .strip_prefix("/ws/")
            .into_iter()
            .flat_map(|s| s.split('/'));
        let query = uri.query().unwrap_or_default().split('&');
        let in_query = query
            .filter_map(|pair| pair.strip_prefix("streams="))
            .flat_map(|s| s.split('/'));
        let url_streams = in_path
            .chain(in_query)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        Some(Session {
            kind,
            route,
            path: path.to_owned(),
            combined,
            url_streams,
        })
    }

    fn on_open(&mut self, link: &Link) -> Vec<Out> {
        if self.route == Route::Unrouted {
            link.violation(format_args!(
                "unrouted path {} (legacy URL, served as /public)",
                self.path
            ));
        }
        for key in std::mem::take(&mut self.url_streams) {
            match split_key(&key) {
                Some(_) => self.add(link, &key),
                None => link.violation(format_args!("invalid stream name {key:?} in URL")),
            }
        }
        Vec::new()
    }

    fn on_text(&mut self, link: &Link, text: &str) -> Vec<Out> {
        let Ok(request) = serde_json::from_str::<Value>(text) else {
            link.violation(format_args!("invalid JSON from client: {text:?}"));
            return vec![Out::Close(1008, "Invalid request")];
        };
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        let (id, result) = if valid_id(&id) {
            let result = self.dispatch(link, &request);
            (id, result)
        } else {
            link.violation(format_args!("invalid request id {id}"));
            (
                Value::Null,
                Err((2, "Invalid request: invalid request id".to_owned())),
            )
        };
        let reply = match result {
            Ok(result) => Obj::new().json("result", result),
            Err((code, msg)) => Obj::new().json(
                "error",
                Obj::new().json("code", code).str("msg", &msg).end(),
            ),
        };
        vec![Out::Text(reply.json("id", id).end())]
    }

    fn frame(&self, key: &str, seq: u64) -> Option<String> {
        let (symbol, name) = split_key(key)?;
        let payload = self.payload(
            Channel::parse(self.kind, name)?,
            &symbol.to_ascii_uppercase(),
            seq,
        );
        Some(self.wrap(key, &payload))
    }

    fn malformed(&self, link: &Link) -> String {
        let key = link
            .subscriptions()
            .into_iter()
            .next()
            .unwrap_or_else(|| "btcusdt@aggTrade".to_owned());
        format!(r#"{{"stream":{},"data":{{"e":"aggTrade""#, quote(&key))
    }

    fn shutdown_notice(&self) -> Option<String> {
        let payload = Obj::new()
            .str("e", "serverShutdown")
            .json("E", unix_ms())
            .end();
        Some(self.wrap("!serverShutdown", &payload))
    }
}

impl Session {
    fn dispatch(&mut self, link: &Link, request: &Value) -> Result<String, Refusal> {
        match request.get("method").and_then(Value::as_str) {
            Some("SUBSCRIBE") => self.subscribe(link, request),
            Some("UNSUBSCRIBE") => {
                for key in params(link, request)? {
                    link.unsubscribe(key);
                }
                Ok("null".to_owned())
            }
            Some("LIST_SUBSCRIPTIONS") => {
                Ok(array(link.subscriptions().iter().map(|key| quote(key))))
            }
            Some("SET_PROPERTY") => self.set_property(link, request),
            Some("GET_PROPERTY") => match request
                .get("params")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
            {
                Some([name]) if name.as_str() == Some("combined") => Ok(self.combined.to_string()),
                _ => Err((0, "Unknown property".to_owned())),
            },
            Some(other) => {
                link.violation(format_args!("unknown method {other:?}"));
                let expected = "expected one of `SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, \
                                `GET_PROPERTY`";
                Err((
                    2,
                    format!("Invalid request: unknown variant `{other}`, {expected}"),
                ))
            }
            None => {
                link.violation("request without a method");
                Err((2, "Invalid request: missing field `method`".to_owned()))
            }
        }
    }

    /// All or nothing: one malformed or rejected key fails the request and subscribes none of it.
    fn subscribe(&self, link: &Link, request: &Value) -> Result<String, Refusal> {
        let keys = params(link, request)?;
        if let Some(bad) = keys.iter().find(|key| split_key(key).is_none()) {
            link.violation(format_args!("invalid stream name {bad:?}"));
            return Err((2, INVALID_STREAM.to_owned()));
        }
        if keys.iter().any(|key| link.is_rejected(key)) {
            return Err((2, INVALID_STREAM.to_owned()));
        }
        for key in &keys {
            self.add(link, key);
        }
        let count = link.subscriptions().len();
        if count > MAX_STREAMS {
            link.violation(format_args!(
                "{count} streams on one connection (limit {MAX_STREAMS})"
            ));
        }
        Ok("null".to_owned())
    }

    /// Subscribes one well-formed key as Binance does: everything is acked, but an uppercase symbol, an
    /// unknown channel or a stream on the wrong USD-M route never delivers.
    fn add(&self, link: &Link, key: &str) {
        let Some((symbol, name)) = split_key(key) else {
            return;
        };
        let channel = Channel::parse(self.kind, name);
        let mut live = channel.is_some();
        if symbol.bytes().any(|b| b.is_ascii_uppercase()) {
            link.violation(format_args!("uppercase stream name {key}"));
            live = false;
        }
        let served = if self.route == Route::Unrouted {
            Route::Public
        } else {
            self.route
        };
        if let Some(channel) = channel.filter(|c| served != Route::Spot && c.route() != served) {
            let on = match self.route {
                Route::Unrouted => format!("unrouted {} (served as /public)", self.path),
                Route::Public => "/public".to_owned(),
                _ => "/market".to_owned(),
            };
            let belongs = if channel.route() == Route::Public {
                "public"
            } else {
                "market"
            };
            link.violation(format_args!("subscribe on {on} for {belongs} stream {key}"));
            live = false;
        }
        link.subscribe(key, live);
    }

    fn set_property(&mut self, link: &Link, request: &Value) -> Result<String, Refusal> {
        let params = request.get("params").and_then(Value::as_array);
        match params.map(Vec::as_slice) {
            Some([name, value]) if name.as_str() == Some("combined") => {
                let Some(on) = value.as_bool() else {
                    link.violation(format_args!("SET_PROPERTY combined with {value}"));
                    return Err((1, "Invalid value type: expected Boolean".to_owned()));
                };
                self.combined = on;
                Ok("null".to_owned())
            }
            _ => Err((0, "Unknown property".to_owned())),
        }
    }

    fn wrap(&self, stream: &str, payload: &str) -> String {
        if self.combined {
            Obj::new().str("stream", stream).json("data", payload).end()
        } else {
            payload.to_owned()
        }
    }

    /// The payload of one data frame for the uppercase symbol `s`.
    fn payload(&self, channel: Channel, s: &str, seq: u64) -> String {
        let usdm = self.kind == FakeKind::BinanceUsdm;
        let now = unix_ms();
        // Spot prints every price and quantity with 8 decimals; USD-M uses the tick size.
        let (book, qd) = if usdm {
            (Book::new(s, seq), 3)
        } else {
            (Book::new(s, seq).with_decimals(8), 8)
        };
        let (bid, ask) = (book.px(book.bid), book.px(book.ask()));
        let (bid_qty, ask_qty, q) = (qty(seq, qd), qty(seq + 7, qd), qty(seq + 3, qd));
        let id = 100_000_000 + seq;
        let u = 500_000_000 + 3 * seq;
        let maker = seq.is_multiple_of(2);
        match channel {
            Channel::AggTrade => Obj::new()
                .str("e", "aggTrade")
                .json("E", now)
                .str("s", s)
                .json("a", id)
                .str("p", &bid)
                .str("q", &q)
                .when(usdm, |o| o.str("nq", &q))
                .json("f", 2 * id)
                .json("l", 2 * id)
                // USD-M aggregates over 100 ms, so its trade time trails the event time.
                .json("T", if usdm { now.saturating_sub(120) } else { now })
                .json("m", maker)
                .when(usdm, |o| o.json("st", 1))
                .when(!usdm, |o| o.json("M", true))
                .end(),
            Channel::Trade => Obj::new()
                .str("e", "trade")
                .json("E", now)
                .str("s", s)
                .json("t", id)
                .str("p", &bid)
                .str("q", &q)
                .json("T", now)
                .json("m", maker)
                .json("M", true)
                .end(),
            // Spot's book ticker carries no time at all; USD-M's has both clocks.
            Channel::BookTicker => Obj::new()
                .when(usdm, |o| o.str("e", "bookTicker"))
                .json("u", u)
                .str("s", s)
                .when(usdm, |o| o.str("ps", s))
                .str("b", &bid)
                .str("B", &bid_qty)
                .str("a", &ask)
                .str("A", &ask_qty)
                .when(usdm, |o| {
                    o.json("T", now.saturating_sub(1))
                        .json("E", now)
                        .json("st", 1)
                })
                .end(),
            Channel::PartialDepth(n) if !usdm => Obj::new()
                .json("lastUpdateId", u)
                .json("bids", book.levels(n, true, qd))
                .json("asks", book.levels(n, false, qd))
                .end(),
            // Spot diff depth, and every USD-M depth stream: partial books reuse the diff shape there.
            Channel::PartialDepth(_) | Channel::DiffDepth => {
                let (bids, asks) = match channel {
                    Channel::PartialDepth(n) => (n, n),
                    _ => (2, 1),
                };
                Obj::new()
                    .str("e", "depthUpdate")
                    .json("E", now)
                    .when(usdm, |o| o.json("T", now.saturating_sub(1)))
                    .str("s", s)
                    .json("U", u.saturating_sub(2))
                    .json("u", u)
                    .when(usdm, |o| o.json("pu", u.saturating_sub(3)))
                    .json("b", book.levels(bids, true, qd))
                    .json("a", book.levels(asks, false, qd))
                    .end()
            }
            Channel::Kline(label, ms) => {
                let (open, close) = (Book::new(s, seq - seq % 10).bid, book.bid);
                let start = now - now % ms;
                let candle = Obj::new()
                    .json("t", start)
                    .json("T", start + ms - 1)
                    .str("s", s)
                    .str("i", label)
                    .json("f", id - 10)
                    .json("L", id)
                    .str("o", &book.px(open))
                    .str("c", &book.px(close))
                    .str("h", &book.px(open.max(close) + book.tick))
                    .str("l", &book.px(open.min(close) - book.tick))
                    .str("v", &q)
                    .json("n", 11)
                    .json("x", false)
                    .str("q", &book.px(close * 0.5))
                    .str("V", &qty(seq + 1, qd))
                    .str("Q", &book.px(close * 0.2))
                    .str("B", "0")
                    .end();
                Obj::new()
                    .str("e", "kline")
                    .json("E", now)
                    .str("s", s)
                    .json("k", candle)
                    .end()
            }
            Channel::MarkPrice => {
                let mark = book.with_decimals(8);
                Obj::new()
                    .str("e", "markPriceUpdate")
                    .json("E", now)
                    .str("s", s)
                    .str("p", &mark.px(book.bid))
                    .str("i", &mark.px(book.bid - 2.0 * book.tick))
                    .str("P", &mark.px(book.bid - book.tick))
                    .str("r", "0.00010000")
                    .str("ap", &mark.px(book.bid))
                    .json("T", (now / FUNDING_PERIOD_MS + 1) * FUNDING_PERIOD_MS)
                    .json("st", 1)
                    .end()
            }
            Channel::Ticker | Channel::MiniTicker => {
                self.ticker(channel == Channel::Ticker, s, &book, now)
            }
        }
    }

    /// 24 h statistics; spot's full ticker also carries the previous close and the best bid and ask.
    fn ticker(&self, full: bool, s: &str, book: &Book, now: u64) -> String {
        let usdm = self.kind == FakeKind::BinanceUsdm;
        let (seq, qd) = (book.seq(), if usdm { 3 } else { 8 });
        let (close, open) = (book.bid, book.bid * 0.98);
        let [c, o, h, l, w] = [
            close,
            open,
            close * 1.01,
            open * 0.99,
            f64::midpoint(close, open),
        ]
        .map(|p| book.px(p));
        let (v, q) = (qty(seq, qd), book.px(close * 3.0));
        let futures_tail = |o: Obj| o.str("ps", s).json("st", 1);
        if !full {
            let mini = Obj::new()
                .str("e", "24hrMiniTicker")
                .json("E", now)
                .str("s", s)
                .str("c", &c)
                .str("o", &o);
            return mini
                .str("h", &h)
                .str("l", &l)
                .str("v", &v)
                .str("q", &q)
                .when(usdm, futures_tail)
                .end();
        }
        let last_id = 100_000_000 + seq;
        Obj::new()
            .str("e", "24hrTicker")
            .json("E", now)
            .str("s", s)
            .str("p", &book.px(close - open))
            .str("P", "2.041")
            .str("w", &w)
            .when(!usdm, |obj| obj.str("x", &o))
            .str("c", &c)
            .str("Q", &qty(seq + 1, qd))
            .when(!usdm, |obj| {
                obj.str("b", &book.px(book.bid))
                    .str("B", &qty(seq + 2, qd))
                    .str("a", &book.px(book.ask()))
                    .str("A", &qty(seq + 3, qd))
            })
            .str("o", &o)
            .str("h", &h)
            .str("l", &l)
            .str("v", &v)
            .str("q", &q)
            .json("O", now - 86_400_000)
            .json("C", now)
            .json("F", last_id - 18_150)
            .json("L", last_id)
            .json("n", 18_151)
            .when(usdm, futures_tail)
            .end()
    }
}

/// The stream names of a SUBSCRIBE/UNSUBSCRIBE request.
fn params<'a>(link: &Link, request: &'a Value) -> Result<Vec<&'a str>, Refusal> {
    let params = request.get("params").and_then(Value::as_array);
    let keys: Option<Vec<&str>> = params
        .map(|p| p.iter().map(Value::as_str).collect())
        .unwrap_or_default();
    keys.ok_or_else(|| {
        link.violation(format_args!(
            "params is not an array of stream names: {request}"
        ));
        (2, "Invalid request: invalid params".to_owned())
    })
}

/// Binance accepts a signed 64-bit integer, an alphanumeric string of at most 36 characters, or null.
fn valid_id(id: &Value) -> bool {
    match id {
        Value::Null => true,
        Value::Number(n) => n.is_i64(),
        Value::String(s) => s.len() <= 36 && s.bytes().all(|b| b.is_ascii_alphanumeric()),
        _ => false,
    }
}
