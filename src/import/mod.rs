//! `gomirror import [--dry-run] BUNDLE`: a sync whose only upstream is a
//! bundle that `gomirror export` wrote ([`crate::bundle`]).
//!
//! Nothing the bundle carries is trusted. In order, before anything changes:
//! the manifest is read and checked against itself; its signature, if any,
//! against `import.trusted_keys`; its place in the exporting mirror's
//! sequence against what this mirror imported before (a gap, a replay of an
//! older bundle, another mirror's bundle or a diverged history is refused
//! and the bundle to import first is named); every part's size and SHA-256;
//! the free space; then the parts are unpacked outside the tree (regular
//! files with safe paths only, each of the manifest's size and SHA-256) and
//! the carried tree head is accepted only if it verifies under this mirror's
//! own `sumdb.key` and is consistent with the head it already trusts.
//!
//! Then the unpacked bundle is the upstream of the ordinary pipeline, read
//! through `file://` ([`crate::services::Upstreams::for_bundle`]): the versions are
//! recorded (a full bundle also withdraws what it lacks), each version is
//! fetched from it and verified — its lookup proven included in the tree,
//! both `h1:` against the record — and published in the same order and
//! batches as a sync; `@v/list`, `@latest` and `sumdb/<name>/latest` are
//! written from this mirror's own state, never copied. Deletions go through
//! prune, under `prune.max_delete`. The bundle is recorded as imported last,
//! so a killed import is completed by running it again, and importing a
//! bundle twice is a no-op.

mod checks;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use crate::fatal::Fatal;
use crate::fetch::{self, WorkSource};
use crate::lock::RunLock;
use crate::publish::feed::write_feed;
use crate::publish::lists::rewrite_dirty_lists;
use crate::report::summary::{PruneSummary, SyncReport, TileSummary, TreeSummary, VersionFailure};
use crate::report::trace::write_trace;
use crate::report::{self, Reporter};
use crate::runner;
use crate::services::Services;
use crate::settings::Settings;
use crate::state::db::Db;
use crate::state::{FeedOp, ImportRecord, IndexEntry, VersionState};
use checks::{
    Opened, check_parts, check_parts_present, check_sequence, check_space, open_bundle,
    remove_unpacked, unpack, unpack_dir,
};

/// Flags of `gomirror import`.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    pub bundle: PathBuf,
    pub dry_run: bool,
}

/// What an import did; printed as the summary and stored in the run log.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ImportReport {
    pub bundle: String,
    pub sequence: u64,
    pub mirror: String,
    pub full: bool,
    /// Who signed it, when a trusted key did.
    pub signed_by: Option<String>,
    /// Imported before: nothing was done.
    pub already_imported: bool,
    /// Versions and deletions the bundle carries.
    pub versions: u64,
    pub deletions: u64,
    /// Of its versions, those this mirror wants and lacked.
    pub due: u64,
    pub published: u64,
    /// Versions not imported, each with its reason (exit 1); `failures` in
    /// the run log, as a sync's (the metrics count them).
    #[serde(rename = "failures")]
    pub refused: Vec<VersionFailure>,
    /// How many were refused.
    pub failed: u64,
    /// Versions this mirror had that the bundle withdraws.
    pub withdrawn: u64,
    pub pruned: Option<PruneSummary>,
    /// Size of the bundle's parts.
    pub bytes: u64,
    pub tree_size: i64,
    /// What the tile fill took from the bundle (`sumdb.tiles = "all"`).
    pub tiles: Option<TileSummary>,
    pub tree: Option<TreeSummary>,
    pub fatal: Option<String>,
    #[serde(serialize_with = "crate::report::summary::signal_name")]
    pub interrupted: Option<i32>,
    pub dry_run: bool,
    pub seconds: f64,
}

impl runner::Outcome for ImportReport {
    fn exit_code(&self) -> i32 {
        ImportReport::exit_code(self)
    }
}

impl ImportReport {
    /// 0 imported (or imported before), 1 some versions refused, 2 the
    /// bundle (or the far side) cannot be trusted or used, or prune refused.
    pub fn exit_code(&self) -> i32 {
        if self.fatal.is_some() || self.pruned.as_ref().is_some_and(|p| p.refused) {
            2
        } else if let Some(signal) = self.interrupted {
            crate::interrupt::exit_code(signal)
        } else if !self.refused.is_empty() || self.tiles.as_ref().is_some_and(|t| t.error.is_some())
        {
            1
        } else {
            0
        }
    }

