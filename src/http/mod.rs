//! The HTTP surface: `/metrics`, the status page at `/`, `/-/healthy`, `/-/ready` and the JSON API for bots, all
//! gzip-compressed when the client accepts it.
//!
//! Owns routing and response shapes: `view` builds what a symbol looks like, `query` reads the filters, `page`
//! renders the HTML, `gzip` compresses. Reads the tracker and the registry; knows nothing of exchange sockets.

mod exposition;
mod gzip;
mod paced;
mod page;
mod query;
mod view;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;
use serde::Serialize;

use crate::metrics::{CONTENT_TYPE, Metrics};
use crate::model::Venue;
use crate::tracker::{Trackers, unix_now};
pub use exposition::render_gzip;
/// The exporter's gzip of a whole answer, at its level (for the benchmark).
pub use gzip::compress as gzip_body;
use query::Params;
use view::symbol_view;
pub use view::{ChannelView, RestCheckView, SymbolView};

/// What the handlers share.
pub struct HttpState {
    /// Freshness state.
    pub trackers: Arc<Trackers>,
    /// The registry `/metrics` renders.
    pub metrics: Arc<Metrics>,
    /// Where the metrics are served (`--web.telemetry-path`).
    pub telemetry_path: String,
    /// When the process started serving, for the status page's uptime.
    pub started: Instant,
    /// Renders of `/metrics` shared by concurrent scrapes.
    exposition: exposition::Exposition,
    /// Turns for answers that list every symbol (the API's list, the status page): each holds a few megabytes
    /// at 10 000 subscriptions, so two are built and sent at once ([`paced`]).
    listings: Arc<tokio::sync::Semaphore>,
}

