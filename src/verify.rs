//! `gomirror verify [--quick] [--repair]`: the tree is a projection of the
//! state database; check that it still is, and restore it.
//!
//! For every version in the tree: `.info` parses and names the version, the
//! `.mod` and the zip hash to the `h1:` recorded at publish time (zips are
//! re-inflated and re-hashed, in parallel on rayon, streaming), and — like a
//! go client with the upstream out of reach — its lookup verifies: signature,
//! consistency with the mirror's `latest`, inclusion proven from the tiles in
//! the tree alone. Every module's `@v/list` and `@latest` must say what the
//! database says, and `sumdb/<name>/supported` and `latest` must be there.
//!
//! `--quick` compares sizes and modification times recorded at publish time
//! instead of hashing, for very large mirrors. `--repair` refetches and
//! republishes what is damaged (through the same verified path as `sync`),
//! rewrites wrong indexes, then checks again.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::fatal::Fatal;
use crate::fetch::{self, WorkSource};
use crate::gomod::{dirhash, zip as modzip};
use crate::lock::RunLock;
use crate::publish::lists::{self, Listed};
use crate::report::summary::SyncReport;
use crate::report::{self, Reporter};
use crate::runner;
use crate::services::Services;
use crate::settings::Settings;
use crate::state::{PublishedVersion, Todo};
use crate::store::layout::{self, Key};
use crate::store::{Store, StoreError};
use crate::trust::client::LogClient;

/// Flags of `gomirror verify`.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    pub repair: bool,
    pub quick: bool,
    /// Only the next slice of a pass that covers the mirror once per
    /// `verify.cycle` ([`crate::state::Cycle`], named `verify`).
    pub slice: bool,
}

/// One thing wrong with the tree.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub module: String,
    /// `None` for module-level files (`@v/list`, `@latest`) and checksum-database files.
    pub version: Option<String>,
    /// Tree-relative path of the file.
    pub file: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.version {
            Some(v) => write!(f, "{}@{v}: {}: {}", self.module, self.file, self.message),
            None if self.module.is_empty() => write!(f, "{}: {}", self.file, self.message),
            None => write!(f, "{}: {}: {}", self.module, self.file, self.message),
        }
    }
}

/// How many problems a report keeps to show in its summary. Every problem is
/// printed as it is found and all are counted; only this many are kept, so
/// memory stays bounded on a mirror in ruins.
pub const PROBLEM_SAMPLE: usize = 100;

/// Damaged versions are refetched this many at a time while the check walks
/// on, so the set waiting for repair stays bounded whatever the damage.
const REPAIR_BATCH: usize = 512;

/// Size limits of the small files verify reads whole: a signed tree head,
/// a lookup, a module's `@v/list` or `@latest`.
const NOTE_LIMIT: u64 = 1 << 20;
const LOOKUP_LIMIT: u64 = 1 << 20;
const INDEX_LIMIT: u64 = 64 << 20;

/// The problems found: an exact count and the first [`PROBLEM_SAMPLE`] of them.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Problems {
    pub count: u64,
    pub sample: Vec<Problem>,
}

impl Problems {
    pub fn push(&mut self, p: Problem) {
        self.count += 1;
        if self.sample.len() < PROBLEM_SAMPLE {
            self.sample.push(p);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// `; 2 problems (each printed above)`: every problem was printed on
    /// stderr when found, once; the summary only counts them.
    fn count_phrase(&self) -> String {
        match self.count {
            0 => "0 problems".into(),
            1 => "1 problem (printed above)".into(),
            n => format!("{n} problems (each printed above)"),
        }
    }
}

/// What verify found and did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct VerifyReport {
    pub versions: u64,
    pub modules: u64,
    pub zip_bytes: u64,
    pub seconds: f64,
    pub problems: Problems,
    pub repaired: u64,
    pub remaining: Problems,
    pub repair_attempted: bool,
    pub quick: bool,
    /// `--slice`: where the pass over the mirror stood before and after it.
    pub slice: Option<SliceReport>,
}

/// Where a `--slice` run took the pass over the published versions.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SliceReport {
    /// Versions checked in the pass before this run, and after it.
    pub from: u64,
    pub to: u64,
    /// Versions in the tree.
    pub total: u64,
    /// This run came to the end of the tree: the next run begins a new pass.
    pub pass_ended: bool,
    /// `verify.cycle`, in seconds.
    pub cycle_seconds: u64,
}

