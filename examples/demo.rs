//! A local demo of the whole stack, no exchange access needed: a simulated Bybit linear venue with BTCUSDT and
//! ETHUSDT, the exporter, a real Prometheus with the shipped rules, a real Alertmanager with the shipped
//! configuration, and a webhook receiver that prints every notification. After 20 s the venue stops serving
//! ETHUSDT: the exporter resubscribes it within seconds, in vain, and the stale alert fires; press Enter to bring
//! it back and watch the alert resolve. Ctrl-C stops everything.
//!
//! Run with `cargo run --example demo` (needs Debian's `prometheus` and `prometheus-alertmanager`, which
//! `./scripts/test.sh` installs). The market's thresholds are 20 s (degraded) and 40 s (stale) instead of 3 and 5
//! minutes (`MARKETFEED_BYBIT_LINEAR_DEGRADED_AFTER`, `_STALE_AFTER`), so the alert shows within a minute;
//! everything else is as shipped.

use marketfeed_testkit as support;

use std::time::Duration;

use support::fake::FakeKind;
use support::stack::{BotOptions, Market, Options, Stack};
use tokio::io::AsyncBufReadExt;

#[tokio::main]
async fn main() {
    let mut stack = Stack::start(Options {
        bots: vec![BotOptions {
            pod: "bot-0",
            markets: vec![Market {
                kind: FakeKind::BybitLinear,
                symbols: "BTCUSDT,ETHUSDT",
                thresholds: Some(("20s", "40s")),
                closed: &[],
            }],
        }],
        group_wait: "5s",
        interval: "5s",
    })
    .await;
    println!(
        "exporter      http://{}/metrics  (JSON: http://{}/api/v1/symbols)",
        stack.bot().instance,
        stack.bot().instance
    );
    println!("prometheus    http://{}/alerts", stack.prometheus.addr);
    println!("alertmanager  http://{}/", stack.alertmanager.addr);
    println!(
        "\nIn 20 s the venue stops serving ETHUSDT: the exporter resubscribes it at once, in vain, and the stale\nalert follows about 40 s later. Ctrl-C to stop.\n"
    );

    let mut printed = 0;
    let mut quiet = false;
    let mut went_quiet = false;
    let mut stdin_open = true;
    let start = tokio::time::Instant::now();
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            line = stdin.next_line(), if quiet && stdin_open => {
                if matches!(line, Ok(Some(_))) {
                    println!("ETHUSDT resumes; the alert resolves shortly.");
                    stack.bot().fake().set_muted("orderbook.1.ETHUSDT", false);
                    stack.bot().fake().set_muted("tickers.ETHUSDT", false);
                    quiet = false;
                } else {
                    // No terminal (or end of input): the symbol stays quiet until Ctrl-C.
                    stdin_open = false;
                }
            }
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        if !went_quiet && start.elapsed() >= Duration::from_secs(20) {
            println!(
                "The venue stops serving ETHUSDT now (socket open, pings fine, no updates). Press Enter to resume it."
            );
            stack.bot().fake().set_muted("orderbook.1.ETHUSDT", true);
            stack.bot().fake().set_muted("tickers.ETHUSDT", true);
            quiet = true;
            went_quiet = true;
        }
        let received = stack.webhook.received("/marketfeed");
        for notification in &received[printed..] {
            for alert in notification["alerts"].as_array().into_iter().flatten() {
                println!(
                    "webhook: {:>8} {:<28} {:<9} {}/{}/{}  {}",
                    alert["status"].as_str().unwrap_or(""),
                    alert["labels"]["alertname"].as_str().unwrap_or(""),
                    alert["labels"]["severity"].as_str().unwrap_or(""),
                    alert["labels"]["exchange"].as_str().unwrap_or(""),
                    alert["labels"]["market"].as_str().unwrap_or(""),
                    alert["labels"]["symbol"].as_str().unwrap_or("-"),
                    alert["annotations"]["summary"].as_str().unwrap_or(""),
                );
            }
        }
        printed = received.len();
    }
    for bot in std::mem::take(&mut stack.bots) {
        bot.exporter.stop().await;
    }
    // Stops Prometheus, Alertmanager and the webhook, and removes the temporary directory.
    drop(stack);
    // tokio's stdin read sits on a blocking thread until a line or end of input, and the runtime would wait for it
    // on the way out: leave now that every child process is stopped.
    std::process::exit(0);
}
