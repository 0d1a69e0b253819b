//! Fake Binance and Bybit public WebSocket servers on 127.0.0.1 with live switches for failure modes.
//!
//! Owns the public handle tests hold ([`FakeVenue`]), the live settings and everything tests observe.
//! Sockets and timers live in `conn`, each venue's control protocol and payloads in `binance` and
//! `bybit`, the shared price model in `book`, ordered JSON writing in `json`. Depends on nothing from the
//! exporter crate.

pub(crate) mod binance;
mod book;
pub(crate) mod bybit;
mod conn;
pub(crate) mod json;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep};

/// Data cadence per subscribed stream; fast so tests see several frames in a few hundred ms.
const DEFAULT_DATA_INTERVAL: Duration = Duration::from_millis(50);
/// Binance server ping cadence. Pongs count toward spot's 5 messages/s, so at 200 ms they alone would use the
/// whole budget and the first SUBSCRIBE of a well-behaved client would get it cut.
const DEFAULT_PING_INTERVAL: Duration = Duration::from_millis(500);
const DEFAULT_PONG_TIMEOUT: Duration = Duration::from_secs(1);
/// Bybit cuts after ~10 min without a ping; scaled down so tests can see it.
const DEFAULT_IDLE_CUT: Duration = Duration::from_secs(10);
/// How often `wait_for` re-checks its condition.
const WAIT_POLL: Duration = Duration::from_millis(20);

/// Which venue and market a fake impersonates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeKind {
    /// Binance spot: `/stream` (combined) or `/ws` (raw), 5 client messages/s.
    BinanceSpot,
    /// Binance USD-M: `/public/...` and `/market/...` routes, 10 client messages/s.
    BinanceUsdm,
    /// Bybit v5 `/v5/public/spot`: at most 10 args per request.
    BybitSpot,
    /// Bybit v5 `/v5/public/linear`.
    BybitLinear,
    /// Bybit v5 `/v5/public/inverse`.
    BybitInverse,
}

impl FakeKind {
    /// Prefix of every violation this fake records, e.g. `binance usdm`.
    fn label(self) -> &'static str {
        match self {
            FakeKind::BinanceSpot => "binance spot",
            FakeKind::BinanceUsdm => "binance usdm",
            FakeKind::BybitSpot => "bybit spot",
            FakeKind::BybitLinear => "bybit linear",
            FakeKind::BybitInverse => "bybit inverse",
        }
    }

    fn is_binance(self) -> bool {
        matches!(self, FakeKind::BinanceSpot | FakeKind::BinanceUsdm)
    }

    /// Binance's documented incoming-message budget per connection and second.
    fn rate_limit(self) -> Option<usize> {
        match self {
            FakeKind::BinanceSpot => Some(5),
            FakeKind::BinanceUsdm => Some(10),
            _ => None,
        }
    }
}

/// A running fake venue. Clones share one server; dropping the last clone (or [`FakeVenue::shutdown`])
/// stops the listener and drops every connection.
#[derive(Clone)]
pub struct FakeVenue {
    shared: Arc<Shared>,
    stop: Arc<watch::Sender<bool>>,
}

impl FakeVenue {
    /// Binds 127.0.0.1:0 and starts accepting connections.
    pub async fn start(kind: FakeKind) -> FakeVenue {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake venue: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fake venue: local address");
        let shared = Arc::new(Shared {
            kind,
            addr,
            state: Mutex::new(State::default()),
        });
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(conn::accept_loop(shared.clone(), listener, stopped));
        FakeVenue {
            shared,
            stop: Arc::new(stop),
        }
    }

    /// Binance: `ws://127.0.0.1:PORT` (the client appends `/stream`, or `/public/stream` | `/market/stream`
    /// for USD-M). Bybit: `ws://127.0.0.1:PORT/v5/public/{spot|linear|inverse}`.
    pub fn base_url(&self) -> String {
        let market = match self.shared.kind {
            FakeKind::BinanceSpot | FakeKind::BinanceUsdm => "",
            FakeKind::BybitSpot => "/v5/public/spot",
            FakeKind::BybitLinear => "/v5/public/linear",
            FakeKind::BybitInverse => "/v5/public/inverse",
        };
        format!("ws://{}{market}", self.shared.addr)
    }

