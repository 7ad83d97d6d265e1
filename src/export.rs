//! `gomirror export [--full] [--max-size SIZE] [--dry-run] DIR`: one bundle
//! for an air-gapped mirror ([`crate::bundle`] describes the format).
//!
//! A delta carries what changed in the tree since the previous export (the
//! state database remembers what the far side holds once it has imported
//! every bundle so far): new versions' `.info`, `.mod`, `.zip` and lookups,
//! the tiles not carried before, the current tree head, and the versions
//! deleted (a newer tree head alone makes a bundle: its tiles). `--full`
//! carries the whole tree. Every file is read back from the tree and
//! checked against what the state database recorded at publish time before
//! it goes in, so a damaged tree never travels.
//!
//! The bundle is written under `DIR/.<name>.partial`, made durable, renamed
//! into place, and only then recorded: an interrupted export records
//! nothing and leaves no bundle that looks complete.

use std::collections::HashSet;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::bundle::{
    self, BundleVersion, Deleted, FileEntry, LedgerRecord, MirrorId, SumdbPart, VulndbPart,
};
use crate::fatal::Fatal;
use crate::lock::RunLock;
use crate::report::{self, Reporter};
use crate::runner;
use crate::settings::Settings;
use crate::state::db::Db;
use crate::state::{ExportRecord, ExportVersion};
use crate::store::layout::{self, Key};
use crate::store::{EntryKind, Store};
use crate::sumdb::{note, tlog};

/// Flags of `gomirror export`.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    pub dir: PathBuf,
    pub full: bool,
    pub max_size: Option<u64>,
    pub dry_run: bool,
}

/// What an export did (or would do).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ExportReport {
    /// The bundle written (`None`: nothing to export, or a dry run).
    pub bundle: Option<PathBuf>,
    pub sequence: u64,
    pub full: bool,
    pub versions: u64,
    pub deletions: u64,
    pub files: u64,
    /// Bytes of the files carried, and of the parts (with tar's headers).
    pub file_bytes: u64,
    pub part_bytes: u64,
    pub parts: u64,
    pub signed: bool,
    pub tree_size: i64,
    /// Nothing changed since the last export: no bundle written.
    pub unchanged: bool,
    /// The vulnerability database carried (its `modified`), if any.
    pub vulndb: Option<String>,
    pub dry_run: bool,
    pub seconds: f64,
}

impl runner::Outcome for ExportReport {
    fn exit_code(&self) -> i32 {
        0
    }
}

impl ExportReport {
    /// The summary; for a bundle written its path is the last line (scripts read it).
    pub fn render(&self) -> Vec<String> {
        let kind = if self.full { "full" } else { "delta" };
        if self.unchanged {
            return vec![format!(
                "export: nothing changed since bundle {}; no bundle written",
                self.sequence
            )];
        }
        let what = format!(
            "{} versions, {} deletions, {} files ({})",
            self.versions,
            self.deletions,
            self.files,
            report::bytes(self.file_bytes)
        );
        if self.dry_run {
            return vec![format!(
                "export (dry run): bundle {} ({kind}) would carry {what}, about {} in {} part{}; nothing written",
                self.sequence,
                report::bytes(self.part_bytes),
                self.parts,
                if self.parts == 1 { "" } else { "s" }
            )];
        }
        let mut lines = vec![format!(
            "export: bundle {} ({kind}{}) carries {what} in {} part{} ({}), tree head of {} records, in {}",
            self.sequence,
            if self.signed { ", signed" } else { "" },
            self.parts,
            if self.parts == 1 { "" } else { "s" },
            report::bytes(self.part_bytes),
            self.tree_size,
            report::duration(std::time::Duration::from_secs_f64(self.seconds))
        )];
        if let Some(m) = &self.vulndb {
            lines.push(format!("  with the vulnerability database (modified {m})"));
        }
        if let Some(p) = &self.bundle {
            lines.push(p.display().to_string());
        }
        lines
    }
}

