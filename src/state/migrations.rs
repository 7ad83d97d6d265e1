//! The schema of the state database, one migration per entry, keyed on
//! `PRAGMA user_version`.
//!
//! Append only: a released migration is never edited, a change is a new entry
//! at the end of [`MIGRATIONS`], so every database, however old, reaches the
//! same schema by running the entries it has not run yet. A database newer
//! than this build is refused rather than misread. Version states are stored
//! as the numbers [`super::VersionState`] names (the partial indexes below
//! spell them out: 1 pending, 2 failed, 5 missing).

use super::version::{state_code, state_codes};
use super::{Result, State, StateError, err};

/// The schema, one migration per entry. Append only.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: initial schema.
    concat!(
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
    CREATE INDEX versions_todo ON versions(state) WHERE state IN ("#,
        state_codes!(Pending, Failed),
        r#");
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
    "#
    ),
    // 2: whole-file SHA-256 of the .zip and .info as downloaded, so verify sees
    // byte-level damage that the content hash (h1:) ignores (zip metadata).
    r#"
    ALTER TABLE versions ADD COLUMN zip_sha256 TEXT;
    ALTER TABLE versions ADD COLUMN info_sha256 TEXT;
    "#,
    // 3: a 404/410 is "not yet" for a bounded time (state 5, since `missing_since`),
    // not "gone" at once: a proxy that has not caught up must not lose versions.
    concat!(
        r#"
    ALTER TABLE versions ADD COLUMN missing_since INTEGER;
    DROP INDEX versions_todo;
    CREATE INDEX versions_todo ON versions(state) WHERE state IN ("#,
        state_codes!(Pending, Failed, Missing),
        r#");
    "#
    ),
    // 4: what each upstream of the proxy list served, summed over runs, and
    // its last error (URLs stored with credentials masked).
    r#"
    CREATE TABLE upstreams (
        url           TEXT PRIMARY KEY,
        requests      INTEGER NOT NULL DEFAULT 0,
        files         INTEGER NOT NULL DEFAULT 0,
        bytes         INTEGER NOT NULL DEFAULT 0,
        not_found     INTEGER NOT NULL DEFAULT 0,
        failures      INTEGER NOT NULL DEFAULT 0,
        refused       INTEGER NOT NULL DEFAULT 0,
        last_used     INTEGER,
        last_error    TEXT,
        last_error_at INTEGER
    );
    "#,
    // 5: `[filter].from_files`: what each project file names (replaced on
    // every sync), and per version the strongest want of any file
    // (`named`: 0 none, 1 `.info` and `.mod` only, 2 with the zip). State 6
    // is graph-only: published without its zip.
    r#"
    ALTER TABLE versions ADD COLUMN named INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX versions_named ON versions(module_id, version) WHERE named > 0;
    CREATE TABLE named_files (
        file TEXT PRIMARY KEY,
        kind TEXT NOT NULL
    );
    CREATE TABLE named (
        file      TEXT NOT NULL,
        module_id INTEGER NOT NULL,
        version   TEXT NOT NULL,
        zip       INTEGER NOT NULL,
        line      INTEGER NOT NULL,
        zip_h1    TEXT,
        mod_h1    TEXT,
        PRIMARY KEY (file, module_id, version)
    ) WITHOUT ROWID;
    CREATE INDEX named_version ON named(module_id, version);
    "#,
    // 6: the change feed (`state::feed`): this mirror's publications and
    // deletions in order, the versions it shows as published (seeded with
    // what the tree holds, so a feed started on an existing mirror is
    // complete), and, when following another mirror, the versions it withdrew.
    concat!(
        r#"
    CREATE TABLE feed_entries (
        seq       INTEGER PRIMARY KEY,
        time      TEXT NOT NULL,
        op        INTEGER NOT NULL,
        module_id INTEGER NOT NULL,
        version   TEXT NOT NULL
    );
    CREATE TABLE feed_live (
        module_id INTEGER NOT NULL,
        version   TEXT NOT NULL,
        seq       INTEGER NOT NULL,
        PRIMARY KEY (module_id, version)
    ) WITHOUT ROWID;
    CREATE TABLE feed_withdrawn (
        module_id INTEGER NOT NULL,
        version   TEXT NOT NULL,
        PRIMARY KEY (module_id, version)
    ) WITHOUT ROWID;
    INSERT INTO feed_entries(seq, time, op, module_id, version)
        SELECT row_number() OVER (ORDER BY m.path, v.version) - 1,
               strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), 1, v.module_id, v.version
        FROM versions v JOIN modules m ON m.id = v.module_id
        WHERE v.in_tree = 1 AND v.state = "#,
        state_code!(Published),
        r#";
    INSERT INTO feed_live(module_id, version, seq)
        SELECT module_id, version, seq FROM feed_entries;
    "#
    ),
    // 7: air-gapped transfer (`state::bundles`). On the exporting side, the
    // bundles written (numbered) and what the far side holds once it has
    // imported them all: versions (with or without their zip) and tiles. On
    // the importing side, every bundle imported.
    r#"
    CREATE TABLE exports (
        seq       INTEGER PRIMARY KEY,
        id        TEXT NOT NULL,
        previous  TEXT,
        full      INTEGER NOT NULL,
        created   INTEGER NOT NULL,
        path      TEXT NOT NULL,
        versions  INTEGER NOT NULL,
        deletions INTEGER NOT NULL,
        bytes     INTEGER NOT NULL,
        tree_size INTEGER
    );
    CREATE TABLE exported (
        module_id INTEGER NOT NULL,
        version   TEXT NOT NULL,
        zip       INTEGER NOT NULL,
        PRIMARY KEY (module_id, version)
    ) WITHOUT ROWID;
    CREATE TABLE exported_tiles (
        key TEXT PRIMARY KEY
    ) WITHOUT ROWID;
    CREATE TABLE imports (
        id          TEXT PRIMARY KEY,
        seq         INTEGER NOT NULL,
        mirror_id   TEXT NOT NULL,
        mirror_name TEXT NOT NULL,
        full        INTEGER NOT NULL,
        imported    INTEGER NOT NULL,
        versions    INTEGER NOT NULL,
        deletions   INTEGER NOT NULL,
        refused     INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 8: every tile of the checksum database (`state::tiles`): per level, the
    // run of full tiles the tree holds, and the tree size whose right-edge
    // partial tiles are all there.
    r#"
    CREATE TABLE sumdb_tiles (
        level INTEGER PRIMARY KEY,
        low   INTEGER NOT NULL,
        high  INTEGER NOT NULL
    );
    CREATE TABLE sumdb_tile_edge (
        id   INTEGER PRIMARY KEY CHECK (id = 1),
        size INTEGER NOT NULL
    );
    "#,
    // 9 (vulnerability database and audit, `state::vuln`): the OSV entries
    // held in `vuln/ID/` (their `modified`, what the audit needs of them, the
    // sizes and SHA-256 of `.json` and `.json.gz`, the `modified` a bundle
    // last carried), the three index files, and per module the facts of its
    // highest mirrored go.mod (deprecation, retractions) the audit caches.
    r#"
    CREATE TABLE vuln_entries (
        id          TEXT PRIMARY KEY,
        modified    TEXT NOT NULL,
        summary     TEXT NOT NULL,
        json_size   INTEGER NOT NULL,
        json_sha256 TEXT NOT NULL,
        gz_size     INTEGER NOT NULL,
        gz_sha256   TEXT NOT NULL,
        exported    TEXT
    ) WITHOUT ROWID;
    CREATE TABLE vuln_indexes (
        name        TEXT PRIMARY KEY,
        json_size   INTEGER NOT NULL,
        json_sha256 TEXT NOT NULL,
        gz_size     INTEGER NOT NULL,
        gz_sha256   TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE module_facts (
        module_id  INTEGER PRIMARY KEY,
        version    TEXT NOT NULL,
        deprecated TEXT,
        retracts   TEXT NOT NULL
    );
    "#,
    // 10 (supply-chain policy and retention, `state::policy`): when this
    // mirror first saw each version (the index's timestamp when the index
    // listed it), since when it is no longer wanted (`prune.keep`), whether
    // `policy.deny` covers it while it is in the tree (prune removes it);
    // states 7 (held: too young, ready at `next_attempt`) and 8 (denied).
    concat!(
        r#"
    ALTER TABLE versions ADD COLUMN first_seen INTEGER;
    ALTER TABLE versions ADD COLUMN unwanted_since INTEGER;
    ALTER TABLE versions ADD COLUMN denied INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX versions_policy ON versions(state, next_attempt) WHERE state IN ("#,
        state_codes!(Held, Denied),
        r#");
    CREATE INDEX versions_denied ON versions(module_id, version) WHERE denied = 1;
    "#
    ),
    // 11 (private modules, `state::private`): the ledger, the
    // `h1:` of every version no checksum database vouches for (made from
    // its repository, or a sumdb.skip module), as first seen; a later
    // different content is refused, and remembered as the conflict.
    r#"
    CREATE TABLE private_ledger (
        path            TEXT NOT NULL,
        version         TEXT NOT NULL,
        mod_h1          TEXT NOT NULL,
        zip_h1          TEXT,
        first_at        INTEGER NOT NULL,
        source          TEXT NOT NULL,
        conflict_mod_h1 TEXT,
        conflict_zip_h1 TEXT,
        conflict_at     INTEGER,
        conflict_source TEXT,
        PRIMARY KEY (path, version)
    ) WITHOUT ROWID;
    "#,
    // 12 (demand, `state::demand`): where each access log was read to, what
    // clients asked for and did not get (`version = ''`: a module's
    // `@v/list` or `@latest`), and the tagged versions of modules asked for
    // as a whole.
    r#"
    CREATE TABLE demand_logs (
        path    TEXT PRIMARY KEY,
        dev     INTEGER NOT NULL,
        ino     INTEGER NOT NULL,
        offset  INTEGER NOT NULL,
        head    BLOB NOT NULL,
        read_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE demand (
        module       TEXT NOT NULL,
        version      TEXT NOT NULL,
        status       TEXT NOT NULL,
        misses       INTEGER NOT NULL DEFAULT 0,
        hits         INTEGER NOT NULL DEFAULT 0,
        first_missed INTEGER NOT NULL,
        last_missed  INTEGER NOT NULL,
        last_asked   INTEGER NOT NULL,
        wanted_at    INTEGER,
        failures     INTEGER NOT NULL DEFAULT 0,
        retry_at     INTEGER,
        listed_at    INTEGER,
        PRIMARY KEY (module, version)
    ) WITHOUT ROWID;
    CREATE INDEX demand_status ON demand(status);
    CREATE TABLE demand_listed (
        module  TEXT NOT NULL,
        version TEXT NOT NULL,
        PRIMARY KEY (module, version)
    ) WITHOUT ROWID;
    "#,
    // 13 (the mirror's pages, `state::site`): the modules whose page must be
    // written again (`site_dirty`), filled by a trigger whenever a module is
    // marked for its `@v/list` and `@latest` to be rewritten, so every change
    // to what a module holds reaches its page without another statement to
    // keep in step; the module paths the search shards list, with the term
    // and shard each is filed under and what its page counts (the front
    // page's totals are kept as sums in meta, not counted over the tree); the shards (prefixes of terms), those
    // to be written again marked; the lag each run saw, for the chart.
    r#"
    CREATE TABLE site_dirty (
        module_id INTEGER PRIMARY KEY
    );
    CREATE TRIGGER site_dirty_on_update AFTER UPDATE OF dirty ON modules
        WHEN NEW.dirty = 1
        BEGIN INSERT OR IGNORE INTO site_dirty(module_id) VALUES (NEW.id); END;
    CREATE TRIGGER site_dirty_on_insert AFTER INSERT ON modules
        WHEN NEW.dirty = 1
        BEGIN INSERT OR IGNORE INTO site_dirty(module_id) VALUES (NEW.id); END;
    CREATE TABLE site_search (
        module_id INTEGER PRIMARY KEY,
        term      TEXT NOT NULL,
        shard     TEXT NOT NULL,
        versions  INTEGER NOT NULL DEFAULT 0,
        bytes     INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX site_search_shard ON site_search(shard);
    CREATE TABLE site_shards (
        prefix TEXT PRIMARY KEY,
        dirty  INTEGER NOT NULL DEFAULT 1
    ) WITHOUT ROWID;
    CREATE TABLE site_runs (
        run_id INTEGER PRIMARY KEY,
        lag    INTEGER
    );
    "#,
];

impl State {
    pub(super) fn user_version(&self) -> Result<i64> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err("cannot read schema version", e))
    }

    /// Refuses a database whose schema a newer gomirror wrote.
    pub(super) fn check_schema_not_newer(&self) -> Result<()> {
        let v = self.user_version()?;
        if v as usize > MIGRATIONS.len() {
            return Err(self.newer_schema(v));
        }
        Ok(())
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

    /// Runs, each in its own transaction, the migrations the database has not run yet.
    pub(super) fn migrate(&mut self) -> Result<()> {
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let c = rusqlite::Connection::open(&p).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        let e = State::open(&p).err().unwrap().to_string();
        assert!(e.contains("newer than this gomirror"), "{e}");
    }
}
