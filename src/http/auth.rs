//! Token-authenticated upstreams: `upstream.auth_command`, the go command's
//! GOAUTH command form (`go help goauth`). Corporate proxies that want a
//! bearer token (short-lived, from a vault or an identity provider) can be
//! upstreams without a token written into `sync.toml`.
//!
//! The command is run with no argument and no input before the first
//! request, and prints credential sets: one or more URL lines, a blank
//! line, header lines (`Name: value`), a blank line. A request carries the
//! headers of the longest prefix its URL falls under — same scheme, host
//! and port, a path at or below the prefix's at a `/` boundary — and no
//! other request carries them. When an upstream under a prefix answers 401
//! or 403, the command is run again as the go command runs it, with the URL
//! as its argument and the response's status line and headers on its input,
//! and the request is sent once more with what it prints (so a token that
//! expired during a long sync is renewed).
//!
//! Unlike the go command, `http://` prefixes are accepted too (a plain-HTTP
//! proxy inside the network); a prefix matches its own scheme only, so a
//! header meant for `https://` never travels in the clear.
//!
//! Nothing of the command's output is ever shown: a malformed line is named
//! by its number, header values are marked sensitive, and a redirect that
//! would carry the headers out of their prefix is refused (reqwest drops
//! `Authorization` on a redirect to another host by itself; any other header
//! it would keep).

use std::process::Stdio;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the command may print.
const OUTPUT_LIMIT: u64 = 64 << 10;
/// How long it may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// One URL prefix: scheme, host and port, and a path without its last `/`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Prefix {
    scheme: String,
    host: String,
    port: Option<u16>,
    path: String,
}

impl Prefix {
    fn parse(line: &str) -> Option<Prefix> {
        let u = Url::parse(line).ok()?;
        if !matches!(u.scheme(), "https" | "http")
            || !u.username().is_empty()
            || u.password().is_some()
            || u.query().is_some()
        {
            return None;
        }
        Some(Prefix {
            scheme: u.scheme().to_string(),
            host: u.host_str()?.to_ascii_lowercase(),
            port: u.port_or_known_default(),
            path: u.path().trim_end_matches('/').to_string(),
        })
    }

    /// How long a match `url` is (the prefix's path length), if it is one.
    fn matches(&self, url: &Url) -> Option<usize> {
        if url.scheme() != self.scheme
            || url.host_str().map(str::to_ascii_lowercase).as_deref() != Some(self.host.as_str())
            || url.port_or_known_default() != self.port
        {
            return None;
        }
        let path = url.path();
        let under = path == self.path
            || (path.starts_with(&self.path) && path[self.path.len()..].starts_with('/'));
        under.then_some(self.path.len())
    }
}

/// Prefixes and the headers for each, as the command printed them.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    sets: Vec<(Prefix, HeaderMap)>,
}

impl Credentials {
    /// The headers of the longest prefix `url` falls under.
    fn for_url(&self, url: &Url) -> Option<(&Prefix, &HeaderMap)> {
        self.sets
            .iter()
            .filter_map(|(p, h)| p.matches(url).map(|n| (n, p, h)))
            .max_by_key(|(n, _, _)| *n)
            .map(|(_, p, h)| (p, h))
    }
}

/// Parses a GOAUTH command's output (`go help goauth`). The error names the
/// line by its number, never its text (it may hold a token).
pub fn parse(output: &str) -> Result<Credentials, String> {
    let mut creds = Credentials::default();
    let lines: Vec<&str> = output.split('\n').collect();
    // A trailing newline leaves one empty string after the last line.
    let lines = match lines.split_last() {
        Some((&"", rest)) => rest,
        _ => &lines[..],
    };
    let mut i = 0;
    while i < lines.len() {
        let mut prefixes = Vec::new();
        loop {
            let Some(line) = lines.get(i) else {
                return Err(format!(
                    "line {}: the output ends before the blank line after its URLs",
                    i + 1
                ));
            };
            i += 1;
            let line = line.trim_end_matches('\r');
            if line.is_empty() {
                break;
            }
            prefixes.push(Prefix::parse(line).ok_or_else(|| {
                format!("line {i}: not an http(s) URL prefix without credentials or query")
            })?);
        }
        if prefixes.is_empty() {
            return Err(format!("line {i}: a credential set names no URL"));
        }
        let mut headers = HeaderMap::new();
        loop {
            let Some(line) = lines.get(i) else {
                return Err(format!(
                    "line {}: the output ends before the blank line after its headers",
                    i + 1
                ));
            };
            i += 1;
            let line = line.trim_end_matches('\r');
            if line.is_empty() {
                break;
            }
            let (name, value) = line
                .split_once(": ")
                .ok_or_else(|| format!("line {i}: not a header line (Name: value)"))?;
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("line {i}: not a header name"))?;
            let mut value = HeaderValue::from_str(value.trim())
                .map_err(|_| format!("line {i}: not a header value"))?;
            value.set_sensitive(true);
            headers.append(name, value);
        }
        for p in prefixes {
            creds.sets.retain(|(q, _)| *q != p);
            creds.sets.push((p, headers.clone()));
        }
    }
    Ok(creds)
}

