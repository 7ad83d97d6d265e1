//! The change feed, as the state database records it: on the writing side,
//! the publications and deletions this mirror made (`feed_entries`, numbered
//! in order, kept until the segment file that holds them is in the tree) and
//! the set of versions the feed says are published (`versions.in_feed`, from
//! which a compaction's snapshot is taken); on the following side, the
//! position in an upstream mirror's feed and the versions it withdrew
//! (`feed_withdrawn`, never queued again by a filter).
//!
//! Feed entries are appended in the same transactions that record a version
//! published ([`State::mark_published`]) or no longer listed, about to be
//! deleted ([`State::unlist`]), so the feed never misses a change and
//! never names one that did not happen. `publish::feed` projects them into
//! `<output>/feed/`.

use rusqlite::{OptionalExtension, Transaction, params};

use super::version::state_codes;
use super::{IndexEntry, Result, State, VersionState, err};

/// What a feed entry says happened to a version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FeedOp {
    Publish,
    Delete,
}

impl FeedOp {
    pub fn name(self) -> &'static str {
        match self {
            FeedOp::Publish => "publish",
            FeedOp::Delete => "delete",
        }
    }

    pub fn from_name(s: &str) -> Option<FeedOp> {
        match s {
            "publish" => Some(FeedOp::Publish),
            "delete" => Some(FeedOp::Delete),
            _ => None,
        }
    }

    pub(super) fn code(self) -> i64 {
        match self {
            FeedOp::Publish => 1,
            FeedOp::Delete => 2,
        }
    }

    fn from_code(c: i64) -> Option<FeedOp> {
        match c {
            1 => Some(FeedOp::Publish),
            2 => Some(FeedOp::Delete),
            _ => None,
        }
    }
}

/// One entry of this mirror's feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedEntry {
    pub seq: u64,
    /// RFC 3339, UTC.
    pub time: String,
    pub op: FeedOp,
    pub path: String,
    pub version: String,
}

/// Where this mirror's feed stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedHead {
    /// A random name for this feed, fixed when it was created: a follower
    /// that finds another one knows its position means nothing here.
    pub id: String,
    /// The sequence number the next entry gets.
    pub next: u64,
    /// The oldest entry still kept (older ones were compacted away).
    pub first: u64,
    /// Entries per segment file, fixed when the feed was created.
    pub segment_size: u64,
    /// Entries below this are in the tree already.
    pub written: u64,
    /// The snapshot that replaces compacted entries: its sequence number.
    pub snapshot: Option<u64>,
}

/// A follower's position in an upstream feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowCursor {
    pub id: String,
    pub next: u64,
}

/// What recording a page of upstream changes did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChangeStats {
    /// Versions not known before.
    pub new: u64,
    /// Of those (and of versions withdrawn earlier and published again), the wanted ones now pending.
    pub new_wanted: u64,
    /// Versions the upstream deleted that this mirror had or wanted: now gone.
    pub withdrawn: u64,
}

const SEGMENT_SIZE_DEFAULT: u64 = 1000;

/// The feed's published set after a (path, version): modules in path order,
/// each one's versions through its primary key.
pub(super) const FEED_PUBLISHED_PAGE: &str =
    "SELECT m.path, v.version FROM modules m JOIN versions v ON v.module_id = m.id
     WHERE m.path >= ?1 AND (m.path, v.version) > (?1, ?2) AND v.in_feed = 1
     ORDER BY m.path, v.version LIMIT ?3";

fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .round(jiff::TimestampRound::new().smallest(jiff::Unit::Second))
        .map(|t| t.to_string())
        .unwrap_or_else(|_| jiff::Timestamp::now().to_string())
}

