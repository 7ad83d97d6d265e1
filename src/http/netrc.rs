//! Credentials from a netrc file, the way the go command takes them for
//! GOPROXY entries: `$NETRC` or `~/.netrc`, `machine`/`login`/`password`
//! tokens, matched against the URL's host name (no port), a missing file
//! meaning no credentials. Parsing stops at `default` (the go command does
//! not use it either) and `macdef` bodies are skipped.
//!
//! A matching entry's credentials go into the upstream URL's userinfo, so
//! they travel only with requests to that URL's host: reqwest sends userinfo
//! as basic auth and drops the header on a redirect to another host, and
//! every message masks userinfo.

use std::path::PathBuf;

use reqwest::Url;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetrcLine {
    pub machine: String,
    pub login: String,
    pub password: String,
}

/// Parses netrc text into its complete `machine` entries.
pub fn parse(text: &str) -> Vec<NetrcLine> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    let mut current: Option<NetrcLine> = None;
    'lines: while let Some(line) = lines.next() {
        let mut tokens = line.split_whitespace();
        while let Some(t) = tokens.next() {
            match t {
                "machine" => {
                    if let Some(l) = current.take() {
                        out.push(l);
                    }
                    current = tokens.next().map(|m| NetrcLine {
                        machine: m.to_ascii_lowercase(),
                        login: String::new(),
                        password: String::new(),
                    });
                }
                "login" => {
                    if let (Some(c), Some(v)) = (current.as_mut(), tokens.next()) {
                        c.login = v.to_string();
                    }
                }
                "password" => {
                    if let (Some(c), Some(v)) = (current.as_mut(), tokens.next()) {
                        c.password = v.to_string();
                    }
                }
                "default" => break 'lines,
                "macdef" => {
                    // A macro body runs to the next empty line.
                    for l in lines.by_ref() {
                        if l.trim().is_empty() {
                            break;
                        }
                    }
                    continue 'lines;
                }
                _ => {}
            }
        }
    }
    if let Some(l) = current.take() {
        out.push(l);
    }
    out.retain(|l| !l.login.is_empty() && !l.password.is_empty());
    out
}

/// The netrc file the go command would read.
pub fn path() -> Option<PathBuf> {
    crate::env::netrc_path()
}

/// Reads the netrc file; a missing or unreadable one gives no credentials.
pub fn load() -> Vec<NetrcLine> {
    path()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|t| parse(&t))
        .unwrap_or_default()
}

/// `url` with the first matching entry's credentials, unless it has its own.
pub fn with_credentials(url: &Url, netrc: &[NetrcLine]) -> Url {
    if !url.username().is_empty() || url.password().is_some() {
        return url.clone();
    }
    let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
        return url.clone();
    };
    let Some(line) = netrc.iter().find(|l| l.machine == host) else {
        return url.clone();
    };
    let mut u = url.clone();
    if u.set_username(&line.login).is_err() || u.set_password(Some(&line.password)).is_err() {
        return url.clone();
    }
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machines_logins_and_passwords() {
        let text = "machine proxy.corp.example login alice password s3cret\n\
                    machine other.example\n  login bob\n  password hunter2\n\
                    macdef init\nmachine evil.example login x password y\n\n\
                    machine half.example login only\n\
                    default login anon password anon\n\
                    machine after.example login z password z\n";
        let got = parse(text);
        assert_eq!(
            got,
            vec![
                NetrcLine {
                    machine: "proxy.corp.example".into(),
                    login: "alice".into(),
                    password: "s3cret".into()
                },
                NetrcLine {
                    machine: "other.example".into(),
                    login: "bob".into(),
                    password: "hunter2".into()
                },
            ]
        );
    }

    #[test]
    fn credentials_go_to_the_matching_host_only() {
        let netrc = parse("machine proxy.corp.example login alice password s3cret\n");
        let u = Url::parse("https://proxy.corp.example:8443/go").unwrap();
        let with = with_credentials(&u, &netrc);
        assert_eq!(with.username(), "alice");
        assert_eq!(with.password(), Some("s3cret"));
        let other = Url::parse("https://proxy.golang.org/").unwrap();
        assert_eq!(with_credentials(&other, &netrc), other);
        // The URL's own userinfo wins.
        let own = Url::parse("https://me:mine@proxy.corp.example/").unwrap();
        assert_eq!(with_credentials(&own, &netrc), own);
    }
}
