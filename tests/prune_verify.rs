//! A long-lived mirror drifts; `verify`, `verify --repair` and `prune` find
//! and fix it, safely.

use crate::common::*;
use crate::support::{Corpus, FakeOptions, Fault, ModuleVersionSpec};

const M: &str = "example.com/gen/m1";

fn mirror() -> Mirror {
    let m = Mirror::new(Corpus::generated(4, 3, 21));
    m.sync().expect(0);
    m
}

fn version_of(m: &Mirror, path: &str) -> String {
    m.upstream
        .versions()
        .into_iter()
        .find(|(p, _)| p == path)
        .map(|(_, v)| v)
        .unwrap()
}

#[test]
fn verify_is_clean_on_a_fresh_mirror() {
    let m = mirror();
    m.run(&["verify"]).expect(0).contains("0 problems");
    m.run(&["verify", "--quick"])
        .expect(0)
        .contains("0 problems");
}

#[test]
fn damaged_zip_is_found_and_repaired() {
    let m = mirror();
    let v = version_of(&m, M);
    let rel = version_file(M, &v, "zip");
    let good = m.file(&rel).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x55;
    std::fs::write(m.out().join(&rel), &bad).unwrap();
    m.run(&["verify"])
        .expect(1)
        .contains(&format!("{M}@{v}: {rel}"))
        .contains("1 problem");
    m.upstream.clear_request_log();
    m.run(&["verify", "--repair"])
        .expect(0)
        .contains("1 versions republished; 0 problems remain");
    assert_eq!(m.file(&rel).unwrap(), good);
    assert_eq!(m.upstream.requests(&format!("/proxy/{rel}")), 1);
    m.run(&["verify"]).expect(0);
}

#[test]
fn deleted_go_mod_is_found_and_repaired() {
    let m = mirror();
    let v = version_of(&m, M);
    let rel = version_file(M, &v, "mod");
    std::fs::remove_file(m.out().join(&rel)).unwrap();
    m.run(&["verify"])
        .expect(1)
        .contains(&format!("{rel}: missing"));
    m.run(&["verify", "--quick"])
        .expect(1)
        .contains(&format!("{rel}: missing"));
    m.run(&["verify", "--repair"]).expect(0);
    m.assert_mirrored(M, &v);
}

#[test]
fn quick_verify_sees_size_and_time_changes() {
    let m = mirror();
    let v = version_of(&m, M);
    let rel = version_file(M, &v, "info");
    let path = m.out().join(&rel);
    let good = std::fs::read(&path).unwrap();
    // Same length, different bytes, new modification time.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let mut same_len = good.clone();
    same_len[2] = b'X';
    std::fs::write(&path, &same_len).unwrap();
    m.run(&["verify", "--quick"])
        .expect(1)
        .contains("modified since it was published");
    std::fs::write(&path, b"{}").unwrap();
    m.run(&["verify", "--quick"])
        .expect(1)
        .contains("size is 2");
    m.run(&["verify", "--repair"]).expect(0);
    assert_eq!(std::fs::read(&path).unwrap(), good);
}

#[test]
fn edited_list_is_found_and_rewritten() {
    let m = mirror();
    let rel = format!("{M}/@v/list");
    let good = m.text(&rel).unwrap();
    std::fs::write(m.out().join(&rel), "v9.9.9\n").unwrap();
    m.run(&["verify"])
        .expect(1)
        .contains(&format!("{M}: {rel}: does not match the state database"));
    std::fs::remove_file(m.out().join(format!("{M}/@latest"))).unwrap();
    m.run(&["verify", "--repair"]).expect(0);
    assert_eq!(m.text(&rel).unwrap(), good);
    assert!(m.file(&format!("{M}/@latest")).is_some());
}

