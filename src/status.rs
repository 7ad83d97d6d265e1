//! `gomirror status`: what the mirror holds, where the index cursor is, how
//! fresh the mirror is, how the last runs went and what is failing. Reads the
//! state database only (no lock: it is safe to run beside a sync), plus one
//! request to the index feed for its newest entry — the freshness a mirror
//! status page shows ("how long since the mirror last caught up"): skipped
//! with `upstream.index = "off"` or `--offline`, and bounded in time.

use serde::Serialize;

pub use crate::clock::{format_time, rfc3339};
use crate::report;
use crate::settings::Settings;
use crate::state::{
    Counts, DemandCounts, DeniedVersion, ExportRecord, Failure, FileCounts, HeldVersion,
    ImportRecord, PolicyCounts, PolicyPin, RunRecord, State, StateError, UpstreamRecord,
    VulnStatus,
};

#[derive(Serialize)]
struct Status {
    config: String,
    output: String,
    state: String,
    /// The index feed's URL, or "off" (versions come from seeds and toolchains only).
    index: String,
    cursor: Option<String>,
    counts: Counts,
    /// Per `from_files` file read by the last sync: versions named, mirrored.
    from_files: Vec<FileCounts>,
    checksum_database: Option<TreeStatus>,
    failures: Vec<Failure>,
    runs: Vec<RunRecord>,
    /// The proxy list as configured (credentials masked), and what each
    /// upstream served over all runs.
    proxy: String,
    upstreams: Vec<UpstreamRecord>,
    freshness: Freshness,
    /// Air-gapped transfer: the last bundle exported, the last imported.
    last_export: Option<ExportRecord>,
    last_import: Option<ImportRecord>,
    /// The vulnerability database held (`[vulndb]`).
    vulndb: VulndbStatus,
    /// The supply-chain policy (`[policy]`, `prune.keep`): what it holds back.
    policy: PolicyStatus,
    /// What the access logs asked for (`[demand]`): `null` when no log is
    /// configured and none was ever read.
    demand: Option<DemandCounts>,
    /// Work spread over runs: how far each pass has come.
    passes: Passes,
}

/// Work spread over runs: where each pass over the whole mirror
/// stands.
#[derive(Serialize, Default)]
struct Passes {
    /// The stray scan: a slice of the tree per sync.
    strays: Option<Pass>,
    /// `verify --slice`: a slice of the published versions per run.
    verify: Option<Pass>,
    /// Rechecks: the versions whose last check is older than the interval,
    /// oldest first, on every sync.
    rechecks: Option<Rechecks>,
}

#[derive(Serialize)]
struct Pass {
    /// When the current pass began (RFC 3339).
    started: Option<String>,
    /// Items done in it, and about how many there are (tree entries, or
    /// published versions).
    done: u64,
    total: u64,
    /// The period a whole pass is meant to take, in seconds.
    period_seconds: u64,
    /// When the last run took its share (RFC 3339).
    last_run: Option<String>,
    /// Items the last whole pass visited (0: none has ended yet).
    last_total: u64,
}

#[derive(Serialize)]
struct Rechecks {
    /// The oldest last check among published versions (RFC 3339): older
    /// than the interval means rechecks are behind.
    oldest_check: Option<String>,
    interval_seconds: u64,
    /// `prune.recheck_rate`, and how long asking about every version takes
    /// at that rate.
    rate: u64,
    seconds_at_rate: f64,
}

fn pass(c: &crate::state::Cycle, total: u64, period: std::time::Duration) -> Option<Pass> {
    (c.started.is_some() || c.last_run.is_some()).then(|| Pass {
        started: c.started.map(rfc3339),
        done: c.done,
        total,
        period_seconds: period.as_secs(),
        last_run: c.last_run.map(rfc3339),
        last_total: c.last_total,
    })
}

