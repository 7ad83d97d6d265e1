//! `gomirror sync`: one incremental pass.
//!
//! ```text
//! discover ──► plan ──► fetch ──► verify ──► publish ──► prune ──► report
//! ```
//!
//! * **discover** pages the index from the stored cursor, recording each page
//!   and moving the cursor in one transaction (the next page is fetched while
//!   the previous one is written).
//! * **plan** reads the due versions from the state database a page at a time.
//! * **fetch + verify** run `mirror.workers` versions at once: the lookup (with
//!   its signature, consistency and inclusion proofs), `.info`, `.mod` and
//!   `.zip` stream to temporary files; the zip is checked and hashed on the
//!   blocking pool; both `h1:` must equal the checksum database's record.
//! * **publish** takes verified versions in batches: first the checksum
//!   database tiles clients need, then each lookup, `.zip`, `.mod`, `.info`
//!   (renamed into place), then the state database, then `@v/list` and
//!   `@latest` of the touched modules, then `sumdb/<name>/latest`. A version is
//!   therefore listed only once everything it needs is in place.
//! * A security failure (bad signature, forked log) stops the run: nothing
//!   further is published. A failed version is recorded with its reason and
//!   retried on a later run after a growing delay.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::{Semaphore, mpsc};

use crate::gomod::{self, dirhash, zip as modzip};
use crate::http::{self, FetchError, Upstream};
use crate::lock::RunLock;
use crate::prune;
use crate::publish::lists::{self, Listed};
use crate::report::{self, Reporter};
use crate::runner::{self, Db, Fatal};
use crate::settings::Settings;
use crate::source::index;
use crate::state::{self, FilterChange, PageStats, Published, Todo};
use crate::store::{self, Tree, layout};
use crate::sumdb::client::{LogClient, Lookup, SumdbError};

/// `.info` files are a few dozen bytes.
const INFO_LIMIT: u64 = 64 << 10;
/// Verified versions published together.
const BATCH: usize = 64;
const BATCH_WAIT: Duration = Duration::from_millis(500);

/// Flags of `gomirror sync`.
#[derive(Clone, Debug, Default)]
pub struct SyncOptions {
    /// Walk the index and print what would be fetched and deleted; change nothing in the tree.
    pub dry_run: bool,
    /// Retry failed versions now instead of waiting for their retry time.
    pub retry_failed: bool,
}

/// A version that failed this run.
#[derive(Clone, Debug, Serialize)]
pub struct VersionFailure {
    pub module: String,
    pub version: String,
    pub error: String,
    /// A checksum mismatch: the upstream served content the checksum database does not vouch for.
    pub security: bool,
}

/// What a sync did; printed as the summary and stored in the run log.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SyncReport {
    pub index_pages: u64,
    pub index_lines: u64,
    pub index_new: u64,
    pub index_new_wanted: u64,
    pub invalid_lines: u64,
    pub invalid_samples: Vec<String>,
    /// Places where the index could not be paged past one timestamp: entries
    /// there may have been skipped (exit 1).
    pub index_gaps: Vec<String>,
    pub newly_wanted_modules: u64,
    pub backfilled_versions: u64,
    pub unwanted_modules: u64,
    pub attempted: u64,
    pub published: u64,
    pub gone: u64,
    /// Answered 404/410 this run but known to exist: asked again later.
    pub not_yet: u64,
    /// Not on the upstream yet at an earlier run, waiting for their retry time.
    pub missing_waiting: u64,
    pub failures: Vec<VersionFailure>,
    pub failed: u64,
    /// Failed earlier, waiting for their retry time.
    pub deferred: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub tree_size: Option<i64>,
    /// Published versions asked about upstream again, and how many are gone.
    pub rechecked: u64,
    pub removed_upstream: u64,
    /// Rechecks that got no answer (not counted as checked; asked again next run).
    pub recheck_errors: u64,
    pub recheck_samples: Vec<String>,
    pub pruned: Option<prune::PruneSummary>,
    pub fatal: Option<String>,
    pub dry_run: bool,
}

impl SyncReport {
    /// The exit code the design promises: 0 all good, 1 some versions failed
    /// (or are waiting to be retried), 2 fatal.
    pub fn exit_code(&self) -> i32 {
        if self.fatal.is_some() || self.pruned.as_ref().is_some_and(|p| p.refused) {
            2
        } else if self.failed > 0 || self.deferred > 0 || !self.index_gaps.is_empty() {
            1
        } else {
            0
        }
    }

