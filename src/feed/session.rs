//! One WebSocket session's I/O: frames from the socket into the [`Core`], the texts it asks for onto the socket,
//! pongs flushed, polite closes, and the handover to a successor. Every decision (pacing, acks, refusals,
//! repairs, watchdogs, why the session ends) is the core's.
//!
//! Owns the socket for exactly as long as one session; the reconnect loop around it is in the parent.

use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::connect::Socket;
pub(super) use super::session_core::Control;
use super::session_core::{BurstClock, Core, SystemClock};
use super::{Connection, Ending};
use crate::tracker::{Reason, unix_now};

/// Deadline for one write; a peer that stops reading must not wedge the session.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Frames handled after one wake-up before the session looks at its tick and stop signals again.
const BURST: usize = 64;

pub(super) struct Session<'c> {
    conn: &'c Connection,
    core: Core<'c>,
    /// Texts the core asked for on a tick, reused.
    out: Vec<String>,
}

impl<'c> Session<'c> {
    pub(super) fn new(conn: &'c Connection, control: Control) -> Self {
        Self {
            conn,
            core: Core::new(conn, control, Instant::now()),
            out: Vec::new(),
        }
    }

    pub(super) async fn run(
        mut self,
        mut ws: Socket,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Ending {
        let conn = self.conn;
        conn.tracker.connection_up(conn.id, unix_now());
        tracing::info!(venue = %conn.venue, connection = conn.index, url = %conn.url, streams = conn.streams.len(), "connected");
        let mut tick = tokio::time::interval(conn.settings.tick);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut handover = self.core.handover();
        let reason = loop {
            let ended = tokio::select! {
                () = crate::shutdown::stopped(shutdown) => {
                    close(&mut ws, CloseCode::Away, "exporter shutting down").await;
                    return Ending::Shutdown;
                }
                () = crate::shutdown::stopped(&mut handover) => {
                    // The successor delivers these streams now: leave without a gap.
                    close(&mut ws, CloseCode::Normal, "replaced by a new connection").await;
                    return Ending::Handover;
                }
                frame = ws.next() => self.on_burst(&mut ws, frame).await,
                _ = tick.tick() => self.on_tick(&mut ws).await,
            };
            if let Some(reason) = ended {
                break reason;
            }
        };
        match reason {
            Reason::Scheduled
            | Reason::IdleTimeout
            | Reason::HeartbeatTimeout
            | Reason::SubscribeFailed => {
                close(&mut ws, CloseCode::Normal, reason.as_str()).await;
            }
            Reason::ServerShutdown => {
                close(&mut ws, CloseCode::Normal, "server shutdown announced").await;
            }
            // 1007: "data within a message that was not consistent with the type of the message" (RFC 6455).
            Reason::InvalidFrame => close(&mut ws, CloseCode::Invalid, reason.as_str()).await,
            _ => {}
        }
        Ending::Lost {
            reason,
            healthy: self.core.stable(Instant::now()),
        }
    }

    /// `frame`, then the frames already read behind it (a read takes up to a buffer's worth of a busy feed), up to
    /// [`BURST`] of them: each round of the session's `select!` polls the stop signals, the tick and the socket
    /// and registers and withdraws their wakers, which cost about as much as handling a frame. The tick and the
    /// stop signals are looked at again after the burst, microseconds later.
    async fn on_burst(
        &mut self,
        ws: &mut Socket,
        frame: Option<Result<Message, WsError>>,
    ) -> Option<Reason> {
        // The frames of a burst were read together: one Unix time for all of them.
        let clock = BurstClock::default();
        let mut ended = self.on_message(ws, frame, &clock).await;
        for _ in 0..BURST {
            if ended.is_some() {
                break;
            }
            // Polled once without a waker of the task's: a frame that is not there yet is waited for by the next
            // round of the select, which polls the socket again with the task's own.
            let Some(frame) = ws.next().now_or_never() else {
                break;
            };
            ended = self.on_message(ws, frame, &clock).await;
        }
        ended
    }

    async fn on_message(
        &mut self,
        ws: &mut Socket,
        frame: Option<Result<Message, WsError>>,
        clock: &BurstClock,
    ) -> Option<Reason> {
        let conn = self.conn;
        let message = match frame {
            Some(Ok(message)) => message,
            None | Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => {
                return Some(self.core.closed(Instant::now()));
            }
            // The library fuses its stream after any error, so the connection cannot be kept: count the frame
            // as undecodable and reconnect under a reason of its own.
            Some(Err(e @ (WsError::Utf8(_) | WsError::Capacity(_)))) => {
                conn.tracker.decode_error(conn.venue);
                tracing::warn!(venue = %conn.venue, connection = conn.index, error = %e, "the venue sent an invalid frame; reconnecting");
                return Some(Reason::InvalidFrame);
            }
            Some(Err(e)) => {
                tracing::warn!(venue = %conn.venue, connection = conn.index, error = %e, "connection error");
                return Some(Reason::Error);
            }
        };
        match message {
            Message::Text(text) => self.core.on_text(text.as_str(), clock),
            Message::Ping(_) => {
                self.core.server_pinged(Instant::now());
                // tungstenite queued the pong (payload echoed); flush so it leaves now, not on our next write.
                let flushed = tokio::time::timeout(WRITE_TIMEOUT, ws.flush()).await;
                // A flush can wait on a slow peer: the frames after it are timed afresh.
                clock.reset();
                match flushed {
                    Ok(Ok(())) => None,
                    _ => Some(Reason::Error),
                }
            }
            Message::Close(frame) => {
                tracing::info!(
                    venue = %conn.venue, connection = conn.index,
                    code = frame.as_ref().map(|f| u16::from(f.code)),
                    message = frame.as_ref().map(|f| f.reason.as_str()).unwrap_or(""),
                    "venue closed the connection"
                );
                Some(self.core.closed(Instant::now()))
            }
            Message::Binary(_) => {
                self.core.decode_error(&"binary frame");
                None
            }
            Message::Pong(_) | Message::Frame(_) => None,
        }
    }

    /// The core's periodic check, then whatever it asked to send, in order.
    async fn on_tick(&mut self, ws: &mut Socket) -> Option<Reason> {
        self.out.clear();
        if let Some(reason) = self.core.on_tick(&SystemClock, &mut self.out) {
            return Some(reason);
        }
        for text in self.out.drain(..) {
            if !send(ws, text).await {
                return Some(Reason::Error);
            }
        }
        None
    }
}

/// Sends one text frame; false when it failed or did not leave within [`WRITE_TIMEOUT`].
async fn send(ws: &mut Socket, text: String) -> bool {
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, ws.send(Message::text(text))).await,
        Ok(Ok(()))
    )
}

/// Closes politely and waits briefly for the venue's close reply, so the venue sees a clean close.
async fn close(ws: &mut Socket, code: CloseCode, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let polite = async {
        if ws.close(Some(frame)).await.is_ok() {
            while let Some(Ok(_)) = ws.next().await {}
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), polite).await;
}
