//! The scale scenario: what every recurring command costs as the
//! mirror grows to millions of published versions.
//!
//! `cargo bench --bench mirror -- --scenario scale [--sizes 200000,2000000]
//! [--dir DIR] [--runs N] [--skip verify,export,walk,prune] [--heavy 200000,2000000]
//! [--export-dir DIR]`
//!
//! **How the corpus is made.** A generated upstream ([`ScaleUpstream`], a
//! real HTTP server on loopback like the fake of the test suite, but holding
//! no file): version `i` of the corpus is a function of `i` — its module
//! (about ten versions each, a fifth of them pseudo-versions, some paths with
//! upper case), its tiny zip (the go.mod alone, stored, ~250 bytes), its
//! `.info`, its index entry (10 ms after the previous one) and its record in a
//! checksum database signed by a test key. Only the log's hashes and record
//! texts are held in memory (~200 bytes a version); zips are built when asked
//! for. The mirror is filled by gomirror itself — `gomirror sync` with
//! `include = ["*"]`, every version verified and published as in production
//! — in steps up to each size, and the commands are measured at each step.
//! Growing the corpus is the first sync of a full mirror of tiny modules, so
//! its rate is measured too.
//!
//! A tree of two million versions is nine million small files: put `--dir`
//! on a filesystem made for it (`docs/full-mirror.md`: XFS, or ext4 with
//! `inline_data` and 1 KiB inodes). The directory is kept between runs
//! (`scale-progress.json` says how far the corpus was grown), so a second
//! run resumes; remove it when done.
//!
//! At each size: the no-op sync, a small sync (1,000 new versions), `status`,
//! `verify --slice` (the first slice of a pass: a day's share of a 30-day
//! cycle), and — at every size, or only at the `--heavy` ones, since they
//! read the whole mirror — `prune --dry-run`, `verify --quick`, `verify`,
//! `export --dry-run --full` and `export --full` (written next to the
//! mirror or under `--export-dir`, then removed: ~4 KB a version), each
//! timed with its peak memory; the state database's size by table; the bytes
//! the small syncs wrote under `feed/` per new entry; and the first walk of
//! an index of that many entries into a fresh state database (CPU per
//! entry). Then the growth exponent of each figure between the first and
//! the last size.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use crate::support::goformat;
use crate::support::index::entry_line;
use crate::support::sumlog::{self, Log, NoteSigner};
use crate::{Measure, Options, Report, gomirror, measure, median};

/// Records in the log before the corpus's.
const FILLER: u64 = 1000;
/// 2024-01-01T00:00:00Z: the first index entry.
fn start_us() -> i64 {
    goformat::micros_of(2024, 1, 1, 0, 0, 0)
}
/// Index entries are this far apart.
const STEP_US: i64 = 10_000;

