//! One connection per task: the handshake, the select loop that is the socket's only writer, timers
//! (data, Binance pings and pong deadline, Bybit idle cut, lifetime), the Binance rate limit and closes.
//!
//! Knows no venue's JSON: a [`Session`] answers client frames and builds data frames.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{StatusCode, Uri};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data as OpData, OpCode};
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message};

use super::book::unix_ms;
use super::{Cmd, ConnEntry, FakeKind, Settings, Shared, Sub, binance, bybit};

/// Binance closes a connection this long after announcing `serverShutdown`.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// How long a closing side waits for the peer's close frame before dropping the socket.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// A client that opens TCP and never finishes the handshake must not pin a task forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);
/// Stands in for "no deadline" when every interval is too large to schedule.
const FAR_FUTURE: Duration = Duration::from_secs(365 * 24 * 3600);

/// What a venue session asks its connection driver to do.
pub(super) enum Out {
    /// Send a text frame.
    Text(String),
    /// Send a close frame with this code and reason, then end the connection.
    Close(u16, &'static str),
    /// The client sent its application-level heartbeat (Bybit JSON ping).
    KeepAlive,
}

/// A venue's side of one connection: control protocol and payloads, no socket.
pub(super) trait Session: Sized + Send + 'static {
    /// Accepts the handshake for this request target, or refuses it with 404.
    fn open(kind: FakeKind, uri: &Uri) -> Option<Self>;
    /// Runs once the connection is registered (streams named in the URL, path checks).
    fn on_open(&mut self, _link: &Link) -> Vec<Out> {
        Vec::new()
    }
    /// Answers one client text frame.
    fn on_text(&mut self, link: &Link, text: &str) -> Vec<Out>;
    /// The `seq`-th data frame of a subscribed stream, or `None` for keys this fake cannot serve.
    fn frame(&self, key: &str, seq: u64) -> Option<String>;
    /// One truncated frame shaped like this venue's data.
    fn malformed(&self, link: &Link) -> String;
    /// The venue's maintenance notice, if it has one.
    fn shutdown_notice(&self) -> Option<String>;
}

/// A session's handle on its connection's shared state. Dropping it unregisters the connection.
pub(super) struct Link {
    shared: Arc<Shared>,
    id: u64,
}

impl Link {
    pub(super) fn kind(&self) -> FakeKind {
        self.shared.kind
    }

    pub(super) fn settings(&self) -> Settings {
        self.shared.lock().settings
    }

    /// Records a client protocol violation, prefixed with the venue label.
    pub(super) fn violation(&self, what: impl std::fmt::Display) {
        let line = format!("{}: {what}", self.kind().label());
        self.shared.lock().violations.push(line);
    }

    pub(super) fn is_rejected(&self, key: &str) -> bool {
        self.shared.lock().rejected.contains(key)
    }

    /// This connection's subscribed keys, sorted.
    pub(super) fn subscriptions(&self) -> Vec<String> {
        let st = self.shared.lock();
        st.conns
            .get(&self.id)
            .map(|c| c.subs.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Adds a subscription; an existing one is kept as is (a repeated SUBSCRIBE does not clear a stall).
    pub(super) fn subscribe(&self, key: &str, live: bool) {
        if let Some(conn) = self.shared.lock().conns.get_mut(&self.id) {
            conn.subs.entry(key.to_owned()).or_insert(Sub {
                live,
                stalled: false,
                seq: 0,
            });
        }
    }

    pub(super) fn unsubscribe(&self, key: &str) {
        if let Some(conn) = self.shared.lock().conns.get_mut(&self.id) {
            conn.subs.remove(key);
        }
    }

    /// Claims the next frame number of one stream if it may deliver now.
    pub(super) fn take_frame(&self, key: &str) -> Option<u64> {
        let mut st = self.shared.lock();
        let st = &mut *st;
        let sub = st.conns.get_mut(&self.id)?.subs.get_mut(key)?;
        deliverable(sub, key, &st.muted, &st.settings).then(|| next_seq(sub))
    }

    /// Claims the next frame number of every stream that may deliver now.
    pub(super) fn take_due(&self) -> Vec<(String, u64)> {
        let mut st = self.shared.lock();
        let st = &mut *st;
        let Some(conn) = st.conns.get_mut(&self.id) else {
            return Vec::new();
        };
        conn.subs
            .iter_mut()
            .filter(|(key, sub)| deliverable(sub, key, &st.muted, &st.settings))
            .map(|(key, sub)| (key.clone(), next_seq(sub)))
            .collect()
    }

    fn unregister(&self) {
        self.shared.lock().conns.remove(&self.id);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.unregister();
    }
}

fn deliverable(sub: &Sub, key: &str, muted: &BTreeSet<String>, settings: &Settings) -> bool {
    sub.live && !sub.stalled && !settings.silent && !muted.contains(key)
}

fn next_seq(sub: &mut Sub) -> u64 {
    sub.seq += 1;
    sub.seq - 1
}

pub(super) async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    tokio::spawn(serve(shared.clone(), tcp, stop.clone()));
                }
                // Out of descriptors and the like: back off instead of spinning.
                Err(_) => sleep(ACCEPT_BACKOFF).await,
            },
        }
    }
}

