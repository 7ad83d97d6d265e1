//! `gomirror sync` on a healthy upstream: a complete, correct tree; runs that
//! fetch only what is new; the lock; killed runs; status.

use crate::common::*;
use crate::support::goformat::unescape;
use crate::support::{Corpus, Fault, ModuleVersionSpec};

fn corpus() -> Corpus {
    Corpus::generated(4, 3, 7)
        .with_upper_case()
        .with_major_v2()
        .with_incompatible()
        .with_pseudo_only()
}

#[test]
fn fresh_sync_mirrors_every_version_byte_for_byte() {
    let m = Mirror::new(corpus());
    let r = m.sync();
    r.expect(0).contains("gomirror sync: done:");
    let versions = m.upstream.versions();
    assert!(versions.len() >= 16, "{versions:?}");
    for (p, v) in &versions {
        m.assert_mirrored(p, v);
    }
    // @v/list: tagged versions, semver order, as the upstream lists them.
    let modules: std::collections::BTreeSet<&str> =
        versions.iter().map(|(p, _)| p.as_str()).collect();
    for p in &modules {
        let rel = format!("{}/@v/list", escape(p));
        let upstream = String::from_utf8(m.upstream_bytes(&rel)).unwrap();
        let mut want: Vec<&str> = upstream.lines().collect();
        let ours = m.text(&rel).unwrap_or_default();
        let got: Vec<&str> = ours.lines().collect();
        want.retain(|l| !l.is_empty());
        let mut want_sorted = want.clone();
        want_sorted.sort();
        let mut got_sorted = got.clone();
        got_sorted.sort();
        assert_eq!(got_sorted, want_sorted, "{rel}");
        // @latest names the same version as the upstream's.
        let latest_rel = format!("{}/@latest", escape(p));
        let theirs: serde_json::Value =
            serde_json::from_slice(&m.upstream_bytes(&latest_rel)).unwrap();
        let ours: serde_json::Value =
            serde_json::from_slice(&m.file(&latest_rel).expect("@latest")).unwrap();
        assert_eq!(ours["Version"], theirs["Version"], "{latest_rel}");
    }
    // The upper-case path is escaped on disk.
    assert!(m.out().join("example.com/!upper/!case/@v/list").exists());
    // Checksum database files.
    let name = m.upstream.sumdb_name();
    assert!(m.file(&format!("sumdb/{name}/supported")).is_some());
    let latest = m
        .text(&format!("sumdb/{name}/latest"))
        .expect("sumdb latest");
    assert!(latest.starts_with("go.sum database tree\n"), "{latest}");
    // Nothing temporary is left, nothing else is in the tree.
    assert!(m.temp_files().is_empty(), "{:?}", m.temp_files());
    let status = m.status();
    assert_eq!(status["counts"]["published"], versions.len() as u64);
    assert_eq!(status["counts"]["failed"], 0);
}

#[test]
fn second_run_fetches_no_module_file() {
    let m = Mirror::new(corpus());
    m.sync().expect(0);
    m.upstream.clear_request_log();
    let r = m.sync();
    r.expect(0).contains("published 0 new versions");
    let log = m.upstream.request_log();
    let module_files: Vec<&String> = log
        .iter()
        .filter(|p| {
            p.ends_with(".zip")
                || p.ends_with(".mod")
                || p.ends_with(".info")
                || p.contains("/lookup/")
        })
        .collect();
    assert!(
        module_files.is_empty(),
        "a no-op run fetched {module_files:?}"
    );
}

#[test]
fn later_run_fetches_only_what_is_new() {
    let m = Mirror::new(Corpus::generated(3, 2, 1));
    m.sync().expect(0);
    m.upstream.clear_request_log();
    m.upstream
        .add(ModuleVersionSpec::new("example.com/gen/m1", "v1.9.0"));
    m.upstream
        .add(ModuleVersionSpec::new("example.com/fresh", "v0.1.0"));
    let r = m.sync();
    r.expect(0).contains("published 2 new versions");
    let zips: Vec<String> = m
        .upstream
        .request_log()
        .into_iter()
        .filter(|p| p.ends_with(".zip"))
        .collect();
    assert_eq!(zips.len(), 2, "{zips:?}");
    m.assert_mirrored("example.com/gen/m1", "v1.9.0");
    m.assert_mirrored("example.com/fresh", "v0.1.0");
    let list = m.text("example.com/gen/m1/@v/list").unwrap();
    assert!(list.ends_with("v1.9.0\n"), "{list}");
}

#[test]
fn a_second_sync_while_one_runs_exits_3_at_once() {
    let m = Mirror::new(Corpus::generated(1, 1, 1));
    // Hold the lock the way a running sync does.
    let lock = std::fs::File::create(m.dir.path().join("state.db.lock")).unwrap();
    lock.try_lock().unwrap();
    let started = std::time::Instant::now();
    let r = m.sync();
    r.expect(3).contains("another gomirror run holds the lock");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(m.tree_files().is_empty());
    drop(lock);
    m.sync().expect(0);
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let m = Mirror::new(Corpus::generated(2, 2, 3));
    let r = m.run(&["sync", "--dry-run"]);
    r.expect(0).contains("fetch example.com/gen/m0@");
    assert!(m.tree_files().is_empty(), "{:?}", m.tree_files());
    let zips = m
        .upstream
        .request_log()
        .into_iter()
        .filter(|p| p.ends_with(".zip"))
        .count();
    assert_eq!(zips, 0);
    m.sync().expect(0);
}

