//! gomirror's benchmark: `cargo bench --bench mirror [-- OPTIONS]`.
//!
//! Everything runs against the fake upstream from the test suite (a real HTTP
//! server on loopback, started in this process), on the same corpus, in the
//! same run, so the comparisons are fair:
//!
//! * **corpus** — hundreds of modules, about a thousand versions, a few hundred
//!   MB, one large zip. Timed side by side, interleaved, several times:
//!   a fresh `gomirror sync`; `go mod download` of exactly the same versions
//!   into a fresh module cache (checksums verified against the fake checksum
//!   database); and a bare parallel download of the same zips with no
//!   verification at all (the transfer floor). Medians and ratios are printed.
//! * **index** — a 1,000,000-entry index where the filter keeps one module:
//!   the walk's time and peak memory, then the time of a no-op sync.
//! * **walk** — the first walk of a 400,000-entry index spread over two years,
//!   50 ms a page: its time against the one-page-at-a-time floor, peak
//!   memory, requests, every entry recorded once; then no-op syncs.
//! * **large** — a sync whose one zip is 400 MB: peak memory.
//! * **verify** — `gomirror verify` of the corpus's mirror against plain
//!   `sha256sum` of the same zips (MB/s of zip data).
//! * **audit** — `gomirror audit` of the corpus's mirror against a full-size
//!   vulnerability database (the real entries of golang.org/x/vulndb's
//!   `data/osv` when `GOMIRROR_BENCH_VULNDB_OSV` names that directory, else
//!   the fixtures plus 5,000 entries in their shape, a tenth of them naming
//!   corpus modules): the first audit (every module's latest go.mod read) and
//!   the next ones (from the state database's cache).
//! * **airgap** — the corpus's mirror exported in full (in 4.7 GB parts) and
//!   imported into a fresh far side with no upstream; then ten new versions
//!   synced, exported as a delta and imported: times, bundle sizes, peak
//!   memory of export and import.
//! * **site** — the mirror's pages after an incremental sync of 100
//!   versions into a 1,000,000-version mirror: time and files written
//!   (`benches/site.rs`).
//!
//! * **demand** — a 1 GB nginx access log (the shipped site's JSON format
//!   and `combined`, mostly hits, a few hundred misses, scanner noise) read
//!   by `gomirror requests` (what a sync's demand stage reads and records):
//!   time, MB/s and peak memory; then the sync that takes the misses.
//!
//! * **scale** (not in `all`) — a generated full mirror of tiny modules grown
//!   to millions of published versions; every recurring command measured at
//!   each size (`benches/scale.rs`; `--sizes`, `--dir`, `--skip`).
//!
//! Options: `--runs N` (default 3), `--scenario corpus|index|walk|large|verify|audit|airgap|demand|site|all|scale`,
//! `--small` (a quick, reduced corpus), `--json FILE` (write the figures),
//! `--rate-mbit N` (cap the upstream's zip bandwidth, like a network link;
//! by default everything runs at loopback speed).
//! Peak memory is the child's `VmHWM` (see `measure`). To profile the
//! gomirror runs, set `GOMIRROR_BENCH_WRAP="perf record -g -o sync.perf --"`.

#[path = "../tests/support/mod.rs"]
mod support;

mod scale;
#[path = "site.rs"]
mod site;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::goformat::escape;
use support::{Corpus, FakeOptions, FakeUpstream, ModuleVersionSpec};

struct Options {
    runs: usize,
    scenario: String,
    small: bool,
    json: Option<PathBuf>,
    /// Caps the fake upstream's zip bandwidth (Mbit/s), like a network link.
    rate_mbit: u64,
    /// `scale`: the sizes measured (published versions).
    sizes: Option<Vec<u64>>,
    /// `scale`: where the mirror is made (kept between runs).
    dir: Option<PathBuf>,
    /// `scale`: measurements left out (`verify`, `export`, `walk`, `prune`).
    skip: Vec<String>,
    /// `scale`: the sizes at which the whole-mirror commands (prune's plan,
    /// verify, export) run; all sizes when not given.
    heavy: Option<Vec<u64>>,
    /// `scale`: where `export --full` writes its bundle (default: beside
    /// the mirror), e.g. a tmpfs when the mirror's disk is short of room.
    export_dir: Option<PathBuf>,
}

fn parse_args() -> Options {
    let mut o = Options {
        runs: 3,
        scenario: "all".into(),
        small: false,
        json: None,
        rate_mbit: 0,
        sizes: None,
        dir: None,
        skip: Vec::new(),
        heavy: None,
        export_dir: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => o.runs = args.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--scenario" => o.scenario = args.next().expect("--scenario NAME"),
            "--small" => o.small = true,
            "--json" => o.json = args.next().map(PathBuf::from),
            "--rate-mbit" => {
                o.rate_mbit = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--rate-mbit N")
            }
            "--sizes" => {
                o.sizes = Some(
                    args.next()
                        .expect("--sizes N,N,…")
                        .split(',')
                        .map(|n| n.trim().replace('_', "").parse().expect("--sizes N,N,…"))
                        .collect(),
                )
            }
            "--heavy" => {
                o.heavy = Some(
                    args.next()
                        .expect("--heavy N,N,…")
                        .split(',')
                        .map(|n| n.trim().replace('_', "").parse().expect("--heavy N,N,…"))
                        .collect(),
                )
            }
            "--export-dir" => o.export_dir = args.next().map(PathBuf::from),
            "--dir" => o.dir = args.next().map(PathBuf::from),
            "--skip" => {
                o.skip = args
                    .next()
                    .expect("--skip WHAT,…")
                    .split(',')
                    .map(str::to_string)
                    .collect()
            }
            "--bench" => {} // passed by `cargo bench`
            other => panic!("unknown option {other:?}; see the module docs of benches/mirror.rs"),
        }
    }
    o
}

/// A process's wall time and peak resident memory.
#[derive(Clone, Copy, Debug)]
struct Measure {
    secs: f64,
    max_rss_kb: i64,
    /// User + system CPU seconds (last reading before exit).
    cpu_secs: f64,
}

