//! The HTTP client: one shared `reqwest::Client` for the proxy, the index and
//! the checksum database, with typed errors, size limits and retries.
//!
//! Only what can succeed on a second try is retried: connection failures,
//! timeouts, bodies cut short, 5xx and 429 — with jittered exponential
//! backoff. 404 and 410 mean "not on the upstream" and are never retried; nor
//! is any other 4xx, an oversize body, or (elsewhere) a hash mismatch.
//!
//! Bodies stream to disk: a download is written to a temporary file by a
//! blocking writer thread while it is hashed, so memory use does not depend on
//! the size of what is downloaded.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::{StatusCode, Url};
use sha2::{Digest, Sha256};

use crate::config::redact;

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
    #[error("{url}: {message}")]
    Network { url: String, message: String },
    #[error("{url}: response is larger than the limit of {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error("cannot write `{path}` (downloading {url}): {source}")]
    Io {
        url: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl FetchError {
    /// Whether a later attempt could succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            FetchError::Network { .. } => true,
            FetchError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, FetchError::NotFound { .. })
    }
}

/// How requests are retried.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Total attempts, the first included.
    pub attempts: u32,
    /// The first backoff ceiling; doubles each retry.
    pub base: Duration,
    /// The largest backoff ceiling.
    pub max: Duration,
}

impl RetryPolicy {
    /// Five attempts, backoff ceilings 0.5 s, 1 s, 2 s, 4 s. The environment
    /// variable `GOMIRROR_RETRY_BASE_MS` sets the first ceiling (tests use 0).
    pub fn from_env() -> RetryPolicy {
        let base = std::env::var("GOMIRROR_RETRY_BASE_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_millis)
            .unwrap_or(Duration::from_millis(500));
        RetryPolicy {
            attempts: 5,
            base,
            max: Duration::from_secs(30),
        }
    }

    /// Full jitter: a uniformly random delay up to the attempt's ceiling.
    fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << retry.min(16))
            .min(self.max);
        let jittered = Duration::from_secs_f64(ceiling.as_secs_f64() * fastrand::f64());
        match retry_after {
            // A server that says when to come back is believed, within reason.
            Some(ra) if !self.base.is_zero() => ra.min(self.max).max(jittered),
            _ => jittered,
        }
    }
}

/// A body downloaded to a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Download {
    pub size: u64,
    pub sha256: [u8; 32],
}

/// The shared HTTP client.
pub struct Upstream {
    client: reqwest::Client,
    retry: RetryPolicy,
    /// At most `mirror.workers` requests are in flight at once, whatever they
    /// are for (a version's lookup, `.info`, `.mod` and `.zip` overlap).
    slots: tokio::sync::Semaphore,
    bytes: Arc<AtomicU64>,
}

