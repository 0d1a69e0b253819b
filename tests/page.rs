//! The status page at `/` as people meet it: the real binary against a fake venue, read by a real headless browser
//! (Debian's `chromium`, which `./scripts/test.sh` installs). The test leaves a screenshot of the page in the target
//! directory (`target/tmp/status-page.png`) for people to look at.

// Needs programs from outside Rust: the external-tools tier (`./scripts/test.sh`).
#![cfg(feature = "external-tools")]

use marketfeed_testkit as support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::exporter::Exporter;
use support::fake::{FakeKind, FakeVenue};
use support::http::get;
use support::prom::TempDir;

/// Runs headless Chromium on `url` with `args`; the flags keep it off every network but loopback.
fn chromium(url: &str, args: &[&str]) -> String {
    let profile = TempDir::new("chromium");
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium not found: run the README's test command, which installs Debian's chromium package");
    assert!(
        out.status.success(),
        "chromium {args:?} {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The symbol row of the page's DOM for `id`, e.g. `bybit-linear-ETHUSDT`.
fn row<'a>(dom: &'a str, id: &str) -> Option<&'a str> {
    let start = dom.find(&format!("<tr id=\"{id}\">"))?;
    let end = dom[start..].find("</tr>")?;
    Some(&dom[start..start + end])
}

async fn wait_for_status(exporter: &Exporter, symbol: &str, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = get(
            exporter.addr,
            &format!("/api/v1/symbols/bybit/linear/{symbol}"),
        )
        .await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if v["status"] == status {
            return;
        }
        assert!(Instant::now() < deadline, "{symbol} never {status}: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A symbol the venue stopped serving shows up on the page, stale, first; the filters narrow the table; and a
/// screenshot of the page lands in the target directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_a_stalled_symbol_in_a_real_browser() {
    let fake = FakeVenue::start(FakeKind::BybitLinear).await;
    fake.set_idle_cut(Duration::from_secs(120));
    let url = fake.base_url();
    let exporter = Exporter::start(&[
        ("MARKETFEED_BYBIT_LINEAR_SYMBOLS", "BTCUSDT,ETHUSDT,SOLUSDT"),
        ("MARKETFEED_BYBIT_LINEAR_URL", &url),
        ("MARKETFEED_BYBIT_REST_URL", "http://127.0.0.1:9"),
        ("MARKETFEED_BYBIT_LINEAR_DEGRADED_AFTER", "2s"),
        ("MARKETFEED_BYBIT_LINEAR_STALE_AFTER", "4s"),
    ])
    .await;
    for symbol in ["BTCUSDT", "ETHUSDT", "SOLUSDT"] {
        wait_for_status(&exporter, symbol, "healthy").await;
    }
    for key in ["orderbook.1.ETHUSDT", "tickers.ETHUSDT"] {
        fake.set_muted(key, true);
    }
    wait_for_status(&exporter, "ETHUSDT", "stale").await;

    let page = format!("http://{}/", exporter.addr);
    let dom = chromium(&page, &["--dump-dom"]);
    let eth =
        row(&dom, "bybit-linear-ETHUSDT").unwrap_or_else(|| panic!("no ETHUSDT row in {dom}"));
    assert!(eth.contains("<td class=\"stale\">stale</td>"), "{eth}");
    let btc =
        row(&dom, "bybit-linear-BTCUSDT").unwrap_or_else(|| panic!("no BTCUSDT row in {dom}"));
    assert!(btc.contains("<td class=\"healthy\">healthy</td>"), "{btc}");
    assert!(
        dom.find("bybit-linear-ETHUSDT") < dom.find("bybit-linear-BTCUSDT"),
        "worst first"
    );
    assert!(
        dom.contains("<td>bybit/linear</td>"),
        "the markets table: {dom}"
    );

    let filtered = chromium(&format!("{page}?status=stale,critical"), &["--dump-dom"]);
    assert!(
        row(&filtered, "bybit-linear-ETHUSDT").is_some(),
        "{filtered}"
    );
    assert!(
        row(&filtered, "bybit-linear-BTCUSDT").is_none(),
        "{filtered}"
    );
    assert!(
        filtered.contains(
            "<p id=\"count\">1 symbol matching the filter, of 3 watched, worst first.</p>"
        ),
        "{filtered}"
    );

    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    chromium(
        &page,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,720",
        ],
    );
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("{}: {e}", shot.display()));
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    eprintln!("status page screenshot: {}", shot.display());
    assert!(Path::new(&shot).is_file());
    let (status, stderr, _) = exporter.stop("TERM");
    assert!(status.success(), "{stderr}");
}
