//! The bundle format of air-gapped transfer (`gomirror export`, `gomirror
//! import`). A bundle is a directory:
//!
//! ```text
//! <mirror>-000007/
//!   manifest.json        what it carries: versions, deletions, every file with
//!                        its size and SHA-256, every part with its size and SHA-256
//!   manifest.json.sig    optional: a signed note naming the manifest's SHA-256
//!   data.tar.0001        one tar stream of tree files (the tree's own keys as
//!   data.tar.0002        paths), cut into parts of at most --max-size bytes
//! ```
//!
//! The bundle's identity is the SHA-256 of `manifest.json`; each manifest
//! names the identity of the bundle before it (`previous`) and its number
//! (`sequence`), so the far side can tell a gap, a fork and a replay apart.
//! The parts concatenated are an ordinary tar stream (`cat data.tar.* | tar
//! t` lists it), holding regular files only.
//!
//! Nothing here trusts a bundle: [`Manifest::check`] refuses a manifest
//! that contradicts itself, [`check_path`] every path that could leave the
//! directory it is unpacked into, and `import` checks every part and file
//! against the manifest (the parts as it reads them, in one pass) and every
//! version against the checksum database.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::shown;

/// The `format` of the manifests this build writes and reads.
pub const FORMAT: &str = "gomirror-bundle 1";
pub const MANIFEST: &str = "manifest.json";
pub const SIGNATURE: &str = "manifest.json.sig";
/// A manifest larger than this is refused from its size, before a byte is
/// read: about 400,000 files (100,000 versions), parsed in about 100 MiB.
/// A larger mirror travels as a full bundle and deltas.
pub const MANIFEST_LIMIT: u64 = 64 << 20;
/// A signature is a note of a few hundred bytes.
pub const SIGNATURE_LIMIT: u64 = 1 << 20;
/// What a tar stream may hold beyond its files' headers and data: the
/// end-of-archive blocks, and a record's padding by another writer.
const TAR_SLACK: u64 = 20 * 512;
/// The smallest `--max-size`: one tar block and then some.
pub const MIN_PART_SIZE: u64 = 64 << 10;

