//! Private modules as an [`Origin`]: a version is made from its repository
//! by `go mod download -json module@version` ([`super::gocmd`]), a module's
//! tagged versions listed by `go list -m -versions -json module`.
//!
//! One make serves the three files of a version: the fetcher asks for
//! `.info`, `.mod` and `.zip` at once, and the first request starts the go
//! command while the others wait for the same make ([`Slot`]). The made
//! files are moved out of the go command's download cache into a directory
//! of their own as soon as it ends (the directory goes when the last
//! request has taken its file), and the module cache itself lasts one run:
//! the go command resolves a tag from its clone of the repository without
//! asking the repository again, so a cache kept across runs would hide a
//! moved tag from the ledger. Within a run, one clone serves every version
//! of a repository.
//!
//! [`Routed`] puts this origin beside the proxy list: private modules here,
//! every other module there.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use sha2::{Digest, Sha256};

use super::gocmd::{GoCommand, GoError, failure, says_not_found};
use crate::http::Download;
use crate::http::list::{Avoid, Served};
use crate::settings::PrivateSettings;
use crate::source::{BoxFuture, Origin, OriginError, VersionFile};

/// Versions made from their repositories by the go command.
pub struct PrivateOrigin {
    go: GoCommand,
    settings: PrivateSettings,
    /// The makes in progress or not yet taken, by `module@version`.
    slots: Mutex<HashMap<String, Weak<Slot>>>,
    /// Made files a killed run left behind are removed once, first.
    cleaned: tokio::sync::OnceCell<()>,
}

/// One make of one version, shared by the requests for its files.
struct Slot {
    made: tokio::sync::OnceCell<Result<Made, (String, bool)>>,
    dir: PathBuf,
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Off the executor when there is one (a few files; nothing waits).
        let dir = std::mem::take(&mut self.dir);
        match tokio::runtime::Handle::try_current() {
            Ok(h) => drop(h.spawn_blocking(move || std::fs::remove_dir_all(dir))),
            Err(_) => drop(std::fs::remove_dir_all(dir)),
        }
    }
}

/// A version's files as the go command made them.
struct Made {
    info: PathBuf,
    gomod: PathBuf,
    zip: PathBuf,
}

/// What `go mod download -json` says about one module version.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Downloaded {
    #[serde(default)]
    path: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    info: String,
    #[serde(default)]
    go_mod: String,
    #[serde(default)]
    zip: String,
    #[serde(default)]
    dir: String,
    #[serde(default)]
    error: String,
}

/// What `go list -m -versions -json` says about a module.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Listed {
    #[serde(default)]
    versions: Vec<String>,
    #[serde(default)]
    error: Option<ListError>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListError {
    #[serde(default)]
    err: String,
}

impl PrivateOrigin {
    pub fn new(settings: &PrivateSettings) -> PrivateOrigin {
        PrivateOrigin {
            go: GoCommand::new(settings),
            settings: settings.clone(),
            slots: Mutex::new(HashMap::new()),
            cleaned: tokio::sync::OnceCell::new(),
        }
    }

    /// Whether `module` is made here.
    pub fn owns(&self, module: &str) -> bool {
        self.settings.owns(module)
    }

    /// The go command, found and new enough: a command that will make
    /// private versions asks first, to stop with one clear error.
    pub async fn require_go(&self) -> Result<(), GoError> {
        self.go.require().await.map(|_| ())
    }

    /// Once a run, before the first go command that uses the module cache:
    /// what a killed run left, and the go command's cache of the
    /// repositories, which resolves a tag from its own clone without asking
    /// again (a moved tag would go unseen for as long as the clone lives).
    /// Within a run the clones are shared by every version and list.
    async fn prepare(&self) {
        self.cleaned
            .get_or_init(|| async {
                let (made, cache) = (self.go.made_dir(), self.go.modcache());
                let _ = tokio::task::spawn_blocking(move || {
                    let _ = std::fs::remove_dir_all(&made);
                    let _ = std::fs::remove_dir_all(&cache);
                    std::fs::create_dir_all(&made)
                })
                .await;
            })
            .await;
    }

