//! What "fresh" means, in one place: the thresholds a silent subscription crosses ([`Status`]), the deadline a
//! scheduled channel keeps ([`Rules::late_after`]), when the exporter repairs a silent subscription
//! ([`repair_after`]), and the live / quiet / late verdict ([`Feed`]) that the API, the metrics and the feeds share.
//!
//! Pure: durations in, verdicts out. Knows nothing of atomics, sockets or Prometheus.

use std::time::Duration;

/// Added to `misses × interval` before a scheduled channel counts as late: network jitter and the venue's own
/// batching, so that one slow frame neither flips the verdict nor costs a resubscribe.
pub const LATE_GRACE: Duration = Duration::from_secs(2);

/// Expected intervals a scheduled channel may miss before it is late (`MARKETFEED_HEARTBEAT_MISSES`).
pub const DEFAULT_HEARTBEAT_MISSES: u32 = 5;

/// Freshness status of a subscription or symbol, from the market's thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Nothing delivered since the process started: there is no price to be fresh or stale.
    NoData,
    /// Updated within the degraded threshold.
    Healthy,
    /// Silent for at least the degraded threshold (default 3 min).
    Degraded,
    /// Silent for at least the stale threshold (default 5 min).
    Stale,
    /// Silent for at least the critical threshold (default 1 h).
    Critical,
}

impl Status {
    /// Every status, from no data to the worst silence.
    pub const ALL: [Status; 5] = [
        Status::NoData,
        Status::Healthy,
        Status::Degraded,
        Status::Stale,
        Status::Critical,
    ];

    /// The JSON value.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::NoData => "no_data",
            Status::Healthy => "healthy",
            Status::Degraded => "degraded",
            Status::Stale => "stale",
            Status::Critical => "critical",
        }
    }
}

/// Ages at which a silent subscription turns degraded, stale and critical; configuration guarantees
/// `degraded < stale < critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Age from which a subscription is degraded (default 180 s, the warning alert).
    pub degraded: Duration,
    /// Age from which it is stale (default 300 s, the critical alert).
    pub stale: Duration,
    /// Age from which it is critical (default 1 h).
    pub critical: Duration,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            degraded: Duration::from_secs(180),
            stale: Duration::from_secs(300),
            critical: Duration::from_secs(3600),
        }
    }
}

impl Thresholds {
    /// Classifies the age of something that has delivered at least once.
    pub fn classify(&self, age: Duration) -> Status {
        if age >= self.critical {
            Status::Critical
        } else if age >= self.stale {
            Status::Stale
        } else if age >= self.degraded {
            Status::Degraded
        } else {
            Status::Healthy
        }
    }

    /// The status of a subscription or symbol: [`Status::NoData`] until it has delivered.
    pub fn status(&self, delivered: bool, age: Duration) -> Status {
        if delivered {
            self.classify(age)
        } else {
            Status::NoData
        }
    }
}

/// Whether the feed is proven alive: what a bot asks before it acts on a price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// Every channel delivered within its limit: scheduled ones on cadence, event-driven ones recently.
    Live,
    /// The scheduled channels are on time, but an event-driven channel has been silent longer than a scheduled one
    /// may be: the market is quiet, the feed is alive.
    Quiet,
    /// A scheduled channel missed its cadence: the subscription is dead, whatever the market does.
    Late,
    /// Nothing delivered since the process started.
    NoData,
}

impl Feed {
    /// Every verdict, in label order.
    pub const ALL: [Feed; 4] = [Feed::Live, Feed::Quiet, Feed::Late, Feed::NoData];

    /// The JSON value and the `feed` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Feed::Live => "live",
            Feed::Quiet => "quiet",
            Feed::Late => "late",
            Feed::NoData => "no_data",
        }
    }
}

/// A market's freshness settings: its thresholds (global or overridden) and the heartbeat misses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// The thresholds in force for the market.
    pub thresholds: Thresholds,
    /// Expected intervals a scheduled channel may miss before it is late.
    pub heartbeat_misses: u32,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            thresholds: Thresholds::default(),
            heartbeat_misses: DEFAULT_HEARTBEAT_MISSES,
        }
    }
}

impl Rules {
    /// Silence after which a channel pushed every `interval` is late, and resubscribed:
    /// `heartbeat_misses × interval + LATE_GRACE`.
    pub fn late_after(&self, interval: Duration) -> Duration {
        interval
            .saturating_mul(self.heartbeat_misses)
            .saturating_add(LATE_GRACE)
    }

