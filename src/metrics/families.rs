//! The metric contract: every family's name, help, type and label names, in one place (docs/reference.md lists
//! them for people; `collect::WRITERS` lists them with their writers, in name order).

use prometheus::proto::MetricType;

/// One family of the contract: name, help, type, label names.
pub(super) struct Family {
    pub(super) name: &'static str,
    pub(super) help: &'static str,
    pub(super) kind: MetricType,
    pub(super) labels: &'static [&'static str],
}

pub(super) const SUB_LABELS: &[&str] = &["exchange", "market", "channel", "symbol"];
pub(super) const GROUP_LABELS: &[&str] = &["exchange", "market", "channel"];
pub(super) const CONN_LABELS: &[&str] = &["exchange", "market", "connection"];
pub(super) const MARKET_LABELS: &[&str] = &["exchange", "market"];

pub(super) const LAST_MESSAGE: Family = Family {
    name: "marketfeed_last_message_timestamp_seconds",
    help: "Local receive time of the last data message; until the first, when the subscription was first requested.",
    kind: MetricType::GAUGE,
    labels: SUB_LABELS,
};
pub(super) const LAST_EVENT: Family = Family {
    name: "marketfeed_last_event_timestamp_seconds",
    help: "Exchange event time of the last data message, for channels that carry one (absent until one arrives).",
    kind: MetricType::GAUGE,
    labels: SUB_LABELS,
};
pub(super) const MESSAGES: Family = Family {
    name: "marketfeed_messages_total",
    help: "Data messages received.",
    kind: MetricType::COUNTER,
    labels: SUB_LABELS,
};
pub(super) const LAST_PRICE: Family = Family {
    name: "marketfeed_last_price",
    help: "Reference price of the last message that carried one (trade, mid of best bid/ask, mark or last).",
    kind: MetricType::GAUGE,
    labels: SUB_LABELS,
};
pub(super) const ACKED: Family = Family {
    name: "marketfeed_subscription_acked",
    help: "1 when the venue acknowledged the subscription on the current connection, else 0.",
    kind: MetricType::GAUGE,
    labels: SUB_LABELS,
};
pub(super) const REJECTIONS: Family = Family {
    name: "marketfeed_subscription_rejections_total",
    help: "Subscribe requests the venue refused for this subscription.",
    kind: MetricType::COUNTER,
    labels: SUB_LABELS,
};
pub(super) const RESUBSCRIBES: Family = Family {
    name: "marketfeed_resubscribes_total",
    help: "Times the subscription was resubscribed after going silent while its connection delivered other data.",
    kind: MetricType::COUNTER,
    labels: SUB_LABELS,
};
pub(super) const UPDATE_GAP: Family = Family {
    name: "marketfeed_update_gap_seconds",
    help: "Time between consecutive data messages of one subscription.",
    kind: MetricType::HISTOGRAM,
    labels: GROUP_LABELS,
};
pub(super) const EVENT_LATENCY: Family = Family {
    name: "marketfeed_event_latency_seconds",
    help: "Local receive time minus exchange event time (negative values count as zero).",
    kind: MetricType::HISTOGRAM,
    labels: GROUP_LABELS,
};
pub(super) const EXPECTED_INTERVAL: Family = Family {
    name: "marketfeed_channel_expected_interval_seconds",
    help: "How often the venue pushes a scheduled channel whatever the market does (absent for event-driven channels).",
    kind: MetricType::GAUGE,
    labels: GROUP_LABELS,
};
pub(super) const LATE_AFTER: Family = Family {
    name: "marketfeed_channel_late_after_seconds",
    help: "Silence after which a scheduled channel's subscription is late and resubscribed: MARKETFEED_HEARTBEAT_MISSES expected intervals plus a 2 s grace.",
    kind: MetricType::GAUGE,
    labels: GROUP_LABELS,
};
pub(super) const QUIET_AFTER: Family = Family {
    name: "marketfeed_channel_quiet_after_seconds",
    help: "Silence after which an event-driven channel's subscription counts as quiet: the market's longest scheduled-channel deadline, or its degraded threshold without one.",
    kind: MetricType::GAUGE,
    labels: GROUP_LABELS,
};
pub(super) const DEGRADED_THRESHOLD: Family = Family {
    name: "marketfeed_degraded_threshold_seconds",
    help: "Silence after which a symbol of the market is degraded (MARKETFEED_DEGRADED_AFTER or the market's own).",
    kind: MetricType::GAUGE,
    labels: MARKET_LABELS,
};
pub(super) const RUNTIME_TASKS: Family = Family {
    name: "marketfeed_runtime_tasks",
    help: "Tasks alive in the exporter's async runtime: connections, their successors, HTTP requests and timers; a steady rise is a leak.",
    kind: MetricType::GAUGE,
    labels: &[],
};
pub(super) const TASK_RESTARTS: Family = Family {
    name: "marketfeed_task_restarts_total",
    help: "Long-running tasks (feed connections, listing followers, REST pollers) restarted after a panic, by kind of task.",
    kind: MetricType::COUNTER,
    labels: &["task"],
};
pub(super) const STALE_THRESHOLD: Family = Family {
    name: "marketfeed_stale_threshold_seconds",
    help: "Silence after which a symbol of the market is stale (MARKETFEED_STALE_AFTER or the market's own).",
    kind: MetricType::GAUGE,
    labels: MARKET_LABELS,
};
pub(super) const CRITICAL_THRESHOLD: Family = Family {
    name: "marketfeed_critical_threshold_seconds",
    help: "Silence after which a symbol of the market is critical (MARKETFEED_CRITICAL_AFTER or the market's own).",
    kind: MetricType::GAUGE,
    labels: MARKET_LABELS,
};
pub(super) const SYMBOLS_BY_FEED: Family = Family {
    name: "marketfeed_symbols",
    help: "Watched symbols by the feed's verdict at scrape time: live, quiet (only event-driven channels silent), late (a scheduled channel missed its cadence) or no_data.",
    kind: MetricType::GAUGE,
    labels: &["exchange", "market", "feed"],
};
pub(super) const DECODE_ERRORS: Family = Family {
    name: "marketfeed_decode_errors_total",
    help: "Frames that could not be decoded and were skipped.",
    kind: MetricType::COUNTER,
    labels: &["exchange", "market"],
};
pub(super) const CONNECTION_UP: Family = Family {
    name: "marketfeed_connection_up",
    help: "1 while the WebSocket connection is established, else 0.",
    kind: MetricType::GAUGE,
    labels: CONN_LABELS,
};
pub(super) const CONNECTION_ESTABLISHED: Family = Family {
    name: "marketfeed_connection_established_timestamp_seconds",
    help: "When the connection's current session was established (absent before the first).",
    kind: MetricType::GAUGE,
    labels: CONN_LABELS,
};
pub(super) const RECONNECTS: Family = Family {
    name: "marketfeed_reconnects_total",
    help: "Connection sessions that ended, by reason.",
    kind: MetricType::COUNTER,
    labels: &["exchange", "market", "connection", "reason"],
};
pub(super) const IMPLAUSIBLE_TIMES: Family = Family {
    name: "marketfeed_implausible_timestamps_total",
    help: "Data messages whose event time was more than 1 h in the past or 1 min in the future of the clock-corrected local time (or not positive); kept out of latency and the last-event gauge.",
    kind: MetricType::COUNTER,
    labels: &["exchange", "market"],
};
pub(super) const CONNECT_FAILURES: Family = Family {
    name: "marketfeed_connect_failures_total",
    help: "Failed connection attempts, by cause: dns, refused, timeout, tls, protocol, io, or http_<status> for an upgrade the venue refused.",
    kind: MetricType::COUNTER,
    labels: &["exchange", "market", "cause"],
};
pub(super) const BUILD_INFO: Family = Family {
    name: "marketfeed_build_info",
    help: "Build facts of the running exporter; always 1.",
    kind: MetricType::GAUGE,
    labels: &["version", "revision", "rustc_version"],
};

