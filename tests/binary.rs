//! The real binary: flags, configuration errors and their exit code, serving without network, a real
//! scrape linted by `promtool check metrics`, and a clean exit on SIGTERM and SIGINT.

use marketfeed_testkit as support;

use std::time::{Duration, Instant};

use support::exporter::{Exporter, command, run, unreachable_venues};
use support::fake::{FakeKind, FakeVenue};
use support::http::{get, get_with_headers};
use support::metrics::Scrape;

/// `--help | head`: a reader that has gone is no crash (Rust ignores SIGPIPE, so `println!` would panic).
#[test]
fn a_closed_stdout_is_not_a_crash() {
    for args in [&["--help"][..], &["--version"], &["--check-config"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = command(&unreachable_venues(), args)
            .stdout(writer)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {}\n{stderr}", out.status);
        assert_eq!(stderr, "", "{args:?}");
    }
}

#[test]
fn help_and_version() {
    let help = run(&[], &["--help"]);
    assert!(help.status.success());
    let text = String::from_utf8(help.stdout).unwrap();
    for needle in [
        "--web.listen-address",
        "--web.telemetry-path",
        "--check-config",
        "MARKETFEED_BINANCE_USDM_SYMBOLS",
        "MARKETFEED_STALE_AFTER",
    ] {
        assert!(text.contains(needle), "--help mentions {needle}");
    }
    let version = run(&[], &["--version"]);
    assert!(version.status.success());
    assert!(
        String::from_utf8(version.stdout)
            .unwrap()
            .starts_with(concat!("marketfeed_exporter ", env!("CARGO_PKG_VERSION")))
    );
}

#[test]
fn configuration_errors_are_named_with_exit_code_2() {
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);
    let cases: &[Case] = &[
        (
            &[("MARKETFEED_BINANCE_SPOT_SYMBOL", "BTCUSDT")],
            &[],
            "MARKETFEED_BINANCE_SPOT_SYMBOL: unknown variable (did you mean MARKETFEED_BINANCE_SPOT_SYMBOLS?)",
        ),
        (
            &[("MARKETFEED_BYBIT_SPOT_SYMBOLS", " , ")],
            &[],
            "MARKETFEED_BYBIT_SPOT_SYMBOLS: empty symbol list",
        ),
        (
            &[("MARKETFEED_BINANCE_SPOT_URL", "http://example.invalid")],
            &[],
            "MARKETFEED_BINANCE_SPOT_URL: invalid URL \"http://example.invalid\": scheme must be ws or wss",
        ),
        (
            &[
                ("MARKETFEED_DEGRADED_AFTER", "5m"),
                ("MARKETFEED_STALE_AFTER", "3m"),
            ],
            &[],
            "MARKETFEED_DEGRADED_AFTER, MARKETFEED_STALE_AFTER, MARKETFEED_CRITICAL_AFTER: thresholds out of order (5m, 3m, 1h); need degraded < stale < critical",
        ),
        (
            &[("MARKETFEED_HEARTBEAT_MISSES", "0")],
            &[],
            "MARKETFEED_HEARTBEAT_MISSES: invalid value \"0\" (a whole number of at least 1)",
        ),
        (
            &[
                ("MARKETFEED_BINANCE_USDM_SYMBOLS", "BTCUSDT"),
                ("MARKETFEED_BINANCE_USDM_STALE_AFTER", "30s"),
            ],
            &[],
            "MARKETFEED_BINANCE_USDM_STALE_AFTER: binance/usdm thresholds out of order (degraded 3m, stale 30s, critical 1h); need degraded < stale < critical (degraded from MARKETFEED_DEGRADED_AFTER, critical from MARKETFEED_CRITICAL_AFTER)",
        ),
        (
            &[],
            &["--web.frobnicate"],
            "unknown flag --web.frobnicate (see --help)",
        ),
        (
            &[],
            &["--listen-address=:9100"],
            "unknown flag --listen-address (did you mean --web.listen-address?) (see --help)",
        ),
        (
            &[("MARKETFEED_LOG_LEVEL", "verbose")],
            &[],
            "MARKETFEED_LOG_LEVEL: invalid filter \"verbose\": \"verbose\" is not a level (trace, debug, info, warn, error, off); to set one target's level write target=level",
        ),
        (
            &[("MARKETFEED_LOG_LEVEL", "inf")],
            &[],
            "MARKETFEED_LOG_LEVEL: invalid filter \"inf\": \"inf\" is not a level (trace, debug, info, warn, error, off); did you mean info?",
        ),
        (
            &[(
                "MARKETFEED_BINANCE_SPOT_URL",
                "wss://stream.binance.com:9443/stream",
            )],
            &[],
            "MARKETFEED_BINANCE_SPOT_URL: invalid URL \"wss://stream.binance.com:9443/stream\": the exporter appends the route (/stream here) itself; use \"wss://stream.binance.com:9443\"",
        ),
    ];
    for (vars, args, message) in cases {
        let out = run(vars, args);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{message}: {stderr}");
        assert_eq!(
            stderr,
            format!("marketfeed_exporter: invalid configuration:\n{message}\n")
        );
        assert!(out.stdout.is_empty());
    }
    // Several problems at once are all reported.
    let out = run(
        &[
            ("MARKETFEED_IDLE_TIMEOUT", "0s"),
            ("MARKETFEED_LOG_FORMAT", "xml"),
        ],
        &[],
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("MARKETFEED_IDLE_TIMEOUT: must be at least 1s (got \"0s\")\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("MARKETFEED_LOG_FORMAT: invalid value \"xml\" (expected text or json)\n"),
        "{stderr}"
    );
}

