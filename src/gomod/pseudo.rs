//! Pseudo-versions (`golang.org/x/mod/module/pseudo.go`).
//!
//! A pseudo-version names an untagged commit by its UTC commit time and hash
//! prefix, in one of three shapes:
//!
//! * `vX.0.0-yyyymmddhhmmss-abcdef123456` (no earlier tag),
//! * `vX.Y.(Z+1)-0.yyyymmddhhmmss-abcdef123456` (after release `vX.Y.Z`),
//! * `vX.Y.Z-pre.0.yyyymmddhhmmss-abcdef123456` (after prerelease `vX.Y.Z-pre`),
//!
//! each optionally followed by build metadata such as `+incompatible`. Go
//! recognises them with a regular expression; this module matches the same
//! language by hand.

use super::path::ModuleError;
use super::quote::quote;
use super::semver;

/// `module.IsPseudoVersion`.
pub fn is_pseudo_version(v: &str) -> bool {
    v.bytes().filter(|&b| b == b'-').count() >= 2 && semver::is_valid(v) && matches_shape(v)
}

/// The pseudo-version regular expression of `pseudo.go`:
/// `^v[0-9]+\.(0\.0-|\d+\.\d+-([^+]*\.)?0\.)\d{14}-[A-Za-z0-9]+(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`
///
/// No part before the build suffix can hold a `+`, so the first `+` starts it;
/// the revision holds no `-`, so the last `-` before the suffix precedes it, and
/// the fourteen digits before that `-` are the timestamp.
fn matches_shape(v: &str) -> bool {
    let (core, build) = v.split_at(v.find('+').unwrap_or(v.len()));
    if let Some(idents) = build.strip_prefix('+') {
        let ok = idents.split('.').all(|ident| {
            !ident.is_empty()
                && ident
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
        if !ok {
            return false;
        }
    }
    let core = core.as_bytes();
    let Some(dash) = core.iter().rposition(|&b| b == b'-') else {
        return false;
    };
    let rev = &core[dash + 1..];
    if rev.is_empty() || !rev.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    let Some(head_len) = dash.checked_sub(14) else {
        return false;
    };
    if !core[head_len..dash].iter().all(u8::is_ascii_digit) {
        return false;
    }
    matches_head(&core[..head_len])
}

/// `v[0-9]+\.(0\.0-|\d+\.\d+-([^+]*\.)?0\.)`, the part before the timestamp.
fn matches_head(head: &[u8]) -> bool {
    let Some(rest) = head.strip_prefix(b"v") else {
        return false;
    };
    let Some(rest) = skip_digits(rest).and_then(|r| r.strip_prefix(b".")) else {
        return false;
    };
    if rest == b"0.0-" {
        return true;
    }
    let Some(tail) = skip_digits(rest)
        .and_then(|r| r.strip_prefix(b"."))
        .and_then(skip_digits)
        .and_then(|r| r.strip_prefix(b"-"))
    else {
        return false;
    };
    // `([^+]*\.)?0\.`: "0." alone, or anything ending in ".0.".
    tail == b"0." || tail.ends_with(b".0.")
}

/// Strips one or more leading ASCII digits; `None` if there are none.
fn skip_digits(s: &[u8]) -> Option<&[u8]> {
    let n = s.iter().take_while(|b| b.is_ascii_digit()).count();
    (n > 0).then(|| &s[n..])
}

/// Splits a pseudo-version into (base, timestamp, revision, build) as Go's
/// `parsePseudoVersion` does: base is `vX.0.0`, `vX.Y.(Z+1)-0` or `vX.Y.Z-pre.0`.
fn parse(v: &str) -> Option<(&str, &str, &str, &str)> {
    if !is_pseudo_version(v) {
        return None;
    }
    let build = semver::build(v);
    let core = &v[..v.len() - build.len()];
    let (rest, rev) = core.rsplit_once('-')?;
    let dash = rest.rfind('-')?;
    match rest.rfind('.') {
        Some(dot) if dot > dash => Some((&rest[..dot], &rest[dot + 1..], rev, build)),
        _ => Some((&rest[..dash], &rest[dash + 1..], rev, build)),
    }
}

/// Whether `ts` is a time Go's `time.Parse("20060102150405", ts)` accepts.
fn valid_timestamp(ts: &str) -> bool {
    let b = ts.as_bytes();
    if b.len() != 14 || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let num = |i: usize, n: usize| {
        b[i..i + n]
            .iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
    };
    let (year, month, day) = (num(0, 4), num(4, 2), num(6, 2));
    let (hour, minute, second) = (num(8, 2), num(10, 2), num(12, 2));
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days_in_month).contains(&day) && hour < 24 && minute < 60 && second < 60
}

/// The 14-digit UTC commit time of a pseudo-version (`20060102150405`), which
/// orders pseudo-versions chronologically as plain strings. `None` if `v` is
/// not a pseudo-version.
///
/// Like Go's `PseudoVersionTime`, a timestamp that is not a real date and time
/// (month 13, February 30, second 60) counts as malformed, so `None`.
pub fn pseudo_version_time(v: &str) -> Option<&str> {
    let (_, timestamp, _, _) = parse(v)?;
    valid_timestamp(timestamp).then_some(timestamp)
}

/// `module.PseudoVersionRev`: the revision (commit hash prefix) of a
/// pseudo-version; `None` if `v` is not one.
pub fn pseudo_version_rev(v: &str) -> Option<&str> {
    parse(v).map(|(_, _, rev, _)| rev)
}

/// `module.PseudoVersionBase`: the version the pseudo-version was derived
/// from (`""` when it has none, i.e. `vX.0.0-...`).
pub fn pseudo_version_base(v: &str) -> Result<String, ModuleError> {
    let invalid =
        |reason: String| ModuleError(format!("pseudo-version {} invalid: {reason}", quote(v)));
    let (base, _, _, build) = parse(v).ok_or_else(|| invalid("syntax error".into()))?;
    match semver::prerelease(base) {
        "" => {
            if build.is_empty() {
                Ok(String::new())
            } else {
                Err(invalid(format!(
                    "lacks base version, but has build metadata {}",
                    quote(build)
                )))
            }
        }
        "-0" => {
            let release = &base[..base.len() - 2];
            let (major_minor, patch) = release
                .rsplit_once('.')
                .ok_or_else(|| invalid("syntax error".into()))?;
            match dec_decimal(patch) {
                None => Err(invalid(format!(
                    "version before {base} would have negative patch number"
                ))),
                Some(patch) => Ok(format!("{major_minor}.{patch}{build}")),
            }
        }
        _ => {
            let pre = base
                .strip_suffix(".0")
                .ok_or_else(|| invalid("syntax error".into()))?;
            Ok(format!("{pre}{build}"))
        }
    }
}

/// Adds one to a decimal digit string of any length.
#[cfg(test)]
fn inc_decimal(decimal: &str) -> String {
    let mut digits = decimal.as_bytes().to_vec();
    let mut i = digits.len();
    while i > 0 && digits[i - 1] == b'9' {
        digits[i - 1] = b'0';
        i -= 1;
    }
    if i > 0 {
        digits[i - 1] += 1;
    } else {
        digits.insert(0, b'1');
    }
    String::from_utf8(digits).unwrap_or_default()
}

/// Subtracts one from a decimal digit string; `None` if it is zero (or empty).
fn dec_decimal(decimal: &str) -> Option<String> {
    let mut digits = decimal.as_bytes().to_vec();
    let mut i = digits.len();
    while i > 0 && digits[i - 1] == b'0' {
        digits[i - 1] = b'9';
        i -= 1;
    }
    if i == 0 {
        return None;
    }
    if i == 1 && digits[0] == b'1' && digits.len() > 1 {
        digits.remove(0);
    } else {
        digits[i - 1] -= 1;
    }
    String::from_utf8(digits).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pseudo_test.go` `pseudoTests`: (older version, pseudo-version derived from it).
    const PSEUDO_TESTS: &[(&str, &str)] = &[
        ("", "v0.0.0-20060102150405-hash"),
        ("", "v1.0.0-20060102150405-hash"),
        ("", "v2.0.0-20060102150405-hash"),
        ("v0.0.0", "v0.0.1-0.20060102150405-hash"),
        ("v1.2.3", "v1.2.4-0.20060102150405-hash"),
        (
            "v1.2.99999999999999999",
            "v1.2.100000000000000000-0.20060102150405-hash",
        ),
        ("v1.2.3-pre", "v1.2.3-pre.0.20060102150405-hash"),
        ("v1.3.0-pre", "v1.3.0-pre.0.20060102150405-hash"),
        ("v0.0.0--", "v0.0.0--.0.20060102150405-hash"),
        ("v1.0.0+metadata", "v1.0.1-0.20060102150405-hash+metadata"),
        (
            "v2.0.0+incompatible",
            "v2.0.1-0.20060102150405-hash+incompatible",
        ),
        (
            "v2.3.0-pre+incompatible",
            "v2.3.0-pre.0.20060102150405-hash+incompatible",
        ),
    ];

    #[test]
    fn pseudo_versions_and_their_parts() {
        for &(older, version) in PSEUDO_TESTS {
            assert!(is_pseudo_version(version), "{version:?}");
            assert!(!is_pseudo_version(older), "{older:?}");
            assert_eq!(
                pseudo_version_time(version),
                Some("20060102150405"),
                "{version:?}"
            );
            assert_eq!(pseudo_version_time(older), None, "{older:?}");
            assert_eq!(pseudo_version_rev(version), Some("hash"), "{version:?}");
            assert_eq!(pseudo_version_rev(older), None, "{older:?}");
            assert_eq!(
                pseudo_version_base(version).as_deref(),
                Ok(older),
                "{version:?}"
            );
        }
        assert_eq!(pseudo_version_time("---"), None);
    }

    #[test]
    fn invalid_pseudo_version_base() {
        for v in [
            "v0.0.0",
            "v0.0.0-",
            "v0.0.0-0.20060102150405-hash",
            "v0.1.0-0.20060102150405-hash",
            "v1.0.0-0.20060102150405-hash",
            "v0.0.0-20060102150405-hash+incompatible",
            "v0.0.0-20060102150405-hash+metadata",
        ] {
            assert!(pseudo_version_base(v).is_err(), "{v:?}");
        }
    }

    #[test]
    fn not_pseudo_versions() {
        for v in [
            "v1.0.0",
            "v1.0.0-pre",
            "v1.0.0-20060102150405",
            "v0.0.0-2006010215040-hash",    // 13 digits
            "v0.0.0-200601021504050-hash",  // 15 digits
            "v0.0.0-20060102150405-",       // no revision
            "v0.0.0-20060102150405-ha_sh",  // not semver
            "v1.0.0-20060102150405-hash",   // the vX.0.0 form: this one *is* a pseudo-version
            "v1.2.3-20060102150405-hash",   // release base needs "-0."
            "v1.2.3-1.20060102150405-hash", // "-1." is not "-0."
            "v1.2.3-pre.1.20060102150405-hash",
            "v1.2.3-pre0.20060102150405-hash",
            "v1.2-0.20060102150405-hash",
            "1.2.3-0.20060102150405-hash",
            "v0.0.0-20060102150405-hash+",
            "v0.0.0-20060102150405-hash+a..b",
            "",
        ] {
            let want = v == "v1.0.0-20060102150405-hash";
            assert_eq!(is_pseudo_version(v), want, "{v:?}");
        }
        for v in [
            "v0.0.0-20191109021931-daa7c04131f5",
            "v0.0.0-20060102150405-abcdef123456+incompatible",
            "v1.2.4-0.20191109021931-daa7c04131f5",
            "v1.2.3-pre.0.20191109021931-daa7c04131f5",
            "v1.2.3-rc.1.pre.0.20191109021931-daa7c04131f5",
            "v2.0.1-0.20191109021931-daa7c04131f5+incompatible",
        ] {
            assert!(is_pseudo_version(v), "{v:?}");
        }
    }

    #[test]
    fn timestamps_must_be_real_times() {
        assert_eq!(
            pseudo_version_time("v0.0.0-20191109021931-daa7c04131f5"),
            Some("20191109021931")
        );
        assert_eq!(
            pseudo_version_time("v0.0.0-20200229235959-abc"),
            Some("20200229235959")
        );
        for v in [
            "v0.0.0-20191309021931-daa7c04131f5", // month 13
            "v0.0.0-20190009021931-daa7c04131f5", // month 0
            "v0.0.0-20190230021931-daa7c04131f5", // Feb 30
            "v0.0.0-21000229000000-daa7c04131f5", // 2100 is not a leap year
            "v0.0.0-20190100021931-daa7c04131f5", // day 0
            "v0.0.0-20190101241931-daa7c04131f5", // hour 24
            "v0.0.0-20190101236031-daa7c04131f5", // minute 60
            "v0.0.0-20190101235960-daa7c04131f5", // second 60
        ] {
            assert!(is_pseudo_version(v), "{v:?}");
            assert_eq!(pseudo_version_time(v), None, "{v:?}");
        }
    }

    #[test]
    fn decimal_arithmetic() {
        for (input, want) in [
            ("0", "1"),
            ("1", "2"),
            ("99", "100"),
            ("100", "101"),
            ("101", "102"),
        ] {
            assert_eq!(inc_decimal(input), want);
        }
        for (input, want) in [
            ("", None),
            ("0", None),
            ("00", None),
            ("1", Some("0")),
            ("2", Some("1")),
            ("99", Some("98")),
            ("100", Some("99")),
            ("101", Some("100")),
        ] {
            assert_eq!(dec_decimal(input).as_deref(), want, "{input:?}");
        }
    }
}