/// Runs `gomirror export` under the lock (taken by the caller).
pub fn run(
    settings: &Settings,
    opts: &ExportOptions,
    out: &Reporter,
    _lock: &RunLock,
) -> Result<ExportReport, Fatal> {
    let started = Instant::now();
    if opts.dry_run {
        let mut report = runner::run_preview(settings, async |db, upstreams| {
            let tree = crate::services::open_store(settings, upstreams)?;
            export(settings, opts, out, db, &tree).await
        })?;
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    let mut report = runner::run_command(settings, "export", async |svc| {
        let r = export(settings, opts, out, &svc.db, &svc.tree).await;
        out.finish();
        r
    })?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// One file to carry: its tree key, and what it must hash to.
struct Carried {
    key: String,
    size: u64,
    check: Expect,
}

enum Expect {
    /// The SHA-256 recorded at publish time.
    Sha256(String),
    /// A `.mod` file: its `h1:` recorded at publish time.
    ModH1(String),
    /// Checked on the far side only (lookups, tiles, the tree head).
    Nothing,
}

/// Versions read from the state database at a time: an export's memory
/// stays the same whatever the mirror's size (invariant 8).
const PAGE: usize = 1000;

/// The bytes a file takes in the tar stream: a 512-byte header (and for a
/// long name one more block and the name), its content padded to 512.
fn tar_bytes(key: &str, size: u64) -> u64 {
    let name = if key.len() > 100 {
        512 + key.len().div_ceil(512) as u64 * 512
    } else {
        0
    };
    512 + name + size.div_ceil(512) * 512
}

async fn export(
    settings: &Settings,
    opts: &ExportOptions,
    out: &Reporter,
    db: &Db,
    tree: &Arc<dyn Store>,
) -> Result<ExportReport, Fatal> {
    let sumdb = settings.sumdb.name.clone();
    let latest_key = layout::plain(Key::SumdbLatest { db: sumdb.clone() });
    let full = opts.full;
    let dry_run = opts.dry_run;
    let (mirror_id, last, (additions, with_zip), deletions, exported_tiles) = db
        .call(move |s| {
            let id = if dry_run {
                s.meta("mirror.id")?.unwrap_or_else(|| "0".repeat(32))
            } else {
                s.mirror_id()?
            };
            let deletions = if full { 0 } else { s.export_deletions_count()? };
            // The tiles carried before: bounded by the log's size (a key per
            // full tile), not by the mirror's.
            let tiles = if full {
                HashSet::new()
            } else {
                s.exported_tiles()?
            };
            Ok((
                id,
                s.last_export()?,
                s.export_additions_count(full)?,
                deletions,
                tiles,
            ))
        })
        .await?;
    let vuln = crate::vuln::export_plan(db, full).await?;
    let sequence = last.as_ref().map_or(1, |l| l.seq + 1);
    let mut report = ExportReport {
        sequence,
        full,
        dry_run,
        ..ExportReport::default()
    };
    // The tree head the tree serves: verified with the configured key.
    let t = tree.clone();
    let key = latest_key.clone();
    let head_note = tokio::task::spawn_blocking(move || t.read(&key, 1 << 20))
        .await
        .map_err(|e| Fatal::crashed("reading the tree head", e))??;
    // A newer head (and its tiles) is a change too: the far side then
    // serves the clients that trusted a head up to it (`docs/tiles.md`).
    let served_size = head_note.as_deref().and_then(|n| {
        note::open(n, &settings.sumdb.verifier)
            .ok()
            .and_then(|text| tlog::parse_tree(text.as_bytes()).ok())
            .map(|t| t.n)
    });
    if !full
        && additions == 0
        && deletions == 0
        && vuln.is_none()
        && let Some(l) = &last
        && (served_size.is_none() || l.tree_size >= served_size)
    {
        report.unchanged = true;
        report.sequence = l.seq;
        return Ok(report);
    }
    let head_note = head_note.ok_or_else(|| {
        Fatal::stopped(format!(
            "the tree holds no checksum-database tree head ({latest_key}): sync first, then export"
        ))
    })?;
    let text = note::open(&head_note, &settings.sumdb.verifier).map_err(|e| {
        Fatal::stopped(format!(
            "{latest_key} in the tree does not verify with sumdb.key ({e}); run `gomirror verify`"
        ))
    })?;
    let head = tlog::parse_tree(text.as_bytes())
        .map_err(|e| Fatal::stopped(format!("{latest_key} in the tree is malformed: {e}")))?;
    report.tree_size = head.n;

    // The tiles not carried before go first.
    let t = tree.clone();
    let tile_sumdb = sumdb.clone();
    let tiles = tokio::task::spawn_blocking(move || plan_tiles(&*t, &tile_sumdb, &exported_tiles))
        .await
        .map_err(|e| Fatal::crashed("planning the export", e))??;
    report.versions = additions;
    report.deletions = deletions;
    // The vulnerability database's files, after the tree head.
    let vuln_files: Vec<Carried> = vuln
        .iter()
        .flat_map(|c| &c.files)
        .map(|f| Carried {
            key: f.key.clone(),
            size: f.size,
            check: Expect::Sha256(f.sha256.clone()),
        })
        .collect();
    report.vulndb = vuln.as_ref().map(|c| c.modified.clone());
    let name = bundle::bundle_name(&settings.mirror_name, sequence, full);
    let dir = std::path::absolute(&opts.dir)
        .map_err(|e| Fatal::context(format!("cannot resolve `{}`", opts.dir.display()), e))?;
    let target = dir.join(&name);

    if dry_run {
        // What would go in: every file stat'ed, a page of versions at a time.
        let mut estimate = 1024u64;
        let (mut files, mut bytes) = (0u64, 0u64);
        let mut count = |key: &str, size: u64| {
            files += 1;
            bytes += size;
            estimate += tar_bytes(key, size);
        };
        for (key, size) in &tiles {
            count(key, *size);
        }
        count(&latest_key, head_note.len() as u64);
        for f in &vuln_files {
            count(&f.key, f.size);
        }
        let mut after: Option<(String, String)> = None;
        let mut shown = 0;
        loop {
            let a = after.clone();
            let page = db
                .call(move |s| {
                    s.export_additions_page(
                        full,
                        a.as_ref().map(|(p, v)| (p.as_str(), v.as_str())),
                        PAGE,
                    )
                })
                .await?;
            let Some(last) = page.last() else { break };
            after = Some((last.path.clone(), last.version.clone()));
            for v in page.iter().take(20 - shown) {
                out.verbose(&format!("would carry {}@{}", v.path, v.version));
                shown += 1;
            }
            let (t, s2) = (tree.clone(), sumdb.clone());
            let carried = tokio::task::spawn_blocking(move || {
                let mut files = Vec::new();
                for v in &page {
                    files.extend(version_files(&*t, &s2, v)?);
                }
                Ok::<_, Fatal>(files)
            })
            .await
            .map_err(|e| Fatal::crashed("planning the export", e))??;
            for f in &carried {
                count(&f.key, f.size);
            }
        }
        report.files = files;
        report.file_bytes = bytes;
        report.part_bytes = estimate.div_ceil(10240) * 10240;
        report.parts = match opts.max_size {
            Some(m) => report.part_bytes.div_ceil(m).max(1),
            None => 1,
        };
        report.bundle = None;
        return Ok(report);
    }

    // Write.
    let signer = match &settings.signing_key {
        Some(p) => Some(read_signer(p)?),
        None => None,
    };
    let head_part = ManifestHead {
        format: bundle::FORMAT.to_string(),
        mirror: MirrorId {
            name: settings.mirror_name.clone(),
            id: mirror_id,
        },
        sequence,
        previous: last.as_ref().map(|l| l.id.clone()),
        full,
        created: crate::clock::rfc3339(report::now()),
        gomirror_version: env!("CARGO_PKG_VERSION").to_string(),
        sumdb: SumdbPart {
            name: sumdb.clone(),
            tree_size: head.n,
        },
        vulndb: vuln.as_ref().map(|c| VulndbPart {
            modified: c.modified.clone(),
            entries: c.entries,
        }),
    };
    // Every version's `.mod`, `.info` and lookup, most with a zip; the head.
    let total_files = tiles.len() as u64 + additions * 3 + with_zip + 1 + vuln_files.len() as u64;
    out.start("exporting", Some(total_files));
    let tile_keys: Vec<String> = tiles.iter().map(|(k, _)| k.clone()).collect();
    let written = {
        let source = Source {
            db,
            runtime: tokio::runtime::Handle::current(),
            full,
            sumdb: &sumdb,
            latest_key: &latest_key,
            head_note: &head_note,
            tiles,
            vuln_files,
        };
        let (t, max, signer) = (tree.clone(), opts.max_size, signer.as_ref());
        let (target, name) = (target.clone(), name.clone());
        tokio::task::block_in_place(move || {
            write_bundle(
                &*t,
                &dir,
                &name,
                &target,
                max,
                source,
                head_part,
                signer,
                &mut |i, b| out.progress(i, &format!("files, {}", report::bytes(b))),
            )
        })
    };
    out.finish();
    let written = written?;
    report.files = written.files;
    report.file_bytes = written.file_bytes;
    report.part_bytes = written.part_bytes;
    report.parts = written.parts;
    report.signed = settings.signing_key.is_some();
    report.bundle = Some(target.clone());

    let rec = ExportRecord {
        seq: sequence,
        id: written.id,
        previous: last.as_ref().map(|l| l.id.clone()),
        full,
        created: report::now(),
        path: target.display().to_string(),
        versions: report.versions,
        deletions: report.deletions,
        bytes: report.part_bytes,
        tree_size: Some(head.n),
    };
    db.call(move |s| s.record_export(&rec, &tile_keys))
        .await
        .map_err(|e| {
            Fatal::context(
                format!(
                    "bundle {} was written but could not be recorded: remove it (it must not be carried), then export again",
                    target.display()
                ),
                e,
            )
        })?;
    if let Some(c) = vuln {
        crate::vuln::record_export(db, c).await?;
    }
    Ok(report)
}

/// The tiles not carried before (`exported`), with their sizes, in key
/// order. Bounded by the log (one per full tile, ~286 k for sum.golang.org),
/// not by the mirror.
fn plan_tiles(
    tree: &dyn Store,
    sumdb: &str,
    exported: &HashSet<String>,
) -> Result<Vec<(String, u64)>, Fatal> {
    let mut tiles = Vec::new();
    let prefix = format!("{}/tile/", layout::sumdb_dir(sumdb));
    for entry in tree.list(&prefix) {
        let entry = entry?;
        if entry.kind != EntryKind::File || exported.contains(&entry.key) {
            continue;
        }
        let Some(meta) = tree.stat(&entry.key)? else {
            continue;
        };
        tiles.push((entry.key, meta.size));
    }
    Ok(tiles)
}

/// A version's files in the order they go into the stream (lookup, `.zip`,
/// `.mod`, `.info`), each with what it must hash to.
fn version_files(tree: &dyn Store, sumdb: &str, v: &ExportVersion) -> Result<Vec<Carried>, Fatal> {
    let missing = |key: &str| {
        Fatal::stopped(format!(
            "{}@{}: {key} is missing from the tree although the state database records it published; run `gomirror verify --repair`, then export again",
            v.path, v.version
        ))
    };
    let name_err =
        |e: crate::gomod::ModuleError| Fatal::stopped(format!("{}@{}: {e}", v.path, v.version));
    let mut files = Vec::with_capacity(4);
    let lookup = layout::lookup(sumdb, &v.path, &v.version).map_err(name_err)?;
    if let Some(meta) = tree.stat(&lookup)? {
        files.push(Carried {
            key: lookup,
            size: meta.size,
            check: Expect::Nothing,
        });
    }
    let mut exts = Vec::new();
    if v.zip {
        exts.push("zip");
    }
    exts.extend(["mod", "info"]);
    for ext in exts {
        let key = layout::version_file(&v.path, &v.version, ext).map_err(name_err)?;
        let meta = tree.stat(&key)?.ok_or_else(|| missing(&key))?;
        let check = match ext {
            "zip" => v.zip_sha256.clone().map(Expect::Sha256),
            "info" => v.info_sha256.clone().map(Expect::Sha256),
            _ => Some(Expect::ModH1(v.mod_h1.clone())),
        };
        files.push(Carried {
            key,
            size: meta.size,
            check: check.unwrap_or(Expect::Nothing),
        });
    }
    Ok(files)
}

fn read_signer(path: &Path) -> Result<note::Signer, Fatal> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Fatal::context(
            format!("cannot read export.signing_key `{}`", path.display()),
            e,
        )
    })?;
    note::Signer::parse(text.trim()).map_err(|e| {
        Fatal::stopped(format!(
            "export.signing_key `{}` is not a note signer key (PRIVATE+KEY+…, as `gomirror keygen` writes): {e}",
            path.display()
        ))
    })
}

