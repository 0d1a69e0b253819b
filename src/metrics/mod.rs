//! The Prometheus registry: a scrape-time collector over the tracker, build info and process metrics.
//!
//! Owns metric names, help strings and labels (the metric contract in docs/architecture.md). Reads the tracker
//! only when scraped, so ingest never touches a metric object. Knows nothing of WebSockets or wire formats.

mod collect;
mod families;
mod process;
mod text;

use std::sync::Arc;

use prometheus::{Registry, TextEncoder};

use crate::rest::RestStats;
use crate::tracker::Trackers;
use collect::TrackerCollector;
use process::ProcessMetrics;

/// Version facts exported as `marketfeed_build_info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    /// Crate version.
    pub version: String,
    /// Git revision the binary was built from, or `unknown`.
    pub revision: String,
    /// The compiler's version.
    pub rustc_version: String,
}

impl BuildInfo {
    /// The facts baked in at compile time by build.rs.
    pub fn current() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            revision: env!("BUILD_GIT_REVISION").to_owned(),
            rustc_version: env!("BUILD_RUSTC_VERSION").to_owned(),
        }
    }
}

/// The Content-Type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The exporter's metrics: the tracker's families, written straight to text, and the `process_*` families of a
/// registry.
pub struct Metrics {
    collector: TrackerCollector,
    registry: Registry,
    last_len: std::sync::atomic::AtomicUsize,
}

impl Metrics {
    /// The tracker's families, the REST side's request metrics and build info; `process` adds the standard
    /// `process_*` metrics and, when called inside a Tokio runtime, that runtime's task count.
    pub fn new(
        trackers: Arc<Trackers>,
        rest: Arc<RestStats>,
        build: BuildInfo,
        process: bool,
    ) -> prometheus::Result<Self> {
        let registry = Registry::new();
        if process {
            registry.register(Box::new(ProcessMetrics::for_self()?))?;
        }
        Ok(Self {
            collector: TrackerCollector {
                trackers,
                rest,
                build,
                runtime: process
                    .then(tokio::runtime::Handle::try_current)
                    .and_then(Result::ok),
            },
            registry,
            last_len: Default::default(),
        })
    }

