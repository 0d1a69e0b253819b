//! Freshness state per subscription and per connection, written lock-free by the feeds and read at scrape time.
//!
//! Owns the slots and the atomic histograms, and applies the market's [`Rules`] to them (what the verdicts mean
//! is [`crate::freshness`]'s). Knows nothing of WebSockets, wire formats or Prometheus: feeds call
//! [`Tracker::record`] with a decoded [`Sample`]; the metrics collector and the HTTP API read
//! [`Tracker::subscription`] and friends.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rust_decimal::Decimal;

use crate::freshness::{ChannelClock, Feed, Limit, Rules, Thresholds, symbol_feed};
use crate::model::{Exchange, Sample, Subscription, Venue};

mod clock;
mod histogram;
mod listing;
mod price;
mod reason;
mod registry;

pub use clock::{ClockOffsets, MAX_APPLIED_OFFSET_NS, PLAUSIBLE_FUTURE_NS, PLAUSIBLE_PAST_NS};
pub use histogram::{AtomicHistogram, HistogramSnapshot};
use listing::SymbolState;
pub use listing::{CrossCheck, Listing};
use price::PriceCell;
pub use reason::{Cause, Reason};
pub use registry::Trackers;

/// Nanoseconds since the Unix epoch: the one clock type the tracker stores.
pub type UnixNanos = u64;

/// Reads the wall clock as [`UnixNanos`]; the only place the tracker's callers get "now" from.
pub fn unix_now() -> UnixNanos {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Bucket bounds of `marketfeed_update_gap_seconds`: from sub-second book churn up to the 180 s / 300 s alert
/// thresholds and beyond, so the thresholds are bucket edges.
pub const GAP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 180.0, 300.0,
    600.0,
];

/// Bucket bounds of `marketfeed_event_latency_seconds`: a healthy feed sits in the low milliseconds.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Hot state of one subscription.
#[derive(Debug)]
struct SubState {
    /// Receive time of the last data message; until the first, the time it was first requested.
    last_message_ns: AtomicU64,
    /// Exchange event time of the last message that carried one, ms; 0 when none yet.
    last_event_ms: AtomicI64,
    messages: AtomicU64,
    price: PriceCell,
    acked: AtomicBool,
    /// The venue's last answer to a subscribe was a refusal (outlives sessions, so it is logged once).
    refused: AtomicBool,
    rejections: AtomicU64,
    resubscribes: AtomicU64,
}

/// State of one WebSocket connection.
#[derive(Debug)]
struct ConnState {
    up: AtomicBool,
    established_ns: AtomicU64,
    reconnects: [AtomicU64; Reason::ALL.len()],
}

/// Static description of one connection: which venue and its index there (the `connection` label).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The venue it belongs to.
    pub venue: Venue,
    /// Index within the venue: the `connection` label.
    pub index: usize,
    /// The slots it carries.
    pub slots: Vec<usize>,
}

/// A read-only view of one subscription at a moment.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionView<'a> {
    /// What it is.
    pub subscription: &'a Subscription,
    /// The connection index carrying it.
    pub connection: usize,
    /// Receive time of the last message; until the first, when it was first requested.
    pub last_message_ns: UnixNanos,
    /// Exchange event time of the last message, ms, when any carried one.
    pub last_event_ms: Option<i64>,
    /// Data messages received.
    pub messages: u64,
    /// Last reference price.
    pub price: Option<Decimal>,
    /// Whether the venue acknowledged the current subscription.
    pub acked: bool,
    /// Subscribe requests the venue refused for it.
    pub rejections: u64,
    /// Whether the venue's last answer to a subscribe was a refusal (the feed asks again with back-off).
    pub refused: bool,
    /// Times it was resubscribed after going silent on a live connection.
    pub resubscribes: u64,
    /// How long it may be silent: late after its deadline when scheduled, else quiet after the market's window.
    pub limit: Limit,
}

impl SubscriptionView<'_> {
    /// Time since the last message (or since requested), saturating at zero for clock steps.
    pub fn age(&self, now: UnixNanos) -> Duration {
        Duration::from_nanos(now.saturating_sub(self.last_message_ns))
    }

    /// Whether it has delivered since the process started (counts carried over by a `*` rebuild included).
    pub fn delivered(&self) -> bool {
        self.messages > 0
    }

    /// What the freshness verdicts need of it at `now`.
    pub fn clock(&self, now: UnixNanos) -> ChannelClock {
        ChannelClock {
            delivered: self.delivered(),
            age: self.age(now),
            limit: self.limit,
        }
    }
}

/// A read-only view of one connection.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionView<'a> {
    /// What it is.
    pub info: &'a ConnectionInfo,
    /// Whether it is connected and subscribed.
    pub up: bool,
    /// When the current (or last) session was established; 0 before the first.
    pub established_ns: UnixNanos,
    /// Reconnects per reason, in [`Reason::ALL`] order.
    pub reconnects: [u64; Reason::ALL.len()],
}

