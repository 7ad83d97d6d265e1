//! `upstream.proxy` and `sumdb.url` as written: GOPROXY-style lists
//! (`https://a.example,https://b.example|https://c.example`), parsed here into
//! plain values; `http::list` gives them their failover behaviour.

use reqwest::Url;

use crate::redact::redact_url;

/// What lets the entry after this one be tried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// `,`: only a 404 or 410 from this entry.
    NotFound,
    /// `|`: any error from this entry.
    AnyError,
}

/// One configured entry of a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListEntry {
    pub url: Url,
    /// The separator after this entry (the last entry's does not matter).
    pub fallback: Fallback,
}

/// The most entries a list may have (the width of `http::list::Avoid`,
/// the set of entries a version must not be fetched from again).
pub const MAX_ENTRIES: usize = 64;

/// Parses a GOPROXY-style list. `Ok(None)` is `off` (no upstream at all).
/// `check` validates each URL (scheme, host) and names the key in its errors.
pub fn parse_list(
    key: &str,
    s: &str,
    check: impl Fn(&str, &str) -> Result<Url, String>,
) -> Result<Option<Vec<ListEntry>>, String> {
    let s = s.trim();
    if s == "off" {
        return Ok(None);
    }
    let mut entries: Vec<ListEntry> = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (token, sep, tail) = match rest.find([',', '|']) {
            Some(i) => (&rest[..i], Some(rest.as_bytes()[i]), &rest[i + 1..]),
            None => (rest, None, ""),
        };
        rest = tail;
        let token = token.trim();
        let fallback = if sep == Some(b'|') {
            Fallback::AnyError
        } else {
            Fallback::NotFound
        };
        if token.is_empty() {
            // The go command skips empty entries; so do we.
            continue;
        }
        match token {
            "off" => {
                return Err(format!(
                    "{key}: \"off\" must stand alone (it turns the upstream off); in a list it would stop every lookup that reaches it"
                ));
            }
            "direct" => {
                return Err(format!(
                    "{key}: \"direct\" (fetching from version control) is not supported: gomirror mirrors what proxies serve, so every byte can be checked against the checksum database; list proxy URLs only"
                ));
            }
            _ => {}
        }
        let url = check(key, token)?;
        if entries.iter().any(|e| e.url == url) {
            return Err(format!("{key}: {} is listed twice", redact_url(&url)));
        }
        if entries.len() == MAX_ENTRIES {
            return Err(format!(
                "{key}: more than {MAX_ENTRIES} entries; a list may have at most {MAX_ENTRIES}"
            ));
        }
        entries.push(ListEntry { url, fallback });
    }
    if entries.is_empty() {
        return Err(format!("{key}: no upstream given (use \"off\" for none)"));
    }
    // Nothing follows the last entry.
    if let Some(last) = entries.last_mut() {
        last.fallback = Fallback::NotFound;
    }
    Ok(Some(entries))
}

/// Renders a list back in its configured shape, credentials masked.
pub fn describe_list(entries: &[ListEntry]) -> String {
    let mut s = String::new();
    for (i, e) in entries.iter().enumerate() {
        s.push_str(redact_url(&e.url).trim_end_matches('/'));
        if i + 1 < entries.len() {
            s.push(match e.fallback {
                Fallback::NotFound => ',',
                Fallback::AnyError => '|',
            });
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(key: &str, s: &str) -> Result<Url, String> {
        Url::parse(s).map_err(|e| format!("{key}: {e}"))
    }

    fn parse(s: &str) -> Result<Option<Vec<ListEntry>>, String> {
        parse_list("upstream.proxy", s, check)
    }

    #[test]
    fn separators_set_the_fallback_of_the_entry_before_them() {
        let l = parse("https://a.example,https://b.example|https://c.example")
            .unwrap()
            .unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l[0].fallback, Fallback::NotFound);
        assert_eq!(l[1].fallback, Fallback::AnyError);
        assert_eq!(l[2].fallback, Fallback::NotFound);
        assert_eq!(
            describe_list(&l),
            "https://a.example,https://b.example|https://c.example"
        );
    }

    #[test]
    fn off_direct_empty_and_duplicates() {
        assert_eq!(parse("off").unwrap(), None);
        assert!(
            parse("https://a.example,off")
                .unwrap_err()
                .contains("alone")
        );
        assert!(
            parse("https://a.example,direct")
                .unwrap_err()
                .contains("not supported")
        );
        assert!(parse(" , ").unwrap_err().contains("no upstream"));
        assert!(
            parse("https://a.example,https://a.example")
                .unwrap_err()
                .contains("twice")
        );
        // Empty entries are skipped, as by the go command.
        assert_eq!(
            parse("https://a.example,,https://b.example")
                .unwrap()
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn credentials_are_masked_when_described() {
        let l = parse("https://user:s3cret@a.example|https://b.example")
            .unwrap()
            .unwrap();
        let d = describe_list(&l);
        assert!(!d.contains("s3cret"), "{d}");
    }

    #[test]
    fn a_list_longer_than_the_avoid_set_is_refused() {
        let list = |n: usize| {
            (0..n)
                .map(|i| format!("https://p{i}.example"))
                .collect::<Vec<_>>()
                .join("|")
        };
        assert_eq!(parse(&list(MAX_ENTRIES)).unwrap().unwrap().len(), 64);
        let e = parse(&list(MAX_ENTRIES + 1)).unwrap_err();
        assert!(e.contains("upstream.proxy: more than 64 entries"), "{e}");
    }
}
