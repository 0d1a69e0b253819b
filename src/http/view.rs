//! What the API and the status page say of a symbol: its status, feed verdict, age, reference price, listing and
//! last REST cross-check, and the same per channel. Built at request time from the tracker's atomics.

use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;

use crate::freshness::{Feed, Status, symbol_feed};
use crate::model::Venue;
use crate::tracker::{Listing, SubscriptionView, Tracker, UnixNanos};

/// One symbol on one venue: the freshest of its channels decides its status; its scheduled channels decide
/// whether the feed is proven alive.
#[derive(Debug, Serialize)]
pub struct SymbolView {
    pub(super) exchange: &'static str,
    pub(super) market: &'static str,
    pub(super) symbol: String,
    /// no_data until a channel delivered, then healthy, degraded, stale or critical by the market's thresholds.
    pub(super) status: &'static str,
    /// live, quiet, late or no_data: see [`Feed`].
    pub(super) feed: &'static str,
    /// With `?max_staleness=`: whether the price may be acted on (delivered, not late, fresh enough).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) usable: Option<bool>,
    pub(super) staleness_seconds: f64,
    /// RFC 3339 receive time of the freshest message; null before any message.
    pub(super) last_update: Option<String>,
    pub(super) last_update_unix: Option<f64>,
    /// The reference price: the exact decimal of the channel of highest price priority that has one
    /// ([`crate::model::ChannelKind::price_rank`]), not of whichever channel spoke last.
    pub(super) last_price: Option<String>,
    /// The channel `last_price` comes from.
    pub(super) price_channel: Option<String>,
    /// What the venue's REST instrument list says: trading, halted, unlisted, or unknown before it was read.
    pub(super) listing: &'static str,
    /// The last REST cross-check, made when the symbol went stale.
    pub(super) rest_check: Option<RestCheckView>,
    pub(super) channels: Vec<ChannelView>,
    /// For ordering worst first: the status and the verdict as values, not strings.
    #[serde(skip)]
    pub(super) rank: (Status, Feed),
}

/// A REST cross-check of a stale symbol.
#[derive(Debug, Serialize)]
pub struct RestCheckView {
    pub(super) checked_at: String,
    pub(super) rest_price: String,
    /// true: REST shows a trade or price the feed missed (the feed is broken); false: REST agrees (the market
    /// is quiet); null: nothing comparable.
    pub(super) feed_behind: Option<bool>,
}

/// One channel of a symbol.
#[derive(Debug, Serialize)]
pub struct ChannelView {
    pub(super) channel: String,
    pub(super) status: &'static str,
    pub(super) feed: &'static str,
    /// The venue's push interval for a scheduled channel; null for an event-driven one.
    pub(super) expected_interval_seconds: Option<f64>,
    pub(super) staleness_seconds: f64,
    pub(super) last_update: Option<String>,
    pub(super) last_update_unix: Option<f64>,
    pub(super) last_event_unix: Option<f64>,
    /// This channel's own last price.
    pub(super) last_price: Option<String>,
    pub(super) messages: u64,
    pub(super) subscribed: bool,
    /// The venue refused the last subscribe request; the exporter asks again with back-off.
    pub(super) refused: bool,
    /// Subscribe requests the venue refused.
    pub(super) rejections: u64,
    /// Times the exporter resubscribed it after it went silent while its connection delivered.
    pub(super) resubscribes: u64,
    pub(super) connection: usize,
}

pub(super) fn rfc3339(nanos: UnixNanos) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_nanos(nanos)).to_string()
}

fn round_ms(seconds: f64) -> f64 {
    (seconds * 1e3).round() / 1e3
}

fn channel_view(tracker: &Tracker, v: &SubscriptionView<'_>, now: UnixNanos) -> ChannelView {
    let age = v.age(now);
    let received = v.delivered();
    ChannelView {
        channel: v.subscription.channel.name.to_string(),
        status: tracker.thresholds().status(received, age).as_str(),
        feed: v.clock(now).feed().as_str(),
        expected_interval_seconds: v.subscription.channel.interval.map(|d| d.as_secs_f64()),
        staleness_seconds: round_ms(age.as_secs_f64()),
        last_update: received.then(|| rfc3339(v.last_message_ns)),
        last_update_unix: received.then(|| round_ms(v.last_message_ns as f64 / 1e9)),
        last_event_unix: v.last_event_ms.map(|ms| ms as f64 / 1e3),
        last_price: v.price.map(|p| p.to_string()),
        messages: v.messages,
        subscribed: v.acked,
        refused: v.refused,
        rejections: v.rejections,
        resubscribes: v.resubscribes,
        connection: v.connection,
    }
}

