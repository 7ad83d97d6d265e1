//! `gomirror status`: what the mirror holds, where the index cursor is, how the
//! last runs went and what is failing. Reads the state database only (no lock:
//! it is safe to run beside a sync).

use serde::Serialize;

pub use crate::clock::{format_time, rfc3339};
use crate::report;
use crate::settings::Settings;
use crate::state::{Counts, Failure, RunRecord, State, StateError, UpstreamRecord};

#[derive(Serialize)]
struct Status {
    config: String,
    output: String,
    state: String,
    /// The index feed's URL, or "off" (versions come from seeds and toolchains only).
    index: String,
    cursor: Option<String>,
    counts: Counts,
    checksum_database: Option<TreeStatus>,
    failures: Vec<Failure>,
    runs: Vec<RunRecord>,
    /// The proxy list as configured (credentials masked), and what each
    /// upstream served over all runs.
    proxy: String,
    upstreams: Vec<UpstreamRecord>,
}

#[derive(Serialize)]
struct TreeStatus {
    name: String,
    trusted_size: i64,
    trusted_hash: String,
}

pub fn run(settings: &Settings, json: bool) -> Result<(), StateError> {
    let state = State::open_read_only(&settings.state)?;
    let trusted = state.trusted_head()?;
    let status = Status {
        config: settings.config_path.display().to_string(),
        output: settings.output_display(),
        state: settings.state.display().to_string(),
        index: settings
            .index
            .as_ref()
            .map_or("off".into(), crate::http::redact::redact_url),
        cursor: state.cursor()?,
        counts: state.counts()?,
        checksum_database: trusted.map(|t| TreeStatus {
            name: settings.sumdb.name.clone(),
            trusted_size: t.size,
            trusted_hash: t.hash,
        }),
        failures: state.failures(50)?,
        runs: state.recent_runs(10)?,
        proxy: if settings.proxy.is_empty() {
            "off".into()
        } else {
            crate::http::list::describe_list(&settings.proxy)
        },
        upstreams: state.upstreams()?,
    };
    if json {
        report::outln(serde_json::to_string_pretty(&status).expect("serializable"));
    } else {
        for line in render(&status, &settings.sumdb.name) {
            report::outln(line);
        }
    }
    Ok(())
}

/// The text `gomirror status` prints, one line per entry.
fn render(status: &Status, sumdb_name: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let c = &status.counts;
    lines.push(format!("mirror     {}", status.output));
    lines.push(format!("state      {}", status.state));
    lines.push(format!(
        "index      {} ({} versions known, {} modules, {} wanted)",
        match (status.index.as_str(), status.cursor.as_deref()) {
            ("off", _) => "off: versions come from [filter].seed and toolchains only".into(),
            (_, cursor) => format!("cursor {}", cursor.unwrap_or("(not started)")),
        },
        c.index_versions,
        c.modules,
        c.wanted_modules
    ));
    lines.push(format!(
        "versions   {} published ({}), {} pending, {} failed, {} not on the upstream",
        c.published,
        report::bytes(c.published_bytes as u64),
        c.pending,
        c.failed,
        c.gone
    ));
    lines.push(match &status.checksum_database {
        Some(t) => format!(
            "sumdb      {} tree of {} records ({})",
            t.name, t.trusted_size, t.trusted_hash
        ),
        None => format!("sumdb      {sumdb_name} (no tree head accepted yet)"),
    });
    lines.push(format!("proxy      {}", status.proxy));
    for u in &status.upstreams {
        let mut line = format!(
            "  {}: {} files ({}), {} not found, {} failed",
            u.url,
            u.files,
            report::bytes(u.bytes.max(0) as u64),
            u.not_found,
            u.failures
        );
        if u.refused > 0 {
            line.push_str(&format!(", {} REFUSED (failed verification)", u.refused));
        }
        if let Some(t) = u.last_used {
            line.push_str(&format!("; last used {}", format_time(t)));
        }
        if let (Some(e), Some(t)) = (&u.last_error, u.last_error_at) {
            line.push_str(&format!(
                "; last error {}: {}",
                format_time(t),
                e.lines().next().unwrap_or("")
            ));
        }
        lines.push(line);
    }
    if !status.runs.is_empty() {
        lines.push("recent runs:".into());
        for r in &status.runs {
            let took = r
                .finished
                .map(|f| format!("{}s", f - r.started))
                .unwrap_or_else(|| "unfinished".into());
            let exit = r
                .exit_code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into());
            let published = r
                .summary
                .as_ref()
                .and_then(|s| s.get("published"))
                .and_then(|v| v.as_u64())
                .map(|n| format!(", {n} published"))
                .unwrap_or_default();
            lines.push(format!(
                "  #{:<5} {:<7} started {} took {took}, exit {exit}{published}",
                r.id,
                r.command,
                format_time(r.started)
            ));
        }
    }
    if !status.failures.is_empty() {
        lines.push("failing versions:".into());
        for f in &status.failures {
            lines.push(format!(
                "  {}@{} ({} attempt{}, next {}): {}",
                f.path,
                f.version,
                f.attempts,
                if f.attempts == 1 { "" } else { "s" },
                f.next_attempt
                    .map(format_time)
                    .unwrap_or_else(|| "next run".into()),
                f.error.lines().next().unwrap_or("")
            ));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    #[test]
    fn times() {
        assert_eq!(super::format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::format_time(1_795_017_600), "2026-11-18 16:00:00 UTC");
        assert_eq!(super::rfc3339(1_795_017_600), "2026-11-18T16:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn times_past_the_calendar_are_clamped() {
        assert!(
            super::format_time(i64::MAX).starts_with("9999-12-"),
            "{}",
            super::format_time(i64::MAX)
        );
        assert!(
            super::rfc3339(i64::MIN).starts_with("-009999-01-"),
            "{}",
            super::rfc3339(i64::MIN)
        );
    }
}
