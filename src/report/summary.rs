//! What a command did, as a person reads it at the end of a run (and cron
//! mails it) and as the run log stores it: the sync and prune summaries, and
//! the exit code each one means.

use std::time::Duration;

use serde::Serialize;

use crate::report;

/// A version that failed this run.
#[derive(Clone, Debug, Serialize)]
pub struct VersionFailure {
    pub module: String,
    pub version: String,
    pub error: String,
    /// A checksum mismatch: the upstream served content the checksum database does not vouch for.
    pub security: bool,
}

/// What `[filter].from_files` named in a sync.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FilesSummary {
    pub files: u64,
    /// Distinct versions named.
    pub versions: u64,
    /// Versions queued for fetching.
    pub queued: u64,
    /// Graph-only versions queued again for their zip.
    pub upgraded: u64,
    /// Versions no longer named whose fetch was called off.
    pub dropped: u64,
}

/// What the supply-chain policy (`[policy]`, `prune.keep`) did in a sync,
/// or would do (a dry run).
#[derive(Clone, Debug, Default, Serialize)]
pub struct PolicySummary {
    /// `policy.min_age` as written for people ("3days"); `None`: no cooldown.
    pub min_age: Option<String>,
    /// Versions this run held for their cooldown, and denied by `policy.deny`.
    pub held: u64,
    pub denied: u64,
    /// The first of them: `m@v held until T`, `m@v denied by policy.deny "RULE"`.
    pub samples: Vec<String>,
    /// Versions in the tree a changed `policy.deny` now covers (prune removes them).
    pub denied_in_tree: u64,
    /// After the run: versions held in the state database, and when the
    /// first of them is old enough.
    pub holding: u64,
    #[serde(serialize_with = "crate::clock::serialize_rfc3339_opt")]
    pub next_ready: Option<i64>,
    /// Versions in the tree no longer wanted, kept for `prune.keep`.
    pub retained: u64,
    /// Project files that pin a held or denied version:
    /// `file:line: m@v held until T` (the project does not build offline).
    pub pins: Vec<String>,
}

/// How many held and denied versions a summary names.
const POLICY_SAMPLE: usize = 20;

impl PolicySummary {
    /// Notes a version held (`ready_at`) or denied (`rule`) by this run.
    pub fn note(&mut self, module: &str, version: &str, ready_at: Option<i64>, rule: Option<&str>) {
        let line = match (ready_at, rule) {
            (_, Some(rule)) => {
                self.denied += 1;
                format!("{module}@{version} denied by policy.deny {rule:?}")
            }
            (Some(t), None) => {
                self.held += 1;
                format!("{module}@{version} held until {}", crate::clock::rfc3339(t))
            }
            (None, None) => return,
        };
        if self.samples.len() < POLICY_SAMPLE {
            self.samples.push(line);
        }
    }

