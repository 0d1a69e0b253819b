//! The HTTP surface: `/metrics`, the landing page, `/-/healthy`, `/-/ready` and the JSON API for bots.
//!
//! Owns routing and response shapes. Reads the tracker and the registry; knows nothing of exchange sockets.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use crate::freshness::{Feed, symbol_feed};
use crate::metrics::{CONTENT_TYPE, Metrics};
use crate::model::Venue;
use crate::tracker::{Listing, SubscriptionView, Tracker, Trackers, UnixNanos, unix_now};

/// What the handlers share.
pub struct HttpState {
    /// Freshness state.
    pub trackers: Arc<Trackers>,
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
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        state.metrics.render(),
    )
        .into_response()
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

/// One symbol on one venue: the freshest of its channels decides its status; its scheduled channels decide
/// whether the feed is proven alive.
#[derive(Debug, Serialize)]
pub struct SymbolView {
    exchange: &'static str,
    market: &'static str,
    symbol: String,
    /// no_data until a channel delivered, then healthy, degraded, stale or critical by the market's thresholds.
    status: &'static str,
    /// live, quiet, late or no_data: see [`Feed`].
    feed: &'static str,
    /// With `?max_staleness=`: whether the price may be acted on (delivered, not late, fresh enough).
    #[serde(skip_serializing_if = "Option::is_none")]
    usable: Option<bool>,
    staleness_seconds: f64,
    /// RFC 3339 receive time of the freshest message; null before any message.
    last_update: Option<String>,
    last_update_unix: Option<f64>,
    /// Exact decimal string of the price of the most recent message that carried one.
    last_price: Option<String>,
    /// What the venue's REST instrument list says: trading, halted, unlisted, or unknown before it was read.
    listing: &'static str,
    /// The last REST cross-check, made when the symbol went stale.
    rest_check: Option<RestCheckView>,
    channels: Vec<ChannelView>,
}

/// A REST cross-check of a stale symbol.
#[derive(Debug, Serialize)]
pub struct RestCheckView {
    checked_at: String,
    rest_price: String,
    /// true: REST shows a trade or price the feed missed (the feed is broken); false: REST agrees (the market
    /// is quiet); null: nothing comparable.
    feed_behind: Option<bool>,
}

/// One channel of a symbol.
#[derive(Debug, Serialize)]
pub struct ChannelView {
    channel: String,
    status: &'static str,
    feed: &'static str,
    /// The venue's push interval for a scheduled channel; null for an event-driven one.
    expected_interval_seconds: Option<f64>,
    staleness_seconds: f64,
    last_update: Option<String>,
    last_update_unix: Option<f64>,
    last_event_unix: Option<f64>,
    last_price: Option<String>,
    messages: u64,
    subscribed: bool,
    /// Times the exporter resubscribed it after it went silent while its connection delivered.
    resubscribes: u64,
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
    let received = v.delivered();
    ChannelView {
        channel: v.subscription.channel.name.clone(),
        status: tracker.thresholds().status(received, age).as_str(),
        feed: v.clock(now).feed().as_str(),
        expected_interval_seconds: v.subscription.channel.interval.map(|d| d.as_secs_f64()),
        staleness_seconds: round_ms(age.as_secs_f64()),
        last_update: received.then(|| rfc3339(v.last_message_ns)),
        last_update_unix: received.then(|| round_ms(v.last_message_ns as f64 / 1e9)),
        last_event_unix: v.last_event_ms.map(|ms| ms as f64 / 1e3),
        last_price: v.price.map(|p| p.to_string()),
        messages: v.messages,
        subscribed: v.acked,
        resubscribes: v.resubscribes,
        connection: v.connection,
    }
}

