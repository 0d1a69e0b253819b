//! Mutation fuzzing on stable Rust, seeded from the real exchange messages in `tests/fixtures/`: the frame scanner
//! and both venues' payload decoders, the REST decoders and status classification, the web configuration parser,
//! and the HTTP API's paths and query strings through the real router. The property is that nothing panics and
//! every answer is one of the defined ones; decoders may refuse anything.
//!
//! The test command runs a bounded number of cases per target (seconds in all). For a long run:
//! `MARKETFEED_FUZZ_CASES=5000000 cargo test --release --test fuzz -- --nocapture`; a failing case prints its
//! seed, and `MARKETFEED_FUZZ_SEED=<seed>` replays the run.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use marketfeed_exporter::freshness::Rules;
use marketfeed_exporter::http::{HttpState, router};
use marketfeed_exporter::metrics::{BuildInfo, Metrics};
use marketfeed_exporter::model::{ChannelKind, Subscription, Venue};
use marketfeed_exporter::rest::RestStats;
use marketfeed_exporter::tracker::{ConnectionInfo, Tracker, Trackers, unix_now};
use marketfeed_exporter::venue::rest as wire;
use marketfeed_exporter::venue::{self, Frame};
use marketfeed_exporter::web::WebConfig;
use tower::ServiceExt;

/// Cases per target in the test command.
const DEFAULT_CASES: usize = 10_000;