    /// Adds what an earlier pass (beside the walk) did.
    pub fn add(&mut self, other: PolicySummary) {
        self.held += other.held;
        self.denied += other.denied;
        for s in other.samples {
            if self.samples.len() < POLICY_SAMPLE {
                self.samples.push(s);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.held + self.denied + self.denied_in_tree + self.holding + self.retained == 0
            && self.pins.is_empty()
    }

    /// The summary's lines about the policy (none when it did nothing).
    pub fn render(&self, dry_run: bool) -> Vec<String> {
        if self.is_empty() {
            return Vec::new();
        }
        let (held, denied) = if dry_run {
            ("would hold", "would deny")
        } else {
            ("held", "denied")
        };
        let mut line = format!(
            "policy: {} {held} this run (policy.min_age {}), {} {denied} (policy.deny)",
            self.held,
            self.min_age.as_deref().unwrap_or("off"),
            self.denied
        );
        if self.holding > 0 {
            line.push_str(&format!(
                "; {} held in all, the first ready at {}",
                self.holding,
                self.next_ready
                    .map_or_else(|| "?".into(), crate::clock::rfc3339)
            ));
        }
        if self.denied_in_tree > 0 {
            line.push_str(&format!(
                "; {} in the tree newly denied (pruned under prune.max_delete)",
                self.denied_in_tree
            ));
        }
        if self.retained > 0 {
            line.push_str(&format!(
                "; {} no longer wanted, kept for prune.keep",
                self.retained
            ));
        }
        let mut lines = vec![line];
        lines.extend(self.samples.iter().map(|s| format!("  {s}")));
        let more = (self.held + self.denied).saturating_sub(self.samples.len() as u64);
        if more > 0 {
            lines.push(format!("  and {more} more (gomirror status lists them)"));
        }
        lines.extend(self.pins.iter().map(|p| format!("  project: {p}")));
        lines
    }
}

/// What `[demand] access_logs` did in a sync.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DemandSummary {
    /// Log lines read, and of them misses of module requests.
    pub lines: u64,
    pub misses: u64,
    /// Requests seen for the first time.
    pub new_requests: u64,
    /// Lines skipped: in neither format, too long, not a valid module path.
    pub skipped: u64,
    /// Misses of requests the filter or `demand.include` does not allow.
    pub refused: u64,
    /// New requests dropped (too many waiting, or too many in one run).
    pub dropped: u64,
    /// Requests taken on this run, and of them modules new to the mirror.
    pub taken: u64,
    pub new_modules: u64,
    /// Requests left for later runs by `max_new_modules`/`max_new_versions`.
    pub waiting: u64,
    /// Versions queued for fetching through demand.
    pub queued: u64,
    /// Requests the upstream turned out not to have (asked again later).
    pub unavailable: u64,
}

/// What a sync did; printed as the summary and stored in the run log.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SyncReport {
    /// `prune.missing_grace`, for the summary's words about 404s.
    #[serde(skip)]
    pub missing_grace: Duration,
    pub index_pages: u64,
    pub index_lines: u64,
    pub index_new: u64,
    pub index_new_wanted: u64,
    pub invalid_lines: u64,
    pub invalid_samples: Vec<String>,
    /// Places where the index could not be paged past one timestamp: entries
    /// there may have been skipped (exit 1).
    pub index_gaps: Vec<String>,
    /// Versions the upstream mirror's feed deleted that this mirror had or wanted.
    pub feed_withdrawn: u64,
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
    /// Upstreams that served bytes the checksum database refutes, even when
    /// the version was then published from another upstream (exit 1).
    pub security_events: Vec<String>,
    /// What each upstream of the proxy list did this run.
    pub upstreams: Vec<crate::http::list::EntryStats>,
    /// Failed earlier, waiting for their retry time.
    pub deferred: u64,
    pub bytes: u64,
    /// Where the tree is and what it holds after the run.
    pub tree: Option<TreeSummary>,
    pub seconds: f64,
    pub tree_size: Option<i64>,
    /// Published versions asked about upstream again, and how many are gone.
    pub rechecked: u64,
    pub removed_upstream: u64,
    /// Rechecks that got no answer (not counted as checked; asked again next run).
    pub recheck_errors: u64,
    pub recheck_samples: Vec<String>,
    pub pruned: Option<PruneSummary>,
    /// Set when `filter.from_files` was read.
    pub from_files: Option<FilesSummary>,
    /// Set when `[demand] access_logs` were read.
    pub demand: Option<DemandSummary>,
    /// What the tile fill did (`sumdb.tiles = "all"`).
    pub tiles: Option<TileSummary>,
    /// The vulnerability database could not be read this run (what is held
    /// stays; the next run tries again).
    pub vulndb_error: Option<String>,
    /// What the supply-chain policy held back (`[policy]`, `prune.keep`).
    pub policy: PolicySummary,
    pub fatal: Option<String>,
    /// The signal (SIGINT, SIGTERM) that stopped the run.
    #[serde(serialize_with = "signal_name")]
    pub interrupted: Option<i32>,
    pub dry_run: bool,
}

pub(crate) fn signal_name<S: serde::Serializer>(
    sig: &Option<i32>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match sig {
        Some(n) => s.serialize_some(&crate::interrupt::name(*n)),
        None => s.serialize_none(),
    }
}

impl SyncReport {
    /// The exit code the design promises: 0 all good, 1 some versions failed
    /// (or are waiting to be retried), 2 fatal.
    pub fn exit_code(&self) -> i32 {
        if self.fatal.is_some() || self.pruned.as_ref().is_some_and(|p| p.refused) {
            2
        } else if let Some(signal) = self.interrupted {
            crate::interrupt::exit_code(signal)
        } else if self.failed > 0
            || self.deferred > 0
            || !self.index_gaps.is_empty()
            || !self.security_events.is_empty()
            || self.tiles.as_ref().is_some_and(|t| t.error.is_some())
            || self.vulndb_error.is_some()
        {
            1
        } else {
            0
        }
    }

