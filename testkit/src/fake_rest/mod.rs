//! Fake Binance spot, Binance USD-M and Bybit v5 public REST servers on 127.0.0.1, with live switches for
//! rate-limit answers, slow and malformed replies, and a log of every request and its weight.
//!
//! Owns the handle tests hold ([`FakeRest`]), the shared state, the failure queue and the HTTP plumbing.
//! Each venue's paths, weights and payloads live in `binance` and `bybit`; ordered JSON writing is the
//! WebSocket fakes' `fake::json`.
//! Depends on nothing from the exporter crate.

mod binance;
mod bybit;
use super::fake::json;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Query, State as Extract};
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::time::{Instant, sleep};

/// Bybit's documented default page; the fake serves at most this many instruments per page unless told.
const DEFAULT_PAGE_SIZE: usize = 500;
/// The window behind Binance's `X-MBX-USED-WEIGHT-1M` header.
const WEIGHT_WINDOW: Duration = Duration::from_secs(60);
/// Price the ticker answers for a listed symbol that was never given one.
const DEFAULT_PRICE: &str = "100.00";
/// Quote currencies, longest first where one ends another (`FDUSD` before `USD`), to split symbols.
const QUOTES: [&str; 11] = [
    "USDT", "USDC", "FDUSD", "BUSD", "TUSD", "EUR", "TRY", "BTC", "ETH", "BNB", "USD",
];

/// Which venue a fake impersonates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestKind {
    /// `https://api.binance.com`: `/api/v3/time`, `/api/v3/exchangeInfo`, `/api/v3/ticker/price`.
    BinanceSpot,
    /// `https://fapi.binance.com`: `/fapi/v1/time`, `/fapi/v1/exchangeInfo`, `/fapi/v2/ticker/price`.
    BinanceUsdm,
    /// `https://api.bybit.com`: `/v5/market/{time,instruments-info,tickers}` for spot, linear and inverse.
    Bybit,
}

impl RestKind {
    /// The endpoint behind a GET of `path`, if this venue serves one there.
    fn endpoint(self, path: &str) -> Option<Endpoint> {
        match self {
            RestKind::BinanceSpot | RestKind::BinanceUsdm => binance::endpoint(self, path),
            RestKind::Bybit => bybit::endpoint(path),
        }
    }

    /// What a request costs against the venue's IP limit; Bybit counts requests.
    fn weight(self, endpoint: Endpoint, query: &[(String, String)]) -> u32 {
        match self {
            RestKind::BinanceSpot | RestKind::BinanceUsdm => binance::weight(self, endpoint, query),
            RestKind::Bybit => 1,
        }
    }
}

/// A running fake REST venue. Clones share one server; dropping the last clone stops it.
#[derive(Clone)]
pub struct FakeRest {
    shared: Arc<Shared>,
    addr: SocketAddr,
    /// Never sent: dropping the last clone closes the channel, which is the server's stop signal.
    _stop: Arc<oneshot::Sender<()>>,
}

impl FakeRest {
    /// Binds 127.0.0.1:0 and starts serving.
    pub async fn start(kind: RestKind) -> FakeRest {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake rest: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fake rest: local address");
        let shared = Arc::new(Shared {
            kind,
            state: Mutex::new(State::default()),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let app = Router::new().fallback(serve).with_state(shared.clone());
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            // Serving ends only with the fake; an I/O error here has nobody left to report to.
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await;
        });
        FakeRest {
            shared,
            addr,
            _stop: Arc::new(stop),
        }
    }

