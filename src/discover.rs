//! Discover: walks the discovery sources ([`crate::source::Discovery`]: the
//! module index from the stored cursor, then the seeds) into one of two
//! intakes. A sync's [`Recorder`] records each batch and moves the cursor in
//! the same transaction; a dry run's [`Preview`] only reads the state
//! database and prints what would be fetched as it is found, so the walk is
//! the same code in both modes and the dry run changes nothing.

use std::collections::HashSet;

use crate::fatal::Fatal;
use crate::plan::{self, EntryAction};
use crate::policy::Policy;
use crate::report::Reporter;
use crate::report::summary::{DemandSummary, FilesSummary, SyncReport};
use crate::settings::Filter;
use crate::source::demand::DemandRead;
use crate::source::{
    AnyIntake, DemandIntake, Discovery, Event, Events, FeedIntake, FilesIntake, Intake,
    LocalBoxFuture, SourceError,
};
use crate::state::db::Db;
use crate::state::{
    ChangeStats, DemandBatch, DemandNamed, DemandRecorded, DemandTake, FeedOp, FollowCursor,
    IndexEntry, LogPosition, NameStats, NamedFile, PageStats,
};

/// Walks `sources` (built by [`crate::services::Upstreams::discovery`])
/// into `intake`, in order.
pub async fn discover_all(
    sources: &[Box<dyn Discovery>],
    intake: &mut dyn AnyIntake,
) -> Result<(), Fatal> {
    for source in sources {
        source.preflight().map_err(Fatal::from)?;
    }
    for source in sources {
        source.discover(intake).await.map_err(Fatal::from)?;
    }
    Ok(())
}

/// How many invalid lines a run shows on stderr, one warning each.
const SHOWN_INVALID: u64 = 100;

/// What both intakes do with a source's events: print them and count them
/// in the report.
fn note(out: &Reporter, report: &mut SyncReport, event: Event) {
    match event {
        Event::Started(what) => out.start(what, None),
        Event::Page { lines } => {
            report.index_pages += 1;
            report.index_lines += lines as u64;
        }
        Event::Invalid(msg) => {
            report.invalid_lines += 1;
            if report.invalid_samples.len() < 20 {
                report.invalid_samples.push(msg.clone());
            }
            // A peer decides how many invalid lines it sends: the first are
            // shown, the rest counted (the summary has the count), so a
            // feed of garbage cannot flood cron mail.
            match report.invalid_lines {
                n if n <= SHOWN_INVALID => out.warn(&msg),
                n if n == SHOWN_INVALID + 1 => out.warn(&format!(
                    "more than {SHOWN_INVALID} invalid lines: the rest are counted, not shown"
                )),
                _ => {}
            }
        }
        Event::Gap(msg) => {
            out.warn(&msg);
            report.index_gaps.push(msg);
        }
        Event::Warning(msg) => out.warn(&msg),
        Event::Progress { n, message } => out.progress(n, &message),
        Event::Verbose(msg) => out.verbose(&msg),
        Event::Finished => out.finish(),
    }
}

/// A sync's intake: every batch is recorded (new versions of wanted
/// modules become pending), the cursor moving in the same transaction.
pub struct Recorder<'a> {
    pub db: &'a Db,
    pub filter: Filter,
    pub out: &'a Reporter,
    pub report: &'a mut SyncReport,
}

impl Events for Recorder<'_> {
    fn note(&mut self, event: Event) {
        note(self.out, self.report, event)
    }
}

impl Intake for Recorder<'_> {
    fn position(&mut self) -> LocalBoxFuture<'_, Result<Option<String>, SourceError>> {
        Box::pin(async move { Ok(self.db.call(|s| s.cursor()).await?) })
    }

    fn offer(
        &mut self,
        entries: Vec<IndexEntry>,
        position: Option<String>,
    ) -> LocalBoxFuture<'_, Result<PageStats, SourceError>> {
        Box::pin(async move {
            let filter = self.filter.clone();
            let stats = self
                .db
                .call(move |s| {
                    s.record_entries(&entries, &|p| filter.wants(p), position.as_deref())
                })
                .await?;
            self.report.index_new += stats.new;
            self.report.index_new_wanted += stats.new_wanted;
            Ok(stats)
        })
    }
}