    /// The closing summary a person reads.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let verb = if self.dry_run {
            "would fetch"
        } else {
            "published"
        };
        let _ = writeln!(
            s,
            "gomirror sync: {} {verb} {} new version{} ({}) in {}; {} failed; {} not on the upstream{}",
            if self.fatal.is_some() {
                "STOPPED:"
            } else {
                "done:"
            },
            if self.dry_run {
                self.attempted
            } else {
                self.published
            },
            if self.published == 1 && !self.dry_run {
                ""
            } else {
                "s"
            },
            report::bytes(self.bytes),
            report::duration(Duration::from_secs_f64(self.seconds)),
            self.failed,
            self.gone,
            if self.deferred > 0 {
                format!(
                    "; {} failed earlier and wait for their retry time (use --retry-failed to retry now)",
                    self.deferred
                )
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            s,
            "index: {} new entries ({} wanted) in {} page{}{}",
            self.index_new,
            self.index_new_wanted,
            self.index_pages,
            if self.index_pages == 1 { "" } else { "s" },
            if self.invalid_lines > 0 {
                format!("; {} invalid lines skipped", self.invalid_lines)
            } else {
                String::new()
            }
        );
        for sample in &self.invalid_samples {
            let _ = writeln!(s, "  skipped: {sample}");
        }
        for gap in &self.index_gaps {
            let _ = writeln!(s, "index gap: {gap}");
        }
        if self.not_yet + self.missing_waiting > 0 {
            let _ = writeln!(
                s,
                "not on the upstream yet: {} this run, {} waiting from earlier runs; asked again with backoff, gone after {} of 404s",
                self.not_yet,
                self.missing_waiting,
                report::duration(Duration::from_secs(state::missing_grace_secs() as u64))
            );
        }
        if self.newly_wanted_modules + self.unwanted_modules > 0 {
            let _ = writeln!(
                s,
                "filter changed: {} modules now wanted ({} versions queued), {} no longer wanted",
                self.newly_wanted_modules, self.backfilled_versions, self.unwanted_modules
            );
        }
        if self.rechecked > 0 || self.recheck_errors > 0 {
            let _ = writeln!(
                s,
                "recheck: {} published versions asked about upstream, {} no longer there{}",
                self.rechecked,
                self.removed_upstream,
                if self.recheck_errors > 0 {
                    format!(
                        "; {} could not be checked (asked again next run)",
                        self.recheck_errors
                    )
                } else {
                    String::new()
                }
            );
            for sample in &self.recheck_samples {
                let _ = writeln!(s, "  recheck failed: {sample}");
            }
        }
        if let Some(p) = &self.pruned {
            let _ = writeln!(s, "{}", p.render_line());
        }
        if let Some(n) = self.tree_size {
            let _ = writeln!(s, "checksum database: tree of {n} records accepted");
        }
        if !self.failures.is_empty() {
            let _ = writeln!(s, "failed:");
            for f in &self.failures {
                let _ = writeln!(
                    s,
                    "  {}{}@{}: {}",
                    if f.security { "SECURITY " } else { "" },
                    f.module,
                    f.version,
                    f.error.replace('\n', "\n    ")
                );
            }
        }
        if let Some(f) = &self.fatal {
            let _ = writeln!(s, "fatal: {}", f.replace('\n', "\n  "));
        }
        s
    }
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
                let n = tree.clean_temp().map_err(|e| Fatal(e.to_string()))?;
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
    tree: &Arc<Tree>,
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
        let mut after: Option<(i64, String)> = None;
        loop {
            let a = after.clone();
            let page = db
                .call(move |s| {
                    s.todo_page(
                        a.as_ref().map(|(i, v)| (*i, v.as_str())),
                        1000,
                        now,
                        retry_failed,
                    )
                })
                .await?;
            if page.is_empty() {
                break;
            }
            for t in &page {
                crate::report::outln(format_args!("fetch {}@{}", t.path, t.version));
            }
            report.attempted += page.len() as u64;
            after = page.last().map(|t| (t.module_id, t.version.clone()));
        }
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
    tree: &Arc<Tree>,
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

/// A client of the configured checksum database, trusting nothing yet.
pub fn log_client(settings: &Settings, upstream: &Arc<Upstream>, tree: &Arc<Tree>) -> LogClient {
    LogClient::new(
        settings.sumdb.verifier.clone(),
        settings.sumdb.url.clone(),
        upstream.clone(),
        tree.clone(),
    )
}

/// A client of the configured checksum database that trusts the head stored
/// in the state database (verified again with the configured key).
pub async fn open_log(
    settings: &Settings,
    db: &Db,
    tree: &Arc<Tree>,
    upstream: &Arc<Upstream>,
) -> Result<LogClient, Fatal> {
    let client = log_client(settings, upstream, tree);
    let Some(stored) = db.call(|s| s.trusted_head()).await? else {
        return Ok(client);
    };
    let head = client.parse_head(&stored.note).map_err(|e| {
        Fatal(format!(
            "the tree head stored in the state database does not verify with the configured key ({e}); was sumdb.key changed?"
        ))
    })?;
    if head.tree.n != stored.size || head.tree.hash.to_string() != stored.hash {
        return Err(Fatal(format!(
            "the state database's tree head is inconsistent with its own note (size {})",
            stored.size
        )));
    }
    Ok(client.trust(head))
}

async fn save_heads(db: &Db, client: &LogClient) -> Result<(), Fatal> {
    let heads = client.take_unsaved();
    if heads.is_empty() {
        return Ok(());
    }
    db.call(move |s| -> Result<(), state::StateError> {
        for h in heads {
            s.save_head(h.tree.n, &h.tree.hash.to_string(), &h.note)?;
        }
        Ok(())
    })
    .await
    .map_err(Fatal::from)
}

/// Rewrites `sumdb/<name>/supported` and `latest` for the largest head the
/// mirror serves: a run killed after recording a batch, before writing them,
/// leaves them missing or older than the lookups, and nothing else in a sync
/// that finds no new versions would write them again.
async fn restore_served_head(
    settings: &Settings,
    db: &Db,
    tree: &Arc<Tree>,
    upstream: &Arc<Upstream>,
) -> Result<(), Fatal> {
    let served = db.call(|s| s.served_heads()).await?;
    let Some(last) = served.last() else {
        return Ok(());
    };
    let client = log_client(settings, upstream, tree);
    let head = client.parse_head(&last.note).map_err(|e| {
        Fatal(format!(
            "the served tree head (size {}) in the state database does not verify: {e}",
            last.size
        ))
    })?;
    client
        .trust(head)
        .offline()
        .write_static_files()
        .await
        .map_err(|e| Fatal(e.to_string()))
}

