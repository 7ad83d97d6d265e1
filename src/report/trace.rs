//! The trace file, `<output>/trace/<mirror.name>.json`: what downstream
//! mirrors and monitors read to judge this mirror's freshness, in the
//! tradition of Debian's ftpsync (`project/trace/<mirror name>`). A sync or
//! import that published anything rewrites it last, after every file,
//! `@v/list`, `@latest` and `sumdb/<name>/latest` is in place, so a reader
//! that sees a new trace sees the tree it describes.

use std::sync::Arc;

use serde::Serialize;

use crate::fatal::Fatal;
use crate::report::summary::TreeSummary;
use crate::settings::Settings;
use crate::state::db::Db;
use crate::store::layout::{self, Key};
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
    layout::plain(Key::Trace {
        mirror: mirror_name.to_string(),
    })
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

/// Rewrites `<output>/trace/<mirror.name>.json`, last: everything it
/// describes is in place. Written when this run published something, and
/// also when the trace is missing or describes another state (versions,
/// index cursor, checksum tree: a prune, a cursor that moved, a run killed
/// after publishing and before its trace), so it never lags the tree.
/// Returns what the tree holds.
pub async fn write_trace(
    settings: &Settings,
    db: &Db,
    tree: &Arc<dyn Store>,
    published: u64,
) -> Result<TreeSummary, Fatal> {
    let (own, following) = (settings.upstream_name(), settings.follow.is_some());
    let (cursor, counts, head, chain) = db
        .call(move |s| {
            Ok((
                s.cursor()?,
                s.tree_counts()?,
                s.trusted_head()?,
                s.upstream_chain(own, following)?,
            ))
        })
        .await?;
    let trace = Trace {
        mirror: settings.mirror_name.clone(),
        gomirror_version: env!("CARGO_PKG_VERSION"),
        finished: crate::clock::rfc3339(crate::clock::now()),
        index_cursor: settings
            .index
            .as_ref()
            .and(cursor.as_deref())
            .and_then(rfc3339_utc),
        versions: counts.0,
        published,
        sumdb_tree_size: head.map(|h| h.size),
        upstream_chain: chain,
    };
    if published == 0 {
        // Nothing new: rewritten only if it does not describe this tree.
        let key = key(&settings.mirror_name);
        let current = tree
            .read(&key, 1 << 20)
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        let described = |t: &serde_json::Value| {
            ["versions", "index_cursor", "sumdb_tree_size"].map(|k| t.get(k).cloned())
        };
        let wanted = serde_json::to_value(&trace).expect("serializable");
        if current.is_some_and(|c| described(&c) == described(&wanted)) {
            return Ok(tree_summary(tree, counts));
        }
    }
    let t = tree.clone();
    tokio::task::spawn_blocking(move || write(t.as_ref(), &trace))
        .await
        .map_err(|e| Fatal::crashed("the trace writer", e))?
        .map_err(Fatal::from)?;
    Ok(tree_summary(tree, counts))
}

fn tree_summary(tree: &Arc<dyn Store>, (versions, bytes): (i64, i64)) -> TreeSummary {
    TreeSummary {
        store: tree.describe(),
        versions,
        bytes: bytes.max(0) as u64,
    }
}