impl FilesIntake for Recorder<'_> {
    fn name(
        &mut self,
        files: Vec<NamedFile>,
    ) -> LocalBoxFuture<'_, Result<NameStats, SourceError>> {
        Box::pin(async move {
            let filter = self.filter.clone();
            let count = files.len() as u64;
            let stats = self
                .db
                .call(move |s| s.name_versions(&files, &|p| filter.wants(p)))
                .await?;
            self.report.from_files = Some(FilesSummary {
                files: count,
                versions: stats.named,
                queued: stats.queued,
                upgraded: stats.upgraded,
                dropped: stats.dropped,
            });
            Ok(stats)
        })
    }
}

impl FeedIntake for Recorder<'_> {
    fn follow_position(&mut self) -> LocalBoxFuture<'_, Result<Option<FollowCursor>, SourceError>> {
        Box::pin(async move { Ok(self.db.call(|s| s.follow_cursor()).await?) })
    }

    fn offer_changes(
        &mut self,
        changes: Vec<(FeedOp, IndexEntry)>,
        cursor: FollowCursor,
    ) -> LocalBoxFuture<'_, Result<ChangeStats, SourceError>> {
        Box::pin(async move {
            let filter = self.filter.clone();
            let stats = self
                .db
                .call(move |s| s.record_feed_changes(&changes, &|p| filter.wants(p), &cursor))
                .await?;
            self.count(stats);
            Ok(stats)
        })
    }

    fn snapshot_begin(&mut self) -> LocalBoxFuture<'_, Result<(), SourceError>> {
        Box::pin(async move { Ok(self.db.call(|s| s.snapshot_begin()).await?) })
    }

    fn snapshot_page(
        &mut self,
        changes: Vec<(FeedOp, IndexEntry)>,
    ) -> LocalBoxFuture<'_, Result<(), SourceError>> {
        Box::pin(async move { Ok(self.db.call(move |s| s.snapshot_apply(&changes)).await?) })
    }

    fn snapshot_finish(
        &mut self,
        cursor: FollowCursor,
    ) -> LocalBoxFuture<'_, Result<ChangeStats, SourceError>> {
        Box::pin(async move {
            let filter = self.filter.clone();
            let stats = self
                .db
                .call(move |s| s.snapshot_finish(&|p| filter.wants(p), &cursor))
                .await?;
            self.count(stats);
            Ok(stats)
        })
    }

    fn upstream_chain(
        &mut self,
        chain: Vec<String>,
    ) -> LocalBoxFuture<'_, Result<(), SourceError>> {
        Box::pin(async move {
            let text = serde_json::to_string(&chain).expect("strings serialise");
            Ok(self
                .db
                .call(move |s| s.set_meta("follow.chain", &text))
                .await?)
        })
    }
}

impl Recorder<'_> {
    fn count(&mut self, stats: ChangeStats) {
        self.report.index_new += stats.new;
        self.report.index_new_wanted += stats.new_wanted;
        self.report.feed_withdrawn += stats.withdrawn;
    }
}

/// How many printed versions a dry run remembers so that a version offered
/// twice (pages overlap at their edges; a seed's versions are often in the
/// index too) is printed once: 8 bytes each, bounded whatever the walk.
const PREVIEW_MEMORY: usize = 1_000_000;

/// A dry run's intake: nothing is recorded. Whether an offered version is
/// new is asked of the state database read-only, and the plan decides
/// what a sync would do with it; `fetch <module>@<version>` is printed as it
/// is found.
pub struct Preview<'a> {
    pub db: &'a Db,
    pub filter: Filter,
    /// The supply-chain policy: a new version is printed as fetched, held
    /// or denied, as the sync would decide it.
    pub policy: Policy,
    pub out: &'a Reporter,
    pub report: &'a mut SyncReport,
    printed: HashSet<u64>,
}

