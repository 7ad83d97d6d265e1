//! Pruning, like `rsync --delete`: remove what the mirror should no longer hold.
//!
//! The deletion set is computed, never guessed:
//!
//! * from the state database: versions in the tree whose module the filter no
//!   longer wants, and versions the upstream now answers 404/410 for (the sync
//!   rechecks published versions at `prune.recheck_interval`);
//! * from the tree: strays — files and directories under the output root that
//!   the database does not account for (a file dropped in by hand, a module
//!   directory nobody asked for, a symbolic link). Symbolic links are never
//!   followed; a link is itself the stray, its target is left alone.
//!
//! Execution is the reverse of publishing: the database stops listing the
//! versions, `@v/list` and `@latest` are rewritten, and only then are files
//! deleted. A deletion set larger than `prune.max_delete` is refused and
//! nothing changes, unless forced. Checksum-database tiles are kept (they are
//! shared by every version); lookups of deleted versions go with them.

pub mod recheck;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

pub use crate::report::summary::PruneSummary;

use crate::fatal::Fatal;
use crate::publish::lists::rewrite_dirty_lists;
use crate::report::Reporter;
use crate::runner;
use crate::settings::Settings;
use crate::state::db::Db;
use crate::state::{Cycle, DeletionReason, State, StateError};
use crate::store::layout::{self, Key, VersionExt};
use crate::store::{EntryKind, Store};

/// A version to delete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Doomed {
    pub module_id: i64,
    pub module: String,
    pub version: String,
    pub reason: &'static str,
    /// Only the zip goes: the version stays, graph-only (`.info` and `.mod`).
    pub zip_only: bool,
    /// In the set only because it was no longer wanted for `prune.keep`.
    pub aged: bool,
    /// `policy.deny` covers it.
    pub denied: bool,
}

/// Versions deleted per step: each page is unlisted, its modules' indexes
/// rewritten, its files deleted and recorded, before the next is read, so
/// memory stays bounded however large the deletion set (invariant 8).
const PAGE: usize = 1000;

/// What to delete. The versions themselves are read page by page from the
/// state database when they are printed or deleted; the plan counts them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrunePlan {
    /// Versions in the deletion set.
    pub versions: u64,
    /// Tree-relative paths of stray files and symlinks.
    pub stray_files: Vec<String>,
    /// Tree-relative paths of stray directories (removed with their content).
    pub stray_dirs: Vec<String>,
    /// Versions in the tree before pruning.
    pub total_versions: u64,
    /// Of `versions`, those that lose only their zip (they stay, graph-only).
    pub zip_only: u64,
    /// Of `versions`, those there only because they aged out of `prune.keep`.
    pub aged: u64,
    /// Where the stray pass stands after this plan's slice (saved once the
    /// plan is carried out); `None` when the tree was not scanned.
    pub strays: Option<Cycle>,
}

/// How much of the tree a prune scans for strays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scan {
    /// The next slice of a pass that covers the whole tree once per
    /// `prune.scan_interval` (a sync, an import).
    Slice,
    /// All of it (`gomirror prune`).
    Whole,
}

/// The stray pass's name in the state database ([`Cycle`]).
const STRAYS: &str = "strays";

impl PrunePlan {
    /// The size compared with `prune.max_delete`: versions plus stray entries.
    pub fn size(&self) -> u64 {
        self.versions + (self.stray_files.len() + self.stray_dirs.len()) as u64
    }
}

