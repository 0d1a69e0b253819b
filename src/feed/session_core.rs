//! The session's decisions without the socket: which requests to send and when (paced subscribe batches,
//! refused batches split, refused streams asked for again with back-off, silent streams repaired), how acks
//! match requests, the watchdogs and every reason a session ends. It is told the time ([`Clock`]) and each
//! text frame, and answers with the texts to send and whether to end; `session.rs` moves frames between it
//! and the socket. It records into the tracker (an in-memory structure, real in the tests too).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::Connection;
use super::lookup::StreamLookup;
use crate::freshness::{repair_after, repair_wait};
use crate::repeat::human;
use crate::tracker::{Reason, unix_now};
use crate::venue::{self, Frame, Heartbeat, RequestId};

/// The two clocks the core reads: monotonic for deadlines, Unix for freshness.
pub(super) trait Clock {
    /// Monotonic now.
    fn now(&self) -> Instant;
    /// Nanoseconds since the Unix epoch.
    fn unix(&self) -> u64;
}

/// The process's clocks.
pub(super) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    #[inline]
    fn unix(&self) -> u64 {
        unix_now()
    }
}

/// The process's clocks, with the Unix one read at most once until [`BurstClock::reset`]: for the frames of one
/// burst, which were read from the socket together and are handled within microseconds (a clock read cost 3 to 4 %
/// of the flood's time). The monotonic clock, for the rare replies and deadlines, is read each time.
#[derive(Default)]
pub(super) struct BurstClock {
    /// The Unix time once read; zero before. Atomic only to be `Sync` across the session's awaits: one task
    /// reads and writes it, with plain loads and stores.
    unix: std::sync::atomic::AtomicU64,
}

impl BurstClock {
    /// Forgets the Unix time read: the next frame reads the clock again (after a wait on the socket).
    pub(super) fn reset(&self) {
        self.unix.store(0, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Clock for BurstClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    #[inline]
    fn unix(&self) -> u64 {
        match self.unix.load(std::sync::atomic::Ordering::Relaxed) {
            0 => {
                let now = unix_now();
                self.unix.store(now, std::sync::atomic::Ordering::Relaxed);
                now
            }
            read => read,
        }
    }
}

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
    /// Turned true once, when every stream is answered and every scheduled stream has delivered on this
    /// connection (or [`READY_WITHIN`] has passed with every stream answered).
    pub(super) ready: Option<std::sync::Arc<watch::Sender<bool>>>,
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

/// One session's state, from the socket's opening to its end.
pub(super) struct Core<'c> {
    conn: &'c Connection,
    lookup: StreamLookup<'c>,
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
    /// `control.live` as last read: it turns true once and never back, so once true it is not read again (a read
    /// takes the channel's lock, once per message otherwise).
    live: bool,
    /// Whether each stream delivered on this connection: a successor's readiness.
    delivered: Vec<bool>,
}

impl<'c> Core<'c> {
    /// A session that has just connected at `start`: every stream queued for subscribing in batches of the
    /// venue's request size.
    pub(super) fn new(conn: &'c Connection, control: Control, start: Instant) -> Self {
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
            live: false,
            control,
            delivered: vec![false; conn.streams.len()],
        }
    }

    /// The switch that tells this session a successor took over.
    pub(super) fn handover(&self) -> watch::Receiver<bool> {
        self.control.handover.clone()
    }

    /// Whether the session lasted long enough by `now` to reset the reconnect back-off.
    pub(super) fn stable(&self, now: Instant) -> bool {
        now - self.start >= self.conn.settings.stable_after
    }

    /// Why the venue's close ends the session: near its connection lifetime it is the scheduled rollover, not
    /// an incident.
    pub(super) fn closed(&self, now: Instant) -> Reason {
        match self.conn.policy.max_connection_age {
            Some(max) if (now - self.start) + max / 100 >= max => Reason::Scheduled,
            _ => Reason::ServerClose,
        }
    }

    /// A WebSocket ping from the venue: the transport is alive.
    pub(super) fn server_pinged(&mut self, now: Instant) {
        self.last_server_ping = now;
    }

