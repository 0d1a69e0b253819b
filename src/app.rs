//! The one place that builds and wires everything: subscriptions and their sharding over connections, the
//! tracker, the feeds and the HTTP server; and the drain on shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Config, VenueConfig};
use crate::feed::{ConnectLimiter, Connection, FeedSettings, Start, Stream};
use crate::freshness::Rules;
use crate::http::{HttpState, router};
use crate::metrics::{BuildInfo, Metrics};
use crate::model::{Exchange, Subscription, Venue};
use crate::repeat::Outages;
use crate::rest::{self, Rest, RestSettings, RestStats, RestTarget};
use crate::shard::Shard;
use crate::shutdown::stopped;
use crate::supervise::{self, Task};
use crate::tracker::{ConnectionInfo, Listing, Tracker, Trackers, unix_now};
use crate::venue::{self, Policy};
use crate::web::{self, Limits, Live, WebConfigError};

/// How long shutdown waits for feeds to close and HTTP to drain before giving up on them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Knobs that are not configuration: venue policy and feed timing. Tests shrink them; production uses
/// [`Tuning::default`].
#[derive(Clone)]
pub struct Tuning {
    /// The venue's limits and heartbeat.
    pub policy: Arc<dyn Fn(Venue) -> Policy + Send + Sync>,
    /// Feed timing; its `idle_timeout` and `resubscribe_after` are the configuration's and are replaced by it.
    pub feed: FeedSettings,
    /// Whether to export `process_*` metrics (off in golden tests, whose output must not vary).
    pub process_metrics: bool,
    /// Cadences of the REST side.
    pub rest: RestSettings,
    /// Bounds on HTTP clients.
    pub web_limits: Limits,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            policy: Arc::new(venue::policy),
            feed: FeedSettings::new(Duration::ZERO, Duration::ZERO),
            process_metrics: true,
            rest: RestSettings::default(),
            web_limits: Limits::default(),
        }
    }
}