impl VerifyReport {
    pub fn exit_code(&self) -> i32 {
        let left = if self.repair_attempted {
            &self.remaining
        } else {
            &self.problems
        };
        if left.is_empty() { 0 } else { 1 }
    }

    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let took = report::duration(std::time::Duration::from_secs_f64(self.seconds));
        // --quick compares sizes and times: it reads no zip, so it has no rate.
        let read = if self.quick {
            format!("sizes and modification times checked in {took}")
        } else if self.seconds > 0.0 && self.zip_bytes > 0 {
            format!(
                "{} of zips in {took} ({:.0} MB/s)",
                report::bytes(self.zip_bytes),
                self.zip_bytes as f64 / self.seconds / 1e6
            )
        } else {
            format!("{} of zips in {took}", report::bytes(self.zip_bytes))
        };
        let _ = writeln!(
            s,
            "gomirror verify{}{}: {} in {}, {read}; {}",
            if self.quick { " --quick" } else { "" },
            if self.slice.is_some() { " --slice" } else { "" },
            report::count(self.versions, "version"),
            report::count(self.modules, "module"),
            self.problems.count_phrase(),
        );
        if let Some(sl) = &self.slice {
            let share = |n: u64| {
                if sl.total == 0 {
                    100.0
                } else {
                    (n as f64 * 100.0 / sl.total as f64).min(100.0)
                }
            };
            let _ = writeln!(
                s,
                "slice: the pass over {} went from {:.0}% to {:.0}%{} (a whole pass every {})",
                report::count(sl.total, "published version"),
                share(sl.from),
                if sl.pass_ended { 100.0 } else { share(sl.to) },
                if sl.pass_ended {
                    "; it is complete, the next run begins another"
                } else {
                    ""
                },
                report::duration(std::time::Duration::from_secs(sl.cycle_seconds))
            );
        }
        if self.repair_attempted {
            let _ = writeln!(
                s,
                "repair: {} versions republished; {} remain{}",
                self.repaired,
                self.remaining.count_phrase(),
                if self.remaining.count == 1 { "s" } else { "" }
            );
        }
        s
    }
}

/// Runs `gomirror verify` under the caller's lock.
pub fn run(
    settings: &Settings,
    opts: &VerifyOptions,
    out: &Reporter,
    _lock: &RunLock,
) -> Result<VerifyReport, Fatal> {
    runner::run_command(settings, "verify", async |svc| {
        verify_and_repair(settings, opts, out, svc).await
    })
}

impl runner::Outcome for VerifyReport {
    fn exit_code(&self) -> i32 {
        VerifyReport::exit_code(self)
    }
}

async fn verify_and_repair(
    settings: &Settings,
    opts: &VerifyOptions,
    out: &Reporter,
    svc: &Services,
) -> Result<VerifyReport, Fatal> {
    let (db, tree) = (&svc.db, &svc.tree);
    let started = Instant::now();
    let mut report = VerifyReport {
        quick: opts.quick,
        ..VerifyReport::default()
    };
    let mut repairs = opts.repair.then(Repairs::default);
    // `--slice`: the next stretch of the pass over the published versions.
    let now = report::now();
    let slice = if opts.slice {
        let (cycle, total) = db
            .call(|s| Ok((s.cycle(CYCLE)?, s.in_tree_count()?)))
            .await?;
        let period = i64::try_from(settings.verify_cycle.as_secs()).unwrap_or(i64::MAX);
        let count = cycle
            .due(total, period, now, SLICE_GAP, SLICE_GAP)
            .max(crate::env::test::slice_min().unwrap_or(SLICE_MIN));
        Some((cycle, total, count))
    } else {
        None
    };
    let range = slice.as_ref().map(|(c, _, count)| Range {
        after: c.after.clone(),
        count: *count,
    });
    let checked = check(
        settings,
        opts,
        out,
        svc,
        &mut report,
        repairs.as_mut(),
        "",
        range.as_ref(),
    )
    .await?;
    report.problems = checked.problems;
    report.seconds = started.elapsed().as_secs_f64();
    // The pass moves on once the slice is checked (and repaired, below).
    let save_slice = async |report: &mut VerifyReport| -> Result<(), Fatal> {
        let Some((cycle, total, _)) = &slice else {
            return Ok(());
        };
        let mut c = cycle.clone();
        c.advance(report.versions, checked.last.clone(), now);
        if checked.ended {
            c.wrap(now);
        }
        report.slice = Some(SliceReport {
            from: cycle.done,
            to: cycle.done + report.versions,
            total: *total,
            pass_ended: checked.ended,
            cycle_seconds: settings.verify_cycle.as_secs(),
        });
        db.call(move |s| s.save_cycle(CYCLE, &c)).await?;
        Ok(())
    };
    let Some(mut repairs) = repairs else {
        save_slice(&mut report).await?;
        return Ok(report);
    };
    if report.problems.is_empty() {
        save_slice(&mut report).await?;
        return Ok(report);
    }
    report.repair_attempted = true;
    repairs.flush(settings, out, svc).await?;
    if !repairs.tiles.is_empty() {
        let client = served_anchor_client(settings, svc, false).await?;
        out.info(&format!("repairing {} tiles", repairs.tiles.len()));
        crate::tiles::repair(&client, db, &repairs.tiles, settings.workers, out).await?;
    }
    if !repairs.refetched {
        // Only derived files were wrong; the checksum database files may be among them.
        let client = served_anchor_client(settings, svc, false).await?;
        client.write_static_files().await.map_err(Fatal::from)?;
    }
    // Indexes are derived: rewrite those found wrong (marked dirty by the check).
    crate::publish::lists::rewrite_dirty_lists(db, tree).await?;
    if repairs.counts {
        db.call(|s| s.repair_counts()).await?;
    }
    report.repaired = repairs.republished;

    // Check again, everything the first check covered (a repair must leave
    // it all right).
    let mut again = VerifyReport::default();
    report.remaining = check(
        settings,
        opts,
        out,
        svc,
        &mut again,
        None,
        "after repair: ",
        range.as_ref(),
    )
    .await?
    .problems;
    report.seconds = started.elapsed().as_secs_f64();
    save_slice(&mut report).await?;
    Ok(report)
}

