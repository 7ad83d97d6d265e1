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

use serde::Serialize;

pub use crate::report::summary::PruneSummary;

use crate::gomod;
use crate::publish::lists::rewrite_dirty_lists;
use crate::report::Reporter;
use crate::runner::{self, Fatal};
use crate::settings::Settings;
use crate::state::db::Db;
use crate::state::{DeletionReason, State, StateError};
use crate::store::{EntryKind, Store, layout};

/// A version to delete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Doomed {
    pub module_id: i64,
    pub module: String,
    pub version: String,
    pub reason: &'static str,
    /// Only the zip goes: the version stays, graph-only (`.info` and `.mod`).
    pub zip_only: bool,
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
}

impl PrunePlan {
    /// The size compared with `prune.max_delete`: versions plus stray entries.
    pub fn size(&self) -> u64 {
        self.versions + (self.stray_files.len() + self.stray_dirs.len()) as u64
    }
}

/// Computes the deletion set. Runs on the state thread: database queries and
/// a directory walk that never follows links.
pub fn plan(
    state: &State,
    tree: &dyn Store,
    sumdb_name: &str,
    trace_key: &str,
    scan_tree: bool,
) -> Result<PrunePlan, String> {
    let mut plan = PrunePlan {
        total_versions: state.in_tree_count().map_err(|e| e.to_string())?,
        ..PrunePlan::default()
    };
    plan.versions = state.deletion_count().map_err(|e| e.to_string())?;
    plan.zip_only = state.zip_only_deletion_count().map_err(|e| e.to_string())?;
    if scan_tree {
        find_strays(state, tree, sumdb_name, trace_key, &mut plan)?;
    }
    Ok(plan)
}

/// The next page of the deletion set after `after`.
fn doomed_page(state: &State, after: Option<&(String, String)>) -> Result<Vec<Doomed>, StateError> {
    let page = state.deletion_page(after.map(|(m, v)| (m.as_str(), v.as_str())), PAGE)?;
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
            },
            zip_only: c.reason == DeletionReason::ZipOnly,
        })
        .collect())
}

/// Walks the tree; every entry the database does not account for is a stray.
///
/// Memory stays bounded whatever the mirror size: each file found is checked
/// against the database with an indexed query, and only the module being
/// walked is remembered (the walk is sorted, so a module's files are adjacent).
fn find_strays(
    state: &State,
    tree: &dyn Store,
    sumdb_name: &str,
    trace_key: &str,
    plan: &mut PrunePlan,
) -> Result<(), String> {
    let mut current: Option<(String, Option<KnownModule>)> = None;
    let sumdb_prefix = format!("sumdb/{sumdb_name}/");
    // A stray directory goes as a whole: its content (listed right after it) is skipped.
    let mut skipping: Option<String> = None;

    for entry in tree.list("") {
        let entry = entry.map_err(|e| format!("cannot walk the tree: {e}"))?;
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
                if !dir_can_belong(&rel, &sumdb_prefix) {
                    skipping = Some(format!("{rel}/"));
                    plan.stray_dirs.push(rel);
                }
                continue;
            }
            EntryKind::File => {}
        }
        // This mirror's trace file (`trace/<mirror.name>.json`); a trace under
        // another name (mirror.name changed) is a stray.
        let expected = if rel == trace_key {
            true
        } else if let Some(name) = rel.strip_prefix("feed/") {
            feed_file_expected(name)
        } else if let Some(rest) = rel.strip_prefix(&sumdb_prefix) {
            sumdb_file_expected(state, rest)?
        } else if rel.starts_with("sumdb/") {
            false
        } else if let Some((module_dir, file)) = split_module_file(&rel) {
            let known = match &current {
                Some((dir, known)) if dir == module_dir => *known,
                _ => {
                    let known = known_module(state, module_dir)?;
                    current = Some((module_dir.to_string(), known));
                    known
                }
            };
            match known {
                Some(m) => module_file_expected(state, m, file)?,
                None => false,
            }
        } else {
            false
        };
        if !expected {
            plan.stray_files.push(rel);
        }
    }
    Ok(())
}

/// Whether a directory can hold mirror files at all.
fn dir_can_belong(rel: &str, sumdb_prefix: &str) -> bool {
    if rel == FEED_DIR || rel == FEED_SNAPSHOTS {
        return true;
    }
    if rel == "sumdb" || sumdb_prefix.starts_with(&format!("{rel}/")) {
        return true;
    }
    if let Some(rest) = rel.strip_prefix(sumdb_prefix) {
        return rest == "lookup"
            || rest.starts_with("lookup/")
            || rest == "tile"
            || rest.starts_with("tile/");
    }
    if rel.starts_with("sumdb/") {
        return false;
    }
    // Module directories: every element must be a valid escaped path element,
    // or `@v` directly below a valid module directory (`<root>/@v` has none).
    let mut elems = rel.split('/').peekable();
    while let Some(e) = elems.next() {
        if e == "@v" {
            return elems.peek().is_none()
                && rel
                    .strip_suffix("/@v")
                    .is_some_and(|module| gomod::unescape_path(module).is_ok());
        }
        if e.is_empty() || e.starts_with('.') || e.contains('@') {
            return false;
        }
    }
    true
}