#[test]
fn check_config_validates_and_exits() {
    let out = run(
        &[("MARKETFEED_BYBIT_LINEAR_SYMBOLS", "btcusdt,SOLUSDT")],
        &["--check-config"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("configuration OK\n"), "{text}");
    assert!(
        text.contains("SOLUSDT") && text.contains("BTCUSDT"),
        "{text}"
    );
    assert!(
        !text.contains("binance"),
        "only the configured venue is watched: {text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("series: about ")
            && l.ends_with(" once every feed delivers (per added symbol: bybit/linear 16)")),
        "{text}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "no warning");
    // One base ConfigMap for every bot: another market's URL and channels are accepted and named once.
    let out = run(
        &[
            ("MARKETFEED_BYBIT_LINEAR_SYMBOLS", "BTCUSDT"),
            (
                "MARKETFEED_BINANCE_SPOT_URL",
                "wss://stream.binance.com:9443",
            ),
            ("MARKETFEED_BINANCE_SPOT_CHANNELS", "aggTrade"),
        ],
        &["--check-config"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stderr,
        "marketfeed_exporter: set for markets that are not watched, so unused here: \
         MARKETFEED_BINANCE_SPOT_CHANNELS, MARKETFEED_BINANCE_SPOT_URL\n"
    );
}

/// What Kubernetes injects into every container of a pod with service links on (the default) when the namespace has a
/// Service named `marketfeed-exporter` with a port named `metrics`, 10066/TCP.
const SERVICE_LINKS: [(&str, &str); 8] = [
    ("MARKETFEED_EXPORTER_SERVICE_HOST", "10.96.12.7"),
    ("MARKETFEED_EXPORTER_SERVICE_PORT", "10066"),
    ("MARKETFEED_EXPORTER_SERVICE_PORT_METRICS", "10066"),
    ("MARKETFEED_EXPORTER_PORT", "tcp://10.96.12.7:10066"),
    (
        "MARKETFEED_EXPORTER_PORT_10066_TCP",
        "tcp://10.96.12.7:10066",
    ),
    ("MARKETFEED_EXPORTER_PORT_10066_TCP_PROTO", "tcp"),
    ("MARKETFEED_EXPORTER_PORT_10066_TCP_PORT", "10066"),
    ("MARKETFEED_EXPORTER_PORT_10066_TCP_ADDR", "10.96.12.7"),
];

/// A Service named like the exporter no longer crash-loops the sidecar: its link variables are ignored, named in
/// one line, and a real typo still exits 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_service_links_do_not_stop_the_sidecar() {
    let mut vars = unreachable_venues();
    vars.extend(SERVICE_LINKS);
    let out = run(&vars, &["--check-config"]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    let names: Vec<&str> = {
        let mut names: Vec<&str> = SERVICE_LINKS.iter().map(|(k, _)| *k).collect();
        names.sort();
        names
    };
    assert_eq!(
        stderr,
        format!(
            "marketfeed_exporter: ignoring Kubernetes service-link variables: {}\n",
            names.join(", ")
        )
    );

    let exporter = Exporter::start(&vars).await;
    let (status, _) = get(exporter.addr, "/-/ready").await;
    assert_eq!(status, 200);
    let (status, stderr, _) = exporter.stop("TERM");
    assert!(status.success(), "{stderr}");
    let named: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("ignoring Kubernetes service-link variables"))
        .collect();
    assert_eq!(named.len(), 1, "{stderr}");
    assert!(
        named[0].contains("INFO") && named[0].contains(&names.join(",")),
        "{}",
        named[0]
    );

    vars.push(("MARKETFEED_BINANCE_SPOT_SYMBOL", "BTCUSDT"));
    let out = run(&vars, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "marketfeed_exporter: invalid configuration:\nMARKETFEED_BINANCE_SPOT_SYMBOL: unknown variable (did you mean MARKETFEED_BINANCE_SPOT_SYMBOLS?)\n"
    );
}

/// A configuration that lets the stale alert page before the exporter repairs anything still starts, with one
/// warning line, both from `--check-config` and in the startup log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_before_the_repair_is_one_warning_line() {
    let vars = [
        ("MARKETFEED_BINANCE_SPOT_SYMBOLS", "BTCUSDT"),
        ("MARKETFEED_BINANCE_SPOT_CHANNELS", "aggTrade"),
        ("MARKETFEED_BINANCE_SPOT_URL", "ws://127.0.0.1:9"),
        ("MARKETFEED_BINANCE_SPOT_REST_URL", "http://127.0.0.1:9"),
    ];
    let warning = "the stale alert can page before the exporter resubscribes a silent symbol on binance/spot (stale after 5m, first resubscribe after 10m: event-driven channels only)";
    let out = run(&vars, &["--check-config"]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("marketfeed_exporter: warning: {warning}; ")),
        "{stderr}"
    );
    let exporter = Exporter::start(&vars).await;
    let (status, stderr, _) = exporter.stop("TERM");
    assert!(status.success(), "{stderr}");
    let warned: Vec<&str> = stderr.lines().filter(|l| l.contains(warning)).collect();
    assert_eq!(warned.len(), 1, "{stderr}");
    assert!(warned[0].contains("WARN"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_network_it_keeps_serving_and_retrying() {
    let exporter = Exporter::start(&unreachable_venues()).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, body) = get(exporter.addr, "/metrics").await;
    assert_eq!(status, 200);
    let scrape = Scrape::parse(&body);
    assert!(
        scrape.sum(
            "marketfeed_reconnects_total",
            &[("reason", "handshake_failed")]
        ) >= 5.0,
        "every connection retried"
    );
    assert_eq!(
        scrape.sum("marketfeed_connection_up", &[] as &[(&str, &str)]),
        0.0
    );
    // Defaults: BTCUSDT and ETHUSDT on all five markets, two channels each, all pre-initialised.
    let series = body
        .lines()
        .filter(|l| l.starts_with("marketfeed_messages_total{"))
        .count();
    assert_eq!(series, 20, "{body}");
    // Nothing delivered yet: never `healthy`, and never usable whatever the bot allows.
    let (status, body) = get(
        exporter.addr,
        "/api/v1/symbols/binance/usdm/ETHUSDT?max_staleness=1h",
    )
    .await;
    assert_eq!(status, 200);
    let symbol: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (&symbol["status"], &symbol["feed"], &symbol["usable"]),
        (&"no_data".into(), &"no_data".into(), &false.into()),
        "{body}"
    );
    // The alerts' gauge still starts at the subscribe time: a restart is not a stale alert.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = scrape
        .value(
            "marketfeed_last_message_timestamp_seconds",
            &[
                ("exchange", "binance"),
                ("market", "usdm"),
                ("channel", "bookTicker"),
                ("symbol", "ETHUSDT"),
            ],
        )
        .unwrap();
    assert!(now - started < 60.0, "{started} vs {now}");
    let (status, _) = get(exporter.addr, "/-/ready").await;
    assert_eq!(status, 200, "readiness does not follow exchange health");
    let (status, stderr, elapsed) = exporter.stop("TERM");
    assert!(status.success(), "{stderr}");
    assert!(elapsed < Duration::from_secs(5), "exit took {elapsed:?}");
    // Retried all along, yet logged once per connection (binance/usdm has two), naming the cause.
    assert!(
        scrape.sum("marketfeed_connect_failures_total", &[("cause", "refused")]) >= 6.0,
        "{body}"
    );
    let failures: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("connect failed"))
        .collect();
    assert_eq!(failures.len(), 6, "one line per connection:\n{stderr}");
    for line in &failures {
        assert!(line.contains("cause=refused"), "{line}");
        assert!(line.contains("Connection refused"), "{line}");
    }
    // REST: one line per base URL (all three are the same closed port here), naming the root cause rather than
    // reqwest's "error sending request".
    let rest: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("REST request failed"))
        .collect();
    assert_eq!(rest.len(), 1, "{stderr}");
    for line in &rest {
        assert!(line.contains("error=\"Connection refused"), "{line}");
    }
    assert_no_repeats_or_debug_text(&stderr);
}