/// Walks the index from the cursor to its end.
async fn discover(
    settings: &Settings,
    out: &Reporter,
    report: &mut SyncReport,
    db: &Db,
    upstream: &Upstream,
) -> Result<(), Fatal> {
    let mut since = db.call(|s| s.cursor()).await?;
    // Lines stamped at the stored cursor were on the last page of the previous run.
    let from_cursor = since.is_some();
    if since.is_none() {
        since = settings
            .index_since
            .as_ref()
            .map(|s| s.resolve(report::now()));
    }
    out.start("index", None);
    let mut body = fetch_page(upstream, settings, since.as_deref()).await?;
    let started = Instant::now();
    // Invalid lines already reported this run (pages overlap at their edges).
    let mut reported: std::collections::HashSet<u64> = std::collections::HashSet::new();
    loop {
        let not_after = index::latest_acceptable(jiff::Timestamp::now());
        let page =
            tokio::task::spawn_blocking(move || index::parse_page_until(&body, Some(&not_after)))
                .await
                .map_err(|e| Fatal(format!("index parser failed: {e}")))?;
        report.index_pages += 1;
        report.index_lines += page.lines as u64;
        for inv in &page.invalid {
            let seen_before = match (&inv.timestamp, &since) {
                (Some(t), Some(s)) => {
                    index::timestamp_cmp(t, s).is_le() && (from_cursor || report.index_pages > 1)
                }
                _ => false,
            };
            if seen_before || (reported.len() < 1_000_000 && !reported.insert(inv.fingerprint)) {
                continue;
            }
            report.invalid_lines += 1;
            let msg = format!(
                "index page since={}: line {}: {}",
                since.as_deref().unwrap_or("(start)"),
                inv.line,
                inv.reason
            );
            if report.invalid_samples.len() < 20 {
                report.invalid_samples.push(msg.clone());
            }
            out.warn(&msg);
        }
        // A feed that is not a feed (an HTML error page, a captive portal)
        // must not look like the end of the index.
        if page.lines > 0 && page.well_formed == 0 {
            return Err(Fatal(format!(
                "the module index {} answered a page of {} lines, none of them an index entry ({}); is `upstream.index` an index feed?",
                crate::settings::redact(settings.index.as_str()),
                page.lines,
                page.invalid
                    .first()
                    .map(|i| i.reason.as_str())
                    .unwrap_or("no detail")
            )));
        }
        if let (Some(newest), Some(s)) = (&page.last_timestamp, &since)
            && index::timestamp_cmp(newest, s).is_lt()
        {
            return Err(Fatal(format!(
                "the module index went back in time: asked for entries since {s}, it answered a page whose newest entry is stamped {newest}; the cursor is not moved backwards"
            )));
        }
        let advanced = match (&page.last_timestamp, &since) {
            (Some(n), Some(s)) => index::timestamp_cmp(n, s).is_gt(),
            (Some(_), None) => true,
            (None, _) => false,
        };
        let full = page.lines >= index::PAGE_LIMIT;
        let mut next = page.last_timestamp.clone().or_else(|| since.clone());
        let mut skipped = false;
        if full && !advanced {
            // A full page of one timestamp: `since` is inclusive, so asking
            // again returns the same page for ever. Move one nanosecond past it
            // and say what may have been missed.
            let at = since.clone().or_else(|| page.last_timestamp.clone());
            let skip_to = at.as_deref().and_then(index::next_instant);
            let msg = match (&at, &skip_to) {
                (Some(at), Some(to)) => format!(
                    "index page since={at} holds {} lines all stamped {at} (or refused): the index cannot be paged past them; moved on to {to}. Entries stamped exactly {at} beyond this page may have been skipped",
                    page.lines
                ),
                _ => format!(
                    "index page since={} holds {} lines and none has a usable timestamp: the walk cannot continue",
                    since.as_deref().unwrap_or("(start)"),
                    page.lines
                ),
            };
            out.warn(&msg);
            report.index_gaps.push(msg);
            if skip_to.is_some() {
                next = skip_to;
                skipped = true;
            }
        }
        let advanced = advanced || skipped;
        // Fetch the next page while this one is written.
        let record = {
            let filter = settings.filter.clone();
            let entries = page.entries;
            let cursor = next.clone();
            db.call(move |s| -> Result<PageStats, state::StateError> {
                match cursor {
                    Some(c) => s.record_index_page(&entries, &|p| filter.wants(p), &c),
                    None => Ok(PageStats::default()),
                }
            })
        };
        let prefetch = async {
            if advanced {
                Some(fetch_page(upstream, settings, next.as_deref()).await)
            } else {
                None
            }
        };
        let (stats, next_body) = tokio::join!(record, prefetch);
        let stats = stats?;
        report.index_new += stats.new;
        report.index_new_wanted += stats.new_wanted;
        out.progress(
            report.index_pages,
            &format!(
                "pages, {} new entries, at {}",
                report.index_new,
                next.as_deref().unwrap_or("the start")
            ),
        );
        if report.index_pages.is_multiple_of(50) {
            out.verbose(&format!(
                "index: {} pages, {} entries, {} new, cursor {} ({})",
                report.index_pages,
                report.index_lines,
                report.index_new,
                next.as_deref().unwrap_or("-"),
                report::duration(started.elapsed())
            ));
        }
        match next_body {
            Some(b) => {
                body = b?;
                since = next;
            }
            None => break,
        }
    }
    out.finish();
    Ok(())
}

/// Asks the upstream again about published versions not checked for
/// `prune.recheck_interval` (at most `prune.recheck_batch` per run): a 404/410
/// marks the version as removed upstream, and the prune that follows deletes it.
async fn recheck(
    settings: &Settings,
    out: &Reporter,
    report: &mut SyncReport,
    db: &Db,
    upstream: &Arc<Upstream>,
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
        let upstream = upstream.clone();
        let proxy = settings.proxy.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let result = match layout::version_file(&t.path, &t.version, "info") {
                Ok(rel) => upstream
                    .get_bytes(&http::join(&proxy, &rel), INFO_LIMIT)
                    .await
                    .map(|_| ())
                    .map_err(RecheckError::Fetch),
                Err(e) => Err(RecheckError::Path(e.to_string())),
            };
            (t, result)
        });
    }
    let mut still_there = Vec::new();
    let grace = state::missing_grace_secs();
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
    Fetch(FetchError),
    /// Its module path or version cannot be escaped into a URL path.
    Path(String),
}

/// Lists the tagged versions of each seed module from the proxy.
async fn seed(
    settings: &Settings,
    out: &Reporter,
    report: &mut SyncReport,
    db: &Db,
    upstream: &Upstream,
) -> Result<(), Fatal> {
    for module in &settings.seeds {
        // The configuration checked every seed; a failure here is a bug to show, not skip.
        let rel = layout::list(module)
            .map_err(|e| Fatal(format!("seed {module}: cannot name its list: {e}")))?;
        let url = http::join(&settings.proxy, &rel);
        let body = match upstream.get_bytes(&url, modzip::MAX_GO_MOD).await {
            Ok(b) => b,
            Err(e) if e.is_not_found() => {
                out.warn(&format!("seed {module}: the proxy has no versions: {e}"));
                continue;
            }
            Err(e) => return Err(Fatal(format!("cannot list seed module {module}: {e}"))),
        };
        let mut entries = Vec::new();
        for line in String::from_utf8_lossy(&body).lines() {
            let Some(v) = line.split_whitespace().next() else {
                continue;
            };
            match gomod::check(module, v) {
                Ok(()) => entries.push(state::IndexEntry {
                    path: module.clone(),
                    version: v.to_string(),
                }),
                Err(e) => {
                    report.invalid_lines += 1;
                    let msg = format!("seed {module}: @v/list: {e}");
                    if report.invalid_samples.len() < 20 {
                        report.invalid_samples.push(msg.clone());
                    }
                    out.warn(&msg);
                }
            }
        }
        let filter = settings.filter.clone();
        let stats = db
            .call(move |s| s.record_entries(&entries, &|p| filter.wants(p), None))
            .await?;
        report.index_new += stats.new;
        report.index_new_wanted += stats.new_wanted;
    }
    Ok(())
}

