//! The exporter's app against fake Binance and Bybit servers on loopback that speak the venues' wire
//! protocols: subscribe and data, silence, heartbeats, closes, resets, rejections, malformed frames, rollover.
//!
//! Every scenario runs for each market it applies to. Venue timing is shrunk through `Tuning` (heartbeat
//! deadlines of about a second instead of minutes); the protocol and the code paths are the production ones.
//! The freshness scenarios at the end keep the production cadence deadlines (`MARKETFEED_HEARTBEAT_MISSES`
//! at its default), so they wait seconds, and run every market at once.

use marketfeed_testkit as support;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use marketfeed_exporter::app::{self, Running, Tuning};
use marketfeed_exporter::backoff::Backoff;
use marketfeed_exporter::config::{Config, parse_flags};
use marketfeed_exporter::feed::FeedSettings;
use marketfeed_exporter::model::Venue;
use marketfeed_exporter::venue::{self, Heartbeat, Policy};
use support::fake::{FakeKind, FakeVenue};
use support::http::get;
use support::metrics::Scrape;

const ALL: [FakeKind; 5] = [
    FakeKind::BinanceSpot,
    FakeKind::BinanceUsdm,
    FakeKind::BybitSpot,
    FakeKind::BybitLinear,
    FakeKind::BybitInverse,
];
const BINANCE: [FakeKind; 2] = [FakeKind::BinanceSpot, FakeKind::BinanceUsdm];

/// How long a scenario may wait for something that should take well under a second.
const WAIT: Duration = Duration::from_secs(15);

fn venue_of(kind: FakeKind) -> Venue {
    match kind {
        FakeKind::BinanceSpot => Venue::BinanceSpot,
        FakeKind::BinanceUsdm => Venue::BinanceUsdm,
        FakeKind::BybitSpot => Venue::BybitSpot,
        FakeKind::BybitLinear => Venue::BybitLinear,
        FakeKind::BybitInverse => Venue::BybitInverse,
    }
}

/// Production policy with the heartbeat deadlines shrunk to test scale. Request pacing stays as in production
/// for Binance, whose fake enforces the message-rate limit.
fn fast_policy(venue: Venue) -> Policy {
    let mut p = venue::policy(venue);
    p.heartbeat = match p.heartbeat {
        Heartbeat::ServerPing { .. } => Heartbeat::ServerPing {
            timeout: Duration::from_millis(2500),
        },
        Heartbeat::ClientPing { .. } => Heartbeat::ClientPing {
            interval: Duration::from_millis(200),
            timeout: Duration::from_millis(600),
        },
    };
    p.connect_burst = 50;
    p.connect_refill = Duration::from_millis(20);
    p
}

fn tuning(policy: impl Fn(Venue) -> Policy + Send + Sync + 'static) -> Tuning {
    Tuning {
        policy: Arc::new(policy),
        feed: FeedSettings {
            backoff: Backoff {
                base: Duration::from_millis(50),
                cap: Duration::from_millis(300),
            },
            refusal_backoff: Backoff {
                base: Duration::from_millis(400),
                cap: Duration::from_millis(1600),
            },
            stable_after: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(2),
            ack_timeout: Duration::from_secs(2),
            tick: Duration::from_millis(20),
            ..FeedSettings::new(Duration::ZERO, Duration::ZERO)
        },
        process_metrics: false,
        ..Tuning::default()
    }
}

/// A configuration through the real loader: the venue's variables plus `extra`, listening on a free port.
fn config(fake: &FakeVenue, kind: FakeKind, symbols: &str, extra: &[(&str, &str)]) -> Config {
    let name = venue_of(kind).env_name();
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    vars.insert(format!("MARKETFEED_{name}_SYMBOLS"), symbols.into());
    vars.insert(format!("MARKETFEED_{name}_URL"), fake.base_url());
    // The REST side has nothing to answer it here: a closed loopback port keeps it off the network.
    let rest = if name.starts_with("BYBIT") {
        "BYBIT".to_owned()
    } else {
        name.to_owned()
    };
    vars.insert(
        format!("MARKETFEED_{rest}_REST_URL"),
        "http://127.0.0.1:9".into(),
    );
    vars.insert("MARKETFEED_IDLE_TIMEOUT".into(), "5s".into());
    vars.insert("MARKETFEED_RESUBSCRIBE_AFTER".into(), "1h".into());
    for (k, v) in extra {
        vars.insert((*k).into(), (*v).into());
    }
    let flags = parse_flags(["--web.listen-address=127.0.0.1:0".to_owned()]).unwrap();
    Config::load(vars, &flags).unwrap()
}

async fn fake(kind: FakeKind) -> FakeVenue {
    let fake = FakeVenue::start(kind).await;
    if kind == FakeKind::BinanceSpot {
        // Our pongs count toward spot's 5 messages per second; with the real 20 s ping our 300 ms request
        // pacing leaves room for them, so keep test pings rare enough for the same arithmetic to hold.
        fake.set_ping_interval(Duration::from_millis(1000));
    }
    fake
}

struct Harness {
    fake: FakeVenue,
    running: Running,
    venue: Venue,
    started: Instant,
}

impl Harness {
    async fn start(kind: FakeKind, symbols: &str, extra: &[(&str, &str)]) -> Self {
        Self::run(fake(kind).await, kind, symbols, extra, fast_policy).await
    }

    async fn run(
        fake: FakeVenue,
        kind: FakeKind,
        symbols: &str,
        extra: &[(&str, &str)],
        policy: impl Fn(Venue) -> Policy + Send + Sync + 'static,
    ) -> Self {
        let config = config(&fake, kind, symbols, extra);
        let running = app::start(&config, tuning(policy)).await.unwrap();
        Self {
            fake,
            running,
            venue: venue_of(kind),
            started: Instant::now(),
        }
    }

    async fn scrape(&self) -> Scrape {
        support::metrics::scrape(self.running.addr).await
    }

    /// Since the exporter started.
    fn running_for(&self) -> Duration {
        self.started.elapsed()
    }