/// Failures that stop the exporter from starting.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The metric registry refused a collector (a bug: names collide).
    #[error("metrics registry: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The REST client could not be built (its TLS configuration).
    #[error("REST client: {0}")]
    Rest(#[from] reqwest::Error),
    /// The web configuration's files changed between the check and the start, and no longer load.
    #[error("--web.config.file: {0}")]
    Web(#[from] WebConfigError),
}

/// One connection to open: its venue, index, URL and streams.
#[derive(Debug, Clone)]
pub struct ConnectionPlan {
    /// The venue.
    pub venue: Venue,
    /// Index within the venue.
    pub index: usize,
    /// Full URL with the route.
    pub url: String,
    /// What it carries.
    pub streams: Vec<Stream>,
}

impl ConnectionPlan {
    /// What the tracker keeps of it: venue, index and slots.
    pub fn info(&self) -> ConnectionInfo {
        ConnectionInfo {
            venue: self.venue,
            index: self.index,
            slots: self.streams.iter().map(|s| s.slot).collect(),
        }
    }
}

/// Expands one venue's symbols into subscriptions (their index is their tracker slot) and shards them over
/// connections: one route per connection (USD-M `/public` vs `/market`), at most the venue's stream limit each.
pub fn plan(
    venue: &VenueConfig,
    symbols: &[String],
    policy: &Policy,
) -> (Vec<Subscription>, Vec<ConnectionPlan>) {
    let max = policy.max_streams_per_connection.max(1);
    let mut subscriptions = Vec::new();
    let mut by_route: Vec<(&'static str, Vec<Stream>)> = Vec::new();
    for symbol in symbols {
        // One name per symbol, shared by its subscriptions and the tracker.
        let symbol: Arc<str> = symbol.as_str().into();
        for channel in &venue.channels {
            let route = venue::route(venue.venue, channel.kind);
            let stream = Stream {
                key: venue::wire_key(venue.venue, &channel.name, &symbol),
                slot: subscriptions.len(),
                kind: channel.kind,
            };
            match by_route.iter_mut().find(|(r, _)| *r == route) {
                Some((_, streams)) => streams.push(stream),
                None => by_route.push((route, vec![stream])),
            }
            subscriptions.push(Subscription {
                venue: venue.venue,
                channel: channel.clone(),
                symbol: symbol.clone(),
            });
        }
    }
    let mut connections = Vec::new();
    for (route, streams) in by_route {
        // Moved into their connections, not copied.
        let mut streams = streams.into_iter().peekable();
        while streams.peek().is_some() {
            connections.push(ConnectionPlan {
                venue: venue.venue,
                index: connections.len(),
                url: format!("{}{route}", venue.url),
                streams: streams.by_ref().take(max).collect(),
            });
        }
    }
    (subscriptions, connections)
}

/// A running exporter.
pub struct Running {
    /// The address HTTP is served on.
    pub addr: SocketAddr,
    /// The freshness state, one tracker per venue.
    pub trackers: Arc<Trackers>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    server: JoinHandle<()>,
}

/// Everything needed to (re)start one venue's feeds.
#[derive(Clone)]
struct VenueRunner {
    config: VenueConfig,
    /// `MARKETFEED_SHARD`, applied to each listing of a `*` market.
    shard: Option<Shard>,
    rules: Rules,
    policy: Policy,
    settings: FeedSettings,
    limiter: Arc<ConnectLimiter>,
    trackers: Arc<Trackers>,
    outages: Arc<Outages>,
}

impl VenueRunner {
    /// This process's part of a listing: all of it, or its shard's symbols.
    fn shard_part(&self, mut symbols: Vec<String>) -> Vec<String> {
        crate::shard::retain_part(self.shard, &mut symbols);
        symbols
    }

    /// Builds the venue's tracker for `symbols` (carrying over what `previous` knew of them) and starts one feed
    /// per planned connection, each stopping when `shutdown` turns true. Live, the tracker is registered at once;
    /// in `shadow`, the feeds connect and subscribe but record nothing until it turns true, the tracker is left to
    /// the caller to register, and each feed's readiness comes back as a receiver.
    fn launch(
        &self,
        symbols: &[String],
        previous: Option<&Tracker>,
        shutdown: &watch::Receiver<bool>,
        shadow: Option<&watch::Receiver<bool>>,
    ) -> (
        Arc<Tracker>,
        Vec<JoinHandle<()>>,
        Vec<watch::Receiver<bool>>,
    ) {
        let (subscriptions, plans) = plan(&self.config, symbols, &self.policy);
        let infos = plans.iter().map(ConnectionPlan::info).collect();
        let tracker = Tracker::new(subscriptions, infos, self.rules, unix_now())
            .with_clock(self.trackers.clock());
        if let Some(previous) = previous {
            tracker.inherit(previous);
        }
        let tracker = Arc::new(tracker);
        if shadow.is_none() {
            self.trackers.set(self.config.venue, tracker.clone());
        }
        let mut readies = Vec::new();
        let feeds = plans
            .into_iter()
            .enumerate()
            .map(|(id, p)| {
                let start = match shadow {
                    None => Start::Live,
                    Some(live) => {
                        let (ready, ready_rx) = watch::channel(false);
                        readies.push(ready_rx);
                        Start::Shadow {
                            live: live.clone(),
                            ready: Arc::new(ready),
                        }
                    }
                };
                let connection = Connection {
                    id,
                    venue: p.venue,
                    index: p.index,
                    url: p.url,
                    streams: p.streams,
                    policy: self.policy.clone(),
                    settings: self.settings.clone(),
                    tracker: tracker.clone(),
                    limiter: self.limiter.clone(),
                    outages: self.outages.clone(),
                };
                let connection = Arc::new(connection);
                let mut first = Some(start);
                let stop = shutdown.clone();
                supervise::spawn(
                    Task::Feed,
                    connection.name(),
                    self.trackers.restarts(),
                    shutdown.clone(),
                    move |restarted| {
                        let connection = connection.clone();
                        // A shadow start is the first run's; a restart records at once.
                        let start = first.take().unwrap_or(Start::Live);
                        let stop = stop.clone();
                        async move {
                            if restarted > 0 {
                                connection.panicked();
                            }
                            connection.run(start, stop).await;
                        }
                    },
                )
            })
            .collect();
        (tracker, feeds, readies)
    }

    /// For `*`: watches every symbol the venue lists as trading. Each time the listing changes, a new set of
    /// feeds and a new tracker are built for it (continuing symbols keep their state, delisted ones leave
    /// /metrics); make before break: the new feeds subscribe and deliver while the old ones still record, then the
    /// new tracker takes over and the old feeds are stopped.
    async fn follow_listing(
        self,
        rest: Rest,
        interval: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let venue = self.config.venue;
        let mut current: Option<Generation> = None;
        let mut reported_unreadable = false;
        loop {
            let listing = tokio::select! {
                listing = rest.trading_symbols(venue) => listing,
                () = stopped(&mut shutdown) => break,
            };
            // Whether the venue listed anything at all, and this process's part of it (possibly none).
            let listing = listing.map(|all| (!all.is_empty(), self.shard_part(all)));
            let unchanged =
                current.as_ref().map(|g| &g.symbols) == listing.as_ref().map(|(_, mine)| mine);
            match listing {
                Some((true, symbols)) if !unchanged => {
                    let (added, removed) = match &current {
                        Some(old) => (
                            symbols.iter().filter(|s| !old.symbols.contains(s)).count(),
                            old.symbols.iter().filter(|s| !symbols.contains(s)).count(),
                        ),
                        None => (symbols.len(), 0),
                    };
                    let previous = self.trackers.get(venue);
                    let (stop, generation) = watch::channel(false);
                    let feeds = match current.take() {
                        None => {
                            self.launch(&symbols, previous.as_deref(), &generation, None)
                                .1
                        }
                        // Make before break: the new set's connections subscribe and prove they deliver while
                        // the old ones still record; then the new tracker takes over and the old feeds close.
                        Some(old) => {
                            let (live, live_rx) = watch::channel(false);
                            let (tracker, feeds, readies) = self.launch(
                                &symbols,
                                previous.as_deref(),
                                &generation,
                                Some(&live_rx),
                            );
                            // A feed whose task ended (shutdown) drops its flag: nothing left to wait for.
                            let all_ready = futures_util::future::join_all(
                                readies.into_iter().map(|mut ready| async move {
                                    let _ = ready.wait_for(|ready| *ready).await;
                                }),
                            );
                            let ready = tokio::time::timeout(HANDOVER_WAIT, all_ready);
                            tokio::select! {
                                ready = ready => if ready.is_err() {
                                    tracing::warn!(
                                        %venue, waited = %crate::repeat::human(HANDOVER_WAIT),
                                        "the new set's connections were not all delivering in time; switching anyway"
                                    );
                                },
                                () = stopped(&mut shutdown) => {
                                    let _ = stop.send(true);
                                    drain(feeds).await;
                                    old.stop().await;
                                    break;
                                }
                            }
                            // What the old feeds recorded meanwhile, then the switch.
                            if let Some(previous) = self.trackers.get(venue) {
                                tracker.inherit(&previous);
                            }
                            self.trackers.set(venue, tracker);
                            let _ = live.send(true);
                            old.stop().await;
                            // Two sets of connections and trackers lived side by side for a moment; give the
                            // freed peak back rather than keep it for the process's life.
                            crate::memory::release_free_memory();
                            feeds
                        }
                    };
                    // Every symbol of the set came from the trading listing just read.
                    if let Some(tracker) = self.trackers.get(venue) {
                        for symbol in &symbols {
                            tracker.set_listing(venue, symbol, Listing::Trading);
                        }
                    }
                    tracing::info!(%venue, symbols = symbols.len(), added, removed, "following the venue's listing");
                    current = Some(Generation {
                        symbols,
                        stop,
                        feeds,
                    });
                }
                Some((false, _)) => {
                    tracing::warn!(%venue, "the venue lists no trading symbol; keeping the current set")
                }
                Some(_) => {}
                // The REST failure itself is logged (and summarised) by the REST side; say once what it means here.
                None if current.is_none() && !std::mem::replace(&mut reported_unreadable, true) => {
                    tracing::warn!(%venue, "cannot read the venue's listing yet: watching none of its symbols until it can")
                }
                None => {}
            }
            // Until a first listing arrives the venue watches nothing: retry sooner than the refresh cadence.
            let wait = if current.is_none() {
                interval.min(Duration::from_secs(30))
            } else {
                interval
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stopped(&mut shutdown) => break,
            }
        }
        if let Some(current) = current {
            current.stop().await;
        }
    }
}

/// One symbol set of a `*` venue and the feeds serving it.
struct Generation {
    symbols: Vec<String>,
    stop: watch::Sender<bool>,
    feeds: Vec<JoinHandle<()>>,
}

impl Generation {
    /// Closes its feeds and waits for them.
    async fn stop(self) {
        let _ = self.stop.send(true);
        drain(self.feeds).await;
    }
}

/// How long a `*` market's new connections may take to subscribe and deliver before they take over anyway.
const HANDOVER_WAIT: Duration = Duration::from_secs(60);

/// Waits for tasks to end, at most [`DRAIN_TIMEOUT`]; one that failed is logged, not discarded.
async fn drain(tasks: Vec<JoinHandle<()>>) {
    match tokio::time::timeout(DRAIN_TIMEOUT, futures_util::future::join_all(tasks)).await {
        Ok(ended) => {
            for error in ended.into_iter().filter_map(Result::err) {
                tracing::error!(error = %error, "a task failed while stopping");
            }
        }
        Err(_) => tracing::warn!("tasks did not stop in time"),
    }
}

/// Binds the listener, starts every feed, the REST side and the HTTP server, and returns at once.
pub async fn start(config: &Config, tuning: Tuning) -> Result<Running, AppError> {
    // rustls needs a process-wide crypto provider; a second start in the same process finds it installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let trackers = Arc::new(Trackers::new());
    if let Some(shard) = config.shard {
        trackers.set_shard(shard);
    }
    let venues: Vec<Venue> = config.venues.iter().map(|v| v.venue).collect();
    let rest_stats = Arc::new(RestStats::new(&venues));
    let metrics = Metrics::new(
        trackers.clone(),
        rest_stats.clone(),
        BuildInfo::current(),
        tuning.process_metrics,
    )?;

    let listener = web::listen(config.listen_address).map_err(|source| AppError::Bind {
        addr: config.listen_address,
        source,
    })?;
    let addr = listener.local_addr().map_err(|source| AppError::Bind {
        addr: config.listen_address,
        source,
    })?;
    let (stop, stopped) = watch::channel(false);

    let state = Arc::new(HttpState::new(
        trackers.clone(),
        metrics,
        config.telemetry_path.clone(),
    ));
    let live = Arc::new(Live::new(config.web.as_ref())?);
    let server = tokio::spawn(web::serve(
        listener,
        web::secure(router(state), live.clone()),
        live,
        tuning.web_limits,
        stopped.clone(),
    ));

    let targets = config
        .venues
        .iter()
        .map(|v| RestTarget {
            venue: v.venue,
            base_url: v.rest_url.clone(),
            follows_listing: v.all_symbols,
        })
        .collect();
    let outages = Arc::new(Outages::default());
    let (rest, mut tasks) = rest::spawn(
        targets,
        trackers.clone(),
        rest_stats,
        tuning.rest.clone(),
        outages.clone(),
        &stopped,
    )?;

    tasks.push(tokio::spawn(crate::memory::trim_periodically(
        stopped.clone(),
    )));

    let mut limiters: HashMap<Exchange, Arc<ConnectLimiter>> = HashMap::new();
    for vc in &config.venues {
        let policy = (tuning.policy)(vc.venue);
        let limiter = limiters
            .entry(vc.venue.exchange())
            .or_insert_with(|| {
                Arc::new(ConnectLimiter::new(
                    policy.connect_burst,
                    policy.connect_refill,
                ))
            })
            .clone();
        let runner = VenueRunner {
            config: vc.clone(),
            rules: config.rules(vc),
            shard: config.shard,
            policy,
            settings: FeedSettings {
                idle_timeout: config.idle_timeout,
                resubscribe_after: config.resubscribe_after,
                ..tuning.feed.clone()
            },
            limiter,
            trackers: trackers.clone(),
            outages: outages.clone(),
        };
        if vc.all_symbols {
            // An empty tracker until the first listing arrives, so the venue is known to the API and metrics.
            runner.launch(&[], None, &stopped, None);
            let interval = tuning.rest.discovery_interval;
            let follow = stopped.clone();
            let rest = rest.clone();
            tasks.push(supervise::spawn(
                Task::Listing,
                vc.venue.to_string(),
                trackers.restarts(),
                stopped.clone(),
                move |_| {
                    runner
                        .clone()
                        .follow_listing(rest.clone(), interval, follow.clone())
                },
            ));
        } else {
            tasks.extend(runner.launch(&vc.symbols, None, &stopped, None).1);
        }
    }
    let subscriptions: usize = trackers.all().iter().map(|t| t.len()).sum();
    tracing::info!(%addr, subscriptions, "serving");
    Ok(Running {
        addr,
        trackers,
        stop,
        tasks,
        server,
    })
}

impl Running {
    /// Closes every feed cleanly, stops the REST side and drains HTTP, each within a few seconds.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        drain(self.tasks).await;
        match tokio::time::timeout(DRAIN_TIMEOUT, self.server).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "HTTP server task failed"),
            Err(_) => tracing::warn!("HTTP did not drain in time"),
        }
    }
}

/// Runs until `signal` resolves, then stops cleanly.
pub async fn run(
    config: &Config,
    tuning: Tuning,
    signal: impl Future<Output = ()>,
) -> Result<(), AppError> {
    let running = start(config, tuning).await?;
    signal.await;
    tracing::info!("shutting down");
    running.stop().await;
    Ok(())
}
