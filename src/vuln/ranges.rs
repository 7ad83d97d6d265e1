//! Whether a module version is affected by an entry: OSV `affected[].ranges`
//! evaluated with Go's semantic versions, at module level, as govulncheck's
//! module mode reads them (golang.org/x/vuln `internal/osv`, `semver`):
//!
//! * an `affected` element with no `SEMVER` range affects every version;
//! * a range's events are ordered by version (`introduced: "0"` first) and
//!   walked: a version is affected from an `introduced` at or below it until
//!   a `fixed` above it — so `[0, fixed 1.18.6, introduced 1.19.0-0, fixed
//!   1.19.1]` affects 1.18.5 and 1.19.0, not 1.18.6 or 1.19.1;
//! * versions compare as `golang.org/x/mod/semver` does (build metadata such
//!   as `+incompatible` ignored, an invalid version below every valid one).
//!
//! The standard library and the toolchain are the pseudo-modules `stdlib`
//! and `toolchain`, whose versions are Go releases written as semver
//! (`go1.21rc2` is `v1.21.0-rc.2`): a mirrored `golang.org/toolchain`
//! version carries both.

use std::cmp::Ordering;

use crate::gomod::semver;

use super::format::{Affected, Event};

/// `v` + a database version (`1.2.3` → `v1.2.3`); `0` stays below everything.
fn with_v(v: &str) -> String {
    let bare = v
        .strip_prefix('v')
        .or_else(|| v.strip_prefix("go"))
        .unwrap_or(v);
    format!("v{bare}")
}

/// The order govulncheck sorts a range's events in: `introduced: "0"` first,
/// then by version (the event's `introduced` or `fixed`).
fn event_cmp(a: &Event, b: &Event) -> Ordering {
    let key = |e: &Event| match e {
        Event::Introduced(v) if v == "0" => None,
        Event::Introduced(v) | Event::Fixed(v) => Some(with_v(v)),
    };
    match (key(a), key(b)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => semver::compare(&x, &y),
    }
}

/// Whether one `SEMVER` range contains `version` (a Go module version, `v…`).
pub fn range_contains(events: &[Event], version: &str) -> bool {
    if events.is_empty() {
        return true;
    }
    let mut sorted: Vec<&Event> = events.iter().collect();
    sorted.sort_by(|a, b| event_cmp(a, b));
    let mut affected = false;
    for e in sorted {
        match e {
            Event::Introduced(v) if !affected => {
                affected = v == "0" || semver::compare(version, &with_v(v)) != Ordering::Less;
            }
            Event::Fixed(v) if affected => {
                affected = semver::compare(version, &with_v(v)) == Ordering::Less;
            }
            _ => {}
        }
    }
    affected
}

/// Whether `affected` (one element of an entry, for one module) covers `version`.
pub fn affects(affected: &Affected, version: &str) -> bool {
    if affected.ranges.is_empty() {
        // No SEMVER range at all: every version (govulncheck's reading).
        return true;
    }
    affected.ranges.iter().any(|r| range_contains(r, version))
}

/// The fixed version that clears `version`, if any: the lowest `fixed` above
/// it (what an operator upgrades to), with its `v`.
pub fn fixed_after(affected: &Affected, version: &str) -> Option<String> {
    affected
        .ranges
        .iter()
        .flatten()
        .filter_map(|e| match e {
            Event::Fixed(f) => Some(with_v(f)),
            Event::Introduced(_) => None,
        })
        .filter(|f| semver::compare(f, version) == Ordering::Greater)
        .min_by(|a, b| semver::compare(a, b))
}

