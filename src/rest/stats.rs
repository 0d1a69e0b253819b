//! What the REST side observed about its own requests: durations and errors, read by the metrics collector.
//! Owns counters only; knows nothing of HTTP or Prometheus.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::model::Venue;
use crate::tracker::{AtomicHistogram, HistogramSnapshot};
use crate::venue::rest::Endpoint;

/// Bucket bounds of `marketfeed_rest_request_duration_seconds`.
pub const REST_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Request durations per (venue, endpoint) and error counts per (venue, endpoint, code).
#[derive(Debug)]
pub struct RestStats {
    durations: Vec<((Venue, Endpoint), AtomicHistogram)>,
    /// Codes are open-ended (HTTP statuses, venue error codes); a few increments a minute at most.
    errors: Mutex<BTreeMap<(Venue, Endpoint, String), u64>>,
}

impl RestStats {
    /// Histograms pre-initialised for every endpoint of every watched venue.
    pub fn new(venues: &[Venue]) -> Self {
        let durations = venues
            .iter()
            .flat_map(|&v| Endpoint::ALL.map(|e| ((v, e), AtomicHistogram::new(REST_BUCKETS))))
            .collect();
        Self {
            durations,
            errors: Mutex::new(BTreeMap::new()),
        }
    }

    /// Records one request's duration (until the whole body was read, or it failed).
    pub fn observe(&self, venue: Venue, endpoint: Endpoint, duration: Duration) {
        if let Some((_, h)) = self
            .durations
            .iter()
            .find(|(key, _)| *key == (venue, endpoint))
        {
            h.observe_ns(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX));
        }
    }

    /// Counts one failed request.
    pub fn error(&self, venue: Venue, endpoint: Endpoint, code: &str) {
        if let Ok(mut errors) = self.errors.lock() {
            *errors
                .entry((venue, endpoint, code.to_owned()))
                .or_default() += 1;
        }
    }

    /// Duration histograms, in venue then endpoint order.
    pub fn durations(&self) -> impl Iterator<Item = (Venue, Endpoint, HistogramSnapshot)> + '_ {
        self.durations
            .iter()
            .map(|((v, e), h)| (*v, *e, h.snapshot()))
    }

    /// Error counts so far.
    pub fn errors(&self) -> Vec<((Venue, Endpoint, String), u64)> {
        self.errors
            .lock()
            .map(|e| e.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default()
    }
}
