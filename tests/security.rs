//! The HTTP endpoint's security, against the real binary with a real TLS client: TLS with basic auth, mutual
//! TLS refusing expired and untrusted client certificates, plain HTTP on the TLS port, certificate and user
//! reloads without a restart, configuration errors, and no secret in any log, body or error. Then, in process,
//! hostile clients (slowloris, idle sockets, oversized headers) against scrapes and ingest, and the whole abuse mix
//! (silent connections, slowloris, a thousand greedy scrapers, a password flood) against the binary's probes.

use marketfeed_testkit as support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use marketfeed_exporter::app::{self, Tuning};
use marketfeed_exporter::config::{Config, parse_flags};
use marketfeed_exporter::web::Limits;
use support::exporter::{Exporter, run, unreachable_venues};
use support::fake::{FakeKind, FakeVenue};
use support::metrics::Scrape;
use support::pki::{Ca, Leaf};
use support::prom::TempDir;
use support::tool::run_ok;

const PASSWORD: &str = "correct horse battery staple";

/// The abuse mix saturates the machine's cores for a few seconds: tests whose timeouts it could stretch take
/// this lock, so they never run beside it.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const USER: &str = "prometheus";

fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A bcrypt hash at the lowest cost, so the tests stay quick; production hashes use 10 or more.
fn hash(password: &str) -> String {
    bcrypt::hash(password, 4).unwrap()
}

/// A client that trusts `ca`, opens a new connection per request (so each one sees the configuration in
/// force), and presents `identity` when given.
fn client(ca: Option<&Ca>, identity: Option<&Leaf>) -> reqwest::Client {
    install_crypto();
    let mut builder = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10));
    if let Some(ca) = ca {
        builder = builder
            .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap());
    }
    if let Some(leaf) = identity {
        builder =
            builder.identity(reqwest::Identity::from_pem(leaf.identity_pem().as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

struct Reply {
    status: u16,
    www_authenticate: Option<String>,
    content_type_options: Option<String>,
    body: String,
    peer_certificate: Option<Vec<u8>>,
}

async fn get(
    client: &reqwest::Client,
    url: String,
    credentials: Option<(&str, &str)>,
) -> reqwest::Result<Reply> {
    let mut request = client.get(url);
    if let Some((user, password)) = credentials {
        request = request.basic_auth(user, Some(password));
    }
    let response = request.send().await?;
    let peer_certificate = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .map(<[u8]>::to_vec);
    Ok(Reply {
        status: response.status().as_u16(),
        www_authenticate: response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned()),
        content_type_options: response
            .headers()
            .get("x-content-type-options")
            .map(|v| v.to_str().unwrap().to_owned()),
        peer_certificate,
        body: response.text().await?,
    })
}

/// Only in the external-tools tier (`./scripts/test.sh`); a bare `cargo test` keeps the rest of the test.
fn promtool_check_web_config(path: &std::path::Path) {
    if !cfg!(feature = "external-tools") {
        return;
    }
    run_ok("promtool", &["check", "web-config", path.to_str().unwrap()]);
}

/// Asserts that none of `secrets` occurs in `text`, naming where it was found.
fn assert_no_secret(what: &str, text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !text.contains(secret),
            "{what} contains the secret {secret:?}:\n{text}"
        );
    }
}

/// Server files and a web config of TLS plus basic auth, written to `dir`.
struct TlsFiles {
    ca: Ca,
    server: Leaf,
    hash: String,
    web_config: std::path::PathBuf,
}

fn tls_with_basic_auth(dir: &TempDir) -> TlsFiles {
    let ca = Ca::new("marketfeed test CA");
    let server = ca.server("marketfeed test server");
    dir.write("server.pem", &server.cert_pem);
    dir.write("server-key.pem", &server.key_pem);
    let hash = hash(PASSWORD);
    // Relative paths: resolved against the web config's directory, as the exporter-toolkit does.
    let web_config = dir.write(
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server-key.pem\n  min_version: TLS12\n\
             http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n\
             basic_auth_users:\n  {USER}: '{hash}'\n"
        ),
    );
    TlsFiles {
        ca,
        server,
        hash,
        web_config,
    }
}

