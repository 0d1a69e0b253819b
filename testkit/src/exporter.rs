//! The real exporter binary as a child process with a clean environment, for the test binaries that run it.

use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::prom::free_addr;

/// The binary cargo built beside the running test or example (`target/<profile>/marketfeed_exporter`), or
/// `MARKETFEED_BIN` when set.
pub fn bin() -> std::path::PathBuf {
    if let Some(path) = std::env::var_os("MARKETFEED_BIN") {
        return path.into();
    }
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/<test>-<hash> or target/<profile>/examples/<example>.
    let profile = exe
        .parent()
        .and_then(|dir| dir.parent())
        .expect("the test runs from cargo's target directory");
    profile.join(format!(
        "marketfeed_exporter{}",
        std::env::consts::EXE_SUFFIX
    ))
}

/// The binary with an environment holding only `vars` (plus PATH), so the developer's own MARKETFEED_*
/// variables cannot leak into a test.
pub fn command(vars: &[(&str, &str)], args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(args);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd
}

/// Runs it to the end with `vars` and `args`, stdin closed.
pub fn run(vars: &[(&str, &str)], args: &[&str]) -> Output {
    command(vars, args)
        .stdin(Stdio::null())
        .output()
        .expect("run the binary")
}

/// A running exporter process, killed if a test fails before it is stopped.
pub struct Exporter {
    child: Child,
    /// Where it serves.
    pub addr: SocketAddr,
}

impl Exporter {
    pub async fn start(vars: &[(&str, &str)]) -> Self {
        Self::start_with(vars, &[]).await
    }

    /// Starts it with extra flags besides the listen address.
    pub async fn start_with(vars: &[(&str, &str)], args: &[&str]) -> Self {
        let addr = free_addr();
        let listen = format!("--web.listen-address={addr}");
        let mut all = vec![listen.as_str()];
        all.extend_from_slice(args);
        let child = command(vars, &all)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let exporter = Self { child, addr };
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "the exporter did not start listening"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        exporter
    }

    /// Sends `signal` and returns the exit status and stderr once it exits, with how long that took.
    pub fn stop(mut self, signal: &str) -> (std::process::ExitStatus, String, Duration) {
        let start = Instant::now();
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args([&format!("-{signal}"), &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "no exit after SIG{signal}");
            std::thread::sleep(Duration::from_millis(20));
        };
        let elapsed = start.elapsed();
        let output = std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap())
            .wait_with_output()
            .unwrap();
        (
            status,
            String::from_utf8_lossy(&output.stderr).into_owned(),
            elapsed,
        )
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Closed loopback ports for every venue: the no-network situation, without touching the network.
pub fn unreachable_venues() -> Vec<(&'static str, &'static str)> {
    vec![
        ("MARKETFEED_BINANCE_SPOT_URL", "ws://127.0.0.1:9"),
        ("MARKETFEED_BINANCE_USDM_URL", "ws://127.0.0.1:9"),
        (
            "MARKETFEED_BYBIT_SPOT_URL",
            "ws://127.0.0.1:9/v5/public/spot",
        ),
        (
            "MARKETFEED_BYBIT_LINEAR_URL",
            "ws://127.0.0.1:9/v5/public/linear",
        ),
        (
            "MARKETFEED_BYBIT_INVERSE_URL",
            "ws://127.0.0.1:9/v5/public/inverse",
        ),
        ("MARKETFEED_BINANCE_SPOT_REST_URL", "http://127.0.0.1:9"),
        ("MARKETFEED_BINANCE_USDM_REST_URL", "http://127.0.0.1:9"),
        ("MARKETFEED_BYBIT_REST_URL", "http://127.0.0.1:9"),
    ]
}
