//! Mirrors of mirrors: a gomirror tree's change feed, served by
//! the real nginx with the shipped configuration, followed by another
//! gomirror (`index = "mirror+URL"`), which the real `go` command then uses.
//! Requests are counted in nginx's access log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::*;
use crate::e2e::{GoClient, Nginx};
use crate::support::{Corpus, FakeOptions, ModuleVersionSpec, http};

/// A gomirror that follows another one's tree through `base` (an nginx URL).
pub struct Follower {
    pub dir: tempfile::TempDir,
}

impl Follower {
    pub fn new(base: &str, key: &str, name: &str, extra: &str) -> Follower {
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
{extra}
"#
        );
        std::fs::write(dir.path().join("sync.toml"), text).unwrap();
        Follower { dir }
    }

    fn run(&self, args: &[&str]) -> Run {
        gomirror(&self.dir.path().join("sync.toml"), args)
    }

    fn sync(&self) -> Run {
        self.run(&["sync"])
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("mirror")
    }
}

/// Every module file and lookup of a tree, by tree path: what must be the
/// same on every tier. (Each tier has its own feed and trace, and may hold a different
/// set of tiles and a newer `latest`.)
fn module_files(out: &Path) -> BTreeMap<String, Vec<u8>> {
    files_under(out)
        .into_iter()
        .filter(|f| {
            // Each tier has its own feed, trace and pages (its name, its times).
            let ours = f.starts_with(".gomirror/")
                || f.starts_with("feed/")
                || f.starts_with("trace/")
                || f.starts_with("site/");
            let sumdb_not_lookup = f.starts_with("sumdb/") && !f.contains("/lookup/");
            !ours && !sumdb_not_lookup
        })
        .map(|f| {
            let bytes = std::fs::read(out.join(&f)).unwrap();
            (f, bytes)
        })
        .collect()
}

#[track_caller]
fn assert_same_modules(upper: &Path, lower: &Path) {
    let (a, b) = (module_files(upper), module_files(lower));
    let names = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b), "the tiers hold different files");
    for (k, v) in &a {
        assert!(b[k] == *v, "{k} differs between the tiers");
    }
}

/// The request paths nginx logged after line `from`.
fn requests_since(nginx: &Nginx, from: usize) -> Vec<String> {
    let log = std::fs::read_to_string(nginx.access_log()).unwrap_or_default();
    log.lines()
        .skip(from)
        .filter_map(|l| l.split('"').nth(1))
        .filter_map(|r| r.split(' ').nth(1))
        .map(str::to_string)
        .collect()
}

fn log_lines(nginx: &Nginx) -> usize {
    std::fs::read_to_string(nginx.access_log())
        .unwrap_or_default()
        .lines()
        .count()
}

fn add_feed_config(m: &Mirror, text: &str) {
    let mut cfg = std::fs::read_to_string(m.config_path()).unwrap();
    cfg.push_str(text);
    std::fs::write(m.config_path(), cfg).unwrap();
}

