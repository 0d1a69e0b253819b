//! Opening a WebSocket one phase at a time (lookup, TCP, TLS, upgrade), so a failure names its [`Cause`].
//!
//! `connect_async` folds every phase into one error whose text is all an operator would get; here each phase
//! has its own error and the shared deadline tells a slow phase from a refusing one.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Response;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::tracker::Cause;

/// An open WebSocket to a venue.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A failed attempt: its bounded cause and one readable sentence of detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectError {
    /// The label value's source.
    pub cause: Cause,
    /// What happened, root cause included, without the URL (the caller logs it).
    pub detail: String,
}

impl ConnectError {
    fn new(cause: Cause, detail: impl Into<String>) -> Self {
        Self {
            cause,
            detail: detail.into(),
        }
    }
}

/// Opens `url` (`ws://` or `wss://`), giving every phase together at most `limit`.
pub async fn connect(
    url: &str,
    config: WebSocketConfig,
    limit: Duration,
) -> Result<(Socket, Response), ConnectError> {
    let deadline = Instant::now() + limit;
    let request = url
        .into_client_request()
        .map_err(|e| ConnectError::new(Cause::Protocol, format!("invalid URL: {e}")))?;
    let uri = request.uri();
    let tls = match uri.scheme_str() {
        Some("wss") => true,
        Some("ws") => false,
        _ => {
            return Err(ConnectError::new(
                Cause::Protocol,
                "not a ws:// or wss:// URL",
            ));
        }
    };
    // `Uri::host` keeps the brackets of an IPv6 literal; the resolver and TLS want the bare address.
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });

    let addrs: Vec<SocketAddr> =
        match timeout_at(deadline, tokio::net::lookup_host((host.as_str(), port))).await {
            Err(_) => {
                return Err(ConnectError::new(
                    Cause::Dns,
                    format!("looking up {host} timed out"),
                ));
            }
            Ok(Err(e)) => {
                return Err(ConnectError::new(
                    Cause::Dns,
                    format!("looking up {host}: {e}"),
                ));
            }
            Ok(Ok(addrs)) => addrs.collect(),
        };
    let tcp = open_tcp(&host, &addrs, deadline).await?;
    // Frames are small and latency is the product: no Nagle.
    let _ = tcp.set_nodelay(true);

    let stream = if tls {
        let name = ServerName::try_from(host.clone()).map_err(|_| {
            ConnectError::new(Cause::Tls, format!("{host} is not a valid TLS server name"))
        })?;
        let connector = tokio_rustls::TlsConnector::from(tls_config()?);
        match timeout_at(deadline, connector.connect(name, tcp)).await {
            Err(_) => return Err(ConnectError::new(Cause::Timeout, "TLS handshake timed out")),
            Ok(Err(e)) => {
                return Err(ConnectError::new(
                    Cause::Tls,
                    format!("TLS handshake failed: {e}"),
                ));
            }
            Ok(Ok(stream)) => MaybeTlsStream::Rustls(stream),
        }
    } else {
        MaybeTlsStream::Plain(tcp)
    };

    match timeout_at(
        deadline,
        tokio_tungstenite::client_async_with_config(request, stream, Some(config)),
    )
    .await
    {
        Err(_) => Err(ConnectError::new(
            Cause::Timeout,
            "WebSocket upgrade unanswered",
        )),
        Ok(Ok(opened)) => Ok(opened),
        Ok(Err(e)) => Err(upgrade_failed(e)),
    }
}

/// Tries each resolved address in turn, as browsers and `connect_async` do.
async fn open_tcp(
    host: &str,
    addrs: &[SocketAddr],
    deadline: Instant,
) -> Result<TcpStream, ConnectError> {
    let mut failure = ConnectError::new(Cause::Dns, format!("{host} resolved to no address"));
    for &addr in addrs {
        match timeout_at(deadline, TcpStream::connect(addr)).await {
            Err(_) => {
                return Err(ConnectError::new(
                    Cause::Timeout,
                    format!("TCP connect to {addr} timed out"),
                ));
            }
            Ok(Ok(tcp)) => return Ok(tcp),
            Ok(Err(e)) => {
                let cause = match e.kind() {
                    std::io::ErrorKind::ConnectionRefused => Cause::Refused,
                    std::io::ErrorKind::TimedOut => Cause::Timeout,
                    _ => Cause::Io,
                };
                failure = ConnectError::new(cause, format!("TCP connect to {addr}: {e}"));
            }
        }
    }
    Err(failure)
}

fn upgrade_failed(error: WsError) -> ConnectError {
    match error {
        WsError::Http(response) => {
            let status = response.status();
            let body = response
                .body()
                .as_deref()
                .map(|b| {
                    String::from_utf8_lossy(&b[..b.len().min(200)])
                        .trim()
                        .to_owned()
                })
                .filter(|b| !b.is_empty());
            let mut detail = format!("the venue refused the WebSocket upgrade with HTTP {status}");
            if let Some(body) = body {
                detail.push_str(&format!(": {body}"));
            }
            ConnectError::new(Cause::Http(status.as_u16()), detail)
        }
        WsError::Io(e) => {
            ConnectError::new(Cause::Io, format!("during the WebSocket upgrade: {e}"))
        }
        WsError::Tls(e) => ConnectError::new(Cause::Tls, format!("TLS: {e}")),
        e @ (WsError::Protocol(_)
        | WsError::HttpFormat(_)
        | WsError::Url(_)
        | WsError::Capacity(_)
        | WsError::Utf8(_)
        | WsError::AttackAttempt
        | WsError::ConnectionClosed
        | WsError::AlreadyClosed
        | WsError::WriteBufferFull(_)) => {
            ConnectError::new(Cause::Protocol, format!("not a WebSocket answer: {e}"))
        }
    }
}

/// The TLS client configuration: Mozilla's roots (the webpki-roots bundle tokio-tungstenite would use), built
/// once per process.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, ConnectError> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|builder| {
                    Arc::new(builder.with_root_certificates(roots).with_no_client_auth())
                })
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| ConnectError::new(Cause::Tls, format!("TLS client setup failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_upgrade_names_its_status_and_body() {
        let response = tokio_tungstenite::tungstenite::http::Response::builder()
            .status(451)
            .body(Some(
                b"Service unavailable from a restricted location".to_vec(),
            ))
            .unwrap();
        let e = upgrade_failed(WsError::Http(Box::new(response)));
        assert_eq!(e.cause, Cause::Http(451));
        assert_eq!(e.cause.label(), "http_451");
        assert!(
            e.detail.contains("451 Unavailable For Legal Reasons"),
            "{}",
            e.detail
        );
        assert!(e.detail.ends_with("restricted location"), "{}", e.detail);
    }

    #[tokio::test]
    async fn a_closed_port_is_refused_and_an_invalid_name_is_dns() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let config = WebSocketConfig::default();
        let e = connect(
            &format!("ws://127.0.0.1:{port}/"),
            config,
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert_eq!(e.cause, Cause::Refused, "{}", e.detail);
        // RFC 6761: .invalid never resolves; a local resolver answers at once.
        let e = connect(
            "wss://no-such-venue.invalid/ws",
            config,
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert_eq!(e.cause, Cause::Dns, "{}", e.detail);
        assert!(
            e.detail.starts_with("looking up no-such-venue.invalid"),
            "{}",
            e.detail
        );
    }
}