/// What the supply-chain policy holds back, and when.
#[derive(Serialize)]
struct PolicyStatus {
    /// `policy.min_age` ("3days"), or "off".
    min_age: String,
    allow: Vec<String>,
    deny: Vec<String>,
    /// `prune.keep` ("30days"), or "off".
    keep: String,
    #[serde(flatten)]
    counts: PolicyCounts,
    /// When the first version kept for `prune.keep` is removed (RFC 3339).
    retained_until: Option<String>,
    /// The first held versions, the soonest ready first.
    held_versions: Vec<HeldVersion>,
    /// The first denied versions, those still in the tree first.
    denied_versions: Vec<DeniedVersion>,
    /// Project files (`from_files`) pinning a held or denied version.
    pins: Vec<PolicyPin>,
}

/// How many held and denied versions `status` names.
const POLICY_LIST: usize = 50;

/// The vulnerability database: what is held and how fresh it is.
#[derive(Serialize)]
struct VulndbStatus {
    /// `[vulndb] url` as configured (credentials masked), or "off".
    configured: String,
    #[serde(flatten)]
    held: VulnStatus,
    /// now − the database's `modified`, in seconds.
    age_seconds: Option<i64>,
    /// now − when an upstream last confirmed it, in seconds.
    checked_seconds_ago: Option<i64>,
}

/// How far behind the upstream this mirror is, and what waits for a retry.
#[derive(Serialize, Default)]
struct Freshness {
    /// The index cursor, RFC 3339 (every entry up to it is recorded).
    cursor: Option<String>,
    /// The newest entry the index feed has after the cursor (RFC 3339), or
    /// the cursor itself when there is none: `None` if not asked.
    index_newest: Option<String>,
    /// `index_newest` − `cursor`, in seconds; 0 when caught up.
    behind_seconds: Option<f64>,
    /// More entries follow the page asked for: `behind_seconds` is a lower bound.
    behind_at_least: bool,
    /// Why the index was not asked, or what went wrong asking it.
    index_note: Option<String>,
    /// When each command last exited 0 (RFC 3339); `null`: never.
    last_success: std::collections::BTreeMap<String, Option<String>>,
    /// Versions waiting for a retry: failed, and not on the upstream yet.
    waiting_failed: i64,
    waiting_missing: i64,
    /// The earliest retry time among them (RFC 3339).
    next_retry: Option<String>,
}

#[derive(Serialize)]
struct TreeStatus {
    name: String,
    trusted_size: i64,
    trusted_hash: String,
}

/// Entries asked for when measuring how far behind the index the cursor is.
const FRESHNESS_PAGE: usize = 2000;
/// The freshness request never holds `status` up longer than this.
const FRESHNESS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

