//! Deterministic crash points: a run is aborted at each of its durability
//! points in turn (every `syncfs` barrier, rename into the tree, removal and
//! state-database commit; see `src/crashpoint.rs`), and at each the test
//! checks what a client could see at that moment, reruns the command, and
//! checks the mirror came out exactly as an uninterrupted run leaves it.
//!
//! Beside the random `kill -9` of `sync_basics.rs`, which mostly lands in a
//! download, this reaches every moment between two steps that matter: after a
//! rename and before the commit that records it, after a commit and before the
//! lists are rewritten, between the removals of a prune.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::common::*;
use crate::support::{Corpus, ModuleVersionSpec};

/// The signal `std::process::abort` raises.
const SIGABRT: i32 = 6;

/// One gomirror invocation in a mirror directory, with its exit status as is
/// (a signal is not an exit code).
struct Outcome {
    code: Option<i32>,
    signal: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn describe(&self) -> String {
        format!(
            "code {:?}, signal {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.signal, self.stdout, self.stderr
        )
    }
}

fn gomirror_in(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Outcome {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gomirror"));
    cmd.arg("-c")
        .arg(dir.join("sync.toml"))
        .args(args)
        .env("GOMIRROR_TEST_RETRY_BASE_MS", "0")
        // Batches flush only when full or at the end: the same points on
        // every run, whatever the machine's load.
        .env("GOMIRROR_TEST_BATCH_WAIT_MS", "3600000")
        .env_remove("GOMIRROR_CRASH_AT")
        .env_remove("GOMIRROR_CRASH_COUNT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run gomirror");
    Outcome {
        code: out.status.code(),
        signal: out.status.signal(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A copy of a mirror directory (`sync.toml`, tree, state database) with
/// times preserved, so each crash starts from the very same place.
fn copy_mirror(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().expect("temp dir");
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to.path())
        .status()
        .expect("run cp");
    assert!(status.success(), "cp -a {} failed", from.display());
    to
}

/// Every file a client can be served (gomirror's own directory left out), with its bytes.
fn served_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let out = dir.join("mirror");
    let mut tree: BTreeMap<String, Vec<u8>> = files_under(&out)
        .into_iter()
        .filter(|f| !f.starts_with(".gomirror/") && !f.starts_with("feed/"))
        .map(|f| {
            let bytes = std::fs::read(out.join(&f)).unwrap_or_default();
            (f, bytes)
        })
        .collect();
    // The feed's files differ between two mirrors (its id, its times, the
    // order of a batch), so what is compared is what a follower reads from
    // it: the set of published versions.
    if let Some(live) = feed_replay(&out) {
        tree.insert(FEED_REPLAY.to_string(), live.into_bytes());
    }
    tree
}

const FEED_REPLAY: &str = "feed/ (the published versions a follower reads)";

/// The versions `<out>/feed/` says are published, one `path version` line
/// each, sorted, as a follower reads them from `feed/latest` on.
fn feed_replay(out: &Path) -> Option<String> {
    let latest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("feed/latest")).ok()?).ok()?;
    let size = latest["segment_entries"].as_u64().unwrap();
    let (first, next) = (
        latest["first"].as_u64().unwrap(),
        latest["next"].as_u64().unwrap(),
    );
    let mut live = std::collections::BTreeSet::new();
    if let Some(file) = latest["snapshot"]["file"].as_str() {
        let text = std::fs::read_to_string(out.join("feed").join(file)).unwrap();
        for l in text.lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            live.insert(format!(
                "{} {}",
                v["path"].as_str().unwrap(),
                v["version"].as_str().unwrap()
            ));
        }
    }
    let start = latest["snapshot"]["seq"].as_u64().unwrap_or(first);
    let mut k = start / size;
    while k * size < next {
        let name = if (k + 1) * size <= next {
            format!("feed/{k:012}.jsonl")
        } else {
            "feed/tail.jsonl".to_string()
        };
        let text = std::fs::read_to_string(out.join(&name))
            .unwrap_or_else(|e| panic!("{name} announced by feed/latest: {e}"));
        for l in text.lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let seq = v["seq"].as_u64().unwrap();
            if seq < start || seq >= next {
                continue;
            }
            let key = format!(
                "{} {}",
                v["path"].as_str().unwrap(),
                v["version"].as_str().unwrap()
            );
            match v["op"].as_str().unwrap() {
                "publish" => live.insert(key),
                _ => live.remove(&key),
            };
        }
        k += 1;
    }
    Some(live.into_iter().map(|l| l + "\n").collect())
}