pub(super) const CLOCK_OFFSET: Family = Family {
    name: "marketfeed_clock_offset_seconds",
    help: "The exchange's clock minus ours, from its REST server time (absent until measured); event latency is corrected by it.",
    kind: MetricType::GAUGE,
    labels: &["exchange"],
};
pub(super) const REST_DURATION: Family = Family {
    name: "marketfeed_rest_request_duration_seconds",
    help: "Duration of REST requests to the venue, body included.",
    kind: MetricType::HISTOGRAM,
    labels: &["exchange", "market", "endpoint"],
};
pub(super) const REST_ERRORS: Family = Family {
    name: "marketfeed_rest_errors_total",
    help: "Failed REST requests by code: HTTP status, venue_<code>, timeout, connect, transport, malformed, missing or bad_number.",
    kind: MetricType::COUNTER,
    labels: &["exchange", "market", "endpoint", "code"],
};
pub(super) const SYMBOL_LISTED: Family = Family {
    name: "marketfeed_symbol_listed",
    help: "1 when the venue's instrument list has the symbol, else 0 (absent until the list was read).",
    kind: MetricType::GAUGE,
    labels: &["exchange", "market", "symbol"],
};
pub(super) const SYMBOL_TRADING: Family = Family {
    name: "marketfeed_symbol_trading",
    help: "1 when the venue lists the symbol as trading, 0 when halted or not listed (absent until the list was read).",
    kind: MetricType::GAUGE,
    labels: &["exchange", "market", "symbol"],
};
pub(super) const CROSSCHECK_BEHIND: Family = Family {
    name: "marketfeed_rest_crosscheck_feed_behind",
    help: "REST cross-check of a symbol that is still silent since the check: 1 when REST showed a trade or price the feed missed (feed broken), 0 when it agreed (market quiet); absent when inconclusive, or once the feed delivered again.",
    kind: MetricType::GAUGE,
    labels: &["exchange", "market", "symbol"],
};
pub(super) const CROSSCHECK_TIME: Family = Family {
    name: "marketfeed_rest_crosscheck_timestamp_seconds",
    help: "When a stale symbol was last cross-checked against the REST ticker.",
    kind: MetricType::GAUGE,
    labels: &["exchange", "market", "symbol"],
};
pub(super) const SHARDS: Family = Family {
    name: "marketfeed_shards",
    help: "How many shards split the symbols (MARKETFEED_SHARD), labelled with this process's shard, numbered from 0; absent when the process watches every symbol.",
    kind: MetricType::GAUGE,
    labels: &["shard"],
};
