//! `gomirror audit [--json] [--fail-on vuln|retracted|deprecated] [--all]
//! [MODULE...]`: what the mirror serves that its operators should know about.
//!
//! For every version in the tree:
//!
//! * **vulnerable** — the entries of the mirrored vulnerability database
//!   (`vuln/`, see [`crate::vuln`]) whose `affected[].ranges` cover it,
//!   evaluated at module level as govulncheck's module mode does
//!   ([`crate::vuln::ranges`]). A `golang.org/toolchain` version is a Go
//!   release: the `stdlib` and `toolchain` entries are evaluated for it.
//!   Withdrawn entries affect nothing.
//! * **retracted** — covered by a `retract` directive of the go.mod of its
//!   module's latest mirrored version (the highest release in `@v/list`, else
//!   the highest prerelease, else the newest pseudo-version), which is the
//!   go.mod the go command reads retractions from.
//! * **deprecated** — that go.mod marks the module `// Deprecated:`.
//!
//! And for every version a `[filter] from_files` project builds with (a
//! go.sum line, a go.mod requirement or the version its requirement graph
//! selects, a module list line), the same findings with the file and line;
//! and the `go`/`toolchain` lines of its go.mod files, for the Go releases
//! they ask for.
//!
//! Beside them, what the supply-chain policy (`[policy]`) holds back: the
//! versions held for their cooldown and those denied, and the project pins
//! of either (that project does not build from the mirror).
//!
//! The state database keeps, per module, what its latest go.mod said and
//! for which version, so a `.mod` is read from the tree again only when a
//! newer version arrives: the whole bench corpus audits in milliseconds.
//! The counts of an audit of everything (no MODULE given) go into the
//! metrics file. Exit 0, or 1 with `--fail-on` when something matched; no
//! vulnerability database with `--fail-on vuln` is exit 2 (a gate must not
//! pass for lack of data).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::fatal::Fatal;
use crate::gomod;
use crate::marks;
pub use crate::marks::{Notes, VulnHit, VulnIndex};
use crate::report;
use crate::runner;
use crate::settings::Settings;
use crate::source::toolchains;
use crate::state::{AuditVersion, ModuleFacts, NamedPin, State};
use crate::store::Store;
use crate::vuln::format;

/// What makes `audit` exit 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// A known vulnerability affects a mirrored or pinned version.
    Vuln,
    /// A mirrored or pinned version is retracted.
    Retracted,
    /// A mirrored or pinned version's module is deprecated.
    Deprecated,
}

/// Flags of `gomirror audit`.
#[derive(Clone, Debug, Default)]
pub struct AuditOptions {
    pub json: bool,
    pub fail_on: Vec<FailOn>,
    /// List every version checked, not only those with a finding.
    pub all: bool,
    /// `path` (GOPRIVATE-style pattern) or `path@version`; empty: everything.
    pub modules: Vec<String>,
}

/// The findings for one version.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Findings {
    /// The ids, in order (the contract's `vulns`).
    pub vulns: Vec<String>,
    /// The same, with what each says.
    pub vulnerabilities: Vec<VulnHit>,
    pub retracted: bool,
    /// The retraction's rationale (its comment in the go.mod).
    pub retraction: Option<String>,
    pub deprecated: bool,
    /// The deprecation message.
    pub deprecation: Option<String>,
}

impl Findings {
    fn any(&self) -> bool {
        !self.vulns.is_empty() || self.retracted || self.deprecated
    }

    fn matches(&self, fail_on: &[FailOn]) -> bool {
        fail_on.iter().any(|f| match f {
            FailOn::Vuln => !self.vulns.is_empty(),
            FailOn::Retracted => self.retracted,
            FailOn::Deprecated => self.deprecated,
        })
    }

