//! The state database: the source of truth that the tree is a projection of.
//!
//! One SQLite file (WAL mode) records what the index said (every module and
//! version, compactly, so a wider filter can backfill without walking the index
//! again), what the mirror holds and with which hashes, what failed and when to
//! retry it, the index cursor, the checksum-database tree heads the mirror has
//! accepted and served, and a log of runs.
//!
//! Migrations are keyed on `PRAGMA user_version` and append-only: a released
//! migration is never edited, a change is a new entry at the end of
//! [`MIGRATIONS`].
//!
//! A `State` is used from one thread at a time (the sync pipeline gives it a
//! thread of its own); writes are batched in transactions.

pub mod db;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

pub use crate::model::{Listed, Published, Todo, missing_grace_secs};

/// Version states. A version's files are in the tree iff `in_tree = 1`.
pub mod vstate {
    /// Listed by the index, module not wanted by the filter.
    pub const SEEN: i64 = 0;
    /// Wanted, not yet mirrored.
    pub const PENDING: i64 = 1;
    /// Wanted, last attempt failed; retried after `next_attempt`.
    pub const FAILED: i64 = 2;
    /// The upstream answers 404/410 for it.
    pub const GONE: i64 = 3;
    /// Mirrored and verified.
    pub const PUBLISHED: i64 = 4;
    /// The upstream answered 404/410, but the version is known (the index or a
    /// seed's list named it): a proxy that has not caught up yet. Retried with
    /// backoff until it has been missing for the grace period, then `GONE`.
    pub const MISSING: i64 = 5;

    pub fn name(s: i64) -> &'static str {
        match s {
            SEEN => "seen",
            PENDING => "pending",
            FAILED => "failed",
            GONE => "gone",
            PUBLISHED => "published",
            MISSING => "missing",
            _ => "unknown",
        }
    }
}

/// The schema, one migration per entry. Append only.
const MIGRATIONS: &[&str] = &[
    // 1: initial schema.
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE modules (
        id     INTEGER PRIMARY KEY,
        path   TEXT NOT NULL UNIQUE,
        wanted INTEGER NOT NULL DEFAULT 0,
        -- @v/list and @latest must be rewritten from the database.
        dirty  INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE versions (
        module_id    INTEGER NOT NULL,
        version      TEXT NOT NULL,
        state        INTEGER NOT NULL,
        in_tree      INTEGER NOT NULL DEFAULT 0,
        attempts     INTEGER NOT NULL DEFAULT 0,
        next_attempt INTEGER,
        last_error   TEXT,
        info_time    TEXT,
        zip_h1       TEXT,
        mod_h1       TEXT,
        info_size    INTEGER,
        mod_size     INTEGER,
        zip_size     INTEGER,
        info_mtime   INTEGER,
        mod_mtime    INTEGER,
        zip_mtime    INTEGER,
        record_id    INTEGER,
        published_at INTEGER,
        checked_at   INTEGER,
        PRIMARY KEY (module_id, version)
    ) WITHOUT ROWID;
    CREATE INDEX versions_todo ON versions(state) WHERE state IN (1, 2);
    CREATE INDEX versions_in_tree ON versions(module_id) WHERE in_tree = 1;
    CREATE TABLE cursor (
        id    INTEGER PRIMARY KEY CHECK (id = 1),
        since TEXT NOT NULL
    );
    CREATE TABLE sumdb_trees (
        size   INTEGER PRIMARY KEY,
        hash   TEXT NOT NULL,
        note   BLOB NOT NULL,
        served INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE runs (
        id        INTEGER PRIMARY KEY,
        command   TEXT NOT NULL,
        started   INTEGER NOT NULL,
        finished  INTEGER,
        exit_code INTEGER,
        summary   TEXT
    );
    "#,
    // 2: whole-file SHA-256 of the .zip and .info as downloaded, so verify sees
    // byte-level damage that the content hash (h1:) ignores (zip metadata).
    r#"
    ALTER TABLE versions ADD COLUMN zip_sha256 TEXT;
    ALTER TABLE versions ADD COLUMN info_sha256 TEXT;
    "#,
    // 3: a 404/410 is "not yet" for a bounded time (state 5, since `missing_since`),
    // not "gone" at once: a proxy that has not caught up must not lose versions.
    r#"
    ALTER TABLE versions ADD COLUMN missing_since INTEGER;
    DROP INDEX versions_todo;
    CREATE INDEX versions_todo ON versions(state) WHERE state IN (1, 2, 5);
    "#,
];

/// A state-database failure. Always names the database file.
#[derive(Debug, thiserror::Error)]
#[error("state database `{path}`: {message}")]
pub struct StateError {
    pub path: PathBuf,
    pub message: String,
    #[source]
    pub source: Option<rusqlite::Error>,
}

pub type Result<T> = std::result::Result<T, StateError>;

/// One index entry that passed validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub path: String,
    pub version: String,
}

/// What recording one index page changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageStats {
    /// Entries not seen before.
    pub new: u64,
    /// Of those, entries the filter wants (now pending).
    pub new_wanted: u64,
}

