//! The web configuration file (`--web.config.file`), in the Prometheus exporter-toolkit format: TLS, basic
//! auth and extra response headers.
//!
//! Owns parsing and validation. It reads only the YAML file itself; certificates and keys are read by `tls`.
//! No error message quotes a value from `basic_auth_users`: hashes are secrets too.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use axum::http::{HeaderName, HeaderValue, header};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// A validated web configuration. The default serves plain HTTP with no authentication.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebConfig {
    /// The file it was read from; relative paths inside it were resolved against its directory.
    pub path: PathBuf,
    /// TLS, when `tls_server_config` names a certificate and key.
    pub tls: Option<TlsSettings>,
    /// Basic-auth users and their bcrypt hashes; empty means no authentication.
    pub users: BTreeMap<String, PasswordHash>,
    /// Headers added to every response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// `tls_server_config`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// Whether and how client certificates are asked for.
    pub client_auth: ClientAuth,
    /// PEM CA bundle that client certificates must chain to.
    pub client_ca_file: Option<PathBuf>,
    /// Lowest protocol version offered.
    pub min_version: TlsVersion,
    /// Highest protocol version offered.
    pub max_version: TlsVersion,
    /// TLS 1.2 suites to offer, by their IANA names; `None` means rustls' defaults. TLS 1.3 suites are
    /// always on, as in Go.
    pub cipher_suites: Option<Vec<&'static str>>,
    /// Pick the suite in our order rather than the client's.
    pub prefer_server_cipher_suites: bool,
    /// Key-exchange groups in order of preference; `None` means rustls' defaults.
    pub curve_preferences: Option<Vec<Curve>>,
}

/// `client_auth_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `NoClientCert`: no client certificate is asked for.
    None,
    /// `VerifyClientCertIfGiven`: a certificate is optional, but one that is sent must verify.
    VerifyIfGiven,
    /// `RequireAndVerifyClientCert`: mutual TLS.
    RequireAndVerify,
}

/// A TLS protocol version rustls can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// A key-exchange group, by its Go name in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    /// `X25519`.
    X25519,
    /// `CurveP256`.
    P256,
    /// `CurveP384`.
    P384,
}

/// TLS 1.2 suites rustls (with *ring*) implements, by the names Go and the exporter-toolkit use.
pub(super) const TLS12_SUITES: [&str; 6] = [
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
];
/// TLS 1.3 suite names Go accepts in `cipher_suites` and then ignores: 1.3 suites are not configurable.
const TLS13_SUITES: [&str; 3] = [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];
/// The only headers the exporter-toolkit lets a web configuration set: as people write them, as `http` names
/// them, and the values the toolkit accepts (empty: any).
const ALLOWED_HEADERS: [(&str, HeaderName, &[&str]); 5] = [
    (
        "Strict-Transport-Security",
        header::STRICT_TRANSPORT_SECURITY,
        &[],
    ),
    (
        "X-Content-Type-Options",
        header::X_CONTENT_TYPE_OPTIONS,
        &["nosniff"],
    ),
    (
        "X-Frame-Options",
        header::X_FRAME_OPTIONS,
        &["deny", "sameorigin"],
    ),
    ("X-XSS-Protection", header::X_XSS_PROTECTION, &[]),
    (
        "Content-Security-Policy",
        header::CONTENT_SECURITY_POLICY,
        &[],
    ),
];

