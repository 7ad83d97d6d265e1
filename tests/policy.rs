//! Issue 27: supply-chain defenses. A cooldown (`policy.min_age`) holds a
//! version until it is old enough by the index's timestamp (never its
//! `.info` Time), then the first sync after that fetches it, once; `allow`
//! exempts; `deny` keeps a version out and takes one out of the tree, its
//! lists, the change feed, a far side (through a bundle) and a follower;
//! `prune.keep` keeps what an application upgrade stops naming, and spreads
//! its removal under `prune.max_delete` instead of refusing every sync. The
//! real go command resolves through the mirror; the test clock
//! (`GOMIRROR_TEST_CLOCK_OFFSET_SECS`) moves days on.

use std::collections::BTreeSet;
use std::path::Path;

use crate::common::*;
use crate::e2e::{GoClient, Nginx};
use crate::no_index::feedless;
use crate::support::{Corpus, FakeOptions, ModuleVersionSpec};

const DAY: i64 = 86_400;

/// Microseconds since the epoch (the index's unit), `ago_secs` back.
fn stamped_ago(ago_secs: i64) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    now - ago_secs * 1_000_000
}

fn spec(path: &str, version: &str) -> ModuleVersionSpec {
    ModuleVersionSpec::new(path, version)
}

/// Runs `gomirror ARGS` with the clock `offset` seconds ahead.
fn run_at(m: &Mirror, args: &[&str], offset: i64) -> Run {
    m.run_env(
        args,
        &[("GOMIRROR_TEST_CLOCK_OFFSET_SECS", &offset.to_string())],
    )
}

