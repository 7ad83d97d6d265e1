//! Several upstreams behind one name: GOPROXY-style lists with the go
//! command's failover rules, for `upstream.proxy` and `sumdb.url`.
//!
//! `https://a.example,https://b.example|https://c.example`: entries are tried
//! in order. After an entry followed by `,` the next one is tried only when it
//! answered 404 or 410 ("not here"); after `|`, on any error (connection
//! refused, timeout, a 5xx, a body too large — and, one level up, bytes that
//! fail the checksum database). When every entry tried has failed, the error
//! that counts is the most telling one: "not found" only when every entry said
//! so, so that a version is never taken for gone because the one proxy that
//! has it was down.
//!
//! An entry that failed as if it were down (a transport error, a 5xx, a
//! transfer too slow) is remembered as down for [`DOWN_FOR`]: until then it
//! answers with its last error without being asked again, so a dead first
//! entry costs one timeout per run, not one per file. A `,` still stops
//! there, as the go command would.
//!
//! Every entry counts what it served and how it failed; the run records the
//! counts (`status` shows them, credentials masked).

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::Url;

use crate::http::{self, Download, FetchError, Retry, Upstream};
use crate::redact::redact_url;
pub use crate::settings::lists::{Fallback, ListEntry, describe_list};

/// How long an entry that failed as if down is left alone.
pub const DOWN_FOR: Duration = Duration::from_secs(60);

/// Adds `more` to `into`, entry by entry (by URL); a later last error wins.
pub fn add_stats(into: &mut Vec<EntryStats>, more: Vec<EntryStats>) {
    for m in more {
        match into.iter_mut().find(|e| e.url == m.url) {
            Some(e) => {
                e.requests += m.requests;
                e.files += m.files;
                e.bytes += m.bytes;
                e.not_found += m.not_found;
                e.failures += m.failures;
                e.refused += m.refused;
                if m.last_error.is_some() {
                    e.last_error = m.last_error;
                }
            }
            None => into.push(m),
        }
    }
}

/// Entries a request must not use (they served bytes that failed
/// verification for this version). Lists are short: a bit set is enough.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Avoid(u64);

impl Avoid {
    pub fn none() -> Avoid {
        Avoid(0)
    }
    pub fn with(self, i: usize) -> Avoid {
        Avoid(self.0 | 1u64.checked_shl(i as u32).unwrap_or(0))
    }
    pub fn has(self, i: usize) -> bool {
        self.0 & 1u64.checked_shl(i as u32).unwrap_or(0) != 0
    }
    pub fn count(self) -> usize {
        self.0.count_ones() as usize
    }
}

/// A value and the index of the entry that served it.
#[derive(Clone, Debug)]
pub struct Served<T> {
    pub value: T,
    pub by: usize,
}

/// What one entry did in this process.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct EntryStats {
    /// The entry's URL, credentials masked.
    pub url: String,
    pub requests: u64,
    pub files: u64,
    pub bytes: u64,
    pub not_found: u64,
    pub failures: u64,
    /// Bodies that failed verification (reported by the caller).
    pub refused: u64,
    pub last_error: Option<String>,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    files: AtomicU64,
    bytes: AtomicU64,
    not_found: AtomicU64,
    failures: AtomicU64,
    refused: AtomicU64,
}

struct Entry {
    base: Url,
    fallback: Fallback,
    label: String,
    /// Set while the entry is taken for down: when, and the error it gave.
    down: Mutex<Option<(Instant, String)>>,
    /// `sumdb/<name>/supported` asked once: whether this entry serves the
    /// checksum database at all (`None`: not asked yet, or not a proxy's).
    supported: tokio::sync::OnceCell<Result<(), String>>,
    counters: Counters,
    last_error: Mutex<Option<String>>,
}

/// Several upstreams behind one name, reached through the process's client.
pub struct UpstreamList {
    upstream: Arc<Upstream>,
    entries: Vec<Entry>,
    /// For a checksum database reached through proxies: entries whose path
    /// ends in `/sumdb/<name>` are asked `<entry>/supported` before first use.
    sumdb_name: Option<String>,
}

/// Whether an error means the entry is down, not that it lacks the file.
/// `broadly`: any transport failure, a transfer too slow or a 5xx (for an
/// entry followed by `|`, whose files the next entry serves meanwhile);
/// otherwise only a connection that could not be made at all (for an entry
/// after which the list stops: a 5xx for one file must not fail the others
/// unasked).
fn looks_down(e: &FetchError, broadly: bool) -> bool {
    match e {
        FetchError::Network { connect: true, .. } => true,
        FetchError::Network { .. } | FetchError::TooSlow { .. } => broadly,
        FetchError::Status { status, .. } => broadly && *status >= 500,
        FetchError::NotFound { .. } | FetchError::TooLarge { .. } | FetchError::Io { .. } => false,
    }
}

/// Which of two failures to report: not-found only when nothing worse
/// happened; between two others, the first (the preferred entry's).
fn more_telling(kept: Option<FetchError>, new: FetchError) -> FetchError {
    match kept {
        None => new,
        Some(k) if k.is_not_found() && !new.is_not_found() => new,
        Some(k) => k,
    }
}

