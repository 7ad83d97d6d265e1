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
//! Failover comes before backing off: each entry is asked once, and after
//! `|` the next one is asked at once, as the go command does; only when
//! every entry the rules reach has failed, and some failure could pass
//! (a 5xx, a timeout), does the list wait and ask those again, in rounds,
//! up to the HTTP client's number of attempts. An entry that failed as if
//! it were down (a transport error, a 5xx, a transfer too slow) is
//! remembered as down for [`DOWN_FOR`]: until then it answers with its last
//! error without being asked again, so a dead first entry costs one timeout
//! per run, not one per file. A `,` still stops there, as the go command
//! would.
//!
//! A list holds at most [`MAX_ENTRIES`] entries: the set of entries a
//! version must not be asked from again ([`Avoid`]) is one 64-bit word.
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
pub use crate::settings::lists::MAX_ENTRIES;

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
/// verification for this version): a bit per entry, which is why a list
/// holds at most [`MAX_ENTRIES`] (`parse_list` refuses more).
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
    /// `sumdb/<name>/supported`: whether this entry serves the checksum
    /// database at all, once it said so (200) or said not (404, 410);
    /// `None` until then. A failure that says neither (a 5xx, a timeout) is
    /// not remembered: the entry is asked again next time.
    supported: tokio::sync::Mutex<Option<bool>>,
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

/// How asking an entry once failed.
struct Failure {
    err: FetchError,
    /// Asking again in a later round cannot change it.
    settled: bool,
    /// The entry was asked and answered with a failure (not "not found",
    /// not set aside unasked).
    asked: bool,
}

/// Which of two failures [`more_telling`] reports.
#[derive(Debug, PartialEq, Eq)]
enum Tells {
    Kept,
    New,
}

