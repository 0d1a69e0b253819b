//! The Prometheus registry: a scrape-time collector over the tracker, build info and process metrics.
//!
//! Owns metric names, help strings and labels (the metric contract in docs/architecture.md). Reads the tracker
//! only when scraped, so ingest never touches a metric object. Knows nothing of WebSockets or wire formats.

mod process;

use std::sync::Arc;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};
use prometheus::{Encoder, Registry, TextEncoder};

use crate::freshness::{Feed, Limit};
use crate::model::{Exchange, Subscription, Venue};
use crate::rest::RestStats;
use crate::tracker::{HistogramSnapshot, Listing, Reason, Trackers, unix_now};
use process::ProcessMetrics;

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

/// The exporter's registry.
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    /// A registry with the tracker collector, the REST side's request metrics and build info; `process` adds
    /// the standard `process_*` metrics.
    pub fn new(
        trackers: Arc<Trackers>,
        rest: Arc<RestStats>,
        build: BuildInfo,
        process: bool,
    ) -> prometheus::Result<Self> {
        let registry = Registry::new();
        registry.register(Box::new(TrackerCollector::new(trackers, rest, build)?))?;
        if process {
            registry.register(Box::new(ProcessMetrics::for_self()?))?;
        }
        Ok(Self { registry })
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::with_capacity(64 * 1024);
        // Encoding into a Vec only fails on invalid families, which the collector never builds.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(out).unwrap_or_default()
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

const FAMILIES: [&Family; 30] = [
    &LAST_MESSAGE,
    &LAST_EVENT,
    &MESSAGES,
    &LAST_PRICE,
    &ACKED,
    &REJECTIONS,
    &RESUBSCRIBES,
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

/// Reads the tracker at scrape time; descriptions are built once (rust-prometheus' ProcessCollector pattern).
struct TrackerCollector {
    trackers: Arc<Trackers>,
    rest: Arc<RestStats>,
    build: BuildInfo,
    descs: Vec<Desc>,
}

impl TrackerCollector {
    fn new(
        trackers: Arc<Trackers>,
        rest: Arc<RestStats>,
        build: BuildInfo,
    ) -> prometheus::Result<Self> {
        let descs = FAMILIES
            .iter()
            .map(|f| {
                let labels = f.labels.iter().map(|l| (*l).to_owned()).collect();
                Desc::new(
                    f.name.to_owned(),
                    f.help.to_owned(),
                    labels,
                    Default::default(),
                )
            })
            .collect::<prometheus::Result<_>>()?;
        Ok(Self {
            trackers,
            rest,
            build,
            descs,
        })
    }
}

/// Label values of one subscription: the one place their order is written.
fn sub_labels(sub: &Subscription) -> Vec<LabelPair> {
    labels(
        SUB_LABELS,
        &[
            sub.venue.exchange().as_str(),
            sub.venue.market().as_str(),
            &sub.channel.name,
            &sub.symbol,
        ],
    )
}

fn labels(names: &[&str], values: &[&str]) -> Vec<LabelPair> {
    names
        .iter()
        .zip(values)
        .map(|(name, value)| {
            let mut pair = LabelPair::default();
            pair.set_name((*name).to_owned());
            pair.set_value((*value).to_owned());
            pair
        })
        .collect()
}

fn gauge(labels: Vec<LabelPair>, value: f64) -> Metric {
    let mut g = Gauge::default();
    g.set_value(value);
    let mut m = Metric::from_label(labels);
    m.set_gauge(g);
    m
}

fn counter(labels: Vec<LabelPair>, value: u64) -> Metric {
    let mut c = Counter::default();
    c.set_value(value as f64);
    let mut m = Metric::from_label(labels);
    m.set_counter(c);
    m
}

fn histogram(labels: Vec<LabelPair>, snap: HistogramSnapshot) -> Metric {
    let mut h = Histogram::default();
    h.set_sample_count(snap.count);
    h.set_sample_sum(snap.sum);
    h.set_bucket(
        snap.buckets
            .into_iter()
            .map(|(bound, count)| {
                let mut b = Bucket::default();
                b.set_upper_bound(bound);
                b.set_cumulative_count(count);
                b
            })
            .collect(),
    );
    let mut m = Metric::from_label(labels);
    m.set_histogram(h);
    m
}

fn family(f: &Family, metrics: Vec<Metric>) -> MetricFamily {
    let mut mf = MetricFamily::default();
    mf.set_name(f.name.to_owned());
    mf.set_help(f.help.to_owned());
    mf.set_field_type(f.kind);
    mf.set_metric(metrics);
    mf
}

fn seconds(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

impl Collector for TrackerCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let trackers = self.trackers.all();
        let n: usize = trackers.iter().map(|t| t.len()).sum();
        let (mut last, mut event, mut messages, mut price) = (
            Vec::with_capacity(n),
            Vec::new(),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut acked, mut rejections, mut resubscribes) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for v in trackers.iter().flat_map(|t| t.subscriptions()) {
            let l = sub_labels(v.subscription);
            last.push(gauge(l.clone(), seconds(v.last_message_ns)));
            if let Some(ms) = v.last_event_ms {
                event.push(gauge(l.clone(), ms as f64 / 1e3));
            }
            if let Some(p) = v
                .price
                .and_then(|p| rust_decimal::prelude::ToPrimitive::to_f64(&p))
            {
                price.push(gauge(l.clone(), p));
            }
            messages.push(counter(l.clone(), v.messages));
            acked.push(gauge(l.clone(), if v.acked { 1.0 } else { 0.0 }));
            rejections.push(counter(l.clone(), v.rejections));
            resubscribes.push(counter(l, v.resubscribes));
        }

        let (mut gaps, mut latencies) = (Vec::new(), Vec::new());
        for (venue, channel, gap, latency) in trackers.iter().flat_map(|t| t.histograms()) {
            let l = labels(
                GROUP_LABELS,
                &[venue.exchange().as_str(), venue.market().as_str(), channel],
            );
            gaps.push(histogram(l.clone(), gap));
            // Channels without an exchange event time (Binance spot bookTicker and partial depth) never
            // observe a latency; an always-empty histogram would only add series.
            if latency.count > 0 {
                latencies.push(histogram(l, latency));
            }
        }

        let (mut intervals, mut late_after, mut quiet_after) = (Vec::new(), Vec::new(), Vec::new());
        for (venue, channel, interval, limit) in trackers.iter().flat_map(|t| t.cadences()) {
            let l = || {
                labels(
                    GROUP_LABELS,
                    &[venue.exchange().as_str(), venue.market().as_str(), channel],
                )
            };
            if let Some(interval) = interval {
                intervals.push(gauge(l(), interval.as_secs_f64()));
            }
            match limit {
                Limit::Late(after) => late_after.push(gauge(l(), after.as_secs_f64())),
                Limit::Quiet(after) => quiet_after.push(gauge(l(), after.as_secs_f64())),
            }
        }

        // Per watched market: the thresholds in force and how many symbols have each verdict. A `*` market's
        // tracker exists (empty) before its first listing, so these are there from startup.
        let now = unix_now();
        let (mut degraded, mut stale, mut critical, mut by_feed) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (venue, tracker) in self.trackers.venues() {
            let market = [venue.exchange().as_str(), venue.market().as_str()];
            let t = tracker.thresholds();
            degraded.push(gauge(
                labels(MARKET_LABELS, &market),
                t.degraded.as_secs_f64(),
            ));
            stale.push(gauge(labels(MARKET_LABELS, &market), t.stale.as_secs_f64()));
            critical.push(gauge(
                labels(MARKET_LABELS, &market),
                t.critical.as_secs_f64(),
            ));
            for (feed, count) in Feed::ALL.iter().zip(tracker.feed_counts(now)) {
                let l = labels(
                    SYMBOLS_BY_FEED.labels,
                    &[market[0], market[1], feed.as_str()],
                );
                by_feed.push(gauge(l, count as f64));
            }
        }

        let mut watched: Vec<Venue> = trackers
            .iter()
            .flat_map(|t| t.subscriptions())
            .map(|v| v.subscription.venue)
            .collect();
        watched.dedup();
        let decode = watched
            .into_iter()
            .map(|venue| {
                let l = labels(
                    DECODE_ERRORS.labels,
                    &[venue.exchange().as_str(), venue.market().as_str()],
                );
                counter(l, trackers.iter().map(|t| t.decode_errors(venue)).sum())
            })
            .collect();

        let (mut up, mut established, mut reconnects) = (Vec::new(), Vec::new(), Vec::new());
        for c in trackers.iter().flat_map(|t| t.connections()) {
            let index = c.info.index.to_string();
            let venue = c.info.venue;
            let values = [
                venue.exchange().as_str(),
                venue.market().as_str(),
                index.as_str(),
            ];
            up.push(gauge(
                labels(CONN_LABELS, &values),
                if c.up { 1.0 } else { 0.0 },
            ));
            if c.established_ns > 0 {
                established.push(gauge(
                    labels(CONN_LABELS, &values),
                    seconds(c.established_ns),
                ));
            }
            for (reason, count) in Reason::ALL.iter().zip(c.reconnects) {
                let l = labels(
                    RECONNECTS.labels,
                    &[values[0], values[1], values[2], reason.as_str()],
                );
                reconnects.push(counter(l, count));
            }
        }

        let mut connect_failures = Vec::new();
        let mut implausible = Vec::new();
        for (venue, tracker) in self.trackers.venues() {
            implausible.push(counter(
                labels(
                    IMPLAUSIBLE_TIMES.labels,
                    &[venue.exchange().as_str(), venue.market().as_str()],
                ),
                tracker.implausible_times(),
            ));
            for (cause, count) in tracker.connect_failures() {
                let l = labels(
                    CONNECT_FAILURES.labels,
                    &[
                        venue.exchange().as_str(),
                        venue.market().as_str(),
                        &cause.label(),
                    ],
                );
                connect_failures.push(counter(l, count));
            }
        }

        let b = &self.build;
        let build = vec![gauge(
            labels(
                BUILD_INFO.labels,
                &[&b.version, &b.revision, &b.rustc_version],
            ),
            1.0,
        )];

        let offsets = [Exchange::Binance, Exchange::Bybit]
            .into_iter()
            .filter_map(|e| {
                let offset = self.trackers.clock().get(e)?;
                Some(gauge(
                    labels(CLOCK_OFFSET.labels, &[e.as_str()]),
                    offset as f64 / 1e9,
                ))
            })
            .collect();
        let rest_durations = self
            .rest
            .durations()
            .map(|(venue, endpoint, snap)| {
                let values = [
                    venue.exchange().as_str(),
                    venue.market().as_str(),
                    endpoint.as_str(),
                ];
                histogram(labels(REST_DURATION.labels, &values), snap)
            })
            .collect();
        let rest_errors = self
            .rest
            .errors()
            .into_iter()
            .map(|((venue, endpoint, code), count)| {
                let values = [
                    venue.exchange().as_str(),
                    venue.market().as_str(),
                    endpoint.as_str(),
                    code.as_str(),
                ];
                counter(labels(REST_ERRORS.labels, &values), count)
            })
            .collect();
        let (mut listed, mut trading, mut behind, mut checked) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for tracker in &trackers {
            for (venue, symbol, listing, check) in tracker.symbol_states() {
                let values = [venue.exchange().as_str(), venue.market().as_str(), symbol];
                let symbol_labels = || labels(SYMBOL_LISTED.labels, &values);
                let (is_listed, is_trading) = match listing {
                    Listing::Unknown => (None, None),
                    Listing::Trading => (Some(1.0), Some(1.0)),
                    Listing::Halted => (Some(1.0), Some(0.0)),
                    Listing::Unlisted => (Some(0.0), Some(0.0)),
                };
                listed.extend(is_listed.map(|v| gauge(symbol_labels(), v)));
                trading.extend(is_trading.map(|v| gauge(symbol_labels(), v)));
                if let Some(check) = check {
                    checked.push(gauge(symbol_labels(), seconds(check.checked_ns)));
                    // The verdict speaks of the silence it was made in: once the feed delivers again it no longer
                    // applies, and the series goes, so `feed_behind == 1` never names a symbol that recovered.
                    let silent_since_check = tracker
                        .symbol_last_message_ns(venue, symbol)
                        .is_some_and(|last| last <= check.checked_ns);
                    if silent_since_check {
                        behind.extend(
                            check
                                .feed_behind
                                .map(|b| gauge(symbol_labels(), if b { 1.0 } else { 0.0 })),
                        );
                    }
                }
            }
        }

        [
            (&LAST_MESSAGE, last),
            (&LAST_EVENT, event),
            (&MESSAGES, messages),
            (&LAST_PRICE, price),
            (&ACKED, acked),
            (&REJECTIONS, rejections),
            (&RESUBSCRIBES, resubscribes),
            (&UPDATE_GAP, gaps),
            (&EVENT_LATENCY, latencies),
            (&EXPECTED_INTERVAL, intervals),
            (&LATE_AFTER, late_after),
            (&QUIET_AFTER, quiet_after),
            (&DEGRADED_THRESHOLD, degraded),
            (&STALE_THRESHOLD, stale),
            (&CRITICAL_THRESHOLD, critical),
            (&SYMBOLS_BY_FEED, by_feed),
            (&DECODE_ERRORS, decode),
            (&IMPLAUSIBLE_TIMES, implausible),
            (&CONNECTION_UP, up),
            (&CONNECTION_ESTABLISHED, established),
            (&RECONNECTS, reconnects),
            (&CONNECT_FAILURES, connect_failures),
            (&BUILD_INFO, build),
            (&CLOCK_OFFSET, offsets),
            (&REST_DURATION, rest_durations),
            (&REST_ERRORS, rest_errors),
            (&SYMBOL_LISTED, listed),
            (&SYMBOL_TRADING, trading),
            (&CROSSCHECK_BEHIND, behind),
            (&CROSSCHECK_TIME, checked),
        ]
        .into_iter()
        // An empty family would be dropped by the registry anyway; skip building it.
        .filter(|(_, metrics)| !metrics.is_empty())
        .map(|(f, metrics)| family(f, metrics))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::freshness::{Rules, Thresholds};
    use crate::model::Sample;
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
        let text = Metrics::new(registry(), rest_scenario(), build(), true)
            .unwrap()
            .render();
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
