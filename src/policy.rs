//! The supply-chain policy (`[policy]`): which versions may enter the tree,
//! and when. Parsed from `sync.toml` into [`Policy`] (data, held by the
//! settings) and asked, version by version, for a [`Verdict`]. Pure: no
//! state database, no clock of its own (the caller passes `now`), so the
//! sync, its dry run, `status` and `audit` decide alike.
//!
//! Why a mirror needs it: it copies faithfully, so a malicious release (a
//! hijacked account, a compromised CI) reaches every builder behind it
//! within one cron interval and, across an air gap, stays there for months;
//! most such releases are found and pulled within days. Three rules:
//!
//! * **cooldown** (`min_age = "3d"`): a version enters the tree only once it
//!   is that old, by a time its author cannot set — when the module index
//!   first listed it (the proxy's first sight), or when this mirror first
//!   saw it listed or named. Never the `.info` `Time`: that is the commit
//!   time, which the author chooses. A cooling version is *held*; it is not
//!   lost, and the first sync after it is old enough fetches it.
//! * **exceptions** (`allow`): versions or modules exempt from the cooldown
//!   (an urgent fix, one's own modules). They are not exempt from `deny`.
//! * **takedowns** (`deny`): versions never published; those in the tree go.
//!
//! Rule syntax, for `allow` and `deny` alike: a module pattern in GOPRIVATE
//! syntax (`example.com/evil`, `corp.example/*`: a pattern matches its
//! modules and every module below them), optionally followed by `@` and a
//! version (`@v1.2.3`) or a comparison in Go's semver order (`@<v1.4.0`,
//! `@<=v1.4.0`, `@>v2.0.0`, `@>=v2.0.0`).

use std::fmt;
use std::time::Duration;

use crate::gomod::{pattern, semver};

/// Which versions of the modules a rule names it covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Versions {
    /// Every version.
    All,
    /// Exactly this one.
    Exact(String),
    Below(String),
    AtMost(String),
    Above(String),
    AtLeast(String),
}

impl Versions {
    fn covers(&self, version: &str) -> bool {
        use std::cmp::Ordering::*;
        let cmp = |bound: &str| semver::compare(version, bound);
        match self {
            Versions::All => true,
            // Build metadata (`+incompatible`) is part of the name here: an
            // exact rule names one version, as `go get m@v` does.
            Versions::Exact(v) => version == v,
            Versions::Below(b) => cmp(b) == Less,
            Versions::AtMost(b) => cmp(b) != Greater,
            Versions::Above(b) => cmp(b) == Greater,
            Versions::AtLeast(b) => cmp(b) != Less,
        }
    }
}

/// One entry of `allow` or `deny`, as written and as matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The entry as written (messages name it).
    pub text: String,
    /// GOPRIVATE-style pattern (one glob).
    modules: String,
    versions: Versions,
}

impl Rule {
    /// Parses one entry; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Rule, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("an entry is empty".into());
        }
        let (modules, spec) = match t.split_once('@') {
            Some((m, s)) => (m.trim(), Some(s.trim())),
            None => (t, None),
        };
        if modules.is_empty() {
            return Err(format!("{t:?} names no module"));
        }
        if modules.contains(',') {
            return Err(format!(
                "{t:?}: one pattern per entry (write [\"a\", \"b\"], not \"a,b\")"
            ));
        }
        pattern::check_patterns(modules).map_err(|e| format!("{t:?}: {e}"))?;
        let versions = match spec {
            None => Versions::All,
            Some(s) => {
                let (op, v) = if let Some(v) = s.strip_prefix("<=") {
                    ("<=", v)
                } else if let Some(v) = s.strip_prefix(">=") {
                    (">=", v)
                } else if let Some(v) = s.strip_prefix('<') {
                    ("<", v)
                } else if let Some(v) = s.strip_prefix('>') {
                    (">", v)
                } else {
                    ("", s)
                };
                let v = v.trim();
                if !semver::is_valid(v) {
                    return Err(format!(
                        "{t:?}: {v:?} is not a semantic version (write m@v1.2.3, m@<v1.4.0, m@<=, m@> or m@>=)"
                    ));
                }
                if op.is_empty() && semver::canonical(v) != v && semver::build(v).is_empty() {
                    return Err(format!(
                        "{t:?}: an exact version is written in full ({:?})",
                        semver::canonical(v)
                    ));
                }
                let v = v.to_string();
                match op {
                    "" => Versions::Exact(v),
                    "<" => Versions::Below(v),
                    "<=" => Versions::AtMost(v),
                    ">" => Versions::Above(v),
                    _ => Versions::AtLeast(v),
                }
            }
        };
        Ok(Rule {
            text: t.to_string(),
            modules: modules.to_string(),
            versions,
        })
    }

    pub fn matches(&self, module: &str, version: &str) -> bool {
        pattern::match_prefix_patterns(&self.modules, module) && self.versions.covers(version)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// What the policy says of one version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Fetch and publish it.
    Fetch,
    /// Too young: held until `ready_at` (Unix seconds).
    Hold { ready_at: i64 },
    /// Never published: `rule` (as written) denies it.
    Deny { rule: String },
}