async fn fetch_page(
    upstream: &Upstream,
    settings: &Settings,
    since: Option<&str>,
) -> Result<Vec<u8>, Fatal> {
    let url = index::page_url(&settings.index, since, index::PAGE_LIMIT);
    upstream
        .get_bytes(&url, index::PAGE_BYTES)
        .await
        .map_err(|e| Fatal(format!("cannot read the module index: {e}")))
}

/// A version whose files are verified and waiting in temporary files.
struct Verified {
    todo: Todo,
    info: PathBuf,
    info_time: Option<String>,
    mod_file: PathBuf,
    zip: PathBuf,
    mod_h1: String,
    zip_h1: String,
    mod_sha256: [u8; 32],
    zip_sha256: [u8; 32],
    info_sha256: [u8; 32],
    lookup: Option<Lookup>,
}

/// How one version failed.
enum VersionError {
    /// The upstream answered 404/410: not there yet, or gone after the grace period.
    NotFound(String),
    /// Retry later.
    Failed { message: String, security: bool },
    /// Stop the run.
    Fatal(String),
}

impl From<SumdbError> for VersionError {
    fn from(e: SumdbError) -> Self {
        if e.is_fatal() {
            VersionError::Fatal(e.to_string())
        } else {
            VersionError::Failed {
                message: e.to_string(),
                security: false,
            }
        }
    }
}

fn fetch_err(what: &str, e: FetchError) -> VersionError {
    if e.is_not_found() {
        VersionError::NotFound(format!("{what}: {e}"))
    } else {
        VersionError::Failed {
            message: format!("{what}: {e}"),
            security: false,
        }
    }
}

