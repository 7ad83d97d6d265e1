//! The tile fill: the tree holds every tile of the checksum database that a
//! go client whose tree head is not newer than the mirror's can ask for.
//!
//! # Why
//!
//! A go client proves that the head it already trusts (in
//! `$GOPATH/pkg/sumdb/<name>/latest`, often from the upstream, before this
//! mirror existed) is a prefix of every newer head it is shown, and that
//! every record it uses is in its latest head. Both read, at every level, the
//! tiles on the paths from its own tree's edge and from the record, clipped
//! to its head (`tileParent(t, k, n)`): full tiles where its tree is complete,
//! the partial tile of exactly its width at the right edge. A client asks
//! for that partial tile first and, on a 404, for the full tile, whose prefix
//! it takes (`sumdb/client.go readTile`). So a static tree serves every
//! client whose head N ≤ the mirror's head T when it holds
//!
//! * every full tile of T, at every level (~2.3 GB of level-0 hashes for the
//!   public log's 73 M records; data tiles are never read by go clients);
//! * at T's right edge, the partial tile of every width 1..=w at every level
//!   (a narrower partial tile is a prefix of a wider one, so they are all cut
//!   from T's, which T's signed hash proves).
//!
//! A client whose head N is newer than T cannot be served by any static tree
//! (T's tiles cannot prove N): the fill runs on every sync, so that window is
//! one sync interval long.
//!
//! # How
//!
//! [`fill`] runs after the head is refreshed and saved, before the run
//! publishes lists and `latest`. With [`TileMode::All`]:
//!
//! 1. T's edge tiles (its tree-hash tiles) are read and proven against T's
//!    signed hash ([`LogClient::edge_tiles`]).
//! 2. Top level first, the full tiles new since the last fill are fetched,
//!    side by side (at most `concurrency` at once, through the checksum
//!    database's URL list and its retries), each proven against its parent
//!    one level up (an edge tile, or a full tile already proven) with
//!    [`tile::check_full_tile`], and written; a run of them is recorded in the
//!    state database ([`crate::state::TileProgress`]) once a barrier has made
//!    it durable.
//! 3. Every new width of T's edge tiles is written, made durable, and T is
//!    recorded as the served head (`latest` shows it from then on).
//! 4. Older full tiles the tree lacks (a new mirror: all of them) are fetched
//!    newest first, a parent's 256 at a time, at most `max_per_run` per run.
//!
//! Nothing is written before it is proven; a tile that does not prove is a
//! security failure (the run stops). A tile the database cannot be reached
//! for stops the fill without failing the run's versions (exit 1, the next
//! run carries on from what was recorded). With [`TileMode::Needed`] the
//! tree keeps only the tiles that prove the mirror's own lookups and heads:
//! T gets what publishing stores for a new head ([`LogClient::mirror_tiles`]:
//! its edge tiles and the paths from the last served head's edge), and is
//! recorded as served.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;

use crate::fatal::Fatal;
use crate::report::Reporter;
use crate::report::summary::TileSummary;
use crate::services::Services;
use crate::settings::Settings;
use crate::state::TileProgress;
use crate::state::db::Db;
use crate::store::Store;
use crate::sumdb::tile::{self, Tile};
use crate::sumdb::tlog::Tree;
use crate::trust::client::{
    LogClient, SumdbError, TILE_HEIGHT, TileMode, write_older_tile, write_tile,
};

/// Bytes in a full tile of height 8.
const FULL_TILE_BYTES: usize = 32 << TILE_HEIGHT;
/// Full tiles one level up kept in memory to prove the level below (8 KiB each).
const PARENT_CACHE: usize = 1024;

