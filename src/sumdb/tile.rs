//! Tiles (`golang.org/x/mod/sumdb/tlog/tile.go`): coordinates, paths, and the
//! plan-then-verify core of `TileHashReader`, split so that the caller does the
//! (asynchronous, cached) fetching in between.

use super::tlog::{Hash, HashReader, TlogError, Tree};

/// A tile: height `h`, level `l` (−1 for data tiles), index `n`, width `w`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    pub h: i32,
    pub l: i32,
    pub n: i64,
    pub w: i32,
}

impl Tile {
    /// `Tile.Path`: `tile/H/L/NNN[.p/W]`, e.g. `tile/8/0/x123/456.p/7`.
    pub fn path(&self) -> String {
        todo!()
    }
    /// The same tile at full width (`w = 2^h`).
    pub fn full(&self) -> Tile {
        Tile {
            w: 1 << self.h,
            ..*self
        }
    }
    /// Whether the tile is full width.
    pub fn is_full(&self) -> bool {
        self.w == 1 << self.h
    }
}

/// `ParseTilePath`: the inverse of [`Tile::path`], strict (the path must round-trip).
pub fn parse_tile_path(path: &str) -> Result<Tile, TlogError> {
    let _ = path;
    todo!()
}

/// `tileForIndex(h, index)`: the tile holding stored hash `index`, as narrow as
/// possible, and the byte range of that hash's bottom-level data within it.
pub fn tile_for_index(h: i32, index: i64) -> (Tile, usize, usize) {
    let _ = (h, index);
    todo!()
}

/// `tileParent(t, k, n)`: the ancestor `k` levels up, clipped to a tree of `n` records.
pub fn tile_parent(t: Tile, k: i32, n: i64) -> Tile {
    let _ = (t, k, n);
    todo!()
}

/// `HashFromTile(t, data, index)`.
pub fn hash_from_tile(t: Tile, data: &[u8], index: i64) -> Result<Hash, TlogError> {
    let _ = (t, data, index);
    todo!()
}

/// `NewTiles(h, oldTreeSize, newTreeSize)`.
pub fn new_tiles(h: i32, old_tree_size: i64, new_tree_size: i64) -> Vec<Tile> {
    let _ = (h, old_tree_size, new_tree_size);
    todo!()
}

/// `ReadTileData(t, r)`: the content of tile `t` from a stored-hash reader.
pub fn read_tile_data(t: Tile, r: &dyn HashReader) -> Result<Vec<u8>, TlogError> {
    let _ = (t, r);
    todo!()
}

/// The tiles `TileHashReader.ReadHashes` must fetch to return `indexes` from a
/// tree of `tree_n` records, in Go's order (tree-hash tiles first, then each
/// index's tile after its parents).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TilePlan {
    /// Tiles to fetch, each exactly `w * 32` bytes.
    pub tiles: Vec<Tile>,
    stx: Vec<i64>,
    stx_tile_order: Vec<usize>,
    indexes: Vec<i64>,
    index_tile_order: Vec<usize>,
}

/// Plans a `ReadHashes(indexes)` against `tree_n` records with tiles of height `h`.
/// Fails with [`TlogError::IndexNotInTree`] for an index beyond the tree.
pub fn plan_read_hashes(h: i32, tree_n: i64, indexes: &[i64]) -> Result<TilePlan, TlogError> {
    let _ = (h, tree_n, indexes);
    todo!()
}

/// Authenticates fetched tiles (`data[i]` is the content of `plan.tiles[i]`)
/// against `tree` exactly as `TileHashReader` does — the tree-hash tiles must
/// reproduce `tree.hash`, every other tile must hash to the value in its parent —
/// and returns the requested hashes. On success every tile in the plan is
/// authenticated and may be stored.
pub fn verify_read_hashes(
    plan: &TilePlan,
    tree: Tree,
    data: &[Vec<u8>],
) -> Result<Vec<Hash>, TlogError> {
    let _ = (plan, tree, data);
    todo!()
}
