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
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::discover::{Preview, Recorder, discover_all};
use crate::fetch::{WorkSource, fetch_and_publish};
use crate::lock::RunLock;
use crate::plan;
use crate::prune::{self, recheck::recheck};
use crate::publish::feed::write_feed;
use crate::publish::lists::rewrite_dirty_lists;
use crate::report::summary::{SyncReport, TreeSummary};
use crate::report::{self, Reporter};
use crate::runner::{self, Fatal};
use crate::settings::Settings;
use crate::state::db::Db;
use crate::state::{FilterChange, Todo};
use crate::store::Store;
use crate::sumdb::client::LogClient;
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
    // A mirror with no upstream (fed by `gomirror import`) has nothing to sync.
    if let Err(e) = settings.origin() {
        return SyncReport {
            dry_run: opts.dry_run,
            fatal: Some(e),
            ..SyncReport::default()
        };
    }
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
        match outcome {
            Ok(()) => {}
            Err(Fatal::Interrupted { signal }) => {
                report.interrupted = Some(signal);
                // The abandoned downloads' files are removed as their workers
                // drop; one whose write was in flight on the blocking pool can
                // reappear after that. Best effort here; the next run's
                // start removes whatever is left (staging is never served).
                let t = tree.clone();
                let _ = tokio::task::spawn_blocking(move || t.clean_staging()).await;
            }
            Err(e) => report.fatal = Some(e.render()),
        }
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    });
    result.unwrap_or_else(|e| match e {
        Fatal::Interrupted { signal } => SyncReport {
            interrupted: Some(signal),
            seconds: started.elapsed().as_secs_f64(),
            ..fresh()
        },
        e => SyncReport {
            fatal: Some(e.render()),
            seconds: started.elapsed().as_secs_f64(),
            ..fresh()
        },
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

    // A walk that goes on for a while (a new mirror, a large backfill) gets
    // downloads beside it; a short one (the usual cron run) is over first.
    let walk_done = AtomicBool::new(false);
    let mut early = SyncReport::default();
    let mut early_client: Option<Arc<LogClient>> = None;
    {
        let mut intake = Recorder {
            db,
            filter: settings.filter.clone(),
            out,
            report: &mut *report,
        };
        let walk = async {
            let walked = discover_all(settings, &mut intake).await;
            walk_done.store(true, Ordering::SeqCst);
            walked
        };
        let beside = fetch_beside_the_walk(
            settings,
            opts,
            out,
            &mut early,
            &mut early_client,
            db,
            tree,
            &upstream,
            &walk_done,
        );
        tokio::try_join!(walk, beside)?;
    }
    runner::stop_if_interrupted()?;

    // The checksum database: prove the new head extends the one trusted before.
    let client = match early_client {
        Some(c) => c,
        None => Arc::new(open_log(settings, db, tree, &upstream).await?),
    };
    let latest = client.refresh_latest().await.map_err(Fatal::from)?;
    report.tree_size = Some(latest.tree.n);
    save_heads(db, &client).await?;

    let now = report::now();
    let retry_failed = opts.retry_failed;
    let todo = db.call(move |s| s.count_todo(now, retry_failed)).await?;
    let due = todo.due;
    // Versions that failed or were not there beside the walk wait for their
    // retry time now: they are this run's, not "from earlier runs".
    report.deferred = todo.deferred.saturating_sub(early.failures.len() as u64);
    report.missing_waiting = todo.missing.saturating_sub(early.not_yet);

    // Lists left stale by a killed run are rewritten first, then the feed
    // entries a killed run recorded but did not write.
    rewrite_dirty_lists(db, tree).await?;
    write_feed(settings, db, tree).await?;
    restore_served_head(settings, db, tree, &upstream).await?;

    if due > 0 {
        let source = WorkSource::Due { now, retry_failed };
        fetch_and_publish(
            settings, source, out, report, db, tree, &upstream, &client, due,
        )
        .await?;
    }
    add_fetched(report, early);
    save_heads(db, &client).await?;
    runner::stop_if_interrupted()?;

    if settings.prune.enabled {
        let origin = settings.origin().map_err(Fatal::Stopped)?;
        recheck(settings, out, report, db, &origin).await?;
        let summary = prune::run_with_db(settings, db, tree, out, false, false).await?;
        report.pruned = Some(summary);
    }
    // The vulnerability database, last: refused, it stops the run before
    // the trace, and the modules published above stand.
    crate::vuln::sync_stage(
        &upstream,
        tree,
        db,
        &settings.vulndb.urls,
        settings.vulndb.implied,
        out,
    )
    .await?;
    rewrite_dirty_lists(db, tree).await?;
    write_feed(settings, db, tree).await?;
    report.bytes = upstream.bytes_received();
    report.tree = Some(write_trace(settings, db, tree, report.published).await?);
    Ok(())
}

/// Rewrites `<output>/trace/<mirror.name>.json`, last: everything it
/// describes is in place. Written when this run published something, and
/// also when the trace is missing or describes another state (versions,
/// index cursor, checksum tree: a prune, a cursor that moved, a run killed
/// after publishing and before its trace), so it never lags the tree.
/// Returns what the tree holds.
pub async fn write_trace(
    settings: &Settings,
    db: &Db,
    tree: &Arc<dyn Store>,
    published: u64,
) -> Result<TreeSummary, Fatal> {
    let (own, following) = (settings.upstream_name(), settings.follow.is_some());
    let (cursor, counts, head, chain) = db
        .call(move |s| {
            Ok((
                s.cursor()?,
                s.tree_counts()?,
                s.trusted_head()?,
                crate::publish::feed::upstream_chain(s, own, following)?,
            ))
        })
        .await?;
    let trace = report::trace::Trace {
        mirror: settings.mirror_name.clone(),
        gomirror_version: env!("CARGO_PKG_VERSION"),
        finished: crate::clock::rfc3339(report::now()),
        index_cursor: settings
            .index
            .as_ref()
            .and(cursor.as_deref())
            .and_then(report::trace::rfc3339_utc),
        versions: counts.0,
        published,
        sumdb_tree_size: head.map(|h| h.size),
        upstream_chain: chain,
    };
    if published == 0 {
        // Nothing new: rewritten only if it does not describe this tree.
        let key = report::trace::key(&settings.mirror_name);
        let current = tree
            .read(&key, 1 << 20)
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        let described = |t: &serde_json::Value| {
            ["versions", "index_cursor", "sumdb_tree_size"].map(|k| t.get(k).cloned())
        };
        let wanted = serde_json::to_value(&trace).expect("serializable");
        if current.is_some_and(|c| described(&c) == described(&wanted)) {
            return Ok(tree_summary(tree, counts));
        }
    }
    let t = tree.clone();
    tokio::task::spawn_blocking(move || report::trace::write(t.as_ref(), &trace))
        .await
        .map_err(|e| Fatal::crashed("the trace writer", e))?
        .map_err(Fatal::from)?;
    Ok(tree_summary(tree, counts))
}

fn tree_summary(tree: &Arc<dyn Store>, (versions, bytes): (i64, i64)) -> TreeSummary {
    TreeSummary {
        store: tree.describe(),
        versions,
        bytes: bytes.max(0) as u64,
    }
}

/// How long a walk of the index runs before downloads start beside it.
/// `GOMIRROR_TEST_EARLY_FETCH_MS` overrides it in debug builds (tests).
fn early_fetch_after() -> Duration {
    if cfg!(debug_assertions)
        && let Some(ms) = std::env::var("GOMIRROR_TEST_EARLY_FETCH_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
    {
        return Duration::from_millis(ms);
    }
    Duration::from_secs(5)
}

/// Downloads what the walk has queued so far, while it goes on: nothing
/// happens unless the walk is still running after [`early_fetch_after`].
/// Then the checksum database's head is refreshed (and kept for the rest of
/// the run) and due versions are fetched and published batch by batch, until
/// the walk ends; what it queues after the last pass is fetched by the sync's
/// own pass right after it. Counts go into `early` (added to the summary by
/// [`add_fetched`]).
#[allow(clippy::too_many_arguments)]
async fn fetch_beside_the_walk(
    settings: &Settings,
    opts: &SyncOptions,
    out: &Reporter,
    early: &mut SyncReport,
    early_client: &mut Option<Arc<LogClient>>,
    db: &Db,
    tree: &Arc<dyn Store>,
    upstream: &Arc<crate::http::Upstream>,
    walk_done: &AtomicBool,
) -> Result<(), Fatal> {
    let deadline = tokio::time::Instant::now() + early_fetch_after();
    while tokio::time::Instant::now() < deadline {
        if walk_done.load(Ordering::SeqCst) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    while !walk_done.load(Ordering::SeqCst) {
        let client = match early_client {
            Some(c) => c.clone(),
            None => {
                let c = Arc::new(open_log(settings, db, tree, upstream).await?);
                c.refresh_latest().await.map_err(Fatal::from)?;
                save_heads(db, &c).await?;
                out.verbose("index walk still running: downloading what it found so far");
                early_client.insert(c).clone()
            }
        };
        let (now, retry_failed) = (report::now(), opts.retry_failed);
        let todo = db.call(move |s| s.count_todo(now, retry_failed)).await?;
        if todo.due == 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let mut pass = SyncReport::default();
        let source = WorkSource::Due { now, retry_failed };
        fetch_and_publish(
            settings, source, out, &mut pass, db, tree, upstream, &client, todo.due,
        )
        .await?;
        save_heads(db, &client).await?;
        add_fetched(early, pass);
    }
    Ok(())
}

/// Adds the download counts of an earlier pass (beside the walk) to `report`.
fn add_fetched(report: &mut SyncReport, pass: SyncReport) {
    report.attempted += pass.attempted;
    report.published += pass.published;
    report.gone += pass.gone;
    report.not_yet += pass.not_yet;
    report.failures.extend(pass.failures);
    report.failed = report.failures.len() as u64;
    // A lie seen beside the walk still makes the run exit 1.
    report.security_events.extend(pass.security_events);
    crate::http::list::add_stats(&mut report.upstreams, pass.upstreams);
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
    let outcome = runner::run_preview(settings, async |db| {
        preview(settings, opts, out, &mut report, db).await
    });
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