/// Builds the view of one symbol from its slots; `None` when it has none. `max_staleness` adds `usable`.
pub(super) fn symbol_view(
    tracker: &Tracker,
    venue: Venue,
    symbol: &str,
    now: UnixNanos,
    max_staleness: Option<Duration>,
) -> Option<SymbolView> {
    let views: Vec<SubscriptionView<'_>> = tracker
        .symbol_slots(venue, symbol)?
        .iter()
        .map(|&slot| tracker.subscription(slot))
        .collect();
    let freshest = views.iter().max_by_key(|v| v.last_message_ns)?;
    let received = views.iter().any(SubscriptionView::delivered);
    let age = freshest.age(now);
    let feed = symbol_feed(views.iter().map(|v| v.clock(now)));
    // A late feed is refused whatever the age of the freshest channel: its scheduled channel is dead, so the
    // price the bot would read next is the one that stopped. No data is never usable.
    let usable = max_staleness.map(|max| received && feed != Feed::Late && age <= max);
    // The reference price by channel priority (the first configured among equals), so it does not flip between a
    // book mid and a trade price as the channels take turns.
    let reference = views
        .iter()
        .filter_map(|v| Some((v.subscription.channel.kind.price_rank()?, v, v.price?)))
        .min_by_key(|(rank, ..)| *rank);
    let status = tracker.thresholds().status(received, age);
    let listing = match tracker.listing(venue, symbol) {
        Listing::Unknown => "unknown",
        Listing::Trading => "trading",
        Listing::Halted => "halted",
        Listing::Unlisted => "unlisted",
    };
    let rest_check = tracker.cross_check(venue, symbol).map(|c| RestCheckView {
        checked_at: rfc3339(c.checked_ns),
        rest_price: c.rest_price.to_string(),
        feed_behind: c.feed_behind,
    });
    Some(SymbolView {
        exchange: venue.exchange().as_str(),
        market: venue.market().as_str(),
        symbol: symbol.to_owned(),
        status: status.as_str(),
        feed: feed.as_str(),
        usable,
        staleness_seconds: round_ms(age.as_secs_f64()),
        last_update: received.then(|| rfc3339(freshest.last_message_ns)),
        last_update_unix: received.then(|| round_ms(freshest.last_message_ns as f64 / 1e9)),
        last_price: reference.map(|(_, _, price)| price.to_string()),
        price_channel: reference.map(|(_, v, _)| v.subscription.channel.name.to_string()),
        listing,
        rest_check,
        channels: views
            .iter()
            .map(|v| channel_view(tracker, v, now))
            .collect(),
        rank: (status, feed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::freshness::Rules;
    use crate::model::{Sample, Subscription};
    use crate::tracker::ConnectionInfo;
    use rust_decimal::Decimal;

    const S: u64 = 1_000_000_000;

    /// The book's mid stays the symbol's price while trades arrive after it: priority, not recency.
    #[test]
    fn the_reference_price_is_the_book_mid_whoever_spoke_last() {
        let sub = |channel: &str| Subscription {
            venue: Venue::BinanceSpot,
            channel: crate::venue::channel(Venue::BinanceSpot, channel).unwrap(),
            symbol: "BTCUSDT".into(),
        };
        let conns = vec![ConnectionInfo {
            venue: Venue::BinanceSpot,
            index: 0,
            slots: vec![0, 1],
        }];
        let tracker = Tracker::new(
            vec![sub("aggTrade"), sub("depth5")],
            conns,
            Rules::default(),
            1000 * S,
        );
        let price = |p: &str| Sample {
            event_time_ms: None,
            price: Some(p.parse::<Decimal>().unwrap()),
        };
        let view = |now| symbol_view(&tracker, Venue::BinanceSpot, "BTCUSDT", now, None).unwrap();
        tracker.record(0, 1001 * S, &price("43000.1"));
        assert_eq!(
            view(1001 * S).last_price.as_deref(),
            Some("43000.1"),
            "the only price there is"
        );
        tracker.record(1, 1002 * S, &price("43000.05"));
        tracker.record(0, 1003 * S, &price("43000.2"));
        let v = view(1003 * S);
        assert_eq!(
            (v.last_price.as_deref(), v.price_channel.as_deref()),
            (Some("43000.05"), Some("depth5")),
            "aggTrade spoke last, the book mid is the reference"
        );
        assert_eq!(
            v.channels[0].last_price.as_deref(),
            Some("43000.2"),
            "aggTrade keeps its own"
        );
    }
}
