//! GOPRIVATE-style patterns (`module.MatchPrefixPatterns`): comma-separated
//! `path.Match` globs, each matching a leading run of path elements.
//!
//! A glob with N slashes is matched against the target's first N+1 path
//! elements, so `rsc.io` matches `rsc.io/quote/v3` and `*/quote` matches
//! `rsc.io/quote` but `*/v3` does not match `rsc.io/quote/v3`.

/// A pattern was not a valid `path.Match` glob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pattern {pattern:?}: {reason}")]
pub struct PatternError {
    pub pattern: String,
    pub reason: String,
}

/// Go's `path.ErrBadPattern`.
struct BadPattern;

/// The non-empty globs of a comma-separated list, one trailing slash removed
/// from each, as `MatchPrefixPatterns` reads them.
fn globs_of(globs: &str) -> impl Iterator<Item = &str> {
    globs
        .split(',')
        .map(|glob| glob.strip_suffix('/').unwrap_or(glob))
        .filter(|glob| !glob.is_empty())
}

/// `module.MatchPrefixPatterns(globs, target)`.
///
/// Malformed globs never match (Go ignores them too); [`check_patterns`]
/// reports them.
pub fn match_prefix_patterns(globs: &str, target: &str) -> bool {
    globs_of(globs).any(|glob| {
        let mut slashes = glob.bytes().filter(|&b| b == b'/').count();
        let mut prefix = target;
        for (i, b) in target.bytes().enumerate() {
            if b == b'/' {
                if slashes == 0 {
                    prefix = &target[..i];
                    break;
                }
                slashes -= 1;
            }
        }
        // A target with fewer elements than the glob cannot match it.
        slashes == 0 && glob_match(glob.as_bytes(), prefix.as_bytes()).unwrap_or(false)
    })
}

/// Checks every comma-separated glob in `globs` for `path.Match` syntax errors
/// (Go's `path.ErrBadPattern`), so bad configuration is refused at start-up.
pub fn check_patterns(globs: &str) -> Result<(), PatternError> {
    for glob in globs_of(globs) {
        // Matching against "" walks the whole pattern, so every syntax error shows.
        path_match(glob, "")?;
    }
    Ok(())
}

/// Go's `path.Match`: does `name` match the shell pattern `pattern`?
///
/// `*` matches any run of non-`/` characters, `?` one non-`/` character,
/// `[...]` a character class (ranges `a-z`, negation `[^...]`, never empty),
/// and `\` escapes the next character. The whole of `name` must match. A
/// malformed pattern is an error, though (as in Go) a mismatch found before
/// reaching the malformed part may be reported first.
pub fn path_match(pattern: &str, name: &str) -> Result<bool, PatternError> {
    glob_match(pattern.as_bytes(), name.as_bytes()).map_err(|BadPattern| PatternError {
        pattern: pattern.to_owned(),
        reason: "syntax error in pattern".to_owned(),
    })
}

/// Go works on bytes here: after a `*` it retries the next chunk at every byte
/// offset, which may land inside a multi-byte character, where a character is
/// then read as U+FFFD. Working on bytes keeps those corner cases identical.
fn glob_match(mut pattern: &[u8], mut name: &[u8]) -> Result<bool, BadPattern> {
    'chunks: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // A trailing star matches the rest of the name unless it has a '/'.
            return Ok(!name.contains(&b'/'));
        }
        // The last chunk must consume the whole name.
        if let Some(after) = match_chunk(chunk, name)?
            && (after.is_empty() || !pattern.is_empty())
        {
            name = after;
            continue;
        }
        if star {
            // Let the star swallow 1, 2, ... bytes, never a '/'.
            for i in 0..name.len() {
                if name[i] == b'/' {
                    break;
                }
                if let Some(after) = match_chunk(chunk, &name[i + 1..])? {
                    if pattern.is_empty() && !after.is_empty() {
                        continue;
                    }
                    name = after;
                    continue 'chunks;
                }
            }
        }
        // No match; still report a syntax error in the rest of the pattern.
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            match_chunk(chunk, b"")?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Splits off leading stars and the star-free chunk after them (a `*` inside
/// `[...]` or after `\` does not end the chunk).
fn scan_chunk(pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let stars = pattern.iter().take_while(|&&b| b == b'*').count();
    let pattern = &pattern[stars..];
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => return (stars > 0, &pattern[..i], &pattern[i..]),
            _ => {}
        }
        i += 1;
    }
    (stars > 0, pattern, &[])
}

