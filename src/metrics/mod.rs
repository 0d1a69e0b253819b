//! The Prometheus registry: a scrape-time collector over the tracker, build info and process metrics.
//!
//! Owns metric names, help strings and labels (the metric contract in docs/architecture.md). Reads the tracker
//! only when scraped, so ingest never touches a metric object. Knows nothing of WebSockets or wire formats.

mod process;
mod text;

use std::sync::Arc;

use prometheus::proto::MetricType;
use prometheus::{Registry, TextEncoder};

use crate::freshness::{Feed, Limit};
use crate::model::{Exchange, Venue};
use crate::rest::RestStats;
use crate::supervise::Task;
use crate::tracker::{Listing, Reason, Trackers, unix_now};
use process::ProcessMetrics;
use text::Lines;

/// Version facts exported as `marketfeed_build_info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    /// Crate version.
    pub version: String,
    /// Git revision the binary was built from, or `unknown`.
    pub revision: String,
    /// The compiler's version.
    pub rustc_version: String,
}

impl BuildInfo {
    /// The facts baked in at compile time by build.rs.
    pub fn current() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            revision: env!("BUILD_GIT_REVISION").to_owned(),
            rustc_version: env!("BUILD_RUSTC_VERSION").to_owned(),
        }
    }
}

/// The Content-Type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The exporter's metrics: the tracker's families, written straight to text, and the `process_*` families of a
/// registry.
pub struct Metrics {
    collector: TrackerCollector,
    registry: Registry,
    last_len: std::sync::atomic::AtomicUsize,
}

impl Metrics {
    /// The tracker's families, the REST side's request metrics and build info; `process` adds the standard
    /// `process_*` metrics and, when called inside a Tokio runtime, that runtime's task count.
    pub fn new(
        trackers: Arc<Trackers>,
        rest: Arc<RestStats>,
        build: BuildInfo,
        process: bool,
    ) -> prometheus::Result<Self> {
        let registry = Registry::new();
        if process {
            registry.register(Box::new(ProcessMetrics::for_self()?))?;
        }
        Ok(Self {
            collector: TrackerCollector {
                trackers,
                rest,
                build,
                runtime: process
                    .then(tokio::runtime::Handle::try_current)
                    .and_then(Result::ok),
            },
            registry,
            last_len: Default::default(),
        })
    }

    /// The text exposition of every metric: the tracker's families in name order, then `process_*` (which sort
    /// after `marketfeed_*`).
    pub fn render(&self) -> String {
        let mut out =
            String::with_capacity(self.last_len.load(std::sync::atomic::Ordering::Relaxed) + 4096);
        self.collector.write(&mut out);
        // Encoding into a String only fails on invalid families, which the process collector never builds.
        if let Err(e) = TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        // The next render reserves this much at once instead of doubling its way there.
        self.last_len
            .store(out.len(), std::sync::atomic::Ordering::Relaxed);
        out
    }
}

/// One family of the contract: name, help, type, label names.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    labels: &'static [&'static str],
}

const SUB_LABELS: &[&str] = &["exchange", "market", "channel", "symbol"];
const GROUP_LABELS: &[&str] = &["exchange", "market", "channel"];
const CONN_LABELS: &[&str] = &["exchange", "market", "connection"];
const MARKET_LABELS: &[&str] = &["exchange", "market"];

