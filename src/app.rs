//! The one place that builds and wires everything: subscriptions and their sharding over connections, the
//! tracker, the feeds and the HTTP server; and the drain on shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::backoff::Backoff;
use crate::config::Config;
use crate::feed::{ConnectLimiter, Connection, FeedSettings, Stream};
use crate::http::{HttpState, router};
use crate::metrics::{BuildInfo, Metrics};
use crate::model::{Exchange, Subscription, Venue};
use crate::rest::{self, RestSettings, RestStats, RestTarget};
use crate::tracker::{ConnectionInfo, Tracker, unix_now};
use crate::venue::{self, Policy};

/// How long shutdown waits for feeds to close and HTTP to drain before giving up on them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Knobs that are not configuration: venue policy and feed timing. Tests shrink them; production uses
/// [`Tuning::default`].
#[derive(Clone)]
pub struct Tuning {
    /// The venue's limits and heartbeat.
    pub policy: Arc<dyn Fn(Venue) -> Policy + Send + Sync>,
    /// Reconnect backoff.
    pub backoff: Backoff,
    /// See [`FeedSettings::stable_after`].
    pub stable_after: Duration,
    /// See [`FeedSettings::connect_timeout`].
    pub connect_timeout: Duration,
    /// See [`FeedSettings::ack_timeout`].
    pub ack_timeout: Duration,
    /// See [`FeedSettings::tick`].
    pub tick: Duration,
    /// Whether to export `process_*` metrics (off in golden tests, whose output must not vary).
    pub process_metrics: bool,
    /// Cadences of the REST side.
    pub rest: RestSettings,
}

