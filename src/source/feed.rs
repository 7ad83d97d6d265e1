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

use std::sync::Arc;

use reqwest::Url;

use crate::bounded::{LineError, LineLimits, LineSplitter};
use crate::feed::{
    DIR, LATEST_BYTES, Latest, Line, MAX_LINE, SnapshotLine, latest_key, segment_key, tail_key,
};
use crate::gomod;
use crate::http::{self, Streamed, Upstream};
use crate::shown;
use crate::source::{AnyIntake, Discovery, Event, FeedIntake, LocalBoxFuture, SourceError};
use crate::state::{FeedOp, FollowCursor, IndexEntry};

/// Entries offered to the intake at once (a segment streams in pages:
/// memory does not grow with `segment_entries`).
const PAGE: usize = 2000;

pub struct MirrorFeed {
    upstream: Arc<Upstream>,
    base: Url,
}

/// Where a segment's entries go: recorded as changes (moving the follow
/// cursor with each page), or into a full comparison.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Follow,
    Compare,
}

impl MirrorFeed {
    pub fn new(upstream: Arc<Upstream>, base: Url) -> MirrorFeed {
        MirrorFeed { upstream, base }
    }

    fn url(&self, key: &str) -> Url {
        http::join(&self.base, key)
    }

    fn name(&self, key: &str) -> String {
        crate::redact::redact_url(&self.url(key))
    }

    fn unreadable(e: http::FetchError) -> SourceError {
        SourceError::Feed(format!("cannot read the upstream mirror's feed: {e}"))
    }

    /// `feed/latest`, checked: where the upstream's feed stands.
    pub async fn head(&self) -> Result<Latest, SourceError> {
        let key = latest_key();
        let body = self
            .upstream
            .get_bytes(&self.url(&key), LATEST_BYTES)
            .await
            .map_err(Self::unreadable)?;
        let latest: Latest = serde_json::from_slice(&body).map_err(|e| {
            SourceError::Feed(format!(
                "{}: not a gomirror feed head: {e}; is `upstream.index` a gomirror tree?",
                self.name(&key)
            ))
        })?;
        latest
            .check()
            .map_err(|why| SourceError::Feed(format!("{}: {why}", self.name(&key))))?;
        Ok(latest)
    }