/// Runs a command to completion, measuring wall time and peak RSS.
///
/// `ru_maxrss` from `wait4` cannot be used: Linux carries the high-water mark
/// of the address space before `exec` (the spawning process's, shared until
/// then) into the child's. `VmHWM` in `/proc/<pid>/status` belongs to the new
/// address space alone and only grows, so it is polled until the process ends.
fn measure(mut cmd: Command) -> (Measure, bool, String) {
    let start = Instant::now();
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    // Drain output on threads so the child never blocks on a full pipe.
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t1 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut so, &mut s);
        s
    });
    let t2 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut se, &mut s);
        s
    });
    let mut hwm_kb = 0i64;
    let mut cpu_secs = 0.0f64;
    let status = loop {
        if let Some(kb) = vm_hwm_kb(pid) {
            hwm_kb = hwm_kb.max(kb);
        }
        if let Some(c) = cpu_seconds(pid) {
            cpu_secs = cpu_secs.max(c);
        }
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let secs = start.elapsed().as_secs_f64();
    let out = format!("{}{}", t1.join().unwrap(), t2.join().unwrap());
    (
        Measure {
            secs,
            max_rss_kb: hwm_kb,
            cpu_secs,
        },
        status.success(),
        out,
    )
}

/// utime + stime of a live process, in seconds (assumes 100 ticks/s, Linux's USER_HZ).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn vm_hwm_kb(pid: u32) -> Option<i64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn config(dir: &Path, up: &FakeUpstream, include: &str, workers: usize) -> PathBuf {
    let p = dir.join("sync.toml");
    std::fs::write(
        &p,
        format!(
            "[upstream]\nproxy = \"{}\"\nindex = \"{}\"\n[sumdb]\nkey = \"{}\"\nurl = \"{}\"\n\
             [mirror]\noutput = \"mirror\"\nstate = \"state.db\"\nworkers = {workers}\n\
             [filter]\ninclude = [\"{include}\"]\n[prune]\nenabled = true\n",
            up.proxy_url(),
            up.index_url(),
            up.sumdb_key(),
            up.sumdb_url()
        ),
    )
    .unwrap();
    p
}

/// The gomirror command; `GOMIRROR_BENCH_WRAP` (e.g. `perf record -g -o
/// sync.perf --`) runs it under a profiler.
fn gomirror(config: &Path, args: &[&str]) -> Command {
    let wrap = std::env::var("GOMIRROR_BENCH_WRAP").unwrap_or_default();
    let mut words = wrap.split_whitespace();
    let mut c = match words.next() {
        Some(w) => {
            let mut c = Command::new(w);
            c.args(words).arg(env!("CARGO_BIN_EXE_gomirror"));
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_gomirror")),
    };
    c.arg("-c").arg(config).args(args);
    c
}

/// Deterministic, compressible Go-like text.
fn go_text(seed: u64, bytes: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "func",
        "return",
        "if",
        "err",
        "!=",
        "nil",
        "{",
        "}",
        "(",
        ")",
        "var",
        "const",
        "type",
        "struct",
        "interface",
        "for",
        "range",
        "package",
        "import",
        "string",
        "int",
        "byte",
        "ctx",
        "context.Context",
        "fmt.Errorf",
        "len",
        "make",
        "append",
        "map",
        "chan",
        "go",
        "defer",
        "select",
        "case",
        "switch",
        "default",
        ":=",
        "=",
        "+",
        "-",
        "*",
        "&",
        "[]byte",
        "error",
        "true",
        "false",
        "buf",
        "n",
        "i",
        "v",
        "s.mu.Lock()",
        "s.mu.Unlock()",
        "// comment about the code below",
        "value",
        "result",
        "options",
    ];
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = Vec::with_capacity(bytes + 64);
    let mut col = 0;
    while out.len() < bytes {
        let w = WORDS[rng.usize(..WORDS.len())];
        out.extend_from_slice(w.as_bytes());
        col += w.len() + 1;
        if col > 60 || rng.u8(..10) == 0 {
            out.push(b'\n');
            let indent = rng.usize(..4);
            out.extend(std::iter::repeat_n(b'\t', indent));
            col = 0;
        } else {
            out.push(b' ');
        }
        // An identifier now and then so the text is not too repetitive.
        if rng.u8(..4) == 0 {
            out.extend_from_slice(format!("x{:x} ", rng.u32(..)).as_bytes());
        }
    }
    out.truncate(bytes);
    out
}

/// Hundreds of modules, about a thousand versions, a few hundred MB, one large zip.
fn bench_corpus(small: bool) -> Corpus {
    let (modules, text_per_version, large) = if small {
        (40, 120_000, 20u64 << 20)
    } else {
        (300, 640_000, 80u64 << 20)
    };
    let mut corpus = Corpus::new();
    let mut rng = fastrand::Rng::with_seed(2026);
    for m in 0..modules {
        let path = format!("bench.example/mod{m:03}");
        let versions = 3 + rng.usize(..2); // 3 or 4
        for v in 0..versions {
            let version = format!("v1.{v}.0");
            let files = 2 + rng.usize(..6);
            let mut spec = ModuleVersionSpec::new(&path, &version);
            for f in 0..files {
                let size = text_per_version / files;
                spec = spec.with_file(
                    &format!("file{f}.go"),
                    go_text((m * 100 + v * 10 + f) as u64, size),
                );
            }
            corpus.push(spec);
        }
    }
    corpus.with_large_zip(large)
}

struct Report {
    lines: Vec<String>,
    json: serde_json::Map<String, serde_json::Value>,
}

impl Report {
    fn line(&mut self, s: String) {
        println!("{s}");
        self.lines.push(s);
    }
    fn value(&mut self, k: &str, v: serde_json::Value) {
        self.json.insert(k.into(), v);
    }
}

fn mb(kb: i64) -> f64 {
    kb as f64 / 1024.0
}