/// Temporary files removed on drop unless kept.
struct Temps(Vec<PathBuf>);
impl Drop for Temps {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

struct Shared {
    settings: Settings,
    upstream: Arc<Upstream>,
    client: Arc<LogClient>,
    tree: Arc<Tree>,
    stop: AtomicBool,
    fatal: Mutex<Option<String>>,
    /// Versions that failed (fetching, verifying or publishing), not yet reported.
    failures: Mutex<Vec<VersionFailure>>,
    /// Warnings from workers, printed by the main loop.
    notices: Mutex<Vec<String>>,
}

impl Shared {
    /// Stops the run with `message` as its fatal error (the first one wins).
    fn fail_run(&self, message: String) {
        let mut f = self.fatal.lock().unwrap();
        if f.is_none() {
            *f = Some(message);
        }
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Where the versions to fetch come from.
pub enum WorkSource {
    /// Due versions from the state database, a page at a time.
    Due { now: i64, retry_failed: bool },
    /// An explicit list (repairs).
    List(Vec<Todo>),
}

#[allow(clippy::too_many_arguments)]
async fn fetch_and_publish(
    settings: &Settings,
    source: WorkSource,
    out: &Reporter,
    report: &mut SyncReport,
    db: &Db,
    tree: &Arc<Tree>,
    upstream: &Arc<Upstream>,
    client: &Arc<LogClient>,
    due: u64,
) -> Result<(), Fatal> {
    let shared = Arc::new(Shared {
        settings: settings.clone(),
        upstream: upstream.clone(),
        client: client.clone(),
        tree: tree.clone(),
        stop: AtomicBool::new(false),
        fatal: Mutex::new(None),
        failures: Mutex::new(Vec::new()),
        notices: Mutex::new(Vec::new()),
    });
    out.start("fetching", Some(due));
    let done = Arc::new(AtomicU64::new(0));
    let gone = Arc::new(AtomicU64::new(0));
    let not_yet = Arc::new(AtomicU64::new(0));
    let (vtx, vrx) = mpsc::channel::<Verified>(BATCH * 2);

    let publisher = {
        let shared = shared.clone();
        let db = db.clone();
        tokio::spawn(async move { publish_loop(shared, db, vrx).await })
    };

    let sem = Arc::new(Semaphore::new(settings.workers));
    let mut tasks = tokio::task::JoinSet::new();
    let mut after: Option<(i64, String)> = None;
    let mut source = source;
    let mut list = match &mut source {
        WorkSource::List(l) => Some(std::mem::take(l)),
        WorkSource::Due { .. } => None,
    };
    'pages: loop {
        let page = match (&source, list.take()) {
            (_, Some(l)) => l,
            (WorkSource::Due { now, retry_failed }, None) => {
                let (a, now, retry_failed) = (after.clone(), *now, *retry_failed);
                db.call(move |s| {
                    s.todo_page(
                        a.as_ref().map(|(i, v)| (*i, v.as_str())),
                        500,
                        now,
                        retry_failed,
                    )
                })
                .await?
            }
            (WorkSource::List(_), None) => Vec::new(),
        };
        if page.is_empty() {
            break;
        }
        after = page.last().map(|t| (t.module_id, t.version.clone()));
        for todo in page {
            let permit = sem.clone().acquire_owned().await.expect("semaphore open");
            if shared.stop.load(Ordering::SeqCst) {
                break 'pages;
            }
            // Reap finished tasks so the set stays small.
            while tasks.try_join_next().is_some() {}
            {
                let (shared, db, vtx, done, gone, not_yet) = (
                    shared.clone(),
                    db.clone(),
                    vtx.clone(),
                    done.clone(),
                    gone.clone(),
                    not_yet.clone(),
                );
                tasks.spawn(async move {
                    let id = format!("{}@{}", todo.path, todo.version);
                    let result = process_version(&shared, todo.clone()).await;
                    match result {
                        Ok(v) => {
                            // The publisher owns it now; if it is gone (fatal), the temps go too.
                            let _ = vtx.send(v).await;
                        }
                        Err(VersionError::NotFound(m)) => {
                            let (mid, ver, msg) = (todo.module_id, todo.version.clone(), m.clone());
                            let grace = state::missing_grace_secs();
                            let recorded = db
                                .call(move |s| {
                                    s.mark_not_found(mid, &ver, &msg, report::now(), grace)
                                })
                                .await;
                            match recorded {
                                Ok(state::NotFound::NotYet { retry_at }) => {
                                    not_yet.fetch_add(1, Ordering::Relaxed);
                                    shared.notices.lock().unwrap().push(format!(
                                        "{id}: not on the upstream yet ({m}); asked again after {}",
                                        report::duration(Duration::from_secs(
                                            retry_at.saturating_sub(report::now()).max(0) as u64
                                        ))
                                    ));
                                }
                                Ok(state::NotFound::Gone { missing_since }) => {
                                    gone.fetch_add(1, Ordering::Relaxed);
                                    shared.notices.lock().unwrap().push(format!(
                                        "{id}: not on the upstream ({m}), missing for {}: given up",
                                        report::duration(Duration::from_secs(
                                            report::now().saturating_sub(missing_since).max(0)
                                                as u64
                                        ))
                                    ));
                                }
                                Err(e) => shared.fail_run(e.to_string()),
                            }
                        }
                        Err(VersionError::Failed { message, security }) => {
                            let (mid, ver, msg) =
                                (todo.module_id, todo.version.clone(), message.clone());
                            if let Err(e) = db
                                .call(move |s| s.mark_failed(mid, &ver, &msg, report::now()))
                                .await
                            {
                                shared.fail_run(e.to_string());
                            }
                            shared.failures.lock().unwrap().push(VersionFailure {
                                module: todo.path.clone(),
                                version: todo.version.clone(),
                                error: message,
                                security,
                            });
                        }
                        Err(VersionError::Fatal(m)) => shared.fail_run(m),
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                    drop(permit);
                });
            }
            let n = done.load(Ordering::Relaxed);
            out.progress(
                n,
                &format!(
                    "{} received",
                    report::bytes(shared.upstream.bytes_received())
                ),
            );
            // Report failures as they happen, not only at the end.
            drain_events(&shared, out, report);
        }
    }
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r {
            let mut f = shared.fatal.lock().unwrap();
            if f.is_none() {
                *f = Some(format!("a worker crashed: {e}"));
            }
            shared.stop.store(true, Ordering::SeqCst);
        }
        out.progress(
            done.load(Ordering::Relaxed),
            &format!(
                "{} received",
                report::bytes(shared.upstream.bytes_received())
            ),
        );
    }
    drop(vtx);
    let published = publisher
        .await
        .map_err(|e| Fatal(format!("the publisher crashed: {e}")))?;
    out.finish();
    drain_events(&shared, out, report);
    report.attempted = done.load(Ordering::Relaxed);
    report.gone = gone.load(Ordering::Relaxed);
    report.not_yet = not_yet.load(Ordering::Relaxed);
    match published {
        Ok(n) => report.published = n.published,
        Err(e) => {
            let mut f = shared.fatal.lock().unwrap();
            if f.is_none() {
                *f = Some(e.0);
            }
        }
    }
    report.failed = report.failures.len() as u64;
    if let Some(f) = shared.fatal.lock().unwrap().take() {
        return Err(Fatal(f));
    }
    Ok(())
}

/// Prints the warnings and failures gathered since the last call; the
/// failures move into the report.
fn drain_events(shared: &Shared, out: &Reporter, report: &mut SyncReport) {
    for n in std::mem::take(&mut *shared.notices.lock().unwrap()) {
        out.warn(&n);
    }
    for f in std::mem::take(&mut *shared.failures.lock().unwrap()) {
        out.error(&format!(
            "{}{}@{}: {}",
            if f.security { "SECURITY: " } else { "" },
            f.module,
            f.version,
            f.error
        ));
        report.failures.push(f);
    }
}

/// Fetches and verifies one version into temporary files.
async fn process_version(shared: &Shared, todo: Todo) -> Result<Verified, VersionError> {
    let (m, v) = (todo.path.as_str(), todo.version.as_str());
    gomod::check(m, v).map_err(|e| VersionError::Failed {
        message: format!("invalid module version: {e}"),
        security: false,
    })?;
    let rel_info = layout::version_file(m, v, "info").map_err(|e| failed(e.to_string()))?;
    let rel_mod = layout::version_file(m, v, "mod").map_err(|e| failed(e.to_string()))?;
    let rel_zip = layout::version_file(m, v, "zip").map_err(|e| failed(e.to_string()))?;
    let proxy = &shared.settings.proxy;
    let tree = &shared.tree;
    let temps = Temps(vec![
        tree.temp_path(&format!("{v}.info")),
        tree.temp_path(&format!("{v}.mod")),
        tree.temp_path(&format!("{v}.zip")),
    ]);

    let skip = shared.settings.sumdb.skips(m);
    let lookup = async {
        if skip {
            Ok(None)
        } else {
            shared.client.lookup(m, v).await.map(Some)
        }
    };
    let (info_url, mod_url, zip_url) = (
        http::join(proxy, &rel_info),
        http::join(proxy, &rel_mod),
        http::join(proxy, &rel_zip),
    );
    let info = shared.upstream.get_bytes(&info_url, INFO_LIMIT);
    let gomod = shared
        .upstream
        .get_to_file(&mod_url, modzip::MAX_GO_MOD, &temps.0[1]);
    let zip = shared
        .upstream
        .get_to_file(&zip_url, modzip::MAX_ZIP_FILE, &temps.0[2]);
    let (lookup, info, gomod, zip) = tokio::join!(lookup, info, gomod, zip);

    // A security failure outranks everything else.
    let lookup = lookup?;
    let info = info.map_err(|e| fetch_err(".info", e))?;
    let gomod = gomod.map_err(|e| fetch_err(".mod", e))?;
    let zip = zip.map_err(|e| fetch_err(".zip", e))?;

    let info_time = check_info(&info, v).map_err(|m| failed(format!("invalid .info: {m}")))?;
    tokio::fs::write(&temps.0[0], &info)
        .await
        .map_err(|e| failed(format!("cannot write temporary file: {e}")))?;

    let mod_h1 = dirhash::go_mod_hash(gomod.sha256);
    let zip_path = temps.0[2].clone();
    let (mm, vv) = (m.to_string(), v.to_string());
    let summary =
        tokio::task::spawn_blocking(move || modzip::check_and_hash_zip(&zip_path, &mm, &vv))
            .await
            .map_err(|e| failed(format!("zip check crashed: {e}")))?
            .map_err(|e| failed(format!("invalid module zip: {e}")))?;

    if let Some(l) = &lookup {
        let db = shared.client.name();
        if mod_h1 != l.mod_h1 {
            return Err(VersionError::Failed {
                message: format!(
                    "go.mod checksum mismatch: the upstream's .mod has {mod_h1}, {db} says {}; refusing it",
                    l.mod_h1
                ),
                security: true,
            });
        }
        if summary.h1 != l.zip_h1 {
            return Err(VersionError::Failed {
                message: format!(
                    "zip checksum mismatch: the upstream's .zip has {}, {db} says {}; refusing it",
                    summary.h1, l.zip_h1
                ),
                security: true,
            });
        }
    }

    let mut temps = temps;
    let files = std::mem::take(&mut temps.0);
    let [info_path, mod_path, zip_path]: [PathBuf; 3] = files.try_into().expect("three temps");
    Ok(Verified {
        todo,
        info: info_path,
        info_time,
        mod_file: mod_path,
        zip: zip_path,
        mod_h1,
        zip_h1: summary.h1,
        mod_sha256: gomod.sha256,
        zip_sha256: zip.sha256,
        info_sha256: Sha256::digest(&info).into(),
        lookup,
    })
}

fn failed(message: String) -> VersionError {
    VersionError::Failed {
        message,
        security: false,
    }
}

/// Checks an `.info` body: a JSON object whose `Version` is exactly the
/// requested version (as the go command requires) and whose `Time`, if
/// present, is RFC 3339. Returns the time.
pub fn check_info(body: &[u8], version: &str) -> Result<Option<String>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let obj = value.as_object().ok_or("not a JSON object")?;
    match obj.get("Version").and_then(|v| v.as_str()) {
        Some(got) if got == version => {}
        Some(got) => return Err(format!("it describes version {got:?}, not {version:?}")),
        None => return Err("no Version field".into()),
    }
    match obj.get("Time") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(t)) if index::is_rfc3339(t) => Ok(Some(t.clone())),
        Some(t) => Err(format!("invalid Time {t}")),
    }
}