/// A version in the tree, as `verify` reads it back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedVersion {
    pub path: String,
    pub published: Published,
}

/// A signed tree head the mirror accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredHead {
    pub size: i64,
    pub hash: String,
    pub note: Vec<u8>,
    pub served: bool,
}

/// A failed version, for reports.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    pub path: String,
    pub version: String,
    pub attempts: i64,
    pub next_attempt: Option<i64>,
    pub error: String,
}

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
    pub in_tree: i64,
    pub published_bytes: i64,
}

/// A row of the run log.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RunRecord {
    pub id: i64,
    pub command: String,
    pub started: i64,
    pub finished: Option<i64>,
    pub exit_code: Option<i64>,
    pub summary: Option<serde_json::Value>,
}

/// The delay before a failed version is tried again, by number of failed
/// attempts: one minute, doubling, at most six hours. A cron job every few
/// minutes retries a passing failure on its next run and does not hammer a
/// persistent one.
pub fn retry_delay_secs(attempts: i64) -> i64 {
    let exp = attempts.clamp(1, 20) - 1;
    (60i64 << exp).min(6 * 3600)
}

/// `path` as the path of an SQLite `file:` URI: the characters a URI gives a
/// meaning to, and every non-ASCII byte, are percent-encoded.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for b in path.as_os_str().as_encoded_bytes() {
        match b {
            b'%' | b'?' | b'#' | 0x80.. => out.push_str(&format!("%{b:02X}")),
            _ => out.push(*b as char),
        }
    }
    out
}

pub struct State {
    conn: Connection,
    path: PathBuf,
}

