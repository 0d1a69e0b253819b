//! Collapses failures that repeat (venues unreachable for an hour) into a few log lines: each failing thing's
//! first failure in full, a full line again when its failure changes, one line when it recovers, and, for
//! everything still failing, one shared summary line at most every [`SUMMARY_EVERY`].
//!
//! Owns the bookkeeping only; callers choose the words and the level. Shared by the feeds and the REST side of
//! one exporter, so five unreachable markets make one summary line, not five.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The slowest cadence of the summary line while anything keeps failing.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(300);

/// What to log for one failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// The first failure of this thing: log it in full.
    First,
    /// A failure unlike its last one (another cause): log it in full.
    Changed,
    /// Time for the summary of everything failing: log this one line.
    Summary {
        /// How many things are failing.
        failing: usize,
        /// `key: what ×n over 5m 19s; ...`, in key order.
        detail: String,
    },
    /// Already reported: log nothing.
    Quiet,
}

/// The end of one thing's run of failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    /// Failures in the run.
    pub failures: u64,
    /// From the first failure to the recovery.
    pub lasted: Duration,
}

/// The runs of failures of one process, by key (`binance/spot connection 0`, `REST api.bybit.com`).
#[derive(Debug, Default)]
pub struct Outages {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    runs: BTreeMap<String, Run>,
    /// When the last summary was logged, or the first run of the current outage began.
    summarised: Option<Instant>,
}

#[derive(Debug)]
struct Run {
    started: Instant,
    failures: u64,
    what: String,
}

impl Outages {
    /// Records a failure of `key`, described by `what` (equal descriptions are "the same failure"), at `now`.
    pub fn failed(&self, key: &str, what: &str, now: Instant) -> Report {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let summarised = *state.summarised.get_or_insert(now);
        match state.runs.get_mut(key) {
            None => {
                let run = Run {
                    started: now,
                    failures: 1,
                    what: what.to_owned(),
                };
                state.runs.insert(key.to_owned(), run);
                return Report::First;
            }
            Some(run) => {
                run.failures += 1;
                if run.what != what {
                    what.clone_into(&mut run.what);
                    return Report::Changed;
                }
            }
        }
        if now.saturating_duration_since(summarised) < SUMMARY_EVERY {
            return Report::Quiet;
        }
        state.summarised = Some(now);
        let mut detail = String::new();
        for (key, run) in &state.runs {
            if !detail.is_empty() {
                detail.push_str("; ");
            }
            let _ = write!(
                detail,
                "{key}: {} ×{} over {}",
                run.what,
                run.failures,
                human(now.saturating_duration_since(run.started))
            );
        }
        Report::Summary {
            failing: state.runs.len(),
            detail,
        }
    }

    /// Ends `key`'s run at `now`; None when it was not failing.
    pub fn recovered(&self, key: &str, now: Instant) -> Option<Recovery> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let run = state.runs.remove(key)?;
        if state.runs.is_empty() {
            state.summarised = None;
        }
        Some(Recovery {
            failures: run.failures,
            lasted: now.saturating_duration_since(run.started),
        })
    }
}

/// A duration for a log field, rounded to what a reader needs: `3m 12s`, `850ms`, `2h 5m`.
pub fn human(d: Duration) -> String {
    let rounded = if d >= Duration::from_secs(3600) {
        Duration::from_secs(d.as_secs() / 60 * 60)
    } else if d >= Duration::from_secs(10) {
        Duration::from_secs(d.as_secs())
    } else if d >= Duration::from_secs(1) {
        Duration::from_millis(d.as_millis() as u64 / 100 * 100)
    } else {
        Duration::from_millis(d.as_millis() as u64)
    };
    humantime::format_duration(rounded).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn everything_failing_is_one_summary_line_every_five_minutes() {
        let t0 = Instant::now();
        let o = Outages::default();
        assert_eq!(o.failed("ws a", "dns", t0), Report::First);
        assert_eq!(o.failed("ws b", "dns", t0 + S), Report::First);
        for s in 2..300 {
            let key = if s % 2 == 0 { "ws a" } else { "ws b" };
            assert_eq!(o.failed(key, "dns", t0 + s * S), Report::Quiet, "{s}");
        }
        assert_eq!(
            o.failed("ws b", "dns", t0 + 301 * S),
            Report::Summary {
                failing: 2,
                detail: "ws a: dns ×150 over 5m 1s; ws b: dns ×151 over 5m".to_owned()
            }
        );
        // The next summary is five minutes later, whoever fails.
        assert_eq!(o.failed("ws a", "dns", t0 + 302 * S), Report::Quiet);
        assert!(matches!(
            o.failed("ws a", "dns", t0 + 601 * S),
            Report::Summary { .. }
        ));
    }

    #[test]
    fn a_changed_failure_is_logged_and_a_recovery_ends_the_run() {
        let t0 = Instant::now();
        let o = Outages::default();
        o.failed("ws a", "dns", t0);
        assert_eq!(o.failed("ws a", "refused", t0 + S), Report::Changed);
        assert_eq!(o.failed("ws a", "refused", t0 + 2 * S), Report::Quiet);
        assert_eq!(
            o.recovered("ws a", t0 + 3 * S),
            Some(Recovery {
                failures: 3,
                lasted: 3 * S
            })
        );
        assert_eq!(o.recovered("ws a", t0 + 4 * S), None);
        // A new outage starts its own clock: no summary from the old one's time.
        assert_eq!(o.failed("ws a", "dns", t0 + 400 * S), Report::First);
        assert_eq!(o.failed("ws a", "dns", t0 + 401 * S), Report::Quiet);
    }

    #[test]
    fn durations_read_like_a_person_wrote_them() {
        assert_eq!(human(Duration::from_millis(850)), "850ms");
        assert_eq!(human(Duration::from_millis(2345)), "2s 300ms");
        assert_eq!(human(Duration::from_millis(192_400)), "3m 12s");
        assert_eq!(human(Duration::from_secs(7_530)), "2h 5m");
    }
}
