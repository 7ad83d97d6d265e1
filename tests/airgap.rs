//! Air-gapped transfer: `gomirror export` on a connected mirror, `gomirror
//! import` on a far side with no upstream at all (`proxy = "off"`,
//! `index = "off"`), served by a real nginx to the real go command; and
//! every kind of bad bundle, each refused with its reason and the far side
//! left exactly as it was.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::common::*;
use crate::e2e::{GoClient, Nginx};
use crate::support::{Corpus, FakeOptions, ModuleVersionSpec};

/// A mirror fed by `gomirror import` alone.
pub struct Far {
    pub dir: tempfile::TempDir,
    key: String,
    pub skip: Vec<String>,
    pub extra: String,
    pub max_delete: String,
    /// `mirror.output` (default `mirror`, a directory).
    pub output: String,
    /// Environment for every run (a bucket's credentials).
    pub env: Vec<(&'static str, String)>,
}

impl Far {
    pub fn new(key: &str) -> Far {
        let f = Far {
            dir: tempfile::tempdir().unwrap(),
            key: key.to_string(),
            skip: Vec::new(),
            extra: String::new(),
            max_delete: "\"50%\"".into(),
            output: "mirror".into(),
            env: Vec::new(),
        };
        f.write_config();
        f
    }

    pub fn write_config(&self) {
        let skip: Vec<String> = self.skip.iter().map(|s| format!("{s:?}")).collect();
        let text = format!(
            r#"[upstream]
proxy = "off"
index = "off"

[sumdb]
key = "{key}"
skip = [{skip}]
# An import takes every tile its bundle carries, whatever this bound on
# what a sync asks the checksum database for.
max_tiles_per_run = 1

[mirror]
output = "{output}"
state = "state.db"
name = "far.test"

[filter]
include = ["*"]

[prune]
max_delete = {max_delete}
{extra}"#,
            key = self.key,
            skip = skip.join(", "),
            max_delete = self.max_delete,
            extra = self.extra,
            output = self.output,
        );
        std::fs::write(self.config(), text).unwrap();
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("sync.toml")
    }

    pub fn out(&self) -> PathBuf {
        self.dir.path().join("mirror")
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gomirror"));
        cmd.arg("-c").arg(self.config()).args(args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        run_command(cmd)
    }

    pub fn import(&self, bundle: &Path) -> Run {
        self.run(&["import", bundle.to_str().unwrap()])
    }

    /// Everything a failed import must leave as it was: every file of the
    /// tree with its content, and what the state database says about
    /// versions, imports and trusted tree heads.
    pub fn fingerprint(&self) -> (BTreeMap<String, String>, Vec<String>) {
        crate::support::hostile::fingerprint(&self.out(), &self.dir.path().join("state.db"))
    }

    /// Imports `bundle` expecting it refused with exit 2 and `message`, and
    /// the far side unchanged.
    #[track_caller]
    pub fn refuses(&self, bundle: &Path, code: i32, message: &str) -> Run {
        let before = self.fingerprint();
        let r = self.import(bundle);
        r.expect(code).contains(message);
        let after = self.fingerprint();
        assert_eq!(
            before.0,
            after.0,
            "the far side's tree changed:\n{}",
            r.all()
        );
        assert_eq!(before.1, after.1, "the far side's state changed");
        assert!(
            !self.dir.path().join(".state.db.import").exists(),
            "the unpacked bundle was left behind"
        );
        r
    }
}

/// Runs `gomirror export ARGS DIR` on `m`; returns the bundle (the last stdout line).
#[track_caller]
pub fn export(m: &Mirror, media: &Path, args: &[&str]) -> PathBuf {
    let mut a = vec!["export"];
    a.extend_from_slice(args);
    a.push(media.to_str().unwrap());
    let r = m.run(&a);
    r.expect(0);
    let last = r
        .stdout
        .lines()
        .last()
        .expect("export prints the bundle's path");
    let p = PathBuf::from(last);
    assert!(
        p.is_absolute() && p.join("manifest.json").is_file(),
        "not a bundle: {last}\n{}",
        r.all()
    );
    p
}

pub fn manifest(bundle: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap()
}

/// Total size of a bundle's files.
pub fn bundle_bytes(bundle: &Path) -> u64 {
    std::fs::read_dir(bundle)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

/// A copy of `bundle` in a fresh directory (tests damage copies).
pub fn copy_bundle(bundle: &Path, into: &Path) -> PathBuf {
    let dst = into.join(bundle.file_name().unwrap());
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(bundle).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    dst
}

fn parts(bundle: &Path) -> Vec<PathBuf> {
    let mut p: Vec<PathBuf> = std::fs::read_dir(bundle)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("data.tar.")
        })
        .collect();
    p.sort();
    p
}

/// The files of a bundle's tar stream, in order.
pub fn entries(bundle: &Path) -> Vec<(String, Vec<u8>)> {
    let mut stream = Vec::new();
    for p in parts(bundle) {
        stream.extend(std::fs::read(p).unwrap());
    }
    let mut a = tar::Archive::new(stream.as_slice());
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (path, data)
        })
        .collect()
}

