//! Work spread over runs: the stray scan takes a slice of the
//! tree per sync and `verify --slice` a slice of the published versions per
//! run, each resuming where the last stopped, so that a whole pass ends
//! within its period without any one run reading the whole mirror. These
//! tests shrink the slices (`GOMIRROR_TEST_SLICE_MIN`) so that a small
//! mirror takes several runs, and check what a pass guarantees: everything
//! is visited, nothing twice in one pass, and what a slice finds is acted on.

use crate::common::*;
use crate::support::Corpus;

/// A mirror of a dozen versions, about a hundred tree entries.
fn mirror() -> Mirror {
    let m = Mirror::new(Corpus::generated(4, 3, 23));
    m.sync().expect(0);
    m
}

const SMALL_SLICES: (&str, &str) = ("GOMIRROR_TEST_SLICE_MIN", "10");

/// How many syncs a stray scan in slices of ten entries takes to find a
/// stray file placed late in the tree's key order.
#[test]
fn a_stray_is_found_by_the_slices_of_a_pass_and_by_prune_at_once() {
    let m = mirror();
    let entries = m.tree_files().len();
    assert!(
        entries > 40,
        "{entries} files: too small to need several slices"
    );
    // Late in key order (after every module and `sumdb/`), outside the layout.
    std::fs::write(m.out().join("zzz-stray.txt"), b"dropped by hand").unwrap();
    let mut syncs = 0;
    loop {
        syncs += 1;
        let r = m.run_env(&["sync"], &[SMALL_SLICES]);
        r.expect(0);
        if r.stdout.contains("1 stray files") {
            break;
        }
        assert!(
            m.out().join("zzz-stray.txt").exists(),
            "the stray went without being counted"
        );
        assert!(syncs < 40, "no slice found the stray after {syncs} syncs");
    }
    assert!(
        syncs > 2,
        "found by sync {syncs}: the slices were not slices ({entries} files)"
    );
    assert!(!m.out().join("zzz-stray.txt").exists());
    // The pass went on from where it stopped: the status says so.
    let status = m.status();
    let strays = &status["passes"]["strays"];
    assert!(strays["started"].is_string(), "{status}");

    // `gomirror prune` scans the whole tree at once.
    std::fs::write(m.out().join("zzz-stray.txt"), b"again").unwrap();
    std::fs::write(m.out().join("aaa-stray.txt"), b"early").unwrap();
    m.run_env(&["prune"], &[SMALL_SLICES])
        .expect(0)
        .contains("2 stray files");
    assert!(!m.out().join("zzz-stray.txt").exists());
    assert!(!m.out().join("aaa-stray.txt").exists());
    m.run(&["verify"]).expect(0);
}

/// `verify --slice` checks the next slice on each run; a pass covers every
/// version once, and damage is found by the slice that holds it (and
/// repaired by `--repair` in that slice alone).
#[test]
fn verify_slices_cover_the_mirror_once_per_pass_and_find_damage_in_theirs() {
    let m = mirror();
    let versions = m.upstream.versions().len();
    // The last version in the tree's order: found by the last slice.
    let (path, version) = m.upstream.versions().into_iter().max().unwrap();
    let zip = m
        .out()
        .join(format!("{path}/@v/{version}.zip").to_lowercase());
    assert!(zip.exists(), "{}", zip.display());
    std::fs::write(&zip, b"not a zip any more").unwrap();

    let slice = [("GOMIRROR_TEST_SLICE_MIN", "5")];
    let mut checked = 0;
    let mut runs = 0;
    let found_at = loop {
        runs += 1;
        let r = m.run_env(&["verify", "--slice"], &slice);
        let n: usize = r
            .stdout
            .split("gomirror verify --slice: ")
            .nth(1)
            .and_then(|t| t.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count in {}", r.all()));
        assert!(n <= 5, "a slice of {n}: {}", r.all());
        checked += n;
        if r.code == 1 {
            r.contains(&format!("{path}@{version}"));
            break runs;
        }
        r.expect(0);
        assert!(runs < 10, "no slice found the damage");
    };
    assert!(found_at > 1, "the first slice saw the whole mirror");
    assert_eq!(checked, versions, "one pass checks every version once");
    // The pass ended with that slice; the next begins again at the start and
    // does not see the damage (it is in the last slice).
    m.run_env(&["verify", "--slice"], &slice)
        .expect(0)
        .contains("went from 0%");
    // A whole verify finds it, and --repair mends it.
    m.run(&["verify"]).expect(1);
    m.run(&["verify", "--repair"]).expect(0);
    m.run(&["verify"]).expect(0);
}
