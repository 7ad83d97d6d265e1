//! Test support: a fake Go module upstream (module proxy, index feed and
//! checksum database on one real HTTP server) with fault injection and request
//! counting, plus a tiny blocking HTTP client.
//!
//! Included by the integration test binary (`tests/integration.rs`) and by
//! `examples/fake_upstream.rs` (via `#[path]`), so nothing here may assume it
//! runs inside a test. The fake computes everything it serves (Merkle tree,
//! `h1:` hashes, escaping, semver) independently of the gomirror crate: it is
//! the oracle the mirror is checked against.
#![allow(dead_code, unused_imports)]

pub mod corpus;
pub mod goformat;
pub mod hostile;
pub mod http;
pub mod index;
pub mod server;
pub mod sumlog;
pub mod vulndb;
pub mod zipbuild;

#[cfg(test)]
mod selftest;

pub use corpus::{Corpus, GeneratedFile, ModuleVersionSpec};
pub use server::{FakeOptions, FakeUpstream, Fault};
