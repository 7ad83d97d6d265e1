//! `FakeUpstream`: one real HTTP/1.1 server on 127.0.0.1 speaking the module
//! proxy protocol (`/proxy/`), the index feed (`/index`) and the checksum
//! database (`/sumdb/`, also reachable as `/proxy/sumdb/<name>/`), with fault
//! injection and request counting.
//!
//! The server runs on its own thread with its own tokio runtime so that plain
//! synchronous `#[test]` functions can use it. Zips live in a temporary
//! directory and are streamed from disk; all other state sits behind one mutex.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::future::Future;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{mpsc, watch};

use super::corpus::{Corpus, ModuleVersionSpec};
use super::goformat;
use super::index::{self, IndexFeed};
use super::sumlog::{self, Log, NoteSigner};
use super::zipbuild;

/// How the fake is set up (beyond its corpus).
#[derive(Clone, Debug)]
pub struct FakeOptions {
    /// Records in the log before the corpus's (ids 0..filler_records).
    pub filler_records: usize,
    /// Noise entries in the index feed (not served by the proxy).
    pub extra_index_entries: usize,
    /// Checksum database name (the key name).
    pub sumdb_name: String,
    /// Ed25519 seed of the checksum database key.
    pub seed: [u8; 32],
    /// Port to listen on; 0 picks a free one.
    pub port: u16,
    /// Caps the total rate of zip bodies (bytes per second, all connections
    /// together, like one network link); 0 means no cap.
    pub rate_bytes_per_sec: u64,
    /// Spreads the noise entries over this span (microseconds from its
    /// start) with a varying density, instead of one per millisecond.
    pub index_spread: Option<index::Spread>,
    /// Every index page is answered this much later: a round-trip time.
    pub index_page_delay: Duration,
}

impl Default for FakeOptions {
    fn default() -> Self {
        FakeOptions {
            filler_records: 1000,
            extra_index_entries: 0,
            sumdb_name: "sum.gomirror.test".to_string(),
            seed: *b"gomirror fake upstream test key!",
            port: 0,
            rate_bytes_per_sec: 0,
            index_spread: None,
            index_page_delay: Duration::ZERO,
        }
    }
}

/// A misbehaviour of the upstream, active until `clear_faults`.
#[derive(Clone, Debug)]
pub enum Fault {
    /// The first `times` requests whose path starts with `path_prefix` answer
    /// `status`; later ones are served normally.
    FailFirst {
        path_prefix: String,
        times: usize,
        status: u16,
    },
    /// Every matching request answers `status`.
    Status { path_prefix: String, status: u16 },
    /// Matching successful responses declare their full Content-Length but
    /// send about half the body, then the connection is closed.
    Truncate { path_prefix: String },
    /// The proxy serves a zip with one file's content changed.
    TamperZip { path: String, version: String },
    /// The proxy serves a `.mod` with an extra line.
    TamperMod { path: String, version: String },
    /// Every signed note carries a corrupted signature (same name and hash).
    BadSignature,
    /// Notes are signed by a different key with the same name.
    WrongKey,
    /// The checksum database serves a fork: a log of the same size whose last
    /// filler record (record 0 without fillers) differs, so every tree hash
    /// from there on differs while the corpus's records and ids stay the same.
    /// Signed by the real key. Grows with `add` like the real log.
    ForkLog,
    /// The checksum database serves the tree of its first `size` records
    /// (notes, lookups and tiles), signed by the real key.
    RewindLog { size: usize },
    /// Raw lines inserted into the index feed among the real entries.
    MalformedIndexLines(Vec<String>),
    /// Well-formed index entries with arbitrary path and version, stamped
    /// among the real entries, not served by the proxy.
    IndexEntries(Vec<(String, String)>),
    /// Matching requests get a 200 with `bytes` zero bytes, with a
    /// Content-Length if `content_length`, else chunked.
    OversizeBody {
        path_prefix: String,
        bytes: u64,
        content_length: bool,
    },
    /// `count` well-formed entries `burst.example/m<i> v1.0.0`, all stamped
    /// with one timestamp among the real entries (not served by the proxy):
    /// more than a page of them cannot be paged past with an inclusive `since`.
    IndexSameTimestamp { count: usize },
    /// `count` copies of one entry line, all with one timestamp.
    IndexDuplicates { count: usize },
    /// The index ignores `since` and always serves its first page: a feed
    /// that goes back in time.
    IndexIgnoresSince,
    /// The index answers 200 with an HTML page.
    IndexHtml,
    /// Lookups carry a forked log's head — the same size as `/latest`'s, another
    /// hash (its last filler record differs, as with `ForkLog`) — while
    /// `/latest` and the tiles show the real log. Grows with `add`.
    ForkLookups,
    /// `/latest` serves a head of `size` records with a made-up hash, validly
    /// signed by the real key: a tree the log cannot prove (it has no tiles
    /// for it). Lookups and tiles show the real log.
    AbsurdLatest { size: u64 },
    /// The checksum database serves tile `tile` (`8/0/001`, as after
    /// `tile/`; a partial one too) with one byte flipped, signed heads and
    /// every other tile intact: a lying database or a damaged cache.
    TamperTile { tile: String },
    /// Matching successful responses keep their headers (Content-Length
    /// included) but send the body at `bytes_per_sec` (at least 1), so a
    /// read timeout never fires.
    Trickle {
        path_prefix: String,
        bytes_per_sec: u64,
    },
    /// Matching requests answer `302 Found` with this `Location` (the
    /// request's own path makes a redirect loop).
    Redirect {
        path_prefix: String,
        location: String,
    },
}