fn scenario_corpus(o: &Options, rep: &mut Report) {
    let t = Instant::now();
    let corpus = bench_corpus(o.small);
    let up = FakeUpstream::start(
        corpus,
        FakeOptions {
            filler_records: 200_000,
            rate_bytes_per_sec: o.rate_mbit * 1_000_000 / 8,
            ..FakeOptions::default()
        },
    );
    let versions = up.versions();
    let zip_bytes: u64 = versions
        .iter()
        .map(|(p, v)| {
            let rel = format!("{}/@v/{v}.zip", escape(p));
            support::http::get(&format!("{}/{rel}", up.proxy_url()))
                .map(|r| r.body.len() as u64)
                .unwrap_or(0)
        })
        .sum();
    let modules: std::collections::BTreeSet<&str> =
        versions.iter().map(|(p, _)| p.as_str()).collect();
    if o.rate_mbit > 0 {
        rep.line(format!("upstream link capped at {} Mbit/s", o.rate_mbit));
    }
    rep.line(format!(
        "corpus: {} modules, {} versions, {:.0} MB of zips (fake upstream ready in {:.1}s)",
        modules.len(),
        versions.len(),
        zip_bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    ));
    let go = which("go");
    let (mut sync_t, mut go_t, mut bare_t, mut sync_rss) = (vec![], vec![], vec![], vec![]);
    let (mut sync_cpu, mut go_cpu) = (vec![], vec![]);
    for run in 0..o.runs {
        // gomirror, fresh.
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &up, "*", 16);
        let (m, ok, out) = measure(gomirror(&cfg, &["sync"]));
        assert!(ok, "gomirror sync failed:\n{out}");
        sync_t.push(m.secs);
        sync_rss.push(m.max_rss_kb as f64);
        sync_cpu.push(m.cpu_secs);
        drop(dir);

        // go mod download, fresh module cache, same versions, checksums verified.
        if let Some(go) = &go {
            let home = tempfile::tempdir().unwrap();
            let mut c = Command::new(go);
            c.arg("mod").arg("download");
            for (p, v) in &versions {
                c.arg(format!("{p}@{v}"));
            }
            c.current_dir(home.path())
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("HOME", home.path())
                .env("GOPATH", home.path().join("gopath"))
                .env("GOCACHE", home.path().join("cache"))
                .env("GOFLAGS", "-modcacherw")
                .env("GOTOOLCHAIN", "local")
                .env("GOPROXY", up.proxy_url())
                .env("GOSUMDB", format!("{} {}", up.sumdb_key(), up.sumdb_url()));
            let (m, ok, out) = measure(c);
            assert!(
                ok,
                "go mod download failed:\n{}",
                &out[..out.len().min(4000)]
            );
            go_t.push(m.secs);
            go_cpu.push(m.cpu_secs);
        }

        // The transfer floor: the same zips, 16 at a time, no verification.
        let dir = tempfile::tempdir().unwrap();
        bare_t.push(bare_download(&up, &versions, dir.path()));
        eprintln!(
            "run {}: sync {:.2}s, go {}, bare {:.2}s",
            run + 1,
            sync_t[run],
            go_t.get(run)
                .map(|t| format!("{t:.2}s"))
                .unwrap_or("-".into()),
            bare_t[run]
        );
    }
    let (s, b) = (median(&sync_t), median(&bare_t));
    rep.line(format!(
        "fresh gomirror sync        median {s:6.2}s  ({:.2} CPU s, peak RSS {:.0} MB)",
        median(&sync_cpu),
        median(&sync_rss) / 1024.0
    ));
    rep.value("sync_cpu_seconds", median(&sync_cpu).into());
    rep.value("sync_seconds", s.into());
    rep.value("sync_rss_mb", (median(&sync_rss) / 1024.0).into());
    rep.line(format!("bare parallel download     median {b:6.2}s"));
    rep.value("bare_seconds", b.into());
    if !go_t.is_empty() {
        let g = median(&go_t);
        rep.line(format!(
            "go mod download            median {g:6.2}s  ({:.2} CPU s)",
            median(&go_cpu)
        ));
        rep.value("go_cpu_seconds", median(&go_cpu).into());
        rep.line(format!(
            "sync / go mod download     {:.2}   (target <= 0.50)",
            s / g
        ));
        rep.value("go_seconds", g.into());
        rep.value("sync_over_go", (s / g).into());
    } else {
        rep.line("go mod download            skipped: `go` is not installed".into());
    }
    rep.line(format!(
        "sync / bare download       {:.2}   (target <= 1.50)",
        s / b
    ));
    rep.value("sync_over_bare", (s / b).into());
}

fn bare_download(up: &FakeUpstream, versions: &[(String, String)], dir: &Path) -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let urls: Vec<String> = versions
        .iter()
        .map(|(p, v)| format!("{}/{}/@v/{v}.zip", up.proxy_url(), escape(p)))
        .collect();
    let dir = dir.to_path_buf();
    let start = Instant::now();
    rt.block_on(async move {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::new();
        let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
        let mut tasks = tokio::task::JoinSet::new();
        for (i, url) in urls.into_iter().enumerate() {
            let permit = sem.clone().acquire_owned().await.unwrap();
            let client = client.clone();
            let path = dir.join(format!("{i}.zip"));
            tasks.spawn(async move {
                let _p = permit;
                let mut resp = client.get(&url).send().await.unwrap();
                let mut f = std::io::BufWriter::with_capacity(
                    256 << 10,
                    std::fs::File::create(path).unwrap(),
                );
                while let Some(chunk) = resp.chunk().await.unwrap() {
                    std::io::Write::write_all(&mut f, &chunk).unwrap();
                }
                std::io::Write::flush(&mut f).unwrap();
            });
        }
        while tasks.join_next().await.is_some() {}
    });
    start.elapsed().as_secs_f64()
}