pub fn run(settings: &Settings, json: bool, offline: bool) -> Result<(), StateError> {
    let state = State::open_read_only(&settings.state)?;
    let trusted = state.trusted_head()?;
    let counts = state.counts()?;
    let status_counts = counts.clone();
    let cursor = state.cursor()?;
    let mut freshness = Freshness {
        cursor: cursor.as_deref().map(normal_time),
        waiting_failed: counts.failed,
        waiting_missing: counts.missing,
        next_retry: state.next_retry()?.map(rfc3339),
        ..Freshness::default()
    };
    for c in state.command_runs()? {
        freshness
            .last_success
            .insert(c.command, c.last_success.map(rfc3339));
    }
    match (&settings.index, &cursor) {
        (None, _) if settings.follow.is_some() => {
            freshness.index_note = Some(follow_note(settings, &state, offline)?);
        }
        (None, _) => freshness.index_note = Some("no index feed (upstream.index = \"off\")".into()),
        (Some(_), _) if offline => freshness.index_note = Some("not asked (--offline)".into()),
        (Some(_), None) => freshness.index_note = Some("no cursor yet".into()),
        (Some(index), Some(cursor)) => measure_lag(settings, index, cursor, &mut freshness),
    }
    let now = crate::clock::now();
    let held = state.vuln_status()?;
    let vulndb = VulndbStatus {
        configured: if settings.vulndb.urls.is_empty() {
            "off".into()
        } else {
            crate::http::list::describe_list(&settings.vulndb.urls)
        },
        age_seconds: held
            .modified
            .as_deref()
            .and_then(|m| m.parse::<jiff::Timestamp>().ok())
            .map(|t| (now - t.as_second()).max(0)),
        checked_seconds_ago: held.checked.map(|c| (now - c).max(0)),
        held,
    };
    let keep_cutoff = settings.prune.keep_cutoff(now);
    let counts_p = state.policy_counts(keep_cutoff)?;
    let policy = PolicyStatus {
        min_age: settings.policy.min_age_text(),
        allow: settings
            .policy
            .allow
            .iter()
            .map(|r| r.text.clone())
            .collect(),
        deny: settings
            .policy
            .deny
            .iter()
            .map(|r| r.text.clone())
            .collect(),
        keep: if settings.prune.keep.is_zero() {
            "off".into()
        } else {
            humantime::format_duration(settings.prune.keep).to_string()
        },
        retained_until: counts_p.retained_since.map(|t| {
            rfc3339(
                t.saturating_add(i64::try_from(settings.prune.keep.as_secs()).unwrap_or(i64::MAX)),
            )
        }),
        counts: counts_p,
        held_versions: state.held_versions(POLICY_LIST)?,
        denied_versions: state.denied_versions(POLICY_LIST)?,
        pins: state.policy_pins()?,
    };
    let status = Status {
        policy,
        vulndb,
        freshness,
        config: settings.config_path.display().to_string(),
        output: settings.output_display(),
        state: settings.state.display().to_string(),
        index: match (&settings.index, &settings.follow) {
            (Some(i), _) => crate::redact::redact_url(i),
            (None, Some(f)) => format!("mirror+{}", crate::redact::redact_url(f)),
            (None, None) => "off".into(),
        },
        cursor: match &settings.follow {
            Some(_) => state
                .follow_cursor()?
                .map(|c| format!("feed {} entry {}", c.id, c.next)),
            None => cursor,
        },
        counts,
        from_files: state.file_counts()?,
        checksum_database: trusted.map(|t| TreeStatus {
            name: settings.sumdb.name.clone(),
            trusted_size: t.size,
            trusted_hash: t.hash,
        }),
        failures: state.failures(50)?,
        runs: state.recent_runs(10)?,
        proxy: if settings.proxy.is_empty() {
            "off".into()
        } else {
            crate::http::list::describe_list(&settings.proxy)
        },
        upstreams: state.upstreams()?,
        last_export: state.last_export()?,
        passes: {
            let in_tree = counts_in_tree(&status_counts);
            let strays = state.cycle("strays")?;
            let strays_total = if strays.last_total > 0 {
                strays.last_total
            } else {
                in_tree * 5
            };
            Passes {
                strays: settings
                    .prune
                    .scan_tree
                    .then(|| pass(&strays, strays_total, settings.prune.scan_interval))
                    .flatten(),
                verify: pass(&state.cycle("verify")?, in_tree, settings.verify_cycle),
                rechecks: match settings.prune.recheck_interval {
                    Some(interval) if in_tree > 0 => Some(Rechecks {
                        oldest_check: state.oldest_check()?.map(rfc3339),
                        interval_seconds: interval.as_secs(),
                        rate: settings.prune.recheck_rate,
                        seconds_at_rate: in_tree as f64 / settings.prune.recheck_rate.max(1) as f64,
                    }),
                    _ => None,
                },
            }
        },
        last_import: match state.import_position()? {
            Some(p) => state.imported(&p.id)?,
            None => None,
        },
        demand: {
            let d = state.demand_counts()?;
            (!settings.demand.access_logs.is_empty() || !d.logs.is_empty()).then_some(d)
        },
    };
    if json {
        report::outln(serde_json::to_string_pretty(&status).expect("serializable"));
    } else {
        for line in render(&status, &settings.sumdb.name) {
            report::outln(line);
        }
    }
    Ok(())
}

fn counts_in_tree(c: &crate::state::Counts) -> u64 {
    c.in_tree.max(0) as u64
}