fn versions_in(out: &Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = module_files(out)
        .keys()
        .filter_map(|f| {
            let (module, file) = f.split_once("/@v/")?;
            let version = file.strip_suffix(".zip")?;
            Some((unescape(module), unescape(version)))
        })
        .collect();
    v.sort();
    v
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in s.chars() {
        if c == '!' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn a_downstream_and_a_third_tier_follow_through_nginx_alone() {
    let mut m = Mirror::with(
        Corpus::generated(4, 3, 17),
        FakeOptions::default(),
        Cfg::default(),
    );
    m.sync().expect(0);
    let key = m.upstream.sumdb_key();
    let name = m.upstream.sumdb_name();
    let nginx_a = Nginx::serve(&m.out());

    // Tier 2 follows tier 1 through nginx only: the origin is never asked.
    let b = Follower::new(&nginx_a.url(), &key, &name, "");
    m.upstream.clear_request_log();
    b.sync().expect(0);
    assert!(
        m.upstream.request_log().is_empty(),
        "the downstream reached the origin: {:?}",
        m.upstream.request_log()
    );
    assert_same_modules(&m.out(), &b.out());
    b.run(&["verify"]).expect(0);

    // Tier 3 follows tier 2.
    let nginx_b = Nginx::serve(&b.out());
    let c = Follower::new(&nginx_b.url(), &key, &name, "");
    c.sync().expect(0);
    assert_same_modules(&m.out(), &c.out());
    let latest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.out().join("feed/latest")).unwrap()).unwrap();
    assert_eq!(
        latest["chain"],
        serde_json::json!([
            format!("{}/", nginx_b.url()),
            format!("{}/", nginx_a.url()),
            m.upstream.proxy_url(),
        ]),
        "the third tier's feed names the whole upstream chain"
    );
    // And so does its trace file, as ftpsync's traces name their upstream.
    let trace_dir = c.out().join("trace");
    let trace = std::fs::read_dir(&trace_dir)
        .unwrap()
        .next()
        .expect("a trace file")
        .unwrap()
        .path();
    let trace: serde_json::Value = serde_json::from_slice(&std::fs::read(&trace).unwrap()).unwrap();
    assert_eq!(trace["upstream_chain"], latest["chain"], "{trace:#}");

    // The real go command verifies the downstream tree against the checksum
    // database the tree serves.
    let go = GoClient::new(&format!("file://{}", c.out().display()), &key);
    go.download_all(&versions_in(&c.out()));

    // Second round upstream: new versions, and a narrowed filter (deletions).
    let added = [
        ModuleVersionSpec::new("example.com/gen/m0", "v1.7.0"),
        ModuleVersionSpec::new("example.com/later", "v0.1.0"),
    ];
    for a in &added {
        m.upstream.add(a.clone());
    }
    let dropped: Vec<(String, String)> = versions_in(&m.out())
        .into_iter()
        .filter(|(p, _)| p == "example.com/gen/m3")
        .collect();
    assert!(!dropped.is_empty());
    m.cfg.exclude = vec!["example.com/gen/m3".into()];
    m.write_config();
    m.sync().expect(0).contains("published 2 new versions");

    // The downstream asks for the feed's head and tail, and for the new
    // versions' files, and nothing else of the tree.
    let before = log_lines(&nginx_a);
    b.sync()
        .expect(0)
        .contains(&format!("feed: {} versions deleted", dropped.len()));
    let asked = requests_since(&nginx_a, before);
    let feed: Vec<&String> = asked.iter().filter(|p| p.starts_with("/feed/")).collect();
    assert_eq!(feed, ["/feed/latest", "/feed/tail.jsonl"], "{asked:#?}");
    let new_files: Vec<String> = added
        .iter()
        .flat_map(|a| {
            ["info", "mod", "zip"].map(|ext| format!("/{}", version_file(&a.path, &a.version, ext)))
        })
        .collect();
    for p in &asked {
        let known = p.starts_with("/feed/")
            || new_files.contains(p)
            || p == &format!("/sumdb/{name}/latest")
            || p.starts_with(&format!("/sumdb/{name}/tile/"))
            || added
                .iter()
                .any(|a| p == &format!("/sumdb/{name}/lookup/{}@{}", a.path, a.version));
        assert!(
            known,
            "the downstream asked for {p}, which did not change:\n{asked:#?}"
        );
    }
    // 12 in this corpus: head, tail, the checksum database's latest and one
    // partial tile, and a lookup, .info, .mod and .zip per new version.
    let tiles = asked.iter().filter(|p| p.contains("/tile/")).count();
    assert_eq!(asked.len() - tiles, 3 + 4 * added.len(), "{asked:#?}");
    for f in &new_files {
        assert_eq!(
            asked.iter().filter(|p| *p == f).count(),
            1,
            "{f} asked once:\n{asked:#?}"
        );
    }
    assert_same_modules(&m.out(), &b.out());
    for (p, v) in &dropped {
        assert!(
            !b.out().join(version_file(p, v, "zip")).exists(),
            "{p}@{v} deleted upstream is still downstream"
        );
    }

    // A no-op sync is one or two requests: the feed's head and the checksum
    // database's.
    let before = log_lines(&nginx_a);
    b.sync().expect(0);
    let asked = requests_since(&nginx_a, before);
    assert!(
        asked.len() <= 2 && asked.contains(&"/feed/latest".to_string()),
        "{asked:#?}"
    );

    // The third tier follows, deletions included; go verifies it again.
    c.sync().expect(0);
    assert_same_modules(&m.out(), &c.out());
    c.run(&["verify"]).expect(0);
    let go = GoClient::new(&format!("file://{}", c.out().display()), &key);
    go.download_all(&versions_in(&c.out()));
}

