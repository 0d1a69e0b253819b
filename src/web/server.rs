//! The accept loop: plain HTTP or TLS on one listener, with bounds on connections, time and header size, and a
//! graceful drain on shutdown.
//!
//! Bounds, so a slow or hostile client cannot stall scrapes, probes or ingest: at most `max_per_peer` connections
//! from one address (more are closed at once, so one client cannot take the slots the kubelet's probes and
//! Prometheus need), at most `max_connections` in all (each holds a permit; past that, new ones wait in the
//! kernel's backlog); a first byte within `first_byte_timeout`, a TLS handshake and a request's headers within
//! theirs; a connection that moves no byte for `idle_timeout` is closed; headers over `max_header_bytes` get 431.
//! No route reads a request body. Ingest runs on its own tasks and shares nothing with this loop but the runtime.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;

use super::live::Live;
use crate::shutdown::stopped;

/// Bounds on what one client can hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Connections served at once from one address; more are closed as they arrive.
    pub max_per_peer: usize,
    /// From accept to the first byte of the request (or of the TLS handshake).
    pub first_byte_timeout: Duration,
    /// From accept to a finished TLS handshake.
    pub handshake_timeout: Duration,
    /// From the first byte of a request to the end of its headers (hyper's `header_read_timeout`).
    pub header_timeout: Duration,
    /// No byte read or written for this long closes the connection, idle keep-alive included.
    pub idle_timeout: Duration,
    /// The request line and headers together (hyper's read buffer; its minimum is 8 KiB).
    pub max_header_bytes: usize,
    /// How long open connections get to finish on shutdown.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 128,
            // Prometheus keeps one connection per target and the kubelet opens one per probe; a client needing
            // more than 16 at once is not one of them, and the rest of the slots stay for those that are.
            max_per_peer: 16,
            // A client that connects and says nothing is not a scraper; it may hold a slot this long at most.
            first_byte_timeout: Duration::from_secs(3),
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            // Longer than any usual scrape interval would close kept-alive scrape connections between scrapes
            // for nothing; shorter would cut a slow reader of a big /metrics too soon.
            idle_timeout: Duration::from_secs(90),
            max_header_bytes: 16 * 1024,
            drain_timeout: Duration::from_secs(3),
        }
    }
}

/// What a plain-HTTP client sees on the TLS port, as Go's `net/http` words it; better than a reset.
const PLAIN_HTTP_ON_TLS: &[u8] = b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";
/// The first byte of every TLS record that opens a handshake.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Serves `router` on `listener` until `stop` turns true, then lets open connections finish within the drain
/// timeout.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    live: Arc<Live>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let peers = Arc::new(Peers::default());
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = stopped(&mut stop) => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        let Some(slot) = peers.enter(peer.ip(), limits.max_per_peer) else {
            // Over its share: closed at once, and the permit goes straight back to everyone else.
            tracing::debug!(%peer, "too many connections from this address; closed");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            router: router.clone(),
            live: live.clone(),
            limits,
            stop: stop.clone(),
            peer,
            _permit: permit,
            _slot: slot,
        };
        tokio::spawn(PEER.scope(peer, connection.run(stream)));
    }
    drop(listener);
    // Every connection holds a permit until it ends, so holding them all means every connection is done.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(limits.drain_timeout, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("HTTP connections still open after the drain timeout");
    }
}

tokio::task_local! {
    /// The client of the connection being served, for code running inside its requests (the basic-auth guard).
    static PEER: SocketAddr;
}

/// The client address of the request being served; None outside a connection task.
pub fn current_peer() -> Option<SocketAddr> {
    PEER.try_with(|peer| *peer).ok()
}

/// Open connections per client address.
#[derive(Default)]
struct Peers(Mutex<HashMap<IpAddr, usize>>);

/// One connection's place in its address's count, given back on drop.
struct PeerSlot {
    peers: Arc<Peers>,
    ip: IpAddr,
}