/// Per-subscription and per-connection freshness state, shared by feeds, metrics and the API.
#[derive(Debug)]
pub struct Tracker {
    subscriptions: Box<[Subscription]>,
    slot_connection: Box<[usize]>,
    state: Box<[SubState]>,
    /// Per slot, the index of its (venue, channel) histogram pair.
    slot_group: Box<[usize]>,
    groups: Box<[(Venue, Arc<str>)]>,
    /// Per group, the channel's cadence (`None`: event-driven) and limit.
    group_cadence: Box<[(Option<Duration>, Limit)]>,
    gaps: Box<[AtomicHistogram]>,
    latencies: Box<[AtomicHistogram]>,
    connections: Box<[ConnectionInfo]>,
    conn_state: Box<[ConnState]>,
    decode_errors: [AtomicU64; Venue::ALL.len()],
    /// Event times outside the plausible window around the local clock.
    implausible_times: AtomicU64,
    /// Failed connection attempts of the market by cause. Written once per failed attempt (backed off), read
    /// at scrape: a lock is fine.
    connect_failures: Mutex<BTreeMap<Cause, u64>>,
    /// Index into `symbols` of each symbol, per venue (in [`Venue::index`] order).
    symbol_ids: [HashMap<Arc<str>, usize>; Venue::ALL.len()],
    /// Distinct (venue, symbol) pairs in configuration order; the names are the subscriptions' own, shared.
    symbols: Box<[(Venue, Arc<str>)]>,
    /// Every symbol's slots, symbol after symbol: the `i`th symbol's are
    /// `symbol_slot_list[symbol_slot_starts[i]..symbol_slot_starts[i + 1]]`. A generation's long-lived parts are
    /// few large blocks rather than thousands of small ones, which a rebuild would scatter over the heap.
    symbol_slot_list: Box<[usize]>,
    symbol_slot_starts: Box<[usize]>,
    /// REST-side state, parallel to `symbols`.
    symbol_state: Box<[SymbolState]>,
    /// Venue clock minus local clock, per exchange.
    clock: Arc<ClockOffsets>,
    rules: Rules,
}

impl Tracker {
    /// Builds the slots of one market, judged by its `rules`. `connections` assigns every slot to exactly one
    /// connection; `now` is the time the subscriptions are first requested, which `last_message` reports until the
    /// first message arrives, so a restart does not look like every symbol went stale at once.
    pub fn new(
        subscriptions: Vec<Subscription>,
        connections: Vec<ConnectionInfo>,
        rules: Rules,
        now: UnixNanos,
    ) -> Self {
        let mut slot_connection = vec![0; subscriptions.len()];
        for conn in &connections {
            for &slot in &conn.slots {
                slot_connection[slot] = conn.index;
            }
        }
        let mut groups: Vec<(Venue, Arc<str>)> = Vec::new();
        let mut slot_group = Vec::with_capacity(subscriptions.len());
        let mut symbol_ids: [HashMap<Arc<str>, usize>; Venue::ALL.len()] = Default::default();
        let mut symbols = Vec::new();
        let mut slot_symbol = Vec::with_capacity(subscriptions.len());
        for sub in &subscriptions {
            let key = (sub.venue, sub.channel.name.clone());
            let group = groups.iter().position(|g| *g == key).unwrap_or_else(|| {
                groups.push(key);
                groups.len() - 1
            });
            slot_group.push(group);
            let id = *symbol_ids[sub.venue.index()]
                .entry(sub.symbol.clone())
                .or_insert_with(|| {
                    symbols.push((sub.venue, sub.symbol.clone()));
                    symbols.len() - 1
                });
            slot_symbol.push(id);
        }
        // Grouped by symbol; the sort is stable, so each symbol's slots stay in slot order.
        let mut symbol_slot_list: Vec<usize> = (0..subscriptions.len()).collect();
        symbol_slot_list.sort_by_key(|&slot| slot_symbol[slot]);
        let symbol_slot_starts: Vec<usize> = (0..=symbols.len())
            .map(|id| symbol_slot_list.partition_point(|&slot| slot_symbol[slot] < id))
            .collect();
        let cadences: Vec<Option<Duration>> = groups
            .iter()
            .map(|(venue, name)| {
                subscriptions
                    .iter()
                    .find(|sub| sub.venue == *venue && sub.channel.name == *name)
                    .and_then(|sub| sub.channel.interval)
            })
            .collect();
        let quiet_after = rules.quiet_after(cadences.iter().flatten().copied());
        let group_cadence = cadences
            .iter()
            .map(|&interval| (interval, rules.limit(interval, quiet_after)))
            .collect();
        let state = subscriptions
            .iter()
            .map(|_| SubState {
                last_message_ns: AtomicU64::new(now),
                last_event_ms: AtomicI64::new(0),
                messages: AtomicU64::new(0),
                price: PriceCell::default(),
                acked: AtomicBool::new(false),
                refused: AtomicBool::new(false),
                rejections: AtomicU64::new(0),
                resubscribes: AtomicU64::new(0),
            })
            .collect();
        let conn_state = connections
            .iter()
            .map(|_| ConnState {
                up: AtomicBool::new(false),
                established_ns: AtomicU64::new(0),
                reconnects: Default::default(),
            })
            .collect();
        Self {
            subscriptions: subscriptions.into(),
            slot_connection: slot_connection.into(),
            state,
            slot_group: slot_group.into(),
            gaps: groups
                .iter()
                .map(|_| AtomicHistogram::new(GAP_BUCKETS))
                .collect(),
            latencies: groups
                .iter()
                .map(|_| AtomicHistogram::new(LATENCY_BUCKETS))
                .collect(),
            groups: groups.into(),
            group_cadence,
            connections: connections.into(),
            conn_state,
            decode_errors: Default::default(),
            implausible_times: AtomicU64::new(0),
            connect_failures: Mutex::new(Cause::FIXED.iter().map(|&c| (c, 0)).collect()),
            symbol_ids,
            symbol_slot_list: symbol_slot_list.into(),
            symbol_slot_starts: symbol_slot_starts.into(),
            symbol_state: symbols.iter().map(|_| SymbolState::default()).collect(),
            symbols: symbols.into(),
            clock: Arc::default(),
            rules,
        }
    }

