//! Each exchange's clock offset, shared by every tracker of the process, and the bounds within which event times
//! and offsets are believed.

use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

use crate::model::Exchange;

/// The largest clock offset applied to event times: 5 minutes. A host whose clock drifted by minutes is
/// corrected; an offset of hours says the REST answer or the host clock is broken, and applying it would turn
/// every latency into nonsense, so it is exported and warned about instead.
pub const MAX_APPLIED_OFFSET_NS: u64 = 300_000_000_000;

/// Event times further in the past than this (after the clock correction) are not believed: a venue's replay
/// or a broken field, not a latency.
pub const PLAUSIBLE_PAST_NS: u64 = 3_600_000_000_000;

/// Event times further in the future than this (after the clock correction) are not believed.
pub const PLAUSIBLE_FUTURE_NS: u64 = 60_000_000_000;

/// Marks "offset not measured yet".
const NO_OFFSET: i64 = i64::MIN;

/// Each exchange's clock minus ours, in nanoseconds, shared by every tracker of the process.
#[derive(Debug)]
pub struct ClockOffsets([AtomicI64; Exchange::ALL.len()]);

impl Default for ClockOffsets {
    fn default() -> Self {
        Self(std::array::from_fn(|_| AtomicI64::new(NO_OFFSET)))
    }
}

impl ClockOffsets {
    /// Sets an exchange's offset.
    pub fn set(&self, exchange: Exchange, offset_ns: i64) {
        self.0[exchange.index()].store(offset_ns.max(NO_OFFSET + 1), Relaxed);
    }

    /// An exchange's offset; None before the first measurement.
    pub fn get(&self, exchange: Exchange) -> Option<i64> {
        let offset = self.0[exchange.index()].load(Relaxed);
        (offset != NO_OFFSET).then_some(offset)
    }

    /// The offset to subtract from an event time: zero until measured, and zero when the measurement is beyond
    /// [`MAX_APPLIED_OFFSET_NS`] (exported and warned about, not applied).
    #[inline]
    pub(super) fn correction(&self, exchange: Exchange) -> i64 {
        let offset = self.0[exchange.index()].load(Relaxed);
        if offset == NO_OFFSET || offset.unsigned_abs() > MAX_APPLIED_OFFSET_NS {
            0
        } else {
            offset
        }
    }
}
