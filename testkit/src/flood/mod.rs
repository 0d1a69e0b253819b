//! A loopback flood venue for throughput benchmarks: Binance combined streams and Bybit v5 public topics spoken as
//! the fakes in `fake` speak them, with data sent as fast as the socket accepts it. Used by the `ingest_vs` example.
//!
//! The protocol is the fakes' without their failure switches and limits: Binance spot `/stream` and USD-M
//! `/public/stream` | `/market/stream`, streams listed in the URL (`?streams=a/b`) or added with
//! `{"method":"SUBSCRIBE",..}` and acked `{"result":null,"id":N}`, a WebSocket ping every few seconds (pongs are
//! ignored); Bybit `/v5/public/{spot,linear,inverse}`, `{"op":"subscribe",..}` acked or refused as a whole, and
//! `{"op":"ping"}` answered with the market's pong. Keys the fake would ack and never serve (unknown channel, wrong
//! USD-M route, uppercase Binance symbol) are acked here too and stay silent.
//!
//! Once a connection has streams, it sends their frames round-robin in batches (`feed` then one `flush`). Each
//! frame is a real one from `tests/fixtures`, compacted, with the symbol and stream name of the subscription and
//! its clock fields (Binance `E` and trade `T`, Bybit `ts` and trade `T`) set to the current Unix ms. Frames are
//! rendered per stream and re-rendered only when the clock moves, which it does every 1000 frames or 5 ms.
//!
//! A paced flood ([`Flood::start_paced`]) sends each stream at its channel's rate instead, every 10 ms tick, each
//! frame stamped with the tick's time, times a factor the caller can raise for a burst ([`Pace`]). Used by the
//! `market_load` example.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{FutureExt, SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, sleep, sleep_until};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{StatusCode, Uri};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message, Utf8Bytes};

mod frames;
mod pace;

pub use frames::compact;
pub use pace::Pace;

use crate::fake::FakeKind;
use crate::fake::binance::Route;
use crate::fake::bybit;
use crate::fake::json::{Obj, array, quote};
use frames::{Template, binance_template, bybit_template};

/// Binance server pings on this cadence (the real ones come every 20 s on spot, 3 minutes on USD-M).
const PING_INTERVAL: Duration = Duration::from_secs(3);
/// Frames fed before a flush ends the batch, whichever of these comes first.
const BATCH_FRAMES: usize = 256;
const BATCH_BYTES: usize = 64 * 1024;
/// The clock in the frames moves after this many frames or this long, whichever comes first.
const CLOCK_FRAMES: u32 = 1000;
const CLOCK_EVERY: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);
/// Bybit spot refuses requests with more args than this.
const BYBIT_SPOT_MAX_ARGS: usize = 10;
/// A paced flood sends what is due this often.
const PACE_TICK: Duration = Duration::from_millis(10);
/// A paced connection that fell behind catches up at most this much time, not the whole backlog at once.
const PACE_CATCH_UP: Duration = Duration::from_secs(1);

/// A running flood venue; dropping it stops the listener and every connection.
pub struct Flood {
    kind: FakeKind,
    addr: SocketAddr,
    stats: Arc<Stats>,
    task: JoinHandle<()>,
}

/// What the connections report, without a lock on their hot path.
#[derive(Default)]
struct Stats {
    sent: AtomicU64,
    open: AtomicUsize,
    streams: AtomicUsize,
}

impl Flood {
    /// Binds 127.0.0.1:0 and starts accepting connections; data goes as fast as the socket takes it.
    pub async fn start(kind: FakeKind) -> Flood {
        Flood::start_with(kind, None).await
    }

    /// Binds 127.0.0.1:0 and starts accepting connections; each stream sends at its channel's rate in `pace`.
    pub async fn start_paced(kind: FakeKind, pace: Pace) -> Flood {
        Flood::start_with(kind, Some(pace)).await
    }

