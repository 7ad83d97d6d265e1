//! [`LocalStore`]: the tree as a local directory, the first [`Store`].
//!
//! Layout (all module paths and versions `!`-escaped as Go does):
//!
//! ```text
//! <root>/<module>/@v/list
//! <root>/<module>/@v/<version>.info | .mod | .zip
//! <root>/<module>/@latest
//! <root>/sumdb/<name>/supported | latest
//! <root>/sumdb/<name>/lookup/<module>@<version>
//! <root>/sumdb/<name>/tile/8/<L>/<N>[.p/<W>]
//! <root>/.gomirror/tmp/…      the staging area (never served)
//! ```
//!
//! Files are written to a temporary file in the staging area (same file
//! system) and renamed into place, so a client never sees a partial file;
//! durability comes from [`Store::barrier`] (`syncfs`), one per batch rather
//! than one `fsync` per file. Every key is checked to be made of plain names
//! that cannot leave the root or reach `.gomirror`. Every directory on the way
//! to a key is opened one component at a time with `O_NOFOLLOW`, relative to
//! the one above (`openat`), and the final operation happens relative to the
//! last one: a symbolic link anywhere on the way is refused, never followed,
//! and what was checked cannot be swapped afterwards.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, CWD, Dir, FileType, Mode, OFlags};
use rustix::io::Errno;
use sha2::{Digest, Sha256};

use super::staging::{SHARDS, walk_error};
use super::{Entry, EntryKind, Listing, ObjectMeta, Staging, Store, StoreError};

/// The directory at the root holding gomirror's own files; never served.
pub const INTERNAL_DIR: &str = ".gomirror";

/// A stray directory nested deeper than this is refused rather than removed:
/// each level holds a file descriptor, and the layout itself is never this deep.
const MAX_REMOVE_DEPTH: usize = 128;

/// The output tree in a local directory.
pub struct LocalStore {
    root: PathBuf,
    staging: Staging,
}