/// Computes the deletion set; what is no longer wanted since after
/// `cutoff` is kept (`prune.keep`). Runs on the state thread: database queries and
/// a directory walk that never follows links.
///
/// The deletion set comes from small indexes kept by triggers (the modules
/// with a version to delete), so its cost follows what is deleted, not the
/// tree. Strays are looked for in a slice of the tree ([`Scan::Slice`]: the
/// entries that keep a pass over the whole tree on schedule, from where the
/// last one stopped) or in all of it ([`Scan::Whole`]).
pub fn plan(
    state: &State,
    tree: &dyn Store,
    sumdb_name: &str,
    trace_key: &str,
    scan: Option<(Scan, Duration)>,
    now: i64,
    cutoff: i64,
) -> Result<PrunePlan, String> {
    let mut plan = PrunePlan {
        total_versions: state.in_tree_count().map_err(|e| e.to_string())?,
        ..PrunePlan::default()
    };
    plan.versions = state.deletion_count_at(cutoff).map_err(|e| e.to_string())?;
    plan.zip_only = state
        .zip_only_deletion_count_at(cutoff)
        .map_err(|e| e.to_string())?;
    plan.aged = state
        .aged_deletion_count(cutoff)
        .map_err(|e| e.to_string())?;
    let Some((scan, interval)) = scan else {
        return Ok(plan);
    };
    let mut cycle = state.cycle(STRAYS).map_err(|e| e.to_string())?;
    let (listing, budget) = match scan {
        Scan::Whole => {
            cycle = Cycle {
                last_total: cycle.last_total,
                ..Cycle::default()
            };
            (tree.list(""), u64::MAX)
        }
        Scan::Slice => {
            // Entries in the tree: what the last whole pass counted, or, before
            // one has ended, about five per version (its files and lookup,
            // the module's indexes and directories).
            let total = if cycle.last_total > 0 {
                cycle.last_total
            } else {
                plan.total_versions * 5 + 100
            };
            let period = i64::try_from(interval.as_secs()).unwrap_or(i64::MAX);
            if period == 0 {
                // The whole tree on every sync.
                cycle.after = None;
            }
            let due = cycle.due(total, period, now, SLICE_FIRST_GAP, SLICE_MAX_GAP);
            let listing = match &cycle.after {
                Some((_, after)) => tree.list_after("", after),
                None => tree.list(""),
            };
            let min = crate::env::test::slice_min().unwrap_or(SLICE_MIN);
            (listing, due.max(min))
        }
    };
    let (seen, last, ended) =
        find_strays(state, listing, budget, sumdb_name, trace_key, &mut plan)?;
    cycle.advance(seen, last.map(|k| (0, k)), now);
    if ended {
        cycle.wrap(now);
    }
    plan.strays = Some(cycle);
    Ok(plan)
}

/// A stray pass that never ran counts as begun this long ago (a sync's
/// usual interval), and a run after a long pause scans at most this long's
/// worth: the pass then ends late instead of one sync walking it all.
const SLICE_FIRST_GAP: i64 = 300;
const SLICE_MAX_GAP: i64 = 3600;
/// Entries a slice scans at least: a tree of up to this many entries (a
/// mirror of a couple of hundred versions) is scanned whole on every sync,
/// as before the scan was spread over runs.
const SLICE_MIN: u64 = 1000;

/// The next page of the deletion set after `after` (`cutoff`: `prune.keep`'s).
fn doomed_page(
    state: &State,
    after: Option<&(String, String)>,
    cutoff: i64,
) -> Result<Vec<Doomed>, StateError> {
    let page =
        state.deletion_page_at(after.map(|(m, v)| (m.as_str(), v.as_str())), PAGE, cutoff)?;
    Ok(page
        .into_iter()
        .map(|c| Doomed {
            module_id: c.module_id,
            module: c.module,
            version: c.version,
            reason: match c.reason {
                DeletionReason::Unwanted => "no longer wanted by the filter",
                DeletionReason::Gone => "removed from the upstream",
                DeletionReason::ZipOnly => "zip only: from_files now names it for its go.mod alone",
                DeletionReason::Denied => "denied by policy.deny",
            },
            zip_only: c.reason == DeletionReason::ZipOnly,
            aged: c.aged,
            denied: c.reason == DeletionReason::Denied,
        })
        .collect())
}

