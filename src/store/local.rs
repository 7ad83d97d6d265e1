//! The output tree: where every file goes, and how it gets there.
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
//! <root>/.gomirror/tmp/…      temporary files (never served)
//! ```
//!
//! Files are written to a temporary file under `.gomirror/tmp` (same file
//! system), synced, and renamed into place, so a client never sees a partial
//! file. Every destination is built from validated, escaped components and
//! checked to stay under the root; directories are created without following
//! symbolic links, and a symlink where a directory should be is an error.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{self as rfs, AtFlags, CWD, Dir, FileType, Mode, OFlags};
use rustix::io::Errno;

/// The directory at the root holding gomirror's own files; never served.
pub const INTERNAL_DIR: &str = ".gomirror";

/// Temporary files are spread over this many directories: creating a file
/// locks its directory, and one directory for all workers serialises them.
const TEMP_SHARDS: u64 = 16;

/// A stray directory nested deeper than this is refused rather than removed:
/// each level holds a file descriptor, and the layout itself is never this deep.
const MAX_REMOVE_DEPTH: usize = 128;

/// Why a tree operation was refused or failed. Converted into [`io::Error`]
/// at the API boundary (the error stays its source), so callers keep one
/// error type for file work.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("refusing unsafe tree path {0:?}")]
    UnsafePath(String),
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