/// What a bundle carries.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    /// The exporting mirror.
    pub mirror: MirrorId,
    /// 1 for the first bundle, one more for each after it.
    pub sequence: u64,
    /// The SHA-256 of the previous bundle's manifest (none for the first).
    pub previous: Option<String>,
    /// The whole mirror, not the changes since `previous`.
    pub full: bool,
    /// RFC 3339, UTC.
    pub created: String,
    pub gomirror_version: String,
    pub sumdb: SumdbPart,
    /// Versions to publish (in path, version order).
    pub versions: Vec<BundleVersion>,
    /// Versions to delete (a delta only).
    pub deletions: Vec<Deleted>,
    /// The vulnerability database carried: its `vuln/` files (gzipped) are
    /// among `files`. Absent when the bundle carries none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vulndb: Option<VulndbPart>,
    /// The exporting mirror's ledger entries of the versions carried that
    /// no checksum database vouches for (private and `sumdb.skip` modules):
    /// the `h1:` each had when that mirror first made it. Signed with the
    /// manifest, so the far side refuses another content under the same
    /// version too. Absent when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ledger: Vec<LedgerRecord>,
    /// Every file in the tar stream, in stream order.
    pub files: Vec<FileEntry>,
    /// The tar stream's parts, in order.
    pub parts: Vec<PartEntry>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MirrorId {
    /// `mirror.name` of the exporting mirror.
    pub name: String,
    /// Random, fixed when the mirror first exported.
    pub id: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SumdbPart {
    pub name: String,
    /// The size of the tree head the bundle carries (`sumdb/<name>/latest`).
    pub tree_size: i64,
}

/// What a bundle carries of the vulnerability database: `index/*.json.gz`
/// at this `modified`, and the entries the far side lacks.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VulndbPart {
    pub modified: String,
    /// Entries of the whole database (a delta carries only the changed ones).
    pub entries: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BundleVersion {
    pub path: String,
    pub version: String,
    /// The zip is carried (else graph-only: `.info` and `.mod`).
    pub zip: bool,
}

/// One ledger entry a bundle carries.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LedgerRecord {
    pub path: String,
    pub version: String,
    pub mod_h1: String,
    /// Absent while the exporting mirror has seen only the `.mod`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip_h1: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Deleted {
    pub path: String,
    pub version: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// The file's key in the tree (and its path in the tar stream).
    pub path: String,
    pub size: u64,
    /// Hex.
    pub sha256: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PartEntry {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

impl Manifest {
    /// Total size of the files carried ([`Manifest::check`] refused a
    /// manifest whose sizes add up past 2^64).
    pub fn file_bytes(&self) -> u64 {
        crate::bounded::total(self.files.iter().map(|f| f.size)).unwrap_or(u64::MAX)
    }

    /// Total size of the parts (checked the same way).
    pub fn part_bytes(&self) -> u64 {
        crate::bounded::total(self.parts.iter().map(|p| p.size)).unwrap_or(u64::MAX)
    }

    /// The most bytes a tar stream of the listed files can take: each
    /// file's header (and a long name's extra header and name blocks) and
    /// its data in 512-byte blocks, and the end of the archive. Parts that
    /// add up to more hold something no listed file explains. `None` when
    /// it does not fit 64 bits.
    pub fn stream_bound(&self) -> Option<u64> {
        let blocks = |n: u64| n.checked_add(511).map(|x| x / 512 * 512);
        self.files.iter().try_fold(TAR_SLACK, |sum, f| {
            let name = blocks(f.path.len() as u64 + 1)?;
            let data = blocks(f.size)?;
            sum.checked_add(1024)?.checked_add(name)?.checked_add(data)
        })
    }

    /// Refuses a manifest that contradicts itself or names what a bundle
    /// may not hold: an unknown format, unsafe or repeated paths, bad
    /// hashes, part names other than `data.tar.NNNN` in order, a version
    /// without its files, a version both published and deleted, a sequence
    /// that does not fit `previous`.
    pub fn check(&self, sumdb_name: &str) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!(
                "format {:?} is not one this gomirror reads ({FORMAT:?})",
                self.format
            ));
        }
        if self.sequence == 0 {
            return Err("sequence 0: bundles are numbered from 1".into());
        }
        match (&self.previous, self.sequence) {
            (None, 1) => {}
            (None, _) if self.full => {}
            (None, n) => {
                return Err(format!(
                    "bundle {n} is a delta but names no bundle before it"
                ));
            }
            (Some(p), _) => check_hash("previous", p)?,
        }
        if !is_lower_hex(&self.mirror.id, 32) {
            return Err(format!(
                "mirror.id {} is not 32 lowercase hex digits",
                shown::quoted(&self.mirror.id)
            ));
        }
        check_mirror_name(&self.mirror.name)
            .map_err(|why| format!("mirror.name {} {why}", shown::quoted(&self.mirror.name)))?;
        if self.sumdb.name != sumdb_name {
            return Err(format!(
                "it carries checksum database {}, but this mirror verifies against {sumdb_name:?}",
                shown::quoted(&self.sumdb.name)
            ));
        }
        let mut files: BTreeMap<&str, &FileEntry> = BTreeMap::new();
        for f in &self.files {
            let name = || shown::quoted(&f.path);
            check_path(&f.path).map_err(|why| format!("file {}: {why}", name()))?;
            check_hash(&format!("file {}: sha256", name()), &f.sha256)?;
            if files.insert(&f.path, f).is_some() {
                return Err(format!("file {} is listed twice", name()));
            }
        }
        // Sizes are the peer's numbers: summed with checked arithmetic, and
        // the parts can hold no more than the listed files fill.
        let Some(file_bytes) = crate::bounded::total(self.files.iter().map(|f| f.size)) else {
            return Err("the sizes of its files add up past 2^64".into());
        };
        let (Some(part_bytes), Some(bound)) = (
            crate::bounded::total(self.parts.iter().map(|p| p.size)),
            self.stream_bound(),
        ) else {
            return Err("the sizes of its parts add up past 2^64".into());
        };
        if part_bytes > bound {
            return Err(format!(
                "its parts hold {part_bytes} bytes, but a tar stream of its {} files ({file_bytes} bytes) takes at most {bound}",
                self.files.len()
            ));
        }
        let latest = format!("sumdb/{sumdb_name}/latest");
        if !files.contains_key(latest.as_str()) {
            return Err(format!("it carries no tree head ({latest})"));
        }
        if self.parts.is_empty() {
            return Err("it lists no parts".into());
        }
        for (i, p) in self.parts.iter().enumerate() {
            if p.name != part_name(i + 1) {
                return Err(format!(
                    "part {} is named {}, not {:?}",
                    i + 1,
                    shown::quoted(&p.name),
                    part_name(i + 1)
                ));
            }
            check_hash(&format!("part {}: sha256", p.name), &p.sha256)?;
        }
        let mut seen: HashSet<(&str, &str)> = HashSet::new();
        let id = |p: &str, v: &str| format!("{}@{}", shown::text(p), shown::text(v));
        for v in &self.versions {
            if !seen.insert((&v.path, &v.version)) {
                return Err(format!("{} is listed twice", id(&v.path, &v.version)));
            }
            let mut need = vec!["info", "mod"];
            if v.zip {
                need.push("zip");
            }
            for ext in need {
                let key =
                    crate::store::layout::version_file(&v.path, &v.version, ext).map_err(|e| {
                        format!(
                            "{}: {}",
                            id(&v.path, &v.version),
                            shown::text(&e.to_string())
                        )
                    })?;
                if !files.contains_key(key.as_str()) {
                    return Err(format!(
                        "{}: its .{ext} is not among the files",
                        id(&v.path, &v.version)
                    ));
                }
            }
        }
        let mut pinned: HashSet<(&str, &str)> = HashSet::new();
        for l in &self.ledger {
            let who = id(&l.path, &l.version);
            if !seen.contains(&(l.path.as_str(), l.version.as_str())) {
                return Err(format!("ledger entry {who}: the bundle does not carry it"));
            }
            if !pinned.insert((&l.path, &l.version)) {
                return Err(format!("ledger entry {who} is listed twice"));
            }
            for h in std::iter::once(&l.mod_h1).chain(l.zip_h1.as_ref()) {
                if !is_h1(h) {
                    return Err(format!(
                        "ledger entry {who}: {} is not an h1: hash",
                        shown::quoted(h)
                    ));
                }
            }
        }
        if self.full && !self.deletions.is_empty() {
            return Err("a full bundle lists deletions".into());
        }
        for d in &self.deletions {
            crate::store::layout::version_file(&d.path, &d.version, "info").map_err(|e| {
                format!(
                    "deletion {}: {}",
                    id(&d.path, &d.version),
                    shown::text(&e.to_string())
                )
            })?;
            if seen.contains(&(d.path.as_str(), d.version.as_str())) {
                return Err(format!(
                    "{} is both published and deleted",
                    id(&d.path, &d.version)
                ));
            }
        }
        Ok(())
    }
}