/// How many versions that aged out of `prune.keep` one run deletes: what
/// `prune.max_delete` leaves after everything else (`None`: no limit). The
/// rest wait for later runs instead of refusing the prune, so that an
/// application upgrade (its old go.sum versions all aging out together)
/// never makes every sync exit 2; the retention period itself is the guard
/// against an accident such as an emptied go.sum.
struct AgedBudget {
    left: Option<u64>,
    /// Aged-out versions left for a later run.
    deferred: u64,
}

impl AgedBudget {
    /// Whether `d` is deleted by this run (taking from the budget).
    fn take(&mut self, d: &Doomed) -> bool {
        match (&mut self.left, d.aged) {
            (_, false) | (None, true) => true,
            (Some(0), true) => {
                self.deferred += 1;
                false
            }
            (Some(n), true) => {
                *n -= 1;
                true
            }
        }
    }
}

/// Walks `listing` (the tree, or its next slice) for at most `budget`
/// entries; every entry the database does not account for is a stray. Each
/// file is classified by [`Key::parse`] (the one parser of the tree's
/// names), then asked of the database where that kind of file depends on
/// it. Returns how many entries were read, the position of the last one
/// ([`crate::store::Entry::position`]) and whether the listing ended.
///
/// Memory stays bounded whatever the mirror size: each file found is checked
/// against the database with an indexed query, and only the module being
/// walked is remembered (the walk is sorted, so a module's files are adjacent).
fn find_strays(
    state: &State,
    listing: crate::store::Listing<'_>,
    budget: u64,
    sumdb_name: &str,
    trace_key: &str,
    plan: &mut PrunePlan,
) -> Result<(u64, Option<String>, bool), String> {
    let mut current: Option<(String, Option<KnownModule>)> = None;
    let mut known = |module: &str| -> Result<Option<KnownModule>, String> {
        match &current {
            Some((m, k)) if m == module => Ok(*k),
            _ => {
                let k = known_module(state, module)?;
                current = Some((module.to_string(), k));
                Ok(k)
            }
        }
    };
    // A stray directory goes as a whole: its content (listed right after it) is skipped.
    let mut skipping: Option<String> = None;
    let (mut seen, mut last) = (0u64, None);
    let mut listing = listing;
    loop {
        if seen >= budget {
            return Ok((seen, last, false));
        }
        let Some(entry) = listing.next() else {
            return Ok((seen, last, true));
        };
        let entry = entry.map_err(|e| format!("cannot walk the tree: {e}"))?;
        seen += 1;
        last = Some(entry.position());
        if let Some(dir) = &skipping {
            if entry.key.starts_with(dir.as_str()) {
                continue;
            }
            skipping = None;
        }
        let rel = entry.key;
        match entry.kind {
            EntryKind::Link | EntryKind::Other => {
                plan.stray_files.push(rel);
                continue;
            }
            EntryKind::Dir => {
                // Directories are judged by what they hold; a directory that cannot
                // be part of the layout is a stray as a whole.
                if !layout::is_layout_dir(&rel, sumdb_name) {
                    skipping = Some(format!("{rel}/"));
                    plan.stray_dirs.push(rel);
                }
                continue;
            }
            EntryKind::File => {}
        }
        let db_err = |e: StateError| e.to_string();
        let expected = match Key::parse(&rel) {
            None => false,
            // This mirror's trace file; a trace under another name
            // (mirror.name changed) is a stray.
            Some(Key::Trace { .. }) => rel == trace_key,
            // Which segments are current is the feed writer's business:
            // compaction deletes the old ones.
            Some(Key::Feed(_)) => true,
            // Tiles are shared by every version: any well-formed tile of
            // this mirror's database stays.
            Some(Key::SumdbSupported { db } | Key::SumdbLatest { db } | Key::Tile { db, .. }) => {
                db == sumdb_name
            }
            Some(Key::Lookup {
                db,
                module,
                version,
            }) => db == sumdb_name && state.lookup_in_tree(&module, &version).map_err(db_err)?,
            Some(Key::List { module } | Key::Latest { module }) => {
                known(&module)?.is_some_and(|m| m.listed)
            }
            Some(Key::Version {
                module,
                version,
                ext,
            }) => match known(&module)? {
                None => false,
                // A graph-only version's zip does not belong.
                Some(m) if ext == VersionExt::Zip => {
                    state.zip_in_tree(m.id, &version).map_err(db_err)?
                }
                Some(m) => state.version_in_tree(m.id, &version).map_err(db_err)?,
            },
            // The vulnerability database's indexes while one is held, its
            // entries while the state database holds them.
            Some(Key::Vuln(file)) => crate::vuln::tree_file_expected(state, &file)?,
            // The mirror's pages: a module's while it has one, a shard's
            // listing while the shard is there, the fixed files always.
            Some(Key::Site(file)) => crate::site::tree_file_expected(state, &file)?,
        };
        if !expected {
            plan.stray_files.push(rel);
        }
    }
}