/// An RFC 3339 time as UTC with its fraction, as jiff prints it; the text
/// itself if it is not one.
fn normal_time(t: &str) -> String {
    t.parse::<jiff::Timestamp>()
        .map_or_else(|_| t.to_string(), |t| t.to_string())
}

/// Where a follower stands in the change feed it follows: how many entries
/// its upstream has that it has not read yet (one request, bounded in time
/// like the index's; never fatal).
fn follow_note(settings: &Settings, state: &State, offline: bool) -> Result<String, StateError> {
    let Some(base) = &settings.follow else {
        return Ok(String::new());
    };
    let feed = format!(
        "follows the change feed of {}",
        crate::redact::redact_url(base)
    );
    let Some(cursor) = state.follow_cursor()? else {
        return Ok(format!("{feed}; not read yet"));
    };
    if offline {
        return Ok(format!("{feed}; not asked (--offline)"));
    }
    let upstream = crate::services::Upstreams::new(settings).map(|u| u.http);
    let head = upstream.map_err(|e| e.to_string()).and_then(|upstream| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        let feed = crate::source::feed::MirrorFeed::new(upstream, base.clone());
        runtime
            .block_on(async { tokio::time::timeout(FRESHNESS_TIMEOUT, feed.head()).await })
            .map_err(|_| {
                format!(
                    "did not answer within {}",
                    report::duration(FRESHNESS_TIMEOUT)
                )
            })?
            .map_err(|e| e.to_string())
    });
    Ok(match head {
        Ok(h) if h.id != cursor.id => format!(
            "{feed}; it is another feed now ({}): the next sync compares in full",
            h.id
        ),
        Ok(h) => format!(
            "{feed}; {} entries behind",
            h.next.saturating_sub(cursor.next)
        ),
        Err(e) => format!("{feed}; cannot read it: {e}"),
    })
}

/// Asks the index for the page after the cursor and compares its newest
/// entry with the cursor. Failures are noted, never fatal: `status` works
/// with the upstream out of reach.
fn measure_lag(settings: &Settings, index: &reqwest::Url, cursor: &str, f: &mut Freshness) {
    let note = |f: &mut Freshness, why: String| f.index_note = Some(why);
    let Ok(cursor_t) = cursor.parse::<jiff::Timestamp>() else {
        return note(f, format!("the cursor {cursor:?} is not a time"));
    };
    let upstream = match crate::services::Upstreams::new(settings) {
        Ok(u) => u.http,
        Err(e) => return note(f, e.to_string()),
    };
    let mut url = index.clone();
    url.query_pairs_mut()
        .append_pair("since", cursor)
        .append_pair("limit", &FRESHNESS_PAGE.to_string());
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return note(f, format!("cannot start the async runtime: {e}")),
    };
    let body = runtime.block_on(async {
        tokio::time::timeout(
            FRESHNESS_TIMEOUT,
            upstream.get_bytes(&url, crate::source::index::PAGE_BYTES),
        )
        .await
    });
    let body = match body {
        Err(_) => {
            return note(
                f,
                format!(
                    "the index did not answer within {}",
                    report::duration(FRESHNESS_TIMEOUT)
                ),
            );
        }
        Ok(Err(e)) => return note(f, format!("cannot read the index: {e}")),
        Ok(Ok(b)) => b,
    };
    let text = String::from_utf8_lossy(&body);
    let (mut lines, mut newest) = (0usize, None::<jiff::Timestamp>);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        lines += 1;
        let stamp = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| {
                v.get("Timestamp")?
                    .as_str()?
                    .parse::<jiff::Timestamp>()
                    .ok()
            });
        if let Some(t) = stamp
            && newest.is_none_or(|n| t > n)
        {
            newest = Some(t);
        }
    }
    let newest = newest.map_or(cursor_t, |n| n.max(cursor_t));
    f.index_newest = Some(newest.to_string());
    f.behind_seconds = Some(newest.duration_since(cursor_t).as_secs_f64().max(0.0));
    f.behind_at_least = lines >= FRESHNESS_PAGE;
}

