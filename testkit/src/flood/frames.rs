//! The frames a flood sends: real recordings from `tests/fixtures`, compacted, renamed to the subscription's
//! symbol and stream, and cut at their clock fields so each send costs a copy, not a JSON rewrite.

use crate::fake::FakeKind;
use crate::fake::binance::{self, Channel, Route};
use crate::fake::bybit::{self, Topic};
use crate::fake::json::{Obj, quote};

/// A real frame of one channel, and what of it the flood substitutes.
struct Fixture {
    /// As recorded (possibly pretty-printed); a combined Binance frame or a bare payload, a whole Bybit frame.
    text: &'static str,
    /// The symbol the recording names, replaced wherever it is a whole JSON string.
    symbol: Option<&'static str>,
    /// Keys whose numeric values become the current Unix ms.
    clocks: &'static [&'static str],
}

macro_rules! fixture {
    ($path:literal, $symbol:expr, $clocks:expr) => {
        Fixture {
            text: include_str!(concat!("../../../tests/fixtures/", $path)),
            symbol: $symbol,
            clocks: $clocks,
        }
    };
}

const SPOT_AGG_TRADE: Fixture = fixture!(
    "binance-spot/combined-aggTrade-real.json",
    Some("NKNUSDT"),
    &["E", "T"]
);
const SPOT_TRADE: Fixture = fixture!("binance-spot/trade.json", Some("BNBBTC"), &["E", "T"]);
const SPOT_BOOK_TICKER: Fixture = fixture!(
    "binance-spot/combined-bookTicker-real.json",
    Some("NKNUSDT"),
    &[]
);
const SPOT_DEPTH: Fixture = fixture!("binance-spot/depth-partial.json", None, &[]);
const USDM_AGG_TRADE: Fixture =
    fixture!("binance-usdm/aggTrade.json", Some("BNBUSDT"), &["E", "T"]);
const USDM_BOOK_TICKER: Fixture = fixture!(
    "binance-usdm/bookTicker-2026-real.json",
    Some("ETHUSDT"),
    &["T", "E"]
);
const USDM_DEPTH: Fixture = fixture!(
    "binance-usdm/depth5-partial-doc.json",
    Some("BTCUSDT"),
    &["E", "T"]
);
// `T` here is the next funding time, not a clock.
const USDM_MARK_PRICE: Fixture =
    fixture!("binance-usdm/markPriceUpdate.json", Some("BTCUSDT"), &["E"]);
const BYBIT_ORDERBOOK: Fixture = fixture!(
    "bybit/orderbook50-snapshot-linear.json",
    Some("BTCUSDT"),
    &["ts"]
);
const BYBIT_TICKERS: Fixture = fixture!(
    "bybit/tickers-linear-delta-real.json",
    Some("AAVEUSDT"),
    &["ts"]
);
const BYBIT_SPOT_TICKERS: Fixture = fixture!("bybit/tickers-spot.json", Some("BTCUSDT"), &["ts"]);
const BYBIT_TRADE: Fixture = fixture!(
    "bybit/publicTrade-linear.json",
    Some("BTCUSDT"),
    &["ts", "T"]
);

/// A frame's text cut at its clock values: `pieces[0] NOW pieces[1] NOW ... pieces[n]`.
pub(super) struct Template {
    pieces: Vec<String>,
}

impl Template {
    /// Splits `text` (compact JSON) at the numeric values of `clocks`' keys.
    pub(super) fn new(text: &str, clocks: &[&str]) -> Template {
        let mut cuts: Vec<(usize, usize)> = Vec::new();
        for key in clocks {
            // In JSON a quoted string followed by a colon is always a key.
            let pattern = format!("\"{key}\":");
            for (at, _) in text.match_indices(&pattern) {
                let start = at + pattern.len();
                let digits = text[start..].bytes().take_while(u8::is_ascii_digit).count();
                if digits > 0 {
                    cuts.push((start, start + digits));
                }
            }
        }
        cuts.sort_unstable();
        let mut pieces = Vec::with_capacity(cuts.len() + 1);
        let mut from = 0;
        for (start, end) in cuts {
            pieces.push(text[from..start].to_owned());
            from = end;
        }
        pieces.push(text[from..].to_owned());
        Template { pieces }
    }

