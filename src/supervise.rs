//! Long-running tasks that survive their own panics. A feed, REST or listing task that panics is logged with its
//! panic message, counted in `marketfeed_task_restarts_total{task}` and started again after a back-off (1 s
//! doubling to 60 s, reset once a run lasted a minute), never silently lost. Knows nothing of what the tasks do.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::backoff::Backoff;
use crate::repeat::human;
use crate::shutdown::stopped;

/// The kinds of supervised task: the `task` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// One WebSocket connection of a venue.
    Feed,
    /// A `*` market's listing follower.
    Listing,
    /// An exchange's REST clock-offset poller.
    RestClock,
    /// A venue's REST instrument-list poller.
    RestDiscovery,
    /// A venue's REST cross-check of stale symbols.
    RestCrossCheck,
}

impl Task {
    /// Every kind, in label order.
    pub const ALL: [Task; 5] = [
        Task::Feed,
        Task::Listing,
        Task::RestClock,
        Task::RestCrossCheck,
        Task::RestDiscovery,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Feed => "feed",
            Task::Listing => "listing",
            Task::RestClock => "rest_clock",
            Task::RestDiscovery => "rest_discovery",
            Task::RestCrossCheck => "rest_crosscheck",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Restarts after a panic, per kind of task.
#[derive(Debug, Default)]
pub struct Restarts([AtomicU64; Task::ALL.len()]);

impl Restarts {
    /// Restarts of `task` so far.
    pub fn get(&self, task: Task) -> u64 {
        self.0[task.index()].load(Relaxed)
    }

    fn count(&self, task: Task) {
        self.0[task.index()].fetch_add(1, Relaxed);
    }
}

/// A run that lasted this long resets the back-off.
const STABLE_AFTER: Duration = Duration::from_secs(60);

/// Spawns `make(restarts so far)` and starts it again whenever it panics, until it returns or `shutdown` turns
/// true during a back-off. `what` names the instance in the log line (`binance spot connection 0`).
pub fn spawn<F, Fut>(
    task: Task,
    what: String,
    restarts: Arc<Restarts>,
    mut shutdown: watch::Receiver<bool>,
    mut make: F,
) -> JoinHandle<()>
where
    F: FnMut(u32) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let backoff = Backoff::default();
        let mut attempt = 0u32;
        let mut restarted = 0u32;
        loop {
            let started = Instant::now();
            let run = tokio::spawn(make(restarted));
            let panic = match run.await {
                Ok(()) => return,
                Err(e) if e.is_panic() => panic_message(e.into_panic()),
                // Cancelled: the runtime is shutting down.
                Err(_) => return,
            };
            restarts.count(task);
            restarted = restarted.saturating_add(1);
            if started.elapsed() >= STABLE_AFTER {
                attempt = 0;
            }
            let delay = backoff.delay(attempt, 1.0);
            attempt = attempt.saturating_add(1);
            tracing::error!(
                task = task.as_str(), %what, panic = %panic, restart_in = %human(delay),
                "task panicked; restarting it (counted in marketfeed_task_restarts_total)"
            );
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = stopped(&mut shutdown) => return,
            }
        }
    })
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[tokio::test(start_paused = true)]
    async fn a_panicking_task_is_counted_and_started_again_until_it_returns() {
        let restarts = Arc::new(Restarts::default());
        let runs = Arc::new(AtomicU32::new(0));
        let seen = runs.clone();
        let (_stop, shutdown) = watch::channel(false);
        let started = tokio::time::Instant::now();
        spawn(
            Task::Feed,
            "test".into(),
            restarts.clone(),
            shutdown,
            move |restarted| {
                let runs = seen.clone();
                async move {
                    assert_eq!(runs.fetch_add(1, Relaxed), restarted);
                    if restarted < 2 {
                        panic!("run {restarted} fails");
                    }
                }
            },
        )
        .await
        .unwrap();
        assert_eq!(runs.load(Relaxed), 3);
        assert_eq!(restarts.get(Task::Feed), 2);
        assert_eq!(restarts.get(Task::RestClock), 0);
        // Backed off 1 s, then 2 s.
        assert_eq!(started.elapsed().as_secs(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_during_the_back_off_ends_it() {
        let restarts = Arc::new(Restarts::default());
        let (stop, shutdown) = watch::channel(false);
        let handle = spawn(
            Task::RestClock,
            "test".into(),
            restarts.clone(),
            shutdown,
            |_| async { panic!("always") },
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.send(true).unwrap();
        handle.await.unwrap();
        assert_eq!(restarts.get(Task::RestClock), 1);
    }

    #[test]
    fn labels_are_in_order_and_distinct() {
        let labels: Vec<&str> = Task::ALL.iter().map(|t| t.as_str()).collect();
        let mut sorted = labels.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(labels, sorted);
    }
}
