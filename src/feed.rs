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
/// The most entries a feed can announce (far past any real one): the
/// arithmetic on sequence numbers never comes near overflowing.
pub const MAX_NEXT: u64 = 1 << 48;
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
        if self.next > MAX_NEXT {
            return Err(format!("next is {}, more than {MAX_NEXT}", self.next));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn latest() -> Latest {
        Latest {
            format: FORMAT.into(),
            id: "6c1f0e3a9b0d4e77a1c2f3e4d5b6a798".into(),
            next: 1204,
            first: 1000,
            segment_entries: 1000,
            snapshot: Some(Snapshot {
                seq: 1180,
                file: snapshot_name(1180),
            }),
            chain: vec!["https://mirror.example/".into()],
        }
    }

    #[test]
    fn a_head_in_its_documented_form_passes() {
        assert_eq!(latest().check(), Ok(()));
    }

    #[test]
    fn every_field_outside_its_form_is_refused() {
        let refused = |edit: &dyn Fn(&mut Latest), needle: &str| {
            let mut l = latest();
            edit(&mut l);
            let e = l.check().unwrap_err();
            assert!(e.contains(needle), "{e}");
            assert!(!e.chars().any(char::is_control), "{e:?}");
        };
        refused(
            &|l| l.id = "\u{1b}[31merror: x".into(),
            "is not 32 lowercase hex digits",
        );
        refused(&|l| l.id = "6C1F0E3A9B0D4E77A1C2F3E4D5B6A798".into(), "hex");
        refused(&|l| l.segment_entries = 0, "segment_entries is 0");
        refused(
            &|l| l.segment_entries = 1 << 40,
            "not between 1 and 1000000",
        );
        refused(&|l| l.next = u64::MAX, "more than");
        refused(&|l| l.first = l.next + 1, "first is past next");
        for bad in [
            "snapshot/%2e%2e/%2e%2e/secret.jsonl",
            "snapshot/../../secret.jsonl",
            "snapshot/000000001180.jsonl?x",
            "snapshot/1180.jsonl",
        ] {
            refused(
                &|l| l.snapshot.as_mut().unwrap().file = bad.into(),
                "is not \"snapshot/000000001180.jsonl\"",
            );
        }
        refused(
            &|l| l.chain = vec!["a\u{202e}b".into()],
            "not an upstream's name",
        );
        refused(
            &|l| l.chain = vec!["x".repeat(MAX_CHAIN_ENTRY + 1)],
            "not an upstream's name",
        );
        refused(
            &|l| l.chain = vec!["u".into(); MAX_CHAIN + 1],
            "more than 32",
        );
        refused(&|l| l.format = "gomirror-feed/2".into(), "feed format");
    }
}