impl From<TreeError> for io::Error {
    fn from(e: TreeError) -> io::Error {
        let kind = match &e {
            TreeError::Io { source, .. } => source.kind(),
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

fn io_err(what: &'static str, path: &Path, e: impl Into<io::Error>) -> TreeError {
    TreeError::Io {
        what,
        path: path.to_path_buf(),
        source: e.into(),
    }
}

/// The output tree.
pub struct Tree {
    root: PathBuf,
    tmp: PathBuf,
    counter: AtomicU64,
}

impl Tree {
    /// Opens the tree at `root`, creating it and its temporary directory.
    pub fn open(root: &Path) -> io::Result<Tree> {
        std::fs::create_dir_all(root)
            .map_err(|e| with_path(e, "cannot create output directory", root))?;
        let meta = std::fs::symlink_metadata(root)
            .map_err(|e| with_path(e, "cannot read output directory", root))?;
        if !meta.is_dir() && !meta.file_type().is_symlink() {
            return Err(io::Error::other(format!(
                "output `{}` is not a directory",
                root.display()
            )));
        }
        let tree = Tree {
            root: root.to_path_buf(),
            tmp: root.join(INTERNAL_DIR).join("tmp"),
            counter: AtomicU64::new(0),
        };
        // Created link-free like any tree directory: `clean_temp` deletes
        // under it, so it must not lead outside the root.
        for shard in 0..TEMP_SHARDS {
            let dir = format!("{INTERNAL_DIR}/tmp/{shard}");
            tree.open_dir(&dir, true, "write", &root.join(&dir))?;
        }
        Ok(tree)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Removes temporary files a killed run left behind. Call under the lock.
    pub fn clean_temp(&self) -> io::Result<u64> {
        crate::crashpoint::reached("remove temporary files");
        let mut removed = 0;
        for entry in walkdir::WalkDir::new(&self.tmp)
            .follow_links(false)
            .min_depth(1)
            .contents_first(true)
        {
            let entry = entry.map_err(io::Error::other)?;
            let path = entry.path();
            if entry.depth() == 1 && entry.file_type().is_dir() {
                continue; // a shard directory
            }
            if entry.file_type().is_dir() {
                std::fs::remove_dir(path).map_err(|e| with_path(e, "cannot remove", path))?;
            } else {
                std::fs::remove_file(path).map_err(|e| with_path(e, "cannot remove", path))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Makes everything written to the tree so far durable (`syncfs`): one
    /// barrier for a whole batch instead of one `fsync` per file. The sync
    /// pipeline calls it before renaming a batch into place, before recording
    /// it in the state database, and before marking indexes as written.
    pub fn sync_to_disk(&self) -> io::Result<()> {
        crate::crashpoint::reached("syncfs barrier");
        let dir =
            std::fs::File::open(&self.root).map_err(|e| with_path(e, "cannot open", &self.root))?;
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: syncfs takes a file descriptor we own for the call.
            if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
                return Err(with_path(
                    io::Error::last_os_error(),
                    "cannot sync",
                    &self.root,
                ));
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = dir;
            // SAFETY: sync() has no preconditions.
            unsafe { libc::sync() };
        }
        Ok(())
    }

    /// A fresh temporary file path (not yet created).
    pub fn temp_path(&self, hint: &str) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let hint: String = hint
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        self.tmp
            .join((n % TEMP_SHARDS).to_string())
            .join(format!("{}-{n}-{hint}", std::process::id()))
    }

    /// The absolute path of a tree-relative path, after checking that every
    /// component is a plain name that cannot leave the root or reach the
    /// internal directory.
    pub fn path_of(&self, rel: &str) -> io::Result<PathBuf> {
        check_rel(rel)?;
        Ok(self.root.join(rel))
    }

    /// Like [`Tree::path_of`], and also checks, without following links, that
    /// every directory on the way is a real directory: for readers that report
    /// what they find (a link there is damage, not the mirror's file).
    pub fn checked_path(&self, rel: &str) -> io::Result<PathBuf> {
        check_rel(rel)?;
        let path = self.root.join(rel);
        self.open_dir(split_parent(rel).0, false, "read", &path)?;
        Ok(path)
    }

    /// Renames the temporary file `tmp` to `rel`, creating directories. Every
    /// directory on the way is opened without following links, and the
    /// rename happens relative to the last one, so a link anywhere in the
    /// path is refused and nothing lands outside the root.
    pub fn install(&self, tmp: &Path, rel: &str) -> io::Result<PathBuf> {
        crate::crashpoint::reached("rename into the tree");
        check_rel(rel)?;
        let dest = self.root.join(rel);
        let (dir, name) = split_parent(rel);
        let Some(dfd) = self.open_dir(dir, true, "write", &dest)? else {
            return Err(io_err("cannot create directory for", &dest, Errno::NOENT).into());
        };
        match rfs::statat(&dfd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => match FileType::from_raw_mode(st.st_mode) {
                // rename() would replace the link itself, not its target; it
                // is still refused loudly: someone put it there.
                FileType::Symlink => return Err(TreeError::ReplaceLink(dest).into()),
                FileType::Directory => return Err(TreeError::DirectoryForFile(dest).into()),
                _ => {}
            },
            Err(Errno::NOENT) => {}
            Err(e) => return Err(io_err("cannot read", &dest, e).into()),
        }
        rfs::renameat(CWD, tmp, &dfd, name).map_err(|e| io_err("cannot rename into", &dest, e))?;
        Ok(dest)
    }

    /// Writes `bytes` to `rel` atomically (temporary file, rename). Durability
    /// comes from the caller's [`Tree::sync_to_disk`] barriers.
    pub fn write_file(&self, rel: &str, bytes: &[u8]) -> io::Result<PathBuf> {
        let tmp = self.temp_path(rel.rsplit('/').next().unwrap_or("file"));
        let result = (|| {
            let mut f =
                std::fs::File::create(&tmp).map_err(|e| with_path(e, "cannot create", &tmp))?;
            f.write_all(bytes)
                .map_err(|e| with_path(e, "cannot write", &tmp))?;
            self.install(&tmp, rel)
        })();
        if result.is_err() {
            // Best effort: a leftover temporary file is removed by the next `clean_temp`.
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Writes `bytes` to `rel` unless it already holds exactly them.
    /// Returns whether the file was written.
    pub fn write_if_changed(&self, rel: &str, bytes: &[u8]) -> io::Result<bool> {
        check_rel(rel)?;
        if self.read_no_follow(rel, "write")?.as_deref() == Some(bytes) {
            return Ok(false);
        }
        self.write_file(rel, bytes)?;
        Ok(true)
    }

    /// The content of the regular file at `rel`, read without following any
    /// link; `None` if it is missing or is itself a link.
    fn read_no_follow(
        &self,
        rel: &str,
        action: &'static str,
    ) -> Result<Option<Vec<u8>>, TreeError> {
        let path = self.root.join(rel);
        let (dir, name) = split_parent(rel);
        let Some(dfd) = self.open_dir(dir, false, action, &path)? else {
            return Ok(None);
        };
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let fd = match rfs::openat(&dfd, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT | Errno::LOOP) => return Ok(None),
            Err(e) => return Err(io_err("cannot open", &path, e)),
        };
        let mut file = std::fs::File::from(fd);
        if !file
            .metadata()
            .map_err(|e| io_err("cannot stat", &path, e))?
            .is_file()
        {
            return Ok(None);
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| io_err("cannot read", &path, e))?;
        Ok(Some(bytes))
    }

    /// Removes the file at `rel` if it exists. Never follows a link: a link
    /// at `rel` is itself removed, and a link on the way to `rel` is refused.
    /// Returns whether something was removed.
    pub fn remove_file(&self, rel: &str) -> io::Result<bool> {
        crate::crashpoint::reached("remove from the tree");
        check_rel(rel)?;
        let dest = self.root.join(rel);
        let (dir, name) = split_parent(rel);
        let Some(dfd) = self.open_dir(dir, false, "delete", &dest)? else {
            return Ok(false);
        };
        match rfs::statat(&dfd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                Err(TreeError::DirectoryForFile(dest).into())
            }
            Ok(_) => match rfs::unlinkat(&dfd, name, AtFlags::empty()) {
                Ok(()) => Ok(true),
                Err(Errno::NOENT) => Ok(false),
                Err(e) => Err(io_err("cannot remove", &dest, e).into()),
            },
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(io_err("cannot read", &dest, e).into()),
        }
    }

    /// Removes the directory `rel` with everything in it; links inside are
    /// removed, never followed, and a link on the way to `rel` is refused. A
    /// link at `rel` itself is removed. Returns whether something was removed.
    pub fn remove_dir_all(&self, rel: &str) -> io::Result<bool> {
        crate::crashpoint::reached("remove a directory tree");
        check_rel(rel)?;
        let dest = self.root.join(rel);
        let (dir, name) = split_parent(rel);
        let Some(dfd) = self.open_dir(dir, false, "delete", &dest)? else {
            return Ok(false);
        };
        Ok(remove_entry_at(&dfd, OsStr::new(name), &dest, 0)?)
    }

    /// Removes empty directories from `rel_dir` upwards, stopping at the root
    /// or at the first directory that is not empty. A link in place of one of
    /// them is left alone (it is a stray, removed as such); a link on the way
    /// to them is refused.
    pub fn remove_empty_dirs(&self, rel_dir: &str) -> io::Result<()> {
        crate::crashpoint::reached("remove empty directories");
        let mut rel = rel_dir.trim_end_matches('/');
        while !rel.is_empty() {
            check_rel(rel)?;
            let path = self.root.join(rel);
            let (dir, name) = split_parent(rel);
            if let Some(dfd) = self.open_dir(dir, false, "delete", &path)? {
                match rfs::unlinkat(&dfd, name, AtFlags::REMOVEDIR) {
                    Ok(()) | Err(Errno::NOENT) => {}
                    Err(Errno::NOTEMPTY | Errno::EXIST | Errno::NOTDIR) => return Ok(()),
                    Err(e) => return Err(io_err("cannot remove", &path, e).into()),
                }
            }
            rel = dir;
        }
        Ok(())
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
    ) -> Result<Option<OwnedFd>, TreeError> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let mut fd = rfs::open(&self.root, flags, Mode::empty())
            .map_err(|e| io_err("cannot open", &self.root, e))?;
        let mut cur = self.root.clone();
        for c in dir.split('/').filter(|c| !c.is_empty()) {
            cur.push(c);
            let refused = |parent: &OwnedFd, e: Errno| -> TreeError {
                refusal(parent, c, &cur, e, action, target)
            };
            fd = match open_child_dir(&fd, c) {
                Ok(next) => next,
                Err(Errno::NOENT) if create => {
                    match rfs::mkdirat(&fd, c, Mode::from_raw_mode(0o777)) {
                        // Another worker created it in between: fine if it is a directory.
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(io_err("cannot create directory", &cur, e)),
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
) -> TreeError {
    if e != Errno::LOOP && e != Errno::NOTDIR {
        return io_err("cannot open directory", path, e);
    }
    match rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
            TreeError::ThroughLink {
                action,
                target: target.to_path_buf(),
                link: path.to_path_buf(),
            }
        }
        Ok(_) => TreeError::NotADirectory {
            action,
            path: path.to_path_buf(),
            target: target.to_path_buf(),
        },
        Err(e) => io_err("cannot read", path, e),
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
) -> Result<bool, TreeError> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rfs::openat(parent, name, flags, Mode::empty()) {
        Ok(fd) => {
            if depth >= MAX_REMOVE_DEPTH {
                return Err(TreeError::TooDeep(path.to_path_buf()));
            }
            let mut entries = Dir::read_from(&fd).map_err(|e| io_err("cannot list", path, e))?;
            while let Some(entry) = entries.read() {
                let entry = entry.map_err(|e| io_err("cannot list", path, e))?;
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
                Err(e) => Err(io_err("cannot remove", path, e)),
            }
        }
        Err(Errno::NOENT) => Ok(false),
        // A file or a link: removed as it is.
        Err(Errno::LOOP | Errno::NOTDIR) => match rfs::unlinkat(parent, name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(io_err("cannot remove", path, e)),
        },
        Err(e) => Err(io_err("cannot open directory", path, e)),
    }
}

/// `a/b/c` → (`a/b`, `c`); `c` → (``, `c`).
fn split_parent(rel: &str) -> (&str, &str) {
    rel.rsplit_once('/').unwrap_or(("", rel))
}

fn check_rel(rel: &str) -> io::Result<()> {
    let bad = || io::Error::from(TreeError::UnsafePath(rel.to_string()));
    if rel.is_empty() || rel.contains('\\') || rel.contains('\0') {
        return Err(bad());
    }
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(s) => {
                let s = s.to_str().ok_or_else(bad)?;
                if s.is_empty() || s.starts_with('.') {
                    return Err(bad());
                }
            }
            _ => return Err(bad()),
        }
    }
    Ok(())
}

fn with_path(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} `{}`: {e}", path.display()))
}

/// Modification time of a file in nanoseconds since the epoch, and its size.
pub fn stat(path: &Path) -> io::Result<(i64, i64)> {
    let m = std::fs::metadata(path).map_err(|e| with_path(e, "cannot stat", path))?;
    let mtime = m
        .modified()?
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    Ok((m.len() as i64, mtime))
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
        let tree = Tree::open(&dir.path().join("out")).unwrap();
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
        assert_eq!(tree.clean_temp().unwrap(), 0);

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
        let tree = Tree::open(&dir.path().join("out")).unwrap();
        let target = dir.path().join("precious");
        std::fs::write(&target, b"keep").unwrap();
        std::fs::create_dir_all(dir.path().join("out/a.example/m/@v")).unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("out/a.example/m/@v/v1.0.0.zip"))
            .unwrap();
        assert!(tree.remove_file("a.example/m/@v/v1.0.0.zip").unwrap());
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        tree.remove_empty_dirs("a.example/m/@v").unwrap();
        assert!(!dir.path().join("out/a.example").exists());
        assert!(dir.path().join("out").exists());
    }

    /// A tree with `<out>/linked -> <outside>`, where `<outside>` holds
    /// `m/@v/v1.0.0.zip`, an empty directory `m/empty` and `m/@v/list`.
    fn tree_with_linked_dir() -> (tempfile::TempDir, Tree, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let tree = Tree::open(&dir.path().join("out")).unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(outside.join("m/@v")).unwrap();
        std::fs::create_dir_all(outside.join("m/empty")).unwrap();
        std::fs::write(outside.join("m/@v/v1.0.0.zip"), b"precious").unwrap();
        std::fs::write(outside.join("m/@v/list"), b"v1.0.0\n").unwrap();
        std::os::unix::fs::symlink(&outside, dir.path().join("out/linked")).unwrap();
        (dir, tree, outside)
    }

    #[track_caller]
    fn assert_names_link(err: io::Error, link: &Path) {
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
        let err = tree.remove_file("linked/m/@v/v1.0.0.zip").unwrap_err();
        assert_names_link(err, &link);
        assert_eq!(
            std::fs::read(outside.join("m/@v/v1.0.0.zip")).unwrap(),
            b"precious"
        );
        // The link itself is what a prune removes.
        assert!(tree.remove_file("linked").unwrap());
        assert!(outside.join("m/@v/v1.0.0.zip").exists());
    }

    #[test]
    fn remove_empty_dirs_refuses_a_symlinked_intermediate_directory() {
        let (dir, tree, outside) = tree_with_linked_dir();
        let err = tree.remove_empty_dirs("linked/m/empty").unwrap_err();
        assert_names_link(err, &dir.path().join("out/linked"));
        assert!(outside.join("m/empty").is_dir());
        // A link in place of the directory itself is left for the stray pass.
        tree.remove_empty_dirs("linked").unwrap();
        assert!(std::fs::symlink_metadata(dir.path().join("out/linked")).is_ok());
    }

    #[test]
    fn remove_dir_all_removes_links_inside_and_refuses_links_on_the_way() {
        let (dir, tree, outside) = tree_with_linked_dir();
        let err = tree.remove_dir_all("linked/m").unwrap_err();
        assert_names_link(err, &dir.path().join("out/linked"));
        std::fs::create_dir_all(dir.path().join("out/stray/deep")).unwrap();
        std::fs::write(dir.path().join("out/stray/deep/f"), b"x").unwrap();
        std::os::unix::fs::symlink(&outside, dir.path().join("out/stray/deep/l")).unwrap();
        assert!(tree.remove_dir_all("stray").unwrap());
        assert!(!dir.path().join("out/stray").exists());
        assert!(!tree.remove_dir_all("stray").unwrap());
        assert!(
            tree.remove_dir_all("linked").unwrap(),
            "the link itself goes"
        );
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
    fn a_file_where_a_directory_belongs_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let tree = Tree::open(&dir.path().join("out")).unwrap();
        std::fs::write(dir.path().join("out/a.example"), b"x").unwrap();
        let err = tree.write_file("a.example/m/@v/list", b"x").unwrap_err();
        assert!(err.to_string().contains("out/a.example"), "{err}");
        assert!(!tree.remove_file("a.example/m/@v/list").is_ok_and(|r| r));
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