const FEED_DIR: &str = crate::feed::DIR;
const FEED_SNAPSHOTS: &str = "feed/snapshot";

/// Whether a file under `feed/` is one the feed writer makes: `latest`,
/// `tail.jsonl`, `<12 digits>.jsonl`, `snapshot/<12 digits>.jsonl`. (Which
/// segments are current is the feed writer's business: compaction deletes
/// the old ones.)
fn feed_file_expected(name: &str) -> bool {
    let numbered = |n: &str| {
        n.strip_suffix(".jsonl")
            .is_some_and(|d| d.len() == 12 && d.bytes().all(|b| b.is_ascii_digit()))
    };
    name == "latest"
        || name == "tail.jsonl"
        || numbered(name)
        || name.strip_prefix("snapshot/").is_some_and(numbered)
}

/// `a.com/m/@v/v1.0.0.zip` → (`a.com/m`, `@v/v1.0.0.zip`); `a.com/m/@latest` → (`a.com/m`, `@latest`).
fn split_module_file(rel: &str) -> Option<(&str, &str)> {
    if let Some(i) = rel.find("/@v/") {
        return Some((&rel[..i], &rel[i + 1..]));
    }
    rel.strip_suffix("/@latest").map(|m| (m, "@latest"))
}

/// A module directory the database knows.
#[derive(Clone, Copy, Debug)]
struct KnownModule {
    id: i64,
    /// Whether it has a published version in the tree (so `@v/list` and `@latest` belong).
    listed: bool,
}

