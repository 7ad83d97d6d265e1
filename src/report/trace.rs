//! The trace file, `<output>/trace/<mirror.name>.json`: what downstream
//! mirrors and monitors read to judge this mirror's freshness, in the
//! tradition of Debian's ftpsync (`project/trace/<mirror name>`). A sync or
//! import that published anything rewrites it last, after every file,
//! `@v/list`, `@latest` and `sumdb/<name>/latest` is in place, so a reader
//! that sees a new trace sees the tree it describes.

use serde::Serialize;

use crate::store::{Store, StoreError};

/// The trace file's content (the fields are a contract: design.md, "Operations").
#[derive(Clone, Debug, Serialize)]
pub struct Trace {
    /// `mirror.name`.
    pub mirror: String,
    pub gomirror_version: &'static str,
    /// When the run that wrote it finished publishing (RFC 3339).
    pub finished: String,
    /// The index cursor (RFC 3339); `null` without an index feed.
    pub index_cursor: Option<String>,
    /// Versions in the tree (as `gomirror_versions{state="published"}`).
    pub versions: i64,
    /// Versions this run published.
    pub published: u64,
    /// Records in the checksum-database tree this mirror serves proofs for.
    pub sumdb_tree_size: Option<i64>,
    /// Where this mirror's content came from, nearest first: its proxy list,
    /// or the mirror it follows and that one's chain (as ftpsync's traces
    /// name the upstream).
    pub upstream_chain: Vec<String>,
}

/// `trace/<name>.json`.
pub fn key(mirror_name: &str) -> String {
    format!("trace/{mirror_name}.json")
}

/// The cursor as RFC 3339 in UTC (`None` if it is not a time).
pub fn rfc3339_utc(cursor: &str) -> Option<String> {
    cursor
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.to_string())
}

/// Writes the trace file atomically through the store.
pub fn write(tree: &dyn Store, trace: &Trace) -> Result<(), StoreError> {
    let mut text = serde_json::to_string_pretty(trace).expect("serializable");
    text.push('\n');
    tree.write_if_changed(&key(&trace.mirror), text.as_bytes())?;
    Ok(())
}
