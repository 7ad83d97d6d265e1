//! Asking the origin again about published versions: a version it no
//! longer has (404/410 for longer than the grace period) is marked gone, and
//! the prune that follows deletes it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::check::INFO_LIMIT;
use crate::fatal::Fatal;
use crate::report::summary::SyncReport;
use crate::report::{self, Reporter};
use crate::settings::Settings;
use crate::source::{Origin, OriginError, VersionFile};
use crate::state;
use crate::state::db::Db;

/// Asks the upstream again about published versions not checked for
/// `prune.recheck_interval` (at most `prune.recheck_batch` per run): a 404/410
/// marks the version as removed upstream, and the prune that follows deletes it.
pub async fn recheck(
    settings: &Settings,
    out: &Reporter,
    report: &mut SyncReport,
    db: &Db,
    origin: &Arc<dyn Origin>,
) -> Result<(), Fatal> {
    let now = report::now();
    let Some(cutoff) = settings.prune.recheck_cutoff(now) else {
        return Ok(());
    };
    let batch = settings.prune.recheck_batch;
    let due = db.call(move |s| s.due_rechecks(cutoff, batch)).await?;
    if due.is_empty() {
        return Ok(());
    }
    let sem = Arc::new(Semaphore::new(settings.workers));
    let mut tasks = tokio::task::JoinSet::new();
    for t in due {
        let permit = sem.clone().acquire_owned().await.expect("semaphore open");
        let origin = origin.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let result = origin
                .get(&t.path, &t.version, VersionFile::Info, INFO_LIMIT)
                .await
                .map(|_| ())
                .map_err(|e| match e {
                    OriginError::Name { reason, .. } => RecheckError::Path(reason),
                    e => RecheckError::Fetch(e),
                });
            (t, result)
        });
    }
    let mut still_there = Vec::new();
    let grace = settings.prune.missing_grace_secs();
    let note_error = |report: &mut SyncReport, msg: String| {
        report.recheck_errors += 1;
        out.warn(&format!("recheck: {msg}"));
        if report.recheck_samples.len() < 20 {
            report.recheck_samples.push(msg);
        }
    };
    while let Some(joined) = tasks.join_next().await {
        let (t, result) = match joined {
            Ok(r) => r,
            Err(e) => {
                note_error(report, format!("a recheck task crashed: {e}"));
                continue;
            }
        };
        match result {
            Ok(()) => {
                report.rechecked += 1;
                still_there.push((t.module_id, t.version));
            }
            Err(RecheckError::Fetch(e)) if e.is_not_found() => {
                report.rechecked += 1;
                let msg = format!("removed from the upstream: {e}");
                let (mid, ver) = (t.module_id, t.version.clone());
                let outcome = db
                    .call(move |s| s.mark_recheck_not_found(mid, &ver, &msg, now, grace))
                    .await?;
                match outcome {
                    state::NotFound::Gone { .. } => {
                        report.removed_upstream += 1;
                        out.warn(&format!(
                            "{}@{}: removed from the upstream ({e}); it will be pruned",
                            t.path, t.version
                        ));
                    }
                    state::NotFound::NotYet { .. } => out.warn(&format!(
                        "{}@{}: the upstream answered {e}; kept, and asked again next run (pruned only after {} of 404s)",
                        t.path,
                        t.version,
                        report::duration(Duration::from_secs(grace.max(0) as u64))
                    )),
                }
            }
            // Anything else says nothing about the version: ask again next run.
            Err(RecheckError::Fetch(e)) => {
                note_error(report, format!("{}@{}: {e}", t.path, t.version))
            }
            Err(RecheckError::Path(e)) => note_error(
                report,
                format!("{}@{}: cannot name its files: {e}", t.path, t.version),
            ),
        }
    }
    db.call(move |s| s.mark_checked(&still_there, now)).await?;
    Ok(())
}

/// Why a published version could not be asked about again.
enum RecheckError {
    Fetch(OriginError),
    /// Its module path or version cannot be escaped into a URL path.
    Path(String),
}
