//! Shared plain types: which venue, which channel, which symbol, and what one decoded message says.
//!
//! Owns no I/O and no policy; every other module speaks in these types.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;

/// An exchange, as it appears in the `exchange` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Exchange {
    /// Binance (spot and USD-M futures).
    Binance,
    /// Bybit v5 public streams.
    Bybit,
}

impl Exchange {
    /// Every exchange, in index order: what drives every per-exchange list (clock offsets, metrics, summaries).
    pub const ALL: [Exchange; 2] = [Exchange::Binance, Exchange::Bybit];

    /// Its position in [`Exchange::ALL`], for per-exchange arrays.
    pub const fn index(self) -> usize {
        match self {
            Exchange::Binance => 0,
            Exchange::Bybit => 1,
        }
    }

    /// The label value: `binance` or `bybit`.
    pub fn as_str(self) -> &'static str {
        match self {
            Exchange::Binance => "binance",
            Exchange::Bybit => "bybit",
        }
    }
}

// A new venue fails to compile here until it is in `index` at its position in `Venue::ALL`.
const _: () = {
    let mut i = 0;
    while i < Venue::ALL.len() {
        assert!(Venue::ALL[i].index() == i);
        i += 1;
    }
};

// A new exchange fails to compile here until it is in `Exchange::ALL` too (and in `index`, at its position).
const _: () = {
    let mut i = 0;
    while i < Exchange::ALL.len() {
        assert!(Exchange::ALL[i].index() == i);
        i += 1;
    }
    match Exchange::Binance {
        Exchange::Binance | Exchange::Bybit => {}
    }
};

/// A market within an exchange, as it appears in the `market` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Market {
    /// Spot.
    Spot,
    /// Binance USD-M futures.
    Usdm,
    /// Bybit linear (USDT/USDC) contracts.
    Linear,
    /// Bybit inverse contracts.
    Inverse,
}

impl Market {
    /// The label value: `spot`, `usdm`, `linear` or `inverse`.
    pub fn as_str(self) -> &'static str {
        match self {
            Market::Spot => "spot",
            Market::Usdm => "usdm",
            Market::Linear => "linear",
            Market::Inverse => "inverse",
        }
    }
}

/// One watched exchange+market pair: the unit that owns a WebSocket endpoint and its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Venue {
    /// Binance spot, `wss://stream.binance.com:9443`.
    BinanceSpot,
    /// Binance USD-M futures, `wss://fstream.binance.com` with `/public` and `/market` routes.
    BinanceUsdm,
    /// Bybit v5 spot, `wss://stream.bybit.com/v5/public/spot`.
    BybitSpot,
    /// Bybit v5 linear, `wss://stream.bybit.com/v5/public/linear`.
    BybitLinear,
    /// Bybit v5 inverse, `wss://stream.bybit.com/v5/public/inverse`.
    BybitInverse,
}

impl Venue {
    /// Every venue, in label order.
    pub const ALL: [Venue; 5] = [
        Venue::BinanceSpot,
        Venue::BinanceUsdm,
        Venue::BybitSpot,
        Venue::BybitLinear,
        Venue::BybitInverse,
    ];

    /// Its position in [`Venue::ALL`], for per-venue arrays.
    pub const fn index(self) -> usize {
        match self {
            Venue::BinanceSpot => 0,
            Venue::BinanceUsdm => 1,
            Venue::BybitSpot => 2,
            Venue::BybitLinear => 3,
            Venue::BybitInverse => 4,
        }
    }

    /// The exchange half.
    pub fn exchange(self) -> Exchange {
        match self {
            Venue::BinanceSpot | Venue::BinanceUsdm => Exchange::Binance,
            Venue::BybitSpot | Venue::BybitLinear | Venue::BybitInverse => Exchange::Bybit,
        }
    }

    /// The market half.
    pub fn market(self) -> Market {
        match self {
            Venue::BinanceSpot | Venue::BybitSpot => Market::Spot,
            Venue::BinanceUsdm => Market::Usdm,
            Venue::BybitLinear => Market::Linear,
            Venue::BybitInverse => Market::Inverse,
        }
    }