/// Fills the tree with the tiles `mode` asks for, for the head `client`
/// trusts (accepted and saved by the caller), fetching through `client`'s
/// URL list at most `concurrency` tiles at once and, with
/// [`TileMode::All`], at most `max_per_run` tiles older than those the tree
/// holds. Returns what it did (`None` with [`TileMode::Needed`] unless a
/// tile could not be fetched, or when no head is trusted yet); a tile that
/// could not be fetched is in the summary's `error`, not an `Err`: the run's
/// versions go on, the run exits 1.
/// [`fill`] as the configuration says (`sumdb.tiles`, `mirror.workers` at
/// once), on the command's checksum-database client: after a sync or an
/// import has accepted its head, before the lists and `latest` are
/// published. `polite`: a sync asking the checksum database takes at most
/// `sumdb.max_tiles_per_run` older tiles a run; an import takes every tile
/// its bundle carries (read from local disk, nobody to spare).
pub async fn fill_configured(
    settings: &Settings,
    svc: &Services,
    polite: bool,
    out: &Reporter,
) -> Result<Option<TileSummary>, Fatal> {
    let client = svc.log(settings).await?;
    let max_per_run = if polite {
        settings.sumdb.max_tiles_per_run
    } else {
        None
    };
    fill(
        &client,
        &svc.db,
        settings.sumdb.tiles,
        max_per_run,
        settings.workers,
        out,
    )
    .await
}

pub async fn fill(
    client: &LogClient,
    db: &Db,
    mode: TileMode,
    max_per_run: Option<u64>,
    concurrency: usize,
    out: &Reporter,
) -> Result<Option<TileSummary>, Fatal> {
    let Some(head) = client.trusted() else {
        return Ok(None);
    };
    let t = head.tree;
    let started = Instant::now();
    let soft = |e: SumdbError| -> Result<Option<TileSummary>, Fatal> {
        if e.is_fatal() {
            return Err(e.into());
        }
        Ok(Some(TileSummary {
            needed: mode == TileMode::Needed,
            error: Some(format!("the tiles of tree {}: {e}", t.n)),
            ..TileSummary::default()
        }))
    };
    if mode == TileMode::Needed {
        // What publishing stores for a new head (`mirror_tiles`): the paths
        // from the last served head's edge, and the new head's edge tiles.
        let previous = db.call(|s| s.largest_served_head()).await?.map(|h| h.size);
        if previous.is_some_and(|p| p >= t.n) {
            return Ok(None);
        }
        if let Err(e) = client.mirror_tiles(&[], &[t.n], previous).await {
            return soft(e);
        }
        barrier(client.store()).await?;
        db.call(move |s| s.mark_head_served(t.n)).await?;
        return Ok(None);
    }
    let edges = match client.edge_tiles(t).await {
        Ok(e) => e,
        Err(e) => return soft(e),
    };
    let progress = db.call(|s| s.tile_progress()).await?;
    let mut filler = Filler {
        client,
        db,
        tree: t,
        edges: edges.iter().map(|(e, d)| ((e.l, e.n), d.clone())).collect(),
        parents: HashMap::new(),
        concurrency: concurrency.max(1),
        summary: TileSummary::default(),
        out,
    };
    let result = filler.run(&progress, &edges, max_per_run).await;
    let mut summary = filler.summary;
    match result {
        Ok(()) => {}
        Err(Stop::Fatal(e)) => return Err(e),
        Err(Stop::Fetch(msg)) => summary.error = Some(msg),
    }
    let after = db.call(|s| s.tile_progress()).await?;
    for l in 0..tile::tile_levels(TILE_HEIGHT, t.n) {
        let count = tile::full_tile_count(TILE_HEIGHT, l, t.n);
        let (lo, hi) = after.level(l).unwrap_or((count, count));
        summary.full += (hi - lo).max(0) as u64;
        summary.missing += (count - (hi - lo).max(0)).max(0) as u64;
    }
    summary.tree_size = t.n;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(Some(summary))
}

