//! What `gomirror import` checks before it changes anything: the manifest
//! and its signature, the bundle's place in the sequence, every part, the
//! free space, and the tar stream as it is unpacked (beside the state
//! database, never in the tree). Each refusal is a [`Fatal`] that names the
//! bundle and what is wrong.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::bundle::{self, Manifest};
use crate::fatal::Fatal;
use crate::report::{self, Reporter};
use crate::settings::Settings;
use crate::shown;
use crate::state::ImportRecord;
use crate::sumdb::note;

/// A bundle whose manifest has been read and checked.
pub(super) struct Opened {
    pub(super) dir: PathBuf,
    pub(super) manifest: Manifest,
    /// The SHA-256 of `manifest.json`: the bundle's identity.
    pub(super) id: String,
    /// The trusted key that signed it.
    pub(super) signed_by: Option<String>,
}

/// `bundle `<dir>`: <what>` as a stopping error.
pub(super) fn refuse(dir: &Path, what: impl std::fmt::Display) -> Fatal {
    Fatal::stopped(format!("bundle `{}`: {what}", dir.display()))
}

/// Reads and checks the manifest and its signature.
pub(super) fn open_bundle(settings: &Settings, path: &Path) -> Result<Opened, Fatal> {
    let mut dir = path.to_path_buf();
    if dir.file_name().is_some_and(|n| n == bundle::MANIFEST) {
        dir.pop();
    }
    let meta =
        std::fs::metadata(&dir).map_err(|e| refuse(&dir, format!("cannot read it ({e})")))?;
    if !meta.is_dir() {
        return Err(refuse(
            &dir,
            "not a directory (give the directory `gomirror export` printed)",
        ));
    }
    // Judged from its metadata before a byte is read (a sparse 2 GB
    // manifest costs nothing to refuse), a regular file only (a FIFO would
    // hang the import), then parsed as it is read and hashed.
    let (file, _) =
        match crate::bounded::open_regular(&dir.join(bundle::MANIFEST), bundle::MANIFEST_LIMIT) {
            Ok(f) => f,
            Err(e) if e.is_not_found() => {
                return Err(refuse(
                    &dir,
                    "it has no manifest.json: not a gomirror bundle (or not all of one)",
                ));
            }
            Err(crate::bounded::FileError::TooLarge { size, limit, .. }) => {
                return Err(refuse(
                    &dir,
                    format!(
                        "manifest.json is {}, larger than the {} a manifest may have",
                        report::bytes(size),
                        report::bytes(limit)
                    ),
                ));
            }
            Err(e) => return Err(refuse(&dir, format!("cannot read manifest.json ({e})"))),
        };
    let mut reader = bundle::Hashing::new(crate::bounded::Capped::new(
        io::BufReader::with_capacity(1 << 20, file),
        bundle::MANIFEST_LIMIT,
    ));
    let parsed: Result<Manifest, _> = serde_json::from_reader(&mut reader);
    // Whatever follows the value (nothing, or white space) counts in the hash.
    let rest = io::copy(&mut reader, &mut io::sink());
    let manifest = match (parsed, rest) {
        (Ok(m), Ok(_)) => m,
        (Err(e), _) if e.is_io() => {
            return Err(refuse(&dir, format!("cannot read manifest.json ({e})")));
        }
        (Err(e), _) => {
            return Err(refuse(
                &dir,
                format!("manifest.json is damaged: {}", shown::text(&e.to_string())),
            ));
        }
        (_, Err(e)) => return Err(refuse(&dir, format!("cannot read manifest.json ({e})"))),
    };
    manifest
        .check(&settings.sumdb.name)
        .map_err(|why| refuse(&dir, format!("manifest.json cannot be used: {why}")))?;
    let id = hex::encode(reader.finish().1);
    let signed_by = check_signature(settings, &dir, &id)?;
    Ok(Opened {
        dir,
        manifest,
        id,
        signed_by,
    })
}