/// Where the files of a bundle come from: the tiles planned, then the
/// versions a page at a time from the state database (on the command's
/// runtime, from the blocked writer thread), then the tree head.
struct Source<'a> {
    db: &'a Db,
    runtime: tokio::runtime::Handle,
    full: bool,
    sumdb: &'a str,
    latest_key: &'a str,
    head_note: &'a [u8],
    tiles: Vec<(String, u64)>,
    /// The vulnerability database's files, carried after the tree head.
    vuln_files: Vec<Carried>,
}

/// The manifest's fields before its lists, in the order [`bundle::Manifest`]
/// has them.
struct ManifestHead {
    format: String,
    mirror: MirrorId,
    sequence: u64,
    previous: Option<String>,
    full: bool,
    created: String,
    gomirror_version: String,
    sumdb: SumdbPart,
    vulndb: Option<VulndbPart>,
}

/// What a bundle written holds.
struct Written {
    /// The SHA-256 of its manifest: the bundle's identity.
    id: String,
    files: u64,
    file_bytes: u64,
    part_bytes: u64,
    parts: u64,
}

/// A JSON array written an element at a time into a scratch file beside the
/// bundle (its elements are the manifest's lists: one per version and file).
struct JsonList {
    path: PathBuf,
    out: io::BufWriter<std::fs::File>,
    count: u64,
}

