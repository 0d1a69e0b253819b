//! Families with one series per connection (exchange, market, connection), and connect failures per market.

use super::{Scrape, flag, market, seconds};
use crate::metrics::text::Lines;
use crate::tracker::Reason;

pub(super) fn connect_failures(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for (venue, tracker) in &s.venues {
        let [exchange, market] = market(*venue);
        for (cause, count) in tracker.connect_failures() {
            l.count(&[exchange, market, &cause.label()], count);
        }
    }
}

pub(super) fn established(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for c in s.connections().filter(|c| c.established_ns > 0) {
        let index = c.info.index.to_string();
        let [exchange, market] = market(c.info.venue);
        l.sample(&[exchange, market, &index], seconds(c.established_ns));
    }
}

pub(super) fn up(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for c in s.connections() {
        let index = c.info.index.to_string();
        let [exchange, market] = market(c.info.venue);
        l.sample(&[exchange, market, &index], flag(c.up));
    }
}

pub(super) fn reconnects(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for c in s.connections() {
        let index = c.info.index.to_string();
        let [exchange, market] = market(c.info.venue);
        for (reason, count) in Reason::ALL.iter().zip(c.reconnects) {
            l.count(&[exchange, market, &index, reason.as_str()], count);
        }
    }
}