    /// The first word of the summary, saying what the exit code says.
    fn headline(&self) -> String {
        let refused = self.pruned.as_ref().is_some_and(|p| p.refused);
        match (&self.fatal, self.interrupted) {
            (Some(_), _) => "STOPPED:".to_string(),
            (None, _) if refused => "PRUNE REFUSED:".to_string(),
            (None, Some(sig)) => format!("INTERRUPTED by {}:", crate::interrupt::name(sig)),
            (None, None) if self.exit_code() == 1 => "done, with problems:".to_string(),
            (None, None) => "done:".to_string(),
        }
    }

    /// What goes to stderr after the summary: the error that stopped the
    /// run, as `error:` and indented `Caused by:` lines.
    pub fn render_errors(&self) -> Vec<String> {
        error_lines(
            self.fatal.as_deref(),
            self.interrupted,
            "versions not fetched yet are fetched by the next run",
        )
    }

    /// The closing summary a person reads (stdout); errors are in
    /// [`SyncReport::render_errors`] (stderr).
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
            "gomirror sync: {} {verb} {} new version{} in {} ({} received); {} failed; {} not on the upstream{}",
            self.headline(),
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
            report::duration(Duration::from_secs_f64(self.seconds)),
            report::bytes(self.bytes),
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
        let invalid = if self.invalid_lines > 0 {
            format!("; {} invalid lines skipped", self.invalid_lines)
        } else {
            String::new()
        };
        // No page read means no index feed (`upstream.index = "off"`): the
        // new entries came from seeds and toolchains. A run stopped before
        // discovery found anything says nothing about it.
        let _ = if self.fatal.is_some() && self.index_pages == 0 && self.index_new == 0 {
            Ok(())
        } else if self.index_pages == 0 {
            writeln!(
                s,
                "discover: {} new entries ({} wanted) from seeds and toolchains; no index feed{invalid}",
                self.index_new, self.index_new_wanted,
            )
        } else {
            writeln!(
                s,
                "index: {} new entries ({} wanted) in {} page{}{invalid}",
                self.index_new,
                self.index_new_wanted,
                self.index_pages,
                if self.index_pages == 1 { "" } else { "s" },
            )
        };
        if let Some(f) = &self.from_files {
            let _ = writeln!(
                s,
                "files: {} file{} name {} version{}; {} to fetch, {} graph-only now wanted whole, {} no longer named",
                f.files,
                if f.files == 1 { "" } else { "s" },
                f.versions,
                if f.versions == 1 { "" } else { "s" },
                f.queued,
                f.upgraded,
                f.dropped
            );
        }
        if let Some(d) = &self.demand {
            let _ = writeln!(
                s,
                "demand: {} log lines, {} misses ({} new requests{}); {} taken ({} new modules), {} waiting for a later run; {} versions to fetch{}",
                d.lines,
                d.misses,
                d.new_requests,
                if d.refused + d.dropped + d.skipped > 0 {
                    format!(
                        "; {} misses not allowed, {} requests dropped, {} lines skipped",
                        d.refused, d.dropped, d.skipped
                    )
                } else {
                    String::new()
                },
                d.taken,
                d.new_modules,
                d.waiting,
                d.queued,
                if d.unavailable > 0 {
                    format!(
                        "; {} not on the upstream (asked again later)",
                        d.unavailable
                    )
                } else {
                    String::new()
                }
            );
        }
        if self.feed_withdrawn > 0 {
            let _ = writeln!(
                s,
                "feed: {} versions deleted by the upstream mirror (pruned under prune.max_delete)",
                self.feed_withdrawn
            );
        }
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
                report::duration(self.missing_grace)
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
        for line in self.policy.render(self.dry_run) {
            let _ = writeln!(s, "{line}");
        }
        if let Some(p) = &self.pruned {
            if p.refused {
                let _ = writeln!(
                    s,
                    "prune: refused, nothing deleted (the error above says why)"
                );
            } else {
                let _ = writeln!(s, "{}", p.render_line());
            }
        }
        if self.vulndb_error.is_some() {
            let _ = writeln!(
                s,
                "vulndb: not refreshed (the error above says why); the copy held stays"
            );
        }
        if let Some(n) = self.tree_size {
            let tiles = self
                .tiles
                .as_ref()
                .map(TileSummary::render_suffix)
                .unwrap_or_default();
            let _ = writeln!(s, "checksum database: tree of {n} records accepted{tiles}");
        }
        if let Some(t) = &self.tiles {
            if let Some(stopped) = &t.stopped {
                let _ = writeln!(s, "tiles: {stopped}; the fill goes on once it does");
            }
            if let Some(e) = &t.error {
                let _ = writeln!(
                    s,
                    "tiles: error: {e}; versions were not held back, the next run fills the rest"
                );
            }
        }
        if let Some(t) = &self.tree {
            let rate = if self.seconds > 0.0 && self.bytes > 0 {
                format!(
                    "; received at {}/s",
                    report::bytes((self.bytes as f64 / self.seconds) as u64)
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "tree: {}: {} versions, {}{rate}",
                t.store,
                t.versions,
                report::bytes(t.bytes)
            );
        }
        // Each failure was printed on stderr as it happened (`error:` lines);
        // the summary only counts them, so cron mail shows each once.
        if self.failed > 0 {
            let security = self.failures.iter().filter(|f| f.security).count();
            let _ = writeln!(
                s,
                "failed: {} version{} (listed above; retried by later runs){}",
                self.failed,
                if self.failed == 1 { "" } else { "s" },
                if security > 0 {
                    format!("; {security} SECURITY: checksum mismatch")
                } else {
                    String::new()
                }
            );
        }
        if self.upstreams.len() > 1 {
            for u in &self.upstreams {
                let _ = writeln!(
                    s,
                    "upstream {}: {} files ({}), {} not found, {} failed{}",
                    u.url,
                    u.files,
                    report::bytes(u.bytes),
                    u.not_found,
                    u.failures,
                    if u.refused > 0 {
                        format!(", {} REFUSED (failed verification)", u.refused)
                    } else {
                        String::new()
                    }
                );
            }
        }
        if !self.security_events.is_empty() {
            let _ = writeln!(
                s,
                "SECURITY: {} time{} an upstream served bytes that failed verification (each named above); those versions came from the next upstream: exit 1",
                self.security_events.len(),
                if self.security_events.len() == 1 {
                    ""
                } else {
                    "s"
                }
            );
        }
        s
    }
}