/// Builds the view of one symbol from its slots; `None` when it has none. `max_staleness` adds `usable`.
fn symbol_view(
    tracker: &Tracker,
    venue: Venue,
    symbol: &str,
    now: UnixNanos,
    max_staleness: Option<Duration>,
) -> Option<SymbolView> {
    let views: Vec<SubscriptionView<'_>> = tracker
        .symbol_slots(venue, symbol)?
        .iter()
        .map(|&slot| tracker.subscription(slot))
        .collect();
    let freshest = views.iter().max_by_key(|v| v.last_message_ns)?;
    let received = views.iter().any(SubscriptionView::delivered);
    let age = freshest.age(now);
    let feed = symbol_feed(views.iter().map(|v| v.clock(now)));
    // A late feed is refused whatever the age of the freshest channel: its scheduled channel is dead, so the
    // price the bot would read next is the one that stopped. No data is never usable.
    let usable = max_staleness.map(|max| received && feed != Feed::Late && age <= max);
    let last_price = views
        .iter()
        .filter(|v| v.price.is_some())
        .max_by_key(|v| v.last_message_ns)
        .and_then(|v| v.price.map(|p| p.to_string()));
    let status = tracker.thresholds().status(received, age);
    let listing = match tracker.listing(venue, symbol) {
        Listing::Unknown => "unknown",
        Listing::Trading => "trading",
        Listing::Halted => "halted",
        Listing::Unlisted => "unlisted",
    };
    let rest_check = tracker.cross_check(venue, symbol).map(|c| RestCheckView {
        checked_at: rfc3339(c.checked_ns),
        rest_price: c.rest_price.to_string(),
        feed_behind: c.feed_behind,
    });
    Some(SymbolView {
        exchange: venue.exchange().as_str(),
        market: venue.market().as_str(),
        symbol: symbol.to_owned(),
        status: status.as_str(),
        feed: feed.as_str(),
        usable,
        staleness_seconds: round_ms(age.as_secs_f64()),
        last_update: received.then(|| rfc3339(freshest.last_message_ns)),
        last_update_unix: received.then(|| round_ms(freshest.last_message_ns as f64 / 1e9)),
        last_price,
        listing,
        rest_check,
        channels: views
            .iter()
            .map(|v| channel_view(tracker, v, now))
            .collect(),
    })
}

#[derive(Serialize)]
struct SymbolList {
    symbols: Vec<SymbolView>,
}

/// The query string of the symbol endpoints; unknown parameters are ignored.
#[derive(Debug, Deserialize)]
struct Params {
    /// A duration (`2s`, `500ms`, `1m`): adds `usable` to each symbol.
    max_staleness: Option<String>,
}

/// Reads `?max_staleness=`; the error is the message of a 400, naming the parameter.
fn max_staleness(
    params: Result<Query<Params>, QueryRejection>,
) -> Result<Option<Duration>, String> {
    let Query(params) = params.map_err(|e| format!("invalid query string: {}", e.body_text()))?;
    let Some(value) = params.max_staleness else {
        return Ok(None);
    };
    humantime::parse_duration(value.trim())
        .map(Some)
        .map_err(|_| format!("max_staleness: invalid duration {value:?} (use e.g. 2s, 500ms, 1m)"))
}