impl UpstreamList {
    /// A list on `upstream`; entries without credentials of their own get
    /// the netrc file's for their host (see [`crate::http::netrc`]).
    pub fn new(upstream: Arc<Upstream>, entries: &[ListEntry]) -> UpstreamList {
        let netrc = super::netrc::load();
        UpstreamList {
            upstream,
            entries: entries
                .iter()
                .map(|e| Entry {
                    label: redact_url(&e.url).trim_end_matches('/').to_string(),
                    base: super::netrc::with_credentials(&e.url, &netrc),
                    fallback: e.fallback,
                    down: Mutex::new(None),
                    supported: tokio::sync::OnceCell::new(),
                    counters: Counters::default(),
                    last_error: Mutex::new(None),
                })
                .collect(),
            sumdb_name: None,
        }
    }

    /// A list for the checksum database `name`: an entry that is a proxy's
    /// `/sumdb/<name>` is used only if the proxy says it supports it.
    pub fn for_sumdb(upstream: Arc<Upstream>, entries: &[ListEntry], name: &str) -> UpstreamList {
        let mut list = UpstreamList::new(upstream, entries);
        list.sumdb_name = Some(name.to_string());
        list
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn upstream(&self) -> &Arc<Upstream> {
        &self.upstream
    }

    /// The list as configured, credentials masked.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for (i, e) in self.entries.iter().enumerate() {
            s.push_str(&e.label);
            if i + 1 < self.entries.len() {
                s.push(match e.fallback {
                    Fallback::NotFound => ',',
                    Fallback::AnyError => '|',
                });
            }
        }
        s
    }

    /// Entry `i`'s URL, credentials masked.
    pub fn label(&self, i: usize) -> &str {
        self.entries.get(i).map_or("?", |e| e.label.as_str())
    }

    /// Entry `i`'s host and port, for security messages.
    pub fn host_port(&self, i: usize) -> String {
        self.entries.get(i).map_or_else(
            || "?".to_string(),
            |e| {
                let host = e.base.host_str().unwrap_or("?");
                match e.base.port_or_known_default() {
                    Some(p) => format!("{host}:{p}"),
                    None => host.to_string(),
                }
            },
        )
    }

    /// Entry `i`'s base URL (credentials included: for requests only).
    pub fn base(&self, i: usize) -> Option<&Url> {
        self.entries.get(i).map(|e| &e.base)
    }

    /// Counts, for the caller, a body from entry `i` that failed verification.
    pub fn note_refused(&self, i: usize, why: &str) {
        if let Some(e) = self.entries.get(i) {
            e.counters.refused.fetch_add(1, Ordering::Relaxed);
            *e.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.to_string());
        }
    }

    /// What every entry did since the last call (the counts start again
    /// from zero), so that each pass of a run records its own.
    pub fn take_stats(&self) -> Vec<EntryStats> {
        self.entries
            .iter()
            .map(|e| EntryStats {
                url: e.label.clone(),
                requests: e.counters.requests.swap(0, Ordering::Relaxed),
                files: e.counters.files.swap(0, Ordering::Relaxed),
                bytes: e.counters.bytes.swap(0, Ordering::Relaxed),
                not_found: e.counters.not_found.swap(0, Ordering::Relaxed),
                failures: e.counters.failures.swap(0, Ordering::Relaxed),
                refused: e.counters.refused.swap(0, Ordering::Relaxed),
                last_error: e
                    .last_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take(),
            })
            .collect()
    }

    /// What every entry did so far.
    pub fn stats(&self) -> Vec<EntryStats> {
        self.entries
            .iter()
            .map(|e| EntryStats {
                url: e.label.clone(),
                requests: e.counters.requests.load(Ordering::Relaxed),
                files: e.counters.files.load(Ordering::Relaxed),
                bytes: e.counters.bytes.load(Ordering::Relaxed),
                not_found: e.counters.not_found.load(Ordering::Relaxed),
                failures: e.counters.failures.load(Ordering::Relaxed),
                refused: e.counters.refused.load(Ordering::Relaxed),
                last_error: e
                    .last_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone(),
            })
            .collect()
    }

    /// GETs `<entry>/<rel>` into memory from the first entry that has it.
    pub async fn get_bytes(
        &self,
        rel: &str,
        limit: u64,
        avoid: Avoid,
    ) -> Result<Served<Vec<u8>>, FetchError> {
        self.first(avoid, rel, |url| async move {
            let body = self.upstream.get_bytes(&url, limit).await?;
            let n = body.len() as u64;
            Ok((body, n))
        })
        .await
    }

    /// GETs `<entry>/<rel>` into `dest` from the first entry that has it.
    pub async fn get_to_file(
        &self,
        rel: &str,
        limit: u64,
        dest: &Path,
        avoid: Avoid,
    ) -> Result<Served<Download>, FetchError> {
        self.first(avoid, rel, |url| async move {
            let d = self.upstream.get_to_file(&url, limit, dest).await?;
            Ok((d, d.size))
        })
        .await
    }

    /// Tries the entries in order under the list's rules.
    async fn first<T, F, Fut>(
        &self,
        avoid: Avoid,
        rel: &str,
        get: F,
    ) -> Result<Served<T>, FetchError>
    where
        F: Fn(Url) -> Fut,
        Fut: Future<Output = Result<(T, u64), FetchError>>,
    {
        let mut kept: Option<FetchError> = None;
        for (i, e) in self.entries.iter().enumerate() {
            if avoid.has(i) {
                continue;
            }
            let url = http::join(&e.base, rel);
            let result = match self.remembered_down(e, &url) {
                Some(err) => Err(err),
                None => match self.check_supported(e).await {
                    Err(err) => Err(err),
                    Ok(()) => {
                        e.counters.requests.fetch_add(1, Ordering::Relaxed);
                        let r = get(url).await;
                        match &r {
                            Ok((_, n)) => {
                                e.counters.files.fetch_add(1, Ordering::Relaxed);
                                e.counters.bytes.fetch_add(*n, Ordering::Relaxed);
                            }
                            Err(err) if err.is_not_found() => {
                                e.counters.not_found.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(err) => {
                                e.counters.failures.fetch_add(1, Ordering::Relaxed);
                                *e.last_error.lock().unwrap_or_else(|p| p.into_inner()) =
                                    Some(err.to_string());
                                // One upstream is asked every time, as before lists.
                                if self.entries.len() > 1
                                    && looks_down(err, e.fallback == Fallback::AnyError)
                                {
                                    *e.down.lock().unwrap_or_else(|p| p.into_inner()) =
                                        Some((Instant::now(), err.to_string()));
                                }
                            }
                        }
                        r
                    }
                },
            };
            match result {
                Ok((value, _)) => return Ok(Served { value, by: i }),
                Err(err) => {
                    let go_on = err.is_not_found() || e.fallback == Fallback::AnyError;
                    let last = self.entries[i + 1..]
                        .iter()
                        .enumerate()
                        .all(|(j, _)| avoid.has(i + 1 + j));
                    if !go_on || last {
                        return Err(more_telling(kept, err));
                    }
                    kept = Some(more_telling(kept, err));
                }
            }
        }
        Err(kept.unwrap_or_else(|| FetchError::Network {
            url: rel.to_string(),
            message:
                "no upstream left to ask: every entry of the list was set aside for this version"
                    .to_string(),
            retry: Retry::Permanent,
            connect: false,
        }))
    }

    /// The error an entry gave when it was taken for down, while that lasts.
    fn remembered_down(&self, e: &Entry, url: &Url) -> Option<FetchError> {
        let mut down = e.down.lock().unwrap_or_else(|p| p.into_inner());
        match &*down {
            Some((since, msg)) if since.elapsed() < DOWN_FOR => Some(FetchError::Network {
                url: redact_url(url),
                message: format!(
                    "not asked: this upstream failed {}s ago ({msg}); it is asked again {}s after that",
                    since.elapsed().as_secs(),
                    DOWN_FOR.as_secs(),
                ),
                retry: Retry::Transient,
                connect: false,
            }),
            Some(_) => {
                *down = None;
                None
            }
            None => None,
        }
    }

    /// For a proxy's `/sumdb/<name>` in a list of several: asks
    /// `<entry>/supported` once, as the go command does; an entry that does not support it is "not found" for
    /// every request, so the next entry is tried whatever the separator.
    async fn check_supported(&self, e: &Entry) -> Result<(), FetchError> {
        let Some(name) = &self.sumdb_name else {
            return Ok(());
        };
        // With one entry there is nothing to choose: its answers say it all,
        // and a follower's no-op sync stays at two requests.
        if self.entries.len() < 2 {
            return Ok(());
        }
        let suffix = format!("/sumdb/{name}");
        if !e.base.path().trim_end_matches('/').ends_with(&suffix) {
            return Ok(());
        }
        let url = http::join(&e.base, "supported");
        let answer = e
            .supported
            .get_or_init(|| async {
                e.counters.requests.fetch_add(1, Ordering::Relaxed);
                match self.upstream.get_bytes(&url, 1 << 10).await {
                    Ok(_) => Ok(()),
                    Err(err) => Err(err.to_string()),
                }
            })
            .await;
        match answer {
            Ok(()) => Ok(()),
            Err(msg) => Err(FetchError::NotFound {
                url: redact_url(&url),
                status: if msg.contains("HTTP 410") { 410 } else { 404 },
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avoid_set() {
        let a = Avoid::none().with(0).with(3);
        assert!(a.has(0) && a.has(3) && !a.has(1));
        assert_eq!(a.count(), 2);
        assert!(!Avoid::none().with(200).has(200));
    }

    #[test]
    fn not_found_is_the_least_telling_error() {
        let nf = || FetchError::NotFound {
            url: "u".into(),
            status: 404,
        };
        let down = || FetchError::Status {
            url: "u".into(),
            status: 503,
            detail: String::new(),
        };
        assert!(!more_telling(Some(nf()), down()).is_not_found());
        assert!(!more_telling(Some(down()), nf()).is_not_found());
        assert!(more_telling(Some(nf()), nf()).is_not_found());
    }
}
