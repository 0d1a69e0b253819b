//! The REST companion of the feeds: the venues' clock offsets, their instrument lists (is a watched symbol
//! listed, is it trading), and a REST cross-check of symbols that went stale on the WebSocket.
//!
//! Owns the HTTP client, the request budgets and three kinds of background task. Never touches a WebSocket,
//! and nothing here can delay ingest: every task runs on its own, every request has a deadline, and a failing
//! or slow venue only shows in `marketfeed_rest_*` metrics. Wire formats come from [`crate::venue::rest`].

mod budget;
mod decide;
mod stats;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use budget::Budget;
pub use stats::RestStats;

use crate::model::{Exchange, Venue};
use crate::repeat::{Outages, Report, human};
use crate::shutdown::stopped;
use crate::supervise::{self, Task};
use crate::tracker::{CrossCheck, Listing, Tracker, Trackers, unix_now};
use crate::venue::rest::{self as wire, Endpoint, RestDecodeError, RestFailure, RestRequest};
use decide::{ClockFilter, Crossing};

/// Cadences and deadlines of the REST side.
#[derive(Debug, Clone)]
pub struct RestSettings {
    /// Time between server-time polls per exchange.
    pub clock_interval: Duration,
    /// Time between instrument-list refreshes per venue.
    pub discovery_interval: Duration,
    /// How often stale symbols are looked for.
    pub cross_check_scan: Duration,
    /// A stale symbol is cross-checked at most this often.
    pub cross_check_every: Duration,
    /// Deadline of one request, body included.
    pub timeout: Duration,
}

impl Default for RestSettings {
    /// A minute between clock polls keeps drift well under a millisecond; instrument lists change daily at
    /// most; a stale symbol is checked once per five minutes so a dead feed costs few requests.
    fn default() -> Self {
        Self {
            clock_interval: Duration::from_secs(60),
            discovery_interval: Duration::from_secs(600),
            cross_check_scan: Duration::from_secs(15),
            cross_check_every: Duration::from_secs(300),
            timeout: Duration::from_secs(10),
        }
    }
}

/// One watched venue as the REST side sees it; its symbols are whatever its tracker holds at the time.
#[derive(Debug, Clone)]
pub struct RestTarget {
    /// The venue.
    pub venue: Venue,
    /// Its REST base URL.
    pub base_url: String,
    /// `*`: the market's symbols are what the listing says trades, so a symbol leaving it is a delisting the
    /// listing follower acts on, not a configuration that cannot deliver.
    pub follows_listing: bool,
}

/// What every task shares.
struct Shared {
    http: reqwest::Client,
    trackers: Arc<Trackers>,
    stats: Arc<RestStats>,
    settings: RestSettings,
    /// The process's runs of failures, shared with the feeds: an unreachable host logs a first line, then
    /// only in the summary.
    outages: Arc<Outages>,
}

/// One venue's REST endpoint with its budget (shared by Bybit's three markets, which share a host limit).
#[derive(Clone)]
struct Endpointed {
    venue: Venue,
    base_url: String,
    budget: Arc<Budget>,
    follows_listing: bool,
}

/// A handle on the REST side for code outside it: the listing of a venue's trading symbols, made within the
/// same budgets as the REST tasks.
#[derive(Clone)]
pub struct Rest {
    shared: Arc<Shared>,
    endpoints: Vec<Endpointed>,
}

impl Rest {
    /// Every symbol `venue` lists as trading, sorted; None when the listing could not be read.
    pub async fn trading_symbols(&self, venue: Venue) -> Option<Vec<String>> {
        let to = self.endpoints.iter().find(|e| e.venue == venue)?;
        let listed = instruments(&self.shared, to).await?;
        let mut trading: Vec<String> = listed
            .into_iter()
            .filter(|(_, trading)| *trading)
            .map(|(s, _)| s)
            .collect();
        trading.sort();
        Some(trading)
    }
}