impl Default for Tuning {
    fn default() -> Self {
        let feed = FeedSettings::new(Duration::ZERO, Duration::ZERO);
        Self {
            policy: Arc::new(venue::policy),
            backoff: feed.backoff,
            stable_after: feed.stable_after,
            connect_timeout: feed.connect_timeout,
            ack_timeout: feed.ack_timeout,
            tick: feed.tick,
            process_metrics: true,
            rest: RestSettings::default(),
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

/// Expands the configuration into subscriptions (their index is their tracker slot) and shards them over
/// connections: one route per connection (USD-M `/public` vs `/market`), at most the venue's stream limit each.
pub fn plan(
    config: &Config,
    policy: &dyn Fn(Venue) -> Policy,
) -> (Vec<Subscription>, Vec<ConnectionPlan>) {
    let mut subscriptions = Vec::new();
    let mut connections = Vec::new();
    for vc in &config.venues {
        let max = policy(vc.venue).max_streams_per_connection.max(1);
        let mut by_route: Vec<(&'static str, Vec<Stream>)> = Vec::new();
        for symbol in &vc.symbols {
            for channel in &vc.channels {
                let route = venue::route(vc.venue, channel.kind);
                let stream = Stream {
                    key: venue::wire_key(vc.venue, &channel.name, symbol),
                    slot: subscriptions.len(),
                    kind: channel.kind,
                };
                match by_route.iter_mut().find(|(r, _)| *r == route) {
                    Some((_, streams)) => streams.push(stream),
                    None => by_route.push((route, vec![stream])),
                }
                subscriptions.push(Subscription {
                    venue: vc.venue,
                    channel: channel.clone(),
                    symbol: symbol.clone(),
                });
            }
        }
        let mut index = 0;
        for (route, streams) in by_route {
            for chunk in streams.chunks(max) {
                let url = format!("{}{route}", vc.url);
                connections.push(ConnectionPlan {
                    venue: vc.venue,
                    index,
                    url,
                    streams: chunk.to_vec(),
                });
                index += 1;
            }
        }
    }
    (subscriptions, connections)
}

/// A running exporter.
pub struct Running {
    /// The address HTTP is served on.
    pub addr: SocketAddr,
    /// The shared freshness state.
    pub tracker: Arc<Tracker>,
    stop: watch::Sender<bool>,
    feeds: Vec<JoinHandle<()>>,
    server: JoinHandle<std::io::Result<()>>,
}

/// Binds the listener, starts every feed and the HTTP server, and returns at once.
pub async fn start(config: &Config, tuning: Tuning) -> Result<Running, AppError> {
    // rustls needs a process-wide crypto provider; a second start in the same process finds it installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let policy = tuning.policy.as_ref();
    let (subscriptions, plans) = plan(config, policy);
    let infos = plans
        .iter()
        .map(|p| ConnectionInfo {
            venue: p.venue,
            index: p.index,
            slots: p.streams.iter().map(|s| s.slot).collect(),
        })
        .collect();
    let tracker = Arc::new(Tracker::new(
        subscriptions,
        infos,
        config.thresholds,
        unix_now(),
    ));
    let venues: Vec<Venue> = config.venues.iter().map(|v| v.venue).collect();
    let rest_stats = Arc::new(RestStats::new(&venues));
    let metrics = Metrics::new(
        tracker.clone(),
        rest_stats.clone(),
        BuildInfo::current(),
        tuning.process_metrics,
    )?;

    let listener = TcpListener::bind(config.listen_address)
        .await
        .map_err(|source| AppError::Bind {
            addr: config.listen_address,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| AppError::Bind {
        addr: config.listen_address,
        source,
    })?;
    let (stop, stopped) = watch::channel(false);

    let state = Arc::new(HttpState {
        tracker: tracker.clone(),
        metrics,
        telemetry_path: config.telemetry_path.clone(),
    });
    let mut http_stop = stopped.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, router(state))
            .with_graceful_shutdown(async move {
                let _ = http_stop.wait_for(|stop| *stop).await;
            })
            .await
    });

    let targets = config
        .venues
        .iter()
        .map(|v| RestTarget {
            venue: v.venue,
            base_url: v.rest_url.clone(),
            symbols: v.symbols.clone(),
        })
        .collect();
    let rest = rest::spawn(
        targets,
        tracker.clone(),
        rest_stats,
        tuning.rest.clone(),
        &stopped,
    )?;

    let mut limiters: HashMap<Exchange, Arc<ConnectLimiter>> = HashMap::new();
    let mut feeds: Vec<JoinHandle<()>> = plans
        .into_iter()
        .enumerate()
        .map(|(id, p)| {
            let policy = policy(p.venue);
            let limiter = limiters
                .entry(p.venue.exchange())
                .or_insert_with(|| {
                    Arc::new(ConnectLimiter::new(
                        policy.connect_burst,
                        policy.connect_refill,
                    ))
                })
                .clone();
            let connection = Connection {
                id,
                venue: p.venue,
                index: p.index,
                url: p.url,
                streams: p.streams,
                policy,
                settings: FeedSettings {
                    backoff: tuning.backoff,
                    stable_after: tuning.stable_after,
                    connect_timeout: tuning.connect_timeout,
                    ack_timeout: tuning.ack_timeout,
                    tick: tuning.tick,
                    ..FeedSettings::new(config.idle_timeout, config.resubscribe_after)
                },
                tracker: tracker.clone(),
                limiter,
            };
            tokio::spawn(connection.run(stopped.clone()))
        })
        .collect();
    feeds.extend(rest);
    tracing::info!(%addr, subscriptions = tracker.len(), "serving");
    Ok(Running {
        addr,
        tracker,
        stop,
        feeds,
        server,
    })
}

impl Running {
    /// Closes every feed cleanly and drains HTTP, each within a few seconds.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let feeds = futures_util::future::join_all(self.feeds);
        if tokio::time::timeout(DRAIN_TIMEOUT, feeds).await.is_err() {
            tracing::warn!("feeds did not close in time");
        }
        match tokio::time::timeout(DRAIN_TIMEOUT, self.server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "HTTP server ended with an error"),
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