impl LocalStore {
    /// The sorted walk behind [`Store::list`] and [`Store::list_after`].
    fn list_from(&self, prefix: &str, after: Option<String>) -> Listing<'_> {
        let prefix = prefix.trim_end_matches('/');
        let start = if prefix.is_empty() {
            self.root.clone()
        } else {
            if let Err(e) = check_rel(prefix) {
                return Box::new(std::iter::once(Err(e)));
            }
            let path = self.root.join(prefix);
            match self.open_dir(prefix, false, "list", &path) {
                Ok(Some(_)) => path,
                Ok(None) => return Box::new(std::iter::empty()),
                Err(e) => return Box::new(std::iter::once(Err(e))),
            }
        };
        let (root, at_root) = (self.root.clone(), prefix.is_empty());
        let position = {
            let root = root.clone();
            move |e: &walkdir::DirEntry| -> Vec<u8> {
                let mut p = e
                    .path()
                    .strip_prefix(&root)
                    .unwrap_or(e.path())
                    .as_os_str()
                    .as_bytes()
                    .to_vec();
                if e.file_type().is_dir() {
                    p.push(b'/');
                }
                p
            }
        };
        let after = after.map(String::into_bytes);
        let (pos, aft) = (position.clone(), after.clone());
        let walk = walkdir::WalkDir::new(&start)
            .follow_links(false)
            .min_depth(1)
            // Byte order of the keys: a directory sorts as `name/`, so its
            // content follows it directly, as in a bucket's listing.
            .sort_by(|a, b| sort_name(a).cmp(&sort_name(b)))
            .into_iter()
            // The staging area is the store's, not the tree's.
            .filter_entry(move |e| {
                if at_root && e.depth() == 1 && e.file_name() == INTERNAL_DIR {
                    return false;
                }
                // Resuming: skip what sorts before `after`, descending only
                // into the directories on its path.
                match &aft {
                    None => true,
                    Some(after) => {
                        let p = pos(e);
                        p > *after || (e.file_type().is_dir() && after.starts_with(&p))
                    }
                }
            })
            .filter(move |e| match (&after, e) {
                (Some(after), Ok(e)) => position(e) > *after,
                _ => true,
            });
        Box::new(walk.map(move |entry| {
            let entry = entry.map_err(|e| {
                let path = e.path().unwrap_or(&root).to_path_buf();
                StoreError::io("cannot list", &path, walk_error(e))
            })?;
            let key = match entry.path().strip_prefix(&root) {
                Ok(r) => r.to_string_lossy().into_owned(),
                Err(_) => entry.path().to_string_lossy().into_owned(),
            };
            let ft = entry.file_type();
            let kind = if ft.is_symlink() {
                EntryKind::Link
            } else if ft.is_dir() {
                EntryKind::Dir
            } else if ft.is_file() {
                EntryKind::File
            } else {
                EntryKind::Other
            };
            Ok(Entry { key, kind })
        }))
    }
    /// Opens the tree at `root`, creating it and its staging area.
    pub fn open(root: &Path) -> Result<LocalStore, StoreError> {
        std::fs::create_dir_all(root)
            .map_err(|e| StoreError::io("cannot create output directory", root, e))?;
        let meta = std::fs::symlink_metadata(root)
            .map_err(|e| StoreError::io("cannot read output directory", root, e))?;
        if !meta.is_dir() && !meta.file_type().is_symlink() {
            return Err(StoreError::io(
                "output is not a directory:",
                root,
                io::Error::from(io::ErrorKind::NotADirectory),
            ));
        }
        let store = LocalStore {
            root: root.to_path_buf(),
            staging: Staging::at(root.join(INTERNAL_DIR).join("tmp")),
        };
        // Created link-free like any tree directory: cleaning the staging
        // area deletes under it, so it must not lead outside the root.
        for shard in 0..SHARDS {
            let dir = format!("{INTERNAL_DIR}/tmp/{shard}");
            store.open_dir(&dir, true, "write", &root.join(&dir))?;
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Renames the temporary file `tmp` to `rel`, creating directories. A
    /// link or a directory at `rel` is refused.
    pub fn install(&self, tmp: &Path, rel: &str) -> Result<ObjectMeta, StoreError> {
        crate::crashpoint::reached("rename into the tree");
        check_rel(rel)?;
        let dest = self.root.join(rel);
        let (dir, name) = split_parent(rel);
        let dfd = self.dir_for_write(dir, &dest)?;
        match rfs::statat(&dfd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => match FileType::from_raw_mode(st.st_mode) {
                // rename() would replace the link itself, not its target; it
                // is still refused loudly: someone put it there.
                FileType::Symlink => return Err(StoreError::ReplaceLink(dest)),
                FileType::Directory => return Err(StoreError::DirectoryForFile(dest)),
                _ => {}
            },
            Err(Errno::NOENT) => {}
            Err(e) => return Err(StoreError::io("cannot read", &dest, e)),
        }
        rename_into(&dfd, tmp, name, &dest)
    }

    /// Writes `bytes` to `rel` atomically (temporary file, rename).
    pub fn write_file(&self, rel: &str, bytes: &[u8]) -> Result<ObjectMeta, StoreError> {
        check_rel(rel)?;
        let mut tmp = self.staging.new_file(split_parent(rel).1)?;
        tmp.write_all(bytes)
            .map_err(|e| StoreError::io("cannot write", tmp.path(), e))?;
        // Dropped on failure: the temporary file goes with it.
        let tmp = tmp.into_temp_path();
        let meta = self.install(&tmp, rel)?;
        // Renamed away: nothing is left to remove.
        disarm(tmp);
        Ok(meta)
    }

    /// [`Store::put_immutable`] with the hash of the file in place computed
    /// by `hash_in_place` (a seam for tests: as root, no file is unreadable).
    fn put_immutable_with(
        &self,
        staged: &Path,
        rel: &str,
        sha256: &[u8; 32],
        hash_in_place: impl Fn(std::fs::File) -> io::Result<[u8; 32]>,
    ) -> Result<ObjectMeta, StoreError> {
        check_rel(rel)?;
        let dest = self.root.join(rel);
        let (dir, name) = split_parent(rel);
        let dfd = self.dir_for_write(dir, &dest)?;
        match rfs::statat(&dfd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile => {
                // A file that cannot be read is not known to differ: refuse
                // to replace it rather than rename over what may be good bytes.
                let unreadable = |source| StoreError::Unreadable {
                    path: dest.clone(),
                    source,
                };
                let file = open_no_follow(&dfd, name)
                    .map_err(|e| unreadable(e.into()))?
                    .map(std::fs::File::from)
                    .ok_or_else(|| unreadable(io::ErrorKind::NotFound.into()))?;
                if &hash_in_place(file).map_err(unreadable)? == sha256 {
                    // Best effort: a leftover staged file goes with the next clean.
                    let _ = std::fs::remove_file(staged);
                    return meta_at(&dfd, name, &dest);
                }
            }
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
                // Never ours: a link where a module file belongs is damage to repair.
                crate::crashpoint::reached("remove from the tree");
                match rfs::unlinkat(&dfd, name, AtFlags::empty()) {
                    Ok(()) | Err(Errno::NOENT) => {}
                    Err(e) => return Err(StoreError::io("cannot remove", &dest, e)),
                }
            }
            Ok(_) | Err(Errno::NOENT) => {}
            Err(e) => return Err(StoreError::io("cannot read", &dest, e)),
        }
        self.install(staged, rel)
    }

    /// The regular file at `rel`, opened without following any link; `None`
    /// when missing, [`StoreError::NotAFile`] for a link or anything else.
    fn open_regular(
        &self,
        rel: &str,
        action: &'static str,
    ) -> Result<Option<std::fs::File>, StoreError> {
        check_rel(rel)?;
        let path = self.root.join(rel);
        let (dir, name) = split_parent(rel);
        let Some(dfd) = self.open_dir(dir, false, action, &path)? else {
            return Ok(None);
        };
        let file = match open_no_follow(&dfd, name) {
            Ok(Some(fd)) => std::fs::File::from(fd),
            Ok(None) => return Ok(None),
            Err(Errno::LOOP) => return Err(StoreError::NotAFile(path)),
            Err(e) => return Err(StoreError::io("cannot open", &path, e)),
        };
        let meta = file
            .metadata()
            .map_err(|e| StoreError::io("cannot stat", &path, e))?;
        if !meta.is_file() {
            return Err(StoreError::NotAFile(path));
        }
        Ok(Some(file))
    }

    /// Reads at most `limit` bytes of the regular file at `rel`.
    fn read_limited(
        &self,
        rel: &str,
        limit: u64,
        action: &'static str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(file) = self.open_regular(rel, action)? else {
            return Ok(None);
        };
        let path = || self.root.join(rel);
        let mut bytes = Vec::new();
        file.take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| StoreError::io("cannot read", &path(), e))?;
        if bytes.len() as u64 > limit {
            return Err(StoreError::TooLarge {
                path: path(),
                limit,
            });
        }
        Ok(Some(bytes))
    }

    /// The directory of a key about to be written, created link-free.
    fn dir_for_write(&self, dir: &str, dest: &Path) -> Result<OwnedFd, StoreError> {
        self.open_dir(dir, true, "write", dest)?
            .ok_or_else(|| StoreError::io("cannot create directory for", dest, Errno::NOENT))
    }

    /// Opens the directory at tree-relative `dir` (`""` is the root) one
    /// component at a time with `O_NOFOLLOW`, so a symbolic link anywhere on
    /// the way is refused, never followed, and what is opened cannot change
    /// under us afterwards. Missing directories are created when `create`,
    /// else the answer is `None`. `action` and `target` name what the caller
    /// is doing, for the error. The root itself may be a link: the operator
    /// chose it.
    fn open_dir(
        &self,
        dir: &str,
        create: bool,
        action: &'static str,
        target: &Path,
    ) -> Result<Option<OwnedFd>, StoreError> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let mut fd = rfs::open(&self.root, flags, Mode::empty())
            .map_err(|e| StoreError::io("cannot open", &self.root, e))?;
        let mut cur = self.root.clone();
        for c in dir.split('/').filter(|c| !c.is_empty()) {
            cur.push(c);
            let refused = |parent: &OwnedFd, e: Errno| -> StoreError {
                refusal(parent, c, &cur, e, action, target)
            };
            fd = match open_child_dir(&fd, c) {
                Ok(next) => next,
                Err(Errno::NOENT) if create => {
                    match rfs::mkdirat(&fd, c, Mode::from_raw_mode(0o777)) {
                        // Another worker created it in between: fine if it is a directory.
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(StoreError::io("cannot create directory", &cur, e)),
                    }
                    open_child_dir(&fd, c).map_err(|e| refused(&fd, e))?
                }
                Err(Errno::NOENT) => return Ok(None),
                Err(e) => return Err(refused(&fd, e)),
            };
        }
        Ok(Some(fd))
    }
}

