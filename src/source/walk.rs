//! The walk of the index feed, with several requests in flight when the feed
//! is long, and the index as a discovery source ([`IndexFeed`]; the pages'
//! format is `source::index`).
//!
//! Each page's `since` comes from the page before, so one walker needs one
//! round trip per 2,000 entries: about an hour for the whole index at real
//! latencies. But `since` can be any instant, so a long stretch of the feed
//! is cut into *stretches* `[t_i, t_{i+1})`, each walked page by page by its
//! own walker, at most `walkers` requests at once:
//!
//! * **Boundaries.** `since` is inclusive: the walker of `[t_i, t_{i+1})`
//!   records only entries stamped before `t_{i+1}`, and the next one starts at
//!   `since = t_{i+1}`, so an entry at a boundary is recorded by exactly one
//!   of them, however many entries share its timestamp. Within a stretch,
//!   pages overlap at their last timestamp as they always did and the state
//!   database dedupes.
//! * **Where to cut.** The index has no "latest" request. The first page is
//!   asked for as before; a page shorter than the limit is the end of the feed
//!   (the usual cron run: one request, nothing else). Otherwise the page's
//!   density estimates how many pages lie between it and now; when that is
//!   more than a few, the rest of the span, up to now, is cut evenly in time
//!   among the free walkers (on whole seconds where the span allows).
//! * **Dense stretches.** Evenly in time is not evenly in work (the feed
//!   grows denser over the years). Whenever a walker is free, the unfinished
//!   stretch with the most estimated pages left (its own density so far ×
//!   the time it has left) is cut again: it keeps the first part, the free
//!   walkers take the rest. A stretch whose end moves while its request is in
//!   flight simply drops, from that page, the entries at or past its new end.
//! * **The cursor (invariant 4).** A stretch is complete when its walker
//!   reaches the next stretch (or the end of the feed). The stored cursor is
//!   the position of the first stretch not complete (everything before it is
//!   recorded), written in the same transaction as the page that moves it;
//!   pages of later stretches are recorded without moving the cursor. A
//!   killed walk resumes at the cursor: stretches past it are walked again
//!   and deduped, never skipped.
//! * **A page of one timestamp** that fills the limit cannot be paged past
//!   with an inclusive `since`: as before, the walk moves one nanosecond on
//!   and reports an index gap.
//!
//! All the bookkeeping runs on the caller's task; only the requests (and
//! parsing the pages) run as tasks of their own, so pages keep arriving while
//! one is being recorded.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use jiff::Timestamp;
use tokio::task::JoinSet;

use reqwest::Url;

use crate::http::Upstream;
use crate::redact::redact_url;
use crate::source::index::{
    IndexSince, PAGE_BYTES, PAGE_LIMIT, Page, latest_acceptable, next_instant, page_url,
    parse_page_until,
};
use crate::source::{AnyIntake, BoxFuture, Discovery, Event, Intake, LocalBoxFuture, SourceError};

/// How many requests a long walk keeps in flight, at most.
pub const DEFAULT_WALKERS: usize = 8;
/// A stretch is cut only when it has at least this many pages left (by its
/// estimate), and no piece gets fewer than [`MIN_PIECE_PAGES`]: every cut
/// costs about one page of overlap.
const MIN_SPLIT_PAGES: f64 = 4.0;
const MIN_PIECE_PAGES: f64 = 2.0;

/// Where the pages come from (the index over HTTP; an in-memory feed in tests).
pub trait PageSource: Send + Sync + 'static {
    /// The body of the page of at most `limit` entries from `since` on.
    fn fetch(
        &self,
        since: Option<String>,
        limit: usize,
    ) -> BoxFuture<'static, Result<Vec<u8>, SourceError>>;
}

/// How a walk runs.
#[derive(Clone, Debug)]
pub struct WalkOptions {
    /// Requests in flight at most (1: one page at a time).
    pub walkers: usize,
    /// Entries per page (the index's maximum).
    pub limit: usize,
    /// The feed, for messages (credentials masked).
    pub feed: String,
    /// "Now", where the open end of the feed is assumed to be (tests fix it).
    pub now: Option<Timestamp>,
}

/// What a finished walk did (for messages and tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalkStats {
    pub requests: u64,
    pub stretches: u64,
    pub most_in_flight: u64,
    pub new: u64,
}

struct Stretch {
    id: u64,
    /// Where the stretch begins (`None`: the feed's first entry, until its
    /// first page says when that is).
    start: Option<Timestamp>,
    /// `since` of its next (or in-flight) request.
    since: Option<String>,
    since_t: Option<Timestamp>,
    /// Entries at or after this belong to the next stretch; `None` for the
    /// last stretch, which runs to the end of the feed.
    end: Option<Timestamp>,
    /// Everything of this stretch before this position is recorded: the
    /// cursor, when this is the first stretch not complete.
    recorded: Option<String>,
    pages: u64,
    /// Seconds of feed its last full page covered: the density where it is
    /// walking now (the feed grows denser over the years, so this predicts
    /// what is left better than the stretch's average).
    last_span: Option<f64>,
    /// The latest timestamp of a line inside the stretch seen so far.
    seen: Option<Timestamp>,
    done: bool,
    /// Lines at `since` were already reported (its first page repeats the
    /// previous page's last timestamp: a resumed cursor, or an earlier page).
    seen_since: bool,
}