/// A module version as served.
struct Served {
    spec: ModuleVersionSpec,
    info: String,
    go_mod: Bytes,
    zip_path: PathBuf,
    zip_len: u64,
    zip_h1: String,
    mod_h1: String,
}

enum ActiveFault {
    FailFirst {
        prefix: String,
        remaining: usize,
        status: u16,
    },
    Status {
        prefix: String,
        status: u16,
    },
    Truncate {
        prefix: String,
    },
    TamperZip {
        path: String,
        version: String,
    },
    TamperMod {
        path: String,
        version: String,
    },
    Oversize {
        prefix: String,
        bytes: u64,
        content_length: bool,
    },
    Trickle {
        prefix: String,
        bytes_per_sec: u64,
    },
    Redirect {
        prefix: String,
        location: String,
    },
}

struct State {
    modules: HashMap<String, BTreeMap<String, Arc<Served>>>,
    order: Vec<(String, String)>,
    index: IndexFeed,
    log: Log,
    fork: Option<Log>,
    rewind: Option<u64>,
    bad_signature: bool,
    wrong_key: bool,
    index_ignores_since: bool,
    index_html: bool,
    record_ids: HashMap<(String, String), u64>,
    faults: Vec<ActiveFault>,
    tampered_zips: HashMap<(String, String), (PathBuf, u64)>,
    requests: Vec<String>,
    /// (path, Authorization header) of every request that carried one.
    authorizations: Vec<(String, String)>,
    pacer: Option<Arc<Pacer>>,
    /// `Fault::ForkLookups`: the log lookups are answered from.
    lookup_fork: Option<Log>,
    /// `Fault::AbsurdLatest`: the size `/latest` claims.
    absurd_latest: Option<u64>,
    /// `Fault::TamperTile`: tiles served with a byte flipped.
    tampered_tiles: Vec<String>,
    /// Every tree size a signed head was served for. Like sum.golang.org, a
    /// partial tile exists only at a width some published head had.
    published_sizes: std::collections::BTreeSet<u64>,
    /// The tree size of each version's first lookup: the real proxy caches
    /// lookups, so a lookup carries the head of when it was first answered,
    /// often older than `/latest`.
    lookup_sizes: HashMap<(String, String), u64>,
}

/// Spaces out zip body chunks so that, all connections together, they leave
/// at no more than a fixed rate: an emulated network link.
pub struct Pacer {
    bytes_per_sec: f64,
    next: Mutex<std::time::Instant>,
}

impl Pacer {
    fn new(bytes_per_sec: u64) -> Pacer {
        Pacer {
            bytes_per_sec: bytes_per_sec as f64,
            next: Mutex::new(std::time::Instant::now()),
        }
    }

    /// Blocks until `n` more bytes may be sent.
    fn wait(&self, n: usize) {
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = std::time::Instant::now();
            let start = (*next).max(now);
            *next = start + Duration::from_secs_f64(n as f64 / self.bytes_per_sec);
            start
        };
        let now = std::time::Instant::now();
        if slot > now {
            std::thread::sleep(slot - now);
        }
    }
}

struct Shared {
    /// Requests whose response is not finished yet, and the most ever at once.
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    state: Mutex<State>,
    signer: NoteSigner,
    wrong_signer: NoteSigner,
    zip_dir: PathBuf,
    next_zip: AtomicU64,
    /// `FakeOptions::index_page_delay`.
    index_page_delay: Duration,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not take the server down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn new_zip_path(&self) -> PathBuf {
        let n = self.next_zip.fetch_add(1, Ordering::Relaxed);
        self.zip_dir.join(format!("{n}.zip"))
    }
}

/// The fake upstream. Stops (port and temporary directory freed) on `stop`
/// or drop.
pub struct FakeUpstream {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: Option<watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
    dir: Option<tempfile::TempDir>,
}

const CHUNK: usize = 128 * 1024;

fn info_json(spec: &ModuleVersionSpec) -> String {
    format!(
        "{{\"Version\":{},\"Time\":{}}}",
        serde_json::to_string(&spec.version).unwrap(),
        serde_json::to_string(&spec.time).unwrap()
    )
}

fn build_served(shared: &Shared, spec: ModuleVersionSpec) -> Served {
    let zip_path = shared.new_zip_path();
    let built = zipbuild::build_zip(&spec, &zip_path, false).unwrap_or_else(|e| {
        panic!(
            "fake upstream: building the zip of {}@{}: {e}",
            spec.path, spec.version
        )
    });
    let go_mod = spec.mod_file();
    Served {
        info: info_json(&spec),
        mod_h1: goformat::go_mod_h1(&go_mod),
        go_mod: Bytes::from(go_mod),
        zip_path,
        zip_len: built.len,
        zip_h1: built.h1,
        spec,
    }
}

/// Builds every zip, in parallel.
fn build_all(shared: &Shared, specs: Vec<ModuleVersionSpec>) -> Vec<Served> {
    let n = specs.len();
    let threads = std::thread::available_parallelism()
        .map(|p| p.get())
        .unwrap_or(4)
        .min(16)
        .min(n.max(1));
    let next = AtomicU64::new(0);
    let slots: Vec<Mutex<Option<ModuleVersionSpec>>> =
        specs.into_iter().map(|s| Mutex::new(Some(s))).collect();
    let results: Vec<Mutex<Option<Served>>> = (0..n).map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if i >= n {
                        break;
                    }
                    let spec = slots[i].lock().unwrap().take().unwrap();
                    *results[i].lock().unwrap() = Some(build_served(shared, spec));
                }
            });
        }
    });
    results
        .into_iter()
        .map(|r| r.into_inner().unwrap().unwrap())
        .collect()
}