fn mix(mut x: u64) -> u64 {
    // splitmix64
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The generated corpus: version `i` is module `m`'s `k`-th.
pub struct Gen {
    /// The first version index of each module.
    module_start: Vec<u64>,
}

impl Gen {
    fn new(capacity: u64) -> Gen {
        let mut module_start = Vec::new();
        let mut at = 0u64;
        let mut m = 0u64;
        while at < capacity {
            module_start.push(at);
            at += 1 + mix(m) % 19;
            m += 1;
        }
        module_start.push(at);
        Gen { module_start }
    }

    fn versions_of(&self, m: u64) -> u64 {
        self.module_start[m as usize + 1] - self.module_start[m as usize]
    }

    /// (module, k) of version `i`.
    fn locate(&self, i: u64) -> (u64, u64) {
        let m = self.module_start.partition_point(|&s| s <= i) as u64 - 1;
        (m, i - self.module_start[m as usize])
    }

    fn path(m: u64) -> String {
        let owner = mix(m ^ 0xabcd) % 20011;
        if m.is_multiple_of(13) {
            format!("github.com/User{owner}/Mod-{m}")
        } else {
            format!("github.com/user{owner}/mod-{m}")
        }
    }

    /// The module number a path names.
    fn module_of(path: &str) -> Option<u64> {
        let last = path.rsplit('/').next()?;
        let digits = last.rsplit('-').next()?;
        let m: u64 = digits.parse().ok()?;
        (Gen::path(m) == path).then_some(m)
    }

    fn version(m: u64, k: u64) -> String {
        if m.is_multiple_of(5) {
            let t = start_us() - 86_400_000_000 * 400 + ((m * 7 + k) as i64) * 60_000_000;
            let rev = goformat::hex(&goformat::sha256(format!("{m}/{k}").as_bytes()));
            format!("v0.0.0-{}-{}", goformat::format_compact(t), &rev[..12])
        } else {
            let major = if m % 3 == 1 { 0 } else { 1 };
            format!("v{major}.{}.{}", k / 10, k % 10)
        }
    }

    fn go_mod(m: u64) -> String {
        format!("module {}\n", Gen::path(m))
    }

    fn zip_name(m: u64, k: u64) -> String {
        format!("{}@{}/go.mod", Gen::path(m), Gen::version(m, k))
    }

    fn zip(m: u64, k: u64) -> Vec<u8> {
        use std::io::Write;
        let mut zw = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(0o644);
        zw.start_file(Gen::zip_name(m, k), options).unwrap();
        zw.write_all(Gen::go_mod(m).as_bytes()).unwrap();
        zw.finish().unwrap().into_inner()
    }

    fn record(m: u64, k: u64) -> String {
        let go_mod = Gen::go_mod(m);
        let zip_h1 = goformat::h1_of_files(&[(Gen::zip_name(m, k), go_mod.clone().into_bytes())]);
        let mod_h1 = goformat::go_mod_h1(go_mod.as_bytes());
        sumlog::record_text(&Gen::path(m), &Gen::version(m, k), &zip_h1, &mod_h1)
    }

    fn info(m: u64, k: u64) -> String {
        format!(
            "{{\"Version\":\"{}\",\"Time\":\"{}\"}}",
            Gen::version(m, k),
            goformat::format_seconds(start_us() + (m * 31 + k) as i64 * 1_000_000)
        )
    }

    fn index_of(&self, path: &str, version: &str) -> Option<u64> {
        let m = Gen::module_of(path)?;
        if m as usize + 1 >= self.module_start.len() {
            return None;
        }
        (0..self.versions_of(m))
            .find(|&k| Gen::version(m, k) == version)
            .map(|k| self.module_start[m as usize] + k)
    }

    fn ts(i: u64) -> i64 {
        start_us() + i as i64 * STEP_US
    }
}

struct Served {
    corpus: Gen,
    /// Versions served: indexes `0..visible`.
    visible: AtomicU64,
    log: RwLock<Log>,
    signer: NoteSigner,
}

/// The generated upstream: proxy, index and checksum database on loopback.
pub struct ScaleUpstream {
    served: Arc<Served>,
    addr: SocketAddr,
    _thread: std::thread::JoinHandle<()>,
}

impl ScaleUpstream {
    fn start(corpus: Gen, visible: u64) -> ScaleUpstream {
        let served = Arc::new(Served {
            corpus,
            visible: AtomicU64::new(0),
            log: RwLock::new(Log::new(FILLER)),
            signer: NoteSigner::from_seed(
                "sum.gomirror.test",
                *b"gomirror fake upstream test key!",
            ),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let s = served.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let s = s.clone();
                    tokio::spawn(async move {
                        let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                            let s = s.clone();
                            async move { Ok::<_, Infallible>(handle(&s, req.uri())) }
                        });
                        let _ = http1::Builder::new()
                            .keep_alive(true)
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
            });
        });
        let up = ScaleUpstream {
            served,
            addr,
            _thread: thread,
        };
        up.grow_to(visible);
        up
    }

    /// Serves versions `0..n` (their index entries and records appear).
    fn grow_to(&self, n: u64) {
        let from = self.served.visible.load(Ordering::SeqCst);
        if n <= from {
            return;
        }
        // Record texts are computed in parallel, appended in order.
        let texts: Vec<String> = {
            let corpus = &self.served.corpus;
            let threads = 4u64;
            let chunk = (n - from).div_ceil(threads);
            std::thread::scope(|scope| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        scope.spawn(move || {
                            let lo = from + t * chunk;
                            let hi = (lo + chunk).min(n);
                            (lo..hi)
                                .map(|i| {
                                    let (m, k) = corpus.locate(i);
                                    Gen::record(m, k)
                                })
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().unwrap())
                    .collect()
            })
        };
        let mut log = self.served.log.write().unwrap();
        for t in texts {
            log.append(t);
        }
        self.served.visible.store(n, Ordering::SeqCst);
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn key(&self) -> String {
        self.served.signer.verifier_key()
    }
}

