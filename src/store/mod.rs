//! Where the tree lives: the [`Store`] seam.
//!
//! Every file a client can request — module files, `@v/list`, `@latest`, the
//! checksum database's lookups, tiles and `latest` — is written, read, listed
//! and deleted through one `Arc<dyn Store>`, never through paths and
//! `std::fs`. [`layout`] names the keys (tree-relative, `/`-separated,
//! `!`-escaped paths); a store maps them onto its medium. Today that is a
//! local directory ([`LocalStore`]); an object-store bucket is meant to be the
//! second implementation, and the trait is shaped after the `object_store`
//! crate's operations so that it can be a thin layer over them (write-once
//! put ≈ `PutMode::Create` or a conditional put, list ≈ a sorted prefix
//! listing, stat ≈ `head`).
//!
//! # What a store guarantees
//!
//! * **Atomic visibility.** A reader sees a key absent, or with its old
//!   content, or with its complete new content — never a partial file. A key
//!   is never served from the staging area.
//! * **Write-once for immutable files.** [`Store::put_immutable`] keeps an
//!   object already in place with the same bytes, replaces a readable one
//!   with other bytes (that is damage being repaired), and refuses — without
//!   touching it — one it cannot read: unknown bytes are never assumed wrong.
//! * **Containment.** Keys are validated; nothing outside the store's root is
//!   written, read or deleted. A local store never works through a symbolic
//!   link: a link on the way to a key is refused, a link at a key is itself
//!   removed by a delete and is never replaced by a write.
//! * **Durability at barriers.** What was written before [`Store::barrier`]
//!   returns survives a crash.
//!
//! The *ordering* invariants (immutable files before the indexes that list
//! them, the state database between the two barriers of a batch, deletions
//! after the indexes stop listing) are the callers' (`publish`, `prune`):
//! a store only makes each single operation atomic.
//!
//! # Plugging in a store
//!
//! Implement [`Store`], give it a [`Staging`] area on local disk for the
//! fetcher's temporary files, and build it in `Settings::open_store`. All
//! methods are synchronous: callers run tree work on the blocking pool, and a
//! store backed by an async client blocks on its own runtime from there.

pub mod layout;
pub mod local;
pub mod s3;
pub mod staging;

use std::io;
use std::path::{Path, PathBuf};

pub use local::{INTERNAL_DIR, LocalStore, sha256_of};
pub use staging::Staging;

/// Size and version of a stored object, recorded at publish time and
/// compared by `verify --quick`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    /// Modification time in nanoseconds since the epoch (for a bucket: the
    /// object's last-modified time).
    pub modified_ns: i64,
    /// An opaque version tag where the medium has one (an S3 ETag); `None`
    /// on a local directory.
    pub etag: Option<String>,
}

/// What a listed key is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    File,
    /// A directory (local stores only; a bucket has none).
    Dir,
    /// A symbolic link: listed, never followed.
    Link,
    /// Anything else (a FIFO, a socket, a device).
    Other,
}

/// One entry of a [`Store::list`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Tree-relative key.
    pub key: String,
    pub kind: EntryKind,
}

/// A sorted listing (see [`Store::list`]).
impl Entry {
    /// Where the entry sorts in a listing: its key, with a `/` appended for
    /// a directory (so it comes right before its content).
    pub fn position(&self) -> String {
        match self.kind {
            EntryKind::Dir => format!("{}/", self.key),
            _ => self.key.clone(),
        }
    }
}

pub type Listing<'a> = Box<dyn Iterator<Item = Result<Entry, StoreError>> + 'a>;

/// Why a store operation was refused or failed. Each variant names the path
/// (or key) it is about.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("refusing unsafe tree path {0:?}")]
    UnsafeKey(String),
    #[error("refusing to {action} `{target}` through symbolic link `{link}`")]
    ThroughLink {
        action: &'static str,
        target: PathBuf,
        link: PathBuf,
    },
    #[error("refusing to replace symbolic link `{0}`")]
    ReplaceLink(PathBuf),
    #[error("`{path}` is a file where a directory is needed (to {action} `{target}`)")]
    NotADirectory {
        action: &'static str,
        path: PathBuf,
        target: PathBuf,
    },
    #[error("`{0}` is a directory where a file belongs")]
    DirectoryForFile(PathBuf),
    #[error("`{0}` is not a regular file")]
    NotAFile(PathBuf),
    #[error("`{path}` is larger than the {limit} bytes expected")]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("`{path}` is already in place but cannot be read ({source}); refusing to replace it")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("refusing to remove `{0}`: nested deeper than any mirror directory")]
    TooDeep(PathBuf),
    #[error("{what} `{path}`: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl StoreError {
    pub(crate) fn io(what: &'static str, path: &Path, e: impl Into<io::Error>) -> StoreError {
        StoreError::Io {
            what,
            path: path.to_path_buf(),
            source: e.into(),
        }
    }
}