/// `[policy]`, checked. The default is no policy at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// `min_age`: `None` (or zero) is no cooldown.
    pub min_age: Option<Duration>,
    pub allow: Vec<Rule>,
    pub deny: Vec<Rule>,
}

/// The longest cooldown accepted: a year is already "never" for a mirror.
pub const MAX_MIN_AGE: Duration = Duration::from_secs(366 * 86400);

impl Policy {
    /// Checks `allow` and `deny` entries (`min_age` is parsed by the caller,
    /// which owns duration syntax); the error names the key.
    pub fn new(
        min_age: Option<Duration>,
        allow: &[String],
        deny: &[String],
    ) -> Result<Policy, String> {
        if let Some(d) = min_age
            && d > MAX_MIN_AGE
        {
            return Err(format!(
                "policy.min_age must be at most 366d, not {}",
                humantime::format_duration(d)
            ));
        }
        let rules = |key: &str, list: &[String]| -> Result<Vec<Rule>, String> {
            list.iter()
                .map(|t| Rule::parse(t).map_err(|e| format!("{key}: {e}")))
                .collect()
        };
        Ok(Policy {
            min_age: min_age.filter(|d| !d.is_zero()),
            allow: rules("policy.allow", allow)?,
            deny: rules("policy.deny", deny)?,
        })
    }

    /// Whether the policy does anything at all.
    pub fn is_off(&self) -> bool {
        self.min_age.is_none() && self.deny.is_empty()
    }

    /// `min_age` in seconds (0 when off).
    pub fn min_age_secs(&self) -> i64 {
        self.min_age
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }

    /// The deny rule that covers `module@version`, if one does.
    pub fn denied_by(&self, module: &str, version: &str) -> Option<&Rule> {
        self.deny.iter().find(|r| r.matches(module, version))
    }

    /// Whether `module@version` is exempt from the cooldown.
    pub fn allows(&self, module: &str, version: &str) -> bool {
        self.allow.iter().any(|r| r.matches(module, version))
    }

    /// The verdict for `module@version`, first seen at `first_seen` (Unix
    /// seconds; `None`: never seen before, so now). `cooldown`: whether the
    /// cooldown applies (a sync fetching new versions); a repair of a version
    /// already in the tree, or an import (whose bytes come from a bundle that
    /// will not be there later), is subject to `deny` only.
    pub fn decide(
        &self,
        module: &str,
        version: &str,
        first_seen: Option<i64>,
        now: i64,
        cooldown: bool,
    ) -> Verdict {
        if let Some(rule) = self.denied_by(module, version) {
            return Verdict::Deny {
                rule: rule.text.clone(),
            };
        }
        if !cooldown || self.min_age.is_none() || self.allows(module, version) {
            return Verdict::Fetch;
        }
        let ready_at = first_seen
            .unwrap_or(now)
            .saturating_add(self.min_age_secs());
        if ready_at > now {
            Verdict::Hold { ready_at }
        } else {
            Verdict::Fetch
        }
    }

    /// A stable description, stored with the state so that a changed policy
    /// is applied once to what the database already holds.
    pub fn fingerprint(&self) -> String {
        let list = |rules: &[Rule]| {
            rules
                .iter()
                .map(|r| r.text.as_str())
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "min_age={};allow={};deny={}",
            self.min_age_secs(),
            list(&self.allow),
            list(&self.deny)
        )
    }

