//! What the mirror's pages ([`crate::site`]) are written from, and what they
//! remember between runs so that a run rewrites only what changed:
//!
//! * `site_dirty`: modules whose page must be written again. A trigger
//!   (`site_dirty_on_update`) adds a module whenever it is marked for its `@v/list`
//!   and `@latest` to be rewritten — every publication, repair and prune
//!   does that in its own transaction — so a page follows its module
//!   without a second statement to keep in step. A module leaves the set
//!   once its page is written (or, for a module with nothing left, once its
//!   page is deleted).
//! * `site_search`: every module with a page, the term it is searched by
//!   (the lowercased last element of its path) and the shard that lists it.
//! * `site_shards`: the shards, each a prefix of terms: a module is filed
//!   under the longest shard that is a prefix of its term, and a shard that
//!   grows past its limit is split into one shard per next character. The
//!   set is prefix-closed (the root `""` is always there), so a reader finds
//!   a term's shard the same way.
//! * `site_runs`: the lag behind the upstream each run saw, for the chart.
//! * meta `site.format`: the format of the pages written; another one
//!   (a new gomirror) writes every page again.

use rusqlite::{OptionalExtension, Transaction, params};

use super::version::{state_code, state_codes};
use super::{FeedOp, ModuleFacts, Result, State, err};

/// A version a module's page lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteVersion {
    pub version: String,
    /// The `.info` time (RFC 3339), as the origin gave it.
    pub time: Option<String>,
    /// Mirrored for its go.mod alone (no zip, not listed).
    pub graph_only: bool,
    /// Its files' bytes in the tree.
    pub bytes: i64,
}

/// A module whose page was written: how it is searched and what it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filed {
    pub module_id: i64,
    /// Its search term (`site::search::term`).
    pub term: String,
    /// Versions its page lists, and their bytes.
    pub versions: i64,
    pub bytes: i64,
}

/// What the front page says the mirror holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SiteCounts {
    /// Modules with a page (something in the tree).
    pub modules: i64,
    /// Versions the pages list (published and graph-only) and their bytes.
    pub versions: i64,
    pub bytes: i64,
    /// Versions of `golang.org/toolchain` listed.
    pub toolchains: i64,
}

/// A version the feed recorded as published, still in the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addition {
    pub path: String,
    pub version: String,
    /// RFC 3339.
    pub time: String,
}

/// A run of `sync` or `import`, for the chart.
#[derive(Clone, Debug, PartialEq)]
pub struct RunPoint {
    pub id: i64,
    pub command: String,
    pub started: i64,
    pub finished: Option<i64>,
    pub exit_code: Option<i64>,
    pub published: Option<u64>,
    pub seconds: Option<f64>,
    /// Seconds behind the upstream when its pages were written.
    pub lag: Option<i64>,
}

/// The longest shard that is a prefix of `term` (the root at least).
fn shard_for(tx: &Transaction<'_>, term: &str) -> rusqlite::Result<String> {
    let mut exists = tx.prepare_cached("SELECT 1 FROM site_shards WHERE prefix = ?1")?;
    let mut ends: Vec<usize> = term.char_indices().map(|(i, _)| i).skip(1).collect();
    ends.push(term.len());
    for end in ends.into_iter().rev() {
        let p = &term[..end];
        if exists.query_row([p], |_| Ok(())).optional()?.is_some() {
            return Ok(p.to_string());
        }
    }
    Ok(String::new())
}

fn mark_shard(tx: &Transaction<'_>, prefix: &str) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE site_shards SET dirty = 1 WHERE prefix = ?1")?
        .execute([prefix])?;
    Ok(())
}

impl State {
    /// The format of the pages written (`None`: never written).
    pub fn site_format(&self) -> Result<Option<String>> {
        self.meta("site.format")
    }