const LAST_MESSAGE: Family = Family {
    name: "marketfeed_last_message_timestamp_seconds",
    help: "Local receive time of the last data message; until the first, when the subscription was first requested.",
    kind: MetricType::GAUGE,
    labels: SUB_LABELS,
};
const LAST_EVENT: Family = Family {
    name: "marketfeed_last_event_timestamp_seconds",
    help: "Exchange event time of the last data message, for channels that carry one (absent until one arrives).",
    kind: MetricType::GAUGE,
    labels: SUB_LABELS,
};
const MESSAGES: Family = Family {
    name: "marketfeed_messages_total",
    help: "Data messages received.",
    kind: MetricType::COUNTER,
    labels: SUB_LABELS,
};
const LAST_PRICE: Family = Family {
    name: "marketfeed_last_price",
    help: "Reference price of the last message that carried one (trade, mid of best bid/ask, mark or last).",
    kind: MetricType::GAUGE,
    labels: SUB_LABELS,
};
const ACKED: Family = Family {
    name: "marketfeed_subscription_acked",
    help: "1 when the venue acknowledged the subscription on the current connection, else 0.",
    kind: MetricType::GAUGE,
    labels: SUB_LABELS,
};
const REJECTIONS: Family = Family {
    name: "marketfeed_subscription_rejections_total",
    help: "Subscribe requests the venue refused for this subscription.",
    kind: MetricType::COUNTER,
    labels: SUB_LABELS,
};
const RESUBSCRIBES: Family = Family {
    name: "marketfeed_resubscribes_total",
    help: "Times the subscription was resubscribed after going silent while its connection delivered other data.",
    kind: MetricType::COUNTER,
    labels: SUB_LABELS,
};
const UPDATE_GAP: Family = Family {
    name: "marketfeed_update_gap_seconds",
    help: "Time between consecutive data messages of one subscription.",
    kind: MetricType::HISTOGRAM,
    labels: GROUP_LABELS,
};
const EVENT_LATENCY: Family = Family {
    name: "marketfeed_event_latency_seconds",
    help: "Local receive time minus exchange event time (negative values count as zero).",
    kind: MetricType::HISTOGRAM,
    labels: GROUP_LABELS,
};
const EXPECTED_INTERVAL: Family = Family {
    name: "marketfeed_channel_expected_interval_seconds",
    help: "How often the venue pushes a scheduled channel whatever the market does (absent for event-driven channels).",
    kind: MetricType::GAUGE,
    labels: GROUP_LABELS,
};
const LATE_AFTER: Family = Family {
    name: "marketfeed_channel_late_after_seconds",
    help: "Silence after which a scheduled channel's subscription is late and resubscribed: MARKETFEED_HEARTBEAT_MISSES expected intervals plus a 2 s grace.",
    kind: MetricType::GAUGE,
    labels: GROUP_LABELS,
};
const QUIET_AFTER: Family = Family {
    name: "marketfeed_channel_quiet_after_seconds",
    help: "Silence after which an event-driven channel's subscription counts as quiet: the market's longest scheduled-channel deadline, or its degraded threshold without one.",
    kind: MetricType::GAUGE,
    labels: GROUP_LABELS,
};
const DEGRADED_THRESHOLD: Family = Family {
    name: "marketfeed_degraded_threshold_seconds",
    help: "Silence after which a symbol of the market is degraded (MARKETFEED_DEGRADED_AFTER or the market's own).",
    kind: MetricType::GAUGE,
    labels: MARKET_LABELS,
};
const RUNTIME_TASKS: Family = Family {
    name: "marketfeed_runtime_tasks",
    help: "Tasks alive in the exporter's async runtime: connections, their successors, HTTP requests and timers; a steady rise is a leak.",
    kind: MetricType::GAUGE,
    labels: &[],
};
const TASK_RESTARTS: Family = Family {
    name: "marketfeed_task_restarts_total",
    help: "Long-running tasks (feed connections, listing followers, REST pollers) restarted after a panic, by kind of task.",
    kind: MetricType::COUNTER,
    labels: &["task"],
};
const STALE_THRESHOLD: Family = Family {
    name: "marketfeed_stale_threshold_seconds",
    help: "Silence after which a symbol of the market is stale (MARKETFEED_STALE_AFTER or the market's own).",
    kind: MetricType::GAUGE,
    labels: MARKET_LABELS,
};
const CRITICAL_THRESHOLD: Family = Family {
    name: "marketfeed_critical_threshold_seconds",
    help: "Silence after which a symbol of the market is critical (MARKETFEED_CRITICAL_AFTER or the market's own).",
    kind: MetricType::GAUGE,
    labels: MARKET_LABELS,
};
const SYMBOLS_BY_FEED: Family = Family {
    name: "marketfeed_symbols",
    help: "Watched symbols by the feed's verdict at scrape time: live, quiet (only event-driven channels silent), late (a scheduled channel missed its cadence) or no_data.",
    kind: MetricType::GAUGE,
    labels: &["exchange", "market", "feed"],
};
const DECODE_ERRORS: Family = Family {
    name: "marketfeed_decode_errors_total",
    help: "Frames that could not be decoded and were skipped.",
    kind: MetricType::COUNTER,
    labels: &["exchange", "market"],
};
const CONNECTION_UP: Family = Family {
    name: "marketfeed_connection_up",
    help: "1 while the WebSocket connection is established, else 0.",
    kind: MetricType::GAUGE,
    labels: CONN_LABELS,
};
const CONNECTION_ESTABLISHED: Family = Family {
    name: "marketfeed_connection_established_timestamp_seconds",
    help: "When the connection's current session was established (absent before the first).",
    kind: MetricType::GAUGE,
    labels: CONN_LABELS,
};
const RECONNECTS: Family = Family {
    name: "marketfeed_reconnects_total",
    help: "Connection sessions that ended, by reason.",
    kind: MetricType::COUNTER,
    labels: &["exchange", "market", "connection", "reason"],
};
const IMPLAUSIBLE_TIMES: Family = Family {
    name: "marketfeed_implausible_timestamps_total",
    help: "Data messages whose event time was more than 1 h in the past or 1 min in the future of the clock-corrected local time (or not positive); kept out of latency and the last-event gauge.",
    kind: MetricType::COUNTER,
    labels: &["exchange", "market"],
};
const CONNECT_FAILURES: Family = Family {
    name: "marketfeed_connect_failures_total",
    help: "Failed connection attempts, by cause: dns, refused, timeout, tls, protocol, io, or http_<status> for an upgrade the venue refused.",
    kind: MetricType::COUNTER,
    labels: &["exchange", "market", "cause"],
};
const BUILD_INFO: Family = Family {
    name: "marketfeed_build_info",
    help: "Build facts of the running exporter; always 1.",
    kind: MetricType::GAUGE,
    labels: &["version", "revision", "rustc_version"],
};

