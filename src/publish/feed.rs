//! The change feed in the tree (`<output>/feed/`, see `docs/feed.md`): what
//! this mirror published and deleted, in order, as static files that a stock
//! web server serves and another gomirror follows (`index = "mirror+URL"`).
//!
//! The state database holds the entries (`state::feed`, appended in the
//! transactions that publish and unpublish); this module projects them, the
//! way `lists` projects `@v/list`: complete segments (`feed/<k>.jsonl`, never
//! rewritten), the open segment (`feed/tail.jsonl`) and `feed/latest`, which
//! says where the feed stands. Written in that order, each atomically through
//! the store, with a barrier before `latest`: a follower that reads `latest`
//! finds every entry it announces, and every entry names a version whose
//! files and lists were in place before it was written.
//!
//! Compaction keeps at least the newest `feed.keep_segments` complete
//! segments, and runs once the older ones hold as many entries as the mirror
//! has versions (see [`compact`]: its cost per new entry stays bounded).
//! Before older segments go, a snapshot of every published version
//! (`feed/snapshot/<seq>.jsonl`) is written; a follower whose position was
//! compacted away reads it and compares in full.

use std::io::Write;
use std::sync::Arc;

use crate::fatal::Fatal;
use crate::settings::{FeedSettings, Settings};
// Hook for the trace file (`<output>/trace/<name>.json`, operations work):
// the upstream chain it names is `Latest::chain` of this mirror's feed.
use crate::feed::{
    FORMAT, Latest, Line, Snapshot, SnapshotLine, latest_key, segment_key, snapshot_key,
    snapshot_name, tail_key,
};
use crate::state::{FeedEntry, FeedHead, db::Db};
use crate::store::Store;

fn render(entries: &[FeedEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 100);
    for e in entries {
        let line = Line {
            seq: e.seq,
            time: e.time.clone(),
            op: e.op.name().to_string(),
            path: e.path.clone(),
            version: e.version.clone(),
        };
        // Serialising plain strings and numbers cannot fail.
        serde_json::to_writer(&mut out, &line).expect("feed line");
        out.push(b'\n');
    }
    out
}

fn render_latest(head: &FeedHead, chain: &[String]) -> Vec<u8> {
    let latest = Latest {
        format: FORMAT.to_string(),
        id: head.id.clone(),
        next: head.next,
        first: head.first,
        segment_entries: head.segment_size,
        snapshot: head.snapshot.map(|seq| Snapshot {
            seq,
            file: snapshot_name(seq),
        }),
        chain: chain.to_vec(),
    };
    let mut out = serde_json::to_vec_pretty(&latest).expect("feed latest");
    out.push(b'\n');
    out
}

/// Brings `<output>/feed/` up to date with the state database, then compacts
/// it if it holds more than `feed.keep_segments` complete segments. Call
/// after the lists of everything the new entries name are in place.
pub async fn write_feed(settings: &Settings, db: &Db, tree: &Arc<dyn Store>) -> Result<(), Fatal> {
    let feed = settings.feed.clone();
    let size_hint = feed.segment_entries;
    let (own, following) = (settings.upstream_name(), settings.follow.is_some());
    let (head, chain) = db
        .call(move |s| {
            let chain = s.upstream_chain(own, following)?;
            Ok((s.feed_head(Some(size_hint))?, chain))
        })
        .await?;
    let size = head.segment_size;
    let from = head.written.max(head.first);
    let wrote = from < head.next || head.written == 0;
    if wrote {
        // The segments not yet written, a few at a time (the first feed of a
        // large mirror names every version it holds), then the tail.
        let mut k = from / size;
        loop {
            let h = head.clone();
            let files = db
                .call(move |s| {
                    let mut files = Vec::new();
                    let mut bytes = 0;
                    let mut k = k;
                    loop {
                        let start = k * size;
                        let end = (start + size).min(h.next);
                        let entries = s.feed_entries(start.max(h.first), end)?;
                        let text = render(&entries);
                        bytes += text.len();
                        if start + size <= h.next {
                            files.push((segment_key(k), text));
                            k += 1;
                            if bytes >= CHUNK_BYTES {
                                return Ok(files);
                            }
                        } else {
                            files.push((tail_key(), text));
                            return Ok(files);
                        }
                    }
                })
                .await?;
            let done = files.last().is_some_and(|(key, _)| *key == tail_key());
            k += files.len() as u64;
            let t = tree.clone();
            tokio::task::spawn_blocking(move || -> Result<(), Fatal> {
                for (key, bytes) in &files {
                    t.write_if_changed(key, bytes)?;
                }
                Ok(())
            })
            .await
            .map_err(|e| Fatal::crashed("writing the feed", e))??;
            if done {
                break;
            }
        }
    }
    let t = tree.clone();
    let latest = render_latest(&head, &chain);
    tokio::task::spawn_blocking(move || -> Result<(), Fatal> {
        // Every entry `latest` announces is durable before it does.
        if wrote {
            t.barrier()?;
        }
        t.write_if_changed(&latest_key(), &latest)?;
        Ok(())
    })
    .await
    .map_err(|e| Fatal::crashed("writing the feed", e))??;
    if head.written != head.next {
        let next = head.next;
        db.call(move |s| s.set_feed_written(next, size)).await?;
    }
    compact(&feed, &chain, db, tree, head).await
}

