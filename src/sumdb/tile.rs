//! Tiles (`golang.org/x/mod/sumdb/tlog/tile.go`): coordinates, paths, and the
//! plan-then-verify core of `TileHashReader`, split so that the caller does the
//! (asynchronous, cached) fetching in between.
//!
//! A tile of height `h` at level `l` holds up to `2^h` consecutive hashes from
//! tree level `l*h`; the levels in between are recomputed by hashing. Clients
//! prove a record or an older tree by fetching the few tiles on the path to
//! the root and checking them against a signed tree hash. Go does that inside
//! `TileHashReader.ReadHashes`; here it is two pure steps,
//! [`plan_read_hashes`] (which tiles, in Go's order) and [`verify_read_hashes`]
//! (are the fetched bytes consistent with the tree), so that fetching and
//! caching can be asynchronous. [`TileHashReader`] glues them back together
//! for synchronous readers.

use std::collections::HashMap;

use super::tlog::{
    EMPTY_HASH, HASH_SIZE, Hash, HashReader, MAX_TREE_SIZE, TlogError, Tree, node_hash,
    split_stored_hash_index, stored_hash_index, sub_tree_index,
};

/// A tile: height `h`, level `l` (−1 for data tiles), index `n`, width `w`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    pub h: i32,
    pub l: i32,
    pub n: i64,
    pub w: i32,
}

/// Tile numbers are written three decimal digits per path element, so that no
/// directory of a static tile tree holds more than 3000 entries.
const PATH_BASE: i64 = 1000;

/// The tile heights Go accepts (`1 ≤ H ≤ 30`).
const MAX_HEIGHT: i32 = 30;

/// The highest level a tile can have (`L ≤ 63`).
const MAX_LEVEL: i32 = 63;

/// `Tile{}`: what `tileParent` returns when there is no such parent.
const NO_TILE: Tile = Tile {
    h: 0,
    l: 0,
    n: 0,
    w: 0,
};

/// `x << s` with Go's semantics for shift counts outside `0..64` (a negative
/// count, converted to `uint` in Go, is just as out of range).
fn shl(x: i64, s: i64) -> i64 {
    if (0..64).contains(&s) { x << s } else { 0 }
}

/// `x >> s` (arithmetic) with Go's semantics for shift counts outside `0..64`.
fn shr(x: i64, s: i64) -> i64 {
    if (0..64).contains(&s) {
        x >> s
    } else if x < 0 {
        -1
    } else {
        0
    }
}

/// `2^h`, the width of a full tile; 0 for heights no tile can have.
fn full_width(h: i32) -> i64 {
    if (1..=MAX_HEIGHT).contains(&h) {
        1 << h
    } else {
        0
    }
}

impl Tile {
    /// `Tile.Path`: `tile/H/L/NNN[.p/W]`, e.g. `tile/8/0/x123/456.p/7`.
    pub fn path(&self) -> String {
        let mut n = self.n;
        let mut n_str = format!("{:03}", n % PATH_BASE);
        while n >= PATH_BASE {
            n /= PATH_BASE;
            n_str = format!("x{:03}/{n_str}", n % PATH_BASE);
        }
        // Go compares with `1<<uint(H)`, which is 0 for a negative H.
        let go_full = if (0..64).contains(&self.h) {
            1i64.wrapping_shl(self.h as u32)
        } else {
            0
        };
        let p_str = if i64::from(self.w) == go_full {
            String::new()
        } else {
            format!(".p/{}", self.w)
        };
        let l_str = if self.l == -1 {
            "data".to_owned()
        } else {
            self.l.to_string()
        };
        format!("tile/{}/{l_str}/{n_str}{p_str}", self.h)
    }
    /// The same tile at full width (`w = 2^h`; 0 for a height outside `1..=30`).
    pub fn full(&self) -> Tile {
        Tile {
            w: full_width(self.h) as i32,
            ..*self
        }
    }
    /// Whether the tile is full width.
    pub fn is_full(&self) -> bool {
        i64::from(self.w) == full_width(self.h)
    }
}

/// `ParseTilePath`: the inverse of [`Tile::path`], strict (the path must round-trip).
///
/// Beyond Go's checks, the level must be at most 63 (Go's documented range).
pub fn parse_tile_path(path: &str) -> Result<Tile, TlogError> {
    let bad = || TlogError::BadTilePath(path.to_owned());
    // Go's strconv.Atoi takes an optional sign and decimal digits, as Rust's
    // integer parsing does; the round-trip check below rejects every
    // non-canonical spelling anyway.
    let atoi = |s: &str| s.parse::<i64>().map_err(|_| bad());

    let mut f: Vec<&str> = path.split('/').collect();
    if f.len() < 4 || f[0] != "tile" {
        return Err(bad());
    }
    let h = atoi(f[1])?;
    let is_data = f[2] == "data";
    let l = if is_data { 0 } else { atoi(f[2])? };
    if !(1..=i64::from(MAX_HEIGHT)).contains(&h) || !(0..=i64::from(MAX_LEVEL)).contains(&l) {
        return Err(bad());
    }
    let h = h as i32;
    let mut w = full_width(h);
    let last = f.len() - 1;
    if let Some(stem) = f[last - 1].strip_suffix(".p") {
        let ww = atoi(f[last])?;
        if ww <= 0 || ww >= w {
            return Err(bad());
        }
        w = ww;
        f[last - 1] = stem;
        f.truncate(last);
    }
    let mut n: i64 = 0;
    for s in &f[3..] {
        let nn = atoi(s.strip_prefix('x').unwrap_or(s))?;
        if !(0..PATH_BASE).contains(&nn) {
            return Err(bad());
        }
        n = n
            .checked_mul(PATH_BASE)
            .and_then(|n| n.checked_add(nn))
            .ok_or_else(bad)?;
    }
    let tile = Tile {
        h,
        l: if is_data { -1 } else { l as i32 },
        n,
        w: w as i32,
    };
    if tile.path() != path {
        return Err(bad());
    }
    Ok(tile)
}

