//! The staging area: temporary files (downloads in progress, staged lookups,
//! small files about to be renamed into place) in a local directory that no
//! client ever requests.
//!
//! For a local store it is `<root>/.gomirror/tmp`, on the tree's own file
//! system so that a staged file is renamed into place, never copied. Files
//! are spread over [`SHARDS`] directories: creating a file locks its
//! directory, and one directory for all workers serialises them. Whatever a
//! killed run leaves here is removed by [`Staging::clean`] at the next sync.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::StoreError;

/// Temporary files are spread over this many directories.
pub const SHARDS: u64 = 16;

/// A staging directory whose shard directories exist.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    counter: AtomicU64,
}

impl Staging {
    /// The staging area at `dir`, whose shards `0`…`SHARDS-1` the caller has
    /// created (a local store creates them without following links).
    pub fn at(dir: PathBuf) -> Staging {
        Staging {
            dir,
            counter: AtomicU64::new(0),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn next_shard(&self) -> (u64, PathBuf) {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        (n, self.dir.join((n % SHARDS).to_string()))
    }

    /// A fresh temporary file path (not yet created). Names are unique in
    /// this process (pid and counter) and carry `hint` for whoever finds one.
    pub fn temp_path(&self, hint: &str) -> PathBuf {
        let (n, shard) = self.next_shard();
        shard.join(format!("{}-{n}-{}", std::process::id(), sanitize(hint)))
    }

    /// A new, created temporary file with a random name, removed when dropped
    /// unless its path is kept. Its mode is 0666 less the umask, as for any
    /// file created (`tempfile`'s private 0600 would make `@v/list`, lookups
    /// and tiles unreadable to a web server running as another user).
    pub fn new_file(&self, hint: &str) -> Result<tempfile::NamedTempFile, StoreError> {
        use std::os::unix::fs::PermissionsExt;
        let (_, shard) = self.next_shard();
        tempfile::Builder::new()
            .permissions(std::fs::Permissions::from_mode(0o666))
            .prefix(&format!("{}-", sanitize(hint)))
            .tempfile_in(&shard)
            .map_err(|e| StoreError::io("cannot create a temporary file in", &shard, e))
    }

    /// Removes temporary files a killed run left behind; returns how many.
    /// Never follows a link. Call under the lock.
    pub fn clean(&self) -> Result<u64, StoreError> {
        crate::crashpoint::reached("remove temporary files");
        let mut removed = 0;
        for entry in walkdir::WalkDir::new(&self.dir)
            .follow_links(false)
            .min_depth(1)
            .contents_first(true)
        {
            let entry = entry.map_err(|e| {
                let path = e.path().unwrap_or(&self.dir).to_path_buf();
                StoreError::io("cannot list", &path, walk_error(e))
            })?;
            let path = entry.path();
            if entry.depth() == 1 && entry.file_type().is_dir() {
                continue; // a shard directory
            }
            if entry.file_type().is_dir() {
                std::fs::remove_dir(path).map_err(|e| StoreError::io("cannot remove", path, e))?;
            } else {
                std::fs::remove_file(path).map_err(|e| StoreError::io("cannot remove", path, e))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// The I/O error inside a walk error (a loop is impossible without following links).
pub(crate) fn walk_error(e: walkdir::Error) -> std::io::Error {
    let text = e.to_string();
    e.into_io_error()
        .unwrap_or_else(|| std::io::Error::other(text))
}

/// A hint made safe as part of a file name: ASCII letters, digits and dots.
fn sanitize(hint: &str) -> String {
    hint.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect()
}