impl Stretch {
    /// Estimated pages left, at `density` pages per second where its own is
    /// not known yet.
    fn pages_left(&self, now: Timestamp, density: f64) -> f64 {
        let (Some(from), false) = (self.since_t, self.done) else {
            return 0.0;
        };
        let to = self.end.unwrap_or(now);
        if to <= from {
            return 0.0;
        }
        let own = match (self.last_span, self.start) {
            (Some(span), _) if span > 0.0 => 1.0 / span,
            (_, Some(start)) if self.pages > 0 && from > start => {
                self.pages as f64 / secs(from, start)
            }
            _ => density,
        };
        own * secs(to, from)
    }
}

fn secs(later: Timestamp, earlier: Timestamp) -> f64 {
    (later.as_nanosecond() - earlier.as_nanosecond()) as f64 / 1e9
}

/// The `since` value of a boundary.
fn boundary(t: Timestamp) -> String {
    format!("{t:.9}")
}

type Fetched = (u64, Result<Page, SourceError>);

struct Walk {
    pages: Arc<dyn PageSource>,
    opts: WalkOptions,
    stretches: Vec<Stretch>,
    next_id: u64,
    tasks: JoinSet<Fetched>,
    stats: WalkStats,
    /// Pages and seconds of feed walked: the density of stretches that have
    /// no page yet.
    walked_pages: u64,
    walked_secs: f64,
    /// Invalid lines already reported this run (fingerprints).
    reported: HashSet<u64>,
    /// The latest timestamp seen in the completed stretches before the first
    /// one not complete.
    prefix_seen: Option<Timestamp>,
}

/// Walks the feed from `start` (the stored cursor when `from_cursor`) to its
/// end into `intake`.
pub async fn walk_feed(
    pages: Arc<dyn PageSource>,
    intake: &mut dyn Intake,
    start: Option<String>,
    from_cursor: bool,
    opts: WalkOptions,
) -> Result<WalkStats, SourceError> {
    let start_t = start.as_deref().and_then(|s| s.parse::<Timestamp>().ok());
    let mut walk = Walk {
        pages,
        opts,
        stretches: vec![Stretch {
            id: 0,
            start: start_t,
            since: start.clone(),
            since_t: start_t,
            end: None,
            recorded: start.clone(),
            pages: 0,
            last_span: None,
            seen: None,
            done: false,
            seen_since: from_cursor,
        }],
        next_id: 1,
        tasks: JoinSet::new(),
        stats: WalkStats {
            stretches: 1,
            ..WalkStats::default()
        },
        walked_pages: 0,
        walked_secs: 0.0,
        reported: HashSet::new(),
        prefix_seen: None,
    };
    let mut stored = if from_cursor { start } else { None };
    let started = Instant::now();
    let mut lines = 0u64;
    walk.launch(0);
    while let Some(joined) = walk.tasks.join_next().await {
        let (id, page) = joined.map_err(|e| SourceError::Parser(e.to_string()))?;
        let mut events = Vec::new();
        let taken = walk.take(id, page?, &mut events)?;
        lines += taken.lines as u64;
        intake.note(Event::Page { lines: taken.lines });
        for e in events {
            intake.note(e);
        }
        // Free walkers take part of the longest stretch left, before this page
        // is recorded: their requests travel while the database works.
        walk.rebalance();
        let cursor = walk.cursor(stored.as_deref());
        let position = (cursor != stored).then(|| cursor.clone()).flatten();
        if !taken.entries.is_empty() || position.is_some() {
            let stats = intake.offer(taken.entries, position).await?;
            walk.stats.new += stats.new;
        }
        stored = cursor;
        let n = walk.stats.requests - walk.tasks.len() as u64;
        intake.note(Event::Progress {
            n,
            message: format!(
                "pages, {} new entries, at {}",
                walk.stats.new,
                stored.as_deref().unwrap_or("the start")
            ),
        });
        if n.is_multiple_of(50) {
            intake.note(Event::Verbose(format!(
                "index: {n} pages, {lines} entries, {} new, cursor {}, {} requests in flight ({})",
                walk.stats.new,
                stored.as_deref().unwrap_or("-"),
                walk.tasks.len(),
                crate::clock::duration(started.elapsed())
            )));
        }
    }
    if walk.stats.stretches > 1 {
        intake.note(Event::Verbose(format!(
            "index: {} pages in {} stretches, at most {} requests at once ({})",
            walk.stats.requests,
            walk.stats.stretches,
            walk.stats.most_in_flight,
            crate::clock::duration(started.elapsed())
        )));
    }
    Ok(walk.stats)
}

/// What one page gives the intake.
struct Taken {
    entries: Vec<crate::state::IndexEntry>,
    /// Lines of the page inside its stretch.
    lines: usize,
}

