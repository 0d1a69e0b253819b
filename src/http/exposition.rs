//! `/metrics` under load: one render at a time, off the runtime's workers, shared by every scrape that was
//! waiting for it, and compressed once, while it is written.
//!
//! A render walks every subscription (about 6 ms at 10 000) and is CPU work; run on a runtime worker, a thousand
//! concurrent scrapes would occupy every worker and delay the probes and ingest. Here the render runs on a thread
//! of its own behind a lock: a scrape that arrives while one is in progress waits for the next, and every scrape
//! waiting when a render starts gets that render (it began after they asked, so it is as fresh as one of their
//! own). The result is dropped once the last waiter has it, so nothing large stays in memory.
//!
//! The text is written in pieces cut between families. When the scrape that starts a render asks for gzip (as
//! Prometheus always does), each piece goes to a second thread as soon as it is written and is compressed there
//! while the next is written: the answer is ready about one piece's compression after the text, instead of a whole
//! compression after it. The pieces are sent as they are, without being joined into one buffer.
//!
//! Two dedicated threads rather than the blocking pool: their number is fixed, and the process's allocator keeps
//! one arena (decision 35), so megabytes freed on a dozen pool threads cannot pile up in a dozen arenas.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};

use crate::metrics::Metrics;

/// Where a render cuts its text: big enough that a piece is worth a hand-over, small enough that compression
/// starts early (a family of 10 000 subscriptions is about a megabyte).
const PIECE: usize = 256 << 10;

/// One render and, once someone asked, its gzip form.
pub(super) struct Rendered {
    started: Instant,
    /// The text exposition, in pieces.
    pieces: Vec<Bytes>,
    gzip: OnceLock<Option<Bytes>>,
}

impl Rendered {
    /// The text exposition as a response body of known length.
    pub(super) fn body(&self) -> Body {
        Body::new(Pieces(self.pieces.iter().cloned().collect()))
    }

    /// The length of the text exposition.
    pub(super) fn len(&self) -> usize {
        self.pieces.iter().map(Bytes::len).sum()
    }

    /// The gzip form, compressed by the first caller that needs it (already done when the render was asked for
    /// with gzip); None if compression failed.
    pub(super) async fn gzip(self: &Arc<Self>) -> Option<Bytes> {
        if let Some(done) = self.gzip.get() {
            return done.clone();
        }
        let this = self.clone();
        RENDER
            .run(move || {
                this.gzip
                    .get_or_init(|| {
                        super::gzip::compress_pieces(&this.pieces, this.len()).map(Bytes::from)
                    })
                    .clone()
            })
            .await
            .flatten()
    }
}

/// A body of pieces sent in order, with its exact length (so the answer has a `Content-Length`).
struct Pieces(VecDeque<Bytes>);

impl http_body::Body for Pieces {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|piece| Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.0.iter().map(|p| p.len() as u64).sum())
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// A named thread that runs jobs in order, started on first use.
struct Worker {
    name: &'static str,
    sender: OnceLock<Option<mpsc::Sender<Job>>>,
}

/// Renders, and compresses what was rendered without gzip.
static RENDER: Worker = Worker::new("exposition");
/// Compresses a render's pieces while they are written.
static COMPRESS: Worker = Worker::new("exposition-gzip");

impl Worker {
    const fn new(name: &'static str) -> Self {
        Self {
            name,
            sender: OnceLock::new(),
        }
    }

    /// Queues `job`; false if the thread could not be started or is gone.
    fn submit(&self, job: Job) -> bool {
        let sender = self.sender.get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            let started = std::thread::Builder::new()
                .name(self.name.into())
                .spawn(move || {
                    while let Ok(job) = rx.recv() {
                        job();
                    }
                });
            match started {
                Ok(_) => Some(tx),
                Err(e) => {
                    tracing::error!(error = %e, thread = self.name, "cannot start an exposition thread");
                    None
                }
            }
        });
        sender.as_ref().is_some_and(|tx| tx.send(job).is_ok())
    }

    /// Runs `job` on the thread and waits for its result; None if the thread is gone.
    async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let queued = self.submit(Box::new(move || {
            let _ = reply.send(job());
        }));
        if !queued {
            return None;
        }
        answer.await.ok()
    }
}

/// Renders the text in pieces and, with `gzip`, compresses each piece on the compression thread while the next is
/// written (on this thread if that one is not available).
fn render(metrics: &Metrics, gzip: bool) -> Rendered {
    render_cut(metrics, gzip, PIECE)
}

