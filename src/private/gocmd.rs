//! The go command, run for private modules: found on the `PATH`
//! ([`crate::env::go_command`]), checked once for its version, and run
//! bounded — at most `private.jobs` at once, each killed with everything it
//! started (git, ssh) past `private.timeout`, its output read up to a cap
//! and killed beyond it, with an environment that makes it the reference
//! implementation of "a repository becomes a module" and nothing else:
//!
//! - `GOPROXY=direct`, `GOPRIVATE`/`GONOSUMDB` = `private.modules`: straight
//!   from the repository, no proxy, no checksum database;
//! - `GOFLAGS=-mod=mod -modcacherw`: no vendor directory or go.mod of a
//!   working directory is consulted, and the module cache can be cleaned;
//! - `GOTOOLCHAIN=local`: the installed go makes the zips, never a toolchain
//!   a repository's go.mod names (that would download and run other code);
//! - `GOMODCACHE`, `GOPATH`, `GOCACHE` beside the state database
//!   (`private.dir`): the mirror's own module cache, not the operator's;
//! - `GIT_TERMINAL_PROMPT=0`: a missing credential fails, never waits.
//!
//! Credentials stay git's own (credential helpers, ssh keys, netrc,
//! `url.<base>.insteadOf`): gomirror passes the environment through and
//! never reads them. What the go command prints is scrubbed of URL
//! credentials ([`crate::redact::scrub_urls`]) and shown escaped before it
//! becomes a message.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::AsyncReadExt;

use crate::settings::PrivateSettings;

/// The oldest go that makes private modules: `GOTOOLCHAIN=local` exists
/// from go1.21 on, and an older go ignores it, so a repository's go.mod
/// could make it download and run another toolchain.
pub const MIN_GO: (u64, u64) = (1, 21);

/// What one go command may print on stdout (a module's version list is
/// the largest: tens of bytes a version).
pub const STDOUT_LIMIT: u64 = 4 << 20;
/// What it may print on stderr (git's errors; progress is off).
pub const STDERR_LIMIT: u64 = 256 << 10;

/// Why the go command did not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum GoError {
    #[error(
        "[private] modules are configured, but no go command is on the PATH: install go{}.{} or newer (private modules are made by the go command from their repositories)",
        MIN_GO.0,
        MIN_GO.1
    )]
    Missing,
    #[error(
        "the go command `{path}` is {found}, too old for [private] modules: they need go{}.{} or newer (GOTOOLCHAIN=local, which keeps a repository's go.mod from making the go command download and run another toolchain, exists from go1.21 on)",
        MIN_GO.0,
        MIN_GO.1
    )]
    TooOld { path: String, found: String },
    #[error("cannot run the go command `{path}`: {source}")]
    Spawn {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`go {args}` did not finish within private.timeout ({limit}); killed")]
    Timeout { args: String, limit: String },
    #[error("`go {args}` printed more than {limit} bytes on {stream}; killed")]
    TooMuch {
        args: String,
        stream: &'static str,
        limit: u64,
    },
    /// The go command's own failure, scrubbed and escaped.
    #[error("{message}")]
    Failed { message: String, not_found: bool },
}

impl GoError {
    /// The repository answered and does not have it (an unknown tag).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            GoError::Failed {
                not_found: true,
                ..
            }
        )
    }
}

/// What a go command printed, when it ran to its end.
pub struct GoOutput {
    pub success: bool,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// The go command, bounded, for private modules.
pub struct GoCommand {
    settings: PrivateSettings,
    slots: tokio::sync::Semaphore,
    /// The go command found and its version, checked on first use.
    checked: tokio::sync::OnceCell<Result<PathBuf, String>>,
}

impl GoCommand {
    pub fn new(settings: &PrivateSettings) -> GoCommand {
        GoCommand {
            slots: tokio::sync::Semaphore::new(settings.jobs),
            settings: settings.clone(),
            checked: tokio::sync::OnceCell::new(),
        }
    }

