//! Load while syncing: many real `go` clients pull through a real nginx from
//! the tree while a sync publishes into it.
//!
//! A mirror is served while it syncs (cron runs it under live traffic), so
//! every moment of publishing must look whole to a client: a version in
//! `@v/list` has all its files, the checksum database's `latest` is provable
//! from the tiles beside it, and a client that trusted an older `latest` can
//! prove the new one extends it. Each client here loops — read every
//! module's `@v/list`, `go mod download` all of it into an emptied module
//! cache (its checksum-database cache kept, so it checks consistency as the
//! head moves) — until the sync ends, then once more. No client may fail.
//!
//! Like `e2e.rs`, this never skips: without `go` or `nginx` it fails.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use crate::common::*;
use crate::e2e::{GoClient, Nginx, require};
use crate::support::{Corpus, FakeOptions, ModuleVersionSpec, http};

const CLIENTS: usize = 16;

/// One client's view of the mirror: every version each module's `@v/list`
/// names through nginx (a module not yet published has no list: 404).
fn listed_versions(nginx: &Nginx, modules: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for m in modules {
        let url = format!("{}/{}/@v/list", nginx.url(), escape(m));
        let r = http::get(&url).map_err(|e| format!("GET {url}: {e}"))?;
        match r.status {
            200 if r.complete => out.extend(
                r.text()
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(|v| (m.clone(), v.to_string())),
            ),
            404 => {}
            s => return Err(format!("GET {url}: status {s}, complete {}", r.complete)),
        }
    }
    Ok(out)
}