impl Upstream {
    /// A client with at most `max_in_flight` requests at once.
    pub fn new(read_timeout: Duration, max_in_flight: usize) -> Result<Upstream, String> {
        // reqwest is built without a default TLS crypto provider; install ring's
        // (cheaper to build than aws-lc). Failing means one is already installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let policy = reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() >= 10 {
                attempt.error("stopped after 10 redirects")
            } else if attempt.previous().last().map(|u| u.scheme()) == Some("https")
                && attempt.url().scheme() != "https"
            {
                attempt.error("refusing a redirect from https to an insecure URL")
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .user_agent(concat!("gomirror/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(read_timeout)
            .redirect(policy)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Upstream {
            client,
            retry: RetryPolicy::from_env(),
            slots: tokio::sync::Semaphore::new(max_in_flight.max(1)),
            bytes: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Bytes of response bodies received so far (for progress and summaries).
    pub fn bytes_received(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// GETs a small body into memory, refusing more than `limit` bytes.
    pub async fn get_bytes(&self, url: &Url, limit: u64) -> Result<Vec<u8>, FetchError> {
        self.with_retries(
            url,
            |resp| async move {
                let mut buf = Vec::new();
                let mut resp = resp;
                while let Some(chunk) = resp.chunk().await.map_err(|e| network(url, &e))? {
                    if buf.len() as u64 + chunk.len() as u64 > limit {
                        return Err(FetchError::TooLarge {
                            url: redact(url.as_str()),
                            limit,
                        });
                    }
                    self.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    buf.extend_from_slice(&chunk);
                }
                Ok(buf)
            },
            limit,
        )
        .await
    }

    /// GETs a body into the file at `dest` (created or truncated), hashing it as
    /// it arrives, refusing more than `limit` bytes.
    pub async fn get_to_file(
        &self,
        url: &Url,
        limit: u64,
        dest: &Path,
    ) -> Result<Download, FetchError> {
        self.with_retries(
            url,
            |resp| async move {
                let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(8);
                let path = dest.to_path_buf();
                let writer = tokio::task::spawn_blocking(move || write_hashed(&path, rx));
                let mut resp = resp;
                let mut size = 0u64;
                let result = loop {
                    match resp.chunk().await {
                        Ok(Some(chunk)) => {
                            size += chunk.len() as u64;
                            if size > limit {
                                break Err(FetchError::TooLarge {
                                    url: redact(url.as_str()),
                                    limit,
                                });
                            }
                            self.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                            // The writer only stops early on an I/O error, reported below.
                            if tx.send(chunk).await.is_err() {
                                break Ok(());
                            }
                        }
                        Ok(None) => break Ok(()),
                        Err(e) => break Err(network(url, &e)),
                    }
                };
                drop(tx);
                let written = writer.await.map_err(|e| FetchError::Io {
                    url: redact(url.as_str()),
                    path: dest.to_path_buf(),
                    source: std::io::Error::other(e.to_string()),
                })?;
                result?;
                let (wsize, sha256) = written.map_err(|source| FetchError::Io {
                    url: redact(url.as_str()),
                    path: dest.to_path_buf(),
                    source,
                })?;
                debug_assert_eq!(wsize, size);
                Ok(Download { size, sha256 })
            },
            limit,
        )
        .await
    }

    /// Sends a GET, checks the status and hands a 200 response to `body`;
    /// retries what `FetchError::is_retryable` allows.
    async fn with_retries<'a, T, F, Fut>(
        &'a self,
        url: &'a Url,
        body: F,
        limit: u64,
    ) -> Result<T, FetchError>
    where
        F: Fn(reqwest::Response) -> Fut,
        Fut: std::future::Future<Output = Result<T, FetchError>>,
    {
        let mut retry = 0;
        loop {
            let slot = self
                .slots
                .acquire()
                .await
                .expect("the semaphore is never closed");
            let outcome = match self.client.get(url.clone()).send().await {
                Err(e) => Err((network(url, &e), None)),
                Ok(resp) => {
                    let status = resp.status();
                    if status == StatusCode::OK {
                        if let Some(len) = resp.content_length()
                            && len > limit
                        {
                            return Err(FetchError::TooLarge {
                                url: redact(url.as_str()),
                                limit,
                            });
                        }
                        body(resp).await.map_err(|e| (e, None))
                    } else {
                        let retry_after = resp
                            .headers()
                            .get(reqwest::header::RETRY_AFTER)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.trim().parse::<u64>().ok())
                            .map(Duration::from_secs);
                        Err((status_error(url, resp).await, retry_after))
                    }
                }
            };
            // The slot is free while waiting to retry.
            drop(slot);
            match outcome {
                Ok(v) => return Ok(v),
                Err((e, retry_after)) => {
                    retry += 1;
                    if !e.is_retryable() || retry >= self.retry.attempts {
                        return Err(e);
                    }
                    tokio::time::sleep(self.retry.delay(retry - 1, retry_after)).await;
                }
            }
        }
    }
}

fn write_hashed(
    path: &Path,
    mut rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
) -> std::io::Result<(u64, [u8; 32])> {
    let file = std::fs::File::create(path)?;
    let mut out = std::io::BufWriter::with_capacity(256 << 10, file);
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = rx.blocking_recv() {
        hasher.update(&chunk);
        out.write_all(&chunk)?;
        size += chunk.len() as u64;
    }
    out.flush()?;
    Ok((size, hasher.finalize().into()))
}

fn network(url: &Url, e: &reqwest::Error) -> FetchError {
    // reqwest's Display is terse ("error sending request"); the cause chain says why.
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let m = s.to_string();
        if !message.contains(&m) {
            message.push_str(": ");
            message.push_str(&m);
        }
        source = s.source();
    }
    let redacted = redact(url.as_str());
    // reqwest includes the URL in some messages; keep only the masked form.
    let message = message.replace(url.as_str(), &redacted);
    FetchError::Network {
        url: redacted,
        message,
    }
}

async fn status_error(url: &Url, resp: reqwest::Response) -> FetchError {
    let status = resp.status().as_u16();
    if status == 404 || status == 410 {
        return FetchError::NotFound {
            url: redact(url.as_str()),
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
        while let Ok(Some(chunk)) = resp.chunk().await {
            body.extend_from_slice(&chunk);
            if body.len() >= 648 {
                break;
            }
        }
        body.truncate(648);
        let text = String::from_utf8_lossy(&body);
        let first: Vec<&str> = text
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .take(8)
            .collect();
        if !first.is_empty() && first.iter().all(|l| !l.chars().any(char::is_control)) {
            detail = format!(": {}", first.join(" / "));
        }
    }
    FetchError::Status {
        url: redact(url.as_str()),
        status,
        detail,
    }
}

/// Joins path segments onto a base URL, keeping the base's own path
/// (`https://host/proxy` + `golang.org/x/mod/@v/list`). Segments are
/// percent-encoded as a path (`!` stays literal, which every proxy accepts).
pub fn join(base: &Url, rel: &str) -> Url {
    let mut url = base.clone();
    let joined = {
        let p = url.path().trim_end_matches('/');
        format!("{p}/{}", rel.trim_start_matches('/'))
    };
    url.set_path(&joined);
    url
}

#[cfg(test)]
mod tests {
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
        assert!(
            FetchError::Network {
                url: "u".into(),
                message: "reset".into()
            }
            .is_retryable()
        );
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
