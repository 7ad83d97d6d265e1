//! Plan: what a sync would do. The decisions are pure functions of what is
//! wanted and what the state database holds ([`plan_entry`],
//! [`plan_filter`], [`plan_due`]) and of the supply-chain policy
//! ([`crate::policy::Policy::decide`]: fetch, hold for the cooldown, or
//! deny); a sync's stages carry them out ([`screen`] records the policy's
//! verdicts on each page of due versions, before the fetch pass downloads
//! anything), and `sync --dry-run` prints them, reading the state database
//! page by page (the whole to-do list is never held in memory) and writing
//! nothing.
//!
//! A held version is not downloaded until it is old enough: its bytes are
//! fetched once, by the first sync after its cooldown, then checked and
//! published like any other. Nothing is kept across runs outside the tree
//! (staging is emptied by every run), and a version pulled upstream during
//! its cooldown is never downloaded at all.

use std::collections::HashSet;

use crate::fatal::Fatal;
use crate::model::Todo;
use crate::policy::{Policy, Verdict};
use crate::report::summary::{PolicySummary, SyncReport};
use crate::settings::{Filter, Settings};
use crate::state::VersionState;
use crate::state::db::Db;

/// What a sync does with a version a discovery source offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryAction {
    /// Already in the state database: nothing new.
    Known,
    /// New, recorded as seen (its module is not wanted).
    Record,
    /// New and wanted: recorded as pending and fetched.
    Fetch,
}

/// A discovered version against the state database and the filter.
pub fn plan_entry(known: bool, wanted: bool) -> EntryAction {
    match (known, wanted) {
        (true, _) => EntryAction::Known,
        (false, false) => EntryAction::Record,
        (false, true) => EntryAction::Fetch,
    }
}

/// What a filter change does to one module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterAction {
    Keep,
    /// Newly wanted: its known versions not in the tree are queued.
    Backfill,
    /// No longer wanted: its queued versions stop, prune deletes its files.
    Drop,
}

/// A module's stored wanted flag against the filter of this run.
pub fn plan_filter(was_wanted: bool, now_wanted: bool) -> FilterAction {
    match (was_wanted, now_wanted) {
        (false, true) => FilterAction::Backfill,
        (true, false) => FilterAction::Drop,
        _ => FilterAction::Keep,
    }
}

/// Whether a version due in the state database is fetched: not when this
/// run's filter stops wanting its module (applying the filter unqueues it).
pub fn plan_due(now_wanted: bool) -> bool {
    now_wanted
}

/// The line a dry run prints for a version it would fetch, hold or deny.
pub fn verdict_line(module: &str, version: &str, verdict: &Verdict, suffix: &str) -> String {
    match verdict {
        Verdict::Fetch => format!("fetch {module}@{version}{suffix}"),
        Verdict::Hold { ready_at } => format!(
            "hold {module}@{version} (policy.min_age: ready at {})",
            crate::clock::rfc3339(*ready_at)
        ),
        Verdict::Deny { rule } => format!("deny {module}@{version} (policy.deny {rule:?})"),
    }
}

/// Counts a verdict in a summary: `true` when the version is fetched.
pub fn count_verdict(
    policy: &mut PolicySummary,
    module: &str,
    version: &str,
    verdict: &Verdict,
) -> bool {
    match verdict {
        Verdict::Fetch => true,
        Verdict::Hold { ready_at } => {
            policy.note(module, version, Some(*ready_at), None);
            false
        }
        Verdict::Deny { rule } => {
            policy.note(module, version, None, Some(rule));
            false
        }
    }
}