impl Store for LocalStore {
    fn describe(&self) -> String {
        format!("directory `{}`", self.root.display())
    }

    fn staging(&self) -> &Staging {
        &self.staging
    }

    fn put_immutable(
        &self,
        staged: &Path,
        key: &str,
        sha256: &[u8; 32],
    ) -> Result<ObjectMeta, StoreError> {
        self.put_immutable_with(staged, key, sha256, |mut f| sha256_of(&mut f))
    }

    fn put(&self, staged: &Path, key: &str) -> Result<ObjectMeta, StoreError> {
        self.install(staged, key)
    }

    fn write_if_changed(&self, key: &str, bytes: &[u8]) -> Result<bool, StoreError> {
        // One byte more than the new content is enough to know it differs.
        match self.read_limited(key, bytes.len() as u64, "write") {
            Ok(Some(current)) if current == bytes => return Ok(false),
            // A link or a directory there is refused by the write itself.
            Ok(_) | Err(StoreError::TooLarge { .. } | StoreError::NotAFile(_)) => {}
            Err(e) => return Err(e),
        }
        self.write_file(key, bytes)?;
        Ok(true)
    }

    fn read(&self, key: &str, limit: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.read_limited(key, limit, "read")
    }

    fn open(&self, key: &str) -> Result<Option<std::fs::File>, StoreError> {
        self.open_regular(key, "read")
    }

    fn stat(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        check_rel(key)?;
        let path = self.root.join(key);
        let (dir, name) = split_parent(key);
        let Some(dfd) = self.open_dir(dir, false, "read", &path)? else {
            return Ok(None);
        };
        match meta_at(&dfd, name, &path) {
            Err(StoreError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Ok(None)
            }
            other => other.map(Some),
        }
    }

