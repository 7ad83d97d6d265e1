//! The Go vulnerability database's files, as vuln.go.dev serves them
//! (go.dev/doc/security/vuln/database): `index/db.json`,
//! `index/modules.json`, `index/vulns.json` and one OSV entry per
//! vulnerability, `ID/<id>.json`; every file also gzipped (`.json.gz`).
//!
//! Nothing in the database is signed, so everything is checked before it is
//! used: sizes are bounded before a byte is parsed (gzip too: a small file
//! must not inflate into gigabytes), ids and module paths must be
//! well-formed (ids become file names), timestamps must be RFC 3339, and each
//! entry must have the OSV shape govulncheck reads. The indexes are checked
//! against each other and against the entries by the stage that mirrors them
//! ([`super::stage`]).

use std::collections::BTreeSet;
use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use crate::gomod;
use crate::store::layout::{self, Key, VulnFile};

/// The pseudo-module path of the Go standard library in the database.
pub const STDLIB: &str = "stdlib";
/// The pseudo-module path of the go command and the toolchain's tools.
pub const TOOLCHAIN: &str = "toolchain";

/// Largest `index/db.json` accepted (it holds one timestamp).
pub const DB_LIMIT: u64 = 64 << 10;
/// Largest `index/modules.json` or `index/vulns.json`, decompressed
/// (vuln.go.dev's are about 1.5 MB and 0.6 MB).
pub const INDEX_LIMIT: u64 = 64 << 20;
/// Largest entry, decompressed (the largest real one is about 32 KB).
pub const ENTRY_LIMIT: u64 = 1 << 20;
/// Most entries a database may hold (vuln.go.dev has about 5,000).
pub const MAX_ENTRIES: usize = 100_000;
/// Longest id (ids become file names).
const MAX_ID: usize = layout::VULN_ID_MAX;

/// The three index files, in the order they are published (db.json last:
/// it says which database the others belong to).
pub const INDEXES: [&str; 3] = layout::VULN_INDEXES;

/// The directory of the tree the database is mirrored into.
pub const DIR: &str = layout::VULN_DIR;

/// `vuln/index/<name>.json` (or `.json.gz`), `name` one of [`INDEXES`].
pub fn index_key(name: &str, gz: bool) -> String {
    let name = INDEXES
        .into_iter()
        .find(|i| *i == name)
        .expect("callers name one of the indexes");
    layout::plain(Key::Vuln(VulnFile::Index { name, gz }))
}

/// `vuln/ID/<id>.json` (or `.json.gz`); the id must have passed [`check_id`].
pub fn entry_key(id: &str, gz: bool) -> String {
    layout::plain(Key::Vuln(VulnFile::Entry {
        id: id.to_string(),
        gz,
    }))
}

/// The path of a file below the database's root (`index/db.json.gz`).
pub fn rel_of(key: &str) -> &str {
    key.strip_prefix(DIR)
        .map_or(key, |r| r.trim_start_matches('/'))
}

/// An OSV id usable as a file name: `GO-2024-2687`, `GHSA-xxxx-xxxx-xxxx`.
/// Letters and digits first, then letters, digits, `-`, `_` and `.`, with a
/// `-` somewhere, at most 128 characters, no `..`.
pub fn check_id(id: &str) -> Result<(), String> {
    if layout::is_vuln_id(id) {
        Ok(())
    } else {
        Err(format!("malformed id {:?}", shown(id)))
    }
}

/// A module path the database may name: a valid module path, or the
/// pseudo-modules `stdlib` and `toolchain`.
pub fn check_module(path: &str) -> Result<(), String> {
    if path == STDLIB || path == TOOLCHAIN {
        return Ok(());
    }
    gomod::check_path(path).map_err(|e| format!("malformed module path: {e}"))
}

/// An RFC 3339 time, checked; returned as an instant for comparisons.
pub fn parse_time(what: &str, t: &str) -> Result<jiff::Timestamp, String> {
    t.parse::<jiff::Timestamp>()
        .map_err(|_| format!("{what} {:?} is not an RFC 3339 time", shown(t)))
}

/// At most 80 characters of text from a peer, for a message.
fn shown(s: &str) -> String {
    let mut t: String = s.chars().take(80).collect();
    if t.len() < s.len() {
        t.push('…');
    }
    t
}

/// A version as the database writes it (`1.2.3`, `0.0.0-2022…`, no `v`):
/// valid once `v` is put in front.
pub fn check_db_version(v: &str) -> Result<(), String> {
    if gomod::semver::is_valid(&format!("v{v}")) {
        Ok(())
    } else {
        Err(format!("malformed version {:?}", shown(v)))
    }
}