    /// Labels of one subscription of this venue.
    fn sub<'a>(&self, channel: &'a str, symbol: &'a str) -> [(&'static str, String); 4] {
        [
            ("exchange", self.venue.exchange().as_str().to_owned()),
            ("market", self.venue.market().as_str().to_owned()),
            ("channel", channel.to_owned()),
            ("symbol", symbol.to_owned()),
        ]
    }

    fn channels(&self) -> &'static [&'static str] {
        venue::default_channels(self.venue)
    }

    fn key(&self, channel: &str, symbol: &str) -> String {
        venue::wire_key(self.venue, channel, symbol)
    }

    async fn messages(&self, channel: &str, symbol: &str) -> f64 {
        self.scrape()
            .await
            .value("marketfeed_messages_total", &self.sub(channel, symbol))
            .unwrap_or(-1.0)
    }

    async fn reconnects(&self, reason: &str) -> f64 {
        let scrape = self.scrape().await;
        scrape.sum("marketfeed_reconnects_total", &[("reason", reason)])
    }

    /// Polls the scrape until `cond` holds.
    async fn until(&self, what: &str, cond: impl Fn(&Scrape) -> bool) -> Scrape {
        support::metrics::until(self.running.addr, what, WAIT, cond).await
    }

    /// Polls the scrape until `cond` holds, for at most `wait`.
    async fn until_within(
        &self,
        what: &str,
        wait: Duration,
        cond: impl Fn(&Scrape) -> bool,
    ) -> Scrape {
        support::metrics::until(self.running.addr, what, wait, cond).await
    }

    /// Labels of one (exchange, market, channel).
    fn group(&self, channel: &str) -> [(&'static str, String); 3] {
        [
            ("exchange", self.venue.exchange().as_str().to_owned()),
            ("market", self.venue.market().as_str().to_owned()),
            ("channel", channel.to_owned()),
        ]
    }

    /// A per-channel gauge of the market, in seconds.
    async fn channel_seconds(&self, metric: &str, channel: &str) -> Duration {
        let value = self.scrape().await.value(metric, &self.group(channel));
        Duration::from_secs_f64(value.unwrap_or_else(|| panic!("{metric} for {channel}")))
    }

    /// `/api/v1/symbols/<exchange>/<market>/<symbol><query>` as JSON.
    async fn symbol(&self, symbol: &str, query: &str) -> serde_json::Value {
        let path = format!(
            "/api/v1/symbols/{}/{}/{symbol}{query}",
            self.venue.exchange().as_str(),
            self.venue.market().as_str()
        );
        let (status, body) = get(self.running.addr, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Polls the symbol's API answer (with `query`) until its `feed` is `feed`, for at most `wait`.
    async fn until_feed(
        &self,
        symbol: &str,
        query: &str,
        feed: &str,
        wait: Duration,
    ) -> serde_json::Value {
        let deadline = Instant::now() + wait;
        loop {
            let answer = self.symbol(symbol, query).await;
            if answer["feed"] == feed {
                return answer;
            }
            assert!(
                Instant::now() < deadline,
                "{}: {symbol} not {feed} after {wait:?}: {answer}",
                self.venue
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `marketfeed_symbols{feed}` of this market.
    fn symbols_with(&self, scrape: &Scrape, feed: &str) -> Option<f64> {
        let labels = [
            ("exchange", self.venue.exchange().as_str()),
            ("market", self.venue.market().as_str()),
            ("feed", feed),
        ];
        scrape.value("marketfeed_symbols", &labels)
    }

    /// Waits until every default channel of every symbol has received more than `n` messages.
    async fn until_all_flow(&self, symbols: &[&str], n: f64) -> Scrape {
        let subs: Vec<_> = symbols
            .iter()
            .flat_map(|s| self.channels().iter().map(move |c| self.sub(c, s)))
            .collect();
        self.until("every subscription to flow", |s| {
            subs.iter().all(|l| {
                s.value("marketfeed_messages_total", l)
                    .is_some_and(|v| v > n)
            })
        })
        .await
    }

    /// Stops the exporter, checks the venue saw no protocol violation, and hands the fake back.
    async fn stop(self) -> FakeVenue {
        tokio::time::timeout(Duration::from_secs(8), self.running.stop())
            .await
            .expect("stop drains in time");
        let violations = self.fake.violations();
        assert!(
            violations.is_empty(),
            "protocol violations seen by the fake venue: {violations:?}"
        );
        self.fake
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribes_and_metrics_move_on_every_market() {
    for kind in ALL {
        let h = Harness::start(kind, "BTCUSDT,ETHUSDT", &[]).await;
        let first = h.until_all_flow(&["BTCUSDT", "ETHUSDT"], 1.0).await;
        let later = h.until_all_flow(&["BTCUSDT", "ETHUSDT"], 5.0).await;
        for symbol in ["BTCUSDT", "ETHUSDT"] {
            for channel in h.channels() {
                let l = h.sub(channel, symbol);
                let (t0, t1) = (
                    first
                        .value("marketfeed_last_message_timestamp_seconds", &l)
                        .unwrap(),
                    later
                        .value("marketfeed_last_message_timestamp_seconds", &l)
                        .unwrap(),
                );
                assert!(t1 > t0, "{kind:?} {channel} {symbol}: timestamp advances");
                assert_eq!(
                    later.value("marketfeed_subscription_acked", &l),
                    Some(1.0),
                    "{kind:?} {channel}"
                );
                assert!(
                    later
                        .value("marketfeed_last_price", &l)
                        .is_some_and(|p| p > 0.0),
                    "{kind:?} {channel} price"
                );
            }
        }
        let conn = [
            ("exchange", h.venue.exchange().as_str().to_owned()),
            ("market", h.venue.market().as_str().to_owned()),
        ];
        assert!(
            later.sum("marketfeed_connection_up", &conn) >= 1.0,
            "{kind:?}"
        );
        assert_eq!(
            later.sum("marketfeed_decode_errors_total", &conn),
            0.0,
            "{kind:?}"
        );
        // The JSON API agrees.
        let path = format!("/api/v1/symbols/{}/{}/btcusdt", conn[0].1, conn[1].1);
        let (status, body) = get(h.running.addr, &path).await;
        assert_eq!(status, 200, "{kind:?}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "healthy", "{kind:?}");
        assert!(
            v["last_price"]
                .as_str()
                .is_some_and(|p| p.parse::<f64>().unwrap() > 0.0),
            "{kind:?} {body}"
        );
        if kind == FakeKind::BinanceUsdm {
            let mut paths = h.fake.paths();
            paths.sort();
            assert_eq!(
                paths,
                ["/market/stream", "/public/stream"],
                "one connection per route"
            );
        }
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_symbol_is_resubscribed_while_others_flow() {
    for kind in ALL {
        let h = Harness::start(
            kind,
            "BTCUSDT,ETHUSDT",
            &[("MARKETFEED_RESUBSCRIBE_AFTER", "1s")],
        )
        .await;
        let channel = h.channels()[0];
        h.until_all_flow(&["BTCUSDT", "ETHUSDT"], 1.0).await;
        h.fake.stall_until_resubscribe(&h.key(channel, "ETHUSDT"));
        let stalled = h.sub(channel, "ETHUSDT");
        let flowing = h.sub(channel, "BTCUSDT");
        // While stalled, its timestamp stops and the other symbol's advances.
        let before = h.scrape().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let during = h.scrape().await;
        let ts = "marketfeed_last_message_timestamp_seconds";
        if during.value("marketfeed_resubscribes_total", &stalled) == Some(0.0) {
            assert_eq!(
                before.value(ts, &stalled),
                during.value(ts, &stalled),
                "{kind:?}: stalled stream is silent"
            );
        }
        assert!(
            during.value(ts, &flowing) > before.value(ts, &flowing),
            "{kind:?}: others advance"
        );
        let resubscribed = h
            .until("the resubscribe", |s| {
                s.value("marketfeed_resubscribes_total", &stalled)
                    .is_some_and(|v| v >= 1.0)
            })
            .await;
        let stalled_messages = resubscribed
            .value("marketfeed_messages_total", &stalled)
            .unwrap();
        h.until("the stalled stream to deliver again", |s| {
            s.value("marketfeed_messages_total", &stalled)
                .is_some_and(|v| v > stalled_messages + 2.0)
        })
        .await;
        assert_eq!(
            h.reconnects("idle_timeout").await,
            0.0,
            "{kind:?}: recovered without a reconnect"
        );
        assert_eq!(
            h.scrape()
                .await
                .value("marketfeed_resubscribes_total", &flowing),
            Some(0.0),
            "{kind:?}: the flowing symbol is left alone"
        );
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connection_is_reconnected_by_the_data_watchdog() {
    for kind in ALL {
        let h = Harness::start(kind, "BTCUSDT", &[("MARKETFEED_IDLE_TIMEOUT", "1s")]).await;
        h.until_all_flow(&["BTCUSDT"], 1.0).await;
        let accepted = h.fake.connections_accepted();
        h.fake.set_silent(true);
        h.until("an idle_timeout reconnect", |s| {
            s.sum("marketfeed_reconnects_total", &[("reason", "idle_timeout")]) >= 1.0
        })
        .await;
        h.fake
            .wait_for("a new connection", WAIT, |f| {
                f.connections_accepted() > accepted
            })
            .await;
        assert_eq!(
            h.reconnects("heartbeat_timeout").await,
            0.0,
            "{kind:?}: heartbeats were fine"
        );
        h.fake.set_silent(false);
        let n = h.messages(h.channels()[0], "BTCUSDT").await;
        h.until("data after the reconnect", |s| {
            s.value(
                "marketfeed_messages_total",
                &h.sub(h.channels()[0], "BTCUSDT"),
            )
            .is_some_and(|v| v > n + 2.0)
        })
        .await;
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_heartbeat_is_reconnected_by_the_transport_watchdog() {
    for kind in ALL {
        let h = Harness::start(kind, "BTCUSDT", &[]).await;
        h.until_all_flow(&["BTCUSDT"], 1.0).await;
        h.fake.set_heartbeat(false);
        h.until("a heartbeat_timeout reconnect", |s| {
            s.sum(
                "marketfeed_reconnects_total",
                &[("reason", "heartbeat_timeout")],
            ) >= 1.0
        })
        .await;
        assert_eq!(
            h.reconnects("idle_timeout").await,
            0.0,
            "{kind:?}: data kept flowing"
        );
        h.fake.set_heartbeat(true);
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closes_and_resets_reconnect_with_backoff() {
    for kind in ALL {
        let h = Harness::start(kind, "BTCUSDT", &[]).await;
        h.until_all_flow(&["BTCUSDT"], 1.0).await;
        let accepted = h.fake.connections_accepted();
        h.fake.close_all();
        h.until("a server_close reconnect", |s| {
            s.sum("marketfeed_reconnects_total", &[("reason", "server_close")]) >= 1.0
        })
        .await;
        h.fake
            .wait_for("the new connection", WAIT, |f| {
                f.connections_accepted() > accepted
            })
            .await;
        let n = h.messages(h.channels()[0], "BTCUSDT").await;
        h.until_all_flow(&["BTCUSDT"], n + 2.0).await;
        h.fake.reset_all();
        h.until("an error reconnect", |s| {
            s.sum("marketfeed_reconnects_total", &[("reason", "error")]) >= 1.0
        })
        .await;
        h.until("data after the reset", |s| {
            s.value(
                "marketfeed_messages_total",
                &h.sub(h.channels()[0], "BTCUSDT"),
            )
            .is_some_and(|v| v > n + 2.0)
        })
        .await;
        // Refused handshakes are retried with a growing delay: the backoff ceiling is 300 ms here, so refusals
        // see a few attempts a second, not hundreds. Retried at all first (however slow a loaded machine is),
        // then counted over at least a second more against the time that actually passed.
        let attempts = h.fake.handshake_attempts();
        let refusing = std::time::Instant::now();
        h.fake.refuse_connections(true);
        h.fake.reset_all();
        h.fake
            .wait_for("refused handshakes retried", WAIT, |f| {
                f.handshake_attempts() >= attempts + 2
            })
            .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let refused = h.fake.handshake_attempts() - attempts;
        let seconds = refusing.elapsed().as_secs_f64();
        assert!(
            refused as f64 <= 40.0 * seconds,
            "{kind:?}: {refused} attempts in {seconds:.1} s"
        );
        assert!(h.reconnects("handshake_failed").await >= 2.0, "{kind:?}");
        h.fake.refuse_connections(false);
        h.until_all_flow(&["BTCUSDT"], n + 3.0).await;
        h.stop().await;
    }
}

/// `marketfeed_connect_failures_total{cause}` for each way a connect fails: a closed port, a name that does
/// not resolve (RFC 6761 `.invalid`, answered by the local resolver), a listener that never answers the
/// upgrade, TLS spoken to a plain WebSocket port, and upgrades the venue refuses with 451, 403 and 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_failures_are_counted_by_cause() {
    // Accepts TCP (the kernel's backlog would too) and holds the sockets without a word.
    let mute = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mute_addr = mute.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = mute.accept().await {
            held.push(tcp);
        }
    });
    let plain = fake(FakeKind::BybitLinear).await;
    let plain_port = plain.base_url().rsplit(':').next().unwrap().to_owned();
    let path = "/v5/public/linear";
    let cases = [
        ("refused", format!("ws://127.0.0.1:9{path}")),
        ("dns", format!("ws://no-such-venue.invalid{path}")),
        ("timeout", format!("ws://{mute_addr}{path}")),
        ("tls", format!("wss://127.0.0.1:{plain_port}")),
    ];
    let check = |cause: &'static str, url: String| async move {
        let h = Harness::start(
            FakeKind::BybitLinear,
            "BTCUSDT",
            &[("MARKETFEED_BYBIT_LINEAR_URL", url.as_str())],
        )
        .await;
        let scrape = h
            .until(&format!("a {cause} failure"), |s| {
                s.value(
                    "marketfeed_connect_failures_total",
                    &[
                        ("exchange", "bybit"),
                        ("market", "linear"),
                        ("cause", cause),
                    ],
                )
                .is_some_and(|v| v >= 1.0)
            })
            .await;
        // Every attempt failed the same way, and each is a handshake_failed reconnect.
        let all = scrape.sum("marketfeed_connect_failures_total", &[] as &[(&str, &str)]);
        let this = scrape.sum("marketfeed_connect_failures_total", &[("cause", cause)]);
        assert_eq!(all, this, "{cause}: {url}");
        assert!(
            scrape.sum(
                "marketfeed_reconnects_total",
                &[("reason", "handshake_failed")]
            ) >= this - 1.0,
            "{cause}"
        );
        h.stop().await;
    };
    futures_util::future::join_all(cases.into_iter().map(|(cause, url)| check(cause, url))).await;
    holder.abort();

    // A venue refusing the upgrade with an HTTP status: each status is its own cause, then it recovers.
    let h = Harness::start(FakeKind::BinanceSpot, "BTCUSDT", &[]).await;
    let failures = |status: &str| {
        [
            ("exchange", "binance".to_owned()),
            ("market", "spot".to_owned()),
            ("cause", format!("http_{status}")),
        ]
    };
    let n = h.messages(h.channels()[0], "BTCUSDT").await;
    for status in [451, 403, 429] {
        h.fake.refuse_handshake(Some(status));
        h.fake.reset_all();
        let labels = failures(&status.to_string());
        h.until(&format!("an HTTP {status} failure"), |s| {
            s.value("marketfeed_connect_failures_total", &labels)
                .is_some_and(|v| v >= 1.0)
        })
        .await;
    }
    h.fake.refuse_handshake(None);
    let scrape = h.until_all_flow(&["BTCUSDT"], n.max(0.0) + 1.0).await;
    assert!(
        scrape
            .value("marketfeed_connect_failures_total", &failures("503"))
            .is_none(),
        "an HTTP status never seen has no series"
    );
    assert_eq!(
        scrape.value(
            "marketfeed_connect_failures_total",
            &[
                ("exchange", "binance"),
                ("market", "spot"),
                ("cause", "dns")
            ]
        ),
        Some(0.0),
        "the fixed causes are there from the start"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_topic_is_reported_and_the_others_flow() {
    for kind in ALL {
        let fake_symbol = "BADUSDT";
        let venue = venue_of(kind);
        let channel = venue::default_channels(venue)[0];
        let f = fake(kind).await;
        f.reject(&venue::wire_key(venue, channel, fake_symbol));
        let h = Harness::run(f, kind, "BTCUSDT,BADUSDT,ETHUSDT", &[], fast_policy).await;
        let bad = h.sub(channel, fake_symbol);
        let scrape = h
            .until("the rejection to be counted", |s| {
                s.value("marketfeed_subscription_rejections_total", &bad)
                    .is_some_and(|v| v >= 1.0)
            })
            .await;
        assert_eq!(
            scrape.value("marketfeed_subscription_acked", &bad),
            Some(0.0),
            "{kind:?}"
        );
        let scrape = h.until_all_flow(&["BTCUSDT", "ETHUSDT"], 3.0).await;
        for symbol in ["BTCUSDT", "ETHUSDT"] {
            assert_eq!(
                scrape.value("marketfeed_subscription_acked", &h.sub(channel, symbol)),
                Some(1.0),
                "{kind:?}"
            );
        }
        // The other channel of the bad symbol is not rejected.
        let other = h.sub(h.channels()[1], fake_symbol);
        assert_eq!(
            scrape.value("marketfeed_subscription_rejections_total", &other),
            Some(0.0),
            "{kind:?}"
        );
        h.stop().await;
    }
}

/// A venue that refuses a subscription for a while (a symbol being launched, a topic unknown during maintenance):
/// the exporter asks again on the same connection with a growing, capped delay, and the symbol delivers once the
/// venue accepts it, without a reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_then_accepted_subscription_delivers_again() {
    each_market_at_once(&ALL, |kind| async move {
        let venue = venue_of(kind);
        let channel = venue::default_channels(venue)[0];
        let key = venue::wire_key(venue, channel, "NEWUSDT");
        let f = fake(kind).await;
        f.reject(&key);
        let h = Harness::run(f, kind, "BTCUSDT,NEWUSDT", &[], fast_policy).await;
        let new = h.sub(channel, "NEWUSDT");
        h.until("two refusals", |s| {
            s.value("marketfeed_subscription_rejections_total", &new)
                .is_some_and(|v| v >= 2.0)
        })
        .await;
        let answer = h.symbol("NEWUSDT", "").await;
        let refused = answer["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["channel"] == channel)
            .unwrap();
        assert_eq!(refused["refused"], true, "{kind:?}: {answer}");
        // Backed off: over 3 s at 0.4 s doubling to 1.6 s (each wait drawn from the upper half of its ceiling),
        // a handful of asks, not one per tick.
        let before = h
            .scrape()
            .await
            .value("marketfeed_subscription_rejections_total", &new)
            .unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let asked = h
            .scrape()
            .await
            .value("marketfeed_subscription_rejections_total", &new)
            .unwrap()
            - before;
        assert!(
            (1.0..=8.0).contains(&asked),
            "{kind:?}: {asked} refusals in 3 s"
        );
        let accepted = h.fake.connections_accepted();
        h.fake.accept(&key);
        h.until("the accepted subscription to deliver", |s| {
            s.value("marketfeed_messages_total", &new)
                .is_some_and(|v| v >= 1.0)
        })
        .await;
        assert_eq!(
            h.fake.connections_accepted(),
            accepted,
            "{kind:?}: no reconnect needed"
        );
        let answer = h.symbol("NEWUSDT", "").await;
        let channel_view = answer["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["channel"] == channel)
            .unwrap()
            .clone();
        assert_eq!(channel_view["refused"], false, "{kind:?}: {answer}");
        assert_eq!(channel_view["subscribed"], true, "{kind:?}: {answer}");
        h.stop().await;
    })
    .await;
}

/// What a venue can send that is valid JSON but not an honest value: a price beyond 2^55, placeholders of zero
/// and below, event times in 1970 and in the year 3000. Prices are kept exactly or not at all, and implausible
/// times are counted and kept out of latency, while the messages still count as data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_values_are_kept_exactly_or_counted() {
    let kind = FakeKind::BinanceSpot;
    let f = fake(kind).await;
    f.set_muted("btcusdt@aggTrade", true);
    let h = Harness::run(f, kind, "BTCUSDT", &[], fast_policy).await;
    let trade = h.sub("aggTrade", "BTCUSDT");
    h.until("the subscription", |s| {
        s.value("marketfeed_subscription_acked", &trade) == Some(1.0)
    })
    .await;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let frame = |price: &str, event_ms: u128| {
        format!(
            r#"{{"stream":"btcusdt@aggTrade","data":{{"e":"aggTrade","E":{event_ms},"s":"BTCUSDT","a":1,"p":"{price}","q":"1.0","f":1,"l":1,"T":{event_ms},"m":false,"M":true}}}}"#
        )
    };
    let channel_price = |answer: &serde_json::Value| {
        answer["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["channel"] == "aggTrade")
            .unwrap()["last_price"]
            .clone()
    };
    h.fake.send_raw(&frame("36028797018963968", now_ms));
    h.until("the huge price", |s| {
        s.value("marketfeed_messages_total", &trade) == Some(1.0)
    })
    .await;
    assert_eq!(
        channel_price(&h.symbol("BTCUSDT", "").await),
        "36028797018963968"
    );
    for placeholder in ["0", "-5", "-0"] {
        h.fake.send_raw(&frame(placeholder, now_ms));
    }
    h.fake.send_raw(&frame("43000.5", 1));
    h.fake.send_raw(&frame("43000.5", 32_503_680_000_000));
    let market = [("exchange", "binance"), ("market", "spot")];
    // A message is counted as it starts being recorded, its time judged after: wait for the last frame's verdict
    // too, or a scrape between the two sees six messages and one implausible time.
    let scrape = h
        .until("every frame recorded", |s| {
            s.value("marketfeed_messages_total", &trade) == Some(6.0)
                && s.value("marketfeed_implausible_timestamps_total", &market) >= Some(2.0)
        })
        .await;
    assert_eq!(
        scrape.value("marketfeed_implausible_timestamps_total", &market),
        Some(2.0)
    );
    assert_eq!(
        scrape.sum(
            "marketfeed_event_latency_seconds_count",
            &[("channel", "aggTrade")]
        ),
        4.0,
        "only the four frames stamped now"
    );
    assert!(
        scrape.sum(
            "marketfeed_event_latency_seconds_sum",
            &[("channel", "aggTrade")]
        ) < 10.0,
        "no year-3000 or 1970 latency in the sum"
    );
    let last_event = scrape
        .value("marketfeed_last_event_timestamp_seconds", &trade)
        .unwrap();
    assert!(
        (last_event - now_ms as f64 / 1e3).abs() < 1.0,
        "{last_event}"
    );
    // The placeholders are no price. The last two frames' times were not believed, their prices are.
    let answer = h.symbol("BTCUSDT", "").await;
    assert_eq!(channel_price(&answer), "43000.5", "{answer}");
    assert_eq!(
        scrape.value("marketfeed_decode_errors_total", &market),
        Some(0.0)
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_but_never_delivered_is_visible() {
    for kind in ALL {
        let venue = venue_of(kind);
        let channel = venue::default_channels(venue)[0];
        let f = fake(kind).await;
        f.never_deliver(&venue::wire_key(venue, channel, "BTCUSDT"));
        let h = Harness::run(f, kind, "BTCUSDT", &[], fast_policy).await;
        let l = h.sub(channel, "BTCUSDT");
        // Acked, the other channel flows, and this one never delivers: messages stay 0 with acked 1.
        h.until("the ack", |s| {
            s.value("marketfeed_subscription_acked", &l) == Some(1.0)
        })
        .await;
        let other = h.sub(h.channels()[1], "BTCUSDT");
        h.until("the other channel", |s| {
            s.value("marketfeed_messages_total", &other)
                .is_some_and(|v| v > 3.0)
        })
        .await;
        assert_eq!(
            h.scrape().await.value("marketfeed_messages_total", &l),
            Some(0.0),
            "{kind:?}"
        );
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frame_is_counted_and_skipped() {
    for kind in ALL {
        let h = Harness::start(kind, "BTCUSDT", &[]).await;
        h.until_all_flow(&["BTCUSDT"], 1.0).await;
        let accepted = h.fake.connections_accepted();
        h.fake.send_malformed();
        let labels = [
            ("exchange", h.venue.exchange().as_str().to_owned()),
            ("market", h.venue.market().as_str().to_owned()),
        ];
        h.until("the decode error", |s| {
            s.sum("marketfeed_decode_errors_total", &labels) >= 1.0
        })
        .await;
        let n = h.messages(h.channels()[0], "BTCUSDT").await;
        h.until_all_flow(&["BTCUSDT"], n + 2.0).await;
        assert_eq!(
            h.fake.connections_accepted(),
            accepted,
            "{kind:?}: the connection was kept"
        );
        assert_eq!(h.reconnects("error").await, 0.0, "{kind:?}");
        // A text frame that is not UTF-8: the WebSocket layer fails the connection (RFC 6455), so it is counted
        // as undecodable and the connection comes back under its own reason.
        let decode_errors = h
            .scrape()
            .await
            .sum("marketfeed_decode_errors_total", &labels);
        h.fake.send_invalid_utf8();
        h.until("the invalid frame", |s| {
            s.sum(
                "marketfeed_reconnects_total",
                &[("reason", "invalid_frame")],
            ) >= 1.0
        })
        .await;
        let n = h.messages(h.channels()[0], "BTCUSDT").await;
        let scrape = h.until_all_flow(&["BTCUSDT"], n + 2.0).await;
        // One per connection that got the frame (USD-M has two).
        assert_eq!(
            scrape.sum("marketfeed_decode_errors_total", &labels) - decode_errors,
            scrape.sum(
                "marketfeed_reconnects_total",
                &[("reason", "invalid_frame")]
            ),
            "{kind:?}"
        );
        assert_eq!(h.reconnects("error").await, 0.0, "{kind:?}");
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_rollover_and_server_shutdown_are_not_incidents() {
    for kind in BINANCE {
        let h = Harness::run(fake(kind).await, kind, "BTCUSDT", &[], |v| {
            let mut p = fast_policy(v);
            p.max_connection_age = Some(Duration::from_millis(1500));
            p
        })
        .await;
        h.until("a scheduled rollover", |s| {
            s.sum("marketfeed_reconnects_total", &[("reason", "scheduled")]) >= 1.0
        })
        .await;
        h.until_all_flow(&["BTCUSDT"], 2.0).await;
        h.stop().await;

        let h = Harness::start(kind, "BTCUSDT", &[]).await;
        h.until_all_flow(&["BTCUSDT"], 1.0).await;
        let accepted = h.fake.connections_accepted();
        h.fake.send_server_shutdown();
        h.until("a server_shutdown reconnect", |s| {
            s.sum(
                "marketfeed_reconnects_total",
                &[("reason", "server_shutdown")],
            ) >= 1.0
        })
        .await;
        h.until("the new connection", |_| {
            h.fake.connections_accepted() > accepted
        })
        .await;
        for reason in ["server_close", "error", "heartbeat_timeout", "idle_timeout"] {
            assert_eq!(h.reconnects(reason).await, 0.0, "{kind:?} {reason}");
        }
        h.stop().await;
    }
}

/// Make before break: ahead of the connection lifetime a new connection subscribes and delivers while the old one
/// still records, then takes over. With every handshake delayed by 1.5 s (a reconnect would cost at least that),
/// no update gap of any subscription exceeds its cadence (50 ms) plus one second across several rollovers, every
/// message counts once, and the connection never goes down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollovers_leave_no_gap() {
    each_market_at_once(
        &[FakeKind::BinanceSpot, FakeKind::BybitLinear],
        |kind| async move {
            let f = fake(kind).await;
            f.set_handshake_delay(Duration::from_millis(1500));
            let h = Harness::run(f, kind, "BTCUSDT,ETHUSDT", &[], |v| {
                let mut p = fast_policy(v);
                p.max_connection_age = Some(Duration::from_secs(4));
                p
            })
            .await;
            h.until_within("two rollovers", Duration::from_secs(30), |s| {
                s.sum("marketfeed_reconnects_total", &[("reason", "scheduled")]) >= 2.0
            })
            .await;
            let scrape = h.scrape().await;
            for channel in h.channels() {
                let group = h.group(channel);
                let labels = |le: &str| {
                    let mut l: Vec<(&str, String)> = group.to_vec();
                    l.push(("le", le.to_owned()));
                    l
                };
                let within = scrape
                    .value("marketfeed_update_gap_seconds_bucket", &labels("1"))
                    .unwrap();
                let all = scrape
                    .value("marketfeed_update_gap_seconds_bucket", &labels("+Inf"))
                    .unwrap();
                assert!(all > 20.0, "{kind:?} {channel}: {all} gaps");
                assert_eq!(
                    within, all,
                    "{kind:?} {channel}: a gap over 1 s across a rollover"
                );
            }
            let accepted = h.fake.connections_accepted();
            assert!(accepted >= 3, "{kind:?}: {accepted} connections");
            for reason in [
                "server_close",
                "error",
                "idle_timeout",
                "heartbeat_timeout",
                "handshake_failed",
            ] {
                assert_eq!(h.reconnects(reason).await, 0.0, "{kind:?} {reason}");
            }
            // Once per message: the fake's frames for BTCUSDT on the first channel, counted by the exporter, never
            // exceed what one connection at a time could have sent.
            let messages = h.messages(h.channels()[0], "BTCUSDT").await;
            let elapsed = h.running_for();
            let most = elapsed.as_secs_f64() / 0.05 + 5.0;
            assert!(
                messages <= most,
                "{kind:?}: {messages} messages in {elapsed:?}: counted twice"
            );
            h.stop().await;
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bybit_acks_without_our_req_id_still_count() {
    for kind in [FakeKind::BybitLinear, FakeKind::BybitInverse] {
        let f = fake(kind).await;
        f.set_echo_req_id(false);
        let h = Harness::run(f, kind, "BTCUSDT,ETHUSDT", &[], fast_policy).await;
        let scrape = h.until_all_flow(&["BTCUSDT", "ETHUSDT"], 2.0).await;
        for symbol in ["BTCUSDT", "ETHUSDT"] {
            for channel in h.channels() {
                let acked = scrape.value("marketfeed_subscription_acked", &h.sub(channel, symbol));
                assert_eq!(acked, Some(1.0), "{kind:?} {channel} {symbol}");
            }
        }
        assert_eq!(h.reconnects("subscribe_failed").await, 0.0, "{kind:?}");
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_every_socket() {
    let h = Harness::start(FakeKind::BybitLinear, "BTCUSDT", &[]).await;
    h.until_all_flow(&["BTCUSDT"], 1.0).await;
    let fake = h.stop().await;
    fake.wait_for("sockets closed", WAIT, |f| f.open_connections() == 0)
        .await;
}

/// Runs `scenario` for every kind at once: these scenarios wait for the venues' real cadences (seconds), and
/// one market's wait need not hold up the next.
async fn each_market_at_once<Fut: Future<Output = ()>>(
    kinds: &[FakeKind],
    scenario: impl Fn(FakeKind) -> Fut,
) {
    futures_util::future::join_all(kinds.iter().map(|&kind| scenario(kind))).await;
}

/// A symbol's scheduled channel stalls while its connection keeps delivering other symbols: it is resubscribed
/// once it has missed its cadence `MARKETFEED_HEARTBEAT_MISSES` times plus the grace (7 s for a 1 s channel,
/// 17 s for Bybit's 3 s `orderbook.1`), not after `MARKETFEED_RESUBSCRIBE_AFTER`, and data flows again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_scheduled_channel_is_resubscribed_at_its_deadline() {
    each_market_at_once(&ALL, |kind| async move {
        let h = Harness::start(kind, "BTCUSDT,ETHUSDT", &[]).await;
        let (scheduled, event) = (h.channels()[0], h.channels()[1]);
        h.until_all_flow(&["BTCUSDT", "ETHUSDT"], 1.0).await;
        let late_after = h
            .channel_seconds("marketfeed_channel_late_after_seconds", scheduled)
            .await;
        let interval = h
            .channel_seconds("marketfeed_channel_expected_interval_seconds", scheduled)
            .await;
        assert_eq!(
            late_after,
            interval * 5 + Duration::from_secs(2),
            "{kind:?}"
        );
        let dead = h.sub(scheduled, "ETHUSDT");
        h.fake.stall_until_resubscribe(&h.key(scheduled, "ETHUSDT"));
        let stalled = Instant::now();
        let scrape = h
            .until_within("the resubscribe", late_after + WAIT, |s| {
                s.value("marketfeed_resubscribes_total", &dead)
                    .is_some_and(|v| v >= 1.0)
            })
            .await;
        let took = stalled.elapsed();
        // Its last message came just before the stall; the 1 s of slack below covers a hiccup of the fake.
        assert!(
            took + Duration::from_secs(1) >= late_after,
            "{kind:?}: resubscribed after {took:?}, before its deadline {late_after:?}"
        );
        assert!(
            took <= late_after + Duration::from_secs(5),
            "{kind:?}: resubscribed after {took:?}, deadline {late_after:?}"
        );
        let n = scrape.value("marketfeed_messages_total", &dead).unwrap();
        h.until("the repaired stream to deliver again", |s| {
            s.value("marketfeed_messages_total", &dead)
                .is_some_and(|v| v > n + 2.0)
        })
        .await;
        let scrape = h.scrape().await;
        for (channel, symbol) in [
            (scheduled, "BTCUSDT"),
            (event, "BTCUSDT"),
            (event, "ETHUSDT"),
        ] {
            assert_eq!(
                scrape.value("marketfeed_resubscribes_total", &h.sub(channel, symbol)),
                Some(0.0),
                "{kind:?} {channel} {symbol}: only the dead stream is touched"
            );
        }
        assert_eq!(h.reconnects("idle_timeout").await, 0.0, "{kind:?}");
        assert_eq!(h.symbol("ETHUSDT", "").await["feed"], "live", "{kind:?}");
        h.stop().await;
    })
    .await;
}

/// An event-driven channel stays silent (a quiet market) while the symbol's scheduled channel flows: it is
/// never resubscribed, the symbol is `quiet` and healthy, and a bot asking with `max_staleness` may use it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_event_channel_is_left_alone_and_the_symbol_stays_usable() {
    each_market_at_once(&ALL, |kind| async move {
        let h = Harness::start(kind, "BTCUSDT,ETHUSDT", &[]).await;
        let (scheduled, event) = (h.channels()[0], h.channels()[1]);
        h.until_all_flow(&["BTCUSDT", "ETHUSDT"], 1.0).await;
        let quiet_after = h
            .channel_seconds("marketfeed_channel_quiet_after_seconds", event)
            .await;
        let late_after = h
            .channel_seconds("marketfeed_channel_late_after_seconds", scheduled)
            .await;
        assert_eq!(
            quiet_after, late_after,
            "{kind:?}: one scheduled channel sets the window"
        );
        h.fake.set_muted(&h.key(event, "BTCUSDT"), true);
        // Well past every deadline the market's scheduled channel has.
        tokio::time::sleep(quiet_after + Duration::from_secs(3)).await;
        let v = h.symbol("BTCUSDT", "?max_staleness=2s").await;
        assert_eq!(
            (&v["status"], &v["feed"], &v["usable"]),
            (&"healthy".into(), &"quiet".into(), &true.into()),
            "{kind:?}: {v}"
        );
        assert_eq!(v["channels"][0]["feed"], "live", "{kind:?}: {v}");
        assert_eq!(v["channels"][1]["feed"], "quiet", "{kind:?}: {v}");
        let scrape = h.scrape().await;
        assert_eq!(
            scrape.value("marketfeed_resubscribes_total", &h.sub(event, "BTCUSDT")),
            Some(0.0),
            "{kind:?}: a quiet market is not a dead subscription"
        );
        assert_eq!(h.symbols_with(&scrape, "quiet"), Some(1.0), "{kind:?}");
        assert_eq!(h.symbols_with(&scrape, "live"), Some(1.0), "{kind:?}");
        assert_eq!(h.reconnects("idle_timeout").await, 0.0, "{kind:?}");
        h.stop().await;
    })
    .await;
}

/// A symbol that never delivers is `no_data`, never `healthy`, and never usable; one whose scheduled channel
/// stops for good turns `late` at its deadline (unusable though its event channel is fresh), is resubscribed
/// with back-off, and is `live` again once the venue serves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_data_and_late_are_told_apart_from_live() {
    each_market_at_once(&ALL, |kind| async move {
        let venue = venue_of(kind);
        let f = fake(kind).await;
        for channel in venue::default_channels(venue) {
            f.set_muted(&venue::wire_key(venue, channel, "ETHUSDT"), true);
        }
        let h = Harness::run(f, kind, "BTCUSDT,ETHUSDT,SOLUSDT", &[], fast_policy).await;
        let scheduled = h.channels()[0];
        h.until_all_flow(&["BTCUSDT", "SOLUSDT"], 1.0).await;
        let eth = h.symbol("ETHUSDT", "?max_staleness=1h").await;
        assert_eq!(
            (&eth["status"], &eth["feed"], &eth["usable"]),
            (&"no_data".into(), &"no_data".into(), &false.into()),
            "{kind:?}: {eth}"
        );
        for channel in 0..2 {
            assert_eq!(eth["channels"][channel]["status"], "no_data", "{kind:?}");
        }
        let btc = h.symbol("BTCUSDT", "?max_staleness=2s").await;
        assert_eq!(
            (&btc["status"], &btc["feed"], &btc["usable"]),
            (&"healthy".into(), &"live".into(), &true.into()),
            "{kind:?}: {btc}"
        );

        h.fake.set_muted(&h.key(scheduled, "SOLUSDT"), true);
        let late_after = h
            .channel_seconds("marketfeed_channel_late_after_seconds", scheduled)
            .await;
        let sol = h
            .until_feed("SOLUSDT", "?max_staleness=1h", "late", late_after + WAIT)
            .await;
        assert_eq!(
            (&sol["status"], &sol["usable"], &sol["channels"][0]["feed"]),
            (&"healthy".into(), &false.into(), &"late".into()),
            "{kind:?}: the event channel is fresh, the scheduled one dead: {sol}"
        );
        let scrape = h
            .until("the repair attempt", |s| {
                s.value(
                    "marketfeed_resubscribes_total",
                    &h.sub(scheduled, "SOLUSDT"),
                )
                .is_some_and(|v| v >= 1.0)
            })
            .await;
        for (feed, count) in [
            ("live", 1.0),
            ("quiet", 0.0),
            ("late", 1.0),
            ("no_data", 1.0),
        ] {
            assert_eq!(
                h.symbols_with(&scrape, feed),
                Some(count),
                "{kind:?} {feed}"
            );
        }

        // The venue serves it again: the next repair brings it back.
        h.fake.set_muted(&h.key(scheduled, "SOLUSDT"), false);
        h.until_feed("SOLUSDT", "", "live", late_after * 2 + WAIT)
            .await;
        h.stop().await;
    })
    .await;
}

/// When a connection's only streams are scheduled and all of them stop while pings go on, the connection itself
/// is what died: it is replaced at the scheduled deadline, not after `MARKETFEED_IDLE_TIMEOUT`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_whose_scheduled_streams_all_stop_is_replaced_at_their_deadline() {
    each_market_at_once(
        &[FakeKind::BinanceUsdm, FakeKind::BybitLinear],
        |kind| async move {
            let extra: &[(&str, &str)] = match kind {
                // /market/stream carries only markPrice@1s.
                FakeKind::BinanceUsdm => &[("MARKETFEED_IDLE_TIMEOUT", "1m")],
                _ => &[
                    ("MARKETFEED_IDLE_TIMEOUT", "1m"),
                    ("MARKETFEED_BYBIT_LINEAR_CHANNELS", "orderbook.1"),
                ],
            };
            let h = Harness::start(kind, "BTCUSDT", extra).await;
            let scheduled = h.channels()[0];
            let l = h.sub(scheduled, "BTCUSDT");
            h.until("data", |s| {
                s.value("marketfeed_messages_total", &l)
                    .is_some_and(|v| v > 1.0)
            })
            .await;
            let late_after = h
                .channel_seconds("marketfeed_channel_late_after_seconds", scheduled)
                .await;
            h.fake.stall_until_resubscribe(&h.key(scheduled, "BTCUSDT"));
            let stalled = Instant::now();
            h.until_within("the reconnect", late_after + WAIT, |s| {
                s.sum("marketfeed_reconnects_total", &[("reason", "idle_timeout")]) >= 1.0
            })
            .await;
            let took = stalled.elapsed();
            assert!(
                took + Duration::from_secs(1) >= late_after
                    && took <= late_after + Duration::from_secs(5),
                "{kind:?}: reconnected after {took:?}, deadline {late_after:?}"
            );
            assert_eq!(
                h.reconnects("heartbeat_timeout").await,
                0.0,
                "{kind:?}: pings went on"
            );
            let n = h.messages(scheduled, "BTCUSDT").await;
            h.until("data on the new connection", |s| {
                s.value("marketfeed_messages_total", &l)
                    .is_some_and(|v| v > n + 2.0)
            })
            .await;
            h.stop().await;
        },
    )
    .await;
}