/// `tileForIndex(h, index)`: the tile holding stored hash `index`, as narrow as
/// possible, and the byte range of that hash's bottom-level data within it.
///
/// `h` must be in `1..=30`; for other heights the result is a tile of width 0
/// and an empty range.
pub fn tile_for_index(h: i32, index: i64) -> (Tile, usize, usize) {
    if !(1..=MAX_HEIGHT).contains(&h) {
        return (Tile { h, ..NO_TILE }, 0, 0);
    }
    let (level, n) = split_stored_hash_index(index);
    let l = level / h;
    let level = i64::from(level - l * h); // level within the tile, < h
    let tile_n = shr(shl(n, level), i64::from(h));
    let n = n.wrapping_sub(shr(shl(tile_n, i64::from(h)), level)); // n within the tile
    let w = shl(n.wrapping_add(1), level);
    let to_bytes = |x: i64| usize::try_from(x.wrapping_mul(HASH_SIZE as i64)).unwrap_or(0);
    let tile = Tile {
        h,
        l,
        n: tile_n,
        w: w as i32,
    };
    (tile, to_bytes(shl(n, level)), to_bytes(w))
}

/// `tileParent(t, k, n)`: the ancestor `k` levels up, clipped to a tree of `n` records.
///
/// Returns `Tile { h: 0, l: 0, n: 0, w: 0 }` (Go's `Tile{}`) when the tree has
/// no such tile.
pub fn tile_parent(t: Tile, k: i32, n: i64) -> Tile {
    let h = i64::from(t.h);
    let l = t.l.wrapping_add(k);
    let tile_n = shr(t.n, i64::from(k) * h);
    let mut w = full_width(t.h);
    let max = shr(n, i64::from(l) * h);
    let start = shl(tile_n, h);
    if start.wrapping_add(w) >= max {
        if start >= max {
            return NO_TILE;
        }
        w = max - start;
    }
    Tile {
        h: t.h,
        l,
        n: tile_n,
        w: w as i32,
    }
}

/// Checks that `t` is a hash tile (not data) with sane coordinates.
fn check_hash_tile(t: Tile) -> Result<(), TlogError> {
    if !(1..=MAX_HEIGHT).contains(&t.h)
        || !(0..=MAX_LEVEL).contains(&t.l)
        || t.n < 0
        || t.w < 1
        || i64::from(t.w) > full_width(t.h)
    {
        return Err(TlogError::BadTilePath(t.path()));
    }
    Ok(())
}

/// `HashFromTile(t, data, index)`.
///
/// `t` must be `tile_for_index(t.h, index)` or a wider version of it, and
/// `data` its content (at least `t.w * 32` bytes).
pub fn hash_from_tile(t: Tile, data: &[u8], index: i64) -> Result<Hash, TlogError> {
    check_hash_tile(t)?;
    if data.len() < t.w as usize * HASH_SIZE {
        return Err(TlogError::Read(format!(
            "data len {} too short for tile {}",
            data.len(),
            t.path()
        )));
    }
    let (t1, start, end) = tile_for_index(t.h, index);
    if index < 0 || t.l != t1.l || t.n != t1.n || t.w < t1.w {
        return Err(TlogError::Read(format!(
            "index {index} is in {} not {}",
            t1.path(),
            t.path()
        )));
    }
    Ok(tile_hash(&data[start..end]))
}

/// `tileHash`: the root of the subtree whose bottom hashes are `data`, a
/// power-of-two number of them.
fn tile_hash(data: &[u8]) -> Hash {
    debug_assert!(data.len() >= HASH_SIZE && data.len().is_multiple_of(HASH_SIZE));
    if data.len() <= HASH_SIZE {
        let mut h = [0u8; HASH_SIZE];
        h[..data.len()].copy_from_slice(data);
        return Hash(h);
    }
    let mid = data.len() / HASH_SIZE / 2 * HASH_SIZE;
    node_hash(tile_hash(&data[..mid]), tile_hash(&data[mid..]))
}

/// `NewTiles(h, oldTreeSize, newTreeSize)`.
///
/// Empty when `h` is outside `1..=30`; a negative old size counts as 0.
pub fn new_tiles(h: i32, old_tree_size: i64, new_tree_size: i64) -> Vec<Tile> {
    let mut tiles = Vec::new();
    if !(1..=MAX_HEIGHT).contains(&h) {
        return tiles;
    }
    let old_tree_size = old_tree_size.max(0);
    let hh = i64::from(h);
    let mut level = 0i64;
    while shr(new_tree_size, hh * level) > 0 {
        let old_n = shr(old_tree_size, hh * level);
        let new_n = shr(new_tree_size, hh * level);
        if old_n != new_n {
            for n in (old_n >> hh)..(new_n >> hh) {
                tiles.push(Tile {
                    h,
                    l: level as i32,
                    n,
                    w: 1 << h,
                });
            }
            let n = new_n >> hh;
            let w = new_n - (n << hh);
            if w > 0 {
                tiles.push(Tile {
                    h,
                    l: level as i32,
                    n,
                    w: w as i32,
                });
            }
        }
        level += 1;
    }
    tiles
}

/// How many full tiles of height `h` level `l` of a tree of `n` records has
/// (tiles `0..count` at that level are full; 0 for junk input).
pub fn full_tile_count(h: i32, l: i32, n: i64) -> i64 {
    if !(1..=MAX_HEIGHT).contains(&h) || !(0..=MAX_LEVEL).contains(&l) || n <= 0 {
        return 0;
    }
    shr(shr(n, i64::from(h) * i64::from(l)), i64::from(h))
}

/// The levels of a tree of `n` records that hold any hash with tiles of
/// height `h`: `0..tile_levels(h, n)`.
pub fn tile_levels(h: i32, n: i64) -> i32 {
    if !(1..=MAX_HEIGHT).contains(&h) || n <= 0 {
        return 0;
    }
    let mut l = 0;
    while l <= MAX_LEVEL && shr(n, i64::from(h) * i64::from(l)) > 0 {
        l += 1;
    }
    l
}