/// Starts the REST tasks for `targets`. Returns a handle and the tasks; they stop when `shutdown` turns true.
pub fn spawn(
    targets: Vec<RestTarget>,
    trackers: Arc<Trackers>,
    stats: Arc<RestStats>,
    settings: RestSettings,
    outages: Arc<Outages>,
    shutdown: &watch::Receiver<bool>,
) -> Result<(Rest, Vec<JoinHandle<()>>), reqwest::Error> {
    let http = reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        .user_agent(concat!("marketfeed_exporter/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let shared = Arc::new(Shared {
        http,
        trackers,
        stats,
        settings,
        outages,
    });
    let mut budgets: HashMap<String, Arc<Budget>> = HashMap::new();
    let mut tasks = Vec::new();
    let mut endpoints = Vec::new();
    let mut clocked: Vec<Exchange> = Vec::new();
    for target in targets {
        let budget = budgets
            .entry(target.base_url.clone())
            .or_insert_with(|| Arc::new(Budget::new(wire::budget(target.venue))))
            .clone();
        let endpoint = Endpointed {
            venue: target.venue,
            base_url: target.base_url,
            budget,
            follows_listing: target.follows_listing,
        };
        // One clock per exchange: the first watched venue of it answers for its markets.
        if !clocked.contains(&target.venue.exchange()) {
            clocked.push(target.venue.exchange());
            tasks.push(supervised(
                Task::RestClock,
                clock,
                &shared,
                &endpoint,
                shutdown,
            ));
        }
        tasks.push(supervised(
            Task::RestDiscovery,
            discovery,
            &shared,
            &endpoint,
            shutdown,
        ));
        tasks.push(supervised(
            Task::RestCrossCheck,
            cross_check,
            &shared,
            &endpoint,
            shutdown,
        ));
        endpoints.push(endpoint);
    }
    Ok((Rest { shared, endpoints }, tasks))
}

/// Spawns one of the REST loops for `endpoint` under supervision: restarted (and counted) if it panics.
fn supervised<Fut>(
    task: Task,
    run: fn(Arc<Shared>, Endpointed, watch::Receiver<bool>) -> Fut,
    shared: &Arc<Shared>,
    endpoint: &Endpointed,
    shutdown: &watch::Receiver<bool>,
) -> JoinHandle<()>
where
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (shared, endpoint, stop) = (shared.clone(), endpoint.clone(), shutdown.clone());
    supervise::spawn(
        task,
        format!("{} {}", endpoint.venue, endpoint.base_url),
        shared.trackers.restarts(),
        shutdown.clone(),
        move |_| run(shared.clone(), endpoint.clone(), stop.clone()),
    )
}

impl Shared {
    /// Makes one budgeted request and returns the body of a 2xx answer, or None once a failure has been counted
    /// and logged (and a rate-limit answer has backed the whole host off): the caller has nothing left to report.
    async fn fetch(&self, to: &Endpointed, request: &RestRequest) -> Option<String> {
        self.fetch_sent(to, request).await.map(|(body, _)| body)
    }

    /// [`Shared::fetch`], also returning when the request left (after any budget wait), for round trips.
    async fn fetch_sent(&self, to: &Endpointed, request: &RestRequest) -> Option<(String, u64)> {
        to.budget.acquire(request.weight).await;
        let url = format!("{}{}", to.base_url, request.path);
        let sent = unix_now();
        let started = Instant::now();
        let answer = async {
            let response = self.http.get(&url).send().await?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = response.text().await?;
            Ok::<_, reqwest::Error>((status, retry_after, body))
        }
        .await;
        self.stats
            .observe(to.venue, request.endpoint, started.elapsed());
        let (status, retry_after, body) = match answer {
            Ok(answer) => answer,
            Err(e) => {
                let code = if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connect"
                } else {
                    "transport"
                };
                self.failed(to, request.endpoint, code, None, &root_cause(&e))
                    .await;
                return None;
            }
        };
        match wire::classify_status(to.venue, status, retry_after.as_deref()) {
            None => {
                self.succeeded(to, request.endpoint);
                Some((body, sent))
            }
            Some(failure) => {
                let excerpt: String = body.chars().take(200).collect();
                self.failed(
                    to,
                    request.endpoint,
                    &status.to_string(),
                    Some(failure),
                    &excerpt,
                )
                .await;
                None
            }
        }
    }

    /// Counts a body that did not parse, backing off when the venue said "too many requests" inside it.
    async fn undecodable(&self, to: &Endpointed, endpoint: Endpoint, error: &RestDecodeError) {
        self.failed(
            to,
            endpoint,
            &error.code_label(),
            wire::decode_failure(to.venue, error),
            &error.to_string(),
        )
        .await;
    }

    async fn failed(
        &self,
        to: &Endpointed,
        endpoint: Endpoint,
        code: &str,
        failure: Option<RestFailure>,
        detail: &str,
    ) {
        self.stats.error(to.venue, endpoint, code);
        let back_off = match failure {
            Some(RestFailure::RateLimited { retry_after })
            | Some(RestFailure::Banned { retry_after }) => {
                to.budget.block_for(retry_after).await;
                Some(retry_after)
            }
            Some(RestFailure::Failed) | None => None,
        };
        let report = self.outages.failed(
            &outage_key(to),
            &format!("REST {code}"),
            std::time::Instant::now(),
        );
        match (report, back_off) {
            (Report::First | Report::Changed, None) => tracing::warn!(
                venue = %to.venue, endpoint = endpoint.as_str(), code, error = detail,
                "REST request failed (repeats go into a summary every 5m)"
            ),
            (Report::First | Report::Changed, Some(back_off)) => tracing::warn!(
                venue = %to.venue, endpoint = endpoint.as_str(), code, back_off = %human(back_off), error = detail,
                "REST request failed; backing off the host (repeats go into a summary every 5m)"
            ),
            (Report::Summary { failing, detail }, _) => {
                tracing::warn!(failing, %detail, "still failing (summary every 5m)")
            }
            (Report::Quiet, _) => {}
        }
    }

    /// Ends the host's run of failures, if any, with one line.
    fn succeeded(&self, to: &Endpointed, endpoint: Endpoint) {
        if let Some(recovery) = self
            .outages
            .recovered(&outage_key(to), std::time::Instant::now())
        {
            tracing::info!(
                venue = %to.venue, endpoint = endpoint.as_str(), failed_requests = recovery.failures,
                outage = %human(recovery.lasted), "REST requests succeed again"
            );
        }
    }

    /// Sleeps `period`, or returns false when shutting down.
    async fn pause(period: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
        tokio::select! {
            () = tokio::time::sleep(period) => true,
            () = stopped(shutdown) => false,
        }
    }
}