/// The versions `@v/list` names.
fn listed(m: &Mirror, module: &str) -> Vec<String> {
    m.text(&format!("{}/@v/list", escape(module)))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The version `@latest` names.
fn latest(m: &Mirror, module: &str) -> Option<String> {
    let text = m.text(&format!("{}/@latest", escape(module)))?;
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["Version"].as_str().map(str::to_string)
}

/// `m@v` for every version whose `.info` is in the tree at `out`.
fn versions_in(out: &Path) -> BTreeSet<String> {
    files_under(out)
        .iter()
        .filter_map(|f| {
            let (module, v) = f.strip_suffix(".info")?.split_once("/@v/")?;
            Some(format!(
                "{}@{}",
                crate::support::goformat::unescape(module)?,
                crate::support::goformat::unescape(v)?
            ))
        })
        .collect()
}

/// What `go list -m` answers for `arg` through the mirror at `out`
/// (`file://`, a fresh module cache each time).
fn go_list(m: &Mirror, args: &[&str]) -> String {
    let go = GoClient::new(
        &format!("file://{}", m.out().display()),
        &m.upstream.sumdb_key(),
    );
    let mut a = vec!["list", "-m"];
    a.extend_from_slice(args);
    let (ok, out) = go.run(&a);
    assert!(ok, "go {a:?} through the mirror:\n{out}");
    out.trim().to_string()
}

/// Every feed entry of the tree at `out`: (op, path, version), in order.
fn feed_entries(out: &Path) -> Vec<(String, String, String)> {
    let mut files: Vec<String> = files_under(&out.join("feed"))
        .into_iter()
        .filter(|f| f.ends_with(".jsonl") && !f.starts_with("snapshot"))
        .collect();
    // Numbered segments first, the tail last.
    files.sort_by_key(|f| (f == "tail.jsonl", f.clone()));
    let mut entries = Vec::new();
    for f in files {
        for l in std::fs::read_to_string(out.join("feed").join(&f))
            .unwrap()
            .lines()
        {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            entries.push((
                v["op"].as_str().unwrap_or("publish").to_string(),
                v["path"].as_str().unwrap().to_string(),
                v["version"].as_str().unwrap().to_string(),
            ));
        }
    }
    entries
}

const LIB: &str = "example.com/app/lib";

#[test]
fn a_young_version_is_held_until_old_enough_then_published_with_one_fetch() {
    let m = Mirror::with(
        Corpus::new().with(spec(LIB, "v1.0.0")),
        FakeOptions::default(),
        Cfg {
            extra: "[policy]\nmin_age = \"3d\"\n".into(),
            ..Cfg::default()
        },
    );
    // On the index an hour ago; its `.info` Time (the commit time, which
    // the author sets) years back: the cooldown goes by the index.
    m.upstream.add_at(
        spec(LIB, "v1.1.0").with_time("2020-01-01T00:00:00Z"),
        stamped_ago(3600),
    );
    m.sync()
        .expect(0)
        .contains("policy: 1 held this run (policy.min_age 3days)")
        .contains(&format!("{LIB}@v1.1.0 held until"));
    m.assert_mirrored(LIB, "v1.0.0");
    m.assert_absent(LIB, "v1.1.0");
    assert_eq!(listed(&m, LIB), ["v1.0.0"]);
    assert_eq!(latest(&m, LIB).as_deref(), Some("v1.0.0"));
    assert!(
        !m.upstream
            .request_log()
            .iter()
            .any(|r| r.contains("@v/v1.1.0.")),
        "a held version was downloaded"
    );
    let s = m.status();
    assert_eq!(s["policy"]["held"], 1, "{}", s["policy"]);
    let held = &s["policy"]["held_versions"][0];
    assert_eq!(held["version"], "v1.1.0");
    let ready: jiff::Timestamp = held["ready_at"].as_str().unwrap().parse().unwrap();
    let first: jiff::Timestamp = held["first_seen"].as_str().unwrap().parse().unwrap();
    assert_eq!(ready.as_second() - first.as_second(), 3 * DAY);
    m.run(&["status"])
        .expect(0)
        .contains(&format!("held     {LIB}@v1.1.0 until"));

    // The real go command resolves @latest to the previous version.
    assert_eq!(
        go_list(&m, &["-f", "{{.Version}}", &format!("{LIB}@latest")]),
        "v1.0.0"
    );
    assert_eq!(go_list(&m, &["-versions", LIB]), format!("{LIB} v1.0.0"));

    // A day later: still held, nothing fetched.
    m.upstream.clear_request_log();
    run_at(&m, &["sync"], DAY).expect(0);
    m.assert_absent(LIB, "v1.1.0");
    assert_eq!(m.upstream.requests(&format!("/proxy/{LIB}/@v/")), 0);

    // Three days on: published by this sync, and only its files fetched.
    m.upstream.clear_request_log();
    run_at(&m, &["sync"], 3 * DAY)
        .expect(0)
        .contains("published 1 new version");
    // (Read before `assert_mirrored`, which asks the upstream for its bytes.)
    let log: Vec<String> = m
        .upstream
        .request_log()
        .into_iter()
        .filter(|r| r.starts_with("/proxy/") && r.contains("/@v/"))
        .collect();
    m.assert_mirrored(LIB, "v1.1.0");
    let fetched: BTreeSet<String> = log.iter().cloned().collect();
    let want: BTreeSet<String> = ["info", "mod", "zip"]
        .iter()
        .map(|e| format!("/proxy/{LIB}/@v/v1.1.0.{e}"))
        .collect();
    assert_eq!(
        fetched, want,
        "each file of the ripe version once, nothing else"
    );
    assert_eq!(log.len(), 3, "each once: {log:?}");
    assert_eq!(m.status()["policy"]["held"], 0);
    assert_eq!(
        go_list(&m, &["-f", "{{.Version}}", &format!("{LIB}@latest")]),
        "v1.1.0"
    );
    // And nothing is fetched again after that.
    m.upstream.clear_request_log();
    run_at(&m, &["sync"], 3 * DAY).expect(0);
    assert_eq!(m.upstream.requests(&format!("/proxy/{LIB}/@v/")), 0);
}

#[test]
fn allow_exempts_versions_and_modules_from_the_cooldown_but_not_from_deny() {
    let m = Mirror::with(
        Corpus::new().with(spec(LIB, "v1.0.0")),
        FakeOptions::default(),
        Cfg {
            extra: r#"[policy]
min_age = "3d"
allow = ["example.com/app/lib@v1.1.0", "corp.example/*"]
deny = ["corp.example/bad"]
"#
            .into(),
            ..Cfg::default()
        },
    );
    for (path, version) in [
        (LIB, "v1.1.0"),
        (LIB, "v1.2.0"),
        ("corp.example/tools", "v0.1.0"),
        ("corp.example/bad", "v0.1.0"),
    ] {
        m.upstream.add_at(spec(path, version), stamped_ago(600));
    }
    m.sync()
        .expect(0)
        .contains("1 held this run")
        .contains("1 denied (policy.deny)");
    m.assert_mirrored(LIB, "v1.1.0");
    m.assert_mirrored("corp.example/tools", "v0.1.0");
    m.assert_absent(LIB, "v1.2.0");
    m.assert_absent("corp.example/bad", "v0.1.0");
    assert_eq!(latest(&m, LIB).as_deref(), Some("v1.1.0"));
    let s = m.status();
    assert_eq!(
        (s["policy"]["held"].clone(), s["policy"]["denied"].clone()),
        (1.into(), 1.into())
    );
    assert_eq!(m.upstream.requests("/proxy/corp.example/bad/"), 0);
}

/// The mirror's own config plus `[policy] deny`.
fn deny(m: &mut Mirror, rules: &[&str]) {
    let list: Vec<String> = rules.iter().map(|r| format!("{r:?}")).collect();
    m.cfg.extra = format!("[policy]\ndeny = [{}]\n", list.join(", "));
    m.write_config();
}

/// A gomirror following `base` (`index = "mirror+URL"`).
fn follower(base: &str, key: &str, name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"[upstream]
proxy = "{base}"
index = "mirror+{base}/"
timeout = "20s"

[sumdb]
key = "{key}"
url = "{base}/sumdb/{name}"

[mirror]
output = "mirror"
state = "state.db"
workers = 4

[filter]
include = ["*"]

[prune]
max_delete = "50%"
"#
    );
    std::fs::write(dir.path().join("sync.toml"), text).unwrap();
    dir
}

