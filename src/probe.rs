//! `gomirror probe`: judges candidate upstreams on a sample of real versions.
//!
//! The sample comes from the state database: versions this mirror published,
//! whose `h1:` hashes it proved against the checksum database, so every byte
//! a candidate serves can be judged without trusting it (and without asking
//! the checksum database again). A mirror that has published nothing yet is
//! probed on its seeds' versions, each proved by a lookup first. The newest published versions are always in
//! the sample: whether a candidate has them says how fresh it is.
//!
//! Each candidate is asked for each sampled version's `.info` (its time is
//! the latency: a tiny body, so nearly the time to the first byte), `.mod`
//! and `.zip` (hashed; the zips' bytes over their transfer time are the
//! throughput), one request at a time, and once for
//! `sumdb/<name>/supported`. Candidates are probed side by side. Bounded:
//! at most three requests per sampled version per candidate (plus the HTTP
//! layer's retries of what is transient), one in flight per candidate, and
//! [`PROBE_DEADLINE`] per candidate: the deadline cancels the request in
//! flight (a zip trickling at 4 KiB/s keeps up the minimum rate and would
//! otherwise hold the probe for its whole transfer), and what was measured
//! until then is reported as incomplete.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Url;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::gomod::{dirhash, zip as modzip};
use crate::http::list::{Fallback, ListEntry, describe_list};
use crate::http::{self, FetchError, Upstream};
use crate::redact::redact_url;
use crate::report::{self, Reporter};
use crate::services::Upstreams;
use crate::settings::Settings;
use crate::state::{SampleVersion, State};
use crate::store::layout;

/// How long one candidate may take.
pub const PROBE_DEADLINE: Duration = Duration::from_secs(120);
/// How many of the newest published versions judge freshness.
const NEWEST: usize = 5;

#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
}

/// What one candidate did (the `--json` contract: `url`, `latency_ms`,
/// `throughput_mb_s`, `coverage`, `integrity_failures`, `errors`, `sumdb`).
#[derive(Clone, Debug, Serialize)]
pub struct ProbeResult {
    pub url: String,
    pub latency_ms: Option<Latency>,
    pub throughput_mb_s: Option<f64>,
    /// Share of the sample (versions) it served in full.
    pub coverage: f64,
    /// Share of the newest published versions it already serves.
    pub freshness: Option<f64>,
    /// Files whose hash differs from what the checksum database proved.
    pub integrity_failures: u64,
    /// Requests that failed otherwise than 404/410.
    pub errors: u64,
    /// Whether it serves `/sumdb/<name>/supported`.
    pub sumdb: bool,
    pub sample: u64,
    pub requests: u64,
    /// Stopped by the deadline before the whole sample was asked.
    pub incomplete: bool,
    /// A few messages from what went wrong.
    pub problems: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
}

pub struct ProbeOptions {
    pub json: bool,
    pub sample: usize,
    pub urls: Vec<String>,
}

