//! Following another gomirror: `upstream.index = "mirror+https://up.example/"`
//! reads that tree's change feed (`<base>/feed/`, format in `docs/feed.md`)
//! from this mirror's position on.
//!
//! A sync asks for `feed/latest` (one request when nothing changed), then
//! only the segments that hold entries past its position: the open one is
//! `feed/tail.jsonl`, complete ones `feed/<k>.jsonl`. Each segment's entries
//! are recorded, and the position moved, in one transaction. Published
//! versions are then fetched from the tree (`upstream.proxy`) and verified
//! against the checksum database as from any origin; deleted ones are marked
//! gone, so prune removes them under `prune.max_delete`.
//!
//! Nothing in a feed is trusted beyond naming versions: a damaged or
//! inconsistent file (bad JSON, a sequence gap, an invalid module path) stops
//! the run before anything is fetched, naming the file and line, and the
//! position does not move past it. A first follow, a follower whose position
//! was compacted away, and one whose upstream is a different feed (another
//! `id`) compare in full: the upstream's snapshot, or its whole feed replayed,
//! against this mirror's state; what the upstream lacks is withdrawn.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

use reqwest::Url;

use crate::feed::{DIR, FORMAT, Latest, Line, SnapshotLine, latest_key, segment_key, tail_key};
use crate::gomod;
use crate::http::{self, Upstream};
use crate::source::{Discovery, Event, Intake, LocalBoxFuture, SourceError};
use crate::state::{FeedOp, FollowCursor, IndexEntry};

/// `feed/latest` is small; a segment holds at most 1,000,000 entries of
/// bounded size.
const LATEST_LIMIT: u64 = 1 << 20;
const SEGMENT_LIMIT: u64 = 1 << 30;
/// A snapshot names every version of the upstream (a few hundred bytes each).
const SNAPSHOT_LIMIT: u64 = 64 << 30;
/// Snapshot versions recorded per call to the state thread.
const SNAPSHOT_PAGE: usize = 2000;

pub struct MirrorFeed {
    upstream: Arc<Upstream>,
    base: Url,
    /// Where a snapshot is streamed to before it is read line by line (the
    /// state database's directory: local, and never served).
    scratch: PathBuf,
}

impl MirrorFeed {
    pub fn new(upstream: Arc<Upstream>, base: Url, scratch: PathBuf) -> MirrorFeed {
        MirrorFeed {
            upstream,
            base,
            scratch,
        }
    }

    fn url(&self, key: &str) -> Url {
        http::join(&self.base, key)
    }

    fn name(&self, key: &str) -> String {
        crate::redact::redact_url(&self.url(key))
    }

    async fn get(&self, key: &str, limit: u64) -> Result<Vec<u8>, SourceError> {
        let url = self.url(key);
        self.upstream
            .get_bytes(&url, limit)
            .await
            .map_err(|e| SourceError::Feed(format!("cannot read the upstream mirror's feed: {e}")))
    }

    async fn latest(&self) -> Result<Latest, SourceError> {
        let key = latest_key();
        let body = self.get(&key, LATEST_LIMIT).await?;
        let latest: Latest = serde_json::from_slice(&body).map_err(|e| {
            SourceError::Feed(format!(
                "{}: not a gomirror feed head: {e}; is `upstream.index` a gomirror tree?",
                self.name(&key)
            ))
        })?;
        if latest.format != FORMAT {
            return Err(SourceError::Feed(format!(
                "{}: feed format {:?}, this gomirror reads {FORMAT:?}",
                self.name(&key),
                latest.format
            )));
        }
        let bad = |why: &str| SourceError::Feed(format!("{}: {why}", self.name(&key)));
        if latest.segment_entries == 0 {
            return Err(bad("segment_entries is 0"));
        }
        if latest.first > latest.next {
            return Err(bad("first is past next"));
        }
        if let Some(s) = &latest.snapshot
            && (s.seq < latest.first || s.seq > latest.next)
        {
            return Err(bad("the snapshot is outside the feed"));
        }
        Ok(latest)
    }