#[test]
fn checksum_database_damage_is_found_and_repaired() {
    let m = mirror();
    let v = version_of(&m, M);
    let name = m.upstream.sumdb_name();
    let lookup = format!("sumdb/{name}/lookup/{M}@{v}");
    std::fs::remove_file(m.out().join(&lookup)).unwrap();
    let tiles = files_under(&m.out().join(format!("sumdb/{name}/tile")));
    // Damage a level-0 tile: a go client would not notice (its TileHashReader
    // skips some parent checks), but verify checks every tile.
    let leaf = tiles
        .iter()
        .find(|t| t.starts_with("8/0/"))
        .unwrap()
        .clone();
    let tile_path = m.out().join(format!("sumdb/{name}/tile/{leaf}"));
    let good_tile = std::fs::read(&tile_path).unwrap();
    let mut bad = good_tile.clone();
    bad[5] ^= 1;
    std::fs::write(&tile_path, bad).unwrap();
    let r = m.run(&["verify"]);
    r.expect(1)
        .contains(&format!("{lookup}: missing"))
        .contains("would reject it");
    m.run(&["verify", "--repair"]).expect(0);
    assert!(m.file(&lookup).is_some());
    assert_eq!(std::fs::read(&tile_path).unwrap(), good_tile);
    std::fs::remove_file(m.out().join(format!("sumdb/{name}/latest"))).unwrap();
    m.run(&["verify"]).expect(1).contains("latest: missing");
    m.run(&["verify", "--repair"]).expect(0);
}

#[test]
fn strays_are_pruned_and_dry_run_deletes_nothing() {
    let mut m = mirror();
    m.cfg.max_delete = "100".into();
    m.write_config();
    let out = m.out();
    std::fs::write(out.join("README.txt"), "dropped in by hand").unwrap();
    std::fs::write(out.join(format!("{M}/@v/v9.9.9.zip")), "not ours").unwrap();
    std::fs::create_dir_all(out.join("stray.example/mod/@v")).unwrap();
    std::fs::write(out.join("stray.example/mod/@v/list"), "v1.0.0\n").unwrap();
    std::fs::create_dir_all(out.join("example.com/gen/m0/@v/junkdir")).unwrap();
    std::fs::write(out.join("example.com/gen/m0/@v/junkdir/x"), "x").unwrap();
    let name = m.upstream.sumdb_name();
    std::fs::write(
        out.join(format!("sumdb/{name}/lookup/example.com/none@v1.0.0")),
        "x",
    )
    .unwrap();
    let before = m.tree_files();

    let dry = m.run(&["prune", "--dry-run"]);
    dry.expect(0)
        .contains("delete stray file README.txt")
        .contains(&format!("delete stray file {M}/@v/v9.9.9.zip"))
        .contains("delete stray directory example.com/gen/m0/@v/junkdir/")
        .contains("would delete 0 versions, 4 stray files, 1 stray directories");
    assert_eq!(m.tree_files(), before, "--dry-run changed the tree");

    m.run(&["prune"])
        .expect(0)
        .contains("deleted 0 versions, 4 stray files, 1 stray directories");
    assert!(!out.join("README.txt").exists());
    assert!(
        !out.join("stray.example").exists(),
        "empty directories go too"
    );
    assert!(!out.join("example.com/gen/m0/@v/junkdir").exists());
    for (p, v) in m.upstream.versions() {
        m.assert_mirrored(&p, &v);
    }
    m.run(&["verify"]).expect(0);
}

#[test]
fn symlinks_are_removed_never_followed() {
    let mut m = mirror();
    m.cfg.max_delete = "100".into();
    m.write_config();
    let outside = m.dir.path().join("precious");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("keep.txt"), "keep").unwrap();
    // A link to a directory outside the tree, where a module could go.
    std::os::unix::fs::symlink(&outside, m.out().join("example.com/linked")).unwrap();
    // A link in place of a published file.
    let v = version_of(&m, M);
    let zip = m.out().join(version_file(M, &v, "zip"));
    std::fs::remove_file(&zip).unwrap();
    std::os::unix::fs::symlink(outside.join("keep.txt"), &zip).unwrap();

    m.run(&["verify"]).expect(1).contains("not a regular file");
    m.run(&["prune"]).expect(0);
    assert!(!m.out().join("example.com/linked").exists());
    assert_eq!(
        std::fs::read_to_string(outside.join("keep.txt")).unwrap(),
        "keep"
    );
    m.run(&["verify", "--repair"]).expect(0);
    assert!(
        !std::fs::symlink_metadata(&zip)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // A sync never writes through a link where a module directory should be.
    std::os::unix::fs::symlink(&outside, m.out().join("example.com/newmod")).unwrap();
    m.upstream
        .add(ModuleVersionSpec::new("example.com/newmod", "v1.0.0"));
    let r = m.sync();
    r.expect(1).contains("symbolic link");
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        1,
        "nothing written outside the tree"
    );
}