/// The text `gomirror status` prints, one line per entry.
fn render(status: &Status, sumdb_name: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let c = &status.counts;
    lines.push(format!("mirror     {}", status.output));
    lines.push(format!("state      {}", status.state));
    lines.push(format!(
        "index      {} ({} versions known, {} modules, {} wanted)",
        match (status.index.as_str(), status.cursor.as_deref()) {
            ("off", _) =>
                "off: versions come from [filter].seed, toolchains and from_files only".into(),
            (_, cursor) => format!("cursor {}", cursor.unwrap_or("(not started)")),
        },
        c.index_versions,
        c.modules,
        c.wanted_modules
    ));
    lines.push(format!(
        "versions   {} published ({}), {} pending, {} failed, {} not on the upstream",
        c.published,
        report::bytes(c.published_bytes as u64),
        c.pending,
        c.failed,
        c.gone
    ));
    if c.graph_only > 0 {
        lines.push(format!(
            "           {} graph-only (.info and .mod, no zip; not in @v/list)",
            c.graph_only
        ));
    }
    if !status.from_files.is_empty() {
        lines.push("from_files (as of the last sync):".into());
        for f in &status.from_files {
            lines.push(format!(
                "  {} ({}): {} version{} named, {} mirrored{}",
                f.file,
                f.kind,
                f.versions,
                if f.versions == 1 { "" } else { "s" },
                f.mirrored,
                if f.graph_only > 0 {
                    format!(" ({} of them graph-only)", f.graph_only)
                } else {
                    String::new()
                }
            ));
        }
    }
    if let Some(d) = &status.demand {
        lines.push(format!(
            "demand: {} misses in {} log lines read; {} requests: {} waiting, {} wanted ({} served, {} hits since), {} not on the upstream{}",
            d.misses_seen,
            d.lines_read,
            d.requests,
            d.waiting,
            d.wanted,
            d.served,
            d.hits,
            d.unavailable,
            d.next_retry
                .map(|t| format!(" (next asked again {})", rfc3339(t)))
                .unwrap_or_default()
        ));
        for l in &d.logs {
            lines.push(format!(
                "  {}: read to byte {} at {}",
                crate::shown::text(&l.path),
                l.offset,
                rfc3339(l.read_at)
            ));
        }
    }
    let f = &status.freshness;
    let behind = match (f.behind_seconds, &f.index_note) {
        (Some(s), _) if s <= 0.0 => "caught up with the index".to_string(),
        (Some(s), _) => format!(
            "{}{} behind the index's newest entry ({})",
            if f.behind_at_least { "at least " } else { "" },
            report::duration(std::time::Duration::from_secs_f64(s)),
            f.index_newest.as_deref().unwrap_or("?")
        ),
        (None, Some(note)) => format!("lag unknown: {note}"),
        (None, None) => "lag unknown".to_string(),
    };
    lines.push(format!(
        "freshness  {}; last successful sync {}",
        behind,
        match f.last_success.get("sync") {
            Some(Some(t)) => t.clone(),
            Some(None) => "never".into(),
            None => "never (no sync has finished)".into(),
        }
    ));
    if f.waiting_failed + f.waiting_missing > 0 {
        lines.push(format!(
            "waiting    {} failed and {} not on the upstream yet wait for a retry{}",
            f.waiting_failed,
            f.waiting_missing,
            f.next_retry
                .as_deref()
                .map(|t| format!(" (next at {t})"))
                .unwrap_or_default()
        ));
    }
    let v = &status.vulndb;
    // A database's age is days, not hours, once it is past two.
    let ago = |s: i64| match s.max(0) {
        s if s >= 2 * 86400 => format!("{}d {}h", s / 86400, (s % 86400) / 3600),
        s => report::duration(std::time::Duration::from_secs(s as u64)),
    };
    // Nothing configured and nothing held: no line (as for the other optional parts).
    let vulndb_line = match &v.held.modified {
        Some(m) => format!(
            "vulndb     modified {m} ({} entries, {} old); last checked {} ago against {}",
            v.held.entries,
            v.age_seconds.map_or_else(|| "?".into(), ago),
            v.checked_seconds_ago.map_or_else(|| "?".into(), ago),
            v.held.url.as_deref().unwrap_or("?")
        ),
        None if v.configured == "off" => String::new(),
        None => format!("vulndb     none yet (from {})", v.configured),
    };
    if !vulndb_line.is_empty() {
        lines.push(vulndb_line);
    }
    lines.extend(render_policy(&status.policy));
    lines.push(match &status.checksum_database {
        Some(t) => format!(
            "sumdb      {} tree of {} records ({})",
            t.name, t.trusted_size, t.trusted_hash
        ),
        None => format!("sumdb      {sumdb_name} (no tree head accepted yet)"),
    });
    if let Some(e) = &status.last_export {
        lines.push(format!(
            "exported   bundle {} ({}) at {}: {} versions, {} deletions, {} -> {}",
            e.seq,
            if e.full { "full" } else { "delta" },
            format_time(e.created),
            e.versions,
            e.deletions,
            report::bytes(e.bytes),
            e.path
        ));
    }
    if let Some(i) = &status.last_import {
        lines.push(format!(
            "imported   bundle {} ({}) from {} at {}: {} versions published, {} withdrawn, {} refused",
            i.seq,
            if i.full { "full" } else { "delta" },
            i.mirror_name,
            format_time(i.imported),
            i.versions,
            i.deletions,
            i.refused
        ));
    }
    let p = &status.passes;
    let mut passes = Vec::new();
    for (what, pass) in [("stray scan", &p.strays), ("verify --slice", &p.verify)] {
        let Some(pass) = pass else { continue };
        let share = if pass.total > 0 {
            (pass.done as f64 * 100.0 / pass.total as f64).min(100.0)
        } else {
            0.0
        };
        let every = report::duration(std::time::Duration::from_secs(pass.period_seconds));
        let started = pass.started.as_deref().unwrap_or("-");
        passes.push(if pass.done == 0 && pass.last_total > 0 {
            // A pass has just ended: a new one began then.
            format!("{what}: a whole pass ended {started} (one every {every})")
        } else {
            format!("{what} {share:.0}% since {started} (a whole pass every {every})")
        });
    }
    if let Some(r) = &p.rechecks {
        let every = std::time::Duration::from_secs(r.interval_seconds);
        let mut text = format!(
            "rechecks every {}, oldest check {}",
            report::duration(every),
            r.oldest_check.as_deref().unwrap_or("-")
        );
        if r.seconds_at_rate > r.interval_seconds as f64 {
            text.push_str(&format!(
                " (behind: at prune.recheck_rate = {}/s, asking about every version takes {})",
                r.rate,
                report::duration(std::time::Duration::from_secs_f64(r.seconds_at_rate))
            ));
        }
        passes.push(text);
    }
    if !passes.is_empty() {
        lines.push(format!("passes     {}", passes.join("; ")));
    }
    lines.push(format!("proxy      {}", status.proxy));
    for u in &status.upstreams {
        let mut line = format!(
            "  {}: {} files ({}), {} not found, {} failed",
            u.url,
            u.files,
            report::bytes(u.bytes.max(0) as u64),
            u.not_found,
            u.failures
        );
        if u.refused > 0 {
            line.push_str(&format!(", {} REFUSED (failed verification)", u.refused));
        }
        if let Some(t) = u.last_used {
            line.push_str(&format!("; last used {}", format_time(t)));
        }
        if let (Some(e), Some(t)) = (&u.last_error, u.last_error_at) {
            line.push_str(&format!(
                "; last error {}: {}",
                format_time(t),
                e.lines().next().unwrap_or("")
            ));
        }
        lines.push(line);
    }
    if !status.runs.is_empty() {
        lines.push("recent runs:".into());
        for r in &status.runs {
            let took = r
                .finished
                .map(|f| format!("{}s", f - r.started))
                .unwrap_or_else(|| "unfinished".into());
            let exit = r
                .exit_code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into());
            let published = r
                .summary
                .as_ref()
                .and_then(|s| s.get("published"))
                .and_then(|v| v.as_u64())
                .map(|n| format!(", {n} published"))
                .unwrap_or_default();
            lines.push(format!(
                "  #{:<5} {:<7} started {} took {took}, exit {exit}{published}",
                r.id,
                r.command,
                format_time(r.started)
            ));
        }
    }
    if !status.failures.is_empty() {
        lines.push("failing versions:".into());
        for f in &status.failures {
            lines.push(format!(
                "  {}@{} ({} attempt{}, next {}): {}",
                f.path,
                f.version,
                f.attempts,
                if f.attempts == 1 { "" } else { "s" },
                f.next_attempt
                    .map(format_time)
                    .unwrap_or_else(|| "next run".into()),
                f.error.lines().next().unwrap_or("")
            ));
        }
    }
    lines
}

