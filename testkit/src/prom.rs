//! Real Prometheus and Alertmanager processes (Debian's `prometheus` and `prometheus-alertmanager`) on
//! loopback, in throw-away directories, plus a webhook receiver that records what Alertmanager sends.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::http::get;

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh directory under the system temp dir.
    pub fn new(name: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("marketfeed-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `contents` to `name` inside and returns the full path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Replaces `name` inside by writing a sibling and renaming it over, the way a Kubernetes Secret update lands
    /// (a new inode, never a half-written file).
    pub fn replace(&self, name: &str, contents: &str) -> PathBuf {
        let tmp = self.write(&format!(".{name}.new"), contents);
        let path = self.0.join(name);
        std::fs::rename(&tmp, &path).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free loopback port (bound and released; good enough on a test machine).
pub fn free_addr() -> SocketAddr {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A child process killed on drop, with its output in a log file for failure messages.
pub struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Process {
    /// The process's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn wait_ready(self) -> Self {
        for _ in 0..300 {
            if let Some((200, _)) = try_get(self.addr, "/-/ready").await {
                return self;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{} did not become ready:\n{}", self.name, self.log());
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET that tolerates a refused connection (the process may still be starting).
async fn try_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    tokio::net::TcpStream::connect(addr).await.ok()?;
    Some(get(addr, path).await)
}

fn spawn(
    name: &'static str,
    program: &str,
    args: &[String],
    dir: &TempDir,
    addr: SocketAddr,
) -> Process {
    let log = dir.path().join(format!("{name}.log"));
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{program} not found ({e}): run the README's test command, which installs Debian's package")
        });
    Process {
        name,
        child,
        log,
        addr,
    }
}

/// Starts Prometheus with `config` (YAML text) and waits until it is ready.
pub async fn prometheus(dir: &TempDir, config: &str) -> Process {
    let addr = free_addr();
    let config = dir.write("prometheus.yml", config);
    let args = vec![
        format!("--config.file={}", config.display()),
        format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()),
        format!("--web.listen-address={addr}"),
        // Resolved and re-fired alerts reach Alertmanager within a second instead of a minute.
        "--rules.alert.resend-delay=1s".to_owned(),
    ];
    spawn("prometheus", "prometheus", &args, dir, addr)
        .wait_ready()
        .await
}

/// Starts Alertmanager with `config` (YAML text), clustering off, and waits until it is ready.
pub async fn alertmanager(dir: &TempDir, config: &str) -> Process {
    let addr = free_addr();
    let config = dir.write("alertmanager.yml", config);
    let args = vec![
        format!("--config.file={}", config.display()),
        format!("--storage.path={}", dir.path().join("am").display()),
        format!("--web.listen-address={addr}"),
        "--cluster.listen-address=".to_owned(),
    ];
    spawn("alertmanager", "prometheus-alertmanager", &args, dir, addr)
        .wait_ready()
        .await
}

/// Percent-encodes a query-string value.
pub fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs an instant query and returns `data.result`; panics on an API error.
pub async fn query(prometheus: SocketAddr, expr: &str) -> Vec<serde_json::Value> {
    let (status, body) = get(
        prometheus,
        &format!("/api/v1/query?query={}", urlencode(expr)),
    )
    .await;
    let v: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(status, 200, "query {expr}: {body}");
    assert_eq!(v["status"], "success", "query {expr}: {body}");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// Records every request it receives (path and JSON body) and answers 200 as the webhook, Slack and Telegram
/// endpoints would.
#[derive(Clone)]
pub struct Webhook {
    /// Where it listens.
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
}

impl Webhook {
    /// Binds 127.0.0.1:0 and serves until the test ends.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let sink = sink.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let (head_end, length) = loop {
                        let Ok(n) = stream.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                            let length = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            break (end + 4, length);
                        }
                    };
                    while buf.len() < head_end + length {
                        let Ok(n) = stream.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                    let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                    let body = &buf[head_end..(head_end + length).min(buf.len())];
                    let json = serde_json::from_slice(body).unwrap_or_else(|_| {
                        serde_json::Value::String(String::from_utf8_lossy(body).into_owned())
                    });
                    sink.lock().unwrap().push((path.clone(), json));
                    // Telegram's sendMessage answer carries the sent message; Alertmanager 0.25 dereferences its chat.
                    let reply = if path.starts_with("/telegram") {
                        r#"{"ok":true,"result":{"message_id":1,"date":1790000000,"chat":{"id":-1001234567890,"type":"supergroup"},"text":"alert"}}"#
                    } else {
                        r#"{"ok":true}"#
                    };
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                        reply.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        Self { addr, received }
    }

    /// A URL on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Bodies received on `path`, in order.
    pub fn received(&self, path: &str) -> Vec<serde_json::Value> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, v)| v.clone())
            .collect()
    }
}