const CLOCK_OFFSET: Family = Family {
    name: "marketfeed_clock_offset_seconds",
    help: "The exchange's clock minus ours, from its REST server time (absent until measured); event latency is corrected by it.",
    kind: MetricType::GAUGE,
    labels: &["exchange"],
};
const REST_DURATION: Family = Family {
    name: "marketfeed_rest_request_duration_seconds",
    help: "Duration of REST requests to the venue, body included.",
    kind: MetricType::HISTOGRAM,
    labels: &["exchange", "market", "endpoint"],
};
const REST_ERRORS: Family = Family {
    name: "marketfeed_rest_errors_total",
    help: "Failed REST requests by code: HTTP status, venue_<code>, timeout, connect, transport, malformed, missing or bad_number.",
    kind: MetricType::COUNTER,
    labels: &["exchange", "market", "endpoint", "code"],
};
const SYMBOL_LISTED: Family = Family {
    name: "marketfeed_symbol_listed",
    help: "1 when the venue's instrument list has the symbol, else 0 (absent until the list was read).",
    kind: MetricType::GAUGE,
    labels: &["exchange", "market", "symbol"],
};
const SYMBOL_TRADING: Family = Family {
    name: "marketfeed_symbol_trading",
    help: "1 when the venue lists the symbol as trading, 0 when halted or not listed (absent until the list was read).",
    kind: MetricType::GAUGE,
    labels: &["exchange", "market", "symbol"],
};
const CROSSCHECK_BEHIND: Family = Family {
    name: "marketfeed_rest_crosscheck_feed_behind",
    help: "REST cross-check of a symbol that is still silent since the check: 1 when REST showed a trade or price the feed missed (feed broken), 0 when it agreed (market quiet); absent when inconclusive, or once the feed delivered again.",
    kind: MetricType::GAUGE,
    labels: &["exchange", "market", "symbol"],
};
const CROSSCHECK_TIME: Family = Family {
    name: "marketfeed_rest_crosscheck_timestamp_seconds",
    help: "When a stale symbol was last cross-checked against the REST ticker.",
    kind: MetricType::GAUGE,
    labels: &["exchange", "market", "symbol"],
};