/// What the upstream serves, fetched once per file.
struct UpstreamBytes<'a> {
    m: &'a Mirror,
    cache: HashMap<String, Vec<u8>>,
}

impl UpstreamBytes<'_> {
    fn get(&mut self, rel: &str) -> &[u8] {
        if !self.cache.contains_key(rel) {
            let bytes = self.m.upstream_bytes(rel);
            self.cache.insert(rel.to_string(), bytes);
        }
        &self.cache[rel]
    }
}

/// What a client could see at the crash moment, checked against invariants
/// 1 and 3: every module file the run wrote where a client looks is whole
/// (the upstream's bytes; files `before` the run held as they are, strays the
/// test planted, are not the run's), and every version `@v/list` or
/// `@latest` names has its `.info`, `.mod` and `.zip` in place. Returns the
/// problems found.
fn client_view_problems(
    tree: &BTreeMap<String, Vec<u8>>,
    before: &BTreeMap<String, Vec<u8>>,
    up: &mut UpstreamBytes,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (rel, bytes) in tree {
        let is_module_file =
            rel.contains("/@v/") && [".info", ".mod", ".zip"].iter().any(|e| rel.ends_with(e));
        let untouched = before.get(rel) == Some(bytes);
        if is_module_file && !untouched && bytes.as_slice() != up.get(rel) {
            problems.push(format!("{rel}: differs from the upstream's (partial?)"));
        }
    }
    let need = |module_dir: &str, version: &str, from: &str, problems: &mut Vec<String>| {
        for ext in ["info", "mod", "zip"] {
            let rel = format!("{module_dir}/@v/{}.{ext}", escape(version));
            if !tree.contains_key(&rel) {
                problems.push(format!("{from} names {version} but {rel} is missing"));
            }
        }
    };
    // A follower never reads a feed entry for files that are not there yet.
    if let Some(live) = tree.get(FEED_REPLAY) {
        for l in String::from_utf8_lossy(live).lines() {
            let (path, version) = l.split_once(' ').unwrap();
            for ext in ["info", "mod", "zip"] {
                let rel = version_file(path, version, ext);
                if !tree.contains_key(&rel) {
                    problems.push(format!(
                        "the feed names {path}@{version} but {rel} is missing"
                    ));
                }
            }
        }
    }
    for (rel, bytes) in tree {
        if let Some(module_dir) = rel.strip_suffix("/@v/list") {
            for v in String::from_utf8_lossy(bytes)
                .lines()
                .filter(|l| !l.is_empty())
            {
                need(module_dir, v, rel, &mut problems);
            }
        } else if let Some(module_dir) = rel.strip_suffix("/@latest") {
            match serde_json::from_slice::<serde_json::Value>(bytes) {
                Ok(info) => match info["Version"].as_str() {
                    Some(v) => need(module_dir, v, rel, &mut problems),
                    None => problems.push(format!("{rel}: no Version")),
                },
                Err(e) => problems.push(format!("{rel}: not JSON: {e}")),
            }
        }
    }
    problems
}