    /// Shares the process's clock offsets instead of this tracker's own.
    pub fn with_clock(mut self, clock: Arc<ClockOffsets>) -> Self {
        self.clock = clock;
        self
    }

    /// Carries the state of every subscription, symbol, channel histogram and connection that `previous`
    /// also had into this tracker, so counters and timestamps continue across a change of the symbol set.
    /// Call it before any feed records into this tracker, after the previous tracker's feeds stopped.
    pub fn inherit(&self, previous: &Tracker) {
        for (slot, sub) in self.subscriptions.iter().enumerate() {
            let Some(old) = previous
                .symbol_slots(sub.venue, &sub.symbol)
                .and_then(|slots| {
                    slots
                        .iter()
                        .find(|&&o| previous.subscriptions[o].channel == sub.channel)
                })
            else {
                continue;
            };
            let (from, to) = (&previous.state[*old], &self.state[slot]);
            to.last_message_ns
                .store(from.last_message_ns.load(Relaxed), Relaxed);
            to.last_event_ms
                .store(from.last_event_ms.load(Relaxed), Relaxed);
            to.messages.store(from.messages.load(Relaxed), Relaxed);
            to.price.store(from.price.load());
            to.rejections.store(from.rejections.load(Relaxed), Relaxed);
            to.refused.store(from.refused.load(Relaxed), Relaxed);
            to.resubscribes
                .store(from.resubscribes.load(Relaxed), Relaxed);
        }
        for (i, group) in self.groups.iter().enumerate() {
            if let Some(j) = previous.groups.iter().position(|g| g == group) {
                self.gaps[i].copy_from(&previous.gaps[j]);
                self.latencies[i].copy_from(&previous.latencies[j]);
            }
        }
        for (i, (venue, symbol)) in self.symbols.iter().enumerate() {
            if let Some(j) = previous.symbol_index(*venue, symbol) {
                let (from, to) = (&previous.symbol_state[j], &self.symbol_state[i]);
                to.listing.store(from.listing.load(Relaxed), Relaxed);
                if let (Ok(from), Ok(mut to)) = (from.cross_check.lock(), to.cross_check.lock()) {
                    *to = *from;
                }
            }
        }
        for (to, from) in self.conn_state.iter().zip(previous.conn_state.iter()) {
            for (t, f) in to.reconnects.iter().zip(from.reconnects.iter()) {
                t.store(f.load(Relaxed), Relaxed);
            }
        }
        for (to, from) in self.decode_errors.iter().zip(previous.decode_errors.iter()) {
            to.store(from.load(Relaxed), Relaxed);
        }
        *lock(&self.connect_failures) = lock(&previous.connect_failures).clone();
        self.implausible_times
            .store(previous.implausible_times.load(Relaxed), Relaxed);
    }

    /// Records one data message for `slot`, received at `now`. The hot path: atomics only.
    #[inline]
    pub fn record(&self, slot: usize, now: UnixNanos, sample: &Sample) {
        let s = &self.state[slot];
        let group = self.slot_group[slot];
        let previous = s.last_message_ns.swap(now, Relaxed);
        // The first message's distance from the subscribe request is not an update gap.
        if s.messages.fetch_add(1, Relaxed) > 0 {
            self.gaps[group].observe_ns(now.saturating_sub(previous));
        }
        if let Some(event_ms) = sample.event_time_ms {
            // The venue's clock runs `offset` ahead of ours: its event time in our clock is event - offset.
            let offset = self
                .clock
                .correction(self.subscriptions[slot].venue.exchange());
            let event_ns = i128::from(event_ms) * 1_000_000 - i128::from(offset);
            let now_ns = i128::from(now);
            // Outside the window (zero, year 3000, a replay of last week) the time is a venue bug or a broken
            // clock, not a latency: counted, and kept out of the histogram and the last-event gauge.
            if event_ms <= 0
                || event_ns < now_ns - i128::from(PLAUSIBLE_PAST_NS)
                || event_ns > now_ns + i128::from(PLAUSIBLE_FUTURE_NS)
            {
                self.implausible_times.fetch_add(1, Relaxed);
            } else {
                s.last_event_ms.store(event_ms, Relaxed);
                // A local clock slightly behind the venue's gives negative latencies; they count as zero rather
                // than vanish, so the histogram's count still matches the messages that carried a time.
                let latency = u64::try_from(now_ns - event_ns).unwrap_or(0);
                self.latencies[group].observe_ns(latency);
            }
        }
        // Zero and negative are no price (a venue's placeholder for a symbol not trading yet).
        if let Some(price) = sample
            .price
            .filter(|p| p.is_sign_positive() && !p.is_zero())
        {
            s.price.store(Some(price));
        }
    }

