//! Private versions made again: at `prune.recheck_interval` (at most
//! `prune.recheck_batch` a run) each published private version is made
//! from its repository once more and its content compared with the ledger,
//! so a moved tag or a rewritten history shows as a `SECURITY` line (exit
//! code 1) while the mirror keeps serving the first content. A tag that is
//! gone from its repository deletes nothing: the mirror keeps what it made
//! (a build that pinned it still works), and says so.
//!
//! This runs before the generic recheck ([`crate::prune::recheck`]) and
//! marks what it checked, so that one leaves private versions alone.

use std::sync::Arc;

use super::PrivateOrigin;
use crate::fatal::Fatal;
use crate::gomod::{dirhash, zip as modzip};
use crate::report::summary::{SyncReport, VersionFailure};
use crate::report::{self, Reporter};
use crate::settings::Settings;
use crate::source::{Origin, VersionFile};
use crate::state::db::Db;
use crate::store::Store;

/// What making a version again found.
enum Found {
    Same,
    Moved(String),
    Gone(String),
    Failed(String),
}

/// Makes the due private versions again and compares them with the ledger.
/// Private versions made again per sync when `prune.recheck_batch` is not set.
const PRIVATE_RECHECK_BATCH: u64 = 1000;

pub async fn recheck(
    settings: &Settings,
    origin: &Arc<PrivateOrigin>,
    db: &Db,
    tree: &Arc<dyn Store>,
    out: &Reporter,
    report: &mut SyncReport,
) -> Result<(), Fatal> {
    let (Some(private), Some(cutoff)) = (
        settings.private.clone(),
        settings.prune.recheck_cutoff(report::now()),
    ) else {
        return Ok(());
    };
    // Each is a go command run: at most `prune.recheck_batch` a sync, or
    // this many when the batch follows from the interval.
    let batch = settings
        .prune
        .recheck_batch
        .unwrap_or(PRIVATE_RECHECK_BATCH);
    let owns = private.clone();
    let due = db
        .call(move |s| s.due_private_rechecks(cutoff, batch, &|p| owns.owns(p)))
        .await?;
    if due.is_empty() {
        return Ok(());
    }
    out.verbose(&format!(
        "making {} private versions again to compare them with the ledger",
        due.len()
    ));
    let sem = Arc::new(tokio::sync::Semaphore::new(private.jobs));
    let mut tasks = tokio::task::JoinSet::new();
    for t in due {
        let permit = sem.clone().acquire_owned().await.expect("never closed");
        let (origin, db, tree) = (origin.clone(), db.clone(), tree.clone());
        tasks.spawn(async move {
            let _permit = permit;
            let found = make_again(&origin, &db, &tree, &t.path, &t.version, t.zip).await;
            (t, found)
        });
    }
    let mut checked = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (t, found) = joined.map_err(|e| Fatal::crashed("a private recheck", e))?;
        let id = format!("{}@{}", t.path, t.version);
        match found {
            Ok(Found::Same) => {
                report.rechecked += 1;
                checked.push((t.module_id, t.version));
            }
            Ok(Found::Moved(why)) => {
                report.rechecked += 1;
                out.error(&format!(
                    "SECURITY: {id}: made again from its repository: {why}"
                ));
                report.failures.push(VersionFailure {
                    module: t.path.clone(),
                    version: t.version.clone(),
                    error: format!("made again from its repository: {why}"),
                    security: true,
                });
                report.failed = report.failures.len() as u64;
                checked.push((t.module_id, t.version));
            }
            Ok(Found::Gone(why)) => {
                report.rechecked += 1;
                out.warn(&format!(
                    "{id}: no longer in its repository ({why}); the mirror keeps serving what it made"
                ));
                checked.push((t.module_id, t.version));
            }
            Ok(Found::Failed(why)) => {
                report.recheck_errors += 1;
                let msg = format!("{id}: cannot make it again: {why}");
                out.warn(&format!("recheck: {msg}"));
                if report.recheck_samples.len() < 20 {
                    report.recheck_samples.push(msg);
                }
                // Not asked again by the generic recheck, which would take
                // a failure to reach the repository for "gone".
                checked.push((t.module_id, t.version));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let now = report::now();
    db.call(move |s| s.mark_checked(&checked, now)).await?;
    Ok(())
}

/// Makes `module@version` again into staging, hashes it, and compares it
/// with the ledger.
async fn make_again(
    origin: &PrivateOrigin,
    db: &Db,
    tree: &Arc<dyn Store>,
    module: &str,
    version: &str,
    with_zip: bool,
) -> Result<Found, crate::state::StateError> {
    let mod_path = tree.temp_path(&format!("{version}.mod"));
    let zip_path = tree.temp_path(&format!("{version}.zip"));
    let _cleanup = Remove(vec![mod_path.clone(), zip_path.clone()]);
    let gomod = origin.get_to_file(
        module,
        version,
        VersionFile::Mod,
        modzip::MAX_GO_MOD,
        &mod_path,
    );
    let zip = async {
        if with_zip {
            origin
                .get_to_file(
                    module,
                    version,
                    VersionFile::Zip,
                    modzip::MAX_ZIP_FILE,
                    &zip_path,
                )
                .await
                .map(Some)
        } else {
            Ok(None)
        }
    };
    let (gomod, zip) = tokio::join!(gomod, zip);
    let (gomod, zip) = match (gomod, zip) {
        (Ok(m), Ok(z)) => (m, z),
        (Err(e), _) | (_, Err(e)) if e.is_not_found() => return Ok(Found::Gone(e.to_string())),
        (Err(e), _) | (_, Err(e)) => return Ok(Found::Failed(e.to_string())),
    };
    let mod_h1 = dirhash::go_mod_hash(gomod.sha256);
    let zip_h1 = match zip {
        None => None,
        Some(_) => {
            let (p, m, v) = (zip_path.clone(), module.to_string(), version.to_string());
            let checked =
                tokio::task::spawn_blocking(move || modzip::check_and_hash_zip(&p, &m, &v)).await;
            match checked {
                Ok(Ok(s)) => Some(s.h1),
                Ok(Err(e)) => return Ok(Found::Failed(format!("invalid module zip: {e}"))),
                Err(e) => return Ok(Found::Failed(format!("zip check crashed: {e}"))),
            }
        }
    };
    Ok(
        match super::ledger::compare(
            db,
            module,
            version,
            &mod_h1,
            zip_h1.as_deref(),
            "the repository",
        )
        .await?
        {
            None => Found::Same,
            Some(why) => Found::Moved(why),
        },
    )
}

/// Temporary files removed when dropped.
struct Remove(Vec<std::path::PathBuf>);

impl Drop for Remove {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}