    /// A duration as a person reads it in messages (`3days`).
    pub fn min_age_text(&self) -> String {
        self.min_age.map_or_else(
            || "off".into(),
            |d| humantime::format_duration(d).to_string(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(min_age: u64, allow: &[&str], deny: &[&str]) -> Policy {
        let s = |l: &[&str]| l.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        Policy::new(Some(Duration::from_secs(min_age)), &s(allow), &s(deny)).unwrap()
    }

    #[test]
    fn rules_parse_patterns_versions_and_comparisons() {
        let r = Rule::parse("example.com/evil").unwrap();
        assert!(r.matches("example.com/evil", "v1.0.0"));
        assert!(
            r.matches("example.com/evil/sub", "v0.1.0"),
            "a prefix pattern"
        );
        assert!(!r.matches("example.com/evilish", "v1.0.0"));
        let r = Rule::parse("github.com/x/y@v1.2.3").unwrap();
        assert!(r.matches("github.com/x/y", "v1.2.3"));
        assert!(!r.matches("github.com/x/y", "v1.2.4"));
        let r = Rule::parse("github.com/x/y@<v1.4.0").unwrap();
        assert!(r.matches("github.com/x/y", "v1.3.9"));
        assert!(
            r.matches("github.com/x/y", "v1.4.0-rc.1"),
            "a prerelease sorts below"
        );
        assert!(!r.matches("github.com/x/y", "v1.4.0"));
        let r = Rule::parse("github.com/x/y@<=v1.4.0").unwrap();
        assert!(r.matches("github.com/x/y", "v1.4.0"));
        let r = Rule::parse("github.com/x/y@>v1.4.0").unwrap();
        assert!(r.matches("github.com/x/y", "v1.4.1") && !r.matches("github.com/x/y", "v1.4.0"));
        let r = Rule::parse("github.com/x/y@>=v1.4.0").unwrap();
        assert!(r.matches("github.com/x/y", "v1.4.0") && !r.matches("github.com/x/y", "v1.3.0"));
        let r = Rule::parse("corp.example/*").unwrap();
        assert!(r.matches("corp.example/a/b", "v0.0.1") && !r.matches("corp.example", "v1.0.0"));
        let r = Rule::parse(" golang.org/x/net@v0.33.0 ").unwrap();
        assert_eq!(r.text, "golang.org/x/net@v0.33.0");
        for bad in [
            "",
            "@v1.0.0",
            "a.example/m@1.0.0",
            "a.example/m@<",
            "a.example/m@v1.0",
            "a.example/[",
            "a.example/m,b.example/n",
            "a.example/m@~v1.0.0",
        ] {
            assert!(Rule::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(
            Rule::parse("a.example/m@<v1.2").is_ok(),
            "a bound may be short"
        );
    }

    #[test]
    fn the_cooldown_counts_from_first_sight_and_allow_and_deny_override() {
        let day = 86_400;
        let p = policy(
            3 * day as u64,
            &["golang.org/x/net@v0.33.0", "corp.example/*"],
            &["example.com/evil", "github.com/x/y@<v1.4.0"],
        );
        let now = 100 * day;
        assert_eq!(
            p.decide("a.example/m", "v1.0.0", Some(now - 3600), now, true),
            Verdict::Hold {
                ready_at: now - 3600 + 3 * day
            }
        );
        assert_eq!(
            p.decide("a.example/m", "v1.0.0", None, now, true),
            Verdict::Hold {
                ready_at: now + 3 * day
            },
            "never seen: the clock starts now"
        );
        assert_eq!(
            p.decide("a.example/m", "v1.0.0", Some(now - 3 * day), now, true),
            Verdict::Fetch,
            "exactly old enough"
        );
        assert_eq!(
            p.decide("a.example/m", "v1.0.0", Some(now), now, false),
            Verdict::Fetch,
            "no cooldown for repairs and imports"
        );
        assert_eq!(
            p.decide("golang.org/x/net", "v0.33.0", Some(now), now, true),
            Verdict::Fetch
        );
        assert!(matches!(
            p.decide("golang.org/x/net", "v0.34.0", Some(now), now, true),
            Verdict::Hold { .. }
        ));
        assert_eq!(
            p.decide("corp.example/lib", "v0.1.0", Some(now), now, true),
            Verdict::Fetch
        );
        assert_eq!(
            p.decide("example.com/evil", "v9.0.0", Some(0), now, false),
            Verdict::Deny {
                rule: "example.com/evil".into()
            },
            "deny applies without the cooldown too"
        );
        assert!(matches!(
            p.decide("github.com/x/y", "v1.3.0", Some(0), now, true),
            Verdict::Deny { .. }
        ));
        assert_eq!(
            p.decide("github.com/x/y", "v1.4.0", Some(0), now, true),
            Verdict::Fetch
        );
    }

    #[test]
    fn off_bounds_and_fingerprints() {
        let off = Policy::new(Some(Duration::ZERO), &[], &[]).unwrap();
        assert!(off.is_off() && off.min_age.is_none());
        assert_eq!(Policy::default().fingerprint(), off.fingerprint());
        assert_eq!(
            off.decide("a.example/m", "v1.0.0", None, 5, true),
            Verdict::Fetch
        );
        assert!(Policy::new(Some(Duration::from_secs(400 * 86400)), &[], &[]).is_err());
        let e = Policy::new(None, &[], &["a.example/m@x".into()]).unwrap_err();
        assert!(e.starts_with("policy.deny: "), "{e}");
        let a = policy(60, &[], &["a.example/m"]);
        let b = policy(60, &[], &["a.example/m@v1.0.0"]);
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_ne!(
            a.fingerprint(),
            policy(61, &[], &["a.example/m"]).fingerprint()
        );
    }
}