    async fn start_with(kind: FakeKind, pace: Option<Pace>) -> Flood {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("flood: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("flood: local address");
        let stats = Arc::new(Stats::default());
        let task = tokio::spawn(accept_loop(kind, pace, listener, stats.clone()));
        Flood {
            kind,
            addr,
            stats,
            task,
        }
    }

    /// As [`crate::fake::FakeVenue::base_url`]: Binance `ws://127.0.0.1:PORT` (the client appends its route),
    /// Bybit `ws://127.0.0.1:PORT/v5/public/{spot|linear|inverse}`.
    pub fn base_url(&self) -> String {
        format!("ws://{}{}", self.addr, bybit_path(self.kind).unwrap_or(""))
    }

    /// Data frames sent so far, on every connection (acks, pongs and pings not counted).
    pub fn frames_sent(&self) -> u64 {
        self.stats.sent.load(Relaxed)
    }

    /// Connections currently open.
    pub fn open_connections(&self) -> usize {
        self.stats.open.load(Relaxed)
    }

    /// Streams subscribed on open connections that deliver data (silent keys not counted).
    pub fn streams(&self) -> usize {
        self.stats.streams.load(Relaxed)
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        // The connections are in the accept loop's set: aborting it drops them all.
        self.task.abort();
    }
}

/// One data frame of `key` (a Binance stream name or a Bybit topic) as the flood sends it now, or `None` for a key
/// it serves no data for. For Binance USD-M the route is assumed right.
pub fn sample_frame(kind: FakeKind, key: &str) -> Option<String> {
    let template = match bybit_path(kind) {
        Some(_) => bybit_template(kind, key)?,
        None => binance_template(kind, None, key)?,
    };
    let clock = Clock::new();
    Some(template.render(&clock.text))
}

fn bybit_path(kind: FakeKind) -> Option<&'static str> {
    match kind {
        FakeKind::BinanceSpot | FakeKind::BinanceUsdm => None,
        FakeKind::BybitSpot => Some("/v5/public/spot"),
        FakeKind::BybitLinear => Some("/v5/public/linear"),
        FakeKind::BybitInverse => Some("/v5/public/inverse"),
    }
}

async fn accept_loop(kind: FakeKind, pace: Option<Pace>, listener: TcpListener, stats: Arc<Stats>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    conns.spawn(serve(kind, pace.clone(), tcp, stats.clone()));
                }
                // Out of descriptors and the like: back off instead of spinning.
                Err(_) => sleep(ACCEPT_BACKOFF).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Accepts the handshake for a known path: Binance `/stream`, `/public/stream`, `/market/stream` (with optional
/// `?streams=a/b`), or the Bybit market's own path. The route and the streams named in the URL.
fn open(kind: FakeKind, uri: &Uri) -> Option<(Option<Route>, Vec<String>)> {
    if let Some(path) = bybit_path(kind) {
        return (uri.path() == path).then(|| (None, Vec::new()));
    }
    let route = match (kind, uri.path()) {
        (FakeKind::BinanceSpot, "/stream") => Route::Spot,
        (FakeKind::BinanceUsdm, "/public/stream") => Route::Public,
        (FakeKind::BinanceUsdm, "/market/stream") => Route::Market,
        _ => return None,
    };
    let streams = (uri.query().unwrap_or_default().split('&'))
        .filter_map(|pair| pair.strip_prefix("streams="))
        .flat_map(|s| s.split('/'))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    Some((Some(route), streams))
}

async fn serve(kind: FakeKind, pace: Option<Pace>, tcp: TcpStream, stats: Arc<Stats>) {
    // Control replies are small and must not wait for Nagle behind a quiet client.
    let _ = tcp.set_nodelay(true);
    let mut opened = None;
    // The error type is tungstenite's `Callback` contract, not ours to shrink.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, resp: Response| {
        opened = open(kind, req.uri());
        if opened.is_some() {
            return Ok(resp);
        }
        let mut refusal = ErrorResponse::new(Some("Not Found".to_owned()));
        *refusal.status_mut() = StatusCode::NOT_FOUND;
        Err(refusal)
    };
    let handshake = tokio_tungstenite::accept_hdr_async(tcp, callback).await;
    let (Ok(ws), Some((route, url_streams))) = (handshake, opened) else {
        return;
    };
    stats.open.fetch_add(1, Relaxed);
    let mut conn = Conn {
        kind,
        route,
        conn_id: conn_id(),
        ws,
        live: Vec::new(),
        quiet: Vec::new(),
        next: 0,
        clock: Clock::new(),
        next_ping: Instant::now() + PING_INTERVAL,
        pace,
        last_tick: Instant::now(),
        stats,
    };
    for key in url_streams {
        conn.add(&key);
    }
    // Any error ends the connection: the client left or broke the protocol.
    let _ = conn.run().await;
}