    /// Never follows a link: a link at `key` is itself removed, and a link on
    /// the way to `key` is refused.
    fn delete(&self, key: &str) -> Result<bool, StoreError> {
        crate::crashpoint::reached("remove from the tree");
        check_rel(key)?;
        let dest = self.root.join(key);
        let (dir, name) = split_parent(key);
        let Some(dfd) = self.open_dir(dir, false, "delete", &dest)? else {
            return Ok(false);
        };
        match rfs::statat(&dfd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                Err(StoreError::DirectoryForFile(dest))
            }
            Ok(_) => match rfs::unlinkat(&dfd, name, AtFlags::empty()) {
                Ok(()) => Ok(true),
                Err(Errno::NOENT) => Ok(false),
                Err(e) => Err(StoreError::io("cannot remove", &dest, e)),
            },
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(StoreError::io("cannot read", &dest, e)),
        }
    }

    /// Links inside are removed, never followed, and a link on the way to
    /// `key` is refused. A link at `key` itself is removed.
    fn delete_tree(&self, key: &str) -> Result<bool, StoreError> {
        crate::crashpoint::reached("remove a directory tree");
        check_rel(key)?;
        let dest = self.root.join(key);
        let (dir, name) = split_parent(key);
        let Some(dfd) = self.open_dir(dir, false, "delete", &dest)? else {
            return Ok(false);
        };
        remove_entry_at(&dfd, OsStr::new(name), &dest, 0)
    }

    /// Stops at the root or at the first directory that is not empty. A link
    /// in place of one of them is left alone (it is a stray, removed as
    /// such); a link on the way to them is refused.
    fn tidy(&self, dir: &str) -> Result<(), StoreError> {
        crate::crashpoint::reached("remove empty directories");
        let mut rel = dir.trim_end_matches('/');
        while !rel.is_empty() {
            check_rel(rel)?;
            let path = self.root.join(rel);
            let (parent, name) = split_parent(rel);
            if let Some(dfd) = self.open_dir(parent, false, "delete", &path)? {
                match rfs::unlinkat(&dfd, name, AtFlags::REMOVEDIR) {
                    Ok(()) | Err(Errno::NOENT) => {}
                    Err(Errno::NOTEMPTY | Errno::EXIST | Errno::NOTDIR) => return Ok(()),
                    Err(e) => return Err(StoreError::io("cannot remove", &path, e)),
                }
            }
            rel = parent;
        }
        Ok(())
    }

    fn list(&self, prefix: &str) -> Listing<'_> {
        self.list_from(prefix, None)
    }

    /// Keys in the same directory share one link-free walk to it: verifying
    /// a version's files costs one walk, not one per file.
    fn stat_many(&self, keys: &[&str]) -> Vec<Result<Option<ObjectMeta>, StoreError>> {
        let mut out = Vec::with_capacity(keys.len());
        let mut open: Option<(&str, Option<OwnedFd>)> = None;
        for key in keys {
            if let Err(e) = check_rel(key) {
                out.push(Err(e));
                continue;
            }
            let path = self.root.join(key);
            let (dir, name) = split_parent(key);
            if open.as_ref().is_none_or(|(d, _)| *d != dir) {
                match self.open_dir(dir, false, "read", &path) {
                    Ok(fd) => open = Some((dir, fd)),
                    Err(e) => {
                        open = None;
                        out.push(Err(e));
                        continue;
                    }
                }
            }
            let Some((_, Some(dfd))) = &open else {
                out.push(Ok(None));
                continue;
            };
            out.push(match meta_at(dfd, name, &path) {
                Err(StoreError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                    Ok(None)
                }
                other => other.map(Some),
            });
        }
        out
    }

    /// Seeks: a directory whose whole content sorts before `after` is not
    /// read at all, so a resumed scan costs what it lists, not what it skips.
    fn list_after(&self, prefix: &str, after: &str) -> Listing<'_> {
        self.list_from(prefix, Some(after.to_string()))
    }

    /// `syncfs`: one barrier for a whole batch instead of one `fsync` per
    /// file. The sync pipeline calls it before renaming a batch into place,
    /// before recording it in the state database, and before marking indexes
    /// as written.
    fn barrier(&self) -> Result<(), StoreError> {
        crate::crashpoint::reached("syncfs barrier");
        let dir = std::fs::File::open(&self.root)
            .map_err(|e| StoreError::io("cannot open", &self.root, e))?;
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: syncfs takes a file descriptor we own for the call.
            if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
                return Err(StoreError::io(
                    "cannot sync",
                    &self.root,
                    io::Error::last_os_error(),
                ));
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            drop(dir);
            // SAFETY: sync() has no preconditions.
            unsafe { libc::sync() };
        }
        Ok(())
    }
}

/// A listed name as it sorts among its siblings: a directory as `name/`.
fn sort_name(e: &walkdir::DirEntry) -> Vec<u8> {
    let mut name = e.file_name().as_bytes().to_vec();
    if e.file_type().is_dir() {
        name.push(b'/');
    }
    name
}

/// Stops a temporary path from being removed on drop (it was renamed away).
fn disarm(tmp: tempfile::TempPath) {
    // `keep` only gives up the removal; there is nothing that can fail.
    let _kept = tmp.keep();
}

/// The SHA-256 of everything `reader` yields, streaming.
pub fn sha256_of(reader: &mut impl Read) -> io::Result<[u8; 32]> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

/// `name` in `dir` opened read-only without following a link and without
/// blocking on a FIFO; `None` when missing.
fn open_no_follow(dir: &OwnedFd, name: &str) -> Result<Option<OwnedFd>, Errno> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    match rfs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Renames `tmp` to `name` in `dfd`.
fn rename_into(
    dfd: &OwnedFd,
    tmp: &Path,
    name: &str,
    dest: &Path,
) -> Result<ObjectMeta, StoreError> {
    rfs::renameat(CWD, tmp, dfd, name)
        .map_err(|e| StoreError::io("cannot rename into", dest, e))?;
    meta_at(dfd, name, dest)
}

