//! The whole monitoring stack on loopback: one or more bots' exporters (in process), each on its own fake venues,
//! a real Prometheus loaded with the shipped rules and scraping every exporter as a bot pod (namespace `trading`,
//! pod `bot-...`), a real Alertmanager loaded with the shipped configuration and templates, and a webhook receiver.
//!
//! The shipped rules are used exactly as they are: the staleness thresholds come from the exporter, which the
//! tests configure per market (seconds instead of minutes) the way a user would. Only Alertmanager's waits shrink,
//! and its receivers point at the local webhook with secrets in temporary files.

use std::path::PathBuf;
use std::time::Duration;

use marketfeed_exporter::app::{self, Running, Tuning};
use marketfeed_exporter::config::{Config, parse_flags};

use super::fake::{FakeKind, FakeVenue};
use super::fake_rest::{FakeRest, RestKind};
use super::prom::{self, Process, TempDir, Webhook};

/// Where the repository's files are.
pub fn repo(path: &str) -> PathBuf {
    // This crate sits in the repository's `testkit/`.
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit/ has a parent")
        .join(path)
}

/// Reads a repository file.
pub fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Replaces `from` with `to` in `text`, insisting that `from` occurs exactly `times` times, so a change to a
/// shipped file cannot silently turn a substitution into a no-op.
pub fn replace(text: &str, from: &str, to: &str, times: usize) -> String {
    assert_eq!(
        text.matches(from).count(),
        times,
        "expected {from:?} {times} time(s)"
    );
    text.replace(from, to)
}

/// The shipped Alertmanager configuration pointed at `webhook`, with secrets written into `dir`.
pub fn alertmanager_config(webhook: &Webhook, dir: &TempDir, group_wait: &str) -> String {
    let config = read("alerting-rules/alertmanager.yml");
    let token = dir.write("webhook-token", "test-token");
    let slack = dir.write("slack-webhook-url", &webhook.url("/slack"));
    let config = replace(
        &config,
        "http://alert-bridge.monitoring.svc:8080/marketfeed",
        &webhook.url("/marketfeed"),
        3,
    );
    let config = replace(
        &config,
        "/etc/alertmanager/secrets/webhook-token",
        &token.display().to_string(),
        3,
    );
    let config = replace(
        &config,
        "/etc/alertmanager/secrets/slack-webhook-url",
        &slack.display().to_string(),
        2,
    );
    // Debian 12's Alertmanager 0.25 predates bot_token_file (0.26); the token is spelled inline for it.
    let config = replace(
        &config,
        "bot_token_file: /etc/alertmanager/secrets/telegram-bot-token",
        "bot_token: test-token",
        1,
    );
    let config = replace(
        &config,
        "api_url: https://api.telegram.org",
        &format!("api_url: {}", webhook.url("/telegram")),
        1,
    );
    let config = replace(
        &config,
        "/etc/alertmanager/templates/marketfeed.tmpl",
        &repo("alerting-rules/marketfeed.tmpl").display().to_string(),
        1,
    );
    let config = replace(
        &config,
        "group_wait: 30s",
        &format!("group_wait: {group_wait}"),
        1,
    );
    replace(&config, "group_interval: 5m", "group_interval: 1s", 1)
}

/// One watched market of the stack's exporter, on its own fake venue.
pub struct Market {
    /// The fake venue.
    pub kind: FakeKind,
    /// Its symbols.
    pub symbols: &'static str,
    /// The market's own thresholds, `MARKETFEED_<EXCHANGE>_<MARKET>_DEGRADED_AFTER` and `_STALE_AFTER`; `None`
    /// keeps the exporter's defaults (3 and 5 minutes).
    pub thresholds: Option<(&'static str, &'static str)>,
    /// Symbols among `symbols` that the venue's instrument list shows as listed but not trading (Binance `BREAK`,
    /// Bybit `Delivering`, which Bybit spot's listing cannot show); the fake venue still serves them.
    pub closed: &'static [&'static str],
}

