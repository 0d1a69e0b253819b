//! The only code that touches an exchange socket: connect, subscribe, heartbeats, watchdogs, reconnects.
//!
//! One [`Connection`] task per WebSocket. Each session runs in [`session`]; this file owns the reconnect loop,
//! its backoff and the connection-attempt budget. Wire formats come from [`crate::venue`]; freshness goes
//! to the [`Tracker`]. Knows nothing of Prometheus or HTTP.

mod connect;
mod limiter;
pub mod lookup;
mod session;
mod session_core;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub use limiter::ConnectLimiter;

use crate::shutdown::stopped;

use crate::backoff::Backoff;
use crate::model::{ChannelKind, Venue};
use crate::repeat::{Outages, Report, human};
use crate::tracker::{Reason, Tracker};
use crate::venue::Policy;

/// Timing of the feed that is ours to choose rather than the venue's.
#[derive(Debug, Clone)]
pub struct FeedSettings {
    /// No data message at all on a connection for this long reconnects it (`MARKETFEED_IDLE_TIMEOUT`).
    pub idle_timeout: Duration,
    /// One subscription silent this long while its connection flows is resubscribed (`MARKETFEED_RESUBSCRIBE_AFTER`).
    pub resubscribe_after: Duration,
    /// Reconnect delays.
    pub backoff: Backoff,
    /// Delays before asking again for a subscription the venue refused, on the same connection (drawn from the
    /// upper half of each ceiling, so a refusal is never retried at once).
    pub refusal_backoff: Backoff,
    /// A session must stay up this long before the backoff resets, so a server that accepts and then drops
    /// us at once is still retried ever more slowly.
    pub stable_after: Duration,
    /// TCP + TLS + WebSocket handshake deadline.
    pub connect_timeout: Duration,
    /// A subscribe request unanswered this long ends the session as `subscribe_failed`.
    pub ack_timeout: Duration,
    /// How often watchdogs are checked and queued requests considered.
    pub tick: Duration,
}

impl FeedSettings {
    /// The defaults for everything not configured.
    pub fn new(idle_timeout: Duration, resubscribe_after: Duration) -> Self {
        Self {
            idle_timeout,
            resubscribe_after,
            backoff: Backoff::default(),
            // 10 s doubling to 10 min: a symbol briefly unknown is back within seconds, one the venue keeps
            // refusing costs six requests an hour.
            refusal_backoff: Backoff {
                base: Duration::from_secs(10),
                cap: Duration::from_secs(600),
            },
            stable_after: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            ack_timeout: Duration::from_secs(10),
            tick: Duration::from_millis(100),
        }
    }
}

/// One subscription as the connection sees it.
#[derive(Debug, Clone)]
pub struct Stream {
    /// The wire key (`btcusdt@aggTrade`, `orderbook.1.BTCUSDT`).
    pub key: String,
    /// Its tracker slot.
    pub slot: usize,
    /// How to decode it.
    pub kind: ChannelKind,
}

/// One WebSocket connection and everything it needs to run on its own.
pub struct Connection {
    /// Global index in the tracker's connection list.
    pub id: usize,
    /// The venue.
    pub venue: Venue,
    /// Index within the venue (the `connection` label).
    pub index: usize,
    /// Full URL including the route.
    pub url: String,
    /// What it subscribes.
    pub streams: Vec<Stream>,
    /// The venue's limits and heartbeat.
    pub policy: Policy,
    /// Our timing.
    pub settings: FeedSettings,
    /// Where freshness goes.
    pub tracker: Arc<Tracker>,
    /// Connection-attempt budget shared with the other connections to the same exchange.
    pub limiter: Arc<ConnectLimiter>,
    /// The process's runs of failures, so a venue that stays unreachable logs a first line and slow summaries.
    pub outages: Arc<Outages>,
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The process is shutting down.
    Shutdown,
    /// Its successor took over its streams (make before break).
    Handover,
    /// The session ended for this reason; `healthy` when it had stayed up for `stable_after`.
    Lost { reason: Reason, healthy: bool },
}