/// `gomirror verify` (full: re-inflates and re-hashes every zip, checks every
/// lookup from the tree's tiles) against plain `sha256sum` of the same zips.
fn scenario_verify(o: &Options, rep: &mut Report) {
    let up = FakeUpstream::start(bench_corpus(o.small), FakeOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &up, "*", 16);
    let (_, ok, out) = measure(gomirror(&cfg, &["sync"]));
    assert!(ok, "{out}");
    let zips: Vec<PathBuf> = walk_files(&dir.path().join("mirror"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "zip"))
        .collect();
    let bytes: u64 = zips
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    // The inflate-and-hash floor: h1: of the same zips in Go (archive/zip,
    // crypto/sha256), one goroutine per core.
    let h1floor = which("go").and_then(|go| {
        let bin = dir.path().join("h1floor");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/h1floor/main.go");
        let built = Command::new(go)
            .args(["build", "-o"])
            .arg(&bin)
            .arg(&src)
            .env("GOTOOLCHAIN", "local")
            .current_dir(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        built.then_some(bin)
    });
    let (mut ours, mut quick, mut sums, mut floors) = (vec![], vec![], vec![], vec![]);
    for _ in 0..o.runs {
        if let Some(bin) = &h1floor {
            let mut c = Command::new(bin);
            c.arg(dir.path().join("mirror"));
            let (m, ok, out) = measure(c);
            assert!(ok && out.starts_with(&format!("{} ", zips.len())), "{out}");
            floors.push(m.secs);
        }
        let (m, ok, out) = measure(gomirror(&cfg, &["verify"]));
        assert!(ok && out.contains("0 problems"), "{out}");
        ours.push(m.secs);
        let (m, ok, out) = measure(gomirror(&cfg, &["verify", "--quick", "-q"]));
        assert!(ok, "{out}");
        quick.push(m.secs);
        // sha256sum over the same files, as parallel as verify (xargs -P).
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg("find . -name '*.zip' -print0 | xargs -0 -P 2 -n 64 sha256sum > /dev/null")
            .current_dir(dir.path().join("mirror"));
        let (m, ok, _) = measure(c);
        assert!(ok);
        sums.push(m.secs);
    }
    let (v, q, s) = (median(&ours), median(&quick), median(&sums));
    let rate = |t: f64| bytes as f64 / 1e6 / t;
    rep.line(format!(
        "verify of {} zips ({:.0} MB): {v:.2}s = {:.0} MB/s of zip data; sha256sum of the same files: {s:.2}s = {:.0} MB/s; verify --quick: {q:.2}s",
        zips.len(),
        bytes as f64 / 1e6,
        rate(v),
        rate(s)
    ));
    rep.value("verify_mb_per_s", rate(v).into());
    if !floors.is_empty() {
        let f = median(&floors);
        rep.line(format!(
            "h1: of the same zips in Go (inflate and hash, one goroutine per core, benches/h1floor): {f:.2}s = {:.0} MB/s; verify / floor = {:.2}",
            rate(f),
            v / f
        ));
        rep.value("h1_floor_mb_per_s", rate(f).into());
        rep.value("verify_over_h1_floor", (v / f).into());
    } else {
        rep.line("h1: floor in Go: skipped, no `go` on PATH".to_string());
    }
    // What the checksum database adds to the tree.
    let sumdb = walk_files(&dir.path().join("mirror/sumdb"));
    let (lookups, tiles): (Vec<&PathBuf>, Vec<&PathBuf>) = sumdb
        .iter()
        .filter(|p| {
            p.to_string_lossy().contains("/lookup/") || p.to_string_lossy().contains("/tile/")
        })
        .partition(|p| p.to_string_lossy().contains("/lookup/"));
    let size = |v: &[&PathBuf]| {
        v.iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum::<u64>()
    };
    let per_k = 1000.0 / zips.len() as f64;
    rep.line(format!(
        "checksum data: {} lookups ({:.0} KB) and {} tiles ({:.0} KB) for {} versions = {:.0} lookups + {:.0} tiles, {:.0} KB per 1000 versions (records contiguous in the log)",
        lookups.len(),
        size(&lookups) as f64 / 1e3,
        tiles.len(),
        size(&tiles) as f64 / 1e3,
        zips.len(),
        lookups.len() as f64 * per_k,
        tiles.len() as f64 * per_k,
        (size(&lookups) + size(&tiles)) as f64 / 1e3 * per_k
    ));
    rep.value(
        "lookup_bytes_per_version",
        (size(&lookups) as f64 / zips.len() as f64).into(),
    );
    rep.value("tile_files", tiles.len().into());
    let db = std::fs::metadata(dir.path().join("state.db"))
        .map(|m| m.len())
        .unwrap_or(0);
    rep.line(format!(
        "state database: {:.1} MB for {} published versions = {:.0} bytes per published version",
        db as f64 / 1e6,
        zips.len(),
        db as f64 / zips.len() as f64
    ));
    rep.value(
        "state_db_bytes_per_published_version",
        (db as f64 / zips.len() as f64).into(),
    );
    rep.value("sha256sum_mb_per_s", rate(s).into());
    rep.value("verify_quick_seconds", q.into());
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                out.push(e.path());
            }
        }
    }
    out
}