fn debug_logs() -> Vec<(&'static str, &'static str)> {
    let mut vars = unreachable_venues();
    vars.push(("MARKETFEED_LOG_LEVEL", "debug"));
    vars
}

#[tokio::test]
async fn tls_with_basic_auth_lets_only_the_right_password_in_and_leaks_nothing() {
    let _heavy = HEAVY.lock().await;
    let dir = TempDir::new("tls-auth");
    let files = tls_with_basic_auth(&dir);
    promtool_check_web_config(&files.web_config);
    let flag = format!("--web.config.file={}", files.web_config.display());
    let exporter = Exporter::start_with(&debug_logs(), &[&flag]).await;
    let base = format!("https://{}", exporter.addr);
    let client = client(Some(&files.ca), None);
    let mut bodies = Vec::new();

    let anonymous = get(&client, format!("{base}/metrics"), None).await.unwrap();
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.www_authenticate.as_deref(),
        Some("Basic realm=\"marketfeed_exporter\", charset=\"UTF-8\"")
    );
    assert_eq!(
        anonymous.peer_certificate.as_deref(),
        Some(files.server.cert_der.as_slice())
    );
    let wrong = get(
        &client,
        format!("{base}/metrics"),
        Some((USER, "correct horse battery stapler")),
    )
    .await
    .unwrap();
    assert_eq!(wrong.status, 401);
    let wrong_user = get(
        &client,
        format!("{base}/metrics"),
        Some(("grafana", PASSWORD)),
    )
    .await
    .unwrap();
    assert_eq!(wrong_user.status, 401);
    let right = get(&client, format!("{base}/metrics"), Some((USER, PASSWORD)))
        .await
        .unwrap();
    assert_eq!(right.status, 200);
    assert!(
        right.body.contains("marketfeed_build_info{"),
        "{}",
        right.body
    );
    // The configured headers ride on every answer, refusals included.
    assert_eq!(right.content_type_options.as_deref(), Some("nosniff"));
    assert_eq!(anonymous.content_type_options.as_deref(), Some("nosniff"));
    for path in [
        "/",
        "/api/v1/symbols",
        "/api/v1/symbols/binance/spot/BTCUSDT",
        "/nope",
    ] {
        let reply = get(&client, format!("{base}{path}"), None).await.unwrap();
        assert_eq!(reply.status, 401, "{path} without credentials");
        let reply = get(&client, format!("{base}{path}"), Some((USER, PASSWORD)))
            .await
            .unwrap();
        assert_ne!(reply.status, 401, "{path} with credentials");
        bodies.push(reply.body);
    }
    // Probes stay open: a kubelet has no way to send credentials without writing them into the pod spec.
    for (path, body) in [("/-/healthy", "Healthy\n"), ("/-/ready", "Ready\n")] {
        let reply = get(&client, format!("{base}{path}"), None).await.unwrap();
        assert_eq!((reply.status, reply.body.as_str()), (200, body), "{path}");
    }
    // A client that does not trust our CA never gets as far as HTTP.
    let stranger = get(&self::client(None, None), format!("{base}/metrics"), None).await;
    assert!(
        stranger.is_err(),
        "a client without the CA must fail the handshake"
    );

    // Plain HTTP to the TLS port: a clear 400 instead of a hang or a reset.
    let plain = get(&client, format!("http://{}/metrics", exporter.addr), None)
        .await
        .unwrap();
    assert_eq!(plain.status, 400);
    assert_eq!(
        plain.body,
        "Client sent an HTTP request to an HTTPS server.\n"
    );
    // Bytes that are neither: the connection is closed.
    assert_eq!(
        raw_exchange(exporter.addr, b"\x00\x01\x02garbage\r\n\r\n"),
        ""
    );
    // ...and TLS clients are still served.
    let again = get(&client, format!("{base}/metrics"), Some((USER, PASSWORD)))
        .await
        .unwrap();
    assert_eq!(again.status, 200);

    bodies.extend([anonymous.body, wrong.body, right.body, plain.body]);
    let (status, logs, _) = exporter.stop("TERM");
    assert!(status.success(), "exit: {status}\n{logs}");
    assert!(
        logs.contains("TLS on, basic auth on (1 user)"),
        "the start log says what is protected:\n{logs}"
    );
    let basic = base64_credentials(USER, PASSWORD);
    let mut secrets = vec![PASSWORD, files.hash.as_str(), basic.as_str()];
    secrets.extend(files.server.key_material());
    assert_no_secret("the log", &logs, &secrets);
    for body in &bodies {
        assert_no_secret("a response body", body, &secrets);
    }
}