    /// The entries of segment `k` from `from` up to `to`, read from the
    /// complete segment or from the tail, and where they end: a tail older
    /// than `latest` (a cache in between) ends before `to`, and the rest is
    /// read on the next sync.
    async fn segment(
        &self,
        latest: &Latest,
        k: u64,
        from: u64,
        to: u64,
    ) -> Result<(Vec<(FeedOp, IndexEntry)>, u64), SourceError> {
        let size = latest.segment_entries;
        let start = k * size;
        let complete = start + size <= latest.next;
        let key = if complete { segment_key(k) } else { tail_key() };
        let mut lines = self.parse_segment(&key, &self.get(&key, SEGMENT_LIMIT).await?)?;
        if !complete && lines.first().is_some_and(|l| l.0 != start) {
            // The tail moved on to the next segment after `latest` was read:
            // this one is complete now.
            let key = segment_key(k);
            lines = self.parse_segment(&key, &self.get(&key, SEGMENT_LIMIT).await?)?;
        }
        let key = if complete { segment_key(k) } else { tail_key() };
        // Sequence numbers run on from the segment's start without a gap.
        for (i, (seq, ..)) in lines.iter().enumerate() {
            if *seq != start + i as u64 {
                return Err(SourceError::Feed(format!(
                    "{}: line {}: entry {seq} where entry {} belongs; the feed is damaged",
                    self.name(&key),
                    i + 1,
                    start + i as u64
                )));
            }
        }
        let have = start + lines.len() as u64;
        if (complete && have != start + size) || (!complete && have > start + size) {
            return Err(SourceError::Feed(format!(
                "{}: holds {} entries where a segment holds {size}; the feed is damaged",
                self.name(&key),
                lines.len()
            )));
        }
        let end = to.min(have);
        Ok((
            lines
                .into_iter()
                .filter(|(seq, ..)| *seq >= from && *seq < end)
                .map(|(_, op, e)| (op, e))
                .collect(),
            end.max(from),
        ))
    }

    fn parse_segment(
        &self,
        key: &str,
        body: &[u8],
    ) -> Result<Vec<(u64, FeedOp, IndexEntry)>, SourceError> {
        let text = std::str::from_utf8(body).map_err(|e| {
            SourceError::Feed(format!(
                "{}: not UTF-8 ({e}); the feed is damaged",
                self.name(key)
            ))
        })?;
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let bad = |why: String| {
                SourceError::Feed(format!(
                    "{}: line {}: {why}; the feed is damaged",
                    self.name(key),
                    i + 1
                ))
            };
            let l: Line =
                serde_json::from_str(line).map_err(|e| bad(format!("not a feed entry: {e}")))?;
            let op = FeedOp::from_name(&l.op)
                .ok_or_else(|| bad(format!("unknown operation {:?}", l.op)))?;
            gomod::check(&l.path, &l.version)
                .map_err(|e| bad(format!("{}@{}: {e}", l.path, l.version)))?;
            if !crate::clock::is_rfc3339(&l.time) {
                return Err(bad(format!("time {:?} is not RFC 3339", l.time)));
            }
            out.push((
                l.seq,
                op,
                IndexEntry {
                    path: l.path,
                    version: l.version,
                    listed_at: None,
                },
            ));
        }
        Ok(out)
    }

    /// The full comparison of an uncompacted feed: every entry from the
    /// first, replayed into the comparison instead of recorded one by one.
    async fn replay_in_full(
        &self,
        latest: &Latest,
        intake: &mut dyn Intake,
    ) -> Result<u64, SourceError> {
        intake.snapshot_begin().await?;
        let mut at = 0;
        while at < latest.next {
            let k = at / latest.segment_entries;
            let end = ((k + 1) * latest.segment_entries).min(latest.next);
            let (changes, reached) = self.segment(latest, k, at, end).await?;
            intake.note(Event::Page {
                lines: changes.len(),
            });
            intake.snapshot_page(changes).await?;
            at = reached;
            if reached < end {
                break;
            }
        }
        intake
            .snapshot_finish(FollowCursor {
                id: latest.id.clone(),
                next: at,
            })
            .await?;
        Ok(at)
    }

    /// The full comparison: the snapshot's versions (or, for a feed never
    /// compacted, the whole feed) against this mirror's state.
    async fn compare_snapshot(
        &self,
        latest: &Latest,
        intake: &mut dyn Intake,
    ) -> Result<u64, SourceError> {
        let Some(snap) = &latest.snapshot else {
            if latest.first > 0 {
                return Err(SourceError::Feed(format!(
                    "{}: the feed starts at entry {} and has no snapshot to compare with",
                    self.name(&latest_key()),
                    latest.first
                )));
            }
            return self.replay_in_full(latest, intake).await;
        };
        let key = format!("{}/{}", DIR, snap.file);
        if snap.file.contains("..") || !snap.file.starts_with("snapshot/") {
            return Err(SourceError::Feed(format!(
                "{}: snapshot file {:?} is not under feed/snapshot/",
                self.name(&latest_key()),
                snap.file
            )));
        }
        // Streamed to a scratch file and read a line at a time: memory does
        // not grow with the upstream's size.
        let scratch = tempfile::Builder::new()
            .prefix(".gomirror-feed-snapshot")
            .tempfile_in(&self.scratch)
            .map_err(|e| {
                SourceError::Feed(format!(
                    "cannot create a scratch file in `{}`: {e}",
                    self.scratch.display()
                ))
            })?
            .into_temp_path();
        self.upstream
            .get_to_file(&self.url(&key), SNAPSHOT_LIMIT, &scratch)
            .await
            .map_err(|e| {
                SourceError::Feed(format!("cannot read the upstream mirror's feed: {e}"))
            })?;
        let file = std::fs::File::open(&scratch)
            .map_err(|e| SourceError::Feed(format!("cannot read `{}`: {e}", scratch.display())))?;
        intake.snapshot_begin().await?;
        let mut page = Vec::with_capacity(SNAPSHOT_PAGE);
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| {
                SourceError::Feed(format!(
                    "{}: line {}: {e}; the snapshot is damaged",
                    self.name(&key),
                    i + 1
                ))
            })?;
            let line = line.as_str();
            let bad = |why: String| {
                SourceError::Feed(format!(
                    "{}: line {}: {why}; the snapshot is damaged",
                    self.name(&key),
                    i + 1
                ))
            };
            let l: SnapshotLine = serde_json::from_str(line)
                .map_err(|e| bad(format!("not a snapshot entry: {e}")))?;
            gomod::check(&l.path, &l.version)
                .map_err(|e| bad(format!("{}@{}: {e}", l.path, l.version)))?;
            page.push((
                FeedOp::Publish,
                IndexEntry {
                    path: l.path,
                    version: l.version,
                    listed_at: None,
                },
            ));
            if page.len() >= SNAPSHOT_PAGE {
                intake.snapshot_page(std::mem::take(&mut page)).await?;
            }
        }
        if !page.is_empty() {
            intake.snapshot_page(page).await?;
        }
        intake
            .snapshot_finish(FollowCursor {
                id: latest.id.clone(),
                next: snap.seq,
            })
            .await?;
        Ok(snap.seq)
    }
}