/// One entry of a hand-made tar stream.
pub struct Raw {
    pub name: Vec<u8>,
    pub kind: tar::EntryType,
    pub data: Vec<u8>,
    pub link: Option<String>,
}

impl Raw {
    pub fn file(name: &str, data: &[u8]) -> Raw {
        Raw {
            name: name.as_bytes().to_vec(),
            kind: tar::EntryType::Regular,
            data: data.to_vec(),
            link: None,
        }
    }
}

/// Rewrites `bundle` as one part holding `raw` (names written as they are,
/// unchecked), a manifest whose files are `listed` (of the entries) with
/// their true sizes and hashes and whose parts are the new one, then edited
/// by `edit` (which may make it lie). The signature goes.
pub fn rewrite(
    bundle: &Path,
    raw: &[Raw],
    listed: &dyn Fn(&str) -> bool,
    edit: &dyn Fn(&mut serde_json::Value),
) {
    let mut tar = tar::Builder::new(Vec::new());
    for r in raw {
        let mut h = tar::Header::new_gnu();
        let name = &mut h.as_old_mut().name;
        assert!(r.name.len() < name.len(), "test names are short");
        name[..r.name.len()].copy_from_slice(&r.name);
        h.set_size(r.data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(r.kind);
        if let Some(l) = &r.link {
            h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_cksum();
        tar.append(&h, r.data.as_slice()).unwrap();
    }
    let stream = tar.into_inner().unwrap();
    for p in parts(bundle) {
        std::fs::remove_file(p).unwrap();
    }
    let _ = std::fs::remove_file(bundle.join("manifest.json.sig"));
    std::fs::write(bundle.join("data.tar.0001"), &stream).unwrap();
    let mut m = manifest(bundle);
    m["files"] = raw
        .iter()
        .filter(|r| listed(&String::from_utf8_lossy(&r.name)))
        .map(|r| {
            serde_json::json!({
                "path": String::from_utf8_lossy(&r.name),
                "size": r.data.len(),
                "sha256": hex::encode(Sha256::digest(&r.data)),
            })
        })
        .collect();
    m["parts"] = serde_json::json!([{
        "name": "data.tar.0001",
        "size": stream.len(),
        "sha256": hex::encode(Sha256::digest(&stream)),
    }]);
    edit(&mut m);
    std::fs::write(
        bundle.join("manifest.json"),
        serde_json::to_vec(&m).unwrap(),
    )
    .unwrap();
}

/// A copy of `bundle` in `into` whose file `key` is `change`d, with a
/// manifest that agrees (so only what the bytes say can refuse it).
pub fn with_file_changed(
    bundle: &Path,
    into: &Path,
    key: &str,
    change: &dyn Fn(&[u8]) -> Vec<u8>,
) -> PathBuf {
    let b = copy_bundle(bundle, into);
    let mut raw = as_raw(&b);
    let r = raw
        .iter_mut()
        .find(|r| r.name == key.as_bytes())
        .unwrap_or_else(|| panic!("{key} is not in the bundle"));
    r.data = change(&r.data);
    rewrite(&b, &raw, &|_| true, &|_| {});
    b
}

/// The bundle's own entries as `Raw` regular files.
pub fn as_raw(bundle: &Path) -> Vec<Raw> {
    entries(bundle)
        .into_iter()
        .map(|(p, d)| Raw::file(&p, &d))
        .collect()
}

/// The files a client can fetch, gomirror's own bookkeeping (staging, the
/// trace, feed and pages that name the mirror) aside.
fn served(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    files_under(dir)
        .into_iter()
        .filter(|f| {
            !f.starts_with(".gomirror/")
                && !f.starts_with("trace/")
                && !f.starts_with("feed/")
                && !f.starts_with("site/")
        })
        .map(|f| {
            let b = std::fs::read(dir.join(&f)).unwrap();
            (f, b)
        })
        .collect()
}

/// A version of `module` the upstream has.
fn version_of(m: &Mirror, module: &str) -> String {
    m.upstream
        .versions()
        .into_iter()
        .find(|(p, _)| p == module)
        .unwrap_or_else(|| panic!("no version of {module}"))
        .1
}

fn connected(corpus: Corpus) -> Mirror {
    let opts = FakeOptions {
        filler_records: 300,
        ..FakeOptions::default()
    };
    let m = Mirror::with(corpus, opts, Cfg::default());
    m.sync().expect(0);
    m
}

#[test]
fn go_verifies_an_air_gapped_mirror_seeded_and_grown_by_bundles() {
    let near = connected(Corpus::generated(4, 3, 11).with_upper_case());
    let media = tempfile::tempdir().unwrap();
    let t = std::time::Instant::now();
    let first = export(&near, media.path(), &[]);
    let export_first = t.elapsed();
    let m1 = manifest(&first);
    assert_eq!(m1["sequence"], 1);
    assert_eq!(m1["full"], false);
    let versions = near.upstream.versions();
    assert_eq!(m1["versions"].as_array().unwrap().len(), versions.len());

    // The far side never reaches the upstream: it is switched off.
    switch_off(&near);
    let mut far = Far::new(&near.upstream.sumdb_key());
    far.extra = "\n[report]\nmetrics_file = \"metrics.prom\"\n".into();
    far.write_config();
    let t = std::time::Instant::now();
    far.import(&first)
        .expect(0)
        .contains(&format!("published {} new versions", versions.len()));
    let import_first = t.elapsed();
    // The far tree is the connected one, file for file: lists, lookups,
    // tiles and the tree head regenerated from its own state.
    assert_eq!(served(&far.out()), served(&near.out()));
    let metrics = std::fs::read_to_string(far.dir.path().join("metrics.prom")).unwrap();
    for want in [
        "gomirror_last_exit_code{command=\"import\"} 0".to_string(),
        format!(
            "gomirror_last_run_published_versions{{command=\"import\"}} {}",
            versions.len()
        ),
        format!(
            "gomirror_versions{{state=\"published\"}} {}",
            versions.len()
        ),
    ] {
        assert!(metrics.contains(&want), "metrics lack {want}:\n{metrics}");
    }
    far.import(&first).expect(0).contains("imported before");
    // A far side has nothing to sync from, and says so (no request anywhere).
    far.run(&["sync"])
        .expect(2)
        .contains("fed by `gomirror import BUNDLE`");

    let nginx = Nginx::serve(&far.out());
    let go = GoClient::new(&nginx.url(), &near.upstream.sumdb_key());
    go.download_all(&versions);
    assert_upstream_untouched(&near);
    let name = near.upstream.sumdb_name();
    let client_latest = go
        .home
        .path()
        .join(format!("gopath/pkg/sumdb/{name}/latest"));
    let head_before = std::fs::read_to_string(&client_latest).unwrap();

    // Round two on the connected side: new versions, a narrowed filter.
    near.upstream.clear_faults();
    let added = [
        ModuleVersionSpec::new("example.com/gen/m0", "v1.7.0"),
        ModuleVersionSpec::new("example.com/later", "v0.1.0"),
    ];
    for a in &added {
        near.upstream.add(a.clone());
    }
    let mut cfg = near.cfg.clone();
    cfg.exclude = vec!["example.com/gen/m3".into()];
    let near = Mirror { cfg, ..near };
    near.write_config();
    near.sync().expect(0).contains("published 2 new versions");
    let t = std::time::Instant::now();
    let second = export(&near, media.path(), &[]);
    let export_second = t.elapsed();
    let m2 = manifest(&second);
    assert_eq!(m2["sequence"], 2);
    assert_eq!(m2["versions"].as_array().unwrap().len(), 2);
    let deleted: Vec<String> = m2["deletions"]
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
    assert_eq!(deleted.len(), 3, "m3's three versions: {deleted:?}");
    assert!(deleted.iter().all(|d| d.starts_with("example.com/gen/m3@")));
    let (b1, b2) = (bundle_bytes(&first), bundle_bytes(&second));
    assert!(
        b2 * 4 < b1,
        "the delta ({b2} bytes) is not much smaller than the first bundle ({b1} bytes)"
    );

    switch_off(&near);
    let t = std::time::Instant::now();
    far.import(&second)
        .expect(0)
        .contains("published 2 new versions")
        .contains("deleted 3 versions");
    let import_second = t.elapsed();
    assert_eq!(served(&far.out()), served(&near.out()));

    // The same go client, holding the first head, proves the grown log.
    let new: Vec<(String, String)> = added
        .iter()
        .map(|a| (a.path.clone(), a.version.clone()))
        .collect();
    go.download_all(&new);
    let head_after = std::fs::read_to_string(&client_latest).unwrap();
    assert_ne!(head_before, head_after, "go moved to the grown tree head");
    assert_eq!(
        head_after,
        std::fs::read_to_string(far.out().join(format!("sumdb/{name}/latest"))).unwrap()
    );
    let gone = format!(
        "example.com/gen/m3@{}",
        version_of(&near, "example.com/gen/m3")
    );
    // A client with an empty cache (the first one has it cached).
    let fresh_go = GoClient::new(&nginx.url(), &near.upstream.sumdb_key());
    let (ok, out) = fresh_go.run(&["mod", "download", "-json", &gone]);
    assert!(
        !ok || out.contains("\"Error\""),
        "a deleted version is still served:\n{out}"
    );
    assert_upstream_untouched(&near);
    far.run(&["verify"]).expect(0);
    far.run(&["status"])
        .expect(0)
        .contains("imported   bundle 2 (delta) from");
    near.run(&["status"])
        .expect(0)
        .contains("exported   bundle 2 (delta) at");
    let status: serde_json::Value =
        serde_json::from_str(&far.run(&["status", "--json"]).stdout).unwrap();
    assert_eq!(status["last_import"]["seq"], 2, "{status:#}");
    assert_eq!(status["proxy"], "off");
    eprintln!(
        "air-gapped round trip: bundle 1 {b1} bytes ({} versions), export {:.2}s, import {:.2}s; bundle 2 {b2} bytes (2 versions, 3 deletions), export {:.2}s, import {:.2}s",
        versions.len(),
        export_first.as_secs_f64(),
        import_first.as_secs_f64(),
        export_second.as_secs_f64(),
        import_second.as_secs_f64()
    );
}

#[test]
fn a_damaged_missing_or_truncated_part_is_refused_and_changes_nothing() {
    let mut corpus = Corpus::generated(3, 3, 21);
    corpus.versions.push(
        ModuleVersionSpec::new("example.com/big", "v1.0.0").with_large_file("blob.bin", 200 << 10),
    );
    let near = connected(corpus);
    let media = tempfile::tempdir().unwrap();
    let bundle = export(&near, media.path(), &["--max-size", "64KiB"]);
    let n = parts(&bundle).len();
    assert!(n >= 2, "64 KiB parts: {n}");
    for p in parts(&bundle) {
        assert!(std::fs::metadata(&p).unwrap().len() <= 64 << 10);
    }
    let far = Far::new(&near.upstream.sumdb_key());
    let scratch = tempfile::tempdir().unwrap();

    let flipped = copy_bundle(&bundle, &scratch.path().join("flip"));
    let p = flipped.join("data.tar.0002");
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[1000] ^= 0x40;
    std::fs::write(&p, bytes).unwrap();
    far.refuses(&flipped, 2, "part data.tar.0002 is damaged: its SHA-256 is");

    // A byte flipped in the stream's trailing padding breaks no file and no
    // tar header: only the part's hash can tell, checked at its very end.
    let padding = copy_bundle(&bundle, &scratch.path().join("padding"));
    let p = padding.join(format!("data.tar.{n:04}"));
    let mut bytes = std::fs::read(&p).unwrap();
    let last = bytes.len() - 1;
    assert_eq!(bytes[last], 0, "tar pads with zeros");
    bytes[last] = 1;
    std::fs::write(&p, bytes).unwrap();
    far.refuses(
        &padding,
        2,
        &format!("part data.tar.{n:04} is damaged: its SHA-256 is"),
    );

    let missing = copy_bundle(&bundle, &scratch.path().join("missing"));
    std::fs::remove_file(missing.join("data.tar.0002")).unwrap();
    far.refuses(&missing, 2, "part data.tar.0002 is missing");

    let short = copy_bundle(&bundle, &scratch.path().join("short"));
    let p = short.join(format!("data.tar.{n:04}"));
    let len = std::fs::metadata(&p).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    far.refuses(&short, 2, "truncated");

    let no_manifest = copy_bundle(&bundle, &scratch.path().join("nomanifest"));
    std::fs::remove_file(no_manifest.join("manifest.json")).unwrap();
    far.refuses(&no_manifest, 2, "no manifest.json");

    let garbled = copy_bundle(&bundle, &scratch.path().join("garbled"));
    std::fs::write(garbled.join("manifest.json"), b"{\"format\": 1").unwrap();
    far.refuses(&garbled, 2, "manifest.json is damaged");

    // The intact bundle imports, as parts.
    far.import(&bundle).expect(0);
    assert_eq!(served(&far.out()), served(&near.out()));
}

#[test]
fn a_manifest_that_lies_is_refused_and_changes_nothing() {
    let near = connected(Corpus::generated(2, 2, 31));
    let media = tempfile::tempdir().unwrap();
    let bundle = export(&near, media.path(), &[]);
    let far = Far::new(&near.upstream.sumdb_key());
    let scratch = tempfile::tempdir().unwrap();
    let all = |_: &str| true;

    // A file's hash that is not the file's.
    let lie = copy_bundle(&bundle, &scratch.path().join("hash"));
    rewrite(&lie, &as_raw(&lie), &all, &|m| {
        m["files"][3]["sha256"] = serde_json::json!("0".repeat(64));
    });
    far.refuses(&lie, 2, "does not match the manifest");

    // A file's size that is not the file's.
    let lie = copy_bundle(&bundle, &scratch.path().join("size"));
    rewrite(&lie, &as_raw(&lie), &all, &|m| {
        let s = m["files"][2]["size"].as_u64().unwrap();
        m["files"][2]["size"] = serde_json::json!(s + 1);
    });
    far.refuses(&lie, 2, "but the manifest says");

    // A version whose zip the bundle does not carry.
    let lie = copy_bundle(&bundle, &scratch.path().join("nozip"));
    rewrite(
        &lie,
        &as_raw(&lie),
        &|p: &str| !p.ends_with(".zip"),
        &|_| {},
    );
    far.refuses(&lie, 2, "its .zip is not among the files");

    // A file listed that the stream does not hold.
    let lie = copy_bundle(&bundle, &scratch.path().join("extra"));
    rewrite(&lie, &as_raw(&lie), &all, &|m| {
        let mut f = m["files"][0].clone();
        f["path"] = serde_json::json!("example.com/gen/m0/@v/v9.9.9.info");
        m["files"].as_array_mut().unwrap().push(f);
    });
    far.refuses(&lie, 2, "files the tar stream does not hold");

    // A path in the manifest that leaves the tree.
    let lie = copy_bundle(&bundle, &scratch.path().join("path"));
    rewrite(&lie, &as_raw(&lie), &all, &|m| {
        m["files"][0]["path"] = serde_json::json!("../../etc/cron.d/x");
    });
    far.refuses(&lie, 2, "`.` or `..` in path");

    // Another checksum database.
    let lie = copy_bundle(&bundle, &scratch.path().join("sumdb"));
    rewrite(&lie, &as_raw(&lie), &all, &|m| {
        m["sumdb"]["name"] = serde_json::json!("sum.golang.org");
    });
    far.refuses(&lie, 2, "this mirror verifies against");

    // Bytes the checksum database refutes, with a manifest that agrees with
    // them: the version is refused, the rest is published (exit 1). (A .mod:
    // its `h1:` covers every byte; a zip's covers the files in it.)
    let (victim_path, victim_version) = near.upstream.versions()[0].clone();
    let mod_key = version_file(&victim_path, &victim_version, "mod");
    let tampered = with_file_changed(&bundle, &scratch.path().join("tampered"), &mod_key, &|m| {
        [m, b"require evil.example v1.0.0\n"].concat()
    });
    let r = far.import(&tampered);
    r.expect(1)
        .contains(&format!("{victim_path}@{victim_version}"))
        .contains("refused");
    assert!(
        !far.out().join(&mod_key).exists(),
        "a refuted .mod was published"
    );
    let other = &near.upstream.versions()[1];
    assert!(
        far.out()
            .join(version_file(&other.0, &other.1, "zip"))
            .exists()
    );
}

#[test]
fn hostile_tar_entries_are_refused() {
    let near = connected(Corpus::generated(1, 2, 41));
    let media = tempfile::tempdir().unwrap();
    let bundle = export(&near, media.path(), &[]);
    let far = Far::new(&near.upstream.sumdb_key());
    let scratch = tempfile::tempdir().unwrap();
    let outside = scratch.path().join("outside");
    let cases: Vec<(&str, Raw, &str)> = vec![
        (
            "dotdot",
            Raw::file("../../../outside", b"x"),
            "`.` or `..` in path",
        ),
        (
            "absolute",
            Raw::file(outside.to_str().unwrap(), b"x"),
            "absolute path",
        ),
        (
            "symlink",
            Raw {
                name: b"example.com/evil".to_vec(),
                kind: tar::EntryType::Symlink,
                data: Vec::new(),
                link: Some("/etc".into()),
            },
            "it is a symbolic link",
        ),
        (
            "hardlink",
            Raw {
                name: b"example.com/hard".to_vec(),
                kind: tar::EntryType::Link,
                data: Vec::new(),
                link: Some("/etc/passwd".into()),
            },
            "it is a hard link",
        ),
        (
            "unlisted",
            Raw::file("example.com/extra/@v/v1.0.0.info", b"{}"),
            "is not listed in the manifest",
        ),
    ];
    for (what, hostile, message) in cases {
        let b = copy_bundle(&bundle, &scratch.path().join(what));
        let mut raw = vec![hostile];
        raw.extend(as_raw(&b));
        let listed = |p: &str| {
            !p.contains("outside")
                && !p.contains("evil")
                && !p.contains("hard")
                && !p.contains("extra")
        };
        rewrite(&b, &raw, &listed, &|_| {});
        far.refuses(&b, 2, message);
        assert!(!outside.exists(), "{what}: a file was written outside");
    }
}

#[test]
fn bundles_out_of_sequence_or_from_another_mirror_are_refused_and_named() {
    let near = connected(Corpus::generated(2, 2, 51));
    let media = tempfile::tempdir().unwrap();
    let first = export(&near, media.path(), &[]);
    // Nothing changed: no bundle, exit 0.
    near.run(&["export", media.path().to_str().unwrap()])
        .expect(0)
        .contains("nothing changed since bundle 1");
    near.upstream
        .add(ModuleVersionSpec::new("example.com/two", "v1.0.0"));
    near.sync().expect(0);
    let second = export(&near, media.path(), &[]);
    near.upstream
        .add(ModuleVersionSpec::new("example.com/three", "v1.0.0"));
    near.sync().expect(0);
    let third = export(&near, media.path(), &[]);
    assert!(
        second.to_string_lossy().ends_with("-000002")
            && third.to_string_lossy().ends_with("-000003"),
        "{second:?} {third:?}"
    );

    let far = Far::new(&near.upstream.sumdb_key());
    far.refuses(&second, 2, "has imported nothing yet")
        .contains("-000001");
    far.import(&first).expect(0);
    far.refuses(&third, 2, "last imported number 1")
        .contains("-000002 first");
    far.import(&second).expect(0);
    far.import(&first).expect(0).contains("imported before");
    far.import(&third).expect(0);
    // Dry runs of bundles already imported, and of a full bundle, change nothing.
    let full = export(&near, media.path(), &["--full"]);
    assert!(full.to_string_lossy().ends_with("-000004-full"));
    assert_eq!(manifest(&full)["full"], true);
    let before = far.fingerprint();
    far.run(&["import", "--dry-run", full.to_str().unwrap()])
        .expect(0)
        .contains("checks out");
    assert_eq!(far.fingerprint(), before);
    // A full bundle is importable into a fresh mirror, whatever its number.
    let fresh = Far::new(&near.upstream.sumdb_key());
    fresh.import(&full).expect(0);
    assert_eq!(served(&fresh.out()), served(&near.out()));
    // ... and where the deltas left off.
    far.import(&full)
        .expect(0)
        .contains("published 0 new versions");

    // Another connected mirror of the same upstream: its bundles cannot
    // follow this one's.
    let other = Mirror::with(
        Corpus::generated(2, 2, 51),
        FakeOptions {
            filler_records: 300,
            ..FakeOptions::default()
        },
        Cfg::default(),
    );
    other.sync().expect(0);
    let other_media = tempfile::tempdir().unwrap();
    let foreign = export(&other, other_media.path(), &["--full"]);
    let m = manifest(&foreign);
    let r = fresh.refuses(&foreign, 2, "it comes from another mirror");
    r.contains(m["mirror"]["id"].as_str().unwrap());
}

#[test]
fn a_forked_or_rewound_log_in_a_bundle_is_refused() {
    let near = connected(Corpus::generated(2, 2, 61));
    let media = tempfile::tempdir().unwrap();
    let first = export(&near, media.path(), &[]);
    near.upstream
        .add(ModuleVersionSpec::new("example.com/two", "v1.0.0"));
    near.sync().expect(0);
    let second = export(&near, media.path(), &[]);
    near.upstream
        .add(ModuleVersionSpec::new("example.com/three", "v1.0.0"));
    near.sync().expect(0);
    let third = export(&near, media.path(), &[]);
    let name = near.upstream.sumdb_name();
    let latest = format!("sumdb/{name}/latest");

    // A log signed with the same key that tells another story: a second
    // upstream from the same seed with another corpus.
    let forked_up = connected(Corpus::generated(3, 1, 99));
    assert_eq!(forked_up.upstream.sumdb_key(), near.upstream.sumdb_key());
    let forked_head = std::fs::read(forked_up.out().join(&latest)).unwrap();

    let far = Far::new(&near.upstream.sumdb_key());
    far.import(&first).expect(0);
    let scratch = tempfile::tempdir().unwrap();
    let forked = with_file_changed(&second, &scratch.path().join("fork"), &latest, &|_| {
        forked_head.clone()
    });
    far.refuses(&forked, 2, "SECURITY ERROR");

    far.import(&second).expect(0);
    // Bundle 3 with bundle 1's (older) head: the log went back.
    let old_head = entries(&first)
        .into_iter()
        .find(|(p, _)| *p == latest)
        .unwrap()
        .1;
    let rewound = with_file_changed(&third, &scratch.path().join("rewound"), &latest, &|_| {
        old_head.clone()
    });
    far.refuses(&rewound, 2, "rewound");
    // A head not signed by the far side's key.
    let unsigned = with_file_changed(&third, &scratch.path().join("unsigned"), &latest, &|h| {
        let text = String::from_utf8(h.to_vec()).unwrap();
        text.replace("\n\n— ", "\n\n— x").into_bytes()
    });
    far.refuses(&unsigned, 2, "tree head rejected");
    far.import(&third).expect(0);
}

/// `gomirror keygen NAME --dir DIR`; returns the verifier key it wrote to `DIR/<stem>.pub`.
fn keygen(m: &Mirror, dir: &Path, name: &str, stem: &str) -> String {
    m.run(&["keygen", name, "--dir", dir.to_str().unwrap()])
        .expect(0);
    std::fs::read_to_string(dir.join(format!("{stem}.pub"))).unwrap()
}

#[test]
fn private_modules_come_only_in_a_bundle_signed_by_a_trusted_key() {
    let cfg = Cfg {
        skip: vec!["example.com/gen/m1".into()],
        ..Cfg::default()
    };
    let near = Mirror::with(Corpus::generated(2, 2, 71), FakeOptions::default(), cfg);
    near.sync().expect(0);
    let keys = tempfile::tempdir().unwrap();
    let vkey = keygen(&near, keys.path(), "near.test/bundles", "near.test_bundles");
    let media = tempfile::tempdir().unwrap();
    let unsigned = export(&near, media.path(), &[]);
    assert!(!unsigned.join("manifest.json.sig").exists());

    // Unsigned: the public module is imported, the private one refused.
    let mut far = Far::new(&near.upstream.sumdb_key());
    far.skip = vec!["example.com/gen/m1".into()];
    far.write_config();
    let r = far.import(&unsigned);
    r.expect(1)
        .contains("refused example.com/gen/m1@")
        .contains("signed by a key in import.trusted_keys");
    let (v0, v1) = (
        version_of(&near, "example.com/gen/m0"),
        version_of(&near, "example.com/gen/m1"),
    );
    assert!(
        far.out()
            .join(version_file("example.com/gen/m0", &v0, "zip"))
            .exists()
    );
    assert!(
        !far.out()
            .join(version_file("example.com/gen/m1", &v1, "zip"))
            .exists()
    );

    // Signed by a trusted key: the private module comes too.
    let mut signed_cfg = near.cfg.clone();
    signed_cfg.extra = format!(
        "\n[export]\nsigning_key = {:?}\n",
        keys.path()
            .join("near.test_bundles.key")
            .display()
            .to_string()
    );
    let near = Mirror {
        cfg: signed_cfg,
        ..near
    };
    near.write_config();
    let media2 = tempfile::tempdir().unwrap();
    let signed = export(&near, media2.path(), &["--full"]);
    assert!(signed.join("manifest.json.sig").exists());
    let fresh = |trusted: &str| {
        let mut f = Far::new(&near.upstream.sumdb_key());
        f.skip = vec!["example.com/gen/m1".into()];
        f.extra = format!("\n[import]\ntrusted_keys = [{trusted:?}]\n");
        f.write_config();
        f
    };
    let good = fresh(vkey.trim());
    good.import(&signed)
        .expect(0)
        .contains("signed by near.test/bundles");
    assert_eq!(served(&good.out()), served(&near.out()));

    let scratch = tempfile::tempdir().unwrap();
    // A signature that does not verify.
    let bad = copy_bundle(&signed, &scratch.path().join("badsig"));
    let sig = std::fs::read_to_string(bad.join("manifest.json.sig")).unwrap();
    let mut lines: Vec<String> = sig.lines().map(String::from).collect();
    let last = lines.last_mut().unwrap();
    let flipped = if last.ends_with('A') { 'B' } else { 'A' };
    last.pop();
    last.push(flipped);
    std::fs::write(bad.join("manifest.json.sig"), lines.join("\n") + "\n").unwrap();
    fresh(vkey.trim()).refuses(&bad, 2, "bad signature");
    // A manifest changed after signing (the signature kept).
    let changed = copy_bundle(&signed, &scratch.path().join("changed"));
    let mut m = manifest(&changed);
    m["created"] = serde_json::json!("2020-01-01T00:00:00Z");
    std::fs::write(
        changed.join("manifest.json"),
        serde_json::to_vec(&m).unwrap(),
    )
    .unwrap();
    fresh(vkey.trim()).refuses(&changed, 2, "for another manifest");
    // Signed by a key the far side does not trust: as unsigned.
    let other = tempfile::tempdir().unwrap();
    let other_key = keygen(&near, other.path(), "someone.else", "someone.else");
    fresh(other_key.trim())
        .import(&signed)
        .expect(1)
        .contains("refused example.com/gen/m1@");
}

#[test]
fn deletions_respect_max_delete_on_the_far_side() {
    let near = connected(Corpus::generated(4, 2, 81));
    let media = tempfile::tempdir().unwrap();
    let first = export(&near, media.path(), &[]);
    let mut far = Far::new(&near.upstream.sumdb_key());
    far.max_delete = "1".into();
    far.write_config();
    far.import(&first).expect(0);
    let mut cfg = near.cfg.clone();
    cfg.exclude = vec!["example.com/gen/m2".into()];
    let near = Mirror { cfg, ..near };
    near.write_config();
    near.sync().expect(0);
    let second = export(&near, media.path(), &[]);
    assert_eq!(manifest(&second)["deletions"].as_array().unwrap().len(), 2);
    let r = far.import(&second);
    r.expect(2).contains("REFUSED to delete 2 versions");
    let v2 = version_of(&near, "example.com/gen/m2");
    assert!(
        far.out()
            .join(version_file("example.com/gen/m2", &v2, "zip"))
            .exists()
    );
    // The import was not recorded: once allowed, the same bundle completes.
    far.max_delete = "\"50%\"".into();
    far.write_config();
    far.import(&second).expect(0).contains("deleted 2 versions");
    assert_eq!(served(&far.out()), served(&near.out()));
}

#[test]
fn a_full_disk_on_the_far_side_is_refused_before_anything_changes() {
    // A real small file system: the far side's state, staging and tree on a
    // 4 MiB tmpfs (the tests run as root, as in CI).
    let near = connected(Corpus {
        versions: vec![
            ModuleVersionSpec::new("example.com/big", "v1.0.0")
                .with_large_file("blob.bin", 6 << 20),
        ],
    });
    let media = tempfile::tempdir().unwrap();
    let bundle = export(&near, media.path(), &[]);
    let far = Far::new(&near.upstream.sumdb_key());
    let mnt = far.dir.path();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(mnt)
        .status()
        .expect("run mount");
    assert!(
        status.success(),
        "mounting a tmpfs failed: this test needs root (as CI has), to give the far side a real small file system"
    );
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mnt.to_path_buf());
    far.write_config();
    far.refuses(&bundle, 2, "not enough free space");
    assert!(
        files_under(&far.out()).is_empty(),
        "nothing went into the tree"
    );
}

#[test]
fn a_damaged_tree_is_never_exported() {
    let near = connected(Corpus::generated(2, 2, 91));
    let (p, v) = near.upstream.versions()[0].clone();
    let zip = near.out().join(version_file(&p, &v, "zip"));
    let mut bytes = std::fs::read(&zip).unwrap();
    bytes[40] ^= 1;
    std::fs::write(&zip, bytes).unwrap();
    let media = tempfile::tempdir().unwrap();
    near.run(&["export", media.path().to_str().unwrap()])
        .expect(2)
        .contains("does not match what the state database recorded")
        .contains("verify --repair");
    assert_eq!(
        std::fs::read_dir(media.path()).unwrap().count(),
        0,
        "nothing was left in the export directory"
    );
    near.run(&["verify", "--repair"]).expect(0);
    let b = export(&near, media.path(), &[]);
    assert_eq!(
        manifest(&b)["sequence"],
        1,
        "the failed export took no number"
    );
    near.run(&["export", "--dry-run", media.path().to_str().unwrap()])
        .expect(0)
        .contains("nothing changed");
}

#[test]
fn a_full_bundle_withdraws_what_it_lacks() {
    let near = connected(Corpus::generated(3, 2, 101));
    let media = tempfile::tempdir().unwrap();
    let far = Far::new(&near.upstream.sumdb_key());
    far.import(&export(&near, media.path(), &[])).expect(0);
    let mut cfg = near.cfg.clone();
    cfg.exclude = vec!["example.com/gen/m1".into()];
    let near = Mirror { cfg, ..near };
    near.write_config();
    near.sync().expect(0).contains("deleted 2 versions");
    let full = export(&near, media.path(), &["--full"]);
    let m = manifest(&full);
    assert_eq!(m["deletions"].as_array().unwrap().len(), 0);
    assert_eq!(m["versions"].as_array().unwrap().len(), 4);
    far.import(&full)
        .expect(0)
        .contains("2 withdrawn")
        .contains("deleted 2 versions");
    assert_eq!(served(&far.out()), served(&near.out()));
    far.run(&["verify"]).expect(0);
}

#[test]
fn sigterm_during_an_import_stops_it_cleanly_and_a_rerun_completes_it() {
    let near = connected(Corpus::generated(3, 3, 111));
    let media = tempfile::tempdir().unwrap();
    let bundle = export(&near, media.path(), &[]);
    let far = Far::new(&near.upstream.sumdb_key());
    let before = far.fingerprint();
    // Unpacking pauses 100 ms per file (a debug-build knob): seconds in all.
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_gomirror"))
        .arg("-c")
        .arg(far.config())
        .arg("import")
        .arg(&bundle)
        .env("GOMIRROR_TEST_UNPACK_DELAY_MS", "100")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let unpacking = far.dir.path().join(".state.db.import");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !unpacking.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the unpack never began"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let signalled = std::time::Instant::now();
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(143), "{stdout}\n{stderr}");
    assert!(
        signalled.elapsed() < std::time::Duration::from_secs(5),
        "took {:?} to stop",
        signalled.elapsed()
    );
    assert!(stdout.contains("not recorded as imported"), "{stdout}");
    assert!(
        stderr.contains("interrupted by SIGTERM")
            && stderr.contains("import the same bundle again"),
        "{stderr}"
    );
    assert_eq!(far.fingerprint(), before, "nothing changed");
    assert!(!unpacking.exists(), "the unpacked files were left behind");
    far.import(&bundle).expect(0);
    assert_eq!(served(&far.out()), served(&near.out()));
}