/// The partial tile at the right edge of level `l` of a tree of `n`
/// records, as a client holding that tree asks for it; `None` when the
/// level ends on a full tile.
///
/// It is the tree-hash tile of that level (`tileParent` of the level's
/// tree-hash hashes, clipped to `n`), so every hash in it is authenticated
/// by the tree hash.
pub fn edge_tile(h: i32, l: i32, n: i64) -> Option<Tile> {
    if !(1..=MAX_HEIGHT).contains(&h) || !(0..=MAX_LEVEL).contains(&l) || n <= 0 {
        return None;
    }
    let at_level = shr(n, i64::from(h) * i64::from(l));
    let w = at_level & (full_width(h) - 1);
    (w > 0).then(|| Tile {
        h,
        l,
        n: at_level >> h,
        w: w as i32,
    })
}

/// The partial tiles at the right edges of a tree of `n` records that a
/// client may ask for and that the edges of a tree of `old` records (every
/// width of which is already held) do not include: at each level, the
/// widths above `old`'s at the same position, or every width from 1 at a
/// position `old` had not reached. A narrower partial tile is a prefix of
/// a wider one, so all of them are cut from the edge tile of `n`.
pub fn new_edge_widths(h: i32, old: Option<i64>, n: i64) -> Vec<Tile> {
    let mut out = Vec::new();
    for l in 0..tile_levels(h, n) {
        let Some(edge) = edge_tile(h, l, n) else {
            continue;
        };
        let from = match old.and_then(|o| edge_tile(h, l, o)) {
            Some(before) if before.n == edge.n && before.w <= edge.w => before.w + 1,
            _ => 1,
        };
        out.extend((from..=edge.w).map(|w| Tile { w, ..edge }));
    }
    out
}

/// Checks that `data` is the full tile `t`, given its authenticated parent
/// `parent` (the tile one level up that holds `t`'s hash, as clipped to the
/// tree: `tile_parent(t, 1, n)`) and that parent's content.
///
/// A full tile is its 2^h hashes; they hash to one value at the next level,
/// which must be the parent's entry for `t`. So a tile that passes is exactly
/// the log's, as far as its parent is.
pub fn check_full_tile(
    t: Tile,
    data: &[u8],
    parent: Tile,
    parent_data: &[u8],
) -> Result<(), TlogError> {
    check_hash_tile(t)?;
    if !t.is_full() || data.len() != t.w as usize * HASH_SIZE {
        return Err(TlogError::InconsistentTile);
    }
    if parent.h != t.h || parent.l != t.l + 1 || parent.n != t.n >> t.h {
        return Err(TlogError::Read(format!(
            "{} is not the parent of {}",
            parent.path(),
            t.path()
        )));
    }
    if parent_data.len() != parent.w as usize * HASH_SIZE {
        return Err(TlogError::InconsistentTile);
    }
    let want = hash_from_tile(
        parent,
        parent_data,
        stored_hash_index(parent.l * parent.h, t.n),
    )?;
    if want != tile_hash(data) {
        return Err(TlogError::InconsistentTile);
    }
    Ok(())
}

/// `ReadTileData(t, r)`: the content of tile `t` from a stored-hash reader.
/// A width of 0 means a full tile.
pub fn read_tile_data(t: Tile, r: &dyn HashReader) -> Result<Vec<u8>, TlogError> {
    let t_checked = Tile {
        w: if t.w == 0 { 1 << t.h.clamp(0, 30) } else { t.w },
        ..t
    };
    check_hash_tile(t_checked)?;
    let size = t_checked.w as usize;
    let start = shl(t.n, i64::from(t.h));
    let level = t.h * t.l;
    let indexes: Vec<i64> = (0..size as i64)
        .map(|i| stored_hash_index(level, start.wrapping_add(i)))
        .collect();
    let hashes = r.read_hashes(&indexes)?;
    if hashes.len() != indexes.len() {
        return Err(TlogError::Read(format!(
            "tlog: ReadHashes({} indexes) = {} hashes",
            indexes.len(),
            hashes.len()
        )));
    }
    Ok(hashes.iter().flat_map(|h| h.0).collect())
}

/// The tiles `TileHashReader.ReadHashes` must fetch to return `indexes` from a
/// tree of `tree_n` records, in Go's order (tree-hash tiles first, then each
/// index's tile after its parents).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TilePlan {
    /// Tiles to fetch, each exactly `w * 32` bytes.
    pub tiles: Vec<Tile>,
    /// The tree size the plan is for.
    tree_n: i64,
    /// `subTreeIndex(0, tree_n)`: the hashes that make up the tree hash.
    stx: Vec<i64>,
    /// `tiles[stx_tile_order[i]]` holds `stx[i]`.
    stx_tile_order: Vec<usize>,
    /// `tiles[..num_stx_tiles]` are the tiles holding `stx`.
    num_stx_tiles: usize,
    /// `tiles[parent_order[i]]` is the parent of `tiles[num_stx_tiles + i]`.
    parent_order: Vec<usize>,
    /// The requested stored hash indexes.
    indexes: Vec<i64>,
    /// `tiles[index_tile_order[i]]` holds `indexes[i]`.
    index_tile_order: Vec<usize>,
}

impl TilePlan {
    /// The tree size the plan was made for.
    pub fn tree_size(&self) -> i64 {
        self.tree_n
    }
}

/// Go's internal-consistency failure, which valid inputs never reach.
fn bad_math(what: &str, tree_n: i64, index: i64, tile: Tile) -> TlogError {
    TlogError::Read(format!(
        "bad math in tileHashReader: {what}: {tree_n} {index} {}",
        tile.path()
    ))
}