/// Repairs a checking pass has found and not yet carried out.
#[derive(Default)]
struct Repairs {
    /// Damaged versions waiting to be refetched: at most [`REPAIR_BATCH`].
    damaged: BTreeMap<(i64, String), Todo>,
    republished: u64,
    refetched: bool,
    /// Checksum-database tiles found damaged or missing (tree keys).
    tiles: Vec<String>,
    /// The kept counts differ from a recount: rewrite them.
    counts: bool,
}

/// The verify pass's name in the state database.
const CYCLE: &str = "verify";
/// A `--slice` run is meant to come once a day: a first one, and one after a
/// longer pause, check a day's worth.
const SLICE_GAP: i64 = 86_400;
/// Versions a slice checks at least: a small mirror is checked whole.
const SLICE_MIN: u64 = 1000;

/// The versions a `--slice` run checks: `count` of them after `after`.
#[derive(Clone, Debug)]
struct Range {
    after: Option<(i64, String)>,
    count: u64,
}

/// What a check found, and where it stopped.
struct Checked {
    problems: Problems,
    /// The last version checked (module id, version).
    last: Option<(i64, String)>,
    /// It came to the end of the tree.
    ended: bool,
}

impl Repairs {
    /// Refetches the damaged versions found so far: they are unlisted until
    /// they are whole again, then republished through the verified path.
    async fn flush(
        &mut self,
        settings: &Settings,
        out: &Reporter,
        svc: &Services,
    ) -> Result<(), Fatal> {
        let (db, tree) = (&svc.db, &svc.tree);
        if self.damaged.is_empty() {
            return Ok(());
        }
        let todos: Vec<Todo> = std::mem::take(&mut self.damaged).into_values().collect();
        let unlist: Vec<(i64, String)> = todos
            .iter()
            .map(|t| (t.module_id, t.version.clone()))
            .collect();
        db.call(move |s| s.requeue(&unlist))
            .await
            .map_err(Fatal::from)?;
        crate::publish::lists::rewrite_dirty_lists(db, tree).await?;
        out.info(&format!("repairing {} versions", todos.len()));
        let mut r = SyncReport::default();
        let due = todos.len() as u64;
        fetch::pass(settings, svc, WorkSource::List(todos), due, out, &mut r).await?;
        let client = svc.log(settings).await?;
        client.write_static_files().await.map_err(Fatal::from)?;
        self.republished += r.published;
        self.refetched = true;
        Ok(())
    }
}

/// A client whose trust anchor is the largest head the mirror serves (its
/// `latest`): the view of a go client that only ever saw this mirror.
async fn served_anchor_client(
    settings: &Settings,
    svc: &Services,
    offline: bool,
) -> Result<LogClient, Fatal> {
    let served = svc
        .db
        .call(|s| s.largest_served_head())
        .await
        .map_err(Fatal::from)?;
    let client = svc.upstreams.log_client(settings, &svc.tree);
    let client = match served {
        Some(h) => {
            let head = client.parse_head(&h.note).map_err(|e| {
                Fatal::context(
                    "the tree head in the state database does not verify with the configured key",
                    e,
                )
            })?;
            client.trust(head)
        }
        None => client,
    };
    Ok(if offline { client.offline() } else { client })
}