async fn serve(shared: Arc<Shared>, tcp: TcpStream, stop: watch::Receiver<bool>) {
    let delay = {
        let mut state = shared.lock();
        state.attempts += 1;
        state.settings.handshake_delay
    };
    tokio::time::sleep(delay).await;
    match shared.kind {
        FakeKind::BinanceSpot | FakeKind::BinanceUsdm => {
            serve_as::<binance::Session>(shared, tcp, stop).await
        }
        FakeKind::BybitSpot | FakeKind::BybitLinear | FakeKind::BybitInverse => {
            serve_as::<bybit::Session>(shared, tcp, stop).await;
        }
    }
}

async fn serve_as<S: Session>(shared: Arc<Shared>, tcp: TcpStream, stop: watch::Receiver<bool>) {
    let mut opened: Option<(S, String)> = None;
    // The error type is tungstenite's `Callback` contract, not ours to shrink.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, resp: Response| {
        if let Some(status) = shared.lock().settings.refuse {
            return Err(http_error(
                StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            ));
        }
        let session =
            S::open(shared.kind, req.uri()).ok_or_else(|| http_error(StatusCode::NOT_FOUND))?;
        opened = Some((session, req.uri().path().to_owned()));
        Ok(resp)
    };
    let handshake = timeout(
        HANDSHAKE_TIMEOUT,
        tokio_tungstenite::accept_hdr_async(tcp, callback),
    )
    .await;
    let (Ok(Ok(ws)), Some((session, path))) = (handshake, opened) else {
        return;
    };

    let (cmds_tx, cmds) = mpsc::unbounded_channel();
    let id = {
        let mut st = shared.lock();
        st.accepted += 1;
        st.paths.push(path);
        st.next_conn += 1;
        let id = st.next_conn;
        st.conns.insert(
            id,
            ConnEntry {
                cmds: cmds_tx,
                subs: BTreeMap::new(),
            },
        );
        id
    };
    let now = Instant::now();
    let driver = Driver {
        link: Link { shared, id },
        session,
        ws,
        cmds,
        stop,
        opened: now,
        last_data: now,
        last_ping: now,
        last_client_ping: now,
        pending_pings: VecDeque::new(),
        recent: VecDeque::new(),
        closing_at: None,
    };
    driver.run().await;
}

fn http_error(status: StatusCode) -> ErrorResponse {
    let mut resp = ErrorResponse::new(Some(
        status.canonical_reason().unwrap_or("error").to_owned(),
    ));
    *resp.status_mut() = status;
    resp
}

/// The outcome of one event on a connection: `Err` ends it, the way named by [`End`].
type Step = Result<(), End>;

