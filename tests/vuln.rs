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
    // Unreachable is not refused: the modules are published, the copy held
    // stays, exit 1, and the next run tries again.
    r.expect(1)
        .contains("vulndb: not refreshed")
        .contains("could not be reached")
        .contains("503")
        .contains("url = \"off\"");
    assert!(vuln_files(&m.out()) == before);
    fake.clear_faults();
    m.sync().expect(0);
}

fn gz(b: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// The `vuln/` files a bundle carries.
fn carried(bundle: &Path) -> Vec<String> {
    crate::airgap::entries(bundle)
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.starts_with("vuln/"))
        .collect()
}

#[test]
fn bundles_carry_the_database_and_a_delta_only_what_changed() {
    use crate::airgap::{Far, export, manifest, with_file_changed};
    let mut db = VulnDb::fixtures();
    let fake = FakeVulnDb::start(&db);
    let m = mirror_with_vulndb(small(), &fake);
    m.sync().expect(0);
    let media = tempfile::tempdir().unwrap();
    let b1 = export(&m, media.path(), &[]);
    assert_eq!(manifest(&b1)["vulndb"]["modified"], "2024-06-04T15:00:00Z");
    assert_eq!(manifest(&b1)["vulndb"]["entries"], 6);
    assert_eq!(carried(&b1).len(), 3 + 6, "{:?}", carried(&b1));
    assert!(carried(&b1).iter().all(|p| p.ends_with(".json.gz")));

    let far = Far::new(&m.upstream.sumdb_key());
    far.import(&b1).expect(0);
    assert_same_database(&far.out(), &db);
    let st = far.run(&["status", "--json"]);
    let st: serde_json::Value = serde_json::from_str(&st.expect(0).stdout).unwrap();
    assert_eq!(st["vulndb"]["modified"], "2024-06-04T15:00:00Z");
    assert!(
        st["vulndb"]["url"]
            .as_str()
            .unwrap()
            .starts_with("bundle 1 from "),
        "{st}"
    );

    // A delta carries the indexes and the changed entry only.
    db.touch("GO-2023-2102", "2024-07-01T00:00:00Z");
    fake.set(&db);
    m.sync().expect(0);
    let b2 = export(&m, media.path(), &[]);
    let mut got = carried(&b2);
    got.sort();
    assert_eq!(
        got,
        [
            "vuln/ID/GO-2023-2102.json.gz",
            "vuln/index/db.json.gz",
            "vuln/index/modules.json.gz",
            "vuln/index/vulns.json.gz"
        ]
    );
    assert_eq!(manifest(&b2)["versions"].as_array().unwrap().len(), 0);
    far.import(&b2).expect(0);
    assert_same_database(&far.out(), &db);
    // Nothing new: no bundle.
    m.run(&["export", media.path().to_str().unwrap()])
        .expect(0)
        .contains("nothing changed");

    // A bundle whose entry was altered on the way is refused; nothing changes.
    db.touch("GO-2021-0113", "2024-08-01T00:00:00Z");
    fake.set(&db);
    m.sync().expect(0);
    let b3 = export(&m, media.path(), &[]);
    let scratch = tempfile::tempdir().unwrap();
    let liar = with_file_changed(
        &b3,
        &scratch.path().join("l"),
        "vuln/ID/GO-2021-0113.json.gz",
        &|b| {
            let json = String::from_utf8(gunzip(b)).unwrap();
            gz(json
                .replace("2024-08-01T00:00:00Z", "2024-08-02T00:00:00Z")
                .as_bytes())
        },
    );
    far.refuses(&liar, 2, "is not the 2024-08-01T00:00:00Z the index gives");
    // A manifest naming another database than it carries is refused too.
    let other = crate::airgap::copy_bundle(&b3, &scratch.path().join("o"));
    let mut man = manifest(&other);
    man["vulndb"]["modified"] = serde_json::json!("2024-09-01T00:00:00Z");
    std::fs::write(
        other.join("manifest.json"),
        serde_json::to_vec(&man).unwrap(),
    )
    .unwrap();
    far.refuses(
        &other,
        2,
        "not the 2024-09-01T00:00:00Z the bundle's manifest names",
    );
    far.import(&b3).expect(0);
    assert_same_database(&far.out(), &db);
    // The far side's prune keeps the database.
    let r = far.run(&["prune", "--dry-run"]);
    assert!(!r.expect(0).all().contains("vuln/"), "{}", r.all());
}