    /// The infix of this venue's configuration variables, e.g. `BINANCE_SPOT` in
    /// `MARKETFEED_BINANCE_SPOT_SYMBOLS`.
    pub fn env_name(self) -> &'static str {
        match self {
            Venue::BinanceSpot => "BINANCE_SPOT",
            Venue::BinanceUsdm => "BINANCE_USDM",
            Venue::BybitSpot => "BYBIT_SPOT",
            Venue::BybitLinear => "BYBIT_LINEAR",
            Venue::BybitInverse => "BYBIT_INVERSE",
        }
    }

    /// Parses `exchange` and `market` label values back into a venue.
    pub fn from_labels(exchange: &str, market: &str) -> Option<Venue> {
        Venue::ALL
            .into_iter()
            .find(|v| v.exchange().as_str() == exchange && v.market().as_str() == market)
    }
}

impl fmt::Display for Venue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.exchange().as_str(), self.market().as_str())
    }
}

/// What a channel's messages say about the market, which decides which price they carry and how it ranks.
///
/// Venue-neutral: each exchange's folder under `src/venue/` maps its channel names (`markPrice@1s`, `orderbook.1`)
/// to one of these and decodes a payload by its venue and kind, since one kind can have several wire shapes (Binance
/// spot and USD-M send partial depth differently).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    /// The best bid and ask (Binance `bookTicker`, Bybit `orderbook.1` snapshots): the price is their mid.
    BookTop,
    /// The top levels of the book, whole in every message (Binance partial depth): the mid of the first levels.
    BookLevels,
    /// Changed levels of a deeper book (Bybit `orderbook.<50|200|1000>` deltas, where a size of `0` deletes a
    /// level): the first level is not the best, so no price.
    BookDeltas,
    /// Trades (Binance `aggTrade` and `trade`, Bybit `publicTrade`): the trade price.
    Trade,
    /// A rolling ticker (Binance `ticker` and `miniTicker`, Bybit `tickers`): the last traded price.
    Ticker,
    /// Candles (Binance `kline_<interval>`, Bybit `kline.<interval>`): the close.
    Kline,
    /// The mark price of a derivative (Binance USD-M `markPrice`): an index-derived fair value.
    MarkPrice,
}

impl ChannelKind {
    /// Which channel's price is a symbol's reference price when several carry one: the lowest rank wins, whichever
    /// spoke last. The mid of the best bid and ask comes first (what an order would meet now), then a trade's price,
    /// a ticker's last price, a kline's close, and the mark price last. `None`: no price.
    pub fn price_rank(self) -> Option<u8> {
        match self {
            ChannelKind::BookTop | ChannelKind::BookLevels => Some(0),
            ChannelKind::Trade => Some(1),
            ChannelKind::Ticker => Some(2),
            ChannelKind::Kline => Some(3),
            ChannelKind::MarkPrice => Some(4),
            ChannelKind::BookDeltas => None,
        }
    }

    /// Whether the price this kind carries is the last traded price (trade, ticker last, kline close),
    /// which a venue's REST ticker can be compared with; book mids and mark prices cannot.
    pub fn price_is_last_trade(self) -> bool {
        matches!(
            self,
            ChannelKind::Trade | ChannelKind::Ticker | ChannelKind::Kline
        )
    }
}

/// A configured channel: the venue's own stream name (the `channel` label), its payload kind and, for the few
/// channels the venue pushes on a schedule whatever the market does, how often it does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Channel {
    /// The venue's stream name as configured, e.g. `bookTicker`, `markPrice@1s`, `orderbook.1`; shared by every
    /// subscription to the channel.
    pub name: Arc<str>,
    /// How to read it.
    pub kind: ChannelKind,
    /// The venue's documented push interval for a scheduled channel (`markPrice@1s`: 1 s); `None` for an
    /// event-driven one (trades, book tickers, deltas, klines), which may be silent for minutes on a quiet
    /// market.
    pub interval: Option<Duration>,
}

/// One (venue, channel, symbol) the exporter watches; its index in the tracker is its slot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subscription {
    /// Where it is subscribed.
    pub venue: Venue,
    /// Which stream.
    pub channel: Channel,
    /// Uppercase symbol, e.g. `BTCUSDT`; shared by the symbol's subscriptions and the tracker.
    pub symbol: Arc<str>,
}

/// What one data message says about its subscription, decoded without allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sample {
    /// The exchange's own event time, milliseconds since the Unix epoch, when the channel carries one.
    pub event_time_ms: Option<i64>,
    /// The channel's reference price (trade price, mid of best bid/ask, mark, last), when this
    /// message carries one. Sparse deltas may not.
    pub price: Option<Decimal>,
}