    /// The make of `module@version`: the one in progress, or a new one.
    async fn made(&self, module: &str, version: &str) -> Result<Arc<Slot>, OriginError> {
        self.prepare().await;
        let key = format!("{module}@{version}");
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.retain(|_, s| s.strong_count() > 0);
            match slots.get(&key).and_then(Weak::upgrade) {
                Some(s) => s,
                None => {
                    let s = Arc::new(Slot {
                        made: tokio::sync::OnceCell::new(),
                        dir: self
                            .go
                            .made_dir()
                            .join(format!("{:016x}", fastrand::u64(..))),
                    });
                    slots.insert(key, Arc::downgrade(&s));
                    s
                }
            }
        };
        let made = slot
            .made
            .get_or_init(|| async {
                self.make(module, version, &slot.dir)
                    .await
                    .map_err(|e| (e.to_string(), e.is_not_found()))
            })
            .await;
        match made {
            Ok(_) => Ok(slot),
            Err((message, not_found)) => Err(OriginError::Made {
                message: message.clone(),
                not_found: *not_found,
            }),
        }
    }

    /// Runs the go command for `module@version` and moves what it made
    /// into `dir`.
    async fn make(&self, module: &str, version: &str, dir: &Path) -> Result<Made, GoError> {
        let query = format!("{module}@{version}");
        let out = self.go.run(&["mod", "download", "-json", &query]).await?;
        let parsed: Option<Downloaded> = serde_json::from_slice(&out.stdout).ok();
        let d = match parsed {
            Some(d) if out.success && d.error.is_empty() => d,
            Some(d) => {
                let nf = says_not_found(&d.error) || says_not_found(&out.stderr);
                return Err(failure(Some(&d.error), &out.stderr, nf));
            }
            None => return Err(failure(None, &out.stderr, says_not_found(&out.stderr))),
        };
        if d.path != module || d.version != version {
            return Err(GoError::Failed {
                message: format!(
                    "the go command made {}@{} when asked for {query}",
                    crate::shown::text(&d.path),
                    crate::shown::text(&d.version)
                ),
                not_found: false,
            });
        }
        let cache = self.go.modcache();
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || take_out(&cache, &d, &dir))
            .await
            .map_err(|e| GoError::Failed {
                message: format!("moving the made files crashed: {e}"),
                not_found: false,
            })?
    }

    /// `.info` as made, with any credential in its `Origin.URL` masked.
    async fn info(&self, module: &str, version: &str, limit: u64) -> Result<Vec<u8>, OriginError> {
        let slot = self.made(module, version).await?;
        let path = match slot.made.get() {
            Some(Ok(m)) => m.info.clone(),
            _ => unreachable!("made() returned the slot made"),
        };
        let body = tokio::task::spawn_blocking(move || crate::bounded::read_regular(&path, limit))
            .await
            .map_err(|e| made_err(format!("reading .info crashed: {e}")))?
            .map_err(|e| made_err(format!(".info as made: {e}")))?;
        Ok(without_credentials(body))
    }

    async fn file(
        &self,
        module: &str,
        version: &str,
        file: VersionFile,
        limit: u64,
        dest: &Path,
    ) -> Result<Download, OriginError> {
        let slot = self.made(module, version).await?;
        let from = match (slot.made.get(), file) {
            (Some(Ok(m)), VersionFile::Mod) => m.gomod.clone(),
            (Some(Ok(m)), VersionFile::Zip) => m.zip.clone(),
            (Some(Ok(m)), VersionFile::Info) => m.info.clone(),
            _ => unreachable!("made() returned the slot made"),
        };
        let dest = dest.to_path_buf();
        let ext = file.ext();
        tokio::task::spawn_blocking(move || copy_hashed(&from, &dest, limit))
            .await
            .map_err(|e| made_err(format!("copying .{ext} crashed: {e}")))?
            .map_err(|e| made_err(format!(".{ext} as made: {e}")))
    }

    /// The module's tagged versions, one a line (an `@v/list`).
    async fn versions(&self, module: &str, limit: u64) -> Result<Vec<u8>, OriginError> {
        self.prepare().await;
        let out = self
            .go
            .run(&["list", "-m", "-versions", "-json", module])
            .await
            .map_err(go_err)?;
        let listed: Option<Listed> = serde_json::from_slice(&out.stdout).ok();
        let list = match listed {
            Some(l) if out.success && l.error.is_none() => l,
            Some(l) => {
                let e = l.error.map(|e| e.err).unwrap_or_default();
                let nf = says_not_found(&e) || repository_missing(&out.stderr);
                return Err(go_err(failure(Some(&e), &out.stderr, nf)));
            }
            None => {
                let nf = repository_missing(&out.stderr);
                return Err(go_err(failure(None, &out.stderr, nf)));
            }
        };
        let mut body = Vec::new();
        for v in list.versions {
            body.extend_from_slice(v.as_bytes());
            body.push(b'\n');
        }
        if body.len() as u64 > limit {
            return Err(made_err(format!(
                "{module} has more tagged versions than the {limit} bytes a list may take"
            )));
        }
        Ok(body)
    }
}