/// Why a connection's loop ended.
enum End {
    /// Send a close frame, then wait briefly for the client's.
    Close(u16, &'static str),
    /// The client started the closing handshake: let tungstenite answer it.
    Drain,
    /// RST the TCP connection.
    Reset,
    /// Just drop the socket (fake shut down, or the socket already failed).
    Drop,
}

#[derive(Debug, Clone, Copy)]
enum Timer {
    Data,
    Ping,
    PongTimeout,
    IdleCut,
    Lifetime,
    ShutdownClose,
}

/// One connection: the only owner (and writer) of its socket.
struct Driver<S> {
    link: Link,
    session: S,
    ws: WebSocketStream<TcpStream>,
    cmds: mpsc::UnboundedReceiver<Cmd>,
    stop: watch::Receiver<bool>,
    opened: Instant,
    last_data: Instant,
    last_ping: Instant,
    last_client_ping: Instant,
    /// Binance pings not yet echoed: payload and send time.
    pending_pings: VecDeque<(String, Instant)>,
    /// Arrival times of client frames within the last second (Binance rate limit).
    recent: VecDeque<Instant>,
    closing_at: Option<Instant>,
}

impl<S: Session> Driver<S> {
    async fn run(mut self) {
        match self.pump().await {
            End::Close(code, reason) => {
                self.link.unregister();
                let frame = CloseFrame {
                    code: code.into(),
                    reason: reason.into(),
                };
                // The peer may already be gone; the drain below then ends at once.
                let _ = self.ws.close(Some(frame)).await;
                self.drain().await;
            }
            End::Drain => {
                self.link.unregister();
                self.drain().await;
            }
            End::Reset => {
                // Zero linger turns the close into an RST: the abrupt drop the test asked for.
                let _ = self.ws.get_ref().set_zero_linger();
            }
            End::Drop => {}
        }
    }