impl State {
    fn insert(&mut self, served: Served, ts: i64) {
        let path = served.spec.path.clone();
        let version = served.spec.version.clone();
        let versions = self.modules.entry(path.clone()).or_default();
        assert!(
            !versions.contains_key(&version),
            "fake upstream: {path}@{version} is already served"
        );
        let text = sumlog::record_text(&path, &version, &served.zip_h1, &served.mod_h1);
        if let Some(fork) = &mut self.fork {
            fork.append(text.clone());
        }
        if let Some(fork) = &mut self.lookup_fork {
            fork.append(text.clone());
        }
        let id = self.log.append(text);
        self.record_ids.insert((path.clone(), version.clone()), id);
        self.index.push(&path, &version, ts);
        versions.insert(version.clone(), Arc::new(served));
        self.order.push((path, version));
    }

    fn served(&self, path: &str, version: &str) -> Option<Arc<Served>> {
        self.modules.get(path)?.get(version).cloned()
    }
}

impl FakeUpstream {
    /// Builds the corpus's zips (in a temporary directory), the log and the
    /// index, and starts serving. Panics if the port cannot be bound.
    pub fn start(corpus: Corpus, options: FakeOptions) -> FakeUpstream {
        let dir = tempfile::Builder::new()
            .prefix("gomirror-fake-upstream-")
            .tempdir()
            .expect("fake upstream: creating a temporary directory");
        let zip_dir = dir.path().join("zips");
        std::fs::create_dir(&zip_dir).expect("fake upstream: creating the zip directory");
        let mut wrong_seed = goformat::sha256(&options.seed);
        wrong_seed[0] ^= 1;
        let shared = Arc::new(Shared {
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            state: Mutex::new(State {
                modules: HashMap::new(),
                order: Vec::new(),
                index: match options.index_spread {
                    Some(spread) => {
                        IndexFeed::spread_over(options.extra_index_entries as u64, spread)
                    }
                    None => IndexFeed::new(options.extra_index_entries as u64),
                },
                log: Log::new(options.filler_records as u64),
                fork: None,
                rewind: None,
                bad_signature: false,
                wrong_key: false,
                index_ignores_since: false,
                index_html: false,
                record_ids: HashMap::new(),
                faults: Vec::new(),
                tampered_zips: HashMap::new(),
                requests: Vec::new(),
                authorizations: Vec::new(),
                pacer: (options.rate_bytes_per_sec > 0)
                    .then(|| Arc::new(Pacer::new(options.rate_bytes_per_sec))),
                lookup_fork: None,
                absurd_latest: None,
                tampered_tiles: Vec::new(),
                published_sizes: Default::default(),
                lookup_sizes: HashMap::new(),
            }),
            signer: NoteSigner::from_seed(&options.sumdb_name, options.seed),
            wrong_signer: NoteSigner::from_seed(&options.sumdb_name, wrong_seed),
            zip_dir,
            next_zip: AtomicU64::new(0),
            index_page_delay: options.index_page_delay,
        });
        let served = build_all(&shared, corpus.versions);
        {
            let mut state = shared.lock();
            let mut ts = index::corpus_start();
            for (i, s) in served.into_iter().enumerate() {
                if i > 0 {
                    ts += index::corpus_step(i);
                }
                state.insert(s, ts);
            }
        }

        let listener = TcpListener::bind(("127.0.0.1", options.port))
            .unwrap_or_else(|e| panic!("fake upstream: binding 127.0.0.1:{}: {e}", options.port));
        listener
            .set_nonblocking(true)
            .expect("fake upstream: set_nonblocking");
        let addr = listener.local_addr().expect("fake upstream: local_addr");
        let (tx, rx) = watch::channel(false);
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("fake-upstream".to_string())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(4)
                    .thread_name("fake-upstream-worker")
                    .enable_all()
                    .build()
                    .expect("fake upstream: building the tokio runtime");
                rt.block_on(serve(listener, thread_shared, rx));
                rt.shutdown_timeout(Duration::from_secs(2));
            })
            .expect("fake upstream: spawning the server thread");
        FakeUpstream {
            shared,
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
            dir: Some(dir),
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The GOPROXY base URL.
    pub fn proxy_url(&self) -> String {
        format!("{}/proxy", self.url())
    }

    /// The index URL (`?since=…&limit=…` is appended by clients).
    pub fn index_url(&self) -> String {
        format!("{}/index", self.url())
    }

    /// The checksum database base URL (`/latest`, `/lookup/…`, `/tile/…`).
    pub fn sumdb_url(&self) -> String {
        format!("{}/sumdb", self.url())
    }

    pub fn sumdb_name(&self) -> String {
        self.shared.signer.name().to_string()
    }

    /// The verifier key (`<name>+<hash>+<keydata>`).
    pub fn sumdb_key(&self) -> String {
        self.shared.signer.verifier_key()
    }

    /// The signer key (`PRIVATE+KEY+…`), for tests that sign notes themselves.
    pub fn sumdb_signer_key(&self) -> String {
        self.shared.signer.signer_key()
    }

    /// (path, version) served by the proxy, in publication order.
    pub fn versions(&self) -> Vec<(String, String)> {
        self.shared.lock().order.clone()
    }

    /// The spec a version was built from.
    pub fn spec(&self, path: &str, version: &str) -> Option<ModuleVersionSpec> {
        Some(self.shared.lock().served(path, version)?.spec.clone())
    }

    /// The `h1:` hashes (zip, go.mod) recorded in the log for a version.
    pub fn hashes(&self, path: &str, version: &str) -> Option<(String, String)> {
        let s = self.shared.lock().served(path, version)?;
        Some((s.zip_h1.clone(), s.mod_h1.clone()))
    }

    /// The log record id of a version.
    pub fn record_id(&self, path: &str, version: &str) -> Option<u64> {
        self.shared
            .lock()
            .record_ids
            .get(&(path.to_string(), version.to_string()))
            .copied()
    }

    /// Size of the real log (faults aside).
    pub fn tree_size(&self) -> u64 {
        self.shared.lock().log.size()
    }

    /// Timestamp of the newest index entry, noise included.
    pub fn last_index_timestamp(&self) -> Option<String> {
        self.shared
            .lock()
            .index
            .last_ts()
            .map(goformat::format_micros)
    }

    /// Publishes a new version: the proxy serves it, the index gets an entry
    /// later than every existing one, the log gets its record (and so a new
    /// signed tree head). Panics if the version is already served.
    pub fn add(&self, v: ModuleVersionSpec) {
        let served = build_served(&self.shared, v);
        let mut state = self.shared.lock();
        let ts = state
            .index
            .last_ts()
            .map_or(index::corpus_start(), |t| t + 2_345);
        state.insert(served, ts);
    }

    /// Publishes a new version whose index entry is stamped `ts_us`
    /// (microseconds since the epoch), anywhere in the feed.
    pub fn add_at(&self, v: ModuleVersionSpec, ts_us: i64) {
        let served = build_served(&self.shared, v);
        self.shared.lock().insert(served, ts_us);
    }

    /// The timestamp of noise entry `k` of the index (microseconds).
    pub fn noise_timestamp(&self, k: u64) -> i64 {
        self.shared.lock().index.noise_ts(k)
    }

    pub fn inject(&self, fault: Fault) {
        let mut state = self.shared.lock();
        let active = match fault {
            Fault::FailFirst {
                path_prefix,
                times,
                status,
            } => ActiveFault::FailFirst {
                prefix: path_prefix,
                remaining: times,
                status,
            },
            Fault::Status {
                path_prefix,
                status,
            } => ActiveFault::Status {
                prefix: path_prefix,
                status,
            },
            Fault::Truncate { path_prefix } => ActiveFault::Truncate {
                prefix: path_prefix,
            },
            Fault::TamperZip { path, version } => {
                let key = (path.clone(), version.clone());
                if !state.tampered_zips.contains_key(&key) {
                    let served = state.served(&path, &version).unwrap_or_else(|| {
                        panic!("fake upstream: TamperZip: {path}@{version} is not served")
                    });
                    drop(state);
                    let dest = self.shared.new_zip_path();
                    let built = zipbuild::build_zip(&served.spec, &dest, true)
                        .expect("fake upstream: building a tampered zip");
                    state = self.shared.lock();
                    state.tampered_zips.insert(key, (dest, built.len));
                }
                ActiveFault::TamperZip { path, version }
            }
            Fault::TamperMod { path, version } => ActiveFault::TamperMod { path, version },
            Fault::OversizeBody {
                path_prefix,
                bytes,
                content_length,
            } => ActiveFault::Oversize {
                prefix: path_prefix,
                bytes,
                content_length,
            },
            Fault::BadSignature => {
                state.bad_signature = true;
                return;
            }
            Fault::WrongKey => {
                state.wrong_key = true;
                return;
            }
            Fault::ForkLog => {
                let log = &state.log;
                if log.size() > 0 {
                    let at = log.filler().saturating_sub(1).min(log.size() - 1);
                    state.fork = Some(log.fork(at));
                }
                return;
            }
            Fault::RewindLog { size } => {
                state.rewind = Some(size as u64);
                return;
            }
            Fault::MalformedIndexLines(lines) => {
                state.index.inject_lines(lines);
                return;
            }
            Fault::IndexEntries(entries) => {
                state.index.inject_entries(entries);
                return;
            }
            Fault::IndexSameTimestamp { count } => {
                let lines = (0..count)
                    .map(|i| (format!("burst.example/m{i}"), "v1.0.0".to_string()))
                    .collect();
                state.index.inject_burst(lines);
                return;
            }
            Fault::IndexDuplicates { count } => {
                let lines = (0..count)
                    .map(|_| ("burst.example/dup".to_string(), "v1.0.0".to_string()))
                    .collect();
                state.index.inject_burst(lines);
                return;
            }
            Fault::IndexIgnoresSince => {
                state.index_ignores_since = true;
                return;
            }
            Fault::IndexHtml => {
                state.index_html = true;
                return;
            }
            Fault::ForkLookups => {
                let log = &state.log;
                if log.size() > 0 {
                    let at = log.filler().saturating_sub(1).min(log.size() - 1);
                    state.lookup_fork = Some(log.fork(at));
                }
                return;
            }
            Fault::AbsurdLatest { size } => {
                state.absurd_latest = Some(size);
                return;
            }
            Fault::TamperTile { tile } => {
                state.tampered_tiles.push(tile);
                return;
            }
            Fault::Trickle {
                path_prefix,
                bytes_per_sec,
            } => ActiveFault::Trickle {
                prefix: path_prefix,
                bytes_per_sec,
            },
            Fault::Redirect {
                path_prefix,
                location,
            } => ActiveFault::Redirect {
                prefix: path_prefix,
                location,
            },
        };
        state.faults.push(active);
    }

    /// Removes every fault, including injected index lines and log views.
    pub fn clear_faults(&self) {
        let mut state = self.shared.lock();
        state.faults.clear();
        state.fork = None;
        state.rewind = None;
        state.bad_signature = false;
        state.wrong_key = false;
        state.index_ignores_since = false;
        state.index_html = false;
        state.index.clear_injected();
        state.lookup_fork = None;
        state.absurd_latest = None;
        state.tampered_tiles.clear();
    }

    /// Appends `n` records of modules nobody serves (as other people's
    /// publications grow the real log): new signed heads, new tiles.
    pub fn append_records(&self, n: usize) {
        let mut state = self.shared.lock();
        for _ in 0..n {
            let i = state.log.size();
            let text = sumlog::filler_text(i).replace("filler.example/f", "growth.example/g");
            state.log.append(text);
        }
    }

    /// How many requests had a decoded path (plus `?query`) starting with
    /// `path_prefix`.
    pub fn requests(&self, path_prefix: &str) -> usize {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.starts_with(path_prefix))
            .count()
    }

    /// Every request so far: decoded path plus `?query` if any.
    pub fn request_log(&self) -> Vec<String> {
        self.shared.lock().requests.clone()
    }

    /// The most requests that were ever being answered at once.
    pub fn max_in_flight(&self) -> u64 {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// (path, `Authorization` header) of every request that carried one.
    pub fn authorizations(&self) -> Vec<(String, String)> {
        self.shared.lock().authorizations.clone()
    }

    pub fn clear_request_log(&self) {
        self.shared.lock().requests.clear();
    }

    /// Stops the server, frees the port and deletes the temporary directory.
    pub fn stop(self) {}

    fn shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.dir.take();
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let listener =
        tokio::net::TcpListener::from_std(listener).expect("fake upstream: tokio listener");
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        // Out of descriptors or similar: do not spin.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let shared = shared.clone();
                        async move {
                            let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                            shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
                            // The request counts until its body is sent or dropped.
                            let gauge = InFlight(shared.clone());
                            if !shared.index_page_delay.is_zero()
                                && req.uri().path().starts_with("/index")
                            {
                                tokio::time::sleep(shared.index_page_delay).await;
                            }
                            let resp = handle(&shared, req);
                            Ok::<_, Infallible>(resp.map(|body| Counted { body, _gauge: gauge }))
                        }
                    });
                    let _ = http1::Builder::new()
                        .timer(TokioTimer::new())
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
            _ = shutdown.changed() => break,
        }
    }
}