fn base64_credentials(user: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// Sends `bytes` on a raw TCP connection and returns what comes back before the server closes it.
fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The server may answer and close before taking every byte (431); what it said is still readable.
    let _ = stream.write_all(bytes);
    let mut reply = Vec::new();
    match stream.read_to_end(&mut reply) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the server neither answered nor closed: {e}"),
    }
    String::from_utf8_lossy(&reply).into_owned()
}

#[tokio::test]
async fn mutual_tls_refuses_missing_expired_and_untrusted_client_certificates() {
    let _heavy = HEAVY.lock().await;
    let dir = TempDir::new("mtls");
    let server_ca = Ca::new("server CA");
    let server = server_ca.server("exporter");
    let client_ca = Ca::new("client CA");
    dir.write("server.pem", &server.cert_pem);
    dir.write("server-key.pem", &server.key_pem);
    dir.write("clients.pem", &client_ca.pem());
    let web_config = dir.write(
        "web.yml",
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server-key.pem\n  \
         client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: clients.pem\n",
    );
    promtool_check_web_config(&web_config);
    let flag = format!("--web.config.file={}", web_config.display());
    let exporter = Exporter::start_with(&debug_logs(), &[&flag]).await;
    let url = format!("https://{}/metrics", exporter.addr);

    let prometheus = client_ca.client("prometheus", false);
    let ok = get(
        &client(Some(&server_ca), Some(&prometheus)),
        url.clone(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(ok.status, 200);

    let expired = client_ca.client("prometheus-old", true);
    let stranger = Ca::new("someone else's CA").client("prometheus", false);
    for (case, identity) in [
        ("no client certificate", None),
        ("an expired client certificate", Some(&expired)),
        ("a client certificate from another CA", Some(&stranger)),
    ] {
        let refused = get(&client(Some(&server_ca), identity), url.clone(), None).await;
        assert!(
            refused.is_err(),
            "{case} must be refused, got HTTP {:?}",
            refused.map(|r| r.status)
        );
    }
    // The refusals hurt nobody else.
    let ok = get(&client(Some(&server_ca), Some(&prometheus)), url, None)
        .await
        .unwrap();
    assert_eq!(ok.status, 200);

    let (status, logs, _) = exporter.stop("TERM");
    assert!(status.success(), "exit: {status}\n{logs}");
    // The start-up probe's bare TCP connect also ends a handshake early; count certificate problems only.
    let refusals: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("TLS handshake failed") && l.contains("certificate"))
        .collect();
    assert_eq!(
        refusals.len(),
        3,
        "one debug line per refused handshake:\n{logs}"
    );
    assert!(
        refusals
            .iter()
            .any(|l| l.contains("peer sent no certificates")),
        "{refusals:#?}"
    );
    assert!(
        refusals.iter().any(|l| l.contains("certificate expired")),
        "{refusals:#?}"
    );
    assert!(
        refusals.iter().any(|l| l.contains("UnknownIssuer")),
        "{refusals:#?}"
    );
    assert_no_secret("the log", &logs, &server.key_material());
}

#[tokio::test]
async fn certificates_and_users_are_reloaded_without_a_restart() {
    let _heavy = HEAVY.lock().await;
    let dir = TempDir::new("reload");
    let files = tls_with_basic_auth(&dir);
    let flag = format!("--web.config.file={}", files.web_config.display());
    let exporter = Exporter::start_with(&debug_logs(), &[&flag]).await;
    let url = format!("https://{}/metrics", exporter.addr);
    let client = client(Some(&files.ca), None);

    let first = get(&client, url.clone(), Some((USER, PASSWORD)))
        .await
        .unwrap();
    assert_eq!(
        first.peer_certificate.as_deref(),
        Some(files.server.cert_der.as_slice())
    );

    // Rotation: a new key pair lands, key first, then the certificate, each by rename.
    let rotated = files.ca.server("marketfeed rotated");
    dir.replace("server-key.pem", &rotated.key_pem);
    dir.replace("server.pem", &rotated.cert_pem);
    let second = get(&client, url.clone(), Some((USER, PASSWORD)))
        .await
        .unwrap();
    assert_eq!(second.status, 200);
    assert_eq!(
        second.peer_certificate.as_deref(),
        Some(rotated.cert_der.as_slice())
    );

    // A broken certificate is refused and the working one kept.
    dir.replace(
        "server.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n",
    );
    let kept = get(&client, url.clone(), Some((USER, PASSWORD)))
        .await
        .unwrap();
    assert_eq!(kept.status, 200);
    assert_eq!(
        kept.peer_certificate.as_deref(),
        Some(rotated.cert_der.as_slice())
    );
    dir.replace("server.pem", &rotated.cert_pem);

    // A password change applies to the next connection.
    let new_password = "a brand new password";
    let new_hash = hash(new_password);
    std::fs::write(
        &files.web_config,
        std::fs::read_to_string(&files.web_config)
            .unwrap()
            .replace(&files.hash, &new_hash),
    )
    .unwrap();
    assert_eq!(
        get(&client, url.clone(), Some((USER, PASSWORD)))
            .await
            .unwrap()
            .status,
        401
    );
    assert_eq!(
        get(&client, url.clone(), Some((USER, new_password)))
            .await
            .unwrap()
            .status,
        200
    );

    let (status, logs, _) = exporter.stop("TERM");
    assert!(status.success(), "exit: {status}\n{logs}");
    assert!(logs.contains("web configuration reloaded"), "{logs}");
    let refused: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("web configuration not reloaded"))
        .collect();
    assert_eq!(
        refused.len(),
        1,
        "one warning per change of the files:\n{logs}"
    );
    assert!(
        refused[0].contains("keeping the previous one") && refused[0].contains("/server.pem"),
        "{refused:?}"
    );
    let mut secrets = vec![
        PASSWORD,
        new_password,
        files.hash.as_str(),
        new_hash.as_str(),
    ];
    secrets.extend(files.server.key_material());
    secrets.extend(rotated.key_material());
    assert_no_secret("the log", &logs, &secrets);
}