/// Checks the whole tree, a page of versions at a time, and returns the
/// problems. With `repairs`, damaged versions are refetched in batches as the
/// walk goes on and modules with wrong indexes are marked for rewriting.
#[allow(clippy::too_many_arguments)]
async fn check(
    settings: &Settings,
    opts: &VerifyOptions,
    out: &Reporter,
    svc: &Services,
    report: &mut VerifyReport,
    mut repairs: Option<&mut Repairs>,
    // Printed before each problem of this pass (the check after a repair).
    pass: &str,
    // `--slice`: only these versions (and the tiles once per pass).
    range: Option<&Range>,
) -> Result<Checked, Fatal> {
    let (db, tree) = (&svc.db, &svc.tree);
    let client = served_anchor_client(settings, svc, true).await?;
    let mut problems = Problems::default();
    let name = settings.sumdb.name.clone();

    // The checksum database's static files.
    let served_max = client.trusted();
    if let Some(anchor) = &served_max {
        let supported = layout::plain(Key::SumdbSupported { db: name.clone() });
        if !matches!(stat_async(tree, &supported).await, Ok(Some(_))) {
            problems.push(Problem {
                module: String::new(),
                version: None,
                file: supported,
                message: "missing".into(),
            });
        }
        let latest = layout::plain(Key::SumdbLatest { db: name.clone() });
        let body = read_async(tree, &latest, NOTE_LIMIT).await.ok().flatten();
        match body {
            Some(b) if b == anchor.note => {}
            Some(_) => problems.push(Problem {
                module: String::new(),
                version: None,
                file: latest,
                message: format!(
                    "does not hold the tree head the mirror serves (size {})",
                    anchor.tree.n
                ),
            }),
            _ => problems.push(Problem {
                module: String::new(),
                version: None,
                file: latest,
                message: "missing".into(),
            }),
        }
    }

    // The checksum database's static files: at most three problems so far.
    for p in &problems.sample {
        out.error(&format!("{pass}{p}"));
    }

    // Every tile a go client may ask for (`sumdb.tiles = "all"`); a slice
    // checks them when it begins a pass.
    let whole_or_first = range.is_none_or(|r| r.after.is_none());
    if settings.sumdb.tiles == crate::settings::TileMode::All && !opts.quick && whole_or_first {
        let mut damaged = Vec::new();
        crate::tiles::check(&client, db, |file, message| {
            let p = Problem {
                module: String::new(),
                version: None,
                file,
                message,
            };
            out.error(&format!("{pass}{p}"));
            damaged.push(p.file.clone());
            problems.push(p);
        })
        .await?;
        if let Some(r) = repairs.as_mut() {
            r.tiles.extend(damaged);
        }
    }

    let total = db.call(|s| s.in_tree_count()).await.map_err(Fatal::from)?;
    let limit = range.map_or(u64::MAX, |r| r.count);
    out.start("verifying", Some(total.min(limit)));
    let done = Arc::new(AtomicU64::new(0));
    let zip_bytes = Arc::new(AtomicU64::new(0));
    let mut after: Option<(i64, String)> = range.and_then(|r| r.after.clone());
    let mut taken = 0u64;
    let mut ended = false;
    let mut modules = 0u64;
    let mut last_module: Option<i64> = None;
    loop {
        if taken >= limit {
            break;
        }
        let a = after.clone();
        let want = (limit - taken).min(256) as usize;
        let page = db
            .call(move |s| s.in_tree_page(a.as_ref().map(|(i, v)| (*i, v.as_str())), want))
            .await
            .map_err(Fatal::from)?;
        taken += page.len() as u64;
        if page.len() < want {
            ended = true;
        }
        if page.is_empty() {
            break;
        }
        after = page
            .last()
            .map(|v| (v.published.module_id, v.published.version.clone()));
        // Module indexes, once per module (pages are in module order).
        let mut module_ids: Vec<(i64, String)> = Vec::new();
        for v in &page {
            if last_module != Some(v.published.module_id) {
                last_module = Some(v.published.module_id);
                module_ids.push((v.published.module_id, v.path.clone()));
            }
        }
        modules += module_ids.len() as u64;
        // Files: parallel, on rayon, off the async executor.
        let t = tree.clone();
        let quick = opts.quick;
        let (d, zb) = (done.clone(), zip_bytes.clone());
        let page_for_files = page.clone();
        let lookup_db = name.clone();
        // Each version's files, and its lookup read (verified below, on the
        // executor): the reads of a page side by side, in one blocking task.
        type Lookup = (usize, String, Result<Option<Vec<u8>>, String>);
        let (file_problems, lookups): (Vec<Problem>, Vec<Lookup>) =
            tokio::task::spawn_blocking(move || {
                let problems = page_for_files
                    .par_iter()
                    .flat_map_iter(|v| {
                        let p = check_version_files(&*t, v, quick);
                        if !quick {
                            zb.fetch_add(v.published.zip_size.max(0) as u64, Ordering::Relaxed);
                        }
                        d.fetch_add(1, Ordering::Relaxed);
                        p
                    })
                    .collect();
                let lookups = page_for_files
                    .par_iter()
                    .enumerate()
                    .filter(|(_, v)| v.published.record_id.is_some())
                    .filter_map(|(i, v)| {
                        let rel = layout::lookup(&lookup_db, &v.path, &v.published.version).ok()?;
                        let body = t.read(&rel, LOOKUP_LIMIT).map_err(|e| e.to_string());
                        Some((i, rel, body))
                    })
                    .collect();
                (problems, lookups)
            })
            .await
            .map_err(|e| Fatal::crashed("verify", e))?;
        // Lookups: as a go client would check them, tiles from the tree only.
        let mut lookup_problems = Vec::new();
        for (i, rel, body) in lookups {
            let v = &page[i];
            let body = match body {
                Ok(Some(b)) => b,
                Ok(None) => {
                    lookup_problems.push(problem(v, &rel, "missing".into()));
                    continue;
                }
                Err(e) => {
                    lookup_problems.push(problem(v, &rel, e.to_string()));
                    continue;
                }
            };
            if opts.quick {
                continue;
            }
            match client
                .verify_lookup(&v.path, &v.published.version, body)
                .await
            {
                Ok(l) => {
                    if l.zip_h1 != v.published.zip_h1 || l.mod_h1 != v.published.mod_h1 {
                        lookup_problems.push(problem(
                            v,
                            &rel,
                            format!(
                                "states {} and {}, but the mirror published {} and {}",
                                l.zip_h1, l.mod_h1, v.published.zip_h1, v.published.mod_h1
                            ),
                        ));
                    } else if Some(l.record_id) != v.published.record_id {
                        lookup_problems.push(problem(
                            v,
                            &rel,
                            format!(
                                "is record {}, expected {:?}",
                                l.record_id, v.published.record_id
                            ),
                        ));
                    }
                }
                Err(e) => lookup_problems.push(problem(
                    v,
                    &rel,
                    format!("a go client would reject it: {e}"),
                )),
            }
        }
        // What no checksum database vouches for, against the ledger: not
        // repaired (another make would be refused the same way).
        for p in ledger_problems(settings, db, &page).await? {
            out.error(&format!("{pass}{p}"));
            problems.push(p);
        }
        for p in file_problems.into_iter().chain(lookup_problems) {
            if let Some(r) = repairs.as_deref_mut()
                && let Some(v) = page.iter().find(|v| {
                    Some(&v.published.version) == p.version.as_ref() && v.path == p.module
                })
            {
                r.damaged
                    .entry((v.published.module_id, v.published.version.clone()))
                    .or_insert(Todo {
                        module_id: v.published.module_id,
                        path: v.path.clone(),
                        version: v.published.version.clone(),
                        attempts: 0,
                        zip: v.published.zip,
                        pinned: true,
                    });
            }
            out.error(&format!("{pass}{p}"));
            problems.push(p);
        }
        // Indexes; when repairing, a module with a wrong one is marked for rewriting.
        let t = tree.clone();
        let mark_dirty = repairs.is_some();
        let index_problems = db
            .call(move |s| -> Result<Vec<Problem>, crate::state::StateError> {
                let mut out = Vec::new();
                for (id, path) in module_ids {
                    let listed: Vec<Listed> = s.listed_versions(id)?;
                    let leaving: Vec<Listed> = s.gone_in_tree_versions(id)?;
                    let found = check_module_indexes(&*t, &path, &listed, &leaving);
                    if mark_dirty && !found.is_empty() {
                        s.set_dirty(&[id], true)?;
                    }
                    out.extend(found);
                }
                Ok(out)
            })
            .await
            .map_err(Fatal::from)?;
        for p in index_problems {
            out.error(&format!("{pass}{p}"));
            problems.push(p);
        }
        if let Some(r) = repairs.as_deref_mut()
            && r.damaged.len() >= REPAIR_BATCH
        {
            r.flush(settings, out, svc).await?;
        }
        out.progress(
            done.load(Ordering::Relaxed),
            &format!(
                "{} of zips hashed",
                report::bytes(zip_bytes.load(Ordering::Relaxed))
            ),
        );
    }
    out.finish();
    // The counts `status`, metrics and the trace show are kept by triggers:
    // a whole check recounts them (a pass over every version, cheap beside
    // reading every file) and a repair rewrites them.
    if range.is_none() {
        let (kept, actual, modules_off) = db
            .call(|s| Ok((s.counts()?, s.recount()?, s.prune_counter_mismatches(3)?)))
            .await?;
        if kept != actual || !modules_off.is_empty() {
            let p = Problem {
                module: String::new(),
                version: None,
                file: settings.state.display().to_string(),
                message: format!(
                    "the counts it keeps differ from a recount (kept {kept:?}, counted {actual:?}; per-module prune counters off for {modules_off:?})"
                ),
            };
            out.error(&format!("{pass}{p}"));
            problems.push(p);
            if let Some(r) = repairs {
                r.counts = true;
            }
        }
    }
    report.versions = done.load(Ordering::Relaxed);
    report.modules = modules;
    report.zip_bytes = zip_bytes.load(Ordering::Relaxed);
    Ok(Checked {
        problems,
        last: after,
        ended: ended || range.is_none(),
    })
}

