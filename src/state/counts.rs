//! The counts `status`, the metrics file, the trace and prune report: how
//! many modules and versions the database knows, by state, and what the
//! tree holds. They are kept, not counted: triggers (`state::migrations`) update
//! the `counts` table in the very transactions that change a version's
//! state or take it in and out of the tree, and the code that inserts
//! versions counts them in its own transaction ([`inserted`]), so reading
//! them costs the same on a mirror of ten versions and of seventy million,
//! and they can never disagree with what was committed.
//!
//! [`State::recount`] counts again the slow way (a pass over every version);
//! `verify` compares the two and `verify --repair` rewrites the table from
//! the recount, and the tests below hold the triggers to it across every
//! kind of change the state database makes.

use rusqlite::params;

use super::version::state_code;
use super::{Result, State, VersionState, err};

/// Counts by state, for `status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub modules: i64,
    pub wanted_modules: i64,
    pub index_versions: i64,
    pub published: i64,
    pub pending: i64,
    pub failed: i64,
    /// Not on the upstream yet (404/410 within the grace period).
    pub missing: i64,
    pub gone: i64,
    /// Mirrored without a zip (`.info` and `.mod` only).
    pub graph_only: i64,
    pub in_tree: i64,
    pub published_bytes: i64,
}

/// Rows of the `counts` table besides the per-state ones (whose id is the
/// state's stored code).
const VERSIONS: i64 = 10;
const MODULES: i64 = 11;
const WANTED_MODULES: i64 = 12;
const IN_TREE: i64 = 13;
const TREE_BYTES: i64 = 14;
const GONE_WANTED: i64 = 15;

/// Counts `n` versions inserted in `state` (of a module the filter wants,
/// for a gone one), in the caller's transaction. Every statement that
/// inserts versions calls this with what it inserted: a trigger per row
/// would add a third to the cost of recording the index.
pub(super) fn inserted(
    tx: &rusqlite::Connection,
    state: VersionState,
    wanted: bool,
    n: u64,
) -> rusqlite::Result<()> {
    if n == 0 {
        return Ok(());
    }
    tx.prepare_cached("UPDATE counts SET n = n + ?2 WHERE id IN (10, ?1)")?
        .execute(params![state, n as i64])?;
    if state == VersionState::Gone && wanted {
        tx.prepare_cached("UPDATE counts SET n = n + ?1 WHERE id = 15")?
            .execute([n as i64])?;
    }
    Ok(())
}

impl State {
    /// The maintained counts: one read of a table of sixteen rows.
    pub fn counts(&self) -> Result<Counts> {
        let rows = self.query_vec(
            "cannot read the counts",
            "SELECT id, n FROM counts",
            [],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
        )?;
        let get = |id: i64| rows.iter().find(|(i, _)| *i == id).map_or(0, |(_, n)| *n);
        let state = |s: VersionState| get(s.code());
        Ok(Counts {
            modules: get(MODULES),
            wanted_modules: get(WANTED_MODULES),
            index_versions: get(VERSIONS),
            published: state(VersionState::Published),
            pending: state(VersionState::Pending),
            failed: state(VersionState::Failed),
            missing: state(VersionState::Missing),
            gone: get(GONE_WANTED),
            graph_only: state(VersionState::GraphOnly),
            in_tree: get(IN_TREE),
            published_bytes: get(TREE_BYTES),
        })
    }

    /// Versions in the tree and their bytes, the figures every sync reports
    /// (trace file, summary).
    pub fn tree_counts(&self) -> Result<(i64, i64)> {
        let c = self.counts()?;
        Ok((c.in_tree, c.published_bytes))
    }

    /// How many versions have files in the tree.
    pub fn in_tree_count(&self) -> Result<u64> {
        Ok(self.counts()?.in_tree.max(0) as u64)
    }

