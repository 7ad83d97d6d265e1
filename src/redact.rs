//! Credentials never reach a log line, an error message or the state database.
//!
//! Upstream URLs may carry secrets in two places: the userinfo
//! (`https://user:token@host/`) and the query (`?token=…`, `?access_key=…`).
//! Masking works by parsing, never by searching for the configured URL as a
//! string: reqwest rewrites a URL before it shows it (it moves the userinfo
//! into an `Authorization` header), so a search-and-replace on the original
//! text finds nothing and the token leaks.
//!
//! What is masked, and why:
//! - the user name and the password, both (a bare `https://TOKEN@host/` is a
//!   common way to pass a token);
//! - the value of every query parameter except gomirror's own index paging
//!   parameters `since` and `limit`, which are not secret and say where a walk
//!   of the index stopped; a parameter without a value has its name masked,
//!   since a bare `?abc123` is a token too;
//! - the fragment, should one be configured.
//!
//! [`redact`] and [`redact_url`] mask one URL; [`scrub_urls`] masks every URL
//! found inside free text (an error chain from a library, a server's error
//! body); [`Secrets`] remembers the secret values of a known URL so that text
//! echoing them without the URL around them is masked as well.

use reqwest::Url;

/// What a masked part is replaced with.
pub const MASK: &str = "***";

/// Query parameters shown as they are: gomirror's own, never secret.
const PLAIN_QUERY_KEYS: &[&str] = &["since", "limit"];

/// A URL fit for logs and error messages (see the module docs for what is
/// masked). Text that does not parse as a URL is masked whole.
pub fn redact(url: &str) -> String {
    match Url::parse(url) {
        // A URL with no authority (`tok:secret@host/p`, a scheme typed
        // wrong) keeps what looks like credentials in its path: masked as
        // text, like one that does not parse at all.
        Ok(u) if !u.cannot_be_a_base() => redact_url(&u),
        _ => redact_unparsed(url),
    }
}

/// What was typed where a URL was expected but none parses: shown so the
/// user sees the mistake, with whatever could be a secret masked all the
/// same — a user-info part (before the last `@` of the authority) and the
/// query.
fn redact_unparsed(text: &str) -> String {
    let (scheme, rest) = match text.find("://") {
        Some(i) => text.split_at(i + 3),
        None => ("", text),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(i) => format!("{MASK}@{}", &authority[i + 1..]),
        None => authority.to_string(),
    };
    let path = match path.find('?') {
        Some(i) => format!("{}?{MASK}", &path[..i]),
        None => path.to_string(),
    };
    format!("{scheme}{authority}{path}")
}

/// [`redact`] for a URL already parsed.
pub fn redact_url(url: &Url) -> String {
    let mut u = url.clone();
    if !u.username().is_empty() {
        // Both setters only fail on URLs that cannot have credentials, and
        // such a URL has none to hide.
        u.set_username(MASK).ok();
        if u.password().is_some() {
            u.set_password(Some(MASK)).ok();
        }
    } else if u.password().is_some() {
        u.set_password(Some(MASK)).ok();
    }
    if u.query().is_some() {
        let masked: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                if PLAIN_QUERY_KEYS.contains(&k.as_ref()) {
                    (k.into_owned(), v.into_owned())
                } else if v.is_empty() {
                    (MASK.to_string(), String::new())
                } else {
                    (k.into_owned(), MASK.to_string())
                }
            })
            .collect();
        // `query_pairs_mut` would percent-encode the mask; build the query by
        // hand so it reads `token=***`.
        let query = masked
            .iter()
            .map(|(k, v)| {
                let k = url_form_encode(k);
                if v.is_empty() {
                    k
                } else if v == MASK {
                    format!("{k}={MASK}")
                } else {
                    format!("{k}={}", url_form_encode(v))
                }
            })
            .collect::<Vec<_>>()
            .join("&");
        u.set_query(Some(&query));
    }
    if u.fragment().is_some() {
        u.set_fragment(Some(MASK));
    }
    u.to_string()
}

/// `application/x-www-form-urlencoded` for one key or value, as `Url` itself
/// writes query pairs.
fn url_form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Characters that end a URL found in text: quotes and the brackets a URL is
/// written inside. Square brackets are not among them (`http://[::1]:80/`).
const URL_ENDS: &[char] = &['"', '\'', '`', '<', '>', '(', ')', '{', '}', '|', '\\', '^'];

/// Masks the credentials of every `http://` or `https://` URL inside `text`.
///
/// A URL is taken to run to the next whitespace, quote or bracket. Only URLs
/// that could carry a secret (userinfo, query or fragment) are rewritten, so
/// the rest of the text stays exactly as it was.
pub fn scrub_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = find_scheme(rest) {
        out.push_str(&rest[..start]);
        let candidate = &rest[start..];
        let end = candidate
            .find(|c: char| c.is_whitespace() || URL_ENDS.contains(&c))
            .unwrap_or(candidate.len());
        let url = &candidate[..end];
        if url.contains(['@', '?', '#']) {
            out.push_str(&redact(url));
        } else {
            out.push_str(url);
        }
        rest = &candidate[end..];
    }
    out.push_str(rest);
    out
}

