//! Semantic versions as Go writes them (`golang.org/x/mod/semver`): a leading
//! `v`, shorthands `v1` and `v1.2`, no leading zeros.
//!
//! Numbers are kept as digit strings and compared by length, then bytewise, so
//! `v1.2.99999999999999999999` is as valid (and as comparable) as `v1.2.3`.

use std::cmp::Ordering;

/// A version split into its parts; every field borrows from the input except
/// the `"0"`s a shorthand stands for.
struct Parsed<'a> {
    major: &'a str,
    minor: &'a str,
    patch: &'a str,
    /// What the shorthand leaves out: `".0.0"` for `v1`, `".0"` for `v1.2`.
    short: &'static str,
    prerelease: &'a str,
    build: &'a str,
}

fn parse(v: &str) -> Option<Parsed<'_>> {
    let rest = v.strip_prefix('v')?;
    let (major, rest) = parse_int(rest)?;
    if rest.is_empty() {
        return Some(Parsed {
            major,
            minor: "0",
            patch: "0",
            short: ".0.0",
            prerelease: "",
            build: "",
        });
    }
    let (minor, rest) = parse_int(rest.strip_prefix('.')?)?;
    if rest.is_empty() {
        return Some(Parsed {
            major,
            minor,
            patch: "0",
            short: ".0",
            prerelease: "",
            build: "",
        });
    }
    let (patch, mut rest) = parse_int(rest.strip_prefix('.')?)?;
    let mut prerelease = "";
    if rest.starts_with('-') {
        (prerelease, rest) = parse_prerelease(rest)?;
    }
    let mut build = "";
    if rest.starts_with('+') {
        (build, rest) = parse_build(rest)?;
    }
    if !rest.is_empty() {
        return None;
    }
    Some(Parsed {
        major,
        minor,
        patch,
        short: "",
        prerelease,
        build,
    })
}

/// A decimal number without a leading zero (other than `0` itself).
fn parse_int(s: &str) -> Option<(&str, &str)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || (digits > 1 && s.starts_with('0')) {
        return None;
    }
    Some(s.split_at(digits))
}

fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// An all-digit identifier with a leading zero, which prereleases forbid.
fn is_bad_num(ident: &str) -> bool {
    ident.len() > 1 && ident.starts_with('0') && ident.bytes().all(|b| b.is_ascii_digit())
}

/// `-ident(.ident)*` up to a `+` or the end; identifiers are non-empty.
fn parse_prerelease(s: &str) -> Option<(&str, &str)> {
    let end = s.find('+').unwrap_or(s.len());
    let (pre, rest) = s.split_at(end);
    let body = pre.strip_prefix('-')?;
    let ok = body
        .split('.')
        .all(|ident| !ident.is_empty() && ident.bytes().all(is_ident_char) && !is_bad_num(ident));
    ok.then_some((pre, rest))
}

/// `+ident(.ident)*` to the end; identifiers are non-empty.
fn parse_build(s: &str) -> Option<(&str, &str)> {
    let body = s.strip_prefix('+')?;
    let ok = body
        .split('.')
        .all(|ident| !ident.is_empty() && ident.bytes().all(is_ident_char));
    ok.then_some((s, ""))
}

/// `semver.IsValid`.
pub fn is_valid(v: &str) -> bool {
    parse(v).is_some()
}

/// `semver.Canonical`: `v1.2` → `v1.2.0`, build metadata dropped; "" if invalid.
pub fn canonical(v: &str) -> String {
    match parse(v) {
        None => String::new(),
        Some(p) if !p.build.is_empty() => v[..v.len() - p.build.len()].to_owned(),
        Some(p) => format!("{v}{}", p.short),
    }
}

/// `semver.Major`: `v2.1.0` → `v2`; "" if invalid.
pub fn major(v: &str) -> &str {
    match parse(v) {
        Some(p) => &v[..1 + p.major.len()],
        None => "",
    }
}

/// `semver.MajorMinor`: `v2.1.0` → `v2.1`, `v2` → `v2.0`; "" if invalid.
pub fn major_minor(v: &str) -> String {
    match parse(v) {
        None => String::new(),
        Some(p) if p.short == ".0.0" => format!("{v}.0"),
        Some(p) => v[..1 + p.major.len() + 1 + p.minor.len()].to_owned(),
    }
}

/// `semver.Prerelease`: `v1.2.3-pre+meta` → `-pre`; "" if none or invalid.
pub fn prerelease(v: &str) -> &str {
    parse(v).map_or("", |p| p.prerelease)
}

