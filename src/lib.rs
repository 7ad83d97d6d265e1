//! gomirror keeps a self-hosted Go module mirror in sync: it walks the module
//! index, diffs it against a SQLite state database, downloads new versions with
//! a worker pool, verifies each against the Go checksum database, prunes what
//! should no longer be there, and writes a plain directory tree that any static
//! web server (or `GOPROXY=file://`) serves as a complete GOPROXY, checksum
//! database included.
//!
//! `docs/architecture.md` maps the modules onto the pipeline.

pub mod audit;
pub mod bounded;
pub mod bundle;
pub mod check;
pub mod cli;
pub mod clock;
pub mod context;
pub mod crashpoint;
pub mod discover;
pub mod env;
pub mod export;
pub mod fatal;
pub mod feed;
pub mod fetch;
pub mod gomod;
pub mod http;
pub mod import;
pub mod interrupt;
pub mod keygen;
pub mod lock;
pub mod marks;
pub mod model;
pub mod plan;
pub mod policy;
pub mod private;
pub mod probe;
pub mod prune;
pub mod publish;
pub mod redact;
pub mod relpath;
pub mod report;
pub mod requests;
pub mod runner;
pub mod services;
pub mod settings;
pub mod shown;
pub mod site;
pub mod source;
pub mod state;
pub mod status;
pub mod store;
pub mod sumdb;
pub mod sync;
pub mod tiles;
pub mod trust;
pub mod verify;
pub mod vuln;
