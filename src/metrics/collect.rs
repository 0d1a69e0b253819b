//! The scrape-time collector: reads the trackers and the REST statistics and writes every family of the
//! contract straight to text, in name order, each value read as it is written.

use std::sync::Arc;

use super::BuildInfo;
use super::families::*;
use super::text::Lines;
use crate::freshness::{Feed, Limit};
use crate::model::{Exchange, Venue};
use crate::rest::RestStats;
use crate::supervise::Task;
use crate::tracker::{Listing, Reason, Trackers, unix_now};

/// Reads the tracker at scrape time and writes the exposition text directly.
pub(super) struct TrackerCollector {
    pub(super) trackers: Arc<Trackers>,
    pub(super) rest: Arc<RestStats>,
    pub(super) build: BuildInfo,
    /// The runtime whose tasks `marketfeed_runtime_tasks` counts (with the process metrics only).
    pub(super) runtime: Option<tokio::runtime::Handle>,
}

fn seconds(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

fn flag(on: bool) -> f64 {
    if on { 1.0 } else { 0.0 }
}

impl TrackerCollector {
    /// Writes every family of the contract that has a sample into `out`, in name order (the order of
    /// [`FAMILIES_BY_NAME`]), reading each value as it is written: the text is the only copy of the scrape.
    pub(super) fn write(&self, out: &mut String) {
        let trackers = self.trackers.all();
        let venues = self.trackers.venues();
        let now = unix_now();
        // Each family below in name order; a test checks the order against the names.
        let b = &self.build;
        Lines::new(out, &BUILD_INFO).sample(&[&b.version, &b.revision, &b.rustc_version], 1.0);

        let cadences = || trackers.iter().flat_map(|t| t.cadences());
        let mut l = Lines::new(out, &EXPECTED_INTERVAL);
        for (venue, channel, interval, _) in cadences() {
            if let Some(interval) = interval {
                l.sample(&group(venue, channel), interval.as_secs_f64());
            }
        }
        let mut l = Lines::new(out, &LATE_AFTER);
        for (venue, channel, _, limit) in cadences() {
            if let Limit::Late(after) = limit {
                l.sample(&group(venue, channel), after.as_secs_f64());
            }
        }
        let mut l = Lines::new(out, &QUIET_AFTER);
        for (venue, channel, _, limit) in cadences() {
            if let Limit::Quiet(after) = limit {
                l.sample(&group(venue, channel), after.as_secs_f64());
            }
        }

        let mut l = Lines::new(out, &CLOCK_OFFSET);
        for e in Exchange::ALL {
            if let Some(offset) = self.trackers.clock().get(e) {
                l.sample(&[e.as_str()], offset as f64 / 1e9);
            }
        }

        let mut l = Lines::new(out, &CONNECT_FAILURES);
        for (venue, tracker) in &venues {
            for (cause, count) in tracker.connect_failures() {
                let [exchange, market] = market(*venue);
                l.count(&[exchange, market, &cause.label()], count);
            }
        }

        let connections = || trackers.iter().flat_map(|t| t.connections());
        let mut l = Lines::new(out, &CONNECTION_ESTABLISHED);
        for c in connections().filter(|c| c.established_ns > 0) {
            let index = c.info.index.to_string();
            let [exchange, market] = market(c.info.venue);
            l.sample(&[exchange, market, &index], seconds(c.established_ns));
        }
        let mut l = Lines::new(out, &CONNECTION_UP);
        for c in connections() {
            let index = c.info.index.to_string();
            let [exchange, market] = market(c.info.venue);
            l.sample(&[exchange, market, &index], flag(c.up));
        }

        let mut l = Lines::new(out, &CRITICAL_THRESHOLD);
        for (venue, tracker) in &venues {
            l.sample(&market(*venue), tracker.thresholds().critical.as_secs_f64());
        }

        let mut watched: Vec<Venue> = trackers
            .iter()
            .flat_map(|t| t.subscriptions())
            .map(|v| v.subscription.venue)
            .collect();
        watched.dedup();
        let mut l = Lines::new(out, &DECODE_ERRORS);
        for venue in watched {
            let errors = trackers.iter().map(|t| t.decode_errors(venue)).sum();
            l.count(&market(venue), errors);
        }

        let mut l = Lines::new(out, &DEGRADED_THRESHOLD);
        for (venue, tracker) in &venues {
            l.sample(&market(*venue), tracker.thresholds().degraded.as_secs_f64());
        }

        let histograms = || trackers.iter().flat_map(|t| t.histograms());
        let mut l = Lines::new(out, &EVENT_LATENCY);
        for (venue, channel, _, latency) in histograms() {
            // Channels without an exchange event time (Binance spot bookTicker and partial depth) never
            // observe a latency; an always-empty histogram would only add series.
            if latency.count > 0 {
                l.histogram(&group(venue, channel), &latency);
            }
        }

        let mut l = Lines::new(out, &IMPLAUSIBLE_TIMES);
        for (venue, tracker) in &venues {
            l.count(&market(*venue), tracker.implausible_times());
        }

        let subscriptions = || trackers.iter().flat_map(|t| t.subscriptions());
        let mut l = Lines::new(out, &LAST_EVENT);
        for v in subscriptions() {
            if let Some(ms) = v.last_event_ms {
                l.sample(&sub(v.subscription), ms as f64 / 1e3);
            }
        }
        let mut l = Lines::new(out, &LAST_MESSAGE);
        for v in subscriptions() {
            l.sample(&sub(v.subscription), seconds(v.last_message_ns));
        }
        let mut l = Lines::new(out, &LAST_PRICE);
        for v in subscriptions() {
            if let Some(p) = v
                .price
                .and_then(|p| rust_decimal::prelude::ToPrimitive::to_f64(&p))
            {
                l.sample(&sub(v.subscription), p);
            }
        }
        let mut l = Lines::new(out, &MESSAGES);
        for v in subscriptions() {
            l.count(&sub(v.subscription), v.messages);
        }

        let mut l = Lines::new(out, &RECONNECTS);
        for c in connections() {
            let index = c.info.index.to_string();
            let [exchange, market] = market(c.info.venue);
            for (reason, count) in Reason::ALL.iter().zip(c.reconnects) {
                l.count(&[exchange, market, &index, reason.as_str()], count);
            }
        }

        // The REST cross-check's two families and the listing's two, from the same per-symbol state.
        let symbols = || {
            trackers
                .iter()
                .flat_map(|t| t.symbol_states().map(move |s| (t, s)))
        };
        let mut l = Lines::new(out, &CROSSCHECK_BEHIND);
        for (tracker, (venue, symbol, _, check)) in symbols() {
            let Some(check) = check else { continue };
            // The verdict speaks of the silence it was made in: once the feed delivers again it no longer
            // applies, and the series goes, so `feed_behind == 1` never names a symbol that recovered.
            let silent_since_check = tracker
                .symbol_last_message_ns(venue, symbol)
                .is_some_and(|last| last <= check.checked_ns);
            if let (true, Some(behind)) = (silent_since_check, check.feed_behind) {
                let [exchange, market] = market(venue);
                l.sample(&[exchange, market, symbol], flag(behind));
            }
        }
        let mut l = Lines::new(out, &CROSSCHECK_TIME);
        for (_, (venue, symbol, _, check)) in symbols() {
            if let Some(check) = check {
                let [exchange, market] = market(venue);
                l.sample(&[exchange, market, symbol], seconds(check.checked_ns));
            }
        }

        let mut l = Lines::new(out, &REST_ERRORS);
        for ((venue, endpoint, code), count) in self.rest.errors() {
            let [exchange, market] = market(venue);
            l.count(&[exchange, market, endpoint.as_str(), code.as_str()], count);
        }
        let mut l = Lines::new(out, &REST_DURATION);
        for (venue, endpoint, snap) in self.rest.durations() {
            let [exchange, market] = market(venue);
            l.histogram(&[exchange, market, endpoint.as_str()], &snap);
        }

        let mut l = Lines::new(out, &RESUBSCRIBES);
        for v in subscriptions() {
            l.count(&sub(v.subscription), v.resubscribes);
        }

        if let Some(runtime) = &self.runtime {
            Lines::new(out, &RUNTIME_TASKS).sample(&[], runtime.metrics().num_alive_tasks() as f64);
        }

        let mut l = Lines::new(out, &STALE_THRESHOLD);
        for (venue, tracker) in &venues {
            l.sample(&market(*venue), tracker.thresholds().stale.as_secs_f64());
        }

        let mut l = Lines::new(out, &ACKED);
        for v in subscriptions() {
            l.sample(&sub(v.subscription), flag(v.acked));
        }
        let mut l = Lines::new(out, &REJECTIONS);
        for v in subscriptions() {
            l.count(&sub(v.subscription), v.rejections);
        }

        let listing = |listing: Listing| match listing {
            Listing::Unknown => (None, None),
            Listing::Trading => (Some(1.0), Some(1.0)),
            Listing::Halted => (Some(1.0), Some(0.0)),
            Listing::Unlisted => (Some(0.0), Some(0.0)),
        };
        let mut l = Lines::new(out, &SYMBOL_LISTED);
        for (_, (venue, symbol, state, _)) in symbols() {
            if let (Some(v), _) = listing(state) {
                let [exchange, market] = market(venue);
                l.sample(&[exchange, market, symbol], v);
            }
        }
        let mut l = Lines::new(out, &SYMBOL_TRADING);
        for (_, (venue, symbol, state, _)) in symbols() {
            if let (_, Some(v)) = listing(state) {
                let [exchange, market] = market(venue);
                l.sample(&[exchange, market, symbol], v);
            }
        }

        // Per watched market: how many symbols have each verdict. A `*` market's tracker exists (empty) before
        // its first listing, so these are there from startup.
        let mut l = Lines::new(out, &SYMBOLS_BY_FEED);
        for (venue, tracker) in &venues {
            let [exchange, market] = market(*venue);
            for (feed, count) in Feed::ALL.iter().zip(tracker.feed_counts(now)) {
                l.sample(&[exchange, market, feed.as_str()], count as f64);
            }
        }

        let restarts = self.trackers.restarts();
        let mut l = Lines::new(out, &TASK_RESTARTS);
        for task in Task::ALL {
            l.count(&[task.as_str()], restarts.get(task));
        }

        let mut l = Lines::new(out, &UPDATE_GAP);
        for (venue, channel, gap, _) in histograms() {
            l.histogram(&group(venue, channel), &gap);
        }
    }
}

/// The `exchange`, `market` label values.
fn market(venue: Venue) -> [&'static str; 2] {
    [venue.exchange().as_str(), venue.market().as_str()]
}

/// The `exchange`, `market`, `channel` label values.
fn group(venue: Venue, channel: &str) -> [&str; 3] {
    [venue.exchange().as_str(), venue.market().as_str(), channel]
}

/// The label values of one subscription: the one place their order is written.
fn sub(s: &crate::model::Subscription) -> [&str; 4] {
    [
        s.venue.exchange().as_str(),
        s.venue.market().as_str(),
        &s.channel.name,
        &s.symbol,
    ]
}