    /// `http://127.0.0.1:PORT`; the client appends the venue's paths.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the instrument list of a market, in listing order (Bybit pages follow it). Binance fakes
    /// have one market and ignore `category`; Bybit takes `spot`, `linear` or `inverse`. Statuses are sent
    /// verbatim: `TRADING`/`BREAK`/`HALT` for Binance, `Trading`/`PreLaunch`/`Delivering`/`Closed` for Bybit,
    /// which, like the real one, lists only `Trading` instruments unless the client asks `status=...`.
    pub fn set_instruments(&self, category: &str, list: &[(&str, &str)]) {
        let category = self.category(category);
        self.shared.lock().markets.get_mut(category).instruments = list
            .iter()
            .map(|&(symbol, status)| Instrument {
                symbol: symbol.to_owned(),
                status: status.to_owned(),
            })
            .collect();
    }

    /// The price the ticker endpoint answers for `symbol`, listed or not. A listed symbol without a price
    /// answers `100.00`; any other symbol is unknown to the ticker.
    pub fn set_price(&self, category: &str, symbol: &str, price: &str) {
        let category = self.category(category);
        self.shared
            .lock()
            .markets
            .get_mut(category)
            .prices
            .insert(symbol.to_owned(), price.to_owned());
    }

    /// Server time = local wall-clock time + `offset_ms`, in every time field the fake sends.
    pub fn set_clock_offset(&self, offset_ms: i64) {
        self.shared.lock().clock_offset_ms = offset_ms;
    }

    /// Bybit linear and inverse: at most `n` instruments per page (default 500), fewer if the client asks a
    /// smaller `limit`. Spot has no pagination on Bybit and ignores it, as do Binance fakes.
    pub fn set_page_size(&self, n: usize) {
        assert!(
            n > 0,
            "FakeRest::set_page_size: a page holds at least one instrument"
        );
        self.shared.lock().page_size = n;
    }

    /// The next `times` requests to `endpoint` (`"time"`, `"instruments"`, `"ticker"`), or to any endpoint
    /// with `None`, answer `status` with an optional `Retry-After` header and the venue's body for it:
    /// Binance `{"code":-1003,...}` for 429 and 418 (banned until now + `retry_after` s, default 120),
    /// Bybit plain text `access too frequent` for 403. Calls queue up; a request takes the oldest that
    /// matches it.
    pub fn fail_next(
        &self,
        endpoint: Option<&str>,
        status: u16,
        retry_after: Option<&str>,
        times: usize,
    ) {
        let refusal = Refusal {
            status: StatusCode::from_u16(status)
                .unwrap_or_else(|_| panic!("FakeRest::fail_next: {status} is no HTTP status")),
            retry_after: retry_after.map(|v| {
                HeaderValue::from_str(v)
                    .unwrap_or_else(|_| panic!("FakeRest::fail_next: bad Retry-After {v:?}"))
            }),
        };
        let failure = Failure {
            endpoint: endpoint.map(Endpoint::named),
            refusal,
            left: times,
        };
        if times > 0 {
            self.shared.lock().failures.push_back(failure);
        }
    }

    /// Bybit: every endpoint answers HTTP 200 with this `retCode` and `retMsg` (e.g. `10006`,
    /// `"Too many visits!"`) and an empty result, until set back to `None`. Binance fakes ignore it.
    pub fn set_bybit_ret_code(&self, code: Option<(i64, &str)>) {
        self.shared.lock().ret_code = code.map(|(code, msg)| (code, msg.to_owned()));
    }

    /// Each answer, failures included, is sent this long after its request arrived (default zero).
    pub fn set_delay(&self, d: Duration) {
        self.shared.lock().delay = d;
    }

    /// On: every HTTP 200 answer carries only the first half of its JSON body.
    pub fn set_malformed(&self, on: bool) {
        self.shared.lock().malformed = on;
    }

    /// Forgets the requests recorded before the last minute (the rate window), so a long run's memory is the
    /// exporter's, not this log's.
    pub fn forget_history(&self) {
        let mut st = self.shared.lock();
        let Some(cutoff) = Instant::now().checked_sub(WEIGHT_WINDOW) else {
            return;
        };
        st.hits.retain(|h| h.at >= cutoff);
        st.hits.shrink_to_fit();
    }