#[test]
fn narrowing_the_filter_prunes_and_widening_backfills_without_the_index() {
    let corpus = Corpus::generated(4, 3, 5);
    let cfg = Cfg {
        include: vec!["example.com/gen/m0".into(), "example.com/gen/m1".into()],
        max_delete: "100".into(),
        ..Cfg::default()
    };
    let mut m = Mirror::with(corpus, FakeOptions::default(), cfg);
    m.sync().expect(0);
    assert!(m.out().join("example.com/gen/m0/@v/list").exists());
    assert!(!m.out().join("example.com/gen/m2").exists());

    // Narrow: m1 is no longer wanted.
    m.cfg.include = vec!["example.com/gen/m0".into()];
    m.write_config();
    let r = m.sync();
    r.expect(0).contains("deleted 3 versions");
    assert!(
        !m.out().join("example.com/gen/m1").exists(),
        "{:?}",
        m.tree_files()
    );
    m.run(&["verify"]).expect(0);

    // Widen: m1 comes back and m2, m3 arrive, from what the index said before.
    m.cfg.include = vec!["example.com/gen".into()];
    m.write_config();
    m.upstream.clear_request_log();
    let r = m.sync();
    r.expect(0)
        .contains("published 9 new versions")
        .contains("3 modules now wanted");
    let index_requests = m
        .upstream
        .request_log()
        .iter()
        .filter(|p| p.starts_with("/index"))
        .count();
    assert_eq!(index_requests, 1, "the index was walked again");
    for (p, v) in m.upstream.versions() {
        m.assert_mirrored(&p, &v);
    }
}

#[test]
fn versions_removed_upstream_are_pruned() {
    let mut m = mirror();
    m.cfg.recheck_interval = "0s".into();
    m.cfg.max_delete = "5".into();
    m.write_config();
    let v = version_of(&m, M);
    m.upstream.inject(Fault::Status {
        path_prefix: format!("/proxy/{}", version_file(M, &v, "info")),
        status: 410,
    });
    // Gone once missing for the grace period (here: at once).
    let r = m.run_env(&["sync"], &[("GOMIRROR_TEST_MISSING_GRACE_SECS", "0")]);
    r.expect(0)
        .contains("1 no longer there")
        .contains("deleted 1 versions");
    m.assert_absent(M, &v);
    let lookup = format!("sumdb/{}/lookup/{M}@{v}", m.upstream.sumdb_name());
    assert!(m.file(&lookup).is_none());
    m.run(&["verify"]).expect(0);
}