/// A module directory the database knows.
#[derive(Clone, Copy, Debug)]
struct KnownModule {
    id: i64,
    /// Whether it has a published version in the tree (so `@v/list` and `@latest` belong).
    listed: bool,
}

/// The module an escaped directory names, if the database knows it.
fn known_module(state: &State, module: &str) -> Result<Option<KnownModule>, String> {
    let Some((id, _)) = state.module(module).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    // Lists of a module whose versions are all gone now (withdrawn, or 404
    // past the grace period) still name them: prune rewrites them when it
    // unlists those versions, so they are not strays to count and delete.
    let listed = state
        .module_has_listed_version(id)
        .and_then(|l| Ok(l || state.module_has_gone_in_tree(id)?))
        .map_err(|e| format!("cannot read versions of {module}: {e}"))?;
    Ok(Some(KnownModule { id, listed }))
}

/// `gomirror prune`: plans and carries out a prune from the state database
/// and the tree alone (no network), under the caller's lock.
pub fn run_command(
    settings: &Settings,
    dry_run: bool,
    force: bool,
    out: &Reporter,
    _lock: &crate::lock::RunLock,
) -> Result<PruneSummary, Fatal> {
    runner::run_command(settings, "prune", async |svc| {
        // Apply the configured filter first, so a narrowed filter is seen.
        let filter = settings.filter.clone();
        let fingerprint = filter.fingerprint();
        svc.db
            .call(move |s| s.apply_filter(&fingerprint, &|p| filter.wants(p)))
            .await?;
        // And the policy, so a new takedown is seen.
        crate::plan::apply_policy(settings, &svc.db, &mut Default::default()).await?;
        let summary = run_scoped(
            settings,
            &svc.db,
            &svc.tree,
            out,
            dry_run,
            force,
            Scan::Whole,
        )
        .await?;
        // Versions deleted: their modules' pages say so now, not at the next
        // sync; and pages an interrupted run left marked are written too.
        if !dry_run
            && !summary.refused
            && (summary.versions > 0 || svc.db.call(|s| s.site_pending()).await?)
        {
            let run = crate::site::RunFacts {
                command: "prune",
                published: 0,
                upstream_as_of: None,
            };
            crate::site::write_site(settings, &svc.db, &svc.tree, run).await?;
        }
        Ok(summary)
    })
}

impl runner::Outcome for PruneSummary {
    fn exit_code(&self) -> i32 {
        if self.refused { 2 } else { 0 }
    }
}

/// How many deletions a refusal names.
const REFUSAL_SAMPLE: usize = 5;

/// Plans and (unless `dry_run`) carries out a prune, under the caller's
/// lock, scanning the next slice of the tree for strays (a sync, an import).
pub async fn run_with_db(
    settings: &Settings,
    db: &Db,
    tree: &Arc<dyn Store>,
    out: &Reporter,
    dry_run: bool,
    force: bool,
) -> Result<PruneSummary, Fatal> {
    run_scoped(settings, db, tree, out, dry_run, force, Scan::Slice).await
}

