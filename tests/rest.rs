//! The REST companion against fake Binance and Bybit REST servers on loopback that answer with the real
//! payload shapes: clock offset and the latency it corrects, instrument listings with pagination, the
//! cross-check of stale symbols, rate limits and bans honoured, and a broken REST side leaving ingest alone.

use marketfeed_testkit as support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use marketfeed_exporter::app::{self, Running, Tuning};
use marketfeed_exporter::backoff::Backoff;
use marketfeed_exporter::config::{Config, parse_flags};
use marketfeed_exporter::feed::FeedSettings;
use marketfeed_exporter::model::Venue;
use marketfeed_exporter::rest::RestSettings;
use support::fake::{FakeKind, FakeVenue};
use support::fake_rest::{FakeRest, RestKind};
use support::http::get;
use support::metrics::Scrape;

const WAIT: Duration = Duration::from_secs(20);

fn tuning() -> Tuning {
    Tuning {
        feed: FeedSettings {
            backoff: Backoff {
                base: Duration::from_millis(50),
                cap: Duration::from_millis(300),
            },
            tick: Duration::from_millis(20),
            ..FeedSettings::new(Duration::ZERO, Duration::ZERO)
        },
        process_metrics: false,
        rest: RestSettings {
            clock_interval: Duration::from_millis(300),
            discovery_interval: Duration::from_millis(500),
            cross_check_scan: Duration::from_millis(200),
            cross_check_every: Duration::from_secs(60),
            timeout: Duration::from_millis(800),
        },
        ..Tuning::default()
    }
}

fn env_names(venue: Venue) -> (&'static str, &'static str) {
    match venue {
        Venue::BinanceSpot => ("BINANCE_SPOT", "BINANCE_SPOT_REST_URL"),
        Venue::BinanceUsdm => ("BINANCE_USDM", "BINANCE_USDM_REST_URL"),
        Venue::BybitSpot => ("BYBIT_SPOT", "BYBIT_REST_URL"),
        Venue::BybitLinear => ("BYBIT_LINEAR", "BYBIT_REST_URL"),
        Venue::BybitInverse => ("BYBIT_INVERSE", "BYBIT_REST_URL"),
    }
}

struct Harness {
    ws: FakeVenue,
    running: Running,
    venue: Venue,
}

impl Harness {
    async fn start(kind: FakeKind, rest_url: &str, symbols: &str, extra: &[(&str, &str)]) -> Self {
        Self::start_tuned(kind, rest_url, symbols, extra, tuning()).await
    }

    async fn start_tuned(
        kind: FakeKind,
        rest_url: &str,
        symbols: &str,
        extra: &[(&str, &str)],
        tuning: Tuning,
    ) -> Self {
        let ws = FakeVenue::start(kind).await;
        if kind == FakeKind::BinanceSpot {
            ws.set_ping_interval(Duration::from_millis(1000));
        }
        let venue = match kind {
            FakeKind::BinanceSpot => Venue::BinanceSpot,
            FakeKind::BinanceUsdm => Venue::BinanceUsdm,
            FakeKind::BybitSpot => Venue::BybitSpot,
            FakeKind::BybitLinear => Venue::BybitLinear,
            FakeKind::BybitInverse => Venue::BybitInverse,
        };
        let (name, rest_var) = env_names(venue);
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        vars.insert(format!("MARKETFEED_{name}_SYMBOLS"), symbols.into());
        vars.insert(format!("MARKETFEED_{name}_URL"), ws.base_url());
        vars.insert(format!("MARKETFEED_{rest_var}"), rest_url.into());
        vars.insert("MARKETFEED_RESUBSCRIBE_AFTER".into(), "1h".into());
        for (k, v) in extra {
            vars.insert((*k).into(), (*v).into());
        }
        let flags = parse_flags(["--web.listen-address=127.0.0.1:0".to_owned()]).unwrap();
        let config = Config::load(vars, &flags).unwrap();
        let running = app::start(&config, tuning).await.unwrap();
        Self { ws, running, venue }
    }

    async fn scrape(&self) -> Scrape {
        support::metrics::scrape(self.running.addr).await
    }

    async fn until(&self, what: &str, cond: impl Fn(&Scrape) -> bool) -> Scrape {
        support::metrics::until(self.running.addr, what, WAIT, cond).await
    }