/// The real govulncheck, installed by `scripts/test` from the Go module
/// proxy at a pinned version into `target/govulncheck/bin/`
/// (`GOMIRROR_GOVULNCHECK` names another).
pub fn govulncheck() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("GOMIRROR_GOVULNCHECK") {
        return p.into();
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/govulncheck/bin/govulncheck");
    assert!(
        p.is_file(),
        "the vulnerability tests need govulncheck in {}: run scripts/test, which installs it (GOBIN=$PWD/target/govulncheck/bin go install golang.org/x/vuln/cmd/govulncheck@v1.10.0)",
        p.display()
    );
    p
}

/// golang.org/x/text at `version`, with a `language` package whose `Parse`
/// is the symbol GO-2021-0113 names (fixed in v0.3.7).
fn x_text(version: &str) -> crate::support::ModuleVersionSpec {
    crate::support::ModuleVersionSpec::new("golang.org/x/text", version).with_file(
        "language/language.go",
        "// Package language is test content standing in for golang.org/x/text/language.\npackage language\n\n// Parse returns s.\nfunc Parse(s string) (string, error) { return s, nil }\n",
    )
}

/// Runs govulncheck with `db` in `dir`, with the go client's environment.
fn run_govulncheck(go: &crate::e2e::GoClient, dir: &Path, args: &[&str]) -> (i32, String) {
    let template = go.command(dir, &[]);
    let mut cmd = std::process::Command::new(govulncheck());
    cmd.args(args).current_dir(dir).env_clear();
    for (k, v) in template.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    let out = cmd.output().expect("run govulncheck");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn govulncheck_finds_a_known_vulnerability_through_the_mirror_alone() {
    use crate::e2e::{GoClient, Nginx};
    let tool = govulncheck();
    let (ok, version) = {
        let out = std::process::Command::new(&tool)
            .arg("-version")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert!(ok && version.contains("govulncheck@v1."), "{version}");

    let db = VulnDb::fixtures();
    let fake = FakeVulnDb::start(&db);
    let corpus = Corpus::new().with(x_text("v0.3.6")).with(x_text("v0.3.7"));
    let m = mirror_with_vulndb(corpus, &fake);
    m.sync().expect(0);
    assert_same_database(&m.out(), &db);

    let nginx = Nginx::serve(&m.out());
    switch_off(&m);
    fake.fail("", 503);
    fake.clear_requests();

    // nginx serves the database as vuln.go.dev does: .json.gz as bytes.
    let r =
        crate::support::http::get(&format!("{}/vuln/index/modules.json.gz", nginx.url())).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/gzip"));
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert_eq!(gunzip(&r.body), db.files()["index/modules.json"]);
    let r =
        crate::support::http::get(&format!("{}/vuln/ID/GO-2021-0113.json", nginx.url())).unwrap();
    assert_eq!(r.header("content-type"), Some("application/json"));
    for hidden in ["/vuln/", "/vuln/index/other.json", "/vuln/ID/.x.json"] {
        let r = crate::support::http::get(&format!("{}{hidden}", nginx.url())).unwrap();
        assert_eq!(r.status, 404, "{hidden}");
    }

    let go = GoClient::new(&nginx.url(), &m.upstream.sumdb_key());
    let app = go.home.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("go.mod"),
        "module example.org/app\n\ngo 1.21\n\nrequire golang.org/x/text v0.3.6\n",
    )
    .unwrap();
    std::fs::write(
        app.join("main.go"),
        "package main\n\nimport (\n\t\"fmt\"\n\n\t\"golang.org/x/text/language\"\n)\n\nfunc main() {\n\tfmt.Println(language.Parse(\"en\"))\n}\n",
    )
    .unwrap();
    let (ok, out) = go.run_in(&app, &["mod", "tidy"]);
    assert!(ok, "go mod tidy: {out}");

    let http_db = format!("{}/vuln", nginx.url());
    let file_db = format!("file://{}/vuln", m.out().display());
    for dbu in [&http_db, &file_db] {
        let (code, out) = run_govulncheck(&go, &app, &["-db", dbu, "./..."]);
        assert_eq!(
            code, 3,
            "govulncheck -db {dbu} should report GO-2021-0113 (exit 3):\n{out}"
        );
        assert!(out.contains("GO-2021-0113"), "{out}");
        assert!(out.contains("golang.org/x/text/language"), "{out}");
        // Module mode reads the same database.
        let (code, out) = run_govulncheck(&go, &app, &["-db", dbu, "-scan", "module"]);
        assert_eq!(code, 3, "-scan module:\n{out}");
        assert!(out.contains("GO-2021-0113"), "{out}");
    }

    // At the fixed version: nothing.
    let (ok, out) = go.run_in(&app, &["get", "golang.org/x/text@v0.3.7"]);
    assert!(ok, "go get: {out}");
    for dbu in [&http_db, &file_db] {
        let (code, out) = run_govulncheck(&go, &app, &["-db", dbu, "./..."]);
        assert_eq!(
            code, 0,
            "govulncheck -db {dbu} at the fixed version:\n{out}"
        );
        assert!(out.contains("No vulnerabilities found"), "{out}");
    }
    assert_upstream_untouched(&m);
    assert!(
        fake.requests().is_empty(),
        "the upstream database was asked: {:?}",
        fake.requests()
    );
}

/// A gomirror following the tree at `base` (`index = "mirror+…"`), with
/// `extra` appended to its config.
fn follower(base: &str, m: &Mirror, extra: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[upstream]\nproxy = \"{base}\"\nindex = \"mirror+{base}/\"\ntimeout = \"20s\"\n\n[sumdb]\nkey = \"{key}\"\nurl = \"{base}/sumdb/{name}\"\n\n[mirror]\noutput = \"mirror\"\nstate = \"state.db\"\nworkers = 4\n\n[filter]\ninclude = [\"*\"]\n{extra}\n",
        key = m.upstream.sumdb_key(),
        name = m.upstream.sumdb_name(),
    );
    let config = dir.path().join("sync.toml");
    std::fs::write(&config, text).unwrap();
    (dir, config)
}

