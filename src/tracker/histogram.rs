//! The atomic histograms of update gaps and event latency: an observation is two relaxed atomic adds, a scrape
//! reads a snapshot.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A histogram whose observation is a few relaxed atomic adds: no lock, no allocation.
#[derive(Debug)]
pub struct AtomicHistogram {
    bounds: &'static [f64],
    bounds_ns: Box<[u64]>,
    /// Non-cumulative counts; the last one is the +Inf bucket.
    counts: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
}

/// A consistent-enough copy of an [`AtomicHistogram`] for exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound, cumulative count)` for each finite bucket.
    pub buckets: Vec<(f64, u64)>,
    /// Total observations (equals the +Inf bucket).
    pub count: u64,
    /// Sum of observations, seconds.
    pub sum: f64,
}

impl AtomicHistogram {
    /// An empty histogram with the given finite upper bounds (seconds, ascending).
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            bounds_ns: bounds.iter().map(|b| (b * 1e9) as u64).collect(),
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }
    }

    /// Records one observation of `ns` nanoseconds.
    #[inline]
    pub fn observe_ns(&self, ns: u64) {
        let i = self.bounds_ns.partition_point(|&b| b < ns);
        self.counts[i].fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
    }

    /// Overwrites this histogram with `other`'s counts (same bounds).
    pub(super) fn copy_from(&self, other: &AtomicHistogram) {
        for (to, from) in self.counts.iter().zip(other.counts.iter()) {
            to.store(from.load(Relaxed), Relaxed);
        }
        self.sum_ns.store(other.sum_ns.load(Relaxed), Relaxed);
    }

    /// Reads the buckets. The count is derived from the buckets so `_count` always equals the +Inf bucket.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(self.bounds.len());
        for (bound, count) in self.bounds.iter().zip(self.counts.iter()) {
            cumulative += count.load(Relaxed);
            buckets.push((*bound, cumulative));
        }
        cumulative += self.counts[self.bounds.len()].load(Relaxed);
        HistogramSnapshot {
            buckets,
            count: cumulative,
            sum: self.sum_ns.load(Relaxed) as f64 / 1e9,
        }
    }
}