/// Byte offset of the next `http://` or `https://` (any case) in `text`.
fn find_scheme(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    let http = lower.find("http://");
    let https = lower.find("https://");
    match (http, https) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The secret values of one URL (user name, password, query values), to mask
/// wherever they appear in text that came from elsewhere — a server that
/// echoes `token=hunter2` in its error body, without the URL around it.
#[derive(Clone, Debug, Default)]
pub struct Secrets(Vec<String>);

impl Secrets {
    /// Values shorter than this are not searched for: masking every `a` in a
    /// message would make it unreadable, and such a value protects nothing.
    const MIN_LEN: usize = 4;

    pub fn of(url: &Url) -> Secrets {
        let mut raw: Vec<String> = vec![
            url.username().to_string(),
            url.password().unwrap_or("").to_string(),
        ];
        for (k, v) in url.query_pairs() {
            if !PLAIN_QUERY_KEYS.contains(&k.as_ref()) {
                raw.push(if v.is_empty() { k } else { v }.into_owned());
            }
        }
        let mut found: Vec<String> = Vec::new();
        for s in raw {
            // The user name and password are kept percent-encoded, the query
            // values decoded: add the other form too, either can show up.
            let other = percent_decode(&s).or_else(|| {
                let encoded = url_form_encode(&s);
                (encoded != s).then_some(encoded)
            });
            for candidate in std::iter::once(s).chain(other) {
                if candidate.len() >= Self::MIN_LEN && !found.contains(&candidate) {
                    found.push(candidate);
                }
            }
        }
        // Longest first, so a secret containing another is masked whole.
        found.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Secrets(found)
    }

    /// `text` with URLs scrubbed and every known secret value masked.
    pub fn mask(&self, text: &str) -> String {
        let mut out = scrub_urls(text);
        for s in &self.0 {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        out
    }
}

fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return None;
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_shown() {
        let r = redact("https://user:secret@proxy.example.com/path?token=abc&since=2020");
        assert!(
            !r.contains("secret") && !r.contains("abc") && !r.contains("user"),
            "{r}"
        );
        assert!(r.contains("since=2020"), "{r}");
        assert_eq!(
            r,
            "https://***:***@proxy.example.com/path?token=***&since=2020"
        );
    }

    #[test]
    fn every_part_that_can_hold_a_secret_is_masked() {
        for (input, want) in [
            ("https://TOKEN123@h.example/", "https://***@h.example/"),
            ("https://:pw12@h.example/", "https://:***@h.example/"),
            (
                "http://127.0.0.1:8080/?token=hunter2&limit=5",
                "http://127.0.0.1:8080/?token=***&limit=5",
            ),
            ("https://h.example/p?abc123", "https://h.example/p?***"),
            ("https://h.example/p#frag", "https://h.example/p#***"),
            (
                "https://h.example/p?a=1&b=2&since=2024-01-01T00%3A00%3A00Z",
                "https://h.example/p?a=***&b=***&since=2024-01-01T00%3A00%3A00Z",
            ),
            ("https://h.example/plain", "https://h.example/plain"),
            ("not a url", "not a url"),
            ("tok:secret@host.example/p?k=v", "***@host.example/p?***"),
        ] {
            assert_eq!(redact(input), want, "{input}");
        }
    }

    #[test]
    fn scrub_masks_urls_inside_text() {
        let text = "error sending request for url (http://127.0.0.1:9/proxy/x.zip?token=hunter2): \
                    connection refused; see https://docs.example/help and \"https://u:p4ss@h/\"";
        let got = scrub_urls(text);
        assert!(!got.contains("hunter2") && !got.contains("p4ss"), "{got}");
        assert!(
            got.contains("http://127.0.0.1:9/proxy/x.zip?token=***)"),
            "{got}"
        );
        assert!(got.contains("see https://docs.example/help and"), "{got}");
        assert!(got.contains("\"https://***:***@h/\""), "{got}");
        assert_eq!(scrub_urls("no urls here"), "no urls here");
        assert_eq!(scrub_urls("HTTPS://a:bcde@H/ x"), "https://***:***@h/ x");
        assert_eq!(
            scrub_urls("at http://[::1]:8080/x?key=v4lue."),
            "at http://[::1]:8080/x?key=***"
        );
    }

    #[test]
    fn known_secrets_are_masked_without_their_url() {
        let u = Url::parse("http://user:s%40cret@127.0.0.1:1/?token=hunter2&limit=2&x=1").unwrap();
        let s = Secrets::of(&u);
        let got =
            s.mask("server says: bad token hunter2 for user user (pw s@cret or s%40cret), limit 2");
        assert!(!got.contains("hunter2") && !got.contains("cret"), "{got}");
        // Short values and gomirror's own parameters are left alone.
        assert!(got.contains("limit 2"), "{got}");
    }
}
