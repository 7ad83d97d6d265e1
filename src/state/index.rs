//! What the index (and seed modules' lists) said: every module and version,
//! recorded compactly, the cursor that says where the next walk resumes, and
//! the filter's verdict on each module.
//!
//! A page of entries and the cursor move in one transaction, so the cursor
//! never passes an entry that is not recorded (invariant 4). Versions are kept
//! even when their module is not wanted (`Seen`): a wider filter later queues
//! them without walking the index again. The read-only queries here serve
//! `sync --dry-run`, which must not change the database at all.

use rusqlite::{OptionalExtension, params};

use super::version::{state_code, state_codes};
use super::{Result, State, VersionState, err};

/// One index entry that passed validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub path: String,
    pub version: String,
    /// When the module index listed it (its `Timestamp`: the proxy's first
    /// sight, which the version's author cannot set), Unix seconds; `None`
    /// from every other source (this mirror's first sight is then the time
    /// it is recorded). `policy.min_age` counts from it.
    pub listed_at: Option<i64>,
}

impl IndexEntry {
    /// An entry no index dated.
    pub fn new(path: impl Into<String>, version: impl Into<String>) -> IndexEntry {
        IndexEntry {
            path: path.into(),
            version: version.into(),
            listed_at: None,
        }
    }
}

/// What recording one index page changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageStats {
    /// Entries not seen before.
    pub new: u64,
    /// Of those, entries the filter wants (now pending).
    pub new_wanted: u64,
}

/// What a filter change did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FilterChange {
    pub newly_wanted_modules: u64,
    pub queued_versions: u64,
    pub unwanted_modules: u64,
}

