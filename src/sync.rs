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

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::context::Gates;
use crate::discover::{Preview, Recorder, discover_all};
use crate::fatal::{Fatal, stop_if_interrupted};
use crate::fetch::{self, WorkSource};
use crate::lock::RunLock;
use crate::plan;
use crate::prune::{self, recheck::recheck};
use crate::publish::feed::write_feed;
use crate::publish::lists::rewrite_dirty_lists;
use crate::report::summary::SyncReport;
use crate::report::trace::write_trace;
use crate::report::{self, Reporter};
use crate::runner;
use crate::services::{self, Services, Upstreams};
use crate::settings::Settings;
use crate::state::FilterChange;
use crate::state::db::Db;

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
    if let Err(e) = services::require_proxy(settings) {
        return SyncReport {
            dry_run: opts.dry_run,
            fatal: Some(e.render()),
            ..SyncReport::default()
        };
    }
    if opts.dry_run {
        return dry_run(settings, opts, out);
    }
    let started = Instant::now();
    let fresh = || SyncReport {
        dry_run: opts.dry_run,
        missing_grace: settings.prune.missing_grace,
        ..SyncReport::default()
    };
    let result = runner::run_command(settings, "sync", async |svc| {
        let mut report = fresh();
        let outcome = async {
            let n = svc.tree.clean_staging().map_err(Fatal::from)?;
            if n > 0 {
                out.verbose(&format!(
                    "removed {n} temporary files left by an earlier run"
                ));
            }
            pipeline(settings, opts, out, &mut report, svc).await
        }
        .await;
        // Counted whichever way the pipeline ended (an interrupted run too).
        report.bytes = svc.upstreams.http.bytes_received();
        // A display left running by an early error is cleared before the summary.
        out.finish();
        match outcome {
            Ok(()) => {}
            Err(Fatal::Interrupted { signal, .. }) => {
                report.interrupted = Some(signal);
                // The abandoned downloads' files are removed as their workers
                // drop; one whose write was in flight on the blocking pool can
                // reappear after that. Best effort here; the next run's
                // start removes whatever is left (staging is never served).
                let t = svc.tree.clone();
                let _ = tokio::task::spawn_blocking(move || t.clean_staging()).await;
            }
            Err(e) => report.fatal = Some(e.render()),
        }
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    });
    result.unwrap_or_else(|e| match e {
        Fatal::Interrupted { signal, received } => SyncReport {
            interrupted: Some(signal),
            bytes: received,
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
    svc: &Services,
) -> Result<(), Fatal> {
    let (db, tree) = (&svc.db, &svc.tree);
    // Private modules need the go command: missing or too old, say so first.
    svc.upstreams.require_private_tools().await?;

    // The filter is state: a changed filter backfills or stops wanting modules.
    let filter = settings.filter.clone();
    let fingerprint = filter.fingerprint();
    let change: FilterChange = db
        .call(move |s| s.apply_filter(&fingerprint, &|p| filter.wants(p)))
        .await?;
    report.newly_wanted_modules = change.newly_wanted_modules;
    report.backfilled_versions = change.queued_versions;
    report.unwanted_modules = change.unwanted_modules;
    // So is the supply-chain policy: a changed deny list marks what the
    // tree holds for prune, a changed cooldown decides held versions anew.
    plan::apply_policy(settings, db, &mut report.policy).await?;

    // A walk that goes on for a while (a new mirror, a large backfill) gets
    // downloads beside it; a short one (the usual cron run) is over first.
    let walk_done = AtomicBool::new(false);
    let mut early = SyncReport::default();
    {
        let sources = svc.upstreams.discovery(settings, Some(tree.clone()))?;
        let mut intake = Recorder {
            db,
            filter: settings.filter.clone(),
            out,
            report: &mut *report,
        };
        let walk = async {
            let walked = discover_all(&sources, &mut intake).await;
            walk_done.store(true, Ordering::SeqCst);
            walked
        };
        let beside = fetch_beside_the_walk(settings, opts, out, &mut early, svc, &walk_done);
        tokio::try_join!(walk, beside)?;
    }
    stop_if_interrupted()?;

    let now = report::now();
    let retry_failed = opts.retry_failed;
    let todo = db.call(move |s| s.count_todo(now, retry_failed)).await?;
    let due = todo.due;
    // Versions that failed or were not there beside the walk wait for their
    // retry time now: they are this run's, not "from earlier runs".
    report.deferred = todo.deferred.saturating_sub(early.failures.len() as u64);
    report.missing_waiting = todo.missing.saturating_sub(early.not_yet);

    // The checksum database: prove the new head extends the one trusted
    // before, then store every tile a go client whose head is not newer can
    // ask for (`sumdb.tiles`). The downloads and lookup requests start
    // meanwhile; lookups are proven once the head is accepted (`head`: heads
    // are accepted in the order they always were, the newest first), and
    // the publisher waits for the tiles too (`ready`), so no list or
    // `latest` is published before them, and nothing at all if the head is
    // refused.
    let (head_tx, head) = tokio::sync::watch::channel(false);
    let (ready_tx, ready) = tokio::sync::watch::channel(false);
    let prepare = async {
        let latest = svc.refresh_log(settings).await?;
        let _ = head_tx.send(true);
        let tiles = crate::tiles::fill_configured(settings, svc, true, out).await?;
        // Lists left stale by a killed run are rewritten first, then the
        // feed entries a killed run recorded but did not write.
        rewrite_dirty_lists(db, tree).await?;
        write_feed(settings, db, tree).await?;
        svc.restore_served_head(settings).await?;
        let _ = ready_tx.send(true);
        Ok::<_, Fatal>((latest, tiles))
    };
    let mut fetched = SyncReport::default();
    let downloads = async {
        if due > 0 {
            let work = WorkSource::Due { now, retry_failed };
            let gates = Gates { head, ready };
            fetch::pass_before_ready(settings, svc, work, due, out, &mut fetched, gates).await
        } else {
            Ok(())
        }
    };
    let ((latest, tiles), ()) = tokio::try_join!(prepare, downloads)?;
    report.tree_size = Some(latest.tree.n);
    report.tiles = tiles;
    add_fetched(report, fetched);
    add_fetched(report, early);
    stop_if_interrupted()?;

    // Private versions are made again and compared with the ledger (a
    // moved tag), before the generic recheck, which then leaves them alone.
    if let Some(private) = svc.upstreams.private() {
        crate::private::recheck::recheck(settings, private, db, tree, out, report).await?;
    }
    if settings.prune.enabled {
        let origin = svc.upstreams.origin()?;
        recheck(settings, out, report, db, &origin).await?;
        let summary = prune::run_with_db(settings, db, tree, out, false, false).await?;
        report.pruned = Some(summary);
    }
    // The vulnerability database, last: refused (a rewound or inconsistent
    // database), it stops the run before the trace; unreachable, the copy
    // held stays, the run exits 1 and the next one tries again. Either way
    // the modules published above stand.
    let vulndb = crate::vuln::sync_stage(
        &svc.upstreams.http,
        tree,
        db,
        &settings.vulndb.urls,
        settings.vulndb.implied,
        out,
    )
    .await;
    match vulndb {
        Ok(_) => {}
        Err(e) => match crate::vuln::unreachable(&e) {
            Some(why) => {
                let text = format!(
                    "{} could not be reached ({}); the copy held stays, the next sync tries again — set [vulndb] url = \"off\" where this network cannot reach it",
                    crate::settings::lists::describe_list(&settings.vulndb.urls),
                    crate::shown::text_max(&why, 160)
                );
                out.error(&format!("vulndb: {text}"));
                report.vulndb_error = Some(text);
            }
            None => return Err(e),
        },
    }
    rewrite_dirty_lists(db, tree).await?;
    write_feed(settings, db, tree).await?;
    plan::policy_outcome(settings, db, &mut report.policy).await?;
    let run = crate::site::RunFacts {
        command: "sync",
        published: report.published,
        upstream_as_of: None,
    };
    crate::site::write_site(settings, db, tree, run).await?;
    report.tree = Some(write_trace(settings, db, tree, report.published).await?);
    Ok(())
}

/// How long a walk of the index runs before downloads start beside it
/// (a test knob may shorten it).
fn early_fetch_after() -> Duration {
    crate::env::test::early_fetch_after().unwrap_or(Duration::from_secs(5))
}

/// Downloads what the walk has queued so far, while it goes on: nothing
/// happens unless the walk is still running after [`early_fetch_after`].
/// Then the checksum database's head is refreshed (and kept for the rest of
/// the run) and due versions are fetched and published batch by batch, until
/// the walk ends; what it queues after the last pass is fetched by the sync's
/// own pass right after it. Counts go into `early` (added to the summary by
/// [`add_fetched`]).
async fn fetch_beside_the_walk(
    settings: &Settings,
    opts: &SyncOptions,
    out: &Reporter,
    early: &mut SyncReport,
    svc: &Services,
    walk_done: &AtomicBool,
) -> Result<(), Fatal> {
    let deadline = tokio::time::Instant::now() + early_fetch_after();
    while tokio::time::Instant::now() < deadline {
        if walk_done.load(Ordering::SeqCst) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut told = false;
    while !walk_done.load(Ordering::SeqCst) {
        if !told {
            // The run's checksum-database head, refreshed once here.
            svc.log(settings).await?;
            out.verbose("index walk still running: downloading what it found so far");
            told = true;
        }
        let (now, retry_failed) = (report::now(), opts.retry_failed);
        let todo = svc
            .db
            .call(move |s| s.count_todo(now, retry_failed))
            .await?;
        if todo.due == 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let mut pass = SyncReport::default();
        let work = WorkSource::Due { now, retry_failed };
        fetch::pass(settings, svc, work, todo.due, out, &mut pass).await?;
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
    report.policy.add(pass.policy);
    crate::http::list::add_stats(&mut report.upstreams, pass.upstreams);
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
    let outcome = runner::run_preview(settings, async |db, upstreams| {
        preview(settings, opts, out, &mut report, db, upstreams).await
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
    upstreams: &Upstreams,
) -> Result<(), Fatal> {
    // A mirror with no tree yet has nothing to prune, and opening one would
    // create it.
    let tree = services::open_store_if_present(settings, upstreams)?;
    upstreams.require_private_tools().await?;
    let filter = settings.filter.clone();
    let policy = &settings.policy;
    plan::print_filter_change(db, &filter, policy, settings.prune.enabled, report).await?;
    let policy_change =
        plan::print_policy_change(settings, db, settings.prune.enabled, report).await?;
    let sources = upstreams.discovery(settings, tree.clone())?;
    let mut intake = Preview::new(db, filter.clone(), policy.clone(), out, &mut *report);
    discover_all(&sources, &mut intake).await?;

    let now = report::now();
    let retry_failed = opts.retry_failed;
    let todo = db.call(move |s| s.count_todo(now, retry_failed)).await?;
    report.deferred = todo.deferred;
    report.missing_waiting = todo.missing;
    report.attempted += plan::print_fetches(
        db,
        &filter,
        policy,
        now,
        retry_failed,
        &policy_change.printed,
        &mut report.policy,
    )
    .await?;

    if settings.prune.enabled
        && let Some(tree) = &tree
    {
        let mut pruned = prune::run_with_db(settings, db, tree, out, true, false).await?;
        // The takedowns a changed deny list adds (printed above): the
        // state database marks them only when the sync applies the policy.
        pruned.versions += policy_change.takedowns;
        pruned.denied += policy_change.takedowns;
        pruned.denied_sample.extend(policy_change.takedown_sample);
        pruned
            .denied_sample
            .truncate(crate::report::summary::DENIED_SAMPLE);
        report.pruned = Some(pruned);
    }
    let mut outcome = report.policy.clone();
    plan::policy_outcome(settings, db, &mut outcome).await?;
    // What is held already (as recorded), and the pins it affects; what
    // this run would hold is counted above.
    report.policy.min_age = outcome.min_age;
    report.policy.holding = outcome.holding;
    report.policy.next_ready = outcome.next_ready;
    report.policy.retained = outcome.retained;
    report.policy.pins = outcome.pins;
    report.bytes = upstreams.http.bytes_received();
    Ok(())
}