impl Walk {
    fn now(&self) -> Timestamp {
        self.opts.now.unwrap_or_else(Timestamp::now)
    }

    fn position(&self, id: u64) -> usize {
        self.stretches
            .iter()
            .position(|s| s.id == id)
            .expect("a stretch in flight is in the list")
    }

    /// Sends the next request of stretch `i`.
    fn launch(&mut self, i: usize) {
        let s = &self.stretches[i];
        let (id, since) = (s.id, s.since.clone());
        let (pages, limit) = (self.pages.clone(), self.opts.limit);
        self.tasks.spawn(async move {
            let page = async {
                let body = pages.fetch(since, limit).await?;
                let not_after = latest_acceptable(Timestamp::now());
                tokio::task::spawn_blocking(move || parse_page_until(&body, Some(&not_after)))
                    .await
                    .map_err(|e| SourceError::Parser(e.to_string()))
            }
            .await;
            (id, page)
        });
        self.stats.requests += 1;
        self.stats.most_in_flight = self.stats.most_in_flight.max(self.tasks.len() as u64);
    }

    /// Takes in a page of stretch `id`: the entries inside the stretch, its
    /// next request (sent at once) or its completion.
    fn take(&mut self, id: u64, page: Page, events: &mut Vec<Event>) -> Result<Taken, SourceError> {
        let i = self.position(id);
        let limit = self.opts.limit;
        let s = &mut self.stretches[i];
        let since = s.since.clone();
        let since_t = s.since_t;
        if s.start.is_none() {
            s.start = page.first_time;
        }
        s.pages += 1;
        let (start, end, seen_since) = (s.start, s.end, s.seen_since);
        // A feed that is not a feed (an HTML error page, a captive portal)
        // must not look like the end of the index.
        if page.lines > 0 && page.well_formed == 0 {
            return Err(SourceError::Feed(format!(
                "the module index {} answered a page of {} lines, none of them an index entry ({}); is `upstream.index` an index feed?",
                self.opts.feed,
                page.lines,
                page.invalid
                    .first()
                    .map(|i| i.reason.as_str())
                    .unwrap_or("no detail")
            )));
        }
        if let (Some(newest), Some(st)) = (page.last_time, since_t)
            && newest < st
        {
            return Err(SourceError::Feed(format!(
                "the module index went back in time: asked for entries since {}, it answered a page whose newest entry is stamped {}; the cursor is not moved backwards",
                since.as_deref().unwrap_or("(start)"),
                page.last_timestamp.as_deref().unwrap_or("?")
            )));
        }
        let inside = |t: Timestamp| end.is_none_or(|e| t < e);
        let mut lines = page.lines;
        let mut seen: Option<Timestamp> = None;
        let mut entries = Vec::with_capacity(page.entries.len());
        for (e, t) in page.entries.into_iter().zip(page.times) {
            if inside(t) {
                entries.push(e);
                seen = seen.max(Some(t));
            } else {
                lines -= 1;
            }
        }
        for inv in &page.invalid {
            let t = inv
                .timestamp
                .as_deref()
                .and_then(|t| t.parse::<Timestamp>().ok());
            if let Some(t) = t
                && !inside(t)
            {
                // The next stretch reports it.
                lines -= 1;
                continue;
            }
            seen = seen.max(t);
            let seen_before = matches!((t, since_t), (Some(t), Some(st)) if t <= st && seen_since);
            if seen_before
                || (self.reported.len() < 1_000_000 && !self.reported.insert(inv.fingerprint))
            {
                continue;
            }
            events.push(Event::Invalid(format!(
                "index page since={}: line {}: {}",
                since.as_deref().unwrap_or("(start)"),
                inv.line,
                inv.reason
            )));
        }
        let full = page.lines >= limit;
        let advanced = match (page.last_time, since_t) {
            (Some(n), Some(st)) => n > st,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let reached_end = page.last_time.is_some_and(|t| !inside(t));
        let mut next = page.last_timestamp.clone().or_else(|| since.clone());
        let mut next_t = page.last_time.or(since_t);
        let mut done = reached_end || !full;
        if !done && !advanced {
            // A full page of one timestamp: `since` is inclusive, so asking
            // again returns the same page for ever. Move one nanosecond past it
            // and say what may have been missed.
            let at = since.clone().or_else(|| page.last_timestamp.clone());
            let skip_to = at.as_deref().and_then(next_instant);
            let msg = match (&at, &skip_to) {
                (Some(at), Some(to)) => format!(
                    "index page since={at} holds {} lines all stamped {at} (or refused): the index cannot be paged past them; moved on to {to}. Entries stamped exactly {at} beyond this page may have been skipped",
                    page.lines
                ),
                _ => format!(
                    "index page since={} holds {} lines and none has a usable timestamp: the walk cannot continue",
                    since.as_deref().unwrap_or("(start)"),
                    page.lines
                ),
            };
            events.push(Event::Gap(msg));
            match skip_to {
                Some(to) => {
                    next_t = to.parse().ok();
                    next = Some(to);
                    done = next_t.is_some_and(|t| !inside(t));
                }
                None => done = true,
            }
        }
        // Density bookkeeping: the feed time this page covered.
        if let (Some(from), Some(to)) = (
            since_t.or(start),
            if done { end.or(next_t) } else { next_t },
        ) && to > from
        {
            self.walked_secs += secs(to, from);
        }
        self.walked_pages += 1;
        let s = &mut self.stretches[i];
        s.seen = s.seen.max(seen);
        if done {
            s.done = true;
            s.recorded = match end {
                Some(e) => Some(boundary(e)),
                None => next,
            };
        } else {
            if let (Some(from), Some(to)) = (since_t, next_t) {
                s.last_span = Some(secs(to, from));
            }
            s.since = next.clone();
            s.since_t = next_t;
            s.recorded = next;
            s.seen_since = true;
            self.launch(i);
        }
        Ok(Taken { entries, lines })
    }

    /// Gives free walkers the stretch with the most pages left, cut evenly in
    /// time, while that is worth a request.
    fn rebalance(&mut self) {
        let now = self.now();
        loop {
            let free = self.opts.walkers.saturating_sub(self.tasks.len());
            if free == 0 {
                return;
            }
            let density = if self.walked_secs > 0.0 {
                self.walked_pages as f64 / self.walked_secs
            } else {
                0.0
            };
            let best = self
                .stretches
                .iter()
                .enumerate()
                .map(|(i, s)| (i, s.pages_left(now, density)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            let Some((i, left)) = best else { return };
            if left < MIN_SPLIT_PAGES {
                return;
            }
            let pieces = ((free + 1) as f64).min((left / MIN_PIECE_PAGES).floor()) as usize;
            let s = &self.stretches[i];
            let (Some(from), to) = (s.since_t, s.end.unwrap_or(now)) else {
                return;
            };
            let cuts = cut_points(from, to, pieces);
            if cuts.is_empty() {
                return;
            }
            let old_end = s.end;
            self.stretches[i].end = Some(cuts[0]);
            for (k, &at) in cuts.iter().enumerate() {
                let since = boundary(at);
                self.stretches.insert(
                    i + 1 + k,
                    Stretch {
                        id: self.next_id,
                        start: Some(at),
                        since: Some(since.clone()),
                        since_t: Some(at),
                        end: cuts.get(k + 1).copied().or(old_end),
                        recorded: Some(since),
                        pages: 0,
                        last_span: None,
                        seen: None,
                        done: false,
                        seen_since: false,
                    },
                );
                self.next_id += 1;
                self.stats.stretches += 1;
                self.launch(i + 1 + k);
            }
        }
    }

    /// Where the stored cursor may be (it is `stored` now): the position of
    /// the first stretch not complete (of the last one when all are). A
    /// stretch that has shown no line yet starts at a cut, an instant nobody
    /// saw: the cursor stays at the latest line seen before it, where one page
    /// at a time would have left it, so a later run misses nothing stamped in
    /// between.
    fn cursor(&mut self, stored: Option<&str>) -> Option<String> {
        while self.stretches.len() > 1 && self.stretches[0].done {
            let s = self.stretches.remove(0);
            self.prefix_seen = self.prefix_seen.max(s.seen);
        }
        let front = &self.stretches[0];
        if front.id == 0 || front.seen.is_some() {
            return front.recorded.clone();
        }
        let stored_t = stored.and_then(|s| s.parse::<Timestamp>().ok());
        match self.prefix_seen {
            Some(t) if stored_t.is_none_or(|s| t > s) => Some(t.to_string()),
            _ => stored.map(str::to_string),
        }
    }
}

/// `pieces - 1` instants cutting `(from, to)` evenly, strictly increasing and
/// after `from`; on whole seconds when the pieces are longer than a minute
/// (readable positions in logs and cursors).
fn cut_points(from: Timestamp, to: Timestamp, pieces: usize) -> Vec<Timestamp> {
    let (a, b) = (from.as_nanosecond(), to.as_nanosecond());
    if pieces < 2 || b <= a {
        return Vec::new();
    }
    let span = b - a;
    let step = span / pieces as i128;
    let mut cuts = Vec::new();
    let mut last = a;
    for j in 1..pieces as i128 {
        let mut at = a + span * j / pieces as i128;
        if step > 60_000_000_000 {
            at = at.div_euclid(1_000_000_000) * 1_000_000_000;
        }
        if at <= last || at >= b {
            continue;
        }
        if let Ok(t) = Timestamp::from_nanosecond(at) {
            cuts.push(t);
            last = at;
        }
    }
    cuts
}

/// The module index as a discovery source: pages from the stored cursor (or
/// `index_since` on a first run) to the end of the feed, several at once
/// where the feed is long ([`crate::source::walk`]).
pub struct IndexFeed {
    upstream: Arc<Upstream>,
    url: Url,
    since: Option<IndexSince>,
    walkers: usize,
}

impl IndexFeed {
    /// The index at `url`, walked with at most `walkers` requests in
    /// flight (`upstream.index_walkers`; 1 walks one page at a time).
    pub fn new(
        upstream: Arc<Upstream>,
        url: Url,
        since: Option<IndexSince>,
        walkers: usize,
    ) -> IndexFeed {
        IndexFeed {
            upstream,
            url,
            since,
            walkers: walkers.max(1),
        }
    }

    async fn walk(&self, intake: &mut dyn Intake) -> Result<(), SourceError> {
        let mut since = intake.position().await?;
        // Lines stamped at the stored cursor were on the last page of the previous run.
        let from_cursor = since.is_some();
        if since.is_none() {
            since = self.since.as_ref().map(|s| s.resolve(crate::clock::now()));
        }
        intake.note(Event::Started("index"));
        let pages = Arc::new(HttpPages {
            upstream: self.upstream.clone(),
            url: self.url.clone(),
        });
        let opts = WalkOptions {
            walkers: self.walkers,
            limit: PAGE_LIMIT,
            feed: redact_url(&self.url),
            now: None,
        };
        walk_feed(pages, intake, since, from_cursor, opts).await?;
        intake.note(Event::Finished);
        Ok(())
    }
}

/// The index's pages over HTTP.
struct HttpPages {
    upstream: Arc<Upstream>,
    url: Url,
}

impl PageSource for HttpPages {
    fn fetch(
        &self,
        since: Option<String>,
        limit: usize,
    ) -> BoxFuture<'static, Result<Vec<u8>, SourceError>> {
        let upstream = self.upstream.clone();
        let url = page_url(&self.url, since.as_deref(), limit);
        Box::pin(async move {
            upstream
                .get_bytes(&url, PAGE_BYTES)
                .await
                .map_err(SourceError::Index)
        })
    }
}

impl Discovery for IndexFeed {
    fn describe(&self) -> String {
        format!("the module index {}", redact_url(&self.url))
    }

    fn discover<'a>(
        &'a self,
        intake: &'a mut dyn AnyIntake,
    ) -> LocalBoxFuture<'a, Result<(), SourceError>> {
        Box::pin(self.walk(intake))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};
    use std::sync::Mutex;