fn render_cut(metrics: &Metrics, gzip: bool, piece: usize) -> Rendered {
    let started = Instant::now();
    let mut pieces = Vec::new();
    let compressed = OnceLock::new();
    if !gzip {
        metrics.render_pieces(piece, &mut |text| pieces.push(Bytes::from(text)));
        return Rendered {
            started,
            pieces,
            gzip: compressed,
        };
    }
    let (feed, fed) = mpsc::channel::<Bytes>();
    let (done, result) = mpsc::sync_channel(1);
    let expected = metrics.expected_len();
    let pipelined = COMPRESS.submit(Box::new(move || {
        let _ = done.send(super::gzip::compress_pieces(fed, expected));
    }));
    metrics.render_pieces(piece, &mut |text| {
        let text = Bytes::from(text);
        if pipelined {
            let _ = feed.send(text.clone());
        }
        pieces.push(text);
    });
    drop(feed);
    let gzip = match pipelined {
        true => result.recv().ok().flatten(),
        false => super::gzip::compress_pieces(&pieces, expected),
    };
    let _ = compressed.set(gzip.map(Bytes::from));
    Rendered {
        started,
        pieces,
        gzip: compressed,
    }
}

/// The render and compression a gzip scrape of `metrics` gets, on the exposition's threads: the text's length and
/// the compressed answer. For the benchmark.
pub async fn render_gzip(metrics: Arc<Metrics>) -> Option<(usize, Bytes)> {
    let rendered = RENDER.run(move || render(&metrics, true)).await?;
    Some((rendered.len(), rendered.gzip.get()?.clone()?))
}

/// The render in progress or just finished, shared with the scrapes that waited for it.
#[derive(Default)]
pub(super) struct Exposition {
    last: tokio::sync::Mutex<Option<Arc<Rendered>>>,
    waiting: AtomicUsize,
}

impl Exposition {
    /// A render that started no earlier than this call, compressed while it was written when `gzip` and the render
    /// is this call's own.
    pub(super) async fn current(&self, metrics: &Arc<Metrics>, gzip: bool) -> Arc<Rendered> {
        let arrived = Instant::now();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut last = self.last.lock().await;
        let rendered = match last.as_ref().filter(|r| r.started >= arrived) {
            Some(fresh) => fresh.clone(),
            None => {
                let metrics = metrics.clone();
                let rendered = RENDER.run(move || render(&metrics, gzip)).await;
                let rendered = Arc::new(rendered.unwrap_or_else(|| Rendered {
                    started: Instant::now(),
                    pieces: Vec::new(),
                    gzip: OnceLock::new(),
                }));
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

    fn metrics(process: bool) -> Arc<Metrics> {
        let metrics = Metrics::new(
            Arc::new(Trackers::new()),
            Arc::new(RestStats::new(&[])),
            BuildInfo::current(),
            process,
        );
        Arc::new(metrics.unwrap())
    }

    async fn text(rendered: &Rendered) -> Vec<u8> {
        let body = rendered.body();
        let exact = http_body::Body::size_hint(&body).exact();
        let text = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        assert_eq!(exact, Some(text.len() as u64), "the body's length is told");
        assert_eq!(rendered.len(), text.len());
        text.to_vec()
    }

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut text).unwrap();
        text
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_scrapes_share_renders_and_nothing_is_kept() {
        let metrics = metrics(true);
        let exposition = Arc::new(Exposition::default());
        let scrapes: Vec<_> = (0..200)
            .map(|i| {
                let (exposition, metrics) = (exposition.clone(), metrics.clone());
                tokio::spawn(async move { exposition.current(&metrics, i % 2 == 0).await })
            })
            .collect();
        let mut renders: Vec<Arc<Rendered>> = Vec::new();
        for scrape in scrapes {
            let rendered = scrape.await.unwrap();
            assert!(text(&rendered).await.starts_with(b"# HELP"));
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
        // Compressed once per render, whether a gzip scrape started it or joined it, and it decompresses to the text.
        for rendered in &renders {
            let gz = rendered.gzip().await.unwrap();
            assert_eq!(rendered.gzip().await.unwrap().as_ptr(), gz.as_ptr());
            assert_eq!(gunzip(&gz), text(rendered).await);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pieces_are_whole_families_compressed_as_they_are_written() {
        // The process families would change between two renders; these do not.
        let metrics = metrics(false);
        let whole = metrics.render();
        for gzip in [true, false] {
            let m = metrics.clone();
            // Every family a piece of its own.
            let rendered = RENDER.run(move || render_cut(&m, gzip, 1)).await.unwrap();
            assert_eq!(rendered.pieces.len(), whole.matches("# HELP").count());
            for piece in &rendered.pieces {
                assert!(piece.starts_with(b"# HELP "), "{piece:?}");
                assert!(piece.ends_with(b"\n"), "{piece:?}");
            }
            assert_eq!(text(&rendered).await, whole.as_bytes());
            // Compressed during the render exactly when asked for, and to the same text either way.
            assert_eq!(rendered.gzip.get().is_some(), gzip);
            let gz = Arc::new(rendered).gzip().await.unwrap();
            assert_eq!(gunzip(&gz), whole.as_bytes());
        }
        let (len, gz) = render_gzip(metrics).await.unwrap();
        assert_eq!((len, gunzip(&gz)), (whole.len(), whole.into_bytes()));
    }
}