/// `upstream.auth_command`, run as the go command runs a GOAUTH command.
pub struct AuthCommand {
    command: Vec<String>,
    /// The credentials in force (`None` before the first run).
    current: RwLock<Option<Credentials>>,
    /// Serializes runs of the command.
    running: tokio::sync::Mutex<()>,
    /// Bumped at every run, so that requests refused together rerun the
    /// command once.
    generation: AtomicU64,
}

impl AuthCommand {
    pub fn new(command: Vec<String>) -> AuthCommand {
        AuthCommand {
            command,
            current: RwLock::new(None),
            running: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
        }
    }

    /// The headers for `url` (running the command first if it never ran),
    /// and the generation they are from.
    pub async fn headers_for(&self, url: &Url) -> Result<(Option<HeaderMap>, u64), String> {
        if self.read().is_none() {
            let _running = self.running.lock().await;
            if self.read().is_none() {
                let creds = self.run(None).await?;
                self.install(creds);
            }
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let headers = self
            .read()
            .as_ref()
            .and_then(|c| c.for_url(url).map(|(_, h)| h.clone()));
        Ok((headers, generation))
    }

    /// After a 401 or 403 from `url` (with `status_line` and `headers`):
    /// the command is run again with them, unless another request already
    /// did since `generation`. Whether `url` now has headers to try again.
    pub async fn renew(&self, url: &Url, generation: u64, response: &str) -> Result<bool, String> {
        let _running = self.running.lock().await;
        if self.generation.load(Ordering::SeqCst) == generation {
            let creds = self.run(Some((url, response))).await?;
            // What the rerun prints adds to what is known (go's cache does the same).
            let mut merged = self.read().clone().unwrap_or_default();
            for (p, h) in creds.sets {
                merged.sets.retain(|(q, _)| *q != p);
                merged.sets.push((p, h));
            }
            self.install(merged);
        }
        Ok(self
            .read()
            .as_ref()
            .is_some_and(|c| c.for_url(url).is_some()))
    }

    /// Whether a redirect from `first` (the request's URL) to `next` would
    /// carry headers out of the prefix they were given for: refused unless
    /// reqwest itself drops every one of them (another host, and only
    /// headers it treats as credentials).
    pub fn redirect_refusal(&self, first: &Url, next: &Url) -> Option<&'static str> {
        let guard = self.current.read().unwrap_or_else(|p| p.into_inner());
        let (prefix, headers) = guard.as_ref()?.for_url(first)?;
        if prefix.matches(next).is_some() {
            return None;
        }
        let same_origin = first.scheme() == next.scheme()
            && first.host_str() == next.host_str()
            && first.port_or_known_default() == next.port_or_known_default();
        let dropped_by_reqwest = headers.keys().all(|k| {
            k == reqwest::header::AUTHORIZATION
                || k == reqwest::header::PROXY_AUTHORIZATION
                || k == reqwest::header::COOKIE
        });
        if !same_origin && dropped_by_reqwest {
            None
        } else {
            Some(
                "refusing a redirect out of an upstream.auth_command prefix: its headers would go with it",
            )
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Option<Credentials>> {
        self.current.read().unwrap_or_else(|p| p.into_inner())
    }

    fn install(&self, creds: Credentials) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(creds);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Runs the command (with the refused URL and response, for a rerun)
    /// and parses what it prints. Its output is never part of an error.
    async fn run(&self, refused: Option<(&Url, &str)>) -> Result<Credentials, String> {
        let shown = crate::shown::text(&self.command[0]);
        let mut cmd = tokio::process::Command::new(&self.command[0]);
        cmd.args(&self.command[1..])
            .stdin(if refused.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if let Some((url, _)) = refused {
            cmd.arg(url.as_str());
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("upstream.auth_command `{shown}` cannot be run: {e}"))?;
        if let (Some((_, response)), Some(mut stdin)) = (refused, child.stdin.take()) {
            // A command that does not read its input is not waited for.
            let _ = stdin.write_all(response.as_bytes()).await;
        }
        let mut stdout = child.stdout.take().expect("piped");
        let work = async {
            let mut out = Vec::new();
            (&mut stdout)
                .take(OUTPUT_LIMIT + 1)
                .read_to_end(&mut out)
                .await
                .map_err(|e| format!("upstream.auth_command `{shown}`: {e}"))?;
            if out.len() as u64 > OUTPUT_LIMIT {
                return Err(format!(
                    "upstream.auth_command `{shown}` printed more than {OUTPUT_LIMIT} bytes"
                ));
            }
            let status = child
                .wait()
                .await
                .map_err(|e| format!("upstream.auth_command `{shown}`: {e}"))?;
            if !status.success() {
                return Err(format!("upstream.auth_command `{shown}` failed ({status})"));
            }
            let text = String::from_utf8(out).map_err(|_| {
                format!("upstream.auth_command `{shown}` printed something that is not UTF-8")
            })?;
            parse(&text).map_err(|e| {
                format!("upstream.auth_command `{shown}` printed no GOAUTH credentials: {e}")
            })
        };
        match tokio::time::timeout(COMMAND_TIMEOUT, work).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "upstream.auth_command `{shown}` did not finish within {}s",
                COMMAND_TIMEOUT.as_secs()
            )),
        }
    }
}

