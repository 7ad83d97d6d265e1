//! What reaches the terminal, or cron's mail. Two concerns:
//!
//! * Output that cannot be written — a reader that went away
//!   (`gomirror status | head -1`) or a full disk (`> /dev/full`) — must never
//!   crash a command (std's `println!` panics, exit 101) nor stop a sync
//!   half-way: a closed pipe is quiet and keeps the exit code, any other write
//!   error is reported on stderr with exit 2, and the state database stays
//!   correct either way.
//! * The summaries operators read are snapshot-tested with `insta`, with
//!   times, durations, sizes, ports and temporary paths masked, so a changed
//!   wording is a reviewed diff (`cargo insta review`), not an accident.

use std::fs::File;
use std::process::{Command, Stdio};

use crate::common::*;
use crate::support::{Corpus, FakeOptions, Fault};

const M: &str = "example.com/gen/m0";

fn small() -> Corpus {
    Corpus::generated(2, 2, 11)
}

/// The command line `Mirror::run` uses, for tests that choose the streams.
fn command(m: &Mirror, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gomirror"));
    cmd.arg("-c").arg(m.config_path()).args(args);
    cmd.env("GOMIRROR_TEST_RETRY_BASE_MS", "1");
    cmd
}

/// A pipe whose reading end is already closed: every write gets `EPIPE`
/// (SIGPIPE is ignored by Rust programs), as after `| head -1` has exited.
/// The reader is dropped before the child exists, so no race can keep it open.
fn closed_pipe() -> std::io::PipeWriter {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    writer
}

fn dev_full() -> File {
    File::options()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full (Linux)")
}

