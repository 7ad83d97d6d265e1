//! The fake `index.golang.org` feed: real entries (the corpus, later additions
//! and injected hostile lines) held in a sorted vector, merged on the fly with
//! an arithmetic sequence of noise entries, so a feed of a million entries costs
//! no memory.

use super::goformat;

/// 2024-01-01T00:00:00.000000Z, the first corpus timestamp.
pub fn corpus_start() -> i64 {
    goformat::micros_of(2024, 1, 1, 0, 0, 0)
}

/// Noise entry `k` is stamped `NOISE_OFFSET + k·NOISE_STEP` after
/// `corpus_start()`: one per millisecond, interleaved with the corpus.
pub const NOISE_OFFSET_US: i64 = 250;
pub const NOISE_STEP_US: i64 = 1000;

/// Default and maximum page size.
pub const MAX_LIMIT: usize = 2000;

#[derive(Clone, Debug)]
struct Entry {
    ts: i64,
    line: String,
    injected: bool,
}

pub struct IndexFeed {
    entries: Vec<Entry>,
    noise: u64,
    spread: Option<Spread>,
}

/// Noise spread over a long span with a density that varies as the real
/// index's does: growing over time, with one day holding a tenth of it all.
#[derive(Clone, Copy, Debug)]
pub struct Spread {
    pub start_us: i64,
    pub span_us: i64,
}

impl Spread {
    /// Where noise entry `k` of `n` falls: a monotone map of `k/n` onto the
    /// span (microseconds after `start_us`).
    fn offset(&self, k: u64, n: u64) -> i64 {
        let x = k as f64 / n.max(1) as f64;
        let t = if x < 0.45 {
            // Growing density: entries ∝ t².
            0.5 * (x / 0.45).sqrt()
        } else if x < 0.55 {
            // A tenth of the feed in about a day (a mass re-index).
            0.5 + 0.0014 * (x - 0.45) / 0.1
        } else {
            0.5014 + (1.0 - 0.5014) * ((x - 0.55) / 0.45).sqrt()
        };
        (t * self.span_us as f64) as i64
    }
}

/// One index line: `{"Path":…,"Version":…,"Timestamp":…}`.
pub fn entry_line(path: &str, version: &str, ts: i64) -> String {
    format!(
        "{{\"Path\":{},\"Version\":{},\"Timestamp\":\"{}\"}}",
        serde_json::to_string(path).unwrap(),
        serde_json::to_string(version).unwrap(),
        goformat::format_micros(ts)
    )
}

/// Noise entry `k`: `noise.example/m<k/4> v1.0.<k%4>`.
pub fn noise_entry(k: u64) -> (String, String, i64) {
    (
        format!("noise.example/m{}", k / 4),
        format!("v1.0.{}", k % 4),
        noise_ts(k),
    )
}

fn noise_ts(k: u64) -> i64 {
    corpus_start() + NOISE_OFFSET_US + k as i64 * NOISE_STEP_US
}

/// The step between consecutive corpus entries: a few milliseconds, with every
/// seventh entry sharing its predecessor's timestamp.
pub fn corpus_step(i: usize) -> i64 {
    if i % 7 == 3 {
        0
    } else {
        (1 + (i as i64 * 7919) % 5) * 1000 + (i as i64 * 37) % 1000
    }
}

impl IndexFeed {
    pub fn new(noise: u64) -> IndexFeed {
        IndexFeed {
            entries: Vec::new(),
            noise,
            spread: None,
        }
    }

    /// Noise entries spread over `spread` instead of one per millisecond
    /// from `corpus_start()`.
    pub fn spread_over(noise: u64, spread: Spread) -> IndexFeed {
        IndexFeed {
            entries: Vec::new(),
            noise,
            spread: Some(spread),
        }
    }

    /// Timestamp of noise entry `k`.
    pub fn noise_ts(&self, k: u64) -> i64 {
        match self.spread {
            None => noise_ts(k),
            Some(s) => s.start_us + s.offset(k, self.noise),
        }
    }