    use super::*;
    use crate::source::LocalBoxFuture;
    use crate::state::{IndexEntry, PageStats};

    /// An in-memory index: lines in timestamp order, `since` inclusive at
    /// nanosecond precision, like index.golang.org.
    struct MemFeed {
        lines: Vec<(i128, String)>,
        requests: Mutex<Vec<Option<String>>>,
        /// The request (1-based) that fails, as an unreachable index does.
        fail_at: Option<usize>,
    }

    impl MemFeed {
        fn new(mut entries: Vec<Line>) -> Arc<MemFeed> {
            entries.sort_by_key(|e| e.0);
            let lines = entries
                .into_iter()
                .map(|(ns, p, v)| {
                    let t = Timestamp::from_nanosecond(ns).unwrap();
                    (
                        ns,
                        format!(r#"{{"Path":"{p}","Version":"{v}","Timestamp":"{t}"}}"#),
                    )
                })
                .collect();
            Arc::new(MemFeed {
                lines,
                requests: Mutex::new(Vec::new()),
                fail_at: None,
            })
        }

        fn requests(&self) -> Vec<Option<String>> {
            self.requests.lock().unwrap().clone()
        }
    }

    impl PageSource for MemFeed {
        fn fetch(
            &self,
            since: Option<String>,
            limit: usize,
        ) -> BoxFuture<'static, Result<Vec<u8>, SourceError>> {
            let n = {
                let mut r = self.requests.lock().unwrap();
                r.push(since.clone());
                r.len()
            };
            if self.fail_at == Some(n) {
                return Box::pin(async { Err(SourceError::Feed("unreachable".into())) });
            }
            let from = since
                .as_deref()
                .map(|s| s.parse::<Timestamp>().unwrap().as_nanosecond())
                .unwrap_or(i128::MIN);
            let i = self.lines.partition_point(|l| l.0 < from);
            let mut body = String::new();
            for (_, l) in self.lines[i..].iter().take(limit) {
                body.push_str(l);
                body.push('\n');
            }
            Box::pin(async move {
                // Pages come back out of order.
                tokio::time::sleep(std::time::Duration::from_micros(fastrand::u64(0..300))).await;
                Ok(body.into_bytes())
            })
        }
    }