// ---- responses ---------------------------------------------------------------

/// Response bodies: in memory, streamed from a file, generated zeros, or
/// truncated (ends in an error so the connection is cut).
pub enum Body {
    Full(Option<Bytes>),
    Stream {
        rx: mpsc::Receiver<io::Result<Bytes>>,
        len: u64,
    },
    Zeros {
        remaining: u64,
        exact: bool,
    },
    Truncated {
        inner: Box<Body>,
        remaining: u64,
        /// Pause before failing, so hyper flushes what was sent: a body error
        /// makes it drop the connection without writing its buffer.
        pause: Option<Pin<Box<tokio::time::Sleep>>>,
    },
}

static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

impl Body {
    fn exact_len(&self) -> Option<u64> {
        match self {
            Body::Full(b) => Some(b.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Stream { len, .. } => Some(*len),
            Body::Zeros { remaining, exact } => exact.then_some(*remaining),
            Body::Truncated { inner, .. } => inner.exact_len(),
        }
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream { rx, .. } => match rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(b))) => Poll::Ready(Some(Ok(Frame::data(b)))),
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
            Body::Zeros { remaining, .. } => {
                if *remaining == 0 {
                    return Poll::Ready(None);
                }
                let n = (*remaining).min(ZEROS.len() as u64) as usize;
                *remaining -= n as u64;
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&ZEROS[..n])))))
            }
            Body::Truncated {
                inner,
                remaining,
                pause,
            } => {
                if *remaining == 0 {
                    let sleep = pause.get_or_insert_with(|| {
                        Box::pin(tokio::time::sleep(Duration::from_millis(50)))
                    });
                    return match sleep.as_mut().poll(cx) {
                        Poll::Pending => Poll::Pending,
                        Poll::Ready(()) => Poll::Ready(Some(Err(io::Error::other(
                            "response truncated by fault injection",
                        )))),
                    };
                }
                match Pin::new(inner.as_mut()).poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                        Ok(data) => {
                            let take = (data.len() as u64).min(*remaining);
                            *remaining -= take;
                            Poll::Ready(Some(Ok(Frame::data(data.slice(..take as usize)))))
                        }
                        Err(frame) => Poll::Ready(Some(Ok(frame))),
                    },
                    other => other,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Full(b) => b.as_ref().is_none_or(|b| b.is_empty()),
            Body::Zeros { remaining, .. } => *remaining == 0,
            _ => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self.exact_len() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

