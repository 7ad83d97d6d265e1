//! Talking to the checksum database, and mirroring it.
//!
//! # Trust
//!
//! Every signed tree head (from `/latest` or inside a `/lookup`) must carry a
//! valid signature by the configured key. The mirror keeps the largest head it
//! has accepted (in the state database, across runs); any other head is
//! accepted only with a proof, computed from tiles, that the smaller of the two
//! trees is a prefix of the larger — exactly the check the go command makes
//! (`checkTrees`). A head of the same size with another hash, or a failed
//! proof, is a forked log: a security failure that stops the run.
//!
//! Every record is proven included in its head's tree with tiles before its
//! hashes are trusted (`checkRecord`).
//!
//! # The first head
//!
//! A new mirror has nothing to check its first head against, so it trusts it
//! on first use — but only a head the log can back: its tree hash must be
//! reproduced from the upstream's tiles (the tree-hash tiles of
//! `TileHashReader`) before it is accepted. Without that, one validly signed
//! but absurd head (say of 2^62 records) would become the anchor every later,
//! honest head is proven against, with tiles that do not exist: every version
//! would fail for ever. Such a head is refused as a security failure (the run
//! exits 2) and nothing is recorded, so the next run starts over as a new
//! mirror and recovers by itself once the database serves a provable head.
//! Checking the tiles rather than waiting for a lookup's head to prove the
//! first one keeps trust decisions in one place (`accept`) and costs nothing
//! extra: those tiles are the ones the mirror stores for that head anyway.
//!
//! A mirror that already trusts a head whose tiles the database does not
//! serve (one accepted before this check existed, or a log that lost data)
//! cannot prove anything against it; the error says so and prints the one
//! state-database statement that drops that head, for an operator who has
//! made sure the database is the genuine one ([`LogClient::accept`]).
//!
//! # Locking
//!
//! `inner` is a `std::sync::Mutex`, which is not re-entrant: a guard alive
//! while another method of the client locks it again hangs the run for ever
//! (a guard borrowed by an `if let` scrutinee lives through its whole body —
//! that is how a forked head of the trusted size once deadlocked). So every
//! lock goes through [`LogClient::state`], copies out what it needs and drops
//! the guard within the statement or a short block that calls nothing else,
//! and no guard is ever held across an `.await`.
//!
//! # Tiles in the tree
//!
//! Every tile read here is authenticated (it reproduces a signed tree hash,
//! directly or through its parents) before it is used, and then stored in the
//! output tree, so the mirror serves exactly what clients fetch for the same
//! checks. A full tile is stored once and supersedes the partial ones of the
//! same position (clients fall back to the full tile and truncate it:
//! `sumdb/client.go readTile`); a partial tile is stored only while its full
//! tile does not exist yet.
//!
//! [`LogClient::mirror_tiles`] then makes sure that, for every tree size the
//! mirror hands out and every record it serves, each tile on the proof paths a
//! client can take is present (see its docs for why the set is complete).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::gomod;
use crate::http::FetchError;
use crate::http::list::{Avoid, UpstreamList};
use crate::store::layout::{self, Key};
use crate::store::{Store, StoreError};
use crate::sumdb::note::{self, Verifier};
use crate::sumdb::tile::{self, Tile};
use crate::sumdb::tlog::{self, Hash, Tree};

/// The tile height of sum.golang.org, which the go command assumes.
pub const TILE_HEIGHT: i32 = 8;
/// Lookup bodies are a few hundred bytes; anything near this is hostile.
const LOOKUP_LIMIT: u64 = 1 << 20;
const NOTE_LIMIT: u64 = 1 << 20;
const TILE_LIMIT: u64 = 32 << TILE_HEIGHT;
/// Tiles kept in memory (8 KiB each at most).
const TILE_CACHE: usize = 4096;
/// Full tiles completed since the last served head that publishing stores
/// itself with [`TileMode::All`] (a day of the public log completes a few
/// hundred); more, after a long pause, are left to the next tile fill.
const FORWARD_TILES_IN_PUBLISH: usize = 1024;

/// A signed tree head: the tree and the signed note that states it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHead {
    pub tree: Tree,
    pub note: Vec<u8>,
}

impl SignedHead {
    /// The note text for messages.
    pub fn describe(&self) -> String {
        String::from_utf8_lossy(&self.note).into_owned()
    }
}

/// A verified `/lookup` answer.
#[derive(Clone, Debug)]
pub struct Lookup {
    /// The body exactly as served (it is mirrored verbatim).
    pub body: Vec<u8>,
    pub record_id: i64,
    pub zip_h1: String,
    pub mod_h1: String,
    pub head: SignedHead,
}