    /// The counts the slow way: passes over every module and version. What
    /// the maintained counts must equal.
    pub fn recount(&self) -> Result<Counts> {
        let q = |sql: &str| -> Result<i64> {
            self.conn
                .query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
                .map(|v| v.unwrap_or(0))
                .map_err(|e| self.err("cannot count", e))
        };
        let in_state = |s: VersionState| -> Result<i64> {
            self.conn
                .query_row("SELECT count(*) FROM versions WHERE state = ?1", [s], |r| {
                    r.get::<_, i64>(0)
                })
                .map_err(|e| self.err(&format!("cannot count {s} versions"), e))
        };
        Ok(Counts {
            modules: q("SELECT count(*) FROM modules")?,
            wanted_modules: q("SELECT count(*) FROM modules WHERE wanted != 0")?,
            index_versions: q("SELECT count(*) FROM versions")?,
            published: in_state(VersionState::Published)?,
            pending: in_state(VersionState::Pending)?,
            failed: in_state(VersionState::Failed)?,
            missing: in_state(VersionState::Missing)?,
            // Gone versions of unwanted modules are no loss to report.
            gone: q(concat!(
                "SELECT count(*) FROM versions v JOIN modules m ON m.id = v.module_id
                     WHERE v.state = ",
                state_code!(Gone),
                " AND m.wanted != 0"
            ))?,
            graph_only: in_state(VersionState::GraphOnly)?,
            in_tree: q("SELECT count(*) FROM versions WHERE in_tree = 1")?,
            published_bytes: q(
                "SELECT sum(coalesce(zip_size,0) + coalesce(mod_size,0) + coalesce(info_size,0)) FROM versions WHERE in_tree = 1",
            )?,
        })
    }

