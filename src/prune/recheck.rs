//! Asking the origin again about published versions: a version it no
//! longer has (404/410 for longer than the grace period) is marked gone, and
//! the prune that follows deletes it.
//!
//! Every published version is asked about once per `prune.recheck_interval`,
//! whatever the mirror's size: each sync asks about the versions whose last
//! check (or publication) is older than that, oldest first — about
//! `versions × time since the last sync / interval` of them in a steady
//! state — read from an index of the tree by last check, at most
//! `prune.recheck_rate` requests per second since the last sync.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::check::INFO_LIMIT;
use crate::fatal::Fatal;
use crate::report::summary::SyncReport;
use crate::report::{self, Reporter};
use crate::settings::Settings;
use crate::source::{Origin, OriginError, VersionFile};
use crate::state::db::Db;
use crate::state::{self, Todo};

/// When the last run asked (`meta`): the rate bound counts from there.
const LAST_RUN: &str = "recheck.last_run";
/// A run counts at least a minute since the last one, so a run right after
/// another still asks about something, and at most an hour, so a run after a
/// long pause does not take the whole backlog at once.
const RATE_WINDOW: (i64, i64) = (60, 3600);
/// Versions read from the state database at a time.
const PAGE: usize = 1000;

/// How many published versions this run may ask about: `rate` requests per
/// second since the last run asked (at least a minute's worth, at most an
/// hour's; a first run counts five minutes), and at most `batch`.
pub fn recheck_budget(last_run: Option<i64>, rate: u64, batch: Option<u64>, now: i64) -> u64 {
    let since = last_run
        .map_or(300, |t| now - t)
        .clamp(RATE_WINDOW.0, RATE_WINDOW.1);
    rate.saturating_mul(since as u64)
        .min(batch.unwrap_or(u64::MAX))
}

/// Asks the upstream again about published versions not asked about for
/// `prune.recheck_interval` (publishing counts as asking), oldest first, at
/// most [`recheck_budget`] of them: so every version is asked about once per
/// interval whatever the mirror's size, as long as `prune.recheck_rate`
/// allows (a full mirror of 72 M versions needs ~120 requests a second for a
/// week's interval; below that, versions are asked about late, oldest
/// first, and `status` says so). A 404/410 marks the version as removed
/// upstream once the grace period has passed, and the prune that follows
/// deletes it; until then it stays due and is asked again on every run.
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
    let last_run = db
        .call(|s| Ok(s.meta(LAST_RUN)?.and_then(|v| v.parse::<i64>().ok())))
        .await?;
    let mut budget = recheck_budget(
        last_run,
        settings.prune.recheck_rate,
        settings.prune.recheck_batch,
        now,
    );
    let grace = settings.prune.missing_grace_secs();
    let mut after: Option<(i64, i64, String)> = None;
    while budget > 0 {
        let a = after.clone();
        let limit = (budget as usize).min(PAGE);
        let page = db
            .call(move |s| {
                s.due_rechecks(
                    cutoff,
                    a.as_ref().map(|(t, i, v)| (*t, *i, v.as_str())),
                    limit,
                )
            })
            .await?;
        let Some((last, at)) = page.last() else { break };
        after = Some((*at, last.module_id, last.version.clone()));
        let n = page.len();
        budget = budget.saturating_sub(n as u64);
        let todos = page.into_iter().map(|(t, _)| t).collect();
        ask(settings, out, report, db, origin, todos, now, grace).await?;
        if n < limit {
            break;
        }
    }
    db.call(move |s| s.set_meta(LAST_RUN, &now.to_string()))
        .await?;
    Ok(())
}

/// Asks the origin about `versions` (at most `mirror.workers` at once) and
/// records what it answered.
#[allow(clippy::too_many_arguments)]
async fn ask(
    settings: &Settings,
    out: &Reporter,
    report: &mut SyncReport,
    db: &Db,
    origin: &Arc<dyn Origin>,
    versions: Vec<Todo>,
    now: i64,
    grace: i64,
) -> Result<(), Fatal> {
    if versions.is_empty() {
        return Ok(());
    }
    let sem = Arc::new(Semaphore::new(settings.workers));
    let mut tasks = tokio::task::JoinSet::new();
    for t in versions {
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
            // Anything else says nothing about the version: it is asked
            // again in the next pass.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_follows_the_rate_and_the_time_since_the_last_run() {
        let now = 1_000_000;
        // Five minutes since the last run at 50 a second.
        assert_eq!(recheck_budget(Some(now - 300), 50, None, now), 15_000);
        // A first run counts five minutes; a run right after another a minute.
        assert_eq!(recheck_budget(None, 50, None, now), 15_000);
        assert_eq!(recheck_budget(Some(now - 1), 50, None, now), 3_000);
        // A long pause counts an hour: the backlog is not taken at once.
        assert_eq!(recheck_budget(Some(now - 86_400), 10, None, now), 36_000);
        // recheck_batch caps it.
        assert_eq!(recheck_budget(Some(now - 300), 50, Some(1000), now), 1000);
    }
}