fn respond(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

fn handle(s: &Served, uri: &hyper::Uri) -> Response<Full<Bytes>> {
    let not_found = || respond(StatusCode::NOT_FOUND, "not found\n");
    let Some(path) = goformat::percent_decode(uri.path()) else {
        return not_found();
    };
    let visible = s.visible.load(Ordering::SeqCst);
    if path == "/index" {
        let mut since_us = i64::MIN;
        let mut limit = 2000usize;
        for pair in uri.query().unwrap_or("").split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = goformat::percent_decode(v)
                .unwrap_or_default()
                .replace(' ', "+");
            match k {
                "since" => {
                    if let Some(ns) = goformat::parse_rfc3339_nanos(&v) {
                        since_us = (ns + 999).div_euclid(1000) as i64;
                    }
                }
                "limit" => limit = v.parse::<usize>().unwrap_or(2000).clamp(1, 2000),
                _ => {}
            }
        }
        let first = if since_us <= start_us() {
            0
        } else {
            ((since_us - start_us()) as u64).div_ceil(STEP_US as u64)
        };
        let mut out = String::new();
        for i in first..visible.min(first + limit as u64) {
            let (m, k) = s.corpus.locate(i);
            out.push_str(&entry_line(&Gen::path(m), &Gen::version(m, k), Gen::ts(i)));
            out.push('\n');
        }
        return respond(StatusCode::OK, out);
    }
    if let Some(rest) = path.strip_prefix("/sumdb/") {
        let log = s.log.read().unwrap();
        let size = log.size();
        if rest == "latest" {
            let text = sumlog::tree_note_text(size, &log.tree_hash(size));
            return respond(StatusCode::OK, s.signer.sign(&text));
        }
        if let Some(key) = rest.strip_prefix("lookup/") {
            let Some((m, v)) = key.split_once('@') else {
                return not_found();
            };
            let (Some(module), Some(version)) = (goformat::unescape(m), goformat::unescape(v))
            else {
                return not_found();
            };
            let Some(i) = s
                .corpus
                .index_of(&module, &version)
                .filter(|&i| i < visible)
            else {
                return not_found();
            };
            let id = FILLER + i;
            let record = log.record_text(id).unwrap();
            let text = sumlog::tree_note_text(size, &log.tree_hash(size));
            return respond(
                StatusCode::OK,
                format!("{id}\n{record}\n{}", s.signer.sign(&text)),
            );
        }
        if let Some(tile) = rest.strip_prefix("tile/") {
            let Some((level, n, width)) = parse_tile(tile) else {
                return not_found();
            };
            let data = match level {
                None => log.data_tile(n, width, size),
                Some(l) => log.tile(l, n, width, size),
            };
            return match data {
                Some(d) => respond(StatusCode::OK, d),
                None => not_found(),
            };
        }
        return not_found();
    }
    let Some(rest) = path.strip_prefix("/proxy/") else {
        return not_found();
    };
    let Some((escaped, file)) = rest.split_once("/@v/") else {
        return not_found();
    };
    let Some(module) = goformat::unescape(escaped) else {
        return not_found();
    };
    let Some((escaped_version, ext)) = file.rsplit_once('.') else {
        return not_found();
    };
    let Some(version) = goformat::unescape(escaped_version) else {
        return not_found();
    };
    let Some(i) = s
        .corpus
        .index_of(&module, &version)
        .filter(|&i| i < visible)
    else {
        return not_found();
    };
    let (m, k) = s.corpus.locate(i);
    match ext {
        "info" => respond(StatusCode::OK, Gen::info(m, k)),
        "mod" => respond(StatusCode::OK, Gen::go_mod(m)),
        "zip" => respond(StatusCode::OK, Gen::zip(m, k)),
        _ => not_found(),
    }
}

/// `8/<L|data>/<NNN…>[.p/<W>]`, as `tile_path` writes it.
fn parse_tile(s: &str) -> Option<(Option<u32>, u64, u64)> {
    let mut parts: Vec<&str> = s.split('/').collect();
    if parts.len() < 3 || parts[0] != "8" {
        return None;
    }
    let level = match parts[1] {
        "data" => None,
        l => Some(l.parse().ok()?),
    };
    let mut width = 256;
    if parts.len() >= 4 && parts[parts.len() - 2].ends_with(".p") {
        width = parts.pop()?.parse().ok()?;
        let last = parts.pop()?.strip_suffix(".p")?;
        parts.push(last);
    }
    let mut n = 0u64;
    for p in &parts[2..] {
        n = n * 1000 + p.trim_start_matches('x').parse::<u64>().ok()?;
    }
    (crate::support::server::tile_path(level, n, width) == s).then_some((level, n, width))
}