impl State {
    /// The index timestamp to resume from, if any page was recorded.
    pub fn cursor(&self) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT since FROM cursor WHERE id = 1", [], |r| r.get(0))
            .optional()
            .map_err(|e| self.err("cannot read cursor", e))
    }

    /// Records one index page and moves the cursor in the same transaction, so
    /// the cursor never passes an entry that is not recorded.
    pub fn record_index_page(
        &mut self,
        entries: &[IndexEntry],
        wants: &dyn Fn(&str) -> bool,
        new_cursor: &str,
    ) -> Result<PageStats> {
        self.record_entries(entries, wants, Some(new_cursor))
    }

    /// Records entries (from the index, or a seed module's list), moving the
    /// cursor in the same transaction when one is given.
    pub fn record_entries(
        &mut self,
        entries: &[IndexEntry],
        wants: &dyn Fn(&str) -> bool,
        new_cursor: Option<&str>,
    ) -> Result<PageStats> {
        let path = self.path.clone();
        let e = |what: &str, x: rusqlite::Error| err(&path, what, x);
        let tx = self
            .conn
            .transaction()
            .map_err(|x| e("cannot record index page", x))?;
        let mut stats = PageStats::default();
        {
            let mut find = tx
                .prepare_cached("SELECT id, wanted FROM modules WHERE path = ?1")
                .map_err(|x| e("cannot record index page", x))?;
            let mut add_module = tx
                .prepare_cached("INSERT INTO modules(path, wanted) VALUES (?1, ?2)")
                .map_err(|x| e("cannot record index page", x))?;
            let mut add_version = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO versions(module_id, version, state, first_seen) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(|x| e("cannot record index page", x))?;
            // The index's timestamp is the earliest sight there is: it
            // replaces a later first sight through another source.
            let mut listed_earlier = tx
                .prepare_cached(
                    "UPDATE versions SET first_seen = ?3
                     WHERE module_id = ?1 AND version = ?2 AND (first_seen IS NULL OR first_seen > ?3)",
                )
                .map_err(|x| e("cannot record index page", x))?;
            let now = crate::clock::now();
            // A page often names one module several times (its versions are
            // tagged together): look each up once per page.
            let mut known: std::collections::HashMap<&str, (i64, bool)> =
                std::collections::HashMap::new();
            for entry in entries {
                let found: Option<(i64, bool)> = match known.get(entry.path.as_str()) {
                    Some(&f) => Some(f),
                    None => find
                        .query_row([&entry.path], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                        .map_err(|x| e("cannot record index page", x))?,
                };
                let (id, wanted) = match found {
                    Some(f) => f,
                    None => {
                        let wanted = wants(&entry.path);
                        add_module
                            .execute(params![entry.path, wanted])
                            .map_err(|x| e("cannot record index page", x))?;
                        (tx.last_insert_rowid(), wanted)
                    }
                };
                known.insert(entry.path.as_str(), (id, wanted));
                let st = if wanted {
                    VersionState::Pending
                } else {
                    VersionState::Seen
                };
                let n = add_version
                    .execute(params![
                        id,
                        entry.version,
                        st,
                        entry.listed_at.unwrap_or(now)
                    ])
                    .map_err(|x| e("cannot record index page", x))?;
                if n == 0
                    && let Some(at) = entry.listed_at
                {
                    listed_earlier
                        .execute(params![id, entry.version, at])
                        .map_err(|x| e("cannot record index page", x))?;
                }
                if n > 0 {
                    stats.new += 1;
                    if wanted {
                        stats.new_wanted += 1;
                    }
                }
            }
        }
        let counted = super::counts::inserted(&tx, VersionState::Pending, true, stats.new_wanted)
            .and_then(|()| {
                super::counts::inserted(
                    &tx,
                    VersionState::Seen,
                    false,
                    stats.new - stats.new_wanted,
                )
            });
        counted.map_err(|x| e("cannot record index page", x))?;
        if let Some(c) = new_cursor {
            tx.execute(
                "INSERT INTO cursor(id, since) VALUES (1, ?1) ON CONFLICT(id) DO UPDATE SET since = excluded.since",
                [c],
            )
            .map_err(|x| e("cannot move cursor", x))?;
        }
        tx.commit().map_err(|x| e("cannot record index page", x))?;
        Ok(stats)
    }

    /// Brings every module's `wanted` flag in line with `filter` when the
    /// filter changed since the last run. Newly wanted modules get their known
    /// versions queued (backfill, without walking the index again); versions of
    /// modules no longer wanted stop being fetched (pruning removes their files).
    pub fn apply_filter(
        &mut self,
        fingerprint: &str,
        wants: &dyn Fn(&str) -> bool,
    ) -> Result<FilterChange> {
        if self.meta("filter")?.as_deref() == Some(fingerprint) {
            return Ok(FilterChange::default());
        }
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot apply filter", x);
        let tx = self.conn.transaction().map_err(e)?;
        let mut change = FilterChange::default();
        {
            let mut all = tx
                .prepare("SELECT id, path, wanted FROM modules")
                .map_err(e)?;
            let mut rows = all.query([]).map_err(e)?;
            let mut set_wanted = tx
                .prepare("UPDATE modules SET wanted = ?2 WHERE id = ?1")
                .map_err(e)?;
            let mut queue = tx
                .prepare(
                    concat!("UPDATE versions SET state = ?2, attempts = 0, next_attempt = NULL
                     WHERE module_id = ?1 AND state IN (", state_codes!(Seen, Gone, Missing), ")
                       AND in_tree = 0
                       AND NOT EXISTS (SELECT 1 FROM feed_withdrawn w
                                       WHERE w.module_id = versions.module_id AND w.version = versions.version)"),
                )
                .map_err(e)?;
            // A graph-only version of a newly wanted module needs its zip now.
            let mut upgrade = tx
                .prepare(concat!(
                    "UPDATE versions SET state = ?2, attempts = 0, next_attempt = NULL
                     WHERE module_id = ?1 AND state = ",
                    state_code!(GraphOnly)
                ))
                .map_err(e)?;
            // What a file still names stays wanted.
            let mut unqueue = tx
                .prepare(concat!(
                    "UPDATE versions SET state = ?2
                     WHERE module_id = ?1 AND state IN (",
                    state_codes!(Pending, Failed, Missing, Held),
                    ")
                       AND named = 0"
                ))
                .map_err(e)?;
            // `prune.keep` counts from here for what the tree holds of it.
            let mut unwanted_since = tx
                .prepare(
                    "UPDATE versions SET unwanted_since = ?2 WHERE module_id = ?1 AND in_tree = 1",
                )
                .map_err(e)?;
            let unwanted_at = crate::clock::now();
            while let Some(row) = rows.next().map_err(e)? {
                let id: i64 = row.get(0).map_err(e)?;
                let module: String = row.get(1).map_err(e)?;
                let was: bool = row.get(2).map_err(e)?;
                let now = wants(&module);
                if now == was {
                    continue;
                }
                set_wanted.execute(params![id, now]).map_err(e)?;
                if now {
                    change.newly_wanted_modules += 1;
                    change.queued_versions += queue
                        .execute(params![id, VersionState::Pending])
                        .map_err(e)? as u64;
                    change.queued_versions += upgrade
                        .execute(params![id, VersionState::Pending])
                        .map_err(e)? as u64;
                } else {
                    change.unwanted_modules += 1;
                    unqueue
                        .execute(params![id, VersionState::Seen])
                        .map_err(e)?;
                    unwanted_since
                        .execute(params![id, unwanted_at])
                        .map_err(e)?;
                }
            }
        }
        tx.execute(
            "INSERT INTO meta(key, value) VALUES ('filter', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [fingerprint],
        )
        .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(change)
    }

    // ---- read-only previews (sync --dry-run) --------------------------------

    /// For each entry, whether the database already knows the version.
    pub fn known_versions(&self, entries: &[IndexEntry]) -> Result<Vec<bool>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT 1 FROM versions v JOIN modules m ON m.id = v.module_id
                     WHERE m.path = ?1 AND v.version = ?2",
            )
            .map_err(|e| self.err("cannot look up versions", e))?;
        entries
            .iter()
            .map(|e| {
                stmt.exists(params![e.path, e.version])
                    .map_err(|x| self.err("cannot look up versions", x))
            })
            .collect()
    }

    /// The filter fingerprint the wanted flags were last set from.
    pub fn filter_fingerprint(&self) -> Result<Option<String>> {
        self.meta("filter")
    }

    /// Modules after `after_id`, in id order, with their stored wanted flag.
    pub fn modules_page(&self, after_id: i64, limit: usize) -> Result<Vec<(i64, String, bool)>> {
        self.query_vec(
            "cannot list modules",
            "SELECT id, path, wanted FROM modules WHERE id > ?1 ORDER BY id LIMIT ?2",
            params![after_id, limit as i64],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
    }

    /// Versions of a module that a filter now wanting it would queue (the
    /// versions `apply_filter` backfills), after `after`, in order.
    pub fn backfill_page(&self, module_id: i64, after: &str, limit: usize) -> Result<Vec<String>> {
        self.query_vec(
            "cannot list versions",
            concat!(
                "SELECT version FROM versions
                 WHERE module_id = ?1 AND state IN (",
                state_codes!(Seen, Gone, Missing),
                ")
                   AND in_tree = 0 AND version > ?2
                 ORDER BY version LIMIT ?3"
            ),
            params![module_id, after, limit as i64],
            |r| r.get(0),
        )
    }

    /// Looks up a module by path: its id and whether the filter wants it.
    pub fn module(&self, path: &str) -> Result<Option<(i64, bool)>> {
        self.conn
            .query_row(
                "SELECT id, wanted FROM modules WHERE path = ?1",
                [path],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err("cannot read module", e))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{entry, open_temp};
    use super::*;

    #[test]
    fn index_pages_dedupe_and_move_cursor_together() {
        let (_d, mut st) = open_temp();
        let wants = |p: &str| p.starts_with("golang.org/");
        let s = st
            .record_index_page(
                &[
                    entry("golang.org/x/mod", "v0.1.0"),
                    entry("example.com/a", "v1.0.0"),
                ],
                &wants,
                "2024-01-01T00:00:00Z",
            )
            .unwrap();
        assert_eq!(
            s,
            PageStats {
                new: 2,
                new_wanted: 1
            }
        );
        // `since` is inclusive: the next page repeats the last entry.
        let s = st
            .record_index_page(
                &[
                    entry("example.com/a", "v1.0.0"),
                    entry("golang.org/x/mod", "v0.2.0"),
                ],
                &wants,
                "2024-01-02T00:00:00Z",
            )
            .unwrap();
        assert_eq!(
            s,
            PageStats {
                new: 1,
                new_wanted: 1
            }
        );
        assert_eq!(
            st.cursor().unwrap().as_deref(),
            Some("2024-01-02T00:00:00Z")
        );
        let todo = st.count_todo(0, false).unwrap();
        assert_eq!((todo.due, todo.deferred), (2, 0));
        let (a, _) = st.module("example.com/a").unwrap().unwrap();
        assert_eq!(
            st.version_state(a, "v1.0.0").unwrap(),
            Some(VersionState::Seen)
        );
    }

    #[test]
    fn filter_change_backfills_and_unqueues() {
        let (_d, mut st) = open_temp();
        let narrow = |p: &str| p.starts_with("golang.org/x/a");
        st.apply_filter("narrow", &narrow).unwrap();
        st.record_index_page(
            &[
                entry("golang.org/x/a", "v1.0.0"),
                entry("golang.org/x/b", "v1.0.0"),
                entry("golang.org/x/b", "v1.1.0"),
            ],
            &narrow,
            "t",
        )
        .unwrap();
        assert_eq!(st.count_todo(0, false).unwrap().due, 1);
        // Same fingerprint: nothing to do.
        assert_eq!(
            st.apply_filter("narrow", &narrow).unwrap(),
            FilterChange::default()
        );
        let wide = |p: &str| p.starts_with("golang.org/x");
        let c = st.apply_filter("wide", &wide).unwrap();
        assert_eq!(c.newly_wanted_modules, 1);
        assert_eq!(c.queued_versions, 2);
        assert_eq!(st.count_todo(0, false).unwrap().due, 3);
        let none = |_: &str| false;
        let c = st.apply_filter("none", &none).unwrap();
        assert_eq!(c.unwanted_modules, 2);
        assert_eq!(st.count_todo(0, false).unwrap().due, 0);
        let (b, _) = st.module("golang.org/x/b").unwrap().unwrap();
        assert_eq!(
            st.version_state(b, "v1.1.0").unwrap(),
            Some(VersionState::Seen)
        );
    }
}