impl HttpState {
    /// The state of a server that started serving now.
    pub fn new(trackers: Arc<Trackers>, metrics: Metrics, telemetry_path: String) -> Self {
        Self {
            trackers,
            metrics: Arc::new(metrics),
            telemetry_path,
            started: Instant::now(),
            exposition: exposition::Exposition::default(),
            listings: Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }
}

/// The exporter's routes.
pub fn router(state: Arc<HttpState>) -> Router {
    let gzip = || axum::middleware::from_fn(gzip::gzip);
    // `/metrics` compresses once per render itself.
    let metrics_route = Router::new().route(&state.telemetry_path, get(metrics));
    // Whole listings take turns, held until sent (outside gzip, so the turn covers what is written).
    let listings = Router::new()
        .route("/", get(status_page))
        .route("/api/v1/symbols", get(symbols))
        .layer(gzip())
        .layer(axum::middleware::from_fn_with_state(
            state.listings.clone(),
            paced::paced,
        ));
    Router::new()
        .route("/-/healthy", get(|| async { "Healthy\n" }))
        // Ready as soon as the configuration is loaded and we serve: a sidecar's readiness gates the whole
        // pod, so it must never follow exchange health.
        .route("/-/ready", get(|| async { "Ready\n" }))
        .route("/api/v1/symbols/{exchange}/{market}/{symbol}", get(symbol))
        .fallback(not_found)
        .layer(gzip())
        .merge(listings)
        .merge(metrics_route)
        .with_state(state)
}

async fn metrics(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    let gzip = gzip::accepted(&headers);
    let rendered = state.exposition.current(&state.metrics, gzip).await;
    // Compressed here, once per render, rather than per scrape by the gzip layer (which leaves an answer that
    // already has a Content-Encoding alone).
    if gzip && let Some(compressed) = rendered.gzip().await {
        return (
            [
                (header::CONTENT_TYPE, CONTENT_TYPE),
                (header::CONTENT_ENCODING, "gzip"),
                (header::VARY, "accept-encoding"),
            ],
            compressed,
        )
            .into_response();
    }
    (
        [
            (header::CONTENT_TYPE, CONTENT_TYPE),
            (header::VARY, "accept-encoding"),
        ],
        rendered.body(),
    )
        .into_response()
}

/// Every watched symbol's view, in configuration order, with the count before filtering.
fn views(state: &HttpState, request: &query::Request) -> (Vec<SymbolView>, usize) {
    let now = unix_now();
    let mut watched = 0;
    let mut views = Vec::new();
    for tracker in state.trackers.all() {
        for (venue, symbol) in tracker.symbols() {
            watched += 1;
            if let Some(view) = symbol_view(&tracker, venue, symbol, now, request.max_staleness)
                && request.filter.matches(&view)
            {
                views.push(view);
            }
        }
    }
    (views, watched)
}

async fn status_page(
    State(state): State<Arc<HttpState>>,
    params: Result<Query<Params>, QueryRejection>,
) -> Response {
    let request = match query::parse(params) {
        Ok(request) => request,
        Err(message) => {
            return (StatusCode::BAD_REQUEST, Html(page::error(&message))).into_response();
        }
    };
    let (mut rows, watched) = views(&state, &request);
    page::sort_worst_first(&mut rows);
    let markets = state.trackers.venues();
    Html(page::render(&page::Page {
        uptime: state.started.elapsed(),
        telemetry_path: &state.telemetry_path,
        markets: &markets,
        now: unix_now(),
        rows: &rows,
        watched,
        request: &request,
    }))
    .into_response()
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

#[derive(Serialize)]
struct SymbolList {
    symbols: Vec<SymbolView>,
}

async fn symbols(
    State(state): State<Arc<HttpState>>,
    params: Result<Query<Params>, QueryRejection>,
) -> Response {
    let request = match query::parse(params) {
        Ok(request) => request,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let (symbols, _) = views(&state, &request);
    Json(SymbolList { symbols }).into_response()
}

async fn symbol(
    State(state): State<Arc<HttpState>>,
    Path((exchange, market, symbol)): Path<(String, String, String)>,
    params: Result<Query<Params>, QueryRejection>,
) -> Response {
    let request = match query::parse(params) {
        Ok(request) => request,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let upper = symbol.to_ascii_uppercase();
    let found = Venue::from_labels(&exchange, &market)
        .and_then(|venue| Some((venue, state.trackers.get(venue)?)))
        .and_then(|(venue, tracker)| {
            symbol_view(&tracker, venue, &upper, unix_now(), request.max_staleness)
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
    use crate::tracker::{ConnectionInfo, Tracker};
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use rust_decimal::Decimal;
    use std::io::Read;
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
        router(Arc::new(HttpState::new(
            trackers,
            metrics,
            "/metrics".into(),
        )))
    }

    async fn get(uri: &str) -> (StatusCode, String, String) {
        get_with(uri, &[]).await
    }

    async fn get_with(uri: &str, headers: &[(&str, &str)]) -> (StatusCode, String, String) {
        let mut request = Request::get(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = app()
            .oneshot(request.body(Body::empty()).unwrap())
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
    async fn probes_and_status_page() {
        assert_eq!(get("/-/healthy").await.0, StatusCode::OK);
        assert_eq!(get("/-/ready").await.0, StatusCode::OK);
        let (status, content_type, body) = get("/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(content_type.starts_with("text/html"));
        assert!(body.contains("href=\"/metrics\""));
        assert!(
            body.contains("<meta http-equiv=\"refresh\""),
            "reloads itself"
        );
        // Worst first: ETHUSDT (no data) and SOLUSDT (late) before BTCUSDT (healthy, quiet).
        let rows: Vec<&str> = body
            .lines()
            .filter_map(|l| l.strip_prefix("<tr id=\"bybit-linear-"))
            .map(|l| &l[..7])
            .collect();
        assert_eq!(rows, ["ETHUSDT", "SOLUSDT", "BTCUSDT"], "{body}");
        assert!(
            body.contains("<td class=\"no_data\">no_data</td>"),
            "{body}"
        );
        assert!(body.contains("<td class=\"late\">late</td>"), "{body}");
        assert!(
            body.contains("<tr><td>bybit/linear</td>"),
            "the market line: {body}"
        );
        assert!(
            body.contains("<p id=\"count\">3 symbols, worst first.</p>"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn the_status_page_filters_and_caps() {
        let (status, _, body) = get("/?status=healthy&feed=late").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body.matches("<tr id=").count(), 1, "{body}");
        assert!(body.contains("<tr id=\"bybit-linear-SOLUSDT\">"), "{body}");
        assert!(
            body.contains("1 symbol matching the filter, of 3 watched"),
            "{body}"
        );
        assert!(
            body.contains("<option selected>late</option>"),
            "the form shows the filter: {body}"
        );
        let (_, _, body) = get("/?limit=1").await;
        assert_eq!(body.matches("<tr id=").count(), 1, "{body}");
        assert!(
            body.contains("<p id=\"more\">The worst 1 of 3 shown."),
            "{body}"
        );
        let (status, content_type, body) = get("/?status=stal").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(content_type.starts_with("text/html"));
        assert!(
            body.contains("status: unknown value &quot;stal&quot; (expected no_data, healthy, degraded, stale, critical)"),
            "{body}"
        );
        let (status, _, _) = get("/?limit=0").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn the_api_list_takes_the_same_filters() {
        let names = |body: &str| -> Vec<String> {
            json(body)["symbols"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["symbol"].as_str().unwrap().to_owned())
                .collect()
        };
        for (query, expected) in [
            ("?status=no_data", &["ETHUSDT"][..]),
            ("?status=healthy", &["BTCUSDT", "SOLUSDT"]),
            ("?feed=late,no_data", &["ETHUSDT", "SOLUSDT"]),
            ("?feed=quiet&exchange=bybit&market=linear", &["BTCUSDT"]),
            ("?exchange=binance", &[]),
            ("?status=", &["BTCUSDT", "ETHUSDT", "SOLUSDT"]),
        ] {
            let (status, _, body) = get(&format!("/api/v1/symbols{query}")).await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            assert_eq!(names(&body), expected, "{query}");
        }
        for (query, message) in [
            (
                "?market=futures",
                r#"market: unknown value "futures" (expected inverse, linear, spot, usdm)"#,
            ),
            (
                "?exchange=okx",
                r#"exchange: unknown value "okx" (expected binance, bybit)"#,
            ),
            (
                "?feed=dead",
                r#"feed: unknown value "dead" (expected live, quiet, late, no_data)"#,
            ),
        ] {
            let (status, _, body) = get(&format!("/api/v1/symbols{query}")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
            assert_eq!(json(&body)["error"], message, "{query}");
        }
    }

    /// What Prometheus and browsers send: gzip when asked, the same content once decoded; not when not asked.
    #[tokio::test]
    async fn text_answers_are_gzipped_when_accepted() {
        for uri in ["/metrics", "/", "/api/v1/symbols"] {
            let plain = get(uri).await.2;
            let response = app()
                .oneshot(
                    Request::get(uri)
                        .header("accept-encoding", "gzip")
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let headers = response.headers().clone();
            assert_eq!(
                headers.get(header::CONTENT_ENCODING).unwrap(),
                "gzip",
                "{uri}"
            );
            assert_eq!(
                headers.get(header::VARY).unwrap(),
                "accept-encoding",
                "{uri}"
            );
            let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
            assert!(
                body.len() < plain.len() / 2,
                "{uri}: {} of {}",
                body.len(),
                plain.len()
            );
            let mut decoded = String::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_string(&mut decoded)
                .unwrap();
            // The page shows the uptime and ages, which move between the two requests.
            if uri == "/" {
                assert!(decoded.starts_with("<!DOCTYPE html>") && decoded.ends_with("</html>\n"));
            } else if uri == "/metrics" {
                assert_eq!(decoded.lines().count(), plain.lines().count(), "{uri}");
            } else {
                assert_eq!(json(&decoded)["symbols"].as_array().unwrap().len(), 3);
            }
        }
        let response = app()
            .oneshot(
                Request::get("/metrics")
                    .header("accept-encoding", "identity")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert!(response.headers().get(header::CONTENT_ENCODING).is_none());
        let (_, _, tiny) = get_with("/-/healthy", &[("accept-encoding", "gzip")]).await;
        assert_eq!(tiny, "Healthy\n", "a few bytes are not worth compressing");
    }

    #[tokio::test]
    async fn the_reference_price_follows_channel_priority_not_recency() {
        // BTCUSDT: orderbook.1 (a book mid, rank 0) has no price in this scenario, tickers (rank 2) has 100.50.
        let v = json(&get("/api/v1/symbols/bybit/linear/BTCUSDT").await.2);
        assert_eq!(
            (&v["last_price"], &v["price_channel"]),
            (&"100.50".into(), &"tickers".into())
        );
        // Each channel keeps its own price.
        assert_eq!(v["channels"][1]["last_price"], "100.50");
        assert_eq!(v["channels"][0]["last_price"], serde_json::Value::Null);
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
