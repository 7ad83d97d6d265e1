//! The metrics file: Prometheus text format for node_exporter's textfile
//! collector, rewritten after every run of every command.
//!
//! It is rebuilt from the state database, never from the run that just
//! ended alone, so a `prune` does not wipe what the last `sync` reported and
//! a failed run moves its command's exit code and duration but never its
//! last-success time ("the key metric of a batch job is the last time it
//! succeeded"). The file is written beside its final name under a name the
//! collector ignores (it reads `*.prom` only), synced and renamed over the
//! old one, so the collector never reads half a file.
//!
//! Every metric is a gauge:
//!
//! | metric | labels | value |
//! |---|---|---|
//! | `gomirror_info` | `version`, `mirror` | 1 |
//! | `gomirror_last_run_timestamp_seconds` | `command` | when its last run finished |
//! | `gomirror_last_success_timestamp_seconds` | `command` | when its last run that exited 0 finished; 0: never |
//! | `gomirror_last_exit_code` | `command` | the last run's exit code |
//! | `gomirror_last_run_duration_seconds` | `command` | the last run's wall time |
//! | `gomirror_last_run_published_versions` | `command` | versions it published |
//! | `gomirror_last_run_failed_versions` | `command` | versions that failed in it |
//! | `gomirror_last_run_security_failures` | `command` | checksum mismatches and `SECURITY` stops in it |
//! | `gomirror_index_cursor_timestamp_seconds` | | the index cursor (absent without an index feed) |
//! | `gomirror_versions` | `state` | versions by state |
//! | `gomirror_tree_bytes` | | bytes of `.info`, `.mod` and `.zip` in the tree |
//! | `gomirror_sumdb_tree_size` | | records in the trusted checksum-database tree |
//! | `gomirror_vulndb_modified_timestamp_seconds` | | the vulnerability database's `modified` (absent: none held) |
//! | `gomirror_vulndb_checked_timestamp_seconds` | | when an upstream last confirmed it current |
//! | `gomirror_vulndb_entries` | | its entries |
//! | `gomirror_audit_versions` | `finding` | mirrored versions `vulnerable`, `retracted`, `deprecated` (as of the last `gomirror audit`) |
//! | `gomirror_audit_vulnerabilities` | | distinct vulnerabilities affecting a mirrored version |
//! | `gomirror_audit_affected_pins` | | `from_files` pins of an affected version |
//! | `gomirror_audit_timestamp_seconds` | | when the last audit ran |
//! | `gomirror_policy_versions` | `decision` | versions the supply-chain policy holds back: `held` (cooling, `policy.min_age`), `denied` (`policy.deny`; never fetched), `denied_in_tree` (prune removes them), `retained` (no longer wanted, kept for `prune.keep`) |
//! | `gomirror_policy_next_ready_timestamp_seconds` | | when the first held version is old enough (absent: none held) |
//! | `gomirror_policy_affected_pins` | | `from_files` pins of a held or denied version (the project does not build from the mirror) |
//! | `gomirror_metrics_generated_timestamp_seconds` | | when this file was written |

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use crate::state::{
    CommandRuns, Counts, PolicyCounts, State, StateError, UpstreamRecord, VulnStatus,
};

/// What the metrics file is made of, read from the state database.
#[derive(Clone, Debug, Default)]
pub struct MetricsInput {
    pub commands: Vec<CommandRuns>,
    /// The index cursor as stored (RFC 3339).
    pub cursor: Option<String>,
    pub counts: Counts,
    pub sumdb_tree_size: Option<i64>,
    /// What each upstream of the proxy list served, summed over runs.
    pub upstreams: Vec<UpstreamRecord>,
    /// The vulnerability database held.
    pub vulndb: VulnStatus,
    /// The last audit's counts (`audit::AuditCounts` as JSON).
    pub audit: Option<serde_json::Value>,
    /// What the supply-chain policy holds back, and the project pins it affects.
    pub policy: PolicyCounts,
    pub policy_pins: u64,
}

