//! The queries a routine run makes (a no-op or small sync, `status`, the
//! metrics file) read only what changed or what they return: each is held
//! here to a query plan that uses an index and never scans a whole table
//! (a full mirror's routine runs). A plan is SQLite's choice, which can change with a query's
//! wording or SQLite's version; these tests say so when it does.

use super::tests::open_temp;
use super::*;

/// `EXPLAIN QUERY PLAN` of `sql`, every parameter NULL, one step per line.
fn plan(st: &State, sql: &str) -> String {
    let mut stmt = st
        .conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .unwrap();
    let n = stmt.parameter_count();
    let nulls: Vec<rusqlite::types::Null> = vec![rusqlite::types::Null; n];
    let rows: Vec<String> = stmt
        .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<std::result::Result<_, _>>()
        .unwrap();
    rows.join("\n")
}

/// A full pass over a table shows as `SCAN <table>` (with or without an
/// alias) not followed by `USING … INDEX <partial index>`. `SCAN
/// (subquery-N)` reads a compound query's own rows (a union of index
/// reads), not a table.
fn full_scans(plan: &str) -> Vec<String> {
    plan.lines()
        .filter(|l| {
            let l = l.trim();
            l.starts_with("SCAN")
                && !l.starts_with("SCAN (subquery-")
                && ![
                    "modules_prune",
                    "versions_todo",
                    "versions_checked",
                    "modules_dirty",
                    "versions_denied",
                    "versions_policy",
                ]
                .iter()
                .any(|i| l.contains(i))
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn the_queries_of_a_routine_run_use_indexes() {
    let (_d, st) = open_temp();
    for (what, sql, index) in [
        (
            "dirty modules",
            lists::DIRTY_PAGE.to_string(),
            "modules_dirty",
        ),
        ("deletion set", tree::deletion_count_sql(), "modules_prune"),
        (
            "rechecks",
            rechecks::DUE_RECHECKS.to_string(),
            "versions_checked",
        ),
        ("work queue", queue::TODO_PAGE.to_string(), "versions_todo"),
        ("failures", runs::FAILURES.to_string(), "versions_todo"),
        ("next retry", runs::NEXT_RETRY.to_string(), "versions_todo"),
        (
            "verify's pages",
            tree::IN_TREE_PAGE.to_string(),
            "versions_in_tree",
        ),
    ] {
        let p = plan(&st, &sql);
        assert!(p.contains(index), "{what}: not through {index}:\n{p}");
        assert_eq!(full_scans(&p), Vec::<String>::new(), "{what}:\n{p}");
    }
    // The feed's snapshot reads every module once (it is the whole set),
    // through the path index, each one's versions by key: never a sort of
    // the whole set.
    let p = plan(&st, feed::FEED_PUBLISHED_PAGE);
    assert!(!p.contains("TEMP B-TREE"), "{p}");
    // The oldest recheck is the first entry of the index by last check.
    let p = plan(
        &st,
        "SELECT min(checked_at) FROM versions WHERE in_tree = 1",
    );
    assert!(p.contains("versions_checked"), "{p}");
    // The counts are a table of sixteen rows.
    let p = plan(&st, "SELECT id, n FROM counts");
    assert!(p.contains("counts"), "{p}");
}

#[test]
fn the_pages_of_a_pass_are_ranges_not_rescans() {
    let (_d, st) = open_temp();
    // Keyset pagination reads from where the last page ended: a range
    // search on the index, not a scan that skips what came before.
    for sql in [rechecks::DUE_RECHECKS, tree::IN_TREE_PAGE, queue::TODO_PAGE] {
        let p = plan(&st, sql);
        assert!(
            p.contains("SEARCH v USING INDEX") || p.contains("SEARCH v USING PRIMARY KEY"),
            "{sql}:\n{p}"
        );
        assert!(p.contains(">"), "no range in\n{p}");
    }
}