/// The policy's verdicts on a page of due versions, recorded: held ones
/// wait in the state database for their cooldown, denied ones are never
/// fetched. Returns the versions to fetch. `cooldown`: whether `min_age`
/// applies (a sync's due versions; not repairs or imports, whose versions
/// were in the tree or come from a bundle that will not be there later),
/// and it never holds a version whose files are in the tree.
pub async fn screen(
    policy: &Policy,
    db: &Db,
    page: Vec<Todo>,
    cooldown: bool,
    summary: &mut PolicySummary,
) -> Result<Vec<Todo>, Fatal> {
    if policy.is_off() || page.is_empty() {
        return Ok(page);
    }
    let keys: Vec<(i64, String)> = page
        .iter()
        .map(|t| (t.module_id, t.version.clone()))
        .collect();
    let facts = db.call(move |s| s.version_facts(&keys)).await?;
    let now = crate::clock::now();
    let (mut fetch, mut held, mut denied) = (Vec::new(), Vec::new(), Vec::new());
    for (todo, f) in page.into_iter().zip(facts) {
        let verdict = policy.decide(
            &todo.path,
            &todo.version,
            f.first_seen,
            now,
            cooldown && !f.in_tree,
        );
        if count_verdict(summary, &todo.path, &todo.version, &verdict) {
            fetch.push(todo);
            continue;
        }
        match verdict {
            Verdict::Hold { ready_at } => held.push((todo.module_id, todo.version, ready_at)),
            _ => denied.push((todo.module_id, todo.version)),
        }
    }
    db.call(move |s| s.record_screened(&held, &denied, now))
        .await?;
    Ok(fetch)
}

/// Brings the state database in line with a changed policy (once per
/// change): see [`crate::state::State::apply_policy`]. Counts go in `report`.
pub async fn apply_policy(
    settings: &Settings,
    db: &Db,
    report: &mut PolicySummary,
) -> Result<(), Fatal> {
    let policy = settings.policy.clone();
    let fingerprint = policy.fingerprint();
    let has_deny = !policy.deny.is_empty();
    let now = crate::clock::now();
    let change = db
        .call(move |s| {
            s.apply_policy(
                &fingerprint,
                &|m, v| policy.denied_by(m, v).is_some(),
                has_deny,
                now,
            )
        })
        .await?;
    if let Some(c) = change {
        report.denied_in_tree += c.denied_in_tree;
    }
    Ok(())
}

/// What the policy holds back after a run, and the project pins it
/// affects, into the summary (`prune.keep`'s retention counted too).
pub async fn policy_outcome(
    settings: &Settings,
    db: &Db,
    report: &mut PolicySummary,
) -> Result<(), Fatal> {
    let cutoff = settings.prune.keep_cutoff(crate::clock::now());
    let (counts, pins) = db
        .call(move |s| Ok((s.policy_counts(cutoff)?, s.policy_pins()?)))
        .await?;
    report.min_age = settings
        .policy
        .min_age
        .map(|_| settings.policy.min_age_text());
    report.holding = counts.held;
    report.next_ready = counts.next_ready;
    report.retained = counts.retained;
    report.pins = pins.iter().map(pin_line).collect();
    Ok(())
}

/// `file:line: m@v held until T: the project does not build from this
/// mirror until then` (or denied).
pub fn pin_line(p: &crate::state::PolicyPin) -> String {
    let at = if p.line > 0 {
        format!("{}:{}", p.file, p.line)
    } else {
        format!("{} (requirement graph)", p.file)
    };
    match p.ready_at {
        Some(t) => format!(
            "{at}: {}@{} is held until {} (policy.min_age): the project does not build from this mirror until then",
            p.module,
            p.version,
            crate::clock::rfc3339(t)
        ),
        None => format!(
            "{at}: {}@{} is denied (policy.deny): the project does not build from this mirror",
            p.module, p.version
        ),
    }
}

/// How many versions a dry run remembers having printed for a changed
/// policy, so that the due versions it prints next are not printed twice.
const POLICY_MEMORY: usize = 1_000_000;

/// What a dry run printed for a changed policy.
#[derive(Debug, Default)]
pub struct PolicyPreview {
    /// The held or denied versions printed (module id, version): the due
    /// versions printed next leave them out.
    pub printed: HashSet<(i64, String)>,
    /// Versions in the tree it would take down, and the first of them (`m@v`).
    pub takedowns: u64,
    pub takedown_sample: Vec<String>,
}