/// [`run_with_db`], scanning `scan` of the tree for strays.
async fn run_scoped(
    settings: &Settings,
    db: &Db,
    tree: &Arc<dyn Store>,
    out: &Reporter,
    dry_run: bool,
    force: bool,
    scan: Scan,
) -> Result<PruneSummary, Fatal> {
    let name = settings.sumdb.name.clone();
    let trace = crate::report::trace::key(&settings.mirror_name);
    let scan = settings
        .prune
        .scan_tree
        .then_some((scan, settings.prune.scan_interval));
    let t = tree.clone();
    let now = crate::report::now();
    let cutoff = settings.prune.keep_cutoff(now);
    let mut plan = db
        .call(move |s| Ok(plan(s, &*t, &name, &trace, scan, now, cutoff)))
        .await?
        .map_err(|e| Fatal::context("cannot plan the prune", e))?;
    // The stray pass moves on only once its slice was acted on: a refused
    // prune finds the same strays next time.
    let strays = plan.strays.take();
    let save_strays = async |db: &Db| -> Result<(), Fatal> {
        if let Some(c) = strays.clone()
            && !dry_run
        {
            db.call(move |s| s.save_cycle(STRAYS, &c)).await?;
        }
        Ok(())
    };
    let limit = settings.prune.max_delete.limit(plan.total_versions);
    // With `prune.keep`, what aged out is spread over runs under the cap
    // rather than counted against it.
    let aged = if settings.prune.keep.is_zero() {
        0
    } else {
        plan.aged
    };
    let counted = plan.size() - aged;
    let mut budget = AgedBudget {
        left: (!force && aged > 0).then(|| limit.saturating_sub(counted)),
        deferred: 0,
    };
    let mut summary = PruneSummary {
        versions: plan.versions,
        aged,
        stray_files: plan.stray_files.len() as u64,
        stray_dirs: plan.stray_dirs.len() as u64,
        limit,
        refused: false,
        dry_run,
        files_deleted: 0,
        sample: Vec::new(),
        ..PruneSummary::default()
    };
    if plan.size() == 0 {
        save_strays(db).await?;
        return Ok(summary);
    }
    // A version that only loses its zip stays in the mirror.
    let empties_mirror = plan.total_versions > 0
        && plan.versions.saturating_sub(plan.zip_only) >= plan.total_versions;
    if dry_run {
        // The whole deletion set, a page at a time: it is what was asked for.
        let mut after: Option<(String, String)> = None;
        loop {
            let a = after.clone();
            let page = db.call(move |s| doomed_page(s, a.as_ref(), cutoff)).await?;
            let Some(last) = page.last() else { break };
            after = Some((last.module.clone(), last.version.clone()));
            for d in &page {
                if !budget.take(d) {
                    crate::report::outln(format_args!(
                        "keep {}@{} (aged out of prune.keep; a later run deletes it: prune.max_delete)",
                        d.module, d.version
                    ));
                    continue;
                }
                if d.denied {
                    summary.note_denied(&d.module, &d.version);
                }
                crate::report::outln(format_args!(
                    "delete {}@{} ({})",
                    d.module, d.version, d.reason
                ));
            }
        }
        summary.deferred = budget.deferred;
        summary.versions -= budget.deferred;
        summary.aged -= budget.deferred;
        for f in &plan.stray_files {
            crate::report::outln(format_args!("delete stray file {}", crate::shown::text(f)));
        }
        for d in &plan.stray_dirs {
            crate::report::outln(format_args!(
                "delete stray directory {}/",
                crate::shown::text(d)
            ));
        }
        return Ok(summary);
    }
    if !force && (counted > limit || empties_mirror) {
        // A refusal repeats on every run until someone acts: a few lines
        // (the counts, the first names, what to run), never the whole set.
        summary.refused = true;
        let first = db.call(move |s| doomed_page(s, None, cutoff)).await?;
        let denied = db
            .call(|s| s.denied_versions(crate::report::summary::DENIED_SAMPLE))
            .await?;
        summary.denied_sample = denied
            .into_iter()
            .filter(|d| d.in_tree)
            .map(|d| format!("{}@{}", d.module, d.version))
            .collect();
        summary.denied = summary.denied_sample.len() as u64;
        summary.sample = first
            .iter()
            .map(|d| format!("{}@{}", d.module, d.version))
            .chain(plan.stray_files.iter().map(|f| format!("stray file {f}")))
            .chain(
                plan.stray_dirs
                    .iter()
                    .map(|d| format!("stray directory {d}/")),
            )
            .take(REFUSAL_SAMPLE)
            .collect();
        let mut lines = summary.render_refusal().into_iter();
        if let Some(first) = lines.next() {
            out.error(&first);
        }
        for line in lines {
            crate::report::errln(line);
        }
        return Ok(summary);
    }
    summary.files_deleted = execute(
        settings,
        db,
        tree,
        out,
        plan,
        cutoff,
        &mut budget,
        &mut summary,
    )
    .await?;
    summary.deferred = budget.deferred;
    summary.versions -= budget.deferred;
    summary.aged -= budget.deferred;
    save_strays(db).await?;
    Ok(summary)
}