/// A mirror's name (`mirror.name`) has one form everywhere: it names the
/// trace file `trace/<name>.json` that downstream mirrors and monitors
/// request, and a bundle's directory; a bundle's `mirror.name` is stored
/// and shown. A host-name-like word: nothing that could leave a directory,
/// hide a file, or carry a control character.
pub fn check_mirror_name(name: &str) -> Result<(), &'static str> {
    crate::relpath::check_mirror_name(name)
}

/// `data.tar.0001`, …
pub fn part_name(n: usize) -> String {
    format!("data.tar.{n:04}")
}

/// The directory name of bundle `seq` of mirror `name`.
pub fn bundle_name(name: &str, seq: u64, full: bool) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "{}-{seq:06}{}",
        clean.trim_start_matches('.'),
        if full { "-full" } else { "" }
    )
}

/// What a bundle's signature note says: the manifest's SHA-256.
pub fn signature_text(id: &str) -> String {
    format!("gomirror bundle {id}\n")
}

/// `h1:` and the base64 of a SHA-256, as go.sum writes it.
fn is_h1(h: &str) -> bool {
    h.strip_prefix("h1:").is_some_and(|b| {
        b.len() == 44
            && b.ends_with('=')
            && b[..43]
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
    })
}

/// `len` lowercase hex digits, as this format writes every id and hash.
fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn check_hash(what: &str, h: &str) -> Result<(), String> {
    if is_lower_hex(h, 64) {
        Ok(())
    } else {
        Err(format!("{what} {h:?} is not a hex SHA-256"))
    }
}