/// Checks every tile the tree must hold for the head `client` trusts (the
/// served one; an offline client reads the tree alone), as a go client would
/// use them: the edge tiles against the signed hash, every full tile from
/// the first one recorded by the fill upwards against its parent, every
/// width of the edge tiles as a prefix of the edge tile. Calls `problem`
/// with each tile's key and what is wrong; returns how many tiles were read.
/// Reads them all: about 2.3 GB for the public log's 73 M records.
pub async fn check(
    client: &LogClient,
    db: &Db,
    mut problem: impl FnMut(String, String),
) -> Result<u64, Fatal> {
    let Some(head) = client.trusted() else {
        return Ok(0);
    };
    let t = head.tree;
    let name = client.name().to_string();
    let key = |tile: Tile| crate::store::layout::tile(&name, tile);
    let edges = match client.edge_tiles(t).await {
        Ok(e) => e,
        Err(e) if matches!(e, SumdbError::Security(_)) => {
            for l in 0..tile::tile_levels(TILE_HEIGHT, t.n) {
                if let Some(edge) = tile::edge_tile(TILE_HEIGHT, l, t.n) {
                    problem(
                        key(edge),
                        format!(
                            "the edge tiles do not prove the served head of {} records (damaged or missing; a go client would reject them): {e}",
                            t.n
                        ),
                    );
                }
            }
            return Ok(0);
        }
        Err(e) => return Err(e.into()),
    };
    let mut proven: HashMap<(i32, i64), Arc<Vec<u8>>> =
        edges.iter().map(|(e, d)| ((e.l, e.n), d.clone())).collect();
    let progress = db.call(|s| s.tile_progress()).await?;
    let mut read = edges.len() as u64;
    let (store, name) = (client.store().clone(), client.name().to_string());
    for l in (0..tile::tile_levels(TILE_HEIGHT, t.n)).rev() {
        let count = tile::full_tile_count(TILE_HEIGHT, l, t.n);
        let lo = progress
            .level(l)
            .map_or(count, |(lo, _)| lo.clamp(0, count));
        let mut start = lo;
        while start < count {
            let end = (((start >> TILE_HEIGHT) + 1) << TILE_HEIGHT).min(count);
            let parent = tile::tile_parent(full(l, start), 1, t.n);
            let Some(parent_data) = proven.get(&(parent.l, parent.n)).cloned() else {
                // Its parent is damaged (reported): these are checked once it is repaired.
                start = end;
                continue;
            };
            let (s2, n2) = (store.clone(), name.clone());
            let tiles: Vec<(Tile, Option<Vec<u8>>)> = tokio::task::spawn_blocking(move || {
                (start..end)
                    .map(|n| {
                        let t = full(l, n);
                        let k = crate::store::layout::tile(&n2, t);
                        (t, s2.read(&k, FULL_TILE_BYTES as u64).ok().flatten())
                    })
                    .collect()
            })
            .await
            .map_err(|e| Fatal::crashed("reading tiles", e))?;
            for (tl, data) in tiles {
                read += 1;
                match data {
                    None => problem(
                        key(tl),
                        "missing (a go client whose head is older than the mirror's may need it)"
                            .into(),
                    ),
                    Some(d) => match tile::check_full_tile(tl, &d, parent, &parent_data) {
                        Ok(()) if l > 0 => {
                            proven.insert((l, tl.n), Arc::new(d));
                        }
                        Ok(()) => {}
                        Err(e) => problem(
                            key(tl),
                            format!(
                                "does not match the served head's tree (damaged; a go client would reject it): {e}"
                            ),
                        ),
                    },
                }
            }
            start = end;
            crate::fatal::stop_if_interrupted()?;
        }
        // Level l's tiles are no longer needed as parents once level l-1 is done.
        proven.retain(|(pl, _), _| *pl <= l);
    }
    for (edge, data) in &edges {
        for w in 1..=edge.w {
            let tl = Tile { w, ..*edge };
            let (s2, k) = (store.clone(), key(tl));
            let got = tokio::task::spawn_blocking(move || s2.read(&k, FULL_TILE_BYTES as u64))
                .await
                .map_err(|e| Fatal::crashed("reading tiles", e))?;
            read += 1;
            let want = &data[..w as usize * 32];
            match got {
                Ok(Some(d)) if d == want => {}
                Ok(Some(_)) => problem(
                    key(tl),
                    "differs from the served head's edge tile (damaged; a go client at that width would reject it)".into(),
                ),
                _ => problem(
                    key(tl),
                    "missing (a go client whose head ends there asks for it)".into(),
                ),
            }
        }
    }
    Ok(read)
}

