//! gomirror: keeps a self-hosted Go module mirror in sync.
pub mod gomod;
pub mod sumdb;
