//! Published versions asked about again upstream, so that prune can remove
//! what the upstream has dropped.
//!
//! Every published version is asked about once per `prune.recheck_interval`:
//! a sync reads the versions whose last check is older than that, oldest
//! first, through an index of the tree by last check, and stops at the first
//! one not due: so a run reads only the versions it asks about, however
//! large the tree (`prune::recheck` bounds how many per run). Publishing
//! counts as a check. One 404/410 deletes nothing: the version is marked `Gone` (and so pruned)
//! only once it has been missing for the grace period, it is asked again on
//! every run meanwhile, and an answer that finds it again resets the clock.

use rusqlite::{OptionalExtension, params};

use super::queue::todo_row;
use super::version::state_codes;
use super::{NotFound, Result, State, Todo, VersionState, err, retry_delay_secs};

/// Versions in the tree due a recheck, oldest check first, after a
/// (checked_at, module id, version): a range of the partial index of the
/// tree by last check (`versions_checked`), which ends at the cutoff.
pub(super) const DUE_RECHECKS: &str = concat!(
    "SELECT v.module_id, m.path, v.version, v.attempts,
        NOT (v.named = 1 AND m.wanted = 0), v.named > 0, v.checked_at
     FROM versions v JOIN modules m ON m.id = v.module_id
     WHERE v.in_tree = 1 AND v.checked_at <= ?1
       AND (v.checked_at, v.module_id, v.version) > (?2, ?3, ?4)
       AND v.state IN (",
    state_codes!(Published, GraphOnly),
    ")
       AND (m.wanted = 1 OR v.named > 0)
     ORDER BY v.checked_at, v.module_id, v.version LIMIT ?5"
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

    /// Up to `limit` published versions not asked about since `cutoff`,
    /// oldest check first, after `after` (its `checked_at`, module id and
    /// version: versions asked about without an answer stay due, and a
    /// run's next page starts past them). Each comes with its `checked_at`.
    pub fn due_rechecks(
        &self,
        cutoff: i64,
        after: Option<(i64, i64, &str)>,
        limit: usize,
    ) -> Result<Vec<(Todo, i64)>> {
        let (at, aid, aver) = after.unwrap_or((i64::MIN, -1, ""));
        self.query_vec(
            "cannot list rechecks",
            DUE_RECHECKS,
            params![cutoff, at, aid, aver, limit as i64],
            |r| Ok((todo_row(r)?, r.get::<_, i64>(6)?)),
        )
    }

    /// The oldest last check among versions in the tree (Unix seconds): the
    /// first entry of the index of the tree by last check.
    pub fn oldest_check(&self) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT min(checked_at) FROM versions WHERE in_tree = 1",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err("cannot read the oldest recheck", e))
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