/// The outcome of one step on a connection; `Err` ends it.
type Step = Result<(), WsError>;

/// One connection: the only owner (and writer) of its socket.
struct Conn {
    kind: FakeKind,
    /// Binance only.
    route: Option<Route>,
    /// Bybit only: the id its replies carry.
    conn_id: String,
    ws: WebSocketStream<TcpStream>,
    /// Subscribed streams that deliver, in subscription order.
    live: Vec<Live>,
    /// Subscribed keys that are acked and never deliver.
    quiet: Vec<String>,
    /// The round-robin position in `live`.
    next: usize,
    clock: Clock,
    next_ping: Instant,
    /// Paced floods only.
    pace: Option<Pace>,
    /// When a paced connection last sent what was due.
    last_tick: Instant,
    stats: Arc<Stats>,
}

/// One delivering stream and its frame at the current clock.
struct Live {
    key: String,
    template: Template,
    frame: Utf8Bytes,
    /// The clock `frame` was rendered for.
    at: u64,
    /// Paced floods: messages per second before the factor, and the fraction of one owed so far.
    per_second: f64,
    credit: f64,
}

impl Conn {
    async fn run(&mut self) -> Step {
        loop {
            self.answer_client().await?;
            if Instant::now() >= self.next_ping {
                self.next_ping = Instant::now() + PING_INTERVAL;
                // Bybit leaves heartbeats to the client.
                if self.route.is_some() {
                    let payload = Bytes::from(unix_ms().to_string());
                    self.ws.feed(Message::Ping(payload)).await?;
                }
            }
            if self.live.is_empty() {
                self.ws.flush().await?;
                // Nothing to send: wait for the client or the next ping (a no-op turn on Bybit).
                let frame = tokio::select! {
                    frame = self.ws.next() => frame,
                    () = sleep_until(self.next_ping) => continue,
                };
                self.on_frame(frame).await?;
                continue;
            }
            match self.pace.as_ref().map(Pace::factor) {
                Some(factor) => self.send_paced(factor).await?,
                None => self.send_batch().await?,
            }
        }
    }

    /// Handles every client frame that has already arrived, without waiting for more.
    async fn answer_client(&mut self) -> Step {
        while let Some(frame) = self.ws.next().now_or_never() {
            self.on_frame(frame).await?;
        }
        Ok(())
    }

    async fn on_frame(&mut self, frame: Option<Result<Message, WsError>>) -> Step {
        match frame {
            Some(Ok(Message::Text(text))) => {
                let Some(replies) = self.on_text(text.as_str()) else {
                    let frame = CloseFrame {
                        code: CloseCode::Policy,
                        reason: "Invalid request".into(),
                    };
                    self.ws.close(Some(frame)).await?;
                    return Err(WsError::ConnectionClosed);
                };
                for reply in replies {
                    self.ws.feed(Message::text(reply)).await?;
                }
                Ok(())
            }
            // tungstenite answers pings itself; pongs and binary frames ask for nothing.
            Some(Ok(
                Message::Ping(_) | Message::Pong(_) | Message::Binary(_) | Message::Frame(_),
            )) => Ok(()),
            Some(Ok(Message::Close(_))) | None => Err(WsError::ConnectionClosed),
            Some(Err(e)) => Err(e),
        }
    }

    /// The replies to one client text frame, or `None` when the connection must close as Binance closes it.
    fn on_text(&mut self, text: &str) -> Option<Vec<String>> {
        let Ok(request) = serde_json::from_str::<Value>(text) else {
            // Binance closes a connection that sends invalid JSON; Bybit ignores the frame.
            return self.route.is_none().then(Vec::new);
        };
        Some(match self.route {
            Some(_) => vec![self.binance_request(&request)],
            None => self.bybit_request(&request),
        })
    }

