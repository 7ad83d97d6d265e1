//! Asking the origin again about published versions: a version it no
//! longer has (404/410 for longer than the grace period) is marked gone, and
//! the prune that follows deletes it.
//!
//! Every published version is asked about once per `prune.recheck_interval`,
//! whatever the mirror's size: each sync takes the next stretch of a pass
//! over the tree (a [`crate::state::Cycle`]), as long as keeps the pass on
//! schedule — about `versions × time since the last sync / interval` — and
//! at most `prune.recheck_rate` requests per second since the last sync.
//! When that rate cannot keep up (a full mirror of 72 M versions needs ~120
//! requests a second for a week's interval), the pass ends late and `status`
//! says when it will end.

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

/// The recheck pass's name in the state database ([`crate::state::Cycle`]).
const CYCLE: &str = "recheck";
/// A pass that never ran counts as begun this long ago: a first run asks
/// about one sync interval's worth (syncs usually run every few minutes).
const FIRST_GAP: i64 = 300;
/// A run after a long pause asks about at most an hour's worth: the pass
/// then ends late rather than one sync taking the backlog at once.
const MAX_GAP: i64 = 3600;
/// The rate bound counts at least a minute since the last run, so a run
/// right after another still asks about something.
const MIN_RATE_WINDOW: i64 = 60;
/// Versions asked about again for a 404 within the grace period, per run.
const NOT_FOUND_MAX: usize = 10_000;
/// Versions read from the state database at a time.
const PAGE: usize = 1000;

/// How many published versions this run asks about: enough to ask about
/// every one of `total` once per `interval`, given how long ago the pass
/// began and the last run asked ([`crate::state::Cycle::due`]), bounded by
/// `rate` requests per second since the last run and by `batch`.
pub fn recheck_due(
    cycle: &crate::state::Cycle,
    total: u64,
    interval: Duration,
    rate: u64,
    batch: Option<u64>,
    now: i64,
) -> u64 {
    let period = i64::try_from(interval.as_secs()).unwrap_or(i64::MAX);
    let due = cycle.due(total, period, now, FIRST_GAP, MAX_GAP);
    let since_last = cycle
        .last_run
        .map_or(FIRST_GAP, |t| now - t)
        .clamp(MIN_RATE_WINDOW, MAX_GAP);
    due.min(rate.saturating_mul(since_last as u64))
        .min(batch.unwrap_or(u64::MAX))
}

/// Asks the upstream again about published versions, so that every one is
/// asked once per `prune.recheck_interval` ([`recheck_due`] sizes the run's
/// stretch of the pass, at most `prune.recheck_rate` requests per second on
/// average), plus those it answered 404/410 for last time: a 404/410 marks
/// the version as removed upstream once the grace period has passed, and
/// the prune that follows deletes it.
pub async fn recheck(
    settings: &Settings,
    out: &Reporter,
    report: &mut SyncReport,
    db: &Db,
    origin: &Arc<dyn Origin>,
) -> Result<(), Fatal> {
    let now = report::now();
    let Some(interval) = settings.prune.recheck_interval else {
        return Ok(());
    };
    let (mut cycle, total, not_found) = db
        .call(|s| {
            Ok((
                s.cycle(CYCLE)?,
                s.in_tree_count()?,
                s.rechecks_not_found(NOT_FOUND_MAX)?,
            ))
        })
        .await?;
    let mut due = recheck_due(
        &cycle,
        total,
        interval,
        settings.prune.recheck_rate,
        settings.prune.recheck_batch,
        now,
    );
    let grace = settings.prune.missing_grace_secs();
    let mut asked: std::collections::HashSet<(i64, String)> = not_found
        .iter()
        .map(|t| (t.module_id, t.version.clone()))
        .collect();
    ask(settings, out, report, db, origin, not_found, now, grace).await?;
    let mut wrapped = false;
    while due > 0 {
        let after = cycle.after.clone();
        let limit = (due as usize).min(PAGE);
        let page = db
            .call(move |s| s.recheck_page(after.as_ref().map(|(i, v)| (*i, v.as_str())), limit))
            .await?;
        let last = page.last().map(|t| (t.module_id, t.version.clone()));
        let n = page.len() as u64;
        let fresh: Vec<Todo> = page
            .into_iter()
            .filter(|t| asked.insert((t.module_id, t.version.clone())))
            .collect();
        ask(settings, out, report, db, origin, fresh, now, grace).await?;
        cycle.advance(n, last, now);
        due = due.saturating_sub(n);
        if (n as usize) < limit {
            // The end of the tree: the pass is complete; the next begins
            // (in this run, if it still has versions to ask about).
            cycle.wrap(now);
            if wrapped {
                break;
            }
            wrapped = true;
        }
        let c = cycle.clone();
        db.call(move |s| s.save_cycle(CYCLE, &c)).await?;
    }
    cycle.last_run = Some(now);
    let c = cycle.clone();
    db.call(move |s| s.save_cycle(CYCLE, &c)).await?;
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
