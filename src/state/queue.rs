//! The work queue: which versions are due, and what each attempt at one did.
//!
//! A version is due when it is `Pending`, or `Failed`/`Missing` and its retry
//! time has come; `--retry-failed` makes every failed, missing or gone version
//! of a wanted module due now. Due versions are handed out a page at a time
//! (keyset pagination on module id and version), so the whole to-do list is
//! never held in memory. Failures back off (one minute, doubling, at most six
//! hours); a 404/410 is "not yet" for a grace period before it is "gone", so
//! one lagging proxy never loses versions (published versions asked about
//! again follow the same rule, in [`super::rechecks`]). Publishing and
//! requeueing (repairs) end here too: both mark the module's `@v/list` and
//! `@latest` for rewriting in the same transaction.

use rusqlite::{OptionalExtension, params};

use super::version::{state_code, state_codes};
use super::{Published, Result, State, StateError, Todo, VersionState, err};

/// The work queue at the start of a sync.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TodoCounts {
    /// Versions to fetch now.
    pub due: u64,
    /// Failed earlier, waiting for their retry time.
    pub deferred: u64,
    /// Not on the upstream yet, waiting for their retry time.
    pub missing: u64,
}

/// What a 404/410 meant for a version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotFound {
    /// Missing for less than the grace period: asked again at `retry_at`.
    NotYet { retry_at: i64 },
    /// Missing since `missing_since`, longer than the grace period.
    Gone { missing_since: i64 },
}

/// The delay before a failed version is tried again, by number of failed
/// attempts: one minute, doubling, at most six hours. A cron job every few
/// minutes retries a passing failure on its next run and does not hammer a
/// persistent one.
pub fn retry_delay_secs(attempts: i64) -> i64 {
    let exp = attempts.clamp(1, 20) - 1;
    (60i64 << exp).min(6 * 3600)
}

