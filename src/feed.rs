//! The change feed's format (`docs/feed.md`), shared by the writer
//! (`publish::feed`) and the follower (`source::feed`): the files under
//! `<output>/feed/` and what each line holds.

use serde::{Deserialize, Serialize};

/// The feed's directory in the tree: no module path can start with it (a
/// module path's first element has a dot).
pub const DIR: &str = "feed";
/// The format `feed/latest` names; a follower refuses another.
pub const FORMAT: &str = "gomirror-feed/1";

// What a reader allows, derived from what a writer can write
// (`docs/feed.md`, "Limits"); a file past any of these is damaged.

/// `feed/latest` is a few hundred bytes; its chain is bounded below.
pub const LATEST_BYTES: u64 = 64 << 10;
/// The largest `segment_entries` (`feed.segment_entries` is checked
/// against the same bound).
pub const MAX_SEGMENT_ENTRIES: u64 = 1_000_000;
/// The longest line of a segment or a snapshot: a module path that fits a
/// file system path (4096 bytes) and a version that fits a file name (255),
/// JSON-escaped, and the other fields.
pub const MAX_LINE: usize = 16 << 10;
/// The most upstreams a chain names, and the longest name of one.
pub const MAX_CHAIN: usize = 32;
pub const MAX_CHAIN_ENTRY: usize = 2048;

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

pub fn latest_key() -> String {
    format!("{DIR}/latest")
}

pub fn tail_key() -> String {
    format!("{DIR}/tail.jsonl")
}

pub fn segment_key(k: u64) -> String {
    format!("{DIR}/{}", segment_name(k))
}

pub fn segment_name(k: u64) -> String {
    format!("{k:012}.jsonl")
}

pub fn snapshot_name(seq: u64) -> String {
    format!("snapshot/{seq:012}.jsonl")
}

/// Whether `id` has the form a feed id has: 32 lowercase hex digits.
pub fn is_feed_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Latest {
    /// Refuses a head no writer of this format writes: every field is in
    /// its documented form and range (the id, the segment size, the
    /// snapshot's exact file name, the chain), so nothing here can later
    /// name a file outside `feed/`, be stored raw, or size a read.
    pub fn check(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!(
                "feed format {}, this gomirror reads {FORMAT:?}",
                crate::shown::quoted(&self.format)
            ));
        }
        if !is_feed_id(&self.id) {
            return Err(format!(
                "feed id {} is not 32 lowercase hex digits",
                crate::shown::quoted(&self.id)
            ));
        }
        if self.segment_entries == 0 || self.segment_entries > MAX_SEGMENT_ENTRIES {
            return Err(format!(
                "segment_entries is {}, not between 1 and {MAX_SEGMENT_ENTRIES}",
                self.segment_entries
            ));
        }
        if self.first > self.next {
            return Err("first is past next".into());
        }
        if let Some(s) = &self.snapshot {
            if s.seq < self.first || s.seq > self.next {
                return Err("the snapshot is outside the feed".into());
            }
            // The exact name the writer gives it: nothing that could leave
            // `feed/` once a URL is made of it (`snapshot/%2e%2e/…`).
            if s.file != snapshot_name(s.seq) {
                return Err(format!(
                    "snapshot file {} is not {:?}",
                    crate::shown::quoted(&s.file),
                    snapshot_name(s.seq)
                ));
            }
        }
        if self.chain.len() > MAX_CHAIN {
            return Err(format!(
                "its chain names {} upstreams, more than {MAX_CHAIN}",
                self.chain.len()
            ));
        }
        for c in &self.chain {
            if c.is_empty() || c.len() > MAX_CHAIN_ENTRY || !crate::shown::is_plain(c) {
                return Err(format!(
                    "its chain names {}: not an upstream's name (1 to {MAX_CHAIN_ENTRY} bytes of visible text)",
                    crate::shown::quoted(c)
                ));
            }
        }
        Ok(())
    }
}