// ---- the scenario ------------------------------------------------------------

/// `<dir>/<name>.toml`: state `<name>.db`, tree `<output>`.
fn config(dir: &Path, up: &ScaleUpstream, include: &str, name: &str, output: &str) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(
        &p,
        format!(
            "[upstream]\nproxy = \"{url}/proxy\"\nindex = \"{url}/index\"\n\
             [sumdb]\nkey = \"{key}\"\nurl = \"{url}/sumdb\"\n\
             [mirror]\noutput = \"{output}\"\nstate = \"{name}.db\"\nname = \"scale.example\"\n\
             [filter]\ninclude = [\"{include}\"]\n",
            url = up.url(),
            key = up.key(),
        ),
    )
    .unwrap();
    p
}

/// A measured command: its figures, and what it printed.
fn run(cfg: &Path, args: &[&str]) -> (Measure, String) {
    let (m, ok, out) = measure(gomirror(cfg, args));
    assert!(ok, "gomirror {args:?} failed:\n{out}");
    (m, out)
}

/// Files under `dir` with size and modification time.
fn listing(dir: &Path) -> BTreeMap<PathBuf, (u64, std::time::SystemTime)> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| {
            let md = e.metadata().ok()?;
            Some((e.path().to_path_buf(), (md.len(), md.modified().ok()?)))
        })
        .collect()
}

/// Bytes of the files that are new or changed between two listings.
fn written(
    before: &BTreeMap<PathBuf, (u64, std::time::SystemTime)>,
    after: &BTreeMap<PathBuf, (u64, std::time::SystemTime)>,
) -> u64 {
    after
        .iter()
        .filter(|(p, v)| before.get(*p) != Some(v))
        .map(|(_, (len, _))| *len)
        .sum()
}

/// The state database's bytes by table and index (`dbstat`).
fn state_breakdown(db: &Path) -> (u64, Vec<(String, u64)>) {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    let mut stmt = c
        .prepare("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")
        .unwrap();
    let rows: Vec<(String, u64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let total = std::fs::metadata(db).map(|m| m.len()).unwrap_or(0);
    (total, rows)
}

/// Forgets where the pass named `name` stood (`state::Cycle` keeps it in
/// `meta` as `<name>.<field>`): the next run is the first of a pass.
fn forget_pass(db: &Path, name: &str) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute("DELETE FROM meta WHERE key LIKE ?1", [format!("{name}.%")])
        .unwrap();
}

fn published(cfg: &Path) -> u64 {
    let out = gomirror(cfg, &["status", "--json", "--offline"])
        .output()
        .unwrap();
    assert!(out.status.success(), "status failed");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json");
    v["counts"]["in_tree"].as_u64().unwrap()
}

struct Step {
    size: u64,
    figures: BTreeMap<String, f64>,
}

