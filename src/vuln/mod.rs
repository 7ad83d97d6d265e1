//! The Go vulnerability database, mirrored: `[vulndb] url` (vuln.go.dev by
//! default in the shipped `sync.toml`) is copied into `<output>/vuln/` in
//! vuln.go.dev's own layout, so that `govulncheck -db http://mirror/vuln`
//! (through the shipped nginx sites) and `govulncheck -db
//! file:///srv/mirror/vuln` work with no other network. An offline network
//! then has everything the go command and govulncheck need, and `gomirror
//! audit` can tell its operators which mirrored versions are affected.
//!
//! * [`format`]: the files and their checks (bounds, ids, module paths, OSV);
//! * [`ranges`]: which versions an entry affects (Go's semver, govulncheck's
//!   reading of OSV ranges, Go releases for `stdlib` and `toolchain`);
//! * [`stage`]: the sync stage (incremental by `modified`, entries first and
//!   indexes last, refused when it goes back); also the import of a bundle's
//!   `vuln/`, read through `file://` exactly as from an upstream.
//!
//! Export carries the entries the far side lacks ([`export_plan`]); prune
//! keeps what the state database records ([`tree_file_expected`]).
//! `docs/vulndb.md` is the operator's page.

pub mod format;
pub mod ranges;
pub mod stage;

use std::path::Path;
use std::sync::Arc;

use crate::fatal::Fatal;
use crate::http::Upstream;
use crate::http::list::{Fallback, ListEntry};
use crate::report::Reporter;
use crate::state::State;
use crate::state::db::Db;
use crate::store::Store;
use crate::store::layout::VulnFile;

pub use stage::{Source, VulnReport};

/// The sync's stage: mirrors the database from `urls` (empty: off);
/// `implied` for a followed mirror's `vuln/` that nobody configured (a
/// mirror without one is then a note). Prints one line.
pub async fn sync_stage(
    upstream: &Arc<Upstream>,
    tree: &Arc<dyn Store>,
    db: &Db,
    urls: &[ListEntry],
    implied: bool,
    out: &Reporter,
) -> Result<Option<VulnReport>, Fatal> {
    let source = Source {
        urls,
        implied,
        expect: None,
    };
    let report = stage::mirror(upstream, tree, db, &source, out).await?;
    if let Some(r) = &report {
        if r.unchanged || r.absent {
            out.verbose(&r.line());
        } else {
            out.info(&r.line());
        }
    }
    Ok(report)
}

/// Why the database could not be reached, when that is all `e` says (the
/// network, a 5xx, a timeout): nothing changed, and the next run tries
/// again. `None` for a database that answered and was refused — rewound,
/// inconsistent (an entry its index lists answers 404), malformed, not a
/// database at all.
pub fn unreachable(e: &Fatal) -> Option<String> {
    let Fatal::Context { source, .. } = e else {
        return None;
    };
    let f = source.downcast_ref::<crate::http::FetchError>()?;
    // A name that does not resolve or a refused connection means this
    // network cannot reach it, however permanent.
    let reached = !matches!(
        f,
        crate::http::FetchError::Network { .. } | crate::http::FetchError::TooSlow { .. }
    ) && !f.is_retryable();
    (!reached).then(|| f.from_host())
}

/// An import's stage: the database a bundle carries, unpacked at
/// `unpacked` (the bundle's `vuln/`), read through `file://` and checked
/// like any upstream; its `modified` must be the manifest's. `status` then
/// names `bundle` as where it came from.
pub async fn import_stage(
    upstream: &Arc<Upstream>,
    tree: &Arc<dyn Store>,
    db: &Db,
    unpacked: &Path,
    modified: &str,
    bundle: &str,
    out: &Reporter,
) -> Result<VulnReport, Fatal> {
    let url = reqwest::Url::from_directory_path(unpacked.join(format::DIR)).map_err(|()| {
        Fatal::stopped(format!(
            "`{}` is not an absolute directory path",
            unpacked.display()
        ))
    })?;
    let urls = [ListEntry {
        url,
        fallback: Fallback::NotFound,
    }];
    let source = Source {
        urls: &urls,
        implied: false,
        expect: Some(modified),
    };
    let mut report = stage::mirror(upstream, tree, db, &source, out)
        .await?
        .expect("a source was given");
    report.url = bundle.to_string();
    let label = bundle.to_string();
    db.call(move |s| s.record_vuln_checked(&label, crate::clock::now()))
        .await?;
    out.verbose(&report.line());
    Ok(report)
}

/// A file of the database an export carries: its key and what it must hash to.
#[derive(Clone, Debug)]
pub struct CarriedFile {
    pub key: String,
    pub size: u64,
    pub sha256: String,
}

/// What an export carries of the database.
#[derive(Clone, Debug)]
pub struct Carry {
    /// The database's `modified`.
    pub modified: String,
    /// Entries the database holds.
    pub entries: u64,
    /// The `.json.gz` files (the far side derives the `.json`): the three
    /// indexes, and the entries the far side lacks.
    pub files: Vec<CarriedFile>,
    /// Each carried entry with its `modified` (recorded once the bundle is).
    pub carried: Vec<(String, String)>,
}

/// What the next bundle carries of the database: `None` when none is held,
/// or when a delta has nothing new (the far side has this `modified`).
pub async fn export_plan(db: &Db, full: bool) -> Result<Option<Carry>, Fatal> {
    let (entries, modified, exported, indexes, total) = db
        .call(move |s| {
            let (entries, modified, exported) = s.vuln_export_plan(full)?;
            Ok((
                entries,
                modified,
                exported,
                s.vuln_indexes()?,
                s.vuln_status()?.entries,
            ))
        })
        .await?;
    let Some(modified) = modified else {
        return Ok(None);
    };
    if !full && entries.is_empty() && exported.as_deref() == Some(modified.as_str()) {
        return Ok(None);
    }
    let mut files: Vec<CarriedFile> = Vec::new();
    for name in format::INDEXES {
        let Some((_, f)) = indexes.iter().find(|(n, _)| n == name) else {
            return Err(Fatal::stopped(format!(
                "the state database holds vulnerability database {modified} but no record of index/{name}.json; run `gomirror sync` first"
            )));
        };
        files.push(CarriedFile {
            key: format::index_key(name, true),
            size: f.gz_size.max(0) as u64,
            sha256: f.gz_sha256.clone(),
        });
    }
    let carried = entries
        .iter()
        .map(|e| (e.id.clone(), e.modified.clone()))
        .collect();
    for e in entries {
        files.push(CarriedFile {
            key: format::entry_key(&e.id, true),
            size: e.file.gz_size.max(0) as u64,
            sha256: e.file.gz_sha256,
        });
    }
    Ok(Some(Carry {
        modified,
        entries: total as u64,
        files,
        carried,
    }))
}

/// Records that a bundle carrying `carry` was written.
pub async fn record_export(db: &Db, carry: Carry) -> Result<(), Fatal> {
    db.call(move |s| s.record_vuln_export(&carry.modified, &carry.carried))
        .await?;
    Ok(())
}

/// Whether a file of the vulnerability database in the tree belongs
/// (prune): the indexes while a database is held, an entry while the state
/// database holds it.
pub fn tree_file_expected(state: &State, file: &VulnFile) -> Result<bool, String> {
    match file {
        VulnFile::Index { .. } => Ok(state
            .vuln_status()
            .map_err(|e| e.to_string())?
            .modified
            .is_some()),
        VulnFile::Entry { id, .. } => state.vuln_entry_held(id).map_err(|e| e.to_string()),
    }
}