#[test]
fn killed_run_leaves_no_partial_file_and_the_next_run_completes() {
    let m = Mirror::new(Corpus::generated(2, 1, 5).with_large_zip(300 << 20));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gomirror"))
        .arg("-c")
        .arg(m.config_path())
        .arg("sync")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it while the large zip is being written to a temporary file.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let growing = m.temp_files().iter().any(|f| {
            std::fs::metadata(m.out().join(".gomirror").join(f))
                .map(|md| md.len() > (1 << 20))
                .unwrap_or(false)
        });
        if growing || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // No partial file where a client looks: the large zip is absent, or whole.
    if let Some(zip) = m.file(&version_file("example.com/large", "v1.0.0", "zip")) {
        assert_eq!(
            zip,
            m.upstream_bytes(&version_file("example.com/large", "v1.0.0", "zip"))
        );
    }
    let r = m.sync();
    r.expect(0);
    for (p, v) in m.upstream.versions() {
        m.assert_mirrored(&p, &v);
    }
    assert!(m.temp_files().is_empty(), "{:?}", m.temp_files());
}

#[test]
fn status_reports_counts_cursor_and_runs() {
    let m = Mirror::new(Corpus::generated(2, 2, 9));
    m.sync().expect(0);
    let s = m.status();
    assert_eq!(s["counts"]["published"], 4);
    assert!(
        s["cursor"].as_str().is_some_and(|c| c.starts_with("2024-")),
        "{s}"
    );
    assert_eq!(s["runs"][0]["command"], "sync");
    assert_eq!(s["runs"][0]["exit_code"], 0);
    let human = m.run(&["status"]);
    human
        .expect(0)
        .contains("4 published")
        .contains("recent runs:");
}

#[test]
fn at_most_workers_requests_are_in_flight() {
    let corpus = || {
        let mut c = Corpus::new();
        for i in 0..12 {
            c.push(
                ModuleVersionSpec::new(&format!("example.com/slow{i}"), "v1.0.0")
                    .with_large_file("data.bin", 100_000),
            );
        }
        c
    };
    // A slow link, so transfers overlap as much as the client lets them.
    let slow = crate::support::FakeOptions {
        rate_bytes_per_sec: 4_000_000,
        ..crate::support::FakeOptions::default()
    };
    let m = Mirror::with(
        corpus(),
        slow.clone(),
        Cfg {
            workers: 2,
            ..Cfg::default()
        },
    );
    m.sync().expect(0);
    assert!(
        m.upstream.max_in_flight() <= 2,
        "{} requests at once",
        m.upstream.max_in_flight()
    );
    // The gauge does see overlap when more is allowed.
    let m = Mirror::with(
        corpus(),
        slow,
        Cfg {
            workers: 8,
            ..Cfg::default()
        },
    );
    m.sync().expect(0);
    assert!(
        m.upstream.max_in_flight() > 2,
        "{} requests at once",
        m.upstream.max_in_flight()
    );
}

/// `m@v` for every version file (`.info`) in the tree.
fn versions_in_tree(m: &Mirror) -> std::collections::BTreeSet<String> {
    m.tree_files()
        .iter()
        .filter_map(|f| {
            let (module, v) = f.strip_suffix(".info")?.split_once("/@v/")?;
            Some(format!("{}@{}", unescape(module)?, unescape(v)?))
        })
        .collect()
}

/// Issue 22: what `sync --dry-run` says a sync would fetch and delete is
/// what the sync then does, from the same state: new versions upstream, a
/// filter that stops wanting a module, one that starts wanting another
/// (backfill), and a failed version waiting for its retry.
#[test]
fn a_dry_run_and_the_real_run_agree() {
    let mut m = Mirror::new(corpus());
    m.cfg.exclude = vec!["example.com/gen/m3".into()];
    m.cfg.max_delete = "100".into();
    m.write_config();
    // One version fails on the first run (and waits for its retry).
    let failing = "example.com/gen/m1";
    let v = m
        .upstream
        .versions()
        .into_iter()
        .find(|(p, _)| p == failing)
        .unwrap()
        .1;
    m.upstream.inject(Fault::Status {
        path_prefix: format!("/proxy/{}/@v/{}.zip", escape(failing), escape(&v)),
        status: 500,
    });
    m.sync().expect(1);
    m.upstream.clear_faults();
    // Then: new versions, one module no longer wanted, one wanted again.
    m.upstream
        .add(ModuleVersionSpec::new("example.com/gen/m0", "v1.9.0"));
    m.upstream
        .add(ModuleVersionSpec::new("example.com/later", "v0.1.0"));
    m.cfg.exclude = vec!["example.com/gen/m2".into()];
    m.write_config();

    let before = versions_in_tree(&m);
    let dry = m.run(&["sync", "--dry-run", "--retry-failed"]);
    dry.expect(0);
    assert_eq!(versions_in_tree(&m), before, "a dry run changed the tree");
    let said = |verb: &str| -> std::collections::BTreeSet<String> {
        dry.stdout
            .lines()
            .filter_map(|l| l.strip_prefix(verb))
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect()
    };
    let (fetch, delete) = (said("fetch "), said("delete "));
    assert!(
        fetch.contains("example.com/later@v0.1.0") && fetch.contains(&format!("{failing}@{v}")),
        "{fetch:?}"
    );
    assert!(
        fetch.iter().any(|f| f.starts_with("example.com/gen/m3@")),
        "the backfill is planned: {fetch:?}"
    );
    assert!(!delete.is_empty(), "the narrowed filter deletes");

    m.run(&["sync", "--retry-failed"]).expect(0);
    let after = versions_in_tree(&m);
    let fetched: std::collections::BTreeSet<String> = after.difference(&before).cloned().collect();
    let deleted: std::collections::BTreeSet<String> = before.difference(&after).cloned().collect();
    assert_eq!(fetched, fetch, "fetched what the dry run said");
    assert_eq!(deleted, delete, "deleted what the dry run said");
}