/// The one log line containing `message`, which must hold every one of `fields`.
fn one_line_with<'a>(stderr: &'a str, message: &str, fields: &[&str]) -> &'a str {
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(message)).collect();
    assert_eq!(lines.len(), 1, "one {message:?} line in:\n{stderr}");
    for field in fields {
        assert!(lines[0].contains(field), "{field} in {}", lines[0]);
    }
    lines[0]
}

/// No log line repeats the one before it (timestamps aside), and no field shows Rust debug text.
fn assert_no_repeats_or_debug_text(stderr: &str) {
    let bodies: Vec<&str> = stderr
        .lines()
        .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest))
        .collect();
    for pair in bodies.windows(2) {
        assert_ne!(pair[0], pair[1], "a repeated line:\n{stderr}");
    }
    for debug in ["=None", "=Some(", "Some(\"", "op=Subscribe", "panicked"] {
        assert!(!stderr.contains(debug), "{debug} in:\n{stderr}");
    }
}

/// A venue that refuses the upgrade with HTTP 451 (Binance's answer from a restricted location): one warning
/// naming the status, the attempts counted by cause, and one line when the venue lets us in again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_venue_is_one_warning_and_one_recovery_line() {
    let fake = FakeVenue::start(FakeKind::BybitLinear).await;
    fake.refuse_handshake(Some(451));
    let url = fake.base_url();
    let exporter = Exporter::start(&[
        ("MARKETFEED_BYBIT_LINEAR_SYMBOLS", "BTCUSDT"),
        ("MARKETFEED_BYBIT_LINEAR_URL", &url),
        ("MARKETFEED_BYBIT_REST_URL", "http://127.0.0.1:9"),
    ])
    .await;
    let refused = [
        ("exchange", "bybit"),
        ("market", "linear"),
        ("cause", "http_451"),
    ];
    support::metrics::until(
        exporter.addr,
        "three refusals",
        Duration::from_secs(30),
        |s| {
            s.value("marketfeed_connect_failures_total", &refused)
                .is_some_and(|v| v >= 3.0)
        },
    )
    .await;
    fake.refuse_handshake(None);
    let up = [
        ("exchange", "bybit"),
        ("market", "linear"),
        ("connection", "0"),
    ];
    support::metrics::until(
        exporter.addr,
        "the connection",
        Duration::from_secs(70),
        |s| s.value("marketfeed_connection_up", &up) == Some(1.0),
    )
    .await;
    let (status, stderr, _) = exporter.stop("TERM");
    assert!(status.success(), "{stderr}");
    one_line_with(
        &stderr,
        "connect failed",
        &[
            "WARN",
            "cause=http_451",
            "HTTP 451 Unavailable For Legal Reasons",
        ],
    );
    let recovered = one_line_with(
        &stderr,
        "connected again after failed attempts",
        &["INFO", "outage="],
    );
    let attempts: u32 = recovered
        .split("failed_attempts=")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{recovered}"));
    assert!(attempts >= 3, "{recovered}");
    assert_no_repeats_or_debug_text(&stderr);
}