    pub(super) fn render(&self, now: &str) -> String {
        let len = self.pieces.iter().map(String::len).sum::<usize>();
        let mut text = String::with_capacity(len + now.len() * self.pieces.len());
        for (i, piece) in self.pieces.iter().enumerate() {
            if i > 0 {
                text.push_str(now);
            }
            text.push_str(piece);
        }
        text
    }
}

/// The fixture of a Binance stream (`<symbol>@<channel>`) served on `route` (`None`: the channel's own route), or
/// `None` for a key Binance would ack and never serve: unknown channel, wrong USD-M route, symbol not lowercase.
pub(super) fn binance_template(
    kind: FakeKind,
    route: Option<Route>,
    key: &str,
) -> Option<Template> {
    // Which keys deliver is the fake's rule: a lowercase symbol, a channel the market serves, on its own route.
    let (symbol, name) = binance::split_key(key)?;
    if symbol.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let channel = Channel::parse(kind, name)?;
    if route.is_some_and(|r| r != Route::Spot && channel.route() != r) {
        return None;
    }
    let usdm = kind == FakeKind::BinanceUsdm;
    let fixture = match (channel, usdm) {
        (Channel::AggTrade, false) => &SPOT_AGG_TRADE,
        (Channel::AggTrade, true) => &USDM_AGG_TRADE,
        (Channel::Trade, _) => &SPOT_TRADE,
        (Channel::BookTicker, false) => &SPOT_BOOK_TICKER,
        (Channel::BookTicker, true) => &USDM_BOOK_TICKER,
        (Channel::PartialDepth(_), false) => &SPOT_DEPTH,
        (Channel::PartialDepth(_), true) => &USDM_DEPTH,
        (Channel::MarkPrice, _) => &USDM_MARK_PRICE,
        // Klines, tickers and diff depth: served by the fake, not flooded here.
        _ => return None,
    };
    let compacted = compact(fixture.text);
    // Combined recordings carry their own envelope: keep only the payload.
    let payload = match compacted.split_once(",\"data\":") {
        Some((_, data)) if compacted.starts_with("{\"stream\":") => &data[..data.len() - 1],
        _ => &compacted,
    };
    let payload = rename_symbol(payload, fixture, &symbol.to_ascii_uppercase());
    let frame = Obj::new().str("stream", key).json("data", payload).end();
    Some(Template::new(&frame, fixture.clocks))
}

/// The fixture of a Bybit topic, or `None` for a topic the fake would refuse or one the flood has no data for
/// (klines).
pub(super) fn bybit_template(kind: FakeKind, topic: &str) -> Option<Template> {
    let (topic_kind, symbol) = bybit::parse_topic(topic)?;
    let fixture = match topic_kind {
        Topic::Orderbook(_) => &BYBIT_ORDERBOOK,
        Topic::PublicTrade => &BYBIT_TRADE,
        Topic::Tickers if kind == FakeKind::BybitSpot => &BYBIT_SPOT_TICKERS,
        Topic::Tickers => &BYBIT_TICKERS,
        Topic::Kline(..) => return None,
    };
    let frame = rename_symbol(&compact(fixture.text), fixture, symbol);
    // The topic is the first member of every recorded frame.
    let (_, rest) = frame.split_once(',')?;
    let frame = format!("{{\"topic\":{},{rest}", quote(topic));
    Some(Template::new(&frame, fixture.clocks))
}

/// `text` with the fixture's symbol, wherever it is a whole JSON string, replaced by `symbol`.
fn rename_symbol(text: &str, fixture: &Fixture, symbol: &str) -> String {
    match fixture.symbol {
        Some(old) => text.replace(&quote(old), &quote(symbol)),
        None => text.to_owned(),
    }
}

/// JSON text without the whitespace between tokens, as frames arrive on the wire, its members in their order.
pub fn compact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if !c.is_whitespace() {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}