#[test]
fn a_damaged_feed_segment_stops_the_follower_and_publishes_nothing() {
    let m = Mirror::with(
        Corpus::generated(3, 3, 5),
        FakeOptions::default(),
        Cfg::default(),
    );
    add_feed_config(&m, "\n[feed]\nsegment_entries = 2\n");
    m.sync().expect(0);
    let key = m.upstream.sumdb_key();
    let name = m.upstream.sumdb_name();
    let nginx = Nginx::serve(&m.out());
    let b = Follower::new(&nginx.url(), &key, &name, "");
    b.sync().expect(0);
    assert_same_modules(&m.out(), &b.out());

    // Four new versions: two complete segments past the downstream's position.
    let added: Vec<ModuleVersionSpec> = (0..4)
        .map(|i| ModuleVersionSpec::new("example.com/new", &format!("v0.{i}.0")))
        .collect();
    for a in &added {
        m.upstream.add(a.clone());
    }
    m.sync().expect(0);
    // A dry run prints what a sync would fetch, and changes nothing.
    let before = files_under(&b.out());
    b.run(&["sync", "--dry-run"])
        .expect(0)
        .contains("fetch example.com/new@v0.3.0");
    assert_eq!(files_under(&b.out()), before);

    let latest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.out().join("feed/latest")).unwrap()).unwrap();
    let next = latest["next"].as_u64().unwrap();
    // The segment holding the last complete pair of entries.
    let k = next / 2 - 1;
    let seg = m.out().join(format!("feed/{k:012}.jsonl"));
    let good = std::fs::read_to_string(&seg).unwrap();
    let damaged = good.replacen("\"op\":\"publish\"", "\"op\":\"publish\",", 1);
    assert_ne!(good, damaged);
    std::fs::write(&seg, &damaged).unwrap();

    let before = files_under(&b.out());
    b.sync()
        .expect(2)
        .contains(&format!("feed/{k:012}.jsonl: line 1"))
        .contains("the feed is damaged");
    assert_eq!(files_under(&b.out()), before, "nothing was published");

    // Repaired upstream, the downstream catches up from where it stopped.
    std::fs::write(&seg, &good).unwrap();
    b.sync().expect(0);
    assert_same_modules(&m.out(), &b.out());
}

#[test]
fn a_follower_behind_a_compacted_feed_compares_in_full() {
    let mut m = Mirror::with(
        Corpus::generated(3, 3, 9),
        FakeOptions::default(),
        Cfg::default(),
    );
    add_feed_config(&m, "\n[feed]\nsegment_entries = 2\nkeep_segments = 1\n");
    m.sync().expect(0);
    let latest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.out().join("feed/latest")).unwrap()).unwrap();
    assert!(latest["first"].as_u64().unwrap() > 0, "compacted: {latest}");
    assert!(latest["snapshot"]["file"].is_string(), "{latest}");
    let key = m.upstream.sumdb_key();
    let name = m.upstream.sumdb_name();
    let nginx = Nginx::serve(&m.out());

    // The shipped nginx config: the head and the tail are revalidated,
    // complete segments and snapshots are immutable, the rest is not found.
    let get = |rel: &str| http::get(&format!("{}/feed/{rel}", nginx.url())).unwrap();
    let r = get("latest");
    assert_eq!(
        (r.status, r.header("cache-control")),
        (200, Some("no-cache"))
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    let r = get("tail.jsonl");
    assert_eq!(
        (r.status, r.header("cache-control")),
        (200, Some("no-cache"))
    );
    let first = latest["first"].as_u64().unwrap();
    for rel in [
        format!("{:012}.jsonl", first / 2),
        latest["snapshot"]["file"].as_str().unwrap().to_string(),
    ] {
        let r = get(&rel);
        assert_eq!(r.status, 200, "{rel}");
        assert!(
            r.header("cache-control").unwrap().contains("immutable"),
            "{rel}"
        );
        assert_eq!(r.header("content-type"), Some("application/jsonl"), "{rel}");
    }
    std::fs::write(m.out().join("feed/notes.txt"), b"x").unwrap();
    for rel in ["notes.txt", ".hidden", format!("{:012}.jsonl", 0).as_str()] {
        assert_eq!(get(rel).status, 404, "{rel}");
    }
    std::fs::remove_file(m.out().join("feed/notes.txt")).unwrap();

    // A new follower starts from the snapshot.
    let b = Follower::new(&nginx.url(), &key, &name, "");
    b.sync().expect(0);
    assert_same_modules(&m.out(), &b.out());

    // Many changes upstream: the follower's position is compacted away.
    for i in 0..5 {
        m.upstream.add(ModuleVersionSpec::new(
            "example.com/more",
            &format!("v0.{i}.0"),
        ));
    }
    m.cfg.exclude = vec!["example.com/gen/m2".into()];
    m.write_config();
    add_feed_config(&m, "\n[feed]\nsegment_entries = 2\nkeep_segments = 1\n");
    m.sync().expect(0);
    b.sync()
        .expect(0)
        .contains("too far behind the upstream feed")
        .contains("comparing with the upstream's snapshot in full");
    assert_same_modules(&m.out(), &b.out());
    b.run(&["verify"]).expect(0);
    // Old segments are gone from the upstream tree, and prune keeps the feed.
    m.run(&["prune"]).expect(0);
    let feed_files: Vec<String> = files_under(&m.out().join("feed"));
    assert!(feed_files.contains(&"latest".to_string()), "{feed_files:?}");
    assert!(
        !feed_files.contains(&format!("{:012}.jsonl", 0)),
        "{feed_files:?}"
    );
}