/// Rewrites the tiles `keys` (as [`check`] named them) for the head `client`
/// trusts (online): full tiles fetched again and proven against their
/// parents, partial ones cut again from the proven edge tiles. Returns how
/// many tiles were written.
pub async fn repair(
    client: &LogClient,
    db: &Db,
    keys: &[String],
    concurrency: usize,
    out: &Reporter,
) -> Result<u64, Fatal> {
    let Some(head) = client.trusted() else {
        return Ok(0);
    };
    let t = head.tree;
    let prefix = format!("{}/", crate::store::layout::sumdb_dir(client.name()));
    let edges = client.edge_tiles(t).await?;
    let mut filler = Filler {
        client,
        db,
        tree: t,
        edges: edges.iter().map(|(e, d)| ((e.l, e.n), d.clone())).collect(),
        parents: HashMap::new(),
        concurrency: concurrency.max(1),
        summary: TileSummary::default(),
        out,
    };
    let mut partial = false;
    for k in keys {
        let Some(tl) = k
            .strip_prefix(&prefix)
            .and_then(|p| tile::parse_tile_path(p).ok())
        else {
            continue;
        };
        if !tl.is_full() {
            partial = true;
            continue;
        }
        let fetched = match client.fetch_tile(tl).await {
            Ok(data) => Fetched {
                tile: tl,
                data,
                from: Source::Upstream,
            },
            Err(e) => {
                return Err(Fatal::stopped(format!(
                    "cannot repair tile {}: {e}",
                    tl.path()
                )));
            }
        };
        match filler.prove_and_write(tl.l, vec![fetched], true).await {
            Ok(()) => {}
            Err(Stop::Fatal(e)) => return Err(e),
            Err(Stop::Fetch(m)) => return Err(Fatal::stopped(m)),
        }
    }
    if partial {
        filler.summary.written += client
            .write_edge_widths(None, t, &edges)
            .await
            .map_err(Fatal::from)?;
    }
    barrier(client.store()).await?;
    Ok(filler.summary.written)
}

/// Why a fill stopped early.
enum Stop {
    /// The run stops (a tile that does not prove, the state database, the tree).
    Fatal(Fatal),
    /// A tile could not be fetched: the fill ends here, the run goes on.
    Fetch(String),
}

impl From<Fatal> for Stop {
    fn from(e: Fatal) -> Stop {
        Stop::Fatal(e)
    }
}

impl From<crate::state::StateError> for Stop {
    fn from(e: crate::state::StateError) -> Stop {
        Stop::Fatal(e.into())
    }
}

struct Filler<'a> {
    client: &'a LogClient,
    db: &'a Db,
    tree: Tree,
    /// T's edge tiles by (level, index), proven by its signed hash.
    edges: HashMap<(i32, i64), Arc<Vec<u8>>>,
    /// Full tiles of levels ≥ 1 proven this run, by (level, index).
    parents: HashMap<(i32, i64), Arc<Vec<u8>>>,
    concurrency: usize,
    summary: TileSummary,
    out: &'a Reporter,
}