pub fn scenario_scale(o: &Options, rep: &mut Report) {
    let sizes = o.sizes.clone().unwrap_or_else(|| {
        if o.small {
            vec![20_000, 50_000]
        } else {
            vec![200_000, 500_000, 1_000_000, 2_000_000]
        }
    });
    let skip = |what: &str| o.skip.iter().any(|s| s == what);
    let dir = o
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench/scale"));
    std::fs::create_dir_all(&dir).unwrap();
    let progress_file = dir.join("scale-progress.json");
    let resumed: u64 = std::fs::read_to_string(&progress_file)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["visible"].as_u64())
        .unwrap_or(0);
    let small_syncs = o.runs as u64;
    let capacity = sizes.iter().max().copied().unwrap_or(0)
        + (sizes.len() as u64 + 1) * small_syncs * 1000
        + resumed;
    let t = Instant::now();
    let up = ScaleUpstream::start(Gen::new(capacity), resumed);
    eprintln!(
        "scale: upstream of up to {capacity} versions on {} ({resumed} visible, {:.1}s)",
        up.url(),
        t.elapsed().as_secs_f64()
    );
    let cfg = config(&dir, &up, "*", "state", "mirror");
    if skip("measure") {
        // `--skip measure`: serve the corpus as grown so far and wait, for
        // commands run by hand (`gomirror -c DIR/state.toml …`).
        eprintln!(
            "scale: serving {resumed} versions at {}; config {}; stop with a signal",
            up.url(),
            cfg.display()
        );
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
    let save = |n: u64| {
        std::fs::write(&progress_file, format!("{{\"visible\": {n}}}\n")).unwrap();
    };
    rep.line(format!(
        "scale: a generated corpus of tiny modules (~10 versions each), mirrored in {}",
        dir.display()
    ));
    let mut steps: Vec<Step> = Vec::new();
    for &size in &sizes {
        let mut f: BTreeMap<String, f64> = BTreeMap::new();
        let visible = up.served.visible.load(Ordering::SeqCst);
        // A run stopped while growing left versions served but not yet
        // mirrored: the grow sync catches up with them first.
        let mirrored = if visible > 0 { published(&cfg) } else { 0 };
        if visible < size || mirrored < visible {
            up.grow_to(size);
            save(size.max(visible));
            let (m, out) = run(&cfg, &["sync"]);
            let grown = up.served.visible.load(Ordering::SeqCst);
            eprintln!(
                "scale: grew {mirrored} -> {grown} in {:.1}s: {}",
                m.secs,
                out.lines().last().unwrap_or("")
            );
            f.insert(
                "grow_versions".into(),
                grown.saturating_sub(mirrored) as f64,
            );
            f.insert("grow_seconds".into(), m.secs);
            f.insert("grow_cpu_seconds".into(), m.cpu_secs);
            f.insert("grow_rss_mb".into(), m.max_rss_kb as f64 / 1024.0);
        }
        let n = published(&cfg);
        f.insert("published".into(), n as f64);
        let timed = |name: &str, args: &[&str], runs: usize, f: &mut BTreeMap<String, f64>| {
            let mut secs = vec![];
            let mut cpu = vec![];
            let mut rss = vec![];
            let mut last = String::new();
            for _ in 0..runs {
                let (m, out) = run(&cfg, args);
                secs.push(m.secs);
                cpu.push(m.cpu_secs);
                rss.push(m.max_rss_kb as f64 / 1024.0);
                last = out;
            }
            f.insert(format!("{name}_seconds"), median(&secs));
            f.insert(format!("{name}_cpu_seconds"), median(&cpu));
            f.insert(format!("{name}_rss_mb"), median(&rss));
            eprintln!(
                "scale: {n} versions: {name} {:.3}s ({:.2} CPU s, {:.0} MB): {}",
                median(&secs),
                median(&cpu),
                median(&rss),
                last.lines().last().unwrap_or("")
            );
            last
        };
        let out = timed("noop_sync", &["sync"], o.runs.max(3), &mut f);
        assert!(out.contains("published 0 new versions"), "{out}");
        // Small syncs: 1,000 new versions each; what they write under feed/.
        let feed_dir = dir.join("mirror/feed");
        let mut small = vec![];
        let mut feed_bytes = 0u64;
        for _ in 0..small_syncs {
            let before = listing(&feed_dir);
            let v = up.served.visible.load(Ordering::SeqCst);
            up.grow_to(v + 1000);
            save(v + 1000);
            let (m, out) = run(&cfg, &["sync"]);
            assert!(out.contains("published 1000 new versions"), "{out}");
            small.push(m.secs);
            feed_bytes += written(&before, &listing(&feed_dir));
        }
        f.insert("small_sync_seconds".into(), median(&small));
        f.insert(
            "feed_bytes_per_new_entry".into(),
            feed_bytes as f64 / (small_syncs * 1000) as f64,
        );
        eprintln!(
            "scale: small syncs {small:?}; feed bytes written per new entry {:.0}",
            feed_bytes as f64 / (small_syncs * 1000) as f64
        );
        timed("status", &["status"], o.runs.max(3), &mut f);
        timed("status_json", &["status", "--json"], 1, &mut f);
        // A slice's size follows from the time since the last one: measure
        // the first of a pass (a day's share, and the tiles), the pass
        // forgotten first so every size measures the same share.
        if !skip("verify") {
            forget_pass(&dir.join("state.db"), "verify");
            timed("verify_slice", &["verify", "--slice"], 1, &mut f);
        }
        let (db_bytes, tables) = state_breakdown(&dir.join("state.db"));
        f.insert("state_bytes".into(), db_bytes as f64);
        f.insert("state_bytes_per_version".into(), db_bytes as f64 / n as f64);
        eprintln!(
            "scale: state database {db_bytes} bytes = {:.0} B per published version; by table: {}",
            db_bytes as f64 / n as f64,
            tables
                .iter()
                .take(12)
                .map(|(t, b)| format!("{t} {:.0}", *b as f64 / n as f64))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for (t, b) in &tables {
            f.insert(
                format!("state_table_{t}_bytes_per_version"),
                *b as f64 / n as f64,
            );
        }
        if !skip("walk") {
            // The first walk of an index of this many entries, nothing wanted.
            let walk_cfg = config(&dir, &up, "none.example/nothing", "walk", "walk-tree");
            let _ = std::fs::remove_file(dir.join("walk.db"));
            let entries = up.served.visible.load(Ordering::SeqCst);
            let (m, _) = run(&walk_cfg, &["sync"]);
            f.insert("walk_seconds".into(), m.secs);
            f.insert(
                "walk_cpu_us_per_entry".into(),
                m.cpu_secs * 1e6 / entries as f64,
            );
            f.insert("walk_rss_mb".into(), m.max_rss_kb as f64 / 1024.0);
            let walk_db = std::fs::metadata(dir.join("walk.db")).map_or(0, |m| m.len());
            f.insert(
                "walk_state_bytes_per_entry".into(),
                walk_db as f64 / entries as f64,
            );
            eprintln!(
                "scale: first walk of {entries} entries: {:.1}s, {:.1} CPU µs per entry, {:.0} MB, {:.0} B per entry",
                m.secs,
                m.cpu_secs * 1e6 / entries as f64,
                m.max_rss_kb as f64 / 1024.0,
                walk_db as f64 / entries as f64
            );
            for ext in ["db", "db-wal", "db-shm", "toml", "db.lock"] {
                let _ = std::fs::remove_file(dir.join(format!("walk.{ext}")));
            }
            let _ = std::fs::remove_dir_all(dir.join("walk-tree"));
        }
        // The whole-mirror commands, those with a target first: their time
        // grows with the mirror by nature, their memory must not.
        let heavy = o.heavy.as_ref().is_none_or(|h| h.contains(&size));
        let media = o
            .export_dir
            .clone()
            .unwrap_or_else(|| dir.clone())
            .join("export-tmp");
        let m = media.to_str().unwrap().to_string();
        if heavy && !skip("verify") {
            timed("verify", &["verify"], 1, &mut f);
        }
        if heavy && !skip("export") {
            let _ = std::fs::remove_dir_all(&media);
            timed("export_full", &["export", "--full", &m], 1, &mut f);
            std::fs::remove_dir_all(&media).unwrap();
        }
        if heavy && !skip("prune") {
            timed("prune_dry_run", &["prune", "--dry-run"], 1, &mut f);
        }
        if heavy && !skip("verify") {
            timed("verify_quick", &["verify", "--quick"], 1, &mut f);
        }
        if heavy && !skip("export") {
            let _ = std::fs::remove_dir_all(&media);
            timed(
                "export_dry_run_full",
                &["export", "--dry-run", "--full", &m],
                1,
                &mut f,
            );
            let _ = std::fs::remove_dir_all(&media);
        }
        rep.line(format!("  at {n} published versions:"));
        for (k, v) in &f {
            if !k.starts_with("state_table_") {
                rep.line(format!("    {k:<32} {v:.3}"));
            }
        }
        rep.value(&format!("scale_{size}"), serde_json::to_value(&f).unwrap());
        steps.push(Step { size, figures: f });
    }
    if let (Some(a), Some(b)) = (steps.first(), steps.last())
        && steps.len() > 1
    {
        let (na, nb) = (a.figures["published"], b.figures["published"]);
        rep.line(format!(
            "  growth exponents from {} to {} published versions (time ∝ size^e):",
            a.size, b.size
        ));
        let mut exps = serde_json::Map::new();
        for (k, va) in &a.figures {
            if !(k.ends_with("_seconds") || k.ends_with("_rss_mb") || k.ends_with("_bytes"))
                || k.starts_with("grow_")
            {
                continue;
            }
            let Some(vb) = b.figures.get(k) else { continue };
            if *va <= 0.0 || *vb <= 0.0 {
                continue;
            }
            let e = (vb / va).ln() / (nb / na).ln();
            rep.line(format!("    {k:<32} {e:.2}"));
            exps.insert(k.clone(), e.into());
        }
        rep.value("scale_exponents", exps.into());
    }
}