/// What the command reads on a rerun: the status line and the headers, as
/// the go command writes them.
pub fn describe_response(resp: &reqwest::Response) -> String {
    let mut s = format!("{:?} {}\n", resp.version(), resp.status());
    for (k, v) in resp.headers() {
        s.push_str(k.as_str());
        s.push_str(": ");
        s.push_str(&String::from_utf8_lossy(v.as_bytes()));
        s.push('\n');
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn goauth_output_parses_into_prefixes_and_headers() {
        let c = parse(
            "https://example.com\nhttps://example.net/api/\n\nAuthorization: Basic dG9r\n\nhttps://another-example.org/\n\nExample: Data\n\n",
        )
        .unwrap();
        let h = |u: &str| {
            c.for_url(&url(u))
                .map(|(_, h)| h.iter().map(|(k, _)| k.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(
            h("https://example.com/x/y"),
            Some(vec!["authorization".into()])
        );
        assert_eq!(
            h("https://example.net/api"),
            Some(vec!["authorization".into()])
        );
        assert_eq!(
            h("https://example.net/api/m/@v/list"),
            Some(vec!["authorization".into()])
        );
        assert_eq!(
            h("https://another-example.org/"),
            Some(vec!["example".into()])
        );
        // Not at a path boundary, another scheme, another port: nothing.
        assert_eq!(h("https://example.net/apix/m"), None);
        assert_eq!(h("http://example.com/x"), None);
        assert_eq!(h("https://example.com:8443/x"), None);
    }

    #[test]
    fn the_longest_prefix_wins() {
        let c = parse(
            "http://127.0.0.1:9/\n\nX-Which: short\n\nhttp://127.0.0.1:9/proxy\n\nX-Which: long\n\n",
        )
        .unwrap();
        let which = |u: &str| {
            c.for_url(&url(u))
                .and_then(|(_, h)| h.get("x-which").map(|v| v.to_str().unwrap().to_string()))
        };
        assert_eq!(
            which("http://127.0.0.1:9/proxy/m/@v/list").as_deref(),
            Some("long")
        );
        assert_eq!(
            which("http://127.0.0.1:9/sumdb/latest").as_deref(),
            Some("short")
        );
    }

    #[test]
    fn malformed_output_is_refused_without_echoing_it() {
        for bad in [
            "https://example.com\nAuthorization: Bearer SECRET\n\n",
            "https://example.com\n\nAuthorization Bearer SECRET\n\n",
            "https://example.com\n\nAuthorization: Bearer SECRET\n",
            "ftp://example.com\n\nA: b\n\n",
            "https://user:SECRET@example.com\n\nA: b\n\n",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(!e.contains("SECRET") && e.starts_with("line "), "{e}");
        }
        assert!(parse("").unwrap().sets.is_empty());
    }

    #[test]
    fn a_redirect_out_of_the_prefix_keeps_only_what_reqwest_drops() {
        let a = AuthCommand::new(vec!["x".into()]);
        a.install(
            parse("https://p.example/proxy\n\nAuthorization: Bearer t\n\nhttps://q.example/\n\nX-Api-Key: k\n\n")
                .unwrap(),
        );
        let from = url("https://p.example/proxy/m/@v/v1.0.0.zip");
        assert_eq!(
            a.redirect_refusal(&from, &url("https://p.example/proxy/other")),
            None
        );
        // Another host: reqwest drops Authorization itself.
        assert_eq!(
            a.redirect_refusal(&from, &url("https://cdn.example/blob")),
            None
        );
        // The same host outside the prefix would keep it.
        assert!(
            a.redirect_refusal(&from, &url("https://p.example/elsewhere"))
                .is_some()
        );
        // A custom header would follow to any host.
        let from = url("https://q.example/m/@v/v1.0.0.zip");
        assert!(
            a.redirect_refusal(&from, &url("https://cdn.example/blob"))
                .is_some()
        );
        // A request under no prefix: nothing to protect.
        assert_eq!(
            a.redirect_refusal(&url("https://r.example/x"), &url("https://s.example/")),
            None
        );
    }
}