/// Appends one entry per version whose feed state changes: a publish for a
/// version the feed does not show as published, a delete for one it does.
/// Runs inside the caller's transaction.
pub(super) fn append(
    tx: &Transaction<'_>,
    op: FeedOp,
    versions: &[(i64, String)],
) -> rusqlite::Result<()> {
    if versions.is_empty() {
        return Ok(());
    }
    let time = now_rfc3339();
    let mut live = tx.prepare_cached(
        "SELECT coalesce((SELECT in_feed FROM versions WHERE module_id = ?1 AND version = ?2), 0)",
    )?;
    let mut next = tx.prepare_cached("SELECT COALESCE(MAX(seq) + 1, (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'feed.first'), 0) FROM feed_entries")?;
    let mut add = tx.prepare_cached(
        "INSERT INTO feed_entries(seq, time, op, module_id, version) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut set_live = tx
        .prepare_cached("UPDATE versions SET in_feed = ?3 WHERE module_id = ?1 AND version = ?2")?;
    for (id, v) in versions {
        let is_live: bool = live.query_row(params![id, v], |r| r.get(0))?;
        if is_live == (op == FeedOp::Publish) {
            continue;
        }
        let seq: i64 = next.query_row([], |r| r.get(0))?;
        add.execute(params![seq, time, op.code(), id, v])?;
        set_live.execute(params![id, v, op == FeedOp::Publish])?;
    }
    Ok(())
}

impl State {
    /// The chain of upstreams this mirror's content came through, nearest
    /// first: its own upstream (`own`), or, when it follows another mirror,
    /// the chain that mirror's feed names. The feed's `latest` and the trace
    /// file carry it.
    pub fn upstream_chain(&self, own: String, following: bool) -> Result<Vec<String>> {
        if following
            && let Some(text) = self.meta("follow.chain")?
            && let Ok(theirs) = serde_json::from_str::<Vec<String>>(&text)
        {
            return Ok(theirs);
        }
        Ok(vec![own])
    }

    /// This mirror's feed: creates its identity on first use.
    pub fn feed_head(&mut self, segment_size: Option<u64>) -> Result<FeedHead> {
        if self.meta("feed.id")?.is_none() {
            let id = super::random_id();
            self.set_meta("feed.id", &id)?;
            let s = segment_size.unwrap_or(SEGMENT_SIZE_DEFAULT).max(1);
            self.set_meta("feed.segment_size", &s.to_string())?;
        }
        let num = |s: &State, k: &str| -> Result<Option<u64>> {
            Ok(s.meta(k)?.and_then(|v| v.parse().ok()))
        };
        let first = num(self, "feed.first")?.unwrap_or(0);
        let next: i64 = self
            .conn
            .query_row(
                "SELECT COALESCE(MAX(seq) + 1, 0) FROM feed_entries",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err("cannot read the feed", e))?;
        Ok(FeedHead {
            id: self.meta("feed.id")?.unwrap_or_default(),
            next: (next as u64).max(first),
            first,
            segment_size: num(self, "feed.segment_size")?.unwrap_or(SEGMENT_SIZE_DEFAULT),
            written: num(self, "feed.written")?.unwrap_or(0),
            snapshot: num(self, "feed.snapshot")?,
        })
    }

    /// Feed entries with `from <= seq < to`, in order.
    pub fn feed_entries(&self, from: u64, to: u64) -> Result<Vec<FeedEntry>> {
        let rows = self.query_vec(
            "cannot read the feed",
            "SELECT f.seq, f.time, f.op, m.path, f.version FROM feed_entries f
                 JOIN modules m ON m.id = f.module_id
                 WHERE f.seq >= ?1 AND f.seq < ?2 ORDER BY f.seq",
            params![from as i64, to as i64],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            },
        )?;
        rows.into_iter()
            .map(|(seq, time, op, path, version)| {
                let op = FeedOp::from_code(op).ok_or_else(|| super::StateError {
                    path: self.path.clone(),
                    message: format!("feed entry {seq} has an unknown operation {op}"),
                    source: None,
                })?;
                Ok(FeedEntry {
                    seq: seq as u64,
                    time,
                    op,
                    path,
                    version,
                })
            })
            .collect()
    }

    /// Records that entries below `written` are in the tree, and forgets
    /// the entries of the complete segments among them: their files are
    /// never rewritten, so the database need not keep every entry the feed
    /// ever had (only the open segment's, and always the newest entry, from
    /// which the next number follows).
    pub fn set_feed_written(&mut self, written: u64, segment_size: u64) -> Result<()> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot record the feed written", x);
        let tx = self.conn.transaction().map_err(e)?;
        tx.execute(
            "INSERT INTO meta(key, value) VALUES ('feed.written', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [written.to_string()],
        )
        .map_err(e)?;
        let complete = written / segment_size.max(1) * segment_size.max(1);
        tx.execute(
            "DELETE FROM feed_entries
             WHERE seq < min(?1, (SELECT max(seq) FROM feed_entries))",
            [complete as i64],
        )
        .map_err(e)?;
        tx.commit().map_err(e)
    }

    /// The versions the feed shows as published, in (path, version) order,
    /// a page at a time after `after`.
    pub fn feed_published_page(
        &self,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<IndexEntry>> {
        let (ap, av) = after.unwrap_or(("", ""));
        self.query_vec(
            "cannot read the feed",
            FEED_PUBLISHED_PAGE,
            params![ap, av, limit as i64],
            |r| {
                Ok(IndexEntry {
                    path: r.get(0)?,
                    version: r.get(1)?,
                    listed_at: None,
                })
            },
        )
    }

    /// Compaction: entries below `first` are dropped; a snapshot at
    /// `snapshot` (written to the tree by the caller) replaces them.
    pub fn compact_feed(&mut self, first: u64, snapshot: u64) -> Result<()> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot compact the feed", x);
        let tx = self.conn.transaction().map_err(e)?;
        tx.execute("DELETE FROM feed_entries WHERE seq < ?1", [first as i64])
            .map_err(e)?;
        for (k, v) in [("feed.first", first), ("feed.snapshot", snapshot)] {
            tx.execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![k, v.to_string()],
            )
            .map_err(e)?;
        }
        tx.commit().map_err(e)
    }

    // ---- following an upstream feed --------------------------------------------

    /// Where this mirror stands in its upstream's feed.
    pub fn follow_cursor(&self) -> Result<Option<FollowCursor>> {
        let id = self.meta("follow.id")?;
        let next = self.meta("follow.next")?.and_then(|v| v.parse().ok());
        Ok(match (id, next) {
            (Some(id), Some(next)) => Some(FollowCursor { id, next }),
            _ => None,
        })
    }

    /// Records a page of the upstream's changes and moves the cursor, in one
    /// transaction. A published version is recorded like an index entry (a
    /// withdrawn one is wanted again); a deleted one becomes `Gone` (prune
    /// removes it from the tree under `max_delete`) and is remembered as
    /// withdrawn so that a wider filter does not queue it again.
    pub fn record_feed_changes(
        &mut self,
        changes: &[(FeedOp, IndexEntry)],
        wants: &dyn Fn(&str) -> bool,
        cursor: &FollowCursor,
    ) -> Result<ChangeStats> {
        self.record_changes(changes, wants, Some(cursor))
    }

    /// A bundle's publications and deletions (`gomirror import`), recorded
    /// as a followed feed's are, in one transaction; no cursor moves (the
    /// import records the bundle itself once it is complete).
    pub fn record_bundle_changes(
        &mut self,
        changes: &[(FeedOp, IndexEntry)],
        wants: &dyn Fn(&str) -> bool,
    ) -> Result<ChangeStats> {
        self.record_changes(changes, wants, None)
    }

    fn record_changes(
        &mut self,
        changes: &[(FeedOp, IndexEntry)],
        wants: &dyn Fn(&str) -> bool,
        cursor: Option<&FollowCursor>,
    ) -> Result<ChangeStats> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot record the upstream feed", x);
        let tx = self.conn.transaction().map_err(e)?;
        let mut stats = ChangeStats::default();
        for (op, entry) in changes {
            record_change(&tx, *op, entry, wants, &mut stats).map_err(e)?;
        }
        if let Some(cursor) = cursor {
            set_cursor(&tx, cursor).map_err(e)?;
        }
        tx.commit().map_err(e)?;
        Ok(stats)
    }

    /// A full comparison with the upstream's snapshot begins: an empty scratch table.
    pub fn snapshot_begin(&mut self) -> Result<()> {
        self.conn
            .execute_batch(
                "CREATE TEMP TABLE IF NOT EXISTS feed_snapshot(path TEXT NOT NULL, version TEXT NOT NULL, PRIMARY KEY (path, version)) WITHOUT ROWID;
                 DELETE FROM temp.feed_snapshot;",
            )
            .map_err(|e| self.err("cannot compare with the upstream snapshot", e))
    }

    /// A page of the upstream's published set: a snapshot's versions (all
    /// publications), or feed entries replayed in order.
    pub fn snapshot_apply(&mut self, changes: &[(FeedOp, IndexEntry)]) -> Result<()> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot compare with the upstream snapshot", x);
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut add = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO temp.feed_snapshot(path, version) VALUES (?1, ?2)",
                )
                .map_err(e)?;
            let mut remove = tx
                .prepare_cached("DELETE FROM temp.feed_snapshot WHERE path = ?1 AND version = ?2")
                .map_err(e)?;
            for (op, entry) in changes {
                match op {
                    FeedOp::Publish => add.execute(params![entry.path, entry.version]),
                    FeedOp::Delete => remove.execute(params![entry.path, entry.version]),
                }
                .map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    /// Ends the comparison in one transaction: every snapshot version is
    /// recorded as published upstream, every version this mirror has or wants
    /// that the snapshot lacks is withdrawn, and the cursor moves to the
    /// snapshot's position.
    pub fn snapshot_finish(
        &mut self,
        wants: &dyn Fn(&str) -> bool,
        cursor: &FollowCursor,
    ) -> Result<ChangeStats> {
        self.finish_snapshot(wants, Some(cursor))
    }

    /// Ends the comparison with a full bundle (`gomirror import`): as
    /// [`State::snapshot_finish`], moving no cursor.
    pub fn bundle_snapshot_finish(&mut self, wants: &dyn Fn(&str) -> bool) -> Result<ChangeStats> {
        self.finish_snapshot(wants, None)
    }

    fn finish_snapshot(
        &mut self,
        wants: &dyn Fn(&str) -> bool,
        cursor: Option<&FollowCursor>,
    ) -> Result<ChangeStats> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot compare with the upstream snapshot", x);
        let tx = self.conn.transaction().map_err(e)?;
        let mut stats = ChangeStats::default();
        {
            let mut rows = tx
                .prepare("SELECT path, version FROM temp.feed_snapshot")
                .map_err(e)?;
            let mut rows = rows.query([]).map_err(e)?;
            while let Some(row) = rows.next().map_err(e)? {
                let entry = IndexEntry {
                    path: row.get(0).map_err(e)?,
                    version: row.get(1).map_err(e)?,
                    listed_at: None,
                };
                record_change(&tx, FeedOp::Publish, &entry, wants, &mut stats).map_err(e)?;
            }
            let gone: Vec<(i64, String)> = {
                let mut q = tx
                    .prepare(
                        concat!("SELECT v.module_id, v.version FROM versions v JOIN modules m ON m.id = v.module_id
                         WHERE v.state IN (", state_codes!(Pending, Failed, Published, Missing), ")
                           AND NOT EXISTS (SELECT 1 FROM temp.feed_snapshot s WHERE s.path = m.path AND s.version = v.version)"),
                    )
                    .map_err(e)?;
                q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(e)?
                    .collect::<rusqlite::Result<_>>()
                    .map_err(e)?
            };
            for (id, v) in gone {
                withdraw(&tx, id, &v).map_err(e)?;
                stats.withdrawn += 1;
            }
        }
        if let Some(cursor) = cursor {
            set_cursor(&tx, cursor).map_err(e)?;
        }
        tx.execute("DELETE FROM temp.feed_snapshot", [])
            .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(stats)
    }
}

