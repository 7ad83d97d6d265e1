//! `gomirror requests [--since TIME] [-o FILE]`: what this mirror's clients
//! asked for and did not get, as a module list that `[filter].from_files`
//! reads.
//!
//! On an air-gapped mirror (no upstream: it is fed by `gomirror import`)
//! nothing else reads its access logs, so this command reads what was
//! appended to `[demand] access_logs` since the last read first (as a sync
//! would, positions and requests recorded in the state database), then
//! writes every request missed at or after `--since` that the tree still
//! does not serve: `module@version` for a version asked for exactly,
//! `module@latest` for a module whose `@v/list` or `@latest` was asked for.
//! Carried to the connected side and named in its `from_files`, the file
//! makes its next sync fetch them; the next bundle brings them across.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::fatal::Fatal;
use crate::lock::RunLock;
use crate::report::Reporter;
use crate::runner;
use crate::settings::Settings;
use crate::source::demand::{DemandRead, read_and_screen};
use crate::state::Request;

/// Flags of `gomirror requests`.
#[derive(Clone, Debug, Default)]
pub struct RequestsOptions {
    /// Only requests missed at or after this (Unix seconds).
    pub since: Option<i64>,
    /// Where the list goes (written whole, then renamed into place); `None`: stdout.
    pub output: Option<PathBuf>,
}

/// What the command did (stored in the run log).
#[derive(Clone, Debug, Default, Serialize)]
pub struct RequestsReport {
    /// Entries written.
    pub requests: usize,
    /// What was read from the access logs first.
    pub lines: u64,
    pub misses: u64,
    pub output: Option<String>,
}

impl runner::Outcome for RequestsReport {
    fn exit_code(&self) -> i32 {
        0
    }
}

/// `--since`: an RFC 3339 time, or a duration before now (`7d`, `12h`).
pub fn parse_since(s: &str) -> Result<i64, String> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t.as_second());
    }
    match humantime::parse_duration(s) {
        Ok(d) => {
            Ok(crate::clock::now().saturating_sub(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)))
        }
        Err(_) => Err(format!(
            "{s:?} is neither an RFC 3339 time (2024-05-01T00:00:00Z) nor a duration (7d, 12h)"
        )),
    }
}

/// Runs `gomirror requests` under the lock (taken by the caller): the run
/// lock keeps a sync from reading the same log lines at the same time.
pub fn run(
    settings: &Settings,
    opts: &RequestsOptions,
    out: &Reporter,
    _lock: &RunLock,
) -> Result<RequestsReport, Fatal> {
    runner::run_command(settings, "requests", async |svc| {
        let mut report = RequestsReport::default();
        if !settings.demand.access_logs.is_empty() {
            let logs = settings.demand.access_logs.clone();
            let keys: Vec<String> = logs.iter().map(|p| p.display().to_string()).collect();
            let positions = svc.db.call(move |s| s.demand_positions(&keys)).await?;
            let screen = crate::services::demand_screen(settings);
            let now = crate::clock::now();
            let read = read_and_screen(&logs, positions, &screen, now).await?;
            for w in &read.warnings {
                out.warn(w);
            }
            let DemandRead { lines, misses, .. } = read.read;
            (report.lines, report.misses) = (lines, misses);
            let batch = read.batch;
            svc.db.call(move |s| s.record_demand(&batch, now)).await?;
        } else {
            out.warn(
                "demand.access_logs names no log: the requests listed are those recorded before",
            );
        }
        let since = opts.since;
        let requests = svc.db.call(move |s| s.unserved_requests(since)).await?;
        let text = render(settings, &requests, since);
        report.requests = requests.len();
        match &opts.output {
            Some(path) => {
                write_atomically(path, &text)
                    .map_err(|e| Fatal::context(format!("cannot write `{}`", path.display()), e))?;
                report.output = Some(path.display().to_string());
            }
            None => crate::report::outln(text.trim_end()),
        }
        Ok(report)
    })
}

/// The list, in the module-list format `from_files` reads.
fn render(settings: &Settings, requests: &[Request], since: Option<i64>) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# What clients of {} asked for and did not get (gomirror requests), {}{}: {} entries.",
        settings.mirror_name,
        crate::clock::rfc3339(crate::clock::now()),
        since
            .map(|t| format!(", missed since {}", crate::clock::rfc3339(t)))
            .unwrap_or_default(),
        requests.len()
    );
    let _ = writeln!(
        s,
        "# Name this file in [filter].from_files of the mirror that feeds this one; `@latest`: the newest tagged version."
    );
    for r in requests {
        let _ = writeln!(
            s,
            "{}@{} # {} misses, last {}",
            r.module,
            r.version.as_deref().unwrap_or("latest"),
            r.misses,
            crate::clock::rfc3339(r.last_missed)
        );
    }
    s
}

/// Writes `text` to a temporary file beside `path`, then renames it into
/// place: a reader (a transfer picking up the outbox) never sees half a list.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".gomirror-requests")
        .tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_a_time_or_a_duration_ago() {
        assert_eq!(parse_since("2024-05-01T00:00:00Z"), Ok(1714521600));
        let ago = parse_since("1d").unwrap();
        assert!((crate::clock::now() - 86400 - ago).abs() <= 1);
        assert!(parse_since("yesterday").unwrap_err().contains("neither"));
    }
}