/// Plans a `ReadHashes(indexes)` against `tree_n` records with tiles of height `h`.
/// Fails with [`TlogError::IndexNotInTree`] for an index beyond the tree.
pub fn plan_read_hashes(h: i32, tree_n: i64, indexes: &[i64]) -> Result<TilePlan, TlogError> {
    if !(1..=MAX_HEIGHT).contains(&h) {
        return Err(TlogError::Read(format!("invalid tile height {h}")));
    }
    if !(0..=MAX_TREE_SIZE).contains(&tree_n) {
        return Err(TlogError::IndexNotInTree);
    }
    let mut tiles: Vec<Tile> = Vec::new();
    let mut tile_order: HashMap<Tile, usize> = HashMap::new();

    // The tiles that recompute the tree hash: once it matches the signed
    // tree, they are authenticated.
    let mut stx = Vec::new();
    sub_tree_index(0, tree_n, &mut stx);
    let mut stx_tile_order = Vec::with_capacity(stx.len());
    for &x in &stx {
        let tile = tile_parent(tile_for_index(h, x).0, 0, tree_n);
        let j = *tile_order.entry(tile).or_insert_with(|| {
            tiles.push(tile);
            tiles.len() - 1
        });
        stx_tile_order.push(j);
    }
    let num_stx_tiles = tiles.len();

    // The tile of each index, after whichever of its ancestors are not yet
    // planned: each is authenticated by its parent.
    let end = stored_hash_index(0, tree_n);
    let mut parent_order = Vec::new();
    let mut index_tile_order = Vec::with_capacity(indexes.len());
    for &x in indexes {
        if x < 0 || x >= end {
            return Err(TlogError::IndexNotInTree);
        }
        let tile = tile_for_index(h, x).0;

        // Walk up until reaching a planned tile; the stx tiles include the
        // top of the tree, so this ends well before 64 levels.
        let mut k = 0;
        let found = loop {
            if k > 64 {
                return Err(bad_math("lost parent", tree_n, x, tile));
            }
            if let Some(&j) = tile_order.get(&tile_parent(tile, k, tree_n)) {
                break j;
            }
            k += 1;
        };
        if k == 0 {
            index_tile_order.push(found);
            continue;
        }
        // Walk back down, planning each tile after its parent.
        let mut parent = found;
        for k in (0..k).rev() {
            let p = tile_parent(tile, k, tree_n);
            // Only full tiles have parents; this one has a parent.
            if i64::from(p.w) != full_width(p.h) {
                return Err(bad_math("partial tile with parent", tree_n, x, p));
            }
            tile_order.insert(p, tiles.len());
            parent_order.push(parent);
            parent = tiles.len();
            tiles.push(p);
        }
        index_tile_order.push(parent);
    }

    Ok(TilePlan {
        tiles,
        tree_n,
        stx,
        stx_tile_order,
        num_stx_tiles,
        parent_order,
        indexes: indexes.to_vec(),
        index_tile_order,
    })
}

/// Authenticates fetched tiles (`data[i]` is the content of `plan.tiles[i]`)
/// against `tree` exactly as `TileHashReader` does — the tree-hash tiles must
/// reproduce `tree.hash`, every other tile must hash to the value in its parent —
/// and returns the requested hashes. On success every tile in the plan is
/// authenticated and may be stored.
///
/// Unlike Go, which starts the parent checks at position `len(stx)` (the
/// number of tree-hash *hashes*, usually larger than the number of tree-hash
/// tiles) and so can skip some tiles, every tile after the tree-hash tiles is
/// checked.
pub fn verify_read_hashes(
    plan: &TilePlan,
    tree: Tree,
    data: &[Vec<u8>],
) -> Result<Vec<Hash>, TlogError> {
    if tree.n != plan.tree_n {
        return Err(TlogError::Read(format!(
            "tile plan for tree of size {} used for tree of size {}",
            plan.tree_n, tree.n
        )));
    }
    if data.len() != plan.tiles.len() {
        return Err(TlogError::Read(format!(
            "TileReader returned bad result slice (len={}, want {})",
            data.len(),
            plan.tiles.len()
        )));
    }
    for (tile, data) in plan.tiles.iter().zip(data) {
        if data.len() != tile.w as usize * HASH_SIZE {
            return Err(TlogError::InconsistentTile);
        }
    }

    // The tree-hash tiles must reproduce the signed tree hash.
    let mut th = EMPTY_HASH;
    for (i, (&x, &j)) in plan.stx.iter().zip(&plan.stx_tile_order).enumerate().rev() {
        let h = hash_from_tile(plan.tiles[j], &data[j], x)?;
        th = if i == plan.stx.len() - 1 {
            h
        } else {
            node_hash(h, th)
        };
    }
    if th != tree.hash {
        // At least one tile is wrong; we cannot tell which.
        return Err(TlogError::InconsistentTile);
    }

    // Every other tile (all full) must hash to its entry in its parent.
    for (i, &j) in (plan.num_stx_tiles..).zip(&plan.parent_order) {
        let (tile, parent) = (plan.tiles[i], plan.tiles[j]);
        let want = hash_from_tile(
            parent,
            &data[j],
            stored_hash_index(parent.l * parent.h, tile.n),
        )?;
        if want != tile_hash(&data[i]) {
            return Err(TlogError::InconsistentTile);
        }
    }

    plan.indexes
        .iter()
        .zip(&plan.index_tile_order)
        .map(|(&x, &j)| hash_from_tile(plan.tiles[j], &data[j], x))
        .collect()
}

/// `tlog.TileReader`: where [`TileHashReader`] gets tiles.
pub trait TileReader {
    /// The height of the tiles.
    fn height(&self) -> i32;
    /// The content of each tile, `tiles[i].w * 32` bytes each. Tiles from a
    /// server are unverified at this point and must not be stored yet.
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TlogError>;
    /// Called once the tiles returned by `read_tiles` have been authenticated
    /// and may be stored.
    fn save_tiles(&self, tiles: &[Tile], data: &[Vec<u8>]) {
        let _ = (tiles, data);
    }
}

/// `tlog.TileHashReader`: a [`HashReader`] over the tiles of `tree`, returning
/// only hashes proven to be in it.
pub struct TileHashReader<'a, R: TileReader + ?Sized> {
    tree: Tree,
    reader: &'a R,
}

impl<'a, R: TileReader + ?Sized> TileHashReader<'a, R> {
    pub fn new(tree: Tree, reader: &'a R) -> Self {
        TileHashReader { tree, reader }
    }
}