#[derive(Default)]
struct PublishCount {
    published: u64,
}

/// Receives verified versions and publishes them in batches.
async fn publish_loop(
    shared: Arc<Shared>,
    db: Db,
    mut rx: mpsc::Receiver<Verified>,
) -> Result<PublishCount, Fatal> {
    let mut count = PublishCount::default();
    let mut previous_max: Option<i64> = db.call(|s| s.served_heads()).await?.last().map(|h| h.size);
    let mut batch: Vec<Verified> = Vec::new();
    loop {
        let deadline = tokio::time::sleep(BATCH_WAIT);
        tokio::pin!(deadline);
        let closed = loop {
            tokio::select! {
                v = rx.recv() => match v {
                    Some(v) => {
                        batch.push(v);
                        if batch.len() >= BATCH {
                            break false;
                        }
                    }
                    None => break true,
                },
                _ = &mut deadline, if !batch.is_empty() => break false,
            }
        };
        if shared.stop.load(Ordering::SeqCst) {
            // Nothing further is published after a fatal error.
            discard_async(std::mem::take(&mut batch)).await;
            if closed {
                return Ok(count);
            }
            continue;
        }
        if !batch.is_empty() {
            let items = std::mem::take(&mut batch);
            match publish_batch(&shared, &db, items, previous_max).await {
                Ok((n, max)) => {
                    count.published += n;
                    previous_max = max.or(previous_max);
                }
                Err(e) => {
                    shared.stop.store(true, Ordering::SeqCst);
                    let mut f = shared.fatal.lock().unwrap();
                    if f.is_none() {
                        *f = Some(e.0.clone());
                    }
                }
            }
        }
        if closed {
            return Ok(count);
        }
    }
}

/// [`discard`] on the blocking pool.
async fn discard_async(mut batch: Vec<Verified>) {
    let _ = tokio::task::spawn_blocking(move || discard(&mut batch)).await;
}

fn discard(batch: &mut Vec<Verified>) {
    for v in batch.drain(..) {
        let _ = std::fs::remove_file(&v.info);
        let _ = std::fs::remove_file(&v.mod_file);
        let _ = std::fs::remove_file(&v.zip);
    }
}

/// Publishes a batch; returns how many were published and the largest served tree size.
async fn publish_batch(
    shared: &Arc<Shared>,
    db: &Db,
    items: Vec<Verified>,
    previous_max: Option<i64>,
) -> Result<(u64, Option<i64>), Fatal> {
    let client = &shared.client;
    // 1. Tiles every client needs for these lookups and heads.
    let records: Vec<i64> = items
        .iter()
        .filter_map(|v| v.lookup.as_ref().map(|l| l.record_id))
        .collect();
    let mut sizes: BTreeSet<i64> = items
        .iter()
        .filter_map(|v| v.lookup.as_ref().map(|l| l.head.tree.n))
        .collect();
    let trusted = client.trusted();
    if let Some(t) = &trusted {
        sizes.insert(t.tree.n);
    }
    let sizes: Vec<i64> = sizes.into_iter().collect();
    if let Err(e) = client.mirror_tiles(&records, &sizes, previous_max).await {
        if e.is_fatal() {
            discard_async(items).await;
            return Err(Fatal(e.to_string()));
        }
        // The tiles could not be fetched: these versions wait for the next run.
        let msg = format!("cannot mirror checksum database tiles: {e}");
        for v in &items {
            let (mid, ver, m) = (v.todo.module_id, v.todo.version.clone(), msg.clone());
            db.call(move |s| s.mark_failed(mid, &ver, &m, report::now()))
                .await?;
            shared.failures.lock().unwrap().push(VersionFailure {
                module: v.todo.path.clone(),
                version: v.todo.version.clone(),
                error: msg.clone(),
                security: false,
            });
        }
        discard_async(items).await;
        return Ok((0, None));
    }
    save_heads(db, client).await?;

    // 2. Files, immutable ones first, on the blocking pool.
    let tree = shared.tree.clone();
    let name = client.name().to_string();
    let installed = tokio::task::spawn_blocking(move || install_batch(&tree, &name, items))
        .await
        .map_err(|e| Fatal(format!("publishing crashed: {e}")))?;
    let (published, failures) = installed.map_err(|e| Fatal(format!("cannot publish: {e}")))?;
    for (v, msg) in failures {
        shared.failures.lock().unwrap().push(VersionFailure {
            module: v.1.clone(),
            version: v.2.clone(),
            error: msg.clone(),
            security: false,
        });
        db.call(move |s| s.mark_failed(v.0, &v.2, &msg, report::now()))
            .await?;
    }
    if published.is_empty() {
        return Ok((0, None));
    }
    // 3. The state database, then 4. the indexes that list them, then `latest`.
    let n = published.len() as u64;
    let served = sizes.clone();
    db.call(move |s| s.mark_published(&published, &served, report::now()))
        .await?;
    client
        .write_static_files()
        .await
        .map_err(|e| Fatal(e.to_string()))?;
    rewrite_dirty_lists(db, &shared.tree).await?;
    Ok((n, sizes.last().copied()))
}