/// The versions of `page` no checksum database vouches for (private and
/// `sumdb.skip` modules), against the ledger: what the mirror published must
/// be what the ledger holds, and a content the repository made later (a
/// moved tag, recorded as the entry's conflict) is reported until it is
/// gone.
async fn ledger_problems(
    settings: &Settings,
    db: &crate::state::db::Db,
    page: &[PublishedVersion],
) -> Result<Vec<Problem>, Fatal> {
    let pinned: Vec<(String, String)> = page
        .iter()
        .filter(|v| settings.sumdb.skips(&v.path))
        .map(|v| (v.path.clone(), v.published.version.clone()))
        .collect();
    if pinned.is_empty() {
        return Ok(Vec::new());
    }
    let entries = db.call(move |s| s.ledger_entries(&pinned)).await?;
    let mut found = Vec::new();
    for e in entries {
        let Some(v) = page
            .iter()
            .find(|v| v.path == e.path && v.published.version == e.version)
        else {
            continue;
        };
        let ext = if v.published.zip { "zip" } else { "mod" };
        let file = layout::version_file(&v.path, &v.published.version, ext).unwrap_or_default();
        let since = format!(
            "since {} (from {})",
            crate::clock::rfc3339(e.first_at),
            crate::shown::text(&e.source)
        );
        let zip_differs =
            v.published.zip && e.zip_h1.as_ref().is_some_and(|z| *z != v.published.zip_h1);
        if e.mod_h1 != v.published.mod_h1 || zip_differs {
            found.push(problem(
                v,
                &file,
                format!(
                    "SECURITY: the ledger holds {} and {} {since}, but the mirror published {} and {}",
                    e.zip_h1.as_deref().unwrap_or("no zip"),
                    e.mod_h1,
                    v.published.zip_h1,
                    v.published.mod_h1
                ),
            ));
        }
        if let Some(c) = &e.conflict {
            found.push(problem(
                v,
                &file,
                format!(
                    "SECURITY: {} made another content at {} ({} and {}; the ledger holds {} and {} {since}): a moved tag or a rewritten history; the mirror serves the first",
                    crate::shown::text(&c.source),
                    crate::clock::rfc3339(c.at),
                    c.zip_h1.as_deref().unwrap_or("no zip"),
                    c.mod_h1,
                    e.zip_h1.as_deref().unwrap_or("no zip"),
                    e.mod_h1
                ),
            ));
        }
    }
    Ok(found)
}