/// A Go release (`go1.22.3`, `1.21rc2`, `go1.20`) as the semantic version the
/// database writes for `stdlib` and `toolchain` (`v1.22.3`, `v1.21.0-rc.2`,
/// `v1.20.0`), as golang.org/x/vuln's `semver.GoTagToSemver`; `None` if it is
/// not a Go release name.
pub fn go_to_semver(go: &str) -> Option<String> {
    let rest = go.strip_prefix("go").unwrap_or(go);
    let (num, pre) = match rest.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    };
    let parts: Vec<&str> = num.split('.').collect();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if parts.is_empty() || parts.len() > 3 || !parts.iter().all(|p| digits(p)) {
        return None;
    }
    let n = |i: usize| parts.get(i).map_or("0", |p| p);
    let mut v = format!("v{}.{}.{}", n(0), n(1), n(2));
    if let Some(pre) = pre {
        let (kind, k) = pre.split_at(pre.find(|c: char| c.is_ascii_digit())?);
        if !matches!(kind, "rc" | "beta") || !digits(k) || parts.len() > 2 {
            return None;
        }
        v.push_str(&format!("-{kind}.{k}"));
    }
    semver::is_valid(&v).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(s: &[(&str, &str)]) -> Vec<Event> {
        s.iter()
            .map(|(k, v)| match *k {
                "i" => Event::Introduced(v.to_string()),
                _ => Event::Fixed(v.to_string()),
            })
            .collect()
    }

    #[test]
    fn ranges_as_govulncheck_reads_them() {
        // GO-2022-0969 for stdlib: fixed in 1.18.6, reintroduced in 1.19.0-0, fixed in 1.19.1.
        let r = ev(&[
            ("i", "0"),
            ("f", "1.18.6"),
            ("i", "1.19.0-0"),
            ("f", "1.19.1"),
        ]);
        for (v, want) in [
            ("v1.17.0", true),
            ("v1.18.5", true),
            ("v1.18.6", false),
            ("v1.18.10", false),
            ("v1.19.0-rc.1", true),
            ("v1.19.0", true),
            ("v1.19.1", false),
            ("v1.20.0", false),
        ] {
            assert_eq!(range_contains(&r, v), want, "{v}");
        }
        // Out of order in the file: sorted first.
        let shuffled = ev(&[
            ("f", "1.19.1"),
            ("i", "1.19.0-0"),
            ("f", "1.18.6"),
            ("i", "0"),
        ]);
        assert!(range_contains(&shuffled, "v1.18.5") && !range_contains(&shuffled, "v1.18.7"));
        // Pseudo-versions and +incompatible compare as semver does.
        let r = ev(&[("i", "0"), ("f", "0.0.0-20220906165146-f3363e06e74c")]);
        assert!(range_contains(&r, "v0.0.0-20220101000000-aaaaaaaaaaaa"));
        assert!(!range_contains(&r, "v0.1.0"));
        let r = ev(&[("i", "2.0.0"), ("f", "2.3.0")]);
        assert!(range_contains(&r, "v2.1.0+incompatible"));
        assert!(!range_contains(&r, "v1.9.0"));
        // Introduced with no fix: everything from there on.
        let r = ev(&[("i", "1.2.0")]);
        assert!(range_contains(&r, "v9.0.0") && !range_contains(&r, "v1.1.9"));
        // No SEMVER range: every version.
        let a = Affected {
            module: "x.y/z".into(),
            ranges: vec![],
            other_ranges: true,
        };
        assert!(affects(&a, "v1.0.0"));
    }

    #[test]
    fn the_fix_to_upgrade_to() {
        let a = Affected {
            module: "stdlib".into(),
            ranges: vec![ev(&[
                ("i", "0"),
                ("f", "1.21.9"),
                ("i", "1.22.0-0"),
                ("f", "1.22.2"),
            ])],
            other_ranges: false,
        };
        assert_eq!(fixed_after(&a, "v1.21.3").as_deref(), Some("v1.21.9"));
        assert_eq!(fixed_after(&a, "v1.22.1").as_deref(), Some("v1.22.2"));
        assert_eq!(fixed_after(&a, "v1.23.0"), None);
    }

    #[test]
    fn go_releases_as_semver() {
        for (go, v) in [
            ("go1.22.3", Some("v1.22.3")),
            ("go1.21rc2", Some("v1.21.0-rc.2")),
            ("go1.19beta1", Some("v1.19.0-beta.1")),
            ("go1.20", Some("v1.20.0")),
            ("1.24.0", Some("v1.24.0")),
            ("go1.2.3.4", None),
            ("go1.21.0rc1", None),
            ("gox", None),
            ("go1.21alpha1", None),
        ] {
            assert_eq!(go_to_semver(go).as_deref(), v, "{go}");
        }
    }
}