/// For callers that keep one error type for file work (the error stays the source).
impl From<StoreError> for io::Error {
    fn from(e: StoreError) -> io::Error {
        let kind = match &e {
            StoreError::Io { source, .. } => source.kind(),
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

/// Where the tree lives. Keys are tree-relative paths built by [`layout`]
/// (or taken from [`Store::list`]); a key that could leave the tree or reach
/// the store's internal files is refused with [`StoreError::UnsafeKey`].
pub trait Store: Send + Sync {
    /// The store for messages: `directory `/srv/mirror``.
    fn describe(&self) -> String;

    /// The local area for temporary files (downloads in progress, staged
    /// lookups): outside any served path, cleaned by [`Store::clean_staging`].
    fn staging(&self) -> &Staging;

    /// A fresh temporary file path in the staging area (not yet created).
    fn temp_path(&self, hint: &str) -> PathBuf {
        self.staging().temp_path(hint)
    }

    /// Removes temporary files a killed run left behind; returns how many.
    /// Call under the lock.
    fn clean_staging(&self) -> Result<u64, StoreError> {
        self.staging().clean()
    }

    /// Puts the staged file at `staged` (whose SHA-256 is `sha256`) at `key`,
    /// write-once: an object already there with the same bytes is kept, a
    /// readable one with other bytes is replaced, an unreadable one is
    /// refused with [`StoreError::Unreadable`] and left as it is. On success
    /// the staged file is gone (moved into the store, or removed).
    fn put_immutable(
        &self,
        staged: &Path,
        key: &str,
        sha256: &[u8; 32],
    ) -> Result<ObjectMeta, StoreError>;

    /// Puts the staged file at `staged` at `key`, atomically replacing what
    /// is there. On success the staged file is gone.
    fn put(&self, staged: &Path, key: &str) -> Result<ObjectMeta, StoreError>;

    /// Writes a small mutable file atomically unless it already holds exactly
    /// `bytes`; returns whether it was written.
    fn write_if_changed(&self, key: &str, bytes: &[u8]) -> Result<bool, StoreError>;

    /// The content of a small file, `None` when nothing is at `key`; more
    /// than `limit` bytes is [`StoreError::TooLarge`], something other than a
    /// regular file [`StoreError::NotAFile`].
    fn read(&self, key: &str, limit: u64) -> Result<Option<Vec<u8>>, StoreError>;

    /// The file at `key` for streaming reads (a zip to re-hash), `None` when
    /// absent. A local store hands out the file itself; a bucket a local copy.
    fn open(&self, key: &str) -> Result<Option<std::fs::File>, StoreError>;

    /// Size and version of the file at `key`, `None` when absent; something
    /// other than a regular file is [`StoreError::NotAFile`].
    fn stat(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError>;

    /// Deletes the file (or link) at `key`; returns whether something was deleted.
    fn delete(&self, key: &str) -> Result<bool, StoreError>;

    /// Deletes `key` and everything under `key/` (a tile's `.p` directory, a
    /// stray directory); returns whether something was deleted.
    fn delete_tree(&self, key: &str) -> Result<bool, StoreError>;

    /// Removes empty directories from `dir` upwards (a no-op for a bucket).
    fn tidy(&self, dir: &str) -> Result<(), StoreError>;

    /// Everything under `prefix` (`""`: the whole tree, the store's internal
    /// files excepted), in byte order of the keys — a bucket's listing order.
    /// A local store also lists directories, each sorting as its key with a
    /// trailing `/`, so it comes right before its content. Links are listed,
    /// never followed. Streams: memory does not grow with the tree.
    fn list(&self, prefix: &str) -> Listing<'_>;

    /// [`Store::stat`] of several keys in one directory (a version's files):
    /// the default stats each; a local store walks to the directory once.
    fn stat_many(&self, keys: &[&str]) -> Vec<Result<Option<ObjectMeta>, StoreError>> {
        keys.iter().map(|k| self.stat(k)).collect()
    }

    /// [`Store::list`] from just after `after`, a position in that order
    /// ([`Entry::position`]): what a scan spread over runs resumes from.
    /// The default skips what comes before; a store that can seek does.
    fn list_after(&self, prefix: &str, after: &str) -> Listing<'_> {
        let after = after.to_string();
        Box::new(self.list(prefix).filter(move |e| match e {
            Ok(e) => e.position() > after,
            Err(_) => true,
        }))
    }

    /// Makes everything written so far durable.
    fn barrier(&self) -> Result<(), StoreError>;

    /// How many puts the publisher may run at once: 1 for a local directory
    /// (a rename is cheap, and the order of durability points stays fixed),
    /// more for a store where each put is a request.
    fn parallelism(&self) -> usize {
        1
    }
}
