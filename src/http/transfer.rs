//! The minimum transfer rate and the per-file deadline: the read timeout
//! restarts with every byte, so without these a trickling server keeps a
//! worker for hours.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::*;

/// Why a transfer was judged too slow.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Slowness {
    #[error("{rate} B/s over {} (at least {minimum} B/s required)", secs(*span))]
    BelowMinimumRate {
        /// Bytes per second over `span`.
        rate: u64,
        span: Duration,
        minimum: u64,
    },
    #[error(
        "{received} of {} bytes after {} (deadline {})",
        expected.map_or("?".to_string(), |e| e.to_string()),
        secs(*elapsed),
        secs(*deadline)
    )]
    PastDeadline {
        received: u64,
        expected: Option<u64>,
        elapsed: Duration,
        deadline: Duration,
    },
    /// Found too slow `times` times in this run already: not asked again.
    #[error("found too slow {times} times in this run already; not asked again until the next run")]
    Earlier { times: u32 },
}

/// `30 s`, or `1.5 s` below ten seconds.
pub(crate) fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 10.0 {
        format!("{} s", s.round() as u64)
    } else {
        format!("{s:.1} s")
    }
}

/// How slow a transfer may be (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransferPolicy {
    /// Bytes per second a body must average over `window`; 0 disables.
    pub min_rate: u64,
    /// The sliding window, and the grace period before the first judgement.
    pub window: Duration,
    /// The deadline of a file of size zero.
    pub deadline_base: Duration,
    /// The rate the deadline allows for the file's size; 0 adds nothing.
    pub deadline_rate: u64,
}

impl Default for TransferPolicy {
    fn default() -> TransferPolicy {
        TransferPolicy {
            min_rate: 1024,
            window: Duration::from_secs(30),
            deadline_base: Duration::from_secs(600),
            deadline_rate: 32 << 10,
        }
    }
}

impl TransferPolicy {
    /// The default deadlines with the configured minimum rate and window
    /// (`upstream.min_rate`, `upstream.stall_window`).
    pub fn new(min_rate: u64, window: Duration) -> TransferPolicy {
        TransferPolicy {
            min_rate,
            window,
            ..TransferPolicy::default()
        }
    }
}

/// Watches one transfer against a [`TransferPolicy`].
#[derive(Debug)]
pub(crate) struct RateMeter {
    policy: TransferPolicy,
    pub(crate) started: Instant,
    pub(crate) expected: Option<u64>,
    received: u64,
    /// (when, bytes received by then), oldest first, about `step` apart; the
    /// first is the newest one at least a window old, or the body's start.
    samples: VecDeque<(Instant, u64)>,
}

impl RateMeter {
    pub(crate) fn new(policy: TransferPolicy, started: Instant) -> RateMeter {
        RateMeter {
            policy,
            started,
            expected: None,
            received: 0,
            samples: VecDeque::from([(started, 0)]),
        }
    }

    /// The headers are in: the rate is judged from here on (waiting for the
    /// headers is the read timeout's and the deadline's business), so a
    /// server slow to answer a small file is not taken for a trickle.
    pub(crate) fn body_begins(&mut self, now: Instant, expected: Option<u64>) {
        self.expected = expected;
        self.samples = VecDeque::from([(now, 0)]);
    }

    /// Whether a body of declared length has all arrived.
    pub(crate) fn complete(&self) -> bool {
        self.expected.is_some_and(|e| self.received >= e)
    }

    /// How often the rate is looked at while no data arrives.
    pub(crate) fn step(&self) -> Duration {
        (self.policy.window / 8).max(Duration::from_millis(10))
    }

    pub(crate) fn deadline(&self) -> Duration {
        let size = self.expected.unwrap_or(0).max(self.received);
        let for_size = if self.policy.deadline_rate == 0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(size as f64 / self.policy.deadline_rate as f64)
        };
        self.policy.deadline_base.saturating_add(for_size)
    }

    /// When to look next if nothing arrives before.
    pub(crate) fn next_check(&self, now: Instant) -> Instant {
        (now + self.step()).min(self.started + self.deadline())
    }

    pub(crate) fn sample(&mut self, now: Instant) {
        let step = self.step();
        if self
            .samples
            .back()
            .is_none_or(|(t, _)| now.saturating_duration_since(*t) >= step)
        {
            self.samples.push_back((now, self.received));
        }
        let window = self.policy.window;
        while self.samples.len() >= 2 && now.saturating_duration_since(self.samples[1].0) >= window
        {
            self.samples.pop_front();
        }
    }

    pub(crate) fn record(&mut self, bytes: u64, now: Instant) {
        self.received += bytes;
        self.sample(now);
    }

    pub(crate) fn check(&mut self, now: Instant) -> Result<(), Slowness> {
        self.sample(now);
        let elapsed = now.saturating_duration_since(self.started);
        let deadline = self.deadline();
        if elapsed >= deadline {
            return Err(Slowness::PastDeadline {
                received: self.received,
                expected: self.expected,
                elapsed,
                deadline,
            });
        }
        let minimum = self.policy.min_rate;
        if minimum > 0
            && let Some(&(t0, b0)) = self.samples.front()
        {
            let span = now.saturating_duration_since(t0);
            if span >= self.policy.window {
                let bytes = self.received - b0;
                if (bytes as f64) < minimum as f64 * span.as_secs_f64() {
                    return Err(Slowness::BelowMinimumRate {
                        rate: (bytes as f64 / span.as_secs_f64()) as u64,
                        span,
                        minimum,
                    });
                }
            }
        }
        Ok(())
    }
}

/// A 200 response whose body is read under the [`TransferPolicy`].
pub(crate) struct Incoming<'a> {
    pub(crate) resp: reqwest::Response,
    pub(crate) meter: RateMeter,
    pub(crate) url: Url,
    pub(crate) bytes: &'a AtomicU64,
}

impl Incoming<'_> {
    /// The next piece of the body, `None` at its end.
    pub(crate) async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, FetchError> {
        let Incoming {
            resp,
            meter,
            url,
            bytes,
        } = self;
        // One chunk future, polled across the rate checks: it is never
        // dropped half-way except when the transfer is abandoned.
        let next = resp.chunk();
        tokio::pin!(next);
        loop {
            let wake = tokio::time::Instant::from_std(meter.next_check(Instant::now()));
            tokio::select! {
                got = &mut next => {
                    let got = got.map_err(|e| network(url, e))?;
                    if let Some(c) = &got {
                        bytes.fetch_add(c.len() as u64, Ordering::Relaxed);
                        meter.record(c.len() as u64, Instant::now());
                        if !meter.complete() {
                            meter.check(Instant::now()).map_err(|s| too_slow(url, s))?;
                        }
                    }
                    return Ok(got);
                }
                () = tokio::time::sleep_until(wake) => {
                    meter.check(Instant::now()).map_err(|s| too_slow(url, s))?;
                }
            }
        }
    }
}

pub(crate) fn too_slow(url: &Url, slowness: Slowness) -> FetchError {
    FetchError::TooSlow {
        url: redact_url(url),
        slowness: Box::new(slowness),
        again: true,
    }
}