/// Reads what the metrics file reports; `keep_cutoff` is `prune.keep`'s
/// (`PruneSettings::keep_cutoff`), for the versions it retains.
pub fn gather(state: &State, keep_cutoff: i64) -> Result<MetricsInput, StateError> {
    Ok(MetricsInput {
        policy: state.policy_counts(keep_cutoff)?,
        policy_pins: state.policy_pins()?.len() as u64,
        commands: state.command_runs()?,
        cursor: state.cursor()?,
        counts: state.counts()?,
        sumdb_tree_size: state.trusted_head()?.map(|h| h.size),
        upstreams: state.upstreams()?,
        vulndb: state.vuln_status()?,
        audit: state
            .last_audit()?
            .and_then(|t| serde_json::from_str(&t).ok()),
    })
}

/// Checksum mismatches among a run's failed versions, plus one for a run
/// stopped by a security failure (bad signature, forked log).
fn security_failures(summary: Option<&serde_json::Value>) -> u64 {
    let Some(s) = summary else { return 0 };
    let mismatches = s.get("failures").and_then(|f| f.as_array()).map_or(0, |f| {
        f.iter()
            .filter(|f| f.get("security").and_then(|v| v.as_bool()) == Some(true))
            .count() as u64
    });
    let stopped = s
        .get("fatal")
        .and_then(|f| f.as_str())
        .is_some_and(|f| f.contains("SECURITY"));
    // Upstreams of a list that served refuted bytes (the version then came
    // from another one): security events though nothing failed.
    let lies = s
        .get("security_events")
        .and_then(|e| e.as_array())
        .map_or(0, |e| e.len() as u64);
    mismatches + u64::from(stopped) + lies
}

fn number(summary: Option<&serde_json::Value>, key: &str) -> u64 {
    summary
        .and_then(|s| s.get(key))
        .and_then(|v| v.as_u64())
        .unwrap_or(0)
}

/// A label value as the text format wants it: `\`, `"` and newlines escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Seconds since the epoch of an RFC 3339 time, with its fraction.
fn epoch_seconds(rfc3339: &str) -> Option<f64> {
    let t: jiff::Timestamp = rfc3339.parse().ok()?;
    Some(t.as_second() as f64 + f64::from(t.subsec_nanosecond()) / 1e9)
}

struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn head(&mut self, name: &str, help: &str) {
        self.head_of(name, help, "gauge");
    }

    fn head_of(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let _ = write!(self.out, "{name}");
        if !labels.is_empty() {
            let inner: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", label(v)))
                .collect();
            let _ = write!(self.out, "{{{}}}", inner.join(","));
        }
        let _ = writeln!(self.out, " {value}");
    }

    /// One family with a sample per command.
    fn per_command(
        &mut self,
        name: &str,
        help: &str,
        commands: &[CommandRuns],
        value: impl Fn(&CommandRuns) -> String,
    ) {
        if commands.is_empty() {
            return;
        }
        self.head(name, help);
        for c in commands {
            self.sample(name, &[("command", &c.command)], value(c));
        }
    }
}