/// One run of failures per REST base URL: every endpoint and market of a host fails for the same reason.
fn outage_key(to: &Endpointed) -> String {
    format!("REST {}", to.base_url)
}

/// The innermost error of `e`'s source chain: "Connection refused (os error 111)" or "failed to lookup address
/// information: ...", not reqwest's "error sending request for url (...)".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut root = e;
    while let Some(source) = root.source() {
        root = source;
    }
    root.to_string()
}

/// Polls the venue's server time. Each sample's offset assumes the server read its clock halfway through
/// the round trip, so its error is at most half the round trip; of the last few samples the one with the
/// shortest round trip wins (the minimum-delay filter NTP uses).
async fn clock(shared: Arc<Shared>, to: Endpointed, mut shutdown: watch::Receiver<bool>) {
    let exchange = to.venue.exchange();
    let request = wire::time_request(to.venue);
    let mut filter = ClockFilter::default();
    loop {
        // The round trip is timed from when the request left, not from before a budget or back-off wait.
        let answer = tokio::select! {
            answer = shared.fetch_sent(&to, &request) => answer,
            () = stopped(&mut shutdown) => return,
        };
        let received = unix_now();
        if let Some((body, sent)) = answer {
            match wire::parse_server_time(to.venue, &body) {
                Ok(server_ns) => {
                    let (offset, best_rtt) = filter.add(sent, received, server_ns);
                    let clock = shared.trackers.clock();
                    let previous = clock.get(exchange);
                    if previous.is_none() {
                        tracing::info!(
                            exchange = exchange.as_str(),
                            offset_ms = offset as f64 / 1e6,
                            rtt_ms = best_rtt as f64 / 1e6,
                            "clock offset measured"
                        );
                    }
                    match decide::crossing(previous, offset) {
                        Crossing::Beyond => tracing::warn!(
                            exchange = exchange.as_str(),
                            offset = %human(Duration::from_nanos(offset.unsigned_abs())),
                            ahead = offset > 0,
                            "the venue's clock and ours differ by more than 5m: the offset is exported but not \
                             applied to event latency; check this host's NTP and the REST URL"
                        ),
                        Crossing::Back => tracing::info!(
                            exchange = exchange.as_str(),
                            offset_ms = offset as f64 / 1e6,
                            "clock offset back within 5m: applied to event latency again"
                        ),
                        Crossing::None => {}
                    }
                    clock.set(exchange, offset);
                }
                Err(e) => shared.undecodable(&to, Endpoint::Time, &e).await,
            }
        }
        if !Shared::pause(shared.settings.clock_interval, &mut shutdown).await {
            return;
        }
    }
}

/// Most pages one instrument listing may take (Bybit linear has about two at 1000 per page).
const MAX_PAGES: usize = 50;