/// The trusted key that signed the bundle; `None` when it is unsigned or
/// signed by a key this mirror does not list. A signature by a listed key
/// that does not verify, or that names another manifest, is refused.
fn check_signature(settings: &Settings, dir: &Path, id: &str) -> Result<Option<String>, Fatal> {
    let sig =
        match crate::bounded::read_regular(&dir.join(bundle::SIGNATURE), bundle::SIGNATURE_LIMIT) {
            Ok(s) => s,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(refuse(dir, format!("cannot read its signature ({e})"))),
        };
    let text = String::from_utf8_lossy(&sig);
    for key in &settings.trusted_keys {
        let names_key = text.lines().any(|l| {
            l.strip_prefix("— ")
                .and_then(|rest| rest.split_once(' '))
                .is_some_and(|(name, _)| name == key.name())
        });
        if !names_key {
            continue;
        }
        return match note::open(&sig, key) {
            Ok(signed) if signed == bundle::signature_text(id) => Ok(Some(key.name().to_string())),
            Ok(_) => Err(refuse(
                dir,
                format!(
                    "its signature by {} is for another manifest: manifest.json was changed after signing",
                    key.name()
                ),
            )),
            Err(e) => Err(refuse(
                dir,
                format!(
                    "bad signature: manifest.json.sig does not verify under the trusted key {} ({e})",
                    key.name()
                ),
            )),
        };
    }
    Ok(None)
}

/// Whether the bundle may be imported now: `Ok(Some(_))` when it was
/// imported before, an error naming what to import first when it is out of
/// sequence.
pub(super) fn check_sequence(
    b: &Opened,
    position: Option<crate::state::ImportPosition>,
    before: Option<ImportRecord>,
) -> Result<Option<ImportRecord>, Fatal> {
    if let Some(r) = before {
        return Ok(Some(r));
    }
    let m = &b.manifest;
    let name = |seq: u64, full: bool| bundle::bundle_name(&m.mirror.name, seq, full);
    let Some(p) = position else {
        if !m.full && m.sequence != 1 {
            return Err(refuse(
                &b.dir,
                format!(
                    "out of sequence: it is delta number {} from {}, and this mirror has imported nothing yet; import {} (the first bundle) or a full bundle (`gomirror export --full`) first",
                    m.sequence,
                    m.mirror.name,
                    name(1, false)
                ),
            ));
        }
        return Ok(None);
    };
    if p.mirror_id != m.mirror.id {
        return Err(refuse(
            &b.dir,
            format!(
                "it comes from another mirror: {} (id {}), but this mirror imports from {} (id {}); its bundles cannot follow those",
                m.mirror.name, m.mirror.id, p.mirror_name, p.mirror_id
            ),
        ));
    }
    if m.sequence <= p.seq {
        return Err(refuse(
            &b.dir,
            format!(
                "out of sequence: it is number {} from {}, but this mirror has already imported number {} (a different bundle{}); importing it would go back in time",
                m.sequence,
                m.mirror.name,
                p.seq,
                if m.sequence == p.seq {
                    " of the same number: was that number exported twice?"
                } else {
                    ""
                }
            ),
        ));
    }
    if m.full {
        return Ok(None);
    }
    if m.sequence > p.seq + 1 {
        return Err(refuse(
            &b.dir,
            format!(
                "out of sequence: it is delta number {} from {}, and this mirror last imported number {}; import {} first (or {}, if that one was a full export){}",
                m.sequence,
                m.mirror.name,
                p.seq,
                name(p.seq + 1, false),
                name(p.seq + 1, true),
                if m.sequence > p.seq + 2 {
                    format!(" (then each one up to number {})", m.sequence - 1)
                } else {
                    String::new()
                }
            ),
        ));
    }
    if m.previous.as_deref() != Some(p.id.as_str()) {
        return Err(refuse(
            &b.dir,
            format!(
                "it follows a bundle {} other than the number {} this mirror imported ({}): the exporting mirror's history diverged from what was carried here; import a full bundle (`gomirror export --full`)",
                m.previous.as_deref().unwrap_or("(none)"),
                p.seq,
                p.id
            ),
        ));
    }
    Ok(None)
}