    /// Sets the measured clock offset of an exchange: its clock minus ours, in nanoseconds.
    pub fn set_clock_offset(&self, exchange: Exchange, offset_ns: i64) {
        self.clock.set(exchange, offset_ns);
    }

    /// The measured clock offset of an exchange, ns; None before the first measurement.
    pub fn clock_offset(&self, exchange: Exchange) -> Option<i64> {
        self.clock.get(exchange)
    }

    fn symbol_index(&self, venue: Venue, symbol: &str) -> Option<usize> {
        self.symbol_ids[venue.index()].get(symbol).copied()
    }

    /// Records what the venue's instrument list says of a watched symbol; returns the previous value.
    pub fn set_listing(&self, venue: Venue, symbol: &str, listing: Listing) -> Option<Listing> {
        let i = self.symbol_index(venue, symbol)?;
        let previous = self.symbol_state[i].listing.swap(listing as u8, Relaxed);
        Some(Listing::from_u8(previous))
    }

    /// What the venue's instrument list said of a symbol.
    pub fn listing(&self, venue: Venue, symbol: &str) -> Listing {
        self.symbol_index(venue, symbol)
            .map_or(Listing::Unknown, |i| {
                Listing::from_u8(self.symbol_state[i].listing.load(Relaxed))
            })
    }

    /// Records a REST cross-check of a symbol.
    pub fn set_cross_check(&self, venue: Venue, symbol: &str, check: CrossCheck) {
        if let Some(i) = self.symbol_index(venue, symbol)
            && let Ok(mut slot) = self.symbol_state[i].cross_check.lock()
        {
            *slot = Some(check);
        }
    }

    /// The last REST cross-check of a symbol.
    pub fn cross_check(&self, venue: Venue, symbol: &str) -> Option<CrossCheck> {
        let i = self.symbol_index(venue, symbol)?;
        self.symbol_state[i]
            .cross_check
            .lock()
            .ok()
            .and_then(|c| *c)
    }

    /// Counts a frame of `venue` that could not be decoded.
    pub fn decode_error(&self, venue: Venue) {
        self.decode_errors[venue as usize].fetch_add(1, Relaxed);
    }

    /// Frames of `venue` that could not be decoded.
    pub fn decode_errors(&self, venue: Venue) -> u64 {
        self.decode_errors[venue as usize].load(Relaxed)
    }

    /// Sets whether the venue has acknowledged the subscription on the current connection.
    pub fn set_acked(&self, slot: usize, acked: bool) {
        self.state[slot].acked.store(acked, Relaxed);
    }

    /// Counts a refused subscribe of `slot`. True when this refusal is news: the last answer was not one.
    pub fn rejected(&self, slot: usize) -> bool {
        let s = &self.state[slot];
        s.acked.store(false, Relaxed);
        s.rejections.fetch_add(1, Relaxed);
        !s.refused.swap(true, Relaxed)
    }

    /// Notes an accepted subscribe of `slot`. True when the venue had refused it before.
    pub fn accepted(&self, slot: usize) -> bool {
        self.state[slot].refused.swap(false, Relaxed)
    }

    /// Counts a resubscribe of `slot` after it went silent on a live connection.
    pub fn resubscribed(&self, slot: usize) {
        self.state[slot].resubscribes.fetch_add(1, Relaxed);
    }

    /// Receive time of the last message of `slot` (or when it was first requested).
    pub fn last_message_ns(&self, slot: usize) -> UnixNanos {
        self.state[slot].last_message_ns.load(Relaxed)
    }

    /// Marks connection `conn` (global index into [`Tracker::connections`]) up at `now`.
    pub fn connection_up(&self, conn: usize, now: UnixNanos) {
        let c = &self.conn_state[conn];
        c.established_ns.store(now, Relaxed);
        c.up.store(true, Relaxed);
    }

    /// Marks connection `conn` down for `reason`, counting the reconnect and clearing its acks.
    pub fn connection_down(&self, conn: usize, reason: Reason) {
        let c = &self.conn_state[conn];
        c.up.store(false, Relaxed);
        c.reconnects[reason as usize].fetch_add(1, Relaxed);
        for &slot in &self.connections[conn].slots {
            self.state[slot].acked.store(false, Relaxed);
        }
    }

    /// Event times of the market kept out of latency because they were implausible.
    pub fn implausible_times(&self) -> u64 {
        self.implausible_times.load(Relaxed)
    }

    /// Counts one failed connection attempt of the market.
    pub fn connect_failed(&self, cause: Cause) {
        *lock(&self.connect_failures).entry(cause).or_insert(0) += 1;
    }

    /// Failed connection attempts by cause, in label order; the fixed causes are always present.
    pub fn connect_failures(&self) -> Vec<(Cause, u64)> {
        lock(&self.connect_failures)
            .iter()
            .map(|(&c, &n)| (c, n))
            .collect()
    }

