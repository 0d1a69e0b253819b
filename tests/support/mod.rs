//! Support code shared by the integration test binaries: fake exchange venues (WebSocket and REST), a minimal HTTP client,
//! exposition parsing, the `promtool` check, the binary as a child process, test certificates and the deploy
//! checks' tools. Owns no tests itself.

// Each test binary compiles this module with `mod support;` and uses a different subset of it.
#![allow(dead_code)]

pub mod abuse;
pub mod deploy;
// cargo defines the binary's path for integration tests only (which build with cfg(test)), not for
// examples/demo.rs, which compiles this module too.
#[cfg(test)]
pub mod exporter;
pub mod fake;
pub mod fake_rest;
pub mod http;
pub mod metrics;
pub mod pki;
pub mod prom;
pub mod promtool;
pub mod stack;
pub mod tool;
