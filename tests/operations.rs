//! Running gomirror unattended: the metrics file and the trace
//! file after clean, failing, fatal and interrupted runs, checked with the
//! real `promtool`; `-q` for cron; SIGTERM mid-sync and a rerun converging.
//!
//! Tests that need `promtool` fail, never skip, when it is missing
//! (`scripts/test` installs Debian's `prometheus` package, which has it).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::support::{Corpus, FakeOptions, Fault, ModuleVersionSpec};

/// `promtool`, or a failure saying how to get it.
pub fn promtool() -> PathBuf {
    for c in ["/usr/bin/promtool", "/usr/local/bin/promtool"] {
        if Path::new(c).exists() {
            return PathBuf::from(c);
        }
    }
    if let Ok(out) = Command::new("sh")
        .args(["-c", "command -v promtool"])
        .output()
    {
        let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !p.is_empty() {
            return PathBuf::from(p);
        }
    }
    panic!(
        "these tests need `promtool` (Debian: apt-get install prometheus); run scripts/test, which installs it"
    );
}

/// `promtool check metrics` on `text`: its complaints, if any.
#[track_caller]
pub fn assert_promtool_clean(text: &str) {
    use std::io::Write;
    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {:?}\n{}{}\n--- the file\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Adds `[mirror] name` and `[report] metrics_file` to the mirror's config;
/// returns the metrics file's path.
fn enable_operations(m: &Mirror, name: &str) -> PathBuf {
    let metrics = m.dir.path().join("metrics/gomirror.prom");
    std::fs::create_dir_all(metrics.parent().unwrap()).unwrap();
    let text = std::fs::read_to_string(m.config_path()).unwrap();
    let text = text.replacen(
        "state = \"state.db\"\n",
        &format!("state = \"state.db\"\nname = \"{name}\"\n"),
        1,
    );
    let text = format!("{text}\n[report]\nmetrics_file = \"metrics/gomirror.prom\"\n");
    std::fs::write(m.config_path(), text).unwrap();
    metrics
}

/// The value of the sample `name{labels}` (labels as written in the file).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().expect("a number"))
}

