//! The source seam: one HTTP client per process, and a
//! `sync --dry-run` that prints the plan and changes nothing at all.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::*;
use crate::support::{Corpus, FakeOptions, ModuleVersionSpec};

/// Every file under `dir` with its bytes: the tree, and the state database
/// (with any `-wal`/`-shm` beside it) as a whole.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    files_under(dir)
        .into_iter()
        .filter(|f| !f.ends_with(".lock"))
        .map(|f| {
            let bytes = std::fs::read(dir.join(&f)).unwrap_or_default();
            (f, bytes)
        })
        .collect()
}

/// Issue 8.3: a dry run used to move the index cursor, record the index's
/// pages, apply a changed filter, accept (and save) the checksum database's
/// new tree head and record itself in the run log.
#[test]
fn dry_run_changes_nothing() {
    let cfg = Cfg {
        include: vec!["example.com/gen/m0".into(), "example.com/gen/m1".into()],
        max_delete: "100".into(),
        ..Cfg::default()
    };
    let mut m = Mirror::with(Corpus::generated(4, 2, 8), FakeOptions::default(), cfg);
    m.sync().expect(0);
    let tree_size = m.upstream.tree_size();

    // Upstream moves on: a new version (a new index entry and a new tree
    // head); and the operator changes the filter (m1 out, m2 in).
    m.upstream
        .add(ModuleVersionSpec::new("example.com/gen/m0", "v1.9.0"));
    assert!(m.upstream.tree_size() > tree_size);
    m.cfg.include = vec!["example.com/gen/m0".into(), "example.com/gen/m2".into()];
    m.write_config();

    let before = snapshot(m.dir.path());
    assert!(before.contains_key("state.db"), "{:?}", before.keys());
    let r = m.run(&["sync", "--dry-run"]);
    r.expect(0)
        .contains("fetch example.com/gen/m0@v1.9.0\n")
        .contains("fetch example.com/gen/m2@")
        .contains("delete example.com/gen/m1@");
    assert!(
        !r.stdout.contains("fetch example.com/gen/m3@"),
        "an unwanted module is not fetched:\n{}",
        r.stdout
    );
    let after = snapshot(m.dir.path());
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "a dry run added or removed files"
    );
    for (name, bytes) in &before {
        assert!(
            after.get(name) == Some(bytes),
            "a dry run changed {name}\n{}",
            r.all()
        );
    }

    // What the dry run saw is still there for the sync to do.
    m.sync().expect(0).contains("2 versions queued");
    m.assert_mirrored("example.com/gen/m0", "v1.9.0");
    m.assert_absent(
        "example.com/gen/m1",
        &m.upstream
            .versions()
            .into_iter()
            .find(|(p, _)| p == "example.com/gen/m1")
            .unwrap()
            .1,
    );
}

/// A dry run of a mirror that never synced creates neither its state
/// database nor its tree.
#[test]
fn dry_run_of_a_new_mirror_creates_nothing() {
    let m = Mirror::new(Corpus::generated(2, 2, 3));
    let r = m.run(&["sync", "--dry-run"]);
    r.expect(0).contains("fetch example.com/gen/m1@");
    assert!(!m.dir.path().join("state.db").exists());
    assert!(!m.out().exists());
}

fn clients_built(r: &Run) -> usize {
    r.stderr
        .lines()
        .filter(|l| l.starts_with("debug: HTTP client"))
        .count()
}

/// Issue 8.1: `verify --repair` built three HTTP clients (two checking
/// passes and the refetch), each with its own connection pool and its own
/// limit of `mirror.workers` requests in flight.
#[test]
fn verify_repair_builds_one_http_client() {
    let m = Mirror::new(Corpus::generated(3, 2, 13));
    let env = [("GOMIRROR_TEST_DEBUG_HTTP_CLIENTS", "1")];
    let r = m.run_env(&["sync"], &env);
    r.expect(0);
    assert_eq!(clients_built(&r), 1, "{}", r.stderr);

    let (path, version) = m.upstream.versions()[0].clone();
    let rel = version_file(&path, &version, "zip");
    std::fs::write(m.out().join(&rel), b"damaged").unwrap();
    let r = m.run_env(&["verify", "--repair"], &env);
    r.expect(0).contains("1 versions republished");
    assert_eq!(clients_built(&r), 1, "{}", r.stderr);
}
