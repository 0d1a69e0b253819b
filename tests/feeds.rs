//! The exporter's app against fake Binance and Bybit servers on loopback that speak the venues' wire
//! protocols: subscribe and data, silence, heartbeats, closes, resets, rejections, malformed frames, rollover.
//!
//! Every scenario runs for each market it applies to. Venue timing is shrunk through `Tuning` (heartbeat
//! deadlines of about a second instead of minutes); the protocol and the code paths are the production ones.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use marketfeed_exporter::app::{self, Running, Tuning};
use marketfeed_exporter::backoff::Backoff;
use marketfeed_exporter::config::{Config, parse_flags};
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
        backoff: Backoff {
            base: Duration::from_millis(50),
            cap: Duration::from_millis(300),
        },
        stable_after: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(2),
        ack_timeout: Duration::from_secs(2),
        tick: Duration::from_millis(20),
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
        }
    }

    async fn scrape(&self) -> Scrape {
        support::metrics::scrape(self.running.addr).await
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
        // Refused handshakes are retried with a growing delay: the backoff ceiling is 300 ms here, so a second
        // of refusals sees a handful of attempts, not hundreds.
        let attempts = h.fake.handshake_attempts();
        h.fake.refuse_connections(true);
        h.fake.reset_all();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let refused = h.fake.handshake_attempts() - attempts;
        assert!(
            (2..=40).contains(&refused),
            "{kind:?}: {refused} attempts in 1 s"
        );
        assert!(h.reconnects("handshake_failed").await >= 2.0, "{kind:?}");
        h.fake.refuse_connections(false);
        h.until_all_flow(&["BTCUSDT"], n + 3.0).await;
        h.stop().await;
    }
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