/// A command's stopping error for stderr: `error:` and indented `Caused by:`
/// lines; for an interrupted run, which signal and what the next run does
/// (`carry_on`).
pub fn error_lines(fatal: Option<&str>, interrupted: Option<i32>, carry_on: &str) -> Vec<String> {
    let text = match (fatal, interrupted) {
        (Some(f), _) => f.to_string(),
        (None, Some(sig)) => format!(
            "interrupted by {}: stopped before the end; {carry_on}",
            crate::interrupt::name(sig)
        ),
        (None, None) => return Vec::new(),
    };
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                format!("error: {l}")
            } else {
                format!("  {l}")
            }
        })
        .collect()
}

/// The tree after a sync: the store (a directory or a bucket) and its size.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TreeSummary {
    pub store: String,
    pub versions: i64,
    pub bytes: u64,
}

/// What the tile fill did (`crate::tiles`, with `sumdb.tiles = "all"`).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct TileSummary {
    /// `sumdb.tiles = "needed"`: only an error is reported.
    pub needed: bool,
    /// The tree head the tiles are for.
    pub tree_size: i64,
    /// Tiles fetched from the checksum database, and their bytes.
    pub fetched: u64,
    pub bytes: u64,
    /// Tiles written into the tree (full ones, and partial ones at every width).
    pub written: u64,
    /// Full tiles of the head the tree holds, and those it still lacks
    /// (older ones, left for later runs by `sumdb.max_tiles_per_run`).
    pub full: u64,
    pub missing: u64,
    /// Older tiles the database does not serve (a bundle that does not
    /// carry them yet): the fill stopped there, without failing.
    pub stopped: Option<String>,
    /// A tile that could not be fetched: the fill stopped (exit 1); the next
    /// run carries on.
    pub error: Option<String>,
    pub seconds: f64,
}