/// Segment bytes rendered per call to the state thread.
const CHUNK_BYTES: usize = 4 << 20;

/// Compaction: once the complete segments older than the newest
/// `keep_segments` hold half as many entries as the mirror has published
/// versions (at least one segment's worth), a snapshot of the published
/// versions is written, the older segments are dropped from `latest`,
/// `latest` points at the snapshot, and only then are the old files deleted.
///
/// Triggered geometrically, so its cost is amortised whatever the feed's
/// length: a snapshot holds one line per published version, and at least
/// half as many new entries arrived since the last one, so compaction writes
/// at most two snapshot lines (~120–180 bytes) per new entry. Compacting
/// after every segment instead rewrote the whole published set every
/// thousand entries (10.9 MB per 1,000 versions at a million, ~3.9 GB at 72
/// million). The price is kept segment files: at most the newest
/// `keep_segments` plus half as many entries as the mirror has versions.
async fn compact(
    feed: &FeedSettings,
    chain: &[String],
    db: &Db,
    tree: &Arc<dyn Store>,
    head: FeedHead,
) -> Result<(), Fatal> {
    let size = head.segment_size;
    let complete = head.next / size;
    let kept_from = head.first / size;
    let beyond = complete
        .saturating_sub(kept_from)
        .saturating_sub(feed.keep_segments);
    if beyond == 0 {
        return Ok(());
    }
    let published = db.call(|s| s.counts()).await?.published.max(0) as u64;
    if beyond * size < (published / 2).max(size) {
        return Ok(());
    }
    let new_first = (complete - feed.keep_segments) * size;
    let seq = head.next;
    // The snapshot, streamed page by page into a staged file.
    let staged = tree.staging().new_file("feed-snapshot")?;
    let mut file = std::io::BufWriter::new(staged);
    let mut after: Option<(String, String)> = None;
    loop {
        let a = after.clone();
        let page = db
            .call(move |s| {
                s.feed_published_page(a.as_ref().map(|(p, v)| (p.as_str(), v.as_str())), 1000)
            })
            .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.path.clone(), last.version.clone()));
        for e in &page {
            let line = SnapshotLine {
                path: e.path.clone(),
                version: e.version.clone(),
            };
            serde_json::to_writer(&mut file, &line).expect("snapshot line");
            file.write_all(b"\n")
                .map_err(|e| Fatal::context("cannot write the feed snapshot", e))?;
        }
    }
    let staged = file
        .into_inner()
        .map_err(|e| Fatal::context("cannot write the feed snapshot", e.into_error()))?;
    let staged = staged.into_temp_path();
    let t = tree.clone();
    let key = snapshot_key(seq);
    tokio::task::spawn_blocking(move || -> Result<(), Fatal> {
        t.put(&staged, &key)?;
        drop(staged.keep());
        t.barrier()?;
        Ok(())
    })
    .await
    .map_err(|e| Fatal::crashed("writing the feed", e))??;
    db.call(move |s| s.compact_feed(new_first, seq)).await?;
    let mut new_head = head.clone();
    new_head.first = new_first;
    new_head.snapshot = Some(seq);
    let t = tree.clone();
    let chain = chain.to_vec();
    let old_snapshot = head.snapshot;
    tokio::task::spawn_blocking(move || -> Result<(), Fatal> {
        t.write_if_changed(&latest_key(), &render_latest(&new_head, &chain))?;
        t.barrier()?;
        for k in head.first / size..new_first / size {
            t.delete(&segment_key(k))?;
        }
        if let Some(old) = old_snapshot.filter(|&o| o != seq) {
            t.delete(&snapshot_key(old))?;
        }
        Ok(())
    })
    .await
    .map_err(|e| Fatal::crashed("compacting the feed", e))??;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::FeedOp;

    #[test]
    fn lines_and_latest_read_back() {
        let e = FeedEntry {
            seq: 7,
            time: "2026-01-02T03:04:05Z".into(),
            op: FeedOp::Delete,
            path: "a.example/m".into(),
            version: "v1.0.0".into(),
        };
        let text = String::from_utf8(render(&[e])).unwrap();
        assert_eq!(
            text,
            "{\"seq\":7,\"time\":\"2026-01-02T03:04:05Z\",\"op\":\"delete\",\"path\":\"a.example/m\",\"version\":\"v1.0.0\"}\n"
        );
        let head = FeedHead {
            id: "abc".into(),
            next: 12,
            first: 10,
            segment_size: 5,
            written: 12,
            snapshot: Some(11),
        };
        let l: Latest =
            serde_json::from_slice(&render_latest(&head, &["https://x.example/".into()])).unwrap();
        assert_eq!(l.snapshot.unwrap().file, "snapshot/000000000011.jsonl");
        assert_eq!((l.next, l.first, l.segment_entries), (12, 10, 5));
        assert_eq!(segment_key(3), "feed/000000000003.jsonl");
    }
}
