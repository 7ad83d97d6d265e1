//! What `@v/list` and `@latest` are built from: the versions of a module
//! that are published and in the tree, and the `dirty` flag that says a
//! module's indexes must be rewritten.
//!
//! Every change to what a module lists (publishing, a repair, a prune) marks
//! the module dirty in the same transaction; the flag is cleared only after
//! the rewritten indexes are durable, so a run killed in between rewrites them
//! next time. Dirty modules are handed out a page at a time: after a first
//! sync of a large mirror every module is dirty (invariant 8).

use rusqlite::params;

use super::{Listed, Result, State, VersionState, err};

/// Dirty modules after an id: through the partial index of dirty modules
/// (`modules_dirty`), not a pass over every module the index named.
pub(super) const DIRTY_PAGE: &str =
    "SELECT id, path FROM modules WHERE dirty = 1 AND id > ?1 ORDER BY id LIMIT ?2";

impl State {
    /// Up to `limit` modules whose `@v/list` and `@latest` must be rewritten,
    /// with ids above `after_id`, in id order (keyset pagination).
    pub fn dirty_modules_page(&self, after_id: i64, limit: usize) -> Result<Vec<(i64, String)>> {
        self.query_vec(
            "cannot list modules",
            DIRTY_PAGE,
            params![after_id, limit as i64],
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
        self.versions_in_tree(module_id, VersionState::Published)
    }

    /// A module's versions that are gone upstream but still in the tree:
    /// listed until prune unlists and deletes them (a refused prune keeps them).
    pub fn gone_in_tree_versions(&self, module_id: i64) -> Result<Vec<Listed>> {
        self.versions_in_tree(module_id, VersionState::Gone)
    }

    fn versions_in_tree(&self, module_id: i64, state: VersionState) -> Result<Vec<Listed>> {
        self.query_vec(
            "cannot list versions",
            "SELECT version, info_time, mod_h1 FROM versions
                 WHERE module_id = ?1 AND state = ?2 AND in_tree = 1",
            params![module_id, state],
            |r| {
                Ok(Listed {
                    version: r.get(0)?,
                    time: r.get(1)?,
                    mod_h1: r.get(2)?,
                })
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{entry, open_temp};

    #[test]
    fn dirty_module_pages_cover_every_dirty_module_exactly_once() {
        let (_d, mut st) = open_temp();
        let entries: Vec<_> = (0..23)
            .map(|i| entry(&format!("golang.org/m{i:02}"), "v1.0.0"))
            .collect();
        st.record_index_page(&entries, &|_| true, "t").unwrap();
        let ids: Vec<i64> = (0..23)
            .map(|i| {
                st.module(&format!("golang.org/m{i:02}"))
                    .unwrap()
                    .unwrap()
                    .0
            })
            .collect();
        // Every third module is clean; the rest are dirty.
        let clean: Vec<i64> = ids.iter().copied().step_by(3).collect();
        let dirty: Vec<i64> = ids.iter().copied().filter(|i| !clean.contains(i)).collect();
        st.set_dirty(&dirty, true).unwrap();

        let mut seen = Vec::new();
        let mut after = 0;
        loop {
            let page = st.dirty_modules_page(after, 4).unwrap();
            assert!(page.len() <= 4, "a page holds at most its limit");
            let Some(last) = page.last() else { break };
            after = last.0;
            seen.extend(page.into_iter().map(|(id, _)| id));
        }
        assert_eq!(
            seen, dirty,
            "each dirty module once, in id order, no clean one"
        );

        // Clearing as the walk goes (what the list rewrite does) still covers all.
        let mut cleared = Vec::new();
        let mut after = 0;
        loop {
            let page = st.dirty_modules_page(after, 5).unwrap();
            let Some(last) = page.last() else { break };
            after = last.0;
            let page_ids: Vec<i64> = page.iter().map(|(id, _)| *id).collect();
            st.set_dirty(&page_ids, false).unwrap();
            cleared.extend(page_ids);
        }
        assert_eq!(cleared, dirty);
        assert!(st.dirty_modules_page(0, 100).unwrap().is_empty());
    }
}
