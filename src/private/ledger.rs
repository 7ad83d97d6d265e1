//! The ledger as a check: a version no checksum database vouches for (a
//! private module, a `sumdb.skip` module) must have the content this mirror
//! first saw for it; the first time, that content is recorded. The records
//! are `state::private`'s; this is where a difference becomes a `SECURITY`
//! refusal that names the version and both contents.

use crate::check::{Verified, VersionError};
use crate::state::db::Db;
use crate::state::{LedgerCheck, LedgerEntry};

/// Passes `v` (fetched from `source`) through the ledger: recorded the
/// first time, compared every later time; another content is refused as a
/// security failure and the version is not published (what is in the tree
/// stays).
pub async fn gate(db: &Db, v: Verified, source: &str) -> Result<Verified, VersionError> {
    let (path, version, mod_h1) = (
        v.todo.path.clone(),
        v.todo.version.clone(),
        v.mod_h1.clone(),
    );
    let zip_h1 = v.zip.as_ref().map(|_| v.zip_h1.clone());
    match compare(db, &path, &version, &mod_h1, zip_h1.as_deref(), source).await {
        Ok(None) => Ok(v),
        Ok(Some(message)) => Err(VersionError::Failed {
            message,
            security: true,
        }),
        Err(e) => Err(VersionError::Failed {
            message: format!("cannot check the ledger: {e}"),
            security: false,
        }),
    }
}

/// Compares a content of `path@version` with the ledger (recording it the
/// first time): `None` when it agrees, else the refusal's message.
pub async fn compare(
    db: &Db,
    path: &str,
    version: &str,
    mod_h1: &str,
    zip_h1: Option<&str>,
    source: &str,
) -> Result<Option<String>, crate::state::StateError> {
    let (p, v, m, z, s) = (
        path.to_string(),
        version.to_string(),
        mod_h1.to_string(),
        zip_h1.map(str::to_string),
        source.to_string(),
    );
    let now = crate::clock::now();
    let found = db
        .call(move |st| st.ledger_check(&p, &v, &m, z.as_deref(), &s, now))
        .await?;
    Ok(match found {
        LedgerCheck::First | LedgerCheck::Same => None,
        LedgerCheck::Differs(first) => Some(refusal(&first, mod_h1, zip_h1)),
    })
}

/// Why another content of a version is refused: what differs, what the
/// ledger holds and since when, and what to do.
pub fn refusal(first: &LedgerEntry, mod_h1: &str, zip_h1: Option<&str>) -> String {
    let mut differs = Vec::new();
    if let (Some(was), Some(now)) = (&first.zip_h1, zip_h1)
        && was != now
    {
        differs.push(format!("its zip is {now}, the ledger holds {was}"));
    }
    if first.mod_h1 != mod_h1 {
        differs.push(format!(
            "its go.mod is {mod_h1}, the ledger holds {}",
            first.mod_h1
        ));
    }
    format!(
        "content changed since this mirror first made it ({}, from {}): {}; a moved tag or a rewritten history? The first content stays served; publish the change as a new version",
        crate::clock::rfc3339(first.first_at),
        crate::shown::text(&first.source),
        differs.join(", ")
    )
}