type InstallFailure = ((i64, String, String), String);

/// Renames a batch's verified files into place. Per version: lookup, `.zip`,
/// `.mod`, `.info` — `.info` last, so a version is never visible before its
/// content (the go command starts from `.info` or the list). Lookups are
/// staged as temporary files first so that one barrier makes every file's
/// data durable before any rename, and a second one makes the renames durable
/// before the state database records them.
fn install_batch(
    tree: &Tree,
    sumdb_name: &str,
    items: Vec<Verified>,
) -> Result<(Vec<Published>, Vec<InstallFailure>), String> {
    let mut failures = Vec::new();
    // Stage the lookups.
    let mut staged: Vec<(Verified, Option<(PathBuf, String)>)> = Vec::with_capacity(items.len());
    for v in items {
        let lookup = match &v.lookup {
            None => Ok(None),
            Some(l) => stage_lookup(tree, sumdb_name, &v.todo, &l.body),
        };
        match lookup {
            Ok(l) => staged.push((v, l)),
            Err(e) => {
                failures.push((
                    (
                        v.todo.module_id,
                        v.todo.path.clone(),
                        v.todo.version.clone(),
                    ),
                    format!("cannot publish: {e}"),
                ));
                discard(&mut vec![v]);
            }
        }
    }
    tree.sync_to_disk().map_err(|e| e.to_string())?;
    let mut published = Vec::with_capacity(staged.len());
    for (v, lookup) in staged {
        let (m, ver) = (v.todo.path.clone(), v.todo.version.clone());
        let result = (|| -> Result<Published, String> {
            if let Some((tmp, rel)) = &lookup {
                tree.install(tmp, rel).map_err(|e| e.to_string())?;
            }
            let rel = |ext| layout::version_file(&m, &ver, ext).map_err(|e| e.to_string());
            let zip = install_immutable(tree, &v.zip, &rel("zip")?, &v.zip_sha256)?;
            let gomod = install_immutable(tree, &v.mod_file, &rel("mod")?, &v.mod_sha256)?;
            let info_dest = tree
                .install(&v.info, &rel("info")?)
                .map_err(|e| e.to_string())?;
            let info = store::stat(&info_dest).map_err(|e| e.to_string())?;
            Ok(Published {
                module_id: v.todo.module_id,
                version: ver.clone(),
                info_time: v.info_time.clone(),
                zip_h1: v.zip_h1.clone(),
                mod_h1: v.mod_h1.clone(),
                info_size: info.0,
                mod_size: gomod.0,
                zip_size: zip.0,
                info_mtime: info.1,
                mod_mtime: gomod.1,
                zip_mtime: zip.1,
                record_id: v.lookup.as_ref().map(|l| l.record_id),
                zip_sha256: Some(hex(&v.zip_sha256)),
                info_sha256: Some(hex(&v.info_sha256)),
            })
        })();
        if let Some((tmp, _)) = &lookup {
            let _ = std::fs::remove_file(tmp);
        }
        let _ = std::fs::remove_file(&v.info);
        let _ = std::fs::remove_file(&v.mod_file);
        let _ = std::fs::remove_file(&v.zip);
        match result {
            Ok(p) => published.push(p),
            Err(e) => failures.push(((v.todo.module_id, m, ver), format!("cannot publish: {e}"))),
        }
    }
    tree.sync_to_disk().map_err(|e| e.to_string())?;
    Ok((published, failures))
}

/// Writes a lookup body to a temporary file, unless the tree already holds it.
fn stage_lookup(
    tree: &Tree,
    sumdb_name: &str,
    todo: &Todo,
    body: &[u8],
) -> Result<Option<(PathBuf, String)>, String> {
    let rel = layout::lookup(sumdb_name, &todo.path, &todo.version).map_err(|e| e.to_string())?;
    let dest = tree.path_of(&rel).map_err(|e| e.to_string())?;
    if std::fs::read(&dest).is_ok_and(|cur| cur == body) {
        return Ok(None);
    }
    let tmp = tree.temp_path("lookup");
    std::fs::write(&tmp, body).map_err(|e| format!("cannot write `{}`: {e}", tmp.display()))?;
    Ok(Some((tmp, rel)))
}

/// `.mod` and `.zip` are written once: if the file is already in place with the
/// same content (a run killed after renaming, before recording), it is kept.
fn install_immutable(
    tree: &Tree,
    tmp: &std::path::Path,
    rel: &str,
    sha256: &[u8; 32],
) -> Result<(i64, i64), String> {
    install_immutable_with(tree, tmp, rel, sha256, sha256_file)
}