/// The module an escaped directory names, if the database knows it.
fn known_module(state: &State, escaped_module: &str) -> Result<Option<KnownModule>, String> {
    let Ok(module) = gomod::unescape_path(escaped_module) else {
        return Ok(None);
    };
    let Some((id, _)) = state.module(&module).map_err(|e| e.to_string())? else {
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

/// Whether `file` (`@latest`, `@v/list`, `@v/<escaped version>.<ext>`) belongs
/// in a known module's directory. Only the canonical escaping of a version in
/// the tree belongs.
fn module_file_expected(state: &State, m: KnownModule, file: &str) -> Result<bool, String> {
    if file == "@latest" || file == "@v/list" {
        return Ok(m.listed);
    }
    let Some((escaped, ext)) = file.strip_prefix("@v/").and_then(|f| f.rsplit_once('.')) else {
        return Ok(false);
    };
    if !matches!(ext, "info" | "mod" | "zip") {
        return Ok(false);
    }
    let Some(version) = canonical_version(escaped) else {
        return Ok(false);
    };
    // A graph-only version's zip does not belong.
    if ext == "zip" {
        return state.zip_in_tree(m.id, &version).map_err(|e| e.to_string());
    }
    state
        .version_in_tree(m.id, &version)
        .map_err(|e| e.to_string())
}

/// The version an escaped file name stands for, if it is the canonical escaping.
fn canonical_version(escaped: &str) -> Option<String> {
    let v = gomod::unescape_version(escaped).ok()?;
    (gomod::escape_version(&v).ok()? == escaped).then_some(v)
}

fn sumdb_file_expected(state: &State, rest: &str) -> Result<bool, String> {
    if rest == "supported" || rest == "latest" {
        return Ok(true);
    }
    if let Some(t) = rest.strip_prefix("tile/") {
        // Tiles are shared by every version: any well-formed tile stays.
        return Ok(crate::sumdb::tile::parse_tile_path(&format!("tile/{t}")).is_ok());
    }
    let Some((escaped_module, escaped_version)) = rest
        .strip_prefix("lookup/")
        .and_then(|l| l.rsplit_once('@'))
    else {
        return Ok(false);
    };
    let Ok(module) = gomod::unescape_path(escaped_module) else {
        return Ok(false);
    };
    let Some(version) = canonical_version(escaped_version) else {
        return Ok(false);
    };
    if gomod::escape_path(&module).ok().as_deref() != Some(escaped_module) {
        return Ok(false);
    }
    state
        .lookup_in_tree(&module, &version)
        .map_err(|e| e.to_string())
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
    runner::run_command(settings, "prune", async |db, tree| {
        // Apply the configured filter first, so a narrowed filter is seen.
        let filter = settings.filter.clone();
        let fingerprint = filter.fingerprint();
        db.call(move |s| s.apply_filter(&fingerprint, &|p| filter.wants(p)))
            .await?;
        run_with_db(settings, db, tree, out, dry_run, force).await
    })
}

impl runner::Outcome for PruneSummary {
    fn exit_code(&self) -> i32 {
        if self.refused { 2 } else { 0 }
    }
}

/// Plans and (unless `dry_run`) carries out a prune, under the caller's lock.
pub async fn run_with_db(
    settings: &Settings,
    db: &Db,
    tree: &Arc<dyn Store>,
    out: &Reporter,
    dry_run: bool,
    force: bool,
) -> Result<PruneSummary, Fatal> {
    let name = settings.sumdb.name.clone();
    let trace = crate::report::trace::key(&settings.mirror_name);
    let scan = settings.prune.scan_tree;
    let t = tree.clone();
    let plan = db
        .call(move |s| Ok(plan(s, &*t, &name, &trace, scan)))
        .await?
        .map_err(|e| Fatal::context("cannot plan the prune", e))?;
    let limit = settings.prune.max_delete.limit(plan.total_versions);
    let mut summary = PruneSummary {
        versions: plan.versions,
        stray_files: plan.stray_files.len() as u64,
        stray_dirs: plan.stray_dirs.len() as u64,
        limit,
        refused: false,
        dry_run,
        files_deleted: 0,
    };
    if plan.size() == 0 {
        return Ok(summary);
    }
    // A version that only loses its zip stays in the mirror.
    let empties_mirror = plan.total_versions > 0
        && plan.versions.saturating_sub(plan.zip_only) >= plan.total_versions;
    if dry_run || (!force && (plan.size() > limit || empties_mirror)) {
        let mut after: Option<(String, String)> = None;
        loop {
            let a = after.clone();
            let page = db.call(move |s| doomed_page(s, a.as_ref())).await?;
            let Some(last) = page.last() else { break };
            after = Some((last.module.clone(), last.version.clone()));
            for d in &page {
                crate::report::outln(format_args!(
                    "delete {}@{} ({})",
                    d.module, d.version, d.reason
                ));
            }
        }
        for f in &plan.stray_files {
            crate::report::outln(format_args!("delete stray file {}", crate::shown::text(f)));
        }
        for d in &plan.stray_dirs {
            crate::report::outln(format_args!(
                "delete stray directory {}/",
                crate::shown::text(d)
            ));
        }
        if !dry_run {
            summary.refused = true;
            out.error(&summary.render_line());
        }
        return Ok(summary);
    }
    summary.files_deleted = execute(settings, db, tree, out, plan).await?;
    Ok(summary)
}

async fn execute(
    settings: &Settings,
    db: &Db,
    tree: &Arc<dyn Store>,
    out: &Reporter,
    plan: PrunePlan,
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
        let page = db.call(move |s| doomed_page(s, a.as_ref())).await?;
        let Some(last) = page.last() else { break };
        after = Some((last.module.clone(), last.version.clone()));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_directories() {
        let p = "sumdb/sum.golang.org/";
        assert!(dir_can_belong("golang.org", p));
        assert!(dir_can_belong("golang.org/x/mod", p));
        assert!(dir_can_belong("golang.org/x/mod/@v", p));
        assert!(dir_can_belong("github.com/!azure/go", p));
        assert!(!dir_can_belong("golang.org/x/mod/@v/sub", p));
        assert!(!dir_can_belong("golang.org/.git", p));
        assert!(!dir_can_belong("golang.org/x@y", p));
        assert!(dir_can_belong("sumdb", p));
        assert!(dir_can_belong("sumdb/sum.golang.org", p));
        assert!(dir_can_belong("sumdb/sum.golang.org/tile/8/0", p));
        assert!(!dir_can_belong("sumdb/other.example", p));
        assert!(!dir_can_belong("sumdb/sum.golang.org/junk", p));
    }

    #[test]
    fn a_directory_named_at_v_without_a_module_is_a_stray_not_a_panic() {
        let p = "sumdb/sum.golang.org/";
        assert!(!dir_can_belong("@v", p));
        assert!(!dir_can_belong("x/@v", p), "`x` is not a module path");
        assert!(!dir_can_belong("@v/@v", p));
        assert!(dir_can_belong("x.example/@v", p));
    }

    #[test]
    fn only_canonical_version_file_names_belong() {
        assert_eq!(
            canonical_version("v1.0.0-!r!c1").as_deref(),
            Some("v1.0.0-RC1")
        );
        assert_eq!(canonical_version("v1.0.0-RC1"), None);
        assert_eq!(
            canonical_version("v1.0.0+incompatible").as_deref(),
            Some("v1.0.0+incompatible")
        );
    }

    #[test]
    fn module_files_split() {
        assert_eq!(
            split_module_file("a.com/m/@v/v1.0.0.zip"),
            Some(("a.com/m", "@v/v1.0.0.zip"))
        );
        assert_eq!(
            split_module_file("a.com/m/@latest"),
            Some(("a.com/m", "@latest"))
        );
        assert_eq!(split_module_file("a.com/m/README"), None);
    }
}
