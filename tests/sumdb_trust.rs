//! The checksum database over time: the mirror proves each new tree head
//! extends the last one it accepted, stops on a forked or rewound log, and
//! keeps in its tree every tile any client needs — for every tree head it
//! hands out, every record it serves, and every pair of heads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gomirror::sumdb::note::Verifier;
use gomirror::sumdb::tile::{Tile, TileHashReader, TileReader};
use gomirror::sumdb::tlog::{self, HashReader, TlogError, Tree};

use crate::common::*;
use crate::support::{Corpus, FakeOptions, Fault, ModuleVersionSpec};

/// A tile reader over the mirror tree alone, with the go client's fallback:
/// the exact tile, else the full tile truncated.
struct MirrorTiles {
    dir: PathBuf,
}

impl TileReader for MirrorTiles {
    fn height(&self) -> i32 {
        8
    }
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TlogError> {
        tiles
            .iter()
            .map(|t| {
                if let Ok(d) = std::fs::read(self.dir.join(t.path())) {
                    return Ok(d);
                }
                let full = std::fs::read(self.dir.join(t.full().path())).map_err(|_| {
                    TlogError::Read(format!("tile {} missing from the mirror", t.path()))
                })?;
                Ok(full[..t.w as usize * 32].to_vec())
            })
            .collect()
    }
}

/// Every signed head the mirror hands out (lookups and `latest`), by size.
fn served_heads(out: &Path, name: &str, key: &str) -> BTreeMap<i64, Tree> {
    let verifier = Verifier::parse(key).unwrap();
    let dir = out.join(format!("sumdb/{name}"));
    let mut heads = BTreeMap::new();
    let mut add = |note: &[u8]| {
        let text = gomirror::sumdb::note::open(note, &verifier).expect("served note verifies");
        let tree = tlog::parse_tree(text.as_bytes()).unwrap();
        heads.insert(tree.n, tree);
    };
    add(&std::fs::read(dir.join("latest")).unwrap());
    for f in files_under(&dir.join("lookup")) {
        let body = std::fs::read(dir.join("lookup").join(&f)).unwrap();
        let (_, _, note) = tlog::parse_record(&body).unwrap();
        add(note);
    }
    heads
}

/// Checks, with tiles from the tree only, every check a go client can make.
fn assert_every_client_view_verifies(m: &Mirror) {
    let name = m.upstream.sumdb_name();
    let dir = m.out().join(format!("sumdb/{name}"));
    let tiles = MirrorTiles { dir: dir.clone() };
    let heads = served_heads(&m.out(), &name, &m.upstream.sumdb_key());
    assert!(!heads.is_empty());
    // Records against every head at least as large as their own.
    let mut records = Vec::new();
    for f in files_under(&dir.join("lookup")) {
        let body = std::fs::read(dir.join("lookup").join(&f)).unwrap();
        let (id, text, _) = tlog::parse_record(&body).unwrap();
        records.push((f, id, tlog::record_hash(text)));
    }
    for (n, tree) in &heads {
        let reader = TileHashReader::new(*tree, &tiles);
        for (f, id, leaf) in &records {
            if id < n {
                let got = reader
                    .read_hashes(&[tlog::stored_hash_index(0, *id)])
                    .unwrap_or_else(|e| panic!("record {id} ({f}) against head {n}: {e}"));
                assert_eq!(got[0], *leaf, "record {id} against head {n}");
            }
        }
        // Consistency of every smaller head with this one.
        for (n1, older) in heads.range(..*n) {
            let h = tlog::tree_hash(*n1, &reader)
                .unwrap_or_else(|e| panic!("head {n1} within head {n}: {e}"));
            assert_eq!(h, older.hash, "head {n1} is not a prefix of head {n}");
        }
    }
    // No tile is stored twice: a partial tile never sits beside its full tile.
    for t in files_under(&dir.join("tile")) {
        if let Some((full, _)) = t.split_once(".p/") {
            assert!(
                !dir.join("tile").join(full).exists(),
                "tile/{t} is stored beside its full tile"
            );
        }
    }
}

#[test]
fn every_client_view_verifies_from_the_tree_across_growing_syncs() {
    let opts = FakeOptions {
        filler_records: 65_000,
        ..FakeOptions::default()
    };
    let m = Mirror::with(Corpus::generated(3, 2, 13), opts, Cfg::default());
    m.sync().expect(0);
    assert_every_client_view_verifies(&m);
    // Grow across tile boundaries, syncing in between: several heads are served.
    for round in 0..4 {
        for i in 0..3 {
            m.upstream.add(ModuleVersionSpec::new(
                &format!("example.com/grow{round}"),
                &format!("v1.{i}.0"),
            ));
        }
        m.sync().expect(0);
        assert_every_client_view_verifies(&m);
    }
    let heads = served_heads(&m.out(), &m.upstream.sumdb_name(), &m.upstream.sumdb_key());
    assert!(heads.len() >= 5, "{:?}", heads.keys());
    // `gomirror verify` agrees.
    m.run(&["verify"]).expect(0);
}

#[test]
fn forked_log_stops_the_run_and_names_both_heads() {
    let m = Mirror::new(Corpus::generated(2, 2, 3));
    m.sync().expect(0);
    let before = m.tree_files();
    m.upstream.inject(Fault::ForkLog);
    m.upstream
        .add(ModuleVersionSpec::new("example.com/after", "v1.0.0"));
    let r = m.sync();
    r.expect(2)
        .contains("SECURITY ERROR")
        .contains("forked")
        .contains("new head:")
        .contains("accepted head:")
        .contains("go.sum database tree");
    assert_eq!(m.tree_files(), before, "nothing new is published");
    m.assert_absent("example.com/after", "v1.0.0");
    // It stays stopped: the fork is remembered against the stored head.
    m.sync().expect(2);
}

#[test]
fn rewound_log_stops_the_run() {
    let opts = FakeOptions {
        filler_records: 100,
        ..FakeOptions::default()
    };
    let m = Mirror::with(Corpus::generated(2, 2, 4), opts, Cfg::default());
    m.sync().expect(0);
    let before = m.tree_files();
    m.upstream.inject(Fault::RewindLog { size: 102 });
    let r = m.sync();
    r.expect(2).contains("SECURITY ERROR").contains("rewound");
    assert_eq!(m.tree_files(), before);
}

#[test]
fn trusted_head_survives_across_runs() {
    let m = Mirror::new(Corpus::generated(1, 1, 2));
    m.sync().expect(0);
    let first = m.status()["checksum_database"]["trusted_size"]
        .as_i64()
        .unwrap();
    m.upstream
        .add(ModuleVersionSpec::new("example.com/n", "v1.0.0"));
    m.sync().expect(0);
    let second = m.status()["checksum_database"]["trusted_size"]
        .as_i64()
        .unwrap();
    assert_eq!(second, first + 1);
    assert_eq!(m.upstream.tree_size() as i64, second);
}