/// Exit code and stderr of a run whose stdout is `stdout`.
fn run_with_stdout(m: &Mirror, args: &[&str], stdout: impl Into<Stdio>) -> (i32, String) {
    let out = command(m, args)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .expect("run gomirror");
    let code = out
        .status
        .code()
        .unwrap_or_else(|| panic!("gomirror {args:?} was killed by a signal: {:?}", out.status));
    (code, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Exit code of a run whose stdout and stderr are both a closed pipe
/// (`gomirror sync 2>&1 | head -1`).
fn run_into_closed_pipe(m: &Mirror, args: &[&str]) -> i32 {
    let w = closed_pipe();
    let status = command(m, args)
        .stdout(w.try_clone().expect("dup pipe"))
        .stderr(w)
        .status()
        .expect("run gomirror");
    status
        .code()
        .unwrap_or_else(|| panic!("gomirror {args:?} was killed by a signal: {status:?}"))
}

#[track_caller]
fn assert_no_panic(stderr: &str) {
    assert!(!stderr.contains("panicked"), "gomirror panicked:\n{stderr}");
}

/// The last run in the log, which must have finished with `exit`.
#[track_caller]
fn assert_last_run(m: &Mirror, command: &str, exit: i64) -> serde_json::Value {
    let status = m.status();
    let run = status["runs"][0].clone();
    assert_eq!(run["command"], command, "{status:#}");
    assert_eq!(
        run["exit_code"], exit,
        "the run was not recorded: {status:#}"
    );
    assert!(
        run["finished"].is_string(),
        "the run did not finish: {status:#}"
    );
    status
}

#[test]
fn status_into_a_closed_pipe_exits_0_without_panicking() {
    let m = Mirror::new(small());
    m.sync().expect(0);
    for args in [&["status"][..], &["status", "--json"]] {
        let (code, stderr) = run_with_stdout(&m, args, closed_pipe());
        assert_no_panic(&stderr);
        assert_eq!(code, 0, "{args:?}: a closed pipe is not an error\n{stderr}");
        assert!(
            stderr.is_empty(),
            "{args:?}: nothing to say on stderr: {stderr}"
        );
    }
    assert_last_run(&m, "sync", 0);
}

#[test]
fn status_into_a_full_disk_exits_2_naming_stdout() {
    let m = Mirror::new(small());
    m.sync().expect(0);
    for args in [&["status"][..], &["status", "--json"]] {
        let (code, stderr) = run_with_stdout(&m, args, dev_full());
        assert_no_panic(&stderr);
        assert_eq!(code, 2, "{args:?}: a lost output is an error\n{stderr}");
        assert!(
            stderr.contains("error: cannot write the output to stdout")
                && stderr.contains("No space left on device"),
            "{args:?}: {stderr}"
        );
    }
    assert_last_run(&m, "sync", 0);
}

#[test]
fn sync_into_a_closed_pipe_finishes_and_records_the_run() {
    let m = Mirror::new(small());
    let code = run_into_closed_pipe(&m, &["sync", "-v"]);
    assert_eq!(code, 0);
    for (p, v) in m.upstream.versions() {
        m.assert_mirrored(&p, &v);
    }
    assert!(m.temp_files().is_empty(), "{:?}", m.temp_files());
    let status = assert_last_run(&m, "sync", 0);
    assert_eq!(
        status["counts"]["published"],
        m.upstream.versions().len() as u64
    );
    m.sync().expect(0).contains("published 0 new versions");
}

#[test]
fn sync_dry_run_into_a_closed_pipe_exits_0_and_changes_nothing() {
    let m = Mirror::new(small());
    assert_eq!(run_into_closed_pipe(&m, &["sync", "--dry-run"]), 0);
    assert!(m.tree_files().is_empty(), "{:?}", m.tree_files());
}

#[test]
fn failing_sync_into_a_closed_pipe_keeps_exit_1_and_records_the_run() {
    // The failure is printed on stderr while the sync runs, so the closed
    // pipe is hit mid-pipeline, not only by the closing summary.
    let m = Mirror::new(small());
    let v = first_version(&m);
    m.upstream.inject(Fault::TamperZip {
        path: M.into(),
        version: v.clone(),
    });
    let code = run_into_closed_pipe(&m, &["sync"]);
    assert_eq!(code, 1, "some versions failed: exit 1, closed pipe or not");
    m.assert_absent(M, &v);
    let status = assert_last_run(&m, "sync", 1);
    assert_eq!(status["counts"]["failed"], 1, "{status:#}");
    assert_eq!(
        status["counts"]["published"],
        m.upstream.versions().len() as u64 - 1
    );
    m.upstream.clear_faults();
    m.run(&["sync", "--retry-failed"]).expect(0);
    m.assert_mirrored(M, &v);
}

#[test]
fn sync_into_a_full_disk_exits_2_and_still_records_the_run() {
    let m = Mirror::new(small());
    let (code, stderr) = run_with_stdout(&m, &["sync"], dev_full());
    assert_no_panic(&stderr);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("error: cannot write the output to stdout"),
        "{stderr}"
    );
    for (p, v) in m.upstream.versions() {
        m.assert_mirrored(&p, &v);
    }
    // The sync itself succeeded; only its summary was lost.
    assert_last_run(&m, "sync", 0);
}

/// A synced mirror whose filter then dropped `M`: prune has versions to list.
fn mirror_with_something_to_prune() -> Mirror {
    let mut m = Mirror::new(small());
    m.sync().expect(0);
    m.cfg.exclude = vec![M.into()];
    m.write_config();
    m
}

#[test]
fn prune_dry_run_into_a_closed_pipe_exits_0_and_deletes_nothing() {
    let m = mirror_with_something_to_prune();
    let before = m.tree_files();
    let (code, stderr) = run_with_stdout(&m, &["prune", "--dry-run"], closed_pipe());
    assert_no_panic(&stderr);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(m.tree_files(), before, "a dry run deleted files");
    assert_last_run(&m, "prune", 0);
}

#[test]
fn prune_dry_run_into_a_full_disk_exits_2_and_deletes_nothing() {
    let m = mirror_with_something_to_prune();
    let before = m.tree_files();
    let (code, stderr) = run_with_stdout(&m, &["prune", "--dry-run"], dev_full());
    assert_no_panic(&stderr);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("error: cannot write the output to stdout"),
        "{stderr}"
    );
    assert_eq!(m.tree_files(), before, "a dry run deleted files");
    assert_last_run(&m, "prune", 0);
}

#[test]
fn help_into_a_full_disk_exits_2() {
    let m = Mirror::new(small());
    let (code, stderr) = run_with_stdout(&m, &["--help"], dev_full());
    assert_eq!(code, 2, "{stderr}");
    let (code, stderr) = run_with_stdout(&m, &["--help"], closed_pipe());
    assert_eq!(code, 0, "{stderr}");
}

fn first_version(m: &Mirror) -> String {
    m.upstream
        .versions()
        .into_iter()
        .find(|(p, _)| p == M)
        .map(|(_, v)| v)
        .expect("the corpus has M")
}

// ---- snapshots -------------------------------------------------------------