/// The policy's lines: none when there is no policy and nothing is held back.
fn render_policy(p: &PolicyStatus) -> Vec<String> {
    let c = &p.counts;
    let configured = p.min_age != "off" || !p.deny.is_empty() || p.keep != "off";
    if !configured && c.held + c.denied + c.denied_in_tree + c.retained == 0 && p.pins.is_empty() {
        return Vec::new();
    }
    let mut line = format!(
        "policy     min_age {}, {} deny rule{}, keep {}: {} held",
        p.min_age,
        p.deny.len(),
        if p.deny.len() == 1 { "" } else { "s" },
        p.keep,
        c.held
    );
    if let Some(t) = c.next_ready {
        line.push_str(&format!(" (the first ready at {})", rfc3339(t)));
    }
    line.push_str(&format!(", {} denied", c.denied + c.denied_in_tree));
    if c.denied_in_tree > 0 {
        line.push_str(&format!(
            " ({} still in the tree: the next prune removes them)",
            c.denied_in_tree
        ));
    }
    if c.retained > 0 {
        line.push_str(&format!(
            ", {} no longer wanted kept for prune.keep{}",
            c.retained,
            p.retained_until
                .as_deref()
                .map(|t| format!(" (the first goes after {t})"))
                .unwrap_or_default()
        ));
    }
    let mut lines = vec![line];
    for h in &p.held_versions {
        lines.push(format!(
            "  held     {}@{} until {} (first seen {})",
            h.module,
            h.version,
            rfc3339(h.ready_at),
            h.first_seen.map_or_else(|| "?".into(), rfc3339)
        ));
    }
    if c.held > p.held_versions.len() as u64 {
        lines.push(format!(
            "  and {} more held",
            c.held - p.held_versions.len() as u64
        ));
    }
    for d in &p.denied_versions {
        lines.push(format!(
            "  denied   {}@{}{}",
            d.module,
            d.version,
            if d.in_tree {
                " (still in the tree: the next prune removes it)"
            } else {
                ""
            }
        ));
    }
    let denied = c.denied + c.denied_in_tree;
    if denied > p.denied_versions.len() as u64 {
        lines.push(format!(
            "  and {} more denied",
            denied - p.denied_versions.len() as u64
        ));
    }
    for pin in &p.pins {
        lines.push(format!("  project  {}", crate::plan::pin_line(pin)));
    }
    lines
}

#[cfg(test)]
mod tests {
    #[test]
    fn times() {
        assert_eq!(super::format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::format_time(1_795_017_600), "2026-11-18 16:00:00 UTC");
        assert_eq!(super::rfc3339(1_795_017_600), "2026-11-18T16:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn times_past_the_calendar_are_clamped() {
        assert!(
            super::format_time(i64::MAX).starts_with("9999-12-"),
            "{}",
            super::format_time(i64::MAX)
        );
        assert!(
            super::rfc3339(i64::MIN).starts_with("-009999-01-"),
            "{}",
            super::rfc3339(i64::MIN)
        );
    }
}