#[cfg(test)]
const FAMILIES: [&Family; 32] = [
    &LAST_MESSAGE,
    &LAST_EVENT,
    &MESSAGES,
    &LAST_PRICE,
    &ACKED,
    &REJECTIONS,
    &RESUBSCRIBES,
    &RUNTIME_TASKS,
    &TASK_RESTARTS,
    &UPDATE_GAP,
    &EVENT_LATENCY,
    &EXPECTED_INTERVAL,
    &LATE_AFTER,
    &QUIET_AFTER,
    &DEGRADED_THRESHOLD,
    &STALE_THRESHOLD,
    &CRITICAL_THRESHOLD,
    &SYMBOLS_BY_FEED,
    &DECODE_ERRORS,
    &IMPLAUSIBLE_TIMES,
    &CONNECTION_UP,
    &CONNECTION_ESTABLISHED,
    &RECONNECTS,
    &CONNECT_FAILURES,
    &BUILD_INFO,
    &CLOCK_OFFSET,
    &REST_DURATION,
    &REST_ERRORS,
    &SYMBOL_LISTED,
    &SYMBOL_TRADING,
    &CROSSCHECK_BEHIND,
    &CROSSCHECK_TIME,
];

/// Reads the tracker at scrape time and writes the exposition text directly.
struct TrackerCollector {
    trackers: Arc<Trackers>,
    rest: Arc<RestStats>,
    build: BuildInfo,
    /// The runtime whose tasks `marketfeed_runtime_tasks` counts (with the process metrics only).
    runtime: Option<tokio::runtime::Handle>,
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
    fn write(&self, out: &mut String) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::freshness::{Rules, Thresholds};
    use crate::model::Sample;
    use crate::model::Subscription;
    use crate::tracker::{ClockOffsets, ConnectionInfo, CrossCheck, Tracker};
    use crate::venue::rest::Endpoint;
    use rust_decimal::Decimal;
    use std::str::FromStr;
    use std::time::Duration;

    const S: u64 = 1_000_000_000;

    /// A fixed scenario: two symbols on Binance spot (with its own thresholds), one on Bybit linear (with the
    /// defaults), with messages, a rejection, a resubscribe, a decode error and reconnects; its exposition is
    /// pinned in tests/golden/metrics.prom.
    fn scenario(clock: Arc<ClockOffsets>) -> [Arc<Tracker>; 2] {
        let sub = |venue, channel: &str, symbol: &str| Subscription {
            venue,
            channel: crate::venue::channel(venue, channel).unwrap(),
            symbol: symbol.into(),
        };
        let spot = |channel: &str, symbol: &str| sub(Venue::BinanceSpot, channel, symbol);
        let subs = vec![
            spot("depth5", "BTCUSDT"),
            spot("aggTrade", "BTCUSDT"),
            spot("depth5", "ETHUSDT"),
            spot("aggTrade", "ETHUSDT"),
        ];
        let conn = |venue, slots| {
            vec![ConnectionInfo {
                venue,
                index: 0,
                slots,
            }]
        };
        // Overridden thresholds on spot, so the golden file shows a market's own beside the defaults.
        let rules = Rules {
            thresholds: Thresholds {
                degraded: Duration::from_secs(20),
                stale: Duration::from_secs(30),
                critical: Duration::from_secs(3600),
            },
            heartbeat_misses: 5,
        };
        // Ages at scrape time are months, so the verdicts are fixed: spot BTCUSDT late (its depth5 stopped),
        // the others never delivered.
        let start = 1_790_000_000 * S;
        let t = Tracker::new(
            subs,
            conn(Venue::BinanceSpot, vec![0, 1, 2, 3]),
            rules,
            start,
        )
        .with_clock(clock.clone());
        let linear = Tracker::new(
            vec![sub(Venue::BybitLinear, "orderbook.1", "BTCUSDT")],
            conn(Venue::BybitLinear, vec![0]),
            Rules::default(),
            start,
        )
        .with_clock(clock);
        let price = |p: &str| Decimal::from_str(p).ok();
        t.connection_up(0, start + S);
        linear.connection_up(0, start + 2 * S);
        for slot in 0..4 {
            t.set_acked(slot, true);
        }
        t.record(
            0,
            start + 3 * S,
            &Sample {
                event_time_ms: None,
                price: price("43000.05"),
            },
        );
        t.record(
            0,
            start + 4 * S,
            &Sample {
                event_time_ms: None,
                price: price("43000.15"),
            },
        );
        t.record(
            1,
            start + 3 * S,
            &Sample {
                event_time_ms: Some(1_790_000_002_990),
                price: price("43000.1"),
            },
        );
        t.record(
            1,
            start + 5 * S,
            &Sample {
                event_time_ms: Some(1_790_000_004_950),
                price: price("43001"),
            },
        );
        linear.rejected(0);
        t.resubscribed(2);
        t.decode_error(Venue::BinanceSpot);
        // An event stamped in 1970: counted, not a latency.
        t.record(
            1,
            start + 6 * S,
            &Sample {
                event_time_ms: Some(1),
                price: None,
            },
        );
        linear.connect_failed(crate::tracker::Cause::Http(451));
        linear.connection_down(0, crate::tracker::Reason::HandshakeFailed);
        linear.connection_down(0, crate::tracker::Reason::HeartbeatTimeout);
        t.set_clock_offset(Exchange::Binance, -12_500_000);
        t.set_listing(Venue::BinanceSpot, "BTCUSDT", Listing::Trading);
        t.set_listing(Venue::BinanceSpot, "ETHUSDT", Listing::Halted);
        linear.set_listing(Venue::BybitLinear, "BTCUSDT", Listing::Unlisted);
        t.set_cross_check(
            Venue::BinanceSpot,
            "ETHUSDT",
            CrossCheck {
                checked_ns: start + 400 * S,
                rest_price: Decimal::from_str("2400.5").unwrap(),
                feed_behind: Some(true),
            },
        );
        [Arc::new(t), Arc::new(linear)]
    }