fn scenario_index(o: &Options, rep: &mut Report) {
    let entries = if o.small { 100_000 } else { 1_000_000 };
    let corpus = Corpus::new()
        .with(ModuleVersionSpec::new("kept.example/only", "v1.0.0"))
        .with(ModuleVersionSpec::new("kept.example/only", "v1.1.0"));
    let up = FakeUpstream::start(
        corpus,
        FakeOptions {
            extra_index_entries: entries,
            ..FakeOptions::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &up, "kept.example/only", 16);
    let (m, ok, out) = measure(gomirror(&cfg, &["sync"]));
    assert!(ok, "sync failed:\n{out}");
    assert!(out.contains("published 2 new versions"), "{out}");
    rep.line(format!(
        "index walk of {entries} entries (1 module kept): {:.2}s, peak RSS {:.0} MB   (targets <= 15 s, <= 200 MB)",
        m.secs,
        mb(m.max_rss_kb)
    ));
    rep.value("index_entries", entries.into());
    rep.value("index_walk_seconds", m.secs.into());
    rep.value("index_walk_rss_mb", mb(m.max_rss_kb).into());
    let db = std::fs::metadata(dir.path().join("state.db"))
        .map(|m| m.len())
        .unwrap_or(0);
    rep.line(format!(
        "state database after the walk: {:.1} MB ({:.0} bytes per index entry)",
        db as f64 / 1e6,
        db as f64 / entries as f64
    ));
    rep.value(
        "state_db_bytes_per_entry",
        (db as f64 / entries as f64).into(),
    );
    let mut noop = vec![];
    for _ in 0..o.runs.max(3) {
        let (m, ok, out) = measure(gomirror(&cfg, &["sync"]));
        assert!(ok && out.contains("published 0 new versions"), "{out}");
        noop.push(m.secs);
    }
    let n = median(&noop);
    rep.line(format!(
        "no-op sync after it: median {n:.3}s   (target <= 1 s)"
    ));
    rep.value("noop_sync_seconds", n.into());
}

/// The first walk of a long index behind a round-trip time: 400,000 entries
/// over two years (denser as it goes, one day holding a tenth of them), every
/// page answered 50 ms late, eight wanted modules spread through the feed.
/// Against the one-page-at-a-time floor (pages × delay), with the peak memory,
/// the requests made, every entry recorded exactly once, and the no-op sync
/// that follows.
fn scenario_walk(o: &Options, rep: &mut Report) {
    let entries: u64 = if o.small { 100_000 } else { 400_000 };
    let delay = Duration::from_millis(50);
    let two_years = 2 * 365 * 86_400 * 1_000_000i64;
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let up = FakeUpstream::start(
        Corpus::new(),
        FakeOptions {
            extra_index_entries: entries as usize,
            index_spread: Some(support::index::Spread {
                start_us: now_us - two_years,
                span_us: two_years - 600_000_000,
            }),
            index_page_delay: delay,
            ..FakeOptions::default()
        },
    );
    // Wanted modules at eight places from the first page to the last.
    let mut kept = vec![];
    for j in 0..8u64 {
        let k = j * (entries - 1) / 7;
        let path = format!("kept.example/m{j}");
        up.add_at(
            ModuleVersionSpec::new(&path, "v1.0.0"),
            up.noise_timestamp(k) + 1,
        );
        kept.push(path);
    }
    let total = entries + kept.len() as u64;
    let floor_pages = total.div_ceil(1999);
    let floor = floor_pages as f64 * delay.as_secs_f64();

    let walk = |walkers: &str| {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &up, "kept.example", 16);
        let text = std::fs::read_to_string(&cfg).unwrap();
        let text = text.replacen("[sumdb]", &format!("index_walkers = {walkers}\n[sumdb]"), 1);
        std::fs::write(&cfg, text).unwrap();
        up.clear_request_log();
        let cmd = gomirror(&cfg, &["sync"]);
        let (m, ok, out) = measure(cmd);
        assert!(ok, "sync failed:\n{out}");
        assert!(out.contains("published 8 new versions"), "{out}");
        let requests = up.requests("/index");
        // Exactly once: every entry is a row of its own, the sampled noise
        // entries through the feed are among them, the cursor is the last one.
        let db = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
        let rows = db
            .query_row("SELECT count(*) FROM versions", [], |r| r.get::<_, i64>(0))
            .unwrap() as u64;
        assert_eq!(rows, total, "versions recorded");
        for j in 0..=20u64 {
            let k = j * (entries - 1) / 20;
            let (p, v, _) = support::index::noise_entry(k);
            let found: bool = db
                .query_row(
                    "SELECT count(*) FROM versions v JOIN modules m ON m.id = v.module_id WHERE m.path = ?1 AND v.version = ?2",
                    [&p, &v],
                    |r| r.get::<_, i64>(0),
                )
                .unwrap()
                == 1;
            assert!(found, "noise entry {k} ({p}@{v}) not recorded");
        }
        let cursor: String = db
            .query_row("SELECT since FROM cursor WHERE id = 1", [], |r| r.get(0))
            .unwrap();
        assert_eq!(Some(cursor), up.last_index_timestamp(), "cursor at the end");
        (m, requests, dir, cfg)
    };

    let mut secs = vec![];
    let mut rss = vec![];
    let mut reqs = vec![];
    let mut cpus = vec![];
    let mut last = None;
    for _ in 0..o.runs {
        let (m, requests, dir, cfg) = walk("8");
        secs.push(m.secs);
        cpus.push(m.cpu_secs);
        rss.push(m.max_rss_kb as f64);
        reqs.push(requests as f64);
        last = Some((dir, cfg));
    }
    let (t, r, q) = (median(&secs), median(&rss) / 1024.0, median(&reqs));
    let cpu = median(&cpus);
    rep.line(format!(
        "first walk of {total} entries over two years, {} ms a page, 8 walkers: sync {t:.2}s = {:.2} x the one-page-at-a-time floor ({floor_pages} pages x {} ms = {floor:.1}s), {cpu:.2} CPU s, peak RSS {r:.0} MB, {q:.0} index requests   (targets <= 0.3 x, <= 200 MB)",
        delay.as_millis(),
        t / floor,
        delay.as_millis()
    ));
    rep.value("walk_entries", total.into());
    rep.value("walk_seconds", t.into());
    rep.value("walk_floor_seconds", floor.into());
    rep.value("walk_over_floor", (t / floor).into());
    rep.value("walk_rss_mb", r.into());
    rep.value("walk_index_requests", q.into());

    let (seq, seq_requests, _d, _c) = walk("1");
    rep.line(format!(
        "the same walk one page at a time (upstream.index_walkers = 1): {:.2}s, {seq_requests} index requests, peak RSS {:.0} MB",
        seq.secs,
        mb(seq.max_rss_kb)
    ));
    rep.value("walk_sequential_seconds", seq.secs.into());

    let (_dir, cfg) = last.unwrap();
    let mut noop = vec![];
    let mut noop_requests = vec![];
    for _ in 0..o.runs.max(5) {
        up.clear_request_log();
        let (m, ok, out) = measure(gomirror(&cfg, &["sync"]));
        assert!(ok && out.contains("published 0 new versions"), "{out}");
        noop.push(m.secs);
        noop_requests.push(up.requests("/index"));
    }
    let n = median(&noop);
    rep.line(format!(
        "no-op sync after it: median {n:.3}s (one page, {} ms of it the page's delay), index requests per run {noop_requests:?}   (target < 0.5 s)",
        delay.as_millis()
    ));
    rep.value("walk_noop_sync_seconds", n.into());
}