#[test]
fn web_config_errors_exit_2_name_the_problem_and_quote_no_secret() {
    let dir = TempDir::new("errors");
    let ca = Ca::new("errors CA");
    let server = ca.server("a");
    let other = ca.server("b");
    dir.write("server.pem", &server.cert_pem);
    dir.write("server-key.pem", &server.key_pem);
    dir.write("other-key.pem", &other.key_pem);
    let not_a_hash = "hunter2-plaintext-password";
    let cases = [
        (
            format!("basic_auth_users:\n  alice: '{not_a_hash}'\n"),
            "basic_auth_users: user \"alice\": not a bcrypt hash".to_owned(),
        ),
        (
            "tls_server_config:\n  cert_file: server.pem\n  key_file: other-key.pem\n".to_owned(),
            format!(
                "tls_server_config: {dir}/server.pem and {dir}/other-key.pem do not make a usable pair",
                dir = dir.path().display()
            ),
        ),
        (
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.pem\n".to_owned(),
            format!(
                "tls_server_config.key_file: {}/server.pem: no PEM item of the expected kind in it",
                dir.path().display()
            ),
        ),
        (
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server-key.pem\n  client_auth_type: RequireAnyClientCert\n".to_owned(),
            "tls_server_config.client_auth_type: RequestClientCert and RequireAnyClientCert accept certificates nobody verifies".to_owned(),
        ),
        // Bounded reads: a device would be read until memory ran out, a directory or FIFO never ends.
        (
            "tls_server_config:\n  cert_file: /dev/zero\n  key_file: server-key.pem\n".to_owned(),
            "tls_server_config.cert_file: /dev/zero: not a regular file".to_owned(),
        ),
        (
            "tls_server_config:\n  cert_file: server.pem\n  key_file: big.pem\n".to_owned(),
            format!(
                "tls_server_config.key_file: {}/big.pem: larger than 1024 KiB",
                dir.path().display()
            ),
        ),
    ];
    dir.write("big.pem", &"A".repeat(2 << 20));
    for (i, (text, want)) in cases.iter().enumerate() {
        let path = dir.write(&format!("web-{i}.yml"), text);
        let flag = format!("--web.config.file={}", path.display());
        let out = run(&unreachable_venues(), &["--check-config", &flag]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}\n{stderr}");
        let prefix = format!("--web.config.file: {}: ", path.display());
        assert!(
            stderr.contains(&format!("{prefix}{want}")),
            "want {prefix}{want}\ngot {stderr}"
        );
        let mut secrets = vec![not_a_hash];
        secrets.extend(server.key_material());
        secrets.extend(other.key_material());
        assert_no_secret("the error", &stderr, &secrets);
    }
    // The web configuration itself: a FIFO is refused at once instead of hanging --check-config.
    let fifo = dir.path().join("web.fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let out = run(
        &unreachable_venues(),
        &[
            "--check-config",
            &format!("--web.config.file={}", fifo.display()),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "--web.config.file: {}: cannot read: not a regular file",
            fifo.display()
        )),
        "{stderr}"
    );
    // --check-config accepts a good file and says what it enables, without the hash.
    let hash = hash(PASSWORD);
    let good = dir.write(
        "good.yml",
        &format!("tls_server_config:\n  cert_file: server.pem\n  key_file: server-key.pem\nbasic_auth_users:\n  a: '{hash}'\n  b: '{hash}'\n"),
    );
    let out = run(
        &unreachable_venues(),
        &[
            "--check-config",
            &format!("--web.config.file={}", good.display()),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("metrics at https://"), "{stdout}");
    assert!(
        stdout.contains("TLS on, basic auth on (2 users)"),
        "{stdout}"
    );
    assert_no_secret("--check-config", &stdout, &[&hash]);
}