/// Runs the probe; `Ok(true)` when some candidate served bytes that fail
/// verification (the exit code says so).
pub fn run(settings: &Settings, opts: &ProbeOptions, out: &Reporter) -> Result<bool, ProbeError> {
    let candidates: Vec<ListEntry> = if opts.urls.is_empty() {
        settings.proxy.clone()
    } else {
        let mut v = Vec::new();
        for u in &opts.urls {
            let url = Url::parse(u)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                .ok_or_else(|| ProbeError::Usage(format!("not an http(s) URL: {u:?}")))?;
            v.push(ListEntry {
                url,
                fallback: Fallback::AnyError,
            });
        }
        v
    };
    if candidates.is_empty() {
        return Err(ProbeError::Usage(
            "nothing to probe: upstream.proxy is \"off\" and no URL was given".into(),
        ));
    }
    if opts.sample == 0 || opts.sample > 1000 {
        return Err(ProbeError::Usage(
            "--sample must be between 1 and 1000".into(),
        ));
    }
    let want = opts.sample.saturating_sub(NEWEST).max(1);
    let (random, newest) = if settings.state.exists() {
        let state = State::open_read_only(&settings.state)?;
        state.probe_sample(want, NEWEST)?
    } else {
        (Vec::new(), Vec::new())
    };
    let upstreams = Upstreams::new(settings).map_err(|e| ProbeError::Usage(e.to_string()))?;
    let upstream = upstreams.http.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| ProbeError::Usage(format!("cannot start the runtime: {e}")))?;
    let (random, newest) = if random.is_empty() && newest.is_empty() {
        if settings.seeds.is_empty() {
            return Err(ProbeError::Usage(
                "nothing to sample: the mirror has published no versions yet and [filter].seed names no module (run `gomirror sync` first, or add seeds)"
                    .into(),
            ));
        }
        out.info(&format!(
            "the mirror has published nothing yet: sampling the seeds' versions through {}, proved against {}",
            upstreams
                .origin()
                .map_err(|e| ProbeError::Usage(e.to_string()))?
                .describe(),
            settings.sumdb.name
        ));
        runtime
            .block_on(sample_from_seeds(settings, &upstreams, want))
            .map_err(ProbeError::Usage)?
    } else {
        (random, newest)
    };
    let temp = tempfile::tempdir()
        .map_err(|e| ProbeError::Usage(format!("cannot make a temporary directory: {e}")))?;
    out.start("probing", Some(candidates.len() as u64));
    let name = settings.sumdb.name.clone();
    let mut results = runtime.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for (i, c) in candidates.iter().enumerate() {
            let (upstream, url, name) = (upstream.clone(), c.url.clone(), name.clone());
            let (random, newest) = (random.clone(), newest.clone());
            let dir = temp.path().join(i.to_string());
            set.spawn(async move {
                let sample = Sample {
                    random: &random,
                    newest: &newest,
                };
                (
                    i,
                    probe_one(&upstream, &url, &name, sample, &dir, PROBE_DEADLINE).await,
                )
            });
        }
        let mut got = Vec::new();
        while let Some(r) = set.join_next().await {
            if let Ok(r) = r {
                got.push(r);
                out.progress(got.len() as u64, "");
            }
        }
        got.sort_by_key(|(i, _)| *i);
        got.into_iter().map(|(_, r)| r).collect::<Vec<_>>()
    });
    out.finish();
    results.sort_by(rank);
    let liars = results.iter().any(|r| r.integrity_failures > 0);
    if opts.json {
        report::outln(serde_json::to_string_pretty(&results).expect("serializable"));
    } else {
        for line in render(&results) {
            report::outln(line);
        }
    }
    Ok(liars)
}

/// Best first: honest before lying, then coverage, freshness, fewer
/// errors, lower latency, higher throughput.
fn rank(a: &ProbeResult, b: &ProbeResult) -> std::cmp::Ordering {
    let key = |r: &ProbeResult| {
        (
            r.integrity_failures > 0,
            std::cmp::Reverse(ordered(r.coverage)),
            std::cmp::Reverse(ordered(r.freshness.unwrap_or(0.0))),
            r.errors,
            ordered(r.latency_ms.as_ref().map_or(f64::MAX, |l| l.p50)),
            std::cmp::Reverse(ordered(r.throughput_mb_s.unwrap_or(0.0))),
        )
    };
    key(a).cmp(&key(b))
}

/// A float as an orderable integer (the values here are finite and small).
fn ordered(x: f64) -> i64 {
    (x * 1_000_000.0) as i64
}

/// The `upstream.proxy` line the results suggest: honest candidates that
/// served something, best first, separated by `|` (every byte is verified
/// anyway, so any failure may fall through).
pub fn suggestion(results: &[ProbeResult]) -> Option<String> {
    let entries: Vec<ListEntry> = results
        .iter()
        .filter(|r| r.integrity_failures == 0 && r.coverage > 0.0)
        .filter_map(|r| {
            Url::parse(&r.url).ok().map(|url| ListEntry {
                url,
                fallback: Fallback::AnyError,
            })
        })
        .collect();
    if entries.is_empty() {
        return None;
    }
    let mut entries = entries;
    if let Some(l) = entries.last_mut() {
        l.fallback = Fallback::NotFound;
    }
    Some(format!("proxy = \"{}\"", describe_list(&entries)))
}