impl<'a> Preview<'a> {
    pub fn new(
        db: &'a Db,
        filter: Filter,
        policy: Policy,
        out: &'a Reporter,
        report: &'a mut SyncReport,
    ) -> Preview<'a> {
        Preview {
            db,
            filter,
            policy,
            out,
            report,
            printed: HashSet::new(),
        }
    }

    /// Prints what the sync would do with a new version it would fetch
    /// but for the policy (first seen at `first_seen`; `None`: now);
    /// returns whether it would be fetched.
    fn decide(&mut self, path: &str, version: &str, first_seen: Option<i64>, suffix: &str) -> bool {
        let verdict = self
            .policy
            .decide(path, version, first_seen, crate::clock::now(), true);
        crate::report::outln(format_args!(
            "{}",
            plan::verdict_line(path, version, &verdict, suffix)
        ));
        plan::count_verdict(&mut self.report.policy, path, version, &verdict)
    }

    /// Whether `entry` is offered for the first time this run.
    fn first_sight(&mut self, entry: &IndexEntry) -> bool {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&entry.path, &entry.version).hash(&mut h);
        let key = h.finish();
        if self.printed.contains(&key) {
            return false;
        }
        if self.printed.len() < PREVIEW_MEMORY {
            self.printed.insert(key);
        }
        true
    }
}

impl Events for Preview<'_> {
    fn note(&mut self, event: Event) {
        note(self.out, self.report, event)
    }
}

impl Intake for Preview<'_> {
    fn position(&mut self) -> LocalBoxFuture<'_, Result<Option<String>, SourceError>> {
        Box::pin(async move { Ok(self.db.call(|s| s.cursor()).await?) })
    }

    fn offer(
        &mut self,
        entries: Vec<IndexEntry>,
        _position: Option<String>,
    ) -> LocalBoxFuture<'_, Result<PageStats, SourceError>> {
        Box::pin(async move {
            let (known, entries) = self
                .db
                .call(move |s| Ok((s.known_versions(&entries)?, entries)))
                .await?;
            let mut stats = PageStats::default();
            let mut fetched = 0;
            for (entry, known) in entries.iter().zip(known) {
                if !self.first_sight(entry) {
                    continue;
                }
                match plan::plan_entry(known, self.filter.wants(&entry.path)) {
                    EntryAction::Known => {}
                    EntryAction::Record => stats.new += 1,
                    EntryAction::Fetch => {
                        stats.new += 1;
                        stats.new_wanted += 1;
                        if self.decide(&entry.path, &entry.version, entry.listed_at, "") {
                            fetched += 1;
                        }
                    }
                }
            }
            self.report.index_new += stats.new;
            self.report.index_new_wanted += stats.new_wanted;
            self.report.attempted += fetched;
            Ok(stats)
        })
    }
}

impl FilesIntake for Preview<'_> {
    fn name(
        &mut self,
        files: Vec<NamedFile>,
    ) -> LocalBoxFuture<'_, Result<NameStats, SourceError>> {
        Box::pin(async move {
            let count = files.len() as u64;
            let (fetch, files) = self
                .db
                .call(move |s| {
                    let mut fetch = Vec::new();
                    for f in &files {
                        for v in &f.versions {
                            let would = s.named_would_fetch(&v.path, &v.version, v.zip)?;
                            let seen = s
                                .version_by_path(&v.path, &v.version)?
                                .and_then(|(_, _, first_seen)| first_seen);
                            fetch.push((would, seen));
                        }
                    }
                    Ok((fetch, files))
                })
                .await?;
            let mut stats = NameStats::default();
            let mut fetched = 0;
            let mut wanted = fetch.into_iter();
            for f in &files {
                for v in &f.versions {
                    let (would, seen) = wanted.next().unwrap_or((false, None));
                    let entry = IndexEntry {
                        path: v.path.clone(),
                        version: v.version.clone(),
                        listed_at: None,
                    };
                    if !self.first_sight(&entry) {
                        continue;
                    }
                    stats.named += 1;
                    if would {
                        stats.queued += 1;
                        let suffix = if v.zip { "" } else { " (.info and .mod only)" };
                        if self.decide(&v.path, &v.version, seen, suffix) {
                            fetched += 1;
                        }
                    }
                }
            }
            self.report.attempted += fetched;
            self.report.from_files = Some(FilesSummary {
                files: count,
                versions: stats.named,
                queued: stats.queued,
                ..FilesSummary::default()
            });
            Ok(stats)
        })
    }
}

