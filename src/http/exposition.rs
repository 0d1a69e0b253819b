//! `/metrics` under load: one render at a time, off the runtime's workers, shared by every scrape that was
//! waiting for it, and compressed once.
//!
//! A render walks every subscription (tens of milliseconds at 10 000) and is CPU work; run on a runtime worker,
//! a thousand concurrent scrapes would occupy every worker and delay the probes and ingest. Here the render runs
//! on the blocking pool behind a lock: a scrape that arrives while one is in progress waits for the next, and
//! every scrape waiting when a render starts gets that render (it began after they asked, so it is as fresh as
//! one of their own). The result is dropped once the last waiter has it, so nothing large stays in memory.
//!
//! Renders and compression run on one dedicated thread rather than the blocking pool: the allocator keeps a
//! separate arena per thread, and megabytes freed on a dozen pool threads would stay resident in a dozen arenas.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, mpsc};
use std::time::Instant;

use axum::body::Bytes;

use crate::metrics::Metrics;

/// One render and, once someone asked, its gzip form.
pub(super) struct Rendered {
    started: Instant,
    /// The text exposition.
    pub(super) text: Bytes,
    gzip: OnceLock<Option<Bytes>>,
}

impl Rendered {
    /// The gzip form, compressed by the first caller that needs it; None if compression failed.
    pub(super) async fn gzip(self: &Arc<Self>) -> Option<Bytes> {
        if let Some(done) = self.gzip.get() {
            return done.clone();
        }
        let this = self.clone();
        on_render_thread(move || {
            this.gzip
                .get_or_init(|| super::gzip::compress(&this.text).map(Bytes::from))
                .clone()
        })
        .await
        .flatten()
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// Runs `job` on the process's one render thread (started on first use) and waits for its result; None if the
/// thread is gone.
async fn on_render_thread<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    static THREAD: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let sender = THREAD.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let started = std::thread::Builder::new()
            .name("exposition".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job();
                }
            });
        if let Err(e) = started {
            tracing::error!(error = %e, "cannot start the exposition thread");
        }
        Mutex::new(tx)
    });
    let (reply, answer) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = reply.send(job());
    });
    let sent = sender
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .send(job);
    sent.ok()?;
    answer.await.ok()
}

/// The render in progress or just finished, shared with the scrapes that waited for it.
#[derive(Default)]
pub(super) struct Exposition {
    last: tokio::sync::Mutex<Option<Arc<Rendered>>>,
    waiting: AtomicUsize,
}

impl Exposition {
    /// A render that started no earlier than this call.
    pub(super) async fn current(&self, metrics: &Arc<Metrics>) -> Arc<Rendered> {
        let arrived = Instant::now();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut last = self.last.lock().await;
        let rendered = match last.as_ref().filter(|r| r.started >= arrived) {
            Some(fresh) => fresh.clone(),
            None => {
                let started = Instant::now();
                let metrics = metrics.clone();
                let text = on_render_thread(move || metrics.render())
                    .await
                    .unwrap_or_default();
                let rendered = Arc::new(Rendered {
                    started,
                    text: Bytes::from(text),
                    gzip: OnceLock::new(),
                });
                *last = Some(rendered.clone());
                rendered
            }
        };
        // The last waiter lets go of the shared copy; the responses keep their own references while they are sent.
        if self.waiting.fetch_sub(1, Ordering::SeqCst) == 1 {
            *last = None;
        }
        rendered
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::BuildInfo;
    use crate::rest::RestStats;
    use crate::tracker::Trackers;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_scrapes_share_renders_and_nothing_is_kept() {
        let metrics = Metrics::new(
            Arc::new(Trackers::new()),
            Arc::new(RestStats::new(&[])),
            BuildInfo::current(),
            true,
        )
        .unwrap();
        let metrics = Arc::new(metrics);
        let exposition = Arc::new(Exposition::default());
        let scrapes: Vec<_> = (0..200)
            .map(|_| {
                let (exposition, metrics) = (exposition.clone(), metrics.clone());
                tokio::spawn(async move { exposition.current(&metrics).await })
            })
            .collect();
        let mut renders: Vec<Arc<Rendered>> = Vec::new();
        for scrape in scrapes {
            let rendered = scrape.await.unwrap();
            assert!(rendered.text.starts_with(b"# HELP"));
            if !renders.iter().any(|r| Arc::ptr_eq(r, &rendered)) {
                renders.push(rendered);
            }
        }
        assert!(
            renders.len() < 200,
            "{} renders for 200 scrapes",
            renders.len()
        );
        assert!(
            exposition.last.lock().await.is_none(),
            "the last waiter let go"
        );
        // Compressed once per render, and it decompresses to the text.
        let first = &renders[0];
        let gz = first.gzip().await.unwrap();
        assert_eq!(first.gzip().await.unwrap().as_ptr(), gz.as_ptr());
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut text).unwrap();
        assert_eq!(text, first.text);
    }
}
