//! gomirror's integration tests: the built binary against a fake upstream
//! (`support/`), and end to end with the real `go` command and nginx.

mod common;
mod e2e;
mod examples;
mod faults;
mod fuzz_corpus;
mod prune_verify;
mod sumdb_trust;
mod support;
mod sync_basics;
mod zip_memory;