// ---- gzip -------------------------------------------------------------------

/// Inflates a gzip file (every member, as Go's `gzip.Reader` does) into at
/// most `limit` bytes; more is an error, before it is all in memory.
pub fn gunzip(bytes: &[u8], limit: u64) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("not a valid gzip file: {e}"))?;
    if out.len() as u64 > limit {
        return Err(format!("inflates to more than the limit of {limit} bytes"));
    }
    Ok(out)
}

/// The gzip file the tree serves beside `json`: deterministic (no name, no
/// time), so the same JSON always gives the same bytes.
pub fn gzip(json: &[u8]) -> Vec<u8> {
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    enc.write_all(json).expect("writing to memory");
    enc.finish().expect("writing to memory")
}

// ---- index/db.json --------------------------------------------------------

#[derive(Deserialize)]
struct RawDb {
    modified: String,
}

/// `index/db.json`: when the database last changed.
pub fn parse_db(json: &[u8]) -> Result<String, String> {
    let raw: RawDb = serde_json::from_slice(json).map_err(|e| format!("not a db.json: {e}"))?;
    parse_time("modified", &raw.modified)?;
    Ok(raw.modified)
}

// ---- index/vulns.json -------------------------------------------------------

/// One entry of `index/vulns.json`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct VulnRef {
    pub id: String,
    pub modified: String,
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// `index/vulns.json`: every id once, well-formed, with a time no later than
/// the database's `modified` (which vuln.go.dev computes as the newest entry's).
pub fn parse_vulns(json: &[u8], db_modified: &str) -> Result<Vec<VulnRef>, String> {
    let refs: Vec<VulnRef> =
        serde_json::from_slice(json).map_err(|e| format!("not a vulns.json: {e}"))?;
    if refs.len() > MAX_ENTRIES {
        return Err(format!(
            "lists {} entries, more than the {MAX_ENTRIES} accepted",
            refs.len()
        ));
    }
    let db = parse_time("modified", db_modified)?;
    let mut seen = BTreeSet::new();
    for r in &refs {
        check_id(&r.id)?;
        if !seen.insert(r.id.as_str()) {
            return Err(format!("{} is listed twice", r.id));
        }
        let t = parse_time(&format!("{}: modified", r.id), &r.modified)?;
        if t > db {
            return Err(format!(
                "{} was modified at {}, after the database itself ({db_modified})",
                r.id, r.modified
            ));
        }
        check_aliases(&r.id, &r.aliases)?;
    }
    Ok(refs)
}

fn check_aliases(id: &str, aliases: &[String]) -> Result<(), String> {
    if aliases.len() > 1000 {
        return Err(format!("{id}: more than 1000 aliases"));
    }
    for a in aliases {
        if a.is_empty() || a.len() > MAX_ID || a.chars().any(char::is_control) {
            return Err(format!("{id}: malformed alias {:?}", shown(a)));
        }
    }
    Ok(())
}

// ---- index/modules.json -----------------------------------------------------

/// One module of `index/modules.json`.
#[derive(Clone, Debug, Deserialize)]
pub struct ModuleRef {
    pub path: String,
    #[serde(default)]
    pub vulns: Vec<ModuleVuln>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ModuleVuln {
    pub id: String,
    pub modified: String,
    #[serde(default)]
    pub fixed: Option<String>,
}

/// `index/modules.json`: every module once, well-formed, each of its ids
/// and fixed versions well-formed.
pub fn parse_modules(json: &[u8]) -> Result<Vec<ModuleRef>, String> {
    let modules: Vec<ModuleRef> =
        serde_json::from_slice(json).map_err(|e| format!("not a modules.json: {e}"))?;
    let mut seen = BTreeSet::new();
    for m in &modules {
        check_module(&m.path)?;
        if !seen.insert(m.path.as_str()) {
            return Err(format!("module {} is listed twice", m.path));
        }
        for v in &m.vulns {
            check_id(&v.id).map_err(|e| format!("module {}: {e}", m.path))?;
            parse_time(
                &format!("module {}: {}: modified", m.path, v.id),
                &v.modified,
            )?;
            if let Some(f) = v.fixed.as_deref().filter(|f| !f.is_empty()) {
                check_db_version(f).map_err(|e| format!("module {}: {}: {e}", m.path, v.id))?;
            }
        }
    }
    Ok(modules)
}

// ---- ID/<id>.json: OSV entries -------------------------------------------

/// What gomirror keeps of an entry: enough to tell which module versions it
/// affects, to check the indexes, and to show it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    pub modified: String,
    pub published: Option<String>,
    /// Set for an entry the database withdrew (it no longer affects anything).
    pub withdrawn: Option<String>,
    pub aliases: Vec<String>,
    pub summary: Option<String>,
    pub affected: Vec<Affected>,
}

