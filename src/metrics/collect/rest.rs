//! Families from the REST side: request statistics, clock offsets, and the per-symbol cross-check and listing.

use super::{Scrape, flag, market, seconds, symbol};
use crate::metrics::text::Lines;
use crate::model::{Exchange, Venue};
use crate::tracker::{CrossCheck, Listing, Tracker};

/// Every watched symbol with the tracker that watches it and its REST-side state.
fn symbols<'s>(
    s: &'s Scrape<'_>,
) -> impl Iterator<Item = (&'s Tracker, Venue, &'s str, Listing, Option<CrossCheck>)> {
    s.trackers.iter().flat_map(|t| {
        t.symbol_states()
            .map(move |(venue, symbol, listing, check)| (&**t, venue, symbol, listing, check))
    })
}

pub(super) fn clock_offset(s: &Scrape<'_>, l: &mut Lines<'_>) {
    let clock = s.collector.trackers.clock();
    for e in Exchange::ALL {
        if let Some(offset) = clock.get(e) {
            l.sample(&[e.as_str()], offset as f64 / 1e9);
        }
    }
}

pub(super) fn errors(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for ((venue, endpoint, code), count) in s.collector.rest.errors() {
        let [exchange, market] = market(venue);
        l.count(&[exchange, market, endpoint.as_str(), code.as_str()], count);
    }
}

pub(super) fn duration(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for (venue, endpoint, snap) in s.collector.rest.durations() {
        let [exchange, market] = market(venue);
        l.histogram(&[exchange, market, endpoint.as_str()], &snap);
    }
}

pub(super) fn crosscheck_behind(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for (tracker, venue, name, _, check) in symbols(s) {
        let Some(check) = check else { continue };
        // The verdict speaks of the silence it was made in: once the feed delivers again it no longer applies,
        // and the series goes, so `feed_behind == 1` never names a symbol that recovered.
        let silent_since_check = tracker
            .symbol_last_message_ns(venue, name)
            .is_some_and(|last| last <= check.checked_ns);
        if let (true, Some(behind)) = (silent_since_check, check.feed_behind) {
            l.sample(&symbol(venue, name), flag(behind));
        }
    }
}

pub(super) fn crosscheck_time(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for (_, venue, name, _, check) in symbols(s) {
        if let Some(check) = check {
            l.sample(&symbol(venue, name), seconds(check.checked_ns));
        }
    }
}

/// `(listed, trading)` of a listing state; `None` while unknown.
fn listing(state: Listing) -> Option<(f64, f64)> {
    match state {
        Listing::Unknown => None,
        Listing::Trading => Some((1.0, 1.0)),
        Listing::Halted => Some((1.0, 0.0)),
        Listing::Unlisted => Some((0.0, 0.0)),
    }
}

pub(super) fn symbol_listed(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for (_, venue, name, state, _) in symbols(s) {
        if let Some((listed, _)) = listing(state) {
            l.sample(&symbol(venue, name), listed);
        }
    }
}

pub(super) fn symbol_trading(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for (_, venue, name, state, _) in symbols(s) {
        if let Some((_, trading)) = listing(state) {
            l.sample(&symbol(venue, name), trading);
        }
    }
}