impl State {
    /// Opens (creating if needed) the database and brings its schema up to date.
    pub fn open(path: &Path) -> Result<State> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| StateError {
                path: path.to_path_buf(),
                message: format!("cannot create directory `{}`: {e}", dir.display()),
                source: None,
            })?;
        }
        let conn = Connection::open(path).map_err(|e| err(path, "cannot open", e))?;
        let mut state = State {
            conn,
            path: path.to_path_buf(),
        };
        state.configure()?;
        state.migrate()?;
        Ok(state)
    }

    /// Opens an existing database without writing to it (for `status`).
    pub fn open_read_only(path: &Path) -> Result<State> {
        if !path.exists() {
            return Err(StateError {
                path: path.to_path_buf(),
                message: "does not exist (has `gomirror sync` run yet?)".into(),
                source: None,
            });
        }
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| err(path, "cannot open", e))?;
        let state = State {
            conn,
            path: path.to_path_buf(),
        };
        state
            .conn
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| state.err("cannot configure", e))?;
        let v = state.user_version()?;
        if v as usize > MIGRATIONS.len() {
            return Err(state.newer_schema(v));
        }
        Ok(state)
    }

    /// Opens the database for a dry run, which must change nothing: read-only
    /// when it exists, else an empty in-memory one (a mirror that never
    /// synced knows nothing yet), so not even its file is created.
    ///
    /// Read-only alone is not enough: SQLite still creates the `-wal` and
    /// `-shm` files beside a WAL database. Unless a killed run left a `-wal`
    /// (whose transactions must be read, through the files already there),
    /// the file is opened `immutable`, which needs neither; the run lock the
    /// caller holds keeps every writer out meanwhile.
    pub fn open_for_preview(path: &Path) -> Result<State> {
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        if path.exists() && Path::new(&wal).exists() {
            return State::open_read_only(path);
        }
        if path.exists() {
            let uri = format!("file:{}?immutable=1", uri_path(path));
            let conn = Connection::open_with_flags(
                &uri,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
            )
            .map_err(|e| err(path, "cannot open", e))?;
            let state = State {
                conn,
                path: path.to_path_buf(),
            };
            let v = state.user_version()?;
            if v as usize > MIGRATIONS.len() {
                return Err(state.newer_schema(v));
            }
            return Ok(state);
        }
        let conn = Connection::open_in_memory().map_err(|e| err(path, "cannot open", e))?;
        let mut state = State {
            conn,
            path: path.to_path_buf(),
        };
        state.migrate()?;
        Ok(state)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, what: &str, e: rusqlite::Error) -> StateError {
        err(&self.path, what, e)
    }

    fn newer_schema(&self, v: i64) -> StateError {
        StateError {
            path: self.path.clone(),
            message: format!(
                "schema version {v} is newer than this gomirror understands ({}); upgrade gomirror",
                MIGRATIONS.len()
            ),
            source: None,
        }
    }

    fn configure(&mut self) -> Result<()> {
        self.conn
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| self.err("cannot configure", e))?;
        // WAL: readers (status) never block the writer; NORMAL sync is durable
        // across process crashes and only risks the last transaction on power loss,
        // which the next run redoes (the tree is checked against the database).
        self.conn
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = OFF;")
            .map_err(|e| self.err("cannot configure", e))?;
        crate::crashpoint::watch_commits(&self.conn);
        Ok(())
    }

    fn user_version(&self) -> Result<i64> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err("cannot read schema version", e))
    }

    fn migrate(&mut self) -> Result<()> {
        let current = self.user_version()?;
        if current as usize > MIGRATIONS.len() {
            return Err(self.newer_schema(current));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            let tx = self
                .conn
                .transaction()
                .map_err(|e| err(&self.path, "cannot migrate", e))?;
            tx.execute_batch(sql)
                .map_err(|e| err(&self.path, &format!("migration {} failed", i + 1), e))?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(|e| err(&self.path, "cannot migrate", e))?;
            tx.commit()
                .map_err(|e| err(&self.path, "cannot migrate", e))?;
        }
        Ok(())
    }

    // ---- meta -------------------------------------------------------------

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err("cannot read meta", e))
    }

    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map_err(|e| self.err("cannot write meta", e))?;
        Ok(())
    }

    // ---- index and cursor ---------------------------------------------------

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
                    "INSERT OR IGNORE INTO versions(module_id, version, state) VALUES (?1, ?2, ?3)",
                )
                .map_err(|x| e("cannot record index page", x))?;
            for entry in entries {
                let found: Option<(i64, bool)> = find
                    .query_row([&entry.path], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
                    .map_err(|x| e("cannot record index page", x))?;
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
                let st = if wanted {
                    vstate::PENDING
                } else {
                    vstate::SEEN
                };
                let n = add_version
                    .execute(params![id, entry.version, st])
                    .map_err(|x| e("cannot record index page", x))?;
                if n > 0 {
                    stats.new += 1;
                    if wanted {
                        stats.new_wanted += 1;
                    }
                }
            }
        }
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
                .prepare("UPDATE versions SET state = 1, attempts = 0, next_attempt = NULL WHERE module_id = ?1 AND state IN (0, 3, 5) AND in_tree = 0")
                .map_err(e)?;
            let mut unqueue = tx
                .prepare(
                    "UPDATE versions SET state = 0 WHERE module_id = ?1 AND state IN (1, 2, 5)",
                )
                .map_err(e)?;
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
                    change.queued_versions += queue.execute([id]).map_err(e)? as u64;
                } else {
                    change.unwanted_modules += 1;
                    unqueue.execute([id]).map_err(e)?;
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
            "SELECT version FROM versions WHERE module_id = ?1 AND state IN (0, 3, 5) AND in_tree = 0
                 AND version > ?2 ORDER BY version LIMIT ?3",
            params![module_id, after, limit as i64],
            |r| r.get(0),
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

    // ---- work ---------------------------------------------------------------

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
        let mut due = count(
            "SELECT count(*) FROM versions WHERE state IN (1, 2, 5) AND (state = 1 OR ?2 OR next_attempt IS NULL OR next_attempt <= ?1)",
        )?;
        if retry_failed {
            due += self
                .conn
                .query_row(
                    "SELECT count(*) FROM versions v JOIN modules m ON m.id = v.module_id
                         WHERE v.state = 3 AND v.in_tree = 0 AND m.wanted = 1",
                    [],
                    |r| r.get::<_, i64>(0),
                )
                .map_err(|e| self.err("cannot count work", e))? as u64;
        }
        Ok(TodoCounts {
            due,
            deferred: count(
                "SELECT count(*) FROM versions WHERE state = 2 AND NOT ?2 AND next_attempt > ?1",
            )?,
            missing: count(
                "SELECT count(*) FROM versions WHERE state = 5 AND NOT ?2 AND next_attempt > ?1",
            )?,
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
            "SELECT v.module_id, m.path, v.version, v.attempts
                 FROM versions v JOIN modules m ON m.id = v.module_id
                 WHERE ((v.state IN (1, 2, 5)
                         AND (v.state = 1 OR ?3 OR v.next_attempt IS NULL OR v.next_attempt <= ?2))
                        OR (?3 AND v.state = 3 AND v.in_tree = 0 AND m.wanted = 1))
                   AND (v.module_id > ?4 OR (v.module_id = ?4 AND v.version > ?5))
                 ORDER BY v.module_id, v.version
                 LIMIT ?1",
            params![limit as i64, now, retry_failed, aid, aver],
            |r| {
                Ok(Todo {
                    module_id: r.get(0)?,
                    path: r.get(1)?,
                    version: r.get(2)?,
                    attempts: r.get(3)?,
                })
            },
        )
    }

    /// Records a failed attempt; the version is retried after a growing delay.
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
                "UPDATE versions SET state = CASE WHEN in_tree = 1 THEN state ELSE 2 END,
                        attempts = ?3, next_attempt = ?4, last_error = ?5
                 WHERE module_id = ?1 AND version = ?2",
                params![
                    module_id,
                    version,
                    attempts,
                    now + retry_delay_secs(attempts),
                    error
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
                "UPDATE versions SET state = 3, last_error = ?3, checked_at = ?4, next_attempt = NULL
                 WHERE module_id = ?1 AND version = ?2",
                params![module_id, version, error, now],
            )
            .map_err(|e| self.err("cannot record missing version", e))?;
        Ok(())
    }

    /// Records a 404/410 for a version being fetched. A version the index or
    /// a seed's list named is "not yet there" ([`vstate::MISSING`], retried
    /// with backoff) until it has been missing for `grace_secs`; only then is
    /// it [`vstate::GONE`].
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
            NotFound::Gone { .. } => (vstate::GONE, None),
            NotFound::NotYet { retry_at } => (vstate::MISSING, Some(retry_at)),
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
                    "UPDATE versions SET state = 3, last_error = ?3, checked_at = ?4, next_attempt = NULL
                     WHERE module_id = ?1 AND version = ?2",
                    params![module_id, version, error, now],
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

    /// Published versions not checked upstream since `cutoff`, oldest check first.
    pub fn due_rechecks(&self, cutoff: i64, limit: u64) -> Result<Vec<Todo>> {
        self.query_vec(
            "cannot list rechecks",
            "SELECT v.module_id, m.path, v.version, v.attempts
                 FROM versions v JOIN modules m ON m.id = v.module_id
                 WHERE v.in_tree = 1 AND v.state = 4 AND m.wanted = 1
                   AND (v.checked_at IS NULL OR v.checked_at <= ?1)
                 ORDER BY v.checked_at LIMIT ?2",
            params![cutoff, limit as i64],
            |r| {
                Ok(Todo {
                    module_id: r.get(0)?,
                    path: r.get(1)?,
                    version: r.get(2)?,
                    attempts: r.get(3)?,
                })
            },
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
                    "UPDATE versions SET state = 4, in_tree = 1, attempts = 0, next_attempt = NULL, last_error = NULL, missing_since = NULL,
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
                    p.zip_size,
                    p.info_mtime,
                    p.mod_mtime,
                    p.zip_mtime,
                    p.record_id,
                    now,
                    p.zip_sha256,
                    p.info_sha256
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
                .prepare_cached("UPDATE versions SET state = 1, attempts = 0, next_attempt = NULL WHERE module_id = ?1 AND version = ?2")
                .map_err(e)?;
            let mut dirty = tx
                .prepare_cached("UPDATE modules SET dirty = 1 WHERE id = ?1")
                .map_err(e)?;
            for (id, v) in versions {
                up.execute(params![id, v]).map_err(e)?;
                dirty.execute([id]).map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    // ---- modules and their indexes -------------------------------------------

    /// Modules whose `@v/list` and `@latest` must be rewritten.
    pub fn dirty_modules(&self) -> Result<Vec<(i64, String)>> {
        self.query_vec(
            "cannot list modules",
            "SELECT id, path FROM modules WHERE dirty = 1 ORDER BY id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    pub fn set_dirty(&mut self, module_ids: &[i64], dirty: bool) -> Result<()> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot update modules", x);
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut stmt = tx
                .prepare_cached("UPDATE modules SET dirty = ?2 WHERE id = ?1")
                .map_err(e)?;
            for id in module_ids {
                stmt.execute(params![id, dirty]).map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    /// The versions `@v/list` and `@latest` are built from: published and in the tree.
    pub fn listed_versions(&self, module_id: i64) -> Result<Vec<Listed>> {
        self.query_vec("cannot list versions", "SELECT version, info_time, mod_h1 FROM versions WHERE module_id = ?1 AND state = 4 AND in_tree = 1", [module_id], |r| Ok(Listed { version: r.get(0)?, time: r.get(1)?, mod_h1: r.get(2)? }))
    }

    /// Every version whose files are in the tree, in module order, a page at a time.
    pub fn in_tree_page(
        &self,
        after: Option<(i64, &str)>,
        limit: usize,
    ) -> Result<Vec<PublishedVersion>> {
        let (aid, aver) = after.unwrap_or((-1, ""));
        self.query_vec("cannot list published versions", "SELECT v.module_id, m.path, v.version, v.info_time, v.zip_h1, v.mod_h1,
                        v.info_size, v.mod_size, v.zip_size, v.info_mtime, v.mod_mtime, v.zip_mtime, v.record_id,
                        v.zip_sha256, v.info_sha256
                 FROM versions v JOIN modules m ON m.id = v.module_id
                 WHERE v.in_tree = 1 AND (v.module_id > ?2 OR (v.module_id = ?2 AND v.version > ?3))
                 ORDER BY v.module_id, v.version LIMIT ?1", params![limit as i64, aid, aver], |r| {
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
                    },
                })
            })
    }

    /// Looks up a module by path.
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

    // ---- checksum database --------------------------------------------------

    /// Records a tree head the mirror accepted (signature and consistency proven).
    pub fn save_head(&mut self, size: i64, hash: &str, note: &[u8]) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO sumdb_trees(size, hash, note) VALUES (?1, ?2, ?3) ON CONFLICT(size) DO NOTHING",
                params![size, hash, note],
            )
            .map_err(|e| self.err("cannot record tree head", e))?;
        Ok(())
    }

    /// The largest accepted tree head: what this mirror trusts.
    pub fn trusted_head(&self) -> Result<Option<StoredHead>> {
        self.conn
            .query_row(
                "SELECT size, hash, note, served FROM sumdb_trees ORDER BY size DESC LIMIT 1",
                [],
                |r| {
                    Ok(StoredHead {
                        size: r.get(0)?,
                        hash: r.get(1)?,
                        note: r.get(2)?,
                        served: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err("cannot read tree head", e))
    }

    /// Every tree head that a published lookup or `latest` carries.
    pub fn served_heads(&self) -> Result<Vec<StoredHead>> {
        self.query_vec(
            "cannot read tree heads",
            "SELECT size, hash, note, served FROM sumdb_trees WHERE served = 1 ORDER BY size",
            [],
            |r| {
                Ok(StoredHead {
                    size: r.get(0)?,
                    hash: r.get(1)?,
                    note: r.get(2)?,
                    served: r.get(3)?,
                })
            },
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

    // ---- reports ------------------------------------------------------------

    pub fn counts(&self) -> Result<Counts> {
        let q = |sql: &str| -> Result<i64> {
            self.conn
                .query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
                .map(|v| v.unwrap_or(0))
                .map_err(|e| self.err("cannot count", e))
        };
        Ok(Counts {
            modules: q("SELECT count(*) FROM modules")?,
            wanted_modules: q("SELECT count(*) FROM modules WHERE wanted = 1")?,
            index_versions: q("SELECT count(*) FROM versions")?,
            published: q("SELECT count(*) FROM versions WHERE state = 4")?,
            pending: q("SELECT count(*) FROM versions WHERE state = 1")?,
            failed: q("SELECT count(*) FROM versions WHERE state = 2")?,
            missing: q("SELECT count(*) FROM versions WHERE state = 5")?,
            gone: q(
                "SELECT count(*) FROM versions v JOIN modules m ON m.id = v.module_id WHERE v.state = 3 AND m.wanted = 1",
            )?,
            in_tree: q("SELECT count(*) FROM versions WHERE in_tree = 1")?,
            published_bytes: q(
                "SELECT sum(coalesce(zip_size,0) + coalesce(mod_size,0) + coalesce(info_size,0)) FROM versions WHERE in_tree = 1",
            )?,
        })
    }

    /// How many versions have files in the tree (an index lookup, unlike [`State::counts`]).
    pub fn in_tree_count(&self) -> Result<u64> {
        self.conn
            .query_row("SELECT count(*) FROM versions WHERE in_tree = 1", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(|e| self.err("cannot count", e))
    }

    /// Failed versions, most attempted first.
    pub fn failures(&self, limit: usize) -> Result<Vec<Failure>> {
        self.query_vec(
            "cannot list failures",
            "SELECT m.path, v.version, v.attempts, v.next_attempt, coalesce(v.last_error, '')
                 FROM versions v JOIN modules m ON m.id = v.module_id
                 WHERE v.state IN (2, 5) ORDER BY v.attempts DESC, m.path, v.version LIMIT ?1",
            [limit as i64],
            |r| {
                Ok(Failure {
                    path: r.get(0)?,
                    version: r.get(1)?,
                    attempts: r.get(2)?,
                    next_attempt: r.get(3)?,
                    error: r.get(4)?,
                })
            },
        )
    }

    pub fn begin_run(&mut self, command: &str, now: i64) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO runs(command, started) VALUES (?1, ?2)",
                params![command, now],
            )
            .map_err(|e| self.err("cannot record run", e))?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn finish_run(
        &mut self,
        id: i64,
        now: i64,
        exit_code: i32,
        summary: &serde_json::Value,
    ) -> Result<()> {
        self.conn
            .execute(
                "UPDATE runs SET finished = ?2, exit_code = ?3, summary = ?4 WHERE id = ?1",
                params![id, now, exit_code, summary.to_string()],
            )
            .map_err(|e| self.err("cannot record run", e))?;
        Ok(())
    }

    pub fn recent_runs(&self, limit: usize) -> Result<Vec<RunRecord>> {
        self.query_vec("cannot list runs", "SELECT id, command, started, finished, exit_code, summary FROM runs ORDER BY id DESC LIMIT ?1", [limit as i64], |r| {
                let summary: Option<String> = r.get(5)?;
                Ok(RunRecord {
                    id: r.get(0)?,
                    command: r.get(1)?,
                    started: r.get(2)?,
                    finished: r.get(3)?,
                    exit_code: r.get(4)?,
                    summary: summary.and_then(|s| serde_json::from_str(&s).ok()),
                })
            })
    }

    /// Runs a query and collects its rows; an error says `what` failed.
    fn query_vec<T, P: rusqlite::Params>(
        &self,
        what: &str,
        sql: &str,
        params: P,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        let mut stmt = self
            .conn
            .prepare_cached(sql)
            .map_err(|e| self.err(what, e))?;
        let rows = stmt.query_map(params, row).map_err(|e| self.err(what, e))?;
        rows.collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| self.err(what, e))
    }

    /// Direct access for the less common queries of prune and verify.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

fn err(path: &Path, what: &str, e: rusqlite::Error) -> StateError {
    StateError {
        path: path.to_path_buf(),
        message: format!("{what}: {e}"),
        source: Some(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(p: &str, v: &str) -> IndexEntry {
        IndexEntry {
            path: p.into(),
            version: v.into(),
        }
    }

    fn open_temp() -> (tempfile::TempDir, State) {
        let dir = tempfile::tempdir().unwrap();
        let st = State::open(&dir.path().join("state.db")).unwrap();
        (dir, st)
    }

    #[test]
    fn a_preview_reads_what_is_recorded_and_leaves_no_file_behind() {
        let dir = tempfile::tempdir().unwrap();
        // A path a URI would misread, and not ASCII.
        let path = dir.path().join("st%te?#é.db");
        {
            let mut st = State::open(&path).unwrap();
            st.record_entries(
                &[entry("a.example/m", "v1.0.0")],
                &|_| true,
                Some("2024-01-01T00:00:00Z"),
            )
            .unwrap();
        }
        let files = |d: &Path| {
            let mut v: Vec<_> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            v.sort();
            v
        };
        let before = files(dir.path());
        let bytes = std::fs::read(&path).unwrap();
        {
            let st = State::open_for_preview(&path).unwrap();
            let known = st
                .known_versions(&[
                    entry("a.example/m", "v1.0.0"),
                    entry("a.example/m", "v1.1.0"),
                ])
                .unwrap();
            assert_eq!(known, [true, false]);
            assert_eq!(
                st.cursor().unwrap().as_deref(),
                Some("2024-01-01T00:00:00Z")
            );
        }
        assert_eq!(files(dir.path()), before, "a preview created files");
        assert_eq!(std::fs::read(&path).unwrap(), bytes);

        // A mirror that never synced: an empty database, and no file.
        let missing = dir.path().join("new.db");
        let st = State::open_for_preview(&missing).unwrap();
        assert_eq!(
            st.known_versions(&[entry("a.example/m", "v1.0.0")])
                .unwrap(),
            [false]
        );
        assert!(!missing.exists());
    }

    #[test]
    fn migrations_run_twice_without_change() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.db");
        let mut a = State::open(&p).unwrap();
        a.set_meta("k", "v").unwrap();
        drop(a);
        let b = State::open(&p).unwrap();
        assert_eq!(b.user_version().unwrap(), MIGRATIONS.len() as i64);
        assert_eq!(b.meta("k").unwrap().as_deref(), Some("v"));
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.db");
        drop(State::open(&p).unwrap());
        let c = Connection::open(&p).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        let e = State::open(&p).err().unwrap().to_string();
        assert!(e.contains("newer than this gomirror"), "{e}");
    }

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
        assert_eq!(st.count_todo(0, false).unwrap(), tc(2, 0));
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
        assert_eq!(st.count_todo(1000 + grace + 10_000, false).unwrap().due, 0);
        // --retry-failed brings a gone version back.
        assert_eq!(st.count_todo(1000 + grace, true).unwrap().due, 1);
        let again = st.todo_page(None, 10, 1000 + grace, true).unwrap();
        assert_eq!(again.len(), 1);
    }

    #[test]
    fn recheck_not_found_deletes_nothing_within_the_grace_period() {
        let (_d, mut st) = open_temp();
        st.record_index_page(&[entry("golang.org/x/a", "v1.0.0")], &|_| true, "t")
            .unwrap();
        let t = st.todo_page(None, 10, 0, false).unwrap().remove(0);
        st.conn
            .execute("UPDATE versions SET state = 4, in_tree = 1", [])
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
            .execute("UPDATE versions SET state = 4, missing_since = 100", [])
            .unwrap();
        st.mark_checked(&[(t.module_id, t.version.clone())], 200)
            .unwrap();
        let r = st
            .mark_recheck_not_found(t.module_id, &t.version, "404", 210, 50)
            .unwrap();
        assert!(matches!(r, NotFound::NotYet { .. }));
    }

    #[test]
    fn failures_back_off_and_can_be_forced() {
        let (_d, mut st) = open_temp();
        st.record_index_page(&[entry("golang.org/x/a", "v1.0.0")], &|_| true, "t")
            .unwrap();
        let t = &st.todo_page(None, 10, 1000, false).unwrap()[0];
        st.mark_failed(t.module_id, &t.version, "boom", 1000)
            .unwrap();
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
    }

    #[test]
    fn heads_and_publication() {
        let (_d, mut st) = open_temp();
        st.save_head(10, "h10", b"note10").unwrap();
        st.save_head(20, "h20", b"note20").unwrap();
        assert_eq!(st.trusted_head().unwrap().unwrap().size, 20);
        st.record_index_page(&[entry("golang.org/x/a", "v1.0.0")], &|_| true, "t")
            .unwrap();
        let t = st.todo_page(None, 1, 0, false).unwrap().remove(0);
        st.mark_published(
            &[Published {
                module_id: t.module_id,
                version: t.version.clone(),
                info_time: Some("2024-01-01T00:00:00Z".into()),
                zip_h1: "h1:z".into(),
                mod_h1: "h1:m".into(),
                info_size: 1,
                mod_size: 2,
                zip_size: 3,
                info_mtime: 4,
                mod_mtime: 5,
                zip_mtime: 6,
                record_id: Some(7),
                zip_sha256: Some("00".into()),
                info_sha256: Some("11".into()),
            }],
            &[10],
            100,
        )
        .unwrap();
        assert_eq!(st.served_heads().unwrap().len(), 1);
        let mut ids = Vec::new();
        st.for_each_record_id(|id| ids.push(id)).unwrap();
        assert_eq!(ids, vec![7]);
        assert_eq!(st.dirty_modules().unwrap().len(), 1);
        assert_eq!(
            st.listed_versions(t.module_id).unwrap()[0].version,
            "v1.0.0"
        );
        let c = st.counts().unwrap();
        assert_eq!((c.published, c.in_tree, c.published_bytes), (1, 1, 6));
    }
}

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

/// What a filter change did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FilterChange {
    pub newly_wanted_modules: u64,
    pub queued_versions: u64,
    pub unwanted_modules: u64,
}
