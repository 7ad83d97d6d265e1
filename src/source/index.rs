//! The module index (index.golang.org): pages of newline-delimited JSON
//! `{"Path","Version","Timestamp"}` in timestamp order, requested with
//! `?since=<last timestamp>&limit=2000`.
//!
//! `since` is inclusive, so every page after the first repeats entries
//! already seen; the state database dedupes on (path, version). Every line is
//! validated before it can become a file name: a malformed line, an invalid
//! module path or a non-canonical version is counted, reported and skipped.

use reqwest::Url;
use serde::Deserialize;

pub use crate::clock::{is_rfc3339, timestamp_cmp};
use crate::gomod;
use crate::shown;
use crate::state::IndexEntry;

/// Entries per page (the index's maximum).
pub const PAGE_LIMIT: usize = 2000;
/// The longest line an index entry can be: a module path that fits a file
/// system path, a version that fits a file name, a timestamp and the JSON
/// around them. A longer line is an invalid line.
pub const MAX_LINE: usize = 4 << 10;
/// A page larger than this is refused: `PAGE_LIMIT` lines of at most
/// `MAX_LINE` bytes (2000 real lines are ~300 KB). With the walk's requests
/// in flight this bounds what pages cost at once.
pub const PAGE_BYTES: u64 = PAGE_LIMIT as u64 * (MAX_LINE as u64 + 1);

/// A line the index served that gomirror will not use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidLine {
    /// 1-based line number within the page.
    pub line: usize,
    pub reason: String,
    /// A fingerprint of the raw line: `since` is inclusive, so a line near a
    /// page boundary is served twice and must be reported once.
    pub fingerprint: u64,
    /// The line's timestamp, when it had a valid one.
    pub timestamp: Option<String>,
}

/// One parsed page.
#[derive(Debug, Default)]
pub struct Page {
    pub entries: Vec<IndexEntry>,
    pub invalid: Vec<InvalidLine>,
    /// Lines in the page (valid or not, blank lines excluded).
    pub lines: usize,
    /// The largest usable timestamp on the page (of a well-formed line, not in
    /// the future): where the next page starts.
    pub last_timestamp: Option<String>,
    /// How many lines carry `last_timestamp` (to detect a page that cannot advance).
    pub at_last_timestamp: usize,
    /// Lines that are index entries in form (JSON with Path, Version and
    /// Timestamp), valid or not: a page with lines but none of these is not an
    /// index feed at all (an HTML error page, a captive portal).
    pub well_formed: usize,
    /// The instant of each entry in `entries` (a parallel walk records only
    /// the entries before the end of its stretch).
    pub times: Vec<jiff::Timestamp>,
    /// `last_timestamp` as an instant.
    pub last_time: Option<jiff::Timestamp>,
    /// The smallest usable timestamp on the page.
    pub first_time: Option<jiff::Timestamp>,
}

#[derive(Deserialize)]
struct RawEntry<'a> {
    #[serde(rename = "Path", borrow)]
    path: std::borrow::Cow<'a, str>,
    #[serde(rename = "Version", borrow)]
    version: std::borrow::Cow<'a, str>,
    #[serde(rename = "Timestamp", borrow)]
    timestamp: std::borrow::Cow<'a, str>,
}

/// How far ahead of this machine's clock an entry's timestamp may be. A
/// later one would become the cursor and make every later run skip what the
/// index publishes until then.
pub const CLOCK_SKEW_SECS: i64 = 10 * 60;

/// Parses one page body, accepting any timestamp.
pub fn parse_page(body: &[u8]) -> Page {
    parse_page_until(body, None)
}

