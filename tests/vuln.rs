//! The vulnerability database (`[vulndb] url`): mirrored from a fake
//! vuln.go.dev serving real OSV entries (`tests/support/vulndb.rs`), checked,
//! incremental, refused when it goes back or contradicts itself, kept by
//! prune, carried by bundles and followed by downstream mirrors; and the real
//! govulncheck using the mirror's copy through nginx and `file://`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use crate::common::*;
use crate::support::vulndb::{FakeVulnDb, VulnDb};
use crate::support::{Corpus, FakeOptions};

/// A mirror of a small corpus whose `[vulndb]` is `fake`.
pub fn mirror_with_vulndb(corpus: Corpus, fake: &FakeVulnDb) -> Mirror {
    let cfg = Cfg {
        extra: format!("\n[vulndb]\nurl = \"{}\"\n", fake.url()),
        ..Cfg::default()
    };
    Mirror::with(corpus, FakeOptions::default(), cfg)
}

/// Every file under `<out>/vuln/`, by path below it.
pub fn vuln_files(out: &Path) -> BTreeMap<String, Vec<u8>> {
    let dir = out.join("vuln");
    files_under(&dir)
        .into_iter()
        .map(|f| {
            let b = std::fs::read(dir.join(&f)).unwrap();
            (f, b)
        })
        .collect()
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(b)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The tree holds exactly the fake's database: every `.json` byte for byte
/// (an entry's or an index's), every `.json.gz` inflating to its `.json`.
#[track_caller]
pub fn assert_same_database(out: &Path, db: &VulnDb) {
    let want = db.files();
    let got = vuln_files(out);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "the tree's vuln/ holds other files"
    );
    for (rel, bytes) in &want {
        if let Some(json) = rel.strip_suffix(".gz") {
            assert_eq!(
                gunzip(&got[rel]),
                want[json],
                "{rel} does not inflate to {json}"
            );
        } else {
            assert!(got[rel] == *bytes, "{rel} differs from the upstream's");
        }
    }
}

fn small() -> Corpus {
    Corpus::generated(2, 2, 7)
}