/// Why a checksum-database operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SumdbError {
    /// The log or its signatures cannot be trusted: stop everything.
    #[error("SECURITY ERROR: {0}")]
    Security(String),
    /// The database does not know this module version (404/410 on lookup).
    #[error("{module}@{version}: not found in the checksum database ({source})")]
    NotFound {
        module: String,
        version: String,
        #[source]
        source: FetchError,
    },
    /// The database could not be reached or answered an error.
    #[error("checksum database: {0}")]
    Fetch(#[source] FetchError),
    /// A lookup answered, verified, but does not describe the requested version.
    #[error("{module}@{version}: {message}")]
    BadRecord {
        module: String,
        version: String,
        message: String,
    },
    #[error("checksum database: {0}")]
    Io(#[source] std::io::Error),
    /// Its files could not be read from or written to the mirror tree.
    #[error("checksum database files: {0}")]
    Store(#[source] StoreError),
}

/// A checksum-database failure that stops a command keeps its type as the
/// cause of [`crate::fatal::Fatal::Checksum`].
impl From<SumdbError> for crate::fatal::Fatal {
    fn from(e: SumdbError) -> crate::fatal::Fatal {
        crate::fatal::Fatal::Checksum(Box::new(e))
    }
}

impl SumdbError {
    /// Whether the whole run must stop.
    pub fn is_fatal(&self) -> bool {
        matches!(self, SumdbError::Security(_))
    }
}

struct Inner {
    /// The largest accepted head.
    trusted: Option<SignedHead>,
    /// Every head accepted (this run, or loaded), by size.
    known: BTreeMap<i64, Hash>,
    /// Heads accepted in this process that the state database has not recorded.
    unsaved: Vec<SignedHead>,
    /// Authenticated tiles, and whether each is already in the mirror tree.
    cache: HashMap<Tile, (Arc<Vec<u8>>, bool)>,
    /// Tiles being read now: a second reader of the same tile waits for the
    /// first one's bytes instead of asking the upstream again (lookups at
    /// once share most of their proofs).
    reading: HashMap<Tile, Arc<TileRead>>,
}

/// One read of a tile, shared by whoever asks for it meanwhile: its bytes
/// and whether the mirror tree lacks them, not yet authenticated.
type TileRead = tokio::sync::OnceCell<(Arc<Vec<u8>>, bool)>;

pub use crate::settings::TileMode;

/// A client of one checksum database, which also maintains its mirror.
pub struct LogClient {
    name: String,
    verifier: Verifier,
    /// Where the database is reached: one URL or a list with failover.
    list: Arc<UpstreamList>,
    tree: Arc<dyn Store>,
    inner: Mutex<Inner>,
    /// Serialises head acceptance (which awaits tile reads).
    accept_lock: tokio::sync::Mutex<()>,
    /// When set, tiles come from the mirror tree only (for `verify`).
    offline: bool,
    /// Which tiles the mirror tree holds ([`TileMode`]).
    tiles: TileMode,
}

impl LogClient {
    pub fn new(verifier: Verifier, list: Arc<UpstreamList>, tree: Arc<dyn Store>) -> LogClient {
        LogClient {
            name: verifier.name().to_string(),
            verifier,
            list,
            tree,
            inner: Mutex::new(Inner {
                trusted: None,
                known: BTreeMap::new(),
                unsaved: Vec::new(),
                cache: HashMap::new(),
                reading: HashMap::new(),
            }),
            accept_lock: tokio::sync::Mutex::new(()),
            offline: false,
            tiles: TileMode::default(),
        }
    }

    /// Which tiles [`LogClient::mirror_tiles`] keeps in the tree (default:
    /// [`TileMode::All`]).
    pub fn with_tiles(mut self, mode: TileMode) -> LogClient {
        self.tiles = mode;
        self
    }

    /// Trusts `head` (accepted earlier, verified again by the caller with
    /// [`LogClient::parse_head`]): every later head must be consistent with it.
    pub fn trust(self, head: SignedHead) -> LogClient {
        {
            let mut inner = self.state();
            inner.known.insert(head.tree.n, head.tree.hash);
            inner.trusted = Some(head);
        }
        self
    }

    /// A client that reads tiles only from the mirror tree: it checks what a
    /// go client using the mirror would check, with the upstream out of reach.
    pub fn offline(mut self) -> LogClient {
        self.offline = true;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// GETs `<base>/<rel>` from the first entry of the list that has it.
    async fn fetch(&self, rel: &str, limit: u64) -> Result<Vec<u8>, FetchError> {
        Ok(self.list.get_bytes(rel, limit, Avoid::none()).await?.value)
    }

    /// The largest accepted head.
    pub fn trusted(&self) -> Option<SignedHead> {
        self.state().trusted.clone()
    }

    /// Heads accepted since the last call, for the state database.
    pub fn take_unsaved(&self) -> Vec<SignedHead> {
        std::mem::take(&mut self.state().unsaved)
    }

    /// The client's shared state. Keep the guard to one statement or a block
    /// that calls no other method of the client (see "Locking" above). A
    /// panic elsewhere never leaves `Inner` half-updated (each update is one
    /// insert or assignment), so a poisoned lock is still usable.
    fn state(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The hash of the accepted head of `n` records, copied out of the lock.
    fn known_hash(&self, n: i64) -> Option<Hash> {
        self.state().known.get(&n).copied()
    }

    /// Verifies a signed note by the configured key and parses its tree.
    pub fn parse_head(&self, note_bytes: &[u8]) -> Result<SignedHead, SumdbError> {
        // What was served is not verified: shown escaped and cut.
        let served = || crate::shown::block(&String::from_utf8_lossy(note_bytes), 8);
        let text = note::open(note_bytes, &self.verifier).map_err(|e| {
            SumdbError::Security(format!(
                "checksum database tree head rejected: {e}\n{}",
                served()
            ))
        })?;
        let tree = tlog::parse_tree(text.as_bytes()).map_err(|e| {
            SumdbError::Security(format!(
                "checksum database tree head is malformed: {e}\n{}",
                served()
            ))
        })?;
        Ok(SignedHead {
            tree,
            note: note_bytes.to_vec(),
        })
    }

    /// Fetches `/latest` and accepts it. A head smaller than the one this
    /// mirror already trusts means the log was rewound: a security failure.
    pub async fn refresh_latest(&self) -> Result<SignedHead, SumdbError> {
        let body = self
            .fetch("latest", NOTE_LIMIT)
            .await
            .map_err(SumdbError::Fetch)?;
        let head = self.parse_head(&body)?;
        if let Some(t) = self.trusted()
            && head.tree.n < t.tree.n
        {
            // Whether the log still proves the head it shrank from decides
            // which advice helps: none for a real rewind, the recovery for a
            // head that was never backed by the log.
            let probe = TileHashes {
                client: self,
                tree: t.tree,
                persist: false,
            };
            let unproven = match probe.read_hashes(&[]).await {
                Err(SumdbError::Fetch(e)) if e.is_not_found() => {
                    format!("\n\n{}", self.recovery(&t, &e))
                }
                _ => String::new(),
            };
            return Err(SumdbError::Security(format!(
                "checksum database rewound: its latest tree has {} records, but this mirror already accepted a tree of {}.{unproven}\n\nlatest now:\n{}\naccepted before:\n{}",
                head.tree.n,
                t.tree.n,
                head.describe(),
                t.describe()
            )));
        }
        self.accept(&head).await?;
        Ok(head)
    }

    /// Accepts a verified head if it is consistent with every head accepted
    /// so far; the first head only if the log's tiles reproduce its hash.
    ///
    /// A head the log cannot prove (its tiles are missing upstream) is a
    /// security failure when it is the first one, and when the head already
    /// trusted is the one that cannot be proven, the error says how to drop
    /// it. A tile that cannot be fetched for a new, larger head is an
    /// ordinary fetch error (the version is retried next run).
    pub async fn accept(&self, head: &SignedHead) -> Result<(), SumdbError> {
        if let Some(known) = self.known_hash(head.tree.n) {
            return self.same_size(head, known);
        }
        let _guard = self.accept_lock.lock().await;
        // Re-check under the lock: another task may have accepted it meanwhile.
        let (known, trusted) = {
            let inner = self.state();
            (
                inner.known.get(&head.tree.n).copied(),
                inner.trusted.clone(),
            )
        };
        if let Some(known) = known {
            return self.same_size(head, known);
        }
        match &trusted {
            None => self.check_first(head).await?,
            Some(t) => self.check_consistent(head, t).await?,
        }
        let mut inner = self.state();
        inner.known.insert(head.tree.n, head.tree.hash);
        if inner
            .trusted
            .as_ref()
            .is_none_or(|t| head.tree.n > t.tree.n)
        {
            inner.trusted = Some(head.clone());
        }
        inner.unsaved.push(head.clone());
        Ok(())
    }

    /// A head of a size already accepted is the same head, or a fork.
    fn same_size(&self, head: &SignedHead, known: Hash) -> Result<(), SumdbError> {
        if known == head.tree.hash {
            Ok(())
        } else {
            Err(self.fork(head, None))
        }
    }

    /// Trust on first use, for a tree the log can prove: its tree-hash tiles,
    /// fetched now, must reproduce the signed hash.
    async fn check_first(&self, head: &SignedHead) -> Result<(), SumdbError> {
        // Not persisted yet: they go to the mirror once the head is accepted.
        let reader = TileHashes {
            client: self,
            tree: head.tree,
            persist: false,
        };
        let Err(e) = reader.read_hashes(&[]).await else {
            return Ok(());
        };
        self.forget();
        let why = match e {
            SumdbError::Fetch(e) if e.is_not_found() => {
                format!("does not serve the tiles that prove it ({e})")
            }
            SumdbError::Security(m) => format!("cannot prove it from its tiles ({m})"),
            e => return Err(e),
        };
        Err(SumdbError::Security(format!(
            "checksum database {} signed a tree head of {} records but {why}. This mirror trusts no head yet and will not take one it cannot prove as its first. Nothing was recorded: the next run starts over, and succeeds once the database serves a head its tiles prove.\n\nrefused head:\n{}",
            self.name,
            head.tree.n,
            head.describe()
        )))
    }

    /// Proves that the smaller of `head` and the trusted head `t` is a prefix
    /// of the larger, with the larger one's tiles.
    async fn check_consistent(&self, head: &SignedHead, t: &SignedHead) -> Result<(), SumdbError> {
        let (older, newer) = if head.tree.n > t.tree.n {
            (t.tree, head.tree)
        } else {
            (head.tree, t.tree)
        };
        // Tiles read for a head not yet accepted stay in memory: a forked
        // log's tiles must never reach the mirror.
        let reader = TileHashes {
            client: self,
            tree: newer,
            persist: false,
        };
        let computed = match reader.tree_hash(older.n).await {
            Ok(h) => h,
            Err(e) => {
                self.forget();
                return Err(match e {
                    SumdbError::Security(m) => self.fork(head, Some(&m)),
                    SumdbError::Fetch(e) if e.is_not_found() && newer == t.tree => {
                        SumdbError::Security(format!(
                            "cannot check a tree head of {} records from checksum database {}: {}\n\nnew head:\n{}\naccepted head:\n{}",
                            head.tree.n,
                            self.name,
                            self.recovery(t, &e),
                            head.describe(),
                            t.describe()
                        ))
                    }
                    e => e,
                });
            }
        };
        if computed != older.hash {
            self.forget();
            return Err(self.fork(head, None));
        }
        Ok(())
    }

    /// What to tell an operator whose trusted head `t` the log does not prove
    /// (`missing` is the tile request that found nothing).
    fn recovery(&self, t: &SignedHead, missing: &FetchError) -> String {
        format!(
            "this mirror trusts a tree head of {n} records, but the checksum database does not serve the tiles that prove it ({missing}). Either the log lost data, or that head was never backed by the log (older gomirror releases trusted a new mirror's first head without checking it against tiles). Nothing is published until this is resolved. Once you have made sure that {base} is the genuine {name} (its current head and another client's view agree), drop that head from the state database (the file that `mirror.state` in sync.toml names) while no run is going, and sync again; the mirror then proves every later head against the heads it accepted before it, or, having none, trusts the database's current head once its tiles prove it:\n\n    sqlite3 <mirror.state> \"DELETE FROM sumdb_trees WHERE size = {n}\"",
            n = t.tree.n,
            base = self.list.describe(),
            name = self.name,
        )
    }

    fn fork(&self, head: &SignedHead, detail: Option<&str>) -> SumdbError {
        let trusted = self.trusted();
        SumdbError::Security(format!(
            "checksum database {} served a tree head inconsistent with one this mirror accepted earlier: the log has forked or been rewritten{}.\n\nnew head:\n{}\naccepted head:\n{}",
            self.name,
            detail.map(|d| format!(" ({d})")).unwrap_or_default(),
            head.describe(),
            trusted
                .map(|t| t.describe())
                .unwrap_or_else(|| "(none)".into())
        ))
    }

    /// Looks up `module@version`, verifies the head's signature and consistency
    /// and the record's inclusion, and returns the hashes it states.
    pub async fn lookup(&self, module: &str, version: &str) -> Result<Lookup, SumdbError> {
        let body = self.fetch_lookup(module, version).await?;
        self.verify_lookup(module, version, body).await
    }

    /// The lookup of `module@version` as served, not yet verified (see
    /// [`LogClient::verify_lookup`]).
    pub async fn fetch_lookup(&self, module: &str, version: &str) -> Result<Vec<u8>, SumdbError> {
        let rel = format!(
            "lookup/{}@{}",
            gomod::escape_path(module).map_err(|e| bad_record(module, version, e.to_string()))?,
            gomod::escape_version(version).map_err(|e| bad_record(
                module,
                version,
                e.to_string()
            ))?
        );
        match self.fetch(&rel, LOOKUP_LIMIT).await {
            Ok(b) => Ok(b),
            Err(e) if e.is_not_found() => Err(SumdbError::NotFound {
                module: module.into(),
                version: version.into(),
                source: e,
            }),
            Err(e) => Err(SumdbError::Fetch(e)),
        }
    }

    /// Verifies a lookup body (fetched now, or read back from the mirror).
    pub async fn verify_lookup(
        &self,
        module: &str,
        version: &str,
        body: Vec<u8>,
    ) -> Result<Lookup, SumdbError> {
        let (id, text, note_bytes) = tlog::parse_record(&body).map_err(|e| {
            SumdbError::Security(format!(
                "{module}@{version}: malformed checksum database lookup: {e}"
            ))
        })?;
        let head = self.parse_head(note_bytes)?;
        self.accept(&head).await?;
        if id < 0 || id >= head.tree.n {
            return Err(SumdbError::Security(format!(
                "{module}@{version}: checksum database record {id} is not in its own tree of {} records",
                head.tree.n
            )));
        }
        let reader = self.hash_reader(head.tree);
        let leaf = reader
            .read_hashes(&[tlog::stored_hash_index(0, id)])
            .await?
            .remove(0);
        if leaf != tlog::record_hash(text) {
            return Err(SumdbError::Security(format!(
                "{module}@{version}: cannot authenticate record data in checksum database response (record {id} is not the one in the log)"
            )));
        }
        let text = std::str::from_utf8(text)
            .map_err(|_| bad_record(module, version, "record is not UTF-8".into()))?;
        let mut zip_h1 = None;
        let mut mod_h1 = None;
        for line in text.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            if f.len() != 3 || f[0] != module {
                continue;
            }
            if f[1] == version {
                zip_h1 = Some(f[2].to_string());
            } else if f[1].strip_suffix("/go.mod") == Some(version) {
                mod_h1 = Some(f[2].to_string());
            }
        }
        let (Some(zip_h1), Some(mod_h1)) = (zip_h1, mod_h1) else {
            return Err(bad_record(
                module,
                version,
                format!("checksum database record {id} does not list this version:\n{text}"),
            ));
        };
        let head = SignedHead {
            tree: head.tree,
            note: note_bytes.to_vec(),
        };
        Ok(Lookup {
            body: body.clone(),
            record_id: id,
            zip_h1,
            mod_h1,
            head,
        })
    }

    /// Makes sure the mirror holds every tile a client needs, given that it
    /// serves lookups for `records` and tree heads of `sizes` (each accepted),
    /// and that `previous_max` was the largest size served before.
    ///
    /// A client checks (a) record r against its latest head N, and (b) heads
    /// N1 < N2 against each other; both read, at each level L, the tile holding
    /// some position q (r, or N1−1) clipped to the larger tree. Clipped, such a
    /// tile is either full — then it is full in the mirror's largest tree T and
    /// stored once for q — or it is the partial right-edge tile of that tree,
    /// which holds a subtree of its tree-hash decomposition and so is stored
    /// with that head's tree-hash tiles. So it suffices to store, for every q in
    /// the new records, {N−1} for new sizes N, and previous_max−1 (whose partial
    /// tiles may have filled since), the tile at every level clipped to T; and
    /// for every new size, its tree-hash tiles.
    ///
    /// With [`TileMode::All`] the tree also keeps what a client holding any
    /// head between `previous_max` and T needs (the tile fill, `crate::tiles`,
    /// holds it up to `previous_max`): every full tile completed in between
    /// (when they are few: after a long pause the next fill does it), and every
    /// width of T's right-edge tiles that `previous_max`'s did not have.
    pub async fn mirror_tiles(
        &self,
        records: &[i64],
        sizes: &[i64],
        previous_max: Option<i64>,
    ) -> Result<(), SumdbError> {
        let Some(top) = self.trusted() else {
            return Ok(());
        };
        let t = top.tree;
        let mut positions: Vec<i64> = records.to_vec();
        positions.extend(sizes.iter().filter(|&&n| n > 0).map(|n| n - 1));
        if let Some(p) = previous_max
            && p > 0
            && p < t.n
        {
            positions.push(p - 1);
            if self.tiles == TileMode::All {
                // The last record under each tile completed since: reading
                // its path stores the tile, full, at its level.
                let completed: Vec<Tile> = tile::new_tiles(TILE_HEIGHT, p, t.n)
                    .into_iter()
                    .filter(Tile::is_full)
                    .collect();
                if completed.len() <= FORWARD_TILES_IN_PUBLISH {
                    positions.extend(completed.iter().map(|c| {
                        let shift = i64::from(TILE_HEIGHT) * i64::from(c.l + 1);
                        ((c.n + 1) << shift) - 1
                    }));
                }
            }
        }
        positions.sort_unstable();
        positions.dedup();
        let reader = self.hash_reader(t);
        let mut indexes = Vec::new();
        for &q in &positions {
            if q < 0 || q >= t.n {
                continue;
            }
            let mut level = 0;
            while level < 63 && (t.n >> level) > 0 {
                let m = q >> level;
                if m < (t.n >> level) {
                    indexes.push(tlog::stored_hash_index(level as i32, m));
                }
                level += TILE_HEIGHT as usize;
            }
        }
        indexes.sort_unstable();
        indexes.dedup();
        for chunk in indexes.chunks(64) {
            reader.read_hashes(chunk).await?;
        }
        let known: Vec<(i64, Hash)> = {
            let inner = self.state();
            sizes
                .iter()
                .filter_map(|n| inner.known.get(n).map(|h| (*n, *h)))
                .collect()
        };
        for (n, hash) in known {
            if n > 0 {
                self.hash_reader(Tree { n, hash }).read_hashes(&[]).await?;
            }
        }
        if self.tiles == TileMode::All && previous_max.is_none_or(|p| p < t.n) {
            let edges = self.edge_tiles(t).await?;
            self.write_edge_widths(previous_max, t, &edges).await?;
        }
        Ok(())
    }

    /// The tiles at the right edge of the accepted tree `tree` (one partial
    /// tile per level that does not end on a full one: its tree-hash tiles),
    /// authenticated against its signed hash and mirrored at its width.
    /// Every hash in them is proven by the tree hash.
    pub async fn edge_tiles(&self, tree: Tree) -> Result<Vec<(Tile, Arc<Vec<u8>>)>, SumdbError> {
        if self.known_hash(tree.n) != Some(tree.hash) {
            return Err(SumdbError::Security(format!(
                "tiles of tree {} asked for, but that head was not accepted",
                tree.n
            )));
        }
        let (_, tiles) = self.hash_reader(tree).read(&[]).await?;
        Ok(tiles)
    }

    /// Writes every partial tile at the right edges of `tree` that a client
    /// can ask for and that the edges of a tree of `old` records did not
    /// already include ([`tile::new_edge_widths`]), cut from `edges` (from
    /// [`LogClient::edge_tiles`]). Returns how many were written.
    pub async fn write_edge_widths(
        &self,
        old: Option<i64>,
        tree: Tree,
        edges: &[(Tile, Arc<Vec<u8>>)],
    ) -> Result<u64, SumdbError> {
        if self.offline {
            return Ok(0);
        }
        let wanted = tile::new_edge_widths(TILE_HEIGHT, old, tree.n);
        let mut cuts = Vec::with_capacity(wanted.len());
        for w in wanted {
            let Some((edge, data)) = edges.iter().find(|(e, _)| e.l == w.l && e.n == w.n) else {
                return Err(SumdbError::Security(format!(
                    "no edge tile of tree {} for {}",
                    tree.n,
                    w.path()
                )));
            };
            if w.w > edge.w || data.len() < w.w as usize * 32 {
                return Err(SumdbError::Security(format!(
                    "edge tile {} of tree {} is too narrow for {}",
                    edge.path(),
                    tree.n,
                    w.path()
                )));
            }
            cuts.push((w, data.clone()));
        }
        let (store, name) = (self.tree.clone(), self.name.clone());
        tokio::task::spawn_blocking(move || {
            let mut written = 0;
            for (w, data) in cuts {
                if write_partial_tile(&*store, &name, w, &data[..w.w as usize * 32])? {
                    written += 1;
                }
            }
            Ok(written)
        })
        .await
        .map_err(|e| SumdbError::Io(std::io::Error::other(e.to_string())))?
        .map_err(SumdbError::Store)
    }

    /// Fetches `tile` exactly as the database serves it (through the list's
    /// failover), not yet authenticated: the caller proves it before it is
    /// used or stored.
    pub async fn fetch_tile(&self, tile: Tile) -> Result<Vec<u8>, FetchError> {
        self.fetch(&tile.path(), TILE_LIMIT).await
    }

    /// [`LogClient::fetch_tile`], sharing the request with the proofs
    /// reading the same tile at the same time (the tile fill runs beside a
    /// sync's lookups): whichever asks first asks the upstream, the other
    /// takes its bytes (and proves them itself, as always).
    pub async fn fetch_tile_shared(&self, tile: Tile) -> Result<Vec<u8>, FetchError> {
        let (read, mine) = {
            let mut inner = self.state();
            match inner.reading.get(&tile) {
                Some(r) => (r.clone(), false),
                None => {
                    let r = Arc::new(TileRead::new());
                    inner.reading.insert(tile, r.clone());
                    (r, true)
                }
            }
        };
        let result = read
            .get_or_try_init(|| async {
                let data = self.fetch_tile(tile).await?;
                Ok::<_, FetchError>((Arc::new(data), true))
            })
            .await
            .map(|(d, _)| d.to_vec());
        if mine {
            // The fill proves and stores the tile itself: a proof asking for
            // it later finds it in the tree.
            let mut inner = self.state();
            if inner
                .reading
                .get(&tile)
                .is_some_and(|r| Arc::ptr_eq(r, &read))
            {
                inner.reading.remove(&tile);
            }
        }
        result
    }

    /// A tile this client read and proved in this process (for any head it
    /// then accepted; a forked log's tiles are forgotten), still in memory.
    /// The caller proves it again before storing it.
    pub fn tile_in_memory(&self, tile: Tile) -> Option<Arc<Vec<u8>>> {
        let inner = self.state();
        inner
            .cache
            .get(&tile)
            .map(|(d, _)| d.clone())
            .filter(|d| d.len() == tile.w as usize * 32)
    }

    /// The tree this client mirrors into.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.tree
    }

    /// Writes `sumdb/<name>/supported` and `latest` (the trusted head).
    pub async fn write_static_files(&self) -> Result<(), SumdbError> {
        let db = self.name.clone();
        let (tree, latest) = (self.tree.clone(), self.trusted().map(|t| t.note));
        blocking(move || {
            tree.write_if_changed(&layout::plain(Key::SumdbSupported { db: db.clone() }), b"")?;
            if let Some(note) = latest {
                tree.write_if_changed(&layout::plain(Key::SumdbLatest { db }), &note)?;
            }
            Ok(())
        })
        .await
    }

    fn hash_reader(&self, tree: Tree) -> TileHashes<'_> {
        TileHashes {
            client: self,
            tree,
            persist: true,
        }
    }

    /// The content of `tile` and whether the mirror tree lacks it: from memory,
    /// the mirror tree, or the upstream (exact, then the full tile truncated).
    /// Not yet authenticated.
    async fn tile_data(&self, tile: Tile) -> Result<(Arc<Vec<u8>>, bool), SumdbError> {
        if let Some((d, on_disk)) = self.cached(tile) {
            return Ok((d, !on_disk));
        }
        let read = self.state().reading.entry(tile).or_default().clone();
        // The first asker reads; the others wait for its bytes (if it
        // fails, the next one waiting tries in turn). The read stays shared
        // until its tile is authenticated and cached ([`Self::store_tile`])
        // or found wrong ([`Self::forget`]).
        read.get_or_try_init(|| self.read_tile(tile)).await.cloned()
    }

    /// Forgets every tile held in memory, authenticated or being read
    /// (what was read may be what failed to verify).
    fn forget(&self) {
        let mut inner = self.state();
        inner.cache.clear();
        inner.reading.clear();
    }

    /// [`LogClient::tile_data`] for a tile not in memory: from the mirror
    /// tree, or the upstream.
    async fn read_tile(&self, tile: Tile) -> Result<(Arc<Vec<u8>>, bool), SumdbError> {
        let want = tile.w as usize * 32;
        for candidate in [tile, tile.full()] {
            let (tree, key) = (self.tree.clone(), layout::tile(&self.name, candidate));
            // Unreadable or damaged on disk: fetched again (and authenticated) below.
            let on_disk = tokio::task::spawn_blocking(move || tree.read(&key, TILE_LIMIT)).await;
            if let Ok(Ok(Some(data))) = on_disk
                && data.len() == candidate.w as usize * 32
                && data.len() >= want
            {
                return Ok((Arc::new(data[..want].to_vec()), false));
            }
            if candidate == candidate.full() {
                break;
            }
        }
        if self.offline {
            return Err(SumdbError::Security(format!(
                "tile {} is missing from the mirror",
                tile.path()
            )));
        }
        match self.fetch(&tile.path(), TILE_LIMIT).await {
            Ok(data) => Ok((Arc::new(data), true)),
            Err(e) if e.is_not_found() && !tile.is_full() => {
                let data = self
                    .fetch(&tile.full().path(), TILE_LIMIT)
                    .await
                    .map_err(SumdbError::Fetch)?;
                if data.len() < want {
                    return Err(SumdbError::Security(format!(
                        "checksum database served a short tile {}",
                        tile.full().path()
                    )));
                }
                Ok((Arc::new(data[..want].to_vec()), true))
            }
            Err(e) => Err(SumdbError::Fetch(e)),
        }
    }

    fn cached(&self, tile: Tile) -> Option<(Arc<Vec<u8>>, bool)> {
        let inner = self.state();
        if let Some((d, on_disk)) = inner.cache.get(&tile) {
            return Some((d.clone(), *on_disk));
        }
        if !tile.is_full()
            && let Some((d, on_disk)) = inner.cache.get(&tile.full())
        {
            // A prefix of a full tile on disk is served by clients' fallback.
            return Some((Arc::new(d[..tile.w as usize * 32].to_vec()), *on_disk));
        }
        None
    }

    /// Remembers an authenticated tile, and mirrors it when `persist` (its head
    /// is accepted) and the tree lacks it (`fresh`).
    async fn store_tile(
        &self,
        tile: Tile,
        data: &Arc<Vec<u8>>,
        fresh: bool,
        persist: bool,
    ) -> Result<(), SumdbError> {
        let write = fresh && persist && !self.offline;
        {
            let mut inner = self.state();
            if inner.cache.len() >= TILE_CACHE {
                // Bounded memory: forget everything; tiles are re-read from disk.
                inner.cache.clear();
                inner.reading.clear();
            }
            inner.cache.insert(tile, (data.clone(), !fresh || write));
            inner.reading.remove(&tile);
        }
        if !write {
            return Ok(());
        }
        let (tree, name, data) = (self.tree.clone(), self.name.clone(), data.clone());
        blocking(move || mirror_tile(&*tree, &name, tile, &data)).await
    }
}

/// Serialises tile writes. Check-then-write of a partial must not interleave
/// with a full tile's write-then-remove of the partials (lookups with older
/// heads than the latest make both happen at once): the partial's directory
/// vanished under its write, or a partial was left beside its full tile.
static TILE_WRITES: Mutex<()> = Mutex::new(());

/// Writes an authenticated tile of database `name` into the tree, as
/// [`LogClient`] does: a full tile supersedes the partial ones at its
/// position (clients fall back to it), a partial tile is only written while
/// its full tile is absent.
pub fn write_tile(tree: &dyn Store, name: &str, tile: Tile, data: &[u8]) -> Result<(), StoreError> {
    mirror_tile(tree, name, tile, data)
}

/// Writes an authenticated full tile of database `name` at a position that
/// never was a right edge of the tree (an older tile the fill brings in):
/// there is no partial tile to supersede, so neither a removal nor the lock
/// that orders it with partial writes; several may be written at once.
pub fn write_older_tile(
    tree: &dyn Store,
    name: &str,
    tile: Tile,
    data: &[u8],
) -> Result<(), StoreError> {
    debug_assert!(tile.is_full());
    tree.write_if_changed(&layout::tile(name, tile), data)?;
    Ok(())
}

/// Writes one authenticated partial tile of database `name` unless its full
/// tile is there; returns whether it was written (or rewritten).
fn write_partial_tile(
    tree: &dyn Store,
    name: &str,
    tile: Tile,
    data: &[u8],
) -> Result<bool, StoreError> {
    let _one_at_a_time = TILE_WRITES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if full_tile_present(tree, name, tile)? {
        return Ok(false);
    }
    tree.write_if_changed(&layout::tile(name, tile), data)
}

fn full_tile_present(tree: &dyn Store, name: &str, tile: Tile) -> Result<bool, StoreError> {
    match tree.stat(&layout::tile(name, tile.full())) {
        Ok(found) => Ok(found.is_some()),
        // Not a file the mirror wrote (a stray, removed by prune): clients
        // cannot fall back to it, so the partial tile is written.
        Err(StoreError::NotAFile(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes an authenticated tile into the tree: a full tile supersedes the
/// partial ones at its position (clients fall back to it), and a partial tile
/// is only written while its full tile is absent.
fn mirror_tile(tree: &dyn Store, name: &str, tile: Tile, data: &[u8]) -> Result<(), StoreError> {
    let _one_at_a_time = TILE_WRITES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if tile.is_full() {
        let rel = layout::tile(name, tile);
        tree.write_if_changed(&rel, data)?;
        // Never through a link on the way; a link at `.p` itself is removed.
        tree.delete_tree(&format!("{rel}.p"))?;
        return Ok(());
    }
    if !full_tile_present(tree, name, tile)? {
        tree.write_if_changed(&layout::tile(name, tile), data)?;
    }
    Ok(())
}

/// Runs tree work on the blocking pool, off the async executor.
async fn blocking(
    f: impl FnOnce() -> Result<(), StoreError> + Send + 'static,
) -> Result<(), SumdbError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SumdbError::Io(std::io::Error::other(e.to_string())))?
        .map_err(SumdbError::Store)
}

fn bad_record(module: &str, version: &str, message: String) -> SumdbError {
    SumdbError::BadRecord {
        module: module.into(),
        version: version.into(),
        message,
    }
}

/// `TileHashReader` over the client's tile sources, asynchronous.
struct TileHashes<'a> {
    client: &'a LogClient,
    tree: Tree,
    /// Whether authenticated tiles may be written to the mirror tree.
    persist: bool,
}

/// Authenticated tiles with their content, as read for a plan.
type ReadTiles = Vec<(Tile, Arc<Vec<u8>>)>;

impl TileHashes<'_> {
    async fn read_hashes(&self, indexes: &[i64]) -> Result<Vec<Hash>, SumdbError> {
        Ok(self.read(indexes).await?.0)
    }

    /// The hashes at `indexes` and every tile read to prove them.
    async fn read(&self, indexes: &[i64]) -> Result<(Vec<Hash>, ReadTiles), SumdbError> {
        let plan = tile::plan_read_hashes(TILE_HEIGHT, self.tree.n, indexes).map_err(|e| {
            SumdbError::Security(format!(
                "cannot plan tile reads for tree {}: {e}",
                self.tree.n
            ))
        })?;
        // The plan's tiles at once: a proof costs one round trip, not one
        // per level.
        let read = futures_util::future::try_join_all(
            plan.tiles.iter().map(|t| self.client.tile_data(*t)),
        )
        .await?;
        let (mut data, mut fresh): (Vec<_>, Vec<_>) = read.into_iter().unzip();
        let owned: Vec<Vec<u8>> = data.iter().map(|d| d.as_ref().clone()).collect();
        let hashes = match tile::verify_read_hashes(&plan, self.tree, &owned) {
            Ok(h) => h,
            Err(e) if fresh.iter().all(|f| *f) || self.client.offline => {
                return Err(SumdbError::Security(format!(
                    "checksum database tiles do not match tree {} ({}): {e}",
                    self.tree.n, self.tree.hash
                )));
            }
            Err(_) => {
                // A tile from memory or disk may be damaged; forget them and
                // retry with the upstream's copies only.
                {
                    let mut inner = self.client.state();
                    for t in &plan.tiles {
                        inner.cache.remove(t);
                        inner.cache.remove(&t.full());
                        inner.reading.remove(t);
                        inner.reading.remove(&t.full());
                    }
                }
                let mut owned = Vec::with_capacity(plan.tiles.len());
                for t in &plan.tiles {
                    let d = match self.client.fetch(&t.path(), TILE_LIMIT).await {
                        Ok(d) => d,
                        Err(e) if e.is_not_found() && !t.is_full() => {
                            let mut d = self
                                .client
                                .fetch(&t.full().path(), TILE_LIMIT)
                                .await
                                .map_err(SumdbError::Fetch)?;
                            d.truncate(t.w as usize * 32);
                            d
                        }
                        Err(e) => return Err(SumdbError::Fetch(e)),
                    };
                    owned.push(d);
                }
                let h = tile::verify_read_hashes(&plan, self.tree, &owned).map_err(|e| {
                    SumdbError::Security(format!(
                        "checksum database tiles do not match tree {} ({}): {e}",
                        self.tree.n, self.tree.hash
                    ))
                })?;
                data = owned.into_iter().map(Arc::new).collect();
                fresh = vec![true; data.len()];
                h
            }
        };
        for ((t, d), f) in plan.tiles.iter().zip(&data).zip(&fresh) {
            self.client.store_tile(*t, d, *f, self.persist).await?;
        }
        Ok((hashes, plan.tiles.iter().copied().zip(data).collect()))
    }

    /// `TreeHash(n)` read through this (larger) tree's tiles.
    async fn tree_hash(&self, n: i64) -> Result<Hash, SumdbError> {
        if n == 0 {
            return Ok(tlog::tree_hash(0, &NoHashes).expect("empty tree"));
        }
        let mut indexes = Vec::new();
        tlog::sub_tree_index(0, n, &mut indexes);
        let hashes = self.read_hashes(&indexes).await?;
        let mut it = hashes.into_iter().rev();
        let mut h = it.next().expect("n > 0 has at least one subtree");
        for left in it {
            h = tlog::node_hash(left, h);
        }
        Ok(h)
    }
}

struct NoHashes;
impl tlog::HashReader for NoHashes {
    fn read_hashes(&self, indexes: &[i64]) -> Result<Vec<Hash>, tlog::TlogError> {
        if indexes.is_empty() {
            Ok(vec![])
        } else {
            Err(tlog::TlogError::IndexNotInTree)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::http::Upstream;
    use crate::http::list::{Fallback, ListEntry};
    use crate::sumdb::note::Signer;
    use reqwest::Url;

    /// A lookup carrying an older head than `/latest` (the real proxy caches
    /// lookups) makes one task write a tile's partial while another writes
    /// the full tile, which removes the partials' directory: the partial's
    /// write used to fail the version with "cannot open directory …/NNN.p".
    #[test]
    fn a_partial_tile_written_while_its_full_tile_lands_does_not_fail() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(crate::store::LocalStore::open(&dir.path().join("out")).unwrap());
        let full = vec![7u8; 256 * 32];
        for n in 0..400 {
            let barrier = std::sync::Barrier::new(2);
            let (partial, whole) = (
                Tile {
                    h: 8,
                    l: 0,
                    n,
                    w: 5,
                },
                Tile {
                    h: 8,
                    l: 0,
                    n,
                    w: 256,
                },
            );
            std::thread::scope(|s| {
                let a = s.spawn(|| {
                    barrier.wait();
                    mirror_tile(&*store, "s", partial, &full[..5 * 32])
                });
                let b = s.spawn(|| {
                    barrier.wait();
                    mirror_tile(&*store, "s", whole, &full)
                });
                for r in [a.join().unwrap(), b.join().unwrap()] {
                    if let Err(e) = r {
                        panic!("tile {n}: {e}");
                    }
                }
            });
            // The full tile wins: no partial is left beside it.
            assert!(
                store
                    .stat(&format!("sumdb/s/{}", whole.path()))
                    .unwrap()
                    .is_some()
            );
            assert!(
                store
                    .stat(&format!("sumdb/s/{}", partial.path()))
                    .unwrap()
                    .is_none(),
                "tile {n}: a partial beside its full tile"
            );
        }
    }

    fn signed(signer: &Signer, client: &LogClient, n: i64, fill: u8) -> SignedHead {
        let text = tlog::format_tree(Tree {
            n,
            hash: Hash([fill; 32]),
        });
        client
            .parse_head(signer.sign(&text).as_bytes())
            .expect("own note verifies")
    }

    /// Runs `accept` on its own thread: a deadlock there must fail this test,
    /// not hang it.
    fn accept_within(client: Arc<LogClient>, head: SignedHead) -> Result<(), SumdbError> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            tx.send(rt.block_on(client.accept(&head))).ok();
        });
        rx.recv_timeout(Duration::from_secs(20))
            .expect("accept deadlocked on a head of a size it already knows")
    }

    #[test]
    fn forked_head_of_same_size_does_not_deadlock() {
        let signer = Signer::from_seed("sum.unit.test", [7; 32]);
        let verifier = Verifier::parse(&signer.verifier_key()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let tree: Arc<dyn Store> = Arc::new(crate::store::LocalStore::open(dir.path()).unwrap());
        let upstream = Arc::new(
            Upstream::new(
                Duration::from_secs(5),
                1,
                crate::http::TransferPolicy::default(),
            )
            .unwrap(),
        );
        // A loopback port of our own that nothing answers on: the same-size
        // check must decide without any request.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let list = Arc::new(UpstreamList::new(
            upstream,
            &[ListEntry {
                url: base,
                fallback: Fallback::NotFound,
            }],
        ));
        let client = LogClient::new(verifier, list, tree);
        let trusted = signed(&signer, &client, 5000, 1);
        let client = Arc::new(client.trust(trusted.clone()));

        let fork = signed(&signer, &client, 5000, 2);
        let err = accept_within(client.clone(), fork).expect_err("a fork is refused");
        assert!(err.is_fatal(), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("forked"), "{msg}");
        assert!(msg.contains(&trusted.describe()), "{msg}");
        // The same head again is fine, and nothing was changed by the refusal.
        accept_within(client.clone(), trusted.clone()).expect("the trusted head itself");
        assert_eq!(client.trusted(), Some(trusted));
        assert!(client.take_unsaved().is_empty());
    }
}