    /// A feed file's lines as they arrive, `limits` enforced as they come.
    async fn open(&self, key: &str, limits: LineLimits) -> Result<FeedLines<'_>, SourceError> {
        // Every line with its newline: the most bytes a file within the
        // limits can have.
        let bytes = limits.max_lines.saturating_mul(MAX_LINE as u64 + 1);
        let url = self.url(key);
        let body = self
            .upstream
            .get_streamed(&url, bytes)
            .await
            .map_err(Self::unreadable)?;
        Ok(FeedLines {
            body,
            lines: LineSplitter::new(limits),
            name: self.name(key),
            ended: false,
        })
    }

    /// Reads segment `k`'s entries from `from` up to `to` into `intake`, a
    /// page at a time, from the complete segment or from the tail; returns
    /// where they end. A tail older than `latest` (a cache in between) ends
    /// before `to`: the rest is read on the next sync. A complete segment
    /// holds exactly `segment_entries` lines: the one after is refused as
    /// it arrives, and the tail is never read past `to`.
    async fn read_segment(
        &self,
        latest: &Latest,
        k: u64,
        (from, to): (u64, u64),
        intake: &mut dyn FeedIntake,
        mode: Mode,
    ) -> Result<u64, SourceError> {
        let size = latest.segment_entries;
        let start = k * size;
        let mut complete = start + size <= latest.next;
        let limits = LineLimits {
            max_len: MAX_LINE,
            max_lines: size,
        };
        let mut key = if complete { segment_key(k) } else { tail_key() };
        let mut lines = self.open(&key, limits).await?;
        let mut first = lines.next().await?;
        if !complete
            && let Some(line) = &first
            && self.parse_line(&lines.name, 1, line)?.0 != start
        {
            // The tail moved on to the next segment after `latest` was
            // read: this one is complete now.
            complete = true;
            key = segment_key(k);
            lines = self.open(&key, limits).await?;
            first = lines.next().await?;
        }
        let end = if complete { start + size } else { to };
        let mut page = Vec::new();
        let mut have = start;
        let mut next_line = first;
        while let Some(line) = next_line {
            let (seq, op, entry) = self.parse_line(&lines.name, have - start + 1, &line)?;
            if seq != have {
                return Err(SourceError::Feed(format!(
                    "{}: line {}: entry {seq} where entry {have} belongs; the feed is damaged",
                    lines.name,
                    have - start + 1,
                )));
            }
            have += 1;
            if seq >= from && seq < to {
                page.push((op, entry));
                if page.len() >= PAGE {
                    self.hand_over(intake, mode, std::mem::take(&mut page), &latest.id, have)
                        .await?;
                }
            }
            if have >= end {
                break;
            }
            next_line = lines.next().await?;
        }
        if complete {
            // Exactly `size` lines: the end of the stream must come next.
            if have < end || lines.next().await?.is_some() {
                return Err(SourceError::Feed(format!(
                    "{}: holds {} entries where a segment holds {size}; the feed is damaged",
                    lines.name,
                    if have < end {
                        (have - start).to_string()
                    } else {
                        format!("more than {size}")
                    },
                )));
            }
        }
        let reached = to.min(have).max(from);
        self.hand_over(intake, mode, page, &latest.id, reached)
            .await?;
        Ok(reached)
    }

    /// One page of entries to the intake; following, with the cursor after them.
    async fn hand_over(
        &self,
        intake: &mut dyn FeedIntake,
        mode: Mode,
        page: Vec<(FeedOp, IndexEntry)>,
        id: &str,
        next: u64,
    ) -> Result<(), SourceError> {
        intake.note(Event::Page { lines: page.len() });
        match mode {
            Mode::Follow => {
                intake
                    .offer_changes(
                        page,
                        FollowCursor {
                            id: id.to_string(),
                            next,
                        },
                    )
                    .await?;
            }
            Mode::Compare if page.is_empty() => {}
            Mode::Compare => intake.snapshot_page(page).await?,
        }
        Ok(())
    }

    /// One line of a segment: its sequence number and what it says.
    fn parse_line(
        &self,
        file: &str,
        n: u64,
        line: &[u8],
    ) -> Result<(u64, FeedOp, IndexEntry), SourceError> {
        let bad = |why: String| {
            SourceError::Feed(format!("{file}: line {n}: {why}; the feed is damaged"))
        };
        let l: Line =
            serde_json::from_slice(line).map_err(|e| bad(format!("not a feed entry: {e}")))?;
        let op = FeedOp::from_name(&l.op)
            .ok_or_else(|| bad(format!("unknown operation {}", shown::quoted(&l.op))))?;
        check_version(&l.path, &l.version).map_err(bad)?;
        if !crate::clock::is_rfc3339(&l.time) {
            return Err(bad(format!(
                "time {} is not RFC 3339",
                shown::quoted(&l.time)
            )));
        }
        Ok((
            l.seq,
            op,
            IndexEntry {
                path: l.path,
                version: l.version,
            },
        ))
    }

    /// The full comparison of an uncompacted feed: every entry from the
    /// first, replayed into the comparison instead of recorded one by one.
    async fn replay_in_full(
        &self,
        latest: &Latest,
        intake: &mut dyn FeedIntake,
    ) -> Result<u64, SourceError> {
        intake.snapshot_begin().await?;
        let mut at = 0;
        while at < latest.next {
            let k = at / latest.segment_entries;
            let end = ((k + 1) * latest.segment_entries).min(latest.next);
            let reached = self
                .read_segment(latest, k, (at, end), intake, Mode::Compare)
                .await?;
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
    /// compacted, the whole feed) against this mirror's state. The snapshot
    /// streams: it lists at most one version per entry before its `seq`,
    /// each on a line of at most [`MAX_LINE`] bytes.
    async fn compare_snapshot(
        &self,
        latest: &Latest,
        intake: &mut dyn FeedIntake,
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
        // `Latest::check` allowed only the exact name the writer gives it.
        let key = format!("{DIR}/{}", snap.file);
        let limits = LineLimits {
            max_len: MAX_LINE,
            max_lines: snap.seq,
        };
        let mut lines = self.open(&key, limits).await?;
        intake.snapshot_begin().await?;
        let mut page = Vec::with_capacity(PAGE);
        let mut n = 0u64;
        while let Some(line) = lines.next().await? {
            n += 1;
            let bad = |why: String| {
                SourceError::Feed(format!(
                    "{}: line {n}: {why}; the snapshot is damaged",
                    lines.name
                ))
            };
            let l: SnapshotLine = serde_json::from_slice(&line)
                .map_err(|e| bad(format!("not a snapshot entry: {e}")))?;
            check_version(&l.path, &l.version).map_err(bad)?;
            page.push((
                FeedOp::Publish,
                IndexEntry {
                    path: l.path,
                    version: l.version,
                },
            ));
            if page.len() >= PAGE {
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

/// A module version named by a feed file, checked by Go's rules (what is
/// wrong shown escaped and cut: it is the peer's text).
fn check_version(path: &str, version: &str) -> Result<(), String> {
    gomod::check(path, version).map_err(|e| {
        format!(
            "{}@{}: {}",
            shown::text(path),
            shown::text(version),
            shown::text(&e.to_string())
        )
    })
}

/// The lines of one feed file as they arrive.
struct FeedLines<'a> {
    body: Streamed<'a>,
    lines: LineSplitter,
    /// The file's URL, credentials masked.
    name: String,
    ended: bool,
}

impl FeedLines<'_> {
    /// The next line (a copy: the caller parses it while the next arrive).
    async fn next(&mut self) -> Result<Option<Vec<u8>>, SourceError> {
        loop {
            match self.lines.next_line() {
                Ok(Some(line)) => return Ok(Some(line.to_vec())),
                Ok(None) if self.ended => return Ok(None),
                Ok(None) => {}
                Err(e) => return Err(self.refused(e)),
            }
            match self.body.chunk().await {
                Ok(Some(piece)) => self.lines.push(&piece),
                Ok(None) => {
                    self.ended = true;
                    self.lines.finish();
                }
                Err(e) => return Err(MirrorFeed::unreadable(e)),
            }
        }
    }

    fn refused(&self, e: LineError) -> SourceError {
        SourceError::Feed(match e {
            LineError::TooLong { line, limit } => format!(
                "{}: line {line} is longer than {limit} bytes; the feed is damaged",
                self.name
            ),
            LineError::TooMany { limit, .. } => format!(
                "{}: holds more than {limit} entries where it may hold {limit}; the feed is damaged",
                self.name
            ),
        })
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
        intake: &'a mut dyn AnyIntake,
    ) -> LocalBoxFuture<'a, Result<(), SourceError>> {
        Box::pin(async move {
            let latest = self.head().await?;
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
                let reached = self
                    .read_segment(&latest, k, (at, end), intake, Mode::Follow)
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