    /// Serves the connection until something ends it.
    async fn pump(&mut self) -> End {
        let outs = self.session.on_open(&self.link);
        if let Err(end) = self.perform(outs).await {
            return end;
        }
        loop {
            let settings = self.link.settings();
            if !settings.heartbeat {
                // A ping sent before heartbeats were switched off must not time out once they are back.
                self.pending_pings.clear();
            }
            let (when, timer) = self.next_timer(&settings);
            let step = tokio::select! {
                _ = self.stop.changed() => Err(End::Drop),
                cmd = self.cmds.recv() => match cmd {
                    Some(cmd) => self.on_cmd(cmd).await,
                    None => Err(End::Drop),
                },
                frame = self.ws.next() => self.on_frame(frame).await,
                () = sleep_until(when) => self.on_timer(timer, &settings).await,
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    async fn drain(&mut self) {
        let _ = timeout(CLOSE_GRACE, async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }

    /// The earliest pending deadline. Durations too large to add to an `Instant` mean "never".
    fn next_timer(&self, s: &Settings) -> (Instant, Timer) {
        let kind = self.link.kind();
        let binance_heartbeat = kind.is_binance() && s.heartbeat;
        let pong_due = self
            .pending_pings
            .front()
            .filter(|_| binance_heartbeat)
            .map(|(_, sent)| *sent);
        let closing = self
            .closing_at
            .map(|at| (at, Duration::ZERO, Timer::ShutdownClose));
        [
            Some((self.last_data, s.data_interval, Timer::Data)),
            binance_heartbeat.then_some((self.last_ping, s.ping_interval, Timer::Ping)),
            pong_due.map(|sent| (sent, s.pong_timeout, Timer::PongTimeout)),
            (!kind.is_binance()).then_some((self.last_client_ping, s.idle_cut, Timer::IdleCut)),
            s.lifetime.map(|life| (self.opened, life, Timer::Lifetime)),
            closing,
        ]
        .into_iter()
        .flatten()
        .filter_map(|(from, after, timer)| Some((from.checked_add(after)?, timer)))
        .min_by_key(|(at, _)| *at)
        .unwrap_or((Instant::now() + FAR_FUTURE, Timer::Data))
    }

    async fn on_timer(&mut self, timer: Timer, s: &Settings) -> Step {
        let now = Instant::now();
        match timer {
            Timer::Data => {
                self.last_data = now;
                let frames: Vec<Out> = (self.link.take_due().into_iter())
                    .filter_map(|(key, seq)| self.session.frame(&key, seq))
                    .map(Out::Text)
                    .collect();
                self.perform(frames).await
            }
            Timer::Ping => {
                self.last_ping = now;
                let payload = unix_ms().to_string();
                self.pending_pings.push_back((payload.clone(), now));
                self.send(Message::Ping(Bytes::from(payload))).await
            }
            Timer::PongTimeout => {
                self.link.violation(format_args!(
                    "no pong within {:?} of a ping",
                    s.pong_timeout
                ));
                Err(End::Close(1008, "Pong timeout"))
            }
            Timer::IdleCut => {
                self.link
                    .violation(format_args!("JSON ping missing for {:?}", s.idle_cut));
                Err(End::Close(1001, "Idle timeout"))
            }
            Timer::Lifetime => Err(End::Close(1001, "Connection lifetime reached")),
            Timer::ShutdownClose => Err(End::Close(1001, "Server shutdown")),
        }
    }

    async fn on_cmd(&mut self, cmd: Cmd) -> Step {
        match cmd {
            Cmd::Retime => Ok(()),
            Cmd::Malformed => {
                let text = self.session.malformed(&self.link);
                self.perform(vec![Out::Text(text)]).await
            }
            Cmd::Raw(text) => self.perform(vec![Out::Text(text)]).await,
            Cmd::InvalidUtf8 => {
                let frame = Frame::message(
                    vec![b'{', 0xff, 0xfe, b'}'],
                    OpCode::Data(OpData::Text),
                    true,
                );
                self.send(Message::Frame(frame)).await
            }
            Cmd::ServerShutdown => {
                let Some(notice) = self.session.shutdown_notice() else {
                    return Ok(());
                };
                self.closing_at = Some(Instant::now() + SHUTDOWN_GRACE);
                self.perform(vec![Out::Text(notice)]).await
            }
            Cmd::Close => Err(End::Close(1000, "")),
            Cmd::Reset => Err(End::Reset),
        }
    }

    async fn on_frame(&mut self, frame: Option<Result<Message, WsError>>) -> Step {
        let Some(Ok(msg)) = frame else {
            return Err(End::Drop);
        };
        if let Message::Text(text) = &msg {
            self.link
                .shared
                .lock()
                .client_messages
                .push(text.as_str().to_owned());
        }
        if !matches!(msg, Message::Close(_) | Message::Frame(_)) {
            self.count_message()?;
        }
        match msg {
            Message::Text(text) => {
                let outs = self.session.on_text(&self.link, text.as_str());
                self.perform(outs).await
            }
            Message::Binary(_) => {
                self.link.violation("binary frame from client");
                Ok(())
            }
            Message::Pong(payload) => {
                self.on_pong(&payload);
                Ok(())
            }
            Message::Close(_) => Err(End::Drain),
            // tungstenite answers pings itself.
            Message::Ping(_) | Message::Frame(_) => Ok(()),
        }
    }

    /// Binance counts every incoming frame, pings and pongs included, and disconnects past the limit.
    fn count_message(&mut self) -> Step {
        let Some(limit) = self.link.kind().rate_limit() else {
            return Ok(());
        };
        let now = Instant::now();
        self.recent.push_back(now);
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            self.recent.pop_front();
        }
        if self.recent.len() <= limit {
            return Ok(());
        }
        self.link.violation(format_args!(
            "{} messages in 1 s (limit {limit})",
            self.recent.len()
        ));
        Err(End::Close(1008, "Too many requests"))
    }

    fn on_pong(&mut self, payload: &[u8]) {
        self.link.shared.lock().pongs += 1;
        // Unsolicited pongs are allowed (Binance recommends an empty payload) but answer nothing.
        if payload.is_empty() || !self.link.kind().is_binance() {
            return;
        }
        let text = String::from_utf8_lossy(payload);
        match self
            .pending_pings
            .iter()
            .position(|(sent, _)| *sent == text)
        {
            Some(i) => drop(self.pending_pings.drain(..=i)),
            None => self
                .link
                .violation(format_args!("pong payload {text:?} echoes no ping")),
        }
    }

    async fn perform(&mut self, outs: Vec<Out>) -> Step {
        for out in outs {
            match out {
                Out::Text(text) => self.send(Message::text(text)).await?,
                Out::Close(code, reason) => return Err(End::Close(code, reason)),
                Out::KeepAlive => self.last_client_ping = Instant::now(),
            }
        }
        Ok(())
    }

    async fn send(&mut self, msg: Message) -> Step {
        self.ws.send(msg).await.map_err(|_| End::Drop)
    }
}