impl Discovery for MirrorFeed {
    fn describe(&self) -> String {
        format!(
            "the change feed of {}",
            crate::redact::redact_url(&self.base)
        )
    }

    fn discover<'a>(
        &'a self,
        intake: &'a mut dyn Intake,
    ) -> LocalBoxFuture<'a, Result<(), SourceError>> {
        Box::pin(async move {
            let latest = self.latest().await?;
            let mut chain = vec![crate::redact::redact_url(&self.base)];
            chain.extend(latest.chain.iter().cloned());
            intake.upstream_chain(chain).await?;
            let cursor = intake.follow_position().await?;
            let mut at = match cursor {
                Some(c) if c.id == latest.id => {
                    if c.next > latest.next {
                        return Err(SourceError::Feed(format!(
                            "{}: the upstream feed went back: it ends at entry {}, this mirror has read up to {}; was the upstream restored from a backup? (the position is not moved)",
                            self.name(&latest_key()),
                            latest.next,
                            c.next
                        )));
                    }
                    if c.next < latest.first {
                        intake.note(Event::Warning(format!(
                            "this mirror is too far behind the upstream feed: it has read up to entry {}, the feed was compacted up to entry {}; comparing with the upstream's snapshot in full",
                            c.next, latest.first
                        )));
                        self.compare_snapshot(&latest, intake).await?
                    } else {
                        c.next
                    }
                }
                Some(c) => {
                    intake.note(Event::Warning(format!(
                        "the upstream feed is not the one this mirror followed (feed {} instead of {}); comparing with it in full",
                        latest.id, c.id
                    )));
                    self.compare_snapshot(&latest, intake).await?
                }
                // A first follow compares in full too: whatever this mirror
                // holds already (it may have synced from elsewhere before)
                // ends up as the upstream's set.
                None => self.compare_snapshot(&latest, intake).await?,
            };
            if at < latest.next {
                intake.note(Event::Started("reading the upstream feed"));
            }
            while at < latest.next {
                let k = at / latest.segment_entries;
                let end = ((k + 1) * latest.segment_entries).min(latest.next);
                let (changes, reached) = self.segment(&latest, k, at, end).await?;
                intake.note(Event::Page {
                    lines: changes.len(),
                });
                intake
                    .offer_changes(
                        changes,
                        FollowCursor {
                            id: latest.id.clone(),
                            next: reached,
                        },
                    )
                    .await?;
                if reached < end {
                    intake.note(Event::Verbose(format!(
                        "{} ends at entry {reached}, before the {end} its head announces (a cache in between?); the rest next time",
                        self.name(&tail_key())
                    )));
                    break;
                }
                at = end;
            }
            intake.note(Event::Finished);
            Ok(())
        })
    }
}