/// The request paths nginx logged after line `from`.
fn nginx_requests(nginx: &crate::e2e::Nginx, from: usize) -> Vec<String> {
    std::fs::read_to_string(nginx.access_log())
        .unwrap_or_default()
        .lines()
        .skip(from)
        .filter_map(|l| l.split('"').nth(1))
        .filter_map(|r| r.split(' ').nth(1))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_follower_takes_its_upstream_mirrors_database_through_nginx() {
    use crate::e2e::Nginx;
    let mut db = VulnDb::fixtures();
    let fake = FakeVulnDb::start(&db);
    let m = mirror_with_vulndb(small(), &fake);
    m.sync().expect(0);
    let nginx = Nginx::serve(&m.out());
    fake.clear_requests();

    // No [vulndb] on the follower: the upstream mirror's vuln/ is its source.
    let (dir, config) = follower(&nginx.url(), &m, "");
    gomirror(&config, &["sync"]).expect(0);
    let out = dir.path().join("mirror");
    assert_same_database(&out, &db);
    assert!(
        fake.requests().is_empty(),
        "the follower reached the origin database"
    );
    let st = gomirror(&config, &["status", "--json"]);
    let st: serde_json::Value = serde_json::from_str(&st.expect(0).stdout).unwrap();
    assert_eq!(st["vulndb"]["configured"], format!("{}/vuln", nginx.url()));

    // A change upstream reaches the follower: the indexes and one entry.
    db.touch("GO-2022-0969", "2024-07-01T00:00:00Z");
    fake.set(&db);
    m.sync().expect(0);
    let from = std::fs::read_to_string(nginx.access_log())
        .unwrap()
        .lines()
        .count();
    gomirror(&config, &["sync"]).expect(0);
    let mut asked: Vec<String> = nginx_requests(&nginx, from)
        .into_iter()
        .filter(|p| p.starts_with("/vuln/"))
        .collect();
    asked.sort();
    assert_eq!(
        asked,
        [
            "/vuln/ID/GO-2022-0969.json.gz",
            "/vuln/index/db.json.gz",
            "/vuln/index/modules.json.gz",
            "/vuln/index/vulns.json.gz"
        ]
    );
    assert_same_database(&out, &db);

    // Turned off on the follower: nothing is asked.
    let (dir2, config2) = follower(&nginx.url(), &m, "\n[vulndb]\nurl = \"off\"\n");
    gomirror(&config2, &["sync"]).expect(0);
    assert!(!dir2.path().join("mirror/vuln").exists());

    // An upstream mirror without a database: a note, not a failure.
    let plain = Mirror::new(small());
    plain.sync().expect(0);
    let nginx_plain = Nginx::serve(&plain.out());
    let (dir3, config3) = follower(&nginx_plain.url(), &plain, "");
    gomirror(&config3, &["sync", "-v"])
        .expect(0)
        .contains("carries no vulnerability database");
    assert!(!dir3.path().join("mirror/vuln").exists());
    // ... and is not asked again on every sync (a follower's no-op sync
    // stays at its feed's requests).
    let from = std::fs::read_to_string(nginx_plain.access_log())
        .unwrap()
        .lines()
        .count();
    gomirror(&config3, &["sync"]).expect(0);
    let asked = nginx_requests(&nginx_plain, from);
    assert!(!asked.iter().any(|p| p.starts_with("/vuln/")), "{asked:?}");
}

#[test]
fn the_database_goes_into_a_bucket_and_govulncheck_reads_it_through_nginx() {
    use crate::garage::Garage;
    use crate::s3::{NginxS3, PREFIX, run, web_get};
    let g = Garage::start();
    let db = VulnDb::fixtures();
    let fake = FakeVulnDb::start(&db);
    let bucket = g.bucket();
    let cfg = Cfg {
        output: Some(format!("s3://{bucket}/{PREFIX}")),
        extra: format!(
            "\n[s3]\nendpoint = \"{}\"\nregion = \"garage\"\n\n[vulndb]\nurl = \"{}\"\n",
            g.endpoint(),
            fake.url()
        ),
        ..Cfg::default()
    };
    let corpus = Corpus::new().with(x_text("v0.3.6")).with(x_text("v0.3.7"));
    let m = Mirror::with(corpus, FakeOptions::default(), cfg);
    run(&m, &g, &["sync"]).expect(0);
    for (rel, bytes) in db.files() {
        let (status, body) = web_get(&g, &bucket, &format!("vuln/{rel}"));
        assert_eq!(status, 200, "vuln/{rel} is not in the bucket");
        if let Some(json) = rel.strip_suffix(".gz") {
            assert_eq!(gunzip(&body), db.files()[json], "{rel}");
        } else {
            assert!(body == bytes, "{rel} differs");
        }
    }
    fake.clear_requests();
    run(&m, &g, &["sync"]).expect(0);
    assert_eq!(fake.requests(), ["index/db.json.gz"]);
    let r = run(&m, &g, &["prune", "--dry-run"]);
    assert!(!r.expect(0).all().contains("vuln/"), "{}", r.all());

    let nginx = NginxS3::serve(&g, &bucket);
    let r = crate::support::http::get(&format!("{}/vuln/index/db.json.gz", nginx.url())).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(gunzip(&r.body), db.files()["index/db.json"]);
    switch_off(&m);
    fake.fail("", 503);
    let go = crate::e2e::GoClient::new(&nginx.url(), &m.upstream.sumdb_key());
    let app = go.home.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("go.mod"),
        "module example.org/app\n\ngo 1.21\n\nrequire golang.org/x/text v0.3.6\n",
    )
    .unwrap();
    std::fs::write(
        app.join("main.go"),
        "package main\n\nimport \"golang.org/x/text/language\"\n\nfunc main() { _, _ = language.Parse(\"en\") }\n",
    )
    .unwrap();
    let (ok, out) = go.run_in(&app, &["mod", "tidy"]);
    assert!(ok, "go mod tidy: {out}");
    let (code, out) = run_govulncheck(
        &go,
        &app,
        &["-db", &format!("{}/vuln", nginx.url()), "./..."],
    );
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("GO-2021-0113"), "{out}");
}

#[test]
fn indexes_a_killed_update_left_old_are_written_again() {
    // A sync killed after recording the new state and before its indexes
    // leaves the tree's indexes older than the state database: the next sync
    // notices (one upstream index says what the state says, the tree's not)
    // and writes them, fetching no entry again.
    let mut db = VulnDb::fixtures();
    let old_files = db.files();
    let fake = FakeVulnDb::start(&db);
    let m = mirror_with_vulndb(small(), &fake);
    m.sync().expect(0);
    db.touch("GO-2021-0113", "2024-07-01T00:00:00Z");
    fake.set(&db);
    m.sync().expect(0);
    for name in ["db", "modules", "vulns"] {
        for ext in ["json", "json.gz"] {
            let rel = format!("index/{name}.{ext}");
            std::fs::write(m.out().join("vuln").join(&rel), &old_files[&rel]).unwrap();
        }
    }
    fake.clear_requests();
    m.sync().expect(0);
    let mut asked = fake.requests();
    asked.sort();
    assert_eq!(
        asked,
        [
            "index/db.json.gz",
            "index/modules.json.gz",
            "index/vulns.json.gz"
        ]
    );
    assert_same_database(&m.out(), &db);
}
