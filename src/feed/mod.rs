//! The only code that touches an exchange socket: connect, subscribe, heartbeats, watchdogs, reconnects.
//!
//! One [`Connection`] task per WebSocket. Each session runs in [`session`]; this file owns the reconnect loop,
//! its backoff and the connection-attempt budget. Wire formats come from [`crate::venue`]; freshness goes
//! to the [`Tracker`]. Knows nothing of Prometheus or HTTP.

mod connect;
mod limiter;
mod session;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub use limiter::ConnectLimiter;

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
    /// The session ended for this reason; `healthy` when it had stayed up for `stable_after`.
    Lost { reason: Reason, healthy: bool },
}

impl Connection {
    /// Keeps the connection alive until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let config = WebSocketConfig::default()
            // Real feeds trickle one small frame per read and tungstenite zero-fills the read buffer.
            .read_buffer_size(16 * 1024)
            // Bounds memory against a hostile or broken peer; the largest real frames (all-market arrays)
            // are a few hundred KiB.
            .max_message_size(Some(8 << 20))
            .max_frame_size(Some(8 << 20));
        let mut attempt = 0u32;
        let key = format!("{} connection {}", self.venue, self.index);
        loop {
            tokio::select! {
                _ = self.limiter.acquire() => {}
                () = stopped(&mut shutdown) => return,
            }
            let outcome = tokio::select! {
                outcome = connect::connect(&self.url, config, self.settings.connect_timeout) => outcome,
                () = stopped(&mut shutdown) => return,
            };
            let ending = match outcome {
                Ok((ws, _response)) => {
                    if let Some(outage) = self.outages.recovered(&key, std::time::Instant::now()) {
                        tracing::info!(
                            venue = %self.venue, connection = self.index, failed_attempts = outage.failures,
                            outage = %human(outage.lasted), "connected again after failed attempts"
                        );
                    }
                    session::Session::new(&self).run(ws, &mut shutdown).await
                }
                Err(e) => self.handshake_failed(&e, attempt, &key),
            };
            let Ending::Lost { reason, healthy } = ending else {
                return;
            };
            self.tracker.connection_down(self.id, reason);
            let delay = if reason.is_planned() {
                attempt = 0;
                Duration::ZERO
            } else {
                if healthy {
                    attempt = 0;
                }
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

/// Resolves once the shutdown flag is set (or its sender is gone). Returns `()` so no watch guard, which is
/// not `Send`, is held inside a `select!`.
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