    fn symbol(&self, symbol: &str) -> [(&'static str, String); 3] {
        [
            ("exchange", self.venue.exchange().as_str().to_owned()),
            ("market", self.venue.market().as_str().to_owned()),
            ("symbol", symbol.to_owned()),
        ]
    }

    fn endpoint(&self, endpoint: &str) -> [(&'static str, String); 3] {
        [
            ("exchange", self.venue.exchange().as_str().to_owned()),
            ("market", self.venue.market().as_str().to_owned()),
            ("endpoint", endpoint.to_owned()),
        ]
    }

    async fn api(&self, symbol: &str) -> serde_json::Value {
        let path = format!(
            "/api/v1/symbols/{}/{}/{symbol}",
            self.venue.exchange().as_str(),
            self.venue.market().as_str()
        );
        let (status, body) = get(self.running.addr, &path).await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    async fn stop(self) {
        tokio::time::timeout(Duration::from_secs(8), self.running.stop())
            .await
            .expect("stop drains in time");
    }
}

/// The exchange's clock offset, once measured.
async fn clock_offset(h: &Harness) -> f64 {
    let binance = [("exchange", "binance")];
    h.until("the clock offset", |s| {
        s.value("marketfeed_clock_offset_seconds", &binance)
            .is_some()
    })
    .await
    .value("marketfeed_clock_offset_seconds", &binance)
    .unwrap()
}

/// The mean event latency of `markPrice@1s` over at least three more messages, and the scrape it ended on.
async fn mean_latency_over_three(h: &Harness) -> (f64, Scrape) {
    let latency = |s: &Scrape| {
        let l = [("channel", "markPrice@1s")];
        (
            s.sum("marketfeed_event_latency_seconds_sum", &l),
            s.sum("marketfeed_event_latency_seconds_count", &l),
        )
    };
    let (sum0, count0) = latency(&h.scrape().await);
    let scrape = h
        .until("more latencies", |s| latency(s).1 >= count0 + 3.0)
        .await;
    let (sum1, count1) = latency(&scrape);
    ((sum1 - sum0) / (count1 - count0), scrape)
}

/// The venue's clock runs 300 ms ahead of ours: the offset is measured, and event latency (receive time minus
/// event time) is corrected by it instead of reading about zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_offset_is_measured_and_corrects_event_latency() {
    let rest = FakeRest::start(RestKind::BinanceUsdm).await;
    rest.set_clock_offset(300);
    let h = Harness::start(FakeKind::BinanceUsdm, &rest.base_url(), "BTCUSDT", &[]).await;
    let offset = clock_offset(&h).await;
    assert!((0.28..0.32).contains(&offset), "offset {offset}");
    let (mean, _) = mean_latency_over_three(&h).await;
    assert!(
        (0.25..0.45).contains(&mean),
        "mean corrected latency {mean} s"
    );
    h.until("the next clock poll", |_| rest.count("time") > 1)
        .await;
    h.stop().await;
}

/// A REST clock an hour off (a broken proxy, or a host without NTP): the offset is exported but not applied, so
/// event latency stays what the WebSocket's own timestamps say instead of turning into an hour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_offset_beyond_the_bound_is_exported_not_applied() {
    let rest = FakeRest::start(RestKind::BinanceUsdm).await;
    rest.set_clock_offset(3_600_000);
    let h = Harness::start(FakeKind::BinanceUsdm, &rest.base_url(), "BTCUSDT", &[]).await;
    let binance = [("exchange", "binance")];
    let offset = clock_offset(&h).await;
    assert!((3599.9..3600.1).contains(&offset), "offset {offset}");
    let (mean, scrape) = mean_latency_over_three(&h).await;
    assert!((0.0..0.2).contains(&mean), "mean latency {mean} s");
    assert_eq!(
        scrape.sum("marketfeed_implausible_timestamps_total", &binance),
        0.0
    );
    h.stop().await;
}

/// Listings are read (across Bybit's pages): a symbol the venue does not list and one it does not trade are
/// visible in metrics and in the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_show_unlisted_and_halted_symbols() {
    let rest = FakeRest::start(RestKind::Bybit).await;
    rest.set_page_size(2);
    rest.set_instruments(
        "linear",
        &[
            ("AAVEUSDT", "Trading"),
            ("BTCUSDT", "Trading"),
            ("DOGEUSDT", "Trading"),
            ("ETHUSDT", "Delivering"),
            ("SOLUSDT", "Trading"),
        ],
    );
    let h = Harness::start(
        FakeKind::BybitLinear,
        &rest.base_url(),
        "BTCUSDT,ETHUSDT,FOOUSDT",
        &[],
    )
    .await;
    let scrape = h
        .until("the listing", |s| {
            s.value("marketfeed_symbol_listed", &h.symbol("FOOUSDT"))
                .is_some()
        })
        .await;
    for (symbol, listed, trading) in [
        ("BTCUSDT", 1.0, 1.0),
        ("ETHUSDT", 1.0, 0.0),
        ("FOOUSDT", 0.0, 0.0),
    ] {
        assert_eq!(
            scrape.value("marketfeed_symbol_listed", &h.symbol(symbol)),
            Some(listed),
            "{symbol}"
        );
        assert_eq!(
            scrape.value("marketfeed_symbol_trading", &h.symbol(symbol)),
            Some(trading),
            "{symbol}"
        );
    }
    assert!(rest.count("instruments") >= 3, "three pages of two");
    assert_eq!(h.api("FOOUSDT").await["listing"], "unlisted");
    assert_eq!(h.api("ethusdt").await["listing"], "halted");
    assert_eq!(h.api("BTCUSDT").await["listing"], "trading");
    // A listing change is picked up on the next refresh.
    rest.set_instruments(
        "linear",
        &[
            ("BTCUSDT", "Trading"),
            ("ETHUSDT", "Trading"),
            ("FOOUSDT", "Trading"),
        ],
    );
    h.until("the new listing", |s| {
        s.value("marketfeed_symbol_trading", &h.symbol("FOOUSDT")) == Some(1.0)
    })
    .await;
    h.stop().await;
}