    /// A state database in miniature: what is recorded, the cursor, and a
    /// check of invariant 4 at every commit.
    struct Recorded {
        truth: Vec<(i128, IndexEntry)>,
        /// Entries a correct walk may skip (the rest of a burst larger than a page).
        may_skip: BTreeSet<(String, String)>,
        versions: HashMap<(String, String), u32>,
        /// Entries of `truth` (in time order) checked against the cursor.
        checked: usize,
        cursor: Option<String>,
        commits: u64,
        /// The commit that fails (a killed run: nothing of it is stored).
        fail_at: Option<u64>,
        gaps: Vec<String>,
        invalid: Vec<String>,
        new: u64,
    }

    impl Recorded {
        fn new(truth: &[Line]) -> Recorded {
            let mut truth = truth.to_vec();
            truth.sort_by_key(|e| e.0);
            Recorded {
                truth: truth
                    .iter()
                    .map(|(t, p, v)| {
                        (
                            *t,
                            IndexEntry {
                                path: p.clone(),
                                version: v.clone(),
                            },
                        )
                    })
                    .collect(),
                may_skip: BTreeSet::new(),
                versions: HashMap::new(),
                checked: 0,
                cursor: None,
                commits: 0,
                fail_at: None,
                gaps: Vec::new(),
                invalid: Vec::new(),
                new: 0,
            }
        }