/// In process, with tight limits, so the bounds show within seconds: clients that hold connections open
/// without finishing a request neither block scrapes nor slow ingest, and are cut off by the timeouts.
#[tokio::test]
async fn hostile_clients_cannot_stall_scrapes_or_ingest() {
    let _heavy = HEAVY.lock().await;
    let fake = FakeVenue::start(FakeKind::BybitLinear).await;
    fake.set_data_interval(Duration::from_millis(50));
    let vars = [
        ("MARKETFEED_BYBIT_LINEAR_SYMBOLS", "BTCUSDT".to_owned()),
        ("MARKETFEED_BYBIT_LINEAR_URL", fake.base_url()),
        ("MARKETFEED_BYBIT_REST_URL", "http://127.0.0.1:9".to_owned()),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    let flags = parse_flags(["--web.listen-address=127.0.0.1:0".to_owned()]).unwrap();
    let config = Config::load(vars, &flags).unwrap();
    let limits = Limits {
        max_connections: 24,
        // Every client here is 127.0.0.1: this test is about the global cap and the timeouts.
        max_per_peer: 64,
        handshake_timeout: Duration::from_secs(1),
        header_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(2),
        ..Limits::default()
    };
    let running = app::start(
        &config,
        Tuning {
            web_limits: limits,
            process_metrics: false,
            ..Tuning::default()
        },
    )
    .await
    .unwrap();
    let addr = running.addr;
    let messages = || async move {
        let (status, body) = support::http::get(addr, "/metrics").await;
        assert_eq!(status, 200);
        Scrape::parse(&body).value(
            "marketfeed_messages_total",
            &[
                ("exchange", "bybit"),
                ("market", "linear"),
                ("symbol", "BTCUSDT"),
                ("channel", "tickers"),
            ],
        )
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while messages().await.unwrap_or(0.0) < 1.0 {
        assert!(Instant::now() < deadline, "no data from the fake venue");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Slowloris: 16 connections dribbling a header that never ends, and 4 that send nothing.
    let mut attackers = Vec::new();
    for i in 0..20 {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        if i < 16 {
            use tokio::io::AsyncWriteExt;
            stream
                .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await
                .unwrap();
        }
        attackers.push(stream);
    }
    // Meanwhile scrapes go through and ingest goes on.
    let before = messages().await.unwrap();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        messages().await.unwrap();
    }
    let after = messages().await.unwrap();
    assert!(after > before, "ingest stalled: {before} -> {after}");

    // Every attacker is cut off by the header or idle timeout.
    for (i, stream) in attackers.iter_mut().enumerate() {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 256];
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await;
        match read {
            Ok(Ok(_)) | Ok(Err(_)) => {}
            Err(_) => panic!("attacker {i} still connected after 10 s"),
        }
    }

    // Headers beyond the bound get 431; a body nobody reads gets 405 at once.
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let reply = raw_exchange_async(addr, huge.into_bytes()).await;
    assert!(reply.starts_with("HTTP/1.1 431"), "{reply}");
    let post = format!(
        "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        100 * 1024 * 1024
    );
    let reply = raw_exchange_async(addr, post.into_bytes()).await;
    assert!(reply.starts_with("HTTP/1.1 405"), "{reply}");

    // Connections past the cap wait for a free slot rather than being served half-way; once the idle ones
    // time out, scrapes are served again.
    let mut hogs = Vec::new();
    for _ in 0..limits.max_connections {
        hogs.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    let waiting = tokio::spawn(support::http::get(addr, "/-/healthy"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "a connection past the cap was served while every slot was held"
    );
    let (status, _) = tokio::time::timeout(Duration::from_secs(15), waiting)
        .await
        .expect("served once the idle connections are cut")
        .unwrap();
    assert_eq!(status, 200);
    drop(hogs);
    running.stop().await;
    fake.shutdown();
}

/// The whole abuse mix at once against the real binary with basic auth, each attack from its own loopback
/// address: 200 silent connections, 200 slowloris, 1000 concurrent authorised scrapes and 160 concurrent wrong
/// passwords. Meanwhile the kubelet's probes and the remembered scraper, from 127.0.0.1, are answered every time,
/// another user's first login goes through, guesses beyond one address's share are refused at once (429), and
/// ingest goes on. (docs/benchmarks.md has the latencies, from `cargo run --release --example http_abuse`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_and_scrapes_are_answered_under_the_abuse_mix() {
    use support::abuse::{Mix, Sizes, basic, request, source};

    let _heavy = HEAVY.lock().await;
    let fake = FakeVenue::start(FakeKind::BybitLinear).await;
    let dir = TempDir::new("abuse");
    let hashed = bcrypt::hash(PASSWORD, 8).unwrap();
    let web = dir.write(
        "web.yml",
        &format!("basic_auth_users:\n  {USER}: '{hashed}'\n  latecomer: '{hashed}'\n"),
    );
    let url = fake.base_url();
    let exporter = Exporter::start_with(
        &[
            ("MARKETFEED_BYBIT_LINEAR_SYMBOLS", "BTCUSDT,ETHUSDT"),
            ("MARKETFEED_BYBIT_LINEAR_URL", &url),
            ("MARKETFEED_BYBIT_REST_URL", "http://127.0.0.1:9"),
        ],
        &[&format!("--web.config.file={}", web.display())],
    )
    .await;
    let addr = exporter.addr;
    let auth = basic(USER, PASSWORD);
    let messages = || {
        let auth = auth.clone();
        async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let text =
                format!("GET /metrics HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n");
            stream.write_all(text.as_bytes()).await.unwrap();
            let mut body = String::new();
            stream.read_to_string(&mut body).await.unwrap();
            let body = body.split_once("\r\n\r\n").map_or("", |(_, b)| b);
            Scrape::parse(body).sum("marketfeed_messages_total", &[] as &[(&str, &str)])
        }
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while messages().await < 1.0 {
        assert!(Instant::now() < deadline, "no data before the mix");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mix = Mix::start(addr, Sizes::default(), &auth, &basic(USER, "wrong"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = messages().await;
    // A bound on failure, not a latency target: 3 s is the shipped probes' timeoutSeconds.
    let answer = |path: &'static str, auth: String| async move {
        tokio::time::timeout(
            Duration::from_secs(3),
            request(source(1), addr, path, &auth),
        )
        .await
        .ok()
        .flatten()
    };
    for round in 0..10 {
        for (path, credentials) in [
            ("/-/healthy", ""),
            ("/-/ready", ""),
            ("/metrics", auth.as_str()),
        ] {
            assert_eq!(
                answer(path, credentials.to_owned()).await,
                Some(200),
                "{path} in round {round} under the mix"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let first_login = tokio::time::timeout(
        Duration::from_secs(3),
        request(source(6), addr, "/metrics", &basic("latecomer", PASSWORD)),
    )
    .await;
    assert_eq!(
        first_login.ok().flatten(),
        Some(200),
        "a first login behind the guesses"
    );
    let after = messages().await;
    assert!(
        after > before,
        "ingest stalled under the mix: {before} -> {after}"
    );
    let busy = mix.busy.load(std::sync::atomic::Ordering::Relaxed);
    let denied = mix.denied.load(std::sync::atomic::Ordering::Relaxed);
    mix.stop();
    assert!(denied > 0, "some guesses were checked");
    assert!(
        busy > denied,
        "guesses beyond the address's share are refused without a bcrypt check"
    );
    let (status, stderr, _) = exporter.stop("TERM");
    assert!(status.success(), "{stderr}");
    fake.shutdown();
}

async fn raw_exchange_async(addr: SocketAddr, bytes: Vec<u8>) -> String {
    tokio::task::spawn_blocking(move || raw_exchange(addr, &bytes))
        .await
        .unwrap()
}

/// The real Prometheus scrapes the binary over mutual TLS with basic auth, with the scrape configuration the
/// README shows; a job with the wrong password stays down.
#[tokio::test]
#[cfg_attr(
    not(feature = "external-tools"),
    ignore = "needs Prometheus: ./scripts/test.sh runs it"
)]
async fn real_prometheus_scrapes_over_mutual_tls_with_basic_auth() {
    let _heavy = HEAVY.lock().await;
    let dir = TempDir::new("prometheus-mtls");
    let ca = Ca::new("marketfeed CA");
    let server = ca.server("exporter");
    let scraper = ca.client("prometheus", false);
    dir.write("ca.pem", &ca.pem());
    dir.write("server.pem", &server.cert_pem);
    dir.write("server-key.pem", &server.key_pem);
    dir.write("prometheus.pem", &scraper.cert_pem);
    dir.write("prometheus-key.pem", &scraper.key_pem);
    dir.write("password", PASSWORD);
    dir.write("wrong-password", "guess");
    let web_config = dir.write(
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server-key.pem\n  \
             client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n\
             basic_auth_users:\n  {USER}: '{}'\n",
            hash(PASSWORD)
        ),
    );
    promtool_check_web_config(&web_config);
    let flag = format!("--web.config.file={}", web_config.display());
    let exporter = Exporter::start_with(&unreachable_venues(), &[&flag]).await;
    let d = dir.path().display();
    let job = |name: &str, password_file: &str| {
        format!(
            "  - job_name: {name}\n    scheme: https\n    tls_config:\n      ca_file: {d}/ca.pem\n      \
             cert_file: {d}/prometheus.pem\n      key_file: {d}/prometheus-key.pem\n    basic_auth:\n      \
             username: {USER}\n      password_file: {d}/{password_file}\n    static_configs:\n      \
             - targets: ['{}']\n",
            exporter.addr
        )
    };
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{}{}",
        job("marketfeed", "password"),
        job("marketfeed-wrong-password", "wrong-password")
    );
    let prometheus = support::prom::prometheus(&dir, &config).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let up = support::prom::query(prometheus.addr, "up").await;
        let value = |job: &str| {
            up.iter()
                .find(|s| s["metric"]["job"] == job)
                .map(|s| s["value"][1].as_str().unwrap_or_default().to_owned())
        };
        if value("marketfeed").as_deref() == Some("1")
            && value("marketfeed-wrong-password").as_deref() == Some("0")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "up: {up:?}\n{}",
            prometheus.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let build =
        support::prom::query(prometheus.addr, "marketfeed_build_info{job=\"marketfeed\"}").await;
    assert_eq!(build.len(), 1, "{build:?}");
}
