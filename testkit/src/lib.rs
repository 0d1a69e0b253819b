//! Support code shared by the integration test binaries and the examples: fake exchange venues (WebSocket and REST), a minimal HTTP client,
//! exposition parsing, the `promtool` check, the binary as a child process, test certificates and the deploy
//! checks' tools. Owns no tests itself.

pub mod abuse;
pub mod churn;
pub mod deploy;
pub mod exporter;
pub mod fake;
pub mod fake_rest;
pub mod flood;
pub mod http;
pub mod metrics;
pub mod pki;
pub mod procfs;
pub mod prom;
pub mod promtool;
pub mod stack;
pub mod tool;
