//! One WebSocket session: paced subscribe batches, ack checks, heartbeats, the two watchdogs, per-stream
//! repair of silent subscriptions (at once for a scheduled channel that missed its cadence), and the ingest hot
//! path into the tracker.
//!
//! Owns the state that lives exactly as long as one socket; the reconnect loop around it is in the parent.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::connect::Socket;
use super::{Connection, Ending};
use crate::freshness::{repair_after, repair_wait};
use crate::repeat::human;
use crate::tracker::{Reason, unix_now};
use crate::venue::{self, Frame, Heartbeat, RequestId};

/// Deadline for one write; a peer that stops reading must not wedge the session.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Subscribe,
    Unsubscribe,
}

/// A control request: one op over some of the connection's streams (indices into `Connection::streams`).
#[derive(Debug)]
struct Request {
    op: Op,
    streams: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamState {
    /// Queued or awaiting its ack.
    Pending,
    /// Acked at `since`.
    Subscribed { since: Instant },
    /// The venue refused it; asked again on this connection at `retry_at` (and on the next connection).
    Rejected { retry_at: Instant },
}

/// How one stream's silence is judged and repaired on this connection.
#[derive(Debug, Clone, Copy)]
struct Watch {
    /// The venue's push interval when the channel is scheduled.
    interval: Option<Duration>,
    /// Silence after which it is repaired: its late deadline when scheduled, else `resubscribe_after`.
    deadline: Duration,
    /// Repairs in a row that brought nothing back; each one doubles the wait for the next.
    repairs: u32,
    /// The last message before the silence being repaired, for the recovery line.
    silent_from: u64,
    /// Refusals in a row on this connection; each one doubles the wait before asking again.
    refusals: u32,
}

/// How a session relates to the session it replaces or will be replaced by (make before break).
pub(super) struct Control {
    /// The session records into the tracker while this is true. A successor starts false and goes live at the
    /// handover, so a message counts once while two connections carry the same streams.
    pub(super) live: watch::Receiver<bool>,
    /// Set when a successor has taken over: the session closes politely and ends as a handover.
    pub(super) handover: watch::Receiver<bool>,
    /// Fired once, when every stream is answered and every scheduled stream has delivered on this connection
    /// (or [`READY_WITHIN`] has passed with every stream answered).
    pub(super) ready: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Control {
    /// A session that records from the start and is never replaced from outside.
    pub(super) fn live() -> Self {
        Self {
            live: watch::channel(true).1,
            handover: watch::channel(false).1,
            ready: None,
        }
    }
}

/// A successor whose scheduled streams have not all delivered by then is ready anyway once every stream is
/// answered: a quiet market must not keep the old connection past its lifetime.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// What a frame changed, for the select loop.
enum Outcome {
    Continue,
    End(Reason),
}

pub(super) struct Session<'c> {
    conn: &'c Connection,
    lookup: HashMap<&'c str, usize>,
    states: Vec<StreamState>,
    watches: Vec<Watch>,
    queue: VecDeque<Request>,
    pending: HashMap<RequestId, (Request, Instant)>,
    next_id: RequestId,
    start: Instant,
    /// Set by every data frame, folded into `last_data` on the next tick: reading the monotonic clock once
    /// per tick instead of once per message.
    got_data: bool,
    last_data: Instant,
    last_server_ping: Instant,
    last_client_ping: Instant,
    ping_outstanding: Option<Instant>,
    last_send: Option<Instant>,
    decode_error_logged: bool,
    announced: bool,
    control: Control,
    /// Whether each stream delivered on this connection: a successor's readiness.
    delivered: Vec<bool>,
}

impl<'c> Session<'c> {
    pub(super) fn new(conn: &'c Connection, control: Control) -> Self {
        let start = Instant::now();
        let lookup = conn
            .streams
            .iter()
            .enumerate()
            .map(|(i, s)| (s.key.as_str(), i))
            .collect();
        let batch = conn.policy.max_args_per_request.max(1);
        let all: Vec<usize> = (0..conn.streams.len()).collect();
        let queue = all
            .chunks(batch)
            .map(|c| Request {
                op: Op::Subscribe,
                streams: c.to_vec(),
            })
            .collect();
        let watches = conn
            .streams
            .iter()
            .map(|stream| {
                let (interval, limit) = conn.tracker.cadence(stream.slot);
                Watch {
                    interval,
                    deadline: repair_after(limit, conn.settings.resubscribe_after),
                    repairs: 0,
                    silent_from: 0,
                    refusals: 0,
                }
            })
            .collect();
        Self {
            conn,
            lookup,
            states: vec![StreamState::Pending; conn.streams.len()],
            watches,
            queue,
            pending: HashMap::new(),
            next_id: 1,
            start,
            got_data: false,
            last_data: start,
            last_server_ping: start,
            last_client_ping: start,
            ping_outstanding: None,
            last_send: None,
            decode_error_logged: false,
            announced: false,
            control,
            delivered: vec![false; conn.streams.len()],
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
        let mut handover = self.control.handover.clone();
        let reason = loop {
            let outcome = tokio::select! {
                () = crate::shutdown::stopped(shutdown) => None,
                () = crate::shutdown::stopped(&mut handover) => {
                    // The successor delivers these streams now: leave without a gap.
                    close(&mut ws, CloseCode::Normal, "replaced by a new connection").await;
                    return Ending::Handover;
                }
                frame = ws.next() => Some(self.on_message(&mut ws, frame).await),
                _ = tick.tick() => Some(self.on_tick(&mut ws).await),
            };
            match outcome {
                Some(Outcome::Continue) => {}
                Some(Outcome::End(reason)) => break reason,
                None => {
                    close(&mut ws, CloseCode::Away, "exporter shutting down").await;
                    return Ending::Shutdown;
                }
            }
        };
        if matches!(
            reason,
            Reason::Scheduled
                | Reason::IdleTimeout
                | Reason::HeartbeatTimeout
                | Reason::SubscribeFailed
        ) {
            close(&mut ws, CloseCode::Normal, reason.as_str()).await;
        } else if reason == Reason::InvalidFrame {
            // 1007: "data within a message that was not consistent with the type of the message" (RFC 6455).
            close(&mut ws, CloseCode::Invalid, reason.as_str()).await;
        }
        Ending::Lost {
            reason,
            healthy: self.start.elapsed() >= conn.settings.stable_after,
        }
    }

    /// A close by the venue near its connection lifetime is its scheduled rollover, not an incident.
    fn closed(&self) -> Reason {
        match self.conn.policy.max_connection_age {
            Some(max) if self.start.elapsed() + max / 100 >= max => Reason::Scheduled,
            _ => Reason::ServerClose,
        }
    }

    async fn on_message(
        &mut self,
        ws: &mut Socket,
        frame: Option<Result<Message, WsError>>,
    ) -> Outcome {
        let conn = self.conn;
        let message = match frame {
            Some(Ok(message)) => message,
            None | Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => {
                return Outcome::End(self.closed());
            }
            // The library fuses its stream after any error, so the connection cannot be kept: count the frame
            // as undecodable and reconnect under a reason of its own.
            Some(Err(e @ (WsError::Utf8(_) | WsError::Capacity(_)))) => {
                conn.tracker.decode_error(conn.venue);
                tracing::warn!(venue = %conn.venue, connection = conn.index, error = %e, "the venue sent an invalid frame; reconnecting");
                return Outcome::End(Reason::InvalidFrame);
            }
            Some(Err(e)) => {
                tracing::warn!(venue = %conn.venue, connection = conn.index, error = %e, "connection error");
                return Outcome::End(Reason::Error);
            }
        };
        match message {
            Message::Text(text) => self.on_text(ws, text.as_str()).await,
            Message::Ping(_) => {
                self.last_server_ping = Instant::now();
                // tungstenite queued the pong (payload echoed); flush so it leaves now, not on our next write.
                match tokio::time::timeout(WRITE_TIMEOUT, ws.flush()).await {
                    Ok(Ok(())) => Outcome::Continue,
                    _ => Outcome::End(Reason::Error),
                }
            }
            Message::Close(frame) => {
                let reason = self.closed();
                tracing::info!(
                    venue = %conn.venue, connection = conn.index,
                    code = frame.as_ref().map(|f| u16::from(f.code)),
                    message = frame.as_ref().map(|f| f.reason.as_str()).unwrap_or(""),
                    "venue closed the connection"
                );
                Outcome::End(reason)
            }
            Message::Binary(_) => {
                self.decode_error("binary frame".into());
                Outcome::Continue
            }
            Message::Pong(_) | Message::Frame(_) => Outcome::Continue,
        }
    }

    async fn on_text(&mut self, ws: &mut Socket, text: &str) -> Outcome {
        let conn = self.conn;
        match venue::decode_frame(conn.venue, text) {
            Ok(Frame::Data {
                key,
                payload,
                ts_ms,
            }) => {
                self.got_data = true;
                if let Some(&i) = self.lookup.get(key) {
                    let stream = &conn.streams[i];
                    match venue::decode_sample(stream.kind, payload, ts_ms) {
                        // A successor not yet live only notes that the stream delivers here.
                        Ok(sample) if *self.control.live.borrow() => {
                            conn.tracker.record(stream.slot, unix_now(), &sample);
                        }
                        Ok(_) => self.delivered[i] = true,
                        Err(e) => self.decode_error(e.to_string()),
                    }
                }
                Outcome::Continue
            }
            Ok(Frame::Ack { id }) => {
                self.on_ack(id);
                Outcome::Continue
            }
            Ok(Frame::Rejected { id, reason }) => {
                self.on_rejected(id, &reason);
                Outcome::Continue
            }
            Ok(Frame::Pong) => {
                self.ping_outstanding = None;
                Outcome::Continue
            }
            Ok(Frame::ServerShutdown) => {
                tracing::info!(venue = %conn.venue, connection = conn.index, "venue announced a shutdown; reconnecting now");
                close(ws, CloseCode::Normal, "server shutdown announced").await;
                Outcome::End(Reason::ServerShutdown)
            }
            Ok(Frame::Other) => Outcome::Continue,
            Err(e) => {
                self.decode_error(e.to_string());
                Outcome::Continue
            }
        }
    }

    fn decode_error(&mut self, error: String) {
        let conn = self.conn;
        conn.tracker.decode_error(conn.venue);
        // One warning per session; a venue that floods malformed frames must not flood the log too.
        if self.decode_error_logged {
            tracing::debug!(venue = %conn.venue, connection = conn.index, %error, "frame skipped");
        } else {
            self.decode_error_logged = true;
            tracing::warn!(venue = %conn.venue, connection = conn.index, %error, "undecodable frame skipped (counted in marketfeed_decode_errors_total; further ones this session at debug level)");
        }
    }

    fn on_ack(&mut self, id: Option<RequestId>) {
        // Requests are answered in order, so an ack without our id belongs to the oldest open request.
        let id = id.or_else(|| self.pending.keys().min().copied());
        let Some((request, _)) = id.and_then(|id| self.pending.remove(&id)) else {
            return;
        };
        let now = Instant::now();
        for &i in &request.streams {
            let slot = self.conn.streams[i].slot;
            match request.op {
                Op::Subscribe => {
                    self.states[i] = StreamState::Subscribed { since: now };
                    self.watches[i].refusals = 0;
                    self.conn.tracker.set_acked(slot, true);
                    if self.conn.tracker.accepted(slot) {
                        tracing::info!(venue = %self.conn.venue, connection = self.conn.index, stream = %self.conn.streams[i].key, "venue accepts the subscription it refused before");
                    }
                }
                Op::Unsubscribe => self.conn.tracker.set_acked(slot, false),
            }
        }
        self.announce();
    }

    fn on_rejected(&mut self, id: Option<RequestId>, reason: &str) {
        let conn = self.conn;
        let Some((request, _)) = id.and_then(|id| self.pending.remove(&id)) else {
            tracing::warn!(venue = %conn.venue, connection = conn.index, reason, "venue refused a request we did not send");
            return;
        };
        if request.streams.len() > 1 {
            // One bad topic fails a whole Bybit request (and a Binance one): retry each stream alone so
            // only the bad one stays unsubscribed.
            tracing::info!(venue = %conn.venue, connection = conn.index, reason, streams = request.streams.len(), "request refused; retrying its streams one by one");
            for &i in request.streams.iter().rev() {
                self.queue.push_front(Request {
                    op: request.op,
                    streams: vec![i],
                });
            }
            return;
        }
        for &i in &request.streams {
            let stream = &conn.streams[i];
            match request.op {
                // Once per change: the same refusal on every retry and reconnect is counted, not logged again.
                Op::Subscribe => {
                    let watch = &mut self.watches[i];
                    let wait = conn
                        .settings
                        .refusal_backoff
                        .delay(watch.refusals, 0.5 + fastrand::f64() / 2.0);
                    watch.refusals = watch.refusals.saturating_add(1);
                    self.states[i] = StreamState::Rejected {
                        retry_at: Instant::now() + wait,
                    };
                    if conn.tracker.rejected(stream.slot) {
                        tracing::warn!(venue = %conn.venue, connection = conn.index, stream = %stream.key, reason, "venue refused the subscription (counted in marketfeed_subscription_rejections_total; repeats are not logged)");
                    } else {
                        tracing::debug!(venue = %conn.venue, connection = conn.index, stream = %stream.key, reason, "venue refused the subscription again");
                    }
                }
                Op::Unsubscribe => {
                    tracing::debug!(venue = %conn.venue, connection = conn.index, stream = %stream.key, reason, "venue refused an unsubscribe");
                }
            }
        }
        self.announce();
    }

    /// Logs the outcome of the initial subscribe once every request is answered.
    fn announce(&mut self) {
        if self.announced || !self.queue.is_empty() || !self.pending.is_empty() {
            return;
        }
        self.announced = true;
        let rejected = self
            .states
            .iter()
            .filter(|s| matches!(s, StreamState::Rejected { .. }))
            .count();
        tracing::info!(venue = %self.conn.venue, connection = self.conn.index, subscribed = self.states.len() - rejected, rejected, "subscriptions answered");
    }

    async fn on_tick(&mut self, ws: &mut Socket) -> Outcome {
        let conn = self.conn;
        let now = Instant::now();
        if std::mem::take(&mut self.got_data) {
            self.last_data = now;
        }
        if let Some(max) = conn.policy.max_connection_age
            && now - self.start >= max
        {
            tracing::info!(venue = %conn.venue, connection = conn.index, age = %human(max), "connection lifetime reached; rolling over");
            return Outcome::End(Reason::Scheduled);
        }
        let idle = now - self.last_data;
        if idle >= conn.settings.idle_timeout {
            tracing::warn!(venue = %conn.venue, connection = conn.index, idle = %human(idle), "no data on the connection; reconnecting");
            return Outcome::End(Reason::IdleTimeout);
        }
        match conn.policy.heartbeat {
            Heartbeat::ServerPing { timeout } => {
                if now - self.last_server_ping >= timeout {
                    tracing::warn!(venue = %conn.venue, connection = conn.index, deadline = %human(timeout), "no ping from the venue; reconnecting");
                    return Outcome::End(Reason::HeartbeatTimeout);
                }
            }
            Heartbeat::ClientPing { interval, timeout } => match self.ping_outstanding {
                Some(sent) if now - sent >= timeout => {
                    tracing::warn!(venue = %conn.venue, connection = conn.index, deadline = %human(timeout), "no pong from the venue; reconnecting");
                    return Outcome::End(Reason::HeartbeatTimeout);
                }
                Some(_) => {}
                None if now - self.last_client_ping >= interval => {
                    self.next_id += 1;
                    if let Some(ping) = venue::ping_message(conn.venue, self.next_id) {
                        if !send(ws, ping).await {
                            return Outcome::End(Reason::Error);
                        }
                        self.ping_outstanding = Some(now);
                    }
                    self.last_client_ping = now;
                }
                None => {}
            },
        }
        if let Some((request, _)) = self
            .pending
            .values()
            .find(|(_, sent)| now - *sent >= conn.settings.ack_timeout)
        {
            let first = &conn.streams[request.streams[0]].key;
            tracing::warn!(venue = %conn.venue, connection = conn.index, stream = %first, streams = request.streams.len(), "subscribe request unanswered; reconnecting");
            return Outcome::End(Reason::SubscribeFailed);
        }
        if self.control.ready.is_some() {
            self.report_ready(now);
        } else if let Some(reason) = self.check_silent_streams(now) {
            // Repairs are the live session's; a successor only has to prove it delivers.
            return Outcome::End(reason);
        }
        self.retry_refused(now);
        self.send_next(ws, now).await
    }

    /// Repairs acked streams that went silent. One silent past its deadline (a scheduled channel once it missed
    /// `MARKETFEED_HEARTBEAT_MISSES` intervals plus the grace, an event-driven one after `resubscribe_after`)
    /// while the connection still delivers other data gets an unsubscribe and a subscribe of its own. Repairs of
    /// the same stream that bring nothing back wait ever longer ([`repair_wait`]). When nothing at all arrived
    /// on the connection for a late scheduled stream's deadline, the connection is what died: the session ends
    /// as `idle_timeout` at once instead of waiting for the idle watchdog.
    fn check_silent_streams(&mut self, now: Instant) -> Option<Reason> {
        let conn = self.conn;
        let unix = unix_now();
        let idle = now - self.last_data;
        for (i, (state, watch)) in self.states.iter_mut().zip(&mut self.watches).enumerate() {
            let StreamState::Subscribed { since } = *state else {
                continue;
            };
            let stream = &conn.streams[i];
            let silent = Duration::from_nanos(
                unix.saturating_sub(conn.tracker.last_message_ns(stream.slot)),
            );
            if silent < watch.deadline {
                if watch.repairs > 0 {
                    let silent_for = Duration::from_nanos(
                        conn.tracker
                            .last_message_ns(stream.slot)
                            .saturating_sub(watch.silent_from),
                    );
                    tracing::info!(venue = %conn.venue, connection = conn.index, stream = %stream.key, resubscribes = watch.repairs, silent_for = %human(silent_for), "stalled stream delivers again");
                    watch.repairs = 0;
                }
                continue;
            }
            let subscribed_for = now - since;
            if subscribed_for < watch.deadline {
                continue;
            }
            // `last_data` is folded in on the tick after a frame, so `idle` runs up to one tick short: nothing at all
            // has arrived since this stream's last message.
            if let Some(interval) = watch.interval
                && idle + conn.settings.tick >= watch.deadline
            {
                tracing::warn!(venue = %conn.venue, connection = conn.index, stream = %stream.key, idle = %human(idle), every = %human(interval), "nothing at all on the connection although this stream is pushed on a schedule; reconnecting");
                return Some(Reason::IdleTimeout);
            }
            let wait = repair_wait(
                watch.deadline,
                watch.repairs,
                conn.settings.resubscribe_after,
            );
            if subscribed_for < wait {
                continue;
            }
            if watch.repairs == 0 {
                watch.silent_from = conn.tracker.last_message_ns(stream.slot);
            }
            watch.repairs = watch.repairs.saturating_add(1);
            let next = repair_wait(
                watch.deadline,
                watch.repairs,
                conn.settings.resubscribe_after,
            );
            match watch.interval {
                Some(interval) => tracing::warn!(
                    venue = %conn.venue, connection = conn.index, stream = %stream.key, silent = %human(silent),
                    every = %human(interval), attempt = watch.repairs, next_attempt_after = %human(next),
                    "scheduled stream missed its cadence while its connection flows; resubscribing"
                ),
                None => tracing::warn!(
                    venue = %conn.venue, connection = conn.index, stream = %stream.key, silent = %human(silent),
                    attempt = watch.repairs, next_attempt_after = %human(next),
                    "stream silent while its connection flows; resubscribing"
                ),
            }
            *state = StreamState::Pending;
            conn.tracker.resubscribed(stream.slot);
            self.queue.push_back(Request {
                op: Op::Unsubscribe,
                streams: vec![i],
            });
            self.queue.push_back(Request {
                op: Op::Subscribe,
                streams: vec![i],
            });
        }
        None
    }

    /// A successor is ready once every stream is answered and every scheduled stream delivered here, or, with
    /// every stream answered, once [`READY_WITHIN`] has passed.
    fn report_ready(&mut self, now: Instant) {
        let answered = self
            .states
            .iter()
            .all(|s| !matches!(s, StreamState::Pending));
        let scheduled_delivered = self
            .watches
            .iter()
            .zip(&self.delivered)
            .all(|(watch, delivered)| watch.interval.is_none() || *delivered);
        if answered
            && (scheduled_delivered || now - self.start >= READY_WITHIN)
            && let Some(ready) = self.control.ready.take()
        {
            let _ = ready.send(());
        }
    }

    /// Asks again for refused streams whose wait is over, one request each (a batch with one still-refused
    /// stream would fail as a whole): venues refuse transiently (a symbol being launched, a topic unknown during
    /// maintenance), and a stream left refused on a connection that lives for days would never deliver.
    fn retry_refused(&mut self, now: Instant) {
        for (i, state) in self.states.iter_mut().enumerate() {
            if matches!(state, StreamState::Rejected { retry_at } if *retry_at <= now) {
                *state = StreamState::Pending;
                self.queue.push_back(Request {
                    op: Op::Subscribe,
                    streams: vec![i],
                });
            }
        }
    }

    /// Sends the next queued request when the venue's message-rate budget allows.
    async fn send_next(&mut self, ws: &mut Socket, now: Instant) -> Outcome {
        let conn = self.conn;
        if self
            .last_send
            .is_some_and(|last| now - last < conn.policy.request_interval)
        {
            return Outcome::Continue;
        }
        let Some(request) = self.queue.pop_front() else {
            return Outcome::Continue;
        };
        self.next_id += 1;
        let id = self.next_id;
        let keys: Vec<&str> = request
            .streams
            .iter()
            .map(|&i| conn.streams[i].key.as_str())
            .collect();
        let text = match request.op {
            Op::Subscribe => venue::subscribe_message(conn.venue, &keys, id),
            Op::Unsubscribe => venue::unsubscribe_message(conn.venue, &keys, id),
        };
        if !send(ws, text).await {
            return Outcome::End(Reason::Error);
        }
        self.last_send = Some(now);
        self.pending.insert(id, (request, now));
        Outcome::Continue
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
