//! Bounded by design (issue 21): whatever a peer hands gomirror — through
//! HTTP, a change feed, a bundle, a project file — it is bounded before or
//! while it is read, shown escaped and cut, refused with a short message
//! and a documented exit code, within a deadline, and the tree and the
//! state database are as they were. The peers are ours
//! (`tests/support/hostile.rs`); memory is the child's peak RSS (wait4),
//! descriptors are sampled from /proc.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::*;
use crate::support::hostile::{Measured, SlowAccept, fingerprint, run_measured};
use crate::support::{Corpus, FakeOptions};

/// What no foreign input may take gomirror past (docs/reliability.md).
const RSS_BOUND_MIB: u64 = 256;

/// `gomirror -c <config> <args>` as the tests run it, with `envs`.
fn command(config: &Path, args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gomirror"));
    cmd.arg("-c").arg(config).args(args);
    cmd.env("GOMIRROR_RETRY_BASE_MS", "1");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

#[track_caller]
fn within_memory(m: &Measured) {
    assert!(
        m.peak_rss_mib() < RSS_BOUND_MIB,
        "peak RSS {} MiB (bound {RSS_BOUND_MIB} MiB)\n{}",
        m.peak_rss_mib(),
        m.all()
    );
}

/// 16 workers against an upstream that accepts a connection every 50 ms
/// with a backlog of 2: connection attempts wait at the pool's bound
/// instead of piling up one per request (770–980 descriptors before), and
/// under `ulimit -n 1024` nothing fails with "Too many open files".
#[test]
fn a_slow_accepting_upstream_does_not_pile_up_connections() {
    let mut cfg = Cfg {
        workers: 16,
        ..Cfg::default()
    };
    let m = Mirror::with(
        Corpus::generated(60, 5, 21),
        FakeOptions::default(),
        cfg.clone(),
    );
    let slow = SlowAccept::start(m.upstream.addr(), 2, Duration::from_millis(50));
    cfg.proxy = Some(format!("{}/proxy", slow.url()));
    let m = Mirror { cfg, ..m };
    m.write_config();
    let r = run_measured(
        command(&m.config_path(), &["sync"], &[]),
        Some(1024),
        Duration::from_secs(300),
    );
    assert!(!r.killed, "sync still running after 300 s\n{}", r.all());
    assert!(
        !r.all().contains("Too many open files"),
        "ran out of descriptors:\n{}",
        r.all()
    );
    assert_eq!(r.code, 0, "{}", r.all());
    // 16 requests in flight, at most 16 connecting, at most 16 idle, and
    // the process's own (state database, staging, pipes, runtime).
    assert!(
        r.max_fds <= 100,
        "{} descriptors open at once ({} s)",
        r.max_fds,
        r.took.as_secs()
    );
    eprintln!(
        "slow accept: {} descriptors at most, {} MiB, {:.1} s",
        r.max_fds,
        r.peak_rss_mib(),
        r.took.as_secs_f64()
    );
    within_memory(&r);
    let _ = fingerprint;
}
