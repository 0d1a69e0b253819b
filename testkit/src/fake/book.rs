//! What the fake market looks like right now: a deterministic, gently moving price model and the clock
//! both venues print from.
//!
//! Owns no protocol: venues pick fields, precision and shapes.

use std::time::{SystemTime, UNIX_EPOCH};

use super::json::{array, quote};

/// Wall-clock milliseconds, the unit of every exchange timestamp.
pub(super) fn unix_ms() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

/// A deterministic top of book for one stream's `seq`-th frame: prices wander a few ticks so tests see
/// change, and both venues format them from the same numbers.
#[derive(Debug, Clone, Copy)]
pub(super) struct Book {
    pub(super) bid: f64,
    pub(super) tick: f64,
    /// Decimals printed for prices; Binance spot overrides it with its fixed 8.
    decimals: usize,
    seq: u64,
}

impl Book {
    /// The book of `symbol` at its `seq`-th frame, with the tick size a venue would list for its price.
    pub(super) fn new(symbol: &str, seq: u64) -> Book {
        let base = base_price(symbol);
        let (tick, decimals) = match base {
            b if b >= 100.0 => (0.01, 2),
            b if b >= 1.0 => (0.0001, 4),
            _ => (0.000_001, 6),
        };
        // A triangle wave of period 40 frames: consecutive frames always differ by one step.
        let phase = (seq % 40) as f64;
        let step = if phase < 20.0 { phase } else { 40.0 - phase } - 10.0;
        let bid = base * (1.0 + step * 1e-4);
        Book {
            bid: (bid / tick).round() * tick,
            tick,
            decimals,
            seq,
        }
    }

    /// The same book printed with a fixed number of decimals.
    pub(super) fn with_decimals(self, decimals: usize) -> Book {
        Book { decimals, ..self }
    }

    /// The frame number this book was built for.
    pub(super) fn seq(&self) -> u64 {
        self.seq
    }

    /// The best ask, one tick above the bid.
    pub(super) fn ask(&self) -> f64 {
        self.bid + self.tick
    }

    /// A price as the venue prints it: a decimal string at this book's precision.
    pub(super) fn px(&self, price: f64) -> String {
        format!("{price:.*}", self.decimals)
    }

    /// `[["price","qty"],...]`: `n` levels walking away from the touch on one side.
    pub(super) fn levels(&self, n: usize, bids: bool, qty_decimals: usize) -> String {
        let (touch, step) = if bids {
            (self.bid, -self.tick)
        } else {
            (self.ask(), self.tick)
        };
        array((0..n).map(|i| {
            let price = self.px(touch + step * i as f64);
            let size = qty(self.seq + i as u64, qty_decimals);
            array([quote(&price), quote(&size)])
        }))
    }
}

/// A small varying quantity printed with the venue's precision.
pub(super) fn qty(seq: u64, decimals: usize) -> String {
    format!("{:.*}", decimals, (1 + seq % 97) as f64 * 0.013)
}

fn base_price(symbol: &str) -> f64 {
    let upper = symbol.to_ascii_uppercase();
    if upper.starts_with("BTC") {
        65_000.0
    } else if upper.starts_with("ETH") {
        1_900.0
    } else {
        // FNV-1a: stable across runs, so every other symbol gets its own plausible price.
        let hash = upper.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        0.5 + (hash % 50_000) as f64 / 100.0
    }
}