    /// Silence after which an event-driven channel of a market counts as quiet: as long as the slowest of the
    /// market's scheduled channels may be silent (past that, a live feed would have shown itself), or, in a market
    /// without a scheduled channel, the degraded threshold.
    pub fn quiet_after(&self, intervals: impl IntoIterator<Item = Duration>) -> Duration {
        intervals
            .into_iter()
            .map(|interval| self.late_after(interval))
            .max()
            .unwrap_or(self.thresholds.degraded)
    }

    /// A channel's limit in this market: late after its deadline when scheduled, else quiet after `quiet_after`.
    pub fn limit(&self, interval: Option<Duration>, quiet_after: Duration) -> Limit {
        match interval {
            Some(interval) => Limit::Late(self.late_after(interval)),
            None => Limit::Quiet(quiet_after),
        }
    }
}

/// When the exporter resubscribes a subscription that is silent while its connection delivers: a scheduled
/// channel once it is late, an event-driven one after `resubscribe_after` (`MARKETFEED_RESUBSCRIBE_AFTER`), and a
/// scheduled one no later than that either.
pub fn repair_after(limit: Limit, resubscribe_after: Duration) -> Duration {
    match limit {
        Limit::Late(late_after) => late_after.min(resubscribe_after),
        Limit::Quiet(_) => resubscribe_after,
    }
}

/// How long to wait, since the last (re)subscribe was acknowledged, before repairing a stream that stays silent
/// after `repairs` repairs: the deadline, doubled after each repair that brought nothing back, up to
/// `resubscribe_after` (or the deadline itself when that is longer). A venue that dropped a symbol is asked again
/// ever more rarely, never more often than the first repair.
pub fn repair_wait(deadline: Duration, repairs: u32, resubscribe_after: Duration) -> Duration {
    let cap = resubscribe_after.max(deadline);
    deadline.saturating_mul(1 << repairs.min(20)).min(cap)
}

/// How long a channel may be silent before its verdict changes, and to what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// A scheduled channel: late after this long.
    Late(Duration),
    /// An event-driven channel: quiet after this long.
    Quiet(Duration),
}

/// One channel of a symbol at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelClock {
    /// Whether it has delivered since the process started.
    pub delivered: bool,
    /// Time since its last message, or since it was first requested when it has not delivered.
    pub age: Duration,
    /// Its limit.
    pub limit: Limit,
}

impl ChannelClock {
    /// Whether the channel's silence has passed its limit (late for a scheduled channel, quiet for an event one).
    fn overdue(&self) -> bool {
        match self.limit {
            Limit::Late(limit) | Limit::Quiet(limit) => self.age > limit,
        }
    }

    /// The channel's own verdict; [`Feed::NoData`] until it has delivered.
    pub fn feed(&self) -> Feed {
        match self.limit {
            _ if !self.delivered => Feed::NoData,
            Limit::Late(_) if self.overdue() => Feed::Late,
            Limit::Quiet(_) if self.overdue() => Feed::Quiet,
            _ => Feed::Live,
        }
    }
}