fn respond(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(Body::Full(Some(body.into())));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

const TEXT: &str = "text/plain; charset=utf-8";

fn text(status: u16, body: impl Into<String>) -> Response<Body> {
    let mut s = body.into();
    if !s.ends_with('\n') {
        s.push('\n');
    }
    respond(status, TEXT, s)
}

fn not_found(what: impl std::fmt::Display) -> Response<Body> {
    text(404, format!("not found: {what}"))
}

fn file_response(path: PathBuf, len: u64, pacer: Option<Arc<Pacer>>) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        let mut file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        loop {
            let mut buf = vec![0u8; CHUNK];
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    if let Some(p) = &pacer {
                        p.wait(n);
                    }
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        break; // client went away
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
    });
    let mut resp = Response::new(Body::Stream { rx, len });
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/zip"));
    resp.headers_mut().insert(CONTENT_LENGTH, len.into());
    resp
}

/// `resp` with its body re-sent at `bytes_per_sec` by a task that ends when
/// the client goes away.
fn trickled(resp: Response<Body>, bytes_per_sec: u64) -> Response<Body> {
    use http_body_util::BodyExt;
    let (parts, mut inner) = resp.into_parts();
    let Some(len) = inner.exact_len() else {
        return Response::from_parts(parts, inner);
    };
    let bps = bytes_per_sec.max(1);
    // At most ten pieces a second, so fast trickles do not busy the runtime.
    let (piece, every) = if bps <= 10 {
        (1, Duration::from_secs_f64(1.0 / bps as f64))
    } else {
        ((bps / 10) as usize, Duration::from_millis(100))
    };
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(1);
    tokio::spawn(async move {
        while let Some(frame) = inner.frame().await {
            let data = match frame.map(|f| f.into_data()) {
                Ok(Ok(data)) => data,
                Ok(Err(_)) => continue,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let mut at = 0;
            while at < data.len() {
                tokio::time::sleep(every).await;
                let end = (at + piece).min(data.len());
                if tx.send(Ok(data.slice(at..end))).await.is_err() {
                    return; // client went away
                }
                at = end;
            }
        }
    });
    Response::from_parts(parts, Body::Stream { rx, len })
}

/// Decrements the in-flight gauge when a response body is done with.
struct InFlight(Arc<Shared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that keeps its request counted as in flight.
struct Counted {
    body: Body,
    _gauge: InFlight,
}

impl hyper::body::Body for Counted {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

// ---- routing -----------------------------------------------------------------

fn handle(shared: &Shared, req: Request<Incoming>) -> Response<Body> {
    let Some(path) = goformat::percent_decode(req.uri().path()) else {
        return text(400, "bad percent-encoding in request path");
    };
    let query = req.uri().query().unwrap_or("").to_string();
    let mut state = shared.lock();
    state.requests.push(if query.is_empty() {
        path.clone()
    } else {
        format!("{path}?{query}")
    });
    if let Some(auth) = req.headers().get(hyper::header::AUTHORIZATION) {
        let auth = String::from_utf8_lossy(auth.as_bytes()).into_owned();
        state.authorizations.push((path.clone(), auth));
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(405, "method not allowed");
    }

    let mut truncate = false;
    let mut trickle = None;
    for fault in state.faults.iter_mut() {
        match fault {
            ActiveFault::FailFirst {
                prefix,
                remaining,
                status,
            } if *remaining > 0 && path.starts_with(prefix.as_str()) => {
                *remaining -= 1;
                return text(*status, format!("injected fault: status {status}"));
            }
            ActiveFault::Status { prefix, status } if path.starts_with(prefix.as_str()) => {
                return text(*status, format!("injected fault: status {status}"));
            }
            ActiveFault::Oversize {
                prefix,
                bytes,
                content_length,
            } if path.starts_with(prefix.as_str()) => {
                let mut resp = Response::new(Body::Zeros {
                    remaining: *bytes,
                    exact: *content_length,
                });
                resp.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
                if *content_length {
                    resp.headers_mut().insert(CONTENT_LENGTH, (*bytes).into());
                }
                return resp;
            }
            ActiveFault::Truncate { prefix } if path.starts_with(prefix.as_str()) => {
                truncate = true;
            }
            ActiveFault::Trickle {
                prefix,
                bytes_per_sec,
            } if path.starts_with(prefix.as_str()) => {
                trickle = Some(*bytes_per_sec);
            }
            ActiveFault::Redirect { prefix, location } if path.starts_with(prefix.as_str()) => {
                let mut resp = text(302, "injected fault: redirect");
                if let Ok(v) = HeaderValue::from_str(location) {
                    resp.headers_mut().insert(hyper::header::LOCATION, v);
                }
                return resp;
            }
            _ => {}
        }
    }

    let resp = route(shared, &mut state, &path, &query);
    drop(state);
    if let Some(bytes_per_sec) = trickle
        && resp.status() == StatusCode::OK
    {
        return trickled(resp, bytes_per_sec);
    }
    if truncate && resp.status() == StatusCode::OK {
        let (mut parts, body) = resp.into_parts();
        if let Some(len) = body.exact_len() {
            parts.headers.insert(CONTENT_LENGTH, len.into());
            return Response::from_parts(
                parts,
                Body::Truncated {
                    inner: Box::new(body),
                    remaining: len / 2,
                    pause: None,
                },
            );
        }
        return Response::from_parts(parts, body);
    }
    resp
}

fn route(shared: &Shared, state: &mut State, path: &str, query: &str) -> Response<Body> {
    if path == "/index" || path == "/index/" {
        return index_page(state, query);
    }
    let proxied_sumdb = format!("/proxy/sumdb/{}/", shared.signer.name());
    if let Some(rest) = path.strip_prefix(&proxied_sumdb) {
        if rest == "supported" {
            return text(200, "");
        }
        return sumdb(shared, state, &format!("/{rest}"));
    }
    if path.starts_with("/proxy/sumdb/") {
        return not_found("unknown checksum database");
    }
    if let Some(rest) = path.strip_prefix("/proxy/") {
        return proxy(state, rest);
    }
    if let Some(rest) = path.strip_prefix("/sumdb") {
        return sumdb(shared, state, rest);
    }
    not_found(path)
}

fn index_page(state: &State, query: &str) -> Response<Body> {
    if state.index_html {
        return respond(
            200,
            "text/html; charset=utf-8",
            "<!DOCTYPE html>\n<html><head><title>Sign in</title></head>\n<body><p>Please sign in to continue.</p></body></html>\n".to_string(),
        );
    }
    let mut since_us = i64::MIN;
    let mut limit = index::MAX_LIMIT;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let Some(value) = goformat::percent_decode(value) else {
            return text(400, format!("bad query parameter {key}"));
        };
        match key {
            "since" => {
                // A form-encoded `+` (offset sign) arrives as a space.
                let value = value.replace(' ', "+");
                match goformat::parse_rfc3339_nanos(&value) {
                    // Entries carry microseconds: include those at or after
                    // the first microsecond not before `since`.
                    Some(ns) => since_us = (ns + 999).div_euclid(1000) as i64,
                    None => return text(400, format!("bad since: {value:?}")),
                }
            }
            "limit" => match value.parse::<usize>() {
                Ok(0) => limit = index::MAX_LIMIT,
                Ok(n) => limit = n.min(index::MAX_LIMIT),
                Err(_) => return text(400, format!("bad limit: {value:?}")),
            },
            _ => {}
        }
    }
    if state.index_ignores_since {
        since_us = i64::MIN;
    }
    respond(200, TEXT, state.index.page(since_us, limit))
}

fn proxy(state: &State, rest: &str) -> Response<Body> {
    let (escaped_module, file) = if let Some(m) = rest.strip_suffix("/@latest") {
        (m, None)
    } else if let Some((m, f)) = rest.split_once("/@v/") {
        (m, Some(f))
    } else {
        return not_found(rest);
    };
    let Some(module) = goformat::unescape(escaped_module) else {
        return not_found(format!("invalid escaped module path {escaped_module:?}"));
    };
    let Some(versions) = state.modules.get(&module) else {
        return not_found(format!("module {module}"));
    };
    let Some(file) = file else {
        return match latest(versions) {
            Some(s) => respond(200, "application/json", s.info.clone()),
            None => not_found(format!("{module}@latest")),
        };
    };
    if file == "list" {
        let mut tags: Vec<String> = versions
            .keys()
            .filter(|v| !goformat::is_pseudo(v))
            .cloned()
            .collect();
        goformat::sort_versions(&mut tags);
        let mut body = String::new();
        for v in tags {
            body.push_str(&v);
            body.push('\n');
        }
        return respond(200, TEXT, body);
    }
    let Some((escaped_version, ext)) = file.rsplit_once('.') else {
        return not_found(format!("{module}/@v/{file}"));
    };
    let Some(version) = goformat::unescape(escaped_version) else {
        return not_found(format!("invalid escaped version {escaped_version:?}"));
    };
    let Some(served) = versions.get(&version) else {
        return not_found(format!("{module}@{version}"));
    };
    let tampered = |zip: bool| {
        state.faults.iter().any(|f| match f {
            ActiveFault::TamperZip { path, version: v } if zip => *path == module && *v == version,
            ActiveFault::TamperMod { path, version: v } if !zip => *path == module && *v == version,
            _ => false,
        })
    };
    match ext {
        "info" => respond(200, "application/json", served.info.clone()),
        "mod" => {
            if tampered(false) {
                let mut m = served.go_mod.to_vec();
                m.extend_from_slice(b"// tampered by the fake upstream\n");
                respond(200, TEXT, m)
            } else {
                respond(200, TEXT, served.go_mod.clone())
            }
        }
        "zip" => {
            let key = (module.clone(), version.clone());
            match state.tampered_zips.get(&key) {
                Some((p, len)) if tampered(true) => {
                    file_response(p.clone(), *len, state.pacer.clone())
                }
                _ => file_response(served.zip_path.clone(), served.zip_len, state.pacer.clone()),
            }
        }
        _ => not_found(format!("{module}/@v/{file}")),
    }
}

/// Highest release, else highest pre-release, else newest pseudo-version.
fn latest(versions: &BTreeMap<String, Arc<Served>>) -> Option<&Arc<Served>> {
    let max_by_semver = |filter: &dyn Fn(&str) -> bool| {
        versions
            .iter()
            .filter(|(v, _)| filter(v))
            .max_by(|a, b| goformat::semver_compare(a.0, b.0).then_with(|| a.0.cmp(b.0)))
            .map(|(_, s)| s)
    };
    max_by_semver(&|v| !goformat::is_pseudo(v) && !goformat::is_prerelease(v))
        .or_else(|| max_by_semver(&|v| !goformat::is_pseudo(v)))
        .or_else(|| {
            versions
                .iter()
                .filter(|(v, _)| goformat::is_pseudo(v))
                .max_by_key(|(v, _)| goformat::pseudo_time(v).unwrap_or(""))
                .map(|(_, s)| s)
        })
}

// ---- checksum database -----------------------------------------------------------

/// The log the checksum database currently shows, and its size.
fn log_view(state: &State) -> (&Log, u64) {
    let log = state.fork.as_ref().unwrap_or(&state.log);
    let size = state.rewind.map_or(log.size(), |r| r.min(log.size()));
    (log, size)
}

fn signed_tree(shared: &Shared, state: &State) -> String {
    signed_tree_at(shared, state, log_view(state).1)
}

/// The signed head of the shown log at `size` (at most the shown size).
fn signed_tree_at(shared: &Shared, state: &State, size: u64) -> String {
    let (log, _) = log_view(state);
    let text = sumlog::tree_note_text(size, &log.tree_hash(size));
    if state.wrong_key {
        shared.wrong_signer.sign(&text)
    } else if state.bad_signature {
        shared.signer.sign_corrupted(&text)
    } else {
        shared.signer.sign(&text)
    }
}

fn sumdb(shared: &Shared, state: &mut State, rest: &str) -> Response<Body> {
    if rest == "/latest" {
        if let Some(size) = state.absurd_latest {
            let hash = goformat::sha256(format!("absurd tree {size}").as_bytes());
            let note = shared.signer.sign(&sumlog::tree_note_text(size, &hash));
            return respond(200, TEXT, note);
        }
        let size = log_view(state).1;
        state.published_sizes.insert(size);
        return respond(200, TEXT, signed_tree(shared, state));
    }
    if let Some(key) = rest.strip_prefix("/lookup/") {
        let Some((m, v)) = key.split_once('@') else {
            return text(400, "invalid module@version syntax");
        };
        let (Some(module), Some(version)) = (goformat::unescape(m), goformat::unescape(v)) else {
            return text(400, "invalid module@version syntax");
        };
        let (log, size) = log_view(state);
        let Some(&id) = state.record_ids.get(&(module.clone(), version.clone())) else {
            return not_found(format!("{module}@{version}"));
        };
        if id >= size {
            return not_found(format!("{module}@{version}"));
        }
        let record = log.record_text(id).expect("record id within the log");
        if let Some(fork) = &state.lookup_fork {
            let text = sumlog::tree_note_text(fork.size(), &fork.tree_hash(fork.size()));
            let body = format!("{id}\n{record}\n{}", shared.signer.sign(&text));
            return respond(200, TEXT, body);
        }
        // A fault that rewrites history answers with the shown head, uncached.
        let size = if state.fork.is_none() && state.rewind.is_none() {
            let first = *state
                .lookup_sizes
                .entry((module.clone(), version.clone()))
                .or_insert(size);
            first.min(size)
        } else {
            size
        };
        state.published_sizes.insert(size);
        let body = format!("{id}\n{record}\n{}", signed_tree_at(shared, state, size));
        return respond(200, TEXT, body);
    }
    if let Some(tile) = rest.strip_prefix("/tile/") {
        let Some((level, n, width)) = parse_tile_path(tile) else {
            return text(400, "invalid tile syntax");
        };
        let (log, size) = log_view(state);
        // Partial tiles of sum.golang.org exist only at widths a published
        // head had (a narrower one of the same tile is 404, as is one of a
        // tile that filled since): clients fall back to the full tile.
        if width < 256 {
            let shift = 8 * level.unwrap_or(0);
            let want = n.saturating_mul(256).saturating_add(width);
            if !state
                .published_sizes
                .iter()
                .any(|&s| s <= size && s >> shift == want)
            {
                return not_found(format!("tile/{tile}"));
            }
        }
        return match level {
            None => match log.data_tile(n, width, size) {
                Some(data) => respond(200, TEXT, data),
                None => not_found(format!("tile/{tile}")),
            },
            Some(level) => match log.tile(level, n, width, size) {
                Some(mut data) => {
                    if state.tampered_tiles.iter().any(|t| t == tile) {
                        data[7] ^= 0x10;
                    }
                    respond(200, "application/octet-stream", data)
                }
                None => not_found(format!("tile/{tile}")),
            },
        };
    }
    not_found(format!("sumdb{rest}"))
}

/// `tile.Path()` for height 8 (without the `tile/` prefix); level `None` is
/// `data`.
pub fn tile_path(level: Option<u32>, n: u64, width: u64) -> String {
    let mut n_str = format!("{:03}", n % 1000);
    let mut m = n;
    while m >= 1000 {
        m /= 1000;
        n_str = format!("x{:03}/{n_str}", m % 1000);
    }
    let p = if width == 256 {
        String::new()
    } else {
        format!(".p/{width}")
    };
    let l = level.map_or("data".to_string(), |l| l.to_string());
    format!("8/{l}/{n_str}{p}")
}

/// Parses `8/<L|data>/<NNN…>[.p/<W>]`; only canonical paths (those `tile_path`
/// produces) are accepted.
fn parse_tile_path(s: &str) -> Option<(Option<u32>, u64, u64)> {
    let parts: Vec<&str> = s.split('/').collect();
    if parts.len() < 3 || parts[0] != "8" {
        return None;
    }
    let level = if parts[1] == "data" {
        None
    } else {
        Some(parts[1].parse::<u32>().ok()?)
    };
    let mut n_parts: Vec<&str> = parts[2..].to_vec();
    let mut width = 256u64;
    if n_parts.len() >= 2 && n_parts[n_parts.len() - 2].ends_with(".p") {
        width = n_parts.pop()?.parse().ok()?;
        if width == 0 || width >= 256 {
            return None;
        }
        let last = n_parts.pop()?;
        n_parts.push(last.strip_suffix(".p")?);
    }
    let mut n: u64 = 0;
    for (i, part) in n_parts.iter().enumerate() {
        let digits = if i + 1 < n_parts.len() {
            part.strip_prefix('x')?
        } else {
            part
        };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        n = n.checked_mul(1000)?.checked_add(digits.parse().ok()?)?;
    }
    (tile_path(level, n, width) == s).then_some((level, n, width))
}