/// A stale symbol is checked against the REST ticker: a price the feed never delivered means the feed is
/// broken; the same price as the feed's last trade means the market is quiet. Fresh symbols are not checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_symbols_are_cross_checked_against_rest() {
    let rest = FakeRest::start(RestKind::Bybit).await;
    rest.set_instruments(
        "linear",
        &[
            ("BTCUSDT", "Trading"),
            ("ETHUSDT", "Trading"),
            ("SOLUSDT", "Trading"),
        ],
    );
    let extra = [
        ("MARKETFEED_DEGRADED_AFTER", "1s"),
        ("MARKETFEED_STALE_AFTER", "2s"),
        ("MARKETFEED_CRITICAL_AFTER", "1h"),
    ];
    let h = Harness::start(
        FakeKind::BybitLinear,
        &rest.base_url(),
        "BTCUSDT,ETHUSDT,SOLUSDT",
        &extra,
    )
    .await;
    h.until("data", |s| {
        s.sum("marketfeed_messages_total", &h.symbol("SOLUSDT")) > 5.0
    })
    .await;
    for symbol in ["ETHUSDT", "SOLUSDT"] {
        h.ws.stall_until_resubscribe(&format!("orderbook.1.{symbol}"));
        h.ws.stall_until_resubscribe(&format!("tickers.{symbol}"));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ETHUSDT traded on the venue after the feed went quiet; SOLUSDT did not.
    let sol_last = h.api("SOLUSDT").await["channels"][1]["last_price"]
        .as_str()
        .unwrap()
        .to_owned();
    rest.set_price("linear", "SOLUSDT", &sol_last);
    rest.set_price("linear", "ETHUSDT", "99999.5");
    rest.set_price("linear", "BTCUSDT", "1");
    let scrape = h
        .until("both cross-checks", |s| {
            s.value(
                "marketfeed_rest_crosscheck_feed_behind",
                &h.symbol("ETHUSDT"),
            )
            .is_some()
                && s.value(
                    "marketfeed_rest_crosscheck_feed_behind",
                    &h.symbol("SOLUSDT"),
                )
                .is_some()
        })
        .await;
    assert_eq!(
        scrape.value(
            "marketfeed_rest_crosscheck_feed_behind",
            &h.symbol("ETHUSDT")
        ),
        Some(1.0)
    );
    assert_eq!(
        scrape.value(
            "marketfeed_rest_crosscheck_feed_behind",
            &h.symbol("SOLUSDT")
        ),
        Some(0.0)
    );
    assert_eq!(
        scrape.value(
            "marketfeed_rest_crosscheck_feed_behind",
            &h.symbol("BTCUSDT")
        ),
        None,
        "fresh: not checked"
    );
    let eth = h.api("ETHUSDT").await;
    assert_eq!(eth["rest_check"]["feed_behind"], true, "{eth}");
    assert_eq!(eth["rest_check"]["rest_price"], "99999.5");
    assert_eq!(h.api("SOLUSDT").await["rest_check"]["feed_behind"], false);
    // Checked once, not on every scan.
    let tickers = rest.count("ticker");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        rest.count("ticker"),
        tickers,
        "a stale symbol is checked at most once per cross_check_every"
    );
    // The feed comes back (a reconnect clears the stalls): the verdict no longer describes a silence, so its series
    // goes (`feed_behind == 1` names no healthy symbol), while the API keeps the last check with its time.
    h.ws.close_all();
    h.until("the verdicts to go once the symbols deliver again", |s| {
        ["ETHUSDT", "SOLUSDT"].iter().all(|symbol| {
            s.value("marketfeed_rest_crosscheck_feed_behind", &h.symbol(symbol))
                .is_none()
                && s.value(
                    "marketfeed_rest_crosscheck_timestamp_seconds",
                    &h.symbol(symbol),
                )
                .is_some()
        })
    })
    .await;
    let eth = h.api("ETHUSDT").await;
    assert_eq!(eth["status"], "healthy", "{eth}");
    assert_eq!(
        eth["rest_check"]["feed_behind"], true,
        "history stays in the API: {eth}"
    );
    h.stop().await;
}

