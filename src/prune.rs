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

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::config::Settings;
use crate::gomod;
use crate::report::Reporter;
use crate::runner::{self, Db, Fatal};
use crate::state::{State, StateError, vstate};
use crate::sync::rewrite_dirty_lists;
use crate::tree::{INTERNAL_DIR, Tree, layout};

/// A version to delete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Doomed {
    pub module_id: i64,
    pub module: String,
    pub version: String,
    pub reason: &'static str,
}

/// What to delete.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrunePlan {
    pub versions: Vec<Doomed>,
    /// Tree-relative paths of stray files and symlinks.
    pub stray_files: Vec<String>,
    /// Tree-relative paths of stray directories (removed with their content).
    pub stray_dirs: Vec<String>,
    /// Versions in the tree before pruning.
    pub total_versions: u64,
}

impl PrunePlan {
    /// The size compared with `prune.max_delete`: versions plus stray entries.
    pub fn size(&self) -> u64 {
        (self.versions.len() + self.stray_files.len() + self.stray_dirs.len()) as u64
    }
}

/// What a prune did (or would do).
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct PruneSummary {
    pub versions: u64,
    pub stray_files: u64,
    pub stray_dirs: u64,
    pub limit: u64,
    pub refused: bool,
    pub dry_run: bool,
    pub files_deleted: u64,
}

impl PruneSummary {
    pub fn render_line(&self) -> String {
        let what = format!(
            "{} versions, {} stray files, {} stray directories",
            self.versions, self.stray_files, self.stray_dirs
        );
        if self.refused {
            format!(
                "prune: REFUSED to delete {what}: more than prune.max_delete allows ({}); nothing was deleted (use `gomirror prune --force` if this is intended)",
                self.limit
            )
        } else if self.dry_run {
            format!("prune (dry run): would delete {what}")
        } else {
            format!("prune: deleted {what} ({} files)", self.files_deleted)
        }
    }
}

/// Computes the deletion set. Runs on the state thread: database queries and
/// a directory walk that never follows links.
pub fn plan(
    state: &State,
    tree: &Tree,
    sumdb_name: &str,
    scan_tree: bool,
) -> Result<PrunePlan, String> {
    let mut plan = PrunePlan {
        total_versions: state.in_tree_count().map_err(|e| e.to_string())?,
        ..PrunePlan::default()
    };
    {
        let mut stmt = state
            .conn()
            .prepare(
                "SELECT v.module_id, m.path, v.version, v.state, m.wanted
                 FROM versions v JOIN modules m ON m.id = v.module_id
                 WHERE v.in_tree = 1 AND (v.state = 3 OR m.wanted = 0)
                 ORDER BY m.path, v.version",
            )
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map([], |r| {
                let st: i64 = r.get(3)?;
                let wanted: bool = r.get(4)?;
                Ok(Doomed {
                    module_id: r.get(0)?,
                    module: r.get(1)?,
                    version: r.get(2)?,
                    reason: if !wanted {
                        "no longer wanted by the filter"
                    } else if st == vstate::GONE {
                        "removed from the upstream"
                    } else {
                        "unwanted"
                    },
                })
            })
            .map_err(|e| e.to_string())?;
        for r in rows {
            plan.versions.push(r.map_err(|e| e.to_string())?);
        }
    }
    if scan_tree {
        find_strays(state, tree, sumdb_name, &mut plan)?;
    }
    Ok(plan)
}