impl Peers {
    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for one more connection from `ip`, or None when it already has `max`.
    fn enter(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<PeerSlot> {
        // An IPv4 client on the dual-stack socket arrives as ::ffff:a.b.c.d; count it once either way.
        let ip = ip.to_canonical();
        let mut counts = self.counts();
        let count = counts.entry(ip).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(PeerSlot {
            peers: self.clone(),
            ip,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut counts = self.peers.counts();
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

struct Connection {
    router: Router,
    live: Arc<Live>,
    limits: Limits,
    stop: watch::Receiver<bool>,
    peer: SocketAddr,
    _permit: OwnedSemaphorePermit,
    _slot: PeerSlot,
}

impl Connection {
    async fn run(self, stream: TcpStream) {
        // Nothing said within the first-byte deadline: not a client worth a slot.
        let mut first = [0u8; 1];
        match tokio::time::timeout(self.limits.first_byte_timeout, stream.peek(&mut first)).await {
            Ok(Ok(1..)) => {}
            Ok(_) => return,
            Err(_) => {
                tracing::debug!(peer = %self.peer, "no request within the first-byte deadline; closed");
                return;
            }
        }
        let settings = self.live.refresh();
        let Some(tls) = settings.tls.clone() else {
            let stream = Deadline::new(stream, self.limits.idle_timeout);
            return self.http(stream).await;
        };
        let handshake = async {
            if first[0] != TLS_HANDSHAKE_RECORD {
                let mut stream = stream;
                if first[0].is_ascii_uppercase() {
                    stream.write_all(PLAIN_HTTP_ON_TLS).await?;
                }
                stream.shutdown().await?;
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "not a TLS handshake",
                ));
            }
            TlsAcceptor::from(tls)
                .accept(Deadline::new(stream, self.limits.idle_timeout))
                .await
        };
        match tokio::time::timeout(self.limits.handshake_timeout, handshake).await {
            Ok(Ok(stream)) => self.http(stream).await,
            // Scanners and misconfigured clients are routine on an open port: debug, not warn.
            Ok(Err(e)) => tracing::debug!(peer = %self.peer, error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!(peer = %self.peer, "TLS handshake timed out"),
        }
    }

    async fn http<S>(mut self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout)
            .max_buf_size(self.limits.max_header_bytes.max(8192))
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(self.router));
        tokio::pin!(connection);
        let result = tokio::select! {
            result = connection.as_mut() => result,
            () = stopped(&mut self.stop) => {
                // Finish the request in flight, then close instead of keeping alive.
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(e) = result {
            tracing::debug!(peer = %self.peer, error = %e, "HTTP connection ended with an error");
        }
    }
}

/// A stream that fails with `TimedOut` once no byte has moved either way for `timeout`.
struct Deadline<S> {
    inner: S,
    timeout: Duration,
    sleep: Pin<Box<Sleep>>,
}

impl<S> Deadline<S> {
    fn new(inner: S, timeout: Duration) -> Self {
        Deadline {
            inner,
            timeout,
            sleep: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    fn progressed(&mut self) {
        self.sleep.as_mut().reset(Instant::now() + self.timeout);
    }

    fn expired<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        ready!(self.sleep.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "connection idle too long",
        )))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Deadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                self.progressed();
                Poll::Ready(result)
            }
            Poll::Pending => self.expired(cx),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(result) => {
                self.progressed();
                Poll::Ready(result)
            }
            Poll::Pending => self.expired(cx),
        }
    }

    // Vectored writes let hyper queue a large body (a 5 MB exposition) instead of copying it into its own
    // buffer, once per connection.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(result) => {
                self.progressed();
                Poll::Ready(result)
            }
            Poll::Pending => self.expired(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.expired(cx),
            ready => ready,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_shutdown(cx) {
            Poll::Pending => self.expired(cx),
            ready => ready,
        }
    }
}