/// Checks that every part is there, a regular file of the manifest's size:
/// a missing or short part (a copy still arriving) is refused before any
/// byte is read.
pub(super) fn check_parts_present(b: &Opened) -> Result<(), Fatal> {
    for p in &b.manifest.parts {
        let path = b.dir.join(&p.name);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(refuse(
                    &b.dir,
                    format!(
                        "part {} is missing (the manifest lists {} parts; {} bytes expected)",
                        p.name,
                        b.manifest.parts.len(),
                        p.size
                    ),
                ));
            }
            Err(e) => return Err(refuse(&b.dir, format!("cannot read part {} ({e})", p.name))),
        };
        if !meta.is_file() {
            return Err(refuse(
                &b.dir,
                format!("part {} is not a regular file", p.name),
            ));
        }
        if meta.len() != p.size {
            return Err(refuse(
                &b.dir,
                format!(
                    "part {} is {} bytes, but the manifest says {}: {}",
                    p.name,
                    meta.len(),
                    p.size,
                    if meta.len() < p.size {
                        "truncated (an incomplete copy?)"
                    } else {
                        "damaged"
                    }
                ),
            ));
        }
    }
    Ok(())
}

fn damaged_part(b: &Opened, name: &str, sha: &str, want: &str) -> Fatal {
    refuse(
        &b.dir,
        format!("part {name} is damaged: its SHA-256 is {sha}, the manifest says {want}"),
    )
}

/// Checks every part's size and SHA-256 against the manifest, reading them
/// all (a dry run; and, after an unpack that failed, to tell a damaged part
/// from a manifest that lies).
pub(super) fn check_parts(b: &Opened, out: &Reporter) -> Result<(), Fatal> {
    check_parts_present(b)?;
    let total = b.manifest.part_bytes();
    out.start("checking", Some(b.manifest.parts.len() as u64));
    let mut done = 0u64;
    for (i, p) in b.manifest.parts.iter().enumerate() {
        crate::fatal::stop_if_interrupted()?;
        let path = b.dir.join(&p.name);
        let (_, sha) = bundle::hash_file(&path, p.size, &mut |n| {
            done += n;
            out.progress(
                i as u64,
                &format!("parts, {} of {}", report::bytes(done), report::bytes(total)),
            );
        })
        .map_err(|e| refuse(&b.dir, format!("cannot read part {} ({e})", p.name)))?;
        if sha != p.sha256 {
            return Err(damaged_part(b, &p.name, &sha, &p.sha256));
        }
    }
    out.finish();
    Ok(())
}

/// A part whose bytes, read through to its end, are not the manifest's.
#[derive(Debug, thiserror::Error)]
#[error("part {name} is damaged: its SHA-256 is {sha}, the manifest says {want}")]
struct PartDamaged {
    name: String,
    sha: String,
    want: String,
}

/// The parts as one stream, each hashed as it is read and checked against
/// the manifest when its end is reached: one pass over the medium (a DVD, a
/// slow disk) checks the parts and unpacks them.
struct CheckedParts<'a> {
    b: &'a Opened,
    next: usize,
    current: Option<bundle::Hashing<crate::bounded::Capped<io::BufReader<std::fs::File>>>>,
}

impl Read for CheckedParts<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let part = match &mut self.current {
                Some(part) => part,
                None => {
                    let Some(p) = self.b.manifest.parts.get(self.next) else {
                        return Ok(0);
                    };
                    let path = self.b.dir.join(&p.name);
                    // A regular file of its listed size: what grew since
                    // `check_parts_present` is refused at that size.
                    let (f, _) =
                        crate::bounded::open_regular(&path, p.size).map_err(io::Error::other)?;
                    self.current
                        .insert(bundle::Hashing::new(crate::bounded::Capped::new(
                            io::BufReader::with_capacity(1 << 20, f),
                            p.size,
                        )))
                }
            };
            let n = part.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let (size, sha) = self.current.take().expect("read above").finish();
            let p = &self.b.manifest.parts[self.next];
            let sha = hex::encode(sha);
            if size != p.size || sha != p.sha256 {
                return Err(io::Error::other(PartDamaged {
                    name: p.name.clone(),
                    sha,
                    want: p.sha256.clone(),
                }));
            }
            self.next += 1;
        }
    }
}