/// Refreshes the venue's instrument list and records, per watched symbol, whether it is listed and trading.
async fn discovery(shared: Arc<Shared>, to: Endpointed, mut shutdown: watch::Receiver<bool>) {
    loop {
        let listed = tokio::select! {
            listed = instruments(&shared, &to) => listed,
            () = stopped(&mut shutdown) => return,
        };
        // The venue's tracker of the moment: a venue following every listed symbol gets new ones.
        if let (Some(listed), Some(tracker)) = (listed, shared.trackers.get(to.venue)) {
            let symbols: Vec<String> = tracker.symbols().map(|(_, s)| s.to_owned()).collect();
            for symbol in &symbols {
                let listing = match listed.get(symbol.as_str()) {
                    Some(true) => Listing::Trading,
                    Some(false) => Listing::Halted,
                    None => Listing::Unlisted,
                };
                let previous = tracker.set_listing(to.venue, symbol, listing);
                match listing_news(to.follows_listing, previous, listing) {
                    Some(News::Warn(message)) => {
                        tracing::warn!(venue = %to.venue, symbol, "{message}")
                    }
                    Some(News::Info(message)) => {
                        tracing::info!(venue = %to.venue, symbol, "{message}")
                    }
                    None => {}
                }
            }
        }
        if !Shared::pause(shared.settings.discovery_interval, &mut shutdown).await {
            return;
        }
    }
}

/// A log line about a watched symbol's listing, by how much it needs someone.
#[derive(Debug, PartialEq, Eq)]
enum News {
    Warn(&'static str),
    Info(&'static str),
}

/// What to say when the listing of a watched symbol reads `listing`, having read `previous` (None: the tracker
/// no longer holds the symbol); nothing when it has not changed. Under `*` (`follows_listing`) a symbol that
/// leaves the trading list is a delisting or a halt the listing follower is about to act on: worth an info
/// line, not a warning that a configuration will never deliver.
fn listing_news(
    follows_listing: bool,
    previous: Option<Listing>,
    listing: Listing,
) -> Option<News> {
    if previous == Some(listing) {
        return None;
    }
    match listing {
        Listing::Unlisted | Listing::Halted if follows_listing => Some(News::Info(
            "symbol no longer listed as trading: the listing follower drops it",
        )),
        Listing::Unlisted => Some(News::Warn(
            "configured symbol is not listed by the venue: its subscriptions will never deliver",
        )),
        Listing::Halted => Some(News::Warn(
            "configured symbol is listed but not trading: silence is expected",
        )),
        Listing::Trading if previous != Some(Listing::Unknown) => {
            Some(News::Info("configured symbol is trading again"))
        }
        Listing::Trading | Listing::Unknown => None,
    }
}

/// Every listed symbol of the venue with whether it trades; None when any page of any listing failed.
async fn instruments(shared: &Shared, to: &Endpointed) -> Option<HashMap<String, bool>> {
    let mut listed = HashMap::new();
    for &status in wire::listing_statuses(to.venue) {
        listed.extend(listing(shared, to, status).await?);
    }
    Some(listed)
}

/// One listing (all its pages) of the venue: symbol and whether it trades.
async fn listing(
    shared: &Shared,
    to: &Endpointed,
    status: Option<&str>,
) -> Option<Vec<(String, bool)>> {
    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let request = wire::instruments_request(to.venue, status, cursor.as_deref());
        let body = shared.fetch(to, &request).await?;
        let page = match wire::parse_instruments(to.venue, &body) {
            Ok(page) => page,
            Err(e) => {
                shared.undecodable(to, Endpoint::Instruments, &e).await;
                return None;
            }
        };
        listed.extend(page.instruments.into_iter().map(|i| (i.symbol, i.trading)));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Some(listed),
        }
    }
    tracing::warn!(venue = %to.venue, pages = MAX_PAGES, "instrument list did not end; ignoring it");
    None
}

/// What the feed last saw of a symbol: the freshest receive time, and the newest last-trade price if any
/// channel carries one (book mids and mark prices are not comparable with a REST last price).
fn feed_view(tracker: &Tracker, venue: Venue, symbol: &str) -> Option<(u64, Option<Decimal>)> {
    let slots = tracker.symbol_slots(venue, symbol)?;
    let views: Vec<_> = slots
        .iter()
        .map(|&slot| tracker.subscription(slot))
        .collect();
    let freshest = views.iter().map(|v| v.last_message_ns).max()?;
    let price = views
        .iter()
        .filter(|v| v.subscription.channel.kind.price_is_last_trade() && v.price.is_some())
        .max_by_key(|v| v.last_message_ns)
        .and_then(|v| v.price);
    Some((freshest, price))
}