impl JsonList {
    fn create(path: PathBuf) -> Result<JsonList, Fatal> {
        let file = std::fs::File::create_new(&path)
            .map_err(|e| Fatal::context(format!("cannot create `{}`", path.display()), e))?;
        Ok(JsonList {
            path,
            out: io::BufWriter::with_capacity(1 << 20, file),
            count: 0,
        })
    }

    fn push<T: Serialize>(&mut self, item: &T) -> Result<(), Fatal> {
        let path = &self.path;
        let e = |e: io::Error| Fatal::context(format!("cannot write `{}`", path.display()), e);
        if self.count > 0 {
            io::Write::write_all(&mut self.out, b",").map_err(e)?;
        }
        serde_json::to_writer(&mut self.out, item).map_err(|x| e(x.into()))?;
        self.count += 1;
        Ok(())
    }

    /// Removes the scratch file of a list that stays out of the manifest.
    fn discard(self) -> Result<(), Fatal> {
        let path = self.path.clone();
        drop(self.out);
        std::fs::remove_file(&path)
            .map_err(|e| Fatal::context(format!("cannot remove `{}`", path.display()), e))
    }

    /// `[` + the elements + `]` into `to`; the scratch file is removed.
    fn copy_into(self, to: &mut dyn io::Write) -> Result<(), Fatal> {
        let path = self.path.clone();
        let e = |e: io::Error| Fatal::context(format!("cannot read back `{}`", path.display()), e);
        let file = self.out.into_inner().map_err(|x| e(x.into_error()))?;
        drop(file);
        to.write_all(b"[").map_err(e)?;
        let mut f = std::fs::File::open(&path).map_err(e)?;
        io::copy(&mut f, to).map_err(e)?;
        to.write_all(b"]").map_err(e)?;
        drop(f);
        std::fs::remove_file(&path).map_err(e)
    }
}

