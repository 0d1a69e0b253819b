//! Builds a rustls server configuration from validated [`TlsSettings`], reading the certificate, key and
//! client CA files.
//!
//! Errors name the file and the problem, never its contents: a key file's bytes must not reach a log.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::{CryptoProvider, SupportedKxGroup, ring};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite, SupportedProtocolVersion};

use super::config::{
    ClientAuth, Curve, TLS12_SUITES, TlsSettings, TlsVersion, WebConfigError, invalid,
};

/// ALPN: HTTP/1.1 only, the protocol the server speaks.
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Reads the files `tls` names and builds the configuration every handshake uses until the next reload.
pub fn server_config(tls: &TlsSettings) -> Result<Arc<ServerConfig>, WebConfigError> {
    let provider = Arc::new(provider(tls));
    let versions: Vec<&'static SupportedProtocolVersion> = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (tls.min_version..=tls.max_version).contains(v))
    .map(|(_, v)| v)
    .collect();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| invalid("tls_server_config", e.to_string()))?;
    let builder = match (tls.client_auth, &tls.client_ca_file) {
        (ClientAuth::None, _) | (_, None) => builder.with_no_client_auth(),
        (auth, Some(ca_file)) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca_file, "tls_server_config.client_ca_file")? {
                roots.add(cert).map_err(|e| {
                    invalid(
                        "tls_server_config.client_ca_file",
                        format!("{}: {e}", ca_file.display()),
                    )
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match auth {
                ClientAuth::VerifyIfGiven => verifier.allow_unauthenticated(),
                _ => verifier,
            };
            let verifier = verifier.build().map_err(|e| {
                invalid(
                    "tls_server_config.client_ca_file",
                    format!("{}: {e}", ca_file.display()),
                )
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let chain = certificates(&tls.cert_file, "tls_server_config.cert_file")?;
    let key = private_key(&tls.key_file)?;
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        invalid(
            "tls_server_config",
            format!(
                "{} and {} do not make a usable pair: {e}",
                tls.cert_file.display(),
                tls.key_file.display()
            ),
        )
    })?;
    config.ignore_client_order = tls.prefer_server_cipher_suites;
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    Ok(Arc::new(config))
}

/// *ring*, narrowed to the configured TLS 1.2 suites and key-exchange groups.
fn provider(tls: &TlsSettings) -> CryptoProvider {
    let mut provider = ring::default_provider();
    if let Some(names) = &tls.cipher_suites {
        // Our order, so that prefer_server_cipher_suites means what the file says.
        let mut suites: Vec<SupportedCipherSuite> = provider
            .cipher_suites
            .iter()
            .copied()
            .filter(|s| matches!(s, SupportedCipherSuite::Tls13(_)))
            .collect();
        suites.extend(names.iter().filter_map(|name| {
            debug_assert!(TLS12_SUITES.contains(name));
            provider
                .cipher_suites
                .iter()
                .copied()
                .find(|s| s.suite().as_str() == Some(*name))
        }));
        provider.cipher_suites = suites;
    }
    if let Some(curves) = &tls.curve_preferences {
        provider.kx_groups = curves
            .iter()
            .map(|curve| -> &'static dyn SupportedKxGroup {
                match curve {
                    Curve::X25519 => ring::kx_group::X25519,
                    Curve::P256 => ring::kx_group::SECP256R1,
                    Curve::P384 => ring::kx_group::SECP384R1,
                }
            })
            .collect();
    }
    provider
}

fn certificates(path: &Path, field: &str) -> Result<Vec<CertificateDer<'static>>, WebConfigError> {
    let read = |problem: &str| invalid(field, format!("{}: {problem}", path.display()));
    let bytes = super::file::read_bounded(path).map_err(|e| read(&e))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read(&pem_problem(&e)))?;
    if certs.is_empty() {
        return Err(read("no PEM certificate in it"));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, WebConfigError> {
    let read = |problem: &str| {
        invalid(
            "tls_server_config.key_file",
            format!("{}: {problem}", path.display()),
        )
    };
    let bytes = super::file::read_bounded(path).map_err(|e| read(&e))?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| read(&pem_problem(&e)))
}

/// What went wrong with a PEM file, in words that carry none of its bytes.
fn pem_problem(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::Io(io) => io.to_string(),
        Error::NoItemsFound => "no PEM item of the expected kind in it".to_owned(),
        _ => "malformed PEM".to_owned(),
    }
}
