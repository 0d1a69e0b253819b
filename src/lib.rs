//! marketfeed_exporter: per-symbol freshness of exchange WebSocket market data, for Prometheus.
//!
//! # Layout
//!
//! - [`config`]: configuration from `MARKETFEED_*` variables and Prometheus-style flags, strictly validated.
//! - [`model`]: shared plain types (venue, channel, subscription, decoded sample).
//! - [`venue`]: all wire knowledge of Binance and Bybit: URLs, routes, limits, messages, sans-IO decoders.
//! - [`feed`]: the only code that touches a socket: sessions, heartbeats, watchdogs, reconnects.
//! - [`rest`]: the REST companion: clock offsets, instrument lists, cross-checks of stale symbols.
//! - [`freshness`]: what fresh means: thresholds and status, scheduled-channel deadlines, the live / quiet / late
//!   verdict, when a silent subscription is repaired. Pure functions.
//! - [`tracker`]: lock-free freshness state per subscription and per connection, judged by the market's rules.
//! - [`bucket`]: the token-bucket arithmetic both limiters share, a pure value told the time.
//! - [`backoff`]: capped exponential backoff with full jitter, a pure function.
//! - [`shutdown`]: the process-wide stop flag every long-running task watches.
//! - [`supervise`]: long-running tasks restarted (and counted) when they panic.
//! - [`repeat`]: collapsing a failure that repeats into a first line, slow summaries and a recovery line.
//! - [`metrics`]: the registry and the scrape-time collector over the tracker.
//! - [`http`]: `/metrics`, the live status page, probes and the JSON API, gzip.
//! - [`web`]: the server around them: TLS, basic auth and reloading from `--web.config.file`, bounded accept loop.
//! - [`app`]: builds and wires everything, shards subscriptions over connections, drains on shutdown.
//! - [`cardinality`]: how many series a configuration exports, for `--check-config`.

pub mod app;
pub mod backoff;
pub mod bucket;
pub mod cardinality;
pub mod config;
pub mod feed;
pub mod freshness;
pub mod http;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod repeat;
pub mod rest;
pub mod shard;
pub mod shutdown;
pub mod supervise;
pub mod tracker;
pub mod venue;
pub mod web;
