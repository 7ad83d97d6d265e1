//! Discover: what the upstream offers that the mirror may want. Pages the
//! module index from the stored cursor (each page recorded and the cursor moved
//! in one transaction, the next page fetched while one is written), then lists
//! the tagged versions of the seed modules.

use std::time::Instant;

use crate::gomod::{self, zip as modzip};
use crate::http;
use crate::http::Upstream;
use crate::report::summary::SyncReport;
use crate::report::{self, Reporter};
use crate::runner::Fatal;
use crate::settings::Settings;
use crate::source::index;
use crate::state::db::Db;
use crate::state::{self, PageStats};
use crate::store::layout;

/// Walks the index from the cursor to its end.
pub async fn discover(
    settings: &Settings,
    out: &Reporter,
    report: &mut SyncReport,
    db: &Db,
    upstream: &Upstream,
) -> Result<(), Fatal> {
    let mut since = db.call(|s| s.cursor()).await?;
    // Lines stamped at the stored cursor were on the last page of the previous run.
    let from_cursor = since.is_some();
    if since.is_none() {
        since = settings
            .index_since
            .as_ref()
            .map(|s| s.resolve(report::now()));
    }
    out.start("index", None);
    let mut body = fetch_page(upstream, settings, since.as_deref()).await?;
    let started = Instant::now();
    // Invalid lines already reported this run (pages overlap at their edges).
    let mut reported: std::collections::HashSet<u64> = std::collections::HashSet::new();
    loop {
        let not_after = index::latest_acceptable(jiff::Timestamp::now());
        let page =
            tokio::task::spawn_blocking(move || index::parse_page_until(&body, Some(&not_after)))
                .await
                .map_err(|e| Fatal(format!("index parser failed: {e}")))?;
        report.index_pages += 1;
        report.index_lines += page.lines as u64;
        for inv in &page.invalid {
            let seen_before = match (&inv.timestamp, &since) {
                (Some(t), Some(s)) => {
                    index::timestamp_cmp(t, s).is_le() && (from_cursor || report.index_pages > 1)
                }
                _ => false,
            };
            if seen_before || (reported.len() < 1_000_000 && !reported.insert(inv.fingerprint)) {
                continue;
            }
            report.invalid_lines += 1;
            let msg = format!(
                "index page since={}: line {}: {}",
                since.as_deref().unwrap_or("(start)"),
                inv.line,
                inv.reason
            );
            if report.invalid_samples.len() < 20 {
                report.invalid_samples.push(msg.clone());
            }
            out.warn(&msg);
        }
        // A feed that is not a feed (an HTML error page, a captive portal)
        // must not look like the end of the index.
        if page.lines > 0 && page.well_formed == 0 {
            return Err(Fatal(format!(
                "the module index {} answered a page of {} lines, none of them an index entry ({}); is `upstream.index` an index feed?",
                crate::settings::redact(settings.index.as_str()),
                page.lines,
                page.invalid
                    .first()
                    .map(|i| i.reason.as_str())
                    .unwrap_or("no detail")
            )));
        }
        if let (Some(newest), Some(s)) = (&page.last_timestamp, &since)
            && index::timestamp_cmp(newest, s).is_lt()
        {
            return Err(Fatal(format!(
                "the module index went back in time: asked for entries since {s}, it answered a page whose newest entry is stamped {newest}; the cursor is not moved backwards"
            )));
        }
        let advanced = match (&page.last_timestamp, &since) {
            (Some(n), Some(s)) => index::timestamp_cmp(n, s).is_gt(),
            (Some(_), None) => true,
            (None, _) => false,
        };
        let full = page.lines >= index::PAGE_LIMIT;
        let mut next = page.last_timestamp.clone().or_else(|| since.clone());
        let mut skipped = false;
        if full && !advanced {
            // A full page of one timestamp: `since` is inclusive, so asking
            // again returns the same page for ever. Move one nanosecond past it
            // and say what may have been missed.
            let at = since.clone().or_else(|| page.last_timestamp.clone());
            let skip_to = at.as_deref().and_then(index::next_instant);
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
            out.warn(&msg);
            report.index_gaps.push(msg);
            if skip_to.is_some() {
                next = skip_to;
                skipped = true;
            }
        }
        let advanced = advanced || skipped;
        // Fetch the next page while this one is written.
        let record = {
            let filter = settings.filter.clone();
            let entries = page.entries;
            let cursor = next.clone();
            db.call(move |s| -> Result<PageStats, state::StateError> {
                match cursor {
                    Some(c) => s.record_index_page(&entries, &|p| filter.wants(p), &c),
                    None => Ok(PageStats::default()),
                }
            })
        };
        let prefetch = async {
            if advanced {
                Some(fetch_page(upstream, settings, next.as_deref()).await)
            } else {
                None
            }
        };
        let (stats, next_body) = tokio::join!(record, prefetch);
        let stats = stats?;
        report.index_new += stats.new;
        report.index_new_wanted += stats.new_wanted;
        out.progress(
            report.index_pages,
            &format!(
                "pages, {} new entries, at {}",
                report.index_new,
                next.as_deref().unwrap_or("the start")
            ),
        );
        if report.index_pages.is_multiple_of(50) {
            out.verbose(&format!(
                "index: {} pages, {} entries, {} new, cursor {} ({})",
                report.index_pages,
                report.index_lines,
                report.index_new,
                next.as_deref().unwrap_or("-"),
                report::duration(started.elapsed())
            ));
        }
        match next_body {
            Some(b) => {
                body = b?;
                since = next;
            }
            None => break,
        }
    }
    out.finish();
    Ok(())
}