    /// The mirror's own module cache.
    pub fn modcache(&self) -> PathBuf {
        self.settings.dir.join("modcache")
    }

    /// Where made versions wait to be taken.
    pub fn made_dir(&self) -> PathBuf {
        self.settings.dir.join("made")
    }

    fn work_dir(&self) -> PathBuf {
        self.settings.dir.join("work")
    }

    /// The go command, found and new enough (checked once; the error is
    /// the same every time after).
    pub async fn require(&self) -> Result<PathBuf, GoError> {
        let found = self
            .checked
            .get_or_init(|| async { self.find_and_check().await.map_err(|e| e.to_string()) })
            .await;
        found.clone().map_err(|message| GoError::Failed {
            message,
            not_found: false,
        })
    }

    async fn find_and_check(&self) -> Result<PathBuf, GoError> {
        let go = crate::env::go_command().ok_or(GoError::Missing)?;
        let dir = self.work_dir();
        let d = dir.clone();
        tokio::task::spawn_blocking(move || std::fs::create_dir_all(&d))
            .await
            .map_err(|e| GoError::Spawn {
                path: dir.display().to_string(),
                source: std::io::Error::other(e.to_string()),
            })?
            .map_err(|source| GoError::Spawn {
                path: dir.display().to_string(),
                source,
            })?;
        let out = self.run_at(&go, &["env", "GOVERSION"]).await?;
        let found = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.success || !new_enough(&found) {
            return Err(GoError::TooOld {
                path: go.display().to_string(),
                found: if found.is_empty() {
                    "of an unknown version (`go env GOVERSION` printed nothing)".into()
                } else {
                    crate::shown::text(&found)
                },
            });
        }
        Ok(go)
    }

    /// Runs `go args…` (after [`GoCommand::require`]), at most
    /// `private.jobs` at once.
    pub async fn run(&self, args: &[&str]) -> Result<GoOutput, GoError> {
        let go = self.require().await?;
        let _slot = self.slots.acquire().await.expect("never closed");
        self.run_at(&go, args).await
    }

    async fn run_at(&self, go: &Path, args: &[&str]) -> Result<GoOutput, GoError> {
        let shown_args = args.join(" ");
        let dir = &self.settings.dir;
        let mut cmd = tokio::process::Command::new(go);
        cmd.args(args)
            .current_dir(self.work_dir())
            .env("GOPROXY", "direct")
            .env("GOPRIVATE", &self.settings.modules)
            .env("GONOSUMDB", &self.settings.modules)
            .env("GOFLAGS", "-mod=mod -modcacherw")
            .env("GOTOOLCHAIN", "local")
            .env("GO111MODULE", "on")
            .env("GOWORK", "off")
            .env("GOMODCACHE", self.modcache())
            .env("GOPATH", dir.join("gopath"))
            .env("GOCACHE", dir.join("gocache"))
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GCM_INTERACTIVE", "never")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: a timeout kills git and ssh with it.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|source| GoError::Spawn {
            path: go.display().to_string(),
            source,
        })?;
        let mut group = KillGroup(child.id());
        let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take())
        else {
            unreachable!("both piped")
        };
        let too_much = |stream, limit| GoError::TooMuch {
            args: shown_args.clone(),
            stream,
            limit,
        };
        let work = async {
            let (out, err) = tokio::join!(
                read_capped(&mut stdout, STDOUT_LIMIT),
                read_capped(&mut stderr, STDERR_LIMIT)
            );
            let out = out.ok_or_else(|| too_much("stdout", STDOUT_LIMIT))?;
            let err = err.ok_or_else(|| too_much("stderr", STDERR_LIMIT))?;
            let status = child.wait().await.map_err(|source| GoError::Spawn {
                path: go.display().to_string(),
                source,
            })?;
            Ok::<_, GoError>(GoOutput {
                success: status.success(),
                stdout: out,
                stderr: String::from_utf8_lossy(&err).into_owned(),
            })
        };
        let result = match tokio::time::timeout(self.settings.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(GoError::Timeout {
                args: shown_args.clone(),
                limit: humantime::format_duration(self.settings.timeout).to_string(),
            }),
        };
        if result.is_ok() {
            // It exited and was reaped: its group id may be reused now.
            group.0 = None;
        }
        drop(group);
        result
    }
}

