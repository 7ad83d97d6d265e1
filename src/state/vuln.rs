//! The vulnerability database this mirror holds, and what `audit` remembers.
//!
//! * `vuln_entries`: one row per OSV entry in the tree's `vuln/ID/`, with
//!   its `modified` (what a sync compares with the upstream's index to fetch
//!   only what changed), what `vuln::format` kept of it (opaque JSON here:
//!   the affected modules and ranges the audit evaluates), the sizes and
//!   SHA-256 of its `.json` and `.json.gz` (checked before an export carries
//!   them), and the `modified` a bundle last carried (`exported`).
//! * `vuln_indexes`: the same for `index/{db,modules,vulns}.json`.
//! * meta `vulndb.modified` (the database's own `modified`), `vulndb.url`
//!   (where it came from), `vulndb.checked` (when an upstream last confirmed
//!   it), `vulndb.changed` (when it last moved), `vulndb.exported` (the
//!   `modified` the last bundle carried).
//! * `module_facts`: per module, what the go.mod of its highest mirrored
//!   version says (deprecation, retractions), and which version that was, so
//!   `audit` reads a `.mod` again only when a higher version arrives.
//! * meta `audit.last`: the counts of the last audit (the metrics file shows them).

use rusqlite::{OptionalExtension, params};

use super::{Result, State, VersionState, err};

/// One file of the database as the tree holds it (`.json` and `.json.gz`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VulnFile {
    pub json_size: i64,
    pub json_sha256: String,
    pub gz_size: i64,
    pub gz_sha256: String,
}

/// An entry as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VulnEntryRow {
    pub id: String,
    pub modified: String,
    /// `vuln::format::Entry` as JSON.
    pub summary: String,
    pub file: VulnFile,
}

/// What `status` and the metrics file show of the database.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct VulnStatus {
    /// Where it was last read from (credentials masked).
    pub url: Option<String>,
    /// The database's `modified` (RFC 3339), `None` when none is held.
    pub modified: Option<String>,
    pub entries: i64,
    /// When an upstream last confirmed it current (Unix seconds).
    pub checked: Option<i64>,
    /// When it last changed here (Unix seconds).
    pub changed: Option<i64>,
}

/// A mirrored version, for the audit: its module's id and path, the version,
/// and whether it is listed (published with its zip) or graph-only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditVersion {
    pub module_id: i64,
    pub module: String,
    pub version: String,
    pub graph_only: bool,
}

/// What a module's highest mirrored go.mod says (cached for the audit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleFacts {
    pub version: String,
    pub deprecated: Option<String>,
    /// The retractions as JSON (`vuln`'s audit owns the shape).
    pub retracts: String,
}

/// A version a `from_files` file names, with where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedPin {
    pub file: String,
    pub kind: String,
    pub module: String,
    pub version: String,
    /// 0: reached through a go.mod's requirement graph.
    pub line: i64,
    /// The build needs its zip (else only its go.mod: not built).
    pub zip: bool,
}

impl State {
    /// What is held, for `status` and the metrics file.
    pub fn vuln_status(&self) -> Result<VulnStatus> {
        let num =
            |k: &str| -> Result<Option<i64>> { Ok(self.meta(k)?.and_then(|v| v.parse().ok())) };
        let entries = self
            .conn
            .query_row("SELECT count(*) FROM vuln_entries", [], |r| r.get(0))
            .map_err(|e| self.err("cannot count vulnerability entries", e))?;
        Ok(VulnStatus {
            url: self.meta("vulndb.url")?,
            modified: self.meta("vulndb.modified")?,
            entries,
            checked: num("vulndb.checked")?,
            changed: num("vulndb.changed")?,
        })
    }

