//! The HTTP client: one shared `reqwest::Client` for the proxy, the index and
//! the checksum database, with typed errors, size limits, a minimum transfer
//! rate and retries.
//!
//! # What is retried
//!
//! Only what the error itself proves transient is sent again, with jittered
//! exponential backoff ([`RetryPolicy`]): [`classify_status`] retries 5xx, 408
//! and 429 (404 and 410 mean "not on the upstream", every other status is
//! final), and [`classify_transport`] walks a transport error's `source()`
//! chain and retries only a timeout, a connection refused, reset or aborted, a
//! broken pipe, an unexpected end of file or a body cut short (hyper's
//! incomplete message). Everything else — a refused redirect (https to http,
//! more than ten), a TLS or certificate failure, a name that does not resolve,
//! an oversize body, a disk error, and (elsewhere) a hash mismatch — fails the
//! file at once; the next run tries again.
//!
//! # Slow transfers
//!
//! The read timeout alone does not bound a download: it restarts with every
//! byte, so a server that trickles one byte a second keeps a worker for
//! hours. A body must therefore keep up a minimum rate ([`TransferPolicy`]),
//! measured from the moment the request is sent:
//!
//! - at least `GOMIRROR_MIN_RATE_BPS` bytes per second (default 1024) on
//!   average over the last `GOMIRROR_MIN_RATE_WINDOW_MS` milliseconds (default
//!   30 000); the first window is the grace period, nothing is judged before
//!   a whole window has passed; `GOMIRROR_MIN_RATE_BPS=0` turns this off;
//! - and a total deadline per file of `GOMIRROR_DEADLINE_BASE_MS` (default
//!   600 000, ten minutes) plus the file's size at
//!   `GOMIRROR_DEADLINE_RATE_BPS` bytes per second (default 32 768): the size
//!   is the declared `Content-Length`, or, without one, what has arrived so
//!   far. The deadline covers the response headers too.
//!
//! A transfer that falls below either fails with "transfer too slow: …" and is
//! retried like a timeout. The environment variables exist for tests and for
//! operators on unusual links.
//!
//! # Credentials
//!
//! Every message names its URL through [`crate::redact`]: reqwest's own errors
//! are rendered without their URL (reqwest shows the URL after moving its
//! userinfo into a header, so it can't be matched against ours), and any text
//! from elsewhere — the error chain, a server's error body — has its URLs and
//! the request URL's secret values masked.
//!
//! # Memory
//!
//! Bodies stream to disk: a download is written to a temporary file by a
//! blocking writer thread while it is hashed, so memory use does not depend on
//! the size of what is downloaded.

pub mod auth;
mod connect;
pub mod list;
pub mod local;
pub mod netrc;
/// Kept under its old name while other branches still say `http::redact`.
pub use crate::redact;
mod retry;
mod transfer;

pub use retry::*;
pub use transfer::*;
use transfer::{Incoming, RateMeter, too_slow};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::{StatusCode, Url};
use sha2::{Digest, Sha256};

use crate::bounded::Budget;
use crate::gomod::zipstream::{FOLLOW_STEP, Follower, StreamedZip, ZipStream};
use crate::redact::{Secrets, redact_url};

/// Why a request failed. Every variant names the URL (credentials masked).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: not found upstream (HTTP {status})")]
    NotFound { url: String, status: u16 },
    #[error("{url}: HTTP {status}{detail}")]
    Status {
        url: String,
        status: u16,
        detail: String,
    },
    /// The request or its body failed below HTTP; `retry` says whether the
    /// error chain proves the failure transient.
    #[error("{url}: {message}")]
    Network {
        url: String,
        message: String,
        retry: Retry,
        /// The connection could not be made at all (refused, unreachable,
        /// connect timeout): the host is down, not just this file.
        connect: bool,
    },
    #[error("{url}: response is larger than the limit of {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error("cannot write `{path}` (downloading {url}): {source}")]
    Io {
        url: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The body arrived below the minimum rate, or past its deadline.
    #[error("{url}: transfer too slow: {slowness}")]
    TooSlow {
        url: String,
        // Boxed: it is the largest cause and the rarest.
        #[source]
        slowness: Box<Slowness>,
        /// Whether it may be asked again in this run: a transfer found too
        /// slow is retried once, not for every attempt of the ladder.
        again: bool,
    },
}

impl FetchError {
    /// Whether a later attempt could succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            FetchError::Network { retry, .. } => *retry == Retry::Transient,
            FetchError::Status { status, .. } => classify_status(*status) == StatusClass::Transient,
            FetchError::TooSlow { again, .. } => *again,
            FetchError::NotFound { .. } | FetchError::TooLarge { .. } | FetchError::Io { .. } => {
                false
            }
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, FetchError::NotFound { .. })
    }

    /// The (masked) URL the error is about.
    pub fn url(&self) -> &str {
        match self {
            FetchError::NotFound { url, .. }
            | FetchError::Status { url, .. }
            | FetchError::Network { url, .. }
            | FetchError::TooLarge { url, .. }
            | FetchError::Io { url, .. }
            | FetchError::TooSlow { url, .. } => url,
        }
    }

    /// The message with its leading `<url>: ` replaced by `from <host:port>: `,
    /// for a caller that already names what the URL was for (a version's
    /// file): the full URL only repeats the module and version.
    pub fn from_host(&self) -> String {
        let text = self.to_string();
        let url = self.url();
        match (text.strip_prefix(url), Url::parse(url)) {
            (Some(rest), Ok(u)) if rest.starts_with(": ") => {
                let host = match (u.host_str(), u.port()) {
                    (Some(h), Some(p)) => format!("{h}:{p}"),
                    (Some(h), None) => h.to_string(),
                    _ => return text,
                };
                format!("from {host}{rest}")
            }
            _ => text,
        }
    }
}

/// Told about every retry (a line saying what failed and when it is tried
/// again): the progress display shows it, so a hung upstream reads as
/// "retrying", not as a spinner. Set once by the command line; the HTTP
/// client sits below the report module and cannot print itself.
static RETRY_HOOK: std::sync::OnceLock<fn(&str, Duration)> = std::sync::OnceLock::new();

/// Sets the retry hook (the first call wins): it gets the line to show and
/// how long the failed attempt took.
pub fn on_retry(hook: fn(&str, Duration)) {
    let _ = RETRY_HOOK.set(hook);
}

/// Tells the retry hook that `e` is asked again after `delay`, as attempt
/// `next` of `tries`; `took` is how long the failed attempt took.
pub(crate) fn announce_retry(
    e: &FetchError,
    delay: Duration,
    next: u32,
    tries: u32,
    took: Duration,
) {
    if let Some(hook) = RETRY_HOOK.get() {
        let note = format!(
            "{e}; retrying in {:.1}s (attempt {next} of {tries})",
            delay.as_secs_f64(),
        );
        hook(&note, took);
    }
}

/// A body downloaded to a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Download {
    pub size: u64,
    pub sha256: [u8; 32],
    /// A body that began as a zip: its entries inflated and hashed as they
    /// arrived, for the module zip check to take instead of reading them
    /// again (see [`crate::gomod::zipstream`]).
    pub streamed: Option<Arc<StreamedZip>>,
}