    /// `vulnerable: GO-2021-0113 (fixed in v0.3.7); retracted (why)`.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.vulnerabilities.is_empty() {
            let ids: Vec<String> = self
                .vulnerabilities
                .iter()
                .map(|h| match (&h.fixed, h.module.as_str()) {
                    (Some(f), format::STDLIB | format::TOOLCHAIN) => {
                        format!(
                            "{} ({}, fixed in go{})",
                            h.id,
                            h.module,
                            f.trim_start_matches('v')
                        )
                    }
                    (Some(f), _) => format!("{} (fixed in {f})", h.id),
                    (None, format::STDLIB | format::TOOLCHAIN) => {
                        format!("{} ({}, no fix)", h.id, h.module)
                    }
                    (None, _) => format!("{} (no fix)", h.id),
                })
                .collect();
            parts.push(format!("vulnerable: {}", ids.join(", ")));
        }
        if self.retracted {
            parts.push(match self.retraction.as_deref().filter(|r| !r.is_empty()) {
                Some(r) => format!("retracted: {}", one_line(r)),
                None => "retracted".into(),
            });
        }
        if self.deprecated {
            parts.push(
                match self.deprecation.as_deref().filter(|d| !d.is_empty()) {
                    Some(d) => format!("deprecated: {}", one_line(d)),
                    None => "deprecated".into(),
                },
            );
        }
        parts.join("; ")
    }
}

/// Text from a go.mod or a database, on one line and bounded, for the terminal.
fn one_line(s: &str) -> String {
    let flat: String = s
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    flat
}

/// A mirrored version and what was found.
#[derive(Clone, Debug, Serialize)]
pub struct VersionReport {
    pub module: String,
    pub version: String,
    /// `.info` and `.mod` only (a requirement graph needs it; never built).
    pub graph_only: bool,
    #[serde(flatten)]
    pub findings: Findings,
}

/// A version a project names, and what was found.
#[derive(Clone, Debug, Serialize)]
pub struct PinReport {
    pub file: String,
    /// 0: selected through the file's requirement graph.
    pub line: i64,
    /// `go.sum`, `go.mod`, `list`; `go` or `toolchain` for those lines.
    pub kind: String,
    pub module: String,
    pub version: String,
    #[serde(flatten)]
    pub findings: Findings,
}

/// The counts the metrics file shows (stored for an audit of everything).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditCounts {
    /// When it ran (Unix seconds).
    pub at: i64,
    pub modules: u64,
    pub versions: u64,
    pub vulnerable: u64,
    pub retracted: u64,
    pub deprecated: u64,
    /// Distinct vulnerabilities affecting a mirrored version.
    pub vulns: u64,
    /// Project pins that are vulnerable or retracted.
    pub pins: u64,
    pub vulndb_modified: Option<String>,
    /// Versions the supply-chain policy holds for their cooldown, and
    /// denies (`[policy]`), in scope.
    #[serde(default)]
    pub held: u64,
    #[serde(default)]
    pub denied: u64,
}

/// What the supply-chain policy holds back, beside the findings: versions
/// held for their cooldown (not in the tree yet), denied ones (never
/// published; one still in the tree goes with the next prune), and the
/// project pins of either.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PolicyAudit {
    pub held: Vec<crate::state::HeldVersion>,
    pub denied: Vec<crate::state::DeniedVersion>,
    pub pins: Vec<crate::state::PolicyPin>,
}

/// Held and denied versions an audit lists at most.
const POLICY_LIMIT: usize = 100_000;

/// The database the audit used.
#[derive(Clone, Debug, Serialize)]
pub struct DbUsed {
    pub modified: String,
    pub entries: u64,
    pub url: Option<String>,
}

/// Everything an audit found.
#[derive(Clone, Debug, Serialize)]
pub struct AuditReport {
    pub vulndb: Option<DbUsed>,
    pub versions: Vec<VersionReport>,
    pub projects: Vec<PinReport>,
    /// Held and denied versions (`[policy]`).
    pub policy: PolicyAudit,
    pub counts: AuditCounts,
    /// `--fail-on` matched (exit 1).
    pub failed: bool,
    pub seconds: f64,
}

/// What the run log keeps of an audit (not every finding).
#[derive(Serialize)]
struct Outcome {
    counts: AuditCounts,
    failed: bool,
}

impl runner::Outcome for Outcome {
    fn exit_code(&self) -> i32 {
        i32::from(self.failed)
    }
}

impl AuditReport {
    pub fn exit_code(&self) -> i32 {
        i32::from(self.failed)
    }

