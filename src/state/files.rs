//! What `[filter].from_files` names: per file, the exact versions it wants
//! and whether each needs its zip, replaced as a whole on every sync.
//!
//! A version is wanted when its module is wanted by the filter (every
//! version, with its zip) or when a file names it (`versions.named`: 1 for
//! `.info` and `.mod` only, 2 with the zip — the strongest want of any
//! file). Replacing the set queues what is newly named, queues a graph-only
//! version again when its zip becomes wanted, and stops fetching what is no
//! longer wanted; prune then deletes what is in the tree and unwanted, and
//! the zip of a version only graph-only now (see [`super::tree`]).

use rusqlite::{OptionalExtension, params};

use super::version::{state_code, state_codes};
use super::{Result, State, VersionState, err};

/// One version a file names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedVersion {
    pub path: String,
    pub version: String,
    /// The `.zip` is needed too (else `.info` and `.mod` only).
    pub zip: bool,
    /// The line that names it (0: reached through a go.mod's requirement graph).
    pub line: usize,
    /// A go.sum's `h1:` for the zip and for the `.mod`, when it gives them.
    pub zip_h1: Option<String>,
    pub mod_h1: Option<String>,
}

/// One file and what it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedFile {
    /// As shown and stored: relative to the config file's directory when below it.
    pub file: String,
    /// `go.sum`, `go.mod` or `list`.
    pub kind: &'static str,
    pub versions: Vec<NamedVersion>,
}

/// What replacing the named set changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NameStats {
    /// Distinct versions the files name.
    pub named: u64,
    /// Of those, versions the database did not know.
    pub new: u64,
    /// Versions queued for fetching (new, or known but not mirrored).
    pub queued: u64,
    /// Graph-only versions queued again because their zip is now wanted.
    pub upgraded: u64,
    /// Versions no longer wanted whose fetch was called off.
    pub dropped: u64,
}

/// A hash a file pins for a version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinnedHash {
    pub file: String,
    pub line: usize,
    /// `true`: the zip's `h1:`; `false`: the `.mod`'s.
    pub zip: bool,
    pub h1: String,
}

/// Per file, for `status`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FileCounts {
    pub file: String,
    pub kind: String,
    /// Versions it names.
    pub versions: u64,
    /// Of those, versions whose wanted files are all in the tree.
    pub mirrored: u64,
    /// Of those named, how many need only `.info` and `.mod`.
    pub graph_only: u64,
}

impl State {
    /// Replaces what the files name by `files`, in one transaction, and
    /// brings the queue in line. `wants` is the filter's verdict for a
    /// module the database has not seen.
    pub fn name_versions(
        &mut self,
        files: &[NamedFile],
        wants: &dyn Fn(&str) -> bool,
    ) -> Result<NameStats> {
        self.name_versions_of(files, false, wants)
    }