/// Size and modification time of the regular file `name` in `dfd`.
fn meta_at(dfd: &OwnedFd, name: &str, path: &Path) -> Result<ObjectMeta, StoreError> {
    let st = rfs::statat(dfd, name, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| StoreError::io("cannot stat", path, e))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(StoreError::NotAFile(path.to_path_buf()));
    }
    #[allow(clippy::unnecessary_cast)] // the field types differ between targets
    let modified_ns = (st.st_mtime as i64)
        .saturating_mul(1_000_000_000)
        .saturating_add(st.st_mtime_nsec as i64);
    Ok(ObjectMeta {
        size: st.st_size as u64,
        modified_ns,
        etag: None,
    })
}

fn open_child_dir(parent: &OwnedFd, name: &str) -> Result<OwnedFd, Errno> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    rfs::openat(parent, name, flags, Mode::empty())
}

/// Turns a failure to open `name` as a directory into the reason: a link,
/// something else where a directory is needed, or an I/O error.
fn refusal(
    parent: &OwnedFd,
    name: &str,
    path: &Path,
    e: Errno,
    action: &'static str,
    target: &Path,
) -> StoreError {
    if e != Errno::LOOP && e != Errno::NOTDIR {
        return StoreError::io("cannot open directory", path, e);
    }
    match rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
            StoreError::ThroughLink {
                action,
                target: target.to_path_buf(),
                link: path.to_path_buf(),
            }
        }
        Ok(_) => StoreError::NotADirectory {
            action,
            path: path.to_path_buf(),
            target: target.to_path_buf(),
        },
        Err(e) => StoreError::io("cannot read", path, e),
    }
}

/// Removes `name` in `parent` and, if it is a real directory, everything in
/// it. Links are removed themselves, never followed: every level is opened
/// with `O_NOFOLLOW` relative to the one above.
fn remove_entry_at(
    parent: &impl AsFd,
    name: &OsStr,
    path: &Path,
    depth: usize,
) -> Result<bool, StoreError> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rfs::openat(parent, name, flags, Mode::empty()) {
        Ok(fd) => {
            if depth >= MAX_REMOVE_DEPTH {
                return Err(StoreError::TooDeep(path.to_path_buf()));
            }
            let mut entries =
                Dir::read_from(&fd).map_err(|e| StoreError::io("cannot list", path, e))?;
            while let Some(entry) = entries.read() {
                let entry = entry.map_err(|e| StoreError::io("cannot list", path, e))?;
                let child = entry.file_name().to_bytes();
                if child == b"." || child == b".." {
                    continue;
                }
                let child = OsStr::from_bytes(child);
                remove_entry_at(&fd, child, &path.join(child), depth + 1)?;
            }
            match rfs::unlinkat(parent, name, AtFlags::REMOVEDIR) {
                Ok(()) => Ok(true),
                Err(Errno::NOENT) => Ok(false),
                Err(e) => Err(StoreError::io("cannot remove", path, e)),
            }
        }
        Err(Errno::NOENT) => Ok(false),
        // A file or a link: removed as it is.
        Err(Errno::LOOP | Errno::NOTDIR) => match rfs::unlinkat(parent, name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(StoreError::io("cannot remove", path, e)),
        },
        Err(e) => Err(StoreError::io("cannot open directory", path, e)),
    }
}

/// `a/b/c` → (`a/b`, `c`); `c` → (``, `c`).
fn split_parent(rel: &str) -> (&str, &str) {
    rel.rsplit_once('/').unwrap_or(("", rel))
}