    /// Every request so far as arrival time and path with query (as sent, still percent-encoded), in order.
    pub fn requests(&self) -> Vec<(Instant, String)> {
        let st = self.shared.lock();
        st.hits.iter().map(|h| (h.at, h.target.clone())).collect()
    }

    /// Requests that reached `endpoint` (`"time"`, `"instruments"`, `"ticker"`), whatever the answer.
    pub fn count(&self, endpoint: &str) -> usize {
        let endpoint = Endpoint::named(endpoint);
        let st = self.shared.lock();
        st.hits
            .iter()
            .filter(|h| h.endpoint == Some(endpoint))
            .count()
    }

    /// Request weight of the requests that arrived in the last `window`, refused ones included. Binance:
    /// time 1, exchangeInfo 20 (spot) / 1 (USD-M), ticker/price with a symbol 2 / 1 (without one 4 / 2).
    /// Bybit: 1 per request. Unknown paths weigh nothing.
    pub fn weight_used(&self, window: Duration) -> u32 {
        self.shared
            .lock()
            .weight_since(Instant::now().checked_sub(window))
    }

    fn category(&self, name: &str) -> Category {
        match self.shared.kind {
            RestKind::BinanceSpot | RestKind::BinanceUsdm => Category::Spot,
            RestKind::Bybit => Category::parse(name).unwrap_or_else(|| {
                panic!("FakeRest: Bybit category is spot, linear or inverse, not {name:?}")
            }),
        }
    }
}

/// The endpoints a fake serves, by what they are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Time,
    Instruments,
    Ticker,
}

impl Endpoint {
    /// The names tests use; anything else is a bug in the test.
    fn named(name: &str) -> Endpoint {
        match name {
            "time" => Endpoint::Time,
            "instruments" => Endpoint::Instruments,
            "ticker" => Endpoint::Ticker,
            _ => panic!(
                "FakeRest: endpoint is \"time\", \"instruments\" or \"ticker\", not {name:?}"
            ),
        }
    }
}

/// A market's name in Bybit's `category` parameter; Binance fakes keep their one market as `Spot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Category {
    Spot,
    Linear,
    Inverse,
}

impl Category {
    fn parse(name: &str) -> Option<Category> {
        match name {
            "spot" => Some(Category::Spot),
            "linear" => Some(Category::Linear),
            "inverse" => Some(Category::Inverse),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Category::Spot => "spot",
            Category::Linear => "linear",
            Category::Inverse => "inverse",
        }
    }
}

/// One listed instrument.
struct Instrument {
    symbol: String,
    status: String,
}

/// What one market lists and prices.
#[derive(Default)]
struct Market {
    instruments: Vec<Instrument>,
    prices: BTreeMap<String, String>,
}

impl Market {
    /// The ticker price of a listed or priced symbol.
    fn price(&self, symbol: &str) -> Option<&str> {
        self.prices.get(symbol).map(String::as_str).or_else(|| {
            let listed = self.instruments.iter().any(|i| i.symbol == symbol);
            listed.then_some(DEFAULT_PRICE)
        })
    }

    /// Every symbol the ticker knows with its price: listed ones in listing order, then priced-only ones.
    fn tickers(&self) -> Vec<(&str, &str)> {
        let listed = self.instruments.iter().map(|i| i.symbol.as_str());
        let priced_only = self
            .prices
            .keys()
            .map(String::as_str)
            .filter(|s| !self.instruments.iter().any(|i| i.symbol == *s));
        listed
            .chain(priced_only)
            .filter_map(|s| Some((s, self.price(s)?)))
            .collect()
    }
}

/// One market per Bybit category; Binance fakes use `spot` only.
#[derive(Default)]
struct Markets {
    spot: Market,
    linear: Market,
    inverse: Market,
}

