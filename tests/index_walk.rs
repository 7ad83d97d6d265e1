//! Issue 16: a long index is walked several pages at a time, exactly as
//! correctly as one page at a time — every entry recorded once, the cursor
//! only past what is recorded (also when the walk is killed), and a short
//! feed (the usual cron run) still costs one request.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::*;
use crate::support::index::Spread;
use crate::support::{Corpus, FakeOptions, Fault, ModuleVersionSpec};

const NOISE: u64 = 30_000;

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// A feed of `noise` entries over the last two years (denser as it goes,
/// with one very dense day), each page answered `delay` later, and real
/// modules spread through it.
fn long_feed(noise: u64, delay: Duration) -> (Mirror, Vec<(String, String)>) {
    let two_years = 2 * 365 * 86_400 * 1_000_000i64;
    let options = FakeOptions {
        extra_index_entries: noise as usize,
        index_spread: Some(Spread {
            start_us: now_us() - two_years,
            span_us: two_years - 3_600_000_000,
        }),
        index_page_delay: delay,
        ..FakeOptions::default()
    };
    let cfg = Cfg {
        include: vec!["example.com".into()],
        ..Cfg::default()
    };
    let m = Mirror::with(Corpus::generated(1, 1, 16), options, cfg);
    let mut spread = Vec::new();
    for j in 0..8u64 {
        let path = format!("example.com/spread/m{j}");
        // Just after noise entry k: positions from the first to the last page.
        let k = (j * (noise - 1)) / 7;
        let ts = m.upstream.noise_timestamp(k) + if j == 7 { 1 } else { 0 };
        m.upstream
            .add_at(ModuleVersionSpec::new(&path, "v1.0.0"), ts);
        spread.push((path, "v1.0.0".to_string()));
    }
    (m, spread)
}

fn known(m: &Mirror) -> i64 {
    m.status()["counts"]["index_versions"].as_i64().unwrap()
}

fn index_requests(m: &Mirror) -> usize {
    m.upstream.requests("/index")
}

#[test]
fn long_index_is_walked_in_parallel_and_recorded_once() {
    let (m, spread) = long_feed(NOISE, Duration::from_millis(20));
    let total = NOISE as i64 + m.upstream.versions().len() as i64;
    // A dry run walks the same way and downloads nothing: several pages were
    // in flight at once.
    let dry = m.run(&["sync", "--dry-run"]);
    dry.expect(0);
    for (p, v) in &spread {
        dry.contains(&format!("fetch {p}@{v}"));
    }
    assert!(
        m.upstream.max_in_flight() >= 4,
        "at most {} requests at once",
        m.upstream.max_in_flight()
    );
    m.upstream.clear_request_log();
    let r = m.sync();
    r.expect(0);
    assert_eq!(known(&m), total, "every entry recorded");
    for (p, v) in &spread {
        m.assert_mirrored(p, v);
    }
    // 15 pages one at a time; cutting the feed costs some overlap, bounded.
    let pages = (total as usize).div_ceil(1999);
    let requests = index_requests(&m);
    assert!(
        requests <= 2 * pages + 16,
        "{requests} index requests for {pages} pages"
    );
    let cursor = m.status()["cursor"].as_str().unwrap().to_string();
    assert_eq!(
        Some(cursor.clone()),
        m.upstream.last_index_timestamp(),
        "the cursor is at the end of the feed"
    );

    // The next run (nothing new): one request, nothing recorded.
    m.upstream.clear_request_log();
    m.sync().expect(0);
    assert_eq!(index_requests(&m), 1);
    assert_eq!(known(&m), total);

    // A cron run with something new: still one request.
    m.upstream
        .add(ModuleVersionSpec::new("example.com/late/mod", "v1.0.0"));
    m.upstream.clear_request_log();
    m.sync().expect(0);
    assert_eq!(index_requests(&m), 1, "{:?}", m.upstream.request_log());
    m.assert_mirrored("example.com/late/mod", "v1.0.0");
    assert_eq!(known(&m), total + 1);
}

#[test]
fn one_walker_records_the_same_as_many() {
    let (mut m, spread) = long_feed(NOISE, Duration::ZERO);
    let total = NOISE as i64 + m.upstream.versions().len() as i64;
    m.cfg.upstream_extra = "index_walkers = 1".into();
    m.write_config();
    // The dry run downloads nothing: the gauge shows the walk alone.
    let dry = m.run(&["sync", "--dry-run"]);
    dry.expect(0);
    for (p, v) in &spread {
        dry.contains(&format!("fetch {p}@{v}"));
    }
    assert_eq!(m.upstream.max_in_flight(), 1, "one page at a time");
    let pages = (total as usize).div_ceil(1999);
    assert_eq!(index_requests(&m), pages);
    m.run(&["sync"]).expect(0);
    assert_eq!(known(&m), total);
}