impl FeedIntake for Preview<'_> {
    fn follow_position(&mut self) -> LocalBoxFuture<'_, Result<Option<FollowCursor>, SourceError>> {
        Box::pin(async move { Ok(self.db.call(|s| s.follow_cursor()).await?) })
    }

    /// Prints what a sync would fetch and delete; records nothing.
    fn offer_changes(
        &mut self,
        changes: Vec<(FeedOp, IndexEntry)>,
        _cursor: FollowCursor,
    ) -> LocalBoxFuture<'_, Result<ChangeStats, SourceError>> {
        Box::pin(async move {
            let mut stats = ChangeStats::default();
            let (publishes, deletes): (Vec<_>, Vec<_>) = changes
                .into_iter()
                .partition(|(op, _)| *op == FeedOp::Publish);
            let publishes: Vec<IndexEntry> = publishes.into_iter().map(|(_, e)| e).collect();
            let page = self.offer(publishes, None).await?;
            stats.new = page.new;
            stats.new_wanted = page.new_wanted;
            for (_, e) in deletes {
                stats.withdrawn += 1;
                crate::report::outln(format_args!(
                    "withdraw {}@{} (deleted by the upstream mirror)",
                    e.path, e.version
                ));
            }
            Ok(stats)
        })
    }

    fn snapshot_begin(&mut self) -> LocalBoxFuture<'_, Result<(), SourceError>> {
        Box::pin(async move { Ok(()) })
    }

    fn snapshot_page(
        &mut self,
        changes: Vec<(FeedOp, IndexEntry)>,
    ) -> LocalBoxFuture<'_, Result<(), SourceError>> {
        Box::pin(async move {
            let publishes = changes
                .into_iter()
                .filter(|(op, _)| *op == FeedOp::Publish)
                .map(|(_, e)| e)
                .collect();
            self.offer(publishes, None).await?;
            Ok(())
        })
    }

    fn snapshot_finish(
        &mut self,
        _cursor: FollowCursor,
    ) -> LocalBoxFuture<'_, Result<ChangeStats, SourceError>> {
        Box::pin(async move {
            crate::report::outln(format_args!(
                "(a sync would also withdraw every version the upstream snapshot does not name)"
            ));
            Ok(ChangeStats::default())
        })
    }

    fn upstream_chain(
        &mut self,
        _chain: Vec<String>,
    ) -> LocalBoxFuture<'_, Result<(), SourceError>> {
        Box::pin(async move { Ok(()) })
    }
}