/// A 429 with Retry-After and a 418 ban stop every request to that host for as long as the venue says,
/// and are counted by code; malformed and slow answers are counted too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_bans_and_bad_answers_are_honoured_and_counted() {
    let rest = FakeRest::start(RestKind::BinanceSpot).await;
    rest.set_instruments("spot", &[("BTCUSDT", "TRADING")]);
    rest.fail_next(Some("time"), 429, Some("2"), 1);
    let h = Harness::start(FakeKind::BinanceSpot, &rest.base_url(), "BTCUSDT", &[]).await;
    let code = |c: &str| {
        let mut l = h.endpoint("time").to_vec();
        l.push(("code", c.to_owned()));
        l
    };
    h.until("the 429", |s| {
        s.value("marketfeed_rest_errors_total", &code("429")) == Some(1.0)
    })
    .await;
    let requests = rest.requests();
    let failed_at = requests
        .iter()
        .find(|(_, path)| path.starts_with("/api/v3/time"))
        .unwrap()
        .0;
    // Requests already on their way when the 429 came back may land just after it; after that, nothing
    // until Retry-After has passed.
    let settled = failed_at + Duration::from_millis(100);
    h.until("a request after the back-off", |_| {
        rest.requests().iter().any(|(at, _)| *at > settled)
    })
    .await;
    let next = rest
        .requests()
        .into_iter()
        .map(|(at, _)| at)
        .find(|at| *at > settled)
        .unwrap();
    assert!(
        next - failed_at >= Duration::from_millis(1900),
        "Retry-After 2 s honoured: {:?}",
        next - failed_at
    );

    rest.fail_next(None, 418, Some("2"), 1);
    h.until("the 418", |s| {
        s.sum("marketfeed_rest_errors_total", &[("code", "418")]) == 1.0
    })
    .await;
    let banned_at = std::time::Instant::now();
    let count = rest.requests().len();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rest.requests().len(), count, "no request during the ban");
    h.until("requests after the ban", |_| rest.requests().len() > count)
        .await;
    assert!(banned_at.elapsed() >= Duration::from_millis(1500));

    rest.set_malformed(true);
    h.until("a malformed answer", |s| {
        s.sum("marketfeed_rest_errors_total", &[("code", "malformed")]) >= 1.0
    })
    .await;
    rest.set_malformed(false);
    rest.set_delay(Duration::from_secs(2));
    h.until("a timeout", |s| {
        s.sum("marketfeed_rest_errors_total", &[("code", "timeout")]) >= 1.0
    })
    .await;
    rest.set_delay(Duration::ZERO);
    let scrape = h.scrape().await;
    assert!(
        scrape.sum(
            "marketfeed_rest_request_duration_seconds_count",
            &h.endpoint("time")
        ) >= 3.0
    );
    assert!(
        scrape.sum("marketfeed_messages_total", &h.symbol("BTCUSDT")) > 0.0,
        "ingest unaffected"
    );
    h.stop().await;
}

