//! The HTTP abuse mix: silent connections, slowloris, greedy scrapers and a password guesser, each from its own
//! loopback source address (all of 127.0.0.0/8 is loopback), so the exporter sees them as the distinct clients
//! they would be in a cluster. Used by `tests/security.rs` and the `http_abuse` example.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;

/// `127.0.0.<last>`.
pub fn source(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// A TCP connection to `to` from the local address `from`.
pub async fn connect_from(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(to).await
}

/// An `Authorization` header line for basic auth.
pub fn basic(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Authorization: Basic {token}\r\n")
}

/// One GET on a fresh connection from `from`; the status, or None on any error.
pub async fn request(from: IpAddr, to: SocketAddr, path: &str, auth: &str) -> Option<u16> {
    let mut stream = connect_from(from, to).await.ok()?;
    let text = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(text.as_bytes()).await.ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.ok()?;
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest).await;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// How much of each attack.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Connections that never send a byte, from 127.0.0.2.
    pub silent: usize,
    /// Connections that send one header line every 3 s, from 127.0.0.3.
    pub slowloris: usize,
    /// Concurrent authorised scrapes in a loop, from 127.0.0.4.
    pub scrapers: usize,
    /// Concurrent wrong-password requests in a loop, from 127.0.0.5.
    pub guessers: usize,
    /// Each scraper and guesser waits this long between requests (zero: as fast as answered).
    pub pause: Duration,
}

impl Default for Sizes {
    fn default() -> Self {
        Sizes {
            silent: 200,
            slowloris: 200,
            scrapers: 1000,
            guessers: 160,
            pause: Duration::ZERO,
        }
    }
}

/// A running mix; every attacker reopens its connection when the exporter closes it.
pub struct Mix {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
    /// Greedy scrapes answered (any status).
    pub scrapes: Arc<AtomicU64>,
    /// Statuses of guesses answered: 401 and 429.
    pub denied: Arc<AtomicU64>,
    pub busy: Arc<AtomicU64>,
}

impl Mix {
    /// Starts every attack against `addr`; `auth` is the scrapers' valid header line, `wrong` the guessers'.
    pub fn start(addr: SocketAddr, sizes: Sizes, auth: &str, wrong: &str) -> Mix {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for (from, count, slow) in [
            (source(2), sizes.silent, false),
            (source(3), sizes.slowloris, true),
        ] {
            for _ in 0..count {
                let stop = stop.clone();
                tasks.push(tokio::spawn(async move {
                    while !stop.load(Relaxed) {
                        let Ok(mut stream) = connect_from(from, addr).await else {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        };
                        let mut buf = [0u8; 64];
                        if slow {
                            let _ = stream
                                .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                                .await;
                            while !stop.load(Relaxed) {
                                tokio::time::sleep(Duration::from_secs(3)).await;
                                if stream.write_all(b"X-Slow: 1\r\n").await.is_err() {
                                    break;
                                }
                            }
                        } else {
                            // Until the exporter closes it.
                            let _ = tokio::time::timeout(
                                Duration::from_secs(60),
                                stream.read(&mut buf),
                            )
                            .await;
                        }
                    }
                }));
            }
        }
        let scrapes = Arc::new(AtomicU64::new(0));
        let denied = Arc::new(AtomicU64::new(0));
        let busy = Arc::new(AtomicU64::new(0));
        for _ in 0..sizes.scrapers {
            let (stop, auth, scrapes) = (stop.clone(), auth.to_owned(), scrapes.clone());
            let pause = sizes.pause;
            tasks.push(tokio::spawn(async move {
                while !stop.load(Relaxed) {
                    if request(source(4), addr, "/metrics", &auth).await.is_some() {
                        scrapes.fetch_add(1, Relaxed);
                    } else {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    tokio::time::sleep(pause).await;
                }
            }));
        }
        for _ in 0..sizes.guessers {
            let (stop, wrong) = (stop.clone(), wrong.to_owned());
            let (denied, busy) = (denied.clone(), busy.clone());
            let pause = sizes.pause;
            tasks.push(tokio::spawn(async move {
                while !stop.load(Relaxed) {
                    tokio::time::sleep(pause).await;
                    match request(source(5), addr, "/metrics", &wrong).await {
                        Some(401) => {
                            denied.fetch_add(1, Relaxed);
                        }
                        Some(429) => {
                            busy.fetch_add(1, Relaxed);
                        }
                        _ => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            }));
        }
        Mix {
            stop,
            tasks,
            scrapes,
            denied,
            busy,
        }
    }

    /// Stops every attacker and closes its connections.
    pub fn stop(self) {
        self.stop.store(true, Relaxed);
        for task in self.tasks {
            task.abort();
        }
    }
}

/// One uncompressed scrape of `/metrics` from loopback; empty when it fails.
pub async fn scrape_text(to: SocketAddr, auth: &str) -> String {
    let mut body = String::new();
    let Ok(mut stream) = TcpStream::connect(to).await else {
        return body;
    };
    let text = format!("GET /metrics HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n");
    if stream.write_all(text.as_bytes()).await.is_ok() {
        let _ = stream.read_to_string(&mut body).await;
    }
    body
}

/// The sum of a family's samples in an exposition.
pub fn family_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The sum of `marketfeed_messages_total` in one scrape (0 when it fails): the exporter's ingest so far.
pub async fn messages_total(to: SocketAddr, auth: &str) -> f64 {
    family_sum(&scrape_text(to, auth).await, "marketfeed_messages_total")
}

/// The examples' arguments: the binary (the release build by default) and the run's length in seconds.
pub fn example_args(default_seconds: u64) -> (String, u64) {
    let args: Vec<String> = std::env::args().collect();
    let binary = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "target/release/marketfeed_exporter".to_owned());
    let seconds = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_seconds);
    (binary, seconds)
}

/// Writes a web configuration in `dir` granting each of `users` the `password` (bcrypt cost 10); its path.
pub fn basic_auth_file(
    dir: &std::path::Path,
    users: &[&str],
    password: &str,
) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let hash = bcrypt::hash(password, 10).unwrap();
    let mut text = String::from("basic_auth_users:\n");
    for user in users {
        text.push_str(&format!("  {user}: '{hash}'\n"));
    }
    let path = dir.join("web.yml");
    std::fs::write(&path, text).unwrap();
    path
}
