//! The checksum database over time: the mirror proves each new tree head
//! extends the last one it accepted, stops on a forked or rewound log, and
//! keeps in its tree every tile any client needs — for every tree head it
//! hands out, every record it serves, and every pair of heads.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gomirror::sumdb::note::Verifier;
use gomirror::sumdb::tile::{Tile, TileHashReader, TileReader};
use gomirror::sumdb::tlog::{self, HashReader, TlogError, Tree};

use crate::common::*;
use crate::support::{Corpus, FakeOptions, Fault, ModuleVersionSpec, http};

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

/// How long a run that should stop at once may take before it counts as hung.
const HUNG: Duration = Duration::from_secs(60);

/// Runs `gomirror` like `Mirror::run`, but kills it and fails the test when it
/// is still running after `limit`: a deadlocked run must fail, not hang the suite.
#[track_caller]
fn run_within(m: &Mirror, args: &[&str], limit: Duration) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gomirror"))
        .arg("-c")
        .arg(m.config_path())
        .args(args)
        .env("GOMIRROR_TEST_RETRY_BASE_MS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run gomirror");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            pipe.read_to_end(&mut bytes)
                .expect("read gomirror's output");
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for gomirror") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            child.kill().expect("kill the hung gomirror");
            child.wait().expect("reap the killed gomirror");
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    let Some(status) = status else {
        panic!(
            "gomirror {args:?} was still running after {limit:?} (deadlocked?) and was killed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
        );
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

#[test]
fn forked_head_of_same_size_through_latest_does_not_deadlock() {
    let m = Mirror::new(Corpus::generated(2, 2, 3));
    m.sync().expect(0);
    let before = m.tree_files();
    // Nothing added: `/latest` shows a head of the trusted size with another hash.
    m.upstream.inject(Fault::ForkLog);
    run_within(&m, &["sync"], HUNG)
        .expect(2)
        .contains("SECURITY ERROR")
        .contains("forked")
        .contains("new head:")
        .contains("accepted head:");
    assert_eq!(m.tree_files(), before, "nothing new is published");
    // The lock went with the run: the next one is refused for the fork (2),
    // not for a held lock (3).
    run_within(&m, &["sync"], HUNG).expect(2).contains("forked");
}

#[test]
fn forked_head_of_same_size_in_a_lookup_does_not_deadlock() {
    let m = Mirror::new(Corpus::generated(2, 2, 3));
    m.sync().expect(0);
    // `/latest` grows honestly to the new size; the lookup carries a forked
    // head of exactly that size.
    m.upstream.inject(Fault::ForkLookups);
    m.upstream
        .add(ModuleVersionSpec::new("example.com/after", "v1.0.0"));
    run_within(&m, &["sync"], HUNG)
        .expect(2)
        .contains("SECURITY ERROR")
        .contains("forked")
        .contains("new head:")
        .contains("accepted head:");
    m.assert_absent("example.com/after", "v1.0.0");
    run_within(&m, &["sync"], HUNG).expect(2).contains("forked");
    // Only the lookups lied, and nothing was trusted from them.
    m.upstream.clear_faults();
    run_within(&m, &["sync"], HUNG).expect(0);
    m.assert_mirrored("example.com/after", "v1.0.0");
    assert_every_client_view_verifies(&m);
}

/// `1 << 62`, the largest tree size the protocol allows.
const ABSURD: u64 = 1 << 62;

#[test]
fn absurd_first_head_is_not_trusted_and_does_not_wedge_a_new_mirror() {
    let m = Mirror::new(Corpus::generated(2, 2, 3));
    m.upstream.inject(Fault::AbsurdLatest { size: ABSURD });
    for _ in 0..2 {
        run_within(&m, &["sync"], HUNG)
            .expect(2)
            .contains("SECURITY ERROR")
            .contains(&format!("tree head of {ABSURD} records"))
            .contains("does not serve the tiles that prove it")
            .contains("Nothing was recorded");
        assert_eq!(
            m.status()["checksum_database"]["trusted_size"].as_i64(),
            None,
            "an unproven first head is not trusted"
        );
        assert!(
            m.tree_files().iter().all(|f| f.starts_with("sumdb/")),
            "no module is published: {:?}",
            m.tree_files()
        );
    }
    // Once the database stops serving it, the mirror starts as a new one would.
    m.upstream.clear_faults();
    run_within(&m, &["sync"], HUNG).expect(0);
    let trusted = m.status()["checksum_database"]["trusted_size"].as_i64();
    assert_eq!(trusted, Some(m.upstream.tree_size() as i64));
    assert_every_client_view_verifies(&m);
}

/// Plants `note` in the state database as its largest accepted head, as a
/// gomirror that trusted a first head without checking its tiles left it.
fn plant_trusted_head(m: &Mirror, note: &[u8]) -> i64 {
    let verifier = Verifier::parse(&m.upstream.sumdb_key()).unwrap();
    let text = gomirror::sumdb::note::open(note, &verifier).expect("planted note verifies");
    let tree = tlog::parse_tree(text.as_bytes()).unwrap();
    let db = rusqlite::Connection::open(m.dir.path().join("state.db")).unwrap();
    db.execute(
        "INSERT INTO sumdb_trees(size, hash, note) VALUES (?1, ?2, ?3)",
        rusqlite::params![tree.n, tree.hash.to_string(), note],
    )
    .unwrap();
    tree.n
}

/// The SQL statement the recovery advice in `r` tells the operator to run.
fn recovery_sql(r: &Run) -> String {
    let all = r.all();
    let line = all
        .lines()
        .find(|l| l.contains("sqlite3 "))
        .unwrap_or_else(|| panic!("no recovery command in:\n{all}"));
    let (start, end) = (line.find('"').unwrap(), line.rfind('"').unwrap());
    assert!(start < end, "unquoted recovery command: {line}");
    line[start + 1..end].to_string()
}

#[test]
fn trusted_head_whose_tiles_are_missing_upstream_says_how_to_recover() {
    let m = Mirror::new(Corpus::generated(2, 2, 3));
    m.sync().expect(0);
    m.upstream.inject(Fault::AbsurdLatest { size: ABSURD });
    let bogus = http::get_ok(&format!("{}/latest", m.upstream.sumdb_url()));
    m.upstream.clear_faults();
    assert_eq!(plant_trusted_head(&m, &bogus), ABSURD as i64);
    m.upstream
        .add(ModuleVersionSpec::new("example.com/after", "v1.0.0"));
    let delete = format!("DELETE FROM sumdb_trees WHERE size = {ABSURD}");

    // The honest `/latest` is smaller than the planted head.
    let r = run_within(&m, &["sync"], HUNG);
    r.expect(2)
        .contains("SECURITY ERROR")
        .contains("rewound")
        .contains("does not serve the tiles")
        .contains(&delete);
    // The planted head is served too: each lookup's head must be proven
    // against it, with tiles the database does not have.
    m.upstream.inject(Fault::AbsurdLatest { size: ABSURD });
    let r = run_within(&m, &["sync"], HUNG);
    r.expect(2)
        .contains("SECURITY ERROR")
        .contains("does not serve the tiles")
        .contains(&delete);
    m.assert_absent("example.com/after", "v1.0.0");

    // Doing exactly what the message says recovers the mirror.
    assert_eq!(recovery_sql(&r), delete);
    m.upstream.clear_faults();
    let db = rusqlite::Connection::open(m.dir.path().join("state.db")).unwrap();
    assert_eq!(db.execute(&recovery_sql(&r), []).unwrap(), 1);
    drop(db);
    run_within(&m, &["sync"], HUNG).expect(0);
    m.assert_mirrored("example.com/after", "v1.0.0");
    assert_every_client_view_verifies(&m);
}