/// A scheduled channel the venue stops serving, while its connection delivers the other symbol: the real binary
/// resubscribes it at its deadline (7 s for `markPrice@1s`) and says so in one log line naming the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_scheduled_channel_is_resubscribed_and_logged() {
    let fake = FakeVenue::start(FakeKind::BinanceUsdm).await;
    fake.set_muted("ethusdt@markPrice@1s", true);
    let url = fake.base_url();
    let exporter = Exporter::start(&[
        ("MARKETFEED_BINANCE_USDM_SYMBOLS", "BTCUSDT,ETHUSDT"),
        ("MARKETFEED_BINANCE_USDM_URL", &url),
        ("MARKETFEED_BINANCE_USDM_REST_URL", "http://127.0.0.1:9"),
    ])
    .await;
    let dead = [
        ("exchange", "binance"),
        ("market", "usdm"),
        ("channel", "markPrice@1s"),
        ("symbol", "ETHUSDT"),
    ];
    let scrape = support::metrics::until(
        exporter.addr,
        "the resubscribe",
        Duration::from_secs(20),
        |s| {
            s.value("marketfeed_resubscribes_total", &dead)
                .is_some_and(|v| v >= 1.0)
        },
    )
    .await;
    assert_eq!(scrape.value("marketfeed_messages_total", &dead), Some(0.0));
    let (_, body) = get(exporter.addr, "/api/v1/symbols/binance/usdm/ETHUSDT").await;
    let symbol: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(symbol["channels"][0]["resubscribes"], 1, "{body}");
    // The venue serves it again: one line says so, with how long it was silent.
    fake.set_muted("ethusdt@markPrice@1s", false);
    support::metrics::until(exporter.addr, "data again", Duration::from_secs(20), |s| {
        s.value("marketfeed_messages_total", &dead)
            .is_some_and(|v| v >= 1.0)
    })
    .await;
    let logged_recovery = Instant::now() + Duration::from_secs(2);
    while Instant::now() < logged_recovery {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, stderr, _) = exporter.stop("TERM");
    assert!(status.success(), "{stderr}");
    one_line_with(
        &stderr,
        "scheduled stream missed its cadence while its connection flows; resubscribing",
        &[
            "WARN",
            "venue=binance/usdm",
            "stream=ethusdt@markPrice@1s",
            "every=1s",
            "attempt=1",
            "next_attempt_after=14s",
        ],
    );
    one_line_with(
        &stderr,
        "stalled stream delivers again",
        &[
            "INFO",
            "stream=ethusdt@markPrice@1s",
            "resubscribes=1",
            "silent_for=",
        ],
    );
    assert_no_repeats_or_debug_text(&stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_scrape_passes_promtool_and_sigint_exits_cleanly() {
    let fake = FakeVenue::start(FakeKind::BybitLinear).await;
    let url = fake.base_url();
    let exporter = Exporter::start(&[
        ("MARKETFEED_BYBIT_LINEAR_SYMBOLS", "BTCUSDT,ETHUSDT"),
        ("MARKETFEED_BYBIT_LINEAR_URL", &url),
        ("MARKETFEED_BYBIT_REST_URL", "http://127.0.0.1:9"),
        ("MARKETFEED_LOG_FORMAT", "json"),
    ])
    .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let body = loop {
        let (_, body) = get(exporter.addr, "/metrics").await;
        let scrape = Scrape::parse(&body);
        let flowing = ["orderbook.1", "tickers"].iter().all(|c| {
            scrape.sum(
                "marketfeed_messages_total",
                &[("channel", *c), ("symbol", "ETHUSDT")],
            ) > 2.0
        });
        if flowing {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "no data from the fake venue:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (_, head, _) = get_with_headers(exporter.addr, "/metrics").await;
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    // The external-tools tier only (`./scripts/test.sh`); a bare `cargo test` keeps the rest of the test.
    if cfg!(feature = "external-tools") {
        support::promtool::check_metrics(&body);
    }
    assert!(body.contains("process_resident_memory_bytes"));
    assert!(body.contains("marketfeed_build_info{"));
    let (status, stderr, elapsed) = exporter.stop("INT");
    assert!(status.success(), "{stderr}");
    assert!(elapsed < Duration::from_secs(5), "exit took {elapsed:?}");
    for line in stderr.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
    }
    fake.wait_for(
        "the exporter's sockets to close",
        Duration::from_secs(5),
        |f| f.open_connections() == 0,
    )
    .await;
}

#[test]
#[cfg_attr(
    not(feature = "external-tools"),
    ignore = "needs promtool: ./scripts/test.sh runs it"
)]
fn golden_exposition_passes_promtool() {
    let golden = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/metrics.prom"
    ))
    .unwrap();
    support::promtool::check_metrics(&golden);
}

