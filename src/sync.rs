//! `gomirror sync`: one incremental pass.
//!
//! ```text
//! discover ──► plan ──► fetch ──► check ──► publish ──► prune ──► report
//! ```
//!
//! Each stage is a module of its own ([`crate::discover`], [`crate::plan`],
//! [`crate::fetch`], [`crate::check`], [`crate::publish`], [`crate::prune`],
//! [`crate::report`]); this one runs them in order. A security failure (bad
//! signature, forked log) stops the run: nothing further is published. A
//! failed version is recorded with its reason and retried on a later run
//! after a growing delay.

use std::sync::Arc;
use std::time::Instant;

use crate::discover::{discover, seed};
use crate::fetch::{WorkSource, fetch_and_publish};
use crate::http::Upstream;
use crate::lock::RunLock;
use crate::plan;
use crate::prune::{self, recheck::recheck};
use crate::publish::lists::rewrite_dirty_lists;
use crate::report::summary::SyncReport;
use crate::report::{self, Reporter};
use crate::runner::{self, Fatal};
use crate::settings::Settings;
use crate::state::db::Db;
use crate::state::{FilterChange, Todo};
use crate::store::Store;
use crate::trust::{open_log, restore_served_head, save_heads};

/// Flags of `gomirror sync`.
#[derive(Clone, Debug, Default)]
pub struct SyncOptions {
    /// Walk the index and print what would be fetched and deleted; change nothing in the tree.
    pub dry_run: bool,
    /// Retry failed versions now instead of waiting for their retry time.
    pub retry_failed: bool,
}

/// Runs one sync under the lock (taken by the caller).
pub fn run(settings: &Settings, opts: &SyncOptions, out: &Reporter, _lock: &RunLock) -> SyncReport {
    let started = Instant::now();
    let fresh = || SyncReport {
        dry_run: opts.dry_run,
        ..SyncReport::default()
    };
    let result = runner::run_command(settings, "sync", async |db, tree| {
        let mut report = fresh();
        let outcome = async {
            if !opts.dry_run {
                let n = tree.clean_staging().map_err(|e| Fatal(e.to_string()))?;
                if n > 0 {
                    out.verbose(&format!(
                        "removed {n} temporary files left by an earlier run"
                    ));
                }
            }
            pipeline(settings, opts, out, &mut report, db, tree).await
        }
        .await;
        // A display left running by an early error is cleared before the summary.
        out.finish();
        if let Err(Fatal(m)) = outcome {
            report.fatal = Some(m);
        }
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    });
    result.unwrap_or_else(|Fatal(m)| SyncReport {
        fatal: Some(m),
        seconds: started.elapsed().as_secs_f64(),
        ..fresh()
    })
}

impl runner::Outcome for SyncReport {
    fn exit_code(&self) -> i32 {
        SyncReport::exit_code(self)
    }
}

async fn pipeline(
    settings: &Settings,
    opts: &SyncOptions,
    out: &Reporter,
    report: &mut SyncReport,
    db: &Db,
    tree: &Arc<dyn Store>,
) -> Result<(), Fatal> {
    let upstream = Arc::new(Upstream::new(settings.timeout, settings.workers).map_err(Fatal)?);

    // The filter is state: a changed filter backfills or stops wanting modules.
    let filter = settings.filter.clone();
    let fingerprint = filter.fingerprint();
    let change: FilterChange = db
        .call(move |s| s.apply_filter(&fingerprint, &|p| filter.wants(p)))
        .await?;
    report.newly_wanted_modules = change.newly_wanted_modules;
    report.backfilled_versions = change.queued_versions;
    report.unwanted_modules = change.unwanted_modules;

    discover(settings, out, report, db, &upstream).await?;
    seed(settings, out, report, db, &upstream).await?;

    // The checksum database: prove the new head extends the one trusted before.
    let client = Arc::new(open_log(settings, db, tree, &upstream).await?);
    let latest = client
        .refresh_latest()
        .await
        .map_err(|e| Fatal(e.to_string()))?;
    report.tree_size = Some(latest.tree.n);
    save_heads(db, &client).await?;

    let now = report::now();
    let retry_failed = opts.retry_failed;
    let todo = db.call(move |s| s.count_todo(now, retry_failed)).await?;
    let due = todo.due;
    report.deferred = todo.deferred;
    report.missing_waiting = todo.missing;

    if opts.dry_run {
        report.attempted = plan::print_fetches(db, now, retry_failed).await?;
        if settings.prune.enabled {
            report.pruned = Some(prune::run_with_db(settings, db, tree, out, true, false).await?);
        }
        return Ok(());
    }

    // Lists left stale by a killed run are rewritten first.
    rewrite_dirty_lists(db, tree).await?;
    restore_served_head(settings, db, tree, &upstream).await?;

    if due > 0 {
        let source = WorkSource::Due { now, retry_failed };
        fetch_and_publish(
            settings, source, out, report, db, tree, &upstream, &client, due,
        )
        .await?;
    }
    save_heads(db, &client).await?;

    if settings.prune.enabled {
        recheck(settings, out, report, db, &upstream).await?;
        let summary = prune::run_with_db(settings, db, tree, out, false, false).await?;
        report.pruned = Some(summary);
    }
    rewrite_dirty_lists(db, tree).await?;
    report.bytes = upstream.bytes_received();
    Ok(())
}

/// Fetches, verifies and republishes exactly `todos` (for `verify --repair`).
pub async fn refetch(
    settings: &Settings,
    out: &Reporter,
    db: &Db,
    tree: &Arc<dyn Store>,
    todos: Vec<Todo>,
) -> Result<SyncReport, Fatal> {
    let mut report = SyncReport::default();
    let upstream = Arc::new(Upstream::new(settings.timeout, settings.workers).map_err(Fatal)?);
    let client = Arc::new(open_log(settings, db, tree, &upstream).await?);
    client
        .refresh_latest()
        .await
        .map_err(|e| Fatal(e.to_string()))?;
    save_heads(db, &client).await?;
    let due = todos.len() as u64;
    fetch_and_publish(
        settings,
        WorkSource::List(todos),
        out,
        &mut report,
        db,
        tree,
        &upstream,
        &client,
        due,
    )
    .await?;
    save_heads(db, &client).await?;
    client
        .write_static_files()
        .await
        .map_err(|e| Fatal(e.to_string()))?;
    report.bytes = upstream.bytes_received();
    Ok(report)
}