#[test]
fn the_database_is_mirrored_in_its_layout_and_only_what_changed_is_fetched_again() {
    let mut db = VulnDb::fixtures();
    let fake = FakeVulnDb::start(&db);
    let m = mirror_with_vulndb(small(), &fake);
    let r = m.sync();
    r.expect(0)
        .contains("vulndb: modified 2024-06-04T15:00:00Z");
    assert_same_database(&m.out(), &db);
    let mut first = fake.requests();
    first.sort();
    let mut want: Vec<String> = [
        "index/db.json.gz",
        "index/modules.json.gz",
        "index/vulns.json.gz",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(db.entries.keys().map(|id| format!("ID/{id}.json.gz")))
    .collect();
    want.sort();
    assert_eq!(
        first, want,
        "the first sync fetches the indexes and every entry once"
    );

    // Unchanged: one request.
    fake.clear_requests();
    m.sync().expect(0);
    assert_eq!(fake.requests(), ["index/db.json.gz"]);

    // One entry changes: the indexes and that entry, nothing else.
    db.touch("GO-2021-0113", "2024-07-01T10:00:00Z");
    fake.set(&db);
    fake.clear_requests();
    m.run(&["sync", "-v"])
        .expect(0)
        .contains("fetched 1 of 6 entries")
        .contains("was 2024-06-04T15:00:00Z");
    let mut got = fake.requests();
    got.sort();
    assert_eq!(
        got,
        [
            "ID/GO-2021-0113.json.gz",
            "index/db.json.gz",
            "index/modules.json.gz",
            "index/vulns.json.gz"
        ]
    );
    assert_same_database(&m.out(), &db);

    let status = m.status();
    assert_eq!(status["vulndb"]["modified"], "2024-07-01T10:00:00Z");
    assert_eq!(status["vulndb"]["entries"], 6);
    let text = m.run(&["status", "--offline"]);
    text.expect(0)
        .contains("vulndb     modified 2024-07-01T10:00:00Z");

    // Prune keeps every file of the database (no strays), and says so.
    let r = m.run(&["prune", "--dry-run"]);
    r.expect(0);
    assert!(
        !r.all().contains("vuln/"),
        "prune would delete database files:\n{}",
        r.all()
    );
    std::fs::write(m.out().join("vuln/ID/GO-2099-0001.json"), b"{}").unwrap();
    std::fs::write(m.out().join("vuln/index/extra.json"), b"{}").unwrap();
    let r = m.run(&["prune", "--dry-run"]);
    r.expect(0)
        .contains("vuln/ID/GO-2099-0001.json")
        .contains("vuln/index/extra.json");
    m.run(&["prune"]).expect(0);
    assert_same_database(&m.out(), &db);
}

#[test]
fn a_rewound_database_is_refused_and_nothing_changes() {
    let old = VulnDb::fixtures();
    let mut new = old.clone();
    new.touch("GO-2024-2687", "2024-08-01T00:00:00Z");
    let fake = FakeVulnDb::start(&new);
    let m = mirror_with_vulndb(small(), &fake);
    m.sync().expect(0);
    let before = vuln_files(&m.out());

    fake.set(&old);
    let r = m.sync();
    r.expect(2)
        .contains("SECURITY ERROR")
        .contains("modified 2024-06-04T15:00:00Z is older than the 2024-08-01T00:00:00Z")
        .contains("nothing changed");
    assert!(
        vuln_files(&m.out()) == before,
        "a refused database changed the tree"
    );
    assert_eq!(m.status()["vulndb"]["modified"], "2024-08-01T00:00:00Z");

    // One entry going back while the database moves forward is refused too.
    let mut sneaky = new.clone();
    sneaky.touch("GO-2024-2687", "2024-07-01T00:00:00Z");
    sneaky.touch("GO-2021-0113", "2024-09-01T00:00:00Z");
    fake.set(&sneaky);
    m.sync()
        .expect(2)
        .contains("GO-2024-2687: modified 2024-07-01T00:00:00Z is older");
    assert!(vuln_files(&m.out()) == before);

    // An entry that disappears is refused (entries are withdrawn, never removed).
    let mut fewer = new.clone();
    fewer.entries.remove("GO-2021-0068");
    fewer.touch("GO-2021-0113", "2024-09-01T00:00:00Z");
    fake.set(&fewer);
    m.sync()
        .expect(2)
        .contains("GO-2021-0068, which this mirror holds, is no longer listed");
    assert!(vuln_files(&m.out()) == before);

    // The real one again: fine.
    fake.set(&new);
    m.sync().expect(0);
    assert_same_database(&m.out(), &new);
}

#[test]
fn an_inconsistent_or_hostile_database_is_refused_and_nothing_is_published() {
    let db = VulnDb::fixtures();
    let fake = FakeVulnDb::start(&db);
    let m = mirror_with_vulndb(small(), &fake);
    let gz = |b: &[u8]| {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    };
    let files = db.files();
    let entry = String::from_utf8(files["ID/GO-2021-0113.json"].clone()).unwrap();
    let modules = String::from_utf8(files["index/modules.json"].clone()).unwrap();
    let vulns = String::from_utf8(files["index/vulns.json"].clone()).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "ID/GO-2021-0113.json.gz",
            gz(entry
                .replace("2024-05-20T16:03:47Z", "2024-05-21T00:00:00Z")
                .as_bytes()),
            "ID/GO-2021-0113.json: modified 2024-05-21T00:00:00Z is not the 2024-05-20T16:03:47Z the index gives",
        ),
        (
            "ID/GO-2021-0113.json.gz",
            gz(entry
                .replace("\"GO-2021-0113\"", "\"GO-2021-0114\"")
                .as_bytes()),
            "filed as GO-2021-0113 but its id is",
        ),
        (
            "ID/GO-2021-0113.json.gz",
            gz(entry.replace("\"0.3.7\"", "\"v0.3.7\"").as_bytes()),
            "malformed version",
        ),
        (
            "ID/GO-2021-0113.json.gz",
            gz(&vec![b' '; 2 << 20]),
            "inflates to more than the limit",
        ),
        (
            "ID/GO-2021-0113.json.gz",
            b"not gzip".to_vec(),
            "not a valid gzip file",
        ),
        (
            "index/modules.json.gz",
            gz(modules
                .replace("golang.org/x/text", "golang.org/x/texts")
                .as_bytes()),
            "lists GO-2021-0113 under",
        ),
        (
            "index/vulns.json.gz",
            gz(vulns
                .replace("\"GO-2021-0113\"", "\"../../etc-1\"")
                .as_bytes()),
            "malformed id",
        ),
        (
            "index/vulns.json.gz",
            gz(vulns.replace("CVE-2021-38561", "CVE-0000-00000").as_bytes()),
            "other aliases than its entry",
        ),
        (
            "index/db.json.gz",
            gz(br#"{"modified":"2024-01-01T00:00:00Z"}"#),
            "after the database itself",
        ),
    ];
    for (rel, bytes, want) in cases {
        fake.clear_faults();
        fake.override_file(rel, bytes);
        let r = m.sync();
        r.expect(2).contains(want).contains("nothing changed");
        assert!(
            !m.out().join("vuln").exists(),
            "{rel} ({want}): something was published"
        );
        assert!(m.status()["vulndb"]["modified"].is_null());
    }
    // An entry the index lists but the upstream lacks.
    fake.clear_faults();
    fake.fail("ID/GO-2024-2442", 404);
    m.sync()
        .expect(2)
        .contains("cannot read ID/GO-2024-2442.json")
        .contains("not found");
    assert!(!m.out().join("vuln").exists());
    fake.clear_faults();
    m.sync().expect(0);
    assert_same_database(&m.out(), &db);
    // No temporary file is left behind by the refusals.
    assert!(m.temp_files().is_empty(), "{:?}", m.temp_files());
}

#[test]
fn a_lost_tree_copy_is_fetched_again_and_an_unreachable_database_changes_nothing() {
    let db = VulnDb::fixtures();
    let fake = FakeVulnDb::start(&db);
    let m = mirror_with_vulndb(small(), &fake);
    m.sync().expect(0);
    std::fs::remove_dir_all(m.out().join("vuln")).unwrap();
    fake.clear_requests();
    m.sync().expect(0);
    assert_same_database(&m.out(), &db);
    assert_eq!(fake.requests().len(), 3 + db.entries.len());

    let before = vuln_files(&m.out());
    fake.fail("", 503);
    let r = m.sync();
    r.expect(2)
        .contains("vulnerability database")
        .contains("cannot read index/db.json");
    assert!(vuln_files(&m.out()) == before);
}