/// Parses one page body; an entry stamped after `not_after` (RFC 3339) is
/// invalid.
pub fn parse_page_until(body: &[u8], not_after: Option<&str>) -> Page {
    let limit: Option<jiff::Timestamp> = not_after.and_then(|l| l.parse().ok());
    let mut page = Page::default();
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        page.lines += 1;
        let fingerprint = fingerprint(line);
        if line.len() > MAX_LINE {
            page.invalid.push(InvalidLine {
                line: i + 1,
                reason: format!(
                    "a line of {} bytes, longer than an index entry can be: {}",
                    line.len(),
                    shown::bytes(&line[..line.len().min(120)])
                ),
                fingerprint,
                timestamp: None,
            });
            continue;
        }
        let mut invalid = |reason: String, timestamp: Option<&str>| {
            page.invalid.push(InvalidLine {
                line: i + 1,
                reason,
                fingerprint,
                timestamp: timestamp.map(str::to_string),
            })
        };
        let raw: RawEntry = match serde_json::from_slice(line) {
            Ok(r) => {
                page.well_formed += 1;
                r
            }
            Err(e) => {
                invalid(
                    format!("not an index entry ({e}): {}", shown::bytes(line)),
                    None,
                );
                continue;
            }
        };
        let time: Option<jiff::Timestamp> = if is_rfc3339(&raw.timestamp) {
            raw.timestamp.parse().ok()
        } else {
            None
        };
        let Some(time) = time else {
            invalid(
                format!(
                    "{}@{}: invalid timestamp {}",
                    shown::quoted(&raw.path),
                    shown::quoted(&raw.version),
                    shown::quoted(&raw.timestamp)
                ),
                None,
            );
            continue;
        };
        if let Some(limit) = limit
            && time > limit
        {
            invalid(
                format!(
                    "{}@{}: timestamp {} is in the future (more than {} minutes ahead of this machine's clock)",
                    shown::quoted(&raw.path),
                    shown::quoted(&raw.version),
                    raw.timestamp.as_ref(),
                    CLOCK_SKEW_SECS / 60
                ),
                None,
            );
            continue;
        }
        // A well-formed line with a usable timestamp is a position in the feed
        // even when its path or version is refused: the cursor may move past it
        // (it will never become valid), so a run of refused lines cannot stall
        // the walk.
        match page.last_time {
            Some(t) if t > time => {}
            Some(t) if t == time => page.at_last_timestamp += 1,
            _ => {
                page.last_timestamp = Some(raw.timestamp.to_string());
                page.last_time = Some(time);
                page.at_last_timestamp = 1;
            }
        }
        if page.first_time.is_none_or(|f| time < f) {
            page.first_time = Some(time);
        }
        let refused = |e: gomod::ModuleError| {
            format!(
                "{}@{}: {}",
                shown::quoted(&raw.path),
                shown::quoted(&raw.version),
                shown::text(&e.to_string())
            )
        };
        if let Err(e) = gomod::check(&raw.path, &raw.version) {
            invalid(refused(e), Some(&raw.timestamp));
            continue;
        }
        // The file names must be representable too (Go's own escaping rules).
        if let Err(e) =
            gomod::escape_path(&raw.path).and_then(|_| gomod::escape_version(&raw.version))
        {
            invalid(refused(e), Some(&raw.timestamp));
            continue;
        }
        page.entries.push(IndexEntry {
            path: raw.path.into_owned(),
            version: raw.version.into_owned(),
            listed_at: Some(time.as_second()),
        });
        page.times.push(time);
    }
    page
}

/// The latest timestamp an index entry may carry now: this machine's clock
/// plus [`CLOCK_SKEW_SECS`].
pub fn latest_acceptable(now: jiff::Timestamp) -> String {
    let limit = now
        .checked_add(jiff::SignedDuration::from_secs(CLOCK_SKEW_SECS))
        .unwrap_or(jiff::Timestamp::MAX);
    limit.to_string()
}

/// The instant one nanosecond after `ts`: where a walk resumes when a whole
/// page shares one timestamp and `since` (inclusive) cannot move past it.
pub fn next_instant(ts: &str) -> Option<String> {
    let t: jiff::Timestamp = ts.parse().ok()?;
    let next = t.checked_add(jiff::SignedDuration::from_nanos(1)).ok()?;
    Some(format!("{next:.9}"))
}