#[test]
fn a_tier_serving_other_bytes_is_refused_and_named() {
    let m = Mirror::with(
        Corpus::generated(2, 2, 3),
        FakeOptions::default(),
        Cfg::default(),
    );
    m.sync().expect(0);
    let key = m.upstream.sumdb_key();
    let name = m.upstream.sumdb_name();
    let nginx = Nginx::serve(&m.out());
    let b = Follower::new(&nginx.url(), &key, &name, "");
    b.sync().expect(0);

    // The upstream tier publishes a version, then its go.mod is edited.
    let added = ModuleVersionSpec::new("example.com/swapped", "v1.0.0");
    m.upstream.add(added.clone());
    m.sync().expect(0);
    let gomod = m
        .out()
        .join(version_file(&added.path, &added.version, "mod"));
    let mut text = std::fs::read_to_string(&gomod).unwrap();
    text.push_str("\nrequire example.com/evil v1.0.0\n");
    std::fs::write(&gomod, text).unwrap();
    b.sync()
        .expect(1)
        .contains("SECURITY")
        .contains("example.com/swapped@v1.0.0");
    assert!(
        !b.out()
            .join(version_file(&added.path, &added.version, "zip"))
            .exists(),
        "a zip the checksum database does not vouch for was published"
    );
}

#[test]
fn deletions_from_the_feed_respect_max_delete() {
    let mut m = Mirror::with(
        Corpus::generated(3, 3, 11),
        FakeOptions::default(),
        Cfg::default(),
    );
    m.sync().expect(0);
    let key = m.upstream.sumdb_key();
    let name = m.upstream.sumdb_name();
    let nginx = Nginx::serve(&m.out());
    let b = Follower::new(&nginx.url(), &key, &name, "");
    // A cap of one version.
    let cfg = b.dir.path().join("sync.toml");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("max_delete = \"50%\"", "max_delete = 1");
    std::fs::write(&cfg, text).unwrap();
    b.sync().expect(0);

    let dropped: Vec<(String, String)> = versions_in(&m.out())
        .into_iter()
        .filter(|(p, _)| p == "example.com/gen/m1")
        .collect();
    assert!(dropped.len() > 1, "{dropped:?}");
    m.cfg.exclude = vec!["example.com/gen/m1".into()];
    m.write_config();
    m.sync().expect(0);

    b.sync().expect(2).contains("REFUSED");
    for (p, v) in &dropped {
        assert!(b.out().join(version_file(p, v, "zip")).exists(), "{p}@{v}");
    }
    // Still refused on the next run: the deletions are recorded, not lost.
    b.sync().expect(2).contains("REFUSED");
    b.run(&["prune", "--force"]).expect(0);
    assert_same_modules(&m.out(), &b.out());
    // And a wider filter downstream does not bring them back.
    b.sync().expect(0);
    assert_same_modules(&m.out(), &b.out());
}

#[test]
fn a_feed_that_went_back_stops_and_a_short_tail_is_read_next_time() {
    let m = Mirror::with(
        Corpus::generated(2, 2, 13),
        FakeOptions::default(),
        Cfg::default(),
    );
    m.sync().expect(0);
    let key = m.upstream.sumdb_key();
    let name = m.upstream.sumdb_name();
    let nginx = Nginx::serve(&m.out());
    let b = Follower::new(&nginx.url(), &key, &name, "");
    b.sync().expect(0);

    // Two new versions; a cache in between still serves the tail without
    // the last one.
    for v in ["v0.1.0", "v0.2.0"] {
        m.upstream
            .add(ModuleVersionSpec::new("example.com/tail", v));
    }
    m.sync().expect(0);
    let tail = m.out().join("feed/tail.jsonl");
    let full = std::fs::read_to_string(&tail).unwrap();
    let mut lines: Vec<&str> = full.lines().collect();
    assert!(lines.last().unwrap().contains("example.com/tail"), "{full}");
    let cut: serde_json::Value = serde_json::from_str(lines.pop().unwrap()).unwrap();
    let cut = cut["version"].as_str().unwrap().to_string();
    let kept = if cut == "v0.1.0" { "v0.2.0" } else { "v0.1.0" };
    std::fs::write(&tail, lines.join("\n") + "\n").unwrap();
    b.sync().expect(0);
    let has = |v: &str| {
        b.out()
            .join(version_file("example.com/tail", v, "zip"))
            .exists()
    };
    assert!(has(kept) && !has(&cut), "kept {kept}, cut {cut}");
    std::fs::write(&tail, &full).unwrap();
    b.sync().expect(0);
    assert_same_modules(&m.out(), &b.out());

    // The upstream is restored from an older backup: its feed ends before
    // what the follower has read.
    let latest_path = m.out().join("feed/latest");
    let good = std::fs::read_to_string(&latest_path).unwrap();
    let mut latest: serde_json::Value = serde_json::from_str(&good).unwrap();
    latest["next"] = serde_json::json!(1);
    std::fs::write(&latest_path, latest.to_string()).unwrap();
    let before = files_under(&b.out());
    b.sync().expect(2).contains("the upstream feed went back");
    assert_eq!(files_under(&b.out()), before);
    b.run(&["status"])
        .expect(0)
        .contains("index      cursor feed ");
    let json: serde_json::Value =
        serde_json::from_str(&b.run(&["status", "--json"]).expect(0).stdout).unwrap();
    assert_eq!(json["index"], format!("mirror+{}/", nginx.url()));
}