fn set_cursor(tx: &Transaction<'_>, cursor: &FollowCursor) -> rusqlite::Result<()> {
    for (k, v) in [
        ("follow.id", cursor.id.clone()),
        ("follow.next", cursor.next.to_string()),
    ] {
        tx.execute(
            "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![k, v],
        )?;
    }
    Ok(())
}

fn withdraw(tx: &Transaction<'_>, module_id: i64, version: &str) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE versions SET state = ?3, next_attempt = NULL WHERE module_id = ?1 AND version = ?2",
        params![module_id, version, VersionState::Gone],
    )?;
    tx.execute(
        "INSERT OR IGNORE INTO feed_withdrawn(module_id, version) VALUES (?1, ?2)",
        params![module_id, version],
    )?;
    Ok(())
}

fn record_change(
    tx: &Transaction<'_>,
    op: FeedOp,
    entry: &IndexEntry,
    wants: &dyn Fn(&str) -> bool,
    stats: &mut ChangeStats,
) -> rusqlite::Result<()> {
    let found: Option<(i64, bool)> = tx
        .prepare_cached("SELECT id, wanted FROM modules WHERE path = ?1")?
        .query_row([&entry.path], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (id, wanted) = match found {
        Some(f) => f,
        None => {
            let wanted = wants(&entry.path);
            tx.prepare_cached("INSERT INTO modules(path, wanted) VALUES (?1, ?2)")?
                .execute(params![entry.path, wanted])?;
            (tx.last_insert_rowid(), wanted)
        }
    };
    let state: Option<VersionState> = tx
        .prepare_cached("SELECT state FROM versions WHERE module_id = ?1 AND version = ?2")?
        .query_row(params![id, entry.version], |r| r.get(0))
        .optional()?;
    match op {
        FeedOp::Publish => {
            let st = if wanted {
                VersionState::Pending
            } else {
                VersionState::Seen
            };
            match state {
                None => {
                    tx.prepare_cached(
                        "INSERT INTO versions(module_id, version, state, first_seen) VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![id, entry.version, st, crate::clock::now()])?;
                    super::counts::inserted(tx, st, wanted, 1)?;
                    stats.new += 1;
                    if wanted {
                        stats.new_wanted += 1;
                    }
                }
                Some(VersionState::Gone) => {
                    tx.prepare_cached(
                        "UPDATE versions SET state = ?3, attempts = 0, next_attempt = NULL, missing_since = NULL
                         WHERE module_id = ?1 AND version = ?2",
                    )?
                    .execute(params![id, entry.version, st])?;
                    if wanted {
                        stats.new_wanted += 1;
                    }
                }
                Some(_) => {}
            }
            tx.prepare_cached("DELETE FROM feed_withdrawn WHERE module_id = ?1 AND version = ?2")?
                .execute(params![id, entry.version])?;
        }
        FeedOp::Delete => {
            match state {
                None => {
                    tx.prepare_cached(
                        "INSERT INTO versions(module_id, version, state) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![
                        id,
                        entry.version,
                        VersionState::Gone
                    ])?;
                    super::counts::inserted(tx, VersionState::Gone, wanted, 1)?;
                }
                Some(VersionState::Gone) => {}
                Some(s) => {
                    if s != VersionState::Seen {
                        stats.withdrawn += 1;
                    }
                }
            }
            withdraw(tx, id, &entry.version)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::{entry, open_temp, published};

    #[test]
    fn the_feed_names_whole_versions_only() {
        let (_d, mut s) = open_temp();
        s.record_entries(&[entry("a.example/m", "v1.0.0")], &|_| true, None)
            .unwrap();
        let (id, _) = s.module("a.example/m").unwrap().unwrap();
        let graph_only = crate::state::Published {
            zip: false,
            ..published(id, "v1.0.0", None)
        };
        s.mark_published(&[graph_only], &[], 1).unwrap();
        assert!(
            s.feed_entries(0, 10).unwrap().is_empty(),
            "a graph-only version is nothing a follower can fetch"
        );
        // Whole now: published in the feed; graph-only again: deleted from it.
        s.mark_published(&[published(id, "v1.0.0", None)], &[], 2)
            .unwrap();
        s.unlist_zips(&[(id, "v1.0.0".to_string())]).unwrap();
        let got: Vec<FeedOp> = s
            .feed_entries(0, 10)
            .unwrap()
            .into_iter()
            .map(|e| e.op)
            .collect();
        assert_eq!(got, [FeedOp::Publish, FeedOp::Delete]);
        assert!(s.feed_published_page(None, 10).unwrap().is_empty());
    }

    #[test]
    fn publications_and_deletions_are_appended_once_in_order() {
        let (_d, mut s) = open_temp();
        s.record_entries(
            &[
                entry("a.example/m", "v1.0.0"),
                entry("a.example/m", "v1.1.0"),
            ],
            &|_| true,
            None,
        )
        .unwrap();
        let (id, _) = s.module("a.example/m").unwrap().unwrap();
        let head = s.feed_head(Some(2)).unwrap();
        assert_eq!((head.next, head.segment_size), (0, 2));
        s.mark_published(
            &[published(id, "v1.0.0", None), published(id, "v1.1.0", None)],
            &[],
            1,
        )
        .unwrap();
        // Republishing (a repair) adds nothing.
        s.mark_published(&[published(id, "v1.0.0", None)], &[], 2)
            .unwrap();
        s.unlist(&[(id, "v1.0.0".to_string())]).unwrap();
        s.unlist(&[(id, "v1.0.0".to_string())]).unwrap();
        let got: Vec<(u64, FeedOp, String)> = s
            .feed_entries(0, 10)
            .unwrap()
            .into_iter()
            .map(|e| (e.seq, e.op, e.version))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, FeedOp::Publish, "v1.0.0".into()),
                (1, FeedOp::Publish, "v1.1.0".into()),
                (2, FeedOp::Delete, "v1.0.0".into()),
            ]
        );
        assert_eq!(s.feed_head(None).unwrap().next, 3);
        let live = s.feed_published_page(None, 10).unwrap();
        assert_eq!(live, vec![entry("a.example/m", "v1.1.0")]);
        // Compaction keeps the numbering.
        s.compact_feed(2, 3).unwrap();
        let h = s.feed_head(None).unwrap();
        assert_eq!((h.first, h.next, h.snapshot), (2, 3, Some(3)));
        assert_eq!(s.feed_entries(0, 10).unwrap().len(), 1);
    }

    #[test]
    fn a_mirror_older_than_the_feed_starts_it_with_every_version_in_its_tree() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.db");
        {
            // A state database as the release before the feed left it.
            let c = rusqlite::Connection::open(&p).unwrap();
            for sql in &crate::state::migrations::MIGRATIONS[..3] {
                c.execute_batch(sql).unwrap();
            }
            c.pragma_update(None, "user_version", 3).unwrap();
            c.execute_batch(
                "INSERT INTO modules(id, path, wanted) VALUES (1, 'b.example/m', 1), (2, 'a.example/m', 1);
                 INSERT INTO versions(module_id, version, state, in_tree) VALUES
                     (1, 'v1.0.0', 4, 1), (2, 'v0.1.0', 4, 1), (2, 'v0.2.0', 1, 0), (2, 'v0.3.0', 3, 1);",
            )
            .unwrap();
        }
        let mut s = State::open(&p).unwrap();
        let got: Vec<(u64, String, String)> = s
            .feed_entries(0, 10)
            .unwrap()
            .into_iter()
            .map(|e| (e.seq, e.path, e.version))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, "a.example/m".into(), "v0.1.0".into()),
                (1, "b.example/m".into(), "v1.0.0".into()),
            ],
            "published versions in the tree, in order; not pending or gone ones"
        );
        assert_eq!(s.feed_head(None).unwrap().next, 2);
        assert_eq!(s.feed_published_page(None, 10).unwrap().len(), 2);
    }

    #[test]
    fn a_withdrawn_version_is_gone_and_not_queued_again_by_a_wider_filter() {
        let (_d, mut s) = open_temp();
        let c = |n| FollowCursor {
            id: "x".into(),
            next: n,
        };
        let wants = |p: &str| p.starts_with("a.example");
        let stats = s
            .record_feed_changes(
                &[
                    (FeedOp::Publish, entry("a.example/m", "v1.0.0")),
                    (FeedOp::Publish, entry("b.example/m", "v1.0.0")),
                ],
                &wants,
                &c(2),
            )
            .unwrap();
        assert_eq!((stats.new, stats.new_wanted), (2, 1));
        let stats = s
            .record_feed_changes(
                &[
                    (FeedOp::Delete, entry("a.example/m", "v1.0.0")),
                    (FeedOp::Delete, entry("b.example/m", "v1.0.0")),
                ],
                &wants,
                &c(4),
            )
            .unwrap();
        assert_eq!(stats.withdrawn, 1);
        assert_eq!(s.follow_cursor().unwrap(), Some(c(4)));
        let (a, _) = s.module("a.example/m").unwrap().unwrap();
        assert_eq!(
            s.version_state(a, "v1.0.0").unwrap(),
            Some(VersionState::Gone)
        );
        // A wider filter does not bring b's withdrawn version back.
        s.apply_filter("all", &|_| true).unwrap();
        let (b, _) = s.module("b.example/m").unwrap().unwrap();
        assert_eq!(
            s.version_state(b, "v1.0.0").unwrap(),
            Some(VersionState::Gone)
        );
        // Published again upstream: wanted again.
        let stats = s
            .record_feed_changes(
                &[(FeedOp::Publish, entry("a.example/m", "v1.0.0"))],
                &wants,
                &c(5),
            )
            .unwrap();
        assert_eq!(stats.new_wanted, 1);
        assert_eq!(
            s.version_state(a, "v1.0.0").unwrap(),
            Some(VersionState::Pending)
        );
    }

    #[test]
    fn a_snapshot_comparison_adds_what_is_new_and_withdraws_what_is_missing() {
        let (_d, mut s) = open_temp();
        let c = |n| FollowCursor {
            id: "x".into(),
            next: n,
        };
        s.record_feed_changes(
            &[
                (FeedOp::Publish, entry("a.example/m", "v1.0.0")),
                (FeedOp::Publish, entry("a.example/m", "v1.1.0")),
            ],
            &|_| true,
            &c(2),
        )
        .unwrap();
        s.snapshot_begin().unwrap();
        s.snapshot_apply(&[
            (FeedOp::Publish, entry("a.example/m", "v1.1.0")),
            (FeedOp::Publish, entry("a.example/m", "v1.2.0")),
            (FeedOp::Publish, entry("a.example/m", "v1.3.0")),
            (FeedOp::Delete, entry("a.example/m", "v1.3.0")),
        ])
        .unwrap();
        let stats = s.snapshot_finish(&|_| true, &c(40)).unwrap();
        assert_eq!((stats.new, stats.new_wanted, stats.withdrawn), (1, 1, 1));
        let (a, _) = s.module("a.example/m").unwrap().unwrap();
        assert_eq!(
            s.version_state(a, "v1.0.0").unwrap(),
            Some(VersionState::Gone)
        );
        assert_eq!(
            s.version_state(a, "v1.2.0").unwrap(),
            Some(VersionState::Pending)
        );
        assert_eq!(s.follow_cursor().unwrap().unwrap().next, 40);
    }
}