/// The metrics file's text; `now` is when it is written.
pub fn render(input: &MetricsInput, mirror: &str, now: i64) -> String {
    let mut out = String::new();
    let mut f = Family { out: &mut out };
    f.head(
        "gomirror_info",
        "gomirror's version and this mirror's name (mirror.name).",
    );
    f.sample(
        "gomirror_info",
        &[("version", env!("CARGO_PKG_VERSION")), ("mirror", mirror)],
        1,
    );
    let cmds = &input.commands;
    f.per_command(
        "gomirror_last_run_timestamp_seconds",
        "When the command's last run finished, whatever its outcome.",
        cmds,
        |c| c.last_finished.to_string(),
    );
    f.per_command(
        "gomirror_last_success_timestamp_seconds",
        "When the command's last run that exited 0 finished; 0 if none ever did.",
        cmds,
        |c| c.last_success.unwrap_or(0).to_string(),
    );
    f.per_command(
        "gomirror_last_exit_code",
        "Exit code of the command's last run: 0 ok, 1 some versions failed or problems remain, 2 fatal, 130/143 interrupted by SIGINT/SIGTERM.",
        cmds,
        |c| c.last_exit_code.to_string(),
    );
    f.per_command(
        "gomirror_last_run_duration_seconds",
        "Wall time of the command's last run.",
        cmds,
        |c| (c.last_finished - c.last_started).max(0).to_string(),
    );
    f.per_command(
        "gomirror_last_run_published_versions",
        "Versions the command's last run published.",
        cmds,
        |c| number(c.last_summary.as_ref(), "published").to_string(),
    );
    f.per_command(
        "gomirror_last_run_failed_versions",
        "Versions that failed in the command's last run (retried by later runs).",
        cmds,
        |c| number(c.last_summary.as_ref(), "failed").to_string(),
    );
    f.per_command(
        "gomirror_last_run_security_failures",
        "Checksum mismatches in the command's last run, plus 1 if a security failure (bad signature, forked log) stopped it.",
        cmds,
        |c| security_failures(c.last_summary.as_ref()).to_string(),
    );
    if let Some(t) = input.cursor.as_deref().and_then(epoch_seconds) {
        f.head(
            "gomirror_index_cursor_timestamp_seconds",
            "The index cursor: every index entry up to this time is recorded.",
        );
        f.sample("gomirror_index_cursor_timestamp_seconds", &[], t);
    }
    let c = &input.counts;
    f.head(
        "gomirror_versions",
        "Versions by state: published (in the tree), graph_only (.info and .mod in the tree, no zip), pending (wanted, not fetched yet), failed (waiting for a retry), missing (not on the upstream yet, waiting for a retry), gone (of wanted modules).",
    );
    for (state, n) in [
        // The contract: the number of versions in the tree.
        ("published", c.in_tree),
        ("graph_only", c.graph_only),
        ("pending", c.pending),
        ("failed", c.failed),
        ("missing", c.missing),
        ("gone", c.gone),
    ] {
        f.sample("gomirror_versions", &[("state", state)], n);
    }
    f.head(
        "gomirror_tree_bytes",
        "Bytes of .info, .mod and .zip files in the tree.",
    );
    f.sample("gomirror_tree_bytes", &[], c.published_bytes);
    if let Some(n) = input.sumdb_tree_size {
        f.head(
            "gomirror_sumdb_tree_size",
            "Records in the checksum-database tree this mirror trusts.",
        );
        f.sample("gomirror_sumdb_tree_size", &[], n);
    }
    for (name, help, value) in [
        (
            "gomirror_upstream_requests_total",
            "Requests to each upstream of the proxy list, over all runs.",
            (|u: &UpstreamRecord| u.requests) as fn(&UpstreamRecord) -> i64,
        ),
        (
            "gomirror_upstream_files_total",
            "Files each upstream served.",
            |u| u.files,
        ),
        (
            "gomirror_upstream_bytes_total",
            "Bytes each upstream served.",
            |u| u.bytes,
        ),
        (
            "gomirror_upstream_not_found_total",
            "404/410 answers from each upstream.",
            |u| u.not_found,
        ),
        (
            "gomirror_upstream_failures_total",
            "Failed requests to each upstream (other than 404/410).",
            |u| u.failures,
        ),
        (
            "gomirror_upstream_refused_total",
            "Bodies from each upstream that failed verification (a SECURITY event when the checksum database refutes them).",
            |u| u.refused,
        ),
    ] {
        if input.upstreams.is_empty() {
            break;
        }
        f.head_of(name, help, "counter");
        for u in &input.upstreams {
            f.sample(name, &[("upstream", u.url.as_str())], value(u));
        }
    }
    let v = &input.vulndb;
    if let Some(t) = v.modified.as_deref().and_then(epoch_seconds) {
        f.head(
            "gomirror_vulndb_modified_timestamp_seconds",
            "The vulnerability database's modified time (vuln/index/db.json).",
        );
        f.sample("gomirror_vulndb_modified_timestamp_seconds", &[], t);
        f.head(
            "gomirror_vulndb_entries",
            "Entries of the vulnerability database in the tree.",
        );
        f.sample("gomirror_vulndb_entries", &[], v.entries);
    }
    if let Some(t) = v.checked {
        f.head(
            "gomirror_vulndb_checked_timestamp_seconds",
            "When an upstream last confirmed the vulnerability database current.",
        );
        f.sample("gomirror_vulndb_checked_timestamp_seconds", &[], t);
    }
    if let Some(a) = &input.audit {
        let n = |k: &str| a.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
        f.head(
            "gomirror_audit_versions",
            "Mirrored versions with a finding, as of the last gomirror audit: vulnerable (a known vulnerability affects it), retracted (by its module's highest mirrored go.mod), deprecated (its module is).",
        );
        for finding in ["vulnerable", "retracted", "deprecated"] {
            f.sample(
                "gomirror_audit_versions",
                &[("finding", finding)],
                n(finding),
            );
        }
        f.head(
            "gomirror_audit_vulnerabilities",
            "Distinct vulnerabilities affecting at least one mirrored version (last audit).",
        );
        f.sample("gomirror_audit_vulnerabilities", &[], n("vulns"));
        f.head(
            "gomirror_audit_affected_pins",
            "Versions from_files projects pin that are vulnerable or retracted (last audit).",
        );
        f.sample("gomirror_audit_affected_pins", &[], n("pins"));
        f.head(
            "gomirror_audit_timestamp_seconds",
            "When the last gomirror audit ran.",
        );
        f.sample("gomirror_audit_timestamp_seconds", &[], n("at"));
    }
    let p = &input.policy;
    f.head(
        "gomirror_policy_versions",
        "Versions the supply-chain policy holds back: held (younger than policy.min_age; published once old enough), denied (policy.deny; never fetched), denied_in_tree (policy.deny; the next prune removes them), retained (no longer wanted, kept for prune.keep).",
    );
    for (decision, n) in [
        ("held", p.held),
        ("denied", p.denied),
        ("denied_in_tree", p.denied_in_tree),
        ("retained", p.retained),
    ] {
        f.sample("gomirror_policy_versions", &[("decision", decision)], n);
    }
    if let Some(t) = p.next_ready {
        f.head(
            "gomirror_policy_next_ready_timestamp_seconds",
            "When the first held version is old enough (policy.min_age).",
        );
        f.sample("gomirror_policy_next_ready_timestamp_seconds", &[], t);
    }
    f.head(
        "gomirror_policy_affected_pins",
        "from_files pins of a held or denied version: those projects do not build from the mirror.",
    );
    f.sample("gomirror_policy_affected_pins", &[], input.policy_pins);
    f.head(
        "gomirror_metrics_generated_timestamp_seconds",
        "When gomirror wrote this file.",
    );
    f.sample("gomirror_metrics_generated_timestamp_seconds", &[], now);
    out
}

