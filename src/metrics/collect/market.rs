//! Families with one series per watched market (exchange, market): thresholds, errors, verdict counts.

use super::{Scrape, market};
use crate::freshness::Feed;
use crate::metrics::text::Lines;
use crate::model::Venue;

pub(super) fn critical_threshold(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for (venue, tracker) in &s.venues {
        l.sample(&market(*venue), tracker.thresholds().critical.as_secs_f64());
    }
}

pub(super) fn degraded_threshold(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for (venue, tracker) in &s.venues {
        l.sample(&market(*venue), tracker.thresholds().degraded.as_secs_f64());
    }
}

pub(super) fn stale_threshold(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for (venue, tracker) in &s.venues {
        l.sample(&market(*venue), tracker.thresholds().stale.as_secs_f64());
    }
}

pub(super) fn decode_errors(s: &Scrape<'_>, l: &mut Lines<'_>) {
    let mut watched: Vec<Venue> = s.subscriptions().map(|v| v.subscription.venue).collect();
    watched.dedup();
    for venue in watched {
        let errors = s.trackers.iter().map(|t| t.decode_errors(venue)).sum();
        l.count(&market(venue), errors);
    }
}

pub(super) fn implausible_times(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for (venue, tracker) in &s.venues {
        l.count(&market(*venue), tracker.implausible_times());
    }
}

/// Per watched market: how many symbols have each verdict. A `*` market's tracker exists (empty) before its first
/// listing, so these are there from startup.
pub(super) fn symbols_by_feed(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for (venue, tracker) in &s.venues {
        let [exchange, market] = market(*venue);
        for (feed, count) in Feed::ALL.iter().zip(tracker.feed_counts(s.now)) {
            l.sample(&[exchange, market, feed.as_str()], count as f64);
        }
    }
}
