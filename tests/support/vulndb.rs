//! A fake Go vulnerability database: vuln.go.dev's layout
//! (go.dev/doc/security/vuln/database) built from OSV entries — real ones
//! from `tests/fixtures/vulndb/` (CC-BY-4.0, see the ATTRIBUTION file there),
//! or a whole `data/osv` directory of the golang.org/x/vulndb module — and
//! served over HTTP on 127.0.0.1 or written into a directory.
//!
//! The indexes are computed here, independently of gomirror (as
//! golang.org/x/vulndb's `internal/database` defines them: `db.json`'s
//! `modified` is the newest entry's, `modules.json` lists per module each
//! entry with its latest `fixed`, `vulns.json` each entry with its aliases),
//! so the fake is an oracle the mirror is checked against. A test can change
//! an entry (a new `modified`), serve an older snapshot (a rewound
//! database), replace one file's bytes (an inconsistent one), fail paths,
//! and count requests.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::goformat;

/// The fixtures' directory.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vulndb")
}

/// One OSV entry: its id, `modified`, and its bytes as served.
#[derive(Clone, Debug)]
pub struct OsvEntry {
    pub id: String,
    pub modified: String,
    pub json: Vec<u8>,
}

impl OsvEntry {
    /// Parses an entry's bytes (kept as they are).
    pub fn from_bytes(json: Vec<u8>) -> OsvEntry {
        let v: Value = serde_json::from_slice(&json).expect("an OSV entry");
        OsvEntry {
            id: v["id"].as_str().expect("id").to_string(),
            modified: v["modified"].as_str().expect("modified").to_string(),
            json,
        }
    }

    fn value(&self) -> Value {
        serde_json::from_slice(&self.json).expect("an OSV entry")
    }

    /// The entry with another `modified` (re-serialized).
    pub fn with_modified(&self, modified: &str) -> OsvEntry {
        let mut v = self.value();
        v["modified"] = json!(modified);
        OsvEntry {
            id: self.id.clone(),
            modified: modified.to_string(),
            json: serde_json::to_vec_pretty(&v).unwrap(),
        }
    }
}

/// A database: its entries by id.
#[derive(Clone, Debug, Default)]
pub struct VulnDb {
    pub entries: BTreeMap<String, OsvEntry>,
}

/// `1.2.3` < `1.2.4` as the database's versions compare (`v` put in front).
fn db_version_less(a: &str, b: &str) -> bool {
    goformat::semver_compare(&format!("v{a}"), &format!("v{b}")) == std::cmp::Ordering::Less
}

