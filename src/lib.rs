//! marketfeed_exporter: per-symbol freshness of exchange WebSocket market data, for Prometheus.
//!
//! # Layout
//!
//! - [`model`]: shared plain types (venue, channel, subscription, decoded sample).
//! - [`tracker`]: lock-free freshness state per subscription and per connection, status classification.
//! - [`backoff`]: capped exponential backoff with full jitter, a pure function.
//! - [`metrics`]: the registry and the scrape-time collector over the tracker.
//! - [`http`]: `/metrics`, landing page, probes and the JSON API.

pub mod backoff;
pub mod http;
pub mod metrics;
pub mod model;
pub mod tracker;