impl Filler<'_> {
    async fn run(
        &mut self,
        progress: &TileProgress,
        edges: &[(Tile, Arc<Vec<u8>>)],
        max_per_run: Option<u64>,
    ) -> Result<(), Stop> {
        let t = self.tree;
        let levels = tile::tile_levels(TILE_HEIGHT, t.n);
        let mut runs: HashMap<i32, (i64, i64)> = HashMap::new();
        // 2. New full tiles, top level first: each level's parents are in
        // place before it.
        for l in (0..levels).rev() {
            let count = tile::full_tile_count(TILE_HEIGHT, l, t.n);
            // A level never filled starts empty at the head: all of it is
            // older than what the tree holds.
            let (lo, hi) = progress.level(l).unwrap_or((count, count));
            let hi = hi.clamp(0, count);
            let lo = lo.clamp(0, hi);
            runs.insert(l, (lo, hi));
            let chunks = chunks_up(hi, count);
            if !chunks.is_empty() {
                let done = self.fill_chunks(l, &chunks, Run::Up { low: lo }).await?;
                runs.insert(l, (lo, done));
            }
        }
        // 3. Every width of the edge tiles a client can ask for; then T is
        // what `latest` may show.
        if progress.edge.is_none_or(|e| e < t.n) {
            let written = self
                .client
                .write_edge_widths(progress.edge, t, edges)
                .await
                .map_err(sumdb_stop)?;
            self.summary.written += written;
            barrier(self.client.store()).await?;
            let n = t.n;
            self.db.call(move |s| s.save_tile_edge(n)).await?;
        }
        runner_check()?;
        // 4. Older tiles, newest first, within the budget.
        let mut budget = max_per_run.unwrap_or(u64::MAX);
        let older: u64 = runs.values().map(|&(lo, _)| lo.max(0) as u64).sum();
        if older > 0 {
            self.out.start("tiles", Some(older.min(budget)));
        }
        let result = async {
            for l in (0..levels).rev() {
                let (lo, hi) = runs[&l];
                let chunks = chunks_down(lo, budget);
                if chunks.is_empty() {
                    continue;
                }
                let low = self.fill_chunks(l, &chunks, Run::Down { high: hi }).await?;
                budget = budget.saturating_sub((lo - low) as u64);
                if self.summary.stopped.is_some() {
                    break;
                }
            }
            Ok(())
        }
        .await;
        self.out.finish();
        result
    }

    /// Fetches (at most `concurrency` at once, one stream across chunks),
    /// proves and writes the full tiles of `chunks` of `level`, each chunk
    /// under one parent; after each chunk, makes it durable and records the
    /// run (`Run`). Returns where the run ends: its `high` going up, its
    /// `low` going down. Going down, a tile the database does not serve ends
    /// the fill quietly ([`TileSummary::stopped`]).
    async fn fill_chunks(
        &mut self,
        level: i32,
        chunks: &[(i64, i64)],
        run: Run,
    ) -> Result<i64, Stop> {
        let (name, store, client) = (
            self.client.name().to_string(),
            self.client.store().clone(),
            self.client,
        );
        let going_up = matches!(run, Run::Up { .. });
        // Going down, each chunk from its top: a tile that is not served ends
        // the run just above it, keeping what came before.
        let positions = chunks.iter().flat_map(move |&(a, b)| {
            let down = if going_up { None } else { Some((a..b).rev()) };
            let up = if going_up { Some(a..b) } else { None };
            up.into_iter().flatten().chain(down.into_iter().flatten())
        });
        let mut stream = futures_util::stream::iter(positions.map(|n| {
            let (store, name, t) = (store.clone(), name.clone(), full(level, n));
            async move {
                // Going up, publishing may have written it already, or
                // proving the new head read it; either way, the lookups
                // proven beside the fill may have read it.
                if going_up && let Some(data) = read_tree_tile(&store, &name, t).await {
                    return Ok(Fetched {
                        tile: t,
                        data,
                        from: Source::Tree,
                    });
                }
                if let Some(data) = client.tile_in_memory(t) {
                    return Ok(Fetched {
                        tile: t,
                        data: data.to_vec(),
                        from: Source::Memory,
                    });
                }
                match client.fetch_tile_shared(t).await {
                    Ok(data) => Ok(Fetched {
                        tile: t,
                        data,
                        from: Source::Upstream,
                    }),
                    Err(e) if e.is_not_found() && !going_up => {
                        Err(Stop::Fetch(format!("{NOT_SERVED} {} ({e})", t.path())))
                    }
                    Err(e) => Err(Stop::Fetch(format!(
                        "tile {} of checksum database {name}: {e}",
                        t.path()
                    ))),
                }
            }
        }))
        .buffered(self.concurrency);
        let mut at = match run {
            Run::Up { .. } => chunks[0].0,
            Run::Down { .. } => chunks[0].1,
        };
        let mut done = 0u64;
        for &(a, b) in chunks {
            let mut got = Vec::with_capacity((b - a) as usize);
            let mut stopped = None;
            for _ in a..b {
                match stream.next().await {
                    Some(Ok(f)) => got.push(f),
                    Some(Err(Stop::Fetch(msg))) if msg.starts_with(NOT_SERVED) => {
                        stopped = Some(msg);
                        break;
                    }
                    Some(Err(e)) => return Err(e),
                    None => break,
                }
            }
            let whole = got.len() as i64 == b - a;
            if !whole && going_up {
                return Ok(at);
            }
            let reached = got.last().map(|f| f.tile.n);
            self.prove_and_write(level, got, going_up).await?;
            at = match (going_up, whole, reached) {
                (true, _, _) => b,
                (false, true, _) => a,
                (false, false, Some(n)) => n,
                (false, false, None) => at,
            };
            let (lo, hi) = match run {
                Run::Up { low } => (low, at),
                Run::Down { high } => (at, high),
            };
            barrier(self.client.store()).await?;
            self.db
                .call(move |s| s.save_tile_run(level, lo, hi))
                .await?;
            if !going_up {
                done += (b - at) as u64;
                self.out
                    .progress(done, &format!("older tiles of level {level}"));
            }
            if let Some(msg) = stopped {
                self.summary.stopped = Some(msg);
                return Ok(at);
            }
            if !whole {
                return Ok(at);
            }
            runner_check()?;
        }
        Ok(at)
    }

    /// Proves the full tiles `got` (all under one parent, in order) against
    /// that parent and writes them. Nothing is written unless all prove.
    /// `at_edges`: they may be where a right edge was, so each supersedes
    /// the partial tiles of its position; older ones are written side by
    /// side when the store gains from it (a bucket).
    async fn prove_and_write(
        &mut self,
        level: i32,
        got: Vec<Fetched>,
        at_edges: bool,
    ) -> Result<(), Stop> {
        let Some(first) = got.first() else {
            return Ok(());
        };
        let (parent, parent_data) = self.parent(level + 1, first.tile.n >> TILE_HEIGHT).await?;
        let name = self.client.name().to_string();
        let mut writes = Vec::with_capacity(got.len());
        for Fetched {
            tile: t,
            data,
            from,
        } in got
        {
            if from == Source::Upstream {
                self.summary.fetched += 1;
                self.summary.bytes += data.len() as u64;
            }
            if let Err(e) = tile::check_full_tile(t, &data, parent, &parent_data) {
                if from != Source::Upstream {
                    // Damaged in the tree: fetched again (and proven) below.
                    let again = self.client.fetch_tile(t).await.map_err(|e| {
                        Stop::Fetch(format!(
                            "tile {} of checksum database {name}: {e}",
                            t.path()
                        ))
                    })?;
                    self.summary.fetched += 1;
                    self.summary.bytes += again.len() as u64;
                    if tile::check_full_tile(t, &again, parent, &parent_data).is_ok() {
                        writes.push((t, again));
                        continue;
                    }
                }
                return Err(Stop::Fatal(
                    SumdbError::Security(format!(
                        "checksum database {name} served tile {} that does not match its signed tree of {} records ({}): {e}. Nothing was written for it",
                        t.path(),
                        self.tree.n,
                        self.tree.hash
                    ))
                    .into(),
                ));
            }
            if from != Source::Tree {
                writes.push((t, data));
            } else if level > 0 {
                self.remember(t, Arc::new(data));
            }
        }
        for (t, d) in &writes {
            if level > 0 {
                self.remember(*t, Arc::new(d.clone()));
            }
        }
        self.summary.written += writes.len() as u64;
        let store = self.client.store().clone();
        tokio::task::spawn_blocking(move || write_tiles(&*store, &name, writes, at_edges))
            .await
            .map_err(|e| Fatal::crashed("writing tiles", e))?
            .map_err(Fatal::from)?;
        Ok(())
    }

    fn remember(&mut self, t: Tile, data: Arc<Vec<u8>>) {
        if self.parents.len() >= PARENT_CACHE {
            self.parents.clear();
        }
        self.parents.insert((t.l, t.n), data);
    }

    /// Tile `n` of `level` as clipped to T (an edge tile, or a full tile),
    /// proven: from memory, or from the tree (proven again against its own
    /// parent), or fetched and written.
    async fn parent(&mut self, level: i32, n: i64) -> Result<(Tile, Arc<Vec<u8>>), Stop> {
        // The chain of tiles up to one already proven.
        let mut chain = Vec::new();
        let (mut l, mut k) = (level, n);
        let (top, mut data) = loop {
            let t = tile::tile_parent(full(l, k), 0, self.tree.n);
            if t.w <= 0 {
                return Err(Stop::Fatal(Fatal::stopped(format!(
                    "tile {} is beyond the tree of {} records",
                    full(l, k).path(),
                    self.tree.n
                ))));
            }
            if let Some(d) = self.known(t) {
                break (t, d);
            }
            if !t.is_full() {
                return Err(Stop::Fatal(Fatal::stopped(format!(
                    "the edge tile {} of the tree of {} records was not proven",
                    t.path(),
                    self.tree.n
                ))));
            }
            chain.push(t);
            (l, k) = (l + 1, k >> TILE_HEIGHT);
        };
        let mut proven = top;
        // Down the chain, each proven against the one above.
        while let Some(t) = chain.pop() {
            let name = self.client.name().to_string();
            let on_disk = read_tree_tile(self.client.store(), &name, t).await;
            let d = match on_disk {
                Some(d) if tile::check_full_tile(t, &d, proven, &data).is_ok() => d,
                _ => {
                    let d = self.client.fetch_tile_shared(t).await.map_err(|e| {
                        Stop::Fetch(format!(
                            "tile {} of checksum database {name}: {e}",
                            t.path()
                        ))
                    })?;
                    self.summary.fetched += 1;
                    self.summary.bytes += d.len() as u64;
                    tile::check_full_tile(t, &d, proven, &data).map_err(|e| {
                        Stop::Fatal(
                            SumdbError::Security(format!(
                                "checksum database {name} served tile {} that does not match its signed tree of {} records: {e}",
                                t.path(),
                                self.tree.n
                            ))
                            .into(),
                        )
                    })?;
                    let (store, dd) = (self.client.store().clone(), d.clone());
                    tokio::task::spawn_blocking(move || write_tile(&*store, &name, t, &dd))
                        .await
                        .map_err(|e| Fatal::crashed("writing tiles", e))?
                        .map_err(Fatal::from)?;
                    self.summary.written += 1;
                    d
                }
            };
            let d = Arc::new(d);
            self.remember(t, d.clone());
            proven = t;
            data = d;
        }
        Ok((proven, data))
    }

    fn known(&self, t: Tile) -> Option<Arc<Vec<u8>>> {
        if t.is_full() {
            self.parents.get(&(t.l, t.n)).cloned()
        } else {
            self.edges
                .get(&(t.l, t.n))
                .filter(|d| d.len() == t.w as usize * 32)
                .cloned()
        }
    }
}

