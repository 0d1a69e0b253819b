//! Families with one series per `(venue, channel)` group: cadence and limits, and the two histograms.

use std::time::Duration;

use super::{Scrape, group};
use crate::freshness::Limit;
use crate::metrics::text::Lines;
use crate::model::Venue;
use crate::tracker::HistogramSnapshot;

fn cadences<'s>(
    s: &'s Scrape<'_>,
) -> impl Iterator<Item = (Venue, &'s str, Option<Duration>, Limit)> {
    s.trackers.iter().flat_map(|t| t.cadences())
}

fn histograms<'s>(
    s: &'s Scrape<'_>,
) -> impl Iterator<Item = (Venue, &'s str, HistogramSnapshot, HistogramSnapshot)> {
    s.trackers.iter().flat_map(|t| t.histograms())
}

pub(super) fn expected_interval(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for (venue, channel, interval, _) in cadences(s) {
        if let Some(interval) = interval {
            l.sample(&group(venue, channel), interval.as_secs_f64());
        }
    }
}

pub(super) fn late_after(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for (venue, channel, _, limit) in cadences(s) {
        if let Limit::Late(after) = limit {
            l.sample(&group(venue, channel), after.as_secs_f64());
        }
    }
}

pub(super) fn quiet_after(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for (venue, channel, _, limit) in cadences(s) {
        if let Limit::Quiet(after) = limit {
            l.sample(&group(venue, channel), after.as_secs_f64());
        }
    }
}

pub(super) fn event_latency(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for (venue, channel, _, latency) in histograms(s) {
        // Channels without an exchange event time (Binance spot bookTicker and partial depth) never observe a
        // latency; an always-empty histogram would only add series.
        if latency.count > 0 {
            l.histogram(&group(venue, channel), &latency);
        }
    }
}

pub(super) fn update_gap(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for (venue, channel, gap, _) in histograms(s) {
        l.histogram(&group(venue, channel), &gap);
    }
}