    /// Counts a session of connection `conn` that ended for `reason` while a successor already carried its
    /// streams: the connection never went down, so it stays up and its acks stand.
    pub fn rolled_over(&self, conn: usize, reason: Reason) {
        self.conn_state[conn].reconnects[reason as usize].fetch_add(1, Relaxed);
    }

    /// The market's rules: its thresholds and heartbeat misses.
    pub fn rules(&self) -> Rules {
        self.rules
    }

    /// The thresholds statuses are computed with.
    pub fn thresholds(&self) -> Thresholds {
        self.rules.thresholds
    }

    /// A slot's limit: late after its deadline when scheduled, else quiet after the market's window.
    pub fn limit(&self, slot: usize) -> Limit {
        self.group_cadence[self.slot_group[slot]].1
    }

    /// A slot's cadence (`None`: event-driven) and limit.
    pub fn cadence(&self, slot: usize) -> (Option<Duration>, Limit) {
        self.group_cadence[self.slot_group[slot]]
    }

    /// The verdict on one watched symbol at `now`; `None` when it is not watched.
    pub fn symbol_feed(&self, venue: Venue, symbol: &str, now: UnixNanos) -> Option<Feed> {
        let slots = self.symbol_slots(venue, symbol)?;
        Some(symbol_feed(
            slots.iter().map(|&slot| self.subscription(slot).clock(now)),
        ))
    }

    /// How many watched symbols have each verdict at `now`, in [`Feed::ALL`] order.
    pub fn feed_counts(&self, now: UnixNanos) -> [u64; Feed::ALL.len()] {
        let mut counts = [0; Feed::ALL.len()];
        for i in 0..self.symbols.len() {
            let slots = self.slots_of(i);
            let feed = symbol_feed(slots.iter().map(|&slot| self.subscription(slot).clock(now)));
            counts[feed as usize] += 1;
        }
        counts
    }

    /// Number of subscription slots.
    pub fn len(&self) -> usize {
        self.subscriptions.len()
    }

    /// Whether there are no subscriptions.
    pub fn is_empty(&self) -> bool {
        self.subscriptions.is_empty()
    }

