//! The files in `examples/` work as shipped: the cron line and the systemd
//! unit's command run against a mirror, and the offline demo runs end to end.
//! (`examples/nginx.conf` is exercised by the end-to-end tests.)

use std::process::Command;

use crate::common::*;
use crate::support::Corpus;

/// The command of a shipped example line, with the binary and config paths
/// pointed at this test's mirror.
fn shipped_command(line: &str, m: &Mirror) -> Vec<String> {
    let start = line
        .find("/usr/local/bin/gomirror")
        .expect("command uses /usr/local/bin/gomirror");
    line[start..]
        .split_whitespace()
        .map(|w| match w {
            "/usr/local/bin/gomirror" => env!("CARGO_BIN_EXE_gomirror").to_string(),
            "/etc/gomirror/sync.toml" => m.config_path().display().to_string(),
            other => other.to_string(),
        })
        .collect()
}

/// `cargo test` only type-checks examples; build the fake-upstream example
/// binary (a no-op when it is current) and return the directory holding
/// `gomirror` and `examples/fake-upstream`. Cargo's own variables are removed
/// from the environment so the nested build shares the outer one's artifacts.
fn build_fake_upstream_example() -> std::path::PathBuf {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(["build", "--example", "fake-upstream"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    for (k, _) in std::env::vars() {
        if k.starts_with("CARGO_") || k == "RUSTFLAGS" || k == "RUSTDOCFLAGS" {
            cmd.env_remove(&k);
        }
    }
    let status = cmd.status().expect("run cargo");
    assert!(
        status.success(),
        "cargo build --example fake-upstream failed"
    );
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_gomirror"))
        .parent()
        .unwrap()
        .to_path_buf();
    assert!(bin.join("examples/fake-upstream").exists());
    bin
}

fn run_shipped(line: &str, m: &Mirror) -> Run {
    let argv = shipped_command(line, m);
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    run_command(cmd)
}

#[test]
fn cron_line_runs_a_quiet_sync() {
    let cron =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/cron")).unwrap();
    let line = cron
        .lines()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty())
        .unwrap();
    assert!(line.starts_with("*/5 * * * * gomirror "), "{line}");
    let m = Mirror::new(Corpus::generated(2, 2, 1));
    let r = run_shipped(line, &m);
    r.expect(0);
    assert!(
        r.stderr.is_empty(),
        "-q keeps cron mail quiet: {}",
        r.stderr
    );
    assert!(
        r.stdout.contains("published 4 new versions"),
        "{}",
        r.stdout
    );
}

#[test]
fn systemd_unit_command_runs_a_sync() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/systemd/gomirror-sync.service"
    ))
    .unwrap();
    let exec = unit.lines().find(|l| l.starts_with("ExecStart=")).unwrap();
    let m = Mirror::new(Corpus::generated(2, 1, 2));
    run_shipped(exec, &m).expect(0);
    let timer = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/systemd/gomirror-sync.timer"
    ))
    .unwrap();
    assert!(timer.contains("OnUnitInactiveSec=5min"));
    // The unit treats "another run holds the lock" as success.
    assert!(unit.contains("SuccessExitStatus=3"));
}

#[test]
fn offline_demo_runs_end_to_end() {
    crate::e2e::require("go");
    let work = tempfile::tempdir().unwrap();
    let bin = build_fake_upstream_example();
    let mut cmd = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/offline-demo.sh"
    ));
    cmd.arg(work.path()).env("BIN_DIR", &bin);
    let r = run_command(cmd);
    r.expect(0)
        .contains("gomirror sync: done:")
        .contains("\"Version\"");
    assert!(!r.all().contains("\"Error\""), "{}", r.all());
    // The generated config is the shipped one, re-pointed.
    let cfg = std::fs::read_to_string(work.path().join("sync.toml")).unwrap();
    assert!(
        cfg.contains("include = [\"*\"]") && cfg.contains("127.0.0.1"),
        "{cfg}"
    );
}