fn scenario_large(o: &Options, rep: &mut Report) {
    let size = if o.small { 100u64 << 20 } else { 400u64 << 20 };
    let up = FakeUpstream::start(Corpus::new().with_large_zip(size), FakeOptions::default());
    let mut rss = vec![];
    let mut secs = vec![];
    for _ in 0..o.runs {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &up, "*", 16);
        let (m, ok, out) = measure(gomirror(&cfg, &["sync"]));
        assert!(ok, "sync failed:\n{out}");
        rss.push(m.max_rss_kb as f64);
        secs.push(m.secs);
    }
    let r = median(&rss) / 1024.0;
    rep.line(format!(
        "sync of one {} MB zip: {:.2}s, peak RSS {r:.0} MB   (target <= 200 MB)",
        size >> 20,
        median(&secs)
    ));
    rep.value("large_zip_mb", (size >> 20).into());
    rep.value("large_zip_rss_mb", r.into());
    rep.value("large_zip_seconds", median(&secs).into());
}

/// A far side: no upstream, the same checksum database key.
fn far_config(dir: &Path, up: &FakeUpstream) -> PathBuf {
    let p = dir.join("far.toml");
    std::fs::write(
        &p,
        format!(
            "[upstream]\nproxy = \"off\"\nindex = \"off\"\n[sumdb]\nkey = \"{}\"\n\
             [mirror]\noutput = \"far\"\nstate = \"far.db\"\nworkers = 16\n\
             [filter]\ninclude = [\"*\"]\n",
            up.sumdb_key()
        ),
    )
    .unwrap();
    p
}

fn dir_bytes(dir: &Path) -> u64 {
    walk_files(dir)
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum()
}

fn scenario_airgap(o: &Options, rep: &mut Report) {
    let corpus = bench_corpus(o.small);
    let up = FakeUpstream::start(
        corpus,
        FakeOptions {
            filler_records: 200_000,
            ..FakeOptions::default()
        },
    );
    let near = tempfile::tempdir().unwrap();
    let cfg = config(near.path(), &up, "*", 16);
    let (_, ok, out) = measure(gomirror(&cfg, &["sync"]));
    assert!(ok, "gomirror sync failed:\n{out}");
    let tree = dir_bytes(&near.path().join("mirror"));
    let bundle_of =
        |out: &str| PathBuf::from(out.lines().rev().find(|l| l.starts_with('/')).unwrap());
    let (mut ex_t, mut ex_rss, mut im_t, mut im_rss, mut size) =
        (vec![], vec![], vec![], vec![], 0);
    let media = tempfile::tempdir().unwrap();
    let mut last_full = PathBuf::new();
    for run in 0..o.runs {
        let media = tempfile::tempdir_in(media.path()).unwrap();
        let (m, ok, out) = measure(gomirror(
            &cfg,
            &[
                "export",
                "--full",
                "--max-size",
                "4.7GB",
                media.path().to_str().unwrap(),
            ],
        ));
        assert!(ok, "export failed:\n{out}");
        ex_t.push(m.secs);
        ex_rss.push(m.max_rss_kb as f64);
        let bundle = bundle_of(&out);
        size = dir_bytes(&bundle);
        let far = tempfile::tempdir().unwrap();
        let fcfg = far_config(far.path(), &up);
        let (m, ok, out) = measure(gomirror(&fcfg, &["import", bundle.to_str().unwrap()]));
        assert!(ok, "import failed:\n{out}");
        im_t.push(m.secs);
        im_rss.push(m.max_rss_kb as f64);
        last_full = media.keep().join(bundle.file_name().unwrap());
        eprintln!(
            "run {}: export {:.2}s, import {:.2}s",
            run + 1,
            ex_t[run],
            im_t[run]
        );
    }
    rep.line(format!(
        "export --full              median {:6.2}s  (peak RSS {:.0} MB): bundle {:.1} MB for a {:.1} MB tree",
        median(&ex_t),
        median(&ex_rss) / 1024.0,
        size as f64 / 1e6,
        tree as f64 / 1e6
    ));
    rep.line(format!(
        "import of it (fresh)       median {:6.2}s  (peak RSS {:.0} MB), {:.0} MB/s of bundle",
        median(&im_t),
        median(&im_rss) / 1024.0,
        size as f64 / 1e6 / median(&im_t)
    ));
    rep.value("export_full_seconds", median(&ex_t).into());
    rep.value("import_full_seconds", median(&im_t).into());
    rep.value("bundle_full_bytes", size.into());

    // A delta after the last full bundle: ten new versions, imported in order.
    let far = tempfile::tempdir().unwrap();
    let fcfg = far_config(far.path(), &up);
    let (_, ok, out) = measure(gomirror(&fcfg, &["import", last_full.to_str().unwrap()]));
    assert!(ok, "import failed:\n{out}");
    for i in 0..10 {
        up.add(
            ModuleVersionSpec::new(&format!("bench.example/mod{i:03}"), "v1.9.0")
                .with_file("new.go", go_text(9000 + i, 64_000)),
        );
    }
    let (_, ok, out) = measure(gomirror(&cfg, &["sync"]));
    assert!(ok, "second sync failed:\n{out}");
    let (ed, ok, out) = measure(gomirror(&cfg, &["export", media.path().to_str().unwrap()]));
    assert!(ok, "delta export failed:\n{out}");
    let delta = bundle_of(&out);
    let dsize = dir_bytes(&delta);
    let (id, ok, out) = measure(gomirror(&fcfg, &["import", delta.to_str().unwrap()]));
    assert!(ok, "delta import failed:\n{out}");
    rep.line(format!(
        "delta of 10 new versions   export {:.2}s, import {:.2}s, bundle {:.1} KB ({:.2}% of the full one)",
        ed.secs,
        id.secs,
        dsize as f64 / 1e3,
        dsize as f64 * 100.0 / size as f64
    ));
    rep.value("bundle_delta_bytes", dsize.into());
    rep.value("export_delta_seconds", ed.secs.into());
    rep.value("import_delta_seconds", id.secs.into());
}