#[test]
fn deny_takes_a_version_out_of_the_tree_lists_feed_a_far_side_and_a_follower() {
    let mut m = Mirror::with(
        Corpus::new()
            .with(spec(LIB, "v1.0.0"))
            .with(spec(LIB, "v1.1.0"))
            .with(spec("example.com/app/other", "v0.1.0")),
        FakeOptions::default(),
        Cfg::default(),
    );
    m.sync().expect(0);
    m.assert_mirrored(LIB, "v1.1.0");
    // A far side holds it (bundle 1), and a follower through nginx.
    let media = tempfile::tempdir().unwrap();
    let first = crate::airgap::export(&m, media.path(), &[]);
    let far = crate::airgap::Far::new(&m.upstream.sumdb_key());
    far.import(&first).expect(0);
    assert!(versions_in(&far.out()).contains(&format!("{LIB}@v1.1.0")));
    let nginx = Nginx::serve(&m.out());
    let b = follower(
        &nginx.url(),
        &m.upstream.sumdb_key(),
        &m.upstream.sumdb_name(),
    );
    let b_config = b.path().join("sync.toml");
    gomirror(&b_config, &["sync"]).expect(0);
    assert!(versions_in(&b.path().join("mirror")).contains(&format!("{LIB}@v1.1.0")));

    // The takedown: a version in the tree, and a module never seen yet.
    deny(&mut m, &[&format!("{LIB}@>=v1.1.0"), "example.com/evil"]);
    m.upstream.add(spec("example.com/evil", "v0.1.0"));
    m.upstream.add(spec(LIB, "v1.2.0"));
    m.upstream.clear_request_log();
    let r = m.sync();
    r.expect(0)
        .contains(&format!("denied by policy.deny: {LIB}@v1.1.0"))
        .contains("2 denied (policy.deny)");
    m.assert_absent(LIB, "v1.1.0");
    m.assert_absent(LIB, "v1.2.0");
    m.assert_absent("example.com/evil", "v0.1.0");
    assert_eq!(listed(&m, LIB), ["v1.0.0"]);
    assert_eq!(latest(&m, LIB).as_deref(), Some("v1.0.0"));
    assert_eq!(
        m.upstream.requests("/proxy/example.com/evil/"),
        0,
        "never fetched"
    );
    assert_eq!(m.upstream.requests(&format!("/proxy/{LIB}/@v/v1.2.0")), 0);
    let lookup = format!("sumdb/{}/lookup/{LIB}@v1.1.0", m.upstream.sumdb_name());
    assert!(m.file(&lookup).is_none(), "{lookup} left behind");
    // The feed says so: a follower drops it.
    let feed = feed_entries(&m.out());
    let last = feed
        .iter()
        .rev()
        .find(|(_, p, v)| p == LIB && v == "v1.1.0")
        .unwrap();
    assert_eq!(last.0, "delete", "{feed:?}");
    assert!(
        !feed
            .iter()
            .any(|(op, p, _)| op == "publish" && p == "example.com/evil")
    );
    let s = m.status();
    assert_eq!(s["policy"]["denied"], 3, "{}", s["policy"]);
    assert_eq!(s["policy"]["denied_in_tree"], 0);
    m.run(&["status"])
        .expect(0)
        .contains(&format!("denied   {LIB}@v1.1.0"));
    m.run(&["audit"])
        .expect(0)
        .contains(&format!(
            "{LIB}@v1.1.0: denied by policy.deny (not published)"
        ))
        .contains("example.com/evil@v0.1.0: denied by policy.deny");

    gomirror(&b_config, &["sync"]).expect(0);
    let b_tree = versions_in(&b.path().join("mirror"));
    assert!(!b_tree.contains(&format!("{LIB}@v1.1.0")), "{b_tree:?}");
    assert!(b_tree.contains(&format!("{LIB}@v1.0.0")));

    // The next bundle carries the deletion; the far side drops it.
    let second = crate::airgap::export(&m, media.path(), &[]);
    let manifest = crate::airgap::manifest(&second);
    let deletions: Vec<String> = manifest["deletions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{}@{}",
                d["path"].as_str().unwrap(),
                d["version"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(deletions, [format!("{LIB}@v1.1.0")]);
    far.import(&second).expect(0);
    let far_tree = versions_in(&far.out());
    assert!(!far_tree.contains(&format!("{LIB}@v1.1.0")), "{far_tree:?}");
    assert!(far_tree.contains(&format!("{LIB}@v1.0.0")));

    // Lifted: fetched and published again.
    m.cfg.extra = String::new();
    m.write_config();
    m.sync().expect(0);
    m.assert_mirrored(LIB, "v1.1.0");
    m.assert_mirrored("example.com/evil", "v0.1.0");
}

#[test]
fn a_takedown_waits_on_max_delete_and_is_named_in_the_refusal() {
    let mut m = Mirror::with(
        Corpus::generated(3, 3, 5),
        FakeOptions::default(),
        Cfg {
            max_delete: "1".into(),
            ..Cfg::default()
        },
    );
    m.sync().expect(0);
    let doomed: Vec<(String, String)> = m
        .upstream
        .versions()
        .into_iter()
        .filter(|(p, _)| p == "example.com/gen/m1")
        .collect();
    deny(&mut m, &["example.com/gen/m1"]);
    m.sync()
        .expect(2)
        .contains("REFUSED")
        .contains("denied by policy.deny, still served: example.com/gen/m1@");
    for (p, v) in &doomed {
        m.assert_mirrored(p, v);
    }
    assert_eq!(m.status()["policy"]["denied_in_tree"], doomed.len());
    m.run(&["prune", "--force"]).expect(0);
    for (p, v) in &doomed {
        m.assert_absent(p, v);
    }
    m.sync().expect(0);
}

/// A go.sum line per version: the zip's, then the go.mod's.
fn go_sum(m: &Mirror, versions: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (p, v) in versions {
        let (zip, gomod) = m.upstream.hashes(p, v).unwrap();
        out.push_str(&format!("{p} {v} {zip}\n{p} {v}/go.mod {gomod}\n"));
    }
    out
}

#[test]
fn a_project_pinning_a_held_or_denied_version_is_named_with_its_file_and_line() {
    let m = Mirror::new(
        Corpus::new()
            .with(spec(LIB, "v1.0.0"))
            .with(spec("example.com/evil", "v0.1.0"))
            .with(spec("example.com/fine", "v1.0.0")),
    );
    feedless(&m, "include = []\nfrom_files = [\"app/go.sum\"]");
    let mut config = std::fs::read_to_string(m.config_path()).unwrap();
    config.push_str(
        "[policy]\nmin_age = \"3d\"\nallow = [\"example.com/fine\"]\ndeny = [\"example.com/evil\"]\n",
    );
    std::fs::write(m.config_path(), config).unwrap();
    std::fs::create_dir_all(m.dir.path().join("app")).unwrap();
    std::fs::write(
        m.dir.path().join("app/go.sum"),
        go_sum(
            &m,
            &[
                (LIB, "v1.0.0"),
                ("example.com/evil", "v0.1.0"),
                ("example.com/fine", "v1.0.0"),
            ],
        ),
    )
    .unwrap();
    // No index: the cooldown counts from this mirror's first sight.
    let r = m.sync();
    r.expect(0)
        .contains(&format!(
            "project: app/go.sum:1: {LIB}@v1.0.0 is held until"
        ))
        .contains("project: app/go.sum:3: example.com/evil@v0.1.0 is denied (policy.deny)");
    m.assert_mirrored("example.com/fine", "v1.0.0");
    m.assert_absent(LIB, "v1.0.0");
    m.run(&["status"])
        .expect(0)
        .contains(&format!(
            "project  app/go.sum:1: {LIB}@v1.0.0 is held until"
        ))
        .contains("project  app/go.sum:3: example.com/evil@v0.1.0 is denied");
    let audit = m.run(&["audit", "--json"]);
    audit.expect(0);
    let a: serde_json::Value = serde_json::from_str(&audit.stdout).unwrap();
    assert_eq!(a["counts"]["held"], 1);
    assert_eq!(a["counts"]["denied"], 1);
    assert_eq!(a["policy"]["pins"].as_array().unwrap().len(), 2);
    m.run(&["audit"])
        .expect(0)
        .contains(&format!("{LIB}@v1.0.0: held by policy.min_age until"));

    // Old enough: published; the denied pin is still named.
    let r = run_at(&m, &["sync"], 3 * DAY + 60);
    r.expect(0)
        .contains("project: app/go.sum:3: example.com/evil@v0.1.0 is denied");
    assert!(!r.stdout.contains("is held until"), "{}", r.stdout);
    m.assert_mirrored(LIB, "v1.0.0");
}

/// Ten modules at v1.0.0 and v1.1.0 (an application's dependencies before
/// and after an upgrade).
fn app_corpus() -> Corpus {
    let mut c = Corpus::new();
    for i in 0..10 {
        for v in ["v1.0.0", "v1.1.0"] {
            c.push(spec(&format!("example.com/dep/d{i}"), v));
        }
    }
    c
}

fn deps(version: &str) -> Vec<(String, String)> {
    (0..10)
        .map(|i| (format!("example.com/dep/d{i}"), version.to_string()))
        .collect()
}

fn write_go_sum(m: &Mirror, versions: &[(String, String)]) {
    let v: Vec<(&str, &str)> = versions
        .iter()
        .map(|(p, v)| (p.as_str(), v.as_str()))
        .collect();
    std::fs::write(m.dir.path().join("app/go.sum"), go_sum(m, &v)).unwrap();
}

/// The real-app case (Caddy v2.11.3 → v2.11.9 from its go.sum): an upgrade
/// stops naming most versions at once. With `prune.keep` they stay for it,
/// then go a `max_delete` at a time: no sync exits 2. An emptied go.sum
/// still meets the guard once it ages out: it would empty the mirror.
#[test]
fn an_application_upgrade_is_kept_for_keep_then_pruned_without_refusing() {
    let m = Mirror::new(app_corpus());
    feedless(&m, "include = []\nfrom_files = [\"app/go.sum\"]");
    let base = std::fs::read_to_string(m.config_path()).unwrap();
    let set = |keep: &str| {
        let text = base
            .replace("max_delete = \"50%\"", "max_delete = \"20%\"")
            .replace(
                "recheck_interval = \"7d\"",
                &format!("recheck_interval = \"never\"\nkeep = \"{keep}\""),
            );
        assert!(text.contains("keep = "), "{text}");
        std::fs::write(m.config_path(), text).unwrap();
    };
    set("30d");
    std::fs::create_dir_all(m.dir.path().join("app")).unwrap();
    write_go_sum(&m, &deps("v1.0.0"));
    m.sync().expect(0);
    write_go_sum(&m, &deps("v1.1.0"));
    m.sync().expect(0).contains("published 10 new versions");
    // Every old version stays, and later syncs are clean.
    for (p, v) in deps("v1.0.0") {
        m.assert_mirrored(&p, &v);
    }
    let r = m.sync();
    r.expect(0)
        .contains("10 no longer wanted, kept for prune.keep");
    assert_eq!(m.status()["policy"]["retained"], 10);
    // Without keep, the same upgrade is refused (exit 2, every run).
    set("0s");
    m.run(&["prune"]).expect(2).contains("REFUSED");
    set("30d");
    m.run(&["prune"]).expect(0);
    for (p, v) in deps("v1.0.0") {
        m.assert_mirrored(&p, &v);
    }

    // A month on: the old versions age out, a max_delete at a time.
    let month = 31 * DAY;
    let mut runs = 0;
    loop {
        let r = run_at(&m, &["sync"], month);
        r.expect(0);
        runs += 1;
        let left = deps("v1.0.0")
            .iter()
            .filter(|(p, v)| m.file(&version_file(p, v, "info")).is_some())
            .count();
        if left == 0 {
            break;
        }
        assert!(
            r.stdout.contains("left for later runs"),
            "{left} left:\n{}",
            r.stdout
        );
        assert!(runs < 10, "{left} versions never pruned");
    }
    assert!(runs > 1, "the cap spread the removal over runs");
    for (p, v) in deps("v1.1.0") {
        m.assert_mirrored(&p, &v);
    }

    // An emptied go.sum: kept for keep too, then refused — it would empty
    // the mirror.
    std::fs::write(m.dir.path().join("app/go.sum"), "").unwrap();
    run_at(&m, &["sync"], month).expect(0);
    run_at(&m, &["sync"], month + month)
        .expect(2)
        .contains("would empty the mirror");
    for (p, v) in deps("v1.1.0") {
        m.assert_mirrored(&p, &v);
    }
}

/// `sync --dry-run` says what the policy holds, denies, fetches and
/// deletes, and the sync then does exactly that, from the same state, on
/// the day of a policy change and three days later.
#[test]
fn a_dry_run_and_the_real_run_agree_under_a_policy() {
    let mut m = Mirror::with(
        Corpus::new()
            .with(spec("example.com/a", "v1.0.0"))
            .with(spec("example.com/b", "v1.0.0"))
            .with(spec("example.com/c", "v1.0.0")),
        FakeOptions::default(),
        Cfg {
            extra: "[policy]\nmin_age = \"3d\"\n".into(),
            max_delete: "100".into(),
            ..Cfg::default()
        },
    );
    m.sync().expect(0);
    m.upstream
        .add_at(spec("example.com/a", "v1.1.0"), stamped_ago(3600));
    m.upstream
        .add_at(spec("example.com/b", "v1.1.0"), stamped_ago(3500));
    m.sync().expect(0).contains("2 held this run");
    // The policy changes: b's new version exempt, c taken down, and two
    // more versions arrive (one young, one denied).
    m.cfg.extra = r#"[policy]
min_age = "3d"
allow = ["example.com/b@v1.1.0"]
deny = ["example.com/c", "example.com/evil"]
"#
    .into();
    m.write_config();
    m.upstream
        .add_at(spec("example.com/d", "v0.1.0"), stamped_ago(1000));
    m.upstream
        .add_at(spec("example.com/evil", "v1.0.0"), stamped_ago(900));

    let agree = |offset: i64| -> BTreeSet<String> {
        let before = versions_in(&m.out());
        let dry = run_at(&m, &["sync", "--dry-run"], offset);
        dry.expect(0);
        assert_eq!(versions_in(&m.out()), before, "a dry run changed the tree");
        let said = |verb: &str| -> BTreeSet<String> {
            dry.stdout
                .lines()
                .filter_map(|l| l.strip_prefix(verb))
                .map(|l| l.split_whitespace().next().unwrap().to_string())
                .collect()
        };
        let (fetch, delete, hold, denied) = (
            said("fetch "),
            said("delete "),
            said("hold "),
            said("deny "),
        );
        run_at(&m, &["sync"], offset).expect(0);
        let after = versions_in(&m.out());
        let fetched: BTreeSet<String> = after.difference(&before).cloned().collect();
        let deleted: BTreeSet<String> = before.difference(&after).cloned().collect();
        assert_eq!(
            fetched, fetch,
            "fetched what the dry run said:\n{}",
            dry.stdout
        );
        assert_eq!(
            deleted, delete,
            "deleted what the dry run said:\n{}",
            dry.stdout
        );
        let s = m.status();
        let held: BTreeSet<String> = s["policy"]["held_versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                format!(
                    "{}@{}",
                    h["module"].as_str().unwrap(),
                    h["version"].as_str().unwrap()
                )
            })
            .collect();
        assert!(
            hold.is_subset(&held),
            "held {held:?}, the dry run said {hold:?}"
        );
        assert!(denied.iter().all(|d| !after.contains(d)));
        hold
    };
    let held = agree(0);
    assert_eq!(
        held,
        ["example.com/a@v1.1.0", "example.com/d@v0.1.0"]
            .map(String::from)
            .into(),
    );
    m.assert_mirrored("example.com/b", "v1.1.0");
    m.assert_absent("example.com/c", "v1.0.0");
    m.assert_absent("example.com/evil", "v1.0.0");
    // Three days on: the held ones are fetched, as the dry run says.
    assert!(agree(3 * DAY).is_empty());
    m.assert_mirrored("example.com/a", "v1.1.0");
    m.assert_mirrored("example.com/d", "v0.1.0");
}
