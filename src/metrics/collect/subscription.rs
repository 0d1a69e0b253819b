//! Families with one series per subscription (exchange, market, channel, symbol).
//!
//! Seven families share each subscription's label set: it is written (and escaped) once per scrape into
//! [`LabelSets`] and copied into each family's lines.

use super::{Scrape, flag, seconds};
use crate::metrics::families::SUB_LABELS;
use crate::metrics::text::{LabelSet, Lines, label_set};
use crate::model::Subscription;
use crate::tracker::SubscriptionView;

/// The label values of one subscription: the one place their order is written.
fn sub(s: &Subscription) -> [&str; 4] {
    [
        s.venue.exchange().as_str(),
        s.venue.market().as_str(),
        &s.channel.name,
        &s.symbol,
    ]
}

/// Every subscription's label set as written, in the scrape's order of subscriptions: the `i`th is
/// `text[starts[i]..starts[i + 1]]`.
pub(super) struct LabelSets {
    text: String,
    starts: Vec<usize>,
}

impl LabelSets {
    pub(super) fn new(s: &Scrape<'_>) -> Self {
        // Reserved at once (about 80 bytes a set): large blocks the allocator maps and returns whole, rather than
        // a doubling series of heap blocks at every scrape.
        let count: usize = s.trackers.iter().map(|t| t.len()).sum();
        let mut text = String::with_capacity(count * 80);
        let mut starts = Vec::with_capacity(count + 1);
        starts.push(0);
        // The definitions only: the label values, not the state a view reads.
        for definition in s.trackers.iter().flat_map(|t| t.definitions()) {
            label_set(&mut text, SUB_LABELS, &sub(definition));
            starts.push(text.len());
        }
        Self { text, starts }
    }

    fn get(&self, index: usize) -> LabelSet<'_> {
        LabelSet {
            names: SUB_LABELS,
            text: &self.text[self.starts[index]..self.starts[index + 1]],
        }
    }
}

/// Each subscription's view with its label set.
fn each<'s>(s: &'s Scrape<'_>) -> impl Iterator<Item = (SubscriptionView<'s>, LabelSet<'s>)> {
    let sets = s.label_sets();
    s.subscriptions()
        .enumerate()
        .map(move |(i, v)| (v, sets.get(i)))
}

pub(super) fn last_event(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for (v, set) in each(s) {
        if let Some(ms) = v.last_event_ms {
            l.sample_in(&set, ms as f64 / 1e3);
        }
    }
}

pub(super) fn last_message(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for (v, set) in each(s) {
        l.sample_in(&set, seconds(v.last_message_ns));
    }
}

pub(super) fn last_price(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for (v, set) in each(s) {
        if let Some(p) = v
            .price
            .and_then(|p| rust_decimal::prelude::ToPrimitive::to_f64(&p))
        {
            l.sample_in(&set, p);
        }
    }
}

pub(super) fn messages(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for (v, set) in each(s) {
        l.count_in(&set, v.messages);
    }
}

pub(super) fn resubscribes(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for (v, set) in each(s) {
        l.count_in(&set, v.resubscribes);
    }
}

pub(super) fn acked(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for (v, set) in each(s) {
        l.sample_in(&set, flag(v.acked));
    }
}

pub(super) fn rejections(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for (v, set) in each(s) {
        l.count_in(&set, v.rejections);
    }
}