/// One bot pod's exporter: its markets, each on its own fake venue.
pub struct BotOptions {
    /// The `pod` label Prometheus gives its target (namespace `trading`).
    pub pod: &'static str,
    /// The watched markets, all of one exchange (they share one fake REST host).
    pub markets: Vec<Market>,
}

/// What to start.
pub struct Options {
    /// The bots; the first is [`Stack::bot`].
    pub bots: Vec<BotOptions>,
    /// Alertmanager's group_wait.
    pub group_wait: &'static str,
    /// Prometheus' scrape and evaluation interval.
    pub interval: &'static str,
}

impl Options {
    /// One bot, `bot-0`, on Bybit linear with BTCUSDT and ETHUSDT, thresholds of 2 s and 4 s, one-second intervals:
    /// what the ecosystem tests run, so an alert fires within seconds.
    pub fn fast() -> Options {
        Options {
            bots: vec![BotOptions {
                pod: "bot-0",
                markets: vec![Market {
                    kind: FakeKind::BybitLinear,
                    symbols: "BTCUSDT,ETHUSDT",
                    thresholds: Some(("2s", "4s")),
                    closed: &[],
                }],
            }],
            group_wait: "2s",
            interval: "1s",
        }
    }
}

/// Names of a fake kind in the exporter's configuration and at the fake REST host: the variable infix, the REST
/// fake and its variable infix, the listing category and the venue's "trading" status.
fn names(
    kind: FakeKind,
) -> (
    &'static str,
    RestKind,
    &'static str,
    &'static str,
    &'static str,
) {
    match kind {
        FakeKind::BinanceSpot => (
            "BINANCE_SPOT",
            RestKind::BinanceSpot,
            "BINANCE_SPOT",
            "spot",
            "TRADING",
        ),
        FakeKind::BinanceUsdm => (
            "BINANCE_USDM",
            RestKind::BinanceUsdm,
            "BINANCE_USDM",
            "usdm",
            "TRADING",
        ),
        FakeKind::BybitSpot => ("BYBIT_SPOT", RestKind::Bybit, "BYBIT", "spot", "Trading"),
        FakeKind::BybitLinear => (
            "BYBIT_LINEAR",
            RestKind::Bybit,
            "BYBIT",
            "linear",
            "Trading",
        ),
        FakeKind::BybitInverse => (
            "BYBIT_INVERSE",
            RestKind::Bybit,
            "BYBIT",
            "inverse",
            "Trading",
        ),
    }
}

/// One bot's exporter and its fakes.
pub struct Bot {
    /// Its pod label.
    pub pod: &'static str,
    /// Every market's fake venue, in [`BotOptions::markets`] order.
    pub fakes: Vec<FakeVenue>,
    /// Its REST side, listing the symbols as trading.
    pub rest: FakeRest,
    /// The exporter.
    pub exporter: Running,
    /// The exporter's scrape target, as Prometheus labels it.
    pub instance: String,
}

