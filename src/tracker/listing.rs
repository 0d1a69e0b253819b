//! What the REST side learns of a symbol: its listing and the last cross-check of a stale feed.

use std::sync::Mutex;
use std::sync::atomic::AtomicU8;

use rust_decimal::Decimal;

use super::UnixNanos;

/// What the venue's REST instrument list says of a symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// Not looked up yet (or the lookup failed so far).
    Unknown,
    /// Listed and trading.
    Trading,
    /// Listed but not trading (halted, break, pre-launch, delivering).
    Halted,
    /// Not in the venue's list at all.
    Unlisted,
}

impl Listing {
    pub(super) fn from_u8(v: u8) -> Self {
        match v {
            1 => Listing::Trading,
            2 => Listing::Halted,
            3 => Listing::Unlisted,
            _ => Listing::Unknown,
        }
    }
}

/// The last REST cross-check of a stale symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrossCheck {
    /// When it was made.
    pub checked_ns: UnixNanos,
    /// The REST ticker's price.
    pub rest_price: Decimal,
    /// Some(true) when REST shows a trade or price the feed never delivered: the feed is broken, not the
    /// market quiet. Some(false) when REST agrees with the feed's last trade. None when neither side had a
    /// comparable last-trade price or time.
    pub feed_behind: Option<bool>,
}

/// Per-symbol state fed by the REST side.
#[derive(Debug, Default)]
pub(super) struct SymbolState {
    pub(super) listing: AtomicU8,
    /// Rare writes and reads (REST cadence, scrape): a lock is fine here, off the ingest path.
    pub(super) cross_check: Mutex<Option<CrossCheck>>,
}