#[allow(clippy::too_many_arguments)]
async fn execute(
    settings: &Settings,
    db: &Db,
    tree: &Arc<dyn Store>,
    out: &Reporter,
    plan: PrunePlan,
    cutoff: i64,
    budget: &mut AgedBudget,
    summary: &mut PruneSummary,
) -> Result<u64, Fatal> {
    let fatal = Fatal::from;
    // 1. Strays go first: a stray link where a directory belongs is removed
    //    itself, so the index rewrite and the deletions below never meet it
    //    (the tree refuses to work through a link; its target is never touched).
    let t = tree.clone();
    let (stray_files, stray_dirs) = (plan.stray_files, plan.stray_dirs);
    let mut removal = tokio::task::spawn_blocking(move || {
        let mut r = Removal::default();
        for f in &stray_files {
            match t.delete(f) {
                Ok(true) => r.deleted += 1,
                Ok(false) => {}
                Err(e) => r.note_error(e.to_string()),
            }
            if let Some((dir, _)) = f.rsplit_once('/') {
                r.dirs.push(dir.to_string());
            }
        }
        for d in &stray_dirs {
            match t.delete_tree(d) {
                Ok(true) => r.deleted += 1,
                Ok(false) => {}
                Err(e) => r.note_error(e.to_string()),
            }
            if let Some((dir, _)) = d.rsplit_once('/') {
                r.dirs.push(dir.to_string());
            }
        }
        r
    })
    .await
    .map_err(|e| Fatal::crashed("prune", e))?;

    // 2. Then the versions, a page at a time: the database stops listing
    //    them, their modules' indexes are rewritten before any of their files
    //    go, the files go version by version, and only a version whose files
    //    are all gone is recorded as out of the tree (the others are retried
    //    next time, and are past this run's page cursor).
    let name = settings.sumdb.name.clone();
    let mut after: Option<(String, String)> = None;
    loop {
        let a = after.clone();
        let page = db.call(move |s| doomed_page(s, a.as_ref(), cutoff)).await?;
        let Some(last) = page.last() else { break };
        after = Some((last.module.clone(), last.version.clone()));
        // What aged out past this run's budget stays, for a later run.
        let page: Vec<Doomed> = page.into_iter().filter(|d| budget.take(d)).collect();
        if page.is_empty() {
            continue;
        }
        for d in page.iter().filter(|d| d.denied) {
            summary.note_denied(&d.module, &d.version);
        }
        let (zips, whole): (Vec<Doomed>, Vec<Doomed>) =
            page.iter().cloned().partition(|d| d.zip_only);
        let (zips, whole) = (keys(&zips), keys(&whole));
        db.call(move |s| {
            s.unlist(&whole)?;
            s.unlist_zips(&zips)
        })
        .await
        .map_err(fatal)?;
        rewrite_dirty_lists(db, tree).await?;
        crate::publish::feed::write_feed(settings, db, tree).await?;
        let (t, name) = (tree.clone(), name.clone());
        removal = tokio::task::spawn_blocking(move || {
            delete_versions(&*t, &name, page, &mut removal);
            tidy_dirs(&*t, &mut removal);
            removal
        })
        .await
        .map_err(|e| Fatal::crashed("prune", e))?;
        let gone = std::mem::take(&mut removal.gone);
        let (zips, whole): (Vec<Doomed>, Vec<Doomed>) = gone.into_iter().partition(|d| d.zip_only);
        let (zips, whole) = (keys(&zips), keys(&whole));
        db.call(move |s| {
            s.mark_out_of_tree(&whole)?;
            s.mark_zips_deleted(&zips)
        })
        .await
        .map_err(fatal)?;
    }
    let t = tree.clone();
    removal = tokio::task::spawn_blocking(move || {
        tidy_dirs(&*t, &mut removal);
        removal
    })
    .await
    .map_err(|e| Fatal::crashed("prune", e))?;
    for e in &removal.errors {
        out.error(&format!("prune: {e}"));
    }
    if removal.failed > 0 {
        return Err(Fatal::stopped(format!(
            "prune could not delete {} entries",
            removal.failed
        )));
    }
    Ok(removal.deleted)
}

