//! Published versions asked about again upstream, so that prune can remove
//! what the upstream has dropped.
//!
//! Every published version is asked about once per `prune.recheck_interval`:
//! the sync walks the tree in (module, version) order, a stretch per run,
//! from where the last run stopped (a [`super::Cycle`] named `recheck`), and starts a
//! new cycle when it comes to the end; `prune::recheck` sizes each stretch.
//! So a run reads only the versions it asks about, however large the tree.
//! One 404/410 deletes nothing: the version is marked `Gone` (and so pruned)
//! only once it has been missing for the grace period, it is asked again on
//! every run meanwhile, and an answer that finds it again resets the clock.

use rusqlite::{OptionalExtension, params};

use super::queue::todo_row;
use super::version::state_codes;
use super::{NotFound, Result, State, Todo, VersionState, err, retry_delay_secs};

/// The next stretch of the recheck pass: a range of the partial index of
/// what is in the tree.
pub(super) const RECHECK_PAGE: &str = concat!(
    "SELECT v.module_id, m.path, v.version, v.attempts,
                    NOT (v.named = 1 AND m.wanted = 0), v.named > 0
                 FROM versions v JOIN modules m ON m.id = v.module_id
                 WHERE v.in_tree = 1 AND (v.module_id, v.version) > (?1, ?2)
                   AND v.state IN (",
    state_codes!(Published, GraphOnly),
    ")
                   AND (m.wanted = 1 OR v.named > 0)
                 ORDER BY v.module_id, v.version LIMIT ?3"
);

/// Published versions a recheck found missing: the small partial index of
/// versions with `missing_since` (migration 13).
pub(super) const RECHECKS_NOT_FOUND: &str = concat!(
    "SELECT v.module_id, m.path, v.version, v.attempts,
                    NOT (v.named = 1 AND m.wanted = 0), v.named > 0
                 FROM versions v JOIN modules m ON m.id = v.module_id
                 WHERE v.missing_since IS NOT NULL AND v.in_tree = 1
                   AND v.state IN (",
    state_codes!(Published, GraphOnly),
    ")
                 ORDER BY v.module_id, v.version LIMIT ?1"
);

impl State {
    /// Records a 404/410 for a published version asked about again: it is
    /// marked gone (and then pruned) only once it has been missing for
    /// `grace_secs`, so one bad answer from a proxy deletes nothing.
    pub fn mark_recheck_not_found(
        &mut self,
        module_id: i64,
        version: &str,
        error: &str,
        now: i64,
        grace_secs: i64,
    ) -> Result<NotFound> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot record recheck", x);
        let since: Option<i64> = self
            .conn
            .query_row(
                "SELECT missing_since FROM versions WHERE module_id = ?1 AND version = ?2",
                params![module_id, version],
                |r| r.get(0),
            )
            .optional()
            .map_err(e)?
            .flatten();
        let since = since.unwrap_or(now);
        if now.saturating_sub(since) >= grace_secs {
            self.conn
                .execute(
                    "UPDATE versions SET state = ?5, last_error = ?3, checked_at = ?4, next_attempt = NULL
                     WHERE module_id = ?1 AND version = ?2",
                    params![module_id, version, error, now, VersionState::Gone],
                )
                .map_err(e)?;
            Ok(NotFound::Gone {
                missing_since: since,
            })
        } else {
            // `checked_at` stays: the version is asked about again next run.
            self.conn
                .execute(
                    "UPDATE versions SET missing_since = ?3, last_error = ?4
                     WHERE module_id = ?1 AND version = ?2",
                    params![module_id, version, since, error],
                )
                .map_err(e)?;
            Ok(NotFound::NotYet {
                retry_at: now + retry_delay_secs(1),
            })
        }
    }

    /// Up to `limit` published versions in the tree after `after`, in
    /// (module id, version) order: the next stretch of the recheck cycle,
    /// read through the partial index of what is in the tree.
    pub fn recheck_page(&self, after: Option<(i64, &str)>, limit: usize) -> Result<Vec<Todo>> {
        let (aid, aver) = after.unwrap_or((-1, ""));
        self.query_vec(
            "cannot list rechecks",
            RECHECK_PAGE,
            params![aid, aver, limit as i64],
            todo_row,
        )
    }

    /// Published versions the upstream answered 404/410 for at their last
    /// recheck, within the grace period: asked again on every run until they
    /// are found or gone (at most `limit`; a small partial index holds them).
    pub fn rechecks_not_found(&self, limit: usize) -> Result<Vec<Todo>> {
        self.query_vec(
            "cannot list rechecks",
            RECHECKS_NOT_FOUND,
            params![limit as i64],
            todo_row,
        )
    }

    /// Records that the upstream still has these versions.
    pub fn mark_checked(&mut self, versions: &[(i64, String)], now: i64) -> Result<()> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot record rechecks", x);
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut up = tx
                .prepare_cached(
                    "UPDATE versions SET checked_at = ?3, missing_since = NULL WHERE module_id = ?1 AND version = ?2",
                )
                .map_err(e)?;
            for (id, v) in versions {
                up.execute(params![id, v, now]).map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{entry, open_temp};
    use super::super::version::state_code;
    use super::*;

    #[test]
    fn recheck_not_found_deletes_nothing_within_the_grace_period() {
        let (_d, mut st) = open_temp();
        st.record_index_page(&[entry("golang.org/x/a", "v1.0.0")], &|_| true, "t")
            .unwrap();
        let t = st.todo_page(None, 10, 0, false).unwrap().remove(0);
        st.conn
            .execute(
                concat!(
                    "UPDATE versions SET state = ",
                    state_code!(Published),
                    ", in_tree = 1"
                ),
                [],
            )
            .unwrap();
        let r = st
            .mark_recheck_not_found(t.module_id, &t.version, "404", 100, 50)
            .unwrap();
        assert!(matches!(r, NotFound::NotYet { .. }));
        assert_eq!(st.counts().unwrap().published, 1);
        // Seen again: the clock keeps running from the first 404.
        let r = st
            .mark_recheck_not_found(t.module_id, &t.version, "404", 150, 50)
            .unwrap();
        assert_eq!(r, NotFound::Gone { missing_since: 100 });
        assert_eq!(st.counts().unwrap().gone, 1);
        // A recheck that finds it again resets the clock.
        st.conn
            .execute(
                concat!(
                    "UPDATE versions SET state = ",
                    state_code!(Published),
                    ", missing_since = 100"
                ),
                [],
            )
            .unwrap();
        st.mark_checked(&[(t.module_id, t.version.clone())], 200)
            .unwrap();
        let r = st
            .mark_recheck_not_found(t.module_id, &t.version, "404", 210, 50)
            .unwrap();
        assert!(matches!(r, NotFound::NotYet { .. }));
    }
}