    /// Stops the listener and drops every connection without a close frame.
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }

    /// Time between data frames of each subscribed stream (default 50 ms).
    pub fn set_data_interval(&self, d: Duration) {
        self.configure(|s| s.data_interval = d);
    }

    /// Binance only: time between server pings (default 500 ms).
    pub fn set_ping_interval(&self, d: Duration) {
        self.configure(|s| s.ping_interval = d);
    }

    /// Binance only: how long a ping may stay unanswered before the 1008 "Pong timeout" close (default 1 s).
    pub fn set_pong_timeout(&self, d: Duration) {
        self.configure(|s| s.pong_timeout = d);
    }

    /// Bybit only: close a connection whose client sent no JSON ping for this long (default 10 s).
    pub fn set_idle_cut(&self, d: Duration) {
        self.configure(|s| s.idle_cut = d);
    }

    /// Off: Bybit acks carry `"req_id":""`, as in the documented linear ack, instead of echoing ours.
    pub fn set_echo_req_id(&self, on: bool) {
        self.configure(|s| s.echo_req_id = on);
    }

    /// On: no data frames (Bybit initial snapshots included) on any connection; sockets and heartbeats go on.
    pub fn set_silent(&self, on: bool) {
        self.configure(|s| s.silent = on);
    }

    /// Off: Binance sends no pings (and enforces no pong deadline); Bybit ignores JSON pings. Data goes on.
    pub fn set_heartbeat(&self, on: bool) {
        self.configure(|s| s.heartbeat = on);
    }

    /// The stream's current subscriptions stop delivering, though still subscribed, until the client
    /// unsubscribes and subscribes it again or subscribes it on a new connection.
    pub fn stall_until_resubscribe(&self, wire_key: &str) {
        for conn in self.shared.lock().conns.values_mut() {
            if let Some(sub) = conn.subs.get_mut(wire_key) {
                sub.stalled = true;
            }
        }
    }

    /// Subscribe requests naming this key fail as a whole, in the venue's own error shape.
    pub fn reject(&self, wire_key: &str) {
        self.shared.lock().rejected.insert(wire_key.to_owned());
    }

    /// Subscribe requests naming this key are accepted again.
    pub fn accept(&self, wire_key: &str) {
        self.shared.lock().rejected.remove(wire_key);
    }

    /// The key is acked normally and then never delivers, like Binance with an unknown symbol.
    pub fn never_deliver(&self, wire_key: &str) {
        self.set_muted(wire_key, true);
    }

    /// On: the key delivers nothing on any connection, whatever the client does (resubscribes and reconnects
    /// included), until switched off; subscriptions are still acked. On an event-driven channel this is a quiet
    /// market, on a scheduled one a feed the venue stopped serving.
    pub fn set_muted(&self, wire_key: &str, on: bool) {
        let mut state = self.shared.lock();
        if on {
            state.muted.insert(wire_key.to_owned());
        } else {
            state.muted.remove(wire_key);
        }
    }

    /// Sends `text` as one text frame on each open connection, as it is.
    pub fn send_raw(&self, text: &str) {
        self.shared.broadcast(Cmd::Raw(text.to_owned()));
    }

    /// Sends one text frame whose payload is not UTF-8 on each open connection.
    pub fn send_invalid_utf8(&self) {
        self.shared.broadcast(Cmd::InvalidUtf8);
    }

    /// Sends one truncated JSON text frame on each open connection.
    pub fn send_malformed(&self) {
        self.shared.broadcast(Cmd::Malformed);
    }

    /// Binance: sends `!serverShutdown` on each connection and closes it 1 s later. Bybit has no such event.
    pub fn send_server_shutdown(&self) {
        self.shared.broadcast(Cmd::ServerShutdown);
    }

    /// Sends a close frame (1000) on every open connection.
    pub fn close_all(&self) {
        self.shared.broadcast(Cmd::Close);
    }

    /// Resets every TCP connection (RST, no close frame).
    pub fn reset_all(&self) {
        self.shared.broadcast(Cmd::Reset);
    }

    /// On: TCP is accepted but the WebSocket handshake is answered with HTTP 503.
    pub fn refuse_connections(&self, on: bool) {
        self.refuse_handshake(on.then_some(503));
    }

    /// Every new connection waits this long before its WebSocket handshake is answered, as a venue far away or
    /// under load: a reconnect then costs at least this much.
    pub fn set_handshake_delay(&self, d: Duration) {
        self.configure(|s| s.handshake_delay = d);
    }

    /// Some(status): TCP is accepted but the WebSocket handshake is answered with that HTTP status, as Binance
    /// answers 451 from a restricted location, or a proxy 403 or 429.
    pub fn refuse_handshake(&self, status: Option<u16>) {
        self.configure(|s| s.refuse = status);
    }

    /// Closes (1001) each connection when it reaches this age, like Binance's 24 h limit. `None`: no limit.
    pub fn set_lifetime(&self, d: Option<Duration>) {
        self.configure(|s| s.lifetime = d);
    }

    /// Successful WebSocket handshakes so far.
    pub fn connections_accepted(&self) -> usize {
        self.shared.lock().accepted
    }

    /// TCP connections that started a handshake, successful or not.
    pub fn handshake_attempts(&self) -> usize {
        self.shared.lock().attempts
    }

    /// Connections currently open (closing ones are already gone).
    pub fn open_connections(&self) -> usize {
        self.shared.lock().conns.len()
    }

    /// Request paths (without query) of accepted handshakes, in order, e.g. `/market/stream`.
    pub fn paths(&self) -> Vec<String> {
        self.shared.lock().paths.clone()
    }

    /// Wire keys subscribed on open connections, sorted; a key subscribed on two connections appears twice.
    pub fn subscribed(&self) -> Vec<String> {
        let st = self.shared.lock();
        let mut keys: Vec<String> = st
            .conns
            .values()
            .flat_map(|c| c.subs.keys().cloned())
            .collect();
        keys.sort();
        keys
    }

    /// Forgets the client frames and connection paths recorded so far, so a long run's memory is the exporter's,
    /// not this log's.
    pub fn forget_history(&self) {
        let mut st = self.shared.lock();
        st.client_messages = Vec::new();
        st.paths = Vec::new();
    }

    /// Every text frame received from clients, in arrival order.
    pub fn client_messages(&self) -> Vec<String> {
        self.shared.lock().client_messages.clone()
    }

    /// Binance: WebSocket pong frames received.
    pub fn pongs_received(&self) -> usize {
        self.shared.lock().pongs
    }

    /// Protocol violations by clients, each prefixed with the venue label, e.g.
    /// `binance spot: 6 messages in 1 s (limit 5)`.
    pub fn violations(&self) -> Vec<String> {
        self.shared.lock().violations.clone()
    }

    /// Polls `cond` every 20 ms; panics naming `what` (and the fake's state) if it is not met in `timeout`.
    pub async fn wait_for(&self, what: &str, timeout: Duration, cond: impl Fn(&FakeVenue) -> bool) {
        let deadline = Instant::now() + timeout;
        while !cond(self) {
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; open connections {}, subscribed {:?}, violations {:?}",
                self.open_connections(),
                self.subscribed(),
                self.violations(),
            );
            sleep(WAIT_POLL).await;
        }
    }

    fn configure(&self, change: impl FnOnce(&mut Settings)) {
        change(&mut self.shared.lock().settings);
        // Connections compute their deadlines from the settings; wake them so a change applies at once.
        self.shared.broadcast(Cmd::Retime);
    }
}