    /// The closing summary (stdout).
    pub fn render(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.sequence == 0 {
            return lines;
        }
        let kind = if self.full { "full" } else { "delta" };
        let signed = self
            .signed_by
            .as_ref()
            .map(|k| format!(", signed by {k}"))
            .unwrap_or_default();
        let which = format!(
            "bundle {} from {} ({kind}{signed})",
            self.sequence, self.mirror
        );
        if self.already_imported {
            lines.push(format!(
                "import: {which} was imported before; nothing to do"
            ));
            return lines;
        }
        if self.dry_run {
            lines.push(format!(
                "import (dry run): {which} checks out: {} versions ({} new here), {} deletions, {}; nothing changed",
                self.versions,
                self.due,
                self.deletions,
                report::bytes(self.bytes)
            ));
            return lines;
        }
        if self.fatal.is_some() || self.interrupted.is_some() {
            lines.push(format!(
                "import: {which}: {} of {} versions published before it stopped; not recorded as imported",
                self.published, self.due
            ));
            return lines;
        }
        lines.push(format!(
            "import: {which}: published {} new versions, {} refused, {} withdrawn ({} carried, {} deletions), {} in {}",
            self.published,
            self.refused.len(),
            self.withdrawn,
            self.versions,
            self.deletions,
            report::bytes(self.bytes),
            report::duration(std::time::Duration::from_secs_f64(self.seconds))
        ));
        for r in &self.refused {
            lines.push(format!(
                "  refused {}@{}: {}{}",
                r.module,
                r.version,
                if r.security { "SECURITY: " } else { "" },
                r.error
            ));
        }
        if let Some(p) = &self.pruned {
            lines.push(p.render_line());
        }
        if let Some(t) = &self.tree {
            lines.push(format!(
                "tree: {} now holds {} versions ({}); checksum database tree of {} records{}",
                t.store,
                t.versions,
                report::bytes(t.bytes),
                self.tree_size,
                self.tiles
                    .as_ref()
                    .map(TileSummary::render_suffix)
                    .unwrap_or_default()
            ));
        }
        if let Some(t) = &self.tiles {
            if let Some(stopped) = &t.stopped {
                lines.push(format!(
                    "tiles: {stopped}; a later bundle carries them once the connected side has them"
                ));
            }
            if let Some(e) = &t.error {
                lines.push(format!(
                    "tiles: error: {e}; the versions were imported, a later bundle completes the tiles"
                ));
            }
        }
        lines
    }

    /// What goes to stderr: the error that stopped the import.
    pub fn render_errors(&self) -> Vec<String> {
        crate::report::summary::error_lines(
            self.fatal.as_deref(),
            self.interrupted,
            "import the same bundle again to complete it",
        )
    }
}

/// Runs `gomirror import` under the lock (taken by the caller).
pub fn run(
    settings: &Settings,
    opts: &ImportOptions,
    out: &Reporter,
    _lock: &RunLock,
) -> ImportReport {
    let started = Instant::now();
    let mut report = ImportReport {
        bundle: opts.bundle.display().to_string(),
        dry_run: opts.dry_run,
        ..ImportReport::default()
    };
    if opts.dry_run {
        let outcome = runner::run_preview(settings, async |db, _| {
            preview(settings, opts, out, &mut report, db).await
        });
        out.finish();
        if let Err(e) = outcome {
            report.fatal = Some(e.render());
        }
        report.seconds = started.elapsed().as_secs_f64();
        return report;
    }
    let base = report.clone();
    let result = runner::run_command(settings, "import", async |svc| {
        let mut r = base.clone();
        let outcome = import(settings, opts, out, &mut r, svc).await;
        out.finish();
        tokio::task::block_in_place(|| remove_unpacked(settings));
        match outcome {
            Ok(()) => {}
            Err(Fatal::Interrupted { signal, .. }) => r.interrupted = Some(signal),
            Err(e) => r.fatal = Some(e.render()),
        }
        r.failed = r.refused.len() as u64;
        r.seconds = started.elapsed().as_secs_f64();
        Ok(r)
    });
    match result {
        Ok(r) => r,
        Err(e) => {
            remove_unpacked(settings);
            match e {
                Fatal::Interrupted { signal, .. } => report.interrupted = Some(signal),
                e => report.fatal = Some(e.render()),
            }
            report.seconds = started.elapsed().as_secs_f64();
            report
        }
    }
}