/// Prints what applying a changed policy would do, without applying it: a
/// version in the tree newly denied is deleted (when sync prunes); a held
/// or denied version the new policy lets through is fetched (or held, or
/// denied).
pub async fn print_policy_change(
    settings: &Settings,
    db: &Db,
    prunes: bool,
    report: &mut SyncReport,
) -> Result<PolicyPreview, Fatal> {
    let mut preview = PolicyPreview::default();
    let printed = &mut preview.printed;
    let policy = &settings.policy;
    let fingerprint = policy.fingerprint();
    if db.call(|s| s.policy_fingerprint()).await?.as_deref() == Some(fingerprint.as_str()) {
        return Ok(preview);
    }
    let now = crate::clock::now();
    let mut after: Option<(i64, String)> = None;
    loop {
        let a = after.clone();
        let page = db
            .call(move |s| s.policy_rows(a.as_ref().map(|(i, v)| (*i, v.as_str())), 1000))
            .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.module_id, last.version.clone()));
        for row in page {
            let rule = policy.denied_by(&row.module, &row.version);
            if row.in_tree {
                if let Some(rule) = rule
                    && !row.denied
                {
                    report.policy.denied_in_tree += 1;
                    if prunes {
                        crate::report::outln(format_args!(
                            "delete {}@{} (denied by policy.deny {:?})",
                            row.module, row.version, rule.text
                        ));
                        preview.takedowns += 1;
                        if preview.takedown_sample.len() < crate::report::summary::DENIED_SAMPLE {
                            preview
                                .takedown_sample
                                .push(format!("{}@{}", row.module, row.version));
                        }
                    }
                }
                continue;
            }
            if !matches!(row.state, VersionState::Held | VersionState::Denied) {
                continue;
            }
            let verdict = policy.decide(&row.module, &row.version, row.first_seen, now, true);
            if row.state == VersionState::Denied && matches!(verdict, Verdict::Deny { .. }) {
                continue;
            }
            crate::report::outln(format_args!(
                "{}",
                verdict_line(&row.module, &row.version, &verdict, "")
            ));
            if count_verdict(&mut report.policy, &row.module, &row.version, &verdict) {
                report.attempted += 1;
            }
            if printed.len() < POLICY_MEMORY {
                printed.insert((row.module_id, row.version));
            }
        }
    }
    Ok(preview)
}