    /// The first noise entry stamped at or after `since_us`.
    fn first_noise_at(&self, since_us: i64) -> u64 {
        let (mut lo, mut hi) = (0u64, self.noise);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.noise_ts(mid) < since_us {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    pub fn noise(&self) -> u64 {
        self.noise
    }

    /// Timestamp of the latest entry, noise included (`None` if empty).
    pub fn last_ts(&self) -> Option<i64> {
        let real = self.entries.last().map(|e| e.ts);
        let noise = (self.noise > 0).then(|| self.noise_ts(self.noise - 1));
        real.max(noise)
    }

    /// Timestamp of the latest non-injected real entry.
    pub fn last_real_ts(&self) -> Option<i64> {
        self.entries
            .iter()
            .rev()
            .find(|e| !e.injected)
            .map(|e| e.ts)
    }

    /// Adds an entry (after any entries with the same timestamp).
    pub fn push(&mut self, path: &str, version: &str, ts: i64) {
        self.insert(ts, entry_line(path, version, ts), false);
    }

    fn insert(&mut self, ts: i64, line: String, injected: bool) {
        let at = self.entries.partition_point(|e| e.ts <= ts);
        self.entries.insert(at, Entry { ts, line, injected });
    }

    /// Timestamps for `count` injected lines, spread over the real entries.
    fn spread(&self, count: usize) -> Vec<i64> {
        let real: Vec<i64> = self
            .entries
            .iter()
            .filter(|e| !e.injected)
            .map(|e| e.ts)
            .collect();
        (0..count)
            .map(|j| {
                if real.is_empty() {
                    corpus_start()
                } else {
                    real[((j + 1) * real.len() / (count + 1)).min(real.len() - 1)]
                }
            })
            .collect()
    }

    /// Inserts raw lines (verbatim, possibly not JSON) among the real entries.
    pub fn inject_lines(&mut self, lines: Vec<String>) {
        let stamps = self.spread(lines.len());
        for (line, ts) in lines.into_iter().zip(stamps) {
            self.insert(ts, line, true);
        }
    }

    /// Inserts well-formed entries with arbitrary (hostile) paths and versions.
    pub fn inject_entries(&mut self, entries: Vec<(String, String)>) {
        let stamps = self.spread(entries.len());
        for ((path, version), ts) in entries.into_iter().zip(stamps) {
            self.insert(ts, entry_line(&path, &version, ts), true);
        }
    }

    /// Inserts well-formed entries all stamped with one timestamp, in the
    /// middle of the real entries.
    pub fn inject_burst(&mut self, entries: Vec<(String, String)>) {
        let ts = self.spread(1)[0];
        for (path, version) in entries {
            self.insert(ts, entry_line(&path, &version, ts), true);
        }
    }

    pub fn clear_injected(&mut self) {
        self.entries.retain(|e| !e.injected);
    }

    /// Entries with timestamp ≥ `since_us`, at most `limit`, newline-terminated.
    /// Real entries sort before noise entries with the same timestamp.
    pub fn page(&self, since_us: i64, limit: usize) -> String {
        let mut out = String::new();
        let mut i = self.entries.partition_point(|e| e.ts < since_us);
        let mut k = self.first_noise_at(since_us);
        for _ in 0..limit {
            let real = self.entries.get(i);
            let noise = (k < self.noise).then(|| self.noise_ts(k));
            match (real, noise) {
                (Some(e), Some(nts)) if e.ts <= nts => {
                    out.push_str(&e.line);
                    i += 1;
                }
                (Some(e), None) => {
                    out.push_str(&e.line);
                    i += 1;
                }
                (_, Some(_)) => {
                    let (p, v, _) = noise_entry(k);
                    out.push_str(&entry_line(&p, &v, self.noise_ts(k)));
                    k += 1;
                }
                (None, None) => break,
            }
            out.push('\n');
        }
        out
    }
}