/// A path inside a bundle: relative, `/`-separated, no empty, `.` or `..`
/// component, no backslash or control character, at most 4096 bytes. It
/// can only name something under the directory it is unpacked into.
pub fn check_path(p: &str) -> Result<(), &'static str> {
    if p.is_empty() {
        return Err("empty path");
    }
    if p.len() > 4096 {
        return Err("path longer than 4096 bytes");
    }
    if p.starts_with('/') {
        return Err("absolute path");
    }
    if p.bytes().any(|b| b == b'\\' || b < 0x20 || b == 0x7f) {
        return Err("backslash or control character in path");
    }
    for c in p.split('/') {
        match c {
            "" => return Err("empty path component"),
            "." | ".." => return Err("`.` or `..` in path"),
            _ => {}
        }
    }
    Ok(())
}

/// Parses a `--max-size`: bytes, or a number with a unit (`k`, `M`, `G`,
/// `T` powers of 1000 with `B`, powers of 1024 with `iB`; `650MB`, `4.7GB`,
/// `25GiB`).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 650MB, 4.7GB, 25GiB)"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(format!(
                "{s:?}: unknown unit {unit:?} (use B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)"
            ));
        }
    };
    let bytes = (n * mult).floor();
    if !bytes.is_finite() || bytes < MIN_PART_SIZE as f64 || bytes > u64::MAX as f64 {
        return Err(format!(
            "{s:?}: a part must be at least {} bytes",
            MIN_PART_SIZE
        ));
    }
    Ok(bytes as u64)
}

/// Writes one stream as parts `data.tar.NNNN` of at most `max` bytes each,
/// hashing each; every part is flushed to disk when it is closed.
pub struct PartWriter {
    dir: PathBuf,
    max: u64,
    current: Option<(File, u64, Sha256)>,
    parts: Vec<PartEntry>,
}

impl PartWriter {
    pub fn new(dir: &Path, max: Option<u64>) -> PartWriter {
        PartWriter {
            dir: dir.to_path_buf(),
            max: max.unwrap_or(u64::MAX),
            current: None,
            parts: Vec::new(),
        }
    }

    fn close_current(&mut self) -> io::Result<()> {
        if let Some((file, size, hasher)) = self.current.take() {
            file.sync_all()?;
            self.parts.push(PartEntry {
                name: part_name(self.parts.len() + 1),
                size,
                sha256: hex::encode(hasher.finalize()),
            });
        }
        Ok(())
    }

    /// Closes the last part; returns them all.
    pub fn finish(mut self) -> io::Result<Vec<PartEntry>> {
        self.close_current()?;
        Ok(self.parts)
    }
}

impl Write for PartWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.current.is_none() {
            let path = self.dir.join(part_name(self.parts.len() + 1));
            let file = File::create_new(&path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            self.current = Some((file, 0, Sha256::new()));
        }
        let (file, size, hasher) = self.current.as_mut().expect("opened above");
        let room = (self.max - *size).min(buf.len() as u64) as usize;
        let n = file.write(&buf[..room])?;
        hasher.update(&buf[..n]);
        *size += n as u64;
        if *size >= self.max {
            self.close_current()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.current {
            Some((f, _, _)) => f.flush(),
            None => Ok(()),
        }
    }
}

/// A reader that hashes (SHA-256) and counts what passes through it: a
/// file going into a bundle, out of one, or checked in place.
pub struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
}

