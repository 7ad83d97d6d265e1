//! The few Go textual formats the fake upstream needs: case escaping, percent
//! decoding, semver ordering, pseudo-version recognition, RFC 3339 times and the
//! `h1:` dirhash.
//!
//! Written independently of `gomirror::gomod` on purpose: the fake is the oracle
//! the mirror is tested against, so it must not share the mirror's bugs.

use std::cmp::Ordering;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};

/// `module.escapeString` without validation: `A` → `!a`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push('!');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `module.unescapeString`: `!a` → `A`; a bare upper-case letter, a trailing `!`
/// or `!` before anything but `a`–`z` is invalid, as is non-ASCII.
pub fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut bang = false;
    for c in s.chars() {
        if !c.is_ascii() {
            return None;
        }
        if bang {
            if !c.is_ascii_lowercase() {
                return None;
            }
            out.push(c.to_ascii_uppercase());
            bang = false;
        } else if c == '!' {
            bang = true;
        } else if c.is_ascii_uppercase() {
            return None;
        } else {
            out.push(c);
        }
    }
    if bang { None } else { Some(out) }
}

/// Decodes `%XX` sequences (`+` is left alone: this is for paths). `None` if a
/// sequence is malformed or the result is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes what Go's `url.PathEscape` would for a module path or
/// version (keeping `/`), so tests can send what the go command sends.
pub fn percent_encode_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/+@$&=:,;".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-encodes a query parameter value.
pub fn percent_encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Parsed `vMAJOR.MINOR.PATCH[-PRE][+BUILD]`, numbers kept as digit strings so
/// arbitrarily large components compare correctly.
struct Semver<'a> {
    major: &'a str,
    minor: &'a str,
    patch: &'a str,
    pre: &'a str,
}

fn parse_semver(v: &str) -> Option<Semver<'_>> {
    let v = v.strip_prefix('v')?;
    let v = match v.split_once('+') {
        Some((core, build)) => {
            if !valid_idents(build, false) {
                return None;
            }
            core
        }
        None => v,
    };
    let (core, pre) = match v.split_once('-') {
        Some((core, pre)) => {
            if !valid_idents(pre, true) {
                return None;
            }
            (core, pre)
        }
        None => (v, ""),
    };
    let mut parts = core.split('.');
    let major = parts.next()?;
    let minor = parts.next()?;
    let patch = parts.next()?;
    if parts.next().is_some() || ![major, minor, patch].iter().all(|p| is_num(p)) {
        return None;
    }
    Some(Semver {
        major,
        minor,
        patch,
        pre,
    })
}

fn is_num(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
}

fn valid_idents(s: &str, pre: bool) -> bool {
    s.split('.').all(|id| {
        !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && (!pre || !id.bytes().all(|b| b.is_ascii_digit()) || is_num(id))
    })
}

fn cmp_num(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Whether `v` is valid semver in Go's sense (full three-part form only).
pub fn is_semver(v: &str) -> bool {
    parse_semver(v).is_some()
}

/// `semver.Compare` (build metadata ignored); invalid versions sort first.
pub fn semver_compare(a: &str, b: &str) -> Ordering {
    match (parse_semver(a), parse_semver(b)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => cmp_num(x.major, y.major)
            .then_with(|| cmp_num(x.minor, y.minor))
            .then_with(|| cmp_num(x.patch, y.patch))
            .then_with(|| cmp_prerelease(x.pre, y.pre)),
    }
}

fn cmp_prerelease(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        _ => {}
    }
    let mut xs = a.split('.');
    let mut ys = b.split('.');
    loop {
        match (xs.next(), ys.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let xn = x.bytes().all(|c| c.is_ascii_digit());
                let yn = y.bytes().all(|c| c.is_ascii_digit());
                let o = match (xn, yn) {
                    (true, true) => cmp_num(x, y),
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (false, false) => x.cmp(y),
                };
                if o != Ordering::Equal {
                    return o;
                }
            }
        }
    }
}

/// `semver.Compare`, ties broken by string order (Go's `SortVersions`).
pub fn sort_versions(vs: &mut [String]) {
    vs.sort_by(|a, b| semver_compare(a, b).then_with(|| a.cmp(b)));
}

/// Whether `v` has a pre-release part.
pub fn is_prerelease(v: &str) -> bool {
    parse_semver(v).is_some_and(|s| !s.pre.is_empty())
}