/// Which way a run of full tiles grows, and its other end.
#[derive(Clone, Copy)]
enum Run {
    /// New tiles at the head: the run is `low..` what is done.
    Up { low: i64 },
    /// Older tiles: the run is what is done `..high`.
    Down { high: i64 },
}

/// `from..to` cut at parent boundaries (one parent proves each piece), upwards.
fn chunks_up(from: i64, to: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut a = from;
    while a < to {
        let b = (((a >> TILE_HEIGHT) + 1) << TILE_HEIGHT).min(to);
        out.push((a, b));
        a = b;
    }
    out
}

/// At most `budget` positions below `below`, newest first, cut at parent
/// boundaries.
fn chunks_down(below: i64, budget: u64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let (mut b, mut left) = (below, budget);
    while b > 0 && left > 0 {
        let parent_start = ((b - 1) >> TILE_HEIGHT) << TILE_HEIGHT;
        let a = parent_start.max(b - left.min(b as u64) as i64);
        out.push((a, b));
        left -= (b - a) as u64;
        b = a;
    }
    out
}

/// A full tile read for a range, and where from.
struct Fetched {
    tile: Tile,
    data: Vec<u8>,
    from: Source,
}

/// Where a tile came from: only one from the upstream counts as fetched,
/// only one not already in the tree is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Tree,
    Memory,
    Upstream,
}