/// Opens, checks the sequence and the parts; shared by import and its dry run.
async fn open_and_check(
    settings: &Settings,
    opts: &ImportOptions,
    out: &Reporter,
    report: &mut ImportReport,
    db: &Db,
) -> Result<(Opened, Option<ImportRecord>), Fatal> {
    let (s, path) = (settings.clone(), opts.bundle.clone());
    let b = tokio::task::spawn_blocking(move || open_bundle(&s, &path))
        .await
        .map_err(|e| Fatal::crashed("reading the bundle", e))??;
    report.bundle = b.dir.display().to_string();
    report.sequence = b.manifest.sequence;
    report.mirror = b.manifest.mirror.name.clone();
    report.full = b.manifest.full;
    report.signed_by = b.signed_by.clone();
    report.versions = b.manifest.versions.len() as u64;
    report.deletions = b.manifest.deletions.len() as u64;
    report.bytes = b.manifest.part_bytes();
    report.tree_size = b.manifest.sumdb.tree_size;
    let id = b.id.clone();
    let (position, before) = db
        .call(move |s| Ok((s.import_position()?, s.imported(&id)?)))
        .await?;
    let before = check_sequence(&b, position, before)?;
    if before.is_some() {
        return Ok((b, before));
    }
    // Every part is there, of its size; the import checks their hashes as
    // it unpacks them (one pass over the medium), a dry run reads them now.
    check_parts_present(&b)?;
    if opts.dry_run {
        let t = Instant::now();
        tokio::task::block_in_place(|| check_parts(&b, out))?;
        out.verbose(&format!(
            "checked {} parts ({}) in {}",
            b.manifest.parts.len(),
            report::bytes(b.manifest.part_bytes()),
            report::duration(t.elapsed())
        ));
    }
    Ok((b, None))
}

async fn preview(
    settings: &Settings,
    opts: &ImportOptions,
    out: &Reporter,
    report: &mut ImportReport,
    db: &Db,
) -> Result<(), Fatal> {
    let (b, before) = open_and_check(settings, opts, out, report, db).await?;
    if before.is_some() {
        report.already_imported = true;
        return Ok(());
    }
    let entries: Vec<IndexEntry> = b
        .manifest
        .versions
        .iter()
        .map(|v| entry(&v.path, &v.version))
        .collect();
    let known = db.call(move |s| s.known_versions(&entries)).await?;
    let filter = settings.filter.clone();
    report.due = b
        .manifest
        .versions
        .iter()
        .zip(known)
        .filter(|(v, known)| !known && filter.wants(&v.path))
        .count() as u64;
    Ok(())
}