/// Whether the go command says the repository itself is not there (for a
/// list only: a version's make never takes that for "not found", so a
/// credential gone wrong deletes nothing).
fn repository_missing(stderr: &str) -> bool {
    stderr.contains("not found") && stderr.contains("repository")
}

fn made_err(message: String) -> OriginError {
    OriginError::Made {
        message,
        not_found: false,
    }
}

fn go_err(e: GoError) -> OriginError {
    OriginError::Made {
        not_found: e.is_not_found(),
        message: e.to_string(),
    }
}

/// Moves `.info`, `.mod` and `.zip` out of the download cache into `dir`,
/// and removes the rest the make left there (the zip's hash file, the
/// extracted tree), so the next make asks the repository again. Every path
/// the go command named must be inside the mirror's own module cache.
fn take_out(cache: &Path, d: &Downloaded, dir: &Path) -> Result<Made, GoError> {
    let fail = |message: String| GoError::Failed {
        message,
        not_found: false,
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| fail(format!("cannot create `{}`: {e}", dir.display())))?;
    let inside = |p: &str, what: &str| -> Result<PathBuf, GoError> {
        let p = PathBuf::from(p);
        if p.is_absolute()
            && p.starts_with(cache)
            && !p.components().any(|c| c == std::path::Component::ParentDir)
        {
            Ok(p)
        } else {
            Err(fail(format!(
                "the go command named {what} {} outside the mirror's module cache",
                crate::shown::quoted(&p.display().to_string())
            )))
        }
    };
    let take = |p: &str, what: &str, name: &str| -> Result<PathBuf, GoError> {
        let from = inside(p, what)?;
        let to = dir.join(name);
        std::fs::rename(&from, &to)
            .map_err(|e| fail(format!("cannot move `{}`: {e}", from.display())))?;
        Ok(to)
    };
    let made = Made {
        info: take(&d.info, ".info", "info")?,
        gomod: take(&d.go_mod, ".mod", "mod")?,
        zip: take(&d.zip, ".zip", "zip")?,
    };
    if let Ok(z) = inside(&d.zip, ".zip") {
        let _ = std::fs::remove_file(z.with_extension("ziphash"));
    }
    if !d.dir.is_empty()
        && let Ok(extracted) = inside(&d.dir, "the module directory")
    {
        let _ = std::fs::remove_dir_all(extracted);
    }
    Ok(made)
}

/// Copies a made file to `dest` while hashing it, at most `limit` bytes.
fn copy_hashed(from: &Path, dest: &Path, limit: u64) -> Result<Download, String> {
    use std::io::{Read, Write};
    let (file, _) = crate::bounded::open_regular(from, limit).map_err(|e| e.to_string())?;
    let mut r = crate::bounded::Capped::new(file, limit);
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(dest).map_err(|e| format!("{}: {e}", dest.display()))?,
    );
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = r.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| format!("{}: {e}", dest.display()))?;
        size += n as u64;
    }
    out.flush()
        .map_err(|e| format!("{}: {e}", dest.display()))?;
    Ok(Download {
        size,
        sha256: hasher.finalize().into(),
        streamed: None,
    })
}

/// An `.info` whose `Origin.URL` carries a user or password has them
/// masked (a repository URL may be written with its credentials); any
/// other `.info` is served as the go command wrote it.
fn without_credentials(body: Vec<u8>) -> Vec<u8> {
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return body;
    };
    let url = v
        .get("Origin")
        .and_then(|o| o.get("URL"))
        .and_then(|u| u.as_str())
        .map(str::to_string);
    match url {
        Some(u) if u.contains('@') => {
            let masked = crate::redact::redact(&u);
            if masked == u {
                return body;
            }
            v["Origin"]["URL"] = serde_json::Value::String(masked);
            serde_json::to_vec(&v).unwrap_or(body)
        }
        _ => body,
    }
}