/// A full-size vulnerability database: the real one's entries when
/// `GOMIRROR_BENCH_VULNDB_OSV` names golang.org/x/vulndb's `data/osv`, else
/// the fixtures and 5,000 entries made in their shape, every tenth naming a
/// module of the bench corpus with a range that covers some of its versions.
fn bench_vulndb() -> (support::vulndb::VulnDb, &'static str) {
    use support::vulndb::{OsvEntry, VulnDb};
    if let Some(dir) = std::env::var_os("GOMIRROR_BENCH_VULNDB_OSV") {
        return (VulnDb::from_osv_dir(Path::new(&dir)), "the real entries");
    }
    let mut db = VulnDb::fixtures();
    let template: serde_json::Value = serde_json::from_slice(
        &std::fs::read(support::vulndb::fixtures_dir().join("GO-2021-0113.json")).unwrap(),
    )
    .unwrap();
    for i in 0..5000u32 {
        let mut e = template.clone();
        let id = format!("GO-2030-{i:05}");
        e["id"] = serde_json::json!(id);
        let module = if i % 10 == 0 {
            format!("bench.example/mod{:03}", (i / 10) % 300)
        } else {
            format!("other{}.example/m{}", i % 97, i)
        };
        e["affected"][0]["package"]["name"] = serde_json::json!(module);
        e["affected"][0]["ranges"][0]["events"] =
            serde_json::json!([{"introduced": "0"}, {"fixed": format!("1.{}.0", 1 + i % 3)}]);
        e["affected"][0]["ecosystem_specific"]["imports"][0]["path"] =
            serde_json::json!(format!("{module}/pkg"));
        db.add(OsvEntry::from_bytes(serde_json::to_vec_pretty(&e).unwrap()));
    }
    (db, "the fixtures and 5,000 entries in their shape")
}

fn scenario_audit(o: &Options, rep: &mut Report) {
    let up = FakeUpstream::start(bench_corpus(o.small), FakeOptions::default());
    let (db, what) = bench_vulndb();
    let fake = support::vulndb::FakeVulnDb::start(&db);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &up, "*", 16);
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!("[vulndb]\nurl = \"{}\"\n", fake.url()));
    std::fs::write(&cfg, text).unwrap();
    let (sync, ok, out) = measure(gomirror(&cfg, &["sync"]));
    assert!(ok, "{out}");
    let (first, ok, out) = measure(gomirror(&cfg, &["audit", "-q"]));
    assert!(ok, "{out}");
    let mut warm = Vec::new();
    let mut summary = String::new();
    for _ in 0..o.runs.max(3) {
        let (m, ok, out) = measure(gomirror(&cfg, &["audit"]));
        assert!(ok, "{out}");
        summary = out.lines().last().unwrap_or("").to_string();
        warm.push(m.secs);
    }
    let warm = median(&warm);
    rep.line(format!(
        "audit: the corpus's mirror against {} entries ({what}): first audit {:.3} s (every latest go.mod read), then {:.3} s (median); sync with the database {:.1} s",
        db.entries.len(),
        first.secs,
        warm,
        sync.secs
    ));
    rep.line(format!("  {summary}"));
    rep.value(
        "audit",
        serde_json::json!({"entries": db.entries.len(), "first_s": first.secs, "warm_s": warm, "summary": summary}),
    );
}

/// Writes an access log of about `bytes`: 95% hits on module files and
/// lists of 50,000 modules, 4% other requests (checksum database, scanners'
/// 404s), 1% misses of the corpus's versions and of modules nobody has;
/// every other line in the JSON format the shipped site logs, the rest
/// `combined`. Returns the number of lines.
fn write_access_log(path: &Path, bytes: u64, corpus: &[(String, String)]) -> u64 {
    use std::io::Write;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let mut rng = fastrand::Rng::with_seed(28);
    let (mut written, mut lines) = (0u64, 0u64);
    let ua = "Go-http-client/1.1";
    while written < bytes {
        let roll = rng.u32(0..100);
        let (path, status) = if roll < 95 {
            let m = rng.u32(0..50_000);
            let ext = ["info", "mod", "zip"][rng.usize(0..3)];
            if rng.u32(0..10) == 0 {
                (format!("/github.com/org{}/repo{m}/@v/list", m % 97), 200)
            } else {
                (
                    format!("/github.com/org{}/repo{m}/@v/v1.{}.0.{ext}", m % 97, m % 13),
                    200,
                )
            }
        } else if roll < 97 {
            (
                format!(
                    "/sumdb/sum.golang.org/tile/8/0/x{:03}/{:03}",
                    rng.u32(0..100),
                    rng.u32(0..1000)
                ),
                200,
            )
        } else if roll < 99 {
            (
                format!("/wp-admin/setup-config.php?step={}", rng.u32(0..9)),
                404,
            )
        } else if rng.bool() && !corpus.is_empty() {
            let (p, v) = &corpus[rng.usize(0..corpus.len())];
            (format!("/{}/@v/{}.info", escape(p), escape(v)), 404)
        } else {
            (
                format!("/nothere.example/m{}/@v/list", rng.u32(0..500)),
                404,
            )
        };
        let line = if lines % 2 == 0 {
            format!(
                "{{\"time\":\"2026-12-06T10:{:02}:{:02}+00:00\",\"remote_addr\":\"10.1.{}.{}\",\"request\":\"GET {path} HTTP/1.1\",\"status\":{status},\"bytes\":{},\"request_time\":0.003,\"user_agent\":\"{ua}\"}}\n",
                lines % 60,
                (lines / 60) % 60,
                rng.u8(..),
                rng.u8(..),
                rng.u32(100..5_000_000)
            )
        } else {
            format!(
                "10.1.{}.{} - - [06/Dec/2026:10:{:02}:{:02} +0000] \"GET {path} HTTP/1.1\" {status} {} \"-\" \"{ua}\"\n",
                rng.u8(..),
                rng.u8(..),
                lines % 60,
                (lines / 60) % 60,
                rng.u32(100..5_000_000)
            )
        };
        w.write_all(line.as_bytes()).unwrap();
        written += line.len() as u64;
        lines += 1;
    }
    w.flush().unwrap();
    lines
}

