//! How far the tree holds the checksum database's tiles (`crate::tiles`
//! fills them).
//!
//! Full tiles never change once the log has them, so what the tree holds at
//! each level is one run of consecutive tiles, `low..high`: the fill extends
//! it upwards as the log grows and downwards (newest first) until it reaches
//! tile 0. A run is recorded only after its tiles are durable in the tree, so
//! a killed fill fetches again at most what it did since its last commit.
//! Besides, the tree size whose right-edge partial tiles are all there, at
//! every width a client can ask for.

use rusqlite::{OptionalExtension, params};

use super::{Result, State, err};

/// What the tree holds, as far as the state database knows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TileProgress {
    /// `(level, low, high)`: full tiles `low..high` of that level are in the tree.
    pub levels: Vec<(i32, i64, i64)>,
    /// The tree size whose every right-edge partial tile is in the tree.
    pub edge: Option<i64>,
}

impl TileProgress {
    /// The run of full tiles held at `level`, if any was recorded.
    pub fn level(&self, level: i32) -> Option<(i64, i64)> {
        self.levels
            .iter()
            .find(|(l, _, _)| *l == level)
            .map(|&(_, lo, hi)| (lo, hi))
    }
}

impl State {
    /// What the tile fill has recorded.
    pub fn tile_progress(&self) -> Result<TileProgress> {
        let levels = self.query_vec(
            "cannot read tile progress",
            "SELECT level, low, high FROM sumdb_tiles ORDER BY level",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let edge = self
            .conn
            .query_row("SELECT size FROM sumdb_tile_edge WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err("cannot read tile progress", e))?;
        Ok(TileProgress { levels, edge })
    }

    /// Records that full tiles `low..high` of `level` are durable in the tree.
    pub fn save_tile_run(&mut self, level: i32, low: i64, high: i64) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO sumdb_tiles(level, low, high) VALUES (?1, ?2, ?3)
                 ON CONFLICT(level) DO UPDATE SET low = excluded.low, high = excluded.high",
                params![level, low, high],
            )
            .map_err(|e| self.err(&format!("cannot record tiles of level {level}"), e))?;
        Ok(())
    }

    /// Records, in one transaction, that the tree holds every right-edge
    /// partial tile of the tree of `size` records and every tile its head
    /// needs: the head is served (`sumdb/<name>/latest` may show it).
    pub fn save_tile_edge(&mut self, size: i64) -> Result<()> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot record the tiles of a tree head", x);
        let tx = self.conn.transaction().map_err(e)?;
        tx.execute(
            "INSERT INTO sumdb_tile_edge(id, size) VALUES (1, ?1)
             ON CONFLICT(id) DO UPDATE SET size = excluded.size",
            [size],
        )
        .map_err(e)?;
        tx.execute("UPDATE sumdb_trees SET served = 1 WHERE size = ?1", [size])
            .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(())
    }

    /// Records that `sumdb/<name>/latest` may show the head of `size`
    /// records: the tiles it needs are durable in the tree.
    pub fn mark_head_served(&mut self, size: i64) -> Result<()> {
        self.conn
            .execute("UPDATE sumdb_trees SET served = 1 WHERE size = ?1", [size])
            .map_err(|e| self.err(&format!("cannot record tree head {size} as served"), e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::open_temp;
    use super::*;

    #[test]
    fn runs_and_the_edge_are_recorded_and_read_back() {
        let (_d, mut st) = open_temp();
        assert_eq!(st.tile_progress().unwrap(), TileProgress::default());
        st.save_tile_run(0, 10, 20).unwrap();
        st.save_tile_run(1, 0, 1).unwrap();
        st.save_tile_run(0, 4, 22).unwrap();
        st.save_head(5000, "h", b"note").unwrap();
        st.save_tile_edge(5000).unwrap();
        let p = st.tile_progress().unwrap();
        assert_eq!(p.levels, [(0, 4, 22), (1, 0, 1)]);
        assert_eq!(p.level(0), Some((4, 22)));
        assert_eq!(p.level(2), None);
        assert_eq!(p.edge, Some(5000));
        // The head whose tiles are all there is served.
        assert_eq!(st.largest_served_head().unwrap().unwrap().size, 5000);
    }
}