#[track_caller]
fn value(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn metrics_file_after_clean_failing_and_fatal_runs() {
    let m = Mirror::new(Corpus::generated(3, 2, 31));
    let metrics = enable_operations(&m, "ops.test");

    // Clean.
    m.sync().expect(0);
    let clean = read(&metrics);
    assert_promtool_clean(&clean);
    let sync = |s: &str| format!("{s}{{command=\"sync\"}}");
    assert_eq!(value(&clean, &sync("gomirror_last_exit_code")), 0.0);
    let success = value(&clean, &sync("gomirror_last_success_timestamp_seconds"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - success).abs() < 120.0, "{success} vs now {now}");
    assert_eq!(value(&clean, "gomirror_versions{state=\"published\"}"), 6.0);
    assert_eq!(value(&clean, "gomirror_versions{state=\"failed\"}"), 0.0);
    assert!(value(&clean, "gomirror_tree_bytes") > 0.0);
    assert_eq!(value(&clean, "gomirror_sumdb_tree_size"), 1006.0);
    assert_eq!(
        value(&clean, &sync("gomirror_last_run_published_versions")),
        6.0
    );
    let cursor = value(&clean, "gomirror_index_cursor_timestamp_seconds");
    assert!(cursor > 1.0e9 && cursor <= now + 1.0, "{cursor}");
    assert!(clean.contains("gomirror_info{version=\"0.1.0\",mirror=\"ops.test\"} 1"));

    // A sync with nothing new is a success too: an idle mirror must not look
    // stale to the "no successful sync in 1 h" alert.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    m.sync().expect(0);
    let idle = read(&metrics);
    let again = value(&idle, &sync("gomirror_last_success_timestamp_seconds"));
    assert!(
        again > success,
        "a no-op sync left last_success at {success}"
    );
    assert_eq!(
        value(&idle, &sync("gomirror_last_run_published_versions")),
        0.0
    );
    let success = again;
    // Written by rename: no temporary file is left beside it.
    let names: Vec<_> = std::fs::read_dir(metrics.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["gomirror.prom"]);

    // Another command: its rows are added, sync's are kept.
    m.run(&["prune"]).expect(0);
    let after_prune = read(&metrics);
    assert_promtool_clean(&after_prune);
    assert_eq!(
        value(&after_prune, "gomirror_last_exit_code{command=\"prune\"}"),
        0.0
    );
    assert_eq!(
        value(
            &after_prune,
            &sync("gomirror_last_success_timestamp_seconds")
        ),
        success
    );

    // Failures: exit 1 shows, the last success does not move.
    std::thread::sleep(Duration::from_millis(1100));
    m.upstream
        .add(ModuleVersionSpec::new("example.com/late/a", "v1.0.0"));
    m.upstream.inject(Fault::Status {
        path_prefix: "/proxy/example.com/late/".into(),
        status: 500,
    });
    let r = m.sync();
    r.expect(1);
    let failing = read(&metrics);
    assert_promtool_clean(&failing);
    assert_eq!(value(&failing, &sync("gomirror_last_exit_code")), 1.0);
    assert_eq!(
        value(&failing, &sync("gomirror_last_success_timestamp_seconds")),
        success,
        "a failed run never moves the last success"
    );
    assert!(value(&failing, "gomirror_versions{state=\"failed\"}") >= 1.0);
    assert!(value(&failing, &sync("gomirror_last_run_failed_versions")) >= 1.0);

    // Fatal (a bad signature): exit 2, a security event, last success kept.
    m.upstream.clear_faults();
    m.upstream.inject(Fault::BadSignature);
    m.sync().expect(2);
    let fatal = read(&metrics);
    assert_promtool_clean(&fatal);
    assert_eq!(value(&fatal, &sync("gomirror_last_exit_code")), 2.0);
    assert_eq!(
        value(&fatal, &sync("gomirror_last_success_timestamp_seconds")),
        success
    );
    assert_eq!(
        value(&fatal, &sync("gomirror_last_run_security_failures")),
        1.0
    );
    assert_eq!(value(&fatal, "gomirror_versions{state=\"published\"}"), 6.0);
}

#[test]
fn metrics_file_that_cannot_be_written_is_an_error_and_exit_2() {
    let m = Mirror::new(Corpus::generated(1, 1, 33));
    let metrics = enable_operations(&m, "ops.test");
    std::fs::remove_dir(metrics.parent().unwrap()).unwrap();
    let r = m.sync();
    r.expect(2).contains("error: cannot write the metrics file");
    assert!(
        r.stderr.contains("metrics/gomirror.prom"),
        "names the file: {}",
        r.stderr
    );
    // The work itself was done and recorded.
    m.assert_mirrored("example.com/gen/m0", &first_version(&m));
}

fn first_version(m: &Mirror) -> String {
    m.text("example.com/gen/m0/@v/list")
        .expect("@v/list")
        .lines()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn trace_file_is_written_by_a_sync_that_published_and_kept_by_prune() {
    let m = Mirror::new(Corpus::generated(2, 2, 34));
    enable_operations(&m, "goproxy.example.org");
    m.sync().expect(0);
    let rel = "trace/goproxy.example.org.json";
    let text = m.text(rel).expect("trace file");
    let t: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(t["mirror"], "goproxy.example.org");
    assert_eq!(t["gomirror_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(t["versions"], 4);
    assert_eq!(t["published"], 4);
    for key in ["finished", "index_cursor"] {
        let s = t[key].as_str().unwrap_or_else(|| panic!("{key}: {t}"));
        assert!(
            s.ends_with('Z') && s.len() >= 20 && s.as_bytes()[10] == b'T',
            "{key} is RFC 3339: {s}"
        );
    }
    let status = m.status();
    assert_eq!(
        t["index_cursor"].as_str().unwrap().get(..19),
        status["cursor"].as_str().unwrap().get(..19)
    );

    // Nothing published: not rewritten.
    std::thread::sleep(Duration::from_millis(1100));
    m.sync().expect(0);
    assert_eq!(m.text(rel).unwrap(), text);
    // Prune keeps it (it is no stray); a renamed mirror's old trace is one.
    m.run(&["prune", "--dry-run"])
        .expect(0)
        .contains("would delete 0 versions, 0 stray files");
    m.upstream
        .add(ModuleVersionSpec::new("example.com/late/b", "v1.0.0"));
    let cfg = read(&m.config_path()).replace("goproxy.example.org", "renamed.example");
    std::fs::write(m.config_path(), cfg).unwrap();
    m.sync().expect(0).contains("1 stray files");
    assert!(m.text(rel).is_none(), "the old name's trace is pruned");
    let renamed: serde_json::Value =
        serde_json::from_str(&m.text("trace/renamed.example.json").unwrap()).unwrap();
    assert_eq!(renamed["versions"], 5);
    assert!(renamed["finished"].as_str().unwrap() >= t["finished"].as_str().unwrap());
}

#[test]
fn quiet_is_silent_on_a_clean_run_and_loud_on_failure() {
    let m = Mirror::new(Corpus::generated(2, 2, 36));
    let r = m.run(&["-q", "sync"]);
    r.expect(0);
    assert_eq!(
        (r.stdout.as_str(), r.stderr.as_str()),
        ("", ""),
        "a clean quiet run prints nothing"
    );
    let r = m.run(&["-q", "prune"]);
    r.expect(0);
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", ""));
    let r = m.run(&["-q", "verify"]);
    r.expect(0);
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", ""));

    // A failure: the error once on stderr, the summary on stdout.
    m.upstream
        .add(ModuleVersionSpec::new("example.com/late/q", "v1.0.0"));
    m.upstream.inject(Fault::Status {
        path_prefix: "/proxy/example.com/late/q/".into(),
        status: 503,
    });
    let r = m.run(&["-q", "sync"]);
    r.expect(1);
    assert!(
        r.stdout.starts_with("gomirror sync: done, with problems:"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("1 failed"), "{}", r.stdout);
    let errors: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(errors.len(), 1, "each failure once: {}", r.stderr);
    assert!(
        errors[0].starts_with("error: example.com/late/q@v1.0.0: "),
        "{}",
        errors[0]
    );
    assert!(
        errors[0].contains(" from 127.0.0.1:") && !errors[0].contains("http://"),
        "names the upstream host, not a URL repeating module@version: {}",
        errors[0]
    );
    assert_eq!(
        errors[0].matches("example.com/late/q").count(),
        1,
        "module path once: {}",
        errors[0]
    );
    assert!(!r.stdout.contains("example.com/late/q"), "{}", r.stdout);

    // Fatal: on stderr, the summary on stdout.
    m.upstream.clear_faults();
    m.upstream.inject(Fault::BadSignature);
    let r = m.run(&["-q", "sync"]);
    r.expect(2);
    assert!(
        r.stdout.starts_with("gomirror sync: STOPPED:"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("SECURITY"), "{}", r.stdout);
    assert!(
        r.stderr
            .starts_with("error: SECURITY ERROR: checksum database tree head rejected"),
        "{}",
        r.stderr
    );
}

/// Starts `gomirror sync` with piped output.
fn spawn_sync(m: &Mirror) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_gomirror"))
        .arg("-c")
        .arg(m.config_path())
        .arg("sync")
        .env("GOMIRROR_TEST_RETRY_BASE_MS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gomirror")
}

fn published_count(m: &Mirror) -> usize {
    m.tree_files()
        .iter()
        .filter(|f| f.ends_with(".zip"))
        .count()
}

/// Once every version of a pass is with a worker, a partly filled batch is
/// published 30 ms after its last arrival instead of sitting out the batch
/// deadline: here the deadline is a minute, one zip trickles for seconds,
/// and the other versions are in the tree while that zip still downloads.
#[test]
fn a_partial_batch_is_published_while_the_last_download_still_runs() {
    let m = Mirror::new(Corpus::generated(2, 2, 11));
    let versions = m.upstream.versions();
    let (slow_path, slow_v) = versions[0].clone();
    let zip = format!("/proxy/{}", version_file(&slow_path, &slow_v, "zip"));
    let size = crate::support::http::get(&format!("{}{zip}", m.upstream.url()))
        .expect("the zip")
        .body
        .len() as u64;
    // About six seconds, well inside the minimum rate's 30 s grace.
    m.upstream.inject(Fault::Trickle {
        path_prefix: zip.clone(),
        bytes_per_sec: (size / 6).max(1),
    });
    let mut child = Command::new(env!("CARGO_BIN_EXE_gomirror"))
        .arg("-c")
        .arg(m.config_path())
        .arg("sync")
        .env("GOMIRROR_TEST_RETRY_BASE_MS", "1")
        .env("GOMIRROR_TEST_BATCH_DEADLINE_MS", "60000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start gomirror");
    let published = |m: &Mirror| {
        versions[1..].iter().all(|(p, v)| {
            m.tree_files()
                .iter()
                .any(|f| f.ends_with(&version_file(p, v, "zip")))
        })
    };
    let started = Instant::now();
    while !published(&m) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the sync ended ({status}) before the other versions were seen published: they waited for the slow zip"
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(50),
            "the other versions not published after 50 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "still downloading the slow zip"
    );
    m.assert_absent(&slow_path, &slow_v);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    m.assert_mirrored(&slow_path, &slow_v);
}

#[test]
fn sigterm_mid_sync_stops_cleanly_and_a_rerun_converges() {
    let cfg = Cfg {
        workers: 2,
        ..Cfg::default()
    };
    let m = Mirror::with(Corpus::generated(4, 3, 38), FakeOptions::default(), cfg);
    let metrics = enable_operations(&m, "ops.test");
    // Every file trickles at 500 B/s (a version takes seconds, the sync
    // about fifteen): one version at least is published before the signal,
    // and most are still to come.
    m.upstream.inject(Fault::Trickle {
        path_prefix: "/proxy/example.com/".into(),
        bytes_per_sec: 500,
    });
    let child = spawn_sync(&m);
    let deadline = Instant::now() + Duration::from_secs(60);
    while published_count(&m) == 0 {
        assert!(Instant::now() < deadline, "nothing was published in 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    let signalled = Instant::now();
    let pid = child.id() as libc::pid_t;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let out = child.wait_with_output().unwrap();
    let took = signalled.elapsed();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(
        out.status.code(),
        Some(143),
        "exit 143 after SIGTERM\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(took < Duration::from_secs(10), "stopped in {took:?}");
    assert!(
        stdout.starts_with("gomirror sync: INTERRUPTED by SIGTERM:"),
        "{stdout}"
    );
    assert!(stderr.contains("gomirror: SIGTERM: stopping"), "{stderr}");
    assert!(stderr.contains("error: interrupted by SIGTERM"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let published = published_count(&m);
    assert!(published < 12, "the sync was stopped before the end");
    // Staging (never served) may keep a file whose write was in flight when
    // its worker was dropped; the next run removes it (asserted below).
    let left_behind = m.temp_files();

    // Recorded as interrupted, in the run log and the metrics file.
    let status = m.status();
    let run = &status["runs"][0];
    assert_eq!(run["exit_code"], 143, "{run}");
    assert_eq!(run["summary"]["interrupted"], "SIGTERM", "{run}");
    // Issue 24: what was received before the stop is counted, in the
    // summary and in the run log (it said `0 B` though status showed MiB).
    assert!(
        run["summary"]["bytes"].as_u64().unwrap_or(0) > 0,
        "the run log has the bytes received: {run}"
    );
    assert!(!stdout.contains("(0 B received)"), "{stdout}");
    let text = read(&metrics);
    assert_promtool_clean(&text);
    assert_eq!(
        value(&text, "gomirror_last_exit_code{command=\"sync\"}"),
        143.0
    );
    assert_eq!(
        value(
            &text,
            "gomirror_last_success_timestamp_seconds{command=\"sync\"}"
        ),
        0.0
    );
    // Every listed version is complete.
    for v in m
        .text("example.com/gen/m0/@v/list")
        .unwrap_or_default()
        .lines()
    {
        m.assert_mirrored("example.com/gen/m0", v);
    }

    // The rerun picks up what was abandoned and converges.
    m.upstream.clear_faults();
    m.sync().expect(0);
    assert!(
        m.temp_files().is_empty(),
        "temporary files left after the rerun: {:?} (after the interrupted run: {left_behind:?})",
        m.temp_files()
    );
    assert_eq!(published_count(&m), 12);
    for i in 0..4 {
        let path = format!("example.com/gen/m{i}");
        for v in m.text(&format!("{path}/@v/list")).unwrap().lines() {
            m.assert_mirrored(&path, v);
        }
    }
    m.run(&["verify"]).expect(0);
    let text = read(&metrics);
    assert_eq!(
        value(&text, "gomirror_last_exit_code{command=\"sync\"}"),
        0.0
    );
}

#[test]
fn sigint_during_a_hung_index_stops_within_the_grace_period() {
    let m = Mirror::new(Corpus::generated(1, 1, 39));
    // Index requests trickle one byte a second: the walk cannot finish.
    m.upstream.inject(Fault::Trickle {
        path_prefix: "/index".into(),
        bytes_per_sec: 1,
    });
    let child = spawn_sync(&m);
    std::thread::sleep(Duration::from_millis(1500));
    let signalled = Instant::now();
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let out = child.wait_with_output().unwrap();
    let took = signalled.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        took < Duration::from_secs(15),
        "stopped {took:?} after SIGINT (grace 10 s)"
    );
    assert!(stderr.contains("error: interrupted by SIGINT"), "{stderr}");
    let status = m.status();
    assert_eq!(status["runs"][0]["exit_code"], 130);
    m.upstream.clear_faults();
    m.sync().expect(0);
}

#[test]
fn hung_index_is_retried_visibly_and_the_run_ends_in_bounded_time() {
    let m = Mirror::new(Corpus::generated(1, 1, 40));
    // The index accepts and then sends one byte a second: no read timeout
    // ever fires; the minimum transfer rate (judged over 1 s here) does.
    m.upstream.inject(Fault::Trickle {
        path_prefix: "/index".into(),
        bytes_per_sec: 1,
    });
    let started = Instant::now();
    let r = m.run_env(
        &["-v", "sync"],
        &[("GOMIRROR_TEST_MIN_RATE_WINDOW_MS", "1000")],
    );
    let took = started.elapsed();
    r.expect(2).contains("transfer too slow");
    let retries: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("retrying: "))
        .collect();
    // Found too slow, a transfer is retried once, not five times.
    assert_eq!(retries.len(), 1, "{}", r.stderr);
    assert!(retries[0].contains("(attempt 2 of 5)"), "{}", retries[0]);
    assert!(
        retries[0].contains("/index"),
        "names the request: {}",
        retries[0]
    );
    // Two attempts of about a second each, and the backoff between them.
    assert!(took < Duration::from_secs(30), "took {took:?}");
    // Quiet: the same run says nothing about retrying, only the error.
    let r = m.run_env(
        &["-q", "sync"],
        &[("GOMIRROR_TEST_MIN_RATE_WINDOW_MS", "1000")],
    );
    r.expect(2);
    assert!(!r.stderr.contains("retrying"), "{}", r.stderr);
    assert!(r.stderr.starts_with("error: "), "{}", r.stderr);
}

#[test]
fn status_shows_freshness_against_the_index_and_what_waits_for_a_retry() {
    let m = Mirror::new(Corpus::generated(2, 2, 41));
    m.sync().expect(0);
    let s = m.status();
    let f = &s["freshness"];
    assert_eq!(f["behind_seconds"], 0.0, "{f}");
    assert_eq!(f["behind_at_least"], false);
    assert!(
        f["last_success"]["sync"].as_str().unwrap().ends_with('Z'),
        "{f}"
    );
    assert_eq!(f["waiting_failed"], 0);
    let text = m.run(&["status"]);
    text.expect(0)
        .contains("freshness  caught up with the index; last successful sync 20");

    // The upstream moves on; one version fails.
    m.upstream
        .add(ModuleVersionSpec::new("example.com/late/s", "v1.0.0"));
    m.upstream
        .add(ModuleVersionSpec::new("example.com/late/t", "v1.0.0"));
    let s = m.status();
    let f = &s["freshness"];
    let behind = f["behind_seconds"].as_f64().unwrap();
    assert!(behind > 0.0, "{f}");
    assert!(
        f["index_newest"].as_str().unwrap() > f["cursor"].as_str().unwrap(),
        "{f}"
    );
    m.run(&["status"])
        .expect(0)
        .contains(" behind the index's newest entry (");
    m.upstream.inject(Fault::Status {
        path_prefix: "/proxy/example.com/late/s/".into(),
        status: 500,
    });
    m.sync().expect(1);
    let s = m.status();
    let f = &s["freshness"];
    assert_eq!(f["waiting_failed"], 1, "{f}");
    assert!(f["next_retry"].as_str().unwrap().ends_with('Z'), "{f}");
    m.run(&["status"])
        .expect(0)
        .contains("waiting    1 failed and 0 not on the upstream yet wait for a retry (next at ");

    // --offline asks nothing; an unreachable index is a note, not a failure.
    let r = m.run(&["status", "--json", "--offline"]);
    r.expect(0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["freshness"]["index_note"], "not asked (--offline)");
    assert!(v["freshness"]["behind_seconds"].is_null());
    m.upstream.inject(Fault::Status {
        path_prefix: "/index".into(),
        status: 404,
    });
    let r = m.run(&["status"]);
    r.expect(0).contains("lag unknown: cannot read the index: ");
}

/// nginx runs as another user (Debian: www-data) than gomirror: every file a
/// client can ask for must be readable by others, whatever gomirror's umask
/// leaves of the temporary files' private mode.
#[test]
fn every_served_file_is_world_readable() {
    use std::os::unix::fs::PermissionsExt;
    let m = Mirror::new(Corpus::generated(2, 2, 42));
    enable_operations(&m, "ops.test");
    m.sync().expect(0);
    let files = m.tree_files();
    assert!(files.iter().any(|f| f.ends_with("@v/list")));
    assert!(files.iter().any(|f| f.starts_with("trace/")));
    let private: Vec<String> = files
        .iter()
        .filter(|f| {
            let mode = std::fs::metadata(m.out().join(f))
                .unwrap()
                .permissions()
                .mode();
            mode & 0o004 == 0
        })
        .cloned()
        .collect();
    assert!(
        private.is_empty(),
        "not readable by nginx's user: {private:?}"
    );
}

#[test]
fn nginx_serves_the_trace_file_with_a_short_cache_lifetime() {
    let m = Mirror::new(Corpus::generated(1, 1, 43));
    enable_operations(&m, "ops.test");
    m.sync().expect(0);
    let nginx = crate::e2e::Nginx::serve(&m.out());
    let r = crate::support::http::get(&format!("{}/trace/ops.test.json", nginx.url())).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), Some("public, max-age=60"));
    let t: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
    assert_eq!(t["mirror"], "ops.test");
    std::fs::write(m.out().join("trace/.hidden"), b"x").unwrap();
    let r = crate::support::http::get(&format!("{}/trace/.hidden", nginx.url())).unwrap();
    assert_eq!(r.status, 404);
}

/// Without a terminal and without `-v` (journald, cron), an attempt that hung
/// for 10 s or more is still announced, so a stuck index is not silence; a
/// SIGTERM during the backoff stops the run like any other.
#[test]
fn a_hung_attempt_is_announced_without_a_terminal_and_sigterm_still_stops_it() {
    use std::io::BufRead;
    let m = Mirror::new(Corpus::generated(1, 1, 44));
    m.upstream.inject(Fault::Trickle {
        path_prefix: "/index".into(),
        bytes_per_sec: 1,
    });
    let mut child = Command::new(env!("CARGO_BIN_EXE_gomirror"))
        .arg("-c")
        .arg(m.config_path())
        .arg("sync")
        .env("GOMIRROR_TEST_RETRY_BASE_MS", "1")
        .env("GOMIRROR_TEST_MIN_RATE_WINDOW_MS", "10500")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gomirror");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let mut seen = Vec::new();
    let announced = loop {
        match rx.recv_timeout(Duration::from_secs(40)) {
            Ok(l) if l.starts_with("retrying: ") => break l,
            Ok(l) => seen.push(l),
            Err(e) => panic!("no retrying line in 40 s ({e}); stderr so far: {seen:?}"),
        }
    };
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(10), "announced after {took:?}");
    assert!(announced.contains("transfer too slow"), "{announced}");
    assert!(announced.contains("the attempt took"), "{announced}");
    assert!(announced.contains("(attempt 2 of 5)"), "{announced}");
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    // Everything it wrote: the reader thread ends at the pipe's end.
    let rest: Vec<String> = rx.iter().collect();
    assert!(
        rest.iter()
            .any(|l| l.starts_with("error: interrupted by SIGTERM")),
        "{rest:?}"
    );
}

/// The production case: nginx's workers run as another user than gomirror
/// (Debian: www-data; here `nobody`). Every file a go client asks for must
/// be served, not refused with 403.
#[test]
fn nginx_running_as_another_user_serves_every_file() {
    use std::os::unix::fs::PermissionsExt;
    let m = Mirror::new(Corpus::generated(2, 2, 45));
    m.sync().expect(0);
    // The test's temporary directory is private (0700): open the way to the
    // tree as an operator's /srv/gomirror is open.
    std::fs::set_permissions(m.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let am_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    assert!(
        am_root,
        "this test needs root to run nginx's workers as nobody"
    );
    let nginx = crate::e2e::Nginx::serve_as(&m.out(), Some("nobody nogroup"));
    let files = m.tree_files();
    assert!(files.iter().any(|f| f.contains("/lookup/")));
    for f in &files {
        let r = crate::support::http::get(&format!("{}/{f}", nginx.url())).unwrap();
        assert_eq!(r.status, 200, "{f} as nobody: HTTP {}", r.status);
    }
}
