//! The scrape-time collector: reads the trackers and the REST statistics and writes every family of the
//! contract straight to text, in name order, each value read as it is written.
//!
//! One writer function per family, grouped by what a sample is about: a subscription (`subscription.rs`), a
//! `(venue, channel)` group (`channel.rs`), a market (`market.rs`), a connection (`connection.rs`), the REST side
//! (`rest.rs`) and the process (`exporter.rs`). [`WRITERS`] lists them in name order, the order of the
//! exposition; a new family is one constant in `families.rs`, one writer and one row there.

mod channel;
mod connection;
mod exporter;
mod market;
mod rest;
mod subscription;

use std::sync::Arc;

use super::BuildInfo;
use super::families::*;
use super::text::Lines;
use crate::model::Venue;
use crate::rest::RestStats;
use crate::tracker::{ConnectionView, SubscriptionView, Tracker, Trackers, UnixNanos, unix_now};

/// Reads the tracker at scrape time and writes the exposition text directly.
pub(super) struct TrackerCollector {
    pub(super) trackers: Arc<Trackers>,
    pub(super) rest: Arc<RestStats>,
    pub(super) build: BuildInfo,
    /// The runtime whose tasks `marketfeed_runtime_tasks` counts (with the process metrics only).
    pub(super) runtime: Option<tokio::runtime::Handle>,
}

/// What one scrape reads: the collector's sources and the trackers as they are when the scrape begins.
pub(super) struct Scrape<'a> {
    collector: &'a TrackerCollector,
    trackers: Vec<Arc<Tracker>>,
    venues: Vec<(Venue, Arc<Tracker>)>,
    now: UnixNanos,
    /// Written by the first family that needs them, dropped with the scrape.
    label_sets: std::cell::OnceCell<subscription::LabelSets>,
}

impl Scrape<'_> {
    fn subscriptions(&self) -> impl Iterator<Item = SubscriptionView<'_>> {
        self.trackers.iter().flat_map(|t| t.subscriptions())
    }

    fn label_sets(&self) -> &subscription::LabelSets {
        self.label_sets
            .get_or_init(|| subscription::LabelSets::new(self))
    }

    fn connections(&self) -> impl Iterator<Item = ConnectionView<'_>> {
        self.trackers.iter().flat_map(|t| t.connections())
    }
}

/// Writes one family's samples.
type Writer = fn(&Scrape<'_>, &mut Lines<'_>);

/// Every family of the contract with its writer, in name order.
pub(super) const WRITERS: [(&Family, Writer); 33] = [
    (&BUILD_INFO, exporter::build_info),
    (&EXPECTED_INTERVAL, channel::expected_interval),
    (&LATE_AFTER, channel::late_after),
    (&QUIET_AFTER, channel::quiet_after),
    (&CLOCK_OFFSET, rest::clock_offset),
    (&CONNECT_FAILURES, connection::connect_failures),
    (&CONNECTION_ESTABLISHED, connection::established),
    (&CONNECTION_UP, connection::up),
    (&CRITICAL_THRESHOLD, market::critical_threshold),
    (&DECODE_ERRORS, market::decode_errors),
    (&DEGRADED_THRESHOLD, market::degraded_threshold),
    (&EVENT_LATENCY, channel::event_latency),
    (&IMPLAUSIBLE_TIMES, market::implausible_times),
    (&LAST_EVENT, subscription::last_event),
    (&LAST_MESSAGE, subscription::last_message),
    (&LAST_PRICE, subscription::last_price),
    (&MESSAGES, subscription::messages),
    (&RECONNECTS, connection::reconnects),
    (&CROSSCHECK_BEHIND, rest::crosscheck_behind),
    (&CROSSCHECK_TIME, rest::crosscheck_time),
    (&REST_ERRORS, rest::errors),
    (&REST_DURATION, rest::duration),
    (&RESUBSCRIBES, subscription::resubscribes),
    (&RUNTIME_TASKS, exporter::runtime_tasks),
    (&SHARDS, exporter::shards),
    (&STALE_THRESHOLD, market::stale_threshold),
    (&ACKED, subscription::acked),
    (&REJECTIONS, subscription::rejections),
    (&SYMBOL_LISTED, rest::symbol_listed),
    (&SYMBOL_TRADING, rest::symbol_trading),
    (&SYMBOLS_BY_FEED, market::symbols_by_feed),
    (&TASK_RESTARTS, exporter::task_restarts),
    (&UPDATE_GAP, channel::update_gap),
];

impl TrackerCollector {
    /// Writes every family of the contract that has a sample into `out`, in name order, reading each value as
    /// it is written: the text is the only copy of the scrape. `between` is called after each family, and may
    /// take what `out` holds so far.
    pub(super) fn write(&self, out: &mut String, between: &mut dyn FnMut(&mut String)) {
        let scrape = Scrape {
            collector: self,
            trackers: self.trackers.all(),
            venues: self.trackers.venues(),
            now: unix_now(),
            label_sets: std::cell::OnceCell::new(),
        };
        for (family, writer) in WRITERS {
            writer(&scrape, &mut Lines::new(out, family));
            between(out);
        }
    }
}

fn seconds(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

fn flag(on: bool) -> f64 {
    if on { 1.0 } else { 0.0 }
}

/// The `exchange`, `market` label values.
fn market(venue: Venue) -> [&'static str; 2] {
    [venue.exchange().as_str(), venue.market().as_str()]
}

/// The `exchange`, `market`, `channel` label values.
fn group(venue: Venue, channel: &str) -> [&str; 3] {
    [venue.exchange().as_str(), venue.market().as_str(), channel]
}

/// The `exchange`, `market`, `symbol` label values.
fn symbol(venue: Venue, symbol: &str) -> [&str; 3] {
    [venue.exchange().as_str(), venue.market().as_str(), symbol]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_are_in_name_order_and_name_each_family_once() {
        let names: Vec<&str> = WRITERS.iter().map(|(f, _)| f.name).collect();
        for pair in names.windows(2) {
            assert!(pair[0] < pair[1], "{} must come after {}", pair[0], pair[1]);
        }
    }
}