/// A symbol's verdict from its channels: `no_data` while none has delivered; `late` when a scheduled channel is
/// past its deadline (one that has not delivered yet counts from its request); `quiet` when only event-driven
/// channels are past theirs; else `live`.
pub fn symbol_feed(channels: impl IntoIterator<Item = ChannelClock>) -> Feed {
    let (mut delivered, mut late, mut quiet) = (false, false, false);
    for channel in channels {
        delivered |= channel.delivered;
        match channel.limit {
            Limit::Late(_) => late |= channel.overdue(),
            Limit::Quiet(_) => quiet |= channel.overdue(),
        }
    }
    if !delivered {
        Feed::NoData
    } else if late {
        Feed::Late
    } else if quiet {
        Feed::Quiet
    } else {
        Feed::Live
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn status_thresholds_and_no_data() {
        let t = Thresholds::default();
        for (age, status) in [
            (0, Status::Healthy),
            (179, Status::Healthy),
            (180, Status::Degraded),
            (299, Status::Degraded),
            (300, Status::Stale),
            (3599, Status::Stale),
            (3600, Status::Critical),
        ] {
            assert_eq!(t.status(true, s(age)), status, "age {age}");
            assert_eq!(t.status(false, s(age)), Status::NoData, "age {age}");
        }
    }

    #[test]
    fn late_after_is_misses_times_interval_plus_grace() {
        let rules = |misses| Rules {
            heartbeat_misses: misses,
            ..Rules::default()
        };
        assert_eq!(Rules::default().late_after(s(1)), s(7));
        assert_eq!(Rules::default().late_after(s(3)), s(17));
        assert_eq!(Rules::default().late_after(ms(100)), ms(2500));
        assert_eq!(rules(1).late_after(s(3)), s(5));
        assert_eq!(rules(u32::MAX).late_after(s(u64::MAX / 2)), Duration::MAX);
    }

    #[test]
    fn quiet_after_follows_the_slowest_scheduled_channel() {
        let rules = Rules::default();
        assert_eq!(rules.quiet_after([s(1), s(3)]), s(17));
        assert_eq!(
            rules.quiet_after([]),
            s(180),
            "no scheduled channel: degraded"
        );
        assert_eq!(rules.limit(Some(s(1)), s(17)), Limit::Late(s(7)));
        assert_eq!(rules.limit(None, s(17)), Limit::Quiet(s(17)));
    }

    #[test]
    fn repair_comes_at_the_late_deadline_or_resubscribe_after() {
        assert_eq!(repair_after(Limit::Late(s(7)), s(600)), s(7));
        assert_eq!(repair_after(Limit::Late(s(7)), s(1)), s(1));
        assert_eq!(repair_after(Limit::Quiet(s(17)), s(600)), s(600));
    }

    #[test]
    fn repeated_repairs_back_off_up_to_resubscribe_after() {
        let waits: Vec<u64> = (0..8)
            .map(|n| repair_wait(s(17), n, s(600)).as_secs())
            .collect();
        assert_eq!(waits, [17, 34, 68, 136, 272, 544, 600, 600]);
        assert_eq!(
            repair_wait(s(600), 3, s(600)),
            s(600),
            "event-driven: every 10 min"
        );
        assert_eq!(
            repair_wait(s(7), 2, s(1)),
            s(7),
            "never sooner than the deadline"
        );
        assert_eq!(repair_wait(s(7), u32::MAX, s(600)), s(600));
    }

    fn clock(delivered: bool, age: u64, limit: Limit) -> ChannelClock {
        ChannelClock {
            delivered,
            age: s(age),
            limit,
        }
    }

    #[test]
    fn channel_verdicts() {
        let scheduled = Limit::Late(s(7));
        let event = Limit::Quiet(s(17));
        for (channel, feed) in [
            (clock(false, 0, scheduled), Feed::NoData),
            (clock(false, 100, scheduled), Feed::NoData),
            (clock(true, 7, scheduled), Feed::Live),
            (clock(true, 8, scheduled), Feed::Late),
            (clock(false, 100, event), Feed::NoData),
            (clock(true, 17, event), Feed::Live),
            (clock(true, 18, event), Feed::Quiet),
            (clock(true, 100_000, event), Feed::Quiet),
        ] {
            assert_eq!(channel.feed(), feed, "{channel:?}");
        }
    }

    /// The transitions of a symbol with one scheduled and one event-driven channel, as time passes.
    #[test]
    fn symbol_verdicts() {
        let depth = |delivered, age| clock(delivered, age, Limit::Late(s(7)));
        let trades = |delivered, age| clock(delivered, age, Limit::Quiet(s(7)));
        for (channels, feed, why) in [
            (
                [depth(false, 1), trades(false, 1)],
                Feed::NoData,
                "just started",
            ),
            (
                [depth(false, 60), trades(false, 60)],
                Feed::NoData,
                "never delivered",
            ),
            (
                [depth(true, 0), trades(false, 1)],
                Feed::Live,
                "trades not due yet",
            ),
            ([depth(true, 0), trades(true, 2)], Feed::Live, "both recent"),
            (
                [depth(true, 0), trades(true, 120)],
                Feed::Quiet,
                "no trades",
            ),
            (
                [depth(true, 0), trades(false, 120)],
                Feed::Quiet,
                "no trade yet",
            ),
            ([depth(true, 8), trades(true, 0)], Feed::Late, "depth dead"),
            (
                [depth(false, 8), trades(true, 0)],
                Feed::Late,
                "depth never came",
            ),
            (
                [depth(true, 9), trades(true, 120)],
                Feed::Late,
                "late wins over quiet",
            ),
        ] {
            assert_eq!(symbol_feed(channels), feed, "{why}");
        }
        let event_only = [trades(true, 30)];
        assert_eq!(symbol_feed(event_only), Feed::Quiet, "never late");
        assert_eq!(symbol_feed([trades(true, 3)]), Feed::Live);
    }
}
