//! Every environment variable gomirror reads, in one place
//! (`tests/architecture.rs` refuses a read anywhere else).
//!
//! What an operator tunes is a `sync.toml` key, with bounds and a message
//! naming it; the environment is not a second configuration. It holds only:
//!
//! - what other tools share: `NETRC` and `HOME` (the netrc file the go
//!   command reads), `PATH` (the go command, for private modules); the AWS
//!   credentials are read by the object store's own builder (`[s3]`);
//! - **test knobs**, `GOMIRROR_TEST_*`, read by debug builds only: a release
//!   build never looks at them, so a test setting left in a production unit
//!   changes nothing. They shorten waits and pin timings so that tests are
//!   fast and repeatable, and arm the crash points of `crate::crashpoint`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// The netrc file the go command would read: `$NETRC`, else `~/.netrc`.
pub fn netrc_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NETRC").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".netrc"))
}

/// The go command as a shell would find it: the first executable `go` in
/// a directory of `PATH` (`None`: not installed, or not on the PATH).
pub fn go_command() -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|d| d.is_absolute())
        .map(|d| d.join("go"))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// A test knob's raw value: `None` in release builds, whatever is set.
fn knob_os(name: &str) -> Option<OsString> {
    if cfg!(debug_assertions) {
        std::env::var_os(name).filter(|v| !v.is_empty())
    } else {
        None
    }
}

/// A test knob as a number.
fn knob_u64(name: &str) -> Option<u64> {
    knob_os(name)?.to_str()?.trim().parse().ok()
}

/// A test knob in milliseconds.
fn knob_ms(name: &str) -> Option<Duration> {
    knob_u64(name).map(Duration::from_millis)
}

/// The test knobs, one function each (debug builds only; `None` otherwise).
pub mod test {
    use super::*;

    /// `GOMIRROR_TEST_RETRY_BASE_MS`: the first backoff ceiling (tests: 0 or 1).
    pub fn retry_base() -> Option<Duration> {
        knob_ms("GOMIRROR_TEST_RETRY_BASE_MS")
    }

    /// `GOMIRROR_TEST_MIN_RATE_WINDOW_MS`: the slow-transfer window (the
    /// trickle tests use about a second instead of `upstream.stall_window`'s
    /// smallest allowed value).
    pub fn min_rate_window() -> Option<Duration> {
        knob_ms("GOMIRROR_TEST_MIN_RATE_WINDOW_MS").filter(|w| !w.is_zero())
    }

    /// `GOMIRROR_TEST_MISSING_GRACE_SECS`: how long a 404 stays "not yet"
    /// (tests: 0, below `prune.missing_grace`'s bound).
    pub fn missing_grace() -> Option<Duration> {
        knob_u64("GOMIRROR_TEST_MISSING_GRACE_SECS").map(Duration::from_secs)
    }

    /// `GOMIRROR_TEST_EARLY_FETCH_MS`: how long a walk runs before downloads
    /// start beside it.
    pub fn early_fetch_after() -> Option<Duration> {
        knob_ms("GOMIRROR_TEST_EARLY_FETCH_MS")
    }

    /// `GOMIRROR_TEST_BATCH_WAIT_MS`: how long a partly filled publishing
    /// batch waits; set, it also turns off the early batch at the end of a
    /// pass (the crash sweeps pin the batches).
    pub fn batch_wait() -> Option<Duration> {
        knob_ms("GOMIRROR_TEST_BATCH_WAIT_MS")
    }

    /// `GOMIRROR_TEST_BATCH_DEADLINE_MS`: how long a partly filled batch
    /// waits, leaving the early batch at the end of a pass on (a test of
    /// that early batch makes the deadline longer than the run).
    pub fn batch_deadline() -> Option<Duration> {
        knob_ms("GOMIRROR_TEST_BATCH_DEADLINE_MS")
    }

    /// `GOMIRROR_TEST_UNPACK_DELAY_MS`: a pause per unpacked file (tests that
    /// signal a long import).
    pub fn unpack_delay() -> Option<Duration> {
        knob_ms("GOMIRROR_TEST_UNPACK_DELAY_MS")
    }

    /// `GOMIRROR_TEST_SLICE_MIN=N`: the fewest entries a stray-scan slice
    /// and versions a `verify --slice` take (tests: a few, so that a small
    /// tree takes several runs).
    pub fn slice_min() -> Option<u64> {
        knob_u64("GOMIRROR_TEST_SLICE_MIN")
    }

    /// `GOMIRROR_TEST_STATE_PANIC_AT=N`: the N-th state job panics.
    pub fn state_panic_at() -> Option<usize> {
        knob_u64("GOMIRROR_TEST_STATE_PANIC_AT").map(|n| n as usize)
    }

    /// `GOMIRROR_TEST_DEBUG_HTTP_CLIENTS`: say on stderr each time an HTTP
    /// client is built (a test holds a command to one).
    pub fn debug_http_clients() -> bool {
        knob_os("GOMIRROR_TEST_DEBUG_HTTP_CLIENTS").is_some()
    }

    /// `GOMIRROR_TEST_CLOCK_OFFSET_SECS=S`: the clock ([`crate::clock::now`])
    /// runs `S` seconds ahead (or behind, when negative), so that a test
    /// sees a cooldown (`policy.min_age`) or a retention (`prune.keep`) end
    /// without waiting for it.
    pub fn clock_offset() -> Option<i64> {
        knob_os("GOMIRROR_TEST_CLOCK_OFFSET_SECS")?
            .to_str()?
            .trim()
            .parse()
            .ok()
    }

    /// `GOMIRROR_CRASH_AT=N`: abort at the N-th durability point.
    pub fn crash_at() -> Option<u64> {
        knob_u64("GOMIRROR_CRASH_AT").filter(|&n| n > 0)
    }

    /// `GOMIRROR_CRASH_COUNT=FILE`: write how many durability points a run
    /// passed to FILE when it exits.
    pub fn crash_count_file() -> Option<PathBuf> {
        knob_os("GOMIRROR_CRASH_COUNT").map(PathBuf::from)
    }
}