/// `module.IsPseudoVersion`: `vX.0.0-yyyymmddhhmmss-rev`,
/// `vX.Y.Z-0.yyyymmddhhmmss-rev` or `vX.Y.Z-pre.0.yyyymmddhhmmss-rev`,
/// optionally with `+build`.
pub fn is_pseudo(v: &str) -> bool {
    pseudo_time(v).is_some()
}

/// The 14-digit UTC timestamp of a pseudo-version, if `v` is one.
pub fn pseudo_time(v: &str) -> Option<&str> {
    if v.matches('-').count() < 2 {
        return None;
    }
    let sv = parse_semver(v)?;
    let (rest, rev) = sv.pre.rsplit_once('-')?;
    if rev.is_empty() || !rev.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let (before, stamp) = match rest.rsplit_once('.') {
        Some((before, stamp)) => (Some(before), stamp),
        None => (None, rest),
    };
    if stamp.len() != 14 || !stamp.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match before {
        // vX.0.0-yyyymmddhhmmss-rev
        None => (sv.minor == "0" && sv.patch == "0").then_some(stamp),
        // vX.Y.Z-0.stamp-rev or vX.Y.Z-pre.0.stamp-rev
        Some(before) => {
            let ok = before == "0" || before.ends_with(".0");
            ok.then_some(stamp)
        }
    }
}

// ---- time ------------------------------------------------------------------

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Microseconds since the Unix epoch of a UTC date and time.
pub fn micros_of(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> i64 {
    ((days_from_civil(y, mo, d) * 86400) + h * 3600 + mi * 60 + s) * 1_000_000
}

/// `2024-01-01T00:00:00.000000Z`: UTC, always six fraction digits, so that
/// string order equals time order.
pub fn format_micros(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let frac = us.rem_euclid(1_000_000);
    let (y, mo, d, h, mi, s) = split_secs(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:06}Z")
}

/// `2024-01-01T00:00:00Z` (whole seconds), the `.info` `Time` style.
pub fn format_seconds(us: i64) -> String {
    let (y, mo, d, h, mi, s) = split_secs(us.div_euclid(1_000_000));
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `20240101000000`, the pseudo-version timestamp style.
pub fn format_compact(us: i64) -> String {
    let (y, mo, d, h, mi, s) = split_secs(us.div_euclid(1_000_000));
    format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}")
}

fn split_secs(secs: i64) -> (i64, i64, i64, i64, i64, i64) {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, mo, d) = civil_from_days(days);
    (y, mo, d, rem / 3600, rem / 60 % 60, rem % 60)
}

/// Parses RFC 3339 (`Z` or `±hh:mm`, any number of fraction digits up to
/// nanoseconds) into nanoseconds since the epoch.
pub fn parse_rfc3339_nanos(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: i128 = 0;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[start..i];
        if digits.is_empty() || digits.len() > 9 {
            return None;
        }
        nanos = format!("{digits:0<9}").parse().ok()?;
    }
    let offset_secs: i64 = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        c @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let off = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if *c == b'+' { off } else { -off }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset_secs;
    Some(secs as i128 * 1_000_000_000 + nanos)
}

// ---- hashing -----------------------------------------------------------------

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn base64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    BASE64.decode(s).ok()
}

/// `dirhash.Hash1` over (name, SHA-256 of content) pairs, in any order.
pub fn h1_of_digests(files: &[(String, [u8; 32])]) -> String {
    let mut sorted: Vec<&(String, [u8; 32])> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut h = Sha256::new();
    for (name, digest) in sorted {
        h.update(format!("{}  {}\n", hex(digest), name).as_bytes());
    }
    let sum: [u8; 32] = h.finalize().into();
    format!("h1:{}", base64(&sum))
}

/// `dirhash.Hash1` over (name, content) pairs.
pub fn h1_of_files(files: &[(String, Vec<u8>)]) -> String {
    let digests: Vec<(String, [u8; 32])> = files
        .iter()
        .map(|(name, data)| (name.clone(), sha256(data)))
        .collect();
    h1_of_digests(&digests)
}

/// The `<version>/go.mod h1:` hash: Hash1 of one file named `go.mod`.
pub fn go_mod_h1(go_mod: &[u8]) -> String {
    h1_of_digests(&[("go.mod".to_string(), sha256(go_mod))])
}