impl TileSummary {
    /// What follows "checksum database: tree of N records accepted".
    pub fn render_suffix(&self) -> String {
        if self.needed {
            return String::new();
        }
        let fetched = if self.fetched > 0 {
            format!(
                " ({} fetched, {}, in {})",
                self.fetched,
                report::bytes(self.bytes),
                report::duration(Duration::from_secs_f64(self.seconds))
            )
        } else {
            String::new()
        };
        if self.missing == 0 {
            format!("; all {} full tiles held{fetched}", self.full)
        } else {
            format!(
                "; {} of {} full tiles held{fetched}, {} older ones left for later runs",
                self.full,
                self.full + self.missing,
                self.missing
            )
        }
    }
}

/// What a prune did (or would do).
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct PruneSummary {
    pub versions: u64,
    pub stray_files: u64,
    pub stray_dirs: u64,
    pub limit: u64,
    pub refused: bool,
    pub dry_run: bool,
    pub files_deleted: u64,
    /// When refused: the first deletions it would have made.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sample: Vec<String>,
    /// Of `versions`, those no longer wanted for longer than `prune.keep`
    /// (spread over runs under `prune.max_delete` rather than refused).
    pub aged: u64,
    /// Versions that aged out of `prune.keep` left for a later run by
    /// `prune.max_delete`.
    pub deferred: u64,
    /// Of `versions`, those `policy.deny` covers, and the first of them by name.
    pub denied: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub denied_sample: Vec<String>,
}

/// How many denied versions a summary names.
pub const DENIED_SAMPLE: usize = 20;

impl PruneSummary {
    /// Counts (and names, the first few) a deleted version `policy.deny` covers.
    pub fn note_denied(&mut self, module: &str, version: &str) {
        self.denied += 1;
        if self.denied_sample.len() < DENIED_SAMPLE {
            self.denied_sample.push(format!("{module}@{version}"));
        }
    }

    pub fn render_line(&self) -> String {
        let mut what = format!(
            "{} versions, {} stray files, {} stray directories",
            self.versions, self.stray_files, self.stray_dirs
        );
        if self.denied > 0 && !self.refused {
            what.push_str(&format!(
                " ({} denied by policy.deny: {}{})",
                self.denied,
                self.denied_sample.join(", "),
                if self.denied > self.denied_sample.len() as u64 {
                    ", …"
                } else {
                    ""
                }
            ));
        }
        if self.deferred > 0 {
            what.push_str(&format!(
                "; {} more no longer wanted for longer than prune.keep are left for later runs (prune.max_delete: {} per run)",
                self.deferred, self.limit
            ));
        }
        if self.refused {
            let total =
                (self.versions + self.stray_files + self.stray_dirs).saturating_sub(self.aged);
            let why = if total > self.limit {
                format!(
                    "{total} deletions, more than prune.max_delete allows ({}; it counts versions plus stray files and directories)",
                    self.limit
                )
            } else {
                "that would empty the mirror".to_string()
            };
            format!("prune: REFUSED to delete {what}: {why}; nothing was deleted")
        } else if self.dry_run {
            format!("prune (dry run): would delete {what}")
        } else {
            format!("prune: deleted {what} ({} files)", self.files_deleted)
        }
    }

    /// A refusal in a few lines: what and why, the first deletions, what
    /// to run. It repeats on every run until someone acts, so it stays short
    /// whatever the size of the deletion set.
    pub fn render_refusal(&self) -> Vec<String> {
        let total = self.versions + self.stray_files + self.stray_dirs;
        // Named in a refusal too: a takedown waits on the cap.
        let denied = if self.denied_sample.is_empty() {
            Vec::new()
        } else {
            vec![format!(
                "  denied by policy.deny, still served: {}",
                self.denied_sample.join(", ")
            )]
        };
        let mut lines = vec![self.render_line()];
        if !self.sample.is_empty() {
            let more = total.saturating_sub(self.sample.len() as u64);
            lines.push(format!(
                "  first: {}{}",
                self.sample.join(", "),
                if more > 0 {
                    format!(", and {more} more")
                } else {
                    String::new()
                }
            ));
        }
        lines.extend(denied);
        lines.push(
            "  every deletion: `gomirror prune --dry-run`; to go ahead: `gomirror prune --force`, or raise prune.max_delete".to_string(),
        );
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
