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

use crate::discover::{Preview, Recorder, discover_all};
use crate::fetch::{WorkSource, fetch_and_publish};
use crate::lock::RunLock;
use crate::plan;
use crate::prune::{self, recheck::recheck};
use crate::publish::lists::rewrite_dirty_lists;
use crate::report::summary::SyncReport;
use crate::report::{self, Reporter};
use crate::runner::{self, Fatal};
use crate::settings::Settings;
use crate::state::db::Db;
use crate::state::{FilterChange, State, Todo};
use crate::store::Store;
use crate::trust::{open_log, restore_served_head, save_heads};

/// Flags of `gomirror sync`.
#[derive(Clone, Debug, Default)]
pub struct SyncOptions {
    /// Walk the index and print what would be fetched and deleted; change
    /// nothing at all (state database, checksum database, tree).
    pub dry_run: bool,
    /// Retry failed versions now instead of waiting for their retry time.
    pub retry_failed: bool,
}

/// Runs one sync under the lock (taken by the caller).
pub fn run(settings: &Settings, opts: &SyncOptions, out: &Reporter, _lock: &RunLock) -> SyncReport {
    if opts.dry_run {
        return dry_run(settings, opts, out);
    }
    let started = Instant::now();
    let fresh = || SyncReport {
        dry_run: opts.dry_run,
        ..SyncReport::default()
    };
    let result = runner::run_command(settings, "sync", async |db, tree| {
        let mut report = fresh();
        let outcome = async {
            let n = tree.clean_staging().map_err(Fatal::from)?;
            if n > 0 {
                out.verbose(&format!(
                    "removed {n} temporary files left by an earlier run"
                ));
            }
            pipeline(settings, opts, out, &mut report, db, tree).await
        }
        .await;
        // A display left running by an early error is cleared before the summary.
        out.finish();
        if let Err(e) = outcome {
            report.fatal = Some(e.render());
        }
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    });
    result.unwrap_or_else(|e| SyncReport {
        fatal: Some(e.render()),
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
    let upstream = settings.upstream().map_err(Fatal::Stopped)?;

    // The filter is state: a changed filter backfills or stops wanting modules.
    let filter = settings.filter.clone();
    let fingerprint = filter.fingerprint();
    let change: FilterChange = db
        .call(move |s| s.apply_filter(&fingerprint, &|p| filter.wants(p)))
        .await?;
    report.newly_wanted_modules = change.newly_wanted_modules;
    report.backfilled_versions = change.queued_versions;
    report.unwanted_modules = change.unwanted_modules;

    let mut intake = Recorder {
        db,
        filter: settings.filter.clone(),
        out,
        report: &mut *report,
    };
    discover_all(settings, &mut intake).await?;

    // The checksum database: prove the new head extends the one trusted before.
    let client = Arc::new(open_log(settings, db, tree, &upstream).await?);
    let latest = client.refresh_latest().await.map_err(Fatal::from)?;
    report.tree_size = Some(latest.tree.n);
    save_heads(db, &client).await?;

    let now = report::now();
    let retry_failed = opts.retry_failed;
    let todo = db.call(move |s| s.count_todo(now, retry_failed)).await?;
    let due = todo.due;
    report.deferred = todo.deferred;
    report.missing_waiting = todo.missing;

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
        let origin = settings.origin().map_err(Fatal::Stopped)?;
        recheck(settings, out, report, db, &origin).await?;
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
    let upstream = settings.upstream().map_err(Fatal::Stopped)?;
    let client = Arc::new(open_log(settings, db, tree, &upstream).await?);
    client.refresh_latest().await.map_err(Fatal::from)?;
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
    client.write_static_files().await.map_err(Fatal::from)?;
    report.bytes = upstream.bytes_received();
    Ok(report)
}

/// `sync --dry-run`: the plan, printed as it is found, and nothing changed —
/// not the state database (opened read-only; no run is recorded), not the
/// checksum database's trusted head, not the tree. Discovery walks the same
/// sources as a sync into a [`Preview`], which asks the state database what
/// is new instead of recording it.
fn dry_run(settings: &Settings, opts: &SyncOptions, out: &Reporter) -> SyncReport {
    let started = Instant::now();
    let mut report = SyncReport {
        dry_run: true,
        ..SyncReport::default()
    };
    let outcome = (|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| Fatal::context("cannot start the async runtime", e))?;
        runtime.block_on(async {
            let state = State::open_for_preview(&settings.state)?;
            let (db, db_thread) = Db::spawn(state);
            let result = preview(settings, opts, out, &mut report, &db).await;
            drop(db);
            if db_thread.join().is_err() {
                return Err(Fatal::stopped("the state database thread crashed"));
            }
            result
        })
    })();
    out.finish();
    if let Err(e) = outcome {
        report.fatal = Some(e.render());
    }
    report.seconds = started.elapsed().as_secs_f64();
    report
}

async fn preview(
    settings: &Settings,
    opts: &SyncOptions,
    out: &Reporter,
    report: &mut SyncReport,
    db: &Db,
) -> Result<(), Fatal> {
    let filter = settings.filter.clone();
    plan::print_filter_change(db, &filter, settings.prune.enabled, report).await?;
    let mut intake = Preview::new(db, filter.clone(), out, &mut *report);
    discover_all(settings, &mut intake).await?;

    let now = report::now();
    let retry_failed = opts.retry_failed;
    let todo = db.call(move |s| s.count_todo(now, retry_failed)).await?;
    report.deferred = todo.deferred;
    report.missing_waiting = todo.missing;
    report.attempted += plan::print_fetches(db, &filter, now, retry_failed).await?;

    // A mirror with no tree yet has nothing to prune; opening one would create it.
    if settings.prune.enabled && (settings.bucket.is_some() || settings.output.is_dir()) {
        let tree = settings.open_store().map_err(Fatal::from)?;
        report.pruned = Some(prune::run_with_db(settings, db, &tree, out, true, false).await?);
    }
    if let Ok(upstream) = settings.upstream() {
        report.bytes = upstream.bytes_received();
    }
    Ok(())
}
