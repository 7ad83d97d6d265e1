//! What the tree holds, as the database records it: the versions whose files
//! are in place (`in_tree = 1`), read back by `verify` and by `prune`.
//!
//! Prune asks three kinds of question here: which versions in the tree should
//! go (the deletion set: module no longer wanted, or gone from the upstream),
//! whether a file found in the tree is accounted for (a module's indexes, a
//! version's files, a lookup), and, once it has acted, records the outcome
//! (stop listing, then out of the tree). Every question that grows with the
//! mirror is asked a page or a row at a time (invariant 8).

use rusqlite::params;

use super::version::state_code;
use super::{Published, Result, State, VersionState, err};

/// The deletion set's condition (with `?1` bound to the gone state and `?9`
/// to the retention cutoff, `prune.keep`): gone from the upstream; or
/// covered by `policy.deny`; or neither wanted by the filter nor named by a
/// file, or named for its go.mod alone while its zip is still in the tree —
/// and no longer wanted since the cutoff or earlier (a version unwanted
/// before this was recorded has aged out).
const DOOMED: &str = concat!(
    "(v.state = ?1 OR v.denied = 1
      OR (m.wanted = 0 AND (v.named = 0 OR (v.named = 1 AND v.state = ",
    state_code!(Published),
    ")) AND coalesce(v.unwanted_since, 0) <= ?9))"
);

/// Of the deletion set, what is there only because it aged out of
/// `prune.keep` (`prune.max_delete` spreads those over runs).
const AGED_ONLY: &str = "NOT (v.state = ?1 OR v.denied = 1)";

/// The modules that have a version in the deletion set, as the partial index
/// `modules_prune` holds them: a version gone upstream in the
/// tree, or, for a module the filter does not want, a version no file keeps
/// (counters kept by triggers). Spelt as the index spells it, so SQLite uses it.
const CANDIDATES: &str = "(m.gone_in_tree > 0 OR (m.wanted = 0 AND m.doomable > 0))";
/// The join that reads those modules first, through that index (SQLite,
/// without statistics, would rather scan every version in the tree).
const MODULES_TO_PRUNE: &str = "modules m INDEXED BY modules_prune CROSS JOIN versions";

/// The deletion set's rows, `cols` of each (`?1`: the gone state, `?9`:
/// the retention cutoff; `and`: more conditions on both arms): read from the
/// modules that have any (`modules_prune`), and the versions `policy.deny`
/// covers through their own partial index (`versions_denied`) — a takedown
/// in a module that is otherwise kept. `UNION` counts a version found both
/// ways once.
fn doomed_rows_sql(cols: &str, and: &str) -> String {
    format!(
        "SELECT {cols} FROM {MODULES_TO_PRUNE} v ON v.module_id = m.id
             WHERE {CANDIDATES} AND v.in_tree = 1 AND {DOOMED} {and}
         UNION
         SELECT {cols} FROM versions v INDEXED BY versions_denied
             JOIN modules m ON m.id = v.module_id
             WHERE v.denied = 1 AND v.in_tree = 1 {and}"
    )
}

/// How many versions are in the deletion set (`?1`: the gone state, `?9`:
/// the retention cutoff).
pub(super) fn deletion_count_sql() -> String {
    format!(
        "SELECT count(*) FROM ({})",
        doomed_rows_sql("v.module_id, v.version", "")
    )
}

/// A version in the tree, as `verify` reads it back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedVersion {
    pub path: String,
    pub published: Published,
}

/// Versions in the tree after a (module id, version), in that order: a range
/// of the partial index of what is in the tree.
pub(super) const IN_TREE_PAGE: &str = concat!("SELECT v.module_id, m.path, v.version, v.info_time, v.zip_h1, v.mod_h1,
                    v.info_size, v.mod_size, v.zip_size, v.info_mtime, v.mod_mtime, v.zip_mtime, v.record_id,
                    v.zip_sha256, v.info_sha256, v.state != ", state_code!(GraphOnly), "
                 FROM versions v JOIN modules m ON m.id = v.module_id
                 WHERE v.in_tree = 1 AND (v.module_id, v.version) > (?2, ?3)
                 ORDER BY v.module_id, v.version LIMIT ?1");

/// Why a version in the tree is in the deletion set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeletionReason {
    /// The filter no longer wants its module.
    Unwanted,
    /// The upstream answers 404/410 for it (past the grace period).
    Gone,
    /// Only its `.info` and `.mod` are still wanted (a file names it for its
    /// go.mod alone): its zip goes, the version stays graph-only.
    ZipOnly,
    /// `policy.deny` covers it.
    Denied,
}

/// A version in the tree that prune should delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletionCandidate {
    pub module_id: i64,
    pub module: String,
    pub version: String,
    pub reason: DeletionReason,
    /// In the set only because it was no longer wanted for `prune.keep`.
    pub aged: bool,
}

impl State {
    /// Every version whose files are in the tree, in module order, a page at a time.
    pub fn in_tree_page(
        &self,
        after: Option<(i64, &str)>,
        limit: usize,
    ) -> Result<Vec<PublishedVersion>> {
        let (aid, aver) = after.unwrap_or((-1, ""));
        self.query_vec(
            "cannot list published versions",
            IN_TREE_PAGE,
            params![limit as i64, aid, aver],
            |r| {
                let or_unknown = |i| r.get::<_, Option<i64>>(i).map(|v| v.unwrap_or(-1));
                Ok(PublishedVersion {
                    path: r.get(1)?,
                    published: Published {
                        module_id: r.get(0)?,
                        version: r.get(2)?,
                        info_time: r.get(3)?,
                        zip_h1: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                        mod_h1: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
                        info_size: or_unknown(6)?,
                        mod_size: or_unknown(7)?,
                        zip_size: or_unknown(8)?,
                        info_mtime: or_unknown(9)?,
                        mod_mtime: or_unknown(10)?,
                        zip_mtime: or_unknown(11)?,
                        record_id: r.get(12)?,
                        zip_sha256: r.get(13)?,
                        info_sha256: r.get(14)?,
                        zip: r.get(15)?,
                    },
                })
            },
        )
    }

    /// Versions of a module whose files are in the tree, after `after`, in order.
    pub fn module_in_tree_page(
        &self,
        module_id: i64,
        after: &str,
        limit: usize,
    ) -> Result<Vec<String>> {
        self.query_vec(
            "cannot list versions",
            "SELECT version FROM versions WHERE module_id = ?1 AND in_tree = 1
                 AND version > ?2 ORDER BY version LIMIT ?3",
            params![module_id, after, limit as i64],
            |r| r.get(0),
        )
    }

    /// Calls `f` with the record id of every version in the tree (for the
    /// tiles clients need), one row at a time: memory stays bounded whatever
    /// the mirror size.
    pub fn for_each_record_id(&self, mut f: impl FnMut(i64)) -> Result<()> {
        let what = "cannot read record ids";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT record_id FROM versions WHERE in_tree = 1 AND record_id IS NOT NULL",
            )
            .map_err(|e| self.err(what, e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(what, e))?;
        while let Some(row) = rows.next().map_err(|e| self.err(what, e))? {
            f(row.get(0).map_err(|e| self.err(what, e))?);
        }
        Ok(())
    }

    // ---- prune ----------------------------------------------------------------

    /// How many versions are in the deletion set (see [`State::deletion_page`]):
    /// read from the modules that have any (an index kept by triggers), so
    /// a sync that deletes nothing pays nothing for the size of the tree.
    pub fn deletion_count(&self) -> Result<u64> {
        self.deletion_count_at(i64::MAX)
    }

    /// How many versions are in the deletion set when what is no longer
    /// wanted since after `cutoff` is kept (`prune.keep`).
    pub fn deletion_count_at(&self, cutoff: i64) -> Result<u64> {
        self.conn
            .query_row(
                &deletion_count_sql(),
                rusqlite::named_params! {"?1": VersionState::Gone, "?9": cutoff},
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.err("cannot count versions to delete", e))
    }

    /// Of [`State::deletion_count_at`], the versions there only because
    /// they aged out of `prune.keep` (never a denied one).
    pub fn aged_deletion_count(&self, cutoff: i64) -> Result<u64> {
        self.conn
            .query_row(
                &format!(
                    "SELECT count(*) FROM {MODULES_TO_PRUNE} v ON v.module_id = m.id
                         WHERE {CANDIDATES} AND v.in_tree = 1 AND {DOOMED} AND {AGED_ONLY}"
                ),
                rusqlite::named_params! {"?1": VersionState::Gone, "?9": cutoff},
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.err("cannot count versions to delete", e))
    }

    /// Of the deletion set, the versions that lose only their zip (they stay,
    /// graph-only).
    pub fn zip_only_deletion_count(&self) -> Result<u64> {
        self.zip_only_deletion_count_at(i64::MAX)
    }

    /// [`State::zip_only_deletion_count`] with `prune.keep`'s cutoff.
    pub fn zip_only_deletion_count_at(&self, cutoff: i64) -> Result<u64> {
        self.conn
            .query_row(
                &format!(
                    concat!(
                        "SELECT count(*) FROM {MODULES_TO_PRUNE} v ON v.module_id = m.id
                         WHERE {CANDIDATES} AND v.in_tree = 1 AND v.state = ",
                        state_code!(Published),
                        " AND v.named = 1 AND m.wanted = 0 AND v.denied = 0
                           AND coalesce(v.unwanted_since, 0) <= ?1"
                    ),
                    CANDIDATES = CANDIDATES,
                    MODULES_TO_PRUNE = MODULES_TO_PRUNE
                ),
                [cutoff],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.err("cannot count versions to delete", e))
    }

    /// Up to `limit` versions of the deletion set after `after` (a module path
    /// and version), in module path and version order: versions in the tree
    /// whose module the filter no longer wants, or that the upstream no longer
    /// has. A version in the tree of a wanted module in any other state stays.
    pub fn deletion_page(
        &self,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<DeletionCandidate>> {
        self.deletion_page_at(after, limit, i64::MAX)
    }

    /// [`State::deletion_page`] with `prune.keep`'s cutoff: what is no
    /// longer wanted since after `cutoff` stays.
    pub fn deletion_page_at(
        &self,
        after: Option<(&str, &str)>,
        limit: usize,
        cutoff: i64,
    ) -> Result<Vec<DeletionCandidate>> {
        let (apath, aver) = after.unwrap_or(("", ""));
        self.query_vec(
            "cannot list versions to delete",
            &format!(
                "SELECT * FROM ({rows}) ORDER BY 2, 3 LIMIT ?4",
                rows = doomed_rows_sql(
                    &format!(
                        "v.module_id, m.path, v.version, m.wanted, v.state, v.named, v.denied,
                            {AGED_ONLY}"
                    ),
                    "AND m.path >= ?2 AND (m.path, v.version) > (?2, ?3)",
                )
            ),
            rusqlite::named_params! {
                "?1": VersionState::Gone,
                "?2": apath,
                "?3": aver,
                "?4": limit as i64,
                "?9": cutoff,
            },
            |r| {
                let wanted: bool = r.get(3)?;
                let state: VersionState = r.get(4)?;
                let named: i64 = r.get(5)?;
                let denied: bool = r.get(6)?;
                Ok(DeletionCandidate {
                    module_id: r.get(0)?,
                    module: r.get(1)?,
                    version: r.get(2)?,
                    // A takedown says most; a module no longer wanted says
                    // more than one gone version.
                    reason: if denied {
                        DeletionReason::Denied
                    } else if !wanted && named == 0 {
                        DeletionReason::Unwanted
                    } else if state == VersionState::Gone {
                        DeletionReason::Gone
                    } else {
                        DeletionReason::ZipOnly
                    },
                    aged: r.get(7)?,
                })
            },
        )
    }

    /// Whether a module has a published version in the tree, so that its
    /// `@v/list` and `@latest` belong there.
    pub fn module_has_listed_version(&self, module_id: i64) -> Result<bool> {
        self.exists(
            &format!("cannot read versions of module {module_id}"),
            "SELECT EXISTS (SELECT 1 FROM versions WHERE module_id = ?1 AND in_tree = 1 AND state = ?2)",
            params![module_id, VersionState::Published],
        )
    }

    /// Whether a module has a version in the tree that is gone (withdrawn by
    /// an upstream mirror's feed or a bundle, or 404 past the grace period):
    /// prune is about to unlist and delete it, and rewrites (or removes) the
    /// module's `@v/list` and `@latest` then, so those are not strays.
    pub fn module_has_gone_in_tree(&self, module_id: i64) -> Result<bool> {
        self.exists(
            &format!("cannot read versions of module {module_id}"),
            "SELECT EXISTS (SELECT 1 FROM modules WHERE id = ?1 AND gone_in_tree > 0)",
            params![module_id],
        )
    }

    /// Whether a version's files are in the tree.
    pub fn version_in_tree(&self, module_id: i64, version: &str) -> Result<bool> {
        self.exists(
            &format!("cannot read version {version} of module {module_id}"),
            "SELECT EXISTS (SELECT 1 FROM versions WHERE module_id = ?1 AND version = ?2 AND in_tree = 1)",
            params![module_id, version],
        )
    }

    /// Whether a version's zip belongs in the tree: it is, and not graph-only.
    pub fn zip_in_tree(&self, module_id: i64, version: &str) -> Result<bool> {
        self.exists(
            &format!("cannot read version {version} of module {module_id}"),
            concat!("SELECT EXISTS (SELECT 1 FROM versions WHERE module_id = ?1 AND version = ?2 AND in_tree = 1 AND state != ", state_code!(GraphOnly), ")"),
            params![module_id, version],
        )
    }

    /// Stops listing versions whose zip is about to be deleted (they become
    /// graph-only), and marks their modules' indexes for rewriting.
    pub fn unlist_zips(&mut self, versions: &[(i64, String)]) -> Result<()> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot stop listing graph-only versions", x);
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut up = tx
                .prepare_cached(
                    "UPDATE versions SET state = ?3 WHERE module_id = ?1 AND version = ?2",
                )
                .map_err(e)?;
            let mut dirty = tx
                .prepare_cached("UPDATE modules SET dirty = 1 WHERE id = ?1")
                .map_err(e)?;
            for (id, v) in versions {
                up.execute(params![id, v, VersionState::GraphOnly])
                    .map_err(e)?;
                dirty.execute([id]).map_err(e)?;
            }
            // No longer whole: the feed says so before the zip goes.
            super::feed::append(&tx, super::FeedOp::Delete, versions).map_err(e)?;
        }
        tx.commit().map_err(e)
    }

    /// Records that these versions' zips are gone from the tree.
    pub fn mark_zips_deleted(&mut self, versions: &[(i64, String)]) -> Result<()> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot record deleted zips", x);
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut up = tx
                .prepare_cached(
                    "UPDATE versions SET zip_size = NULL, zip_mtime = NULL, zip_sha256 = NULL
                     WHERE module_id = ?1 AND version = ?2",
                )
                .map_err(e)?;
            for (id, v) in versions {
                up.execute(params![id, v]).map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    /// Whether `module@version` is in the tree with a checksum-database record,
    /// so that its lookup file belongs there.
    pub fn lookup_in_tree(&self, module: &str, version: &str) -> Result<bool> {
        self.exists(
            &format!("cannot read {module}@{version}"),
            "SELECT EXISTS (SELECT 1 FROM versions v JOIN modules m ON m.id = v.module_id
                 WHERE m.path = ?1 AND v.version = ?2 AND v.in_tree = 1 AND v.record_id IS NOT NULL)",
            params![module, version],
        )
    }

    /// Stops listing versions about to be deleted, and marks their modules'
    /// indexes for rewriting, in one transaction: an unwanted version becomes
    /// merely `Seen`, a gone one stays `Gone`, a denied one becomes `Denied`
    /// (never fetched again). Their files stay in the tree (and `in_tree`
    /// stays set) until [`State::mark_out_of_tree`].
    pub fn unlist(&mut self, versions: &[(i64, String)]) -> Result<()> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot stop listing pruned versions", x);
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut up = tx
                .prepare_cached(
                    "UPDATE versions SET state = CASE WHEN denied = 1 THEN ?5
                                                  WHEN state = ?3 THEN state ELSE ?4 END
                     WHERE module_id = ?1 AND version = ?2",
                )
                .map_err(e)?;
            let mut dirty = tx
                .prepare_cached("UPDATE modules SET dirty = 1 WHERE id = ?1")
                .map_err(e)?;
            for (id, v) in versions {
                up.execute(params![
                    id,
                    v,
                    VersionState::Gone,
                    VersionState::Seen,
                    VersionState::Denied
                ])
                .map_err(e)?;
                dirty.execute([id]).map_err(e)?;
            }
            // The feed says "deleted" as the version stops being listed, before
            // its files go: a follower never reads a publication of files that
            // are being removed.
            super::feed::append(&tx, super::FeedOp::Delete, versions).map_err(e)?;
        }
        tx.commit().map_err(e)
    }

    /// Records that these versions' files are all gone from the tree.
    pub fn mark_out_of_tree(&mut self, versions: &[(i64, String)]) -> Result<()> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot record pruned versions", x);
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut up = tx
                .prepare_cached(
                    "UPDATE versions SET in_tree = 0, info_size = NULL, mod_size = NULL, zip_size = NULL,
                         info_mtime = NULL, mod_mtime = NULL, zip_mtime = NULL
                     WHERE module_id = ?1 AND version = ?2",
                )
                .map_err(e)?;
            for (id, v) in versions {
                up.execute(params![id, v]).map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    pub(super) fn exists<P: rusqlite::Params>(
        &self,
        what: &str,
        sql: &str,
        params: P,
    ) -> Result<bool> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut s| s.query_row(params, |r| r.get(0)))
            .map_err(|e| self.err(what, e))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{entry, open_temp, published};
    use super::*;

    /// A mirror with, in the tree: a wanted module's published and gone
    /// versions, an unwanted module's version; out of the tree: a gone version.
    fn mirror() -> (tempfile::TempDir, State, i64, i64) {
        let (d, mut st) = open_temp();
        st.record_index_page(
            &[
                entry("golang.org/x/keep", "v1.0.0"),
                entry("golang.org/x/keep", "v1.1.0"),
                entry("golang.org/x/keep", "v1.2.0"),
                entry("golang.org/x/drop", "v0.1.0"),
            ],
            &|_| true,
            "t",
        )
        .unwrap();
        let keep = st.module("golang.org/x/keep").unwrap().unwrap().0;
        let drop = st.module("golang.org/x/drop").unwrap().unwrap().0;
        st.mark_published(
            &[
                published(keep, "v1.0.0", Some(1)),
                published(keep, "v1.1.0", None),
                published(drop, "v0.1.0", Some(3)),
            ],
            &[],
            10,
        )
        .unwrap();
        st.mark_recheck_not_found(keep, "v1.1.0", "410", 20, 0)
            .unwrap();
        st.mark_gone(keep, "v1.2.0", "404", 20).unwrap();
        st.apply_filter("keep only", &|p| p.ends_with("/keep"))
            .unwrap();
        (d, st, keep, drop)
    }

    #[test]
    fn the_deletion_set_is_unwanted_and_gone_versions_in_the_tree_and_nothing_kept() {
        let (_d, st, keep, drop) = mirror();
        let all = st.deletion_page(None, 100).unwrap();
        let got: Vec<_> = all
            .iter()
            .map(|c| (c.module_id, c.version.as_str(), c.reason))
            .collect();
        assert_eq!(
            got,
            [
                (drop, "v0.1.0", DeletionReason::Unwanted),
                (keep, "v1.1.0", DeletionReason::Gone),
            ],
            "the published version stays, and a gone one not in the tree is not deleted twice"
        );
        // Paged one at a time, the same set in the same order.
        let mut paged = Vec::new();
        let mut after: Option<(String, String)> = None;
        loop {
            let page = st
                .deletion_page(after.as_ref().map(|(m, v)| (m.as_str(), v.as_str())), 1)
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some((last.module.clone(), last.version.clone()));
            paged.extend(page);
        }
        assert_eq!(paged, all);
    }

    #[test]
    fn prune_belongs_checks_answer_from_what_is_in_the_tree() {
        let (_d, st, keep, drop) = mirror();
        assert!(st.module_has_listed_version(keep).unwrap());
        // Its only version is in the tree but no longer published (unwanted
        // modules' versions stop being fetched, not listed: prune unlists them).
        assert!(st.module_has_listed_version(drop).unwrap());
        assert!(st.version_in_tree(keep, "v1.0.0").unwrap());
        assert!(st.version_in_tree(keep, "v1.1.0").unwrap());
        assert!(!st.version_in_tree(keep, "v1.2.0").unwrap());
        assert!(!st.version_in_tree(keep, "v9.0.0").unwrap());
        assert!(st.lookup_in_tree("golang.org/x/keep", "v1.0.0").unwrap());
        assert!(
            !st.lookup_in_tree("golang.org/x/keep", "v1.1.0").unwrap(),
            "no checksum-database record, so no lookup"
        );
        assert!(!st.lookup_in_tree("golang.org/x/none", "v1.0.0").unwrap());
    }

    #[test]
    fn unlisting_then_marking_out_of_tree_takes_versions_out_step_by_step() {
        let (_d, mut st, keep, drop) = mirror();
        st.set_dirty(&[keep, drop], false).unwrap();
        let doomed = [(drop, "v0.1.0".to_string()), (keep, "v1.1.0".to_string())];
        st.unlist(&doomed).unwrap();
        assert_eq!(
            st.version_state(drop, "v0.1.0").unwrap(),
            Some(VersionState::Seen)
        );
        assert_eq!(
            st.version_state(keep, "v1.1.0").unwrap(),
            Some(VersionState::Gone)
        );
        assert!(!st.module_has_listed_version(drop).unwrap());
        let dirty: Vec<i64> = st
            .dirty_modules_page(0, 10)
            .unwrap()
            .into_iter()
            .map(|m| m.0)
            .collect();
        assert_eq!(dirty.len(), 2, "both modules' indexes are rewritten");
        // Still in the tree until the files are gone.
        assert_eq!(st.in_tree_count().unwrap(), 3);
        assert_eq!(st.deletion_page(None, 10).unwrap().len(), 2);
        st.mark_out_of_tree(&doomed[..1]).unwrap();
        assert_eq!(st.in_tree_count().unwrap(), 2);
        let left = st.deletion_page(None, 10).unwrap();
        assert_eq!(
            left.len(),
            1,
            "the version whose deletion failed is retried"
        );
        assert_eq!(left[0].module_id, keep);
        assert!(
            st.listed_versions(keep)
                .unwrap()
                .iter()
                .all(|l| l.version == "v1.0.0")
        );
    }

    #[test]
    fn in_tree_pages_and_record_ids_cover_the_tree() {
        let (_d, st, _keep, _drop) = mirror();
        let first = st.in_tree_page(None, 2).unwrap();
        assert_eq!(first.len(), 2);
        let last = first.last().unwrap();
        let rest = st
            .in_tree_page(Some((last.published.module_id, &last.published.version)), 2)
            .unwrap();
        assert_eq!(first.len() + rest.len(), 3);
        let mut ids = Vec::new();
        st.for_each_record_id(|id| ids.push(id)).unwrap();
        ids.sort();
        assert_eq!(ids, [1, 3]);
    }
}