/// The whole-market load test's set-up at a small scale (`examples/market_load.rs` runs it at full size): `*` on
/// all five markets at once, each against a paced flood venue and its REST listing. Every listed symbol delivers on
/// every default channel, on the right connection, and no message is counted twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_market_under_star_at_once_against_paced_floods() {
    use support::fake_rest::{FakeRest, RestKind};
    use support::flood::{Flood, Pace};

    let binance_spot = FakeRest::start(RestKind::BinanceSpot).await;
    let binance_usdm = FakeRest::start(RestKind::BinanceUsdm).await;
    let bybit = FakeRest::start(RestKind::Bybit).await;
    // (market variable, fake, REST fake and category, listing status, symbols, default channels)
    let markets = [
        (
            "BINANCE_SPOT",
            FakeKind::BinanceSpot,
            &binance_spot,
            "spot",
            "TRADING",
            7,
            ["depth5", "aggTrade"],
        ),
        (
            "BINANCE_USDM",
            FakeKind::BinanceUsdm,
            &binance_usdm,
            "usdm",
            "TRADING",
            5,
            ["markPrice@1s", "bookTicker"],
        ),
        (
            "BYBIT_SPOT",
            FakeKind::BybitSpot,
            &bybit,
            "spot",
            "Trading",
            12,
            ["orderbook.1", "tickers"],
        ),
        (
            "BYBIT_LINEAR",
            FakeKind::BybitLinear,
            &bybit,
            "linear",
            "Trading",
            4,
            ["orderbook.1", "tickers"],
        ),
        (
            "BYBIT_INVERSE",
            FakeKind::BybitInverse,
            &bybit,
            "inverse",
            "Trading",
            2,
            ["orderbook.1", "tickers"],
        ),
    ];
    let mut vars = vec![
        (
            "MARKETFEED_BINANCE_SPOT_REST_URL".to_owned(),
            binance_spot.base_url(),
        ),
        (
            "MARKETFEED_BINANCE_USDM_REST_URL".to_owned(),
            binance_usdm.base_url(),
        ),
        ("MARKETFEED_BYBIT_REST_URL".to_owned(), bybit.base_url()),
    ];
    let mut floods = Vec::new();
    let mut expected = Vec::new();
    for (i, (var, kind, rest, category, status, count, channels)) in markets.iter().enumerate() {
        let symbols: Vec<String> = (0..*count).map(|n| format!("M{i}N{n}USDT")).collect();
        let rows: Vec<(&str, &str)> = symbols.iter().map(|s| (s.as_str(), *status)).collect();
        rest.set_instruments(category, &rows);
        let rates: Vec<(&str, f64)> = channels.iter().map(|c| (*c, 20.0)).collect();
        let flood = Flood::start_paced(*kind, Pace::new(&rates)).await;
        vars.push((format!("MARKETFEED_{var}_SYMBOLS"), "*".to_owned()));
        vars.push((format!("MARKETFEED_{var}_URL"), flood.base_url()));
        floods.push(flood);
        for symbol in symbols {
            for channel in channels {
                expected.push((*var, symbol.clone(), *channel));
            }
        }
    }
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let exporter = Exporter::start(&vars).await;
    let messages = |s: &Scrape, symbol: &str, channel: &str| {
        s.value(
            "marketfeed_messages_total",
            &[("symbol", symbol), ("channel", channel)],
        )
    };
    let scrape = support::metrics::until(
        exporter.addr,
        "every symbol of every market delivering",
        Duration::from_secs(30),
        |s| {
            (expected.iter())
                .all(|(_, symbol, channel)| messages(s, symbol, channel).is_some_and(|n| n >= 3.0))
        },
    )
    .await;
    // Each venue serves exactly its own listing's streams: nothing subscribed twice or on the wrong market.
    let streams: Vec<usize> = floods.iter().map(Flood::streams).collect();
    let per_market: Vec<usize> = markets.iter().map(|m| m.5 * m.6.len()).collect();
    assert_eq!(streams, per_market);
    // Each symbol under its own market's labels.
    for (var, symbol, channel) in &expected {
        let (exchange, market) = var
            .to_ascii_lowercase()
            .split_once('_')
            .map(|(e, m)| (e.to_owned(), m.to_owned()))
            .unwrap();
        let labels = [
            ("exchange", exchange.as_str()),
            ("market", market.as_str()),
            ("symbol", symbol.as_str()),
            ("channel", channel),
        ];
        assert!(
            scrape.value("marketfeed_messages_total", &labels).is_some(),
            "{labels:?}"
        );
    }
    // Counted once: what the exporter recorded never exceeds what the venues sent.
    let recorded = scrape.sum("marketfeed_messages_total", &[] as &[(&str, &str)]);
    let sent: u64 = floods.iter().map(Flood::frames_sent).sum();
    assert!(recorded <= sent as f64, "recorded {recorded}, sent {sent}");
}

