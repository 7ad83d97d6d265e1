//! Check: every per-version verification, in one place. A version is
//! accepted only when its `.info` names it, its zip follows the module zip
//! rules, both `h1:` hashes equal the checksum database's (proven) record,
//! and what the project files (`from_files` go.sum lines) pin for it agrees.
//! [`crate::fetch`] fetches the files and hands them here; a refusal says
//! which upstream served the offending file, so the fetcher can ask another.

use std::path::{Path, PathBuf};

use crate::gomod::{dirhash, zip as modzip};
use crate::http::list::Served;
use crate::http::{Download, FetchError};
use crate::model::Todo;
use crate::state::PinnedHash;
use crate::trust::client::{Lookup, SumdbError};

/// A version whose files are verified and waiting in temporary files.
pub struct Verified {
    pub todo: Todo,
    pub info: PathBuf,
    pub info_time: Option<String>,
    pub mod_file: PathBuf,
    /// `None` for a graph-only version (`.info` and `.mod` only).
    pub zip: Option<PathBuf>,
    pub mod_h1: String,
    /// The zip's `h1:`; for a graph-only version the checksum database's
    /// (empty when it was not asked).
    pub zip_h1: String,
    pub mod_sha256: [u8; 32],
    pub zip_sha256: Option<[u8; 32]>,
    pub info_sha256: [u8; 32],
    pub lookup: Option<Lookup>,
}

/// How one version failed.
pub enum VersionError {
    /// The upstream answered 404/410: not there yet, or gone after the grace period.
    NotFound(String),
    /// Retry later.
    Failed { message: String, security: bool },
    /// Stop the run: the checksum database cannot be trusted.
    Fatal(SumdbError),
}

impl From<SumdbError> for VersionError {
    fn from(e: SumdbError) -> Self {
        if e.is_fatal() {
            VersionError::Fatal(e)
        } else {
            VersionError::Failed {
                message: e.to_string(),
                security: false,
            }
        }
    }
}

pub fn fetch_err(what: &str, e: FetchError) -> VersionError {
    let is_not_found = e.is_not_found();
    // The caller names the module@version; the URL would say it again.
    let e = e.from_host();
    if is_not_found {
        VersionError::NotFound(format!("{what} {e}"))
    } else {
        VersionError::Failed {
            message: format!("{what} {e}"),
            security: false,
        }
    }
}

pub fn failed(message: String) -> VersionError {
    VersionError::Failed {
        message,
        security: false,
    }
}

/// `.info` files are a few dozen bytes.
pub const INFO_LIMIT: u64 = 64 << 10;

/// Checks an `.info` body: a JSON object whose `Version` is exactly the
/// requested version (as the go command requires) and whose `Time`, if
/// present, is RFC 3339. Returns the time.
pub fn check_info(body: &[u8], version: &str) -> Result<Option<String>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let obj = value.as_object().ok_or("not a JSON object")?;
    match obj.get("Version").and_then(|v| v.as_str()) {
        Some(got) if got == version => {}
        Some(got) => return Err(format!("it describes version {got:?}, not {version:?}")),
        None => return Err("no Version field".into()),
    }
    match obj.get("Time") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(t)) if crate::clock::is_rfc3339(t) => Ok(Some(t.clone())),
        Some(t) => Err(format!("invalid Time {t}")),
    }
}

/// The files of one version as one upstream (or several, file by file)
/// served them.
pub struct Fetched {
    pub info: Served<Vec<u8>>,
    pub gomod: Served<Download>,
    /// `None` for a graph-only version (`.info` and `.mod` only).
    pub zip: Option<Served<Download>>,
}

/// Why a version's files were not accepted.
pub enum Refusal {
    /// Upstream `by` served a body that fails verification: another
    /// upstream may serve the right one. `security`: the checksum database
    /// refutes it (a lying upstream), not merely a malformed body.
    From {
        by: usize,
        error: VersionError,
        security: bool,
    },
    Other(VersionError),
}

impl From<VersionError> for Refusal {
    fn from(e: VersionError) -> Refusal {
        Refusal::Other(e)
    }
}

/// What the checks of one version found.
pub struct Checked {
    pub info_time: Option<String>,
    pub mod_h1: String,
    /// `None` for a graph-only version.
    pub zip_h1: Option<String>,
}