fn cases() -> usize {
    std::env::var("MARKETFEED_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

/// A generator seeded from `MARKETFEED_FUZZ_SEED`, or from the clock (printed, so a failure can be replayed).
fn rng(target: &str) -> fastrand::Rng {
    let seed = std::env::var("MARKETFEED_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("fuzz {target}: MARKETFEED_FUZZ_SEED={seed}");
    fastrand::Rng::with_seed(seed)
}

fn fixtures(dir: &str) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// Pieces that tend to break JSON decoders: numbers at and past every limit, odd strings, structure.
const TOKENS: &[&str] = &[
    "\"",
    "\\",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "null",
    "true",
    "-",
    "0",
    "-0",
    "1e400",
    "-1e400",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "79228162514264337593543950336",
    "0.0000000000000000000000000001",
    "1.7976931348623157e308",
    "\"\"",
    "\"NaN\"",
    "\"inf\"",
    "\"-5\"",
    "\"0\"",
    "\"36028797018963968\"",
    "\"1e5\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "é",
    "\u{10ffff}",
    " ",
    "\n",
    "\"E\":",
    "\"p\":",
    "\"b\":",
    "\"a\":",
    "\"data\":",
    "\"topic\":",
    "\"stream\":",
    "\"ts\":",
    "\"retCode\":",
    "\"result\":",
    "\"list\":",
];

/// One random edit of `text`: flip, delete, insert or duplicate a span, or splice a token in.
fn mutate(rng: &mut fastrand::Rng, text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..rng.usize(1..=4) {
        let len = bytes.len();
        let at = if len == 0 { 0 } else { rng.usize(..=len) };
        match rng.u8(..6) {
            0 if len > 0 => {
                let i = rng.usize(..len);
                bytes[i] ^= 1 << rng.u8(..8);
            }
            1 if len > 0 => {
                let end = (at + rng.usize(1..16)).min(len);
                bytes.drain(at.min(end)..end);
            }
            2 => {
                let token = TOKENS[rng.usize(..TOKENS.len())];
                bytes.splice(at..at, token.bytes());
            }
            3 if len > 0 => {
                let start = rng.usize(..len);
                let end = (start + rng.usize(1..64)).min(len);
                let span = bytes[start..end].to_vec();
                bytes.splice(at..at, span);
            }
            4 => bytes.truncate(at),
            _ => {
                let random: Vec<u8> = (0..rng.usize(1..8)).map(|_| rng.u8(..)).collect();
                bytes.splice(at..at, random);
            }
        }
    }
    // The socket hands the session text only (tungstenite checks UTF-8); keep to what can arrive.
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Every payload decoder: each market's reading of each kind (one kind can have a shape per market).
const KINDS: [ChannelKind; 7] = [
    ChannelKind::BookTop,
    ChannelKind::BookLevels,
    ChannelKind::BookDeltas,
    ChannelKind::Trade,
    ChannelKind::Ticker,
    ChannelKind::Kline,
    ChannelKind::MarkPrice,
];

fn decoders() -> impl Iterator<Item = (Venue, ChannelKind)> {
    Venue::ALL
        .into_iter()
        .flat_map(|venue| KINDS.map(|kind| (venue, kind)))
}

/// What the session does with a text frame, and what the tracker does with the sample, for every kind: the
/// tracker's arithmetic (gaps, latency, price cell) sees whatever a decoder lets through.
fn ingest(venue: Venue, tracker: &Tracker, text: &str) {
    if let Ok(Frame::Data {
        key,
        payload,
        ts_ms,
    }) = venue::decode_frame(venue, text)
    {
        assert!(
            text.contains(key) || key.is_empty() || !key.is_ascii(),
            "key from nowhere: {key}"
        );
        // The frame scan does not walk the payload: whatever a decoder accepts must be JSON all through.
        let json = serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
        assert_eq!(
            venue::validate_data(venue, text, payload).is_ok(),
            json,
            "{text}"
        );
        for (market, kind) in decoders() {
            if let Ok(sample) = venue::decode_data(market, kind, text, payload, ts_ms) {
                assert!(
                    json,
                    "{venue} {kind:?} decoded a frame that is no JSON: {text}"
                );
                tracker.record(0, unix_now(), &sample);
            }
        }
    }
}

fn tracker() -> Tracker {
    let venue = Venue::BybitLinear;
    let sub = Subscription {
        venue,
        channel: venue::channel(venue, "tickers").unwrap(),
        symbol: "BTCUSDT".into(),
    };
    let conns = vec![ConnectionInfo {
        venue,
        index: 0,
        slots: vec![0],
    }];
    Tracker::new(vec![sub], conns, Rules::default(), unix_now())
}

#[test]
fn websocket_frames_and_payloads() {
    let mut rng = rng("websocket");
    let seeds: Vec<(Venue, String)> = [
        (Venue::BinanceSpot, "binance-spot"),
        (Venue::BinanceUsdm, "binance-usdm"),
        (Venue::BybitLinear, "bybit"),
    ]
    .into_iter()
    .flat_map(|(venue, dir)| fixtures(dir).into_iter().map(move |f| (venue, f)))
    .collect();
    let tracker = tracker();
    for (venue, seed) in &seeds {
        ingest(*venue, &tracker, seed);
    }
    for _ in 0..cases() {
        let (venue, seed) = &seeds[rng.usize(..seeds.len())];
        let text = mutate(&mut rng, seed);
        ingest(*venue, &tracker, &text);
        // The payload decoders also meet text that is no envelope at all.
        for (venue, kind) in decoders() {
            let _ = venue::decode_sample(venue, kind, &text, None);
        }
    }
    // Whatever went through, the tracker's state reads back.
    let view = tracker.subscription(0);
    let _ = (view.price, view.last_event_ms, tracker.histograms().count());
}

#[test]
fn rest_replies_and_statuses() {
    let mut rng = rng("rest");
    let venues = Venue::ALL;
    let seeds: Vec<String> = ["binance-spot", "binance-usdm", "bybit"]
        .into_iter()
        .flat_map(fixtures)
        .collect();
    for _ in 0..cases() {
        let seed = &seeds[rng.usize(..seeds.len())];
        let text = mutate(&mut rng, seed);
        let venue = venues[rng.usize(..venues.len())];
        let _ = wire::parse_server_time(venue, &text);
        let _ = wire::parse_instruments(venue, &text);
        let _ = wire::parse_ticker(venue, &text);
        let status = rng.u16(100..600);
        let retry_after = mutate(&mut rng, "120");
        let _ = wire::classify_status(venue, status, Some(&retry_after));
    }
}

#[test]
fn web_configuration() {
    let mut rng = rng("web-config");
    let dir = Path::new("/nonexistent");
    let seeds = [
        "tls_server_config:\n  cert_file: a.pem\n  key_file: b.pem\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n  min_version: TLS12\n  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n  curve_preferences: [X25519]\n",
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\n",
        "basic_auth_users:\n  alice: '$2y$10$X0yX6X0yX6X0yX6X0yX6X.X0yX6X0yX6X0yX6X0yX6X0yX6X0yX6'\n",
        "",
    ];
    for _ in 0..cases() {
        let seed = seeds[rng.usize(..seeds.len())];
        let text = mutate(&mut rng, seed);
        // Parsing only: files it names do not exist, so loading them fails cleanly too.
        let _ = WebConfig::parse(&text, dir);
    }
}

fn state() -> Arc<HttpState> {
    let trackers = Arc::new(Trackers::new());
    trackers.set(Venue::BybitLinear, Arc::new(tracker()));
    let metrics = Metrics::new(
        trackers.clone(),
        Arc::new(RestStats::new(&[Venue::BybitLinear])),
        BuildInfo::current(),
        false,
    )
    .unwrap();
    Arc::new(HttpState::new(trackers, metrics, "/metrics".into()))
}

/// Paths and query strings as a client can send them: known routes and parameters, edited.
fn target(rng: &mut fastrand::Rng) -> String {
    const PATHS: &[&str] = &[
        "/",
        "/metrics",
        "/-/healthy",
        "/api/v1/symbols",
        "/api/v1/symbols/bybit/linear/BTCUSDT",
        "/api/v1/symbols/binance/spot/ETHUSDT",
        "/api/v1/symbols/%62ybit/linear/btcusdt",
    ];
    const PARAMS: &[&str] = &[
        "status=stale,critical",
        "feed=late",
        "exchange=bybit",
        "market=linear,spot",
        "max_staleness=2s",
        "max_staleness=500ms",
        "limit=10",
        "limit=10000",
        "limit=0",
        "max_staleness=99999999999999999999h",
        "status=",
        "x=y",
    ];
    let mut path = PATHS[rng.usize(..PATHS.len())].to_owned();
    if rng.bool() {
        path = mutate(rng, &path);
    }
    let params: Vec<String> = (0..rng.usize(..4))
        .map(|_| {
            let p = PARAMS[rng.usize(..PARAMS.len())];
            if rng.u8(..3) == 0 {
                mutate(rng, p)
            } else {
                p.to_owned()
            }
        })
        .collect();
    let mut target = path;
    if !params.is_empty() {
        target.push('?');
        target.push_str(&params.join("&"));
    }
    // Only what an HTTP request line can carry: visible ASCII, percent-encoding the rest.
    target
        .bytes()
        .map(|b| {
            if b.is_ascii_graphic() && b != b'#' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn api_paths_and_queries() {
    let mut rng = rng("api");
    let app = router(state());
    for _ in 0..cases() {
        let uri = target(&mut rng);
        let Ok(request) = Request::get(uri.as_str()).body(Body::empty()) else {
            continue;
        };
        let response = app.clone().oneshot(request).await.unwrap();
        assert!(
            [
                StatusCode::OK,
                StatusCode::BAD_REQUEST,
                StatusCode::NOT_FOUND
            ]
            .contains(&response.status()),
            "{uri}: {}",
            response.status()
        );
    }
}
