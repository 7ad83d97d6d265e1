//! gomirror's integration tests: the built binary against a fake upstream
//! (`support/`), and end to end with the real `go` command and nginx.

mod airgap;
mod architecture;
mod common;
mod config_checks;
mod crash_points;
mod e2e;
mod examples;
mod faults;
mod feed;
mod from_files;
mod fuzz_corpus;
mod garage;
mod index_faults;
mod index_walk;
mod load;
mod no_index;
mod operations;
mod output;
mod passes;
mod prune_verify;
mod real_shapes;
mod run_faults;
mod s3;
mod sources;
mod sumdb_trust;
mod support;
mod sync_basics;
mod tiles;
mod upstream_lists;
mod zip_memory;