pub(crate) fn check_rel(rel: &str) -> Result<(), StoreError> {
    if crate::relpath::is_safe(rel) {
        Ok(())
    } else {
        Err(StoreError::UnsafeKey(rel.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_paths_are_refused() {
        for bad in [
            "",
            "../x",
            "a/../../x",
            "/etc/passwd",
            "./a",
            ".gomirror/tmp/x",
            "a/.hidden",
            "a\\b",
            "a//b/../c",
        ] {
            assert!(check_rel(bad).is_err(), "{bad:?} accepted");
        }
        for good in [
            "golang.org/x/mod/@v/list",
            "github.com/!azure/x/@v/v1.0.0+incompatible.zip",
            "sumdb/sum.golang.org/tile/8/0/x001/234.p/5",
        ] {
            check_rel(good).unwrap();
        }
    }

    #[test]
    fn atomic_write_and_symlink_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let tree = LocalStore::open(&dir.path().join("out")).unwrap();
        tree.write_file("a.example/m/@v/list", b"v1.0.0\n").unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("out/a.example/m/@v/list")).unwrap(),
            b"v1.0.0\n"
        );
        assert!(
            !tree
                .write_if_changed("a.example/m/@v/list", b"v1.0.0\n")
                .unwrap()
        );
        assert!(
            tree.write_if_changed("a.example/m/@v/list", b"v1.0.0\nv1.1.0\n")
                .unwrap()
        );
        // No temporary file is left behind.
        assert_eq!(tree.clean_staging().unwrap(), 0);

        // A symlink in place of a module directory pointing outside the tree.
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, dir.path().join("out/evil.example")).unwrap();
        let err = tree.write_file("evil.example/m/@v/list", b"x").unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }

    #[test]
    fn remove_never_follows_links() {
        let dir = tempfile::tempdir().unwrap();
        let tree = LocalStore::open(&dir.path().join("out")).unwrap();
        let target = dir.path().join("precious");
        std::fs::write(&target, b"keep").unwrap();
        std::fs::create_dir_all(dir.path().join("out/a.example/m/@v")).unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("out/a.example/m/@v/v1.0.0.zip"))
            .unwrap();
        assert!(tree.delete("a.example/m/@v/v1.0.0.zip").unwrap());
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        tree.tidy("a.example/m/@v").unwrap();
        assert!(!dir.path().join("out/a.example").exists());
        assert!(dir.path().join("out").exists());
    }

    /// A tree with `<out>/linked -> <outside>`, where `<outside>` holds
    /// `m/@v/v1.0.0.zip`, an empty directory `m/empty` and `m/@v/list`.
    fn tree_with_linked_dir() -> (tempfile::TempDir, LocalStore, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let tree = LocalStore::open(&dir.path().join("out")).unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(outside.join("m/@v")).unwrap();
        std::fs::create_dir_all(outside.join("m/empty")).unwrap();
        std::fs::write(outside.join("m/@v/v1.0.0.zip"), b"precious").unwrap();
        std::fs::write(outside.join("m/@v/list"), b"v1.0.0\n").unwrap();
        std::os::unix::fs::symlink(&outside, dir.path().join("out/linked")).unwrap();
        (dir, tree, outside)
    }

    #[track_caller]
    fn assert_names_link(err: StoreError, link: &Path) {
        let msg = err.to_string();
        assert!(
            msg.contains("symbolic link") && msg.contains(&link.display().to_string()),
            "{msg}"
        );
    }

    #[test]
    fn remove_file_refuses_a_symlinked_intermediate_directory() {
        let (dir, tree, outside) = tree_with_linked_dir();
        let link = dir.path().join("out/linked");
        let err = tree.delete("linked/m/@v/v1.0.0.zip").unwrap_err();
        assert_names_link(err, &link);
        assert_eq!(
            std::fs::read(outside.join("m/@v/v1.0.0.zip")).unwrap(),
            b"precious"
        );
        // The link itself is what a prune removes.
        assert!(tree.delete("linked").unwrap());
        assert!(outside.join("m/@v/v1.0.0.zip").exists());
    }

    #[test]
    fn remove_empty_dirs_refuses_a_symlinked_intermediate_directory() {
        let (dir, tree, outside) = tree_with_linked_dir();
        let err = tree.tidy("linked/m/empty").unwrap_err();
        assert_names_link(err, &dir.path().join("out/linked"));
        assert!(outside.join("m/empty").is_dir());
        // A link in place of the directory itself is left for the stray pass.
        tree.tidy("linked").unwrap();
        assert!(std::fs::symlink_metadata(dir.path().join("out/linked")).is_ok());
    }

    #[test]
    fn remove_dir_all_removes_links_inside_and_refuses_links_on_the_way() {
        let (dir, tree, outside) = tree_with_linked_dir();
        let err = tree.delete_tree("linked/m").unwrap_err();
        assert_names_link(err, &dir.path().join("out/linked"));
        std::fs::create_dir_all(dir.path().join("out/stray/deep")).unwrap();
        std::fs::write(dir.path().join("out/stray/deep/f"), b"x").unwrap();
        std::os::unix::fs::symlink(&outside, dir.path().join("out/stray/deep/l")).unwrap();
        assert!(tree.delete_tree("stray").unwrap());
        assert!(!dir.path().join("out/stray").exists());
        assert!(!tree.delete_tree("stray").unwrap());
        assert!(tree.delete_tree("linked").unwrap(), "the link itself goes");
        assert!(outside.join("m/@v/v1.0.0.zip").exists());
        assert!(outside.join("m/empty").is_dir());
    }

    #[test]
    fn writes_refuse_a_symlinked_intermediate_directory() {
        let (dir, tree, outside) = tree_with_linked_dir();
        let link = dir.path().join("out/linked");
        assert_names_link(
            tree.write_file("linked/m/@v/list", b"v2.0.0\n")
                .unwrap_err(),
            &link,
        );
        // Even when the outside file already holds the bytes: no answer
        // about a file outside the tree.
        assert_names_link(
            tree.write_if_changed("linked/m/@v/list", b"v1.0.0\n")
                .unwrap_err(),
            &link,
        );
        assert_names_link(
            tree.write_if_changed("linked/m/@v/v9.mod", b"x")
                .unwrap_err(),
            &link,
        );
        let tmp = tree.temp_path("t");
        std::fs::write(&tmp, b"x").unwrap();
        assert_names_link(tree.install(&tmp, "linked/new/f").unwrap_err(), &link);
        assert_eq!(
            std::fs::read(outside.join("m/@v/list")).unwrap(),
            b"v1.0.0\n"
        );
        assert!(!outside.join("new").exists());
        assert!(!outside.join("m/@v/v9.mod").exists());
    }

    #[test]
    fn stat_many_answers_as_stat_does_key_by_key() {
        let (dir, tree, _outside) = tree_with_linked_dir();
        tree.write_file("a.example/m/@v/v1.0.0.info", b"{}")
            .unwrap();
        tree.write_file("a.example/m/@v/v1.0.0.mod", b"module m\n")
            .unwrap();
        tree.write_file("b.example/m/@v/v2.0.0.mod", b"module m\n")
            .unwrap();
        let keys = [
            "a.example/m/@v/v1.0.0.info",
            "a.example/m/@v/v1.0.0.mod",
            "a.example/m/@v/v1.0.0.zip", // missing, its directory there
            "gone.example/m/@v/v1.0.0.mod", // its directory missing
            "b.example/m/@v/v2.0.0.mod", // another directory
            "linked/m/@v/v1.0.0.zip",    // through a link: refused
            "../escape",                 // not a key
            "a.example/m/@v/v1.0.0.info", // back to the first directory
        ];
        let many = tree.stat_many(&keys);
        assert_eq!(many.len(), keys.len());
        for (key, got) in keys.iter().zip(many) {
            match (tree.stat(key), got) {
                (Ok(a), Ok(b)) => assert_eq!(a.map(|m| m.size), b.map(|m| m.size), "{key}"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{key}"),
                (a, b) => panic!("{key}: stat {a:?}, stat_many {b:?}"),
            }
        }
        let again = tree.stat_many(&keys);
        assert_eq!(again[1].as_ref().unwrap().as_ref().unwrap().size, 9);
        assert!(again[2].as_ref().unwrap().is_none());
        assert!(again[3].as_ref().unwrap().is_none());
        assert_names_link(
            again.into_iter().nth(5).unwrap().unwrap_err(),
            &dir.path().join("out/linked"),
        );
    }

    #[test]
    fn a_file_where_a_directory_belongs_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let tree = LocalStore::open(&dir.path().join("out")).unwrap();
        std::fs::write(dir.path().join("out/a.example"), b"x").unwrap();
        let err = tree.write_file("a.example/m/@v/list", b"x").unwrap_err();
        assert!(err.to_string().contains("out/a.example"), "{err}");
        assert!(!tree.delete("a.example/m/@v/list").is_ok_and(|r| r));
    }

    fn staged(store: &LocalStore, bytes: &[u8]) -> PathBuf {
        let tmp = store.temp_path("staged");
        std::fs::write(&tmp, bytes).unwrap();
        tmp
    }

    fn sha(bytes: &[u8]) -> [u8; 32] {
        Sha256::digest(bytes).into()
    }

    #[test]
    fn put_immutable_keeps_identical_bytes_and_repairs_different_ones() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&dir.path().join("out")).unwrap();
        let rel = "example.com/m/@v/v1.0.0.zip";
        let path = dir.path().join("out").join(rel);
        let tmp = staged(&store, b"zip bytes");
        let first = store.put_immutable(&tmp, rel, &sha(b"zip bytes")).unwrap();
        assert_eq!(first.size, 9);
        assert!(!tmp.exists(), "the staged file moved into place");
        let inode = std::fs::metadata(&path).unwrap().ino();

        // The same bytes again (a run killed after the rename): kept as they are.
        let tmp = staged(&store, b"zip bytes");
        let again = store.put_immutable(&tmp, rel, &sha(b"zip bytes")).unwrap();
        assert_eq!(again, first);
        assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode);
        assert!(!tmp.exists(), "the staged copy is not left behind");

        // Other bytes in place are damage: replaced.
        std::fs::write(&path, b"damaged").unwrap();
        let tmp = staged(&store, b"zip bytes");
        store.put_immutable(&tmp, rel, &sha(b"zip bytes")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"zip bytes");

        // A link in place is removed, its target left alone.
        let target = dir.path().join("precious");
        std::fs::write(&target, b"keep").unwrap();
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let tmp = staged(&store, b"zip bytes");
        store.put_immutable(&tmp, rel, &sha(b"zip bytes")).unwrap();
        assert!(std::fs::symlink_metadata(&path).unwrap().is_file());
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        assert_eq!(store.clean_staging().unwrap(), 0);
    }

    /// Issue 8.5: an unreadable `.zip` at its final path is not "different":
    /// it is never renamed over.
    #[test]
    fn unreadable_immutable_file_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&dir.path().join("out")).unwrap();
        let rel = "example.com/m/@v/v1.0.0.zip";
        store.write_file(rel, b"the bytes in place").unwrap();
        let tmp = staged(&store, b"new bytes");
        let err = store
            .put_immutable_with(&tmp, rel, &sha(b"new bytes"), |_| {
                Err(io::Error::from_raw_os_error(libc::EIO))
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::Unreadable { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("cannot be read"), "{msg}");
        assert!(msg.contains("v1.0.0.zip"), "{msg}");
        assert_eq!(
            std::fs::read(dir.path().join("out").join(rel)).unwrap(),
            b"the bytes in place"
        );
        assert!(
            tmp.exists(),
            "a refused put leaves the staged file to its caller"
        );
        // A readable file with other bytes is damage, and is replaced.
        store.put_immutable(&tmp, rel, &sha(b"new bytes")).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("out").join(rel)).unwrap(),
            b"new bytes"
        );
    }

    #[test]
    fn listing_is_sorted_by_key_and_never_follows_links() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&dir.path().join("out")).unwrap();
        for rel in ["a/b", "a.b/c", "a/@v/list", "b", "sumdb/x/latest"] {
            store.write_file(rel, b"x").unwrap();
        }
        let (_, _, outside) = {
            let outside = dir.path().join("outside");
            std::fs::create_dir_all(outside.join("deep")).unwrap();
            std::fs::write(outside.join("deep/f"), b"precious").unwrap();
            std::os::unix::fs::symlink(&outside, dir.path().join("out/link")).unwrap();
            ((), (), outside)
        };
        // A leftover temporary file is the store's own, never listed.
        std::fs::write(store.temp_path("left"), b"tmp").unwrap();
        let listed: Vec<(String, EntryKind)> = store
            .list("")
            .map(|e| e.map(|e| (e.key, e.kind)).unwrap())
            .collect();
        use EntryKind::*;
        let want: Vec<(String, EntryKind)> = [
            ("a.b", Dir),
            ("a.b/c", File),
            ("a", Dir),
            ("a/@v", Dir),
            ("a/@v/list", File),
            ("a/b", File),
            ("b", File),
            ("link", Link),
            ("sumdb", Dir),
            ("sumdb/x", Dir),
            ("sumdb/x/latest", File),
        ]
        .into_iter()
        .map(|(k, t)| (k.to_string(), t))
        .collect();
        assert_eq!(listed, want);
        // Byte order of the keys, a directory sorting as `name/`.
        let keys: Vec<String> = listed
            .iter()
            .map(|(k, t)| {
                if *t == Dir {
                    format!("{k}/")
                } else {
                    k.clone()
                }
            })
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");

        let under: Vec<String> = store.list("a").map(|e| e.unwrap().key).collect();
        assert_eq!(under, ["a/@v", "a/@v/list", "a/b"]);
        assert_eq!(store.list("missing").count(), 0);
        let err = store.list("link/deep").next().unwrap().unwrap_err();
        assert_names_link(err, &dir.path().join("out/link"));
        assert!(store.list("../x").next().unwrap().is_err());
        assert_eq!(std::fs::read(outside.join("deep/f")).unwrap(), b"precious");
    }

    #[test]
    fn reads_are_bounded_and_never_follow_a_link() {
        let (dir, store, outside) = tree_with_linked_dir();
        store
            .write_file("a.example/m/@v/list", b"v1.0.0\n")
            .unwrap();
        assert_eq!(
            store.read("a.example/m/@v/list", 7).unwrap().as_deref(),
            Some(&b"v1.0.0\n"[..])
        );
        let err = store.read("a.example/m/@v/list", 6).unwrap_err();
        assert!(
            matches!(err, StoreError::TooLarge { limit: 6, .. }),
            "{err}"
        );
        assert_eq!(store.read("a.example/m/@latest", 10).unwrap(), None);
        assert_eq!(store.stat("a.example/none/@latest").unwrap(), None);
        let meta = store.stat("a.example/m/@v/list").unwrap().unwrap();
        assert_eq!(meta.size, 7);
        let mut f = store.open("a.example/m/@v/list").unwrap().unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        assert_eq!(s, "v1.0.0\n");

        // A link at the key is not the mirror's file; a link on the way is refused.
        let link = dir.path().join("out/a.example/m/@v/v1.0.0.zip");
        std::os::unix::fs::symlink(outside.join("m/@v/v1.0.0.zip"), &link).unwrap();
        for err in [
            store.read("a.example/m/@v/v1.0.0.zip", 100).unwrap_err(),
            store.open("a.example/m/@v/v1.0.0.zip").unwrap_err(),
            store.stat("a.example/m/@v/v1.0.0.zip").unwrap_err(),
        ] {
            assert!(matches!(err, StoreError::NotAFile(_)), "{err}");
        }
        let linked = dir.path().join("out/linked");
        assert_names_link(store.read("linked/m/@v/list", 100).unwrap_err(), &linked);
        assert_names_link(store.stat("linked/m/@v/list").unwrap_err(), &linked);
        assert_names_link(store.open("linked/m/@v/list").unwrap_err(), &linked);
    }

    #[test]
    fn delete_tree_removes_a_partial_tile_directory_and_tidy_stops_at_content() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&dir.path().join("out")).unwrap();
        let full = "sumdb/s/tile/8/0/000";
        store.write_file(full, b"full").unwrap();
        store.write_file(&format!("{full}.p/5"), b"part").unwrap();
        store.write_file(&format!("{full}.p/7"), b"part").unwrap();
        assert!(store.delete_tree(&format!("{full}.p")).unwrap());
        assert!(!store.delete_tree(&format!("{full}.p")).unwrap());
        assert!(store.stat(full).unwrap().is_some());
        // The tile directory still holds the full tile: tidying stops there.
        store.tidy("sumdb/s/tile/8/0").unwrap();
        assert!(store.stat(full).unwrap().is_some());
        assert!(store.delete(full).unwrap());
        assert!(!store.delete(full).unwrap());
        store.tidy("sumdb/s/tile/8/0").unwrap();
        assert!(!dir.path().join("out/sumdb").exists());
        assert!(store.delete("sumdb").is_ok_and(|removed| !removed));
    }

    #[test]
    fn layout_escapes() {
        use crate::store::layout;
        assert_eq!(
            layout::version_file("github.com/Azure/x", "v1.0.0-RC1", "zip").unwrap(),
            "github.com/!azure/x/@v/v1.0.0-!r!c1.zip"
        );
        assert_eq!(
            layout::lookup("sum.golang.org", "github.com/Azure/x", "v1.0.0").unwrap(),
            "sumdb/sum.golang.org/lookup/github.com/!azure/x@v1.0.0"
        );
        assert!(layout::list("../etc").is_err());
    }
}