    /// [`State::name_versions`] for one kind of namer: the project files
    /// (`demand` false) or demand's set (`demand` true, kind
    /// [`super::demand::DEMAND_KIND`]); each replaces only its own names,
    /// and the want of each version is the strongest of all of them.
    pub(super) fn name_versions_of(
        &mut self,
        files: &[NamedFile],
        demand: bool,
        wants: &dyn Fn(&str) -> bool,
    ) -> Result<NameStats> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot record what from_files names", x);
        let tx = self.conn.transaction().map_err(e)?;
        let mut stats = NameStats::default();
        let now = crate::clock::now();
        tx.execute(
            "DELETE FROM named WHERE file IN
                (SELECT file FROM named_files WHERE (kind = ?1) = ?2)",
            params![super::demand::DEMAND_KIND, demand],
        )
        .map_err(e)?;
        tx.execute(
            "DELETE FROM named_files WHERE (kind = ?1) = ?2",
            params![super::demand::DEMAND_KIND, demand],
        )
        .map_err(e)?;
        {
            let mut add_file = tx
                .prepare_cached("INSERT OR IGNORE INTO named_files(file, kind) VALUES (?1, ?2)")
                .map_err(e)?;
            let mut find = tx
                .prepare_cached("SELECT id FROM modules WHERE path = ?1")
                .map_err(e)?;
            let mut add_module = tx
                .prepare_cached("INSERT INTO modules(path, wanted) VALUES (?1, ?2)")
                .map_err(e)?;
            let mut add_version = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO versions(module_id, version, state, first_seen) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(e)?;
            let mut add_named = tx
                .prepare_cached(
                    "INSERT INTO named(file, module_id, version, zip, line, zip_h1, mod_h1)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT(file, module_id, version) DO UPDATE SET
                        zip = max(zip, excluded.zip),
                        zip_h1 = coalesce(excluded.zip_h1, zip_h1),
                        mod_h1 = coalesce(excluded.mod_h1, mod_h1)",
                )
                .map_err(e)?;
            for f in files {
                add_file.execute(params![f.file, f.kind]).map_err(e)?;
                for v in &f.versions {
                    let id: i64 = match find
                        .query_row([&v.path], |r| r.get(0))
                        .optional()
                        .map_err(e)?
                    {
                        Some(id) => id,
                        None => {
                            add_module
                                .execute(params![v.path, wants(&v.path)])
                                .map_err(e)?;
                            tx.last_insert_rowid()
                        }
                    };
                    let n = add_version
                        .execute(params![id, v.version, VersionState::Pending, now])
                        .map_err(e)? as u64;
                    super::counts::inserted(&tx, VersionState::Pending, true, n).map_err(e)?;
                    stats.new += n;
                    add_named
                        .execute(params![
                            f.file,
                            id,
                            v.version,
                            v.zip,
                            v.line as i64,
                            v.zip_h1,
                            v.mod_h1
                        ])
                        .map_err(e)?;
                }
            }
        }
        // A want that weakens (no longer named, or for its go.mod alone now)
        // starts `prune.keep`'s clock; one that grows again stops it (below).
        tx.execute(
            "UPDATE versions SET unwanted_since = ?1
             WHERE named > 0
               AND named > coalesce((SELECT max(n.zip) + 1 FROM named n
                                     WHERE n.module_id = versions.module_id
                                       AND n.version = versions.version), 0)",
            [now],
        )
        .map_err(e)?;
        tx.execute(
            "UPDATE versions SET named = 0 WHERE named > 0
               AND NOT EXISTS (SELECT 1 FROM named n
                               WHERE n.module_id = versions.module_id AND n.version = versions.version)",
            [],
        )
        .map_err(e)?;
        // Row by row through the primary key: the named set is small, the
        // versions table may hold the whole index.
        {
            let mut wants = tx
                .prepare_cached(
                    "SELECT module_id, version, max(zip) FROM named GROUP BY module_id, version",
                )
                .map_err(e)?;
            let mut set = tx
                .prepare_cached(
                    "UPDATE versions SET
                        unwanted_since = CASE WHEN ?3 > named THEN NULL ELSE unwanted_since END,
                        named = ?3
                     WHERE module_id = ?1 AND version = ?2",
                )
                .map_err(e)?;
            let mut rows = wants.query([]).map_err(e)?;
            while let Some(r) = rows.next().map_err(e)? {
                let (id, version, zip): (i64, String, bool) = (
                    r.get(0).map_err(e)?,
                    r.get(1).map_err(e)?,
                    r.get(2).map_err(e)?,
                );
                stats.named += set
                    .execute(params![id, version, if zip { 2 } else { 1 }])
                    .map_err(e)? as u64;
            }
        }
        // What these files name, not what every namer names.
        stats.named = tx
            .query_row(
                "SELECT count(*) FROM (SELECT DISTINCT n.module_id, n.version FROM named n
                    JOIN named_files f ON f.file = n.file WHERE (f.kind = ?1) = ?2)",
                params![super::demand::DEMAND_KIND, demand],
                |r| r.get::<_, i64>(0),
            )
            .map_err(e)? as u64;
        // Named and not mirrored: fetch it.
        stats.queued = stats.new
            + tx.execute(
                "UPDATE versions SET state = ?1, attempts = 0, next_attempt = NULL
                 WHERE named > 0 AND state = ?2 AND in_tree = 0",
                params![VersionState::Pending, VersionState::Seen],
            )
            .map_err(e)? as u64;
        // Graph-only, and now a file wants its zip: fetch it again, zip
        // included (a filter that starts wanting its module does the same,
        // in `apply_filter`).
        stats.upgraded = tx
            .execute(
                "UPDATE versions SET state = ?1, attempts = 0, next_attempt = NULL
                 WHERE named > 0 AND named = 2 AND state = ?2",
                params![VersionState::Pending, VersionState::GraphOnly],
            )
            .map_err(e)? as u64;
        // Neither named nor wanted by the filter: stop fetching it.
        stats.dropped = tx
            .execute(
                concat!(
                    "UPDATE versions SET state = ?1
                 WHERE state IN (",
                    state_codes!(Pending, Failed, Missing),
                    ") AND named = 0
                   AND module_id IN (SELECT id FROM modules WHERE wanted = 0)"
                ),
                params![VersionState::Seen],
            )
            .map_err(e)? as u64;
        // Held ones too (apart: the partial index on held versions is their way in).
        stats.dropped += tx
            .execute(
                concat!(
                    "UPDATE versions SET state = ?1
                     WHERE state IN (",
                    state_codes!(Held, Denied),
                    ") AND state = ",
                    state_code!(Held),
                    " AND named = 0
                       AND module_id IN (SELECT id FROM modules WHERE wanted = 0)"
                ),
                params![VersionState::Seen],
            )
            .map_err(e)? as u64;
        tx.commit().map_err(e)?;
        Ok(stats)
    }

    /// The hashes the files pin for a version (a go.sum's lines).
    pub fn pinned_hashes(&self, module_id: i64, version: &str) -> Result<Vec<PinnedHash>> {
        let mut out = Vec::new();
        let rows: Vec<(String, i64, Option<String>, Option<String>)> = self.query_vec(
            "cannot read pinned hashes",
            "SELECT file, line, zip_h1, mod_h1 FROM named
                 WHERE module_id = ?1 AND version = ?2 ORDER BY file",
            params![module_id, version],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        for (file, line, zip_h1, mod_h1) in rows {
            for (zip, h1) in [(true, zip_h1), (false, mod_h1)] {
                if let Some(h1) = h1 {
                    out.push(PinnedHash {
                        file: file.clone(),
                        line: line as usize,
                        zip,
                        h1,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Per named file: how many versions it names and how many are mirrored.
    pub fn file_counts(&self) -> Result<Vec<FileCounts>> {
        self.query_vec(
            "cannot count named versions",
            concat!(
                "SELECT f.file, f.kind, count(n.version),
                    coalesce(sum(CASE WHEN v.in_tree = 1 AND (v.state = ",
                state_code!(Published),
                " OR (v.state = ",
                state_code!(GraphOnly),
                " AND n.zip = 0))
                                      THEN 1 ELSE 0 END), 0),
                    coalesce(sum(CASE WHEN n.zip = 0 THEN 1 ELSE 0 END), 0)
                 FROM named_files f
                 LEFT JOIN named n ON n.file = f.file
                 LEFT JOIN versions v ON v.module_id = n.module_id AND v.version = n.version
                 WHERE f.kind <> 'demand'
                 GROUP BY f.file, f.kind ORDER BY f.file"
            ),
            [],
            |r| {
                Ok(FileCounts {
                    file: r.get(0)?,
                    kind: r.get(1)?,
                    versions: r.get::<_, i64>(2)? as u64,
                    mirrored: r.get::<_, i64>(3)? as u64,
                    graph_only: r.get::<_, i64>(4)? as u64,
                })
            },
        )
    }

    /// For a dry run: whether a sync would fetch this named version (it is
    /// not in the tree with what it needs).
    pub fn named_would_fetch(&self, path: &str, version: &str, zip: bool) -> Result<bool> {
        let row: Option<(VersionState, bool)> = self
            .conn
            .query_row(
                "SELECT v.state, v.in_tree FROM versions v JOIN modules m ON m.id = v.module_id
                     WHERE m.path = ?1 AND v.version = ?2",
                params![path, version],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|x| self.err("cannot look up versions", x))?;
        Ok(match row {
            None => true,
            Some((VersionState::Published, true)) => false,
            Some((VersionState::GraphOnly, true)) => zip,
            // Waiting for a retry or for their cooldown, or denied: `plan`
            // says what becomes of them (they are not queued again).
            Some((
                VersionState::Failed
                | VersionState::Missing
                | VersionState::Held
                | VersionState::Denied,
                _,
            )) => false,
            Some(_) => true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{entry, open_temp, published};
    use super::*;

    fn named(path: &str, version: &str, zip: bool) -> NamedVersion {
        NamedVersion {
            path: path.into(),
            version: version.into(),
            zip,
            line: 1,
            zip_h1: None,
            mod_h1: Some("h1:m".into()),
        }
    }

    fn file(name: &str, versions: Vec<NamedVersion>) -> NamedFile {
        NamedFile {
            file: name.into(),
            kind: "go.sum",
            versions,
        }
    }

    #[test]
    fn naming_queues_upgrades_and_drops_and_the_deletion_set_follows() {
        let (_d, mut st) = open_temp();
        let none = |_: &str| false;
        // The index saw a version of an unwanted module.
        st.record_entries(&[entry("a.example/m", "v1.0.0")], &none, None)
            .unwrap();
        let s = st
            .name_versions(
                &[file(
                    "a/go.sum",
                    vec![
                        named("a.example/m", "v1.0.0", true),
                        named("a.example/m", "v0.9.0", false),
                    ],
                )],
                &none,
            )
            .unwrap();
        assert_eq!((s.named, s.new, s.queued), (2, 1, 2));
        let todo = st.todo_page(None, 10, 0, false).unwrap();
        let got: Vec<_> = todo
            .iter()
            .map(|t| (t.version.as_str(), t.zip, t.pinned))
            .collect();
        assert_eq!(got, [("v0.9.0", false, true), ("v1.0.0", true, true)]);
        let m = todo[0].module_id;
        // Both published: one graph-only, one whole.
        let mut g = published(m, "v0.9.0", None);
        g.zip = false;
        st.mark_published(&[g, published(m, "v1.0.0", None)], &[], 5)
            .unwrap();
        assert_eq!(
            st.version_state(m, "v0.9.0").unwrap(),
            Some(VersionState::GraphOnly)
        );
        assert_eq!(
            st.listed_versions(m).unwrap().len(),
            1,
            "graph-only is not listed"
        );
        assert_eq!(st.deletion_count().unwrap(), 0);
        let c = st.file_counts().unwrap();
        assert_eq!((c[0].versions, c[0].mirrored, c[0].graph_only), (2, 2, 1));
        assert_eq!(
            st.pinned_hashes(m, "v0.9.0").unwrap(),
            [PinnedHash {
                file: "a/go.sum".into(),
                line: 1,
                zip: false,
                h1: "h1:m".into()
            }]
        );

        // Another file names v0.9.0 whole, and v1.0.0 only for its go.mod.
        let s = st
            .name_versions(
                &[file(
                    "b/go.sum",
                    vec![
                        named("a.example/m", "v0.9.0", true),
                        named("a.example/m", "v1.0.0", false),
                    ],
                )],
                &none,
            )
            .unwrap();
        assert_eq!((s.upgraded, s.queued), (1, 0));
        assert_eq!(
            st.version_state(m, "v0.9.0").unwrap(),
            Some(VersionState::Pending)
        );
        assert!(st.todo_page(None, 10, 0, false).unwrap()[0].zip);
        let doomed = st.deletion_page(None, 10).unwrap();
        assert_eq!(doomed.len(), 1);
        assert_eq!(doomed[0].version, "v1.0.0");
        assert_eq!(doomed[0].reason, super::super::DeletionReason::ZipOnly);

        // No file at all: everything in the tree goes, pending work stops.
        let s = st.name_versions(&[], &none).unwrap();
        assert_eq!(s.dropped, 1);
        assert_eq!(st.deletion_count().unwrap(), 2);
        assert!(st.todo_page(None, 10, 0, false).unwrap().is_empty());
        assert!(st.file_counts().unwrap().is_empty());
    }
}