        /// Every entry before the cursor is recorded (checked from where the
        /// last check ended: the cursor never moves back).
        fn check_cursor(&mut self) {
            let Some(c) = &self.cursor else { return };
            let c = c.parse::<Timestamp>().unwrap().as_nanosecond();
            while self.checked < self.truth.len() && self.truth[self.checked].0 < c {
                let e = &self.truth[self.checked].1;
                let key = (e.path.clone(), e.version.clone());
                if !self.versions.contains_key(&key) && !self.may_skip.contains(&key) {
                    panic!(
                        "cursor {:?} passed {}@{} (stamped {}), not recorded",
                        self.cursor, e.path, e.version, self.truth[self.checked].0
                    );
                }
                self.checked += 1;
            }
        }

        fn missing(&self) -> Vec<String> {
            self.truth
                .iter()
                .filter(|(_, e)| {
                    let key = (e.path.clone(), e.version.clone());
                    !self.versions.contains_key(&key) && !self.may_skip.contains(&key)
                })
                .map(|(_, e)| format!("{}@{}", e.path, e.version))
                .collect()
        }
    }

    impl crate::source::Events for Recorded {
        fn note(&mut self, event: Event) {
            match event {
                Event::Gap(m) => self.gaps.push(m),
                Event::Invalid(m) => self.invalid.push(m),
                _ => {}
            }
        }
    }

    impl Intake for Recorded {
        fn position(&mut self) -> LocalBoxFuture<'_, Result<Option<String>, SourceError>> {
            Box::pin(async move { Ok(self.cursor.clone()) })
        }