impl Connection {
    /// Keeps the connection alive until `shutdown` turns true, its first session starting as `start`.
    pub async fn run(&self, start: Start, mut shutdown: watch::Receiver<bool>) {
        let mut attempt = 0u32;
        // A successor that took over, to run as the current session next.
        let mut carried: Option<Running<'_>> = None;
        // In shadow, every session until the switch is one: a shadow session the venue drops is retried in shadow
        // and must still prove it delivers before the new set takes over.
        let shadow = match start {
            Start::Shadow { live, ready } => Some((live, ready)),
            Start::Live => None,
        };
        loop {
            let mut current = match carried.take() {
                Some(successor) => successor,
                None => {
                    let control = |handover| match &shadow {
                        Some((live, ready)) if !*live.borrow() => session::Control {
                            live: live.clone(),
                            handover,
                            ready: Some(ready.clone()),
                        },
                        _ => session::Control {
                            handover,
                            ..session::Control::live()
                        },
                    };
                    self.start_session(control, attempt, &shutdown)
                }
            };
            let ending = self
                .run_until_replaced(&mut current, &mut carried, &shutdown)
                .await;
            let reason = match ending {
                Ending::Shutdown => return,
                Ending::Handover => {
                    self.tracker.rolled_over(self.id, Reason::Scheduled);
                    tracing::info!(
                        venue = %self.venue, connection = self.index,
                        "connection lifetime near its end: a new connection took over without a gap"
                    );
                    attempt = 0;
                    continue;
                }
                Ending::Lost { reason, healthy } => {
                    if healthy {
                        attempt = 0;
                    }
                    reason
                }
            };
            if carried.is_some() {
                // A successor already carries the streams: nothing to reconnect, only why this one ended to count.
                self.tracker.rolled_over(self.id, reason);
                continue;
            }
            self.tracker.connection_down(self.id, reason);
            let delay = if reason.is_planned() {
                attempt = 0;
                Duration::ZERO
            } else {
                let delay = self.settings.backoff.delay(attempt, fastrand::f64());
                attempt = attempt.saturating_add(1);
                delay
            };
            if reason != Reason::HandshakeFailed {
                tracing::info!(
                    venue = %self.venue, connection = self.index, reason = reason.as_str(),
                    retry_in = %human(delay), "connection ended, reconnecting"
                );
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                () = stopped(&mut shutdown) => return,
            }
        }
    }

    /// A session (connect attempt number `attempt` included) as a future, with the handle that tells it a
    /// successor took over.
    fn start_session(
        &self,
        control: impl FnOnce(watch::Receiver<bool>) -> session::Control,
        attempt: u32,
        shutdown: &watch::Receiver<bool>,
    ) -> Running<'_> {
        let (handover, handover_rx) = watch::channel(false);
        let control = control(handover_rx);
        let mut shutdown = shutdown.clone();
        let future = async move {
            tokio::select! {
                _ = self.limiter.acquire() => {}
                () = stopped(&mut shutdown) => return Ending::Shutdown,
            }
            self.session(control, attempt, shutdown).await
        };
        Running {
            future: Box::pin(future),
            handover,
            live: None,
            started: Instant::now(),
        }
    }

    /// Runs `current` to its end. Ahead of the venue's connection lifetime a successor connects, subscribes and
    /// proves it delivers while `current` still records; then the successor goes live, `current` closes, and the
    /// successor is left in `carried` to run next.
    async fn run_until_replaced<'a>(
        &'a self,
        current: &mut Running<'a>,
        carried: &mut Option<Running<'a>>,
        shutdown: &watch::Receiver<bool>,
    ) -> Ending {
        let rollover_at = self
            .policy
            .max_connection_age
            .map(|max| current.started + max.saturating_sub(rollover_lead(max)));
        let mut successor: Option<Running<'a>> = None;
        let mut ready: Option<watch::Receiver<bool>> = None;
        let mut tried = false;
        loop {
            tokio::select! {
                ending = &mut current.future => {
                    if let Some(mut successor) = successor.take()
                        && ending != Ending::Shutdown
                    {
                        // Gone before the handover (the venue closed it early, say): the successor goes live now.
                        successor.go_live();
                        *carried = Some(successor);
                    }
                    return ending;
                }
                () = sleep_until_some(rollover_at), if !tried && rollover_at.is_some() => {
                    tried = true;
                    let (live, live_rx) = watch::channel(false);
                    let (ready_tx, ready_rx) = watch::channel(false);
                    let ready_tx = Arc::new(ready_tx);
                    let mut next = self.start_session(
                        |handover| session::Control { live: live_rx, handover, ready: Some(ready_tx) },
                        0,
                        shutdown,
                    );
                    next.live = Some(live);
                    successor = Some(next);
                    ready = Some(ready_rx);
                }
                ending = poll_some(successor.as_mut().map(|s| &mut s.future)), if successor.is_some() => {
                    // The successor failed before taking over; this session carries on to its own end.
                    tracing::debug!(venue = %self.venue, connection = self.index, ?ending, "successor connection failed");
                    successor = None;
                    ready = None;
                }
                answered = turned_true(ready.as_mut()), if ready.is_some() => {
                    ready = None;
                    if answered && let Some(next) = successor.as_mut() {
                        next.go_live();
                        let _ = current.handover.send(true);
                    }
                }
            }
        }
    }

    /// Opens one session, bounded by the connect deadline, and runs it under `control`.
    async fn session(
        &self,
        control: session::Control,
        attempt: u32,
        mut shutdown: watch::Receiver<bool>,
    ) -> Ending {
        let key = self.outage_key();
        let outcome = tokio::select! {
            outcome = connect::connect(&self.url, ws_config(), self.settings.connect_timeout) => outcome,
            () = stopped(&mut shutdown) => return Ending::Shutdown,
        };
        match outcome {
            Ok((ws, _response)) => {
                if let Some(outage) = self.outages.recovered(&key, std::time::Instant::now()) {
                    tracing::info!(
                        venue = %self.venue, connection = self.index, failed_attempts = outage.failures,
                        outage = %human(outage.lasted), "connected again after failed attempts"
                    );
                }
                session::Session::new(self, control)
                    .run(ws, &mut shutdown)
                    .await
            }
            Err(e) => self.handshake_failed(&e, attempt, &key),
        }
    }

    fn outage_key(&self) -> String {
        self.name()
    }

    /// `binance spot connection 0`: how logs name it.
    pub fn name(&self) -> String {
        format!("{} connection {}", self.venue, self.index)
    }

    /// The bookkeeping of a run that ended in a panic: the connection is down, its acks gone.
    pub fn panicked(&self) {
        self.tracker.connection_down(self.id, Reason::Error);
    }

    /// Counts a failed attempt by cause and logs it: in full the first time (and when the cause changes), then
    /// only in the process's shared summary of what keeps failing.
    fn handshake_failed(&self, error: &connect::ConnectError, attempt: u32, key: &str) -> Ending {
        self.tracker.connect_failed(error.cause);
        let cause = error.cause.label();
        match self.outages.failed(key, &cause, std::time::Instant::now()) {
            Report::First | Report::Changed => tracing::warn!(
                venue = %self.venue, connection = self.index, url = %self.url, cause = %cause,
                error = %error.detail, next_attempt_within = %human(self.settings.backoff.delay(attempt, 1.0)),
                "connect failed; retrying with backoff (repeats go into a summary every 5m)"
            ),
            Report::Summary { failing, detail } => {
                tracing::warn!(failing, %detail, "still failing (summary every 5m)")
            }
            Report::Quiet => {}
        }
        Ending::Lost {
            reason: Reason::HandshakeFailed,
            healthy: false,
        }
    }
}