async fn import(
    settings: &Settings,
    opts: &ImportOptions,
    out: &Reporter,
    report: &mut ImportReport,
    svc: &Services,
) -> Result<(), Fatal> {
    let (db, tree) = (&svc.db, &svc.tree);
    let (b, before) = open_and_check(settings, opts, out, report, db).await?;
    if before.is_some() {
        // A run killed after recording the import may not have finished it.
        report.already_imported = true;
        report.tree = Some(finish(settings, svc, 0, &b.manifest.created).await?);
        return Ok(());
    }
    let n = tree.clean_staging().map_err(Fatal::from)?;
    if n > 0 {
        out.verbose(&format!(
            "removed {n} temporary files left by an earlier run"
        ));
    }
    // What a killed import left unpacked counts against the free space.
    tokio::task::block_in_place(|| remove_unpacked(settings));
    check_space(settings, &b)?;
    let dest = unpack_dir(settings);
    let t = Instant::now();
    let b = tokio::task::block_in_place(|| unpack(&b, &dest, out).map(|()| b))?;
    out.verbose(&format!(
        "checked {} parts and unpacked {} files ({}) in {}",
        b.manifest.parts.len(),
        b.manifest.files.len(),
        report::bytes(b.manifest.file_bytes()),
        report::duration(t.elapsed())
    ));
    crate::fatal::stop_if_interrupted()?;

    // The carried tree head: signed by this mirror's key, consistent with
    // the head it trusts. Nothing has changed before this point.
    let from_bundle = svc.with_upstreams(svc.upstreams.for_bundle(settings, &dest)?);
    // The unpacked files are this import's own (removed at its end): the
    // fetch pass takes them by hard link rather than copying them again.
    from_bundle
        .upstreams
        .http
        .lend_files_under(Some(dest.clone()));
    let head = from_bundle.refresh_log(settings).await?;
    report.tree_size = head.tree.n;
    // The tiles the bundle carries, proven against that head (`sumdb.tiles`).
    report.tiles = crate::tiles::fill_configured(settings, &from_bundle, false, out).await?;
    // The vulnerability database it carries, checked like any upstream's.
    if let Some(v) = &b.manifest.vulndb {
        let from = format!(
            "bundle {} from {}",
            b.manifest.sequence, b.manifest.mirror.name
        );
        crate::vuln::import_stage(
            &from_bundle.upstreams.http,
            tree,
            db,
            &dest,
            &v.modified,
            &from,
            out,
        )
        .await?;
    }

    // The versions, and what the bundle withdraws.
    let filter = settings.filter.clone();
    let fingerprint = filter.fingerprint();
    let f = filter.clone();
    db.call(move |s| s.apply_filter(&fingerprint, &|p| f.wants(p)))
        .await?;
    // This side's own takedowns apply to what a bundle carries too (its
    // cooldown does not: the bundle's bytes will not be there later).
    crate::plan::apply_policy(settings, db, &mut Default::default()).await?;
    let publications: Vec<(FeedOp, IndexEntry)> = b
        .manifest
        .versions
        .iter()
        .map(|v| (FeedOp::Publish, entry(&v.path, &v.version)))
        .collect();
    let stats = if b.manifest.full {
        db.call(|s| s.snapshot_begin()).await?;
        for page in publications.chunks(1000) {
            let page = page.to_vec();
            db.call(move |s| s.snapshot_apply(&page)).await?;
        }
        let f = filter.clone();
        db.call(move |s| s.bundle_snapshot_finish(&|p| f.wants(p)))
            .await?
    } else {
        let mut changes = publications;
        changes.extend(
            b.manifest
                .deletions
                .iter()
                .map(|d| (FeedOp::Delete, entry(&d.path, &d.version))),
        );
        let f = filter.clone();
        db.call(move |s| s.record_bundle_changes(&changes, &|p| f.wants(p)))
            .await?
    };
    report.withdrawn = stats.withdrawn;

    let asked: Vec<(IndexEntry, bool)> = b
        .manifest
        .versions
        .iter()
        .map(|v| (entry(&v.path, &v.version), v.zip))
        .collect();
    let todos = db.call(move |s| s.bundle_todos(&asked)).await?;
    report.due = todos.len() as u64;

    // Private modules have no checksum database to vouch for them: only a
    // bundle signed by a trusted key brings them.
    let (private, todos): (Vec<_>, Vec<_>) = todos
        .into_iter()
        .partition(|t| settings.sumdb.skips(&t.path) && b.signed_by.is_none());
    for t in private {
        let why = if settings.trusted_keys.is_empty() {
            "a module in sumdb.skip (no checksum database vouches for it) comes only in a bundle signed by a key in import.trusted_keys, and none is configured"
        } else {
            "a module in sumdb.skip (no checksum database vouches for it) comes only in a bundle signed by a key in import.trusted_keys; this bundle is not"
        };
        let (mid, ver, msg) = (t.module_id, t.version.clone(), why.to_string());
        db.call(move |s| s.mark_failed(mid, &ver, &msg, report::now()))
            .await?;
        report.refused.push(VersionFailure {
            module: t.path,
            version: t.version,
            error: why.to_string(),
            security: false,
        });
    }

    // A signed bundle's ledger entries: recorded where this mirror has
    // none; a version whose entry differs from this mirror's is refused
    // (another content under the same version), whatever it carries.
    let mut todos = todos;
    if b.signed_by.is_some() && !b.manifest.ledger.is_empty() {
        let source = format!(
            "bundle {} of {}",
            b.manifest.sequence, b.manifest.mirror.name
        );
        let entries = b.manifest.ledger.clone();
        let moved = db
            .call(move |s| {
                let now = report::now();
                let mut moved = Vec::new();
                for e in &entries {
                    let found = s.ledger_check(
                        &e.path,
                        &e.version,
                        &e.mod_h1,
                        e.zip_h1.as_deref(),
                        &source,
                        now,
                    )?;
                    if let crate::state::LedgerCheck::Differs(first) = found {
                        let why =
                            crate::private::ledger::refusal(&first, &e.mod_h1, e.zip_h1.as_deref());
                        moved.push((e.path.clone(), e.version.clone(), why));
                    }
                }
                Ok(moved)
            })
            .await?;
        for (path, version, why) in moved {
            if let Some(i) = todos
                .iter()
                .position(|t| t.path == path && t.version == version)
            {
                let t = todos.remove(i);
                let (mid, ver, msg) = (t.module_id, t.version.clone(), why.clone());
                db.call(move |s| s.mark_failed(mid, &ver, &msg, report::now()))
                    .await?;
            }
            report.refused.push(VersionFailure {
                module: path,
                version,
                error: why,
                security: true,
            });
        }
    }

    let mut pass = SyncReport::default();
    let t = Instant::now();
    if !todos.is_empty() {
        let due = todos.len() as u64;
        let work = WorkSource::List(todos.clone());
        fetch::pass(settings, &from_bundle, work, due, out, &mut pass).await?;
    }
    out.verbose(&format!(
        "verified and published {} versions in {}",
        pass.published,
        report::duration(t.elapsed())
    ));
    report.published = pass.published;
    let failed: HashSet<(String, String)> = pass
        .failures
        .iter()
        .map(|f| (f.module.clone(), f.version.clone()))
        .collect();
    report.refused.extend(pass.failures);
    // What was due and neither published nor failed was not in the bundle
    // (its lookup or a file answered "not found").
    let check: Vec<(i64, String, String)> = todos
        .iter()
        .filter(|t| !failed.contains(&(t.path.clone(), t.version.clone())))
        .map(|t| (t.module_id, t.path.clone(), t.version.clone()))
        .collect();
    let states = db
        .call(move |s| {
            check
                .into_iter()
                .map(|(m, p, v)| Ok((p, v.clone(), s.version_state(m, &v)?)))
                .collect::<Result<Vec<_>, crate::state::StateError>>()
        })
        .await?;
    for (p, v, st) in states {
        let error = match st {
            Some(VersionState::Published | VersionState::GraphOnly) => continue,
            Some(VersionState::Denied) => "denied by this mirror's policy.deny: not published".into(),
            _ => "the bundle does not carry all of it (its checksum-database lookup or a file is missing)".into(),
        };
        report.refused.push(VersionFailure {
            module: p,
            version: v,
            error,
            security: false,
        });
    }
    crate::fatal::stop_if_interrupted()?;

    // Deletions, under the same cap as prune.
    if settings.prune.enabled {
        let summary = crate::prune::run_with_db(settings, db, tree, out, false, false).await?;
        let refused = summary.refused;
        report.pruned = Some(summary);
        if refused {
            return Ok(());
        }
    }
    let rec = ImportRecord {
        id: b.id.clone(),
        seq: b.manifest.sequence,
        mirror_id: b.manifest.mirror.id.clone(),
        mirror_name: b.manifest.mirror.name.clone(),
        full: b.manifest.full,
        imported: report::now(),
        versions: report.published,
        deletions: report.withdrawn,
        refused: report.refused.len() as u64,
    };
    db.call(move |s| s.record_import(&rec)).await?;
    report.tree = Some(finish(settings, svc, report.published, &b.manifest.created).await?);
    Ok(())
}

/// A version the manifest names, as the state database takes it.
fn entry(path: &str, version: &str) -> IndexEntry {
    IndexEntry {
        path: path.to_string(),
        version: version.to_string(),
        listed_at: None,
    }
}

/// The end of an import, recorded or found recorded (a run killed after
/// its commit runs it again; every step is idempotent): the lists and feed
/// entries a killed batch left unwritten, `sumdb/<name>/latest` for the
/// largest head served (it moved with the versions published, with the
/// tiles that prove it), the pages (which say the bundle was `created`
/// then), then the trace. Returns what the tree holds.
async fn finish(
    settings: &Settings,
    svc: &Services,
    published: u64,
    created: &str,
) -> Result<TreeSummary, Fatal> {
    rewrite_dirty_lists(&svc.db, &svc.tree).await?;
    write_feed(settings, &svc.db, &svc.tree).await?;
    svc.restore_served_head(settings).await?;
    let run = crate::site::RunFacts {
        command: "import",
        published,
        upstream_as_of: Some(created.to_string()),
    };
    crate::site::write_site(settings, &svc.db, &svc.tree, run).await?;
    write_trace(settings, &svc.db, &svc.tree, published).await
}