        fn offer(
            &mut self,
            entries: Vec<IndexEntry>,
            position: Option<String>,
        ) -> LocalBoxFuture<'_, Result<PageStats, SourceError>> {
            Box::pin(async move {
                self.commits += 1;
                if self.fail_at == Some(self.commits) {
                    return Err(SourceError::Parser("killed".into()));
                }
                let mut stats = PageStats::default();
                for e in entries {
                    let n = self.versions.entry((e.path, e.version)).or_insert(0);
                    if *n == 0 {
                        stats.new += 1;
                    }
                    *n += 1;
                }
                self.new += stats.new;
                if let Some(p) = position {
                    if let (Some(old), Ok(new)) = (&self.cursor, p.parse::<Timestamp>()) {
                        assert!(
                            new >= old.parse::<Timestamp>().unwrap(),
                            "cursor moved back from {old} to {p}"
                        );
                    }
                    self.cursor = Some(p);
                }
                self.check_cursor();
                Ok(stats)
            })
        }
    }

    /// An entry of a test feed: its instant, path and version.
    type Line = (i128, String, String);

    fn sec(s: i64) -> i128 {
        // 2024-01-01T00:00:00Z
        (1_704_067_200 + s) as i128 * 1_000_000_000
    }

    fn at(ns: i128) -> Timestamp {
        Timestamp::from_nanosecond(ns).unwrap()
    }

    fn walk(
        feed: &Arc<MemFeed>,
        rec: &mut Recorded,
        walkers: usize,
        limit: usize,
        now: i128,
    ) -> Result<WalkStats, SourceError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let start = rec.cursor.clone();
        let from_cursor = start.is_some();
        let opts = WalkOptions {
            walkers,
            limit,
            feed: "test".into(),
            now: Some(at(now)),
        };
        let pages: Arc<dyn PageSource> = feed.clone();
        rt.block_on(walk_feed(pages, rec, start, from_cursor, opts))
    }

    fn entries(stamps: impl IntoIterator<Item = i128>) -> Vec<Line> {
        stamps
            .into_iter()
            .enumerate()
            .map(|(k, t)| {
                (
                    t,
                    format!("example.com/m{}", k / 3),
                    format!("v1.0.{}", k % 3),
                )
            })
            .collect()
    }

    #[test]
    fn short_feed_is_one_request() {
        let truth = entries((0..5).map(|k| sec(100 + k)));
        let feed = MemFeed::new(truth.clone());
        let mut rec = Recorded::new(&truth);
        rec.cursor = Some(at(sec(50)).to_string());
        let stats = walk(&feed, &mut rec, 8, 2000, sec(10_000_000)).unwrap();
        assert_eq!(feed.requests().len(), 1);
        assert_eq!(stats.requests, 1);
        assert_eq!(rec.new, 5);
        assert_eq!(rec.cursor.as_deref(), Some("2024-01-01T00:01:44Z"));
        // Nothing new: one request, the cursor stays.
        let stats = walk(&feed, &mut rec, 8, 2000, sec(10_000_000)).unwrap();
        assert_eq!((stats.requests, stats.new), (1, 0));
        assert_eq!(rec.cursor.as_deref(), Some("2024-01-01T00:01:44Z"));
    }

    #[test]
    fn long_feed_is_walked_in_parallel_exactly_once() {
        // 3,000 entries, one every ten seconds: 300 pages of 10.
        let truth = entries((0..3000).map(|k| sec(10 * k)));
        let feed = MemFeed::new(truth.clone());
        let mut rec = Recorded::new(&truth);
        let now = sec(30_000);
        let stats = walk(&feed, &mut rec, 6, 10, now).unwrap();
        assert_eq!(rec.missing(), Vec::<String>::new());
        assert_eq!(rec.new, 3000, "every entry new exactly once");
        assert_eq!(stats.most_in_flight, 6);
        assert!(stats.stretches >= 6, "{stats:?}");
        // Pages overlap by one entry (9 new per page); a cut costs about a
        // page more.
        assert!(
            stats.requests <= 3000 / 9 + 2 * stats.stretches + 2,
            "{stats:?}"
        );
        assert_eq!(rec.cursor.as_deref(), Some("2024-01-01T08:19:50Z"));
        assert!(rec.gaps.is_empty(), "{:?}", rec.gaps);
    }

    /// A feed that ends long before now: the empty stretches after it do not
    /// move the cursor past the last line seen (an entry stamped in between
    /// later would be missed).
    #[test]
    fn empty_stretches_leave_the_cursor_at_the_last_line() {
        let truth = entries((0..300).map(sec));
        let feed = MemFeed::new(truth.clone());
        let mut rec = Recorded::new(&truth);
        let stats = walk(&feed, &mut rec, 8, 10, sec(365 * 86_400)).unwrap();
        assert!(stats.stretches > 1, "{stats:?}");
        assert_eq!(rec.missing(), Vec::<String>::new());
        assert_eq!(rec.cursor.as_deref(), Some("2024-01-01T00:04:59Z"));
    }

    #[test]
    fn dense_stretches_are_cut_again() {
        // Density grows as t^5 over a year: nearly all entries in the last
        // months, where an even cut in time puts one walker.
        let n = 4000i128;
        let year = 365 * 86_400i128;
        let truth = entries((0..n).map(|k| {
            sec(0) + ((year * 1_000_000_000) as f64 * (k as f64 / n as f64).powi(5)) as i128 + k
        }));
        let feed = MemFeed::new(truth.clone());
        let mut rec = Recorded::new(&truth);
        let stats = walk(&feed, &mut rec, 8, 10, sec(0) + year * 1_000_000_000).unwrap();
        assert_eq!(rec.missing(), Vec::<String>::new());
        assert_eq!(rec.new as i128, n);
        assert!(stats.stretches > 16, "work was not stolen: {stats:?}");
        assert!(stats.requests < 4000 / 9 + 2 * stats.stretches, "{stats:?}");
    }

    /// Entries on whole seconds, several per second and sometimes more than a
    /// page of them; cuts fall on whole seconds too, so boundaries land on
    /// shared timestamps.
    fn bursty() -> (Vec<Line>, BTreeSet<(String, String)>) {
        let mut truth = Vec::new();
        let mut skip = BTreeSet::new();
        let mut k = 0;
        for s in 0..3000i64 {
            let count = match s % 97 {
                13 => 14, // more than a page of 10 at one instant
                _ => 2 + (s * 7919 % 4) as usize,
            };
            for j in 0..count {
                let e = (sec(s), format!("example.com/b{k}"), "v1.0.0".to_string());
                if j >= 10 {
                    skip.insert((e.1.clone(), e.2.clone()));
                }
                truth.push(e);
                k += 1;
            }
        }
        (truth, skip)
    }

    #[test]
    fn boundaries_on_shared_timestamps_record_each_entry_once() {
        let (truth, skip) = bursty();
        let feed = MemFeed::new(truth.clone());
        let now = sec(3000);

        let mut seq = Recorded::new(&truth);
        seq.may_skip = skip.clone();
        let seq_stats = walk(&feed, &mut seq, 1, 10, now).unwrap();
        assert_eq!(seq_stats.stretches, 1);
        assert_eq!(seq.missing(), Vec::<String>::new());

        let feed = MemFeed::new(truth.clone());
        let mut par = Recorded::new(&truth);
        par.may_skip = skip.clone();
        let stats = walk(&feed, &mut par, 8, 10, now).unwrap();
        assert!(stats.stretches > 1, "{stats:?}");
        assert_eq!(par.missing(), Vec::<String>::new());
        // The same entries as one page at a time, the same gaps reported.
        let keys = |r: &Recorded| r.versions.keys().cloned().collect::<BTreeSet<_>>();
        assert_eq!(keys(&par), keys(&seq));
        assert_eq!(par.new, seq.new);
        assert_eq!(par.gaps.len(), seq.gaps.len());
        assert_eq!(par.gaps.len(), 3000 / 97 + 1);
        // Some stretch began exactly at a timestamp several entries share.
        let mut per_instant: HashMap<i128, usize> = HashMap::new();
        for e in &truth {
            *per_instant.entry(e.0).or_default() += 1;
        }
        let shared: BTreeSet<i128> = per_instant
            .into_iter()
            .filter(|&(_, n)| n > 1)
            .map(|(t, _)| t)
            .collect();
        let boundary_hits = feed
            .requests()
            .iter()
            .flatten()
            .filter(|s| s.ends_with(".000000000Z"))
            .filter(|s| shared.contains(&s.parse::<Timestamp>().unwrap().as_nanosecond()))
            .count();
        assert!(boundary_hits > 0, "no boundary on a shared timestamp");
        assert_eq!(par.new as usize, truth.len() - skip.len());
    }

    #[test]
    fn invalid_lines_at_boundaries_are_reported_once() {
        let (truth, skip) = bursty();
        // Refused module paths on many (shared) timestamps.
        let bad: Vec<Line> = (0..300)
            .map(|i| {
                (
                    sec(i * 10),
                    format!("Bad.example/UPPER{i}"),
                    "v1.0.0".to_string(),
                )
            })
            .collect();
        let mut all = truth.clone();
        all.extend(bad.iter().cloned());
        let now = sec(3000);
        for walkers in [1, 8] {
            let feed = MemFeed::new(all.clone());
            let mut rec = Recorded::new(&truth);
            rec.may_skip = skip.clone();
            walk(&feed, &mut rec, walkers, 10, now).unwrap();
            let mut reported: Vec<&String> = rec.invalid.iter().collect();
            reported.sort();
            reported.dedup();
            assert_eq!(reported.len(), rec.invalid.len(), "reported twice");
            // Bad lines inside a skipped burst remainder are not seen at all.
            assert!(
                rec.invalid.len() >= 290 && rec.invalid.len() <= 300,
                "walkers {walkers}: {} reports",
                rec.invalid.len()
            );
        }
    }

    #[test]
    fn a_killed_walk_resumes_without_gap_or_double_count() {
        let (truth, skip) = bursty();
        let truth: Vec<_> = truth.into_iter().filter(|e| e.0 < sec(300)).collect();
        let skip: BTreeSet<_> = skip
            .into_iter()
            .filter(|k| truth.iter().any(|e| (&e.1, &e.2) == (&k.0, &k.1)))
            .collect();
        let now = sec(300);
        let commits;
        let mut n = 1;
        loop {
            let feed = MemFeed::new(truth.clone());
            let mut rec = Recorded::new(&truth);
            rec.may_skip = skip.clone();
            rec.fail_at = Some(n);
            let killed = walk(&feed, &mut rec, 6, 10, now);
            if killed.is_ok() {
                commits = n - 1;
                break;
            }
            // Everything before the cursor is recorded (checked at each
            // commit); the next run resumes there.
            rec.fail_at = None;
            walk(&feed, &mut rec, 6, 10, now).unwrap();
            assert_eq!(rec.missing(), Vec::<String>::new(), "killed at commit {n}");
            assert_eq!(
                rec.new as usize,
                truth.len() - skip.len(),
                "killed at commit {n}"
            );
            n += 1;
        }
        assert!(commits > 20, "{commits}");
    }

    /// A request that fails stops the walk (as one page at a time did), the
    /// other requests are dropped, the cursor is where the completed prefix
    /// ends, and the next walk finishes the feed.
    #[test]
    fn a_failed_request_stops_the_walk_behind_the_cursor() {
        let truth = entries((0..2000).map(|k| sec(10 * k)));
        for fail_at in [2, 5, 9, 17, 40] {
            let mut feed = MemFeed::new(truth.clone());
            Arc::get_mut(&mut feed).unwrap().fail_at = Some(fail_at);
            let mut rec = Recorded::new(&truth);
            let err = walk(&feed, &mut rec, 6, 10, sec(20_000)).unwrap_err();
            assert!(err.to_string().contains("unreachable"), "{err}");
            let feed = MemFeed::new(truth.clone());
            walk(&feed, &mut rec, 6, 10, sec(20_000)).unwrap();
            assert_eq!(rec.missing(), Vec::<String>::new(), "failed at {fail_at}");
            assert_eq!(rec.new, 2000);
        }
    }

    #[test]
    fn cut_points_are_increasing_and_inside() {
        let from = at(sec(0) + 123);
        let to = at(sec(86_400));
        let cuts = cut_points(from, to, 8);
        assert_eq!(cuts.len(), 7);
        assert!(cuts.windows(2).all(|w| w[0] < w[1]));
        assert!(cuts.iter().all(|&c| c > from && c < to));
        assert!(cuts.iter().all(|c| c.as_nanosecond() % 1_000_000_000 == 0));
        // A span of a few nanoseconds cannot be cut into more pieces than it has.
        let cuts = cut_points(at(sec(0)), at(sec(0) + 3), 8);
        assert!(cuts.len() <= 2, "{cuts:?}");
        assert!(cut_points(at(sec(5)), at(sec(5)), 4).is_empty());
    }
}