/// Checks the fetched files of `m@v` against Go's rules, the checksum
/// database's record (`lookup`, from the database named `db`; `None` for a
/// module in `sumdb.skip`) and what project files pin (`pins`), and writes
/// the checked `.info` to `info_path`; the zip was streamed to `zip_path`. A
/// refusal names the upstream that served the offending file.
#[allow(clippy::too_many_arguments)]
pub async fn check_version(
    m: &str,
    v: &str,
    lookup: Option<&Lookup>,
    db: &str,
    fetched: &Fetched,
    info_path: &Path,
    zip_path: &Path,
    pins: &[PinnedHash],
) -> Result<Checked, Refusal> {
    let info_time = check_info(&fetched.info.value, v).map_err(|msg| Refusal::From {
        by: fetched.info.by,
        error: failed(format!("invalid .info: {msg}")),
        security: false,
    })?;
    tokio::fs::write(info_path, &fetched.info.value)
        .await
        .map_err(|e| failed(format!("cannot write temporary file: {e}")))?;

    let mod_h1 = dirhash::go_mod_hash(fetched.gomod.value.sha256);
    let zip_h1 = match &fetched.zip {
        Some(zip) => {
            let zip_path = zip_path.to_path_buf();
            let (mm, vv) = (m.to_string(), v.to_string());
            let streamed = zip.value.streamed.clone();
            let summary = tokio::task::spawn_blocking(move || {
                modzip::check_and_hash_downloaded_zip(&zip_path, &mm, &vv, streamed.as_deref())
            })
            .await
            .map_err(|e| failed(format!("zip check crashed: {e}")))?
            .map_err(|e| Refusal::From {
                by: zip.by,
                error: failed(format!("invalid module zip: {e}")),
                security: false,
            })?;
            Some((summary.h1, zip.by))
        }
        None => None,
    };

    if let Some(l) = lookup {
        if mod_h1 != l.mod_h1 {
            return Err(Refusal::From {
                by: fetched.gomod.by,
                error: VersionError::Failed {
                    message: format!(
                        "go.mod checksum mismatch: the upstream's .mod has {mod_h1}, {db} says {}; refusing it",
                        l.mod_h1
                    ),
                    security: true,
                },
                security: true,
            });
        }
        if let Some((h1, by)) = &zip_h1
            && *h1 != l.zip_h1
        {
            return Err(Refusal::From {
                by: *by,
                error: VersionError::Failed {
                    message: format!(
                        "zip checksum mismatch: the upstream's .zip has {h1}, {db} says {}; refusing it",
                        l.zip_h1
                    ),
                    security: true,
                },
                security: true,
            });
        }
    }
    // What the project files pin: the go command would refuse a mismatch as
    // a SECURITY ERROR, so the mirror refuses the version and names the line.
    for pin in pins {
        let (what, got) = if pin.zip {
            match &zip_h1 {
                Some((h1, _)) => ("zip", h1.as_str()),
                // Graph-only here although the file gives the zip's hash:
                // another rule took the zip away; nothing to compare.
                None => continue,
            }
        } else {
            ("go.mod", mod_h1.as_str())
        };
        if pin.h1 != got {
            let vouched = if lookup.is_some() {
                format!(", as {db} says")
            } else {
                String::new()
            };
            return Err(Refusal::Other(VersionError::Failed {
                message: format!(
                    "{}:{} says {} for the {what}, but it is {got}{vouched}; refusing it (fix or regenerate that go.sum)",
                    pin.file, pin.line, pin.h1
                ),
                security: true,
            }));
        }
    }
    Ok(Checked {
        info_time,
        mod_h1,
        zip_h1: zip_h1.map(|(h1, _)| h1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_must_name_the_requested_version() {
        assert_eq!(
            check_info(
                br#"{"Version":"v1.0.0","Time":"2020-01-02T17:33:45Z"}"#,
                "v1.0.0"
            )
            .unwrap(),
            Some("2020-01-02T17:33:45Z".into())
        );
        assert_eq!(
            check_info(br#"{"Version":"v1.0.0","Name":"abc","Extra":{}}"#, "v1.0.0").unwrap(),
            None
        );
        assert!(
            check_info(br#"{"Version":"v1.0.1"}"#, "v1.0.0")
                .unwrap_err()
                .contains("v1.0.1")
        );
        assert!(check_info(br#"{"Time":"2020-01-02T17:33:45Z"}"#, "v1.0.0").is_err());
        assert!(check_info(br#"{"Version":"v1.0.0","Time":"later"}"#, "v1.0.0").is_err());
        assert!(check_info(b"<html>", "v1.0.0").is_err());
        assert!(check_info(b"[1]", "v1.0.0").is_err());
    }
}