/// What a 404 for an older tile says: the fill stops there quietly.
const NOT_SERVED: &str = "the checksum database does not serve older tile";

fn full(l: i32, n: i64) -> Tile {
    Tile {
        h: TILE_HEIGHT,
        l,
        n,
        w: 1 << TILE_HEIGHT,
    }
}

fn sumdb_stop(e: SumdbError) -> Stop {
    if e.is_fatal() || matches!(e, SumdbError::Store(_) | SumdbError::Io(_)) {
        Stop::Fatal(e.into())
    } else {
        Stop::Fetch(e.to_string())
    }
}

fn runner_check() -> Result<(), Stop> {
    crate::fatal::stop_if_interrupted().map_err(Stop::Fatal)
}

/// Writes proven full tiles: one at a time where a partial tile may have to
/// go (`at_edges`), else as many at once as the store takes
/// (`Store::parallelism`: 1 for a directory, more for a bucket).
fn write_tiles(
    store: &dyn Store,
    name: &str,
    writes: Vec<(Tile, Vec<u8>)>,
    at_edges: bool,
) -> Result<(), crate::store::StoreError> {
    if at_edges {
        for (t, d) in writes {
            write_tile(store, name, t, &d)?;
        }
        return Ok(());
    }
    let threads = store.parallelism().clamp(1, writes.len().max(1));
    if threads == 1 {
        for (t, d) in writes {
            write_older_tile(store, name, t, &d)?;
        }
        return Ok(());
    }
    let queue = std::sync::Mutex::new(writes.into_iter());
    let failed = std::sync::Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                    let Some((t, d)) = next else { break };
                    if let Err(e) = write_older_tile(store, name, t, &d) {
                        failed
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get_or_insert(e);
                        break;
                    }
                }
            });
        }
    });
    match failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A full tile as the tree holds it, if it is there and of a full tile's size.