    /// Every entry held: id and `modified`.
    pub fn vuln_held(&self) -> Result<Vec<(String, String)>> {
        self.query_vec(
            "cannot read the vulnerability entries",
            "SELECT id, modified FROM vuln_entries ORDER BY id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// Every entry held, with what was kept of it.
    pub fn vuln_entries(&self) -> Result<Vec<VulnEntryRow>> {
        self.query_vec(
            "cannot read the vulnerability entries",
            "SELECT id, modified, summary, json_size, json_sha256, gz_size, gz_sha256
                 FROM vuln_entries ORDER BY id",
            [],
            |r| {
                Ok(VulnEntryRow {
                    id: r.get(0)?,
                    modified: r.get(1)?,
                    summary: r.get(2)?,
                    file: VulnFile {
                        json_size: r.get(3)?,
                        json_sha256: r.get(4)?,
                        gz_size: r.get(5)?,
                        gz_sha256: r.get(6)?,
                    },
                })
            },
        )
    }

    /// The index files as recorded, by name.
    pub fn vuln_indexes(&self) -> Result<Vec<(String, VulnFile)>> {
        self.query_vec(
            "cannot read the vulnerability indexes",
            "SELECT name, json_size, json_sha256, gz_size, gz_sha256 FROM vuln_indexes ORDER BY name",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    VulnFile {
                        json_size: r.get(1)?,
                        json_sha256: r.get(2)?,
                        gz_size: r.get(3)?,
                        gz_sha256: r.get(4)?,
                    },
                ))
            },
        )
    }

    /// Whether entry `id` is held (prune keeps its files).
    pub fn vuln_entry_held(&self, id: &str) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM vuln_entries WHERE id = ?1)",
                [id],
                |r| r.get(0),
            )
            .map_err(|e| self.err("cannot read the vulnerability entries", e))
    }

    /// Records a new state of the database in one transaction: the entries
    /// fetched (already in the tree), the indexes about to be written, its
    /// `modified`, where it came from and when.
    pub fn record_vuln_update(
        &mut self,
        modified: &str,
        url: &str,
        entries: &[VulnEntryRow],
        indexes: &[(String, VulnFile)],
        now: i64,
    ) -> Result<()> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot record the vulnerability database", x);
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT INTO vuln_entries(id, modified, summary, json_size, json_sha256, gz_size, gz_sha256)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT(id) DO UPDATE SET modified = excluded.modified,
                        summary = excluded.summary, json_size = excluded.json_size,
                        json_sha256 = excluded.json_sha256, gz_size = excluded.gz_size,
                        gz_sha256 = excluded.gz_sha256",
                )
                .map_err(e)?;
            for r in entries {
                put.execute(params![
                    r.id,
                    r.modified,
                    r.summary,
                    r.file.json_size,
                    r.file.json_sha256,
                    r.file.gz_size,
                    r.file.gz_sha256
                ])
                .map_err(e)?;
            }
            let mut put = tx
                .prepare_cached(
                    "INSERT INTO vuln_indexes(name, json_size, json_sha256, gz_size, gz_sha256)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(name) DO UPDATE SET json_size = excluded.json_size,
                        json_sha256 = excluded.json_sha256, gz_size = excluded.gz_size,
                        gz_sha256 = excluded.gz_sha256",
                )
                .map_err(e)?;
            for (name, f) in indexes {
                put.execute(params![
                    name,
                    f.json_size,
                    f.json_sha256,
                    f.gz_size,
                    f.gz_sha256
                ])
                .map_err(e)?;
            }
            let mut meta = tx
                .prepare_cached(
                    "INSERT INTO meta(key, value) VALUES (?1, ?2)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                )
                .map_err(e)?;
            let now = now.to_string();
            for (k, v) in [
                ("vulndb.modified", modified),
                ("vulndb.url", url),
                ("vulndb.checked", now.as_str()),
                ("vulndb.changed", now.as_str()),
            ] {
                meta.execute(params![k, v]).map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    /// An upstream confirmed the database held is current.
    pub fn record_vuln_checked(&mut self, url: &str, now: i64) -> Result<()> {
        self.set_meta("vulndb.url", url)?;
        self.set_meta("vulndb.checked", &now.to_string())
    }

    /// When a followed mirror's implied database (`url`) was last found
    /// absent: (url, Unix seconds).
    pub fn vuln_absent(&self) -> Result<Option<(String, i64)>> {
        Ok(self.meta("vulndb.absent")?.and_then(|v| {
            let (at, url) = v.split_once(' ')?;
            Some((url.to_string(), at.parse().ok()?))
        }))
    }

    /// Records (or, with `None`, forgets) that `url` had no database at `at`.
    pub fn set_vuln_absent(&mut self, absent: Option<(&str, i64)>) -> Result<()> {
        match absent {
            Some((url, at)) => self.set_meta("vulndb.absent", &format!("{at} {url}")),
            None => self
                .conn
                .execute("DELETE FROM meta WHERE key = 'vulndb.absent'", [])
                .map(|_| ())
                .map_err(|e| self.err("cannot write meta", e)),
        }
    }

    // ---- export ------------------------------------------------------------

    /// The entries a bundle must carry: all of them for a full bundle, else
    /// those whose `modified` the far side has not received yet. With the
    /// database's `modified` and the one the last bundle carried.
    pub fn vuln_export_plan(
        &self,
        full: bool,
    ) -> Result<(Vec<VulnEntryRow>, Option<String>, Option<String>)> {
        let sql = if full {
            "SELECT id, modified, '', json_size, json_sha256, gz_size, gz_sha256
                 FROM vuln_entries ORDER BY id"
        } else {
            "SELECT id, modified, '', json_size, json_sha256, gz_size, gz_sha256
                 FROM vuln_entries WHERE exported IS NULL OR exported != modified ORDER BY id"
        };
        let rows = self.query_vec("cannot plan the vulnerability export", sql, [], |r| {
            Ok(VulnEntryRow {
                id: r.get(0)?,
                modified: r.get(1)?,
                summary: r.get(2)?,
                file: VulnFile {
                    json_size: r.get(3)?,
                    json_sha256: r.get(4)?,
                    gz_size: r.get(5)?,
                    gz_sha256: r.get(6)?,
                },
            })
        })?;
        Ok((
            rows,
            self.meta("vulndb.modified")?,
            self.meta("vulndb.exported")?,
        ))
    }

    /// A bundle carrying the database at `modified` and these entries (at
    /// the `modified` each had) was written and recorded.
    pub fn record_vuln_export(
        &mut self,
        modified: &str,
        carried: &[(String, String)],
    ) -> Result<()> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot record the vulnerability export", x);
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut mark = tx
                .prepare_cached("UPDATE vuln_entries SET exported = ?2 WHERE id = ?1")
                .map_err(e)?;
            for (id, m) in carried {
                mark.execute(params![id, m]).map_err(e)?;
            }
            tx.execute(
                "INSERT INTO meta(key, value) VALUES ('vulndb.exported', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [modified],
            )
            .map_err(e)?;
        }
        tx.commit().map_err(e)
    }

    // ---- audit -------------------------------------------------------------

    /// Every version in the tree (listed or graph-only), in module order, to
    /// `f`, one module at a time: memory holds one module's versions.
    pub fn for_each_module_in_tree(
        &self,
        modules: &dyn Fn(&str) -> bool,
        mut f: impl FnMut(Vec<AuditVersion>) -> Result<()>,
    ) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT m.id, m.path, v.version, v.state FROM versions v
                     JOIN modules m ON m.id = v.module_id
                     WHERE v.in_tree = 1 AND v.state IN (?1, ?2)
                     ORDER BY m.path, v.module_id",
            )
            .map_err(|e| self.err("cannot read the versions in the tree", e))?;
        let mut rows = stmt
            .query(params![VersionState::Published, VersionState::GraphOnly])
            .map_err(|e| self.err("cannot read the versions in the tree", e))?;
        let mut current: Vec<AuditVersion> = Vec::new();
        loop {
            let row = rows
                .next()
                .map_err(|e| self.err("cannot read the versions in the tree", e))?;
            let Some(row) = row else { break };
            let read = |row: &rusqlite::Row<'_>| -> rusqlite::Result<AuditVersion> {
                let state: VersionState = row.get(3)?;
                Ok(AuditVersion {
                    module_id: row.get(0)?,
                    module: row.get(1)?,
                    version: row.get(2)?,
                    graph_only: state == VersionState::GraphOnly,
                })
            };
            let v = read(row).map_err(|e| self.err("cannot read the versions in the tree", e))?;
            if !modules(&v.module) {
                continue;
            }
            if current.first().is_some_and(|c| c.module_id != v.module_id) {
                f(std::mem::take(&mut current))?;
            }
            current.push(v);
        }
        if !current.is_empty() {
            f(current)?;
        }
        Ok(())
    }

    /// The cached go.mod facts of every module that has some.
    pub fn module_facts(&self) -> Result<std::collections::HashMap<i64, ModuleFacts>> {
        let rows = self.query_vec(
            "cannot read the module facts",
            "SELECT module_id, version, deprecated, retracts FROM module_facts",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    ModuleFacts {
                        version: r.get(1)?,
                        deprecated: r.get(2)?,
                        retracts: r.get(3)?,
                    },
                ))
            },
        )?;
        Ok(rows.into_iter().collect())
    }

    /// Replaces the cached facts of these modules.
    pub fn set_module_facts(&mut self, facts: &[(i64, ModuleFacts)]) -> Result<()> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot record the module facts", x);
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT INTO module_facts(module_id, version, deprecated, retracts)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(module_id) DO UPDATE SET version = excluded.version,
                        deprecated = excluded.deprecated, retracts = excluded.retracts",
                )
                .map_err(e)?;
            for (id, f) in facts {
                put.execute(params![id, f.version, f.deprecated, f.retracts])
                    .map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    /// Every version a `from_files` file names, with the file and line.
    pub fn named_pins(&self) -> Result<Vec<NamedPin>> {
        self.query_vec(
            "cannot read what from_files names",
            "SELECT n.file, f.kind, m.path, n.version, n.line, n.zip FROM named n
                 JOIN named_files f ON f.file = n.file
                 JOIN modules m ON m.id = n.module_id
                 WHERE f.kind <> 'demand'
                 ORDER BY n.file, n.line, m.path, n.version",
            [],
            |r| {
                Ok(NamedPin {
                    file: r.get(0)?,
                    kind: r.get(1)?,
                    module: r.get(2)?,
                    version: r.get(3)?,
                    line: r.get(4)?,
                    zip: r.get::<_, i64>(5)? != 0,
                })
            },
        )
    }

    /// Stores the last audit's counts (JSON) for the metrics file.
    pub fn record_audit(&mut self, counts_json: &str) -> Result<()> {
        self.set_meta("audit.last", counts_json)
    }

    /// The last audit's counts, as stored.
    pub fn last_audit(&self) -> Result<Option<String>> {
        self.meta("audit.last")
    }

    /// The module id of `path`, if known.
    pub fn module_id(&self, path: &str) -> Result<Option<i64>> {
        self.conn
            .query_row("SELECT id FROM modules WHERE path = ?1", [path], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err("cannot read modules", e))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::open_temp;
    use super::*;

    fn row(id: &str, modified: &str) -> VulnEntryRow {
        VulnEntryRow {
            id: id.into(),
            modified: modified.into(),
            summary: "{}".into(),
            file: VulnFile {
                json_size: 2,
                json_sha256: "aa".into(),
                gz_size: 3,
                gz_sha256: "bb".into(),
            },
        }
    }

    #[test]
    fn updates_exports_and_status() {
        let (_d, mut st) = open_temp();
        assert_eq!(st.vuln_status().unwrap(), VulnStatus::default());
        st.record_vuln_update(
            "2024-01-02T00:00:00Z",
            "https://v.example",
            &[
                row("GO-1-1", "2024-01-01T00:00:00Z"),
                row("GO-1-2", "2024-01-02T00:00:00Z"),
            ],
            &[("db".into(), row("x", "y").file)],
            100,
        )
        .unwrap();
        let s = st.vuln_status().unwrap();
        assert_eq!(s.entries, 2);
        assert_eq!(s.modified.as_deref(), Some("2024-01-02T00:00:00Z"));
        assert_eq!((s.checked, s.changed), (Some(100), Some(100)));
        assert!(st.vuln_entry_held("GO-1-1").unwrap() && !st.vuln_entry_held("GO-1-3").unwrap());
        let (all, m, exported) = st.vuln_export_plan(false).unwrap();
        assert_eq!(
            (all.len(), m.as_deref(), exported),
            (2, Some("2024-01-02T00:00:00Z"), None)
        );
        st.record_vuln_export(
            "2024-01-02T00:00:00Z",
            &[
                ("GO-1-1".into(), "2024-01-01T00:00:00Z".into()),
                ("GO-1-2".into(), "2024-01-02T00:00:00Z".into()),
            ],
        )
        .unwrap();
        assert!(st.vuln_export_plan(false).unwrap().0.is_empty());
        // One entry changes: only it is carried next time; a full bundle carries all.
        st.record_vuln_update(
            "2024-01-03T00:00:00Z",
            "https://v.example",
            &[row("GO-1-1", "2024-01-03T00:00:00Z")],
            &[],
            200,
        )
        .unwrap();
        let (delta, _, exported) = st.vuln_export_plan(false).unwrap();
        assert_eq!(
            delta.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["GO-1-1"]
        );
        assert_eq!(exported.as_deref(), Some("2024-01-02T00:00:00Z"));
        assert_eq!(st.vuln_export_plan(true).unwrap().0.len(), 2);
        st.record_vuln_checked("https://w.example", 300).unwrap();
        let s = st.vuln_status().unwrap();
        assert_eq!((s.checked, s.changed), (Some(300), Some(200)));
        assert_eq!(s.url.as_deref(), Some("https://w.example"));
    }

    #[test]
    fn module_facts_are_replaced() {
        let (_d, mut st) = open_temp();
        let f = |v: &str| ModuleFacts {
            version: v.into(),
            deprecated: Some("use y".into()),
            retracts: "[]".into(),
        };
        st.set_module_facts(&[(1, f("v1.0.0"))]).unwrap();
        st.set_module_facts(&[(1, f("v1.1.0")), (2, f("v0.1.0"))])
            .unwrap();
        let all = st.module_facts().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[&1].version, "v1.1.0");
    }
}