/// `go mod download -json` of `versions` into an empty module cache.
fn download(go: &GoClient, modcache: &Path, versions: &[(String, String)]) -> Result<(), String> {
    if modcache.exists() {
        // -modcacherw: the cache is writable, so it can simply be removed.
        std::fs::remove_dir_all(modcache)
            .map_err(|e| format!("cannot empty `{}`: {e}", modcache.display()))?;
    }
    let work = go.home.path().join("work");
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let mut args = vec!["mod".to_string(), "download".into(), "-json".into()];
    args.extend(versions.iter().map(|(p, v)| format!("{p}@{v}")));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = go
        .command(&work, &args)
        .env("GOMODCACHE", modcache)
        .env("GOFLAGS", "-modcacherw")
        .output()
        .map_err(|e| format!("cannot run go: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() || text.contains("\"Error\"") || text.contains("SECURITY") {
        return Err(format!("go mod download failed:\n{text}"));
    }
    for (p, v) in versions {
        let zip = modcache
            .join("cache/download")
            .join(version_file(p, v, "zip"));
        if !zip.exists() {
            return Err(format!("{p}@{v}: not in the module cache after download"));
        }
    }
    Ok(())
}

/// nginx's access log: requests by status, and distinct files served (200).
struct Served {
    requests: u64,
    by_status: BTreeMap<u16, u64>,
    files: BTreeSet<String>,
    bytes: u64,
    /// Requests from go (not this test's own list reads) that did not get a 200.
    go_errors: Vec<String>,
}

fn read_access_log(path: &Path) -> Served {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut s = Served {
        requests: 0,
        by_status: BTreeMap::new(),
        files: BTreeSet::new(),
        bytes: 0,
        go_errors: Vec::new(),
    };
    // combined: addr - user [time] "GET /path HTTP/1.1" status bytes "referer" "agent"
    for line in text.lines() {
        let parts: Vec<&str> = line.split('"').collect();
        if parts.len() < 6 {
            continue;
        }
        let path = parts[1].split(' ').nth(1).unwrap_or("").to_string();
        let mut fields = parts[2].split_whitespace();
        let status: u16 = fields.next().and_then(|f| f.parse().ok()).unwrap_or(0);
        let bytes: u64 = fields.next().and_then(|f| f.parse().ok()).unwrap_or(0);
        let agent = parts[5];
        s.requests += 1;
        *s.by_status.entry(status).or_default() += 1;
        s.bytes += bytes;
        if status == 200 {
            s.files.insert(path.clone());
        } else if agent != "gomirror-test" {
            s.go_errors.push(format!("{status} {path} ({agent})"));
        }
    }
    s
}

#[test]
fn go_clients_never_fail_while_a_sync_publishes_under_them() {
    require("go");
    require("nginx");
    let opts = FakeOptions {
        // A slow link, so the second sync publishes batch by batch, for seconds.
        rate_bytes_per_sec: 600_000,
        filler_records: 300,
        ..FakeOptions::default()
    };
    let m = Mirror::with(Corpus::generated(4, 2, 31), opts, Cfg::default());
    m.sync().expect(0);
    let first: Vec<(String, String)> = m.upstream.versions();
    for i in 0..4 {
        for v in ["v1.8.0", "v1.8.1"] {
            m.upstream.add(
                ModuleVersionSpec::new(&format!("example.com/gen/m{i}"), v)
                    .with_large_file("data.bin", 150_000),
            );
        }
        m.upstream.add(
            ModuleVersionSpec::new(&format!("example.com/load/n{i}"), "v0.1.0")
                .with_large_file("data.bin", 150_000),
        );
    }
    let all = m.upstream.versions();
    let mut modules: Vec<String> = all.iter().map(|(p, _)| p.clone()).collect();
    modules.sort();
    modules.dedup();

    let nginx = Nginx::serve(&m.out());
    let key = m.upstream.sumdb_key();
    let syncing = AtomicBool::new(true);
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let rounds_during_sync = AtomicU64::new(0);
    let rounds = AtomicU64::new(0);
    let downloads = AtomicU64::new(0);
    // Versions some client saw listed mid-sync beyond the first sync's: the
    // clients really did read a tree being published into.
    let seen_mid_sync: Mutex<BTreeSet<(String, String)>> = Mutex::new(BTreeSet::new());
    let started = Instant::now();

    let sync = Command::new(env!("CARGO_BIN_EXE_gomirror"))
        .arg("-c")
        .arg(m.config_path())
        .arg("sync")
        .env("GOMIRROR_TEST_RETRY_BASE_MS", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gomirror sync");

    let sync_out = std::thread::scope(|s| {
        for _ in 0..CLIENTS {
            s.spawn(|| {
                let go = GoClient::new(&nginx.url(), &key);
                let modcache = go.home.path().join("modcache");
                loop {
                    let during = syncing.load(Ordering::SeqCst);
                    let result = listed_versions(&nginx, &modules).and_then(|listed| {
                        if during {
                            let mut seen = seen_mid_sync.lock().unwrap();
                            seen.extend(listed.iter().filter(|v| !first.contains(v)).cloned());
                        }
                        download(&go, &modcache, &listed).map(|()| listed)
                    });
                    match result {
                        Ok(listed) => {
                            rounds.fetch_add(1, Ordering::SeqCst);
                            downloads.fetch_add(listed.len() as u64, Ordering::SeqCst);
                            if during {
                                rounds_during_sync.fetch_add(1, Ordering::SeqCst);
                            } else if listed.len() != all.len() {
                                failures.lock().unwrap().push(format!(
                                    "after the sync, the lists name {} versions, not {}",
                                    listed.len(),
                                    all.len()
                                ));
                            }
                        }
                        Err(e) => failures.lock().unwrap().push(e),
                    }
                    // One last round after the sync: the finished tree.
                    if !during {
                        break;
                    }
                }
            });
        }
        let out = sync.wait_with_output().expect("wait for gomirror sync");
        syncing.store(false, Ordering::SeqCst);
        out
    });
    let seconds = started.elapsed().as_secs_f64();

    assert!(
        sync_out.status.success(),
        "sync failed ({:?}):\n{}{}",
        sync_out.status,
        String::from_utf8_lossy(&sync_out.stdout),
        String::from_utf8_lossy(&sync_out.stderr)
    );
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} client rounds failed; the first:\n{}",
        failures.len(),
        failures[0]
    );
    let during = rounds_during_sync.load(Ordering::SeqCst);
    assert!(
        during >= CLIENTS as u64,
        "only {during} client rounds ran while the sync did: no load"
    );
    let seen = seen_mid_sync.into_inner().unwrap();
    assert!(
        !seen.is_empty(),
        "no client saw a version the sync published while it ran"
    );
    let log = read_access_log(&nginx.access_log());
    assert!(
        log.go_errors.is_empty(),
        "go got errors from nginx:\n{}",
        log.go_errors.join("\n")
    );
    eprintln!(
        "load: {CLIENTS} clients, {} rounds ({during} while syncing, {} new versions seen mid-sync), \
         {} versions downloaded in {seconds:.1}s; nginx: {} requests {:?}, {} distinct files, {} KiB",
        rounds.load(Ordering::SeqCst),
        seen.len(),
        downloads.load(Ordering::SeqCst),
        log.requests,
        log.by_status,
        log.files.len(),
        log.bytes / 1024
    );
    m.run(&["verify"]).expect(0);
}