/// Lists the tagged versions of each seed module from the proxy.
pub async fn seed(
    settings: &Settings,
    out: &Reporter,
    report: &mut SyncReport,
    db: &Db,
    upstream: &Upstream,
) -> Result<(), Fatal> {
    for module in &settings.seeds {
        // The configuration checked every seed; a failure here is a bug to show, not skip.
        let rel = layout::list(module)
            .map_err(|e| Fatal(format!("seed {module}: cannot name its list: {e}")))?;
        let url = http::join(&settings.proxy, &rel);
        let body = match upstream.get_bytes(&url, modzip::MAX_GO_MOD).await {
            Ok(b) => b,
            Err(e) if e.is_not_found() => {
                out.warn(&format!("seed {module}: the proxy has no versions: {e}"));
                continue;
            }
            Err(e) => return Err(Fatal(format!("cannot list seed module {module}: {e}"))),
        };
        let mut entries = Vec::new();
        for line in String::from_utf8_lossy(&body).lines() {
            let Some(v) = line.split_whitespace().next() else {
                continue;
            };
            match gomod::check(module, v) {
                Ok(()) => entries.push(state::IndexEntry {
                    path: module.clone(),
                    version: v.to_string(),
                }),
                Err(e) => {
                    report.invalid_lines += 1;
                    let msg = format!("seed {module}: @v/list: {e}");
                    if report.invalid_samples.len() < 20 {
                        report.invalid_samples.push(msg.clone());
                    }
                    out.warn(&msg);
                }
            }
        }
        let filter = settings.filter.clone();
        let stats = db
            .call(move |s| s.record_entries(&entries, &|p| filter.wants(p), None))
            .await?;
        report.index_new += stats.new;
        report.index_new_wanted += stats.new_wanted;
    }
    Ok(())
}

async fn fetch_page(
    upstream: &Upstream,
    settings: &Settings,
    since: Option<&str>,
) -> Result<Vec<u8>, Fatal> {
    let url = index::page_url(&settings.index, since, index::PAGE_LIMIT);
    upstream
        .get_bytes(&url, index::PAGE_BYTES)
        .await
        .map_err(|e| Fatal(format!("cannot read the module index: {e}")))
}