    /// The text output: one line per finding, then the summary.
    pub fn render(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for v in &self.versions {
            let what = if v.findings.any() {
                v.findings.describe()
            } else {
                "ok".into()
            };
            lines.push(format!(
                "{}@{}{}: {what}",
                v.module,
                v.version,
                if v.graph_only { " (graph-only)" } else { "" }
            ));
        }
        for p in &self.projects {
            let at = if p.line > 0 {
                format!("{}:{}", p.file, p.line)
            } else {
                format!("{} (requirement graph)", p.file)
            };
            let what = match p.kind.as_str() {
                "go" => format!("go {}", p.version.trim_start_matches("go")),
                "toolchain" => format!("toolchain {}", p.version),
                _ => format!("{}@{}", p.module, p.version),
            };
            lines.push(format!("{at}: {what}: {}", p.findings.describe()));
        }
        for h in &self.policy.held {
            lines.push(format!(
                "{}@{}: held by policy.min_age until {} (not in the tree yet)",
                h.module,
                h.version,
                crate::clock::rfc3339(h.ready_at)
            ));
        }
        for d in &self.policy.denied {
            lines.push(format!(
                "{}@{}: denied by policy.deny ({})",
                d.module,
                d.version,
                if d.in_tree {
                    "still in the tree: the next prune removes it"
                } else {
                    "not published"
                }
            ));
        }
        for p in &self.policy.pins {
            lines.push(crate::plan::pin_line(p));
        }
        let c = &self.counts;
        let db = match &self.vulndb {
            Some(d) => format!(
                "vulnerability database modified {} ({} entries)",
                d.modified, d.entries
            ),
            None => {
                "no vulnerability database held ([vulndb] url): vulnerabilities not checked".into()
            }
        };
        lines.push(format!(
            "audit: {} version{} of {} module{}: {} vulnerable ({} vulnerabilit{}), {} retracted, {} deprecated; {} project pin{} affected; {db}",
            c.versions,
            if c.versions == 1 { "" } else { "s" },
            c.modules,
            if c.modules == 1 { "" } else { "s" },
            c.vulnerable,
            c.vulns,
            if c.vulns == 1 { "y" } else { "ies" },
            c.retracted,
            c.deprecated,
            c.pins,
            if c.pins == 1 { "" } else { "s" },
        ));
        if c.held + c.denied > 0 || !self.policy.pins.is_empty() {
            let last = lines.pop().unwrap_or_default();
            lines.push(format!(
                "{last}; policy: {} held, {} denied, {} project pin{} of them",
                c.held,
                c.denied,
                self.policy.pins.len(),
                if self.policy.pins.len() == 1 { "" } else { "s" }
            ));
        }
        lines
    }
}

/// Runs `gomirror audit`. No lock: it reads the tree and the state database
/// (a sync may run beside it) and writes only its cache and counts.
pub fn run(settings: &Settings, opts: &AuditOptions) -> Result<AuditReport, Fatal> {
    let scope = Scope::parse(&opts.modules)?;
    let started = std::time::Instant::now();
    let mut full: Option<AuditReport> = None;
    runner::run_command(settings, "audit", async |svc| {
        let (db, tree) = (&svc.db, &svc.tree);
        let (s, o, t) = (settings.clone(), opts.clone(), tree.clone());
        let everything = scope.is_everything();
        let scope = scope.clone();
        let mut r = db
            .call(move |state| Ok(audit(state, &s, &o, &scope, &t)))
            .await??;
        r.seconds = started.elapsed().as_secs_f64();
        if everything {
            let counts = serde_json::to_string(&r.counts).expect("counts serialize");
            db.call(move |s| s.record_audit(&counts)).await?;
        }
        let outcome = Outcome {
            counts: r.counts.clone(),
            failed: r.failed,
        };
        full = Some(r);
        Ok(outcome)
    })?;
    Ok(full.expect("the audit ran"))
}

/// Which modules the audit looks at.
#[derive(Clone, Debug, Default)]
struct Scope {
    patterns: String,
    exact: Vec<(String, String)>,
}

