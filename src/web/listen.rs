//! Binding the listener: `[::]` (what `:port` means) accepts IPv6 and IPv4 alike, as a Go exporter's `:port` does.
//!
//! Owns the socket options only; serving is [`super::serve`]'s.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;

/// Pending connections the kernel queues before `accept`, as Go's listeners ask for.
const BACKLOG: i32 = 1024;

/// Binds `addr`. The IPv6 wildcard `[::]` is bound dual-stack (`IPV6_V6ONLY` off, whatever the host's default),
/// so IPv4 clients reach it as mapped addresses; on a host without IPv6 it falls back to `0.0.0.0` on the same port.
/// Every other address is bound as given.
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    if !(addr.is_ipv6() && addr.ip().is_unspecified()) {
        return bind(addr, None);
    }
    match bind(addr, Some(false)) {
        Err(e) if ipv6_unavailable(&e) => {
            let v4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, addr.port()));
            tracing::info!(%addr, fallback = %v4, error = %e, "no IPv6 on this host; listening on IPv4 only");
            bind(v4, None)
        }
        result => result,
    }
}

fn bind(addr: SocketAddr, only_v6: Option<bool>) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if let Some(only_v6) = only_v6 {
        socket.set_only_v6(only_v6)?;
    }
    // As tokio's own bind does: a restart must not wait for the previous process's TIME_WAIT sockets.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    TcpListener::from_std(socket.into())
}

/// The errors of a host whose kernel has IPv6 disabled or no IPv6 address at all.
fn ipv6_unavailable(e: &io::Error) -> bool {
    const EAFNOSUPPORT: i32 = 97;
    matches!(
        e.kind(),
        io::ErrorKind::AddrNotAvailable | io::ErrorKind::Unsupported
    ) || e.raw_os_error() == Some(EAFNOSUPPORT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;
    use tokio::net::TcpStream;

    /// `[::]` takes both families on one port; an IPv4 address stays IPv4 only.
    #[tokio::test]
    async fn the_ipv6_wildcard_accepts_ipv4_too() {
        let listener = listen(SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))).unwrap();
        let port = listener.local_addr().unwrap().port();
        for client in [
            SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
        ] {
            let connect = TcpStream::connect(client);
            let (connected, accepted) = tokio::join!(connect, listener.accept());
            assert!(connected.is_ok() && accepted.is_ok(), "{client}");
        }

        let v4 = listen(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
        let port = v4.local_addr().unwrap().port();
        assert!(
            TcpStream::connect(SocketAddr::from((Ipv6Addr::LOCALHOST, port)))
                .await
                .is_err(),
            "127.0.0.1 is not [::1]"
        );
    }

    #[test]
    fn a_taken_port_is_an_error_not_a_fallback() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        runtime.block_on(async {
            let first = listen(SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))).unwrap();
            let port = first.local_addr().unwrap().port();
            let second = listen(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)));
            assert_eq!(second.unwrap_err().kind(), io::ErrorKind::AddrInUse);
            let v4 = listen(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)));
            assert_eq!(
                v4.unwrap_err().kind(),
                io::ErrorKind::AddrInUse,
                "dual-stack holds the IPv4 port too"
            );
        });
    }
}