fn differences(got: &BTreeMap<String, Vec<u8>>, want: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    let mut d = Vec::new();
    for (rel, bytes) in want {
        match got.get(rel) {
            None => d.push(format!("missing {rel}")),
            // The trace file says when the run ended and what it published:
            // it must describe the same tree, not carry the same times.
            Some(b) if rel.starts_with("trace/") => {
                let fields = |b: &[u8]| {
                    let t: serde_json::Value = serde_json::from_slice(b).unwrap_or_default();
                    ["mirror", "versions", "index_cursor", "sumdb_tree_size"].map(|k| t[k].clone())
                };
                if fields(b) != fields(bytes) {
                    d.push(format!("differs {rel}"));
                }
            }
            // The front page says when it was written and how the runs
            // went (a crashed run among them): the other pages must match.
            Some(_) if rel == "site/index.html" => {}
            Some(b) if b != bytes => d.push(format!("differs {rel}")),
            Some(_) => {}
        }
    }
    for rel in got.keys().filter(|r| !want.contains_key(*r)) {
        d.push(format!("extra {rel}"));
    }
    d
}

/// The parts of `status --json` that say what the state database holds
/// (the versions by state, and what the supply-chain policy holds back).
fn state_counts(dir: &Path) -> serde_json::Value {
    let r = gomirror_in(dir, &["status", "--json"], &[]);
    assert_eq!(r.code, Some(0), "status: {}", r.describe());
    let s: serde_json::Value = serde_json::from_str(&r.stdout).expect("status --json is JSON");
    let p = &s["policy"];
    serde_json::json!({
        "counts": s["counts"],
        "policy": [p["held"].clone(), p["denied"].clone(), p["denied_in_tree"].clone(), p["retained"].clone()],
    })
}