#[test]
fn a_follower_reads_only_the_feed_past_its_position() {
    let m = Mirror::with(
        Corpus::generated(20, 5, 21),
        FakeOptions::default(),
        Cfg::default(),
    );
    add_feed_config(&m, "\n[feed]\nsegment_entries = 10\n");
    m.sync().expect(0);
    let total = versions_in(&m.out()).len() as u64;
    assert!(total >= 60, "{total}");
    let key = m.upstream.sumdb_key();
    let name = m.upstream.sumdb_name();
    let nginx = Nginx::serve(&m.out());
    let b = Follower::new(&nginx.url(), &key, &name, "");

    // The first sync reads the whole history: every segment once.
    let before = log_lines(&nginx);
    b.sync().expect(0);
    let asked = requests_since(&nginx, before);
    let feed: Vec<&String> = asked.iter().filter(|p| p.starts_with("/feed/")).collect();
    let segments = total.div_ceil(10) as usize;
    assert_eq!(feed.len(), 1 + segments, "{feed:#?}");
    assert_same_modules(&m.out(), &b.out());

    // Three new versions: the head and the one segment that holds them
    // (two if they straddle a segment boundary), not the history.
    for v in ["v0.1.0", "v0.2.0", "v0.3.0"] {
        m.upstream
            .add(ModuleVersionSpec::new("example.com/late", v));
    }
    m.sync().expect(0);
    let before = log_lines(&nginx);
    b.sync().expect(0);
    let asked = requests_since(&nginx, before);
    let feed: Vec<&String> = asked.iter().filter(|p| p.starts_with("/feed/")).collect();
    assert!(feed.len() <= 3 && feed[0] == "/feed/latest", "{feed:#?}");
    assert_same_modules(&m.out(), &b.out());
}

#[test]
fn a_rebuilt_upstream_is_compared_in_full() {
    let mut m = Mirror::with(
        Corpus::generated(5, 3, 27),
        FakeOptions::default(),
        Cfg::default(),
    );
    m.sync().expect(0);
    let key = m.upstream.sumdb_key();
    let name = m.upstream.sumdb_name();
    let nginx = Nginx::serve(&m.out());
    let b = Follower::new(&nginx.url(), &key, &name, "");
    b.sync().expect(0);
    let old_id = serde_json::from_slice::<serde_json::Value>(
        &std::fs::read(m.out().join("feed/latest")).unwrap(),
    )
    .unwrap()["id"]
        .clone();

    // The upstream is rebuilt from scratch (a new state database: a new
    // feed), without one module.
    std::fs::remove_dir_all(m.out()).unwrap();
    for f in ["state.db", "state.db-wal", "state.db-shm"] {
        let _ = std::fs::remove_file(m.dir.path().join(f));
    }
    m.cfg.exclude = vec!["example.com/gen/m1".into()];
    m.write_config();
    m.sync().expect(0);
    let latest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.out().join("feed/latest")).unwrap()).unwrap();
    assert_ne!(latest["id"], old_id);
    assert_eq!(latest["first"], 0);

    b.sync()
        .expect(0)
        .contains("is not the one this mirror followed")
        .contains("comparing with it in full");
    assert_same_modules(&m.out(), &b.out());
    assert!(
        !files_under(&b.out())
            .iter()
            .any(|f| f.starts_with("example.com/gen/m1/"))
    );
}