    /// REST observations for the scenario: one of each kind, so every family appears in the golden file.
    fn rest_scenario() -> Arc<RestStats> {
        let stats = Arc::new(RestStats::new(&[Venue::BinanceSpot]));
        stats.observe(
            Venue::BinanceSpot,
            Endpoint::Time,
            Duration::from_millis(42),
        );
        stats.error(Venue::BinanceSpot, Endpoint::Ticker, "429");
        stats
    }

    /// The registry the app would build: one tracker per market.
    fn registry() -> Arc<Trackers> {
        let trackers = Arc::new(Trackers::new());
        let [spot, linear] = scenario(trackers.clock());
        trackers.set(Venue::BinanceSpot, spot);
        trackers.set(Venue::BybitLinear, linear);
        trackers
    }

    fn build() -> BuildInfo {
        BuildInfo {
            version: "0.1.0".into(),
            revision: "abcdef012345".into(),
            rustc_version: "1.95.0".into(),
        }
    }

    /// The exposition of a fixed scenario, byte for byte. Set UPDATE_GOLDEN=1 to rewrite the file after an
    /// intended change, then review the diff.
    #[test]
    fn golden_exposition() {
        let text = Metrics::new(registry(), rest_scenario(), build(), false)
            .unwrap()
            .render();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/metrics.prom");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(path, &text).unwrap();
        }
        let golden = std::fs::read_to_string(path).unwrap();
        assert_eq!(
            text, golden,
            "exposition changed; UPDATE_GOLDEN=1 cargo test golden rewrites it"
        );
    }

    #[test]
    fn every_family_is_registered_once_and_named_by_the_contract() {
        // Inside a runtime, so the task count is exported too.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _inside = runtime.enter();
        let text = Metrics::new(registry(), rest_scenario(), build(), true)
            .unwrap()
            .render();
        // Written in name order, as a registry gathers them.
        let types: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .collect();
        let mut sorted = types.clone();
        sorted.sort();
        assert_eq!(types, sorted);
        for f in FAMILIES {
            assert!(f.name.starts_with("marketfeed_"), "{}", f.name);
            assert!(f.help.ends_with('.'), "{}", f.name);
            assert_eq!(
                text.matches(&format!("# TYPE {} ", f.name)).count(),
                1,
                "{}",
                f.name
            );
        }
        assert!(
            text.contains("process_resident_memory_bytes "),
            "process metrics are exported"
        );
    }
}