/// A bcrypt hash from `basic_auth_users`. Never printed: `Debug` shows a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// The hash, for `bcrypt::verify`.
    pub fn expose(&self) -> &str {
        &self.0
    }

    #[cfg(test)]
    pub(crate) fn new_for_tests(hash: String) -> PasswordHash {
        PasswordHash(hash)
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// Why a web configuration was rejected. Messages name the field and never quote a secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebConfigError {
    /// The file could not be read.
    #[error("cannot read: {0}")]
    Read(String),
    /// YAML syntax, an unknown field or a wrong type.
    #[error("{0}")]
    Syntax(String),
    /// A field with a value that cannot work.
    #[error("{field}: {problem}")]
    Invalid {
        /// The field, as a dotted path.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

pub(super) fn invalid(field: impl Into<String>, problem: impl Into<String>) -> WebConfigError {
    WebConfigError::Invalid {
        field: field.into(),
        problem: problem.into(),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    tls_server_config: Option<RawTls>,
    #[serde(default)]
    http_server_config: Option<RawHttp>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, RawHash>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<String>,
    key_file: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    client_allowed_sans: Option<Vec<String>>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
    curve_preferences: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    /// Accepted for compatibility; the exporter speaks HTTP/1.1 only.
    #[allow(dead_code)]
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

/// A `basic_auth_users` value. Its own deserializer, because serde's stock "invalid type" errors quote the
/// offending value, and that value is a secret.
struct RawHash(String);

impl<'de> Deserialize<'de> for RawHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HashVisitor;
        const EXPECTED: &str = "basic_auth_users: every value must be a bcrypt hash string";
        impl Visitor<'_> for HashVisitor {
            type Value = RawHash;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a bcrypt hash string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawHash, E> {
                Ok(RawHash(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<RawHash, E> {
                Err(E::custom(EXPECTED))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<RawHash, E> {
                Err(E::custom(EXPECTED))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<RawHash, E> {
                Err(E::custom(EXPECTED))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<RawHash, E> {
                Err(E::custom(EXPECTED))
            }
            fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<RawHash, E> {
                Err(E::custom(EXPECTED))
            }
        }
        deserializer.deserialize_string(HashVisitor)
    }
}

impl WebConfig {
    /// Reads and validates the file at `path`. Relative paths in it are resolved against its directory.
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let bytes = super::file::read_bounded(path).map_err(WebConfigError::Read)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| WebConfigError::Read("not UTF-8 text".to_owned()))?;
        let dir = path.parent().unwrap_or(Path::new(""));
        let mut config = WebConfig::parse(&text, dir)?;
        config.path = path.to_owned();
        Ok(config)
    }

    /// Validates `text`, resolving relative paths against `dir`.
    pub fn parse(text: &str, dir: &Path) -> Result<WebConfig, WebConfigError> {
        // An empty file is a valid, empty configuration, as in the exporter-toolkit.
        let raw: RawFile = if text.trim().is_empty() {
            RawFile::default()
        } else {
            serde_yaml_ng::from_str::<Option<RawFile>>(text)
                .map_err(|e| WebConfigError::Syntax(e.to_string()))?
                .unwrap_or_default()
        };
        let tls = match raw.tls_server_config {
            Some(tls) => tls_settings(tls, dir)?,
            None => None,
        };
        let users = raw
            .basic_auth_users
            .unwrap_or_default()
            .into_iter()
            .map(|(user, hash)| {
                check_bcrypt(&user, &hash.0)?;
                Ok((user, PasswordHash(hash.0)))
            })
            .collect::<Result<_, WebConfigError>>()?;
        let headers = headers(raw.http_server_config.and_then(|h| h.headers))?;
        Ok(WebConfig {
            path: PathBuf::new(),
            tls,
            users,
            headers,
        })
    }
}

fn check_bcrypt(user: &str, hash: &str) -> Result<(), WebConfigError> {
    if user.contains(':') {
        return Err(invalid(
            "basic_auth_users",
            format!("user {user:?}: a user name cannot contain ':'"),
        ));
    }
    // Only the user is named: the hash stays out of the message.
    bcrypt::HashParts::from_str(hash).map(drop).map_err(|_| {
        invalid(
            "basic_auth_users",
            format!("user {user:?}: not a bcrypt hash (generate one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`)"),
        )
    })
}

fn tls_settings(raw: RawTls, dir: &Path) -> Result<Option<TlsSettings>, WebConfigError> {
    const F: &str = "tls_server_config";
    let resolve = |p: &str| dir.join(p);
    let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
    let (cert_file, key_file) = match (nonempty(raw.cert_file), nonempty(raw.key_file)) {
        (Some(cert), Some(key)) => (resolve(&cert), resolve(&key)),
        // As in the exporter-toolkit: a TLS section without certificate and key means plain HTTP.
        (None, None) => return Ok(None),
        (None, Some(_)) => return Err(invalid(format!("{F}.cert_file"), "missing")),
        (Some(_), None) => return Err(invalid(format!("{F}.key_file"), "missing")),
    };
    if raw.client_allowed_sans.is_some_and(|s| !s.is_empty()) {
        return Err(invalid(
            format!("{F}.client_allowed_sans"),
            "not supported; issue client certificates from a dedicated CA instead",
        ));
    }
    let client_auth = match raw.client_auth_type.as_deref().unwrap_or("") {
        "" | "NoClientCert" => ClientAuth::None,
        "VerifyClientCertIfGiven" => ClientAuth::VerifyIfGiven,
        "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerify,
        "RequestClientCert" | "RequireAnyClientCert" => {
            return Err(invalid(
                format!("{F}.client_auth_type"),
                "RequestClientCert and RequireAnyClientCert accept certificates nobody verifies; \
                 use VerifyClientCertIfGiven or RequireAndVerifyClientCert",
            ));
        }
        other => {
            return Err(invalid(
                format!("{F}.client_auth_type"),
                format!(
                    "unknown {other:?} (NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert)"
                ),
            ));
        }
    };
    let client_ca_file = nonempty(raw.client_ca_file).map(|p| resolve(&p));
    match (client_auth, &client_ca_file) {
        (ClientAuth::None, Some(_)) => {
            return Err(invalid(
                format!("{F}.client_ca_file"),
                "set, but client_auth_type is NoClientCert, so it would be ignored",
            ));
        }
        (ClientAuth::VerifyIfGiven | ClientAuth::RequireAndVerify, None) => {
            return Err(invalid(
                format!("{F}.client_ca_file"),
                "required to verify client certificates",
            ));
        }
        _ => {}
    }
    let min_version = version(
        &format!("{F}.min_version"),
        raw.min_version,
        TlsVersion::Tls12,
    )?;
    let max_version = version(
        &format!("{F}.max_version"),
        raw.max_version,
        TlsVersion::Tls13,
    )?;
    if min_version > max_version {
        return Err(invalid(
            format!("{F}.min_version"),
            "higher than max_version",
        ));
    }
    let cipher_suites = raw
        .cipher_suites
        .map(|names| cipher_suites(&format!("{F}.cipher_suites"), &names))
        .transpose()?;
    let curve_preferences = raw
        .curve_preferences
        .map(|names| curves(&format!("{F}.curve_preferences"), &names))
        .transpose()?;
    Ok(Some(TlsSettings {
        cert_file,
        key_file,
        client_auth,
        client_ca_file,
        min_version,
        max_version,
        cipher_suites,
        prefer_server_cipher_suites: raw.prefer_server_cipher_suites.unwrap_or(true),
        curve_preferences,
    }))
}

fn version(
    field: &str,
    raw: Option<String>,
    default: TlsVersion,
) -> Result<TlsVersion, WebConfigError> {
    match raw.as_deref().unwrap_or("") {
        "" => Ok(default),
        "TLS12" => Ok(TlsVersion::Tls12),
        "TLS13" => Ok(TlsVersion::Tls13),
        "TLS10" | "TLS11" => Err(invalid(
            field,
            "TLS 1.0 and 1.1 are not supported; use TLS12 or TLS13",
        )),
        other => Err(invalid(
            field,
            format!("unknown version {other:?} (TLS12 or TLS13)"),
        )),
    }
}

fn cipher_suites(field: &str, names: &[String]) -> Result<Vec<&'static str>, WebConfigError> {
    let mut suites = Vec::new();
    for name in names {
        if let Some(&suite) = TLS12_SUITES.iter().find(|s| **s == name.as_str()) {
            suites.push(suite);
        } else if !TLS13_SUITES.contains(&name.as_str()) {
            return Err(invalid(
                field,
                format!(
                    "unsupported suite {name:?} (supported: {})",
                    TLS12_SUITES.join(", ")
                ),
            ));
        }
    }
    if suites.is_empty() {
        return Err(invalid(
            field,
            "no TLS 1.2 suite left; omit the field for the defaults",
        ));
    }
    Ok(suites)
}

fn curves(field: &str, names: &[String]) -> Result<Vec<Curve>, WebConfigError> {
    let curves = names
        .iter()
        .map(|name| match name.as_str() {
            "X25519" => Ok(Curve::X25519),
            "CurveP256" => Ok(Curve::P256),
            "CurveP384" => Ok(Curve::P384),
            other => Err(invalid(
                field,
                format!("unsupported curve {other:?} (X25519, CurveP256 or CurveP384)"),
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if curves.is_empty() {
        return Err(invalid(field, "empty; omit the field for the defaults"));
    }
    Ok(curves)
}

fn headers(
    raw: Option<BTreeMap<String, String>>,
) -> Result<Vec<(HeaderName, HeaderValue)>, WebConfigError> {
    const F: &str = "http_server_config.headers";
    raw.unwrap_or_default()
        .into_iter()
        .map(|(name, value)| {
            let Some((canonical, header, allowed_values)) = ALLOWED_HEADERS
                .into_iter()
                .find(|(h, _, _)| h.eq_ignore_ascii_case(&name))
            else {
                return Err(invalid(
                    F,
                    format!(
                        "header {name:?} cannot be set (allowed: {})",
                        ALLOWED_HEADERS.map(|(h, _, _)| h).join(", ")
                    ),
                ));
            };
            if !allowed_values.is_empty()
                && !allowed_values
                    .iter()
                    .any(|v| v.eq_ignore_ascii_case(&value))
            {
                return Err(invalid(
                    F,
                    format!("{canonical}: must be one of {}", allowed_values.join(", ")),
                ));
            }
            let value = HeaderValue::from_str(&value)
                .map_err(|_| invalid(F, format!("{canonical}: not a valid header value")))?;
            Ok((header, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // bcrypt("secret", cost 4); a test hash, cheap to verify.
    const HASH: &str = "$2b$04$ATLUZ9Xv11CHIhS7kb7LA.MGFlADjtAzzMSVn53/kOQ5bOUC6yNdC";

    fn parse(text: &str) -> Result<WebConfig, WebConfigError> {
        WebConfig::parse(text, Path::new("/etc/mfe"))
    }

    fn error(text: &str) -> String {
        parse(text).expect_err("must be rejected").to_string()
    }

    #[test]
    fn empty_file_is_plain_http_without_auth() {
        assert_eq!(parse("").unwrap(), WebConfig::default());
        assert_eq!(parse("# nothing\n").unwrap(), WebConfig::default());
    }

    #[test]
    fn full_configuration_resolves_relative_paths() {
        let config = parse(&format!(
            "tls_server_config:\n  cert_file: tls/cert.pem\n  key_file: /abs/key.pem\n  \
             client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n  min_version: TLS13\n  \
             cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256]\n  \
             curve_preferences: [CurveP256, X25519]\n  prefer_server_cipher_suites: false\n\
             http_server_config:\n  http2: false\n  headers:\n    x-frame-options: deny\n\
             basic_auth_users:\n  alice: '{HASH}'\n"
        ))
        .unwrap();
        assert_eq!(
            config.tls,
            Some(TlsSettings {
                cert_file: "/etc/mfe/tls/cert.pem".into(),
                key_file: "/abs/key.pem".into(),
                client_auth: ClientAuth::RequireAndVerify,
                client_ca_file: Some("/etc/mfe/ca.pem".into()),
                min_version: TlsVersion::Tls13,
                max_version: TlsVersion::Tls13,
                cipher_suites: Some(vec!["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]),
                prefer_server_cipher_suites: false,
                curve_preferences: Some(vec![Curve::P256, Curve::X25519]),
            })
        );
        assert_eq!(config.users.len(), 1);
        assert_eq!(config.users["alice"].expose(), HASH);
        assert_eq!(
            config.headers,
            vec![(
                HeaderName::from_static("x-frame-options"),
                HeaderValue::from_static("deny")
            )]
        );
    }

    #[test]
    fn tls_section_without_files_is_plain_http() {
        assert_eq!(parse("tls_server_config: {}\n").unwrap().tls, None);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                "tls_server_config:\n  cert_file: c.pem\n",
                "tls_server_config.key_file: missing",
            ),
            (
                "tls_server_config:\n  key_file: k.pem\n",
                "tls_server_config.cert_file: missing",
            ),
            (
                "tls_server_config: {cert_file: c, key_file: k, min_version: TLS11}\n",
                "tls_server_config.min_version: TLS 1.0 and 1.1 are not supported; use TLS12 or TLS13",
            ),
            (
                "tls_server_config: {cert_file: c, key_file: k, min_version: TLS13, max_version: TLS12}\n",
                "tls_server_config.min_version: higher than max_version",
            ),
            (
                "tls_server_config: {cert_file: c, key_file: k, client_auth_type: RequireAndVerifyClientCert}\n",
                "tls_server_config.client_ca_file: required to verify client certificates",
            ),
            (
                "tls_server_config: {cert_file: c, key_file: k, client_ca_file: ca}\n",
                "tls_server_config.client_ca_file: set, but client_auth_type is NoClientCert, so it would be ignored",
            ),
            (
                "tls_server_config: {cert_file: c, key_file: k, curve_preferences: [CurveP521]}\n",
                "tls_server_config.curve_preferences: unsupported curve \"CurveP521\" (X25519, CurveP256 or CurveP384)",
            ),
            (
                "http_server_config:\n  headers:\n    Server: x\n",
                "http_server_config.headers: header \"Server\" cannot be set (allowed: Strict-Transport-Security, \
                 X-Content-Type-Options, X-Frame-Options, X-XSS-Protection, Content-Security-Policy)",
            ),
            (
                "http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n",
                "http_server_config.headers: X-Content-Type-Options: must be one of nosniff",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(error(text), want, "{text}");
        }
        assert!(error("tls_server_config: {cert_file: c, key_file: k, client_auth_type: RequireAnyClientCert}\n")
            .starts_with("tls_server_config.client_auth_type: RequestClientCert and RequireAnyClientCert"));
        assert!(error("tls_server_config: {cert_file: c, key_file: k, cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]}\n")
            .starts_with("tls_server_config.cipher_suites: unsupported suite \"TLS_RSA_WITH_RC4_128_SHA\""));
        assert!(error("tls_config: {}\n").contains("unknown field `tls_config`"));
        assert!(error("tls_server_config: {cert: inline}\n").contains("unknown field `cert`"));
    }

    #[test]
    fn bad_hashes_are_reported_without_quoting_them() {
        for (value, secret) in [
            ("'not-a-hash-s3cr3t'", "s3cr3t"),
            ("271828182845", "271828182845"),
            ("true", "true"),
            ("3.14159", "3.14159"),
        ] {
            let message = error(&format!("basic_auth_users:\n  alice: {value}\n"));
            assert!(!message.contains(secret), "{message} leaks {secret}");
            assert!(message.contains("basic_auth_users"), "{message}");
        }
        assert_eq!(
            error(&format!("basic_auth_users:\n  'a:b': '{HASH}'\n")),
            "basic_auth_users: user \"a:b\": a user name cannot contain ':'"
        );
    }

    #[test]
    fn debug_output_redacts_hashes() {
        let config = parse(&format!("basic_auth_users:\n  alice: '{HASH}'\n")).unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains(HASH), "{debug}");
        assert!(debug.contains("alice"));
    }
}
