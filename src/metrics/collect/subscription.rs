//! Families with one series per subscription (exchange, market, channel, symbol).

use super::{Scrape, flag, seconds};
use crate::metrics::text::Lines;
use crate::model::Subscription;

/// The label values of one subscription: the one place their order is written.
fn sub(s: &Subscription) -> [&str; 4] {
    [
        s.venue.exchange().as_str(),
        s.venue.market().as_str(),
        &s.channel.name,
        &s.symbol,
    ]
}

pub(super) fn last_event(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for v in s.subscriptions() {
        if let Some(ms) = v.last_event_ms {
            l.sample(&sub(v.subscription), ms as f64 / 1e3);
        }
    }
}

pub(super) fn last_message(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for v in s.subscriptions() {
        l.sample(&sub(v.subscription), seconds(v.last_message_ns));
    }
}

pub(super) fn last_price(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for v in s.subscriptions() {
        if let Some(p) = v
            .price
            .and_then(|p| rust_decimal::prelude::ToPrimitive::to_f64(&p))
        {
            l.sample(&sub(v.subscription), p);
        }
    }
}

pub(super) fn messages(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for v in s.subscriptions() {
        l.count(&sub(v.subscription), v.messages);
    }
}

pub(super) fn resubscribes(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for v in s.subscriptions() {
        l.count(&sub(v.subscription), v.resubscribes);
    }
}

pub(super) fn acked(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for v in s.subscriptions() {
        l.sample(&sub(v.subscription), flag(v.acked));
    }
}

pub(super) fn rejections(s: &Scrape<'_>, l: &mut Lines<'_>) {
    for v in s.subscriptions() {
        l.count(&sub(v.subscription), v.rejections);
    }
}