impl Scope {
    fn parse(args: &[String]) -> Result<Scope, Fatal> {
        let mut s = Scope::default();
        let mut patterns = Vec::new();
        for a in args {
            match a.split_once('@') {
                Some((p, v)) => {
                    gomod::check(p, v).map_err(|e| Fatal::stopped(format!("audit: {a}: {e}")))?;
                    s.exact.push((p.to_string(), v.to_string()));
                }
                None => {
                    gomod::pattern::check_patterns(a)
                        .map_err(|e| Fatal::stopped(format!("audit: {a:?}: {e}")))?;
                    patterns.push(a.as_str());
                }
            }
        }
        s.patterns = patterns.join(",");
        Ok(s)
    }

    fn is_everything(&self) -> bool {
        self.patterns.is_empty() && self.exact.is_empty()
    }

    fn wants_module(&self, module: &str) -> bool {
        self.is_everything()
            || (!self.patterns.is_empty()
                && gomod::pattern::match_prefix_patterns(&self.patterns, module))
            || self.exact.iter().any(|(p, _)| p == module)
    }

    fn wants(&self, module: &str, version: &str) -> bool {
        self.is_everything()
            || (!self.patterns.is_empty()
                && gomod::pattern::match_prefix_patterns(&self.patterns, module))
            || self.exact.iter().any(|(p, v)| p == module && v == version)
    }
}

/// The version the go command reads `versions`' module's retractions and
/// deprecation from ([`marks::latest_of`]).
fn latest_of(versions: &[AuditVersion]) -> Option<&str> {
    let pairs: Vec<(&str, bool)> = versions
        .iter()
        .map(|v| (v.version.as_str(), v.graph_only))
        .collect();
    marks::latest_of(&pairs)
}