/// [`install_immutable`] with the hash of the file in place computed by
/// `hash_in_place` (a seam for tests: as root, no file is unreadable).
fn install_immutable_with(
    tree: &Tree,
    tmp: &std::path::Path,
    rel: &str,
    sha256: &[u8; 32],
    hash_in_place: impl Fn(&std::path::Path) -> std::io::Result<[u8; 32]>,
) -> Result<(i64, i64), String> {
    let dest = tree.path_of(rel).map_err(|e| e.to_string())?;
    if let Ok(meta) = std::fs::symlink_metadata(&dest) {
        if meta.is_file() {
            // A file that cannot be read is not known to differ: refuse to
            // replace it rather than rename over what may be good bytes.
            let current = hash_in_place(&dest).map_err(|e| {
                format!(
                    "`{}` is already in place but cannot be read ({e}); refusing to replace it",
                    dest.display()
                )
            })?;
            if &current == sha256 {
                let _ = std::fs::remove_file(tmp);
                return store::stat(&dest).map_err(|e| e.to_string());
            }
        }
        if meta.file_type().is_symlink() {
            // Never ours: a link where a module file belongs is damage to repair.
            tree.remove_file(rel).map_err(|e| e.to_string())?;
        }
    }
    let dest = tree.install(tmp, rel).map_err(|e| e.to_string())?;
    store::stat(&dest).map_err(|e| e.to_string())
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

pub fn sha256_file(path: &std::path::Path) -> std::io::Result<[u8; 32]> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

/// Rewrites `@v/list` and `@latest` of every module marked dirty, from the database.
pub async fn rewrite_dirty_lists(db: &Db, tree: &Arc<Tree>) -> Result<(), Fatal> {
    let dirty = db.call(|s| s.dirty_modules()).await?;
    if dirty.is_empty() {
        return Ok(());
    }
    for chunk in dirty.chunks(256) {
        let ids: Vec<(i64, String)> = chunk.to_vec();
        let listed = {
            let ids = ids.clone();
            db.call(
                move |s| -> Result<Vec<(i64, String, Vec<Listed>)>, state::StateError> {
                    let mut out = Vec::with_capacity(ids.len());
                    for (id, path) in ids {
                        let versions = s.listed_versions(id)?;
                        out.push((id, path, versions));
                    }
                    Ok(out)
                },
            )
            .await?
        };
        let tree = tree.clone();
        let written = tokio::task::spawn_blocking(move || -> Result<Vec<i64>, String> {
            let mut done = Vec::new();
            for (id, path, versions) in listed {
                write_module_indexes(&tree, &path, &versions)?;
                done.push(id);
            }
            // The indexes are durable before the database stops marking them stale.
            tree.sync_to_disk().map_err(|e| e.to_string())?;
            Ok(done)
        })
        .await
        .map_err(|e| Fatal(format!("list writer crashed: {e}")))?
        .map_err(Fatal)?;
        db.call(move |s| s.set_dirty(&written, false)).await?;
    }
    Ok(())
}

/// Writes (or removes, for a module with nothing left) a module's `@v/list` and `@latest`.
pub fn write_module_indexes(tree: &Tree, module: &str, versions: &[Listed]) -> Result<(), String> {
    let list_rel = layout::list(module).map_err(|e| e.to_string())?;
    let latest_rel = layout::latest(module).map_err(|e| e.to_string())?;
    if versions.is_empty() {
        tree.remove_file(&latest_rel).map_err(|e| e.to_string())?;
        tree.remove_file(&list_rel).map_err(|e| e.to_string())?;
        return Ok(());
    }
    tree.write_if_changed(&list_rel, lists::render_list(versions).as_bytes())
        .map_err(|e| e.to_string())?;
    match lists::choose_latest(module, versions) {
        Some(l) => {
            tree.write_if_changed(
                &latest_rel,
                lists::render_info(&l.version, l.time.as_deref()).as_bytes(),
            )
            .map_err(|e| e.to_string())?;
        }
        None => {
            tree.remove_file(&latest_rel).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_must_name_the_requested_version() {
        assert_eq!(
            check_info(
                br#"{"Version":"v1.0.0","Time":"2020-01-02T17:33:45Z"}"#,
                "v1.0.0"
            )
            .unwrap(),
            Some("2020-01-02T17:33:45Z".into())
        );
        assert_eq!(
            check_info(br#"{"Version":"v1.0.0","Name":"abc","Extra":{}}"#, "v1.0.0").unwrap(),
            None
        );
        assert!(
            check_info(br#"{"Version":"v1.0.1"}"#, "v1.0.0")
                .unwrap_err()
                .contains("v1.0.1")
        );
        assert!(check_info(br#"{"Time":"2020-01-02T17:33:45Z"}"#, "v1.0.0").is_err());
        assert!(check_info(br#"{"Version":"v1.0.0","Time":"later"}"#, "v1.0.0").is_err());
        assert!(check_info(b"<html>", "v1.0.0").is_err());
        assert!(check_info(b"[1]", "v1.0.0").is_err());
    }

    /// Issue 8.5: an unreadable `.zip` at its final path is not "different":
    /// it is never renamed over.
    #[test]
    fn unreadable_immutable_file_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let tree = Tree::open(&dir.path().join("out")).unwrap();
        let rel = "example.com/m/@v/v1.0.0.zip";
        tree.write_file(rel, b"the bytes in place").unwrap();
        let tmp = tree.temp_path("zip");
        std::fs::write(&tmp, b"new bytes").unwrap();
        let sha: [u8; 32] = Sha256::digest(b"new bytes").into();
        let err = install_immutable_with(&tree, &tmp, rel, &sha, |_| {
            Err(std::io::Error::from_raw_os_error(libc::EIO))
        })
        .unwrap_err();
        assert!(err.contains("cannot be read"), "{err}");
        assert!(err.contains("v1.0.0.zip"), "{err}");
        assert_eq!(
            std::fs::read(dir.path().join("out").join(rel)).unwrap(),
            b"the bytes in place"
        );
        // A readable file with other bytes is damage, and is replaced.
        install_immutable(&tree, &tmp, rel, &sha).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("out").join(rel)).unwrap(),
            b"new bytes"
        );
    }

    #[test]
    fn exit_codes() {
        let mut r = SyncReport::default();
        assert_eq!(r.exit_code(), 0);
        r.deferred = 1;
        assert_eq!(r.exit_code(), 1);
        r.deferred = 0;
        r.index_gaps.push("gap".into());
        assert_eq!(r.exit_code(), 1);
        r.index_gaps.clear();
        r.failed = 2;
        assert_eq!(r.exit_code(), 1);
        r.fatal = Some("x".into());
        assert_eq!(r.exit_code(), 2);
    }
}