/// Where a bundle is unpacked: beside the state database, never in the tree.
pub(super) fn unpack_dir(settings: &Settings) -> PathBuf {
    let name = settings
        .state
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    settings
        .state
        .parent()
        .unwrap_or(Path::new("."))
        .join(format!(".{name}.import"))
}

pub(super) fn remove_unpacked(settings: &Settings) {
    let _ = std::fs::remove_dir_all(unpack_dir(settings));
}

/// Bytes available to unprivileged writers on the file system of `path`.
fn available(path: &Path) -> Option<(u64, u64)> {
    let st = rustix::fs::statvfs(path).ok()?;
    let dev = std::fs::metadata(path).ok().map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.dev()
    })?;
    Some((st.f_bavail.saturating_mul(st.f_frsize), dev))
}

/// Refuses an import the disks cannot hold: the unpacked files beside the
/// state database, and as much again in the tree (once, when both are on
/// one file system and the tree is local, they add up).
pub(super) fn check_space(settings: &Settings, b: &Opened) -> Result<(), Fatal> {
    // Checked (`Manifest::check` refused sizes that wrap); saturating past
    // that: a need of 2^64 is refused, never wrapped to a small number.
    let need = b.manifest.file_bytes();
    let margin = |n: u64| n.saturating_add(n / 50).saturating_add(16 << 20);
    let unpack_parent = unpack_dir(settings)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let Some((free, dev)) = available(&unpack_parent) else {
        return Ok(());
    };
    let tree = if settings.bucket.is_none() {
        available(&settings.output)
    } else {
        None
    };
    let (need_here, tree_need) = match tree {
        Some((_, tdev)) if tdev == dev => (margin(need.saturating_mul(2)), None),
        Some((tfree, _)) => (margin(need), Some((tfree, margin(need)))),
        None => (margin(need), None),
    };
    if free < need_here {
        return Err(refuse(
            &b.dir,
            format!(
                "not enough free space: unpacking and publishing it needs about {} on the file system of `{}`, which has {} free; nothing was changed",
                report::bytes(need_here),
                unpack_parent.display(),
                report::bytes(free)
            ),
        ));
    }
    if let Some((tfree, tneed)) = tree_need
        && tfree < tneed
    {
        return Err(refuse(
            &b.dir,
            format!(
                "not enough free space: publishing it needs about {} in `{}`, which has {} free; nothing was changed",
                report::bytes(tneed),
                settings.output.display(),
                report::bytes(tfree)
            ),
        ));
    }
    Ok(())
}

/// Unpacks the parts into `dest` (created fresh): regular files only, each
/// listed in the manifest once, of its size and SHA-256, at a safe path.
pub(super) fn unpack(b: &Opened, dest: &Path, out: &Reporter) -> Result<(), Fatal> {
    let result = unpack_checked(b, dest, out);
    out.finish();
    match result {
        Ok(()) => Ok(()),
        Err(e @ Fatal::Interrupted { .. }) => Err(e),
        // A damaged part shows first as whatever its bytes broke (a tar
        // header, a file's hash): say which part it is, if one is.
        Err(e) => {
            check_parts(b, out)?;
            Err(e)
        }
    }
}

