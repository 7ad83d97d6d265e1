//! A minimal blocking HTTP/1.1 GET over `std::net::TcpStream`, for tests that
//! want to look at what the fake upstream (or a mirror served by nginx) returns
//! byte for byte, including truncated bodies. One connection per request.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// False when the connection ended before the declared body did.
    pub complete: bool,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// GETs `url` (`http://host:port/path?query`; the path is sent as given, so
/// percent-encode it yourself).
pub fn get(url: &str) -> io::Result<HttpResponse> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| io::Error::other(format!("not an http:// URL: {url}")))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: gomirror-test\r\nConnection: close\r\n\r\n"
    )?;
    stream.flush()?;
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            // A reset after a cut-off body: keep what arrived.
            Err(e) if !raw.is_empty() && e.kind() != io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    parse_response(&raw)
}

/// GETs and panics unless the status is 200 and the body complete.
pub fn get_ok(url: &str) -> Vec<u8> {
    let resp = get(url).unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(resp.status, 200, "GET {url}: {}", resp.text());
    assert!(resp.complete, "GET {url}: incomplete body");
    resp.body
}

fn parse_response(raw: &[u8]) -> io::Result<HttpResponse> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| io::Error::other("no end of headers in response"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(io::Error::other)?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let payload = &raw[end + 4..];
    let mut resp = HttpResponse {
        status,
        headers,
        body: Vec::new(),
        complete: true,
    };
    if resp
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        let (body, complete) = dechunk(payload);
        resp.body = body;
        resp.complete = complete;
    } else if let Some(len) = resp.header("content-length") {
        let len: usize = len.parse().map_err(io::Error::other)?;
        resp.complete = payload.len() >= len;
        resp.body = payload[..payload.len().min(len)].to_vec();
    } else {
        resp.body = payload.to_vec();
    }
    Ok(resp)
}

fn dechunk(mut p: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some(eol) = p.windows(2).position(|w| w == b"\r\n") else {
            return (out, false);
        };
        let size_str = String::from_utf8_lossy(&p[..eol]);
        let size_str = size_str.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_str, 16) else {
            return (out, false);
        };
        p = &p[eol + 2..];
        if size == 0 {
            return (out, true);
        }
        if p.len() < size {
            out.extend_from_slice(p);
            return (out, false);
        }
        out.extend_from_slice(&p[..size]);
        p = &p[size..];
        if p.len() >= 2 {
            p = &p[2..];
        }
    }
}