/// One `affected[]` element: a module and the versions of it affected.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Affected {
    pub module: String,
    /// The `SEMVER` ranges; an entry with none affects every version (as
    /// govulncheck reads it).
    pub ranges: Vec<Vec<Event>>,
    /// Whether the element had ranges of other types only (then too, every
    /// version is affected).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub other_ranges: bool,
}

/// A range event with the version as the database writes it (`0`, `1.2.3`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Event {
    #[serde(rename = "i")]
    Introduced(String),
    #[serde(rename = "f")]
    Fixed(String),
}

impl Entry {
    /// The module paths the entry names, each once.
    pub fn modules(&self) -> BTreeSet<&str> {
        self.affected.iter().map(|a| a.module.as_str()).collect()
    }
}

#[derive(Deserialize)]
struct RawEntry {
    #[serde(default)]
    schema_version: Option<String>,
    id: String,
    modified: String,
    #[serde(default)]
    published: Option<String>,
    #[serde(default)]
    withdrawn: Option<String>,
    #[serde(default)]
    aliases: Option<Vec<String>>,
    #[serde(default)]
    related: Option<Vec<String>>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    details: Option<String>,
    affected: Vec<RawAffected>,
    #[serde(default)]
    references: Option<Vec<RawReference>>,
    #[serde(default)]
    credits: Option<Vec<serde_json::Map<String, serde_json::Value>>>,
    #[serde(default)]
    database_specific: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct RawAffected {
    package: RawPackage,
    #[serde(default)]
    ranges: Option<Vec<RawRange>>,
    #[serde(default)]
    ecosystem_specific: Option<RawEcosystemSpecific>,
    #[serde(default)]
    database_specific: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct RawPackage {
    name: String,
    ecosystem: String,
}

#[derive(Deserialize)]
struct RawRange {
    #[serde(rename = "type")]
    kind: String,
    events: Vec<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct RawEcosystemSpecific {
    #[serde(default)]
    imports: Option<Vec<RawImport>>,
    #[serde(default)]
    custom_ranges: Option<Vec<RawRange>>,
}

#[derive(Deserialize)]
struct RawImport {
    path: String,
    #[serde(default)]
    goos: Option<Vec<String>>,
    #[serde(default)]
    goarch: Option<Vec<String>>,
    #[serde(default)]
    symbols: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RawReference {
    #[serde(rename = "type")]
    kind: String,
    url: String,
}

/// Parses and checks `ID/<id>.json`: the OSV shape govulncheck reads (every
/// field of the right type, the Go ecosystem, well-formed module paths and
/// versions), its id the one it is filed under and its `modified` the one
/// the index gives (`expect_modified`).
pub fn parse_entry(json: &[u8], expect_id: &str, expect_modified: &str) -> Result<Entry, String> {
    let raw: RawEntry =
        serde_json::from_slice(json).map_err(|e| format!("not an OSV entry: {e}"))?;
    if raw.id != expect_id {
        return Err(format!(
            "filed as {expect_id} but its id is {:?}",
            shown(&raw.id)
        ));
    }
    let modified = parse_time("modified", &raw.modified)?;
    if modified != parse_time("modified", expect_modified)? {
        return Err(format!(
            "modified {} is not the {expect_modified} the index gives",
            raw.modified
        ));
    }
    for (what, t) in [("published", &raw.published), ("withdrawn", &raw.withdrawn)] {
        if let Some(t) = t {
            parse_time(what, t)?;
        }
    }
    let aliases = raw.aliases.unwrap_or_default();
    check_aliases(expect_id, &aliases)?;
    if raw.related.as_ref().is_some_and(|r| r.len() > 1000) {
        return Err("more than 1000 related ids".into());
    }
    if raw.affected.len() > 10_000 {
        return Err("more than 10000 affected packages".into());
    }
    let _ = (
        &raw.schema_version,
        &raw.details,
        &raw.credits,
        &raw.database_specific,
    );
    for r in raw.references.iter().flatten() {
        if r.kind.is_empty() || r.url.is_empty() {
            return Err("a reference without a type or URL".into());
        }
    }
    let mut affected = Vec::with_capacity(raw.affected.len());
    for a in raw.affected {
        if a.package.ecosystem != "Go" {
            return Err(format!(
                "affected package {:?} is in ecosystem {:?}, not Go",
                shown(&a.package.name),
                shown(&a.package.ecosystem)
            ));
        }
        check_module(&a.package.name)?;
        let _ = &a.database_specific;
        if let Some(es) = &a.ecosystem_specific {
            for i in es.imports.iter().flatten() {
                if i.path.is_empty() || i.path.len() > 1024 {
                    return Err(format!("{}: malformed import path", a.package.name));
                }
                let _ = (&i.goos, &i.goarch, &i.symbols);
            }
            for r in es.custom_ranges.iter().flatten() {
                // Custom ranges are the advisory's own versions, never Go's:
                // only their shape is checked.
                events(r, false).map_err(|e| format!("{}: {e}", a.package.name))?;
            }
        }
        let mut ranges = Vec::new();
        let mut other_ranges = false;
        for r in a.ranges.iter().flatten() {
            if r.kind == "SEMVER" {
                ranges.push(events(r, true).map_err(|e| format!("{}: {e}", a.package.name))?);
            } else {
                events(r, false).map_err(|e| format!("{}: {e}", a.package.name))?;
                other_ranges = true;
            }
        }
        affected.push(Affected {
            module: a.package.name,
            other_ranges: other_ranges && ranges.is_empty(),
            ranges,
        });
    }
    Ok(Entry {
        id: raw.id,
        modified: raw.modified,
        published: raw.published,
        withdrawn: raw.withdrawn,
        aliases,
        summary: raw.summary.map(|s| s.chars().take(500).collect()),
        affected,
    })
}

/// A range's events: objects of one key each, `introduced` or `fixed` (the
/// two govulncheck reads) or `last_affected` or `limit` (OSV's others, which
/// it ignores); with `semver`, every version well-formed.
fn events(r: &RawRange, semver: bool) -> Result<Vec<Event>, String> {
    if r.events.len() > 1000 {
        return Err("a range with more than 1000 events".into());
    }
    let mut out = Vec::new();
    for e in &r.events {
        let mut it = e.iter();
        let (Some((key, value)), None) = (it.next(), it.next()) else {
            return Err("a range event that is not one key and its version".into());
        };
        let Some(v) = value.as_str() else {
            return Err(format!("range event {key:?}: the version is not a string"));
        };
        if semver && !(key == "introduced" && v == "0") {
            check_db_version(v).map_err(|e| format!("range event {key}: {e}"))?;
        }
        match key.as_str() {
            "introduced" => out.push(Event::Introduced(v.to_string())),
            "fixed" => out.push(Event::Fixed(v.to_string())),
            "last_affected" | "limit" => {}
            other => return Err(format!("unknown range event {:?}", shown(other))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTRY: &str = r#"{
      "schema_version": "1.3.1",
      "id": "GO-2021-0113",
      "modified": "2024-05-20T16:03:47Z",
      "published": "2021-10-06T17:51:21Z",
      "aliases": ["CVE-2021-38561", "GHSA-ppp9-7jff-5vj2"],
      "summary": "Out-of-bounds read in golang.org/x/text/language",
      "details": "x",
      "affected": [{
        "package": {"name": "golang.org/x/text", "ecosystem": "Go"},
        "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "0.3.7"}]}],
        "ecosystem_specific": {"imports": [{"path": "golang.org/x/text/language", "symbols": ["Parse"]}]}
      }],
      "references": [{"type": "FIX", "url": "https://go.dev/cl/340830"}],
      "database_specific": {"url": "https://pkg.go.dev/vuln/GO-2021-0113", "review_status": "REVIEWED"}
    }"#;

    #[test]
    fn a_real_entry_parses() {
        let e = parse_entry(ENTRY.as_bytes(), "GO-2021-0113", "2024-05-20T16:03:47Z").unwrap();
        assert_eq!(e.aliases.len(), 2);
        assert_eq!(e.affected.len(), 1);
        assert_eq!(e.affected[0].module, "golang.org/x/text");
        assert_eq!(
            e.affected[0].ranges,
            vec![vec![
                Event::Introduced("0".into()),
                Event::Fixed("0.3.7".into())
            ]]
        );
        // The same instant written with an offset is the same modified.
        parse_entry(
            ENTRY.as_bytes(),
            "GO-2021-0113",
            "2024-05-20T18:03:47+02:00",
        )
        .unwrap();
    }

    #[test]
    fn entries_that_lie_or_have_the_wrong_shape_are_refused() {
        let cases = [
            (
                ENTRY.replace(
                    "GO-2021-0113\",\n      \"mod",
                    "GO-2021-9999\",\n      \"mod",
                ),
                "its id is",
            ),
            (
                ENTRY.replace("2024-05-20T16:03:47Z", "2024-05-21T16:03:47Z"),
                "not the",
            ),
            (
                ENTRY.replace("\"ecosystem\": \"Go\"", "\"ecosystem\": \"PyPI\""),
                "not Go",
            ),
            (
                ENTRY.replace("\"0.3.7\"", "\"v0.3.7\""),
                "malformed version",
            ),
            (ENTRY.replace("\"0.3.7\"", "7"), "not a string"),
            (
                ENTRY.replace("golang.org/x/text\"", "Golang/x/text\""),
                "malformed module path",
            ),
            (
                ENTRY.replace("\"affected\": [", "\"affected\": 3, \"x\": ["),
                "not an OSV entry",
            ),
            (
                ENTRY.replace(
                    "{\"fixed\": \"0.3.7\"}",
                    "{\"fixed\": \"0.3.7\", \"introduced\": \"0\"}",
                ),
                "one key",
            ),
            (
                ENTRY.replace("2021-10-06T17:51:21Z", "yesterday"),
                "RFC 3339",
            ),
        ];
        for (text, want) in cases {
            let err =
                parse_entry(text.as_bytes(), "GO-2021-0113", "2024-05-20T16:03:47Z").unwrap_err();
            assert!(err.contains(want), "{want}: {err}");
        }
    }

    #[test]
    fn ids_and_modules() {
        for ok in ["GO-2024-2687", "GHSA-ppp9-7jff-5vj2", "PYSEC-2021.1"] {
            check_id(ok).unwrap();
        }
        for bad in [
            "",
            "GO",
            "../x-1",
            "GO-2024/1",
            ".GO-1",
            "GO-1..2",
            "GO 1-2",
            &"G-".repeat(70),
        ] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
        for ok in [
            "stdlib",
            "toolchain",
            "golang.org/x/net",
            "github.com/Azure/x",
        ] {
            check_module(ok).unwrap();
        }
        for bad in ["std", "golang.org/x/net/", "x/../y", ""] {
            assert!(check_module(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn indexes_are_checked() {
        let vulns = br#"[{"id":"GO-1-1","modified":"2024-01-01T00:00:00Z","aliases":["CVE-1"]},
                         {"id":"GO-1-2","modified":"2024-02-01T00:00:00Z"}]"#;
        assert_eq!(parse_vulns(vulns, "2024-02-01T00:00:00Z").unwrap().len(), 2);
        let err = parse_vulns(vulns, "2024-01-15T00:00:00Z").unwrap_err();
        assert!(err.contains("after the database"), "{err}");
        let twice = br#"[{"id":"GO-1-1","modified":"2024-01-01T00:00:00Z"},{"id":"GO-1-1","modified":"2024-01-01T00:00:00Z"}]"#;
        assert!(
            parse_vulns(twice, "2024-02-01T00:00:00Z")
                .unwrap_err()
                .contains("twice")
        );
        let modules = br#"[{"path":"golang.org/x/text","vulns":[{"id":"GO-1-1","modified":"2024-01-01T00:00:00Z","fixed":"0.3.7"}]},
                           {"path":"stdlib","vulns":[{"id":"GO-1-2","modified":"2024-02-01T00:00:00Z"}]}]"#;
        assert_eq!(parse_modules(modules).unwrap().len(), 2);
        let bad = br#"[{"path":"golang.org/x/text","vulns":[{"id":"GO-1-1","modified":"2024-01-01T00:00:00Z","fixed":"v0.3.7"}]}]"#;
        assert!(
            parse_modules(bad)
                .unwrap_err()
                .contains("malformed version")
        );
        assert_eq!(
            parse_db(br#"{"modified":"2024-02-01T00:00:00Z"}"#).unwrap(),
            "2024-02-01T00:00:00Z"
        );
        assert!(parse_db(br#"{"modified":"soon"}"#).is_err());
    }

    #[test]
    fn gzip_is_deterministic_and_bounded() {
        let json = ENTRY.as_bytes();
        let gz = gzip(json);
        assert_eq!(gz, gzip(json));
        assert_eq!(gunzip(&gz, ENTRY_LIMIT).unwrap(), json);
        let err = gunzip(&gz, 10).unwrap_err();
        assert!(err.contains("more than the limit"), "{err}");
        // A bomb: 64 MiB of zeros in a few KB is refused at the limit.
        let bomb = gzip(&vec![0u8; 64 << 20]);
        assert!(bomb.len() < 200_000);
        assert!(gunzip(&bomb, ENTRY_LIMIT).is_err());
        assert!(gunzip(b"not gzip", ENTRY_LIMIT).is_err());
    }
}