fn read_count(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Crashes `args` (run from a copy of `template`) at each of its durability
/// points; after each crash checks the client's view, reruns `args` without
/// a crash, and requires a clean `verify` and the tree and counts of an
/// uninterrupted run (both exit 0). After a sync, no temporary file is left
/// (a prune leaves the next sync to clean them). Returns the number of points.
fn crash_at_every_point(m: &Mirror, template: &Path, args: &[&str], what: &str) -> u64 {
    crash_at_every_point_with(m, template, args, what, &[])
}

/// [`crash_at_every_point`] with `env` set for every run of the sweep (a
/// test clock that has moved on).
fn crash_at_every_point_with(
    m: &Mirror,
    template: &Path,
    args: &[&str],
    what: &str,
    env: &[(&str, String)],
) -> u64 {
    let with = |extra: Option<(&'static str, String)>| -> Vec<(&str, String)> {
        let mut v: Vec<(&str, String)> = env.to_vec();
        v.extend(extra);
        v
    };
    let started = Instant::now();
    let mut up = UpstreamBytes {
        m,
        cache: HashMap::new(),
    };

    // The uninterrupted run: what every crashed-and-rerun copy must become.
    let reference = copy_mirror(template);
    let count_file = reference.path().join("points");
    let r = gomirror_in(
        reference.path(),
        args,
        &with(Some((
            "GOMIRROR_CRASH_COUNT",
            count_file.display().to_string(),
        ))),
    );
    assert_eq!(r.code, Some(0), "{what}, uninterrupted: {}", r.describe());
    let points = read_count(&count_file);
    assert!(points > 0, "{what}: the run passed no crash point");
    let before = served_tree(template);
    let want_tree = served_tree(reference.path());
    let want_counts = state_counts(reference.path());
    assert!(
        client_view_problems(&want_tree, &before, &mut up).is_empty(),
        "{what}: the uninterrupted run broke an invariant"
    );

    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    for n in 1..=points {
        let work = copy_mirror(template);
        let dir = work.path();
        let crashed = gomirror_in(dir, args, &with(Some(("GOMIRROR_CRASH_AT", n.to_string()))));
        assert_eq!(
            crashed.signal,
            Some(SIGABRT),
            "{what}: crash point {n} of {points} not reached: {}",
            crashed.describe()
        );
        let marker = format!("crash point {n} (");
        let kind = crashed
            .stderr
            .split(&marker)
            .nth(1)
            .and_then(|s| s.split(')').next())
            .unwrap_or_else(|| panic!("{what}: no crash message: {}", crashed.describe()));
        *kinds.entry(kind.to_string()).or_default() += 1;

        let at_crash = served_tree(dir);
        let problems = client_view_problems(&at_crash, &before, &mut up);
        assert!(
            problems.is_empty(),
            "{what}: crashed at point {n} ({kind}), a client would see:\n{}",
            problems.join("\n")
        );

        let rerun = gomirror_in(dir, args, &with(None));
        assert_eq!(
            rerun.code,
            Some(0),
            "{what}: rerun after a crash at point {n} ({kind}): {}",
            rerun.describe()
        );
        let verify = gomirror_in(dir, &["verify"], &with(None));
        assert_eq!(
            verify.code,
            Some(0),
            "{what}: verify after a crash at point {n} ({kind}) and a rerun: {}",
            verify.describe()
        );
        if args == ["sync"] {
            let left = files_under(&dir.join("mirror/.gomirror"));
            assert!(
                left.is_empty(),
                "{what}: temporary files left after a crash at point {n} and a rerun: {left:?}"
            );
        }
        let got = served_tree(dir);
        let diff = differences(&got, &want_tree);
        assert!(
            diff.is_empty(),
            "{what}: after a crash at point {n} ({kind}) and a rerun the tree is not an uninterrupted run's:\n{}",
            diff.join("\n")
        );
        assert_eq!(
            state_counts(dir),
            want_counts,
            "{what}: after a crash at point {n} ({kind}) and a rerun"
        );
        assert!(
            client_view_problems(&got, &before, &mut up).is_empty(),
            "{what}: after a crash at point {n} and a rerun"
        );
    }
    eprintln!(
        "{what}: crashed at each of {points} points ({kinds:?}) in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    points
}

/// A few modules, a handful of versions: every point costs three runs.
fn corpus() -> Corpus {
    Corpus::generated(3, 2, 77)
}

/// A mirror of [`corpus`] on a log whose right edge is narrow: the tree
/// holds every width of the edge tiles (one file and one crash point each),
/// and a few widths exercise every kind of point as well as 240 would, at a
/// fifth of the sweep's time.
fn swept_mirror() -> Mirror {
    let options = crate::support::FakeOptions {
        filler_records: 1020,
        ..crate::support::FakeOptions::default()
    };
    Mirror::with(corpus(), options, Cfg::default())
}

/// The mirror directory of `m` as it is now, for copies.
fn template_of(m: &Mirror) -> PathBuf {
    m.dir.path().to_path_buf()
}

/// The upstream grows (a new version of a kept module, a new module) and
/// the filter drops a module: the next run publishes and prune deletes.
fn grow_and_narrow(m: &mut Mirror) {
    m.upstream
        .add(ModuleVersionSpec::new("example.com/gen/m0", "v1.9.0"));
    m.upstream
        .add(ModuleVersionSpec::new("example.com/later", "v0.1.0"));
    m.cfg.exclude = vec!["example.com/gen/m2".into()];
    m.write_config();
}

#[test]
fn crash_at_every_point_of_a_fresh_sync_recovers() {
    let m = swept_mirror();
    let points = crash_at_every_point(&m, &template_of(&m), &["sync"], "fresh sync");
    assert!(points >= 10, "only {points} points");
}

#[test]
fn crash_at_every_point_of_a_sync_that_adds_and_prunes_recovers() {
    let mut m = swept_mirror();
    m.cfg.max_delete = "100".into();
    m.write_config();
    m.sync().expect(0);
    grow_and_narrow(&mut m);
    let points = crash_at_every_point(&m, &template_of(&m), &["sync"], "second sync");
    assert!(points >= 10, "only {points} points");
}

#[test]
fn crash_at_every_point_of_a_prune_recovers() {
    let mut m = swept_mirror();
    m.cfg.max_delete = "100".into();
    m.cfg.prune_enabled = false;
    m.write_config();
    m.sync().expect(0);
    m.cfg.exclude = vec!["example.com/gen/m1".into()];
    m.write_config();
    // Strays too: files nobody published.
    std::fs::write(m.out().join("README.txt"), "dropped in by hand").unwrap();
    std::fs::write(
        m.out()
            .join(version_file("example.com/gen/m0", "v9.9.9", "zip")),
        "not ours",
    )
    .unwrap();
    let points = crash_at_every_point(&m, &template_of(&m), &["prune"], "prune");
    assert!(points >= 5, "only {points} points");
}

#[test]
fn crash_at_every_point_of_an_import_recovers() {
    let mut m = swept_mirror();
    m.cfg.max_delete = "100".into();
    m.write_config();
    m.sync().expect(0);
    let media = tempfile::tempdir().unwrap();
    let first = crate::airgap::export(&m, media.path(), &[]);
    let far = crate::airgap::Far::new(&m.upstream.sumdb_key());
    let args = ["import", first.to_str().unwrap()];
    let points = crash_at_every_point(&m, far.dir.path(), &args, "first import");
    assert!(points >= 10, "only {points} points");

    // A delta that adds and deletes, into the far side as bundle 1 left it.
    far.import(&first).expect(0);
    grow_and_narrow(&mut m);
    m.sync().expect(0);
    let second = crate::airgap::export(&m, media.path(), &[]);
    let args = ["import", second.to_str().unwrap()];
    let points = crash_at_every_point(&m, far.dir.path(), &args, "delta import");
    assert!(points >= 10, "only {points} points");
}

/// Found by the fresh-sync sweep: a crash just after the commit that records
/// a batch, before `supported` and `latest` were written, left them missing
/// for good — the rerun had nothing new to publish, so it never wrote them,
/// and every go client using the mirror's checksum database failed.
#[test]
fn sync_restores_sumdb_latest_left_unwritten_by_a_killed_run() {
    let m = swept_mirror();
    m.sync().expect(0);
    let name = m.upstream.sumdb_name();
    let latest = format!("sumdb/{name}/latest");
    let supported = format!("sumdb/{name}/supported");
    let want = m.file(&latest).expect("latest written");
    // The state a crash at that point leaves: recorded, not written.
    std::fs::remove_file(m.out().join(&latest)).unwrap();
    std::fs::remove_file(m.out().join(&supported)).unwrap();
    m.sync().expect(0);
    assert_eq!(m.file(&latest), Some(want), "{latest} not restored");
    assert!(m.file(&supported).is_some(), "{supported} not restored");
    m.run(&["verify"]).expect(0);
}

/// Microseconds since the epoch, for an index entry stamped "now".
fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// Issue 27: a sync under a new supply-chain policy — a version an hour
/// old is held, a module is denied and its versions in the tree are
/// removed — survives a kill at every point (the policy applied to the
/// state database, the verdicts recorded, the takedown pruned).
#[test]
fn crash_at_every_point_of_a_sync_that_holds_and_denies_recovers() {
    let mut m = swept_mirror();
    m.cfg.max_delete = "100".into();
    m.write_config();
    m.sync().expect(0);
    m.upstream.add_at(
        ModuleVersionSpec::new("example.com/gen/m0", "v1.9.0"),
        now_us() - 3_600_000_000,
    );
    m.cfg.extra = "[policy]\nmin_age = \"3d\"\ndeny = [\"example.com/gen/m1\"]\n".into();
    m.write_config();
    let points = crash_at_every_point(&m, &template_of(&m), &["sync"], "sync holding and denying");
    assert!(points >= 10, "only {points} points");
}

/// Issue 27: the first sync after a held version is old enough publishes
/// it, and survives a kill at every point of that.
#[test]
fn crash_at_every_point_of_a_sync_that_publishes_a_cooled_version_recovers() {
    let mut m = swept_mirror();
    m.cfg.extra = "[policy]\nmin_age = \"3d\"\n".into();
    m.write_config();
    m.sync().expect(0);
    m.upstream.add_at(
        ModuleVersionSpec::new("example.com/gen/m0", "v1.9.0"),
        now_us() - 3_600_000_000,
    );
    m.sync().expect(0).contains("1 held");
    let later = [("GOMIRROR_TEST_CLOCK_OFFSET_SECS", (3 * 86_400).to_string())];
    let points = crash_at_every_point_with(
        &m,
        &template_of(&m),
        &["sync"],
        "sync publishing a cooled version",
        &later,
    );
    assert!(points >= 10, "only {points} points");
}