/// golang.org/x/vulndb's `LatestFixed`: the highest `fixed` of the SEMVER
/// ranges, unless the vulnerability is introduced again after it.
fn latest_fixed(ranges: &Value) -> String {
    let mut latest = String::new();
    for r in ranges.as_array().into_iter().flatten() {
        if r["type"] != "SEMVER" {
            continue;
        }
        let events = r["events"].as_array().cloned().unwrap_or_default();
        for e in &events {
            if let Some(f) = e["fixed"].as_str()
                && (latest.is_empty() || db_version_less(&latest, f))
            {
                latest = f.to_string();
            }
        }
        for e in &events {
            if let Some(i) = e["introduced"].as_str()
                && i != "0"
                && !latest.is_empty()
                && db_version_less(&latest, i)
            {
                latest.clear();
                break;
            }
        }
    }
    latest
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

impl VulnDb {
    /// The real entries of `tests/fixtures/vulndb/`.
    pub fn fixtures() -> VulnDb {
        let mut db = VulnDb::default();
        let mut names: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
            .expect("tests/fixtures/vulndb")
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        names.sort();
        for p in names {
            db.add(OsvEntry::from_bytes(std::fs::read(&p).unwrap()));
        }
        assert!(db.entries.len() >= 5, "fixtures: {:?}", db.entries.keys());
        db
    }

    /// Every `*.json` entry of a golang/vulndb `data/osv` directory. Its
    /// files carry zero times (vuln.go.dev fills them in when it deploys):
    /// a zero `modified` or `published` becomes a time derived from the id's
    /// year and number, so the database has a meaningful `modified`.
    pub fn from_osv_dir(dir: &Path) -> VulnDb {
        let mut db = VulnDb::default();
        for e in std::fs::read_dir(dir).expect("an osv directory") {
            let p = e.unwrap().path();
            if p.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let mut v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let id = v["id"].as_str().unwrap().to_string();
            let stamp = stamp_for(&id);
            for k in ["modified", "published"] {
                if v[k].as_str().is_none_or(|t| t.starts_with("0001-")) {
                    v[k] = json!(stamp);
                }
            }
            db.add(OsvEntry::from_bytes(serde_json::to_vec_pretty(&v).unwrap()));
        }
        db
    }

    pub fn add(&mut self, e: OsvEntry) {
        self.entries.insert(e.id.clone(), e);
    }

    /// Gives entry `id` a new `modified`.
    pub fn touch(&mut self, id: &str, modified: &str) {
        let e = self.entries[id].with_modified(modified);
        self.entries.insert(id.to_string(), e);
    }

    /// The database's `modified`: the newest entry's.
    pub fn modified(&self) -> String {
        let mut newest: Option<(i128, String)> = None;
        for e in self.entries.values() {
            let t = goformat::parse_rfc3339_nanos(&e.modified).expect("an RFC 3339 modified");
            if newest.as_ref().is_none_or(|(n, _)| t > *n) {
                newest = Some((t, e.modified.clone()));
            }
        }
        newest
            .map(|(_, m)| m)
            .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
    }

    /// `index/db.json`, `index/modules.json`, `index/vulns.json` and
    /// `ID/<id>.json`, each also `.json.gz`, as vuln.go.dev lays them out.
    pub fn files(&self) -> BTreeMap<String, Vec<u8>> {
        let mut modules: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        let mut vulns = Vec::new();
        let mut out = BTreeMap::new();
        for e in self.entries.values() {
            let v = e.value();
            for a in v["affected"].as_array().into_iter().flatten() {
                let path = a["package"]["name"].as_str().unwrap().to_string();
                let mut mv = json!({"id": e.id, "modified": e.modified});
                let fixed = latest_fixed(&a["ranges"]);
                if !fixed.is_empty() {
                    mv["fixed"] = json!(fixed);
                }
                modules.entry(path).or_default().push(mv);
            }
            let mut vv = json!({"id": e.id, "modified": e.modified});
            if let Some(a) = v["aliases"].as_array().filter(|a| !a.is_empty()) {
                vv["aliases"] = json!(a);
            }
            vulns.push(vv);
            out.insert(format!("ID/{}.json", e.id), e.json.clone());
        }
        let modules: Vec<Value> = modules
            .into_iter()
            .map(|(path, vulns)| json!({"path": path, "vulns": vulns}))
            .collect();
        out.insert(
            "index/db.json".into(),
            serde_json::to_vec(&json!({"modified": self.modified()})).unwrap(),
        );
        out.insert(
            "index/modules.json".into(),
            serde_json::to_vec(&modules).unwrap(),
        );
        out.insert(
            "index/vulns.json".into(),
            serde_json::to_vec(&vulns).unwrap(),
        );
        let gz: Vec<(String, Vec<u8>)> = out
            .iter()
            .map(|(k, v)| (format!("{k}.gz"), gzip(v)))
            .collect();
        out.extend(gz);
        out
    }

    /// Writes the layout into `dir` (a `file://` database, or one a web
    /// server serves).
    pub fn write_dir(&self, dir: &Path) {
        for (rel, bytes) in self.files() {
            let p = dir.join(&rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, bytes).unwrap();
        }
    }
}

/// A time for an entry whose file has none: its year, and its number as
/// minutes into it (`GO-2024-2687` → 2024-01-02T20:47:00Z), so later ids are
/// later.
pub fn stamp_for(id: &str) -> String {
    let mut parts = id.split('-').skip(1);
    let year: i64 = parts.next().and_then(|y| y.parse().ok()).unwrap_or(2020);
    let n: i64 = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let us = goformat::micros_of(year, 1, 1, 0, 0, 0) + n * 60_000_000;
    goformat::format_seconds(us)
}

struct Served {
    files: BTreeMap<String, Vec<u8>>,
    /// Replaced bytes for one file.
    overrides: BTreeMap<String, Vec<u8>>,
    /// Paths (prefixes) answered with a status.
    failing: Vec<(String, u16)>,
    requests: Vec<String>,
}

/// The fake database on a real HTTP server (127.0.0.1, its own thread).
pub struct FakeVulnDb {
    served: Arc<Mutex<Served>>,
    addr: SocketAddr,
    shutdown: Option<watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeVulnDb {
    pub fn start(db: &VulnDb) -> FakeVulnDb {
        let served = Arc::new(Mutex::new(Served {
            files: db.files(),
            overrides: BTreeMap::new(),
            failing: Vec::new(),
            requests: Vec::new(),
        }));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake vulndb");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = watch::channel(false);
        let s = served.clone();
        let thread = std::thread::Builder::new()
            .name("fake-vulndb".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(serve(listener, s, rx));
            })
            .unwrap();
        FakeVulnDb {
            served,
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT/db`: the database's base URL.
    pub fn url(&self) -> String {
        format!("http://{}/db", self.addr)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Served> {
        self.served.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Serves `db` from now on (a newer one, or an older snapshot).
    pub fn set(&self, db: &VulnDb) {
        self.lock().files = db.files();
    }

    /// Serves `bytes` at `rel` (`ID/GO-2021-0113.json.gz`) instead.
    pub fn override_file(&self, rel: &str, bytes: Vec<u8>) {
        self.lock().overrides.insert(rel.to_string(), bytes);
    }

    /// Answers `status` to every path starting with `prefix`.
    pub fn fail(&self, prefix: &str, status: u16) {
        self.lock().failing.push((prefix.to_string(), status));
    }

    pub fn clear_faults(&self) {
        let mut s = self.lock();
        s.overrides.clear();
        s.failing.clear();
    }

    /// Every path requested (below the base), in order.
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }
}

impl Drop for FakeVulnDb {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(listener: TcpListener, served: Arc<Mutex<Served>>, mut stop: watch::Receiver<bool>) {
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let served = served.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let served = served.clone();
                        async move { Ok::<_, Infallible>(answer(&served, req.uri().path())) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
            _ = stop.changed() => break,
        }
    }
}

fn answer(served: &Mutex<Served>, path: &str) -> Response<Full<Bytes>> {
    let mut s = served.lock().unwrap_or_else(|e| e.into_inner());
    let rel = path.strip_prefix("/db/").unwrap_or("").to_string();
    s.requests.push(rel.clone());
    let respond = |status: u16, body: Vec<u8>, kind: &'static str| {
        let len = body.len();
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = StatusCode::from_u16(status).unwrap();
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(kind));
        r.headers_mut().insert(CONTENT_LENGTH, len.into());
        r
    };
    if let Some((_, status)) = s.failing.iter().find(|(p, _)| rel.starts_with(p.as_str())) {
        return respond(*status, b"injected fault\n".to_vec(), "text/plain");
    }
    let body = s.overrides.get(&rel).or_else(|| s.files.get(&rel)).cloned();
    match body {
        Some(b) if rel.ends_with(".gz") => respond(200, b, "application/octet-stream"),
        Some(b) => respond(200, b, "application/json"),
        None => respond(404, b"not found\n".to_vec(), "text/plain"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_follow_the_entries() {
        let db = VulnDb::fixtures();
        let files = db.files();
        let modules: Value = serde_json::from_slice(&files["index/modules.json"]).unwrap();
        let text = modules
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["path"] == "golang.org/x/text")
            .unwrap();
        assert_eq!(text["vulns"][0]["id"], "GO-2021-0113");
        assert_eq!(text["vulns"][0]["fixed"], "0.3.7");
        // Fixed, then introduced again and fixed again: the last fix counts.
        let stdlib = modules
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["path"] == "stdlib")
            .unwrap();
        let e = stdlib["vulns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["id"] == "GO-2022-0969")
            .unwrap();
        assert_eq!(e["fixed"], "1.19.1");
        // A withdrawn entry with no fix has none.
        let teleport = modules
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["path"] == "github.com/gravitational/teleport")
            .unwrap();
        assert!(teleport["vulns"][0].get("fixed").is_none());
        let db_json: Value = serde_json::from_slice(&files["index/db.json"]).unwrap();
        assert_eq!(db_json["modified"], "2024-06-04T15:00:00Z");
        assert!(files.contains_key("ID/GO-2024-2687.json.gz"));
        assert_eq!(stamp_for("GO-2024-2687"), "2024-01-02T20:47:00Z");
    }
}
