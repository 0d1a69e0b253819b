//! Does a `*` market's rebuild leak? The exporter in process (so the listing can be re-read every second, which
//! the binary's 10-minute refresh does not allow), a fake Bybit linear venue listing 1000 symbols (2000
//! subscriptions) of which ten change after each rebuild and `CHURN_SECS`, each change a make-before-break
//! rebuild. Every ten rebuilds it prints the process's RSS and its live heap (a counting allocator): a leak grows
//! the live heap with the rebuilds, fragmentation only the RSS. Not part of the test command; docs/benchmarks.md
//! has a run.
//!
//! With `DROPS` 1 the venue also resets every connection as each listing changes, so the rebuild races with
//! reconnections (in the soak, a drop and a listing change fall together every ten minutes).
//!
//! With `MIX` 1 the soak's HTTP side runs too, against the same process: basic auth, a gzip scrape every second
//! and the soak's abuse mix (50 silent, 50 slowloris, 50 scrapers, 2 guessers, each asking every 2 s); every
//! rebuild is then printed. The mix's own clients live on the same heap, a fixed set of tasks and buffers, so a
//! live heap that climbs with the rebuilds is a leak on one side or the other, and a flat one under a climbing RSS
//! is the allocator's.
//!
//! `cargo run --release --example rebuilds [REBUILDS] [CHURN_SECS] [DROPS] [MIX]`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};
use std::time::Duration;

use marketfeed_exporter::app::{self, Tuning};
use marketfeed_exporter::config::{Config, parse_flags};
use marketfeed_exporter::model::Venue;
use marketfeed_exporter::rest::RestSettings;
use marketfeed_testkit as support;
use support::abuse::{Mix, Sizes, basic, basic_auth_file, request, source};
use support::churn::Churn;

/// The system allocator, counting the bytes live on the heap: a leak grows them, fragmentation only RSS.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live_mib() -> f64 {
    LIVE.load(Relaxed) as f64 / (1024.0 * 1024.0)
}

/// `VmRSS` and `RssAnon`, MiB.
fn rss_mib() -> (f64, f64) {
    let status = support::procfs::status(std::process::id());
    let field = |name| support::procfs::field(&status, name) / 1024.0;
    (field("VmRSS:"), field("RssAnon:"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let arg = |n: usize, default: u64| {
        std::env::args()
            .nth(n)
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let (rebuilds, churn_secs) = (arg(1, 100) as usize, arg(2, 3));
    let (drops, mix) = (arg(3, 0) == 1, arg(4, 0) == 1);
    // LOG=info shows the exporter's log lines.
    if let Ok(filter) = std::env::var("LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .init();
    }
    let churn = Churn::start().await;
    let (venue, rest) = (&churn.venue, &churn.rest);
    let vars = [
        ("MARKETFEED_BYBIT_LINEAR_SYMBOLS", "*".to_owned()),
        ("MARKETFEED_BYBIT_LINEAR_URL", venue.base_url()),
        ("MARKETFEED_BYBIT_REST_URL", rest.base_url()),
        ("MARKETFEED_LOG_LEVEL", "error".to_owned()),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    let dir = std::env::temp_dir().join(format!("marketfeed-rebuilds-{}", std::process::id()));
    let mut flags = vec!["--web.listen-address=127.0.0.1:0".to_owned()];
    if mix {
        let web = basic_auth_file(&dir, &["prometheus"], "probe-secret");
        flags.push(format!("--web.config.file={}", web.display()));
    }
    let flags = parse_flags(flags).unwrap();
    let config = Config::load(vars, &flags).unwrap();
    let tuning = Tuning {
        rest: RestSettings {
            discovery_interval: Duration::from_secs(1),
            ..RestSettings::default()
        },
        ..Tuning::default()
    };
    let running = app::start(&config, tuning).await.unwrap();
    // Everything subscribed and flowing before the first sample.
    tokio::time::sleep(Duration::from_secs(10)).await;
    venue.forget_history();
    rest.forget_history();
    let http = mix.then(|| {
        let (addr, auth) = (running.addr, basic("prometheus", "probe-secret"));
        let sizes = Sizes {
            silent: 50,
            slowloris: 50,
            scrapers: 50,
            guessers: 2,
            pause: Duration::from_secs(2),
        };
        let abuse = Mix::start(addr, sizes, &auth, &basic("prometheus", "wrong"));
        let auth = format!("{auth}Accept-Encoding: gzip\r\n");
        let scraper = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let _ = request(source(1), addr, "/metrics", &auth).await;
            }
        });
        (abuse, scraper)
    });
    let every = if mix { 1 } else { 10 };
    let print = |generation: usize| {
        let (rss, anon) = rss_mib();
        println!(
            "| {generation} | {rss:.1} | {anon:.1} | {:.2} |",
            live_mib()
        );
    };
    println!("| rebuilds | RSS MiB | RssAnon MiB | live heap MiB |\n|---|---|---|---|");
    print(0);
    for generation in 1..=rebuilds {
        churn.list(generation);
        if drops {
            venue.reset_all();
        }
        // Until the new set is the one recorded (the rebuild done), then a pause with both sets gone quiet.
        let newest = Churn::newest(generation);
        let rebuilt = || {
            running
                .trackers
                .get(Venue::BybitLinear)
                .is_some_and(|t| t.symbols().any(|(_, s)| s == newest))
        };
        while !rebuilt() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(churn_secs)).await;
        // The fakes log every request for the tests; dropped here, the live heap is the exporter's.
        venue.forget_history();
        rest.forget_history();
        if generation % every == 0 {
            print(generation);
        }
    }
    if let Some((abuse, scraper)) = http {
        scraper.abort();
        abuse.stop();
    }
    running.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