/// Matches a star-free chunk against the start of `s`, returning what is left
/// of `s`. After a mismatch it keeps walking the chunk to find syntax errors.
fn match_chunk<'a>(mut chunk: &[u8], mut s: &'a [u8]) -> Result<Option<&'a [u8]>, BadPattern> {
    let mut failed = false;
    while let Some(&c) = chunk.first() {
        if s.is_empty() {
            failed = true;
        }
        match c {
            b'[' => {
                let mut r = 0;
                if !failed {
                    let (rune, n) = decode_rune(s);
                    r = rune;
                    s = &s[n..];
                }
                chunk = &chunk[1..];
                let negated = chunk.first() == Some(&b'^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut ranges = 0;
                loop {
                    if chunk.first() == Some(&b']') && ranges > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = class_char(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if chunk.first() == Some(&b'-') {
                        (hi, chunk) = class_char(&chunk[1..])?;
                    }
                    matched |= lo <= r && r <= hi;
                    ranges += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            b'?' => {
                if !failed {
                    if s[0] == b'/' {
                        failed = true;
                    }
                    s = &s[decode_rune(s).1..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                let literal = if c == b'\\' {
                    chunk = &chunk[1..];
                    *chunk.first().ok_or(BadPattern)?
                } else {
                    c
                };
                if !failed {
                    if literal != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    Ok(if failed { None } else { Some(s) })
}

/// One possibly escaped character of a class, which must be followed by more
/// of the pattern (at least the closing `]`).
fn class_char(chunk: &[u8]) -> Result<(u32, &[u8]), BadPattern> {
    let chunk = match chunk.first() {
        None | Some(b'-' | b']') => return Err(BadPattern),
        Some(b'\\') => &chunk[1..],
        Some(_) => chunk,
    };
    if chunk.is_empty() {
        return Err(BadPattern);
    }
    let (r, n) = decode_rune(chunk);
    if r == u32::from(char::REPLACEMENT_CHARACTER) && n == 1 {
        return Err(BadPattern);
    }
    let rest = &chunk[n..];
    if rest.is_empty() {
        return Err(BadPattern);
    }
    Ok((r, rest))
}

/// Go's `utf8.DecodeRune`: the first character and its length, or
/// (U+FFFD, 1) for a byte that does not start a valid UTF-8 sequence.
/// `s` must not be empty.
fn decode_rune(s: &[u8]) -> (u32, usize) {
    let len = match s[0] {
        0x00..=0x7F => return (u32::from(s[0]), 1),
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 0,
    };
    match s.get(..len).map(std::str::from_utf8) {
        Some(Ok(text)) => match text.chars().next() {
            Some(c) => (u32::from(c), len),
            None => (0xFFFD, 1),
        },
        _ => (0xFFFD, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_prefix_patterns_table() {
        for (globs, target, want) in [
            ("", "rsc.io/quote", false),
            ("/", "rsc.io/quote", false),
            ("*/quote", "rsc.io/quote", true),
            ("*/quo", "rsc.io/quote", false),
            ("*/quo??", "rsc.io/quote", true),
            ("*/quo*", "rsc.io/quote", true),
            ("*quo*", "rsc.io/quote", false),
            ("rsc.io", "rsc.io/quote", true),
            ("*.io", "rsc.io/quote", true),
            ("rsc.io/", "rsc.io/quote", true),
            ("rsc", "rsc.io/quote", false),
            ("rsc*", "rsc.io/quote", true),
            ("rsc.io", "rsc.io/quote/v3", true),
            ("*/quote", "rsc.io/quote/v3", true),
            ("*/quote/", "rsc.io/quote/v3", true),
            ("*/quote/*", "rsc.io/quote/v3", true),
            ("*/quote/*/", "rsc.io/quote/v3", true),
            ("*/v3", "rsc.io/quote/v3", false),
            ("*/*/v3", "rsc.io/quote/v3", true),
            ("*/*/*", "rsc.io/quote/v3", true),
            ("*/*/*/", "rsc.io/quote/v3", true),
            ("*/*/*", "rsc.io/quote", false),
            ("*/*/*/", "rsc.io/quote", false),
            ("*/*/*,,", "rsc.io/quote", false),
            ("*/*/*,,*/quote", "rsc.io/quote", true),
            (",,*/quote", "rsc.io/quote", true),
            // A malformed glob is skipped, not fatal.
            ("[,rsc.io", "rsc.io/quote", true),
            ("rsc.[", "rsc.io/quote", false),
        ] {
            assert_eq!(
                match_prefix_patterns(globs, target),
                want,
                "({globs:?}, {target:?})"
            );
        }
    }

    /// sumdb `TestClientGONOSUMDB` with GONOSUMDB=`p,*/q`.
    #[test]
    fn gonosumdb_p_star_q() {
        for skipped in ["p", "p/x", "x/q", "x/q/z"] {
            assert!(match_prefix_patterns("p,*/q", skipped), "{skipped:?}");
        }
        for looked_up in ["abc", "a/p", "pq", "q", "n/o/p/q"] {
            assert!(!match_prefix_patterns("p,*/q", looked_up), "{looked_up:?}");
        }
    }

    /// Go's `path/match_test.go` cases (pattern, name, match, bad pattern).
    #[test]
    fn path_match_table() {
        for (pattern, name, want, bad) in [
            ("abc", "abc", true, false),
            ("*", "abc", true, false),
            ("*c", "abc", true, false),
            ("a*", "a", true, false),
            ("a*", "abc", true, false),
            ("a*", "ab/c", false, false),
            ("a*/b", "abc/b", true, false),
            ("a*/b", "a/c/b", false, false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true, false),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true, false),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false, false),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false, false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true, false),
            ("a*b?c*x", "abxbbxdbxebxczzy", false, false),
            ("ab[c]", "abc", true, false),
            ("ab[b-d]", "abc", true, false),
            ("ab[e-g]", "abc", false, false),
            ("ab[^c]", "abc", false, false),
            ("ab[^b-d]", "abc", false, false),
            ("ab[^e-g]", "abc", true, false),
            ("a\\*b", "a*b", true, false),
            ("a\\*b", "ab", false, false),
            ("a?b", "a☺b", true, false),
            ("a[^a]b", "a☺b", true, false),
            ("a???b", "a☺b", false, false),
            ("a[^a][^a][^a]b", "a☺b", false, false),
            ("[a-ζ]*", "α", true, false),
            ("*[a-ζ]", "A", false, false),
            ("a?b", "a/b", false, false),
            ("a*b", "a/b", false, false),
            ("[\\]a]", "]", true, false),
            ("[\\-]", "-", true, false),
            ("[x\\-]", "x", true, false),
            ("[x\\-]", "-", true, false),
            ("[x\\-]", "z", false, false),
            ("[\\-x]", "x", true, false),
            ("[\\-x]", "-", true, false),
            ("[\\-x]", "a", false, false),
            ("[]a]", "]", false, true),
            ("[-]", "-", false, true),
            ("[x-]", "x", false, true),
            ("[x-]", "-", false, true),
            ("[x-]", "z", false, true),
            ("[-x]", "x", false, true),
            ("[-x]", "-", false, true),
            ("[-x]", "a", false, true),
            ("\\", "a", false, true),
            ("[a-b-c]", "a", false, true),
            ("[", "a", false, true),
            ("[^", "a", false, true),
            ("[^bc", "a", false, true),
            ("a[", "a", false, true),
            ("a[", "ab", false, true),
            ("a[", "x", false, true),
            ("a/b[", "x", false, true),
            ("*x", "xxx", true, false),
        ] {
            let got = path_match(pattern, name);
            if bad {
                assert!(
                    got.is_err(),
                    "path_match({pattern:?}, {name:?}) = {got:?}, want error"
                );
            } else {
                assert_eq!(got, Ok(want), "path_match({pattern:?}, {name:?})");
            }
        }
    }

    #[test]
    fn check_patterns_reports_bad_globs() {
        assert_eq!(check_patterns(""), Ok(()));
        assert_eq!(
            check_patterns("*.corp.example.com,rsc.io/private,,*/x/"),
            Ok(())
        );
        assert_eq!(check_patterns("a[b-c]d,x\\*y"), Ok(()));
        for bad in [
            "[",
            "x,[^",
            "ok,a\\",
            "[]a]",
            "[-]",
            "a[",
            "a*[",
            "*/[a-b-c]",
        ] {
            let err = check_patterns(bad).unwrap_err();
            assert_eq!(err.reason, "syntax error in pattern", "{bad:?}");
        }
        let err = check_patterns("good,bad[").unwrap_err();
        assert_eq!(err.pattern, "bad[");
        assert_eq!(
            err.to_string(),
            r#"invalid pattern "bad[": syntax error in pattern"#
        );
    }
}