/// A venue that never runs out of frames (sent as fast as the socket takes them): the session handles what each
/// read brings in bounded bursts between the rounds of its `select!`, so it keeps counting, scrapes are answered,
/// and it still hears the stop signal and closes politely.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooded_session_still_stops_when_asked() {
    use support::flood::Flood;

    let flood = Flood::start(FakeKind::BinanceSpot).await;
    let url = flood.base_url();
    let mut vars = unreachable_venues();
    vars.extend([
        ("MARKETFEED_BINANCE_SPOT_URL", url.as_str()),
        ("MARKETFEED_BINANCE_SPOT_CHANNELS", "aggTrade,bookTicker"),
    ]);
    let exporter = Exporter::start(&vars).await;
    let spot = [("exchange", "binance"), ("market", "spot")];
    let messages = |s: &Scrape| s.sum("marketfeed_messages_total", &spot);
    let deadline = Instant::now() + Duration::from_secs(20);
    let first = loop {
        let counted = messages(&support::metrics::scrape(exporter.addr).await);
        if counted >= 10_000.0 {
            break counted;
        }
        assert!(
            Instant::now() < deadline,
            "the flood was not counted: {counted}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let later = messages(&support::metrics::scrape(exporter.addr).await);
    assert!(later > first, "still counting: {first} then {later}");
    let (status, stderr, elapsed) = exporter.stop("TERM");
    assert!(status.success(), "{stderr}");
    assert!(
        elapsed < Duration::from_secs(5),
        "exit took {elapsed:?} under a flood"
    );
    assert!(flood.frames_sent() as f64 >= later);
}
