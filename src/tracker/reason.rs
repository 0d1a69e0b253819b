//! Why a session ended (`reason`) and why a connection attempt failed (`cause`): the bounded label values of
//! `marketfeed_reconnects_total` and `marketfeed_connect_failures_total`.

/// Why a connection ended; the `reason` label of `marketfeed_reconnects_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Planned rollover before the venue's 24 h connection limit, or the venue closing at that limit.
    Scheduled,
    /// The venue announced a shutdown (Binance `serverShutdown`).
    ServerShutdown,
    /// The venue closed the socket (close frame or end of stream).
    ServerClose,
    /// No data message at all on the connection for the idle timeout.
    IdleTimeout,
    /// The heartbeat deadline passed (no server ping, or no pong to our ping).
    HeartbeatTimeout,
    /// A subscribe request got no answer in time.
    SubscribeFailed,
    /// TCP, TLS or WebSocket handshake failed.
    HandshakeFailed,
    /// A transport error (reset, protocol violation, write failure).
    Error,
    /// The venue sent a frame the WebSocket layer cannot accept (a text frame that is not UTF-8, a message over
    /// the size bound); RFC 6455 says to fail the connection, and the library ends the stream.
    InvalidFrame,
}

impl Reason {
    /// Every reason, in label order; pre-initialised in metrics.
    pub const ALL: [Reason; 9] = [
        Reason::Scheduled,
        Reason::ServerShutdown,
        Reason::ServerClose,
        Reason::IdleTimeout,
        Reason::HeartbeatTimeout,
        Reason::SubscribeFailed,
        Reason::HandshakeFailed,
        Reason::Error,
        Reason::InvalidFrame,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Scheduled => "scheduled",
            Reason::ServerShutdown => "server_shutdown",
            Reason::ServerClose => "server_close",
            Reason::IdleTimeout => "idle_timeout",
            Reason::HeartbeatTimeout => "heartbeat_timeout",
            Reason::SubscribeFailed => "subscribe_failed",
            Reason::HandshakeFailed => "handshake_failed",
            Reason::Error => "error",
            Reason::InvalidFrame => "invalid_frame",
        }
    }

    /// Planned events (rollover, announced shutdown) are not incidents and skip the backoff.
    pub fn is_planned(self) -> bool {
        matches!(self, Reason::Scheduled | Reason::ServerShutdown)
    }
}

/// Why a connection attempt failed; the `cause` label of `marketfeed_connect_failures_total`. Bounded: HTTP
/// statuses are the only open part, and a venue answers a handshake with a handful of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cause {
    /// The host name did not resolve.
    Dns,
    /// Nothing listens on the port (TCP reset).
    Refused,
    /// A phase after the lookup (TCP, TLS, WebSocket upgrade) did not finish within the connect timeout.
    Timeout,
    /// The TLS handshake failed: certificate, protocol, or not TLS at all on the other side.
    Tls,
    /// The venue answered the WebSocket upgrade with this HTTP status (451 geo-block, 403, 429).
    Http(u16),
    /// The upgrade answer was not a valid WebSocket handshake.
    Protocol,
    /// Any other socket error (unreachable network, reset during the upgrade).
    Io,
}

impl Cause {
    /// The causes exported from startup at 0; `http_<status>` series appear with their first occurrence.
    pub const FIXED: [Cause; 6] = [
        Cause::Dns,
        Cause::Refused,
        Cause::Timeout,
        Cause::Tls,
        Cause::Protocol,
        Cause::Io,
    ];

    /// The label value: `dns`, `refused`, `timeout`, `tls`, `http_451`, `protocol`, `io`.
    pub fn label(self) -> std::borrow::Cow<'static, str> {
        match self {
            Cause::Dns => "dns".into(),
            Cause::Refused => "refused".into(),
            Cause::Timeout => "timeout".into(),
            Cause::Tls => "tls".into(),
            Cause::Http(status) => format!("http_{status}").into(),
            Cause::Protocol => "protocol".into(),
            Cause::Io => "io".into(),
        }
    }
}