/// Kills a process group when dropped (a timeout, a cap, a stop signal
/// that drops the future): go and every git and ssh it started.
struct KillGroup(Option<u32>);

impl KillGroup {
    fn kill(&self) {
        if let Some(pid) = self.0
            && let Ok(pid) = i32::try_from(pid)
        {
            // SAFETY: killpg only sends a signal; the group is the one the
            // child leads (process_group(0)).
            unsafe {
                libc::killpg(pid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for KillGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Everything `r` gives until its end, or `None` past `limit` bytes.
async fn read_capped<R: tokio::io::AsyncRead + Unpin>(r: &mut R, limit: u64) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return Some(buf),
            Ok(n) => {
                if buf.len() as u64 + n as u64 > limit {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

/// Whether `go env GOVERSION`'s answer is at least [`MIN_GO`]: `go1.21`,
/// `go1.22.3`, `go1.23rc1`; a development build (`devel …`) is taken as new.
pub fn new_enough(version: &str) -> bool {
    if version.starts_with("devel") {
        return true;
    }
    let Some(rest) = version.strip_prefix("go") else {
        return false;
    };
    let mut parts = rest.split(|c: char| !c.is_ascii_digit());
    let major = parts.next().and_then(|p| p.parse::<u64>().ok());
    let minor = parts
        .next()
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(0);
    match major {
        Some(major) => (major, minor) >= MIN_GO,
        None => false,
    }
}

/// The go command's failure as a message: its JSON `Error` when it gave
/// one, else the end of what it printed on stderr; URL credentials masked,
/// control characters escaped, cut to a few lines.
pub fn failure(json_error: Option<&str>, stderr: &str, not_found: bool) -> GoError {
    let text = match json_error {
        Some(e) if !e.trim().is_empty() => e.to_string(),
        _ => {
            let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            let tail = &lines[lines.len().saturating_sub(6)..];
            if tail.is_empty() {
                "the go command failed and said nothing".to_string()
            } else {
                tail.join("\n")
            }
        }
    };
    GoError::Failed {
        message: crate::shown::lines(&crate::redact::scrub_urls(&text), 6),
        not_found,
    }
}

/// Whether the go command's error says the repository has no such version
/// (as opposed to failing to reach it, or to authenticate).
pub fn says_not_found(text: &str) -> bool {
    text.contains("unknown revision")
        || text.contains("invalid version:")
        || text.contains("no matching versions")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_versions_below_the_minimum_are_too_old() {
        for ok in [
            "go1.21",
            "go1.21.0",
            "go1.22.3",
            "go1.26rc1",
            "go2.0",
            "devel go1.27-abc",
        ] {
            assert!(new_enough(ok), "{ok}");
        }
        for old in ["go1.20.14", "go1.9", "go1", "", "gccgo", "1.22"] {
            assert!(!new_enough(old), "{old}");
        }
    }

    #[test]
    fn failures_are_scrubbed_and_classified() {
        let e = failure(
            None,
            "go: downloading x\nfatal: unable to access 'https://bob:hunter2@git.corp.example/x.git/': 403\n",
            false,
        );
        let m = e.to_string();
        assert!(!m.contains("hunter2"), "{m}");
        assert!(m.contains("403"), "{m}");
        assert!(says_not_found(
            "git.corp.example/x.git@v9.0.0: invalid version: unknown revision v9.0.0"
        ));
        assert!(!says_not_found("fatal: Authentication failed"));
    }
}