    /// Marks every page to be written again, in `format`: every module in
    /// the tree, every module that has a page, every shard.
    pub fn site_rewrite_all(&mut self, format: &str) -> Result<()> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot mark the pages to be written", x);
        let tx = self.conn.transaction().map_err(e)?;
        tx.execute_batch(
            "INSERT OR IGNORE INTO site_dirty(module_id)
                 SELECT DISTINCT module_id FROM versions WHERE in_tree = 1;
             INSERT OR IGNORE INTO site_dirty(module_id) SELECT module_id FROM site_search;
             INSERT OR IGNORE INTO site_shards(prefix, dirty) VALUES ('', 1);
             UPDATE site_shards SET dirty = 1;",
        )
        .map_err(e)?;
        tx.execute(
            "INSERT INTO meta(key, value) VALUES ('site.format', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [format],
        )
        .map_err(e)?;
        tx.commit().map_err(e)
    }

    /// Marks the pages of these modules (those that have one) to be written
    /// again: what the vulnerability database says of them changed.
    pub fn site_mark_modules(&mut self, paths: &[String]) -> Result<()> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot mark the pages to be written", x);
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut mark = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO site_dirty(module_id)
                         SELECT s.module_id FROM site_search s JOIN modules m ON m.id = s.module_id
                         WHERE m.path = ?1",
                )
                .map_err(e)?;
            for p in paths {
                mark.execute([p]).map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    /// Whether pages wait to be written: a module's page or a search shard
    /// marked, e.g. by a run that stopped before it wrote them.
    pub fn site_pending(&self) -> Result<bool> {
        self.exists(
            "cannot read the pages to write",
            "SELECT EXISTS (SELECT 1 FROM site_dirty) OR EXISTS (SELECT 1 FROM site_shards WHERE dirty = 1)",
            [],
        )
    }

    /// Up to `limit` modules whose page must be written, ids above
    /// `after_id`, in id order (keyset pagination).
    pub fn site_dirty_page(&self, after_id: i64, limit: usize) -> Result<Vec<(i64, String)>> {
        self.query_vec(
            "cannot list the pages to write",
            "SELECT d.module_id, m.path FROM site_dirty d JOIN modules m ON m.id = d.module_id
                 WHERE d.module_id > ?1 ORDER BY d.module_id LIMIT ?2",
            params![after_id, limit as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// The versions a module's page lists: in the tree, listed or graph-only.
    pub fn site_versions(&self, module_id: i64) -> Result<Vec<SiteVersion>> {
        self.query_vec(
            "cannot list a module's versions",
            concat!(
                "SELECT version, info_time, state = ",
                state_code!(GraphOnly),
                ", coalesce(zip_size, 0) + coalesce(mod_size, 0) + coalesce(info_size, 0)",
                " FROM versions WHERE module_id = ?1 AND in_tree = 1 AND state IN (",
                state_codes!(Published, GraphOnly),
                ")"
            ),
            [module_id],
            |r| {
                Ok(SiteVersion {
                    version: r.get(0)?,
                    time: r.get(1)?,
                    graph_only: r.get(2)?,
                    bytes: r.get(3)?,
                })
            },
        )
    }

    /// The cached go.mod facts of one module (`audit` fills the cache too).
    pub fn site_module_facts(&self, module_id: i64) -> Result<Option<ModuleFacts>> {
        self.conn
            .query_row(
                "SELECT version, deprecated, retracts FROM module_facts WHERE module_id = ?1",
                [module_id],
                |r| {
                    Ok(ModuleFacts {
                        version: r.get(0)?,
                        deprecated: r.get(1)?,
                        retracts: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err("cannot read the module facts", e))
    }

    /// Records pages written and modules left with nothing, in one
    /// transaction: each written module is filed under its search term's
    /// shard and leaves `site_dirty`; each emptied one leaves the search
    /// (its page is deleted once the shard that listed it is rewritten,
    /// [`State::site_pages_deleted`]). The shards that change are marked;
    /// the front page's totals (meta `site.modules`, `site.versions`,
    /// `site.bytes`) move by what changed.
    pub fn site_record_pages(&mut self, written: &[Filed], emptied: &[i64]) -> Result<()> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot record the pages written", x);
        let tx = self.conn.transaction().map_err(e)?;
        let (mut modules, mut versions, mut bytes) = (0i64, 0i64, 0i64);
        {
            tx.execute(
                "INSERT OR IGNORE INTO site_shards(prefix, dirty) VALUES ('', 1)",
                [],
            )
            .map_err(e)?;
            let mut filed = tx
                .prepare_cached(
                    "SELECT term, shard, versions, bytes FROM site_search WHERE module_id = ?1",
                )
                .map_err(e)?;
            let mut done = tx
                .prepare_cached("DELETE FROM site_dirty WHERE module_id = ?1")
                .map_err(e)?;
            for f in written {
                let before: Option<(String, String, i64, i64)> = filed
                    .query_row([f.module_id], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })
                    .optional()
                    .map_err(e)?;
                let shard = match &before {
                    Some((term, shard, v, b)) if *term == f.term => {
                        versions += f.versions - v;
                        bytes += f.bytes - b;
                        shard.clone()
                    }
                    _ => {
                        if let Some((_, old, v, b)) = &before {
                            mark_shard(&tx, old).map_err(e)?;
                            versions -= v;
                            bytes -= b;
                        } else {
                            modules += 1;
                        }
                        versions += f.versions;
                        bytes += f.bytes;
                        let shard = shard_for(&tx, &f.term).map_err(e)?;
                        mark_shard(&tx, &shard).map_err(e)?;
                        shard
                    }
                };
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO site_search(module_id, term, shard, versions, bytes)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(e)?
                .execute(params![f.module_id, f.term, shard, f.versions, f.bytes])
                .map_err(e)?;
                done.execute([f.module_id]).map_err(e)?;
            }
            for id in emptied {
                let before: Option<(String, String, i64, i64)> = filed
                    .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                    .optional()
                    .map_err(e)?;
                if let Some((_, shard, v, b)) = before {
                    tx.prepare_cached("DELETE FROM site_search WHERE module_id = ?1")
                        .map_err(e)?
                        .execute([id])
                        .map_err(e)?;
                    mark_shard(&tx, &shard).map_err(e)?;
                    modules -= 1;
                    versions -= v;
                    bytes -= b;
                }
            }
            let mut add = tx
                .prepare_cached(
                    "INSERT INTO meta(key, value) VALUES (?1, ?2)
                         ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + ?2",
                )
                .map_err(e)?;
            for (k, d) in [
                ("site.modules", modules),
                ("site.versions", versions),
                ("site.bytes", bytes),
            ] {
                add.execute(params![k, d]).map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    /// Splits every changed shard listing more than `max` modules into one
    /// shard per next character of their terms (a shard keeps the terms it
    /// equals); repeated until none can be split further.
    pub fn site_split_shards(&mut self, max: usize) -> Result<()> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot split the search shards", x);
        loop {
            let tx = self.conn.transaction().map_err(e)?;
            let mut split = false;
            {
                let over: Vec<String> = {
                    let mut q = tx
                        .prepare_cached(
                            "SELECT s.shard FROM site_search s
                                 JOIN site_shards h ON h.prefix = s.shard AND h.dirty = 1
                                 GROUP BY s.shard HAVING count(*) > ?1",
                        )
                        .map_err(e)?;
                    q.query_map([max as i64], |r| r.get(0))
                        .map_err(e)?
                        .collect::<rusqlite::Result<_>>()
                        .map_err(e)?
                };
                for p in over {
                    let members: Vec<(i64, String)> = {
                        let mut q = tx
                            .prepare_cached(
                                "SELECT module_id, term FROM site_search WHERE shard = ?1",
                            )
                            .map_err(e)?;
                        q.query_map([&p], |r| Ok((r.get(0)?, r.get(1)?)))
                            .map_err(e)?
                            .collect::<rusqlite::Result<_>>()
                            .map_err(e)?
                    };
                    let depth = p.chars().count();
                    let mut moved = 0;
                    for (id, term) in members {
                        let Some((end, c)) = term.char_indices().nth(depth) else {
                            continue;
                        };
                        let child = &term[..end + c.len_utf8()];
                        tx.prepare_cached(
                            "INSERT OR IGNORE INTO site_shards(prefix, dirty) VALUES (?1, 1)",
                        )
                        .map_err(e)?
                        .execute([child])
                        .map_err(e)?;
                        tx.prepare_cached("UPDATE site_search SET shard = ?2 WHERE module_id = ?1")
                            .map_err(e)?
                            .execute(params![id, child])
                            .map_err(e)?;
                        moved += 1;
                    }
                    if moved > 0 {
                        mark_shard(&tx, &p).map_err(e)?;
                        split = true;
                    }
                }
            }
            tx.commit().map_err(e)?;
            if !split {
                return Ok(());
            }
        }
    }

    /// Every shard, in prefix order, and whether it must be written again.
    pub fn site_shards(&self) -> Result<Vec<(String, bool)>> {
        self.query_vec(
            "cannot list the search shards",
            "SELECT prefix, dirty FROM site_shards ORDER BY prefix",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// The module paths a shard lists, in path order.
    pub fn site_shard_members(&self, prefix: &str) -> Result<Vec<String>> {
        self.query_vec(
            "cannot list a search shard",
            "SELECT m.path FROM site_search s JOIN modules m ON m.id = s.module_id
                 WHERE s.shard = ?1 ORDER BY m.path",
            [prefix],
            |r| r.get(0),
        )
    }

    /// These shards are written (and durable).
    pub fn site_shards_written(&mut self, prefixes: &[String]) -> Result<()> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot record the shards written", x);
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut clean = tx
                .prepare_cached("UPDATE site_shards SET dirty = 0 WHERE prefix = ?1")
                .map_err(e)?;
            for p in prefixes {
                clean.execute([p]).map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    /// These modules' pages are deleted: they leave `site_dirty`.
    pub fn site_pages_deleted(&mut self, module_ids: &[i64]) -> Result<()> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot record the pages deleted", x);
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut done = tx
                .prepare_cached("DELETE FROM site_dirty WHERE module_id = ?1")
                .map_err(e)?;
            for id in module_ids {
                done.execute([id]).map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    /// Whether `module` has a page (prune keeps it).
    pub fn site_has_page(&self, module: &str) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM site_search s JOIN modules m ON m.id = s.module_id
                     WHERE m.path = ?1)",
                [module],
                |r| r.get(0),
            )
            .map_err(|e| self.err("cannot read the pages", e))
    }

    /// Whether `prefix` is a search shard (prune keeps its listing).
    pub fn site_has_shard(&self, prefix: &str) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM site_shards WHERE prefix = ?1)",
                [prefix],
                |r| r.get(0),
            )
            .map_err(|e| self.err("cannot read the search shards", e))
    }

    /// What the front page says the mirror holds: the totals of the pages
    /// (kept as sums, not counted over the tree) and the toolchains listed.
    pub fn site_counts(&self, toolchain_module: &str) -> Result<SiteCounts> {
        let num = |k: &str| -> Result<i64> {
            Ok(self.meta(k)?.and_then(|v| v.parse().ok()).unwrap_or(0))
        };
        let toolchains = self
            .conn
            .query_row(
                concat!(
                    "SELECT count(*) FROM versions v JOIN modules m ON m.id = v.module_id
                         WHERE m.path = ?1 AND v.in_tree = 1 AND v.state = ",
                    state_code!(Published)
                ),
                [toolchain_module],
                |r| r.get(0),
            )
            .map_err(|e| self.err("cannot count the toolchains", e))?;
        Ok(SiteCounts {
            modules: num("site.modules")?,
            versions: num("site.versions")?,
            bytes: num("site.bytes")?,
            toolchains,
        })
    }

    /// The newest `limit` publications of the feed still in the tree, newest first.
    pub fn site_recent_additions(&self, limit: usize) -> Result<Vec<Addition>> {
        self.query_vec(
            "cannot list the recent additions",
            concat!(
                "SELECT m.path, f.version, f.time FROM feed_entries f
                     JOIN modules m ON m.id = f.module_id
                     JOIN versions v ON v.module_id = f.module_id AND v.version = f.version
                     WHERE f.op = ?1 AND v.in_tree = 1 AND v.state = ",
                state_code!(Published),
                " ORDER BY f.seq DESC LIMIT ?2"
            ),
            params![FeedOp::Publish.code(), limit as i64],
            |r| {
                Ok(Addition {
                    path: r.get(0)?,
                    version: r.get(1)?,
                    time: r.get(2)?,
                })
            },
        )
    }

    /// The last `limit` runs of `sync` and `import`, newest first (the one
    /// under way too, unfinished).
    pub fn site_runs(&self, limit: usize) -> Result<Vec<RunPoint>> {
        self.query_vec(
            "cannot list the runs",
            "SELECT r.id, r.command, r.started, r.finished, r.exit_code, r.summary, s.lag
                 FROM runs r LEFT JOIN site_runs s ON s.run_id = r.id
                 WHERE r.command IN ('sync', 'import') ORDER BY r.id DESC LIMIT ?1",
            [limit as i64],
            |r| {
                let summary: Option<String> = r.get(5)?;
                let summary: Option<serde_json::Value> =
                    summary.and_then(|s| serde_json::from_str(&s).ok());
                Ok(RunPoint {
                    id: r.get(0)?,
                    command: r.get(1)?,
                    started: r.get(2)?,
                    finished: r.get(3)?,
                    exit_code: r.get(4)?,
                    published: summary
                        .as_ref()
                        .and_then(|s| s.get("published"))
                        .and_then(|p| p.as_u64()),
                    seconds: summary
                        .as_ref()
                        .and_then(|s| s.get("seconds"))
                        .and_then(|p| p.as_f64()),
                    lag: r.get(6)?,
                })
            },
        )
    }

    /// Records the lag the run under way (the newest unfinished one) saw.
    pub fn site_record_lag(&mut self, lag: Option<i64>) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO site_runs(run_id, lag)
                     SELECT max(id), ?1 FROM runs WHERE finished IS NULL HAVING max(id) IS NOT NULL",
                [lag],
            )
            .map_err(|e| self.err("cannot record the run's lag", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{entry, open_temp, published};
    use super::*;

    fn filed(module_id: i64, term: &str, versions: i64, bytes: i64) -> Filed {
        Filed {
            module_id,
            term: term.into(),
            versions,
            bytes,
        }
    }

    fn publish(st: &mut State, path: &str, version: &str) -> i64 {
        st.record_entries(&[entry(path, version)], &|_| true, None)
            .unwrap();
        let id = st.module(path).unwrap().unwrap().0;
        st.mark_published(&[published(id, version, None)], &[], 1)
            .unwrap();
        id
    }

    #[test]
    fn a_publication_marks_the_page_through_the_trigger() {
        let (_d, mut st) = open_temp();
        let id = publish(&mut st, "a.example/m", "v1.0.0");
        assert_eq!(
            st.site_dirty_page(0, 10).unwrap(),
            [(id, "a.example/m".to_string())]
        );
        st.site_record_pages(&[filed(id, "m", 1, 6)], &[]).unwrap();
        assert!(st.site_dirty_page(0, 10).unwrap().is_empty());
        let c = st.site_counts("golang.org/toolchain").unwrap();
        assert_eq!((c.modules, c.versions, c.bytes), (1, 1, 6));
        // Written again with one more version: the totals move by the difference.
        st.site_record_pages(&[filed(id, "m", 2, 10)], &[]).unwrap();
        let c = st.site_counts("golang.org/toolchain").unwrap();
        assert_eq!((c.modules, c.versions, c.bytes), (1, 2, 10));
        assert!(st.site_has_page("a.example/m").unwrap());
        // Listing changes again: marked again.
        st.set_dirty(&[id], true).unwrap();
        assert_eq!(st.site_dirty_page(0, 10).unwrap().len(), 1);
        let v = st.site_versions(id).unwrap();
        assert_eq!(v[0].version, "v1.0.0");
        assert!(!v[0].graph_only);
    }

    #[test]
    fn shards_split_past_their_limit_and_modules_follow() {
        let (_d, mut st) = open_temp();
        let mut written = Vec::new();
        for (i, name) in ["alpha", "alps", "beta", "al", "alpine", "bet"]
            .iter()
            .enumerate()
        {
            let path = format!("x{i}.example/{name}");
            let id = publish(&mut st, &path, "v1.0.0");
            written.push(filed(id, name, 1, 1));
        }
        st.site_record_pages(&written, &[]).unwrap();
        assert_eq!(st.site_shard_members("").unwrap().len(), 6);
        st.site_split_shards(2).unwrap();
        let shards: Vec<String> = st.site_shards().unwrap().into_iter().map(|s| s.0).collect();
        // "" → a (4), b (2); a → al (4); al keeps the exact "al", alp (3) →
        // alph, alpi, alps; b stays (2 members).
        assert_eq!(shards, ["", "a", "al", "alp", "alph", "alpi", "alps", "b"]);
        assert_eq!(st.site_shard_members("al").unwrap(), ["x3.example/al"]);
        assert_eq!(st.site_shard_members("alps").unwrap(), ["x1.example/alps"]);
        assert_eq!(st.site_shard_members("b").unwrap().len(), 2);
        assert!(st.site_shard_members("").unwrap().is_empty());
        assert!(st.site_shard_members("alp").unwrap().is_empty());
        // A later module goes to the longest shard there is.
        let id = publish(&mut st, "y.example/alpaca", "v1.0.0");
        st.site_record_pages(&[filed(id, "alpaca", 1, 1)], &[])
            .unwrap();
        assert!(
            st.site_shard_members("alp")
                .unwrap()
                .contains(&"y.example/alpaca".to_string())
        );
        // Emptied: out of the search, its shard marked.
        st.site_shards_written(&shards).unwrap();
        st.site_record_pages(&[], &[id]).unwrap();
        assert!(!st.site_has_page("y.example/alpaca").unwrap());
        assert_eq!(st.site_counts("t").unwrap().modules, 6);
        let dirty: Vec<String> = st
            .site_shards()
            .unwrap()
            .into_iter()
            .filter(|s| s.1)
            .map(|s| s.0)
            .collect();
        assert_eq!(dirty, ["alp"]);
    }

    #[test]
    fn an_unsplittable_shard_stays_whole() {
        let (_d, mut st) = open_temp();
        let mut written = Vec::new();
        for i in 0..4 {
            let id = publish(&mut st, &format!("h{i}.example/utils"), "v1.0.0");
            written.push(filed(id, "utils", 1, 1));
        }
        st.site_record_pages(&written, &[]).unwrap();
        st.site_split_shards(2).unwrap();
        // "" → u → ut → … → utils, which holds all four and cannot split.
        assert_eq!(st.site_shard_members("utils").unwrap().len(), 4);
    }
}