    /// One text frame. Data is recorded (the hot path: one Unix clock read, no allocation); acks, refusals and
    /// pongs update the requests. Some reason when the frame ends the session.
    pub(super) fn on_text(&mut self, text: &str, clock: &impl Clock) -> Option<Reason> {
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
                    let live = self.live || {
                        self.live = *self.control.live.borrow();
                        self.live
                    };
                    match venue::decode_data(conn.venue, stream.kind, text, payload, ts_ms) {
                        // A successor not yet live only notes that the stream delivers here.
                        Ok(sample) if live => {
                            conn.tracker.record(stream.slot, clock.unix(), &sample);
                        }
                        Ok(_) => self.delivered[i] = true,
                        Err(e) => self.decode_error(&e),
                    }
                } else if let Err(e) = venue::validate_data(conn.venue, text, payload) {
                    // Not ours to record, but a damaged frame all the same.
                    self.decode_error(&e);
                }
            }
            Ok(Frame::Ack { id }) => self.on_ack(id, clock.now()),
            Ok(Frame::Rejected { id, reason }) => self.on_rejected(id, &reason, clock.now()),
            Ok(Frame::Pong) => self.ping_outstanding = None,
            Ok(Frame::ServerShutdown) => {
                tracing::info!(venue = %conn.venue, connection = conn.index, "venue announced a shutdown; reconnecting now");
                return Some(Reason::ServerShutdown);
            }
            Ok(Frame::Other) => {}
            Err(e) => self.decode_error(&e),
        }
        None
    }

    /// Counts a frame that could not be decoded; logs the first of the session.
    pub(super) fn decode_error(&mut self, error: &dyn std::fmt::Display) {
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

    fn on_ack(&mut self, id: Option<RequestId>, now: Instant) {
        // Requests are answered in order, so an ack without our id belongs to the oldest open request.
        let id = id.or_else(|| self.pending.keys().min().copied());
        let Some((request, _)) = id.and_then(|id| self.pending.remove(&id)) else {
            return;
        };
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

    fn on_rejected(&mut self, id: Option<RequestId>, reason: &str, now: Instant) {
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
                        retry_at: now + wait,
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

    /// The periodic check: the watchdogs, the ping, the repairs and the next request. Texts to send go into
    /// `out` (at most a ping and one request); Some reason when the session must end.
    pub(super) fn on_tick(&mut self, clock: &impl Clock, out: &mut Vec<String>) -> Option<Reason> {
        let conn = self.conn;
        let now = clock.now();
        if std::mem::take(&mut self.got_data) {
            self.last_data = now;
        }
        if let Some(max) = conn.policy.max_connection_age
            && now - self.start >= max
        {
            tracing::info!(venue = %conn.venue, connection = conn.index, age = %human(max), "connection lifetime reached; rolling over");
            return Some(Reason::Scheduled);
        }
        let idle = now - self.last_data;
        if idle >= conn.settings.idle_timeout {
            tracing::warn!(venue = %conn.venue, connection = conn.index, idle = %human(idle), "no data on the connection; reconnecting");
            return Some(Reason::IdleTimeout);
        }
        match conn.policy.heartbeat {
            Heartbeat::ServerPing { timeout } => {
                if now - self.last_server_ping >= timeout {
                    tracing::warn!(venue = %conn.venue, connection = conn.index, deadline = %human(timeout), "no ping from the venue; reconnecting");
                    return Some(Reason::HeartbeatTimeout);
                }
            }
            Heartbeat::ClientPing { interval, timeout } => match self.ping_outstanding {
                Some(sent) if now - sent >= timeout => {
                    tracing::warn!(venue = %conn.venue, connection = conn.index, deadline = %human(timeout), "no pong from the venue; reconnecting");
                    return Some(Reason::HeartbeatTimeout);
                }
                Some(_) => {}
                None if now - self.last_client_ping >= interval => {
                    self.next_id += 1;
                    if let Some(ping) = venue::ping_message(conn.venue, self.next_id) {
                        out.push(ping);
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
            return Some(Reason::SubscribeFailed);
        }
        if self.control.ready.is_some() {
            self.report_ready(now);
        } else if let Some(reason) = self.check_silent_streams(now, clock.unix()) {
            // Repairs are the live session's; a successor only has to prove it delivers.
            return Some(reason);
        }
        self.retry_refused(now);
        self.next_request(now, out);
        None
    }

    /// Repairs acked streams that went silent. One silent past its deadline (a scheduled channel once it missed
    /// `MARKETFEED_HEARTBEAT_MISSES` intervals plus the grace, an event-driven one after `resubscribe_after`)
    /// while the connection still delivers other data gets an unsubscribe and a subscribe of its own. Repairs of
    /// the same stream that bring nothing back wait ever longer ([`repair_wait`]). When nothing at all arrived
    /// on the connection for a late scheduled stream's deadline, the connection is what died: the session ends
    /// as `idle_timeout` at once instead of waiting for the idle watchdog.
    fn check_silent_streams(&mut self, now: Instant, unix: u64) -> Option<Reason> {
        let conn = self.conn;
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
            ready.send_replace(true);
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

    /// The next queued request, when the venue's message-rate budget allows: its text goes into `out` and it
    /// awaits its answer from `now` (a send that fails ends the session, so it is taken as sent).
    fn next_request(&mut self, now: Instant, out: &mut Vec<String>) {
        let conn = self.conn;
        if self
            .last_send
            .is_some_and(|last| now - last < conn.policy.request_interval)
        {
            return;
        }
        let Some(request) = self.queue.pop_front() else {
            return;
        };
        self.next_id += 1;
        let id = self.next_id;
        let keys: Vec<&str> = request
            .streams
            .iter()
            .map(|&i| conn.streams[i].key.as_str())
            .collect();
        out.push(match request.op {
            Op::Subscribe => venue::subscribe_message(conn.venue, &keys, id),
            Op::Unsubscribe => venue::unsubscribe_message(conn.venue, &keys, id),
        });
        self.last_send = Some(now);
        self.pending.insert(id, (request, now));
    }
}

#[cfg(test)]
mod tests {
    //! The core against a real tracker and a clock the test moves: no socket, no sleeping.

    use std::cell::Cell;
    use std::sync::Arc;

    use super::*;
    use crate::feed::{ConnectLimiter, FeedSettings, Stream};
    use crate::freshness::Rules;
    use crate::model::{Subscription, Venue};
    use crate::repeat::Outages;
    use crate::tracker::{ConnectionInfo, Tracker};

    const S: Duration = Duration::from_secs(1);
    const MS: Duration = Duration::from_millis(1);

    struct TestClock {
        now: Cell<Instant>,
        unix: Cell<u64>,
    }

    impl TestClock {
        fn new() -> Self {
            Self {
                now: Cell::new(Instant::now()),
                unix: Cell::new(1_700_000_000_000_000_000),
            }
        }

        fn advance(&self, by: Duration) {
            self.now.set(self.now.get() + by);
            self.unix.set(self.unix.get() + by.as_nanos() as u64);
        }
    }

    impl Clock for TestClock {
        fn now(&self) -> Instant {
            self.now.get()
        }

        fn unix(&self) -> u64 {
            self.unix.get()
        }
    }

    /// One connection on `venue` carrying `channel` for each symbol.
    fn connection(venue: Venue, channels: &[&str], symbols: &[&str], unix: u64) -> Connection {
        let mut subscriptions = Vec::new();
        for symbol in symbols {
            for name in channels {
                subscriptions.push(Subscription {
                    venue,
                    channel: venue::channel(venue, name).unwrap(),
                    symbol: (*symbol).into(),
                });
            }
        }
        let streams = subscriptions
            .iter()
            .enumerate()
            .map(|(slot, s)| Stream {
                key: venue::wire_key(venue, &s.channel.name, &s.symbol),
                slot,
                kind: s.channel.kind,
            })
            .collect();
        let info = ConnectionInfo {
            venue,
            index: 0,
            slots: (0..subscriptions.len()).collect(),
        };
        let mut settings = FeedSettings::new(60 * S, 600 * S);
        // No jitter to reason about: the refusal wait is drawn from [half, full] of 10 s doubling.
        settings.refusal_backoff = crate::backoff::Backoff {
            base: 10 * S,
            cap: 600 * S,
        };
        Connection {
            id: 0,
            venue,
            index: 0,
            url: "ws://127.0.0.1:9".into(),
            streams,
            policy: venue::policy(venue),
            settings,
            tracker: Arc::new(Tracker::new(
                subscriptions,
                vec![info],
                Rules::default(),
                unix,
            )),
            limiter: Arc::new(ConnectLimiter::new(10, S)),
            outages: Arc::new(Outages::default()),
        }
    }

    fn tick(core: &mut Core<'_>, clock: &TestClock) -> (Vec<String>, Option<Reason>) {
        let mut out = Vec::new();
        let end = core.on_tick(clock, &mut out);
        (out, end)
    }

    fn req_id(text: &str) -> String {
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        value["req_id"].as_str().unwrap().to_owned()
    }

    fn args(text: &str) -> Vec<String> {
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        value["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect()
    }

    fn bybit_ack(id: &str) -> String {
        format!(r#"{{"success":true,"ret_msg":"","conn_id":"c","req_id":"{id}","op":"subscribe"}}"#)
    }

    fn bybit_refusal(id: &str) -> String {
        format!(
            r#"{{"success":false,"ret_msg":"error:handler not found","conn_id":"c","req_id":"{id}","op":"subscribe"}}"#
        )
    }

    fn bybit_ticker(symbol: &str) -> String {
        format!(
            r#"{{"topic":"tickers.{symbol}","type":"snapshot","ts":1700000000000,"data":{{"symbol":"{symbol}","lastPrice":"100"}}}}"#
        )
    }

    fn bybit_book(symbol: &str) -> String {
        format!(
            r#"{{"topic":"orderbook.1.{symbol}","type":"snapshot","ts":1700000000000,"data":{{"s":"{symbol}","b":[["99","1"]],"a":[["101","1"]],"u":1,"seq":1}}}}"#
        )
    }

    fn acked(conn: &Connection) -> Vec<bool> {
        conn.tracker.subscriptions().map(|v| v.acked).collect()
    }

    /// A burst's Unix time is read once and kept until reset.
    #[test]
    fn a_burst_clock_reads_the_time_once_until_reset() {
        let clock = BurstClock::default();
        let first = clock.unix();
        assert!(first > 0);
        // What was read is what every later frame of the burst gets, whatever the real clock says.
        clock.unix.store(5, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(clock.unix(), 5);
        clock.reset();
        assert!(clock.unix() >= first);
    }

    #[test]
    fn a_damaged_payload_is_counted_whether_or_not_the_stream_is_ours() {
        let clock = TestClock::new();
        let conn = connection(Venue::BybitLinear, &["tickers"], &["BTCUSDT"], clock.unix());
        let mut core = Core::new(&conn, Control::live(), clock.now());
        let errors = || conn.tracker.decode_errors(Venue::BybitLinear);
        core.on_text(&bybit_ticker("BTCUSDT"), &clock);
        // Another stream's frame, whole: not ours, not an error.
        core.on_text(&bybit_ticker("ETHUSDT"), &clock);
        assert_eq!((errors(), conn.tracker.subscription(0).messages), (0, 1));
        // The frame scan only delimits payloads: the decoder, or the check for a stream nobody decodes, refuses
        // a damaged one.
        let damaged = |symbol: &str| {
            bybit_ticker(symbol).replace(r#""lastPrice":"100""#, r#""lastPrice":10.0.0"#)
        };
        core.on_text(&damaged("BTCUSDT"), &clock);
        assert_eq!(errors(), 1);
        core.on_text(&damaged("ETHUSDT"), &clock);
        assert_eq!(errors(), 2);
        assert_eq!(conn.tracker.subscription(0).messages, 1);
    }

    #[test]
    fn subscribes_in_batches_paced_by_the_venue_and_matches_acks_by_id() {
        let clock = TestClock::new();
        // Bybit spot: at most 10 args a request, one request every 200 ms. 12 symbols: a batch of 10, then 2.
        let symbols: Vec<String> = (0..12).map(|i| format!("S{i}USDT")).collect();
        let symbols: Vec<&str> = symbols.iter().map(String::as_str).collect();
        let conn = connection(Venue::BybitSpot, &["tickers"], &symbols, clock.unix());
        let mut core = Core::new(&conn, Control::live(), clock.now());
        let (first, end) = tick(&mut core, &clock);
        assert_eq!(end, None);
        assert_eq!(first.len(), 1);
        assert_eq!(args(&first[0]).len(), 10);
        // Too soon for the next request.
        clock.advance(100 * MS);
        assert!(tick(&mut core, &clock).0.is_empty());
        clock.advance(100 * MS);
        let (second, _) = tick(&mut core, &clock);
        assert_eq!(args(&second[0]), ["tickers.S10USDT", "tickers.S11USDT"]);
        // Answered out of order, each by its id.
        assert_eq!(core.on_text(&bybit_ack(&req_id(&second[0])), &clock), None);
        assert_eq!(acked(&conn).iter().filter(|a| **a).count(), 2);
        assert_eq!(core.on_text(&bybit_ack(&req_id(&first[0])), &clock), None);
        assert!(acked(&conn).iter().all(|a| *a));
    }

    #[test]
    fn an_ack_without_an_id_answers_the_oldest_open_request() {
        let clock = TestClock::new();
        let conn = connection(
            Venue::BybitLinear,
            &["tickers"],
            &["BTCUSDT", "ETHUSDT"],
            clock.unix(),
        );
        let mut core = Core::new(&conn, Control::live(), clock.now());
        tick(&mut core, &clock);
        let ack = r#"{"success":true,"ret_msg":"","conn_id":"c","op":"subscribe"}"#;
        core.on_text(ack, &clock);
        assert_eq!(acked(&conn), [true, true]);
    }

    #[test]
    fn a_refused_batch_is_split_and_only_the_bad_stream_backs_off_then_is_asked_again() {
        let clock = TestClock::new();
        let conn = connection(
            Venue::BybitLinear,
            &["tickers"],
            &["BTCUSDT", "NEWUSDT", "ETHUSDT"],
            clock.unix(),
        );
        let mut core = Core::new(&conn, Control::live(), clock.now());
        let (batch, _) = tick(&mut core, &clock);
        core.on_text(&bybit_refusal(&req_id(&batch[0])), &clock);
        // One request per stream, in the batch's order, paced.
        let mut singles = Vec::new();
        for _ in 0..3 {
            clock.advance(200 * MS);
            let (out, end) = tick(&mut core, &clock);
            assert_eq!(end, None);
            singles.push(out[0].clone());
        }
        let keys: Vec<Vec<String>> = singles.iter().map(|t| args(t)).collect();
        assert_eq!(
            keys,
            [
                ["tickers.BTCUSDT"],
                ["tickers.NEWUSDT"],
                ["tickers.ETHUSDT"]
            ]
        );
        core.on_text(&bybit_ack(&req_id(&singles[0])), &clock);
        core.on_text(&bybit_refusal(&req_id(&singles[1])), &clock);
        core.on_text(&bybit_ack(&req_id(&singles[2])), &clock);
        assert_eq!(acked(&conn), [true, false, true]);
        let refused = conn.tracker.subscriptions().nth(1).unwrap();
        assert_eq!((refused.rejections, refused.refused), (1, true));
        // Not before half the first wait (5 s), asked again by the full wait (10 s).
        clock.advance(4900 * MS);
        assert!(tick(&mut core, &clock).0.is_empty());
        let mut retry = None;
        for _ in 0..60 {
            clock.advance(100 * MS);
            if let (out, _) = tick(&mut core, &clock)
                && let Some(text) = out.first()
            {
                retry = Some(text.clone());
                break;
            }
        }
        let retry = retry.expect("asked again within 10 s");
        assert_eq!(args(&retry), ["tickers.NEWUSDT"]);
        core.on_text(&bybit_ack(&req_id(&retry)), &clock);
        assert_eq!(acked(&conn), [true, true, true]);
        assert!(!conn.tracker.subscriptions().nth(1).unwrap().refused);
    }

    /// Subscribes everything and acks it; returns the core ready to flow.
    fn subscribed<'c>(conn: &'c Connection, clock: &TestClock) -> Core<'c> {
        let mut core = Core::new(conn, Control::live(), clock.now());
        loop {
            let (out, end) = tick(&mut core, clock);
            assert_eq!(end, None);
            let Some(request) = out.iter().find(|t| t.contains("\"subscribe\"")) else {
                break;
            };
            core.on_text(&bybit_ack(&req_id(request)), clock);
            clock.advance(200 * MS);
        }
        core
    }

    #[test]
    fn a_scheduled_stream_late_while_its_connection_flows_is_resubscribed_alone() {
        let clock = TestClock::new();
        let conn = connection(
            Venue::BybitLinear,
            &["orderbook.1", "tickers"],
            &["BTCUSDT"],
            clock.unix(),
        );
        let mut core = subscribed(&conn, &clock);
        // orderbook.1 is pushed every 3 s: late after 5 misses + 2 s = 17 s. Tickers keep flowing.
        core.on_text(&bybit_book("BTCUSDT"), &clock);
        let mut repair = Vec::new();
        for _ in 0..170 {
            clock.advance(100 * MS);
            core.on_text(&bybit_ticker("BTCUSDT"), &clock);
            let (out, end) = tick(&mut core, &clock);
            assert_eq!(end, None);
            repair.extend(out.into_iter().filter(|t| !t.contains("\"ping\"")));
            if !repair.is_empty() {
                break;
            }
        }
        assert!(
            repair[0].contains("\"unsubscribe\""),
            "unsubscribe first: {repair:?}"
        );
        assert_eq!(args(&repair[0]), ["orderbook.1.BTCUSDT"]);
        let views: Vec<u64> = conn
            .tracker
            .subscriptions()
            .map(|v| v.resubscribes)
            .collect();
        assert_eq!(views, [1, 0]);
        // Not before its deadline.
        let silent = clock.unix() - conn.tracker.last_message_ns(0);
        assert!(
            Duration::from_nanos(silent) >= 17 * S - 200 * MS,
            "{silent}"
        );
    }

    #[test]
    fn a_dead_connection_ends_at_the_scheduled_deadline_not_the_idle_watchdog() {
        let clock = TestClock::new();
        let conn = connection(
            Venue::BybitLinear,
            &["orderbook.1"],
            &["BTCUSDT"],
            clock.unix(),
        );
        let mut core = subscribed(&conn, &clock);
        core.on_text(&bybit_book("BTCUSDT"), &clock);
        let started = clock.now();
        let end = loop {
            clock.advance(100 * MS);
            core.on_text(
                r#"{"success":true,"ret_msg":"pong","conn_id":"c","op":"ping"}"#,
                &clock,
            );
            if let (_, Some(end)) = tick(&mut core, &clock) {
                break end;
            }
            assert!(clock.now() - started < 60 * S, "ended by the watchdog");
        };
        assert_eq!(end, Reason::IdleTimeout);
        assert!(clock.now() - started <= 18 * S);
    }

    #[test]
    fn every_watchdog_names_its_reason() {
        // Bybit: no pong within 10 s of our ping.
        let clock = TestClock::new();
        let conn = connection(Venue::BybitLinear, &["tickers"], &["BTCUSDT"], clock.unix());
        let mut core = subscribed(&conn, &clock);
        let mut pinged = false;
        let end = loop {
            clock.advance(S);
            core.on_text(&bybit_ticker("BTCUSDT"), &clock);
            let (out, end) = tick(&mut core, &clock);
            pinged |= out.iter().any(|t| t.contains("\"ping\""));
            if let Some(end) = end {
                break end;
            }
        };
        assert!(pinged);
        assert_eq!(end, Reason::HeartbeatTimeout);

        // Binance: no ping from the server within its deadline.
        let clock = TestClock::new();
        let conn = connection(
            Venue::BinanceSpot,
            &["aggTrade"],
            &["BTCUSDT"],
            clock.unix(),
        );
        let mut core = Core::new(&conn, Control::live(), clock.now());
        let trade =
            r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1700000000000,"p":"100"}}"#;
        let end = loop {
            clock.advance(S);
            core.on_text(trade, &clock);
            let (out, end) = tick(&mut core, &clock);
            for text in out {
                let id: serde_json::Value = serde_json::from_str(&text).unwrap();
                let ack = format!(r#"{{"result":null,"id":{}}}"#, id["id"]);
                core.on_text(&ack, &clock);
            }
            if let Some(end) = end {
                break end;
            }
        };
        assert_eq!(end, Reason::HeartbeatTimeout);

        // No data at all for the idle timeout, pings answered.
        let clock = TestClock::new();
        let conn = connection(
            Venue::BinanceSpot,
            &["aggTrade"],
            &["BTCUSDT"],
            clock.unix(),
        );
        let mut core = Core::new(&conn, Control::live(), clock.now());
        let end = loop {
            clock.advance(S);
            core.server_pinged(clock.now());
            let (out, end) = tick(&mut core, &clock);
            for text in out {
                let id: serde_json::Value = serde_json::from_str(&text).unwrap();
                core.on_text(&format!(r#"{{"result":null,"id":{}}}"#, id["id"]), &clock);
            }
            if let Some(end) = end {
                break end;
            }
        };
        assert_eq!(end, Reason::IdleTimeout);
        assert_eq!(acked(&conn), [true]);

        // A subscribe never answered.
        let clock = TestClock::new();
        let conn = connection(
            Venue::BinanceSpot,
            &["aggTrade"],
            &["BTCUSDT"],
            clock.unix(),
        );
        let mut core = Core::new(&conn, Control::live(), clock.now());
        let end = loop {
            clock.advance(S);
            core.server_pinged(clock.now());
            core.on_text(trade, &clock);
            if let (_, Some(end)) = tick(&mut core, &clock) {
                break end;
            }
        };
        assert_eq!(end, Reason::SubscribeFailed);

        // Binance's announced shutdown, and the connection lifetime.
        let shutdown =
            r#"{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}"#;
        assert_eq!(core.on_text(shutdown, &clock), Some(Reason::ServerShutdown));
        let clock = TestClock::new();
        let conn = connection(
            Venue::BinanceSpot,
            &["aggTrade"],
            &["BTCUSDT"],
            clock.unix(),
        );
        let core = Core::new(&conn, Control::live(), clock.now());
        assert_eq!(core.closed(clock.now() + S), Reason::ServerClose);
        let age = conn.policy.max_connection_age.unwrap();
        assert_eq!(core.closed(clock.now() + age - S), Reason::Scheduled);
    }

    #[test]
    fn a_successor_records_nothing_until_live_and_is_ready_once_it_delivers() {
        let clock = TestClock::new();
        let conn = connection(
            Venue::BybitLinear,
            &["orderbook.1", "tickers"],
            &["BTCUSDT"],
            clock.unix(),
        );
        let (live_tx, live) = watch::channel(false);
        let (ready_tx, ready) = watch::channel(false);
        let control = Control {
            live,
            handover: watch::channel(false).1,
            ready: Some(Arc::new(ready_tx)),
        };
        let mut core = Core::new(&conn, control, clock.now());
        let (out, _) = tick(&mut core, &clock);
        core.on_text(&bybit_ack(&req_id(&out[0])), &clock);
        clock.advance(200 * MS);
        tick(&mut core, &clock);
        // Answered, but the scheduled stream has not delivered here yet.
        assert!(!*ready.borrow());
        core.on_text(&bybit_book("BTCUSDT"), &clock);
        clock.advance(100 * MS);
        tick(&mut core, &clock);
        assert!(*ready.borrow());
        let messages: u64 = conn.tracker.subscriptions().map(|v| v.messages).sum();
        assert_eq!(messages, 0, "a successor records nothing before it is live");
        live_tx.send(true).unwrap();
        core.on_text(&bybit_book("BTCUSDT"), &clock);
        let messages: u64 = conn.tracker.subscriptions().map(|v| v.messages).sum();
        assert_eq!(messages, 1);
    }

    #[test]
    fn undecodable_frames_are_counted_and_skipped() {
        let clock = TestClock::new();
        let conn = connection(Venue::BybitLinear, &["tickers"], &["BTCUSDT"], clock.unix());
        let mut core = Core::new(&conn, Control::live(), clock.now());
        for frame in [
            "not json",
            "{\"topic\":3}",
            r#"{"topic":"tickers.BTCUSDT","data":{"lastPrice":"x"}}"#,
        ] {
            assert_eq!(core.on_text(frame, &clock), None);
        }
        core.decode_error(&"binary frame");
        assert_eq!(conn.tracker.decode_errors(Venue::BybitLinear), 4);
    }
}