/// Live knobs, read by every connection on each turn of its loop.
#[derive(Debug, Clone, Copy)]
struct Settings {
    data_interval: Duration,
    ping_interval: Duration,
    pong_timeout: Duration,
    idle_cut: Duration,
    lifetime: Option<Duration>,
    silent: bool,
    heartbeat: bool,
    refuse: Option<u16>,
    echo_req_id: bool,
    handshake_delay: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_interval: DEFAULT_DATA_INTERVAL,
            ping_interval: DEFAULT_PING_INTERVAL,
            pong_timeout: DEFAULT_PONG_TIMEOUT,
            idle_cut: DEFAULT_IDLE_CUT,
            lifetime: None,
            silent: false,
            heartbeat: true,
            refuse: None,
            echo_req_id: true,
            handshake_delay: Duration::ZERO,
        }
    }
}

/// Everything tests observe and control, behind one lock that is never held across an `.await`.
#[derive(Default)]
struct State {
    settings: Settings,
    rejected: BTreeSet<String>,
    muted: BTreeSet<String>,
    conns: BTreeMap<u64, ConnEntry>,
    next_conn: u64,
    attempts: usize,
    accepted: usize,
    paths: Vec<String>,
    client_messages: Vec<String>,
    pongs: usize,
    violations: Vec<String>,
}

/// An open connection as the rest of the fake sees it.
struct ConnEntry {
    /// Unbounded because control calls are synchronous (tests call them outside async code) and rare.
    cmds: mpsc::UnboundedSender<Cmd>,
    subs: BTreeMap<String, Sub>,
}

/// One subscribed stream on one connection.
struct Sub {
    /// False for keys the venue acks but never serves (unknown channel, wrong route, uppercase symbol).
    live: bool,
    stalled: bool,
    /// Frames sent so far; drives ids and the price wave, and tells snapshot (0) from delta.
    seq: u64,
}

struct Shared {
    kind: FakeKind,
    addr: SocketAddr,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock must not turn every later observation into a second panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn broadcast(&self, cmd: Cmd) {
        for conn in self.lock().conns.values() {
            // A closed receiver means the connection is on its way out; nothing to tell it.
            let _ = conn.cmds.send(cmd.clone());
        }
    }
}

/// Control events delivered to every open connection.
#[derive(Debug, Clone)]
enum Cmd {
    Retime,
    Malformed,
    Raw(String),
    InvalidUtf8,
    ServerShutdown,
    Close,
    Reset,
}
