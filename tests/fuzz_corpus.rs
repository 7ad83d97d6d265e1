//! Replays the fuzz corpora (`fuzz/corpus/<target>/`: the seeds and every
//! input that once crashed a target) through the same functions the
//! cargo-fuzz targets call, so `cargo test` on stable guards them without
//! nightly or cargo-fuzz.

#[path = "../fuzz/src/lib.rs"]
mod targets;

use std::path::Path;

#[test]
fn fuzz_corpora_replay_without_panics() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut replayed = 0;
    for (name, target) in targets::TARGETS {
        let dir = root.join(name);
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("corpus entry").path())
            .collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "{}: no seeds", dir.display());
        for input in inputs {
            let data = std::fs::read(&input).expect("corpus file");
            // Name the input that fails: the panic message alone does not.
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name} panicked on {}", input.display());
            replayed += 1;
        }
    }
    // Every target has a directory; a target without one is a typo.
    let dirs = std::fs::read_dir(&root).expect("fuzz/corpus").count();
    assert_eq!(
        dirs,
        targets::TARGETS.len(),
        "corpus directories vs targets"
    );
    assert!(replayed >= targets::TARGETS.len());
}