fn problem(v: &PublishedVersion, file: &str, message: String) -> Problem {
    Problem {
        module: v.path.clone(),
        version: Some(v.published.version.clone()),
        file: file.to_string(),
        message,
    }
}

/// Checks one version's `.info`, `.mod` and `.zip`.
pub fn check_version_files(tree: &dyn Store, v: &PublishedVersion, quick: bool) -> Vec<Problem> {
    let mut out = Vec::new();
    let files = [
        ("info", v.published.info_size, v.published.info_mtime),
        ("mod", v.published.mod_size, v.published.mod_mtime),
        ("zip", v.published.zip_size, v.published.zip_mtime),
    ];
    // A graph-only version has no zip to check.
    let files = &files[..if v.published.zip { 3 } else { 2 }];
    let mut keys = Vec::with_capacity(files.len());
    for &(ext, size, mtime) in files {
        match layout::version_file(&v.path, &v.published.version, ext) {
            Ok(r) => keys.push((ext, size, mtime, r)),
            Err(e) => out.push(problem(v, ext, e.to_string())),
        }
    }
    // The files share a directory: one walk to it for all their stats.
    let metas = tree.stat_many(&keys.iter().map(|k| k.3.as_str()).collect::<Vec<_>>());
    for ((ext, size, mtime, rel), meta) in keys.into_iter().zip(metas) {
        let meta = match meta {
            Ok(Some(m)) => m,
            Ok(None) => {
                out.push(problem(v, &rel, "missing".into()));
                continue;
            }
            Err(StoreError::NotAFile(_)) => {
                out.push(problem(v, &rel, "not a regular file".into()));
                continue;
            }
            Err(e) => {
                out.push(problem(v, &rel, e.to_string()));
                continue;
            }
        };
        if quick {
            if meta.size as i64 != size {
                out.push(problem(
                    v,
                    &rel,
                    format!("size is {}, {} was published", meta.size, size),
                ));
            } else if meta.modified_ns != mtime {
                out.push(problem(v, &rel, "modified since it was published".into()));
            }
            continue;
        }
        if let Err(m) = check_file_content(tree, v, ext, &rel) {
            out.push(problem(v, &rel, m));
        }
    }
    out
}

