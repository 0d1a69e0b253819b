//! The REST side's decisions as pure functions, told every fact: which clock offset to believe, whether it
//! crossed the bound past which it is not applied, and what a cross-check says of a silent feed. The pollers in
//! `mod.rs` only fetch and record.

use std::collections::VecDeque;

use rust_decimal::Decimal;

use crate::tracker::MAX_APPLIED_OFFSET_NS;

/// How many clock samples the offset is chosen from.
pub(super) const CLOCK_SAMPLES: usize = 5;

/// The last few server-time samples. Each sample's offset assumes the server read its clock halfway through
/// the round trip, so its error is at most half the round trip; of the last [`CLOCK_SAMPLES`] the one with the
/// shortest round trip wins (the minimum-delay filter NTP uses).
#[derive(Debug, Default)]
pub(super) struct ClockFilter {
    /// (round trip, offset) in nanoseconds, oldest first.
    samples: VecDeque<(u64, i64)>,
}

impl ClockFilter {
    /// Adds a sample (request sent and answer received on our Unix clock, the server's time in its answer) and
    /// returns the offset to believe now, the venue's clock minus ours, with that sample's round trip.
    pub(super) fn add(&mut self, sent_ns: u64, received_ns: u64, server_ns: i64) -> (i64, u64) {
        let rtt = received_ns.saturating_sub(sent_ns);
        let midpoint = i64::try_from(sent_ns.saturating_add(rtt / 2)).unwrap_or(i64::MAX);
        self.samples
            .push_back((rtt, server_ns.saturating_sub(midpoint)));
        if self.samples.len() > CLOCK_SAMPLES {
            self.samples.pop_front();
        }
        let (rtt, offset) = self
            .samples
            .iter()
            .copied()
            .min_by_key(|(rtt, _)| *rtt)
            .unwrap_or((rtt, 0));
        (offset, rtt)
    }
}

/// Whether a new offset crossed the bound past which it is exported but not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Crossing {
    /// Same side as before (or the first measurement within the bound).
    None,
    /// Now beyond it: warn once.
    Beyond,
    /// Back within it: say so once.
    Back,
}

/// Compares the previous offset (None before the first) with the new one against the bound.
pub(super) fn crossing(previous: Option<i64>, offset: i64) -> Crossing {
    let beyond = |o: i64| o.unsigned_abs() > MAX_APPLIED_OFFSET_NS;
    match (previous.is_some_and(beyond), beyond(offset)) {
        (false, true) => Crossing::Beyond,
        (true, false) => Crossing::Back,
        _ => Crossing::None,
    }
}

/// What REST says of a feed silent since `last_ns`: Some(true) when REST shows a trade after the feed's last
/// message or a price other than the feed's last one (the feed missed an update), Some(false) when what it
/// shows agrees (the market is quiet), None when it shows neither a trade time nor a price to compare.
pub(super) fn feed_behind(
    trade_time_ms: Option<i64>,
    rest_price: Decimal,
    last_ns: u64,
    feed_price: Option<Decimal>,
) -> Option<bool> {
    let traded_since =
        trade_time_ms.map(|ms| (ms.max(0) as u64).saturating_mul(1_000_000) > last_ns);
    let moved = feed_price.map(|p| p != rest_price);
    match (traded_since, moved) {
        (Some(true), _) | (_, Some(true)) => Some(true),
        (None, None) => None,
        _ => Some(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn the_sample_with_the_shortest_round_trip_of_the_last_five_wins() {
        let mut f = ClockFilter::default();
        // Sent at t, answered at t + rtt; the server's clock 300 ms ahead, read mid-way.
        let sample = |f: &mut ClockFilter, t: u64, rtt: u64, skew: i64| {
            let server = (t + rtt / 2) as i64 + 300 * MS as i64 + skew;
            f.add(t, t + rtt, server)
        };
        assert_eq!(
            sample(&mut f, 1_000 * MS, 80 * MS, 0),
            (300 * MS as i64, 80 * MS)
        );
        // A slow answer, read late: its offset is off by 40 ms but it does not win.
        assert_eq!(
            sample(&mut f, 2_000 * MS, 400 * MS, 40 * MS as i64),
            (300 * MS as i64, 80 * MS)
        );
        // A quicker one wins.
        assert_eq!(
            sample(&mut f, 3_000 * MS, 10 * MS, 2 * MS as i64),
            (302 * MS as i64, 10 * MS)
        );
        // Five later samples push the quick one out.
        for i in 0..5 {
            sample(&mut f, (4_000 + i) * MS, 50 * MS, -(MS as i64));
        }
        assert_eq!(
            sample(&mut f, 10_000 * MS, 60 * MS, 0),
            (299 * MS as i64, 50 * MS)
        );
        // Clocks that step backwards give a zero round trip, never a panic.
        assert_eq!(f.add(20_000 * MS, 19_000 * MS, i64::MIN).1, 0);
        assert_eq!(f.add(u64::MAX, 0, i64::MAX).1, 0);
    }

    #[test]
    fn crossing_the_bound_is_said_once_each_way() {
        let bound = MAX_APPLIED_OFFSET_NS as i64;
        let cases = [
            (None, 0, Crossing::None),
            (None, bound + 1, Crossing::Beyond),
            (None, -bound - 1, Crossing::Beyond),
            (Some(0), bound, Crossing::None),
            (Some(0), bound + 1, Crossing::Beyond),
            (Some(bound + 1), bound + 2, Crossing::None),
            (Some(bound + 1), -bound - 5, Crossing::None),
            (Some(-bound - 1), 5, Crossing::Back),
            (Some(i64::MIN), i64::MAX, Crossing::None),
        ];
        for (previous, offset, expected) in cases {
            assert_eq!(
                crossing(previous, offset),
                expected,
                "{previous:?} -> {offset}"
            );
        }
    }

    #[test]
    fn the_cross_check_truth_table() {
        let p = |s: &str| s.parse::<Decimal>().unwrap();
        let last_ns = 1_000 * MS;
        let cases = [
            // A trade after the feed's last message: behind, whatever the prices say.
            (Some(1_001), p("10"), Some(p("10")), Some(true)),
            // A different price: behind, even without a trade time.
            (None, p("11"), Some(p("10")), Some(true)),
            (Some(999), p("11"), Some(p("10")), Some(true)),
            // Same price, no newer trade: the market is quiet.
            (Some(999), p("10"), Some(p("10")), Some(false)),
            (Some(1_000), p("10"), None, Some(false)),
            (None, p("10"), Some(p("10.000")), Some(false)),
            // Nothing to compare: inconclusive.
            (None, p("10"), None, None),
            // A negative trade time is no trade after anything.
            (Some(-5), p("10"), None, Some(false)),
        ];
        for (trade_ms, rest, feed, expected) in cases {
            assert_eq!(
                feed_behind(trade_ms, rest, last_ns, feed),
                expected,
                "{trade_ms:?} {rest} {feed:?}"
            );
        }
    }
}