/// Prints what applying a changed filter would do, without applying it:
/// `fetch` for each version backfilled, `delete` for each version in the
/// tree that pruning would remove (when sync prunes). Counts go in `report`.
pub async fn print_filter_change(
    db: &Db,
    filter: &Filter,
    policy: &Policy,
    prunes: bool,
    report: &mut SyncReport,
) -> Result<(), Fatal> {
    let fingerprint = filter.fingerprint();
    if db.call(|s| s.filter_fingerprint()).await?.as_deref() == Some(fingerprint.as_str()) {
        return Ok(());
    }
    let mut after_id = -1;
    loop {
        let modules = db.call(move |s| s.modules_page(after_id, 1000)).await?;
        let Some(last) = modules.last() else {
            break;
        };
        after_id = last.0;
        for (id, path, was) in modules {
            match plan_filter(was, filter.wants(&path)) {
                FilterAction::Keep => {}
                FilterAction::Backfill => {
                    report.newly_wanted_modules += 1;
                    let (n, fetched) =
                        print_versions(db, id, &path, Listing::Backfill, policy, report).await?;
                    report.backfilled_versions += n;
                    report.attempted += fetched;
                }
                FilterAction::Drop => {
                    report.unwanted_modules += 1;
                    if prunes {
                        print_versions(db, id, &path, Listing::InTree, policy, report).await?;
                    }
                }
            }
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Listing {
    Backfill,
    InTree,
}

/// Prints a module's versions a filter change backfills (each as the
/// policy decides it) or deletes; returns how many, and how many of them
/// would be fetched.
async fn print_versions(
    db: &Db,
    id: i64,
    path: &str,
    listing: Listing,
    policy: &Policy,
    report: &mut SyncReport,
) -> Result<(u64, u64), Fatal> {
    let mut after = String::new();
    let mut count = 0;
    let mut fetched = 0;
    let now = crate::clock::now();
    loop {
        let a = after.clone();
        let page = db
            .call(move |s| match listing {
                Listing::Backfill => s.backfill_page(id, &a, 1000),
                Listing::InTree => s.module_in_tree_page(id, &a, 1000),
            })
            .await?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.clone();
        let facts = match listing {
            Listing::Backfill => {
                let keys: Vec<(i64, String)> = page.iter().map(|v| (id, v.clone())).collect();
                db.call(move |s| s.version_facts(&keys)).await?
            }
            Listing::InTree => Vec::new(),
        };
        for (i, v) in page.iter().enumerate() {
            match listing {
                Listing::Backfill => {
                    let first_seen = facts.get(i).and_then(|f| f.first_seen);
                    let verdict = policy.decide(path, v, first_seen, now, true);
                    crate::report::outln(format_args!("{}", verdict_line(path, v, &verdict, "")));
                    if count_verdict(&mut report.policy, path, v, &verdict) {
                        fetched += 1;
                    }
                }
                Listing::InTree => crate::report::outln(format_args!(
                    "delete {path}@{v} (the filter no longer wants {path})"
                )),
            }
        }
        count += page.len() as u64;
    }
    Ok((count, fetched))
}

/// Prints `fetch <module>@<version>` for every version due now that this
/// run's filter still wants (or `hold`, `deny`, as the policy decides), a
/// page at a time, leaving out those `printed` already names; returns how
/// many would be fetched.
pub async fn print_fetches(
    db: &Db,
    filter: &Filter,
    policy: &Policy,
    now: i64,
    retry_failed: bool,
    printed: &HashSet<(i64, String)>,
    report: &mut PolicySummary,
) -> Result<u64, Fatal> {
    let mut count = 0u64;
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
        let keys: Vec<(i64, String)> = page
            .iter()
            .map(|t| (t.module_id, t.version.clone()))
            .collect();
        let facts = db.call(move |s| s.version_facts(&keys)).await?;
        for (t, f) in page.iter().zip(facts) {
            if !plan_due(filter.wants(&t.path))
                || printed.contains(&(t.module_id, t.version.clone()))
            {
                continue;
            }
            let verdict = policy.decide(&t.path, &t.version, f.first_seen, now, !f.in_tree);
            crate::report::outln(format_args!(
                "{}",
                verdict_line(&t.path, &t.version, &verdict, "")
            ));
            if count_verdict(report, &t.path, &t.version, &verdict) {
                count += 1;
            }
        }
        after = page.last().map(|t| (t.module_id, t.version.clone()));
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_discovered_version_is_fetched_only_when_new_and_wanted() {
        assert_eq!(plan_entry(false, true), EntryAction::Fetch);
        assert_eq!(plan_entry(false, false), EntryAction::Record);
        // Known versions are the state database's business (due, published, failed).
        assert_eq!(plan_entry(true, true), EntryAction::Known);
        assert_eq!(plan_entry(true, false), EntryAction::Known);
    }

    #[test]
    fn a_filter_change_backfills_or_drops_only_modules_whose_flag_flips() {
        assert_eq!(plan_filter(false, true), FilterAction::Backfill);
        assert_eq!(plan_filter(true, false), FilterAction::Drop);
        assert_eq!(plan_filter(true, true), FilterAction::Keep);
        assert_eq!(plan_filter(false, false), FilterAction::Keep);
    }

    #[test]
    fn due_versions_of_a_module_the_filter_dropped_are_not_fetched() {
        assert!(plan_due(true));
        assert!(!plan_due(false));
    }
}