/// Masks what differs from run to run, as uv's `INSTA_FILTERS` do: the
/// temporary directory, ports, times, durations, sizes and rates.
fn filters(m: &Mirror) -> Vec<(String, String)> {
    let dir = m.dir.path().display().to_string();
    vec![
        (regex_escape(&dir), "[TEMP]".into()),
        (r"/tmp/\.tmp[A-Za-z0-9]+".into(), "[TEMP]".into()),
        (r"127\.0\.0\.1:\d+".into(), "127.0.0.1:[PORT]".into()),
        (
            r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?( UTC|Z)?".into(),
            "[TIME]".into(),
        ),
        (r"\b\d+h \d{2}m\b".into(), "[DURATION]".into()),
        (r"\b\d+m \d{2}s\b".into(), "[DURATION]".into()),
        (r"\b\d+(\.\d+)?s\b".into(), "[DURATION]".into()),
        (
            r"\b\d+(\.\d+)? (B|KiB|MiB|GiB|TiB|PiB)\b".into(),
            "[SIZE]".into(),
        ),
        (r"\b\d+ MB/s\b".into(), "[RATE]".into()),
        // Progress lines come every 10 s of a slow run: on a busy machine only.
        (
            r"(?m)^(index|fetching|verifying): \d+.*\n".into(),
            String::new(),
        ),
    ]
}

fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Asserts `run` (exit code, stdout, stderr) against the stored snapshot `name`.
#[track_caller]
fn assert_output(m: &Mirror, name: &str, run: &Run) {
    let text = format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        run.code, run.stdout, run.stderr
    );
    let mut settings = insta::Settings::clone_current();
    for (re, with) in filters(m) {
        settings.add_filter(&re, with);
    }
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!(name, text));
}

/// One worker: failures are found, printed and summarised in one order.
fn one_worker() -> Cfg {
    Cfg {
        workers: 1,
        ..Cfg::default()
    }
}

#[test]
fn sync_summary_of_a_clean_run() {
    let m = Mirror::with(small(), FakeOptions::default(), one_worker());
    let r = m.sync();
    r.expect(0);
    assert_output(&m, "sync_clean", &r);
    let r = m.sync();
    r.expect(0);
    assert_output(&m, "sync_nothing_new", &r);
}

#[test]
fn sync_summary_with_failures_names_the_security_mismatch() {
    let m = Mirror::with(
        Corpus::generated(3, 2, 11),
        FakeOptions::default(),
        one_worker(),
    );
    let versions = m.upstream.versions();
    let tampered = versions.iter().find(|(p, _)| p == M).expect("M").clone();
    let broken = versions
        .iter()
        .find(|(p, _)| p == "example.com/gen/m2")
        .expect("m2")
        .clone();
    m.upstream.inject(Fault::TamperZip {
        path: tampered.0.clone(),
        version: tampered.1.clone(),
    });
    m.upstream.inject(Fault::Status {
        path_prefix: format!("/proxy/{}", version_file(&broken.0, &broken.1, "zip")),
        status: 500,
    });
    let r = m.sync();
    r.expect(1);
    assert_output(&m, "sync_failures", &r);
    let r = m.run(&["status"]);
    r.expect(0);
    assert_output(&m, "status_with_failures", &r);
}

#[test]
fn sync_summary_of_a_fatal_run() {
    let m = Mirror::with(small(), FakeOptions::default(), one_worker());
    m.upstream.inject(Fault::BadSignature);
    let r = m.sync();
    r.expect(2);
    assert_output(&m, "sync_fatal", &r);
}

#[test]
fn sync_summary_of_a_dry_run() {
    let m = Mirror::with(small(), FakeOptions::default(), one_worker());
    let r = m.run(&["sync", "--dry-run"]);
    r.expect(0);
    assert_output(&m, "sync_dry_run", &r);
}

#[test]
fn prune_summaries() {
    let m = mirror_with_something_to_prune();
    let r = m.run(&["prune", "--dry-run"]);
    r.expect(0);
    assert_output(&m, "prune_dry_run", &r);
    let r = m.run(&["prune"]);
    r.expect(0);
    assert_output(&m, "prune", &r);
}

#[test]
fn verify_summaries() {
    let m = Mirror::with(small(), FakeOptions::default(), one_worker());
    m.sync().expect(0);
    let r = m.run(&["verify"]);
    r.expect(0);
    assert_output(&m, "verify_clean", &r);
    let v = first_version(&m);
    std::fs::remove_file(m.out().join(version_file(M, &v, "zip"))).expect("remove a zip");
    std::fs::write(m.out().join(version_file(M, &v, "mod")), "module evil\n")
        .expect("damage a go.mod");
    let r = m.run(&["verify"]);
    r.expect(1);
    assert_output(&m, "verify_problems", &r);
    let r = m.run(&["verify", "--repair"]);
    r.expect(0);
    assert_output(&m, "verify_repair", &r);
}