/// Bybit answers "too many requests" with HTTP 403, and says to wait at least ten minutes: nothing more is
/// sent to it within the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bybit_403_backs_off_for_ten_minutes() {
    let rest = FakeRest::start(RestKind::Bybit).await;
    rest.fail_next(None, 403, None, 1);
    let h = Harness::start(FakeKind::BybitSpot, &rest.base_url(), "BTCUSDT", &[]).await;
    h.until("the 403", |s| {
        s.sum("marketfeed_rest_errors_total", &[("code", "403")]) >= 1.0
    })
    .await;
    let count = rest.requests().len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        rest.requests().len(),
        count,
        "Bybit's 403 stops every request"
    );
    h.stop().await;
}

/// With the REST host unreachable or answering after 30 s, the WebSocket side ingests as usual and /metrics
/// answers; the failures are visible and nothing is guessed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_rest_side_leaves_ingest_alone() {
    let slow = FakeRest::start(RestKind::Bybit).await;
    slow.set_delay(Duration::from_secs(30));
    for (rest_url, code) in [
        ("http://127.0.0.1:9", "connect"),
        (slow.base_url().as_str(), "timeout"),
    ] {
        let h = Harness::start(FakeKind::BybitLinear, rest_url, "BTCUSDT,ETHUSDT", &[]).await;
        h.until("ingest", |s| {
            s.sum("marketfeed_messages_total", &h.symbol("ETHUSDT")) > 10.0
        })
        .await;
        let scrape = h
            .until("the REST failure", |s| {
                s.sum("marketfeed_rest_errors_total", &[("code", code)]) >= 1.0
            })
            .await;
        assert!(
            scrape
                .value("marketfeed_symbol_listed", &h.symbol("BTCUSDT"))
                .is_none(),
            "unknown, not guessed"
        );
        assert_eq!(h.api("BTCUSDT").await["listing"], "unknown");
        h.stop().await;
    }
}

/// `MARKETFEED_SHARD`: two processes split a `*` market between them, each symbol on exactly the shard its name
/// hashes to, and a new listing is picked up by its own shard only, the other keeping its connections as they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_split_a_star_market_and_follow_its_listing() {
    use marketfeed_exporter::shard::shard_of;
    let rest = FakeRest::start(RestKind::Bybit).await;
    let listed: Vec<String> = (0..12).map(|i| format!("S{i:02}USDT")).collect();
    let instruments = |symbols: &[String]| {
        let rows: Vec<(&str, &str)> = symbols.iter().map(|s| (s.as_str(), "Trading")).collect();
        rest.set_instruments("linear", &rows);
    };
    instruments(&listed);
    let mut shards = Vec::new();
    for index in 0..2 {
        let shard = format!("{index}/2");
        let h = Harness::start(
            FakeKind::BybitLinear,
            &rest.base_url(),
            "*",
            &[("MARKETFEED_SHARD", &shard)],
        )
        .await;
        shards.push(h);
    }
    let part = |index: u32, symbols: &[String]| -> Vec<String> {
        symbols
            .iter()
            .filter(|s| shard_of(s, 2) == index)
            .cloned()
            .collect()
    };
    assert!(
        !part(0, &listed).is_empty() && !part(1, &listed).is_empty(),
        "both shards have symbols to watch"
    );
    let watched = |s: &Scrape, symbol: &str| {
        s.value(
            "marketfeed_messages_total",
            &[("channel", "tickers"), ("symbol", symbol)],
        )
    };
    for (index, h) in shards.iter().enumerate() {
        let mine = part(index as u32, &listed);
        let scrape = h
            .until("the shard's symbols", |s| {
                mine.iter()
                    .all(|sym| watched(s, sym).is_some_and(|v| v > 1.0))
            })
            .await;
        for symbol in &listed {
            assert_eq!(
                watched(&scrape, symbol).is_some(),
                mine.contains(symbol),
                "shard {index}/2 and {symbol}"
            );
        }
        assert_eq!(
            scrape.value("marketfeed_shards", &[("shard", index.to_string())]),
            Some(2.0)
        );
        let mut subscribed = h.ws.subscribed();
        subscribed.retain(|k| k.starts_with("tickers."));
        subscribed.sort();
        let expected: Vec<String> = mine.iter().map(|s| format!("tickers.{s}")).collect();
        assert_eq!(subscribed, expected, "shard {index}/2 subscribes its own");
    }

    // A new listing lands on one shard; the other's set is unchanged, so it keeps its connections.
    let new = (12..40)
        .map(|i| format!("S{i:02}USDT"))
        .find(|s| shard_of(s, 2) == 0)
        .unwrap();
    let mut relisted = listed.clone();
    relisted.push(new.clone());
    let before = shards[1].scrape().await;
    instruments(&relisted);
    shards[0]
        .until("the new symbol on its shard", |s| {
            watched(s, &new).is_some_and(|v| v > 1.0)
        })
        .await;
    // Two more listing reads by the other shard.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let after = shards[1].scrape().await;
    assert_eq!(watched(&after, &new), None, "not shard 1's");
    assert_eq!(
        after.sum(
            "marketfeed_connection_established_timestamp_seconds",
            &[("market", "linear")]
        ),
        before.sum(
            "marketfeed_connection_established_timestamp_seconds",
            &[("market", "linear")]
        ),
        "shard 1 rebuilt nothing"
    );
    for h in shards {
        h.stop().await;
    }
}

