//! Air-gapped transfer, as the state database records it.
//!
//! The exporting side numbers its bundles (`exports`) and remembers what the
//! far side holds once it has imported every one of them: the versions
//! (`exported`, with whether their zip went too) and the checksum-database
//! tiles (`exported_tiles`). The next delta is the tree minus that. Nothing
//! is recorded until a bundle is complete on disk, so a failed or
//! interrupted export leaves the next one to carry the same changes.
//!
//! The importing side records every bundle it imported (`imports`) and its
//! position (`meta`: `import.mirror`, `import.seq`, `import.id`) in one
//! transaction, after the bundle's versions are published and its deletions
//! applied: a killed import is not recorded, and its rerun completes it.

use rusqlite::{OptionalExtension, params};

use super::version::{state_code, state_codes};
use super::{IndexEntry, Result, State, Todo, VersionState, err};

/// A version in the tree that the next bundle carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportVersion {
    pub module_id: i64,
    pub path: String,
    pub version: String,
    /// Its zip goes too (else the version is graph-only: `.info`, `.mod`).
    pub zip: bool,
    /// What the files must hash to (recorded at publish time).
    pub zip_sha256: Option<String>,
    pub info_sha256: Option<String>,
    pub mod_h1: String,
}

/// A bundle this mirror wrote.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ExportRecord {
    pub seq: u64,
    /// The SHA-256 of its manifest.
    pub id: String,
    pub previous: Option<String>,
    pub full: bool,
    #[serde(serialize_with = "crate::clock::serialize_rfc3339")]
    pub created: i64,
    pub path: String,
    pub versions: u64,
    pub deletions: u64,
    pub bytes: u64,
    pub tree_size: Option<i64>,
}

/// A bundle this mirror imported.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ImportRecord {
    pub id: String,
    pub seq: u64,
    pub mirror_id: String,
    pub mirror_name: String,
    pub full: bool,
    #[serde(serialize_with = "crate::clock::serialize_rfc3339")]
    pub imported: i64,
    pub versions: u64,
    pub deletions: u64,
    pub refused: u64,
}

/// Where this mirror stands in the bundles of the mirror it imports from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportPosition {
    pub mirror_id: String,
    pub mirror_name: String,
    pub seq: u64,
    pub id: String,
}

/// The versions a bundle carries (`?1`: a full bundle): in the tree, and,
/// for a delta, not exported yet or exported graph-only and whole now;
/// never one `policy.deny` covers.
const ADDED: &str = concat!(
    "v.in_tree = 1 AND v.denied = 0 AND v.state IN (",
    state_codes!(Published, GraphOnly),
    ") AND (?1 OR e.module_id IS NULL OR (e.zip = 0 AND v.state = ",
    state_code!(Published),
    "))"
);

/// The versions a delta deletes: exported, and no longer in the tree, or
/// covered by `policy.deny` (a takedown travels in the next bundle even
/// while this side's prune has not removed it yet).
const DELETED: &str = "(v.module_id IS NULL OR v.in_tree = 0 OR v.denied = 1)";

impl State {
    /// This mirror's identity in the bundles it exports: random, fixed on first use.
    pub fn mirror_id(&mut self) -> Result<String> {
        if let Some(id) = self.meta("mirror.id")? {
            return Ok(id);
        }
        let id = super::random_id();
        self.set_meta("mirror.id", &id)?;
        Ok(id)
    }