/// The URL of the page starting at `since`.
pub fn page_url(index: &Url, since: Option<&str>, limit: usize) -> Url {
    let mut url = index.clone();
    {
        let mut q = url.query_pairs_mut();
        if let Some(s) = since {
            q.append_pair("since", s);
        }
        q.append_pair("limit", &limit.to_string());
    }
    url
}

fn fingerprint(line: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    line.hash(&mut h);
    h.finish()
}

pub use crate::settings::IndexSince;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_valid_and_reports_invalid_lines() {
        let body = br#"{"Path":"golang.org/x/text","Version":"v0.3.0","Timestamp":"2019-04-10T19:08:52.997264Z"}
{"Path":"../../etc","Version":"v1.0.0","Timestamp":"2019-04-10T19:08:53Z"}
not json at all
{"Path":"/abs/path","Version":"v1.0.0","Timestamp":"2019-04-10T19:08:53Z"}
{"Path":"Example.com/x","Version":"v1.0.0","Timestamp":"2019-04-10T19:08:53Z"}
{"Path":"example.com/x","Version":"v1","Timestamp":"2019-04-10T19:08:53Z"}
{"Path":"example.com/x","Version":"v2.0.0","Timestamp":"2019-04-10T19:08:53Z"}
{"Path":"example.com/x","Version":"v1.0.0","Timestamp":"yesterday"}

{"Path":"github.com/Azure/go","Version":"v1.0.0-RC1","Timestamp":"2019-04-10T19:08:54Z","Extra":1}
{"Path":"github.com/azure/go","Version":"v1.0.0","Timestamp":"2019-04-10T19:08:54Z"}
"#;
        let page = parse_page(body);
        assert_eq!(page.lines, 10);
        let got: Vec<_> = page
            .entries
            .iter()
            .map(|e| format!("{}@{}", e.path, e.version))
            .collect();
        assert_eq!(
            got,
            [
                "golang.org/x/text@v0.3.0",
                "github.com/Azure/go@v1.0.0-RC1",
                "github.com/azure/go@v1.0.0"
            ]
        );
        assert_eq!(page.invalid.len(), 7, "{:#?}", page.invalid);
        assert!(
            page.invalid[0].reason.contains("../../etc"),
            "{:?}",
            page.invalid[0]
        );
        assert_eq!(page.invalid[1].line, 3);
        assert_eq!(page.last_timestamp.as_deref(), Some("2019-04-10T19:08:54Z"));
        assert_eq!(page.at_last_timestamp, 2);
    }

    /// Issue 8.5: a far-future entry must not become the cursor.
    #[test]
    fn far_future_entries_are_invalid_and_do_not_move_the_cursor() {
        let body = concat!(
            r#"{"Path":"golang.org/x/a","Version":"v1.0.0","Timestamp":"2024-01-01T00:00:00Z"}"#,
            "\n",
            r#"{"Path":"golang.org/x/b","Version":"v1.0.0","Timestamp":"2999-01-01T00:00:00Z"}"#,
            "\n"
        );
        let page = parse_page_until(body.as_bytes(), Some("2026-12-01T00:10:00Z"));
        assert_eq!(page.entries.len(), 1);
        assert_eq!(page.last_timestamp.as_deref(), Some("2024-01-01T00:00:00Z"));
        assert_eq!(page.invalid.len(), 1);
        assert!(
            page.invalid[0].reason.contains("in the future"),
            "{:?}",
            page.invalid
        );
        // Without a limit (a parser test) it is accepted.
        assert_eq!(parse_page(body.as_bytes()).entries.len(), 2);
    }

    #[test]
    fn next_instant_is_one_nanosecond_later() {
        assert_eq!(
            next_instant("2024-01-01T00:00:00Z").as_deref(),
            Some("2024-01-01T00:00:00.000000001Z")
        );
        let n = next_instant("2019-04-10T19:08:52.997264999Z").unwrap();
        assert_eq!(n, "2019-04-10T19:08:52.997265000Z");
        assert!(timestamp_cmp(&n, "2019-04-10T19:08:52.997264999Z").is_gt());
        assert!(next_instant("not a time").is_none());
        let l = latest_acceptable("2026-12-01T00:00:00Z".parse().unwrap());
        assert_eq!(l, "2026-12-01T00:10:00Z");
    }

    #[test]
    fn rfc3339_shapes() {
        assert!(is_rfc3339("2019-04-10T19:08:52.997264Z"));
        assert!(is_rfc3339("2019-04-10T12:08:52.997264-07:00"));
        assert!(is_rfc3339("2019-04-10T19:08:52Z"));
        assert!(is_rfc3339("2019-04-10T19:08:52.123456789Z"));
        assert!(is_rfc3339("2019-04-11T00:38:52+05:30"));
        assert!(is_rfc3339("2024-02-29T00:00:00Z"));
        assert!(is_rfc3339("2019-04-10t19:08:52z"));
        assert!(!is_rfc3339("2019-04-10 19:08:52Z"));
        assert!(!is_rfc3339("2019-04-10T19:08:52."));
        assert!(!is_rfc3339("2019-04-10T19:08:52.1234567890Z"));
        assert!(!is_rfc3339("2019-04-10T19:08:52"));
        assert!(!is_rfc3339("2019-04-10T19:08:52+0700"));
        assert!(!is_rfc3339("2019-04-10T19:08:52Z[UTC]"));
        assert!(!is_rfc3339("yesterday"));
    }

    #[test]
    fn impossible_dates_are_not_timestamps() {
        for t in [
            "2023-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2019-13-01T00:00:00Z",
            "2019-04-31T00:00:00Z",
            "2019-04-00T00:00:00Z",
            "2019-04-10T24:00:00Z",
            "2019-04-10T19:60:00Z",
            "2019-04-10T19:08:52+99:00",
        ] {
            assert!(!is_rfc3339(t), "{t} accepted");
        }
    }

    #[test]
    fn leap_seconds_are_refused_like_go() {
        // Go's time.Parse (which reads the index's `since`) refuses second 60.
        assert!(!is_rfc3339("2016-12-31T23:59:60Z"));
        assert!(!is_rfc3339("2016-12-31T23:59:60.5Z"));
        assert!(is_rfc3339("2016-12-31T23:59:59.999999999Z"));
    }

    #[test]
    fn timestamps_compare_as_instants() {
        use std::cmp::Ordering::*;
        assert_eq!(
            timestamp_cmp(
                "2019-04-10T12:08:52.997264-07:00",
                "2019-04-10T19:08:52.997264Z"
            ),
            Equal
        );
        assert_eq!(
            timestamp_cmp("2019-04-10T19:08:52.9Z", "2019-04-10T19:08:52.10Z"),
            Greater
        );
        assert_eq!(
            timestamp_cmp("2019-12-31T23:59:59Z", "2020-01-01T00:00:00Z"),
            Less
        );
        // A later wall clock in an eastern offset can be the earlier instant.
        assert_eq!(
            timestamp_cmp("2019-04-11T00:30:00+05:30", "2019-04-10T19:08:52Z"),
            Less
        );
        assert_eq!(
            timestamp_cmp("2019-04-10T19:08:52.000000001Z", "2019-04-10T19:08:52Z"),
            Greater
        );
        assert_eq!(
            timestamp_cmp("2019-04-10T19:08:52.100Z", "2019-04-10T19:08:52.1Z"),
            Equal
        );
        assert_eq!(timestamp_cmp("garbage", "2019-04-10T19:08:52Z"), Less);
    }

    #[test]
    fn page_urls_encode_since() {
        let u = Url::parse("https://index.golang.org/index").unwrap();
        let p = page_url(&u, Some("2019-04-10T12:08:52.997264-07:00"), 2000);
        assert_eq!(
            p.as_str(),
            "https://index.golang.org/index?since=2019-04-10T12%3A08%3A52.997264-07%3A00&limit=2000"
        );
        assert_eq!(
            page_url(&u, None, 5).as_str(),
            "https://index.golang.org/index?limit=5"
        );
    }
}