#[test]
fn status_output() {
    let m = Mirror::with(small(), FakeOptions::default(), one_worker());
    let r = m.run(&["status"]);
    r.expect(2);
    assert_output(&m, "status_before_any_sync", &r);
    m.sync().expect(0);
    let r = m.run(&["status"]);
    r.expect(0);
    assert_output(&m, "status_after_sync", &r);
}

// ---- cron mail: only what an operator must act on ------------------------
// What `-q` lets through is what cron mails: each case is a snapshot.

#[test]
fn cron_mail_is_empty_while_another_run_holds_the_lock() {
    let m = Mirror::with(small(), FakeOptions::default(), one_worker());
    let lock = File::create(m.dir.path().join("state.db.lock")).unwrap();
    lock.try_lock().unwrap();
    let r = m.run(&["-q", "sync"]);
    r.expect(3);
    assert_output(&m, "cron_lock_held", &r);
    // Without -q a person is told.
    m.run(&["sync"])
        .expect(3)
        .contains("another gomirror run holds the lock");
}

#[test]
fn cron_mail_of_a_refused_prune_is_a_few_lines() {
    // A mirror of many versions whose filter suddenly wants almost none.
    let mut m = Mirror::with(
        Corpus::generated(30, 3, 5),
        FakeOptions::default(),
        one_worker(),
    );
    m.cfg.max_delete = "5".into();
    m.write_config();
    m.sync().expect(0);
    m.cfg.include = vec![M.into()];
    m.write_config();
    let r = m.run(&["-q", "sync"]);
    r.expect(2);
    assert!(
        r.all().lines().count() < 15,
        "a refusal is a few lines, not the deletion set:\n{}",
        r.all()
    );
    assert_output(&m, "cron_prune_refused", &r);
}

#[test]
fn configuration_errors_show_what_was_typed_and_check_before_any_request() {
    let mut m = Mirror::with(small(), FakeOptions::default(), one_worker());
    // A proxy without its scheme.
    m.cfg.proxy = Some("proxy.golang.org".into());
    m.write_config();
    let r = m.run(&["sync"]);
    r.expect(2);
    assert_output(&m, "config_url_without_scheme", &r);
    // A number written as a string.
    m.cfg.proxy = None;
    m.cfg.extra = String::new();
    m.write_config();
    let text = std::fs::read_to_string(m.config_path())
        .unwrap()
        .replace("workers = 1", "workers = \"16\"");
    std::fs::write(m.config_path(), text).unwrap();
    let r = m.run(&["sync"]);
    r.expect(2);
    assert_output(&m, "config_number_in_quotes", &r);
    // A project file that is missing is named before any request is made
    // (the seed would be listed over the network first otherwise).
    m.cfg.seed = vec![M.into()];
    m.cfg.extra = String::new();
    m.write_config();
    let text = std::fs::read_to_string(m.config_path()).unwrap().replace(
        "[filter]\n",
        "[filter]\nfrom_files = [\"projects/app/go.sum\"]\n",
    );
    std::fs::write(m.config_path(), text).unwrap();
    m.upstream.clear_request_log();
    let r = m.run(&["sync"]);
    r.expect(2);
    assert_output(&m, "config_missing_project_file", &r);
    assert!(
        m.upstream.request_log().is_empty(),
        "requests before the check: {:?}",
        m.upstream.request_log()
    );
}

#[test]
fn commands_on_a_mirror_that_never_synced_say_so() {
    let m = Mirror::with(small(), FakeOptions::default(), one_worker());
    for cmd in ["verify", "prune"] {
        let r = m.run(&[cmd]);
        r.expect(2);
        assert_output(&m, &format!("never_synced_{cmd}"), &r);
    }
    assert!(
        !m.dir.path().join("state.db").exists(),
        "no state database was created"
    );
    // No configuration where the default is read: a hint at the usual place.
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gomirror"))
        .arg("status")
        .current_dir(empty.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("-c /etc/gomirror/sync.toml"),
        "a hint at the installed config: {stderr}"
    );
}

#[test]
fn one_form_for_times_and_words_that_agree_with_their_numbers() {
    let m = Mirror::with(
        Corpus::generated(1, 1, 3),
        FakeOptions::default(),
        one_worker(),
    );
    m.sync().expect(0);
    let status = m.status();
    let run = &status["runs"][0];
    for key in ["started", "finished"] {
        let t = run[key].as_str().unwrap_or_else(|| panic!("{key}: {run}"));
        assert!(
            t.ends_with('Z') && t.contains('T'),
            "{key} is RFC 3339: {t}"
        );
    }
    let r = m.run(&["verify", "--quick"]);
    r.expect(0);
    assert_output(&m, "verify_quick_one_module", &r);
}