/// A walk killed at each of its commits resumes from the cursor: nothing
/// skipped, nothing counted twice, every spread module mirrored.
#[test]
fn killed_parallel_walk_resumes_without_gap() {
    let noise = 12_000;
    let (m, spread) = long_feed(noise, Duration::ZERO);
    let total = noise as i64 + m.upstream.versions().len() as i64;
    let template = m.dir.path().join("template");
    std::fs::create_dir(&template).unwrap();
    std::fs::copy(m.config_path(), template.join("sync.toml")).unwrap();
    let count_file = m.dir.path().join("count");
    let r = m.run_env(
        &["sync"],
        &[("GOMIRROR_CRASH_COUNT", &count_file.display().to_string())],
    );
    r.expect(0);
    let points: u64 = std::fs::read_to_string(&count_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(points > 20, "{points} durability points");
    // The walk's commits come first (one per page and cursor move), after
    // those of a new state database's migrations (one each, and their
    // number grows); crash at each of the first ones, then let a clean run
    // finish.
    let end = m.upstream.last_index_timestamp().unwrap();
    let mut mid_walk = 0;
    for n in 1..=points.min(36) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(template.join("sync.toml"), dir.path().join("sync.toml")).unwrap();
        let config = dir.path().join("sync.toml");
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gomirror"));
        cmd.arg("-c")
            .arg(&config)
            .arg("sync")
            .env("GOMIRROR_CRASH_AT", n.to_string());
        let crashed = run_command(cmd);
        assert_ne!(crashed.code, 0, "crash point {n} was reached");
        let status = gomirror(&config, &["status", "--json"]);
        if let Ok(s) = serde_json::from_str::<serde_json::Value>(&status.stdout)
            && s["counts"]["index_versions"]
                .as_i64()
                .is_some_and(|k| k > 0 && k < total)
        {
            // Killed with part of the feed recorded: the cursor is behind
            // the end, the rest is walked again.
            mid_walk += 1;
            assert_ne!(s["cursor"].as_str(), Some(end.as_str()), "crash at {n}");
        }
        let resumed = gomirror(&config, &["sync"]);
        resumed.expect(0);
        let status = gomirror(&config, &["status", "--json"]);
        let s: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
        assert_eq!(
            s["counts"]["index_versions"].as_i64(),
            Some(total),
            "after a crash at point {n}"
        );
        for (p, v) in &spread {
            let info = dir.path().join("mirror").join(version_file(p, v, "info"));
            assert!(info.exists(), "{p}@{v} not mirrored after a crash at {n}");
        }
    }
    assert!(
        mid_walk >= 4,
        "only {mid_walk} crashes fell inside the walk"
    );
}

/// A walk that goes on for a while gets downloads beside it: the first
/// version is fetched before the last index page is asked for, and the
/// summary counts every version once.
#[test]
fn downloads_start_while_a_long_walk_goes_on() {
    let (mut m, spread) = long_feed(NOISE, Duration::from_millis(150));
    m.cfg.upstream_extra = "index_walkers = 2".into();
    m.write_config();
    let r = m.run_env(&["sync"], &[("GOMIRROR_TEST_EARLY_FETCH_MS", "100")]);
    r.expect(0)
        .contains(&format!("published {} new versions", spread.len() + 1));
    let log = m.upstream.request_log();
    let first_zip = log
        .iter()
        .position(|p| p.starts_with("/proxy/") && p.ends_with(".zip"))
        .expect("a zip was fetched");
    let last_page = log.iter().rposition(|p| p.starts_with("/index")).unwrap();
    assert!(
        first_zip < last_page,
        "zip #{first_zip} after the last index page #{last_page}"
    );
    for (p, v) in &spread {
        m.assert_mirrored(p, v);
    }
    let total = NOISE as i64 + m.upstream.versions().len() as i64;
    assert_eq!(known(&m), total);
    m.sync().expect(0).contains("published 0 new versions");
}

/// A checksum-database failure beside the walk stops the run (exit 2) like
/// one after it; the cursor is only where the walk had recorded, and the next
/// run, once the log behaves, finishes the feed and mirrors everything.
#[test]
fn a_bad_signature_beside_the_walk_is_fatal_and_resumable() {
    let (mut m, spread) = long_feed(NOISE, Duration::from_millis(150));
    m.cfg.upstream_extra = "index_walkers = 2".into();
    m.write_config();
    m.upstream.inject(Fault::BadSignature);
    let env = [("GOMIRROR_TEST_EARLY_FETCH_MS", "100")];
    m.run_env(&["sync"], &env).expect(2);
    let total = NOISE as i64 + m.upstream.versions().len() as i64;
    assert!(known(&m) < total, "the walk was stopped");
    assert!(
        m.tree_files().iter().all(|f| !f.ends_with(".zip")),
        "nothing published"
    );
    m.upstream.clear_faults();
    m.run_env(&["sync"], &env).expect(0);
    assert_eq!(known(&m), total);
    for (p, v) in &spread {
        m.assert_mirrored(p, v);
    }
}