/// The shared HTTP client.
pub struct Upstream {
    client: reqwest::Client,
    retry: RetryPolicy,
    transfer: TransferPolicy,
    /// At most `mirror.workers` requests are in flight at once, whatever they
    /// are for (a version's lookup, `.info`, `.mod` and `.zip` overlap).
    slots: tokio::sync::Semaphore,
    bytes: Arc<AtomicU64>,
    /// A local directory whose files `file://` downloads may take by hard
    /// link instead of copying: a bundle unpacked for an import, which its
    /// owner removes afterwards (never a user's `file://` proxy, whose files
    /// must not become the tree's).
    lend: std::sync::RwLock<Option<PathBuf>>,
    /// How often each URL was found too slow in this process (bounded: see
    /// [`SLOW_MEMORY`]).
    slow: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    /// `upstream.auth_command`, when set (shared with the redirect policy).
    auth: Arc<std::sync::OnceLock<auth::AuthCommand>>,
}

/// How many times one transfer may be found too slow in a run: once, and
/// once again. A rate window it could not pass twice it will not pass a
/// third time; the ladder's other attempts (and later passes of the same
/// run) are not spent on it.
pub const SLOW_TRIES: u32 = 2;
/// How many too-slow URLs a process remembers (a few hundred bytes each);
/// past that, new ones are judged afresh.
const SLOW_MEMORY: usize = 10_000;

/// A response body read a piece at a time ([`Upstream::get_streamed`]).
pub struct Streamed<'a> {
    source: StreamSource<'a>,
    /// The URL, credentials masked.
    url: String,
    budget: Budget,
}

enum StreamSource<'a> {
    Remote {
        // Boxed: the response is large and the local case small.
        incoming: Box<Incoming<'a>>,
        /// The in-flight slot, held until the body is read or dropped.
        _slot: tokio::sync::SemaphorePermit<'a>,
    },
    /// A `file://` body, read already (within the limit).
    Local(Option<bytes::Bytes>),
}

impl Streamed<'_> {
    /// The next piece of the body, `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, FetchError> {
        let got = match &mut self.source {
            StreamSource::Remote { incoming, .. } => incoming.chunk().await?,
            StreamSource::Local(body) => body.take(),
        };
        if let Some(c) = &got {
            self.budget
                .spend(c.len())
                .map_err(|e| FetchError::TooLarge {
                    url: self.url.clone(),
                    limit: e.limit,
                })?;
        }
        Ok(got)
    }

    /// The URL, credentials masked.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// What a request may hold on to while waiting for an answer: the slot of
/// the in-flight limit, with what the body reader made of the response.
struct Held<'a, T> {
    value: T,
    slot: tokio::sync::SemaphorePermit<'a>,
}

/// Counts the clients this process built. A debug build run with
/// `GOMIRROR_TEST_DEBUG_HTTP_CLIENTS` set says so on stderr, so that a test can
/// hold the process to one client (one connection pool, one in-flight limit)
/// whatever the command.
fn note_client_built() {
    #[cfg(debug_assertions)]
    {
        static BUILT: AtomicU64 = AtomicU64::new(0);
        let n = BUILT.fetch_add(1, Ordering::Relaxed) + 1;
        if crate::env::test::debug_http_clients() {
            // Not through the report module: the HTTP client sits below it.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "debug: HTTP client {n} built");
        }
    }
}

/// Why a redirect from `previous` (the URLs so far, the request's first) to
/// `next` is refused, as the go command refuses it; `None` to follow it.
pub fn redirect_refusal(previous: &[Url], next: &Url) -> Option<&'static str> {
    if previous.len() >= 10 {
        Some("stopped after 10 redirects")
    } else if previous.last().map(|u| u.scheme()) == Some("https") && next.scheme() != "https" {
        Some("refusing a redirect from https to an insecure URL")
    } else {
        None
    }
}