    /// About how long the next render's text is: the last one's length.
    pub fn expected_len(&self) -> usize {
        self.last_len.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The text exposition of every metric: the tracker's families in name order, then `process_*` (which sort
    /// after `marketfeed_*`).
    pub fn render(&self) -> String {
        let mut whole = String::new();
        self.render_pieces(usize::MAX, &mut |piece| whole = piece);
        whole
    }

    /// The same text in pieces of at least `piece` bytes (the last may be shorter), cut between families, each
    /// handed to `sink` as soon as it is written: a compressor on another thread works on one piece while the next
    /// is written. With `usize::MAX` there is one piece.
    pub fn render_pieces(&self, piece: usize, sink: &mut dyn FnMut(String)) {
        use std::sync::atomic::Ordering::Relaxed;
        // Each piece reserves what the last render needed (or a piece and some) instead of doubling its way there.
        let reserve = self.last_len.load(Relaxed).min(piece.saturating_mul(2)) + 4096;
        let mut out = String::with_capacity(reserve);
        let mut written = 0;
        self.collector.write(&mut out, &mut |out: &mut String| {
            if out.len() >= piece {
                written += out.len();
                sink(std::mem::replace(out, String::with_capacity(reserve)));
            }
        });
        // Encoding into a String only fails on invalid families, which the process collector never builds.
        if let Err(e) = TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        self.last_len.store(written + out.len(), Relaxed);
        if !out.is_empty() || written == 0 {
            sink(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::freshness::{Rules, Thresholds};
    use crate::model::Subscription;
    use crate::model::{Exchange, Sample, Venue};
    use crate::tracker::Listing;
    use crate::tracker::{ClockOffsets, ConnectionInfo, CrossCheck, Tracker};
    use crate::venue::rest::Endpoint;
    use rust_decimal::Decimal;
    use std::str::FromStr;
    use std::time::Duration;

    const S: u64 = 1_000_000_000;

    /// A fixed scenario: two symbols on Binance spot (with its own thresholds), one on Bybit linear (with the
    /// defaults), with messages, a rejection, a resubscribe, a decode error and reconnects; its exposition is
    /// pinned in tests/golden/metrics.prom.
    fn scenario(clock: Arc<ClockOffsets>) -> [Arc<Tracker>; 2] {
        let sub = |venue, channel: &str, symbol: &str| Subscription {
            venue,
            channel: crate::venue::channel(venue, channel).unwrap(),
            symbol: symbol.into(),
        };
        let spot = |channel: &str, symbol: &str| sub(Venue::BinanceSpot, channel, symbol);
        let subs = vec![
            spot("depth5", "BTCUSDT"),
            spot("aggTrade", "BTCUSDT"),
            spot("depth5", "ETHUSDT"),
            spot("aggTrade", "ETHUSDT"),
        ];
        let conn = |venue, slots| {
            vec![ConnectionInfo {
                venue,
                index: 0,
                slots,
            }]
        };
        // Overridden thresholds on spot, so the golden file shows a market's own beside the defaults.
        let rules = Rules {
            thresholds: Thresholds {
                degraded: Duration::from_secs(20),
                stale: Duration::from_secs(30),
                critical: Duration::from_secs(3600),
            },
            heartbeat_misses: 5,
        };
        // Ages at scrape time are months, so the verdicts are fixed: spot BTCUSDT late (its depth5 stopped),
        // the others never delivered.
        let start = 1_790_000_000 * S;
        let t = Tracker::new(
            subs,
            conn(Venue::BinanceSpot, vec![0, 1, 2, 3]),
            rules,
            start,
        )
        .with_clock(clock.clone());
        let linear = Tracker::new(
            vec![sub(Venue::BybitLinear, "orderbook.1", "BTCUSDT")],
            conn(Venue::BybitLinear, vec![0]),
            Rules::default(),
            start,
        )
        .with_clock(clock);
        let price = |p: &str| Decimal::from_str(p).ok();
        t.connection_up(0, start + S);
        linear.connection_up(0, start + 2 * S);
        for slot in 0..4 {
            t.set_acked(slot, true);
        }
        t.record(
            0,
            start + 3 * S,
            &Sample {
                event_time_ms: None,
                price: price("43000.05"),
            },
        );
        t.record(
            0,
            start + 4 * S,
            &Sample {
                event_time_ms: None,
                price: price("43000.15"),
            },
        );
        t.record(
            1,
            start + 3 * S,
            &Sample {
                event_time_ms: Some(1_790_000_002_990),
                price: price("43000.1"),
            },
        );
        t.record(
            1,
            start + 5 * S,
            &Sample {
                event_time_ms: Some(1_790_000_004_950),
                price: price("43001"),
            },
        );
        linear.rejected(0);
        t.resubscribed(2);
        t.decode_error(Venue::BinanceSpot);
        // An event stamped in 1970: counted, not a latency.
        t.record(
            1,
            start + 6 * S,
            &Sample {
                event_time_ms: Some(1),
                price: None,
            },
        );
        linear.connect_failed(crate::tracker::Cause::Http(451));
        linear.connection_down(0, crate::tracker::Reason::HandshakeFailed);
        linear.connection_down(0, crate::tracker::Reason::HeartbeatTimeout);
        t.set_clock_offset(Exchange::Binance, -12_500_000);
        t.set_listing(Venue::BinanceSpot, "BTCUSDT", Listing::Trading);
        t.set_listing(Venue::BinanceSpot, "ETHUSDT", Listing::Halted);
        linear.set_listing(Venue::BybitLinear, "BTCUSDT", Listing::Unlisted);
        t.set_cross_check(
            Venue::BinanceSpot,
            "ETHUSDT",
            CrossCheck {
                checked_ns: start + 400 * S,
                rest_price: Decimal::from_str("2400.5").unwrap(),
                feed_behind: Some(true),
            },
        );
        [Arc::new(t), Arc::new(linear)]
    }

    /// REST observations for the scenario: one of each kind, so every family appears in the golden file.
    fn rest_scenario() -> Arc<RestStats> {
        let stats = Arc::new(RestStats::new(&[Venue::BinanceSpot]));
        stats.observe(
            Venue::BinanceSpot,
            Endpoint::Time,
            Duration::from_millis(42),
        );
        stats.error(Venue::BinanceSpot, Endpoint::Ticker, "429");
        stats
    }

    /// The registry the app would build: one tracker per market.
    fn registry() -> Arc<Trackers> {
        let trackers = Arc::new(Trackers::new());
        let [spot, linear] = scenario(trackers.clock());
        trackers.set(Venue::BinanceSpot, spot);
        trackers.set(Venue::BybitLinear, linear);
        trackers.set_shard(crate::shard::Shard::new(1, 4).unwrap());
        trackers
    }

    fn build() -> BuildInfo {
        BuildInfo {
            version: "0.1.0".into(),
            revision: "abcdef012345".into(),
            rustc_version: "1.95.0".into(),
        }
    }

    /// The exposition of a fixed scenario, byte for byte. Set UPDATE_GOLDEN=1 to rewrite the file after an
    /// intended change, then review the diff.
    #[test]
    fn golden_exposition() {
        let text = Metrics::new(registry(), rest_scenario(), build(), false)
            .unwrap()
            .render();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/metrics.prom");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(path, &text).unwrap();
        }
        let golden = std::fs::read_to_string(path).unwrap();
        assert_eq!(
            text, golden,
            "exposition changed; UPDATE_GOLDEN=1 cargo test golden rewrites it"
        );
    }

    #[test]
    fn every_family_is_registered_once_and_named_by_the_contract() {
        // Inside a runtime, so the task count is exported too.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _inside = runtime.enter();
        let text = Metrics::new(registry(), rest_scenario(), build(), true)
            .unwrap()
            .render();
        // Written in name order, as a registry gathers them.
        let types: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .collect();
        let mut sorted = types.clone();
        sorted.sort();
        assert_eq!(types, sorted);
        for (f, _) in collect::WRITERS {
            assert!(f.name.starts_with("marketfeed_"), "{}", f.name);
            assert!(f.help.ends_with('.'), "{}", f.name);
            assert_eq!(
                text.matches(&format!("# TYPE {} ", f.name)).count(),
                1,
                "{}",
                f.name
            );
        }
        assert!(
            text.contains("process_resident_memory_bytes "),
            "process metrics are exported"
        );
    }
}