/// Re-hashes one published file: its SHA-256 where one was recorded, then
/// what it must be (`.info` names the version, `.mod` and `.zip` their `h1:`).
fn check_file_content(
    tree: &dyn Store,
    v: &PublishedVersion,
    ext: &str,
    rel: &str,
) -> Result<(), String> {
    let mut file = match tree.open(rel) {
        Ok(Some(f)) => f,
        Ok(None) => return Err("missing".into()),
        Err(StoreError::NotAFile(_)) => return Err("not a regular file".into()),
        Err(e) => return Err(e.to_string()),
    };
    let recorded = match ext {
        "info" => v.published.info_sha256.as_deref(),
        "zip" => v.published.zip_sha256.as_deref(),
        _ => None,
    };
    if let Some(want) = recorded {
        let got = crate::store::sha256_of(&mut file).map_err(|e| format!("cannot read: {e}"))?;
        if hex::encode(got) != want {
            return Err(format!(
                "bytes changed since publication (SHA-256 {}, published {want})",
                hex::encode(got)
            ));
        }
        rewind(&mut file).map_err(|e| format!("cannot read: {e}"))?;
    }
    match ext {
        "info" => {
            let bytes = read_at_most(file, crate::check::INFO_LIMIT)?;
            crate::check::check_info(&bytes, &v.published.version)
                .map(|_| ())
                .map_err(|m| format!("invalid: {m}"))
        }
        "mod" => {
            let bytes = read_at_most(file, modzip::MAX_GO_MOD)?;
            let h = dirhash::go_mod_hash(Sha256::digest(&bytes).into());
            if h == v.published.mod_h1 {
                Ok(())
            } else {
                Err(format!("hash is {h}, {} was published", v.published.mod_h1))
            }
        }
        _ => match modzip::check_and_hash_zip_file(
            file,
            Path::new(rel),
            &v.path,
            &v.published.version,
        ) {
            Ok(s) if s.h1 == v.published.zip_h1 => Ok(()),
            Ok(s) => Err(format!(
                "hash is {}, {} was published",
                s.h1, v.published.zip_h1
            )),
            Err(e) => Err(format!("invalid module zip: {e}")),
        },
    }
}

fn rewind(file: &mut std::fs::File) -> std::io::Result<()> {
    use std::io::Seek;
    file.rewind()
}

/// The whole file, unless it is larger than `limit`.
fn read_at_most(file: std::fs::File, limit: u64) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(format!("larger than the {limit} bytes allowed"));
    }
    Ok(bytes)
}

/// [`Store::read`] on the blocking pool.
async fn read_async(
    tree: &Arc<dyn Store>,
    key: &str,
    limit: u64,
) -> Result<Option<Vec<u8>>, String> {
    let (t, key) = (tree.clone(), key.to_string());
    tokio::task::spawn_blocking(move || t.read(&key, limit).map_err(|e| e.to_string()))
        .await
        .map_err(|e| format!("verify crashed: {e}"))?
}

/// [`Store::stat`] on the blocking pool.
async fn stat_async(
    tree: &Arc<dyn Store>,
    key: &str,
) -> Result<Option<crate::store::ObjectMeta>, String> {
    let (t, key) = (tree.clone(), key.to_string());
    tokio::task::spawn_blocking(move || t.stat(&key).map_err(|e| e.to_string()))
        .await
        .map_err(|e| format!("verify crashed: {e}"))?
}