impl DemandIntake for Recorder<'_> {
    fn demand_positions(
        &mut self,
        logs: Vec<String>,
    ) -> LocalBoxFuture<'_, Result<Vec<Option<LogPosition>>, SourceError>> {
        Box::pin(async move { Ok(self.db.call(move |s| s.demand_positions(&logs)).await?) })
    }

    fn demand_record(
        &mut self,
        batch: DemandBatch,
        read: DemandRead,
    ) -> LocalBoxFuture<'_, Result<DemandRecorded, SourceError>> {
        Box::pin(async move {
            let now = crate::clock::now();
            let recorded = self.db.call(move |s| s.record_demand(&batch, now)).await?;
            let d = self
                .report
                .demand
                .get_or_insert_with(DemandSummary::default);
            d.lines += read.lines;
            d.misses += read.misses;
            d.new_requests += recorded.new;
            d.skipped += read.not_understood + read.too_long + read.invalid;
            d.refused += read.refused;
            d.dropped += recorded.dropped + read.dropped;
            Ok(recorded)
        })
    }

    fn demand_take(
        &mut self,
        max_new_modules: u64,
        max_new_versions: u64,
    ) -> LocalBoxFuture<'_, Result<DemandTake, SourceError>> {
        Box::pin(async move {
            let now = crate::clock::now();
            let take = self
                .db
                .call(move |s| s.take_demand(now, max_new_modules, max_new_versions))
                .await?;
            let d = self
                .report
                .demand
                .get_or_insert_with(DemandSummary::default);
            d.taken += take.taken + take.retried;
            d.new_modules += take.new_modules;
            d.waiting += take.waiting;
            Ok(take)
        })
    }

    fn demand_listed(
        &mut self,
        module: String,
        versions: Option<Vec<String>>,
    ) -> LocalBoxFuture<'_, Result<(), SourceError>> {
        Box::pin(async move {
            let now = crate::clock::now();
            Ok(self
                .db
                .call(move |s| s.demand_listed(&module, versions.as_deref(), now))
                .await?)
        })
    }

    fn demand_name(
        &mut self,
        keep: Option<std::time::Duration>,
    ) -> LocalBoxFuture<'_, Result<DemandNamed, SourceError>> {
        Box::pin(async move {
            let now = crate::clock::now();
            let keep_since =
                keep.map(|k| now.saturating_sub(i64::try_from(k.as_secs()).unwrap_or(i64::MAX)));
            let filter = self.filter.clone();
            let named = self
                .db
                .call(move |s| s.name_demanded(now, keep_since, &|p| filter.wants(p)))
                .await?;
            let d = self
                .report
                .demand
                .get_or_insert_with(DemandSummary::default);
            d.queued += named.stats.queued + named.stats.upgraded;
            d.unavailable += named.unavailable;
            Ok(named)
        })
    }
}

/// A dry run records nothing: what the logs asked for since the last sync
/// is printed (`demand module@version (N misses)`); no module is listed and
/// nothing is named (the real sync decides under its limits).
impl DemandIntake for Preview<'_> {
    fn demand_positions(
        &mut self,
        logs: Vec<String>,
    ) -> LocalBoxFuture<'_, Result<Vec<Option<LogPosition>>, SourceError>> {
        Box::pin(async move { Ok(self.db.call(move |s| s.demand_positions(&logs)).await?) })
    }

    fn demand_record(
        &mut self,
        batch: DemandBatch,
        read: DemandRead,
    ) -> LocalBoxFuture<'_, Result<DemandRecorded, SourceError>> {
        Box::pin(async move {
            let mut missed: Vec<_> = batch.tallies.iter().filter(|t| t.misses > 0).collect();
            missed.sort_by(|a, b| (&a.module, &a.version).cmp(&(&b.module, &b.version)));
            for t in &missed {
                crate::report::outln(format_args!(
                    "demand {}@{} ({} misses)",
                    t.module,
                    t.version.as_deref().unwrap_or("latest"),
                    t.misses
                ));
            }
            self.report.demand = Some(DemandSummary {
                lines: read.lines,
                misses: read.misses,
                new_requests: missed.len() as u64,
                skipped: read.not_understood + read.too_long + read.invalid,
                refused: read.refused,
                dropped: read.dropped,
                ..DemandSummary::default()
            });
            Ok(DemandRecorded::default())
        })
    }

    fn demand_take(
        &mut self,
        _max_new_modules: u64,
        _max_new_versions: u64,
    ) -> LocalBoxFuture<'_, Result<DemandTake, SourceError>> {
        Box::pin(async move { Ok(DemandTake::default()) })
    }

    fn demand_listed(
        &mut self,
        _module: String,
        _versions: Option<Vec<String>>,
    ) -> LocalBoxFuture<'_, Result<(), SourceError>> {
        Box::pin(async move { Ok(()) })
    }

    fn demand_name(
        &mut self,
        _keep: Option<std::time::Duration>,
    ) -> LocalBoxFuture<'_, Result<DemandNamed, SourceError>> {
        Box::pin(async move { Ok(DemandNamed::default()) })
    }
}
