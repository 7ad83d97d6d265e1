//! Plan: what a sync would do. The decisions are pure functions of what is
//! wanted and what the state database holds ([`plan_entry`],
//! [`plan_filter`], [`plan_due`]); a sync's stages carry them out, and
//! `sync --dry-run` prints them, reading the state database page by page
//! (the whole to-do list is never held in memory) and writing nothing.

use crate::fatal::Fatal;
use crate::report::summary::SyncReport;
use crate::settings::Filter;
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

/// Prints what applying a changed filter would do, without applying it:
/// `fetch` for each version backfilled, `delete` for each version in the
/// tree that pruning would remove (when sync prunes). Counts go in `report`.
pub async fn print_filter_change(
    db: &Db,
    filter: &Filter,
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
                    let n = print_versions(db, id, &path, Listing::Backfill).await?;
                    report.backfilled_versions += n;
                    report.attempted += n;
                }
                FilterAction::Drop => {
                    report.unwanted_modules += 1;
                    if prunes {
                        print_versions(db, id, &path, Listing::InTree).await?;
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

async fn print_versions(db: &Db, id: i64, path: &str, listing: Listing) -> Result<u64, Fatal> {
    let mut after = String::new();
    let mut count = 0;
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
        for v in &page {
            match listing {
                Listing::Backfill => crate::report::outln(format_args!("fetch {path}@{v}")),
                Listing::InTree => crate::report::outln(format_args!(
                    "delete {path}@{v} (the filter no longer wants {path})"
                )),
            }
        }
        count += page.len() as u64;
    }
    Ok(count)
}

/// Prints `fetch <module>@<version>` for every version due now that this
/// run's filter still wants, a page at a time; returns how many.
pub async fn print_fetches(
    db: &Db,
    filter: &Filter,
    now: i64,
    retry_failed: bool,
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
        for t in &page {
            if plan_due(filter.wants(&t.path)) {
                crate::report::outln(format_args!("fetch {}@{}", t.path, t.version));
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
