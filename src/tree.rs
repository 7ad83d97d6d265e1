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

use std::collections::HashSet;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::gomod::{self, ModuleError};

/// The directory at the root holding gomirror's own files; never served.
pub const INTERNAL_DIR: &str = ".gomirror";

/// Temporary files are spread over this many directories: creating a file
/// locks its directory, and one directory for all workers serialises them.
const TEMP_SHARDS: u64 = 16;

/// The output tree.
pub struct Tree {
    root: PathBuf,
    tmp: PathBuf,
    counter: AtomicU64,
    /// Directories known to exist as real directories.
    known_dirs: Mutex<HashSet<PathBuf>>,
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
        let tmp = root.join(INTERNAL_DIR).join("tmp");
        for shard in 0..TEMP_SHARDS {
            let dir = tmp.join(shard.to_string());
            std::fs::create_dir_all(&dir)
                .map_err(|e| with_path(e, "cannot create temporary directory", &dir))?;
        }
        Ok(Tree {
            root: root.to_path_buf(),
            tmp,
            counter: AtomicU64::new(0),
            known_dirs: Mutex::new(HashSet::new()),
        })
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

    /// Renames the temporary file `tmp` to `rel`, creating directories.
    pub fn install(&self, tmp: &Path, rel: &str) -> io::Result<PathBuf> {
        crate::crashpoint::reached("rename into the tree");
        let dest = self.path_of(rel)?;
        self.ensure_parent(&dest)?;
        refuse_symlink(&dest)?;
        std::fs::rename(tmp, &dest).map_err(|e| with_path(e, "cannot rename into", &dest))?;
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
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Writes `bytes` to `rel` unless it already holds exactly them.
    /// Returns whether the file was written.
    pub fn write_if_changed(&self, rel: &str, bytes: &[u8]) -> io::Result<bool> {
        let dest = self.path_of(rel)?;
        match std::fs::read(&dest) {
            Ok(current) if current == bytes => return Ok(false),
            _ => {}
        }
        self.write_file(rel, bytes)?;
        Ok(true)
    }

    /// Removes the file at `rel` if it exists; never follows a symlink (a
    /// symlink itself is removed, not its target). Returns whether something
    /// was removed.
    pub fn remove_file(&self, rel: &str) -> io::Result<bool> {
        crate::crashpoint::reached("remove from the tree");
        let dest = self.path_of(rel)?;
        match std::fs::symlink_metadata(&dest) {
            Ok(m) if m.is_dir() => Err(io::Error::other(format!(
                "`{}` is a directory, expected a file",
                dest.display()
            ))),
            Ok(_) => {
                std::fs::remove_file(&dest).map_err(|e| with_path(e, "cannot remove", &dest))?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(with_path(e, "cannot read", &dest)),
        }
    }

    /// Removes empty directories from `rel_dir` upwards, stopping at the root.
    pub fn remove_empty_dirs(&self, rel_dir: &str) -> io::Result<()> {
        crate::crashpoint::reached("remove empty directories");
        let mut rel = rel_dir.trim_end_matches('/').to_string();
        while !rel.is_empty() {
            let dir = self.path_of(&rel)?;
            match std::fs::remove_dir(&dir) {
                Ok(()) => {
                    self.known_dirs.lock().unwrap().remove(&dir);
                }
                Err(e)
                    if e.kind() == io::ErrorKind::NotFound
                        || e.kind() == io::ErrorKind::DirectoryNotEmpty => {}
                Err(e) if e.raw_os_error() == Some(39) => return Ok(()),
                Err(e) => return Err(with_path(e, "cannot remove", &dir)),
            }
            if dir.exists() {
                return Ok(());
            }
            match rel.rfind('/') {
                Some(i) => rel.truncate(i),
                None => break,
            }
        }
        Ok(())
    }

    fn ensure_parent(&self, dest: &Path) -> io::Result<()> {
        let parent = dest
            .parent()
            .ok_or_else(|| io::Error::other("destination has no parent"))?;
        if self.known_dirs.lock().unwrap().contains(parent) {
            return Ok(());
        }
        let rel = parent.strip_prefix(&self.root).map_err(|_| {
            io::Error::other(format!("`{}` is outside the output root", parent.display()))
        })?;
        let mut cur = self.root.clone();
        for c in rel.components() {
            cur.push(c);
            match std::fs::symlink_metadata(&cur) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(io::Error::other(format!(
                        "refusing to write through symbolic link `{}`",
                        cur.display()
                    )));
                }
                Ok(_) => {
                    return Err(io::Error::other(format!(
                        "`{}` is a file where a directory is needed",
                        cur.display()
                    )));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    match std::fs::create_dir(&cur) {
                        Ok(()) => {}
                        // Another worker created it in between: fine if it is a directory.
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                            if !std::fs::symlink_metadata(&cur)?.is_dir() {
                                return Err(io::Error::other(format!(
                                    "`{}` is not a directory",
                                    cur.display()
                                )));
                            }
                        }
                        Err(e) => return Err(with_path(e, "cannot create directory", &cur)),
                    }
                }
                Err(e) => return Err(with_path(e, "cannot read", &cur)),
            }
        }
        self.known_dirs.lock().unwrap().insert(parent.to_path_buf());
        Ok(())
    }
}

fn refuse_symlink(dest: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(dest) {
        Ok(m) if m.file_type().is_symlink() => {
            // rename() replaces the link itself, not its target, so this is safe;
            // it is still worth refusing loudly: someone put it there.
            Err(io::Error::other(format!(
                "refusing to replace symbolic link `{}`",
                dest.display()
            )))
        }
        Ok(m) if m.is_dir() => Err(io::Error::other(format!(
            "`{}` is a directory where a file belongs",
            dest.display()
        ))),
        _ => Ok(()),
    }
}

fn check_rel(rel: &str) -> io::Result<()> {
    let bad = || io::Error::other(format!("refusing unsafe tree path {rel:?}"));
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

/// Tree-relative paths of a module's files.
pub mod layout {
    use super::*;

    /// `<module>` escaped.
    pub fn module_dir(module: &str) -> Result<String, ModuleError> {
        gomod::escape_path(module)
    }

    /// `<module>/@v/<version>.<ext>`.
    pub fn version_file(module: &str, version: &str, ext: &str) -> Result<String, ModuleError> {
        Ok(format!(
            "{}/@v/{}.{ext}",
            gomod::escape_path(module)?,
            gomod::escape_version(version)?
        ))
    }

    /// `<module>/@v/list`.
    pub fn list(module: &str) -> Result<String, ModuleError> {
        Ok(format!("{}/@v/list", gomod::escape_path(module)?))
    }

    /// `<module>/@latest`.
    pub fn latest(module: &str) -> Result<String, ModuleError> {
        Ok(format!("{}/@latest", gomod::escape_path(module)?))
    }

    /// `sumdb/<name>`.
    pub fn sumdb_dir(name: &str) -> String {
        format!("sumdb/{name}")
    }

    /// `sumdb/<name>/lookup/<module>@<version>`.
    pub fn lookup(name: &str, module: &str, version: &str) -> Result<String, ModuleError> {
        Ok(format!(
            "sumdb/{name}/lookup/{}@{}",
            gomod::escape_path(module)?,
            gomod::escape_version(version)?
        ))
    }
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

    #[test]
    fn layout_escapes() {
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
