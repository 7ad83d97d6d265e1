//! `file://` upstreams: a directory in GOPROXY layout named in
//! `upstream.proxy` (a developer's `$GOMODCACHE/cache/download`, an old
//! `file://` mirror) or `sumdb.url` (the go command's cached lookups and
//! tiles), read as the go command reads `GOPROXY=file://`.
//!
//! The files themselves are read by [`super::Upstream`] like a bundle's:
//! regular files only, sizes judged before reading. What this module adds is
//! containment: a file is read only if, links resolved, it is inside the
//! entry's directory, so a symbolic link in a module cache cannot make the
//! mirror read `/etc` or another user's files (what it read would fail the
//! checksum database anyway; it is not read at all). And a directory that
//! is not there is an error, not "not found": a mistyped path must not make
//! every version look gone upstream.

use std::path::{Path, PathBuf};

use reqwest::Url;

use super::{FetchError, Retry};
use crate::redact::redact_url;

/// Whether `url` (under the entry `base`, both `file://`) may be read:
/// `Ok` when the file is inside `base` or does not exist (the read then
/// says "not found"), an error when `base` is not a directory or the file
/// leads outside it.
pub fn check_contained(base: &Url, url: &Url) -> Result<(), FetchError> {
    let refuse = |message: String, connect: bool| FetchError::Network {
        url: redact_url(url),
        message,
        retry: Retry::Permanent,
        connect,
    };
    let (Ok(root), Ok(path)) = (base.to_file_path(), url.to_file_path()) else {
        return Err(refuse("not a local file path".into(), false));
    };
    let root = match std::fs::canonicalize(&root) {
        Ok(r) if r.is_dir() => r,
        Ok(r) => {
            return Err(refuse(
                format!("`{}` is not a directory", r.display()),
                true,
            ));
        }
        Err(e) => {
            return Err(refuse(
                format!("the upstream directory `{}`: {e}", root.display()),
                true,
            ));
        }
    };
    match resolve(&path) {
        None => Ok(()),
        Some(real) if real.starts_with(&root) => Ok(()),
        Some(real) => Err(refuse(
            format!(
                "leads outside the upstream directory `{}` (to `{}`, through a symbolic link): refused",
                root.display(),
                real.display()
            ),
            false,
        )),
    }
}

/// `path` with every link resolved; `None` when it does not exist (or a
/// directory on the way does not).
fn resolve(path: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(path).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(p: &Path) -> Url {
        Url::from_file_path(p).unwrap()
    }

    #[test]
    fn links_inside_are_followed_and_links_outside_refused() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("cache");
        let outside = d.path().join("secret");
        std::fs::create_dir_all(root.join("a.example/m/@v")).unwrap();
        std::fs::write(&outside, "x").unwrap();
        std::fs::write(root.join("a.example/m/@v/v1.0.0.mod"), "module a\n").unwrap();
        std::os::unix::fs::symlink(
            root.join("a.example/m/@v/v1.0.0.mod"),
            root.join("a.example/m/@v/v1.1.0.mod"),
        )
        .unwrap();
        std::os::unix::fs::symlink(&outside, root.join("a.example/m/@v/v1.2.0.mod")).unwrap();
        std::os::unix::fs::symlink(d.path(), root.join("up")).unwrap();
        let base = Url::from_directory_path(&root).unwrap();
        let at = |rel: &str| check_contained(&base, &url(&root.join(rel)));
        assert!(at("a.example/m/@v/v1.0.0.mod").is_ok());
        assert!(at("a.example/m/@v/v1.1.0.mod").is_ok());
        assert!(
            at("a.example/m/@v/v9.0.0.mod").is_ok(),
            "missing: the read says 404"
        );
        let e = at("a.example/m/@v/v1.2.0.mod").unwrap_err();
        assert!(!e.is_not_found() && !e.is_retryable(), "{e}");
        assert!(e.to_string().contains("leads outside"), "{e}");
        assert!(at("up/secret").is_err());

        // A directory that is not there fails every read, as a host that is down.
        let gone = Url::from_directory_path(d.path().join("nowhere")).unwrap();
        let e = check_contained(&gone, &url(&d.path().join("nowhere/x"))).unwrap_err();
        assert!(
            matches!(e, FetchError::Network { connect: true, .. }),
            "{e}"
        );
    }
}