impl Markets {
    fn get(&self, category: Category) -> &Market {
        match category {
            Category::Spot => &self.spot,
            Category::Linear => &self.linear,
            Category::Inverse => &self.inverse,
        }
    }

    fn get_mut(&mut self, category: Category) -> &mut Market {
        match category {
            Category::Spot => &mut self.spot,
            Category::Linear => &mut self.linear,
            Category::Inverse => &mut self.inverse,
        }
    }
}

/// A queued failure from [`FakeRest::fail_next`].
struct Failure {
    endpoint: Option<Endpoint>,
    refusal: Refusal,
    left: usize,
}

/// What a failing request is answered with; the venue supplies the body.
#[derive(Clone)]
struct Refusal {
    status: StatusCode,
    retry_after: Option<HeaderValue>,
}

/// One request as it arrived.
struct Hit {
    at: Instant,
    target: String,
    endpoint: Option<Endpoint>,
    weight: u32,
}

/// Everything tests control and observe, behind one lock that is never held across an `.await`.
struct State {
    markets: Markets,
    clock_offset_ms: i64,
    page_size: usize,
    failures: VecDeque<Failure>,
    ret_code: Option<(i64, String)>,
    delay: Duration,
    malformed: bool,
    hits: Vec<Hit>,
}

impl Default for State {
    fn default() -> Self {
        State {
            markets: Markets::default(),
            clock_offset_ms: 0,
            page_size: DEFAULT_PAGE_SIZE,
            failures: VecDeque::new(),
            ret_code: None,
            delay: Duration::ZERO,
            malformed: false,
            hits: Vec::new(),
        }
    }
}

impl State {
    /// Total weight of requests that arrived at or after `since` (`None`: all of them).
    fn weight_since(&self, since: Option<Instant>) -> u32 {
        self.hits
            .iter()
            .filter(|h| since.is_none_or(|since| h.at >= since))
            .map(|h| h.weight)
            .sum()
    }

    /// Logs a request and decides on arrival whether a queued failure answers it. Returns how long to
    /// wait before answering, that failure, and the weight used in the last minute, this request included.
    fn arrive(
        &mut self,
        kind: RestKind,
        target: String,
        endpoint: Option<Endpoint>,
        query: &[(String, String)],
    ) -> (Duration, Option<Refusal>, u32) {
        let at = Instant::now();
        let weight = endpoint.map_or(0, |e| kind.weight(e, query));
        self.hits.push(Hit {
            at,
            target,
            endpoint,
            weight,
        });
        let refusal = endpoint.and_then(|e| self.take_failure(e));
        let used = self.weight_since(at.checked_sub(WEIGHT_WINDOW));
        (self.delay, refusal, used)
    }

    /// Consumes one use of the oldest queued failure that applies to `endpoint`.
    fn take_failure(&mut self, endpoint: Endpoint) -> Option<Refusal> {
        let at = self
            .failures
            .iter()
            .position(|f| f.endpoint.is_none_or(|e| e == endpoint))?;
        let failure = self.failures.get_mut(at)?;
        failure.left -= 1;
        let refusal = failure.refusal.clone();
        if failure.left == 0 {
            self.failures.remove(at);
        }
        Some(refusal)
    }

