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
    // 14 (a full mirror): the counts `status`, metrics and the trace show, kept in
    // the transactions that change them (by triggers, and for new versions by
    // the inserting code) instead of counted again on every run (`state::counts` names the rows: 0–6 versions by
    // state (7 held, 8 denied), 10 versions, 11 modules, 12 wanted modules, 13 versions in the
    // tree, 14 their bytes, 15 gone versions of wanted modules).
    concat!(
        r#"
    CREATE TABLE counts (
        id INTEGER PRIMARY KEY,
        n  INTEGER NOT NULL
    );
    INSERT INTO counts(id, n) VALUES (0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (6, 0), (7, 0), (8, 0);
    INSERT OR REPLACE INTO counts(id, n) SELECT state, count(*) FROM versions GROUP BY state;
    INSERT INTO counts(id, n) SELECT 10, count(*) FROM versions;
    INSERT INTO counts(id, n) SELECT 11, count(*) FROM modules;
    INSERT INTO counts(id, n) SELECT 12, count(*) FROM modules WHERE wanted != 0;
    INSERT INTO counts(id, n) SELECT 13, count(*) FROM versions WHERE in_tree = 1;
    INSERT INTO counts(id, n)
        SELECT 14, coalesce(sum(coalesce(zip_size, 0) + coalesce(mod_size, 0) + coalesce(info_size, 0)), 0)
        FROM versions WHERE in_tree = 1;
    INSERT INTO counts(id, n)
        SELECT 15, count(*) FROM versions v JOIN modules m ON m.id = v.module_id
        WHERE v.state = "#,
        state_code!(Gone),
        r#" AND m.wanted != 0;

    -- New versions are counted by the code that inserts them, a page at a
    -- time (`state::counts::inserted`): a trigger per row would add a third
    -- to the cost of walking the index.
    CREATE TRIGGER counts_version_delete AFTER DELETE ON versions BEGIN
        UPDATE counts SET n = n - 1 WHERE id IN (10, OLD.state);
        UPDATE counts SET n = n - CASE id WHEN 13 THEN 1
            ELSE coalesce(OLD.zip_size, 0) + coalesce(OLD.mod_size, 0) + coalesce(OLD.info_size, 0) END
        WHERE OLD.in_tree = 1 AND id IN (13, 14);
        UPDATE counts SET n = n - 1
        WHERE id = 15 AND OLD.state = "#,
        state_code!(Gone),
        r#" AND (SELECT wanted FROM modules WHERE id = OLD.module_id) != 0;
    END;
    CREATE TRIGGER counts_version_state AFTER UPDATE OF state ON versions
    WHEN OLD.state != NEW.state BEGIN
        UPDATE counts SET n = n + CASE WHEN id = NEW.state THEN 1 ELSE -1 END
        WHERE id IN (OLD.state, NEW.state);
    END;
    CREATE TRIGGER counts_version_gone AFTER UPDATE OF state ON versions
    WHEN (OLD.state = "#,
        state_code!(Gone),
        r#") != (NEW.state = "#,
        state_code!(Gone),
        r#") BEGIN
        UPDATE counts SET n = n + CASE WHEN NEW.state = "#,
        state_code!(Gone),
        r#" THEN 1 ELSE -1 END
        WHERE id = 15 AND (SELECT wanted FROM modules WHERE id = NEW.module_id) != 0;
    END;
    CREATE TRIGGER counts_version_tree AFTER UPDATE OF in_tree, zip_size, mod_size, info_size ON versions
    WHEN OLD.in_tree != NEW.in_tree
      OR (NEW.in_tree = 1 AND (OLD.zip_size IS NOT NEW.zip_size OR OLD.mod_size IS NOT NEW.mod_size
                               OR OLD.info_size IS NOT NEW.info_size)) BEGIN
        UPDATE counts SET n = n + CASE id WHEN 13 THEN NEW.in_tree - OLD.in_tree
            ELSE NEW.in_tree * (coalesce(NEW.zip_size, 0) + coalesce(NEW.mod_size, 0) + coalesce(NEW.info_size, 0))
               - OLD.in_tree * (coalesce(OLD.zip_size, 0) + coalesce(OLD.mod_size, 0) + coalesce(OLD.info_size, 0)) END
        WHERE id IN (13, 14);
    END;
    CREATE TRIGGER counts_module_insert AFTER INSERT ON modules BEGIN
        UPDATE counts SET n = n + 1 WHERE id = 11 OR (id = 12 AND NEW.wanted != 0);
    END;
    CREATE TRIGGER counts_module_delete AFTER DELETE ON modules BEGIN
        UPDATE counts SET n = n - 1 WHERE id = 11 OR (id = 12 AND OLD.wanted != 0);
    END;
    CREATE TRIGGER counts_module_wanted AFTER UPDATE OF wanted ON modules
    WHEN (OLD.wanted != 0) != (NEW.wanted != 0) BEGIN
        UPDATE counts SET n = n + CASE WHEN NEW.wanted != 0 THEN 1 ELSE -1 END
            * CASE id WHEN 12 THEN 1
              ELSE (SELECT count(*) FROM versions WHERE module_id = NEW.id AND state = "#,
        state_code!(Gone),
        r#") END
        WHERE id IN (12, 15);
    END;
    "#
    ),
    // 15 (a full mirror): what every sync asks about the tree, answered from small
    // indexes instead of a pass over every version. Per module, how many of
    // its versions in the tree are gone upstream and how many an unwanted
    // module would lose (not named by a file, or named for its go.mod alone
    // while its zip is there), kept by triggers; the modules with any of
    // either are indexed, so prune's deletion set is read from them alone.
    // And the modules whose `@v/list` and `@latest` wait for a rewrite.
    concat!(
        r#"
    ALTER TABLE modules ADD COLUMN gone_in_tree INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE modules ADD COLUMN doomable INTEGER NOT NULL DEFAULT 0;
    UPDATE modules SET
        gone_in_tree = (SELECT count(*) FROM versions v
                        WHERE v.module_id = modules.id AND v.in_tree = 1 AND v.state = "#,
        state_code!(Gone),
        r#"),
        doomable = (SELECT count(*) FROM versions v
                    WHERE v.module_id = modules.id AND v.in_tree = 1
                      AND (v.named = 0 OR (v.named = 1 AND v.state = "#,
        state_code!(Published),
        r#")));
    CREATE TRIGGER prune_counts_insert AFTER INSERT ON versions WHEN NEW.in_tree = 1 BEGIN
        UPDATE modules SET
            gone_in_tree = gone_in_tree + (NEW.state = "#,
        state_code!(Gone),
        r#"),
            doomable = doomable + (NEW.named = 0 OR (NEW.named = 1 AND NEW.state = "#,
        state_code!(Published),
        r#"))
        WHERE id = NEW.module_id;
    END;
    CREATE TRIGGER prune_counts_delete AFTER DELETE ON versions WHEN OLD.in_tree = 1 BEGIN
        UPDATE modules SET
            gone_in_tree = gone_in_tree - (OLD.state = "#,
        state_code!(Gone),
        r#"),
            doomable = doomable - (OLD.named = 0 OR (OLD.named = 1 AND OLD.state = "#,
        state_code!(Published),
        r#"))
        WHERE id = OLD.module_id;
    END;
    CREATE TRIGGER prune_counts_update AFTER UPDATE OF state, in_tree, named ON versions
    WHEN (OLD.in_tree = 1 AND OLD.state = "#,
        state_code!(Gone),
        r#") != (NEW.in_tree = 1 AND NEW.state = "#,
        state_code!(Gone),
        r#")
      OR (OLD.in_tree = 1 AND (OLD.named = 0 OR (OLD.named = 1 AND OLD.state = "#,
        state_code!(Published),
        r#")))
         != (NEW.in_tree = 1 AND (NEW.named = 0 OR (NEW.named = 1 AND NEW.state = "#,
        state_code!(Published),
        r#"))) BEGIN
        UPDATE modules SET
            gone_in_tree = gone_in_tree + (NEW.in_tree = 1 AND NEW.state = "#,
        state_code!(Gone),
        r#")
                                        - (OLD.in_tree = 1 AND OLD.state = "#,
        state_code!(Gone),
        r#"),
            doomable = doomable
                + (NEW.in_tree = 1 AND (NEW.named = 0 OR (NEW.named = 1 AND NEW.state = "#,
        state_code!(Published),
        r#")))
                - (OLD.in_tree = 1 AND (OLD.named = 0 OR (OLD.named = 1 AND OLD.state = "#,
        state_code!(Published),
        r#")))
        WHERE id = NEW.module_id;
    END;
    CREATE INDEX modules_prune ON modules(path) WHERE gone_in_tree > 0 OR (wanted = 0 AND doomable > 0);
    CREATE INDEX modules_dirty ON modules(id) WHERE dirty = 1;
    "#
    ),
    // 16 (a full mirror): each command's last finished run and last success,
    // kept as runs finish, so the metrics file does not read the whole run
    // log (one row per run, forever) after every run.
    r#"
    CREATE TABLE command_runs (
        command      TEXT PRIMARY KEY,
        last_id      INTEGER NOT NULL,
        last_success INTEGER
    ) WITHOUT ROWID;
    INSERT INTO command_runs(command, last_id, last_success)
        SELECT r.command, max(r.id),
               (SELECT max(s.finished) FROM runs s WHERE s.command = r.command AND s.exit_code = 0)
        FROM runs r WHERE r.finished IS NOT NULL AND r.exit_code IS NOT NULL
        GROUP BY r.command;
    "#,
    // 17 (a full mirror): the feed's published set is a flag on the version (it
    // was a table holding every published version's key a second time), and
    // entries of complete segments already written to the tree are not kept
    // (the segment files are never rewritten; only the open one is).
    r#"
    ALTER TABLE versions ADD COLUMN in_feed INTEGER NOT NULL DEFAULT 0;
    UPDATE versions SET in_feed = 1
        WHERE EXISTS (SELECT 1 FROM feed_live l
                      WHERE l.module_id = versions.module_id AND l.version = versions.version);
    DROP TABLE feed_live;
    "#,
    // 18 (a full mirror): the versions in the tree by when the upstream was last
    // asked about them, so a sync reads the ones due a recheck (oldest
    // first) and stops, whatever the size of the tree.
    r#"
    UPDATE versions SET checked_at = coalesce(published_at, 0)
        WHERE in_tree = 1 AND checked_at IS NULL;
    CREATE INDEX versions_checked ON versions(checked_at) WHERE in_tree = 1;
    "#,
    // 19 (a full mirror): the work queue's partial index in the table's order, so
    // the due versions are read as a range of it, page after page, instead
    // of a pass over every version that skips those not due.
    concat!(
        r#"
    DROP INDEX versions_todo;
    CREATE INDEX versions_todo ON versions(module_id, version) WHERE state IN ("#,
        state_codes!(Pending, Failed, Missing),
        r#");
    "#
    ),
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

    /// For the readers that never write (`status`, dry runs): refuses a
    /// schema other than this gomirror's. An older one is brought up to
    /// date by the next run that writes; until then every query written for
    /// the current schema would fail on a missing table or column.
    pub(super) fn check_schema_current(&self) -> Result<()> {
        self.check_schema_not_newer()?;
        let v = self.user_version()?;
        if (v as usize) < MIGRATIONS.len() {
            return Err(StateError {
                path: self.path.clone(),
                message: format!(
                    "schema version {v} was written by an older gomirror (this one reads {}); `gomirror sync` brings it up to date, then this command reads it",
                    MIGRATIONS.len()
                ),
                source: None,
            });
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

    /// `status` and dry runs read a database an older gomirror wrote only
    /// once a run that writes has brought it up to date: refused before,
    /// with what to run, at every older schema; read after.
    #[test]
    fn the_readers_that_never_write_refuse_an_older_schema_until_a_sync() {
        for k in 1..MIGRATIONS.len() {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("s.db");
            {
                let c = rusqlite::Connection::open(&p).unwrap();
                for sql in &MIGRATIONS[..k] {
                    c.execute_batch(sql).unwrap();
                }
                c.pragma_update(None, "user_version", k as i64).unwrap();
            }
            for e in [
                State::open_read_only(&p).err(),
                State::open_for_preview(&p).err(),
            ] {
                let e = e.unwrap_or_else(|| panic!("schema {k} read")).to_string();
                assert!(e.contains("older gomirror"), "{e}");
                assert!(e.contains("`gomirror sync`"), "{e}");
            }
            drop(State::open(&p).unwrap());
            let st = State::open_read_only(&p).unwrap();
            st.counts().unwrap();
            st.command_runs().unwrap();
        }
    }
}