fn render(results: &[ProbeResult]) -> Vec<String> {
    let mut lines = vec![format!(
        "{:<40} {:>8} {:>8} {:>8} {:>9} {:>6} {:>9} {:>6} {:>5}",
        "upstream", "p50", "p95", "MB/s", "coverage", "fresh", "integrity", "errors", "sumdb"
    )];
    for r in results {
        let ms = |x: f64| format!("{x:.1}ms");
        lines.push(format!(
            "{:<40} {:>8} {:>8} {:>8} {:>9} {:>6} {:>9} {:>6} {:>5}{}",
            r.url,
            r.latency_ms.as_ref().map_or("-".into(), |l| ms(l.p50)),
            r.latency_ms.as_ref().map_or("-".into(), |l| ms(l.p95)),
            r.throughput_mb_s.map_or("-".into(), |t| if t < 0.1 {
                format!("{t:.3}")
            } else {
                format!("{t:.2}")
            }),
            format!("{:.0}%", r.coverage * 100.0),
            r.freshness
                .map_or("-".into(), |f| format!("{:.0}%", f * 100.0)),
            if r.integrity_failures == 0 {
                "ok".to_string()
            } else {
                format!("{} BAD", r.integrity_failures)
            },
            r.errors,
            if r.sumdb { "yes" } else { "no" },
            if r.incomplete {
                "  (stopped at the deadline)"
            } else {
                ""
            }
        ));
    }
    for r in results {
        for p in &r.problems {
            lines.push(format!("  {}: {p}", r.url));
        }
    }
    match suggestion(results) {
        Some(s) => lines.push(format!("suggested [upstream] line: {s}")),
        None => lines.push("no candidate served the sample correctly: nothing to suggest".into()),
    }
    lines
}

/// A sample for a mirror that has published nothing yet: the seeds' tagged
/// versions (from the configured proxy list), each proved by a lookup in the
/// checksum database (tiles kept in a temporary directory, not the tree).
async fn sample_from_seeds(
    settings: &Settings,
    upstreams: &Upstreams,
    n: usize,
) -> Result<(Vec<SampleVersion>, Vec<SampleVersion>), String> {
    let origin = upstreams.origin().map_err(|e| e.to_string())?;
    let mut all: Vec<(String, String)> = Vec::new();
    for module in &settings.seeds {
        let body = origin
            .list(module, crate::source::seeds::LIST_BYTES)
            .await
            .map_err(|e| format!("seed {module}: cannot list its versions: {e}"))?;
        let mut versions: Vec<String> = String::from_utf8_lossy(&body)
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|v| crate::gomod::check(module, v).is_ok())
            .map(str::to_string)
            .collect();
        versions.sort_by(|a, b| crate::gomod::semver::compare(a, b));
        all.extend(versions.into_iter().map(|v| (module.clone(), v)));
    }
    // The newest of each seed judge freshness; the rest are drawn at random.
    let mut newest: Vec<(String, String)> = Vec::new();
    for module in &settings.seeds {
        if let Some(last) = all.iter().rev().find(|(m, _)| m == module) {
            newest.push(last.clone());
        }
    }
    newest.truncate(NEWEST);
    let mut rest: Vec<(String, String)> = all.into_iter().filter(|x| !newest.contains(x)).collect();
    fastrand::shuffle(&mut rest);
    rest.truncate(n);
    let temp =
        tempfile::tempdir().map_err(|e| format!("cannot make a temporary directory: {e}"))?;
    let tiles: Arc<dyn crate::store::Store> = Arc::new(
        crate::store::LocalStore::open(temp.path())
            .map_err(|e| format!("cannot open a temporary tile store: {e}"))?,
    );
    let client = upstreams.log_client(settings, &tiles);
    let prove = async |list: Vec<(String, String)>| -> Result<Vec<SampleVersion>, String> {
        let mut out = Vec::new();
        for (path, version) in list {
            if settings.sumdb.skips(&path) {
                continue;
            }
            let l = client
                .lookup(&path, &version)
                .await
                .map_err(|e| format!("{path}@{version}: {e}"))?;
            out.push(SampleVersion {
                path,
                version,
                mod_h1: l.mod_h1,
                zip_h1: l.zip_h1,
            });
        }
        Ok(out)
    };
    let newest = prove(newest).await?;
    let rest = prove(rest).await?;
    Ok((rest, newest))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The versions a candidate is judged on.