/// Which of two failures to report: not-found only when nothing worse
/// happened; between two others, the first (the preferred entry's).
fn more_telling(kept: Option<&FetchError>, new: &FetchError) -> Tells {
    match kept {
        None => Tells::New,
        Some(k) if k.is_not_found() && !new.is_not_found() => Tells::New,
        Some(_) => Tells::Kept,
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
                    supported: tokio::sync::Mutex::new(None),
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

    /// Entry `i`'s host and port, for security messages (a `file://`
    /// entry's directory).
    pub fn host_port(&self, i: usize) -> String {
        self.entries.get(i).map_or_else(
            || "?".to_string(),
            |e| {
                if e.base.scheme() == "file" {
                    return e.label.clone();
                }
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
            let body = self.upstream.get_bytes_tries(&url, limit, 1).await?;
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
            let d = self
                .upstream
                .get_to_file_tries(&url, limit, dest, 1)
                .await?;
            let size = d.size;
            Ok((d, size))
        })
        .await
    }

    /// Asks entry `i` once (unless it is taken for down, or does not serve
    /// the checksum database). The request is counted when `count` (once
    /// per request to the list, however many rounds ask the entry), and
    /// what it served; a failure is counted by the caller, once the request
    /// is over.
    async fn ask_once<T, F, Fut>(
        &self,
        i: usize,
        url: Url,
        get: &F,
        count: bool,
    ) -> Result<(T, u64), Failure>
    where
        F: Fn(Url) -> Fut,
        Fut: Future<Output = Result<(T, u64), FetchError>>,
    {
        let e = &self.entries[i];
        let failure = |err, settled, asked| Failure {
            err,
            settled,
            asked,
        };
        if let Some(err) = self.remembered_down(e, &url) {
            return Err(failure(err, true, false));
        }
        match self.check_supported(e).await {
            Ok(()) => {}
            Err(err) => {
                let settled = err.is_not_found() || !err.is_retryable();
                return Err(failure(err, settled, false));
            }
        }
        if count {
            e.counters.requests.fetch_add(1, Ordering::Relaxed);
        }
        if e.base.scheme() == "file"
            && let Err(err) = http::local::check_contained(&e.base, &url)
        {
            *e.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(err.to_string());
            return Err(failure(err, true, true));
        }
        match get(url).await {
            Ok((value, n)) => {
                e.counters.files.fetch_add(1, Ordering::Relaxed);
                e.counters.bytes.fetch_add(n, Ordering::Relaxed);
                Ok((value, n))
            }
            Err(err) if err.is_not_found() => {
                e.counters.not_found.fetch_add(1, Ordering::Relaxed);
                Err(failure(err, true, false))
            }
            Err(err) => {
                *e.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(err.to_string());
                // One upstream is asked every time, as before lists.
                let down =
                    self.entries.len() > 1 && looks_down(&err, e.fallback == Fallback::AnyError);
                if down {
                    *e.down.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some((Instant::now(), err.to_string()));
                }
                let settled = down || !err.is_retryable();
                Err(failure(err, settled, true))
            }
        }
    }

    /// Tries the entries under the list's rules: failover first (each entry
    /// reached is asked once a round), backing off only when every entry
    /// reached has failed and some failure could pass on a retry; then the
    /// entries whose failure could pass are asked again, in a new round.
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
        let tries = self.upstream.retry_policy().attempts.max(1);
        let n = self.entries.len();
        // Each entry's last error this request; `settled`: it will not change
        // (not found, a failure no retry can pass, taken for down); `failed`:
        // its last answer was a failure (counted once the request is over).
        let mut last: Vec<Option<FetchError>> = (0..n).map(|_| None).collect();
        let mut settled = vec![false; n];
        let mut asked = vec![false; n];
        let mut failed = vec![false; n];
        let count_failures = |failed: &[bool]| {
            for (e, _) in self.entries.iter().zip(failed).filter(|(_, f)| **f) {
                e.counters.failures.fetch_add(1, Ordering::Relaxed);
            }
        };
        for round in 0..tries {
            let started = Instant::now();
            // The entry whose error tells most, and one worth asking again.
            let mut kept: Option<usize> = None;
            let mut again: Option<usize> = None;
            for (i, e) in self.entries.iter().enumerate() {
                if avoid.has(i) {
                    continue;
                }
                if !settled[i] {
                    let url = http::join(&e.base, rel);
                    match self.ask_once(i, url, &get, !asked[i]).await {
                        Ok((value, _)) => {
                            failed[i] = false;
                            count_failures(&failed);
                            return Ok(Served { value, by: i });
                        }
                        Err(f) => {
                            asked[i] = true;
                            settled[i] = f.settled;
                            failed[i] = f.asked;
                            last[i] = Some(f.err);
                        }
                    }
                }
                let err = last[i].as_ref().expect("set above or in an earlier round");
                if !settled[i] && again.is_none() {
                    again = Some(i);
                }
                kept = Some(match kept {
                    Some(k) if more_telling(last[k].as_ref(), err) == Tells::Kept => k,
                    _ => i,
                });
                if !(err.is_not_found() || e.fallback == Fallback::AnyError) {
                    // `,` after an entry that failed otherwise: the list stops here.
                    break;
                }
            }
            let Some(k) = kept else { break };
            match again {
                Some(a) if round + 1 < tries => {
                    let policy = self.upstream.retry_policy();
                    let delay = policy.delay(round, None);
                    let e = last[a].as_ref().expect("kept");
                    http::announce_retry(e, delay, round + 2, tries, started.elapsed());
                    tokio::time::sleep(delay).await;
                }
                _ => {
                    count_failures(&failed);
                    return Err(last[k].take().expect("kept"));
                }
            }
        }
        Err(FetchError::Network {
            url: rel.to_string(),
            message:
                "no upstream left to ask: every entry of the list was set aside for this version"
                    .to_string(),
            retry: Retry::Permanent,
            connect: false,
        })
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
        // A module cache's `sumdb/<name>/` has no `supported`: the go
        // command caches lookups and tiles there, nothing else.
        if !e.base.path().trim_end_matches('/').ends_with(&suffix) || e.base.scheme() == "file" {
            return Ok(());
        }
        let url = http::join(&e.base, "supported");
        // One question at a time per entry; a definite answer is kept.
        let mut known = e.supported.lock().await;
        let supported = match *known {
            Some(s) => s,
            None => {
                e.counters.requests.fetch_add(1, Ordering::Relaxed);
                match self.upstream.get_bytes_tries(&url, 1 << 10, 1).await {
                    Ok(_) => true,
                    Err(err) if err.is_not_found() => false,
                    // Neither yes nor no (a 5xx, a timeout): this request
                    // fails as a request to the entry would; the next asks again.
                    Err(err) => return Err(err),
                }
            }
        };
        *known = Some(supported);
        if supported {
            Ok(())
        } else {
            Err(FetchError::NotFound {
                url: redact_url(&url),
                status: 404,
            })
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

    use crate::http::tests::{RawServer, client, reply};
    use std::sync::Arc;
    use std::time::Duration;

    fn entries(server: &RawServer, paths: &[&str], sep: Fallback) -> Vec<ListEntry> {
        let mut v: Vec<ListEntry> = paths
            .iter()
            .map(|p| ListEntry {
                url: server.url(p),
                fallback: sep,
            })
            .collect();
        if let Some(l) = v.last_mut() {
            l.fallback = Fallback::NotFound;
        }
        v
    }

    /// The 64th entry (the last a list may have) is avoided like the first:
    /// a liar there is never asked again for that version.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_last_entry_of_the_longest_list_can_be_avoided() {
        let server = RawServer::start(|path, stream| {
            if path.starts_with("/e63/") {
                reply(stream, 200, "", b"lie")
            } else {
                reply(stream, 404, "", b"")
            }
        });
        let paths: Vec<String> = (0..MAX_ENTRIES).map(|i| format!("/e{i}/")).collect();
        let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
        let list = UpstreamList::new(
            Arc::new(client(Duration::from_secs(5), 1)),
            &entries(&server, &paths, Fallback::NotFound),
        );
        let got = list
            .get_bytes("m/@v/v1.0.0.mod", 100, Avoid::none())
            .await
            .unwrap();
        assert_eq!((got.value.as_slice(), got.by), (&b"lie"[..], 63));
        let avoid = Avoid::none().with(got.by);
        let e = list
            .get_bytes("m/@v/v1.0.0.mod", 100, avoid)
            .await
            .unwrap_err();
        assert!(e.is_not_found(), "{e}");
        assert_eq!(server.hits("/e63/m/@v/v1.0.0.mod"), 1, "avoided");
    }

    /// After `|` the next entry is asked at once; the retry ladder is run
    /// only when every entry has failed, and then only on the entries
    /// whose failure a retry could pass.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failover_comes_before_backing_off() {
        let server = RawServer::start(|path, stream| {
            if path.starts_with("/ok/") {
                reply(stream, 200, "", b"ok")
            } else {
                reply(stream, 503, "", b"")
            }
        });
        let up = Arc::new(client(Duration::from_secs(5), 5));
        let list = UpstreamList::new(
            up.clone(),
            &entries(&server, &["/down/", "/ok/"], Fallback::AnyError),
        );
        let got = list.get_bytes("a.info", 100, Avoid::none()).await.unwrap();
        assert_eq!(got.by, 1);
        assert_eq!(server.hits("/down/a.info"), 1, "asked once, not five times");
        assert_eq!(server.hits("/ok/a.info"), 1);

        // Both failing: the first is taken for down after one answer, the
        // last is asked in every round (five in all).
        let list = UpstreamList::new(
            up.clone(),
            &entries(&server, &["/x/", "/y/"], Fallback::AnyError),
        );
        let e = list
            .get_bytes("b.info", 100, Avoid::none())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("HTTP 503"), "{e}");
        assert_eq!(server.hits("/x/b.info"), 1);
        assert_eq!(server.hits("/y/b.info"), 5);

        // `,` stops at an entry that failed otherwise than 404, as the go
        // command does; that entry gets the whole ladder.
        let list = UpstreamList::new(up, &entries(&server, &["/c/", "/ok/"], Fallback::NotFound));
        list.get_bytes("c.info", 100, Avoid::none())
            .await
            .unwrap_err();
        assert_eq!(server.hits("/c/c.info"), 5);
        assert_eq!(server.hits("/ok/c.info"), 0);
    }

    /// A passing failure of `supported` is not taken for "not supported"
    /// for the rest of the process: that request fails as any request to
    /// the entry would, the next asks again. A 404 is an answer, and kept.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_passing_failure_of_supported_is_not_remembered() {
        let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let n = asked.clone();
        let server = RawServer::start(move |path, stream| match path {
            "/a/sumdb/sum.test/supported" => {
                if n.fetch_add(1, Ordering::SeqCst) == 0 {
                    reply(stream, 503, "", b"")
                } else {
                    reply(stream, 200, "", b"")
                }
            }
            "/n/sumdb/sum.test/supported" => reply(stream, 404, "", b""),
            p if p.starts_with("/a/") => reply(stream, 200, "", b"from a"),
            _ => reply(stream, 200, "", b"from b"),
        });
        let up = Arc::new(client(Duration::from_secs(5), 1));
        let list = UpstreamList::for_sumdb(
            up.clone(),
            &entries(&server, &["/a/sumdb/sum.test", "/b/"], Fallback::NotFound),
            "sum.test",
        );
        let e = list
            .get_bytes("latest", 100, Avoid::none())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("HTTP 503"), "{e}");
        let second = list.get_bytes("latest", 100, Avoid::none()).await.unwrap();
        assert_eq!(second.value, b"from a", "asked again after a 503");
        list.get_bytes("latest", 100, Avoid::none()).await.unwrap();
        assert_eq!(server.hits("/a/sumdb/sum.test/supported"), 2);

        let list = UpstreamList::for_sumdb(
            up,
            &entries(&server, &["/n/sumdb/sum.test", "/b/"], Fallback::NotFound),
            "sum.test",
        );
        for _ in 0..3 {
            let got = list.get_bytes("latest", 100, Avoid::none()).await.unwrap();
            assert_eq!(got.value, b"from b");
        }
        assert_eq!(
            server.hits("/n/sumdb/sum.test/supported"),
            1,
            "a 404 is kept"
        );
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
        assert_eq!(more_telling(Some(&nf()), &down()), Tells::New);
        assert_eq!(more_telling(Some(&down()), &nf()), Tells::Kept);
        assert_eq!(more_telling(Some(&nf()), &nf()), Tells::Kept);
        assert_eq!(more_telling(None, &nf()), Tells::New);
    }
}