/// Walks the tree; every entry the database does not account for is a stray.
fn find_strays(
    state: &State,
    tree: &Tree,
    sumdb_name: &str,
    plan: &mut PrunePlan,
) -> Result<(), String> {
    let root = tree.root();
    // Expected files of one module, loaded when the walk reaches it.
    let mut cache: BTreeMap<String, Option<HashSet<String>>> = BTreeMap::new();
    let sumdb_prefix = format!("sumdb/{sumdb_name}/");
    let mut lookup_cache: Option<HashSet<String>> = None;

    let mut it = walkdir::WalkDir::new(root)
        .follow_links(false)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter();
    while let Some(entry) = it.next() {
        let entry = entry.map_err(|e| format!("cannot walk the tree: {e}"))?;
        let rel = match entry.path().strip_prefix(root) {
            Ok(r) => r.to_string_lossy().into_owned(),
            Err(_) => continue,
        };
        let ft = entry.file_type();
        if rel == INTERNAL_DIR {
            it.skip_current_dir();
            continue;
        }
        if ft.is_symlink() {
            plan.stray_files.push(rel);
            continue;
        }
        if ft.is_dir() {
            // Directories are judged by what they hold; a directory that cannot
            // be part of the layout is a stray as a whole.
            if !dir_can_belong(&rel, &sumdb_prefix) {
                plan.stray_dirs.push(rel);
                it.skip_current_dir();
            }
            continue;
        }
        if !ft.is_file() {
            plan.stray_files.push(rel);
            continue;
        }
        let expected = if let Some(rest) = rel.strip_prefix(&sumdb_prefix) {
            sumdb_file_expected(state, rest, &mut lookup_cache)?
        } else if rel.starts_with("sumdb/") {
            false
        } else if let Some((module_dir, file)) = split_module_file(&rel) {
            let files = match cache.get(module_dir) {
                Some(f) => f,
                None => {
                    if cache.len() > 64 {
                        // Walk order is sorted: modules seen long ago are done.
                        cache.clear();
                    }
                    let f = expected_module_files(state, module_dir)?;
                    cache.entry(module_dir.to_string()).or_insert(f)
                }
            };
            files.as_ref().is_some_and(|f| f.contains(file))
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
    // or `@v` directly below a module directory.
    let mut elems = rel.split('/').peekable();
    while let Some(e) = elems.next() {
        if e == "@v" {
            return elems.peek().is_none() && gomod::unescape_path(&rel[..rel.len() - 3]).is_ok();
        }
        if e.is_empty() || e.starts_with('.') || e.contains('@') {
            return false;
        }
    }
    true
}

/// `a.com/m/@v/v1.0.0.zip` → (`a.com/m`, `@v/v1.0.0.zip`); `a.com/m/@latest` → (`a.com/m`, `@latest`).
fn split_module_file(rel: &str) -> Option<(&str, &str)> {
    if let Some(i) = rel.find("/@v/") {
        return Some((&rel[..i], &rel[i + 1..]));
    }
    rel.strip_suffix("/@latest").map(|m| (m, "@latest"))
}

/// The files a module directory should hold, from the database; `None` if
/// the directory is not a known module with versions in the tree.
fn expected_module_files(
    state: &State,
    escaped_module: &str,
) -> Result<Option<HashSet<String>>, String> {
    let Ok(module) = gomod::unescape_path(escaped_module) else {
        return Ok(None);
    };
    let Some((id, _)) = state.module(&module).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let mut stmt = state
        .conn()
        .prepare_cached("SELECT version, state FROM versions WHERE module_id = ?1 AND in_tree = 1")
        .map_err(|e| e.to_string())?;
    let rows = stmt
        .query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .map_err(|e| e.to_string())?;
    let mut files = HashSet::new();
    let mut listed = 0;
    for r in rows {
        let (v, st) = r.map_err(|e| e.to_string())?;
        let Ok(ev) = gomod::escape_version(&v) else {
            continue;
        };
        for ext in ["info", "mod", "zip"] {
            files.insert(format!("@v/{ev}.{ext}"));
        }
        if st == vstate::PUBLISHED {
            listed += 1;
        }
    }
    if listed > 0 {
        files.insert("@v/list".to_string());
        files.insert("@latest".to_string());
    }
    Ok(Some(files))
}

fn sumdb_file_expected(
    state: &State,
    rest: &str,
    lookups: &mut Option<HashSet<String>>,
) -> Result<bool, String> {
    if rest == "supported" || rest == "latest" {
        return Ok(true);
    }
    if let Some(t) = rest.strip_prefix("tile/") {
        // Tiles are shared by every version: any well-formed tile stays.
        return Ok(crate::sumdb::tile::parse_tile_path(&format!("tile/{t}")).is_ok());
    }
    if let Some(l) = rest.strip_prefix("lookup/") {
        if lookups.is_none() {
            let mut set = HashSet::new();
            let mut stmt = state
                .conn()
                .prepare(
                    "SELECT m.path, v.version FROM versions v JOIN modules m ON m.id = v.module_id
                     WHERE v.in_tree = 1 AND v.record_id IS NOT NULL",
                )
                .map_err(|e| e.to_string())?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(|e| e.to_string())?;
            for r in rows {
                let (m, v) = r.map_err(|e| e.to_string())?;
                if let (Ok(em), Ok(ev)) = (gomod::escape_path(&m), gomod::escape_version(&v)) {
                    set.insert(format!("{em}@{ev}"));
                }
            }
            *lookups = Some(set);
        }
        return Ok(lookups.as_ref().is_some_and(|s| s.contains(l)));
    }
    Ok(false)
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
    tree: &Arc<Tree>,
    out: &Reporter,
    dry_run: bool,
    force: bool,
) -> Result<PruneSummary, Fatal> {
    let name = settings.sumdb.name.clone();
    let scan = settings.prune.scan_tree;
    let t = tree.clone();
    let plan = db
        .call(move |s| Ok(plan(s, &t, &name, scan)))
        .await?
        .map_err(|e| Fatal(format!("cannot plan the prune: {e}")))?;
    let limit = settings.prune.max_delete.limit(plan.total_versions);
    let mut summary = PruneSummary {
        versions: plan.versions.len() as u64,
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
    let empties_mirror =
        plan.total_versions > 0 && plan.versions.len() as u64 >= plan.total_versions;
    if dry_run || (!force && (plan.size() > limit || empties_mirror)) {
        for d in &plan.versions {
            crate::report::outln(format_args!(
                "delete {}@{} ({})",
                d.module, d.version, d.reason
            ));
        }
        for f in &plan.stray_files {
            crate::report::outln(format_args!("delete stray file {f}"));
        }
        for d in &plan.stray_dirs {
            crate::report::outln(format_args!("delete stray directory {d}/"));
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
    tree: &Arc<Tree>,
    out: &Reporter,
    plan: PrunePlan,
) -> Result<u64, Fatal> {
    let fatal = |e: StateError| Fatal(e.to_string());
    // 1. The database stops listing them; their modules' indexes are rewritten.
    let versions = plan.versions.clone();
    db.call(move |s| unlist(s, &versions))
        .await
        .map_err(fatal)?;
    rewrite_dirty_lists(db, tree).await?;

    // 2. Files go, version by version; then the database forgets them.
    let name = settings.sumdb.name.clone();
    let t = tree.clone();
    let versions = plan.versions.clone();
    let (deleted, errors) = tokio::task::spawn_blocking(move || {
        let mut deleted = 0u64;
        let mut errors = Vec::new();
        let mut dirs = Vec::new();
        for d in &versions {
            let rels = [
                layout::version_file(&d.module, &d.version, "info"),
                layout::version_file(&d.module, &d.version, "mod"),
                layout::version_file(&d.module, &d.version, "zip"),
                layout::lookup(&name, &d.module, &d.version),
            ];
            for rel in rels.into_iter().flatten() {
                match t.remove_file(&rel) {
                    Ok(true) => deleted += 1,
                    Ok(false) => {}
                    Err(e) => errors.push(format!("{}@{}: {e}", d.module, d.version)),
                }
            }
            if let Ok(dir) = layout::module_dir(&d.module) {
                dirs.push(format!("{dir}/@v"));
            }
        }
        for f in &plan.stray_files {
            match t.remove_file(f) {
                Ok(true) => deleted += 1,
                Ok(false) => {}
                Err(e) => errors.push(e.to_string()),
            }
            if let Some(i) = f.rfind('/') {
                dirs.push(f[..i].to_string());
            }
        }
        for d in &plan.stray_dirs {
            match t.path_of(d) {
                Ok(p) => match std::fs::remove_dir_all(&p) {
                    Ok(()) => deleted += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => errors.push(format!("cannot remove `{}`: {e}", p.display())),
                },
                Err(e) => errors.push(e.to_string()),
            }
            if let Some(i) = d.rfind('/') {
                dirs.push(d[..i].to_string());
            }
        }
        dirs.sort();
        dirs.dedup();
        for d in dirs.iter().rev() {
            let _ = t.remove_empty_dirs(d);
        }
        (deleted, errors)
    })
    .await
    .map_err(|e| Fatal(format!("prune crashed: {e}")))?;
    for e in &errors {
        out.error(&format!("prune: {e}"));
    }
    let versions = plan.versions;
    db.call(move |s| forget(s, &versions))
        .await
        .map_err(fatal)?;
    if !errors.is_empty() {
        return Err(Fatal(format!(
            "prune could not delete {} entries",
            errors.len()
        )));
    }
    Ok(deleted)
}

/// Stops listing doomed versions: unwanted ones become merely known, removed
/// ones stay "gone"; their modules' indexes are marked for rewriting.
fn unlist(state: &mut State, versions: &[Doomed]) -> Result<(), StateError> {
    let path = state.path().to_path_buf();
    let tx = state.conn_mut().transaction().map_err(|e| se(&path, e))?;
    {
        let mut up = tx
            .prepare("UPDATE versions SET state = CASE WHEN state = 3 THEN 3 ELSE 0 END WHERE module_id = ?1 AND version = ?2")
            .map_err(|e| se(&path, e))?;
        let mut dirty = tx
            .prepare("UPDATE modules SET dirty = 1 WHERE id = ?1")
            .map_err(|e| se(&path, e))?;
        for d in versions {
            up.execute(rusqlite::params![d.module_id, d.version])
                .map_err(|e| se(&path, e))?;
            dirty.execute([d.module_id]).map_err(|e| se(&path, e))?;
        }
    }
    tx.commit().map_err(|e| se(&path, e))
}

/// Records that the doomed versions' files are gone.
fn forget(state: &mut State, versions: &[Doomed]) -> Result<(), StateError> {
    let path = state.path().to_path_buf();
    let tx = state.conn_mut().transaction().map_err(|e| se(&path, e))?;
    {
        let mut up = tx
            .prepare(
                "UPDATE versions SET in_tree = 0, info_size = NULL, mod_size = NULL, zip_size = NULL,
                 info_mtime = NULL, mod_mtime = NULL, zip_mtime = NULL WHERE module_id = ?1 AND version = ?2",
            )
            .map_err(|e| se(&path, e))?;
        for d in versions {
            up.execute(rusqlite::params![d.module_id, d.version])
                .map_err(|e| se(&path, e))?;
        }
    }
    tx.commit().map_err(|e| se(&path, e))
}

fn se(path: &Path, e: rusqlite::Error) -> StateError {
    StateError {
        path: path.to_path_buf(),
        message: format!("cannot record prune: {e}"),
        source: Some(e),
    }
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