/// Deletes a page of versions' files (and lookups), noting which versions
/// are wholly gone and which directories may have become empty.
fn delete_versions(t: &dyn Store, name: &str, page: Vec<Doomed>, removal: &mut Removal) {
    for d in page {
        let rels = if d.zip_only {
            vec![layout::version_file(&d.module, &d.version, "zip")]
        } else {
            vec![
                layout::version_file(&d.module, &d.version, "info"),
                layout::version_file(&d.module, &d.version, "mod"),
                layout::version_file(&d.module, &d.version, "zip"),
                layout::lookup(name, &d.module, &d.version),
            ]
        };
        let mut whole = true;
        for rel in rels {
            let removed = rel
                .map_err(|e| e.to_string())
                .and_then(|rel| t.delete(&rel).map_err(|e| e.to_string()));
            match removed {
                Ok(true) => removal.deleted += 1,
                Ok(false) => {}
                Err(e) => {
                    whole = false;
                    removal.note_error(format!("{}@{}: {e}", d.module, d.version));
                }
            }
        }
        if let Ok(dir) = layout::module_dir(&d.module) {
            removal.dirs.push(format!("{dir}/@v"));
        }
        if whole {
            removal.gone.push(d);
        }
    }
}

/// Removes the directories noted as possibly empty, deepest first, stopping
/// at content, and forgets them (a later page notes a module again if it
/// deletes more of it).
fn tidy_dirs(t: &dyn Store, removal: &mut Removal) {
    let mut dirs = std::mem::take(&mut removal.dirs);
    dirs.sort();
    dirs.dedup();
    for d in dirs.iter().rev() {
        if let Err(e) = t.tidy(d) {
            removal.note_error(e.to_string());
        }
    }
}

/// Failures listed by name; past this they are counted.
const ERROR_SAMPLE: usize = 100;

/// What the deletions did.
#[derive(Default)]
struct Removal {
    deleted: u64,
    /// Entries that could not be deleted.
    failed: u64,
    /// The first [`ERROR_SAMPLE`] of them, named.
    errors: Vec<String>,
    /// Directories that may have become empty.
    dirs: Vec<String>,
    /// Versions whose files are all gone.
    gone: Vec<Doomed>,
}

impl Removal {
    fn note_error(&mut self, message: String) {
        self.failed += 1;
        if self.errors.len() < ERROR_SAMPLE {
            self.errors.push(message);
        }
    }
}

/// The (module id, version) keys the state database names versions by.
fn keys(versions: &[Doomed]) -> Vec<(i64, String)> {
    versions
        .iter()
        .map(|d| (d.module_id, d.version.clone()))
        .collect()
}