impl Origin for PrivateOrigin {
    fn describe(&self) -> String {
        "its repository, by the go command".to_string()
    }

    fn upstream_name(&self, _i: usize) -> String {
        "the repository".to_string()
    }

    fn get<'a>(
        &'a self,
        module: &'a str,
        version: &'a str,
        file: VersionFile,
        limit: u64,
    ) -> BoxFuture<'a, Result<Vec<u8>, OriginError>> {
        Box::pin(async move {
            match file {
                VersionFile::Info => self.info(module, version, limit).await,
                other => Err(made_err(format!(
                    ".{} is taken into a file, not into memory",
                    other.ext()
                ))),
            }
        })
    }

    fn get_to_file<'a>(
        &'a self,
        module: &'a str,
        version: &'a str,
        file: VersionFile,
        limit: u64,
        dest: &'a Path,
    ) -> BoxFuture<'a, Result<Download, OriginError>> {
        Box::pin(self.file(module, version, file, limit, dest))
    }

    fn list<'a>(
        &'a self,
        module: &'a str,
        limit: u64,
    ) -> BoxFuture<'a, Result<Vec<u8>, OriginError>> {
        Box::pin(self.versions(module, limit))
    }
}

/// The proxy list for every module, and the go command for private ones.
pub struct Routed {
    pub private: Arc<PrivateOrigin>,
    pub public: Arc<dyn Origin>,
}

impl Routed {
    fn pick(&self, module: &str) -> &dyn Origin {
        if self.private.owns(module) {
            &*self.private
        } else {
            &*self.public
        }
    }
}

impl Origin for Routed {
    fn describe(&self) -> String {
        format!(
            "{}; private modules from their repositories",
            self.public.describe()
        )
    }

    fn route(&self, module: &str) -> Option<&dyn Origin> {
        Some(self.pick(module))
    }

    fn upstreams(&self) -> usize {
        self.public.upstreams()
    }

    fn upstream_name(&self, i: usize) -> String {
        self.public.upstream_name(i)
    }

    fn note_refused(&self, i: usize, why: &str) {
        self.public.note_refused(i, why)
    }

    fn get<'a>(
        &'a self,
        module: &'a str,
        version: &'a str,
        file: VersionFile,
        limit: u64,
    ) -> BoxFuture<'a, Result<Vec<u8>, OriginError>> {
        self.pick(module).get(module, version, file, limit)
    }

    fn get_to_file<'a>(
        &'a self,
        module: &'a str,
        version: &'a str,
        file: VersionFile,
        limit: u64,
        dest: &'a Path,
    ) -> BoxFuture<'a, Result<Download, OriginError>> {
        self.pick(module)
            .get_to_file(module, version, file, limit, dest)
    }

    fn list<'a>(
        &'a self,
        module: &'a str,
        limit: u64,
    ) -> BoxFuture<'a, Result<Vec<u8>, OriginError>> {
        self.pick(module).list(module, limit)
    }

    fn get_from<'a>(
        &'a self,
        module: &'a str,
        version: &'a str,
        file: VersionFile,
        limit: u64,
        avoid: Avoid,
    ) -> BoxFuture<'a, Result<Served<Vec<u8>>, OriginError>> {
        self.pick(module)
            .get_from(module, version, file, limit, avoid)
    }

    fn get_to_file_from<'a>(
        &'a self,
        module: &'a str,
        version: &'a str,
        file: VersionFile,
        limit: u64,
        dest: &'a Path,
        avoid: Avoid,
    ) -> BoxFuture<'a, Result<Served<Download>, OriginError>> {
        self.pick(module)
            .get_to_file_from(module, version, file, limit, dest, avoid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_info_with_credentials_in_its_origin_is_masked() {
        let plain = br#"{"Version":"v1.0.0","Origin":{"URL":"https://git.corp.example/x"}}"#;
        assert_eq!(without_credentials(plain.to_vec()), plain.to_vec());
        let secret =
            br#"{"Version":"v1.0.0","Origin":{"URL":"https://bob:hunter2@git.corp.example/x"}}"#;
        let got = String::from_utf8(without_credentials(secret.to_vec())).unwrap();
        assert!(!got.contains("hunter2") && got.contains("v1.0.0"), "{got}");
    }
}
