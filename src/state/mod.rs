//! The state database: the source of truth that the tree is a projection of.
//!
//! One SQLite file (WAL mode) records what the index said (every module and
//! version, compactly, so a wider filter can backfill without walking the index
//! again), what the mirror holds and with which hashes, what failed and when to
//! retry it, the index cursor, the checksum-database tree heads the mirror has
//! accepted and served, and a log of runs.
//!
//! This file opens the database (for writing, read-only for `status`, or as a
//! preview that changes nothing for `sync --dry-run`); each concern has a
//! child module with its part of `impl State`: [`migrations`] (the schema),
//! [`index`] (index entries, cursor, filter), [`queue`] (the work queue),
//! [`rechecks`] (published versions asked about again),
//! [`lists`] (what `@v/list` and `@latest` are built from), [`tree`] (what is
//! in the tree, for verify and prune), [`heads`] (checksum-database heads),
//! [`tiles`] (how far the tree holds the checksum database's tiles),
//! [`runs`] (the run log and status), [`vuln`] (the vulnerability
//! database held, and what `audit` caches), [`policy`] (first sights,
//! held and denied versions, retention: the supply-chain policy),
//! [`private`] (the ledger of versions no checksum database vouches for)
//! and [`demand`] (what the access logs asked for). No SQL runs outside
//! this module: the
//! connection is private, and version states are a [`VersionState`].
//!
//! A `State` is used from one thread at a time ([`db::Db`] gives it a thread
//! of its own); writes are batched in transactions.

mod bundles;
mod counts;
mod cycle;
pub mod db;
mod demand;
mod feed;
mod files;
mod heads;
mod index;
mod lists;
mod migrations;
#[cfg(test)]
mod plans;
mod policy;
mod private;
mod queue;
mod rechecks;
mod runs;
mod site;
mod tiles;
mod tree;
mod upstreams;
mod version;
mod vuln;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

pub use crate::model::{Listed, Published, Todo};
pub use bundles::{ExportRecord, ExportVersion, ImportPosition, ImportRecord};
pub use counts::Counts;
pub use cycle::Cycle;
pub use demand::{
    DEMAND_FILE, DemandBatch, DemandCounts, DemandNamed, DemandRecorded, DemandTake, DemandTally,
    LogPosition, LogRead, Request,
};
pub use feed::{ChangeStats, FeedEntry, FeedHead, FeedOp, FollowCursor};
pub use files::{FileCounts, NameStats, NamedFile, NamedVersion, PinnedHash};
pub use heads::StoredHead;
pub use index::{FilterChange, IndexEntry, PageStats};
pub use policy::{
    DeniedVersion, HeldVersion, PolicyChange, PolicyCounts, PolicyPin, PolicyRow, VersionFacts,
};
pub use private::{LedgerCheck, LedgerConflict, LedgerEntry};
pub use queue::{NotFound, TodoCounts, retry_delay_secs};
pub use runs::{CommandRuns, Failure, RunRecord};
pub use site::{Addition, Filed, RunPoint, SiteCounts, SiteVersion};
pub use tiles::TileProgress;
pub use tree::{DeletionCandidate, DeletionReason, PublishedVersion};
pub use upstreams::{SampleVersion, UpstreamRecord};
pub use version::VersionState;
pub use vuln::{AuditVersion, ModuleFacts, NamedPin, VulnEntryRow, VulnFile, VulnStatus};

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

/// A random 128-bit name (a feed's, a mirror's), as 32 hex digits.
fn random_id() -> String {
    format!("{:032x}", fastrand::u128(..))
}

/// An open state database. Its connection is private to this module: every
/// query is a named method in one of the child modules.
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
        state.check_schema_current()?;
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
            state.check_schema_current()?;
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
}

fn err(path: &Path, what: &str, e: rusqlite::Error) -> StateError {
    StateError {
        path: path.to_path_buf(),
        message: format!("{what}: {e}"),
        source: Some(e),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn entry(p: &str, v: &str) -> IndexEntry {
        IndexEntry {
            path: p.into(),
            version: v.into(),
            listed_at: None,
        }
    }

    pub(crate) fn open_temp() -> (tempfile::TempDir, State) {
        let dir = tempfile::tempdir().unwrap();
        let st = State::open(&dir.path().join("state.db")).unwrap();
        (dir, st)
    }

    /// What publishing `version` records (sizes 1 + 2 + 3 bytes).
    pub(crate) fn published(module_id: i64, version: &str, record_id: Option<i64>) -> Published {
        Published {
            module_id,
            version: version.into(),
            info_time: Some("2024-01-01T00:00:00Z".into()),
            zip_h1: "h1:z".into(),
            mod_h1: "h1:m".into(),
            info_size: 1,
            mod_size: 2,
            zip_size: 3,
            info_mtime: 4,
            mod_mtime: 5,
            zip_mtime: 6,
            record_id,
            zip_sha256: Some("00".into()),
            info_sha256: Some("11".into()),
            zip: true,
        }
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
}
