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
    self, BundleVersion, Deleted, FileEntry, LedgerRecord, Manifest, MirrorId, SumdbPart,
    VulndbPart,
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
    let (mirror_id, last, additions, deletions, exported_tiles) = db
        .call(move |s| {
            let id = if dry_run {
                s.meta("mirror.id")?.unwrap_or_else(|| "0".repeat(32))
            } else {
                s.mirror_id()?
            };
            let deletions = if full {
                Vec::new()
            } else {
                s.export_deletions()?
            };
            let tiles = if full {
                HashSet::new()
            } else {
                s.exported_tiles()?
            };
            Ok((
                id,
                s.last_export()?,
                s.export_additions(full)?,
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
        && additions.is_empty()
        && deletions.is_empty()
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

    // What goes in: the versions' files and lookups, new tiles, the head.
    let t = tree.clone();
    let plan_sumdb = sumdb.clone();
    let plan = tokio::task::spawn_blocking(move || {
        plan_files(&*t, &plan_sumdb, &additions, &exported_tiles)
            .map(|(files, tiles)| (files, tiles, additions))
    })
    .await
    .map_err(|e| Fatal::crashed("planning the export", e))??;
    let (mut files, tiles, additions) = plan;
    files.push(Carried {
        key: latest_key.clone(),
        size: head_note.len() as u64,
        check: Expect::Nothing,
    });
    for f in vuln.iter().flat_map(|c| &c.files) {
        files.push(Carried {
            key: f.key.clone(),
            size: f.size,
            check: Expect::Sha256(f.sha256.clone()),
        });
    }
    report.vulndb = vuln.as_ref().map(|c| c.modified.clone());
    report.versions = additions.len() as u64;
    report.deletions = deletions.len() as u64;
    report.files = files.len() as u64;
    report.file_bytes = files.iter().map(|f| f.size).sum();
    // Each file takes a 512-byte header (and long names one more block and
    // the name) and is padded to 512 bytes; the stream ends in 1 KiB of zeros.
    let estimate: u64 = files
        .iter()
        .map(|f| {
            let name = if f.key.len() > 100 {
                512 + f.key.len().div_ceil(512) as u64 * 512
            } else {
                0
            };
            512 + name + f.size.div_ceil(512) * 512
        })
        .sum::<u64>()
        + 1024;
    report.part_bytes = estimate.div_ceil(10240) * 10240;
    report.parts = match opts.max_size {
        Some(m) => report.part_bytes.div_ceil(m).max(1),
        None => 1,
    };
    let name = bundle::bundle_name(&settings.mirror_name, sequence, full);
    let dir = std::path::absolute(&opts.dir)
        .map_err(|e| Fatal::context(format!("cannot resolve `{}`", opts.dir.display()), e))?;
    let target = dir.join(&name);
    if dry_run {
        report.bundle = None;
        for v in additions.iter().take(20) {
            out.verbose(&format!("would carry {}@{}", v.path, v.version));
        }
        return Ok(report);
    }

    // The ledger entries of what it carries (private and sumdb.skip modules).
    let carried: Vec<(String, String)> = additions
        .iter()
        .map(|v| (v.path.clone(), v.version.clone()))
        .collect();
    let ledger: Vec<LedgerRecord> = db
        .call(move |s| s.ledger_entries(&carried))
        .await?
        .into_iter()
        .map(|e| LedgerRecord {
            path: e.path,
            version: e.version,
            mod_h1: e.mod_h1,
            zip_h1: e.zip_h1,
        })
        .collect();

    // Write.
    let signer = match &settings.signing_key {
        Some(p) => Some(read_signer(p)?),
        None => None,
    };
    let manifest_base = Manifest {
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
        versions: additions
            .iter()
            .map(|v| BundleVersion {
                path: v.path.clone(),
                version: v.version.clone(),
                zip: v.zip,
            })
            .collect(),
        deletions: deletions
            .iter()
            .map(|(_, e)| Deleted {
                path: e.path.clone(),
                version: e.version.clone(),
            })
            .collect(),
        vulndb: vuln.as_ref().map(|c| VulndbPart {
            modified: c.modified.clone(),
            entries: c.entries,
        }),
        ledger,
        files: Vec::new(),
        parts: Vec::new(),
    };
    let (t, max, head_bytes) = (tree.clone(), opts.max_size, head_note.clone());
    let total = report.file_bytes;
    let display = ExportDisplay { out, total };
    out.start("exporting", Some(files.len() as u64));
    let written = {
        let target = target.clone();
        let name = name.clone();
        let (display, signer) = (&display, signer.as_ref());
        tokio::task::block_in_place(move || {
            write_bundle(
                &*t,
                &dir,
                &name,
                &target,
                max,
                files,
                &head_bytes,
                manifest_base,
                signer,
                &mut |i, b| display.show(i, b),
            )
        })
    };
    out.finish();
    let (manifest, id) = written?;
    report.part_bytes = manifest.part_bytes();
    report.parts = manifest.parts.len() as u64;
    report.signed = settings.signing_key.is_some();
    report.bundle = Some(target.clone());

    let rec = ExportRecord {
        seq: sequence,
        id,
        previous: manifest.previous.clone(),
        full,
        created: report::now(),
        path: target.display().to_string(),
        versions: report.versions,
        deletions: report.deletions,
        bytes: report.part_bytes,
        tree_size: Some(head.n),
    };
    let added: Vec<(i64, String, bool)> = additions
        .iter()
        .map(|v| (v.module_id, v.version.clone(), v.zip))
        .collect();
    let deleted: Vec<(i64, String)> = deletions
        .iter()
        .map(|(m, e)| (*m, e.version.clone()))
        .collect();
    db.call(move |s| s.record_export(&rec, &added, &deleted, &tiles))
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

struct ExportDisplay<'a> {
    out: &'a Reporter,
    total: u64,
}

impl ExportDisplay<'_> {
    fn show(&self, files: u64, bytes: u64) {
        self.out.progress(
            files,
            &format!(
                "files, {} of {}",
                report::bytes(bytes),
                report::bytes(self.total)
            ),
        );
    }
}

/// The files of `additions` (with what they must hash to) and the tiles not
/// carried before (`exported`), in the order they go into the stream:
/// tiles first, then per version lookup, `.zip`, `.mod`, `.info`.
fn plan_files(
    tree: &dyn Store,
    sumdb: &str,
    additions: &[ExportVersion],
    exported: &HashSet<String>,
) -> Result<(Vec<Carried>, Vec<String>), Fatal> {
    let mut files = Vec::new();
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
        files.push(Carried {
            key: entry.key.clone(),
            size: meta.size,
            check: Expect::Nothing,
        });
        tiles.push(entry.key);
    }
    let missing = |key: &str, v: &ExportVersion| {
        Fatal::stopped(format!(
            "{}@{}: {key} is missing from the tree although the state database records it published; run `gomirror verify --repair`, then export again",
            v.path, v.version
        ))
    };
    for v in additions {
        let name_err =
            |e: crate::gomod::ModuleError| Fatal::stopped(format!("{}@{}: {e}", v.path, v.version));
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
            let meta = tree.stat(&key)?.ok_or_else(|| missing(&key, v))?;
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
    }
    Ok((files, tiles))
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

/// Writes the bundle under `dir/.<name>.partial`, checks every file against
/// what it must hash to, signs, makes it durable and renames it to `target`.
/// Returns the manifest and its SHA-256 (the bundle's identity).
#[allow(clippy::too_many_arguments)]
fn write_bundle(
    tree: &dyn Store,
    dir: &Path,
    name: &str,
    target: &Path,
    max: Option<u64>,
    files: Vec<Carried>,
    head_note: &[u8],
    mut manifest: Manifest,
    signer: Option<&note::Signer>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(Manifest, String), Fatal> {
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
        let mut entries = Vec::with_capacity(files.len());
        let mut bytes = 0u64;
        for (i, f) in files.into_iter().enumerate() {
            // On a blocked thread, out of the signal's reach: look between files.
            crate::fatal::stop_if_interrupted()?;
            let mut header = tar::Header::new_gnu();
            header.set_size(f.size);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_entry_type(tar::EntryType::Regular);
            let source: Box<dyn Read> = if f.key.ends_with("/latest") && f.key.starts_with("sumdb/")
            {
                Box::new(io::Cursor::new(head_note.to_vec()))
            } else {
                let file = tree.open(&f.key)?.ok_or_else(|| {
                    Fatal::stopped(format!(
                        "{} vanished from the tree while exporting (is another program changing it?)",
                        f.key
                    ))
                })?;
                Box::new(io::BufReader::with_capacity(1 << 20, file))
            };
            // Exactly the size announced: a file that changed size is caught below.
            let mut reader = bundle::Hashing::new(source.take(f.size));
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
            progress(i as u64 + 1, bytes);
            entries.push(FileEntry {
                path: f.key,
                size: f.size,
                sha256: hex::encode(sha),
            });
        }
        let parts = tar
            .into_inner()
            .map_err(io_err("cannot finish the bundle".into()))?
            .finish()
            .map_err(io_err("cannot finish the bundle's parts".into()))?;
        manifest.files = entries;
        manifest.parts = parts;
        let json = serde_json::to_vec(&manifest).expect("a manifest serializes");
        let id = hex::encode(Sha256::digest(&json));
        write_durably(&partial.join(bundle::MANIFEST), &json)?;
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
        Ok((manifest, id))
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    result
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