/// Replaces `path` with `text`: a temporary file in the same directory (a
/// name the textfile collector ignores), synced, readable by everyone (the
/// collector runs as another user), renamed over `path`.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| format!("cannot create a temporary file in `{}`: {e}", dir.display()))?;
    // Set on the file, not at creation, so that a umask cannot narrow it.
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .and_then(|()| tmp.write_all(text.as_bytes()))
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| format!("cannot write `{}`: {e}", tmp.path().display()))?;
    tmp.persist(path)
        .map_err(|e| format!("cannot rename it into place: {}", e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(command: &str, exit: i64, success: Option<i64>) -> CommandRuns {
        CommandRuns {
            command: command.into(),
            last_started: 100,
            last_finished: 130,
            last_exit_code: exit,
            last_summary: Some(serde_json::json!({
                "published": 3,
                "failed": 2,
                "failures": [{"security": true}, {"security": false}],
            })),
            last_success: success,
        }
    }

    #[test]
    fn renders_every_family_with_help_and_type() {
        let input = MetricsInput {
            commands: vec![runs("prune", 0, Some(130)), runs("sync", 1, None)],
            cursor: Some("2026-11-18T16:00:00.5Z".into()),
            counts: Counts {
                in_tree: 4,
                failed: 1,
                published_bytes: 9000,
                ..Counts::default()
            },
            sumdb_tree_size: Some(1004),
            upstreams: Vec::new(),
            vulndb: VulnStatus {
                modified: Some("2024-06-04T15:00:00Z".into()),
                entries: 6,
                checked: Some(190),
                ..VulnStatus::default()
            },
            audit: Some(serde_json::json!({
                "at": 195, "versions": 10, "vulnerable": 3, "retracted": 1,
                "deprecated": 2, "vulns": 4, "pins": 1
            })),
            policy: PolicyCounts {
                held: 2,
                next_ready: Some(300),
                denied: 1,
                retained: 7,
                ..PolicyCounts::default()
            },
            policy_pins: 1,
        };
        let text = render(&input, "mirror.example", 200);
        for line in [
            "gomirror_info{version=\"0.1.0\",mirror=\"mirror.example\"} 1",
            "gomirror_last_success_timestamp_seconds{command=\"prune\"} 130",
            "gomirror_last_success_timestamp_seconds{command=\"sync\"} 0",
            "gomirror_last_exit_code{command=\"sync\"} 1",
            "gomirror_last_run_duration_seconds{command=\"sync\"} 30",
            "gomirror_last_run_published_versions{command=\"sync\"} 3",
            "gomirror_last_run_security_failures{command=\"sync\"} 1",
            "gomirror_index_cursor_timestamp_seconds 1795017600.5",
            "gomirror_versions{state=\"published\"} 4",
            "gomirror_versions{state=\"failed\"} 1",
            "gomirror_tree_bytes 9000",
            "gomirror_sumdb_tree_size 1004",
            "gomirror_vulndb_modified_timestamp_seconds 1717513200",
            "gomirror_vulndb_entries 6",
            "gomirror_vulndb_checked_timestamp_seconds 190",
            "gomirror_audit_versions{finding=\"vulnerable\"} 3",
            "gomirror_audit_versions{finding=\"retracted\"} 1",
            "gomirror_audit_versions{finding=\"deprecated\"} 2",
            "gomirror_audit_vulnerabilities 4",
            "gomirror_audit_affected_pins 1",
            "gomirror_audit_timestamp_seconds 195",
            "gomirror_policy_versions{decision=\"held\"} 2",
            "gomirror_policy_versions{decision=\"denied\"} 1",
            "gomirror_policy_versions{decision=\"denied_in_tree\"} 0",
            "gomirror_policy_versions{decision=\"retained\"} 7",
            "gomirror_policy_next_ready_timestamp_seconds 300",
            "gomirror_policy_affected_pins 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // Every family is declared once, before its samples.
        let mut declared = std::collections::HashSet::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                assert!(declared.insert(rest.split(' ').next().unwrap().to_string()));
            } else if !l.starts_with('#') {
                let name = l.split(['{', ' ']).next().unwrap();
                assert!(declared.contains(name), "{name} sampled before its TYPE");
            }
        }
    }

    #[test]
    fn nothing_run_yet_has_no_command_families_and_no_cursor() {
        let text = render(&MetricsInput::default(), "m", 1);
        assert!(!text.contains("command="), "{text}");
        assert!(!text.contains("cursor_timestamp"), "{text}");
        assert!(text.contains("gomirror_versions{state=\"published\"} 0"));
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn fatal_security_stop_counts_once() {
        let s =
            serde_json::json!({"fatal": "SECURITY ERROR: checksum database tree head rejected"});
        assert_eq!(security_failures(Some(&s)), 1);
        assert_eq!(security_failures(None), 0);
    }

    #[test]
    fn written_atomically_readable_by_others_and_no_temp_left() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("gomirror.prom");
        write_atomically(&p, "a 1\n").unwrap();
        write_atomically(&p, "a 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a 2\n");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("gomirror.prom")]);
        let err = write_atomically(&d.path().join("no/such/dir/x.prom"), "").unwrap_err();
        assert!(err.contains("no/such/dir"), "{err}");
    }
}
