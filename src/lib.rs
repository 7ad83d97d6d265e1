//! gomirror keeps a self-hosted Go module mirror in sync: it walks the module
//! index, diffs it against a SQLite state database, downloads new versions with
//! a worker pool, verifies each against the Go checksum database, prunes what
//! should no longer be there, and writes a plain directory tree that any static
//! web server (or `GOPROXY=file://`) serves as a complete GOPROXY, checksum
//! database included.
//!
//! Modules follow the pipeline: [`index`] → [`state`] → [`sync`] (fetch through
//! [`upstream`], verify with [`gomod`] and [`sumdb`], publish into [`tree`]) →
//! [`prune`] → [`report`]. [`verify`] re-checks the tree against the database.

pub mod cli;
pub mod config;
pub mod crashpoint;
pub mod gomod;
pub mod index;
pub mod listing;
pub mod lock;
pub mod prune;
pub mod redact;
pub mod report;
pub mod runner;
pub mod state;
pub mod status;
pub mod sumdb;
pub mod sync;
pub mod tree;
pub mod upstream;
pub mod verify;