impl Upstream {
    /// A client with at most `max_in_flight` requests at once, judging slow
    /// transfers by `transfer` (see the module docs).
    pub fn new(
        read_timeout: Duration,
        max_in_flight: usize,
        transfer: TransferPolicy,
    ) -> Result<Upstream, String> {
        // reqwest is built without a default TLS crypto provider; install ring's
        // (cheaper to build than aws-lc). Failing means one is already installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let auth: Arc<std::sync::OnceLock<auth::AuthCommand>> = Arc::default();
        let headers = auth.clone();
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            let carried = match (headers.get(), attempt.previous().first()) {
                (Some(a), Some(first)) => a.redirect_refusal(first, attempt.url()),
                _ => None,
            };
            match redirect_refusal(attempt.previous(), attempt.url()).or(carried) {
                Some(why) => attempt.error(why),
                None => attempt.follow(),
            }
        });
        let in_flight = max_in_flight.max(1);
        let client = reqwest::Client::builder()
            .user_agent(concat!("gomirror/", env!("CARGO_PKG_VERSION")))
            // Covers the wait for a connection permit too (see `connect`).
            .connect_timeout(Duration::from_secs(15))
            .connector_layer(connect::ConnectLimit::new(in_flight))
            // Idle connections beyond what the requests can use are closed.
            .pool_max_idle_per_host(in_flight)
            .read_timeout(read_timeout)
            .redirect(policy)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        note_client_built();
        Ok(Upstream {
            client,
            retry: RetryPolicy::standard(),
            transfer,
            slots: tokio::sync::Semaphore::new(in_flight),
            bytes: Arc::new(AtomicU64::new(0)),
            lend: std::sync::RwLock::new(None),
            slow: std::sync::Mutex::new(std::collections::HashMap::new()),
            auth,
        })
    }

    /// Sends the headers `command` prints to the URLs under their prefixes
    /// ([`auth`]); the first call wins.
    pub fn set_auth(&self, command: auth::AuthCommand) {
        let _ = self.auth.set(command);
    }

    /// A GET of `url`, with the headers `upstream.auth_command` gives its
    /// prefix; a 401 or 403 under a prefix runs the command again and
    /// sends the request once more.
    async fn send(&self, url: &Url) -> Result<reqwest::Response, FetchError> {
        let Some(auth) = self.auth.get() else {
            return self
                .client
                .get(url.clone())
                .send()
                .await
                .map_err(|e| network(url, e));
        };
        let refused = |message: String| FetchError::Network {
            url: redact_url(url),
            message,
            retry: Retry::Permanent,
            connect: false,
        };
        let (headers, generation) = auth.headers_for(url).await.map_err(refused)?;
        let with = |h: Option<reqwest::header::HeaderMap>| {
            let req = self.client.get(url.clone());
            match h {
                Some(h) => req.headers(h),
                None => req,
            }
        };
        let had = headers.is_some();
        let resp = with(headers).send().await.map_err(|e| network(url, e))?;
        let status = resp.status().as_u16();
        if !had || !matches!(status, 401 | 403) {
            return Ok(resp);
        }
        let described = auth::describe_response(&resp);
        if !auth
            .renew(url, generation, &described)
            .await
            .map_err(refused)?
        {
            return Ok(resp);
        }
        let (headers, _) = auth.headers_for(url).await.map_err(refused)?;
        with(headers).send().await.map_err(|e| network(url, e))
    }

    /// Lets `file://` downloads of files under `dir` be hard links to them
    /// (`None`: copies again). For a directory this process owns and removes.
    pub fn lend_files_under(&self, dir: Option<PathBuf>) {
        *self
            .lend
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = dir;
    }

    /// The underlying client, for a library that makes its own requests
    /// (the object store): one connection pool per command.
    pub fn reqwest_client(&self) -> reqwest::Client {
        self.client.clone()
    }

    /// Bytes of response bodies received so far (for progress and summaries).
    pub fn bytes_received(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// GETs a small body into memory, refusing more than `limit` bytes.
    pub async fn get_bytes(&self, url: &Url, limit: u64) -> Result<Vec<u8>, FetchError> {
        self.get_bytes_tries(url, limit, self.retry.attempts).await
    }

    /// GETs a body into the file at `dest` (created or truncated), hashing it as
    /// it arrives, refusing more than `limit` bytes.
    pub async fn get_to_file(
        &self,
        url: &Url,
        limit: u64,
        dest: &Path,
    ) -> Result<Download, FetchError> {
        self.get_to_file_tries(url, limit, dest, self.retry.attempts)
            .await
    }

    /// [`Upstream::get_bytes`] with at most `tries` attempts (a list asks
    /// each entry once a round, and backs off between rounds itself).
    pub(crate) async fn get_bytes_tries(
        &self,
        url: &Url,
        limit: u64,
        tries: u32,
    ) -> Result<Vec<u8>, FetchError> {
        if url.scheme() == "file" {
            return self.read_local(url, limit, None).await.map(|(b, _)| b);
        }
        let held = self
            .with_retries(
                url,
                |mut body| async move {
                    let mut buf = Vec::new();
                    let mut budget = Budget::new(limit);
                    while let Some(chunk) = body.chunk().await? {
                        budget
                            .spend(chunk.len())
                            .map_err(|_| too_large(url, limit))?;
                        buf.extend_from_slice(&chunk);
                    }
                    Ok(buf)
                },
                limit,
                tries,
            )
            .await?;
        Ok(held.value)
    }

    /// [`Upstream::get_to_file`] with at most `tries` attempts.
    pub(crate) async fn get_to_file_tries(
        &self,
        url: &Url,
        limit: u64,
        dest: &Path,
        tries: u32,
    ) -> Result<Download, FetchError> {
        if url.scheme() == "file" {
            return self
                .read_local(url, limit, Some(dest.to_path_buf()))
                .await
                .map(|(_, d)| d);
        }
        let held = self
            .with_retries(
                url,
                |mut body| async move {
                    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(8);
                    let path = dest.to_path_buf();
                    let writer = tokio::task::spawn_blocking(move || write_hashed(&path, rx));
                    let mut budget = Budget::new(limit);
                    let result = loop {
                        match body.chunk().await {
                            Ok(Some(chunk)) => {
                                if budget.spend(chunk.len()).is_err() {
                                    break Err(too_large(url, limit));
                                }
                                // The writer only stops early on an I/O error, reported below.
                                if tx.send(chunk).await.is_err() {
                                    break Ok(());
                                }
                            }
                            Ok(None) => break Ok(()),
                            Err(e) => break Err(e),
                        }
                    };
                    drop(tx);
                    let written = writer.await.map_err(|e| FetchError::Io {
                        url: redact_url(url),
                        path: dest.to_path_buf(),
                        source: std::io::Error::other(e.to_string()),
                    })?;
                    result?;
                    let (wsize, sha256, streamed) = written.map_err(|source| FetchError::Io {
                        url: redact_url(url),
                        path: dest.to_path_buf(),
                        source,
                    })?;
                    debug_assert_eq!(wsize, budget.used());
                    Ok(Download {
                        size: budget.used(),
                        sha256,
                        streamed: streamed.map(Arc::new),
                    })
                },
                limit,
                tries,
            )
            .await?;
        Ok(held.value)
    }

    /// GETs a body for the caller to read a piece at a time
    /// ([`Streamed::chunk`]), at most `limit` bytes in all, under the
    /// minimum rate and deadline. The request is retried as
    /// [`Upstream::get_bytes`] would be until its headers are in; a body
    /// that fails half-way is not (the caller has taken part of it): the
    /// caller keeps what it made of it and asks again later.
    pub async fn get_streamed<'a>(
        &'a self,
        url: &Url,
        limit: u64,
    ) -> Result<Streamed<'a>, FetchError> {
        let source = if url.scheme() == "file" {
            let (body, _) = self.read_local(url, limit, None).await?;
            StreamSource::Local(Some(bytes::Bytes::from(body)))
        } else {
            let held = self
                .with_retries(
                    url,
                    |body| async move { Ok(body) },
                    limit,
                    self.retry.attempts,
                )
                .await?;
            StreamSource::Remote {
                incoming: Box::new(held.value),
                _slot: held.slot,
            }
        };
        Ok(Streamed {
            source,
            url: redact_url(url),
            budget: Budget::new(limit),
        })
    }

    /// How many times `url` was found too slow in this process.
    fn slow_count(&self, url: &Url) -> u32 {
        let slow = self.slow.lock().unwrap_or_else(|p| p.into_inner());
        slow.get(url.as_str()).copied().unwrap_or(0)
    }

    /// Counts that `url` was found too slow; returns how often it was.
    fn note_slow(&self, url: &Url) -> u32 {
        let mut slow = self.slow.lock().unwrap_or_else(|p| p.into_inner());
        if slow.len() >= SLOW_MEMORY && !slow.contains_key(url.as_str()) {
            return 1;
        }
        let n = slow.entry(url.as_str().to_string()).or_insert(0);
        *n += 1;
        *n
    }

    /// A `file://` URL, read from the local file system as `GOPROXY=file://`
    /// does: a bundle being imported is served this way. A missing file is
    /// "not found" (as a 404 would be), nothing is retried; with `dest` the
    /// file is copied there while hashed, else read into memory.
    async fn read_local(
        &self,
        url: &Url,
        limit: u64,
        dest: Option<PathBuf>,
    ) -> Result<(Vec<u8>, Download), FetchError> {
        let Ok(path) = url.to_file_path() else {
            return Err(FetchError::Status {
                url: redact_url(url),
                status: 400,
                detail: " (not a local file path)".into(),
            });
        };
        let shown = redact_url(url);
        let bytes = self.bytes.clone();
        let lendable = self
            .lend
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .is_some_and(|root| path.starts_with(root));
        let work = move || -> Result<(Vec<u8>, Download), FetchError> {
            use std::io::Read;
            let io = |source: std::io::Error, at: &Path| FetchError::Io {
                url: shown.clone(),
                path: at.to_path_buf(),
                source,
            };
            // A regular file only (a FIFO would hang the reader, a device
            // never end), its size judged before it is read.
            let file = match crate::bounded::open_regular(&path, limit) {
                Ok((f, _)) => f,
                Err(e) if e.is_not_found() => {
                    return Err(FetchError::NotFound {
                        url: shown.clone(),
                        status: 404,
                    });
                }
                Err(crate::bounded::FileError::NotRegular {
                    what: "a directory",
                    ..
                }) => {
                    return Err(FetchError::NotFound {
                        url: shown.clone(),
                        status: 404,
                    });
                }
                Err(crate::bounded::FileError::TooLarge { .. }) => {
                    return Err(FetchError::TooLarge {
                        url: shown.clone(),
                        limit,
                    });
                }
                Err(e) => return Err(io(std::io::Error::other(e.to_string()), &path)),
            };
            // A lent file becomes the download by a hard link (same file
            // system); it is then read once, for its hash.
            let to_memory = dest.is_none();
            let linked = lendable
                && dest
                    .as_ref()
                    .is_some_and(|d| std::fs::hard_link(&path, d).is_ok());
            let dest = if linked { None } else { dest };
            let mut reader = std::io::BufReader::with_capacity(256 << 10, file);
            // A file growing meanwhile is refused at the limit too.
            let mut budget = Budget::new(limit);
            let mut hasher = Sha256::new();
            // A module zip read from a local upstream is checked as it is
            // read, as one downloaded would be (see `write_hashed`).
            let mut zip = ZipStream::new();
            let mut kept = Vec::new();
            let mut out = match &dest {
                Some(d) => Some(std::io::BufWriter::with_capacity(
                    256 << 10,
                    std::fs::File::create(d).map_err(|e| io(e, d))?,
                )),
                None => None,
            };
            let mut buf = vec![0u8; 256 << 10];
            loop {
                let n = reader.read(&mut buf).map_err(|e| io(e, &path))?;
                if n == 0 {
                    break;
                }
                if budget.spend(n).is_err() {
                    return Err(FetchError::TooLarge {
                        url: shown.clone(),
                        limit,
                    });
                }
                hasher.update(&buf[..n]);
                if zip.is_active() {
                    zip.feed(&buf[..n]);
                }
                match (&mut out, &dest) {
                    (Some(w), Some(d)) => w.write_all(&buf[..n]).map_err(|e| io(e, d))?,
                    _ if to_memory => kept.extend_from_slice(&buf[..n]),
                    // Linked: only hashed.
                    _ => {}
                }
            }
            if let (Some(w), Some(d)) = (out.as_mut(), &dest) {
                w.flush().map_err(|e| io(e, d))?;
            }
            bytes.fetch_add(budget.used(), Ordering::Relaxed);
            Ok((
                kept,
                Download {
                    size: budget.used(),
                    sha256: hasher.finalize().into(),
                    streamed: zip.finish().map(Arc::new),
                },
            ))
        };
        let shown = redact_url(url);
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| FetchError::Network {
                url: shown,
                message: format!("the local reader crashed: {e}"),
                retry: Retry::Permanent,
                connect: false,
            })?
    }

    /// Sends a GET, checks the status and hands a 200 response to `body`;
    /// retries what `FetchError::is_retryable` allows, `tries` attempts in
    /// all. Returns what `body` made of it with the in-flight slot, still
    /// held.
    async fn with_retries<'a, T, F, Fut>(
        &'a self,
        url: &Url,
        body: F,
        limit: u64,
        tries: u32,
    ) -> Result<Held<'a, T>, FetchError>
    where
        F: Fn(Incoming<'a>) -> Fut,
        Fut: std::future::Future<Output = Result<T, FetchError>>,
    {
        let mut retry = 0;
        loop {
            if self.slow_count(url) >= SLOW_TRIES {
                return Err(FetchError::TooSlow {
                    url: redact_url(url),
                    slowness: Box::new(Slowness::Earlier { times: SLOW_TRIES }),
                    again: false,
                });
            }
            let slot = self
                .slots
                .acquire()
                .await
                .expect("the semaphore is never closed");
            let tried = Instant::now();
            let outcome = match self.attempt(url, &body, limit).await {
                Err((
                    FetchError::TooSlow {
                        url: u, slowness, ..
                    },
                    after,
                )) => {
                    let again = self.note_slow(url) < SLOW_TRIES;
                    Err((
                        FetchError::TooSlow {
                            url: u,
                            slowness,
                            again,
                        },
                        after,
                    ))
                }
                other => other,
            };
            match outcome {
                Ok(value) => return Ok(Held { value, slot }),
                Err((e, retry_after)) => {
                    // The slot is free while waiting to retry.
                    drop(slot);
                    retry += 1;
                    if !e.is_retryable() || retry >= tries {
                        return Err(e);
                    }
                    let delay = self.retry.delay(retry - 1, retry_after);
                    announce_retry(&e, delay, retry + 1, tries, tried.elapsed());
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// The retry policy (a list backs off between its rounds by it).
    pub(crate) fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// One request, its status checked, its body read by `body`; on failure
    /// also the server's Retry-After.
    async fn attempt<'a, T, F, Fut>(
        &'a self,
        url: &Url,
        body: &F,
        limit: u64,
    ) -> Result<T, (FetchError, Option<Duration>)>
    where
        F: Fn(Incoming<'a>) -> Fut,
        Fut: std::future::Future<Output = Result<T, FetchError>>,
    {
        let mut meter = RateMeter::new(self.transfer, Instant::now());
        // The read timeout restarts with every byte, headers included: the
        // deadline bounds a server that trickles those too.
        let headers_by = tokio::time::Instant::from_std(meter.started + meter.deadline());
        let resp = match tokio::time::timeout_at(headers_by, self.send(url)).await {
            Err(_) => {
                let slowness =
                    meter
                        .check(Instant::now())
                        .err()
                        .unwrap_or(Slowness::PastDeadline {
                            received: 0,
                            expected: None,
                            elapsed: meter.started.elapsed(),
                            deadline: meter.deadline(),
                        });
                return Err((too_slow(url, slowness), None));
            }
            Ok(Err(e)) => return Err((e, None)),
            Ok(Ok(resp)) => resp,
        };
        let status = resp.status();
        if status != StatusCode::OK {
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err((status_error(url, resp).await, retry_after));
        }
        if let Some(len) = resp.content_length()
            && len > limit
        {
            return Err((too_large(url, limit), None));
        }
        meter.body_begins(Instant::now(), resp.content_length());
        body(Incoming {
            resp,
            meter,
            url: url.clone(),
            bytes: &self.bytes,
        })
        .await
        .map_err(|e| (e, None))
    }
}

/// Writes a body to `path` as it arrives, hashing it; a body that begins as
/// a zip has its entries checked on the way too, by a [`Follower`] reading
/// the file behind the writer (the download never waits for it), so that the
/// check after the download is left what the follower had not reached.
fn write_hashed(
    path: &Path,
    mut rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
) -> std::io::Result<(u64, [u8; 32], Option<StreamedZip>)> {
    let file = std::fs::File::create(path)?;
    let mut out = std::io::BufWriter::with_capacity(256 << 10, file);
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut follower: Option<Follower> = None;
    let mut told = 0u64;
    while let Some(chunk) = rx.blocking_recv() {
        if size == 0 && chunk.starts_with(b"PK\x03\x04") {
            follower = Follower::start(path);
        }
        hasher.update(&chunk);
        out.write_all(&chunk)?;
        size += chunk.len() as u64;
        if let Some(f) = &follower {
            // What the buffer has handed to the file so far.
            let in_file = size - out.buffer().len() as u64;
            if in_file >= told + FOLLOW_STEP {
                f.written(in_file);
                told = in_file;
            }
        }
    }
    out.flush()?;
    let streamed = follower.and_then(|f| {
        f.written(size);
        f.finish()
    });
    Ok((size, hasher.finalize().into(), streamed))
}

/// A transport error as a [`FetchError`]: classified by its cause chain, its
/// text built without reqwest's copy of the URL and with every secret of ours
/// masked.
fn network(url: &Url, e: reqwest::Error) -> FetchError {
    let retry = classify_transport(&e);
    let connect = e.is_connect();
    let e = e.without_url();
    // reqwest's Display is terse ("error sending request"); the cause chain says why.
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let m = s.to_string();
        if !message.contains(&m) {
            message.push_str(": ");
            message.push_str(&m);
        }
        source = s.source();
    }
    FetchError::Network {
        url: redact_url(url),
        message: Secrets::of(url).mask(&message),
        retry,
        connect,
    }
}

async fn status_error(url: &Url, resp: reqwest::Response) -> FetchError {
    let status = resp.status().as_u16();
    if classify_status(status) == StatusClass::NotFound {
        return FetchError::NotFound {
            url: redact_url(url),
            status,
        };
    }
    // Like the go command, show the start of a plain-text error body.
    let is_text = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/plain"));
    let mut detail = String::new();
    if is_text {
        let mut resp = resp;
        let mut body = Vec::new();
        // A slow error body is not worth waiting for: the status says enough.
        let read = async {
            while let Ok(Some(chunk)) = resp.chunk().await {
                body.extend_from_slice(&chunk);
                if body.len() >= 648 {
                    break;
                }
            }
        };
        // Past the limit, what arrived is enough.
        tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .ok();
        body.truncate(648);
        let text = String::from_utf8_lossy(&body);
        let first: Vec<&str> = text.lines().take_while(|l| !l.trim().is_empty()).collect();
        if !first.is_empty() {
            // The server may echo the request, token and all; and what it
            // says is shown as foreign text (escaped, cut).
            let masked = Secrets::of(url).mask(&first.join("\n"));
            detail = format!(": {}", crate::shown::lines(&masked, 8));
        }
    }
    FetchError::Status {
        url: redact_url(url),
        status,
        detail,
    }
}

/// A body past `limit` bytes.
fn too_large(url: &Url, limit: u64) -> FetchError {
    FetchError::TooLarge {
        url: redact_url(url),
        limit,
    }
}

pub use crate::relpath::join_url as join;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn join_keeps_base_path() {
        let b = Url::parse("https://example.com/proxy/").unwrap();
        assert_eq!(
            join(&b, "golang.org/x/mod/@v/list").as_str(),
            "https://example.com/proxy/golang.org/x/mod/@v/list"
        );
        let b = Url::parse("https://proxy.golang.org").unwrap();
        assert_eq!(
            join(&b, "github.com/!azure/x/@v/v1.0.0+incompatible.zip").as_str(),
            "https://proxy.golang.org/github.com/!azure/x/@v/v1.0.0+incompatible.zip"
        );
    }

    #[test]
    fn retryable_classes() {
        let s = |status| FetchError::Status {
            url: "u".into(),
            status,
            detail: String::new(),
        };
        assert!(s(503).is_retryable());
        assert!(s(429).is_retryable());
        assert!(s(408).is_retryable());
        assert!(!s(403).is_retryable());
        assert!(
            !FetchError::NotFound {
                url: "u".into(),
                status: 404
            }
            .is_retryable()
        );
        assert!(
            !FetchError::TooLarge {
                url: "u".into(),
                limit: 1
            }
            .is_retryable()
        );
        let net = |retry| FetchError::Network {
            url: "u".into(),
            message: "m".into(),
            retry,
            connect: false,
        };
        assert!(net(Retry::Transient).is_retryable());
        assert!(!net(Retry::Permanent).is_retryable());
        let slow = |again| FetchError::TooSlow {
            url: "u".into(),
            slowness: Box::new(Slowness::BelowMinimumRate {
                rate: 1,
                span: Duration::from_secs(30),
                minimum: 1024,
            }),
            again,
        };
        assert!(slow(true).is_retryable());
        assert!(!slow(false).is_retryable(), "too slow twice");
    }

    /// Every status code from 100 to 599: 5xx, 408 and 429 are retried,
    /// 404 and 410 are "not found", 200 is the only success, the rest fail.
    #[test]
    fn every_status_code_is_classified() {
        let retried: Vec<u16> = [408, 429].into_iter().chain(500..=599).collect();
        for code in 100..=599u16 {
            let want = if code == 200 {
                StatusClass::Ok
            } else if code == 404 || code == 410 {
                StatusClass::NotFound
            } else if retried.contains(&code) {
                StatusClass::Transient
            } else {
                StatusClass::Permanent
            };
            assert_eq!(classify_status(code), want, "HTTP {code}");
            let err = FetchError::Status {
                url: "u".into(),
                status: code,
                detail: String::new(),
            };
            assert_eq!(
                err.is_retryable(),
                want == StatusClass::Transient,
                "HTTP {code}"
            );
        }
    }

    /// An error that wraps another, as stream-processing layers do.
    #[derive(Debug)]
    struct Wrapped(Box<dyn std::error::Error + Send + Sync>);
    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("wrapped")
        }
    }
    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(self.0.as_ref())
        }
    }

    #[test]
    fn transport_errors_are_transient_only_when_the_chain_proves_it() {
        use std::io::{Error, ErrorKind};
        let deep = |e: Box<dyn std::error::Error + Send + Sync>| Wrapped(Box::new(Wrapped(e)));
        for (kind, want) in [
            (ErrorKind::ConnectionRefused, Retry::Transient),
            (ErrorKind::ConnectionReset, Retry::Transient),
            (ErrorKind::ConnectionAborted, Retry::Transient),
            (ErrorKind::BrokenPipe, Retry::Transient),
            (ErrorKind::TimedOut, Retry::Transient),
            (ErrorKind::UnexpectedEof, Retry::Transient),
            (ErrorKind::PermissionDenied, Retry::Permanent),
            (ErrorKind::InvalidData, Retry::Permanent),
            (ErrorKind::Other, Retry::Permanent),
        ] {
            let e = deep(Box::new(Error::from(kind)));
            assert_eq!(classify_transport(&e), want, "{kind:?}");
        }
        let h2 = |r| deep(Box::new(h2::Error::from(r)));
        assert_eq!(
            classify_transport(&h2(h2::Reason::REFUSED_STREAM)),
            Retry::Transient
        );
        assert_eq!(
            classify_transport(&h2(h2::Reason::PROTOCOL_ERROR)),
            Retry::Permanent
        );
        assert_eq!(
            classify_transport(&Wrapped("no known cause".into())),
            Retry::Permanent
        );
    }

    #[test]
    fn https_to_http_redirects_and_loops_are_refused() {
        let u = |s: &str| Url::parse(s).unwrap();
        let https = [u("https://a.example/x")];
        assert!(redirect_refusal(&https, &u("http://a.example/x")).is_some());
        assert_eq!(redirect_refusal(&https, &u("https://b.example/x")), None);
        assert_eq!(
            redirect_refusal(&[u("http://a.example/")], &u("http://b.example/")),
            None
        );
        let ten = vec![u("http://a.example/"); 10];
        assert_eq!(
            redirect_refusal(&ten, &u("http://a.example/")),
            Some("stopped after 10 redirects")
        );
    }

    fn policy(window_ms: u64, min_rate: u64) -> TransferPolicy {
        TransferPolicy {
            min_rate,
            window: Duration::from_millis(window_ms),
            deadline_base: Duration::from_secs(600),
            deadline_rate: 32 << 10,
        }
    }

    #[test]
    fn a_trickle_is_too_slow_once_a_window_has_passed() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(policy(30_000, 1024), t0);
        // One byte every two seconds: fine during the grace period...
        for s in (2..30).step_by(2) {
            m.record(1, t0 + Duration::from_secs(s));
            assert_eq!(m.check(t0 + Duration::from_secs(s)), Ok(()), "{s} s");
        }
        // ...too slow once a whole window is behind it.
        m.record(1, t0 + Duration::from_secs(30));
        match m.check(t0 + Duration::from_secs(30)) {
            Err(Slowness::BelowMinimumRate {
                rate,
                span,
                minimum,
            }) => {
                assert_eq!((rate, minimum), (0, 1024));
                assert_eq!(span, Duration::from_secs(30));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_steady_body_passes_and_a_stall_after_a_burst_does_not() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(policy(10_000, 1024), t0);
        // 2 KiB/s for a minute: always fine.
        for ms in (100..60_000).step_by(100) {
            let t = t0 + Duration::from_millis(ms);
            m.record(205, t);
            assert_eq!(m.check(t), Ok(()), "{ms} ms");
        }
        // Then nothing: the burst ages out of the window and the rate falls.
        let mut failed_at = None;
        for ms in (60_000..80_000).step_by(250) {
            if m.check(t0 + Duration::from_millis(ms)).is_err() {
                failed_at = Some(ms);
                break;
            }
        }
        let at = failed_at.expect("a stall is too slow");
        assert!((60_000..=71_500).contains(&at), "judged at {at} ms");
    }

    #[test]
    fn a_small_file_after_slow_headers_is_not_a_trickle() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(policy(1_000, 1024), t0);
        // Headers after 5 s, then 200 bytes at once: not judged by the rate.
        let t = t0 + Duration::from_secs(5);
        m.body_begins(t, Some(200));
        m.record(200, t);
        assert!(m.complete());
        assert_eq!(m.check(t + Duration::from_millis(10)), Ok(()));
    }

    #[test]
    fn the_deadline_grows_with_the_size() {
        let t0 = Instant::now();
        let p = TransferPolicy {
            min_rate: 0,
            window: Duration::from_secs(30),
            deadline_base: Duration::from_secs(60),
            deadline_rate: 1000,
        };
        let mut m = RateMeter::new(p, t0);
        m.expected = Some(100_000);
        assert_eq!(m.deadline(), Duration::from_secs(160));
        assert_eq!(m.check(t0 + Duration::from_secs(159)), Ok(()));
        let e = m.check(t0 + Duration::from_secs(160)).unwrap_err();
        assert!(matches!(e, Slowness::PastDeadline { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "0 of 100000 bytes after 160 s (deadline 160 s)"
        );
        // Without a declared size the deadline follows what has arrived.
        let mut m = RateMeter::new(p, t0);
        m.record(50_000, t0 + Duration::from_secs(100));
        assert_eq!(m.check(t0 + Duration::from_secs(105)), Ok(()));
        assert!(m.check(t0 + Duration::from_secs(110)).is_err());
    }

    #[test]
    fn slowness_reads_well() {
        let s = Slowness::BelowMinimumRate {
            rate: 12,
            span: Duration::from_millis(30_400),
            minimum: 1024,
        };
        assert_eq!(
            s.to_string(),
            "12 B/s over 30 s (at least 1024 B/s required)"
        );
        let s = Slowness::BelowMinimumRate {
            rate: 0,
            span: Duration::from_millis(1_250),
            minimum: 1024,
        };
        assert_eq!(
            s.to_string(),
            "0 B/s over 1.2 s (at least 1024 B/s required)"
        );
    }

    // ---- against real loopback servers ----

    use std::io::{BufRead, BufReader};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Mutex;

    /// A raw HTTP/1.1 server on 127.0.0.1: each connection's request path is
    /// counted and handed to `answer` with the stream. Runs until the test
    /// process ends.
    pub(crate) struct RawServer {
        pub(crate) addr: std::net::SocketAddr,
        paths: Arc<Mutex<Vec<String>>>,
    }

    impl RawServer {
        pub(crate) fn start(
            answer: impl Fn(&str, &mut TcpStream) + Send + Sync + 'static,
        ) -> RawServer {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            RawServer::on(listener, answer)
        }

        fn on(
            listener: TcpListener,
            answer: impl Fn(&str, &mut TcpStream) + Send + Sync + 'static,
        ) -> RawServer {
            let addr = listener.local_addr().unwrap();
            let paths = Arc::new(Mutex::new(Vec::new()));
            let answer = Arc::new(answer);
            let seen = paths.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { continue };
                    let (answer, seen) = (answer.clone(), seen.clone());
                    std::thread::spawn(move || {
                        let mut reader = BufReader::new(stream.try_clone().unwrap());
                        let mut line = String::new();
                        if reader.read_line(&mut line).is_err() {
                            return;
                        }
                        let path = line.split(' ').nth(1).unwrap_or("").to_string();
                        loop {
                            let mut h = String::new();
                            match reader.read_line(&mut h) {
                                Ok(0) | Err(_) => return,
                                Ok(_) if h == "\r\n" => break,
                                Ok(_) => {}
                            }
                        }
                        seen.lock().unwrap().push(path.clone());
                        answer(&path, &mut stream);
                    });
                }
            });
            RawServer { addr, paths }
        }

        pub(crate) fn url(&self, path: &str) -> Url {
            Url::parse(&format!("http://{}{path}", self.addr)).unwrap()
        }

        pub(crate) fn hits(&self, path: &str) -> usize {
            self.paths
                .lock()
                .unwrap()
                .iter()
                .filter(|p| *p == path)
                .count()
        }
    }

    pub(crate) fn reply(stream: &mut TcpStream, status: u16, headers: &str, body: &[u8]) {
        let head = format!(
            "HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Length: {}\r\n{headers}\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).ok();
        stream.write_all(body).ok();
    }

    pub(crate) fn client(read_timeout: Duration, attempts: u32) -> Upstream {
        let mut u = Upstream::new(read_timeout, 8, TransferPolicy::default()).unwrap();
        u.retry = RetryPolicy {
            attempts,
            base: Duration::ZERO,
            max: Duration::ZERO,
        };
        u.transfer = TransferPolicy::default();
        u
    }

    /// Every final status a server can send (1xx are not final), over the
    /// wire: the retried ones are asked for five times, the others once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_status_code_over_the_wire_is_retried_only_when_transient() {
        let server = RawServer::start(|path, stream| {
            let code: u16 = path.trim_start_matches('/').parse().unwrap_or(500);
            reply(stream, code, "", b"");
        });
        let up = client(Duration::from_secs(10), 5);
        for code in 200..=599u16 {
            let path = format!("/{code}");
            let got = up.get_bytes(&server.url(&path), 1024).await;
            let hits = server.hits(&path);
            match classify_status(code) {
                StatusClass::Ok => assert!(got.is_ok() && hits == 1, "HTTP {code}: {got:?}"),
                StatusClass::NotFound => {
                    assert!(got.as_ref().is_err_and(|e| e.is_not_found()), "HTTP {code}");
                    assert_eq!(hits, 1, "HTTP {code}");
                }
                StatusClass::Transient => assert_eq!(hits, 5, "HTTP {code}: {got:?}"),
                StatusClass::Permanent => {
                    assert!(got.is_err(), "HTTP {code}");
                    assert_eq!(hits, 1, "HTTP {code}: {got:?}");
                }
            }
        }
    }

    #[tokio::test]
    async fn redirect_loop_is_sent_once() {
        let server = RawServer::start(|path, stream| {
            reply(stream, 302, &format!("Location: {path}\r\n"), b"");
        });
        let up = client(Duration::from_secs(10), 5);
        let e = up.get_bytes(&server.url("/loop"), 1024).await.unwrap_err();
        assert!(!e.is_retryable(), "{e}");
        assert!(e.to_string().contains("stopped after 10 redirects"), "{e}");
        // As the go command counts: ten requests, the eleventh refused.
        assert_eq!(server.hits("/loop"), 10, "one attempt, not five");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connection_refused_is_retried() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let url = Url::parse(&format!("http://{addr}/x")).unwrap();
        let up = client(Duration::from_secs(10), 2);
        let e = up.get_bytes(&url, 1024).await.unwrap_err();
        assert!(e.is_retryable(), "{e}");
        assert!(e.to_string().to_lowercase().contains("refused"), "{e}");

        // The port starts listening while the client is backing off: a later
        // attempt gets through.
        let mut up = client(Duration::from_secs(10), 200);
        up.retry.base = Duration::from_millis(1);
        up.retry.max = Duration::from_millis(100);
        let serve = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let server = RawServer::on(TcpListener::bind(addr).unwrap(), |_, s| {
                reply(s, 200, "", b"ok")
            });
            std::thread::sleep(Duration::from_secs(30));
            drop(server);
        });
        assert_eq!(up.get_bytes(&url, 1024).await.unwrap(), b"ok");
        drop(serve);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn timeout_is_retried() {
        let server = RawServer::start(|_, _stream| {
            std::thread::sleep(Duration::from_secs(3));
        });
        let up = client(Duration::from_millis(200), 3);
        let e = up
            .get_bytes(&server.url("/silent"), 1024)
            .await
            .unwrap_err();
        assert!(e.is_retryable(), "{e}");
        assert!(e.to_string().contains("timed out"), "{e}");
        assert_eq!(server.hits("/silent"), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_body_cut_short_is_retried() {
        let server = RawServer::start(|_, stream| {
            let head = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 100\r\n\r\n";
            stream.write_all(head.as_bytes()).ok();
            stream.write_all(&[0; 10]).ok();
        });
        let up = client(Duration::from_secs(10), 3);
        let e = up.get_bytes(&server.url("/cut"), 1024).await.unwrap_err();
        assert!(
            matches!(
                e,
                FetchError::Network {
                    retry: Retry::Transient,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(server.hits("/cut"), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_trickling_body_is_abandoned_and_retried() {
        let server = RawServer::start(|_, stream| {
            let head = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1000\r\n\r\n";
            stream.write_all(head.as_bytes()).ok();
            for _ in 0..1000 {
                std::thread::sleep(Duration::from_millis(100));
                if stream.write_all(b"x").is_err() {
                    return;
                }
            }
        });
        let mut up = client(Duration::from_secs(5), 2);
        up.transfer = policy(400, 1024);
        let started = Instant::now();
        let dir = tempfile::tempdir().unwrap();
        let e = up
            .get_to_file(&server.url("/slow"), 1 << 20, &dir.path().join("f"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("transfer too slow: "), "{e}");
        assert!(e.to_string().contains("B/s over"), "{e}");
        assert_eq!(server.hits("/slow"), 2, "too slow is retried");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }

    /// A small file trickled a byte every 200 ms never passes the rate
    /// window: it is tried twice, not five times, and not again in this run.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transfer_too_slow_is_retried_once_and_not_asked_again() {
        let server = RawServer::start(|_, stream| {
            let head = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 100\r\n\r\n";
            stream.write_all(head.as_bytes()).ok();
            for _ in 0..100 {
                std::thread::sleep(Duration::from_millis(200));
                if stream.write_all(b"x").is_err() {
                    return;
                }
            }
        });
        let mut up = client(Duration::from_secs(5), 5);
        up.transfer = policy(300, 1024);
        let url = server.url("/small.info");
        let e = up.get_bytes(&url, 1 << 20).await.unwrap_err();
        assert!(e.to_string().contains("transfer too slow: "), "{e}");
        assert!(!e.is_retryable(), "{e}");
        assert_eq!(server.hits("/small.info"), SLOW_TRIES as usize);
        let e = up.get_bytes(&url, 1 << 20).await.unwrap_err();
        assert!(e.to_string().contains("not asked again"), "{e}");
        assert_eq!(server.hits("/small.info"), 2, "not asked again in this run");
    }

    /// A body read a piece at a time stops where the caller stops, and its
    /// limit holds however the pieces come.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_streamed_body_is_read_as_far_as_the_caller_wants() {
        let server = RawServer::start(|_, stream| {
            let head = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
            stream.write_all(head.as_bytes()).ok();
            // Endless.
            while stream.write_all(&[b'x'; 4096]).is_ok() {}
        });
        let up = client(Duration::from_secs(5), 1);
        let url = server.url("/endless");
        let mut body = up.get_streamed(&url, 1 << 20).await.unwrap();
        let mut got = 0;
        let e = loop {
            match body.chunk().await {
                Ok(Some(c)) => got += c.len(),
                Ok(None) => panic!("an endless body ended"),
                Err(e) => break e,
            }
        };
        assert!(
            matches!(e, FetchError::TooLarge { limit, .. } if limit == 1 << 20),
            "{e}"
        );
        assert!(got <= 1 << 20, "{got}");
        // Dropped half-way: the slot is free again for the next request.
        drop(body);
        let mut again = up.get_streamed(&url, 1 << 20).await.unwrap();
        assert!(again.chunk().await.unwrap().is_some());
    }

    /// A module zip written as Go's writer does (sizes after the data).
    fn small_module_zip() -> Vec<u8> {
        use std::io::Write as _;
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        let mut w = zip::ZipWriter::new_stream(Vec::new());
        for i in 0..5 {
            w.start_file(format!("example.com/m@v1.0.0/f{i}.go"), opts)
                .unwrap();
            w.write_all(format!("package m // {i}\n").repeat(2000).as_bytes())
                .unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_zip_body_is_checked_as_it_arrives_and_other_bodies_are_not() {
        let zip = Arc::new(small_module_zip());
        let body = zip.clone();
        // Sent in small pieces, so that headers and data span chunks.
        let server = RawServer::start(move |path, stream| {
            let bytes: &[u8] = if path.ends_with(".zip") {
                &body
            } else {
                b"module example.com/m\n"
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
                bytes.len()
            );
            stream.write_all(head.as_bytes()).ok();
            for piece in bytes.chunks(777) {
                if stream.write_all(piece).is_err() {
                    return;
                }
                stream.flush().ok();
            }
        });
        let up = client(Duration::from_secs(5), 1);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("z");
        let got = up
            .get_to_file(&server.url("/m/@v/v1.0.0.zip"), 1 << 20, &dest)
            .await
            .unwrap();
        assert_eq!(got.sha256, <[u8; 32]>::from(Sha256::digest(&*zip)));
        let streamed = got.streamed.expect("a zip body is checked on the way");
        assert_eq!(streamed.len(), 5);
        let summary = crate::gomod::zip::check_and_hash_downloaded_zip(
            &dest,
            "example.com/m",
            "v1.0.0",
            Some(&streamed),
        )
        .unwrap();
        let plain =
            crate::gomod::zip::check_and_hash_zip(&dest, "example.com/m", "v1.0.0").unwrap();
        assert_eq!(summary.h1, plain.h1);

        let got = up
            .get_to_file(
                &server.url("/m/@v/v1.0.0.mod"),
                1 << 20,
                &dir.path().join("g"),
            )
            .await
            .unwrap();
        assert_eq!(got.streamed, None);

        // A local upstream's zip is checked as it is read, too.
        std::fs::create_dir_all(dir.path().join("up/m/@v")).unwrap();
        std::fs::write(dir.path().join("up/m/@v/v1.0.0.zip"), &*zip).unwrap();
        let url = Url::parse(&format!(
            "file://{}/up/m/@v/v1.0.0.zip",
            dir.path().display()
        ))
        .unwrap();
        let got = up
            .get_to_file(&url, 1 << 20, &dir.path().join("h"))
            .await
            .unwrap();
        assert_eq!(got.streamed.map(|s| s.len()), Some(5));
    }

    #[tokio::test]
    async fn file_urls_read_local_files_and_lend_only_what_they_are_told() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let (own, other) = (dir.path().join("own"), dir.path().join("other"));
        for d in [&own, &other] {
            std::fs::create_dir_all(d.join("m/@v")).unwrap();
            std::fs::write(d.join("m/@v/v1.0.0.zip"), b"zip bytes").unwrap();
        }
        let up = client(Duration::from_secs(5), 1);
        up.lend_files_under(Some(own.clone()));
        let url =
            |d: &Path, rel: &str| Url::parse(&format!("file://{}/{rel}", d.display())).unwrap();
        let want: [u8; 32] = Sha256::digest(b"zip bytes").into();

        let dest = dir.path().join("staged-own");
        let got = up
            .get_to_file(&url(&own, "m/@v/v1.0.0.zip"), 100, &dest)
            .await
            .unwrap();
        assert_eq!((got.size, got.sha256), (9, want));
        assert_eq!(
            std::fs::metadata(&dest).unwrap().nlink(),
            2,
            "lent: a hard link"
        );

        let dest = dir.path().join("staged-other");
        let got = up
            .get_to_file(&url(&other, "m/@v/v1.0.0.zip"), 100, &dest)
            .await
            .unwrap();
        assert_eq!(got.sha256, want);
        assert_eq!(
            std::fs::metadata(&dest).unwrap().nlink(),
            1,
            "not lent: a copy"
        );
        assert_eq!(std::fs::read(&dest).unwrap(), b"zip bytes");

        assert_eq!(
            up.get_bytes(&url(&other, "m/@v/v1.0.0.zip"), 100)
                .await
                .unwrap(),
            b"zip bytes"
        );
        let missing = up
            .get_bytes(&url(&own, "m/@v/v9.zip"), 100)
            .await
            .unwrap_err();
        assert!(missing.is_not_found(), "{missing}");
        let big = up
            .get_bytes(&url(&other, "m/@v/v1.0.0.zip"), 4)
            .await
            .unwrap_err();
        assert!(matches!(big, FetchError::TooLarge { .. }), "{big}");
        assert_eq!(
            up.bytes_received(),
            27,
            "three reads of 9 bytes count as received"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn errors_never_show_credentials() {
        let server = RawServer::start(|path, stream| match path {
            p if p.starts_with("/loop") => {
                reply(stream, 302, "Location: /loop?token=hunter2\r\n", b"")
            }
            _ => {
                let body = b"bad request /x?token=hunter2 from user:secret";
                reply(stream, 400, "Content-Type: text/plain\r\n", body)
            }
        });
        let secret = |path: &str| {
            Url::parse(&format!(
                "http://user:secret@{}{path}?token=hunter2",
                server.addr
            ))
            .unwrap()
        };
        let refused = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let a = l.local_addr().unwrap();
            drop(l);
            Url::parse(&format!("http://user:secret@{a}/x?token=hunter2")).unwrap()
        };
        let up = client(Duration::from_secs(10), 1);
        for url in [secret("/loop"), secret("/x"), refused] {
            let e = up.get_bytes(&url, 1024).await.unwrap_err().to_string();
            assert!(!e.contains("hunter2") && !e.contains("secret"), "{e}");
            assert!(e.contains("token=***") && e.contains("***:***@"), "{e}");
        }
    }
    #[test]
    fn backoff_is_bounded_and_jittered() {
        let p = RetryPolicy {
            attempts: 5,
            base: Duration::from_millis(500),
            max: Duration::from_secs(30),
        };
        for retry in 0..10 {
            let d = p.delay(retry, None);
            assert!(d <= Duration::from_millis(500) * (1 << retry).min(60));
            assert!(d <= Duration::from_secs(30));
        }
        let zero = RetryPolicy {
            base: Duration::ZERO,
            ..p
        };
        assert_eq!(zero.delay(3, Some(Duration::from_secs(9))), Duration::ZERO);
    }
}