#[test]
fn a_prune_that_would_empty_the_mirror_is_refused() {
    let mut m = mirror();
    let before = m.tree_files();
    m.cfg.include = vec!["nothing.example".into()];
    m.cfg.max_delete = "\"100%\"".into();
    m.write_config();
    let r = m.sync();
    r.expect(2)
        .contains("REFUSED")
        .contains("nothing was deleted");
    assert_eq!(m.tree_files(), before);
    let r = m.run(&["prune"]);
    r.expect(2).contains("REFUSED");
    assert_eq!(m.tree_files(), before);
    m.run(&["prune", "--dry-run"])
        .expect(0)
        .contains("would delete 12 versions");
    assert_eq!(m.tree_files(), before);
    m.run(&["prune", "--force"])
        .expect(0)
        .contains("deleted 12 versions");
    let left: Vec<String> = m
        .tree_files()
        .into_iter()
        .filter(|f| !f.starts_with("sumdb/") && !f.starts_with("trace/") && !f.starts_with("feed/"))
        // The pages stay, the modules' own are gone with them.
        .filter(|f| !f.starts_with("site/") || f.starts_with("site/m/"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_prune_past_max_delete_is_refused() {
    let mut m = mirror();
    let before = m.tree_files();
    m.cfg.max_delete = "2".into();
    m.cfg.include = vec![
        "example.com/gen/m0".into(),
        "example.com/gen/m1".into(),
        "example.com/gen/m2".into(),
    ];
    m.write_config();
    m.sync().expect(2).contains("REFUSED to delete 3 versions");
    assert_eq!(m.tree_files(), before);
}

/// Every file under `dir` with a digest of its bytes: what must survive untouched.
fn snapshot(dir: &std::path::Path) -> Vec<(String, String)> {
    use sha2::{Digest, Sha256};
    files_under(dir)
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(dir.join(&f)).unwrap();
            let digest = gomirror::publish::hex(&Sha256::digest(&bytes));
            (f, digest)
        })
        .collect()
}

/// Moves the tree directory `rel` to `outside` and puts a symbolic link to it
/// in its place. The files outside are precious: a copy of what was
/// mirrored, so every name matches a file gomirror would delete or rewrite.
fn link_outside(
    m: &Mirror,
    rel: &str,
    outside: &str,
) -> (std::path::PathBuf, Vec<(String, String)>) {
    let outside = m.dir.path().join(outside);
    std::fs::rename(m.out().join(rel), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, m.out().join(rel)).unwrap();
    let precious = snapshot(&outside);
    assert!(precious.len() >= 3, "{precious:?}");
    (outside, precious)
}

/// `verify --repair`, `prune` and a `sync` with a narrowed filter meet a link
/// at `rel` pointing outside the output: none of them writes or deletes
/// outside; prune removes the link itself, and the mirror then repairs itself.
fn links_outside_are_never_followed(rel: &str, narrowed: &[&str]) {
    let mut m = mirror();
    m.cfg.max_delete = "100".into();
    m.write_config();
    let link = m.out().join(rel);
    let is_link = || std::fs::symlink_metadata(&link).is_ok_and(|md| md.is_symlink());
    let shown = link.display().to_string();

    let (outside, precious) = link_outside(&m, rel, "outside");
    m.run(&["verify"])
        .expect(1)
        .contains("symbolic link")
        .contains(&shown);
    let r = m.run(&["verify", "--repair"]);
    assert_ne!(r.code, 0, "{}", r.all());
    r.contains("symbolic link").contains(&shown);
    assert_eq!(
        snapshot(&outside),
        precious,
        "verify --repair wrote outside"
    );

    m.run(&["prune"]).expect(0).contains("1 stray files");
    assert!(!is_link(), "prune left the link");
    assert_eq!(snapshot(&outside), precious, "prune deleted outside");
    m.run(&["verify", "--repair"]).expect(0);
    for (p, v) in m.upstream.versions() {
        m.assert_mirrored(&p, &v);
    }

    // A narrowed filter: the unwanted module's files are to go, and the link is on the way.
    let (outside, precious) = link_outside(&m, rel, "outside2");
    let wide = m.cfg.include.clone();
    m.cfg.include = narrowed.iter().map(|s| s.to_string()).collect();
    m.write_config();
    m.sync()
        .expect(0)
        .contains("deleted 3 versions, 1 stray files");
    assert!(!is_link(), "prune left the link");
    assert_eq!(
        snapshot(&outside),
        precious,
        "sync wrote or deleted outside"
    );

    m.cfg.include = wide;
    m.write_config();
    m.sync().expect(0);
    m.run(&["verify", "--repair"]).expect(0);
    m.run(&["verify"]).expect(0);
    for (p, v) in m.upstream.versions() {
        m.assert_mirrored(&p, &v);
    }
    assert_eq!(snapshot(&outside), precious);
}

#[test]
fn prune_never_deletes_through_a_symlinked_module_directory() {
    links_outside_are_never_followed(
        M,
        &[
            "example.com/gen/m0",
            "example.com/gen/m2",
            "example.com/gen/m3",
        ],
    );
}

#[test]
fn prune_never_deletes_through_a_symlinked_at_v_directory() {
    links_outside_are_never_followed(
        &format!("{M}/@v"),
        &[
            "example.com/gen/m0",
            "example.com/gen/m2",
            "example.com/gen/m3",
        ],
    );
}

#[test]
fn prune_never_deletes_through_a_symlinked_intermediate_directory() {
    links_outside_are_never_followed(
        "example.com",
        &[
            "example.com/gen/m0",
            "example.com/gen/m2",
            "example.com/gen/m3",
        ],
    );
}

#[test]
fn a_directory_named_at_v_under_the_output_is_a_stray_not_a_panic() {
    let m = mirror();
    std::fs::create_dir_all(m.out().join("@v")).unwrap();
    std::fs::write(m.out().join("@v/list"), "v1.0.0\n").unwrap();
    std::fs::create_dir_all(m.out().join("x/@v")).unwrap();
    std::fs::write(m.out().join("x/@v/list"), "v1.0.0\n").unwrap();
    m.run(&["prune", "--dry-run"])
        .expect(0)
        .contains("delete stray directory @v/")
        .contains("delete stray directory x/@v/");
    m.sync().expect(0).contains("2 stray directories");
    assert!(!m.out().join("@v").exists());
    assert!(!m.out().join("x").exists());
    m.run(&["verify"]).expect(0);
}

#[test]
fn prune_keeps_versions_whose_files_it_could_not_delete() {
    let mut m = mirror();
    m.cfg.max_delete = "100".into();
    m.cfg.include = vec![
        "example.com/gen/m0".into(),
        "example.com/gen/m2".into(),
        "example.com/gen/m3".into(),
    ];
    m.write_config();
    // Without the tree scan the obstacle below is not a stray: only the
    // version's own deletion meets it.
    let mut cfg = std::fs::read_to_string(m.config_path()).unwrap();
    cfg.push_str("scan_tree = false\n");
    std::fs::write(m.config_path(), cfg).unwrap();
    let v = version_of(&m, M);
    let zip = m.out().join(version_file(M, &v, "zip"));
    // Undeletable even as root: a non-empty directory where the file is.
    std::fs::remove_file(&zip).unwrap();
    std::fs::create_dir(&zip).unwrap();
    std::fs::write(zip.join("keep"), "x").unwrap();

    m.run(&["prune"])
        .expect(2)
        .contains(&format!("{M}@{v}"))
        .contains(&zip.display().to_string())
        .contains("could not delete 1 entries");
    // The other versions went; this one is still recorded as in the tree,
    // so the next prune tries again.
    m.run(&["prune", "--dry-run"])
        .expect(0)
        .contains(&format!("delete {M}@{v} (no longer wanted by the filter)"))
        .contains("would delete 1 versions");
    std::fs::remove_dir_all(&zip).unwrap();
    m.run(&["prune"]).expect(0).contains("deleted 1 versions");
    m.assert_absent(M, &v);
    m.run(&["verify"]).expect(0);
}

/// Prune reads and deletes its deletion set a page at a time (1000 versions),
/// so its memory does not grow with it; more than a page must all go, and
/// what stays must be untouched.
#[test]
fn prune_deletes_a_deletion_set_larger_than_a_page() {
    let corpus =
        Corpus::generated(3, 370, 7).with(ModuleVersionSpec::new("example.com/keep/mod", "v1.0.0"));
    let mut m = Mirror::with(corpus, FakeOptions::default(), Cfg::default());
    m.sync().expect(0);
    let total = m.upstream.versions().len();
    assert!(total > 1100, "{total}");
    m.cfg.include = vec!["example.com/keep".into()];
    m.cfg.max_delete = "\"100%\"".into();
    m.write_config();
    m.run(&["prune"])
        .expect(0)
        .contains(&format!("deleted {} versions", total - 1));
    m.assert_mirrored("example.com/keep/mod", "v1.0.0");
    for (p, v) in m.upstream.versions() {
        if p != "example.com/keep/mod" {
            m.assert_absent(&p, &v);
        }
    }
    assert!(
        m.tree_files()
            .iter()
            .all(|f| f.starts_with("example.com/keep/")
                || f.starts_with("sumdb/")
                || f.starts_with("trace/")
                || f.starts_with("feed/")
                || f.starts_with("site/m/example.com/keep/")
                || (f.starts_with("site/") && !f.starts_with("site/m/"))),
        "{:?}",
        m.tree_files()
            .iter()
            .filter(|f| f.starts_with("example.com/gen"))
            .take(5)
            .collect::<Vec<_>>()
    );
    m.run(&["verify"]).expect(0);
}