    /// The venue's answer from the current state: 404 off its paths, the refusal if one was taken on
    /// arrival, Bybit's forced `retCode` if set, else the endpoint's payload (cut short if malformed).
    fn answer(
        &self,
        kind: RestKind,
        endpoint: Option<Endpoint>,
        query: &[(String, String)],
        refusal: Option<&Refusal>,
    ) -> Reply {
        let Some(endpoint) = endpoint else {
            return Reply::text(StatusCode::NOT_FOUND, String::new());
        };
        let clock = Clock::now(self.clock_offset_ms);
        let mut reply = match (kind, refusal, &self.ret_code) {
            (RestKind::Bybit, Some(refusal), _) => bybit::refusal(refusal.status),
            (_, Some(refusal), _) => {
                let retry_after = refusal.retry_after.as_ref().and_then(|v| v.to_str().ok());
                binance::refusal(kind, refusal.status, retry_after, clock)
            }
            (RestKind::Bybit, None, Some((code, msg))) => bybit::envelope(*code, msg, "{}", clock),
            (RestKind::Bybit, None, None) => {
                bybit::answer(endpoint, query, &self.markets, self.page_size, clock)
            }
            (_, None, _) => binance::answer(kind, endpoint, query, &self.markets.spot, clock),
        };
        if self.malformed && reply.status == StatusCode::OK {
            // Half of a JSON document never parses; cutting at a char boundary keeps the text UTF-8.
            let cut = reply.body.floor_char_boundary(reply.body.len() / 2);
            reply.body.truncate(cut);
        }
        reply
    }
}

struct Shared {
    kind: RestKind,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock must not turn every later observation into a second panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The venue's clock at the moment an answer is built.
#[derive(Debug, Clone, Copy)]
struct Clock {
    unix_ns: i128,
}

impl Clock {
    fn now(offset_ms: i64) -> Clock {
        // A wall clock before 1970 is not worth an error path in a fake; it reads as the epoch.
        let local = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| {
            i128::from(d.as_secs()) * 1_000_000_000 + i128::from(d.subsec_nanos())
        });
        Clock {
            unix_ns: local + i128::from(offset_ms) * 1_000_000,
        }
    }

    fn ms(self) -> i128 {
        self.unix_ns.div_euclid(1_000_000)
    }

    fn secs(self) -> i128 {
        self.unix_ns.div_euclid(1_000_000_000)
    }
}

/// An answer before it becomes an HTTP response.
struct Reply {
    status: StatusCode,
    content_type: &'static str,
    body: String,
}

impl Reply {
    fn json(status: StatusCode, body: String) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            body,
        }
    }

    fn text(status: StatusCode, body: String) -> Reply {
        Reply {
            status,
            content_type: "text/plain",
            body,
        }
    }
}

/// The value of query parameter `key`, percent-decoded.
fn param<'q>(query: &'q [(String, String)], key: &str) -> Option<&'q str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Splits `BTCUSDT` into `("BTC", "USDT")`; a symbol with no known quote is all base.
fn split_symbol(symbol: &str) -> (&str, &str) {
    QUOTES
        .iter()
        .find_map(|q| {
            let base = symbol.strip_suffix(q)?;
            (!base.is_empty()).then_some((base, *q))
        })
        .unwrap_or((symbol, ""))
}

/// Answers every request: only GETs to the venue's paths are endpoints, anything else is a 404.
async fn serve(Extract(shared): Extract<Arc<Shared>>, method: Method, uri: Uri) -> Response {
    let kind = shared.kind;
    // Decoding into pairs cannot fail: form_urlencoded is lossy rather than strict.
    let query: Vec<(String, String)> = Query::try_from_uri(&uri)
        .map(|Query(q)| q)
        .unwrap_or_default();
    let endpoint = (method == Method::GET)
        .then(|| kind.endpoint(uri.path()))
        .flatten();
    let target = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), ToString::to_string);

    let (delay, refusal, used_weight) = shared.lock().arrive(kind, target, endpoint, &query);
    if !delay.is_zero() {
        sleep(delay).await;
    }
    let reply = shared
        .lock()
        .answer(kind, endpoint, &query, refusal.as_ref());

    let mut response = (
        reply.status,
        [(CONTENT_TYPE, reply.content_type)],
        reply.body,
    )
        .into_response();
    let headers = response.headers_mut();
    if let Some(retry_after) = refusal.and_then(|r| r.retry_after) {
        headers.insert(RETRY_AFTER, retry_after);
    }
    if kind != RestKind::Bybit {
        headers.insert("x-mbx-used-weight-1m", HeaderValue::from(used_weight));
    }
    response
}