async fn symbols(
    State(state): State<Arc<HttpState>>,
    params: Result<Query<Params>, QueryRejection>,
) -> Response {
    let max_staleness = match max_staleness(params) {
        Ok(max) => max,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let now = unix_now();
    let trackers = state.trackers.all();
    let symbols = trackers
        .iter()
        .flat_map(|t| {
            t.symbols().filter_map(move |(venue, symbol)| {
                symbol_view(t, venue, symbol, now, max_staleness)
            })
        })
        .collect();
    Json(SymbolList { symbols }).into_response()
}

async fn symbol(
    State(state): State<Arc<HttpState>>,
    Path((exchange, market, symbol)): Path<(String, String, String)>,
    params: Result<Query<Params>, QueryRejection>,
) -> Response {
    let max_staleness = match max_staleness(params) {
        Ok(max) => max,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let upper = symbol.to_ascii_uppercase();
    let found = Venue::from_labels(&exchange, &market)
        .and_then(|venue| Some((venue, state.trackers.get(venue)?)))
        .and_then(|(venue, tracker)| {
            symbol_view(&tracker, venue, &upper, unix_now(), max_staleness)
        });
    match found {
        Some(view) => Json(view).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!("symbol {exchange}/{market}/{symbol} is not watched by this exporter"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::freshness::Rules;
    use crate::metrics::BuildInfo;
    use crate::model::{Sample, Subscription};
    use crate::tracker::ConnectionInfo;
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use rust_decimal::Decimal;
    use std::str::FromStr;
    use tower::ServiceExt;

    const S: u64 = 1_000_000_000;

    /// Bybit linear with the default rules (orderbook.1 late after 17 s, tickers quiet after 17 s), subscribed
    /// 400 s ago: BTCUSDT's book fresh and its tickers 200 s old (a quiet market), ETHUSDT never delivered,
    /// SOLUSDT's tickers fresh but its book 30 s old (a dead feed).
    fn app() -> Router {
        let sub = |channel: &str, symbol: &str| Subscription {
            venue: Venue::BybitLinear,
            channel: crate::venue::channel(Venue::BybitLinear, channel).unwrap(),
            symbol: symbol.into(),
        };
        let subs = vec![
            sub("orderbook.1", "BTCUSDT"),
            sub("tickers", "BTCUSDT"),
            sub("orderbook.1", "ETHUSDT"),
            sub("orderbook.1", "SOLUSDT"),
            sub("tickers", "SOLUSDT"),
        ];
        let conns = vec![ConnectionInfo {
            venue: Venue::BybitLinear,
            index: 0,
            slots: vec![0, 1, 2, 3, 4],
        }];
        let now = unix_now();
        let tracker = Arc::new(Tracker::new(subs, conns, Rules::default(), now - 400 * S));
        tracker.set_acked(0, true);
        tracker.record(3, now - 30 * S, &Sample::default());
        tracker.record(4, now - S, &Sample::default());
        tracker.record(
            1,
            now - 200 * S,
            &Sample {
                event_time_ms: None,
                price: Decimal::from_str("100.50").ok(),
            },
        );
        tracker.record(
            0,
            now - S,
            &Sample {
                event_time_ms: Some(1),
                price: None,
            },
        );
        let build = BuildInfo {
            version: "v".into(),
            revision: "r".into(),
            rustc_version: "c".into(),
        };
        let rest = Arc::new(crate::rest::RestStats::new(&[]));
        let trackers = Arc::new(Trackers::new());
        trackers.set(Venue::BybitLinear, tracker);
        let metrics = Metrics::new(trackers.clone(), rest, build, false).unwrap();
        router(Arc::new(HttpState {
            trackers,
            metrics,
            telemetry_path: "/metrics".into(),
        }))
    }

    async fn get(uri: &str) -> (StatusCode, String, String) {
        let response = app()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (
            status,
            content_type,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    fn json(body: &str) -> serde_json::Value {
        serde_json::from_str(body).unwrap()
    }

    #[tokio::test]
    async fn probes_and_landing_page() {
        assert_eq!(get("/-/healthy").await.0, StatusCode::OK);
        assert_eq!(get("/-/ready").await.0, StatusCode::OK);
        let (status, content_type, body) = get("/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(content_type.starts_with("text/html"));
        assert!(body.contains("href=\"/metrics\""));
    }

    #[tokio::test]
    async fn metrics_endpoint_serves_the_exposition() {
        let (status, content_type, body) = get("/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type, CONTENT_TYPE);
        assert!(body.contains(
            "marketfeed_messages_total{exchange=\"bybit\",market=\"linear\",channel=\"tickers\",symbol=\"BTCUSDT\"} 1"
        ));
    }

    #[tokio::test]
    async fn symbol_status_follows_the_freshest_channel() {
        let (status, content_type, body) = get("/api/v1/symbols/bybit/linear/btcusdt").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type, "application/json");
        let v = json(&body);
        assert_eq!(v["symbol"], "BTCUSDT");
        assert_eq!(v["status"], "healthy");
        assert!(v["staleness_seconds"].as_f64().unwrap() < 5.0);
        assert_eq!(
            v["last_price"], "100.50",
            "the exact decimal, from the channel that carried a price"
        );
        assert!(v["last_update"].as_str().unwrap().ends_with('Z'));
        assert_eq!(v["channels"][0]["subscribed"], true);
        assert_eq!(v["channels"][1]["channel"], "tickers");
        assert_eq!(v["channels"][1]["status"], "degraded");
        assert_eq!(v["channels"][1]["messages"], 1);
    }

    #[tokio::test]
    async fn quiet_market_is_told_from_a_dead_feed() {
        let v = json(&get("/api/v1/symbols/bybit/linear/BTCUSDT").await.2);
        assert_eq!(
            (&v["status"], &v["feed"]),
            (&"healthy".into(), &"quiet".into())
        );
        assert_eq!(v["channels"][0]["feed"], "live");
        assert_eq!(v["channels"][0]["expected_interval_seconds"], 3.0);
        assert_eq!(v["channels"][1]["feed"], "quiet");
        assert_eq!(
            v["channels"][1]["expected_interval_seconds"],
            serde_json::Value::Null
        );
        assert!(v.get("usable").is_none(), "usable only when asked: {v}");

        let v = json(&get("/api/v1/symbols/bybit/linear/SOLUSDT").await.2);
        assert_eq!(
            (&v["status"], &v["feed"]),
            (&"healthy".into(), &"late".into()),
            "fresh tickers, but the book missed its cadence: {v}"
        );
        assert_eq!(v["channels"][0]["feed"], "late");
        assert_eq!(v["channels"][0]["status"], "healthy");
        assert_eq!(v["channels"][1]["feed"], "live");
    }

    #[tokio::test]
    async fn never_delivered_symbol_is_no_data_not_healthy() {
        let v = json(&get("/api/v1/symbols/bybit/linear/ETHUSDT").await.2);
        assert_eq!(v["status"], "no_data");
        assert_eq!(v["feed"], "no_data");
        assert_eq!(v["channels"][0]["status"], "no_data");
        assert_eq!(v["channels"][0]["feed"], "no_data");
        assert_eq!(v["last_update"], serde_json::Value::Null);
        assert_eq!(v["last_price"], serde_json::Value::Null);
        assert!(v["staleness_seconds"].as_f64().unwrap() >= 400.0);
    }

    #[tokio::test]
    async fn max_staleness_answers_usable() {
        let usable = |uri: &'static str| async move {
            let (status, _, body) = get(uri).await;
            assert_eq!(status, StatusCode::OK, "{uri}: {body}");
            json(&body)["usable"].clone()
        };
        let cases = [
            (
                "/api/v1/symbols/bybit/linear/BTCUSDT?max_staleness=5s",
                true,
            ),
            (
                "/api/v1/symbols/bybit/linear/BTCUSDT?max_staleness=500ms",
                false,
            ),
            (
                "/api/v1/symbols/bybit/linear/BTCUSDT?max_staleness=1h&other=x",
                true,
            ),
            (
                "/api/v1/symbols/bybit/linear/ETHUSDT?max_staleness=1h",
                false,
            ),
            (
                "/api/v1/symbols/bybit/linear/SOLUSDT?max_staleness=1h",
                false,
            ),
        ];
        for (uri, expected) in cases {
            assert_eq!(usable(uri).await, expected, "{uri}");
        }
        let list = json(&get("/api/v1/symbols?max_staleness=5s").await.2);
        let answers: Vec<_> = list["symbols"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["symbol"].as_str().unwrap(),
                    s["usable"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            answers,
            [("BTCUSDT", true), ("ETHUSDT", false), ("SOLUSDT", false)]
        );
    }

    #[tokio::test]
    async fn invalid_max_staleness_is_a_400_naming_the_parameter() {
        for (uri, error) in [
            (
                "/api/v1/symbols/bybit/linear/BTCUSDT?max_staleness=soon",
                r#"max_staleness: invalid duration "soon" (use e.g. 2s, 500ms, 1m)"#,
            ),
            (
                "/api/v1/symbols?max_staleness=-1s",
                r#"max_staleness: invalid duration "-1s" (use e.g. 2s, 500ms, 1m)"#,
            ),
            (
                "/api/v1/symbols?max_staleness=",
                r#"max_staleness: invalid duration "" (use e.g. 2s, 500ms, 1m)"#,
            ),
        ] {
            let (status, content_type, body) = get(uri).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
            assert_eq!(content_type, "application/json", "{uri}");
            assert_eq!(json(&body)["error"], error, "{uri}");
        }
    }

    #[tokio::test]
    async fn list_has_every_symbol_once_in_configuration_order() {
        let v = json(&get("/api/v1/symbols").await.2);
        let names: Vec<&str> = v["symbols"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["symbol"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["BTCUSDT", "ETHUSDT", "SOLUSDT"]);
    }

    #[tokio::test]
    async fn unknown_symbol_or_venue_is_a_json_404() {
        for uri in [
            "/api/v1/symbols/bybit/linear/DOGEUSDT",
            "/api/v1/symbols/kraken/spot/BTCUSDT",
            "/nope",
        ] {
            let (status, content_type, body) = get(uri).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
            assert_eq!(content_type, "application/json", "{uri}");
            assert!(json(&body)["error"].is_string(), "{uri}");
        }
        let body = get("/api/v1/symbols/bybit/linear/DOGEUSDT").await.2;
        assert_eq!(
            json(&body)["error"],
            "symbol bybit/linear/DOGEUSDT is not watched by this exporter"
        );
    }
}
