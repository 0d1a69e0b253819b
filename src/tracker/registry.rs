//! `Trackers`: the process's registry of one tracker per watched venue, with the state every tracker shares
//! (clock offsets, task restarts).

use std::sync::{Arc, RwLock};

use super::{ClockOffsets, Tracker};
use crate::model::Venue;

/// The process's trackers, one per watched venue. A venue watching every listed symbol gets a new tracker
/// whenever its listing changes; everything else keeps its tracker for the process's life. Feeds hold their
/// venue's tracker directly, so this lock is taken only by scrapes, API calls and listing changes.
#[derive(Debug, Default)]
pub struct Trackers {
    venues: RwLock<Vec<(Venue, Arc<Tracker>)>>,
    clock: Arc<ClockOffsets>,
    restarts: Arc<crate::supervise::Restarts>,
    shard: std::sync::OnceLock<crate::shard::Shard>,
}

impl Trackers {
    /// No venue yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The clock offsets every tracker of the process shares.
    pub fn clock(&self) -> Arc<ClockOffsets> {
        self.clock.clone()
    }

    /// The process's task restarts after a panic.
    pub fn restarts(&self) -> Arc<crate::supervise::Restarts> {
        self.restarts.clone()
    }

    /// Records the process's shard (`MARKETFEED_SHARD`), once, for the metrics.
    pub fn set_shard(&self, shard: crate::shard::Shard) {
        let _ = self.shard.set(shard);
    }

    /// The process's shard, when the symbols are split over several processes.
    pub fn shard(&self) -> Option<crate::shard::Shard> {
        self.shard.get().copied()
    }

    /// Sets (or replaces) a venue's tracker, keeping venues in label order.
    pub fn set(&self, venue: Venue, tracker: Arc<Tracker>) {
        if let Ok(mut venues) = self.venues.write() {
            match venues.iter_mut().find(|(v, _)| *v == venue) {
                Some(entry) => entry.1 = tracker,
                None => {
                    venues.push((venue, tracker));
                    venues.sort_by_key(|(v, _)| *v);
                }
            }
        }
    }

    /// A venue's tracker.
    pub fn get(&self, venue: Venue) -> Option<Arc<Tracker>> {
        let venues = self.venues.read().ok()?;
        venues
            .iter()
            .find(|(v, _)| *v == venue)
            .map(|(_, t)| t.clone())
    }

    /// Every venue with its tracker, in venue order.
    pub fn venues(&self) -> Vec<(Venue, Arc<Tracker>)> {
        self.venues.read().map(|v| v.clone()).unwrap_or_default()
    }

    /// Every tracker, in venue order.
    pub fn all(&self) -> Vec<Arc<Tracker>> {
        self.venues
            .read()
            .map(|v| v.iter().map(|(_, t)| t.clone()).collect())
            .unwrap_or_default()
    }
}