async fn read_tree_tile(store: &Arc<dyn Store>, name: &str, t: Tile) -> Option<Vec<u8>> {
    let (store, key) = (store.clone(), crate::store::layout::tile(name, t));
    let read = tokio::task::spawn_blocking(move || store.read(&key, FULL_TILE_BYTES as u64)).await;
    match read {
        Ok(Ok(Some(d))) if d.len() == FULL_TILE_BYTES => Some(d),
        _ => None,
    }
}

async fn barrier(store: &Arc<dyn Store>) -> Result<(), Fatal> {
    let s = store.clone();
    tokio::task::spawn_blocking(move || s.barrier())
        .await
        .map_err(|e| Fatal::crashed("making tiles durable", e))?
        .map_err(Fatal::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_stop_at_parent_boundaries_and_the_budget() {
        assert_eq!(chunks_up(5, 5), []);
        assert_eq!(chunks_up(250, 600), [(250, 256), (256, 512), (512, 600)]);
        assert_eq!(chunks_up(0, 256), [(0, 256)]);
        assert_eq!(chunks_down(0, 100), []);
        assert_eq!(chunks_down(600, 0), []);
        assert_eq!(
            chunks_down(600, u64::MAX),
            [(512, 600), (256, 512), (0, 256)]
        );
        // Newest first, at most the budget.
        assert_eq!(chunks_down(600, 100), [(512, 600), (500, 512)]);
        assert_eq!(chunks_down(273, 100), [(256, 273), (173, 256)]);
        assert_eq!(chunks_down(3, 2), [(1, 3)]);
    }
}