impl<R: Read> Hashing<R> {
    pub fn new(inner: R) -> Hashing<R> {
        Hashing {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// The size and SHA-256 of everything read.
    pub fn finish(self) -> (u64, [u8; 32]) {
        (self.size, self.hasher.finalize().into())
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

/// The SHA-256 (hex) and size of a regular file of at most `limit` bytes,
/// read in full (`progress` gets each chunk's size). A file that grew past
/// `limit` meanwhile is refused at it.
pub fn hash_file(
    path: &Path,
    limit: u64,
    progress: &mut dyn FnMut(u64),
) -> io::Result<(u64, String)> {
    let (file, _) = crate::bounded::open_regular(path, limit).map_err(io::Error::other)?;
    let mut r = Hashing::new(crate::bounded::Capped::new(file, limit));
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        progress(n as u64);
    }
    let (size, sha) = r.finish();
    Ok((size, hex::encode(sha)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_could_leave_the_directory_are_refused() {
        for good in [
            "golang.org/x/mod/@v/v0.1.0.zip",
            "sumdb/sum.golang.org/tile/8/0/x001/234.p/5",
            "example.com/!upper/@v/list",
        ] {
            assert_eq!(check_path(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "a//b",
            "a/",
            "a\\..\\b",
            "a/\u{1}b",
        ] {
            assert!(check_path(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn mirror_names_have_one_form() {
        for good in ["mirror.example.org", "far_1", "a"] {
            assert_eq!(check_mirror_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            ".hidden",
            "-x",
            "a/b",
            "\u{1b}[31merror",
            "x y",
            &"a".repeat(254),
        ] {
            assert!(check_mirror_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    /// What a tar stream of the listed files can take bounds the parts:
    /// the writer's own stream always fits, a part beyond it does not.
    #[test]
    fn parts_are_bounded_by_what_their_files_fill() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<(String, Vec<u8>)> = vec![
            ("a.example/m/@v/v1.0.0.info".into(), b"{}".to_vec()),
            (
                format!("a.example/{}/@v/v1.0.0.zip", "long".repeat(60)),
                vec![7; 5000],
            ),
        ];
        let mut w = PartWriter::new(dir.path(), Some(MIN_PART_SIZE));
        {
            let mut tar = tar::Builder::new(&mut w);
            tar.mode(tar::HeaderMode::Deterministic);
            for (path, data) in &files {
                let mut h = tar::Header::new_gnu();
                h.set_size(data.len() as u64);
                h.set_mode(0o644);
                h.set_entry_type(tar::EntryType::Regular);
                tar.append_data(&mut h, path, data.as_slice()).unwrap();
            }
            tar.finish().unwrap();
        }
        let parts = w.finish().unwrap();
        let m = Manifest {
            format: FORMAT.into(),
            mirror: MirrorId {
                name: "m".into(),
                id: "0".repeat(32),
            },
            sequence: 1,
            previous: None,
            full: true,
            created: String::new(),
            gomirror_version: String::new(),
            sumdb: SumdbPart {
                name: "s".into(),
                tree_size: 1,
            },
            versions: vec![],
            deletions: vec![],
            files: files
                .iter()
                .map(|(path, data)| FileEntry {
                    path: path.clone(),
                    size: data.len() as u64,
                    sha256: "0".repeat(64),
                })
                .collect(),
            parts,
            vulndb: None,
            ledger: vec![],
        };
        let bound = m.stream_bound().unwrap();
        assert!(m.part_bytes() <= bound, "{} > {bound}", m.part_bytes());
        assert!(bound < m.part_bytes() + 30 * 512, "a tight bound: {bound}");
        let mut wrapped = m.clone();
        wrapped.files[0].size = u64::MAX;
        assert_eq!(wrapped.stream_bound(), None);
        assert_eq!(wrapped.file_bytes(), u64::MAX, "saturates, never wraps");
    }

    /// A ledger entry must pin a version the bundle carries, once, with
    /// real `h1:` hashes.
    #[test]
    fn ledger_entries_are_checked_against_the_versions_carried() {
        let h1 = |c: char| format!("h1:{}=", c.to_string().repeat(43));
        let file = |path: &str| FileEntry {
            path: path.into(),
            size: 1,
            sha256: "0".repeat(64),
        };
        let m = Manifest {
            format: FORMAT.into(),
            mirror: MirrorId {
                name: "m".into(),
                id: "0".repeat(32),
            },
            sequence: 1,
            previous: None,
            full: true,
            created: String::new(),
            gomirror_version: String::new(),
            sumdb: SumdbPart {
                name: "s".into(),
                tree_size: 1,
            },
            versions: vec![BundleVersion {
                path: "corp.example/m".into(),
                version: "v1.0.0".into(),
                zip: false,
            }],
            deletions: vec![],
            vulndb: None,
            ledger: vec![LedgerRecord {
                path: "corp.example/m".into(),
                version: "v1.0.0".into(),
                mod_h1: h1('a'),
                zip_h1: Some(h1('b')),
            }],
            files: vec![
                file("sumdb/s/latest"),
                file("corp.example/m/@v/v1.0.0.info"),
                file("corp.example/m/@v/v1.0.0.mod"),
            ],
            parts: vec![PartEntry {
                name: part_name(1),
                size: 512,
                sha256: "0".repeat(64),
            }],
        };
        assert_eq!(m.check("s"), Ok(()));
        let mut twice = m.clone();
        twice.ledger.push(twice.ledger[0].clone());
        assert!(twice.check("s").unwrap_err().contains("listed twice"));
        let mut stranger = m.clone();
        stranger.ledger[0].version = "v1.0.1".into();
        assert!(
            stranger
                .check("s")
                .unwrap_err()
                .contains("does not carry it")
        );
        let mut bad = m.clone();
        bad.ledger[0].zip_h1 = Some("h1:\u{1b}[31m".into());
        let e = bad.check("s").unwrap_err();
        assert!(
            e.contains("not an h1: hash") && !e.contains('\u{1b}'),
            "{e}"
        );
        // A manifest without a ledger omits the key (older readers take it).
        let mut none = m.clone();
        none.ledger.clear();
        let json = serde_json::to_string(&none).unwrap();
        assert!(!json.contains("ledger"), "{json}");
    }

    #[test]
    fn sizes_read_as_media_are_labelled() {
        assert_eq!(parse_size("650MB").unwrap(), 650_000_000);
        assert_eq!(parse_size("4.7GB").unwrap(), 4_700_000_000);
        assert_eq!(parse_size("25GiB").unwrap(), 25 << 30);
        assert_eq!(parse_size("1048576").unwrap(), 1 << 20);
        assert_eq!(parse_size("64KiB").unwrap(), 64 << 10);
        assert!(parse_size("1KB").is_err(), "below the minimum");
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").is_err());
    }

    #[test]
    fn parts_split_at_the_limit_and_read_back_as_one_stream() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut w = PartWriter::new(dir.path(), Some(100_000));
        for chunk in data.chunks(7_000) {
            w.write_all(chunk).unwrap();
        }
        let parts = w.finish().unwrap();
        assert_eq!(
            parts.iter().map(|p| p.size).collect::<Vec<_>>(),
            [100_000, 100_000, 100_000]
        );
        assert_eq!(parts[2].name, "data.tar.0003");
        let mut back = Vec::new();
        for p in &parts {
            back.extend(std::fs::read(dir.path().join(&p.name)).unwrap());
        }
        assert_eq!(back, data);
        let (size, sha) =
            hash_file(&dir.path().join("data.tar.0001"), 100_000, &mut |_| {}).unwrap();
        assert_eq!((size, sha.as_str()), (100_000, parts[0].sha256.as_str()));
    }

    #[test]
    fn bundle_names_are_plain_directory_names() {
        assert_eq!(
            bundle_name("mirror.example.org", 7, false),
            "mirror.example.org-000007"
        );
        assert_eq!(bundle_name("../evil/x", 1, true), "_evil_x-000001-full");
    }
}
