//! The HTTP surface: `/metrics`, the landing page, `/-/healthy`, `/-/ready` and the JSON API for bots.
//!
//! Owns routing and response shapes. Reads the tracker and the registry; knows nothing of exchange sockets.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;
use serde::Serialize;

use crate::metrics::{CONTENT_TYPE, Metrics};
use crate::model::Venue;
use crate::tracker::{Status, SubscriptionView, Tracker, UnixNanos, unix_now};

/// What the handlers share.
pub struct HttpState {
    /// Freshness state.
    pub tracker: Arc<Tracker>,
    /// The registry `/metrics` renders.
    pub metrics: Metrics,
    /// Where the metrics are served (`--web.telemetry-path`).
    pub telemetry_path: String,
}

/// The exporter's routes.
pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route(&state.telemetry_path, get(metrics))
        .route("/", get(landing))
        .route("/-/healthy", get(|| async { "Healthy\n" }))
        // Ready as soon as the configuration is loaded and we serve: a sidecar's readiness gates the whole
        // pod, so it must never follow exchange health.
        .route("/-/ready", get(|| async { "Ready\n" }))
        .route("/api/v1/symbols", get(symbols))
        .route("/api/v1/symbols/{exchange}/{market}/{symbol}", get(symbol))
        .fallback(not_found)
        .with_state(state)
}

async fn metrics(State(state): State<Arc<HttpState>>) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], state.metrics.render()).into_response()
}

async fn landing(State(state): State<Arc<HttpState>>) -> Html<String> {
    let path = &state.telemetry_path;
    Html(format!(
        "<!DOCTYPE html>\n<html><head><title>marketfeed_exporter</title></head><body>\n\
         <h1>marketfeed_exporter</h1>\n<p>Per-symbol freshness of exchange WebSocket market data, version {}.</p>\n<ul>\n\
         <li><a href=\"{path}\">{path}</a>: Prometheus metrics</li>\n\
         <li><a href=\"/api/v1/symbols\">/api/v1/symbols</a>: freshness of every watched symbol (JSON)</li>\n\
         <li><a href=\"/-/healthy\">/-/healthy</a>, <a href=\"/-/ready\">/-/ready</a>: probes</li>\n\
         </ul>\n</body></html>\n",
        env!("CARGO_PKG_VERSION"),
    ))
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not found".into())
}

fn error(status: StatusCode, message: String) -> Response {
    #[derive(Serialize)]
    struct ErrorBody {
        error: String,
    }
    (status, Json(ErrorBody { error: message })).into_response()
}

/// One symbol on one venue: the freshest of its channels decides its status.
#[derive(Debug, Serialize)]
pub struct SymbolView {
    exchange: &'static str,
    market: &'static str,
    symbol: String,
    status: &'static str,
    staleness_seconds: f64,
    /// RFC 3339 receive time of the freshest message; null before any message.
    last_update: Option<String>,
    last_update_unix: Option<f64>,
    /// Exact decimal string of the price of the most recent message that carried one.
    last_price: Option<String>,
    channels: Vec<ChannelView>,
}

/// One channel of a symbol.
#[derive(Debug, Serialize)]
pub struct ChannelView {
    channel: String,
    status: &'static str,
    staleness_seconds: f64,
    last_update: Option<String>,
    last_update_unix: Option<f64>,
    last_event_unix: Option<f64>,
    last_price: Option<String>,
    messages: u64,
    subscribed: bool,
    connection: usize,
}

fn rfc3339(nanos: UnixNanos) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_nanos(nanos)).to_string()
}

fn round_ms(seconds: f64) -> f64 {
    (seconds * 1e3).round() / 1e3
}

fn channel_view(tracker: &Tracker, v: &SubscriptionView<'_>, now: UnixNanos) -> ChannelView {
    let age = v.age(now);
    let received = v.messages > 0;
    ChannelView {
        channel: v.subscription.channel.name.clone(),
        status: tracker.thresholds().classify(age).as_str(),
        staleness_seconds: round_ms(age.as_secs_f64()),
        last_update: received.then(|| rfc3339(v.last_message_ns)),
        last_update_unix: received.then(|| round_ms(v.last_message_ns as f64 / 1e9)),
        last_event_unix: v.last_event_ms.map(|ms| ms as f64 / 1e3),
        last_price: v.price.map(|p| p.to_string()),
        messages: v.messages,
        subscribed: v.acked,
        connection: v.connection,
    }
}

/// Builds the view of one symbol from its slots; `None` when it has none.
fn symbol_view(tracker: &Tracker, venue: Venue, symbol: &str, now: UnixNanos) -> Option<SymbolView> {
    let views: Vec<SubscriptionView<'_>> =
        tracker.symbol_slots(venue, symbol)?.iter().map(|&slot| tracker.subscription(slot)).collect();
    let freshest = views.iter().max_by_key(|v| v.last_message_ns)?;
    let received = views.iter().any(|v| v.messages > 0);
    let age = freshest.age(now);
    let last_price = views
        .iter()
        .filter(|v| v.price.is_some())
        .max_by_key(|v| v.last_message_ns)
        .and_then(|v| v.price.map(|p| p.to_string()));
    let status: Status = tracker.thresholds().classify(age);
    Some(SymbolView {
        exchange: venue.exchange().as_str(),
        market: venue.market().as_str(),
        symbol: symbol.to_owned(),
        status: status.as_str(),
        staleness_seconds: round_ms(age.as_secs_f64()),
        last_update: received.then(|| rfc3339(freshest.last_message_ns)),
        last_update_unix: received.then(|| round_ms(freshest.last_message_ns as f64 / 1e9)),
        last_price,
        channels: views.iter().map(|v| channel_view(tracker, v, now)).collect(),
    })
}

#[derive(Serialize)]
struct SymbolList {
    symbols: Vec<SymbolView>,
}

async fn symbols(State(state): State<Arc<HttpState>>) -> Json<SymbolList> {
    let now = unix_now();
    let t = &state.tracker;
    let symbols = t.symbols().filter_map(|(venue, symbol)| symbol_view(t, venue, symbol, now)).collect();
    Json(SymbolList { symbols })
}

async fn symbol(
    State(state): State<Arc<HttpState>>,
    Path((exchange, market, symbol)): Path<(String, String, String)>,
) -> Response {
    let upper = symbol.to_ascii_uppercase();
    let found = Venue::from_labels(&exchange, &market)
        .and_then(|venue| symbol_view(&state.tracker, venue, &upper, unix_now()));
    match found {
        Some(view) => Json(view).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!("symbol {exchange}/{market}/{symbol} is not watched by this exporter"),
        ),
    }
}