/// `semver.Build`: `v1.2.3+meta` → `+meta`; "" if none or invalid.
pub fn build(v: &str) -> &str {
    parse(v).map_or("", |p| p.build)
}

/// `semver.Compare`: invalid versions are equal to each other and below every
/// valid one; build metadata is ignored.
pub fn compare(a: &str, b: &str) -> Ordering {
    match (parse(a), parse(b)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(pa), Some(pb)) => compare_num(pa.major, pb.major)
            .then_with(|| compare_num(pa.minor, pb.minor))
            .then_with(|| compare_num(pa.patch, pb.patch))
            .then_with(|| compare_prerelease(pa.prerelease, pb.prerelease)),
    }
}

/// `semver.Sort`'s order: [`compare`], ties broken by plain string order.
pub fn sort_cmp(a: &str, b: &str) -> Ordering {
    compare(a, b).then_with(|| a.cmp(b))
}

/// Compares decimal strings without leading zeros, of any length.
fn compare_num(x: &str, y: &str) -> Ordering {
    x.len().cmp(&y.len()).then_with(|| x.cmp(y))
}

fn is_num(ident: &str) -> bool {
    ident.bytes().all(|b| b.is_ascii_digit())
}

/// SemVer 2.0.0 §11: no prerelease beats any prerelease; identifiers compare
/// left to right, numeric ones numerically and below alphanumeric ones, which
/// compare in ASCII order; a longer list wins when one is a prefix of the other.
fn compare_prerelease(x: &str, y: &str) -> Ordering {
    if x == y {
        return Ordering::Equal;
    }
    if x.is_empty() {
        return Ordering::Greater;
    }
    if y.is_empty() {
        return Ordering::Less;
    }
    let mut xs = x[1..].split('.');
    let mut ys = y[1..].split('.');
    loop {
        match (xs.next(), ys.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(dx), Some(dy)) if dx == dy => {}
            (Some(dx), Some(dy)) => {
                return match (is_num(dx), is_num(dy)) {
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (true, true) => compare_num(dx, dy),
                    (false, false) => dx.cmp(dy),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `semver_test.go` `tests`: (input, canonical form or "" if invalid), in
    /// increasing precedence.
    const TESTS: &[(&str, &str)] = &[
        ("bad", ""),
        ("v1-alpha.beta.gamma", ""),
        ("v1-pre", ""),
        ("v1+meta", ""),
        ("v1-pre+meta", ""),
        ("v1.2-pre", ""),
        ("v1.2+meta", ""),
        ("v1.2-pre+meta", ""),
        ("v1.0.0-alpha", "v1.0.0-alpha"),
        ("v1.0.0-alpha.1", "v1.0.0-alpha.1"),
        ("v1.0.0-alpha.beta", "v1.0.0-alpha.beta"),
        ("v1.0.0-beta", "v1.0.0-beta"),
        ("v1.0.0-beta.2", "v1.0.0-beta.2"),
        ("v1.0.0-beta.11", "v1.0.0-beta.11"),
        ("v1.0.0-rc.1", "v1.0.0-rc.1"),
        ("v1", "v1.0.0"),
        ("v1.0", "v1.0.0"),
        ("v1.0.0", "v1.0.0"),
        ("v1.2", "v1.2.0"),
        ("v1.2.0", "v1.2.0"),
        ("v1.2.3-456", "v1.2.3-456"),
        ("v1.2.3-456.789", "v1.2.3-456.789"),
        ("v1.2.3-456-789", "v1.2.3-456-789"),
        ("v1.2.3-456a", "v1.2.3-456a"),
        ("v1.2.3-pre", "v1.2.3-pre"),
        ("v1.2.3-pre+meta", "v1.2.3-pre"),
        ("v1.2.3-pre.1", "v1.2.3-pre.1"),
        ("v1.2.3-zzz", "v1.2.3-zzz"),
        ("v1.2.3", "v1.2.3"),
        ("v1.2.3+meta", "v1.2.3"),
        ("v1.2.3+meta-pre", "v1.2.3"),
        ("v1.2.3+meta-pre.sha.256a", "v1.2.3"),
    ];

    #[test]
    fn is_valid_and_canonical() {
        for &(input, want) in TESTS {
            assert_eq!(is_valid(input), !want.is_empty(), "is_valid({input:?})");
            assert_eq!(canonical(input), want, "canonical({input:?})");
        }
    }

    #[test]
    fn major_prerelease_build() {
        for &(input, want) in TESTS {
            let want_major = if want.is_empty() {
                ""
            } else {
                &want[..want.find('.').unwrap_or(want.len())]
            };
            assert_eq!(major(input), want_major, "major({input:?})");

            let want_mm = if want.is_empty() {
                String::new()
            } else {
                let i = want.find('.').unwrap_or(0) + 1;
                let j = i + want[i..].find('.').unwrap_or(0);
                want[..j].to_owned()
            };
            assert_eq!(major_minor(input), want_mm, "major_minor({input:?})");

            let want_pre = match want.find('-') {
                Some(i) if !want.is_empty() => &want[i..],
                _ => "",
            };
            assert_eq!(prerelease(input), want_pre, "prerelease({input:?})");

            let want_build = match input.find('+') {
                Some(i) if !want.is_empty() => &input[i..],
                _ => "",
            };
            assert_eq!(build(input), want_build, "build({input:?})");
        }
        assert_eq!(major_minor("v2.1.0"), "v2.1");
        assert_eq!(major_minor("v2"), "v2.0");
    }

    #[test]
    fn compare_all_pairs() {
        for (i, &(ti, ci)) in TESTS.iter().enumerate() {
            for (j, &(tj, cj)) in TESTS.iter().enumerate() {
                let want = if ci == cj { Ordering::Equal } else { i.cmp(&j) };
                assert_eq!(compare(ti, tj), want, "compare({ti:?}, {tj:?})");
            }
        }
    }

    #[test]
    fn sort_golden_order() {
        let mut versions: Vec<&str> = TESTS.iter().map(|t| t.0).collect();
        versions.reverse();
        versions.sort_by(|a, b| sort_cmp(a, b));
        let golden = [
            "bad",
            "v1+meta",
            "v1-alpha.beta.gamma",
            "v1-pre",
            "v1-pre+meta",
            "v1.2+meta",
            "v1.2-pre",
            "v1.2-pre+meta",
            "v1.0.0-alpha",
            "v1.0.0-alpha.1",
            "v1.0.0-alpha.beta",
            "v1.0.0-beta",
            "v1.0.0-beta.2",
            "v1.0.0-beta.11",
            "v1.0.0-rc.1",
            "v1",
            "v1.0",
            "v1.0.0",
            "v1.2",
            "v1.2.0",
            "v1.2.3-456",
            "v1.2.3-456.789",
            "v1.2.3-456-789",
            "v1.2.3-456a",
            "v1.2.3-pre",
            "v1.2.3-pre+meta",
            "v1.2.3-pre.1",
            "v1.2.3-zzz",
            "v1.2.3",
            "v1.2.3+meta",
            "v1.2.3+meta-pre",
            "v1.2.3+meta-pre.sha.256a",
        ];
        assert_eq!(versions, golden);
    }

    #[test]
    fn long_numbers_do_not_overflow() {
        let big = "v1.2.100000000000000000000000000000000";
        assert!(is_valid(big));
        assert_eq!(
            compare(big, "v1.2.99999999999999999999999999999999"),
            Ordering::Greater
        );
        assert_eq!(
            compare("v1.2.99999999999999999", "v1.2.100000000000000000"),
            Ordering::Less
        );
        assert_eq!(
            compare("v1.0.0-12345678901234567890123", "v1.0.0-9"),
            Ordering::Greater
        );
        assert_eq!(
            compare("v99999999999999999999", "v99999999999999999999.0.0"),
            Ordering::Equal
        );
    }

    #[test]
    fn edge_cases() {
        for bad in [
            "",
            "v",
            "1.2.3",
            "v01",
            "v1.02",
            "v1.2.03",
            "v1.2.3-",
            "v1.2.3-01",
            "v1.2.3-a..b",
            "v1.2.3+",
            "v1.2.3+a..b",
            "v1.2.3-a_b",
            "v1.2.3.4",
            "V1.2.3",
            "v1.2.3 ",
            "v1.2.3-é",
        ] {
            assert!(!is_valid(bad), "{bad:?}");
        }
        for good in [
            "v0",
            "v0.0.0",
            "v1.2.3-0",
            "v1.2.3-0a",
            "v1.2.3-a.0",
            "v1.2.3+01",
            "v1.2.3--",
        ] {
            assert!(is_valid(good), "{good:?}");
        }
        assert_eq!(compare("v1.0.0-1", "v1.0.0-a"), Ordering::Less);
        assert_eq!(compare("v1.0.0-a", "v1.0.0-a.1"), Ordering::Less);
        assert_eq!(compare("v2.0.0+incompatible", "v2.0.0"), Ordering::Equal);
        assert_eq!(sort_cmp("v2.0.0", "v2.0.0+incompatible"), Ordering::Less);
    }
}