/// Asks the REST ticker about symbols that have been stale on the WebSocket past the stale threshold: a
/// REST price the feed never delivered means the feed is broken, not the market quiet.
async fn cross_check(shared: Arc<Shared>, to: Endpointed, mut shutdown: watch::Receiver<bool>) {
    let mut checked: HashMap<String, Instant> = HashMap::new();
    loop {
        if !Shared::pause(shared.settings.cross_check_scan, &mut shutdown).await {
            return;
        }
        let Some(tracker) = shared.trackers.get(to.venue) else {
            continue;
        };
        // The market's own stale threshold, which may override the global one.
        let stale_after = tracker.thresholds().stale;
        let symbols: Vec<String> = tracker.symbols().map(|(_, s)| s.to_owned()).collect();
        for symbol in &symbols {
            let Some((last_ns, feed_price)) = feed_view(&tracker, to.venue, symbol) else {
                continue;
            };
            let stale = Duration::from_nanos(unix_now().saturating_sub(last_ns)) >= stale_after;
            let recent = checked
                .get(symbol)
                .is_some_and(|at| at.elapsed() < shared.settings.cross_check_every);
            // A symbol closed on purpose is silent for a reason; asking REST would only spend budget.
            let closed = matches!(
                tracker.listing(to.venue, symbol),
                Listing::Halted | Listing::Unlisted
            );
            if !stale || recent || closed {
                continue;
            }
            checked.insert(symbol.clone(), Instant::now());
            let request = wire::ticker_request(to.venue, symbol);
            let body = tokio::select! {
                body = shared.fetch(&to, &request) => body,
                () = stopped(&mut shutdown) => return,
            };
            let Some(body) = body else { continue };
            let ticker = match wire::parse_ticker(to.venue, &body) {
                Ok(ticker) => ticker,
                Err(e) => {
                    shared.undecodable(&to, Endpoint::Ticker, &e).await;
                    continue;
                }
            };
            let feed_behind =
                decide::feed_behind(ticker.trade_time_ms, ticker.price, last_ns, feed_price);
            let previous = tracker.cross_check(to.venue, symbol);
            tracker.set_cross_check(
                to.venue,
                symbol,
                CrossCheck {
                    checked_ns: unix_now(),
                    rest_price: ticker.price,
                    feed_behind,
                },
            );
            // Once per silence: a symbol still silent at the next check was already reported.
            let reported =
                previous.is_some_and(|p| p.feed_behind == Some(true) && p.checked_ns >= last_ns);
            if feed_behind == Some(true) && !reported {
                tracing::warn!(
                    venue = %to.venue, symbol, rest_price = %ticker.price,
                    feed_price = %feed_price.map_or_else(|| "none".to_owned(), |p| p.to_string()),
                    "REST shows a newer price than the stale feed: the feed is broken, not the market quiet"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_news_is_a_warning_only_where_a_configuration_cannot_deliver() {
        use Listing::{Halted, Trading, Unknown, Unlisted};
        let configured = |previous, listing| listing_news(false, previous, listing);
        let star = |previous, listing| listing_news(true, previous, listing);
        let not_listed = News::Warn(
            "configured symbol is not listed by the venue: its subscriptions will never deliver",
        );
        let halted = News::Warn("configured symbol is listed but not trading: silence is expected");
        let dropped =
            News::Info("symbol no longer listed as trading: the listing follower drops it");
        assert_eq!(configured(Some(Unknown), Unlisted), Some(not_listed));
        assert_eq!(configured(Some(Trading), Halted), Some(halted));
        assert_eq!(
            configured(Some(Halted), Trading),
            Some(News::Info("configured symbol is trading again"))
        );
        // Under `*` a symbol leaving the trading list is the follower's business.
        assert_eq!(star(Some(Trading), Unlisted), Some(dropped));
        assert_eq!(
            star(Some(Trading), Halted),
            Some(News::Info(
                "symbol no longer listed as trading: the listing follower drops it"
            ))
        );
        // Nothing new, or a first reading that is the expected one: nothing said.
        for news in [configured, star] {
            assert_eq!(news(Some(Unlisted), Unlisted), None);
            assert_eq!(news(Some(Unknown), Trading), None);
            assert_eq!(news(Some(Trading), Trading), None);
        }
    }
}