/// How a connection's first session starts.
pub enum Start {
    /// Recording at once.
    Live,
    /// Connected and subscribed but recording nothing until `live` turns true; `ready` fires when every stream
    /// is answered and every scheduled one delivered (a `*` market's next set of symbols, made before the old
    /// set is broken).
    Shadow {
        /// Turns true when this connection takes over.
        live: watch::Receiver<bool>,
        /// Turned true once it is ready to take over (by whichever of its sessions gets there).
        ready: Arc<watch::Sender<bool>>,
    },
}

/// A session under way: its future (connect included), the switch that tells it a successor took over, and for a
/// successor, the switch that makes it record.
struct Running<'a> {
    future: Pin<Box<dyn Future<Output = Ending> + Send + 'a>>,
    handover: watch::Sender<bool>,
    live: Option<watch::Sender<bool>>,
    started: Instant,
}

impl Running<'_> {
    fn go_live(&mut self) {
        if let Some(live) = self.live.take() {
            let _ = live.send(true);
        }
    }
}

/// How long before the venue's connection lifetime a successor starts: a minute, or a quarter of a short
/// lifetime (tests).
fn rollover_lead(max_age: Duration) -> Duration {
    Duration::from_secs(60).min(max_age / 4)
}

/// Sleeps until `at`, forever when None.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// True once the flag turns true, false if its sender is gone first; forever without a flag (for a `select!`
/// branch guarded by its presence).
async fn turned_true(flag: Option<&mut watch::Receiver<bool>>) -> bool {
    match flag {
        Some(flag) => flag.wait_for(|ready| *ready).await.is_ok(),
        None => std::future::pending().await,
    }
}

/// Awaits the future when there is one, forever otherwise (for a `select!` branch guarded by its presence).
async fn poll_some<F: Future + Unpin>(future: Option<&mut F>) -> F::Output {
    match future {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}

/// WebSocket limits of every connection.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        // Real feeds trickle one small frame per read and tungstenite zero-fills the read buffer.
        .read_buffer_size(16 * 1024)
        // Bounds memory against a hostile or broken peer; the largest real frames (all-market arrays)
        // are a few hundred KiB.
        .max_message_size(Some(8 << 20))
        .max_frame_size(Some(8 << 20))
}