    /// A view of one slot.
    pub fn subscription(&self, slot: usize) -> SubscriptionView<'_> {
        let s = &self.state[slot];
        let event = s.last_event_ms.load(Relaxed);
        SubscriptionView {
            subscription: &self.subscriptions[slot],
            connection: self.slot_connection[slot],
            last_message_ns: s.last_message_ns.load(Relaxed),
            last_event_ms: (event != 0).then_some(event),
            messages: s.messages.load(Relaxed),
            price: s.price.load(),
            acked: s.acked.load(Relaxed),
            rejections: s.rejections.load(Relaxed),
            refused: s.refused.load(Relaxed),
            resubscribes: s.resubscribes.load(Relaxed),
            limit: self.limit(slot),
        }
    }

    /// What every slot subscribes to, in configuration order, without reading its state.
    pub fn definitions(&self) -> &[Subscription] {
        &self.subscriptions
    }

    /// Views of every slot, in configuration order.
    pub fn subscriptions(&self) -> impl Iterator<Item = SubscriptionView<'_>> {
        (0..self.len()).map(|slot| self.subscription(slot))
    }

    /// Slots of one symbol on one venue, in configuration order; None when not configured.
    pub fn symbol_slots(&self, venue: Venue, symbol: &str) -> Option<&[usize]> {
        self.symbol_index(venue, symbol).map(|i| self.slots_of(i))
    }

    /// The slots of the `i`th symbol.
    fn slots_of(&self, i: usize) -> &[usize] {
        &self.symbol_slot_list[self.symbol_slot_starts[i]..self.symbol_slot_starts[i + 1]]
    }

    /// Distinct watched `(venue, symbol)` pairs, in configuration order.
    pub fn symbols(&self) -> impl Iterator<Item = (Venue, &str)> {
        self.symbols
            .iter()
            .map(|(venue, symbol)| (*venue, &**symbol))
    }

    /// Receive time of a watched symbol's freshest message (its request time before any); `None` when not watched.
    pub fn symbol_last_message_ns(&self, venue: Venue, symbol: &str) -> Option<UnixNanos> {
        self.symbol_slots(venue, symbol)?
            .iter()
            .map(|&slot| self.last_message_ns(slot))
            .max()
    }

    /// Every watched symbol with its REST-side state, in configuration order.
    pub fn symbol_states(
        &self,
    ) -> impl Iterator<Item = (Venue, &str, Listing, Option<CrossCheck>)> {
        self.symbols
            .iter()
            .zip(self.symbol_state.iter())
            .map(|((venue, symbol), state)| {
                let check = state.cross_check.lock().ok().and_then(|c| *c);
                (
                    *venue,
                    &**symbol,
                    Listing::from_u8(state.listing.load(Relaxed)),
                    check,
                )
            })
    }

    /// `(venue, channel)` groups with their update-gap and event-latency histograms.
    pub fn histograms(
        &self,
    ) -> impl Iterator<Item = (Venue, &str, HistogramSnapshot, HistogramSnapshot)> {
        self.groups.iter().enumerate().map(|(i, (venue, channel))| {
            (
                *venue,
                &**channel,
                self.gaps[i].snapshot(),
                self.latencies[i].snapshot(),
            )
        })
    }

    /// `(venue, channel)` groups with the channel's cadence (`None`: event-driven) and its limit.
    pub fn cadences(&self) -> impl Iterator<Item = (Venue, &str, Option<Duration>, Limit)> {
        self.groups
            .iter()
            .zip(self.group_cadence.iter())
            .map(|((venue, channel), &(interval, limit))| (*venue, &**channel, interval, limit))
    }

    /// The connection list, global indices.
    pub fn connections(&self) -> impl Iterator<Item = ConnectionView<'_>> {
        self.connections
            .iter()
            .zip(self.conn_state.iter())
            .map(|(info, c)| ConnectionView {
                info,
                up: c.up.load(Relaxed),
                established_ns: c.established_ns.load(Relaxed),
                reconnects: std::array::from_fn(|i| c.reconnects[i].load(Relaxed)),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Channel, ChannelKind};
    use std::str::FromStr;

    const S: u64 = 1_000_000_000;

    fn sub(symbol: &str) -> Subscription {
        Subscription {
            venue: Venue::BinanceSpot,
            channel: Channel {
                name: "aggTrade".into(),
                kind: ChannelKind::Trade,
                interval: None,
            },
            symbol: symbol.into(),
        }
    }

    fn tracker() -> Tracker {
        let conns = vec![ConnectionInfo {
            venue: Venue::BinanceSpot,
            index: 0,
            slots: vec![0, 1],
        }];
        Tracker::new(
            vec![sub("BTCUSDT"), sub("ETHUSDT")],
            conns,
            Rules::default(),
            1000 * S,
        )
    }

    #[test]
    fn symbols_keep_their_slots_in_order_whatever_the_interleaving() {
        let on = |venue, symbol: &str| Subscription {
            venue,
            ..sub(symbol)
        };
        // The same name on two venues is two symbols; a symbol's slots need not be adjacent.
        let subs = vec![
            on(Venue::BinanceSpot, "BTCUSDT"),
            on(Venue::BybitSpot, "BTCUSDT"),
            on(Venue::BinanceSpot, "ETHUSDT"),
            on(Venue::BinanceSpot, "BTCUSDT"),
            on(Venue::BybitSpot, "BTCUSDT"),
        ];
        let conns = vec![ConnectionInfo {
            venue: Venue::BinanceSpot,
            index: 0,
            slots: (0..subs.len()).collect(),
        }];
        let t = Tracker::new(subs, conns, Rules::default(), 1000 * S);
        assert_eq!(
            t.symbols().collect::<Vec<_>>(),
            [
                (Venue::BinanceSpot, "BTCUSDT"),
                (Venue::BybitSpot, "BTCUSDT"),
                (Venue::BinanceSpot, "ETHUSDT")
            ]
        );
        assert_eq!(
            t.symbol_slots(Venue::BinanceSpot, "BTCUSDT"),
            Some(&[0, 3][..])
        );
        assert_eq!(
            t.symbol_slots(Venue::BybitSpot, "BTCUSDT"),
            Some(&[1, 4][..])
        );
        assert_eq!(
            t.symbol_slots(Venue::BinanceSpot, "ETHUSDT"),
            Some(&[2][..])
        );
        assert_eq!(t.symbol_slots(Venue::BybitSpot, "ETHUSDT"), None);
        assert_eq!(t.symbol_slots(Venue::BinanceUsdm, "BTCUSDT"), None);
        // One name per symbol: the tracker's list shares the subscriptions' own.
        let name = |slot| t.subscription(slot).subscription.symbol.clone();
        assert!(Arc::ptr_eq(&name(0), &t.symbols[0].1));
    }

    /// BTCUSDT and ETHUSDT on a scheduled `depth5` (1 s) and an event-driven `aggTrade`.
    fn scheduled_tracker() -> Tracker {
        let depth = |symbol: &str| Subscription {
            channel: crate::venue::channel(Venue::BinanceSpot, "depth5").unwrap(),
            ..sub(symbol)
        };
        let subs = vec![
            depth("BTCUSDT"),
            sub("BTCUSDT"),
            depth("ETHUSDT"),
            sub("ETHUSDT"),
        ];
        let conns = vec![ConnectionInfo {
            venue: Venue::BinanceSpot,
            index: 0,
            slots: vec![0, 1, 2, 3],
        }];
        Tracker::new(subs, conns, Rules::default(), 1000 * S)
    }

    #[test]
    fn limits_come_from_the_cadence_and_the_rules() {
        let t = scheduled_tracker();
        let late = Limit::Late(Duration::from_secs(7));
        let quiet = Limit::Quiet(Duration::from_secs(7));
        assert_eq!(
            (0..4).map(|s| t.limit(s)).collect::<Vec<_>>(),
            [late, quiet, late, quiet]
        );
        let cadences: Vec<_> = t.cadences().collect();
        assert_eq!(
            cadences,
            [
                (
                    Venue::BinanceSpot,
                    "depth5",
                    Some(Duration::from_secs(1)),
                    late
                ),
                (Venue::BinanceSpot, "aggTrade", None, quiet),
            ]
        );
        // Without a scheduled channel, an event-driven one is quiet after the degraded threshold.
        assert_eq!(tracker().limit(0), Limit::Quiet(Duration::from_secs(180)));
    }

    /// A symbol is no_data until a channel delivers, live while its scheduled channel keeps its cadence, quiet
    /// when only the event channel is silent, late when the scheduled one misses its cadence.
    #[test]
    fn feed_verdicts_follow_the_slots() {
        let t = scheduled_tracker();
        let at = |secs: u64| 1000 * S + secs * S;
        let feed = |now| t.symbol_feed(Venue::BinanceSpot, "BTCUSDT", now).unwrap();
        assert_eq!(feed(at(1)), Feed::NoData);
        assert_eq!(t.feed_counts(at(1)), [0, 0, 0, 2]);
        t.record(0, at(2), &Sample::default());
        t.record(1, at(2), &Sample::default());
        assert_eq!(feed(at(3)), Feed::Live);
        t.record(0, at(9), &Sample::default());
        assert_eq!(
            feed(at(10)),
            Feed::Quiet,
            "aggTrade silent for 8 s, depth5 on time"
        );
        assert_eq!(feed(at(17)), Feed::Late, "depth5 silent for 8 s");
        assert_eq!(t.symbol_feed(Venue::BinanceSpot, "XRPUSDT", at(17)), None);
        // ETHUSDT never delivered: still no_data, whatever its age.
        assert_eq!(t.feed_counts(at(17)), [0, 0, 1, 1]);
    }

    #[test]
    fn last_message_starts_at_request_time_and_first_message_is_no_gap() {
        let t = tracker();
        assert_eq!(t.subscription(0).last_message_ns, 1000 * S);
        assert_eq!(t.subscription(0).messages, 0);
        let price = Decimal::from_str("43000.10").ok();
        t.record(
            0,
            1010 * S,
            &Sample {
                event_time_ms: Some(1_009_990),
                price,
            },
        );
        t.record(
            0,
            1012 * S,
            &Sample {
                event_time_ms: None,
                price: None,
            },
        );
        let v = t.subscription(0);
        assert_eq!(
            (v.last_message_ns, v.messages, v.last_event_ms),
            (1012 * S, 2, Some(1_009_990))
        );
        assert_eq!(
            v.price, price,
            "a message without a price keeps the last one"
        );
        let (_, _, gap, latency) = t.histograms().next().unwrap();
        assert_eq!((gap.count, gap.sum), (1, 2.0));
        assert_eq!(gap.buckets.iter().find(|b| b.0 == 2.5).unwrap().1, 1);
        assert_eq!(gap.buckets.iter().find(|b| b.0 == 1.0).unwrap().1, 0);
        assert_eq!((latency.count, latency.sum), (1, 0.01));
        assert_eq!(t.subscription(1).messages, 0, "other slots untouched");
    }

    #[test]
    fn histogram_bucket_edges_are_inclusive() {
        let h = AtomicHistogram::new(&[1.0, 2.0]);
        for ns in [S, S + 1, 2 * S, 3 * S] {
            h.observe_ns(ns);
        }
        let snap = h.snapshot();
        assert_eq!(snap.buckets, vec![(1.0, 1), (2.0, 3)]);
        assert_eq!(snap.count, 4);
    }

    #[test]
    fn negative_latency_counts_as_zero() {
        let t = tracker();
        t.record(
            0,
            1000 * S,
            &Sample {
                event_time_ms: Some(1_000_050),
                price: None,
            },
        );
        let (_, _, _, latency) = t.histograms().next().unwrap();
        assert_eq!(
            (latency.count, latency.sum, latency.buckets[0].1),
            (1, 0.0, 1)
        );
    }

    #[test]
    fn non_positive_event_time_is_ignored() {
        let t = tracker();
        for event in [0, -5] {
            t.record(
                0,
                1001 * S,
                &Sample {
                    event_time_ms: Some(event),
                    price: None,
                },
            );
        }
        let (_, _, _, latency) = t.histograms().next().unwrap();
        assert_eq!(latency.count, 0);
        assert_eq!(t.subscription(0).last_event_ms, None);
        assert_eq!(
            t.subscription(0).messages,
            2,
            "the messages still count as data"
        );
        assert_eq!(t.implausible_times(), 2);
    }

    #[test]
    fn implausible_event_times_are_counted_and_kept_out_of_latency() {
        let t = tracker();
        let now = 10_000 * S;
        let year_3000_ms = 32_503_680_000_000;
        let two_hours_ago_ms = (10_000 - 7_200) * 1000;
        let two_minutes_ahead_ms = (10_000 + 120) * 1000;
        for event in [
            1,
            year_3000_ms,
            i64::MAX,
            i64::MIN,
            two_hours_ago_ms,
            two_minutes_ahead_ms,
        ] {
            t.record(
                0,
                now,
                &Sample {
                    event_time_ms: Some(event),
                    price: None,
                },
            );
        }
        let (_, _, _, latency) = t.histograms().next().unwrap();
        assert_eq!(
            (latency.count, latency.sum),
            (0, 0.0),
            "no 1.8e9 s in the sum"
        );
        assert_eq!(t.subscription(0).last_event_ms, None);
        assert_eq!(t.implausible_times(), 6);
        // Within the window: 30 minutes late and 30 s ahead are believed.
        for event in [(10_000 - 1_800) * 1000, (10_000 + 30) * 1000] {
            t.record(
                0,
                now,
                &Sample {
                    event_time_ms: Some(event),
                    price: None,
                },
            );
        }
        let (_, _, _, latency) = t.histograms().next().unwrap();
        assert_eq!((latency.count, latency.sum), (2, 1_800.0));
        assert_eq!(t.implausible_times(), 6);
    }

    #[test]
    fn a_clock_offset_beyond_the_bound_is_kept_but_not_applied() {
        let t = tracker();
        let hour = 3_600_000_000_000;
        t.set_clock_offset(Exchange::Binance, hour);
        // Stamped by a venue clock an hour ahead: applied, it would read as 20 ms.
        t.record(
            0,
            1000 * S + 20_000_000,
            &Sample {
                event_time_ms: Some(4_600_000),
                price: None,
            },
        );
        let (_, _, _, latency) = t.histograms().next().unwrap();
        assert_eq!(latency.count, 0);
        assert_eq!(t.implausible_times(), 1);
        assert_eq!(
            t.clock_offset(Exchange::Binance),
            Some(hour),
            "still exported"
        );
        // Four minutes is applied.
        t.set_clock_offset(Exchange::Binance, 240_000_000_000);
        t.record(
            0,
            1000 * S + 20_000_000,
            &Sample {
                event_time_ms: Some(1_240_000),
                price: None,
            },
        );
        let (_, _, _, latency) = t.histograms().next().unwrap();
        assert_eq!((latency.count, latency.sum), (1, 0.02));
    }

    #[test]
    fn every_positive_price_is_kept_exactly_and_no_other() {
        let t = tracker();
        let huge = Decimal::from_str("36028797018963968").unwrap();
        t.record(
            0,
            1001 * S,
            &Sample {
                event_time_ms: None,
                price: Some(huge),
            },
        );
        assert_eq!(t.subscription(0).price, Some(huge));
        for placeholder in ["0", "-5", "-0"] {
            let p = Decimal::from_str(placeholder).unwrap();
            t.record(
                0,
                1002 * S,
                &Sample {
                    event_time_ms: None,
                    price: Some(p),
                },
            );
            assert_eq!(
                t.subscription(0).price,
                Some(huge),
                "{placeholder} is no price"
            );
        }
        assert_eq!(t.subscription(0).messages, 4, "freshness still advances");
        let max = Decimal::MAX;
        t.record(
            0,
            1003 * S,
            &Sample {
                event_time_ms: None,
                price: Some(max),
            },
        );
        assert_eq!(t.subscription(0).price, Some(max));
    }

    #[test]
    fn event_latency_is_corrected_by_the_clock_offset() {
        let t = tracker();
        assert_eq!(t.clock_offset(Exchange::Binance), None);
        // The venue's clock runs 300 ms ahead: an event stamped 1000.300 s happened at our 1000.000 s.
        t.set_clock_offset(Exchange::Binance, 300_000_000);
        t.record(
            0,
            1000 * S + 20_000_000,
            &Sample {
                event_time_ms: Some(1_000_300),
                price: None,
            },
        );
        let (_, _, _, latency) = t.histograms().next().unwrap();
        assert_eq!((latency.count, latency.sum), (1, 0.02));
        assert_eq!(t.clock_offset(Exchange::Binance), Some(300_000_000));
        assert_eq!(t.clock_offset(Exchange::Bybit), None, "per exchange");
    }

    #[test]
    fn listing_and_cross_check_are_kept_per_symbol() {
        let t = tracker();
        assert_eq!(t.listing(Venue::BinanceSpot, "BTCUSDT"), Listing::Unknown);
        assert_eq!(
            t.set_listing(Venue::BinanceSpot, "BTCUSDT", Listing::Halted),
            Some(Listing::Unknown)
        );
        assert_eq!(
            t.set_listing(Venue::BinanceSpot, "DOGEUSDT", Listing::Trading),
            None,
            "not watched"
        );
        let check = CrossCheck {
            checked_ns: 5,
            rest_price: Decimal::from_str("1.5").unwrap(),
            feed_behind: None,
        };
        t.set_cross_check(Venue::BinanceSpot, "ETHUSDT", check);
        let states: Vec<_> = t.symbol_states().collect();
        assert_eq!(
            states,
            [
                (Venue::BinanceSpot, "BTCUSDT", Listing::Halted, None),
                (Venue::BinanceSpot, "ETHUSDT", Listing::Unknown, Some(check)),
            ]
        );
    }

    #[test]
    fn connection_down_counts_reason_and_clears_acks() {
        let t = tracker();
        t.set_acked(0, true);
        t.connection_up(0, 5 * S);
        t.connection_down(0, Reason::IdleTimeout);
        let c = t.connections().next().unwrap();
        assert!(!c.up);
        assert_eq!(c.established_ns, 5 * S);
        assert_eq!(c.reconnects[Reason::IdleTimeout as usize], 1);
        assert_eq!(c.reconnects.iter().sum::<u64>(), 1);
        assert!(!t.subscription(0).acked);
    }
}