/// Writes the manifest exactly as `serde_json::to_vec(&Manifest)` would,
/// from its head, its lists in scratch files and its parts: the lists of a
/// large mirror (an entry per version and per file) never sit in memory.
fn write_manifest(
    to: &mut dyn io::Write,
    head: &ManifestHead,
    versions: JsonList,
    deletions: JsonList,
    ledger: JsonList,
    files: JsonList,
    parts: &[bundle::PartEntry],
) -> Result<(), Fatal> {
    let e = |e: io::Error| Fatal::context("cannot write the manifest", e);
    fn field<T: Serialize + ?Sized>(
        to: &mut dyn io::Write,
        first: bool,
        key: &str,
        value: &T,
    ) -> io::Result<()> {
        to.write_all(if first { b"{\"" } else { b",\"" })?;
        to.write_all(key.as_bytes())?;
        to.write_all(b"\":")?;
        serde_json::to_writer(to, value).map_err(Into::into)
    }
    field(to, true, "format", &head.format).map_err(e)?;
    field(to, false, "mirror", &head.mirror).map_err(e)?;
    field(to, false, "sequence", &head.sequence).map_err(e)?;
    field(to, false, "previous", &head.previous).map_err(e)?;
    field(to, false, "full", &head.full).map_err(e)?;
    field(to, false, "created", &head.created).map_err(e)?;
    field(to, false, "gomirror_version", &head.gomirror_version).map_err(e)?;
    field(to, false, "sumdb", &head.sumdb).map_err(e)?;
    to.write_all(b",\"versions\":").map_err(e)?;
    versions.copy_into(to)?;
    to.write_all(b",\"deletions\":").map_err(e)?;
    deletions.copy_into(to)?;
    // Both absent when empty, as `Manifest` skips them.
    if let Some(v) = &head.vulndb {
        field(to, false, "vulndb", v).map_err(e)?;
    }
    if ledger.count > 0 {
        to.write_all(b",\"ledger\":").map_err(e)?;
        ledger.copy_into(to)?;
    } else {
        ledger.discard()?;
    }
    to.write_all(b",\"files\":").map_err(e)?;
    files.copy_into(to)?;
    field(to, false, "parts", parts).map_err(e)?;
    to.write_all(b"}").map_err(e)
}