#[derive(Clone, Copy)]
struct Sample<'a> {
    random: &'a [SampleVersion],
    newest: &'a [SampleVersion],
}

async fn probe_one(
    upstream: &Arc<Upstream>,
    base: &Url,
    sumdb_name: &str,
    sample: Sample<'_>,
    dir: &Path,
    deadline: Duration,
) -> ProbeResult {
    let Sample { random, newest } = sample;
    let started = Instant::now();
    let mut r = ProbeResult {
        url: redact_url(base).trim_end_matches('/').to_string(),
        latency_ms: None,
        throughput_mb_s: None,
        coverage: 0.0,
        freshness: None,
        integrity_failures: 0,
        errors: 0,
        sumdb: false,
        sample: (random.len() + newest.len()) as u64,
        requests: 0,
        incomplete: false,
        problems: Vec::new(),
    };
    let _ = std::fs::create_dir_all(dir);
    let mut latencies = Vec::new();
    let (mut zip_bytes, mut zip_secs) = (0u64, 0f64);
    let (mut served, mut fresh_served) = (0u64, 0u64);
    // Everything below runs under the deadline, which drops it wherever it
    // is (a request in flight included); what it measured so far stays.
    let probing = async {
        let note = |r: &mut ProbeResult, msg: String| {
            if r.problems.len() < 3 {
                r.problems.push(crate::shown::text(&msg));
            }
        };
        r.requests += 1;
        r.sumdb = upstream
            .get_bytes(
                &http::join(base, &format!("sumdb/{sumdb_name}/supported")),
                1 << 10,
            )
            .await
            .is_ok();
        let all = newest
            .iter()
            .map(|v| (v, true))
            .chain(random.iter().map(|v| (v, false)));
        for (v, is_new) in all {
            let id = format!("{}@{}", v.path, v.version);
            let url = |ext: &str| {
                layout::version_file(&v.path, &v.version, ext).map(|rel| http::join(base, &rel))
            };
            let (Ok(info_url), Ok(mod_url), Ok(zip_url)) = (url("info"), url("mod"), url("zip"))
            else {
                continue;
            };
            let fail = |r: &mut ProbeResult, e: &FetchError| {
                if !e.is_not_found() {
                    r.errors += 1;
                }
            };
            r.requests += 1;
            let t = Instant::now();
            match upstream.get_bytes(&info_url, 64 << 10).await {
                Ok(_) => latencies.push(t.elapsed().as_secs_f64() * 1000.0),
                Err(e) => {
                    fail(&mut r, &e);
                    if !e.is_not_found() {
                        note(&mut r, format!("{id}: {e}"));
                    }
                    continue;
                }
            }
            r.requests += 1;
            match upstream.get_bytes(&mod_url, modzip::MAX_GO_MOD).await {
                Ok(body) => {
                    let h1 = dirhash::go_mod_hash(Sha256::digest(&body).into());
                    if h1 != v.mod_h1 {
                        r.integrity_failures += 1;
                        note(
                            &mut r,
                            format!(
                                "{id}: .mod has {h1}, the checksum database says {}",
                                v.mod_h1
                            ),
                        );
                    }
                }
                Err(e) => {
                    fail(&mut r, &e);
                    continue;
                }
            }
            r.requests += 1;
            let dest = dir.join("probe.zip");
            let t = Instant::now();
            match upstream
                .get_to_file(&zip_url, modzip::MAX_ZIP_FILE, &dest)
                .await
            {
                Ok(d) => {
                    zip_bytes += d.size;
                    zip_secs += t.elapsed().as_secs_f64();
                    let (p, ver, path) = (v.path.clone(), v.version.clone(), dest.clone());
                    let h1 = tokio::task::spawn_blocking(move || {
                        modzip::check_and_hash_zip(&path, &p, &ver).map(|s| s.h1)
                    })
                    .await;
                    match h1 {
                        Ok(Ok(h1)) if h1 == v.zip_h1 => {}
                        Ok(Ok(h1)) => {
                            r.integrity_failures += 1;
                            note(
                                &mut r,
                                format!(
                                    "{id}: .zip has {h1}, the checksum database says {}",
                                    v.zip_h1
                                ),
                            );
                        }
                        Ok(Err(e)) => {
                            r.integrity_failures += 1;
                            note(&mut r, format!("{id}: invalid module zip: {e}"));
                        }
                        Err(e) => note(&mut r, format!("{id}: zip check crashed: {e}")),
                    }
                }
                Err(e) => {
                    fail(&mut r, &e);
                    continue;
                }
            }
            served += 1;
            if is_new {
                fresh_served += 1;
            }
        }
    };
    if tokio::time::timeout_at(tokio::time::Instant::from_std(started + deadline), probing)
        .await
        .is_err()
    {
        r.incomplete = true;
    }
    let _ = std::fs::remove_dir_all(dir);
    if r.sample > 0 {
        r.coverage = served as f64 / r.sample as f64;
    }
    if !newest.is_empty() {
        r.freshness = Some(fresh_served as f64 / newest.len() as f64);
    }
    if !latencies.is_empty() {
        latencies.sort_by(|a, b| a.total_cmp(b));
        r.latency_ms = Some(Latency {
            p50: percentile(&latencies, 0.5),
            p95: percentile(&latencies, 0.95),
        });
    }
    if zip_secs > 0.0 {
        r.throughput_mb_s = Some(zip_bytes as f64 / zip_secs / 1e6);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(url: &str, coverage: f64, integrity: u64, p50: f64) -> ProbeResult {
        ProbeResult {
            url: url.into(),
            latency_ms: Some(Latency { p50, p95: p50 }),
            throughput_mb_s: Some(1.0),
            coverage,
            freshness: Some(1.0),
            integrity_failures: integrity,
            errors: 0,
            sumdb: true,
            sample: 10,
            requests: 30,
            incomplete: false,
            problems: vec![],
        }
    }

    #[test]
    fn honest_full_and_fast_first_liars_last_and_never_suggested() {
        let mut r = vec![
            result("http://liar.example", 1.0, 2, 1.0),
            result("http://slow.example", 1.0, 0, 90.0),
            result("http://partial.example", 0.7, 0, 1.0),
            result("http://fast.example", 1.0, 0, 2.0),
        ];
        r.sort_by(rank);
        let order: Vec<&str> = r.iter().map(|r| r.url.as_str()).collect();
        assert_eq!(
            order,
            [
                "http://fast.example",
                "http://slow.example",
                "http://partial.example",
                "http://liar.example"
            ]
        );
        assert_eq!(
            suggestion(&r).unwrap(),
            "proxy = \"http://fast.example|http://slow.example|http://partial.example\""
        );
    }

    /// A candidate trickling its zip at 4 KiB/s keeps up the minimum rate:
    /// only the deadline stops it, and it stops the transfer in flight.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_deadline_stops_a_transfer_in_flight() {
        use crate::http::tests::{RawServer, client, reply};
        use std::io::Write;
        let server = RawServer::start(|path, stream| {
            if path.ends_with(".zip") {
                let head =
                    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1000000\r\n\r\n";
                stream.write_all(head.as_bytes()).ok();
                for _ in 0..250 {
                    std::thread::sleep(Duration::from_millis(100));
                    if stream.write_all(&[0; 400]).is_err() {
                        return;
                    }
                }
            } else if path.ends_with(".info") || path.ends_with(".mod") {
                reply(stream, 200, "", b"module example.com/m\n")
            } else {
                reply(stream, 404, "", b"")
            }
        });
        let up = Arc::new(client(Duration::from_secs(10), 1));
        let v = SampleVersion {
            path: "example.com/m".into(),
            version: "v1.0.0".into(),
            mod_h1: "h1:x".into(),
            zip_h1: "h1:y".into(),
        };
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let sample = Sample {
            random: std::slice::from_ref(&v),
            newest: &[],
        };
        let r = probe_one(
            &up,
            &server.url("/"),
            "sum.test",
            sample,
            &dir.path().join("c"),
            Duration::from_secs(2),
        )
        .await;
        let took = started.elapsed();
        assert!(r.incomplete, "{r:?}");
        assert!(took < Duration::from_secs(5), "took {took:?}");
        assert_eq!(server.hits("/example.com/m/@v/v1.0.0.zip"), 1);
    }

    #[test]
    fn percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.95), 95.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