/// `*` watches every symbol the venue lists as trading, sharded over connections within the venue's stream
/// limit, and follows the listing: a new listing is picked up, a delisted symbol dropped, and the symbols that
/// stay keep their counters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn star_follows_every_trading_symbol_as_listings_change() {
    let rest = FakeRest::start(RestKind::Bybit).await;
    rest.set_instruments(
        "linear",
        &[
            ("AAAUSDT", "Trading"),
            ("BBBUSDT", "Trading"),
            ("CCCUSDT", "Trading"),
            ("DDDUSDT", "Delivering"),
        ],
    );
    let mut tuned = tuning();
    tuned.policy = Arc::new(|venue| {
        let mut policy = marketfeed_exporter::venue::policy(venue);
        policy.max_streams_per_connection = 2;
        policy
    });
    let h = Harness::start_tuned(FakeKind::BybitLinear, &rest.base_url(), "*", &[], tuned).await;
    let messages = |s: &Scrape, symbol: &str| {
        s.value(
            "marketfeed_messages_total",
            &[("channel", "tickers"), ("symbol", symbol)],
        )
    };
    let scrape = h
        .until("every trading symbol", |s| {
            ["AAAUSDT", "BBBUSDT", "CCCUSDT"]
                .iter()
                .all(|sym| messages(s, sym).is_some_and(|v| v > 2.0))
        })
        .await;
    assert_eq!(
        messages(&scrape, "DDDUSDT"),
        None,
        "not trading: not watched"
    );
    assert_eq!(
        scrape.sum("marketfeed_connection_up", &[("market", "linear")]),
        3.0,
        "six streams, two per connection"
    );
    assert_eq!(h.api("AAAUSDT").await["listing"], "trading");

    // Every handshake now takes 1.5 s: a change that broke the old connections before making the new ones would
    // leave the continuing symbols without data for at least that long.
    h.ws.set_handshake_delay(Duration::from_millis(1500));
    rest.set_instruments(
        "linear",
        &[
            ("AAAUSDT", "Trading"),
            ("CCCUSDT", "Trading"),
            ("EEEUSDT", "Trading"),
        ],
    );
    let kept = messages(&h.scrape().await, "AAAUSDT").unwrap();
    let scrape = h
        .until("the new listing", |s| {
            messages(s, "EEEUSDT").is_some_and(|v| v > 2.0) && messages(s, "BBBUSDT").is_none()
        })
        .await;
    assert!(
        messages(&scrape, "AAAUSDT").unwrap() >= kept,
        "counters continue across the change"
    );
    let (status, _) = get(h.running.addr, "/api/v1/symbols/bybit/linear/BBBUSDT").await;
    assert_eq!(status, 404, "a delisted symbol is dropped");
    // Made before broken: no update gap over the cadence (50 ms) plus a second, for any subscription.
    for channel in ["tickers", "orderbook.1"] {
        let gaps = |le: &str| {
            scrape.value(
                "marketfeed_update_gap_seconds_bucket",
                &[("market", "linear"), ("channel", channel), ("le", le)],
            )
        };
        assert_eq!(
            gaps("1"),
            gaps("+Inf"),
            "{channel}: a gap over 1 s across the listing change"
        );
    }
    h.until("the feed to follow", |_| {
        let subscribed = h.ws.subscribed();
        subscribed.iter().any(|k| k == "tickers.EEEUSDT")
            && !subscribed.iter().any(|k| k.ends_with("BBBUSDT"))
    })
    .await;
    h.stop().await;
}