/// [`unpack`]'s one pass: the parts are checked as they are read.
fn unpack_checked(b: &Opened, dest: &Path, out: &Reporter) -> Result<(), Fatal> {
    if dest.exists() {
        std::fs::remove_dir_all(dest)
            .map_err(|e| Fatal::context(format!("cannot remove `{}`", dest.display()), e))?;
    }
    std::fs::create_dir_all(dest)
        .map_err(|e| Fatal::context(format!("cannot create `{}`", dest.display()), e))?;
    let expected: HashMap<&str, &bundle::FileEntry> = b
        .manifest
        .files
        .iter()
        .map(|f| (f.path.as_str(), f))
        .collect();
    let mut seen: HashSet<String> = HashSet::new();
    let reader = CheckedParts {
        b,
        next: 0,
        current: None,
    };
    let mut archive = tar::Archive::new(reader);
    let damaged = |e: io::Error| match e.get_ref().and_then(|i| i.downcast_ref::<PartDamaged>()) {
        Some(p) => damaged_part(b, &p.name, &p.sha, &p.want),
        None => refuse(&b.dir, format!("its tar stream is damaged: {e}")),
    };
    out.start("unpacking", Some(expected.len() as u64));
    let mut created_dirs: HashSet<PathBuf> = HashSet::new();
    // Debug builds: a pause per file, for tests that signal a long unpack.
    let pause = crate::env::test::unpack_delay();
    for entry in archive.entries().map_err(damaged)? {
        crate::fatal::stop_if_interrupted()?;
        if let Some(p) = pause {
            std::thread::sleep(p);
        }
        let mut entry = entry.map_err(damaged)?;
        let raw = entry.path_bytes().into_owned();
        let shown = shown::quoted(&String::from_utf8_lossy(&raw));
        let path = std::str::from_utf8(&raw)
            .map_err(|_| refuse(&b.dir, format!("tar entry {shown}: path is not UTF-8")))?
            .to_string();
        bundle::check_path(&path)
            .map_err(|why| refuse(&b.dir, format!("tar entry {shown} refused: {why}")))?;
        let named = shown::text(&path);
        let kind = entry.header().entry_type();
        if kind != tar::EntryType::Regular {
            let what = match kind {
                tar::EntryType::Symlink => "a symbolic link",
                tar::EntryType::Link => "a hard link",
                tar::EntryType::Directory => "a directory",
                tar::EntryType::Char | tar::EntryType::Block => "a device",
                tar::EntryType::Fifo => "a FIFO",
                _ => "not a regular file",
            };
            return Err(refuse(
                &b.dir,
                format!(
                    "tar entry {shown} refused: it is {what} (a bundle holds regular files only)"
                ),
            ));
        }
        let Some(want) = expected.get(path.as_str()) else {
            return Err(refuse(
                &b.dir,
                format!("tar entry {shown} is not listed in the manifest"),
            ));
        };
        if !seen.insert(path.clone()) {
            return Err(refuse(&b.dir, format!("tar entry {shown} appears twice")));
        }
        let size = entry.header().size().map_err(damaged)?;
        if size != want.size {
            return Err(refuse(
                &b.dir,
                format!(
                    "{named} is {size} bytes in the tar stream, but the manifest says {}",
                    want.size
                ),
            ));
        }
        let target = dest.join(&path);
        if let Some(parent) = target.parent()
            && created_dirs.insert(parent.to_path_buf())
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| Fatal::context(format!("cannot create `{}`", parent.display()), e))?;
        }
        let write_err = |e: io::Error| {
            Fatal::context(
                format!(
                    "cannot unpack {named} into `{}` (nothing was changed)",
                    dest.display()
                ),
                e,
            )
        };
        let file = std::fs::File::create_new(&target).map_err(write_err)?;
        let mut w = io::BufWriter::with_capacity(1 << 20, file);
        let mut r = bundle::Hashing::new(&mut entry);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = r.read(&mut buf).map_err(damaged)?;
            if n == 0 {
                break;
            }
            w.write_all(&buf[..n]).map_err(write_err)?;
        }
        w.flush().map_err(write_err)?;
        let (got, sha) = r.finish();
        if got != want.size {
            return Err(refuse(
                &b.dir,
                format!(
                    "{named} is cut short in the tar stream ({got} of {} bytes)",
                    want.size
                ),
            ));
        }
        let sha = hex::encode(sha);
        if sha != want.sha256 {
            return Err(refuse(
                &b.dir,
                format!(
                    "{named} does not match the manifest (SHA-256 {sha}, the manifest says {})",
                    want.sha256
                ),
            ));
        }
        out.progress(seen.len() as u64, "files");
    }
    // The stream ends before its parts do (tar's padding): read them to
    // their ends, so that every part's hash is checked.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(damaged)?;
    if seen.len() != expected.len() {
        let missing: Vec<&str> = b
            .manifest
            .files
            .iter()
            .map(|f| f.path.as_str())
            .filter(|p| !seen.contains(*p))
            .take(3)
            .collect();
        return Err(refuse(
            &b.dir,
            format!(
                "the manifest lists {} files the tar stream does not hold (first: {})",
                expected.len() - seen.len(),
                missing.join(", ")
            ),
        ));
    }
    Ok(())
}