/// Writes the bundle under `dir/.<name>.partial`, checks every file against
/// what it must hash to, signs, makes it durable and renames it to `target`.
/// Files, versions and deletions stream through: memory does not grow with
/// the mirror.
#[allow(clippy::too_many_arguments)]
fn write_bundle(
    tree: &dyn Store,
    dir: &Path,
    name: &str,
    target: &Path,
    max: Option<u64>,
    source: Source<'_>,
    head: ManifestHead,
    signer: Option<&note::Signer>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Written, Fatal> {
    let io_err = |what: String| move |e: io::Error| Fatal::context(what, e);
    std::fs::create_dir_all(dir).map_err(io_err(format!("cannot create `{}`", dir.display())))?;
    if target.exists() {
        return Err(Fatal::stopped(format!(
            "`{}` exists but is not recorded as exported: an export was interrupted after writing it. If it was never carried to the far side, remove it and export again; if it was, export --full instead",
            target.display()
        )));
    }
    let partial = dir.join(format!(".{name}.partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .map_err(io_err(format!("cannot remove `{}`", partial.display())))?;
    }
    std::fs::create_dir(&partial)
        .map_err(io_err(format!("cannot create `{}`", partial.display())))?;
    let result = (|| {
        let parts = bundle::PartWriter::new(&partial, max);
        let mut tar = tar::Builder::new(parts);
        tar.mode(tar::HeaderMode::Deterministic);
        let mut versions = JsonList::create(partial.join(".versions.json"))?;
        let mut deletions = JsonList::create(partial.join(".deletions.json"))?;
        let mut ledger = JsonList::create(partial.join(".ledger.json"))?;
        let mut files = JsonList::create(partial.join(".files.json"))?;
        let mut bytes = 0u64;
        let mut carry = |f: Carried,
                         tar: &mut tar::Builder<bundle::PartWriter>|
         -> Result<(), Fatal> {
            // On a blocked thread, out of the signal's reach: look between files.
            crate::fatal::stop_if_interrupted()?;
            let mut header = tar::Header::new_gnu();
            header.set_size(f.size);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_entry_type(tar::EntryType::Regular);
            let reader: Box<dyn Read> = if f.key == source.latest_key {
                Box::new(io::Cursor::new(source.head_note.to_vec()))
            } else {
                let file = tree.open(&f.key)?.ok_or_else(|| {
                        Fatal::stopped(format!(
                            "{} vanished from the tree while exporting (is another program changing it?)",
                            f.key
                        ))
                    })?;
                Box::new(io::BufReader::with_capacity(256 << 10, file))
            };
            // Exactly the size announced: a file that changed size is caught below.
            let mut reader = bundle::Hashing::new(reader.take(f.size));
            tar.append_data(&mut header, &f.key, &mut reader)
                .map_err(io_err(format!("cannot write {} into the bundle", f.key)))?;
            let (size, sha) = reader.finish();
            if size != f.size {
                return Err(Fatal::stopped(format!(
                    "{} changed size while exporting ({} bytes, {} expected)",
                    f.key, size, f.size
                )));
            }
            let good = match &f.check {
                Expect::Sha256(want) => hex::encode(sha) == *want,
                Expect::ModH1(want) => crate::gomod::dirhash::go_mod_hash(sha) == *want,
                Expect::Nothing => true,
            };
            if !good {
                return Err(Fatal::stopped(format!(
                    "{} in the tree does not match what the state database recorded at publish time: the tree is damaged. Run `gomirror verify --repair`, then export again (nothing was exported)",
                    f.key
                )));
            }
            bytes += f.size;
            files.push(&FileEntry {
                path: f.key,
                size: f.size,
                sha256: hex::encode(sha),
            })?;
            progress(files.count, bytes);
            Ok(())
        };
        // Tiles first, then per version lookup, `.zip`, `.mod`, `.info`,
        // then the tree head.
        for (key, size) in &source.tiles {
            carry(
                Carried {
                    key: key.clone(),
                    size: *size,
                    check: Expect::Nothing,
                },
                &mut tar,
            )?;
        }
        let mut after: Option<(String, String)> = None;
        loop {
            let (a, full) = (after.clone(), source.full);
            // A page of versions and the ledger entries of those it carries
            // (private and sumdb.skip modules), in one call.
            let (page, entries) = source.runtime.block_on(source.db.call(move |s| {
                let page = s.export_additions_page(
                    full,
                    a.as_ref().map(|(p, v)| (p.as_str(), v.as_str())),
                    PAGE,
                )?;
                let carried: Vec<(String, String)> = page
                    .iter()
                    .map(|v| (v.path.clone(), v.version.clone()))
                    .collect();
                let entries = s.ledger_entries(&carried)?;
                Ok((page, entries))
            }))?;
            let Some(last) = page.last() else { break };
            after = Some((last.path.clone(), last.version.clone()));
            for e in entries {
                ledger.push(&LedgerRecord {
                    path: e.path,
                    version: e.version,
                    mod_h1: e.mod_h1,
                    zip_h1: e.zip_h1,
                })?;
            }
            for v in &page {
                for f in version_files(tree, source.sumdb, v)? {
                    carry(f, &mut tar)?;
                }
                versions.push(&BundleVersion {
                    path: v.path.clone(),
                    version: v.version.clone(),
                    zip: v.zip,
                })?;
            }
        }
        carry(
            Carried {
                key: source.latest_key.to_string(),
                size: source.head_note.len() as u64,
                check: Expect::Nothing,
            },
            &mut tar,
        )?;
        for f in source.vuln_files {
            carry(f, &mut tar)?;
        }
        if !source.full {
            let mut after: Option<(String, String)> = None;
            loop {
                let a = after.clone();
                let page = source.runtime.block_on(source.db.call(move |s| {
                    s.export_deletions_page(a.as_ref().map(|(p, v)| (p.as_str(), v.as_str())), PAGE)
                }))?;
                let Some((_, last)) = page.last() else { break };
                after = Some((last.path.clone(), last.version.clone()));
                for (_, e) in &page {
                    deletions.push(&Deleted {
                        path: e.path.clone(),
                        version: e.version.clone(),
                    })?;
                }
            }
        }
        let parts = tar
            .into_inner()
            .map_err(io_err("cannot finish the bundle".into()))?
            .finish()
            .map_err(io_err("cannot finish the bundle's parts".into()))?;
        let files_count = files.count;
        // The manifest, hashed as it is written: its SHA-256 is the bundle's id.
        let manifest_path = partial.join(bundle::MANIFEST);
        let manifest_file = std::fs::File::create_new(&manifest_path).map_err(io_err(format!(
            "cannot write `{}`",
            manifest_path.display()
        )))?;
        let mut hashing = HashingWriter {
            inner: io::BufWriter::with_capacity(1 << 20, manifest_file),
            hasher: Sha256::new(),
        };
        write_manifest(
            &mut hashing,
            &head,
            versions,
            deletions,
            ledger,
            files,
            &parts,
        )?;
        let id = hex::encode(hashing.hasher.finalize());
        let manifest_file = hashing
            .inner
            .into_inner()
            .map_err(|e| Fatal::context("cannot write the manifest", e.into_error()))?;
        manifest_file.sync_all().map_err(io_err(format!(
            "cannot write `{}`",
            manifest_path.display()
        )))?;
        if let Some(s) = signer {
            let sig = s.sign(&bundle::signature_text(&id));
            write_durably(&partial.join(bundle::SIGNATURE), sig.as_bytes())?;
        }
        sync_dir(&partial)?;
        std::fs::rename(&partial, target).map_err(io_err(format!(
            "cannot rename `{}` to `{}`",
            partial.display(),
            target.display()
        )))?;
        sync_dir(dir)?;
        Ok(Written {
            id,
            files: files_count,
            file_bytes: bytes,
            part_bytes: parts.iter().map(|p| p.size).sum(),
            parts: parts.len() as u64,
        })
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    result
}

/// A writer that hashes (SHA-256) what passes through it.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: io::Write> io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), Fatal> {
    let e = |e: io::Error| Fatal::context(format!("cannot write `{}`", path.display()), e);
    let mut f = std::fs::File::create_new(path).map_err(e)?;
    io::Write::write_all(&mut f, bytes).map_err(e)?;
    f.sync_all().map_err(e)
}

fn sync_dir(dir: &Path) -> Result<(), Fatal> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Fatal::context(format!("cannot flush `{}`", dir.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{Manifest, PartEntry};

    /// The manifest streamed from scratch files is byte for byte what
    /// serialising the whole [`Manifest`] gives (so its SHA-256, the
    /// bundle's identity, is the same as before streaming).
    #[test]
    fn a_streamed_manifest_is_the_serialised_one() {
        let dir = tempfile::tempdir().unwrap();
        let head = || ManifestHead {
            format: bundle::FORMAT.into(),
            mirror: MirrorId {
                name: "m.example".into(),
                id: "ab".repeat(16),
            },
            sequence: 3,
            previous: Some("cd".repeat(32)),
            full: false,
            created: "2026-12-06T10:00:00Z".into(),
            gomirror_version: "0.1.0".into(),
            sumdb: SumdbPart {
                name: "sum.golang.org".into(),
                tree_size: 1234,
            },
            vulndb: Some(VulndbPart {
                modified: "2026-12-01T00:00:00Z".into(),
                entries: 7,
            }),
        };
        for n in [0usize, 1, 3] {
            let versions: Vec<BundleVersion> = (0..n)
                .map(|i| BundleVersion {
                    path: format!("example.com/\"q\"/m{i}"),
                    version: format!("v1.0.{i}"),
                    zip: i % 2 == 0,
                })
                .collect();
            let deletions: Vec<Deleted> = (0..n.saturating_sub(1))
                .map(|i| Deleted {
                    path: "example.com/gone".into(),
                    version: format!("v0.{i}.0"),
                })
                .collect();
            let files: Vec<FileEntry> = (0..n * 2)
                .map(|i| FileEntry {
                    path: format!("example.com/m/@v/v1.0.{i}.zip"),
                    size: i as u64 * 1000,
                    sha256: "ef".repeat(32),
                })
                .collect();
            let parts = vec![PartEntry {
                name: "data.tar.0001".into(),
                size: 10240,
                sha256: "01".repeat(32),
            }];
            let list =
                |name: &str| JsonList::create(dir.path().join(format!("{name}{n}"))).unwrap();
            let (mut lv, mut ld, mut ll, mut lf) = (list("v"), list("d"), list("l"), list("f"));
            // The ledger is absent when empty, as `Manifest` skips it.
            let ledger: Vec<LedgerRecord> = (0..n.saturating_sub(1))
                .map(|i| LedgerRecord {
                    path: "git.corp.example/x".into(),
                    version: format!("v1.{i}.0"),
                    mod_h1: "h1:m".into(),
                    zip_h1: Some("h1:z".into()),
                })
                .collect();
            ledger.iter().for_each(|l| ll.push(l).unwrap());
            versions.iter().for_each(|v| lv.push(v).unwrap());
            deletions.iter().for_each(|d| ld.push(d).unwrap());
            files.iter().for_each(|f| lf.push(f).unwrap());
            let mut streamed = Vec::new();
            write_manifest(&mut streamed, &head(), lv, ld, ll, lf, &parts).unwrap();
            let h = head();
            let whole = Manifest {
                format: h.format,
                mirror: h.mirror,
                sequence: h.sequence,
                previous: h.previous,
                full: h.full,
                created: h.created,
                gomirror_version: h.gomirror_version,
                sumdb: h.sumdb,
                versions,
                deletions,
                vulndb: h.vulndb,
                ledger,
                files,
                parts,
            };
            assert_eq!(
                String::from_utf8(streamed).unwrap(),
                String::from_utf8(serde_json::to_vec(&whole).unwrap()).unwrap(),
                "{n} versions"
            );
        }
        // The scratch files are gone.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