    /// The last bundle this mirror exported.
    pub fn last_export(&self) -> Result<Option<ExportRecord>> {
        self.conn
            .query_row(
                "SELECT seq, id, previous, full, created, path, versions, deletions, bytes, tree_size
                 FROM exports ORDER BY seq DESC LIMIT 1",
                [],
                |r| {
                    Ok(ExportRecord {
                        seq: r.get::<_, i64>(0)? as u64,
                        id: r.get(1)?,
                        previous: r.get(2)?,
                        full: r.get(3)?,
                        created: r.get(4)?,
                        path: r.get(5)?,
                        versions: r.get::<_, i64>(6)? as u64,
                        deletions: r.get::<_, i64>(7)? as u64,
                        bytes: r.get::<_, i64>(8)? as u64,
                        tree_size: r.get(9)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err("cannot read the export log", e))
    }

    /// Up to `limit` versions the next bundle carries after `after` (a
    /// path and version), in (path, version) order: with `full`, every
    /// version in the tree; else those the far side lacks (not exported
    /// yet, or exported graph-only and whole now). A page at a time, so an
    /// export's memory does not grow with the mirror.
    pub fn export_additions_page(
        &self,
        full: bool,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<ExportVersion>> {
        let (apath, aver) = after.unwrap_or(("", ""));
        self.query_vec(
            "cannot plan the export",
            &format!(
                concat!(
                    "SELECT v.module_id, m.path, v.version, v.state = ",
                    state_code!(Published),
                    ", v.zip_sha256, v.info_sha256, v.mod_h1
                     FROM modules m JOIN versions v ON v.module_id = m.id
                     LEFT JOIN exported e ON e.module_id = v.module_id AND e.version = v.version
                     WHERE m.path >= ?2 AND (m.path, v.version) > (?2, ?3) AND {ADDED}
                     ORDER BY m.path, v.version LIMIT ?4"
                ),
                ADDED = ADDED
            ),
            params![full, apath, aver, limit as i64],
            |r| {
                Ok(ExportVersion {
                    module_id: r.get(0)?,
                    path: r.get(1)?,
                    version: r.get(2)?,
                    zip: r.get(3)?,
                    zip_sha256: r.get(4)?,
                    info_sha256: r.get(5)?,
                    mod_h1: r.get::<_, Option<String>>(6)?.unwrap_or_default(),
                })
            },
        )
    }

    /// How many versions the next bundle carries, and how many of them
    /// with their zip.
    pub fn export_additions_count(&self, full: bool) -> Result<(u64, u64)> {
        self.conn
            .query_row(
                &format!(
                    concat!(
                        "SELECT count(*), coalesce(sum(v.state = ",
                        state_code!(Published),
                        "), 0)
                         FROM versions v
                         LEFT JOIN exported e ON e.module_id = v.module_id AND e.version = v.version
                         WHERE {ADDED}"
                    ),
                    ADDED = ADDED
                ),
                params![full],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .map_err(|e| self.err("cannot plan the export", e))
    }

    /// Up to `limit` versions the far side holds (exported) that are no
    /// longer in the tree, after `after`, in (path, version) order.
    pub fn export_deletions_page(
        &self,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<(i64, IndexEntry)>> {
        let (apath, aver) = after.unwrap_or(("", ""));
        self.query_vec(
            "cannot plan the export",
            &format!(
                "SELECT e.module_id, m.path, e.version FROM exported e JOIN modules m ON m.id = e.module_id
                     LEFT JOIN versions v ON v.module_id = e.module_id AND v.version = e.version
                     WHERE {DELETED} AND (m.path, e.version) > (?1, ?2)
                     ORDER BY m.path, e.version LIMIT ?3"
            ),
            params![apath, aver, limit as i64],
            |r| {
                Ok((
                    r.get(0)?,
                    IndexEntry {
                        path: r.get(1)?,
                        version: r.get(2)?,
                        listed_at: None,
                    },
                ))
            },
        )
    }

    /// How many versions the far side holds that are no longer in the tree.
    pub fn export_deletions_count(&self) -> Result<u64> {
        self.conn
            .query_row(
                &format!(
                    "SELECT count(*) FROM exported e
                         LEFT JOIN versions v ON v.module_id = e.module_id AND v.version = e.version
                         WHERE {DELETED}"
                ),
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.err("cannot plan the export", e))
    }

    /// Every tile an earlier bundle carried (since the last full one).
    pub fn exported_tiles(&self) -> Result<std::collections::HashSet<String>> {
        Ok(self
            .query_vec(
                "cannot read the export log",
                "SELECT key FROM exported_tiles",
                [],
                |r| r.get(0),
            )?
            .into_iter()
            .collect())
    }

    /// Records a bundle written: the log entry, and what the far side holds
    /// once it has imported it (a full bundle replaces all of that), in one
    /// transaction. The versions it carried and deleted are the sets
    /// [`State::export_additions_page`] and [`State::export_deletions_page`]
    /// read (the export holds the lock: nothing changed them since), so
    /// they are recorded set-wise, never held in memory; `tiles` are the
    /// tile keys it carried.
    pub fn record_export(&mut self, rec: &ExportRecord, tiles: &[String]) -> Result<()> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot record the export", x);
        let tx = self.conn.transaction().map_err(e)?;
        tx.execute(
            "INSERT INTO exports(seq, id, previous, full, created, path, versions, deletions, bytes, tree_size)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                rec.seq as i64,
                rec.id,
                rec.previous,
                rec.full,
                rec.created,
                rec.path,
                rec.versions as i64,
                rec.deletions as i64,
                rec.bytes as i64,
                rec.tree_size
            ],
        )
        .map_err(e)?;
        if rec.full {
            tx.execute_batch("DELETE FROM exported; DELETE FROM exported_tiles;")
                .map_err(e)?;
        } else {
            tx.execute(
                &format!(
                    "DELETE FROM exported WHERE (module_id, version) IN (
                         SELECT e.module_id, e.version FROM exported e
                         LEFT JOIN versions v ON v.module_id = e.module_id AND v.version = e.version
                         WHERE {DELETED})"
                ),
                [],
            )
            .map_err(e)?;
        }
        tx.execute(
            &format!(
                concat!(
                    "INSERT OR REPLACE INTO exported(module_id, version, zip)
                     SELECT v.module_id, v.version, v.state = ",
                    state_code!(Published),
                    " FROM versions v
                     LEFT JOIN exported e ON e.module_id = v.module_id AND e.version = v.version
                     WHERE {ADDED}"
                ),
                ADDED = ADDED
            ),
            params![rec.full],
        )
        .map_err(e)?;
        {
            let mut tile = tx
                .prepare_cached("INSERT OR IGNORE INTO exported_tiles(key) VALUES (?1)")
                .map_err(e)?;
            for k in tiles {
                tile.execute([k]).map_err(e)?;
            }
        }
        // A partial tile whose full tile was carried is gone from the tree
        // for good: forgetting it keeps this table at about one row per full
        // tile, however many widths the right edges went through.
        tx.execute(
            "DELETE FROM exported_tiles WHERE instr(key, '.p/') > 0
               AND substr(key, 1, instr(key, '.p/') - 1) IN (SELECT key FROM exported_tiles)",
            [],
        )
        .map_err(e)?;
        tx.commit().map_err(e)
    }

    // ---- the importing side ------------------------------------------------

    /// The last bundle imported, and from which mirror.
    pub fn import_position(&self) -> Result<Option<ImportPosition>> {
        let (Some(mirror_id), Some(mirror_name), Some(seq), Some(id)) = (
            self.meta("import.mirror")?,
            self.meta("import.mirror_name")?,
            self.meta("import.seq")?.and_then(|s| s.parse().ok()),
            self.meta("import.id")?,
        ) else {
            return Ok(None);
        };
        Ok(Some(ImportPosition {
            mirror_id,
            mirror_name,
            seq,
            id,
        }))
    }

    /// The bundle with manifest hash `id`, if it was imported.
    pub fn imported(&self, id: &str) -> Result<Option<ImportRecord>> {
        self.conn
            .query_row(
                "SELECT id, seq, mirror_id, mirror_name, full, imported, versions, deletions, refused
                 FROM imports WHERE id = ?1",
                [id],
                |r| {
                    Ok(ImportRecord {
                        id: r.get(0)?,
                        seq: r.get::<_, i64>(1)? as u64,
                        mirror_id: r.get(2)?,
                        mirror_name: r.get(3)?,
                        full: r.get(4)?,
                        imported: r.get(5)?,
                        versions: r.get::<_, i64>(6)? as u64,
                        deletions: r.get::<_, i64>(7)? as u64,
                        refused: r.get::<_, i64>(8)? as u64,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err("cannot read the import log", e))
    }

    /// Records a bundle imported and moves the position to it, in one transaction.
    pub fn record_import(&mut self, rec: &ImportRecord) -> Result<()> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot record the import", x);
        let tx = self.conn.transaction().map_err(e)?;
        tx.execute(
            "INSERT OR REPLACE INTO imports(id, seq, mirror_id, mirror_name, full, imported, versions, deletions, refused)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                rec.id,
                rec.seq as i64,
                rec.mirror_id,
                rec.mirror_name,
                rec.full,
                rec.imported,
                rec.versions as i64,
                rec.deletions as i64,
                rec.refused as i64
            ],
        )
        .map_err(e)?;
        for (k, v) in [
            ("import.mirror", rec.mirror_id.clone()),
            ("import.mirror_name", rec.mirror_name.clone()),
            ("import.seq", rec.seq.to_string()),
            ("import.id", rec.id.clone()),
        ] {
            tx.execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![k, v],
            )
            .map_err(e)?;
        }
        tx.commit().map_err(e)
    }

    /// Of a bundle's versions (`zip`: whole), the ones to fetch from it now:
    /// wanted and not yet published, or published graph-only and carried
    /// whole now (queued again for their zip). Versions of modules the
    /// filter does not want are left alone.
    pub fn bundle_todos(&mut self, versions: &[(IndexEntry, bool)]) -> Result<Vec<Todo>> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot plan the import", x);
        let tx = self.conn.transaction().map_err(e)?;
        let mut todos = Vec::new();
        {
            let mut q = tx
                .prepare_cached(
                    "SELECT v.module_id, v.attempts, v.state, m.wanted FROM versions v
                     JOIN modules m ON m.id = v.module_id WHERE m.path = ?1 AND v.version = ?2",
                )
                .map_err(e)?;
            let mut upgrade = tx
                .prepare_cached(
                    "UPDATE versions SET state = ?3, attempts = 0, next_attempt = NULL
                     WHERE module_id = ?1 AND version = ?2",
                )
                .map_err(e)?;
            for (entry, zip) in versions {
                let row: Option<(i64, i64, VersionState, bool)> = q
                    .query_row(params![entry.path, entry.version], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })
                    .optional()
                    .map_err(e)?;
                let Some((module_id, attempts, state, wanted)) = row else {
                    continue;
                };
                let due = match state {
                    VersionState::Pending | VersionState::Failed | VersionState::Missing => wanted,
                    VersionState::GraphOnly if *zip && wanted => {
                        upgrade
                            .execute(params![module_id, entry.version, VersionState::Pending])
                            .map_err(e)?;
                        true
                    }
                    _ => false,
                };
                if due {
                    todos.push(Todo {
                        module_id,
                        path: entry.path.clone(),
                        version: entry.version.clone(),
                        attempts,
                        zip: *zip,
                        pinned: false,
                    });
                }
            }
        }
        tx.commit().map_err(e)?;
        Ok(todos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::FeedOp;
    use crate::state::tests::{entry, open_temp, published};

    /// Every page of the additions, and of the deletions.
    fn additions(st: &State, full: bool) -> Vec<ExportVersion> {
        let mut all: Vec<ExportVersion> = Vec::new();
        loop {
            let after = all.last().map(|v| (v.path.clone(), v.version.clone()));
            let page = st
                .export_additions_page(
                    full,
                    after.as_ref().map(|(p, v)| (p.as_str(), v.as_str())),
                    1,
                )
                .unwrap();
            if page.is_empty() {
                break;
            }
            all.extend(page);
        }
        assert_eq!(st.export_additions_count(full).unwrap().0, all.len() as u64);
        all
    }

    fn deletions(st: &State) -> Vec<(i64, IndexEntry)> {
        let mut all: Vec<(i64, IndexEntry)> = Vec::new();
        loop {
            let after = all.last().map(|(_, e)| (e.path.clone(), e.version.clone()));
            let page = st
                .export_deletions_page(after.as_ref().map(|(p, v)| (p.as_str(), v.as_str())), 1)
                .unwrap();
            if page.is_empty() {
                break;
            }
            all.extend(page);
        }
        assert_eq!(st.export_deletions_count().unwrap(), all.len() as u64);
        all
    }

    #[test]
    fn a_delta_carries_what_is_new_and_what_went_since_the_last_export() {
        let (_d, mut st) = open_temp();
        let all = |_: &str| true;
        st.record_entries(
            &[
                entry("a.example/m", "v1.0.0"),
                entry("a.example/m", "v1.1.0"),
            ],
            &all,
            None,
        )
        .unwrap();
        let ids: Vec<(i64, String)> = additions(&st, true)
            .into_iter()
            .map(|v| (v.module_id, v.version))
            .collect();
        assert!(ids.is_empty(), "nothing is in the tree yet");
        let m = st.module("a.example/m").unwrap().unwrap().0;
        for v in ["v1.0.0", "v1.1.0"] {
            st.mark_published(&[published(m, v, Some(1))], &[], 0)
                .unwrap();
        }
        let first = additions(&st, false);
        assert_eq!(first.len(), 2);
        let rec = |seq| ExportRecord {
            seq,
            id: format!("id{seq}"),
            previous: None,
            full: false,
            created: 0,
            path: String::new(),
            versions: 0,
            deletions: 0,
            bytes: 0,
            tree_size: None,
        };
        st.record_export(&rec(1), &["sumdb/x/tile/8/0/000".into()])
            .unwrap();
        assert!(additions(&st, false).is_empty());
        assert!(deletions(&st).is_empty());
        assert!(
            st.exported_tiles()
                .unwrap()
                .contains("sumdb/x/tile/8/0/000")
        );
        assert_eq!(additions(&st, true).len(), 2, "full: all");

        st.unlist(&[(m, "v1.0.0".into())]).unwrap();
        st.mark_out_of_tree(&[(m, "v1.0.0".into())]).unwrap();
        let gone = deletions(&st);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].1.version, "v1.0.0");
        st.record_export(&rec(2), &[]).unwrap();
        assert!(deletions(&st).is_empty());
        assert_eq!(st.last_export().unwrap().unwrap().seq, 2);

        // Partial tiles are forgotten once their full tile was carried.
        let t = |k: &str| format!("sumdb/x/tile/8/{k}");
        st.record_export(&rec(3), &[t("0/001.p/3"), t("0/001.p/4"), t("1/000.p/1")])
            .unwrap();
        assert_eq!(st.exported_tiles().unwrap().len(), 4);
        st.record_export(&rec(4), &[t("0/001"), t("0/002.p/9")])
            .unwrap();
        let left = st.exported_tiles().unwrap();
        let mut left: Vec<&str> = left.iter().map(String::as_str).collect();
        left.sort();
        assert_eq!(
            left,
            [
                "sumdb/x/tile/8/0/000",
                "sumdb/x/tile/8/0/001",
                "sumdb/x/tile/8/0/002.p/9",
                "sumdb/x/tile/8/1/000.p/1"
            ]
        );
    }

    #[test]
    fn an_import_is_recorded_once_with_its_position() {
        let (_d, mut st) = open_temp();
        assert_eq!(st.import_position().unwrap(), None);
        let rec = ImportRecord {
            id: "abc".into(),
            seq: 3,
            mirror_id: "m1".into(),
            mirror_name: "up.example".into(),
            full: true,
            imported: 5,
            versions: 2,
            deletions: 0,
            refused: 0,
        };
        st.record_import(&rec).unwrap();
        assert_eq!(st.imported("abc").unwrap(), Some(rec.clone()));
        let pos = st.import_position().unwrap().unwrap();
        assert_eq!((pos.seq, pos.id.as_str()), (3, "abc"));
        assert_eq!(pos.mirror_name, "up.example");
    }

    #[test]
    fn bundle_versions_are_due_only_when_wanted_and_missing_here() {
        let (_d, mut st) = open_temp();
        let wants = |p: &str| p != "b.example/skip";
        let changes = vec![
            (FeedOp::Publish, entry("a.example/m", "v1.0.0")),
            (FeedOp::Publish, entry("a.example/m", "v1.1.0")),
            (FeedOp::Publish, entry("b.example/skip", "v1.0.0")),
        ];
        st.record_bundle_changes(&changes, &wants).unwrap();
        let m = st.module("a.example/m").unwrap().unwrap().0;
        st.mark_published(&[published(m, "v1.0.0", Some(1))], &[], 0)
            .unwrap();
        let asked: Vec<(IndexEntry, bool)> =
            changes.iter().map(|(_, e)| (e.clone(), true)).collect();
        let todos = st.bundle_todos(&asked).unwrap();
        let names: Vec<&str> = todos.iter().map(|t| t.version.as_str()).collect();
        assert_eq!(names, ["v1.1.0"], "published and unwanted ones are not due");
        assert_eq!(st.follow_cursor().unwrap(), None, "no feed cursor moved");
    }
}
