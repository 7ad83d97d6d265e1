//! The change feed's format (`docs/feed.md`), shared by the writer
//! (`publish::feed`) and the follower (`source::feed`): the files under
//! `<output>/feed/` and what each line holds.

use serde::{Deserialize, Serialize};

use crate::store::layout::{self, FeedFile, Key};

/// The feed's directory in the tree: no module path can start with it (a
/// module path's first element has a dot).
pub const DIR: &str = layout::FEED_DIR;
/// The format `feed/latest` names; a follower refuses another.
pub const FORMAT: &str = "gomirror-feed/1";

/// `feed/latest`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Latest {
    pub format: String,
    /// This feed's identity (random, fixed when it was created).
    pub id: String,
    /// The sequence number the next entry will get: entries `first..next` exist.
    pub next: u64,
    /// The oldest entry still in the tree.
    pub first: u64,
    /// Entries per segment: segment `k` holds `k*segment_entries ..`.
    pub segment_entries: u64,
    /// The snapshot that replaces the compacted entries below `first`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<Snapshot>,
    /// Where this mirror's versions come from, nearest first (the upstream
    /// chain; a follower prepends its own upstream).
    #[serde(default)]
    pub chain: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// The state after entries `..seq`.
    pub seq: u64,
    /// Its key under `feed/`.
    pub file: String,
}

/// One line of a segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    pub seq: u64,
    pub time: String,
    pub op: String,
    pub path: String,
    pub version: String,
}

/// One line of a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotLine {
    pub path: String,
    pub version: String,
}

/// `feed/latest` (names are made by [`crate::store::layout`]).
pub fn latest_key() -> String {
    layout::plain(Key::Feed(FeedFile::Latest))
}

/// `feed/tail.jsonl`.
pub fn tail_key() -> String {
    layout::plain(Key::Feed(FeedFile::Tail))
}

/// `feed/<k>.jsonl`: complete segment `k`.
pub fn segment_key(k: u64) -> String {
    layout::plain(Key::Feed(FeedFile::Segment(k)))
}

/// `feed/snapshot/<seq>.jsonl`.
pub fn snapshot_key(seq: u64) -> String {
    layout::plain(Key::Feed(FeedFile::Snapshot(seq)))
}

/// The snapshot's name as `feed/latest` gives it: its key under `feed/`.
pub fn snapshot_name(seq: u64) -> String {
    snapshot_key(seq)
        .strip_prefix("feed/")
        .expect("a feed key")
        .to_string()
}
