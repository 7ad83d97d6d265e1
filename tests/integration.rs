//! gomirror's integration tests: the built binary against a fake upstream
//! (`support/`), and end to end with the real `go` command and nginx.

mod common;
mod crash_points;
mod e2e;
mod examples;
mod faults;
mod load;
mod prune_verify;
mod sumdb_trust;
mod support;
mod sync_basics;