fn scenario_demand(o: &Options, rep: &mut Report) {
    let size: u64 = if o.small { 100 << 20 } else { 1 << 30 };
    let up = FakeUpstream::start(Corpus::generated(20, 3, 28), FakeOptions::default());
    let logs = tempfile::tempdir().unwrap();
    let big = logs.path().join("gomirror.access.log");
    let t = Instant::now();
    let lines = write_access_log(&big, size, &up.versions());
    let written = t.elapsed().as_secs_f64();
    let empty = logs.path().join("empty.log");
    std::fs::write(&empty, "").unwrap();
    let demand_config = |dir: &Path, log: &Path| -> PathBuf {
        let p = dir.join("sync.toml");
        std::fs::write(
            &p,
            format!(
                "[upstream]\nproxy = \"{}\"\nindex = \"off\"\n[sumdb]\nkey = \"{}\"\nurl = \"{}\"\n\
                 [mirror]\noutput = \"mirror\"\nstate = \"state.db\"\n[filter]\ninclude = []\n\
                 [demand]\naccess_logs = [{:?}]\nmax_new_modules = 1000\n",
                up.proxy_url(),
                up.sumdb_key(),
                up.sumdb_url(),
                log
            ),
        )
        .unwrap();
        p
    };
    let (mut secs, mut rss, mut cpu) = (vec![], vec![], vec![]);
    let mut last_dir = None;
    for _ in 0..o.runs {
        let dir = tempfile::tempdir().unwrap();
        // A mirror whose state database exists, its log read to the end...
        let cfg = demand_config(dir.path(), &empty);
        let (_, ok, out) = measure(gomirror(&cfg, &["sync"]));
        assert!(ok, "sync failed:\n{out}");
        // ...then a log it has never read.
        let cfg = demand_config(dir.path(), &big);
        let (m, ok, out) = measure(gomirror(
            &cfg,
            &[
                "requests",
                "-o",
                dir.path().join("requests.txt").to_str().unwrap(),
            ],
        ));
        assert!(ok, "gomirror requests failed:\n{out}");
        secs.push(m.secs);
        rss.push(m.max_rss_kb as f64);
        cpu.push(m.cpu_secs);
        last_dir = Some(dir);
    }
    let dir = last_dir.unwrap();
    let requests = std::fs::read_to_string(dir.path().join("requests.txt")).unwrap();
    let entries = requests.lines().filter(|l| !l.starts_with('#')).count();
    let cfg = dir.path().join("sync.toml");
    let (sync, ok, out) = measure(gomirror(&cfg, &["sync"]));
    assert!(ok, "sync failed:\n{out}");
    let read = median(&secs);
    let mb_s = (size >> 20) as f64 / read;
    rep.line(format!(
        "demand: {} MB access log ({lines} lines, written in {written:.1}s) read and recorded in {read:.2}s ({mb_s:.0} MB/s, {:.2}s CPU), peak RSS {:.0} MB; {entries} requests not served; the sync taking them: {:.2}s",
        size >> 20,
        median(&cpu),
        median(&rss) / 1024.0,
        sync.secs
    ));
    rep.value("demand_log_mb", (size >> 20).into());
    rep.value("demand_read_seconds", read.into());
    rep.value("demand_read_mb_per_s", mb_s.into());
    rep.value("demand_read_rss_mb", (median(&rss) / 1024.0).into());
    rep.value("demand_sync_seconds", sync.secs.into());
}

fn which(tool: &str) -> Option<PathBuf> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .ok()?;
    let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !p.is_empty()).then(|| PathBuf::from(p))
}

fn main() {
    let o = parse_args();
    let mut rep = Report {
        lines: vec![],
        json: serde_json::Map::new(),
    };
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    rep.line(format!(
        "gomirror benchmark: {cores} cores, {} runs each, medians",
        o.runs
    ));
    let started = Instant::now();
    if matches!(o.scenario.as_str(), "all" | "corpus") {
        scenario_corpus(&o, &mut rep);
    }
    if matches!(o.scenario.as_str(), "all" | "index") {
        scenario_index(&o, &mut rep);
    }
    if matches!(o.scenario.as_str(), "all" | "walk") {
        scenario_walk(&o, &mut rep);
    }
    if matches!(o.scenario.as_str(), "all" | "large") {
        scenario_large(&o, &mut rep);
    }
    if matches!(o.scenario.as_str(), "all" | "verify") {
        scenario_verify(&o, &mut rep);
    }
    if matches!(o.scenario.as_str(), "all" | "audit") {
        scenario_audit(&o, &mut rep);
    }
    if matches!(o.scenario.as_str(), "all" | "airgap") {
        scenario_airgap(&o, &mut rep);
    }
    if matches!(o.scenario.as_str(), "all" | "demand") {
        scenario_demand(&o, &mut rep);
    }
    if matches!(o.scenario.as_str(), "all" | "site") {
        site::scenario_site(o.small, &mut rep);
    }
    // Not part of "all": it builds a mirror of millions of files.
    if o.scenario == "scale" {
        scale::scenario_scale(&o, &mut rep);
    }
    rep.line(format!(
        "(benchmark took {:.0?})",
        Duration::from_secs(started.elapsed().as_secs())
    ));
    if let Some(p) = &o.json {
        std::fs::write(p, serde_json::to_string_pretty(&rep.json).unwrap()).unwrap();
    }
}