    /// SUBSCRIBE, UNSUBSCRIBE and LIST_SUBSCRIPTIONS, answered as Binance does.
    fn binance_request(&mut self, request: &Value) -> String {
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        let keys: Vec<&str> = (request.get("params").and_then(Value::as_array))
            .map(|p| p.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let result = match request.get("method").and_then(Value::as_str) {
            Some("SUBSCRIBE") => {
                keys.iter().for_each(|key| self.add(key));
                Ok("null".to_owned())
            }
            Some("UNSUBSCRIBE") => {
                keys.iter().for_each(|key| self.remove(key));
                Ok("null".to_owned())
            }
            Some("LIST_SUBSCRIPTIONS") => Ok(array(self.keys().map(quote))),
            _ => Err("Invalid request: unknown method"),
        };
        let reply = match result {
            Ok(result) => Obj::new().json("result", result),
            Err(msg) => Obj::new().json("error", Obj::new().json("code", 2).str("msg", msg).end()),
        };
        reply.json("id", id).end()
    }

    /// ping, subscribe and unsubscribe, answered as Bybit does: one bad topic fails the whole request.
    fn bybit_request(&mut self, request: &Value) -> Vec<String> {
        let req_id = match request.get("req_id") {
            None => String::new(),
            Some(Value::String(id)) => id.clone(),
            Some(other) => other.to_string(),
        };
        let op = request
            .get("op")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let args: Option<Vec<&str>> = (request.get("args").and_then(Value::as_array))
            .and_then(|a| a.iter().map(Value::as_str).collect());
        let outcome = match (op, args) {
            ("ping", _) => return vec![self.bybit_pong(&req_id)],
            ("subscribe", Some(args)) => self.bybit_subscribe(&args),
            ("unsubscribe", Some(args)) => {
                args.iter().for_each(|topic| self.remove(topic));
                Ok(())
            }
            ("subscribe" | "unsubscribe", None) => Err("error:args invalid".to_owned()),
            _ => return Vec::new(),
        };
        let spot = self.kind == FakeKind::BybitSpot;
        let reply = match outcome {
            // Spot echoes the op in `ret_msg` of a successful ack; linear and inverse leave it empty.
            Ok(()) => self.bybit_reply(true, if spot { op } else { "" }, &req_id, op),
            Err(ret_msg) => self.bybit_reply(false, &ret_msg, &req_id, op),
        };
        vec![reply]
    }

    fn bybit_subscribe(&mut self, args: &[&str]) -> Result<(), String> {
        if self.kind == FakeKind::BybitSpot && args.len() > BYBIT_SPOT_MAX_ARGS {
            return Err(format!("args size >{BYBIT_SPOT_MAX_ARGS}"));
        }
        if let Some(bad) = args.iter().find(|t| bybit::parse_topic(t).is_none()) {
            return Err(format!("error:handler not found,topic:{bad}"));
        }
        let repeated = args
            .iter()
            .enumerate()
            .find(|(i, t)| self.keys().any(|k| k == **t) || args[..*i].contains(t));
        if let Some((_, topic)) = repeated {
            return Err(format!("error:already subscribed,topic:{topic}"));
        }
        args.iter().for_each(|topic| self.add(topic));
        Ok(())
    }

    /// Spot's pong has no `req_id`; linear and inverse echo it (empty when the ping had none).
    fn bybit_pong(&self, req_id: &str) -> String {
        let pong = Obj::new()
            .json("success", true)
            .str("ret_msg", "pong")
            .str("conn_id", &self.conn_id);
        pong.when(self.kind != FakeKind::BybitSpot, |o| {
            o.str("req_id", req_id)
        })
        .str("op", "ping")
        .end()
    }

    fn bybit_reply(&self, success: bool, ret_msg: &str, req_id: &str, op: &str) -> String {
        bybit::reply(&self.conn_id, success, ret_msg, req_id, op)
    }

    fn keys(&self) -> impl Iterator<Item = &str> {
        let live = self.live.iter().map(|l| l.key.as_str());
        live.chain(self.quiet.iter().map(String::as_str))
    }

    /// Subscribes one key; an existing subscription is kept as is.
    fn add(&mut self, key: &str) {
        if self.keys().any(|k| k == key) {
            return;
        }
        let template = match self.route {
            Some(route) => binance_template(self.kind, Some(route), key),
            None => bybit_template(self.kind, key),
        };
        let Some(template) = template else {
            self.quiet.push(key.to_owned());
            return;
        };
        let frame = Utf8Bytes::from(template.render(&self.clock.text));
        let per_second = (self.pace.as_ref()).map_or(0.0, |p| p.per_second(self.kind, key));
        self.live.push(Live {
            key: key.to_owned(),
            template,
            frame,
            at: self.clock.ms,
            per_second,
            credit: pace::phase(key),
        });
        self.stats.streams.fetch_add(1, Relaxed);
    }

    fn remove(&mut self, key: &str) {
        self.quiet.retain(|k| k != key);
        let before = self.live.len();
        self.live.retain(|l| l.key != key);
        self.stats
            .streams
            .fetch_sub(before - self.live.len(), Relaxed);
    }

    /// Feeds the next frames round-robin until the batch is full, then flushes them.
    async fn send_batch(&mut self) -> Step {
        let (mut frames, mut bytes) = (0, 0);
        while frames < BATCH_FRAMES && bytes < BATCH_BYTES {
            self.next = (self.next + 1) % self.live.len();
            let live = &mut self.live[self.next];
            if live.at != self.clock.ms {
                live.frame = Utf8Bytes::from(live.template.render(&self.clock.text));
                live.at = self.clock.ms;
            }
            bytes += live.frame.len();
            frames += 1;
            // A clone of the rendered frame is a reference count, not a copy.
            self.ws.feed(Message::Text(live.frame.clone())).await?;
        }
        self.ws.flush().await?;
        self.stats.sent.fetch_add(frames as u64, Relaxed);
        self.clock.advance(frames as u32);
        Ok(())
    }
}

impl Conn {
    /// Paced: waits for the next tick (answering the client meanwhile), then sends every frame that came due since
    /// the last one, each stamped with this tick's time.
    async fn send_paced(&mut self, factor: f64) -> Step {
        let due = self.last_tick + PACE_TICK;
        if Instant::now() < due {
            self.ws.flush().await?;
            tokio::select! {
                frame = self.ws.next() => return self.on_frame(frame).await,
                () = sleep_until(due) => {}
            }
        }
        let now = Instant::now();
        let elapsed = now.duration_since(self.last_tick).min(PACE_CATCH_UP);
        self.last_tick = now;
        let clock = Clock::new();
        let mut frames = 0;
        for live in &mut self.live {
            live.credit += live.per_second * factor * elapsed.as_secs_f64();
            while live.credit >= 1.0 {
                live.credit -= 1.0;
                frames += 1;
                let frame = live.template.render(&clock.text);
                self.ws.feed(Message::text(frame)).await?;
            }
        }
        self.ws.flush().await?;
        self.stats.sent.fetch_add(frames, Relaxed);
        Ok(())
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.stats.streams.fetch_sub(self.live.len(), Relaxed);
        self.stats.open.fetch_sub(1, Relaxed);
    }
}

/// The Unix ms the frames carry, moved on cheaply rather than read per frame.
struct Clock {
    ms: u64,
    /// `ms` in decimal: 13 digits until the year 2286.
    text: String,
    since: std::time::Instant,
    frames: u32,
}

impl Clock {
    fn new() -> Clock {
        let ms = unix_ms();
        Clock {
            ms,
            text: ms.to_string(),
            since: std::time::Instant::now(),
            frames: 0,
        }
    }

    /// Counts `frames` sent; reads the time again when enough frames or time have passed.
    fn advance(&mut self, frames: u32) {
        self.frames += frames;
        if self.frames >= CLOCK_FRAMES || self.since.elapsed() >= CLOCK_EVERY {
            *self = Clock::new();
        }
    }
}

/// Wall-clock milliseconds, the unit of every exchange timestamp.
fn unix_ms() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

/// A UUID-shaped id, like the `conn_id`s Bybit hands out.
fn conn_id() -> String {
    static CONNECTIONS: AtomicU64 = AtomicU64::new(0);
    let n = CONNECTIONS.fetch_add(1, Relaxed);
    let mixed = (unix_ms() ^ n.rotate_left(32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    format!(
        "{:08x}-{:04x}-4{:03x}-b{:03x}-{:012x}",
        mixed >> 32,
        n & 0xffff,
        mixed & 0xfff,
        (mixed >> 12) & 0xfff,
        mixed >> 16
    )
}