// The state lists are literal so that SQLite uses the partial index
// `versions_todo` (a bound parameter cannot prove its condition, and neither
// can a single `state = <code>` term: SQLite only matches the index's own `IN` term). Without
// it each count scans every version: on a mirror that knows the whole index
// (a million rows), two scans were most of a no-op sync.
const COUNT_DUE: &str = concat!(
    "SELECT count(*) FROM versions
     WHERE state IN (",
    state_codes!(Pending, Failed, Missing),
    ")
       AND (state = ",
    state_code!(Pending),
    " OR ?2 OR next_attempt IS NULL OR next_attempt <= ?1)"
);
const COUNT_DEFERRED: &str = concat!(
    "SELECT count(*) FROM versions
     WHERE state IN (",
    state_codes!(Pending, Failed, Missing),
    ") AND state = ",
    state_code!(Failed),
    " AND NOT ?2 AND next_attempt > ?1"
);
const COUNT_MISSING: &str = concat!(
    "SELECT count(*) FROM versions
     WHERE state IN (",
    state_codes!(Pending, Failed, Missing),
    ") AND state = ",
    state_code!(Missing),
    " AND NOT ?2 AND next_attempt > ?1"
);

/// Held versions old enough now (`policy.min_age`): due again, to be
/// decided anew. Through the partial index of held and denied versions.
const COUNT_RIPE: &str = concat!(
    "SELECT count(*) FROM versions
     WHERE state IN (",
    state_codes!(Held, Denied),
    ") AND state = ",
    state_code!(Held),
    " AND next_attempt <= ?1"
);

/// Due versions after a (module id, version): a range of the work queue's
/// partial index (ordered like the table), so a sync that has a few new
/// versions to fetch reads those, not every version; and held versions old
/// enough now (`policy.min_age`), through the partial index of held and
/// denied versions. Both arms read only what is due.
pub(super) const TODO_PAGE: &str = concat!(
    "SELECT * FROM (SELECT v.module_id, m.path, v.version, v.attempts,
        NOT (v.named = 1 AND m.wanted = 0), v.named > 0
     FROM versions v JOIN modules m ON m.id = v.module_id
     WHERE v.state IN (",
    state_codes!(Pending, Failed, Missing),
    ")
       AND (v.state = ",
    state_code!(Pending),
    " OR ?3 OR v.next_attempt IS NULL OR v.next_attempt <= ?2)
       AND (v.module_id, v.version) > (?4, ?5)
     ORDER BY v.module_id, v.version
     LIMIT ?1)
     UNION ALL
     SELECT * FROM (SELECT v.module_id, m.path, v.version, v.attempts,
        NOT (v.named = 1 AND m.wanted = 0), v.named > 0
     FROM versions v JOIN modules m ON m.id = v.module_id
     WHERE v.state IN (",
    state_codes!(Held, Denied),
    ") AND v.state = ",
    state_code!(Held),
    " AND v.next_attempt <= ?2
       AND (v.module_id, v.version) > (?4, ?5)
     ORDER BY v.module_id, v.version
     LIMIT ?1)
     ORDER BY 1, 3
     LIMIT ?1"
);

/// The same with `--retry-failed`, which also brings back gone versions of
/// wanted modules: those have no index (an operator's one-off, not a
/// routine run), so this one reads the table.
const TODO_PAGE_RETRYING: &str = concat!(
    "SELECT v.module_id, m.path, v.version, v.attempts,
        NOT (v.named = 1 AND m.wanted = 0), v.named > 0
     FROM versions v JOIN modules m ON m.id = v.module_id
     WHERE ((v.state IN (",
    state_codes!(Pending, Failed, Missing),
    ")
             AND (v.state = ",
    state_code!(Pending),
    " OR ?3 OR v.next_attempt IS NULL OR v.next_attempt <= ?2))
            OR (?3 AND v.state = ",
    state_code!(Gone),
    " AND v.in_tree = 0 AND m.wanted = 1)
            OR (v.state = ",
    state_code!(Held),
    " AND v.next_attempt <= ?2))
       AND (v.module_id, v.version) > (?4, ?5)
     ORDER BY v.module_id, v.version
     LIMIT ?1"
);

impl State {
    /// How many versions are due now, how many failed ones wait for their
    /// retry time, and how many the upstream did not have yet. With
    /// `retry_failed`, every failed, missing or gone version of a wanted
    /// module is due now.
    pub fn count_todo(&self, now: i64, retry_failed: bool) -> Result<TodoCounts> {
        let count = |sql: &str| -> Result<u64> {
            self.conn
                .query_row(sql, params![now, retry_failed], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
                .map_err(|e| self.err("cannot count work", e))
        };
        let mut due = count(COUNT_DUE)?;
        due += self
            .conn
            .query_row(COUNT_RIPE, [now], |r| r.get::<_, i64>(0))
            .map_err(|e| self.err("cannot count work", e))? as u64;
        if retry_failed {
            due += self
                .conn
                .query_row(
                    "SELECT count(*) FROM versions v JOIN modules m ON m.id = v.module_id
                         WHERE v.state = ?1 AND v.in_tree = 0 AND m.wanted = 1",
                    [VersionState::Gone],
                    |r| r.get::<_, i64>(0),
                )
                .map_err(|e| self.err("cannot count work", e))? as u64;
        }
        Ok(TodoCounts {
            due,
            deferred: count(COUNT_DEFERRED)?,
            missing: count(COUNT_MISSING)?,
        })
    }

    /// The next `limit` due versions after `after` (keyset pagination, so the
    /// whole to-do list is never held in memory).
    pub fn todo_page(
        &self,
        after: Option<(i64, &str)>,
        limit: usize,
        now: i64,
        retry_failed: bool,
    ) -> Result<Vec<Todo>> {
        let (aid, aver) = after.unwrap_or((-1, ""));
        self.query_vec(
            "cannot list work",
            if retry_failed {
                TODO_PAGE_RETRYING
            } else {
                TODO_PAGE
            },
            params![limit as i64, now, retry_failed, aid, aver],
            todo_row,
        )
    }

    /// A version's state, if the database knows the version.
    pub fn version_state(&self, module_id: i64, version: &str) -> Result<Option<VersionState>> {
        self.conn
            .query_row(
                "SELECT state FROM versions WHERE module_id = ?1 AND version = ?2",
                params![module_id, version],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| {
                self.err(
                    &format!("cannot read version {version} of module {module_id}"),
                    e,
                )
            })
    }

    /// Records a failed attempt; the version is retried after a growing delay.
    /// A version whose files are in the tree keeps its state (a failed repair
    /// does not unpublish it).
    pub fn mark_failed(
        &mut self,
        module_id: i64,
        version: &str,
        error: &str,
        now: i64,
    ) -> Result<()> {
        let attempts: i64 = self
            .conn
            .query_row(
                "SELECT attempts FROM versions WHERE module_id = ?1 AND version = ?2",
                params![module_id, version],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err("cannot record failure", e))?
            .unwrap_or(0)
            + 1;
        self.conn
            .execute(
                "UPDATE versions SET state = CASE WHEN in_tree = 1 THEN state ELSE ?6 END,
                        attempts = ?3, next_attempt = ?4, last_error = ?5
                 WHERE module_id = ?1 AND version = ?2",
                params![
                    module_id,
                    version,
                    attempts,
                    now + retry_delay_secs(attempts),
                    error,
                    VersionState::Failed
                ],
            )
            .map_err(|e| self.err("cannot record failure", e))?;
        Ok(())
    }

    /// Records that the upstream does not have the version (404/410).
    pub fn mark_gone(
        &mut self,
        module_id: i64,
        version: &str,
        error: &str,
        now: i64,
    ) -> Result<()> {
        self.conn
            .execute(
                "UPDATE versions SET state = ?5, last_error = ?3, checked_at = ?4, next_attempt = NULL
                 WHERE module_id = ?1 AND version = ?2",
                params![module_id, version, error, now, VersionState::Gone],
            )
            .map_err(|e| self.err("cannot record missing version", e))?;
        Ok(())
    }

    /// Records a 404/410 for a version being fetched. A version the index or
    /// a seed's list named is "not yet there" ([`VersionState::Missing`],
    /// retried with backoff) until it has been missing for `grace_secs`; only
    /// then is it [`VersionState::Gone`].
    pub fn mark_not_found(
        &mut self,
        module_id: i64,
        version: &str,
        error: &str,
        now: i64,
        grace_secs: i64,
    ) -> Result<NotFound> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot record missing version", x);
        let tx = self.conn.transaction().map_err(e)?;
        let row: Option<(i64, Option<i64>)> = tx
            .query_row(
                "SELECT attempts, missing_since FROM versions WHERE module_id = ?1 AND version = ?2",
                params![module_id, version],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(e)?;
        let Some((attempts, since)) = row else {
            return Err(StateError {
                path: self.path.clone(),
                message: format!(
                    "cannot record missing version {module_id}/{version}: not in the database"
                ),
                source: None,
            });
        };
        let since = since.unwrap_or(now);
        let attempts = attempts + 1;
        let outcome = if now.saturating_sub(since) >= grace_secs {
            NotFound::Gone {
                missing_since: since,
            }
        } else {
            NotFound::NotYet {
                retry_at: now + retry_delay_secs(attempts),
            }
        };
        // A version being repaired (files in the tree, not listed) follows the
        // same rule: it stays unlisted while missing, and prune removes its
        // files only once it is gone.
        let (state, next) = match outcome {
            NotFound::Gone { .. } => (VersionState::Gone, None),
            NotFound::NotYet { retry_at } => (VersionState::Missing, Some(retry_at)),
        };
        tx.execute(
            "UPDATE versions SET state = ?3,
                    attempts = ?4, next_attempt = ?5, last_error = ?6, missing_since = ?7,
                    checked_at = ?8
             WHERE module_id = ?1 AND version = ?2",
            params![module_id, version, state, attempts, next, error, since, now],
        )
        .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(outcome)
    }

    /// Records published versions and marks their modules' indexes for rewriting,
    /// in one transaction; `served_heads` are the tree sizes of the lookups
    /// published with them.
    pub fn mark_published(
        &mut self,
        items: &[Published],
        served_heads: &[i64],
        now: i64,
    ) -> Result<()> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot record published versions", x);
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut up = tx
                .prepare_cached(
                    "UPDATE versions SET state = ?16, in_tree = 1, attempts = 0, next_attempt = NULL, last_error = NULL, missing_since = NULL,
                        info_time = ?3, zip_h1 = ?4, mod_h1 = ?5, info_size = ?6, mod_size = ?7, zip_size = ?8,
                        info_mtime = ?9, mod_mtime = ?10, zip_mtime = ?11, record_id = ?12,
                        published_at = ?13, checked_at = ?13, zip_sha256 = ?14, info_sha256 = ?15
                     WHERE module_id = ?1 AND version = ?2",
                )
                .map_err(e)?;
            let mut dirty = tx
                .prepare_cached("UPDATE modules SET dirty = 1 WHERE id = ?1")
                .map_err(e)?;
            for p in items {
                up.execute(params![
                    p.module_id,
                    p.version,
                    p.info_time,
                    p.zip_h1,
                    p.mod_h1,
                    p.info_size,
                    p.mod_size,
                    p.zip.then_some(p.zip_size),
                    p.info_mtime,
                    p.mod_mtime,
                    p.zip.then_some(p.zip_mtime),
                    p.record_id,
                    now,
                    p.zip_sha256,
                    p.info_sha256,
                    if p.zip {
                        VersionState::Published
                    } else {
                        VersionState::GraphOnly
                    }
                ])
                .map_err(e)?;
                dirty.execute([p.module_id]).map_err(e)?;
            }
            let mut serve = tx
                .prepare_cached("UPDATE sumdb_trees SET served = 1 WHERE size = ?1")
                .map_err(e)?;
            for s in served_heads {
                serve.execute([s]).map_err(e)?;
            }
            // The feed names whole versions only: a graph-only one (no zip,
            // not listed) is nothing a follower could fetch.
            let keys: Vec<(i64, String)> = items
                .iter()
                .filter(|p| p.zip)
                .map(|p| (p.module_id, p.version.clone()))
                .collect();
            super::feed::append(&tx, super::FeedOp::Publish, &keys).map_err(e)?;
        }
        tx.commit().map_err(e)?;
        Ok(())
    }

    /// Queues published versions to be fetched again (repairs): they stop being
    /// listed until republished, and their modules' indexes are rewritten.
    pub fn requeue(&mut self, versions: &[(i64, String)]) -> Result<()> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot queue versions", x);
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut up = tx
                .prepare_cached(
                    "UPDATE versions SET state = ?3, attempts = 0, next_attempt = NULL
                     WHERE module_id = ?1 AND version = ?2",
                )
                .map_err(e)?;
            let mut dirty = tx
                .prepare_cached("UPDATE modules SET dirty = 1 WHERE id = ?1")
                .map_err(e)?;
            for (id, v) in versions {
                up.execute(params![id, v, VersionState::Pending])
                    .map_err(e)?;
                dirty.execute([id]).map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }
}

pub(super) fn todo_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Todo> {
    Ok(Todo {
        module_id: r.get(0)?,
        path: r.get(1)?,
        version: r.get(2)?,
        attempts: r.get(3)?,
        zip: r.get(4)?,
        pinned: r.get(5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{entry, open_temp};
    use super::*;

    /// Issue 16: the counts a sync starts with read the partial index, not
    /// every version the index ever named.
    #[test]
    fn todo_counts_use_the_partial_index() {
        let (_d, st) = open_temp();
        for sql in [COUNT_DUE, COUNT_DEFERRED, COUNT_MISSING, COUNT_RIPE] {
            let index = if sql == COUNT_RIPE {
                "INDEX versions_policy"
            } else {
                "USING INDEX versions_todo"
            };
            let mut stmt = st
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            let detail = |r: &rusqlite::Row<'_>| r.get::<_, String>(3);
            let plan: Vec<String> = if sql == COUNT_RIPE {
                stmt.query_map(params![0i64], detail)
                    .unwrap()
                    .collect::<std::result::Result<_, _>>()
            } else {
                stmt.query_map(params![0i64, false], detail)
                    .unwrap()
                    .collect::<std::result::Result<_, _>>()
            }
            .unwrap();
            assert!(plan.iter().any(|p| p.contains(index)), "{sql}: {plan:?}");
        }
    }

    #[test]
    fn todo_pages_cover_everything_once() {
        let (_d, mut st) = open_temp();
        let entries: Vec<_> = (0..25)
            .map(|i| entry(&format!("golang.org/m{}", i % 4), &format!("v1.0.{i}")))
            .collect();
        st.record_index_page(&entries, &|_| true, "t").unwrap();
        let mut seen = vec![];
        let mut after: Option<(i64, String)> = None;
        loop {
            let page = st
                .todo_page(after.as_ref().map(|(a, b)| (*a, b.as_str())), 7, 0, false)
                .unwrap();
            if page.is_empty() {
                break;
            }
            after = page.last().map(|t| (t.module_id, t.version.clone()));
            seen.extend(page.into_iter().map(|t| t.version));
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 25);
    }

    fn tc(due: u64, deferred: u64) -> TodoCounts {
        TodoCounts {
            due,
            deferred,
            missing: 0,
        }
    }

    /// Issue 9.7: one run of 404s must not lose versions for good.
    #[test]
    fn not_found_is_not_yet_until_the_grace_period_ends() {
        let (_d, mut st) = open_temp();
        st.record_index_page(&[entry("golang.org/x/a", "v1.0.0")], &|_| true, "t")
            .unwrap();
        let t = st.todo_page(None, 10, 1000, false).unwrap().remove(0);
        let grace = 3600;
        let r = st
            .mark_not_found(t.module_id, &t.version, "404", 1000, grace)
            .unwrap();
        assert_eq!(r, NotFound::NotYet { retry_at: 1060 });
        assert_eq!(
            st.version_state(t.module_id, &t.version).unwrap(),
            Some(VersionState::Missing)
        );
        let waiting = st.count_todo(1000, false).unwrap();
        assert_eq!((waiting.due, waiting.deferred, waiting.missing), (0, 0, 1));
        // Due again after the backoff, and at once with --retry-failed.
        assert_eq!(st.count_todo(1060, false).unwrap().due, 1);
        assert_eq!(st.count_todo(1000, true).unwrap().due, 1);
        // Still missing just before the grace period ends: not gone.
        let r = st
            .mark_not_found(t.module_id, &t.version, "404", 1000 + grace - 1, grace)
            .unwrap();
        assert!(matches!(r, NotFound::NotYet { .. }));
        let r = st
            .mark_not_found(t.module_id, &t.version, "404", 1000 + grace, grace)
            .unwrap();
        assert_eq!(
            r,
            NotFound::Gone {
                missing_since: 1000
            }
        );
        assert_eq!(
            st.version_state(t.module_id, &t.version).unwrap(),
            Some(VersionState::Gone)
        );
        assert_eq!(st.count_todo(1000 + grace + 10_000, false).unwrap().due, 0);
        // --retry-failed brings a gone version back.
        assert_eq!(st.count_todo(1000 + grace, true).unwrap().due, 1);
        let again = st.todo_page(None, 10, 1000 + grace, true).unwrap();
        assert_eq!(again.len(), 1);
    }

    #[test]
    fn failures_back_off_and_can_be_forced() {
        let (_d, mut st) = open_temp();
        st.record_index_page(&[entry("golang.org/x/a", "v1.0.0")], &|_| true, "t")
            .unwrap();
        let t = &st.todo_page(None, 10, 1000, false).unwrap()[0];
        st.mark_failed(t.module_id, &t.version, "boom", 1000)
            .unwrap();
        assert_eq!(
            st.version_state(t.module_id, &t.version).unwrap(),
            Some(VersionState::Failed)
        );
        assert_eq!(st.count_todo(1000, false).unwrap(), tc(0, 1));
        assert_eq!(st.count_todo(1000, true).unwrap(), tc(1, 0));
        assert_eq!(st.count_todo(1000 + 60, false).unwrap(), tc(1, 0));
        st.mark_failed(t.module_id, &t.version, "boom again", 1100)
            .unwrap();
        assert_eq!(st.count_todo(1100 + 60, false).unwrap(), tc(0, 1));
        assert_eq!(st.count_todo(1100 + 120, false).unwrap(), tc(1, 0));
        let f = st.failures(10).unwrap();
        assert_eq!(f[0].attempts, 2);
        assert_eq!(f[0].error, "boom again");
    }

    #[test]
    fn retry_delays_grow_and_cap() {
        assert_eq!(retry_delay_secs(1), 60);
        assert_eq!(retry_delay_secs(2), 120);
        assert_eq!(retry_delay_secs(5), 960);
        assert_eq!(retry_delay_secs(50), 6 * 3600);
    }
}