impl Bot {
    /// Starts the fakes and the exporter for `options`.
    async fn start(options: &BotOptions) -> Bot {
        let rest_kind = names(options.markets[0].kind).1;
        assert!(
            options.markets.iter().all(|m| names(m.kind).1 == rest_kind),
            "one fake REST host per bot: its markets must share it"
        );
        let rest = FakeRest::start(rest_kind).await;
        let mut vars = std::collections::BTreeMap::new();
        // A stalled stream stays stalled unless the exporter itself repairs it.
        vars.insert("MARKETFEED_RESUBSCRIBE_AFTER".to_owned(), "1h".to_owned());
        let mut fakes = Vec::new();
        for market in &options.markets {
            let (venue, _, rest_var, category, trading) = names(market.kind);
            let fake = FakeVenue::start(market.kind).await;
            // The exporter runs with production timing here: Bybit pings every 20 s, past the fake's default cut.
            fake.set_idle_cut(Duration::from_secs(120));
            let closed = if trading == "TRADING" {
                "BREAK"
            } else {
                "Delivering"
            };
            let listed: Vec<(&str, &str)> = market
                .symbols
                .split(',')
                .map(|s| {
                    (
                        s,
                        if market.closed.contains(&s) {
                            closed
                        } else {
                            trading
                        },
                    )
                })
                .collect();
            rest.set_instruments(category, &listed);
            vars.insert(
                format!("MARKETFEED_{venue}_SYMBOLS"),
                market.symbols.to_owned(),
            );
            vars.insert(format!("MARKETFEED_{venue}_URL"), fake.base_url());
            vars.insert(format!("MARKETFEED_{rest_var}_REST_URL"), rest.base_url());
            if let Some((degraded, stale)) = market.thresholds {
                vars.insert(
                    format!("MARKETFEED_{venue}_DEGRADED_AFTER"),
                    degraded.to_owned(),
                );
                vars.insert(format!("MARKETFEED_{venue}_STALE_AFTER"), stale.to_owned());
            }
            fakes.push(fake);
        }
        let flags = parse_flags(["--web.listen-address=127.0.0.1:0".to_owned()]).unwrap();
        let config = Config::load(vars, &flags).unwrap();
        let exporter = app::start(&config, Tuning::default()).await.unwrap();
        let instance = exporter.addr.to_string();
        Bot {
            pod: options.pod,
            fakes,
            rest,
            exporter,
            instance,
        }
    }

    /// Its first market's fake venue.
    pub fn fake(&self) -> &FakeVenue {
        &self.fakes[0]
    }
}

/// The running stack; everything stops when it is dropped.
pub struct Stack {
    /// The bots' exporters, in [`Options::bots`] order.
    pub bots: Vec<Bot>,
    /// Prometheus.
    pub prometheus: Process,
    /// Alertmanager.
    pub alertmanager: Process,
    /// The webhook receiver Alertmanager notifies.
    pub webhook: Webhook,
    _dir: TempDir,
}

impl Stack {
    /// Starts everything and returns once Prometheus is up; data may still be on its way.
    pub async fn start(options: Options) -> Stack {
        let dir = TempDir::new("stack");
        let mut bots = Vec::new();
        for bot in &options.bots {
            bots.push(Bot::start(bot).await);
        }
        let webhook = Webhook::start().await;
        let alertmanager = prom::alertmanager(
            &dir,
            &alertmanager_config(&webhook, &dir, options.group_wait),
        )
        .await;
        let rules = repo("alerting-rules/marketfeed.rules.yml");
        let interval = options.interval;
        let targets: String = bots
            .iter()
            .map(|bot| {
                format!(
                    "      - targets: ['{}']\n        labels: {{namespace: trading, pod: {}}}\n",
                    bot.instance, bot.pod
                )
            })
            .collect();
        let prometheus_config = format!(
            "global:\n  scrape_interval: {interval}\n  evaluation_interval: {interval}\n\
             rule_files: ['{}']\n\
             alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{}']\n\
             scrape_configs:\n  - job_name: marketfeed\n    static_configs:\n{targets}",
            rules.display(),
            alertmanager.addr,
        );
        let prometheus = prom::prometheus(&dir, &prometheus_config).await;
        Stack {
            bots,
            prometheus,
            alertmanager,
            webhook,
            _dir: dir,
        }
    }

    /// The first bot.
    pub fn bot(&self) -> &Bot {
        &self.bots[0]
    }

    /// Polls an instant query until it returns at least `n` series.
    pub async fn until_series(
        &self,
        expr: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<serde_json::Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let result = prom::query(self.prometheus.addr, expr).await;
            if result.len() >= n {
                return result;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{expr}: {} series, wanted {n}\nprometheus log:\n{}",
                result.len(),
                self.prometheus.log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}