impl<R: TileReader + ?Sized> HashReader for TileHashReader<'_, R> {
    fn read_hashes(&self, indexes: &[i64]) -> Result<Vec<Hash>, TlogError> {
        let plan = plan_read_hashes(self.reader.height(), self.tree.n, indexes)?;
        let data = self.reader.read_tiles(&plan.tiles)?;
        let hashes = verify_read_hashes(&plan, self.tree, &data)?;
        self.reader.save_tiles(&plan.tiles, &data);
        Ok(hashes)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use sha2::{Digest, Sha256};

    use super::*;
    use crate::sumdb::tlog::tests::HashStorage;
    use crate::sumdb::tlog::{
        check_record, check_tree, prove_record, prove_tree, record_hash, stored_hash_count,
        stored_hashes, tree_hash,
    };

    fn tile(h: i32, l: i32, n: i64, w: i32) -> Tile {
        Tile { h, l, n, w }
    }

    #[test]
    fn tile_paths() {
        let table = [
            ("tile/4/0/001", Some(tile(4, 0, 1, 16))),
            ("tile/4/0/001.p/5", Some(tile(4, 0, 1, 5))),
            ("tile/3/5/x123/x456/078", Some(tile(3, 5, 123456078, 8))),
            ("tile/3/5/x123/x456/078.p/2", Some(tile(3, 5, 123456078, 2))),
            ("tile/1/0/x003/x057/500", Some(tile(1, 0, 3057500, 2))),
            ("tile/3/5/123/456/078", None),
            ("tile/3/-1/123/456/078", None),
            ("tile/1/data/x003/x057/500", Some(tile(1, -1, 3057500, 2))),
            // The package documentation's example.
            ("tile/3/4/x001/x234/067.p/1", Some(tile(3, 4, 1234067, 1))),
            ("tile/3/4/x001/x234/067", Some(tile(3, 4, 1234067, 8))),
            ("tile/8/0/x123/456.p/7", Some(tile(8, 0, 123456, 7))),
            ("tile/8/data/000", Some(tile(8, -1, 0, 256))),
            ("tile/30/63/000", Some(tile(30, 63, 0, 1 << 30))),
            // Invalid: out-of-range H, L or W, non-canonical spellings.
            ("tile/0/0/000", None),
            ("tile/31/0/000", None),
            ("tile/8/64/000", None),
            ("tile/8/0/000.p/256", None),
            ("tile/8/0/000.p/0", None),
            ("tile/8/0/000.p/-1", None),
            ("tile/8/0/000.p/007", None),
            ("tile/8/0/001.p", None),
            ("tile/8/0/1", None),
            ("tile/8/0/0001", None),
            ("tile/8/0/x000/001", None),
            ("tile/8/0/x001", None),
            ("tile/8/0/+01", None),
            ("tile/08/0/001", None),
            ("tile/8/00/001", None),
            ("tile/8/-0/001", None),
            ("tile/8/0", None),
            ("tile/8/0/", None),
            ("tile/8/0/001/", None),
            ("tiles/8/0/001", None),
            ("/tile/8/0/001", None),
            ("tile/8/0/x999/x999/x999/x999/x999/x999/x999/999", None),
            ("", None),
        ];
        for (path, want) in table {
            match want {
                Some(t) => {
                    assert_eq!(t.path(), path);
                    assert_eq!(parse_tile_path(path), Ok(t), "{path}");
                }
                None => assert_eq!(
                    parse_tile_path(path),
                    Err(TlogError::BadTilePath(path.to_owned())),
                    "{path}"
                ),
            }
        }
        // Every tile of a small tree round-trips.
        for t in new_tiles(2, 0, 3000) {
            assert_eq!(parse_tile_path(&t.path()), Ok(t));
        }
    }

    #[test]
    fn new_tiles_for_size() {
        for (old, new, want) in [
            (1, 1, 0),
            (100, 101, 1),
            (1023, 1025, 3),
            (1024, 1030, 1),
            (1030, 2000, 1),
            (1030, 10000, 10),
            (49516517, 49516586, 3),
        ] {
            assert_eq!(new_tiles(10, old, new).len(), want, "{old}-{new}");
        }
        assert!(new_tiles(0, 0, 100).is_empty());
        assert!(new_tiles(31, 0, 100).is_empty());
        assert!(new_tiles(8, i64::MIN, -1).is_empty());
        assert_eq!(new_tiles(8, i64::MIN, 1), [tile(8, 0, 0, 1)]);
        // Growing a huge tree by one record changes one partial tile.
        assert_eq!(
            new_tiles(30, i64::MAX - 1, i64::MAX),
            [tile(30, 0, i64::MAX >> 30, (1 << 30) - 1)]
        );
    }

    #[test]
    fn levels_counts_and_edges() {
        assert_eq!(full_tile_count(8, 0, 1000), 3);
        assert_eq!(full_tile_count(8, 1, 70_000), 1);
        assert_eq!(full_tile_count(8, 0, 0), 0);
        assert_eq!(full_tile_count(0, 0, 1000), 0);
        assert_eq!(full_tile_count(8, 64, 1000), 0);
        // Today's log: ~285 k level-0 tiles, ~1.1 k level-1.
        assert_eq!(full_tile_count(8, 0, 72_845_123), 284_551);
        assert_eq!(full_tile_count(8, 1, 72_845_123), 1111);
        assert_eq!(full_tile_count(8, 2, 72_845_123), 4);
        assert_eq!(full_tile_count(8, 3, 72_845_123), 0);
        for (n, want) in [(0, 0), (1, 1), (255, 1), (256, 2), (65_535, 2), (65_536, 3)] {
            assert_eq!(tile_levels(8, n), want, "{n}");
        }
        assert_eq!(tile_levels(8, i64::MAX), 8);
        assert_eq!(tile_levels(31, 5), 0);
        assert_eq!(edge_tile(8, 0, 1000), Some(tile(8, 0, 3, 232)));
        assert_eq!(edge_tile(8, 1, 1000), Some(tile(8, 1, 0, 3)));
        assert_eq!(edge_tile(8, 2, 1000), None);
        assert_eq!(edge_tile(8, 0, 1024), None);
        assert_eq!(edge_tile(8, 1, 70_000), Some(tile(8, 1, 1, 17)));
        // The client: its level-2 edge is 004.p/87.
        assert_eq!(
            edge_tile(8, 2, 72_845_123).unwrap().path(),
            "tile/8/2/004.p/87"
        );
        assert_eq!(edge_tile(8, 0, -5), None);
        // The edges are exactly the tree-hash tiles a client reads.
        for n in [1, 5, 255, 256, 257, 1000, 65_536, 70_000, 72_845_123] {
            let plan = plan_read_hashes(8, n, &[]).unwrap();
            let edges: Vec<Tile> = (0..tile_levels(8, n))
                .filter_map(|l| edge_tile(8, l, n))
                .collect();
            let mut stx = plan.tiles.clone();
            stx.sort();
            assert_eq!(stx, edges, "tree {n}");
        }
    }

    #[test]
    fn new_edge_widths_cover_every_width_a_client_can_hold() {
        assert_eq!(new_edge_widths(8, None, 1000).len(), 232 + 3);
        assert_eq!(
            new_edge_widths(8, Some(1000), 1003),
            [tile(8, 0, 3, 233), tile(8, 0, 3, 234), tile(8, 0, 3, 235)]
        );
        let moved = new_edge_widths(8, Some(1000), 1030);
        assert_eq!(moved.len(), 6 + 1, "{moved:?}");
        assert_eq!(moved[6], tile(8, 1, 0, 4));
        assert!(new_edge_widths(8, Some(1000), 1000).is_empty());
        // Level 0 ends on a full tile; level 1 gains an entry.
        assert_eq!(new_edge_widths(8, Some(1000), 1024), [tile(8, 1, 0, 4)]);
        // With small tiles, every pair of sizes: what `old`'s edges held plus
        // what is new is every width at or below `n`'s edge.
        for old in 0..70i64 {
            for n in old..70 {
                let mut held: std::collections::BTreeSet<Tile> = Default::default();
                if old > 0 {
                    held.extend(new_edge_widths(2, None, old));
                }
                let new = new_edge_widths(2, (old > 0).then_some(old), n);
                for t in &new {
                    assert!(held.insert(*t), "{old}->{n}: {t:?} written twice");
                }
                for l in 0..tile_levels(2, n) {
                    if let Some(e) = edge_tile(2, l, n) {
                        for w in 1..=e.w {
                            assert!(held.contains(&Tile { w, ..e }), "{old}->{n}: {e:?} w {w}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn full_tiles_check_against_their_parent() {
        let mut storage = HashStorage::default();
        for i in 0..100i64 {
            let data = format!("leaf {i}");
            let hashes = stored_hashes(i, data.as_bytes(), &storage).unwrap();
            storage.0.extend(hashes);
        }
        let n = 100;
        for l in 0..tile_levels(TEST_H, n) - 1 {
            for k in 0..full_tile_count(TEST_H, l, n) {
                let t = tile(TEST_H, l, k, 1 << TEST_H);
                let data = read_tile_data(t, &storage).unwrap();
                let parent = tile_parent(t, 1, n);
                let pdata = read_tile_data(parent, &storage).unwrap();
                check_full_tile(t, &data, parent, &pdata).unwrap();
                let mut bad = data.clone();
                bad[7] ^= 1;
                assert_eq!(
                    check_full_tile(t, &bad, parent, &pdata),
                    Err(TlogError::InconsistentTile)
                );
                let mut badp = pdata.clone();
                let at = (k as usize & 3) * 32;
                badp[at] ^= 1;
                assert_eq!(
                    check_full_tile(t, &data, parent, &badp),
                    Err(TlogError::InconsistentTile)
                );
                assert_eq!(
                    check_full_tile(t, &data[..32], parent, &pdata),
                    Err(TlogError::InconsistentTile)
                );
                let other = tile_parent(tile(TEST_H, l, k + 4, 4), 1, 1 << 20);
                assert!(check_full_tile(t, &data, other, &pdata).is_err());
            }
        }
        let partial = tile(TEST_H, 0, 24, 3);
        assert!(check_full_tile(partial, &[0; 96], tile(TEST_H, 1, 6, 1), &[0; 32]).is_err());
    }

    #[test]
    fn worked_example_plan() {
        // Record 52253027 (golang.org/x/tools v0.44.0) in tree 52544510.
        let plan = plan_read_hashes(8, 52544510, &[stored_hash_index(0, 52253027)]).unwrap();
        let paths: Vec<String> = plan.tiles.iter().map(Tile::path).collect();
        assert_eq!(
            paths,
            [
                "tile/8/3/000.p/3",
                "tile/8/2/003.p/33",
                "tile/8/1/801.p/195",
                "tile/8/0/x205/251.p/254",
                "tile/8/1/797",
                "tile/8/0/x204/113",
            ]
        );
        // More tree-hash hashes than tree-hash tiles: the case where Go's
        // parent check starts too late.
        assert_eq!(plan.num_stx_tiles, 4);
        assert_eq!(plan.stx.len(), 15);
        // tile/8/1/797 hangs off tile/8/2/003.p/33, tile/8/0/x204/113 off it.
        assert_eq!(plan.parent_order, [1, 4]);
        assert_eq!(plan.tree_size(), 52544510);
        assert_eq!(plan_read_hashes(8, 52544510, &[]).unwrap().tiles.len(), 4);
    }

    #[test]
    fn plan_rejects_bad_input() {
        let end = stored_hash_index(0, 10);
        assert_eq!(
            plan_read_hashes(2, 10, &[end]),
            Err(TlogError::IndexNotInTree)
        );
        assert_eq!(
            plan_read_hashes(2, 10, &[-1]),
            Err(TlogError::IndexNotInTree)
        );
        assert_eq!(
            plan_read_hashes(2, 10, &[0, i64::MAX]),
            Err(TlogError::IndexNotInTree)
        );
        assert_eq!(plan_read_hashes(2, -1, &[]), Err(TlogError::IndexNotInTree));
        assert_eq!(
            plan_read_hashes(2, i64::MAX, &[]),
            Err(TlogError::IndexNotInTree)
        );
        assert_eq!(plan_read_hashes(2, 0, &[0]), Err(TlogError::IndexNotInTree));
        assert!(matches!(
            plan_read_hashes(0, 10, &[0]),
            Err(TlogError::Read(_))
        ));
        assert!(matches!(
            plan_read_hashes(31, 10, &[0]),
            Err(TlogError::Read(_))
        ));
        // The largest tree we accept plans fine.
        let plan = plan_read_hashes(
            8,
            MAX_TREE_SIZE,
            &[0, stored_hash_index(0, MAX_TREE_SIZE - 1)],
        )
        .unwrap();
        assert!(plan.tiles.len() < 40);

        // The empty tree has the empty hash and no tiles.
        let plan = plan_read_hashes(8, 0, &[]).unwrap();
        assert!(plan.tiles.is_empty());
        let empty = Tree {
            n: 0,
            hash: Hash(Sha256::digest(b"").into()),
        };
        assert_eq!(verify_read_hashes(&plan, empty, &[]), Ok(Vec::new()));
        let wrong = Tree {
            n: 0,
            hash: Hash([1; 32]),
        };
        assert_eq!(
            verify_read_hashes(&plan, wrong, &[]),
            Err(TlogError::InconsistentTile)
        );
    }

    #[test]
    fn tile_helpers_tolerate_junk() {
        assert_eq!(tile_for_index(0, 5).0.w, 0);
        assert_eq!(NO_TILE.path(), "tile/0/0/000.p/0");
        assert_eq!(tile(40, 0, 0, 1).full().w, 0);
        assert!(!tile(-1, 0, 0, 1).is_full());
        assert!(tile(8, 0, 0, 256).is_full());
        assert_eq!(tile(8, 0, 0, 3).full(), tile(8, 0, 0, 256));
        assert_eq!(tile_for_index(-3, 5).0.w, 0);
        let _ = tile_for_index(8, -1);
        let _ = tile_for_index(8, i64::MAX);
        let _ = tile_parent(tile(8, 60, i64::MAX, 3), 100, i64::MAX);
        let _ = tile_parent(tile(8, 0, -5, 3), -100, 7);
        let data = vec![0u8; 32 * 256];
        assert!(hash_from_tile(tile(8, 0, 0, 256), &data, -1).is_err());
        assert!(hash_from_tile(tile(8, 0, 0, 256), &data[..31], 0).is_err());
        assert!(hash_from_tile(tile(8, -1, 0, 256), &data, 0).is_err());
        assert!(hash_from_tile(tile(8, 0, 1, 256), &data, 0).is_err());
        assert!(hash_from_tile(tile(8, 0, 0, 0), &data, 0).is_err());
        assert!(hash_from_tile(tile(40, 0, 0, 1), &data, 0).is_err());
        let storage = HashStorage::default();
        assert!(read_tile_data(tile(8, -1, 0, 256), &storage).is_err());
        assert!(read_tile_data(tile(8, 0, -1, 256), &storage).is_err());
        assert!(read_tile_data(tile(31, 0, 0, 1), &storage).is_err());
        assert!(read_tile_data(tile(8, 0, 0, 257), &storage).is_err());
    }

    /// RFC 6962's Merkle tree hash, written from the RFC independently of the
    /// stored-hash machinery under test.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => Hash(Sha256::digest(b"").into()),
            1 => leaves[0],
            n => {
                let mut k = 1;
                while k * 2 < n {
                    k *= 2;
                }
                let mut h = Sha256::new();
                h.update([1u8]);
                h.update(reference_root(&leaves[..k]).0);
                h.update(reference_root(&leaves[k..]).0);
                Hash(h.finalize().into())
            }
        }
    }

    /// Tiles in memory, counting tiles read but not yet saved (Go's
    /// `testTilesStorage`).
    struct TileStorage<'a> {
        tiles: &'a HashMap<Tile, Vec<u8>>,
        unsaved: Cell<i64>,
    }

    impl TileReader for TileStorage<'_> {
        fn height(&self) -> i32 {
            TEST_H
        }
        fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TlogError> {
            self.unsaved.set(self.unsaved.get() + tiles.len() as i64);
            Ok(tiles
                .iter()
                .map(|t| self.tiles.get(t).cloned().unwrap_or_default())
                .collect())
        }
        fn save_tiles(&self, tiles: &[Tile], data: &[Vec<u8>]) {
            assert_eq!(tiles.len(), data.len());
            self.unsaved.set(self.unsaved.get() - tiles.len() as i64);
        }
    }

    const TEST_H: i32 = 2;

    fn fetch(plan: &TilePlan, tiles: &HashMap<Tile, Vec<u8>>) -> Vec<Vec<u8>> {
        plan.tiles.iter().map(|t| tiles[t].clone()).collect()
    }

    /// Go's TestTree: 100 records, tiles of height 2, every proof, plus
    /// tampered tiles.
    #[test]
    fn tree() {
        let mut trees: Vec<Hash> = Vec::new();
        let mut leaf_hashes: Vec<Hash> = Vec::new();
        let mut storage = HashStorage::default();
        let mut tiles: HashMap<Tile, Vec<u8>> = HashMap::new();

        for i in 0..100i64 {
            let data = format!("leaf {i}");
            let hashes = stored_hashes(i, data.as_bytes(), &storage).unwrap();
            leaf_hashes.push(record_hash(data.as_bytes()));
            let old_storage = storage.0.len();
            storage.0.extend(hashes);
            assert_eq!(stored_hash_count(i + 1), storage.0.len() as i64);
            let th = tree_hash(i + 1, &storage).unwrap();
            assert_eq!(th, reference_root(&leaf_hashes), "tree hash of {}", i + 1);

            // Publishing tiles: each new tile extends its narrower self.
            for t in new_tiles(TEST_H, i, i + 1) {
                let data = read_tile_data(t, &storage).unwrap();
                let old = Tile { w: t.w - 1, ..t };
                let old_data = tiles.get(&old).cloned().unwrap_or_default();
                assert_eq!(old_data.len(), data.len() - HASH_SIZE, "{}", t.path());
                assert_eq!(old_data, data[..old_data.len()], "{}", t.path());
                tiles.insert(t, data);
            }
            for t in new_tiles(TEST_H, 0, i + 1)
                .into_iter()
                .chain(new_tiles(TEST_H, i / 2, i + 1))
            {
                let data = read_tile_data(t, &storage).unwrap();
                assert_eq!(tiles[&t], data, "{}", t.path());
            }

            // Every new hash can be read from its tile.
            for j in old_storage as i64..storage.0.len() as i64 {
                let (t, _, _) = tile_for_index(TEST_H, j);
                let data = tiles
                    .get(&t)
                    .unwrap_or_else(|| panic!("{} not stored", t.path()));
                assert_eq!(hash_from_tile(t, data, j).unwrap(), storage.0[j as usize]);
            }

            trees.push(th);

            // Record proofs from storage, and corrupted ones.
            for j in 0..=i {
                let mut p = prove_record(i + 1, j, &storage).unwrap();
                check_record(&p, i + 1, th, j, leaf_hashes[j as usize]).unwrap();
                for k in 0..p.len() {
                    p[k].0[0] ^= 1;
                    assert_eq!(
                        check_record(&p, i + 1, th, j, leaf_hashes[j as usize]),
                        Err(TlogError::BadProof)
                    );
                    p[k].0[0] ^= 1;
                }
            }

            // Record proofs through tiles: reading the hash is the proof.
            let tile_storage = TileStorage {
                tiles: &tiles,
                unsaved: Cell::new(0),
            };
            let tree = Tree { n: i + 1, hash: th };
            let thr = TileHashReader::new(tree, &tile_storage);
            for j in 0..=i {
                let h = thr.read_hashes(&[stored_hash_index(0, j)]).unwrap();
                assert_eq!(h, [leaf_hashes[j as usize]]);
                let p = prove_record(i + 1, j, &thr).unwrap();
                check_record(&p, i + 1, th, j, leaf_hashes[j as usize]).unwrap();
            }
            assert_eq!(tile_storage.unsaved.get(), 0);

            assert_eq!(
                thr.read_hashes(&[(i + 1) * 2]),
                Err(TlogError::IndexNotInTree)
            );
            assert_eq!(tile_storage.unsaved.get(), 0);

            // Tree proofs through tiles: computing the hash is the proof.
            for j in 0..=i {
                assert_eq!(tree_hash(j + 1, &thr).unwrap(), trees[j as usize]);
                let mut p = prove_tree(i + 1, j + 1, &thr).unwrap();
                check_tree(&p, i + 1, th, j + 1, trees[j as usize]).unwrap();
                for k in 0..p.len() {
                    p[k].0[0] ^= 1;
                    assert_eq!(
                        check_tree(&p, i + 1, th, j + 1, trees[j as usize]),
                        Err(TlogError::BadProof)
                    );
                    p[k].0[0] ^= 1;
                }
            }
            assert_eq!(tile_storage.unsaved.get(), 0);

            // A wrong tree hash is caught by the tree-hash tiles.
            let mut bad_tree = tree;
            bad_tree.hash.0[5] ^= 0x20;
            let bad_thr = TileHashReader::new(bad_tree, &tile_storage);
            assert_eq!(
                bad_thr.read_hashes(&[stored_hash_index(0, 0)]),
                Err(TlogError::InconsistentTile)
            );
            tile_storage.unsaved.set(0);

            for j in [0, i / 2, i] {
                check_tampered_tiles(tree, j, &tiles);
            }
            check_forged_branch(tree, &tiles);
        }
    }

    /// Flipping any bit of any tile in a plan is detected, as is a tile of the
    /// wrong length.
    fn check_tampered_tiles(tree: Tree, record: i64, tiles: &HashMap<Tile, Vec<u8>>) {
        let index = stored_hash_index(0, record);
        let plan = plan_read_hashes(TEST_H, tree.n, &[index]).unwrap();
        let good = fetch(&plan, tiles);
        assert_eq!(
            verify_read_hashes(&plan, tree, &good).unwrap(),
            [record_hash(format!("leaf {record}").as_bytes())]
        );
        for t in 0..good.len() {
            for byte in [0, good[t].len() / 2, good[t].len() - 1] {
                let mut bad = good.clone();
                bad[t][byte] ^= 0x04;
                assert_eq!(
                    verify_read_hashes(&plan, tree, &bad),
                    Err(TlogError::InconsistentTile),
                    "tree {} record {record} tile {} byte {byte}",
                    tree.n,
                    plan.tiles[t].path()
                );
            }
            let mut short = good.clone();
            short[t].pop();
            assert_eq!(
                verify_read_hashes(&plan, tree, &short),
                Err(TlogError::InconsistentTile)
            );
        }
        assert!(matches!(
            verify_read_hashes(&plan, tree, &good[1..]),
            Err(TlogError::Read(_))
        ));
        let other = Tree {
            n: tree.n + 1,
            hash: tree.hash,
        };
        assert!(matches!(
            verify_read_hashes(&plan, other, &good),
            Err(TlogError::Read(_))
        ));
    }

    /// Replaces record 0's hash and rewrites every tile above it that is not
    /// a tree-hash tile so that each hashes to its parent's entry: only the
    /// link to the tree-hash tiles is broken. Go never checks the topmost of
    /// those tiles when the tree-hash hashes outnumber their tiles; we must.
    fn check_forged_branch(tree: Tree, tiles: &HashMap<Tile, Vec<u8>>) {
        let plan = plan_read_hashes(TEST_H, tree.n, &[0]).unwrap();
        let mut data = fetch(&plan, tiles);
        let leaf = plan.index_tile_order[0];
        data[leaf][..HASH_SIZE].copy_from_slice(&record_hash(b"forged").0);
        if leaf < plan.num_stx_tiles {
            // Record 0's tile is itself a tree-hash tile.
            assert_eq!(
                verify_read_hashes(&plan, tree, &data),
                Err(TlogError::InconsistentTile)
            );
            return;
        }
        // Children come after their parents: fix up bottom to top, stopping
        // below the tree-hash tiles.
        for i in (plan.num_stx_tiles..plan.tiles.len()).rev() {
            let j = plan.parent_order[i - plan.num_stx_tiles];
            if j < plan.num_stx_tiles {
                continue;
            }
            let (child, parent) = (plan.tiles[i], plan.tiles[j]);
            let pos = (child.n - (parent.n << TEST_H)) as usize * HASH_SIZE;
            let h = tile_hash(&data[i]);
            data[j][pos..pos + HASH_SIZE].copy_from_slice(&h.0);
        }
        assert_eq!(
            verify_read_hashes(&plan, tree, &data),
            Err(TlogError::InconsistentTile),
            "forged branch accepted for tree {}",
            tree.n
        );
    }
}
