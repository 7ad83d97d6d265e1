//! What is retried, and how long to wait: only what the error itself proves
//! transient (5xx, 408, 429; a timeout, a refused, reset or aborted
//! connection, a body cut short), with jittered exponential backoff.

use std::time::Duration;

/// Whether a failed request may succeed when sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    Transient,
    Permanent,
}

/// What a response status means to the mirror.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusClass {
    /// 200: the body is what was asked for.
    Ok,
    /// 404 or 410: the upstream does not have it (the go command's rule).
    NotFound,
    /// 5xx, 408 (request timeout), 429 (too many requests): ask again later.
    Transient,
    /// Anything else (other 4xx, 3xx left unfollowed, 1xx, other 2xx).
    Permanent,
}

/// Classifies a response status.
pub fn classify_status(status: u16) -> StatusClass {
    match status {
        200 => StatusClass::Ok,
        404 | 410 => StatusClass::NotFound,
        408 | 429 | 500..=599 => StatusClass::Transient,
        _ => StatusClass::Permanent,
    }
}

/// Classifies a transport error by walking its `source()` chain: transient
/// only when some link proves it (a timeout, a named I/O error kind, a body
/// cut short); a refused redirect or anything unrecognised is permanent.
pub fn classify_transport(err: &(dyn std::error::Error + 'static)) -> Retry {
    let mut link = Some(err);
    while let Some(e) = link {
        if let Some(r) = e.downcast_ref::<reqwest::Error>() {
            // Our redirect policy refused (https to http, a loop): the same
            // request gets the same redirect.
            if r.is_redirect() || r.is_builder() {
                return Retry::Permanent;
            }
            if r.is_timeout() {
                return Retry::Transient;
            }
            if let Some(status) = r.status()
                && classify_status(status.as_u16()) == StatusClass::Transient
            {
                return Retry::Transient;
            }
        } else if let Some(h) = e.downcast_ref::<hyper::Error>() {
            // A body shorter than its Content-Length, a read that timed out,
            // or a pooled connection the server closed as we reused it.
            if h.is_incomplete_message() || h.is_timeout() || h.is_canceled() {
                return Retry::Transient;
            }
        } else if let Some(h) = e.downcast_ref::<h2::Error>() {
            // HTTP/2: a server going away gracefully, or refusing a stream
            // before processing it, has done nothing with the request, and
            // RFC 9113 (section 8.7) says it may be sent again.
            let graceful = h.is_go_away() && h.reason() == Some(h2::Reason::NO_ERROR);
            if graceful || h.reason() == Some(h2::Reason::REFUSED_STREAM) {
                return Retry::Transient;
            }
            if h.get_io().is_some_and(|io| transient_io(io.kind())) {
                return Retry::Transient;
            }
        } else if let Some(io) = e.downcast_ref::<std::io::Error>()
            && transient_io(io.kind())
        {
            return Retry::Transient;
        }
        link = e.source();
    }
    Retry::Permanent
}

/// I/O failures that say nothing about the request itself: the connection
/// broke or was never made, or a read timed out.
pub(crate) fn transient_io(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind;
    matches!(
        kind,
        ErrorKind::ConnectionRefused
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
            | ErrorKind::TimedOut
            | ErrorKind::UnexpectedEof
    )
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
    /// Five attempts, backoff ceilings 0.5 s, 1 s, 2 s, 4 s (a test knob
    /// sets the first ceiling in debug builds: tests use 0 or 1 ms).
    pub fn standard() -> RetryPolicy {
        let base = crate::env::test::retry_base().unwrap_or(Duration::from_millis(500));
        RetryPolicy {
            attempts: 5,
            base,
            max: Duration::from_secs(30),
        }
    }

    /// Full jitter: a uniformly random delay up to the attempt's ceiling.
    pub(crate) fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
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