/// Checks a module's `@v/list` and `@latest` against what the database says.
/// `leaving` are versions gone upstream but still in the tree (a prune past
/// `max_delete` was refused, or has not run yet): the indexes may still name
/// them until prune unlists them, so either form is right.
pub fn check_module_indexes(
    tree: &dyn Store,
    module: &str,
    listed: &[Listed],
    leaving: &[Listed],
) -> Vec<Problem> {
    let mut out = Vec::new();
    let expect = |versions: &[Listed]| {
        let latest = lists::choose_latest(module, versions)
            .map(|l| lists::render_info(&l.version, l.time.as_deref()));
        (
            (!versions.is_empty()).then(|| lists::render_list(versions)),
            if versions.is_empty() { None } else { latest },
        )
    };
    let (expect_list, expect_latest) = expect(listed);
    let still: Vec<Listed> = listed.iter().chain(leaving).cloned().collect();
    let (still_list, still_latest) = if leaving.is_empty() {
        (None, None)
    } else {
        expect(&still)
    };
    let checks = [
        (layout::list(module), expect_list, still_list),
        (layout::latest(module), expect_latest, still_latest),
    ];
    for (rel, expected, before_prune) in checks {
        let Ok(rel) = rel else { continue };
        let actual = match tree.read(&rel, INDEX_LIMIT) {
            Ok(a) => a,
            Err(e) => {
                out.push(Problem {
                    module: module.to_string(),
                    version: None,
                    file: rel,
                    message: e.to_string(),
                });
                continue;
            }
        };
        if let (Some(b), Some(a)) = (&before_prune, &actual)
            && b.as_bytes() == a.as_slice()
        {
            continue;
        }
        let msg = match (&expected, &actual) {
            (Some(e), Some(a)) if e.as_bytes() == a.as_slice() => continue,
            (None, None) => continue,
            (Some(_), None) => "missing".to_string(),
            (None, Some(_)) => "present, but the module has no listed version".to_string(),
            (Some(e), Some(a)) => format!(
                "does not match the state database (expected {}, found {})",
                crate::shown::quoted(e),
                crate::shown::quoted(&String::from_utf8_lossy(a))
            ),
        };
        out.push(Problem {
            module: module.to_string(),
            version: None,
            file: rel,
            message: msg,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(i: usize) -> Problem {
        Problem {
            module: "example.com/m".into(),
            version: Some(format!("v1.0.{i}")),
            file: format!("example.com/m/@v/v1.0.{i}.zip"),
            message: "missing".into(),
        }
    }

    #[test]
    fn problem_list_is_capped_while_the_count_is_exact() {
        let mut problems = Problems::default();
        for i in 0..PROBLEM_SAMPLE * 10 + 3 {
            problems.push(p(i));
        }
        assert_eq!(problems.count, (PROBLEM_SAMPLE * 10 + 3) as u64);
        assert_eq!(problems.sample.len(), PROBLEM_SAMPLE);
        assert_eq!(problems.sample[0], p(0), "the first ones are kept");
        let report = VerifyReport {
            problems,
            ..VerifyReport::default()
        };
        assert_eq!(report.exit_code(), 1);
        let text = report.render();
        assert!(
            text.contains(&format!(
                "; {} problems (each printed above)\n",
                PROBLEM_SAMPLE * 10 + 3
            )),
            "{text}"
        );
        // Printed once, when found: the summary does not list them again.
        assert_eq!(text.lines().count(), 1, "{text}");
    }

    /// A link in place of `@v/list` is a stray that prune removes: verify
    /// must not call the index good by reading its target outside the tree.
    #[test]
    fn verify_never_reads_a_module_index_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::LocalStore::open(&dir.path().join("out")).unwrap();
        let module = "example.com/m";
        let listed = [Listed {
            version: "v1.0.0".into(),
            time: None,
            mod_h1: "h1:x".into(),
        }];
        let latest = lists::choose_latest(module, &listed).unwrap();
        store
            .write_file(
                &layout::latest(module).unwrap(),
                lists::render_info(&latest.version, None).as_bytes(),
            )
            .unwrap();
        store
            .write_file(
                &layout::list(module).unwrap(),
                lists::render_list(&listed).as_bytes(),
            )
            .unwrap();
        assert_eq!(check_module_indexes(&store, module, &listed, &[]), []);

        // The right bytes, outside the tree, behind a link.
        let outside = dir.path().join("list");
        std::fs::write(&outside, lists::render_list(&listed)).unwrap();
        let list = dir.path().join("out").join(layout::list(module).unwrap());
        std::fs::remove_file(&list).unwrap();
        std::os::unix::fs::symlink(&outside, &list).unwrap();
        let found = check_module_indexes(&store, module, &listed, &[]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].file, layout::list(module).unwrap());
        assert!(found[0].message.contains("not a regular file"), "{found:?}");
    }

    #[test]
    fn a_summary_counts_problems_without_repeating_them() {
        let mut problems = Problems::default();
        problems.push(p(1));
        let text = VerifyReport {
            problems,
            ..VerifyReport::default()
        }
        .render();
        assert!(text.contains("; 1 problem (printed above)\n"), "{text}");
        assert!(!text.contains("example.com/m@v1.0.1"), "{text}");
    }
}