    /// Modules whose prune counters (`gone_in_tree`, `doomable`, kept by
    /// triggers) differ from their versions: `(module path, kept, actual)`,
    /// at most `limit`. A pass over every version.
    pub fn prune_counter_mismatches(&self, limit: usize) -> Result<Vec<(String, String, String)>> {
        self.query_vec(
            "cannot count",
            concat!(
                "SELECT path, gone_in_tree || '/' || doomable, g || '/' || d FROM (
                   SELECT m.path, m.gone_in_tree, m.doomable,
                     (SELECT count(*) FROM versions v WHERE v.module_id = m.id AND v.in_tree = 1
                          AND v.state = ",
                state_code!(Gone),
                ") AS g,
                     (SELECT count(*) FROM versions v WHERE v.module_id = m.id AND v.in_tree = 1
                          AND (v.named = 0 OR (v.named = 1 AND v.state = ",
                state_code!(Published),
                "))) AS d
                   FROM modules m)
                 WHERE g != gone_in_tree OR d != doomable LIMIT ?1"
            ),
            params![limit as i64],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
    }

    /// Rewrites the maintained counts and the per-module prune counters from
    /// a recount (`verify --repair`, after a database edited by hand).
    pub fn repair_counts(&mut self) -> Result<()> {
        let c = self.recount()?;
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot rewrite the counts", x);
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut set = tx
                .prepare("INSERT OR REPLACE INTO counts(id, n) VALUES (?1, ?2)")
                .map_err(e)?;
            for s in VersionState::ALL {
                let n: i64 = tx
                    .query_row("SELECT count(*) FROM versions WHERE state = ?1", [s], |r| {
                        r.get(0)
                    })
                    .map_err(e)?;
                set.execute(params![s.code(), n]).map_err(e)?;
            }
            for (id, n) in [
                (VERSIONS, c.index_versions),
                (MODULES, c.modules),
                (WANTED_MODULES, c.wanted_modules),
                (IN_TREE, c.in_tree),
                (TREE_BYTES, c.published_bytes),
                (GONE_WANTED, c.gone),
            ] {
                set.execute(params![id, n]).map_err(e)?;
            }
        }
        tx.execute(
            concat!(
                "UPDATE modules SET
                   gone_in_tree = (SELECT count(*) FROM versions v WHERE v.module_id = modules.id
                                       AND v.in_tree = 1 AND v.state = ",
                state_code!(Gone),
                "),
                   doomable = (SELECT count(*) FROM versions v WHERE v.module_id = modules.id
                                   AND v.in_tree = 1 AND (v.named = 0 OR (v.named = 1 AND v.state = ",
                state_code!(Published),
                ")))"
            ),
            [],
        )
        .map_err(e)?;
        tx.commit().map_err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{entry, open_temp, published};
    use super::super::{FeedOp, FollowCursor, IndexEntry, NamedFile, NamedVersion, Published};
    use super::*;

    /// The kept counts and the per-module counters equal a recount.
    fn check(st: &State, after: &str) {
        assert_eq!(
            st.counts().unwrap(),
            st.recount().unwrap(),
            "counts differ from a recount after {after}"
        );
        assert_eq!(
            st.prune_counter_mismatches(10).unwrap(),
            [],
            "prune counters differ after {after}"
        );
    }

    /// Every kind of change the state database makes to versions and
    /// modules, each followed by a recount.
    #[test]
    fn kept_counts_equal_a_recount_through_every_kind_of_change() {
        let (_d, mut st) = open_temp();
        let wants = |p: &str| p.starts_with("golang.org/");
        let entries: Vec<IndexEntry> = (0..12)
            .map(|i| {
                let m = ["golang.org/x/a", "golang.org/x/b", "example.com/c"][i % 3];
                entry(m, &format!("v1.0.{i}"))
            })
            .collect();
        st.apply_filter("golang", &wants).unwrap();
        st.record_index_page(&entries, &wants, "t1").unwrap();
        check(&st, "an index page");
        st.record_index_page(&entries[..4], &wants, "t2").unwrap();
        check(&st, "an index page of known versions");
        let a = st.module("golang.org/x/a").unwrap().unwrap().0;
        let b = st.module("golang.org/x/b").unwrap().unwrap().0;
        let c = st.module("example.com/c").unwrap().unwrap().0;

        st.mark_published(
            &[
                published(a, "v1.0.0", Some(1)),
                published(a, "v1.0.3", Some(2)),
                Published {
                    zip: false,
                    ..published(b, "v1.0.1", None)
                },
                published(b, "v1.0.4", None),
            ],
            &[],
            10,
        )
        .unwrap();
        check(&st, "publishing");
        st.mark_published(&[published(a, "v1.0.0", Some(1))], &[], 11)
            .unwrap();
        check(&st, "republishing");
        st.mark_failed(a, "v1.0.6", "boom", 12).unwrap();
        st.mark_failed(a, "v1.0.0", "repair failed", 12).unwrap();
        check(&st, "failures");
        st.mark_not_found(a, "v1.0.9", "404", 12, 0).unwrap();
        st.mark_not_found(b, "v1.0.7", "404", 12, 3600).unwrap();
        check(&st, "not found");
        st.mark_recheck_not_found(a, "v1.0.3", "410", 20, 0)
            .unwrap();
        check(&st, "a recheck that found it gone");
        st.requeue(&[(b, "v1.0.4".into())]).unwrap();
        check(&st, "a requeue");
        st.unlist(&[(a, "v1.0.3".into())]).unwrap();
        st.mark_out_of_tree(&[(a, "v1.0.3".into())]).unwrap();
        check(&st, "a prune");
        st.mark_published(&[published(b, "v1.0.4", None)], &[], 21)
            .unwrap();
        st.unlist_zips(&[(b, "v1.0.4".into())]).unwrap();
        st.mark_zips_deleted(&[(b, "v1.0.4".into())]).unwrap();
        check(&st, "a zip-only prune");

        // A file names versions of an unwanted module; then names fewer.
        let named = |m: &str, v: &str, zip: bool| NamedVersion {
            path: m.into(),
            version: v.into(),
            zip,
            line: 1,
            zip_h1: None,
            mod_h1: None,
        };
        let file = |versions: Vec<NamedVersion>| NamedFile {
            file: "go.sum".into(),
            kind: "go.sum",
            versions,
        };
        st.name_versions(
            &[file(vec![
                named("example.com/c", "v1.0.2", true),
                named("example.com/c", "v1.0.5", false),
                named("example.org/new", "v0.1.0", true),
            ])],
            &wants,
        )
        .unwrap();
        check(&st, "a file naming versions");
        st.mark_published(&[published(c, "v1.0.2", None)], &[], 30)
            .unwrap();
        check(&st, "publishing a named version of an unwanted module");
        st.name_versions(
            &[file(vec![named("example.com/c", "v1.0.2", false)])],
            &wants,
        )
        .unwrap();
        check(&st, "a file naming it for its go.mod alone");
        st.name_versions(&[file(vec![])], &wants).unwrap();
        check(&st, "a file naming nothing");

        // The filter widens and narrows: wanted flags and gone versions move.
        st.apply_filter("all", &|_| true).unwrap();
        check(&st, "a wider filter");
        st.apply_filter("none", &|_| false).unwrap();
        check(&st, "a narrower filter");
        st.apply_filter("golang again", &wants).unwrap();
        check(&st, "the filter back");

        // Another mirror's feed and a bundle: new versions, withdrawals.
        let cursor = FollowCursor {
            id: "f".into(),
            next: 3,
        };
        st.record_feed_changes(
            &[
                (FeedOp::Publish, entry("golang.org/x/a", "v2.0.0")),
                (FeedOp::Delete, entry("golang.org/x/a", "v1.0.0")),
                (FeedOp::Delete, entry("golang.org/x/fresh", "v0.0.1")),
            ],
            &wants,
            &cursor,
        )
        .unwrap();
        check(&st, "a followed feed's changes");
        st.snapshot_begin().unwrap();
        st.snapshot_apply(&[(FeedOp::Publish, entry("golang.org/x/a", "v2.0.0"))])
            .unwrap();
        st.snapshot_finish(&wants, &cursor).unwrap();
        check(&st, "a snapshot comparison");
        st.record_bundle_changes(
            &[(FeedOp::Publish, entry("golang.org/x/b", "v1.0.1"))],
            &wants,
        )
        .unwrap();
        check(&st, "a bundle's changes");

        // Hand-edited counts are found and repaired.
        st.conn
            .execute("UPDATE counts SET n = n + 5 WHERE id = 13", [])
            .unwrap();
        st.conn
            .execute("UPDATE modules SET doomable = doomable + 1", [])
            .unwrap();
        assert_ne!(st.counts().unwrap(), st.recount().unwrap());
        assert!(!st.prune_counter_mismatches(10).unwrap().is_empty());
        st.repair_counts().unwrap();
        check(&st, "a repair");
    }

    #[test]
    fn a_database_from_before_the_counts_gets_them_right() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.db");
        {
            let c = rusqlite::Connection::open(&p).unwrap();
            for sql in &super::super::migrations::MIGRATIONS[..8] {
                c.execute_batch(sql).unwrap();
            }
            c.pragma_update(None, "user_version", 8).unwrap();
            c.execute_batch(concat!(
                "INSERT INTO modules(id, path, wanted) VALUES (1, 'a.example/m', 1), (2, 'b.example/m', 0);
                 INSERT INTO versions(module_id, version, state, in_tree, zip_size, mod_size, info_size) VALUES
                     (1, 'v1.0.0', ",
                state_code!(Published),
                ", 1, 100, 10, 1),
                     (1, 'v1.1.0', ",
                state_code!(Gone),
                ", 1, 50, 5, 1),
                     (2, 'v0.1.0', ",
                state_code!(Published),
                ", 1, 7, 7, 7),
                     (2, 'v0.2.0', ",
                state_code!(Seen),
                ", 0, NULL, NULL, NULL);"
            ))
            .unwrap();
        }
        let st = State::open(&p).unwrap();
        check(&st, "the migration");
        let c = st.counts().unwrap();
        assert_eq!((c.in_tree, c.published_bytes, c.gone), (3, 188, 1));
    }
}