/// The audit proper, on the state thread (it reads `.mod` files from the
/// tree there, as prune does, and writes its cache).
fn audit(
    state: &mut State,
    settings: &Settings,
    opts: &AuditOptions,
    scope: &Scope,
    tree: &Arc<dyn Store>,
) -> Result<AuditReport, Fatal> {
    let status = state.vuln_status()?;
    let index = VulnIndex::from_recorded(&state.vuln_entries()?)?;
    let vulndb = status.modified.clone().map(|modified| DbUsed {
        modified,
        entries: status.entries as u64,
        url: status.url.clone(),
    });
    if vulndb.is_none() && opts.fail_on.contains(&FailOn::Vuln) {
        return Err(Fatal::stopped(
            "audit --fail-on vuln: this mirror holds no vulnerability database (set [vulndb] url and sync, or import a bundle that carries one); refusing to pass a gate with nothing checked",
        ));
    }
    let mut facts = state.module_facts()?;
    let mut updates: Vec<(i64, ModuleFacts)> = Vec::new();
    let mut notes_by_module: HashMap<String, Notes> = HashMap::new();
    let mut counts = AuditCounts {
        at: report::now(),
        vulndb_modified: status.modified.clone(),
        ..AuditCounts::default()
    };
    let mut ids: BTreeSet<String> = BTreeSet::new();
    let mut versions: Vec<VersionReport> = Vec::new();
    let mut failed = false;
    let mut read_error: Option<Fatal> = None;

    state.for_each_module_in_tree(&|m| scope.wants_module(m), |group| {
        let module = group[0].module.clone();
        let module_id = group[0].module_id;
        let notes = match latest_of(&group) {
            None => Notes::default(),
            Some(latest) => match facts.get(&module_id) {
                Some(f) if f.version == latest => Notes::from_facts(f),
                _ => match marks::read_notes(tree.as_ref(), &module, latest) {
                    Ok(Some(n)) => {
                        let f = n.facts(latest);
                        facts.insert(module_id, f.clone());
                        updates.push((module_id, f));
                        n
                    }
                    Ok(None) => Notes::default(),
                    Err(e) => {
                        read_error.get_or_insert(e);
                        Notes::default()
                    }
                },
            },
        };
        let toolchain = module == toolchains::MODULE;
        let mut in_scope = 0;
        for v in &group {
            if !scope.wants(&v.module, &v.version) {
                continue;
            }
            in_scope += 1;
            let hits = if toolchain {
                toolchains::split_version(&v.version)
                    .map(|(go, _)| index.affecting_go(go))
                    .unwrap_or_default()
            } else {
                index.affecting(&v.module, &v.version)
            };
            let retraction = notes.retraction(&v.version);
            let findings = Findings {
                vulns: hits.iter().map(|h| h.id.clone()).collect(),
                vulnerabilities: hits,
                retracted: retraction.is_some(),
                retraction: retraction.map(str::to_string),
                deprecated: notes.deprecated.is_some(),
                deprecation: notes.deprecated.clone(),
            };
            counts.versions += 1;
            counts.vulnerable += u64::from(!findings.vulns.is_empty());
            counts.retracted += u64::from(findings.retracted);
            counts.deprecated += u64::from(findings.deprecated);
            ids.extend(findings.vulns.iter().cloned());
            failed |= findings.matches(&opts.fail_on);
            if findings.any() || opts.all {
                versions.push(VersionReport {
                    module: v.module.clone(),
                    version: v.version.clone(),
                    graph_only: v.graph_only,
                    findings,
                });
            }
        }
        if in_scope > 0 {
            counts.modules += 1;
            notes_by_module.insert(module, notes);
        }
        Ok(())
    })?;
    if let Some(e) = read_error {
        return Err(e);
    }
    counts.vulns = ids.len() as u64;
    if !updates.is_empty() {
        state.set_module_facts(&updates)?;
    }

    // The projects: versions their builds use, and the Go they ask for.
    let mut projects = Vec::new();
    let pins: Vec<NamedPin> = state.named_pins()?;
    for p in pins {
        if !p.zip || !scope.wants(&p.module, &p.version) {
            continue;
        }
        let hits = index.affecting(&p.module, &p.version);
        let notes = notes_by_module
            .get(&p.module)
            .cloned()
            .or_else(|| {
                state
                    .module_id(&p.module)
                    .ok()
                    .flatten()
                    .and_then(|id| facts.get(&id))
                    .map(Notes::from_facts)
            })
            .unwrap_or_default();
        let retraction = notes.retraction(&p.version);
        let findings = Findings {
            vulns: hits.iter().map(|h| h.id.clone()).collect(),
            vulnerabilities: hits,
            retracted: retraction.is_some(),
            retraction: retraction.map(str::to_string),
            deprecated: notes.deprecated.is_some(),
            deprecation: notes.deprecated.clone(),
        };
        if findings.vulns.is_empty() && !findings.retracted {
            continue;
        }
        counts.pins += 1;
        failed |= findings.matches(&opts.fail_on);
        projects.push(PinReport {
            file: p.file,
            line: p.line,
            kind: p.kind,
            module: p.module,
            version: p.version,
            findings,
        });
    }
    if scope.wants_module(toolchains::MODULE) || scope.is_everything() {
        for l in toolchains::go_lines(&settings.config_dir, &settings.from_files) {
            if !l.version.is_release() && l.directive == "go" {
                continue;
            }
            let go = l.version.to_string();
            let hits = index.affecting_go(&go);
            if hits.is_empty() {
                continue;
            }
            let findings = Findings {
                vulns: hits.iter().map(|h| h.id.clone()).collect(),
                vulnerabilities: hits,
                ..Findings::default()
            };
            counts.pins += 1;
            failed |= findings.matches(&opts.fail_on);
            projects.push(PinReport {
                file: l.file,
                line: l.line as i64,
                kind: l.directive.to_string(),
                module: toolchains::MODULE.to_string(),
                version: go,
                findings,
            });
        }
    }
    // What the supply-chain policy holds back, in scope.
    let policy = PolicyAudit {
        held: state
            .held_versions(POLICY_LIMIT)?
            .into_iter()
            .filter(|h| scope.wants(&h.module, &h.version))
            .collect(),
        denied: state
            .denied_versions(POLICY_LIMIT)?
            .into_iter()
            .filter(|d| scope.wants(&d.module, &d.version))
            .collect(),
        pins: state
            .policy_pins()?
            .into_iter()
            .filter(|p| scope.wants(&p.module, &p.version))
            .collect(),
    };
    counts.held = policy.held.len() as u64;
    counts.denied = policy.denied.len() as u64;
    Ok(AuditReport {
        vulndb,
        versions,
        projects,
        policy,
        counts,
        failed,
        seconds: 0.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vuln::format::{Affected, Entry, Event};

    fn entry(id: &str, module: &str, events: &[(&str, &str)], withdrawn: bool) -> Entry {
        Entry {
            id: id.into(),
            modified: "2024-01-01T00:00:00Z".into(),
            published: None,
            withdrawn: withdrawn.then(|| "2024-01-02T00:00:00Z".into()),
            aliases: vec![],
            summary: None,
            affected: vec![Affected {
                module: module.into(),
                ranges: vec![
                    events
                        .iter()
                        .map(|(k, v)| {
                            if *k == "i" {
                                Event::Introduced(v.to_string())
                            } else {
                                Event::Fixed(v.to_string())
                            }
                        })
                        .collect(),
                ],
                other_ranges: false,
            }],
        }
    }

    #[test]
    fn modules_go_releases_and_withdrawn_entries() {
        let idx = VulnIndex::new(vec![
            entry(
                "GO-1-1",
                "a.example/m",
                &[("i", "0"), ("f", "1.2.0")],
                false,
            ),
            entry("GO-1-2", "a.example/m", &[("i", "1.1.0")], true),
            entry("GO-1-3", "stdlib", &[("i", "0"), ("f", "1.22.2")], false),
            entry(
                "GO-1-4",
                "toolchain",
                &[("i", "1.22.0-0"), ("f", "1.22.5")],
                false,
            ),
        ]);
        let ids = |h: Vec<VulnHit>| h.into_iter().map(|h| h.id).collect::<Vec<_>>();
        assert_eq!(ids(idx.affecting("a.example/m", "v1.1.5")), ["GO-1-1"]);
        assert!(idx.affecting("a.example/m", "v1.2.0").is_empty());
        assert_eq!(
            idx.affecting("a.example/m", "v1.0.0")[0].fixed.as_deref(),
            Some("v1.2.0")
        );
        assert_eq!(ids(idx.affecting_go("go1.22.1")), ["GO-1-3", "GO-1-4"]);
        assert_eq!(ids(idx.affecting_go("go1.22.3")), ["GO-1-4"]);
        assert!(idx.affecting_go("go1.23.0").is_empty());
        assert_eq!(ids(idx.affecting_go("go1.21rc2")), ["GO-1-3"]);
    }

    #[test]
    fn the_latest_version_is_what_the_go_command_reads_retractions_from() {
        let v = |s: &str, graph_only: bool| AuditVersion {
            module_id: 1,
            module: "a.example/m".into(),
            version: s.into(),
            graph_only,
        };
        let vs = [
            v("v1.0.0", false),
            v("v1.2.0-rc.1", false),
            v("v1.1.0", false),
            v("v2.0.0+incompatible", true),
        ];
        assert_eq!(latest_of(&vs), Some("v1.1.0"));
        let vs = [
            v("v1.2.0-rc.1", false),
            v("v0.0.0-20240101000000-abcdefabcdef", false),
        ];
        assert_eq!(latest_of(&vs), Some("v1.2.0-rc.1"));
        let vs = [v("v0.0.0-20240101000000-abcdefabcdef", false)];
        assert_eq!(latest_of(&vs), Some("v0.0.0-20240101000000-abcdefabcdef"));
        assert_eq!(latest_of(&[v("v1.0.0", true)]), None);
        let n = Notes {
            deprecated: None,
            retracts: vec![
                ("v1.0.0".into(), "v1.0.5".into(), "broken".into()),
                ("v0.9.0".into(), "v0.9.0".into(), String::new()),
            ],
        };
        assert_eq!(n.retraction("v1.0.3"), Some("broken"));
        assert_eq!(n.retraction("v1.0.5"), Some("broken"));
        assert_eq!(n.retraction("v0.9.0"), Some(""));
        assert_eq!(n.retraction("v1.0.6"), None);
    }

    #[test]
    fn scope() {
        let s = Scope::parse(&["golang.org/x".into(), "a.example/m@v1.0.0".into()]).unwrap();
        assert!(s.wants("golang.org/x/net", "v0.1.0"));
        assert!(s.wants("a.example/m", "v1.0.0") && !s.wants("a.example/m", "v1.1.0"));
        assert!(s.wants_module("a.example/m") && !s.wants_module("b.example/m"));
        assert!(Scope::parse(&["a.example/m@1.0".into()]).is_err());
        assert!(Scope::parse(&[]).unwrap().is_everything());
    }
}
