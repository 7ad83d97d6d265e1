//! End to end with the real tools: the tree gomirror writes, served by a real
//! nginx running `examples/production/nginx/gomirror.conf` as shipped (only port and root
//! substituted), used by the real `go` command with the upstream out of reach.
//!
//! These tests never skip: without `go` or `nginx` they fail and say how to
//! get them (`scripts/test` installs both).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::support::{Corpus, FakeOptions, ModuleVersionSpec, http};

/// Finds a required tool or fails the test with instructions.
pub fn require(tool: &str) -> PathBuf {
    let candidates = [
        format!("/usr/bin/{tool}"),
        format!("/usr/sbin/{tool}"),
        format!("/usr/local/bin/{tool}"),
    ];
    if let Ok(out) = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
    {
        let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !p.is_empty() {
            return PathBuf::from(p);
        }
    }
    for c in candidates {
        if Path::new(&c).exists() {
            return PathBuf::from(c);
        }
    }
    panic!(
        "the end-to-end tests need `{tool}` (Debian: apt-get install golang-go nginx); run scripts/test, which installs them"
    );
}

/// A real nginx serving a directory with the shipped configuration.
pub struct Nginx {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Nginx {
    pub fn serve(root: &Path) -> Nginx {
        Nginx::serve_as(root, None)
    }

    /// Serves `root` with nginx's workers running as `user` (as root only;
    /// otherwise they run as the caller, whoever `user` names).
    pub fn serve_as(root: &Path, user: Option<&str>) -> Nginx {
        let nginx = require("nginx");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let shipped = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/production/nginx/gomirror.conf"
        ))
        .unwrap();
        const LISTEN: &str = "listen 80;\n    listen [::]:80;";
        assert!(shipped.contains(LISTEN) && shipped.contains("root /srv/gomirror/mirror;"));
        const LOG: &str = "access_log /var/log/nginx/gomirror.access.log gomirror;";
        assert!(shipped.contains(LOG), "the shipped site logs for demand");
        let server = shipped
            .replace(LISTEN, &format!("listen 127.0.0.1:{port};"))
            .replace(
                "root /srv/gomirror/mirror;",
                &format!("root {};", root.display()),
            )
            // The site's own log (JSON), and the combined one the tests read.
            .replace(
                LOG,
                &format!(
                    "access_log {d}/gomirror.access.log gomirror;\n    access_log {d}/access.log;",
                    d = dir.path().display()
                ),
            );
        std::fs::write(dir.path().join("gomirror.conf"), server).unwrap();
        let d = dir.path().display();
        let user = match (unsafe_is_root(), user) {
            (true, Some(u)) => format!("user {u};\n"),
            (true, None) => "user root;\n".to_string(),
            (false, _) => String::new(),
        };
        let main = format!(
            "{user}daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  include {d}/gomirror.conf;\n}}\n"
        );
        std::fs::write(dir.path().join("nginx.conf"), main).unwrap();
        let child = Command::new(nginx)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start nginx");
        let n = Nginx {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        n
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// nginx's access log (default `combined` format, one line per request).
    pub fn access_log(&self) -> PathBuf {
        self._dir.path().join("access.log")
    }

    /// The site's own access log, in its JSON format (what `[demand]` reads).
    pub fn demand_log(&self) -> PathBuf {
        self._dir.path().join("gomirror.access.log")
    }

    /// Makes nginx reopen its logs (SIGUSR1 to this nginx, as logrotate's
    /// postrotate does) and waits until it has created `log` again.
    pub fn reopen_logs(&self, log: &Path) {
        let ok = Command::new("kill")
            .arg("-USR1")
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -USR1 nginx");
        // The master creates the file, then tells its workers: wait until
        // every worker holds the new file open, or a request answered now
        // may still be logged into the renamed one.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(log.exists() && self.workers_write_to(log)) {
            assert!(Instant::now() < deadline, "nginx did not reopen its logs");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether every worker process of this nginx has `log` open.
    fn workers_write_to(&self, log: &Path) -> bool {
        let pid = self.child.id();
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        let workers: Vec<&str> = children.split_whitespace().collect();
        !workers.is_empty()
            && workers.iter().all(|w| {
                std::fs::read_dir(format!("/proc/{w}/fd"))
                    .map(|fds| {
                        fds.flatten()
                            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t == log))
                    })
                    .unwrap_or(false)
            })
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // Stop it by its process id (SIGQUIT: graceful), then make sure.
        let _ = Command::new("kill")
            .arg("-QUIT")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unsafe_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `go` command with its own GOPATH and caches, talking only to `proxy`.
pub struct GoClient {
    pub home: tempfile::TempDir,
    pub proxy: String,
    pub sumdb: String,
}

impl GoClient {
    pub fn new(proxy: &str, sumdb_key: &str) -> GoClient {
        require("go");
        GoClient {
            home: tempfile::tempdir().unwrap(),
            proxy: proxy.to_string(),
            sumdb: sumdb_key.to_string(),
        }
    }

    pub fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let h = self.home.path();
        let mut cmd = Command::new(require("go"));
        cmd.args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", h)
            .env("GOPATH", h.join("gopath"))
            .env("GOCACHE", h.join("gocache"))
            .env("GOENV", "off")
            .env("GOFLAGS", "-mod=mod -modcacherw")
            .env("GO111MODULE", "on")
            .env("GOTOOLCHAIN", "local")
            .env("GOPROXY", &self.proxy)
            .env("GOSUMDB", &self.sumdb)
            .env("GONOSUMDB", "")
            .env("GONOSUMCHECK", "")
            .env("GOPRIVATE", "")
            .env("GONOPROXY", "")
            .env("GOINSECURE", "")
            .env("GOWORK", "off")
            .env("CGO_ENABLED", "0");
        cmd
    }

    /// Runs go in a scratch directory; returns (success, combined output).
    pub fn run(&self, args: &[&str]) -> (bool, String) {
        let dir = self.home.path().join("work");
        std::fs::create_dir_all(&dir).unwrap();
        self.run_in(&dir, args)
    }

    pub fn run_in(&self, dir: &Path, args: &[&str]) -> (bool, String) {
        let out = self.command(dir, args).output().expect("run go");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// `go mod download -json` of every version; panics with go's errors if any fails.
    #[track_caller]
    pub fn download_all(&self, versions: &[(String, String)]) {
        let args: Vec<String> = versions.iter().map(|(p, v)| format!("{p}@{v}")).collect();
        let mut cmd_args = vec!["mod", "download", "-json"];
        cmd_args.extend(args.iter().map(String::as_str));
        let (ok, out) = self.run(&cmd_args);
        assert!(
            ok && !out.contains("\"Error\""),
            "go mod download failed:\n{out}"
        );
        // Every version is now in the module cache, verified.
        for (p, v) in versions {
            let zip = self
                .home
                .path()
                .join("gopath/pkg/mod/cache/download")
                .join(version_file(p, v, "zip"));
            assert!(zip.exists(), "{p}@{v} not in the module cache");
        }
    }
}

fn e2e_corpus() -> Corpus {
    Corpus::generated(5, 3, 42)
        .with_upper_case()
        .with_major_v2()
        .with_incompatible()
        .with_pseudo_only()
}

/// What `go` answers for `-versions` and `@latest` of every module, through `proxy`.
fn go_queries(go: &GoClient, modules: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for m in modules {
        let (ok, versions) = go.run(&["list", "-m", "-versions", m]);
        assert!(ok, "go list -m -versions {m}:\n{versions}");
        let (ok, latest) = go.run(&[
            "list",
            "-m",
            "-f",
            "{{.Path}} {{.Version}}",
            &format!("{m}@latest"),
        ]);
        assert!(ok, "go list -m {m}@latest:\n{latest}");
        out.push(format!("{} | {}", versions.trim(), latest.trim()));
    }
    out
}

fn modules_of(versions: &[(String, String)]) -> Vec<String> {
    let mut m: Vec<String> = versions.iter().map(|(p, _)| p.clone()).collect();
    m.sort();
    m.dedup();
    m
}

#[test]
fn go_downloads_verifies_and_builds_from_the_mirror_alone() {
    let opts = FakeOptions {
        // Record ids past one level-1 tile, so clients need tiles at two levels.
        filler_records: 70_000,
        ..FakeOptions::default()
    };
    let m = Mirror::with(e2e_corpus(), opts, Cfg::default());
    m.sync().expect(0);
    let versions = m.upstream.versions();
    let modules = modules_of(&versions);

    // What go says when it talks to the upstream directly.
    let direct = GoClient::new(
        &m.upstream.proxy_url(),
        &format!("{} {}", m.upstream.sumdb_key(), m.upstream.sumdb_url()),
    );
    let expected_queries = go_queries(&direct, &modules);

    // The tree through file://, checked against the upstream's own checksum
    // database: every mirrored version downloads and verifies.
    let against_upstream = GoClient::new(
        &format!("file://{}", m.out().display()),
        &format!("{} {}", m.upstream.sumdb_key(), m.upstream.sumdb_url()),
    );
    against_upstream.download_all(&versions);

    let nginx = Nginx::serve(&m.out());
    switch_off(&m);

    // GOSUMDB names only the key: go must find the database through the proxy.
    let go = GoClient::new(&nginx.url(), &m.upstream.sumdb_key());
    go.download_all(&versions);
    assert_eq!(
        go_queries(&go, &modules),
        expected_queries,
        "go list answers differ from the upstream's"
    );

    // A program using an upper-case path, a /v2 module and a +incompatible version builds.
    let app = go.home.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("go.mod"),
        "module example.org/app\n\ngo 1.16\n\nrequire (\n\texample.com/Upper/Case v1.0.0\n\texample.com/major/v2 v2.1.0\n\texample.com/incompat v2.0.0+incompatible\n)\n",
    )
    .unwrap();
    std::fs::write(
        app.join("main.go"),
        "package main\n\nimport (\n\t\"fmt\"\n\n\tcasepkg \"example.com/Upper/Case\"\n\t\"example.com/incompat\"\n\tmajor \"example.com/major/v2\"\n)\n\nfunc main() {\n\tfmt.Println(casepkg.Version(), major.Version(), incompat.Version())\n}\n",
    )
    .unwrap();
    let (ok, out) = go.run_in(&app, &["build", "-o", "app", "."]);
    assert!(ok, "go build failed:\n{out}");
    let run = Command::new(app.join("app")).output().unwrap();
    let printed = String::from_utf8_lossy(&run.stdout);
    assert!(
        printed.contains("example.com/Upper/Case@v1.0.0")
            && printed.contains("example.com/major/v2@v2.1.0"),
        "{printed}"
    );
    let gosum = std::fs::read_to_string(app.join("go.sum")).unwrap();
    assert!(
        gosum.contains("example.com/incompat v2.0.0+incompatible h1:"),
        "{gosum}"
    );

    // nginx serves the right types and cache lifetimes, and hides internals.
    let name = m.upstream.sumdb_name();
    let r = http::get(&format!("{}/example.com/gen/m0/@v/list", nginx.url())).unwrap();
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    assert_eq!(r.header("cache-control"), Some("public, max-age=60"));
    let (p, v) = &versions[0];
    let r = http::get(&format!("{}/{}", nginx.url(), version_file(p, v, "zip"))).unwrap();
    assert_eq!(r.header("content-type"), Some("application/zip"));
    assert!(r.header("cache-control").unwrap().contains("immutable"));
    let r = http::get(&format!("{}/{}", nginx.url(), version_file(p, v, "info"))).unwrap();
    assert_eq!(r.header("content-type"), Some("application/json"));
    let r = http::get(&format!("{}/sumdb/{name}/latest", nginx.url())).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("public, max-age=60"));
    std::fs::write(m.out().join(".gomirror/tmp/partial.zip"), b"partial").unwrap();
    for hidden in ["/.gomirror/tmp/partial.zip", "/.gomirror/", "/sumdb/.x"] {
        let r = http::get(&format!("{}{hidden}", nginx.url())).unwrap();
        assert_eq!(r.status, 404, "{hidden} is served");
    }
    std::fs::remove_file(m.out().join(".gomirror/tmp/partial.zip")).unwrap();
    assert_upstream_untouched(&m);

    // A fresh client through GOPROXY=file:// verifies everything too.
    let file = GoClient::new(
        &format!("file://{}", m.out().display()),
        &m.upstream.sumdb_key(),
    );
    file.download_all(&versions);
    assert_upstream_untouched(&m);
}

#[test]
fn go_checks_consistency_across_syncs_through_the_mirror() {
    let opts = FakeOptions {
        filler_records: 300,
        ..FakeOptions::default()
    };
    let m = Mirror::with(Corpus::generated(3, 2, 5), opts, Cfg::default());
    m.sync().expect(0);
    let nginx = Nginx::serve(&m.out());
    let name = m.upstream.sumdb_name();
    let first = m.text(&format!("sumdb/{name}/latest")).unwrap();

    switch_off(&m);
    let go = GoClient::new(&nginx.url(), &m.upstream.sumdb_key());
    go.download_all(&m.upstream.versions());
    assert_upstream_untouched(&m);
    let client_latest = go
        .home
        .path()
        .join(format!("gopath/pkg/sumdb/{name}/latest"));
    let before = std::fs::read_to_string(&client_latest).expect("go saved the tree head it trusts");
    assert_eq!(before, first);

    // The upstream grows (the log too), gomirror syncs again.
    m.upstream.clear_faults();
    let added = [
        ModuleVersionSpec::new("example.com/gen/m0", "v1.7.0"),
        ModuleVersionSpec::new("example.com/later", "v0.1.0"),
        ModuleVersionSpec::new("example.com/later", "v0.2.0"),
    ];
    for a in &added {
        m.upstream.add(a.clone());
    }
    m.sync().expect(0).contains("published 3 new versions");
    let second = m.text(&format!("sumdb/{name}/latest")).unwrap();
    assert_ne!(first, second, "the log grew");

    // The same GOPATH (which trusts the older head) gets the new versions: go
    // proves the new head extends the old one with the mirror's tiles.
    switch_off(&m);
    let new: Vec<(String, String)> = added
        .iter()
        .map(|a| (a.path.clone(), a.version.clone()))
        .collect();
    go.download_all(&new);
    let after = std::fs::read_to_string(&client_latest).unwrap();
    assert_eq!(
        after, second,
        "go moved to the newer head after checking it"
    );
    // And the old versions still verify against the new head, from a clean cache.
    let fresh = GoClient::new(&nginx.url(), &m.upstream.sumdb_key());
    fresh.download_all(&m.upstream.versions());
    assert_upstream_untouched(&m);
}

#[test]
fn go_rejects_a_tampered_mirror() {
    let m = Mirror::new(Corpus::generated(2, 2, 8));
    m.sync().expect(0);
    let name = m.upstream.sumdb_name();
    let (p, v) = m.upstream.versions()[0].clone();
    let nginx = Nginx::serve(&m.out());
    switch_off(&m);

    // A tampered lookup: the record no longer matches the log.
    let lookup = m
        .out()
        .join(format!("sumdb/{name}/lookup/{}@{}", escape(&p), escape(&v)));
    let good = std::fs::read(&lookup).unwrap();
    let text = String::from_utf8(good.clone()).unwrap();
    let tampered = text.replacen(" h1:", " h1:X", 1);
    std::fs::write(&lookup, tampered).unwrap();
    let go = GoClient::new(&nginx.url(), &m.upstream.sumdb_key());
    let (ok, out) = go.run(&["mod", "download", "-json", &format!("{p}@{v}")]);
    assert!(
        !ok || out.contains("\"Error\""),
        "go accepted a tampered lookup:\n{out}"
    );
    assert!(out.contains("verifying"), "{out}");
    std::fs::write(&lookup, good).unwrap();

    // A tampered tile: the right edge of the tree at the served head's width
    // (the tree keeps every narrower width too, which this client never reads),
    // which authenticates the head.
    let tiles = files_under(&m.out().join(format!("sumdb/{name}/tile")));
    let head: u64 = m
        .text(&format!("sumdb/{name}/latest"))
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let edge = match head & 255 {
        0 => tiles.last().expect("tiles").clone(),
        w => crate::support::server::tile_path(Some(0), head >> 8, w),
    };
    let tile = m.out().join(format!("sumdb/{name}/tile/{edge}"));
    let mut bytes = std::fs::read(&tile).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&tile, &bytes).unwrap();
    let go = GoClient::new(&nginx.url(), &m.upstream.sumdb_key());
    let (ok, out) = go.run(&["mod", "download", "-json", &format!("{p}@{v}")]);
    assert!(
        !ok || out.contains("\"Error\""),
        "go accepted a tampered tile:\n{out}"
    );
    assert!(
        out.contains("inconsistent tile") || out.contains("SECURITY"),
        "{out}"
    );
    bytes[0] ^= 0xff;
    std::fs::write(&tile, &bytes).unwrap();

    // A zip replaced by another module's: go's checksum check refuses it.
    let (p2, v2) = m.upstream.versions()[1].clone();
    let zip = m.out().join(version_file(&p, &v, "zip"));
    let original = std::fs::read(&zip).unwrap();
    std::fs::copy(m.out().join(version_file(&p2, &v2, "zip")), &zip).unwrap();
    let go = GoClient::new(&nginx.url(), &m.upstream.sumdb_key());
    let (ok, out) = go.run(&["mod", "download", "-json", &format!("{p}@{v}")]);
    assert!(
        !ok || out.contains("\"Error\""),
        "go accepted a swapped zip:\n{out}"
    );
    std::fs::write(&zip, original).unwrap();

    // Restored, it verifies again: the failures above were the tampering.
    let go = GoClient::new(&nginx.url(), &m.upstream.sumdb_key());
    go.download_all(&[(p, v)]);
    assert_upstream_untouched(&m);
}

/// The machine's go as `(minor, "GOOS-GOARCH")`; fails the test (never skips)
/// when go is older than 1.21, the first that downloads toolchains as modules.
fn go_toolchain_support() -> (u32, String) {
    let out = Command::new(require("go"))
        .args(["env", "GOVERSION", "GOOS", "GOARCH"])
        .env("GOTOOLCHAIN", "local")
        .env("GOENV", "off")
        .output()
        .expect("run go env");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    let minor = lines
        .first()
        .and_then(|v| v.strip_prefix("go1."))
        .and_then(|v| v.split(['.', 'r', 'b']).next())
        .and_then(|m| m.parse::<u32>().ok());
    match (minor, lines.get(1), lines.get(2)) {
        (Some(minor), Some(goos), Some(goarch)) if minor >= 21 => {
            (minor, format!("{goos}-{goarch}"))
        }
        _ => panic!(
            "toolchain downloads need go 1.21 or later; this machine's go says {text:?} (Debian 12's golang-go is 1.19: install a current Go from go.dev/dl into PATH)"
        ),
    }
}

/// Peak resident memory (VmHWM, KiB) of a child, sampled until it exits.
fn peak_rss_kib(mut child: Child) -> (std::process::ExitStatus, u64) {
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(s) = std::fs::read_to_string(&status_file)
            && let Some(kb) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kb);
        }
        if let Some(status) = child.try_wait().expect("wait for gomirror") {
            return (status, peak);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn go_switches_to_a_newer_toolchain_downloaded_from_the_mirror_alone() {
    let (minor, platform) = go_toolchain_support();
    // Newer than the machine's go, so the go command must switch to it.
    let newer = format!("go1.{}.1", minor + 1);
    let other = if platform == "linux-arm64" {
        "linux-amd64"
    } else {
        "linux-arm64"
    };
    // One large toolchain (64 MiB stored): the sync streams it, memory stays flat.
    let big = 64 << 20;
    let corpus = Corpus::generated(1, 1, 9)
        .with(
            crate::support::corpus::toolchain(&newer, &platform)
                .with_large_file(&format!("pkg/tool/{}/big", platform.replace('-', "_")), big),
        )
        .with_toolchains(&newer, &[other]);
    let m = Mirror::with(corpus, FakeOptions::default(), Cfg::default());
    crate::no_index::feedless(&m, &format!("toolchains = [\"{platform}\"]"));
    let child = Command::new(env!("CARGO_BIN_EXE_gomirror"))
        .arg("-c")
        .arg(m.config_path())
        .arg("sync")
        .env("GOMIRROR_TEST_RETRY_BASE_MS", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start gomirror sync");
    let (status, peak_kib) = peak_rss_kib(child);
    eprintln!("gomirror sync: peak RSS {peak_kib} KiB while mirroring a {big}-byte toolchain zip");
    assert!(status.success(), "gomirror sync: {status}");
    assert!(
        peak_kib > 0 && peak_kib * 1024 < big,
        "gomirror's peak RSS {peak_kib} KiB is not below the {big}-byte zip it mirrored"
    );
    let version = format!("v0.0.1-{newer}.{platform}");
    m.assert_mirrored("golang.org/toolchain", &version);
    m.assert_absent("golang.org/toolchain", &format!("v0.0.1-{newer}.{other}"));

    let nginx = Nginx::serve(&m.out());
    switch_off(&m);

    // GOTOOLCHAIN names the version: go downloads it as a module through the
    // mirror, verifies it against the mirror's checksum database (GOSUMDB is
    // the key alone) and runs its bin/go.
    let go = GoClient::new(&nginx.url(), &m.upstream.sumdb_key());
    let dir = go.home.path().join("work");
    std::fs::create_dir_all(&dir).unwrap();
    let out = go
        .command(&dir, &["version"])
        .env("GOTOOLCHAIN", &newer)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let want = format!("go version {newer} {}", platform.replace('-', "/"));
    assert!(out.status.success() && text.contains(&want), "{text}");
    let cached = go
        .home
        .path()
        .join("gopath/pkg/mod/cache/download")
        .join(version_file("golang.org/toolchain", &version, "zip"));
    assert!(cached.exists(), "go did not download {version}");
    let name = m.upstream.sumdb_name();
    assert!(
        go.home
            .path()
            .join(format!("gopath/pkg/sumdb/{name}/latest"))
            .exists(),
        "go did not check the toolchain against the mirror's checksum database"
    );

    // A go.mod's toolchain line does the same with GOTOOLCHAIN=auto, from a clean cache.
    let fresh = GoClient::new(&nginx.url(), &m.upstream.sumdb_key());
    let app = fresh.home.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("go.mod"),
        format!("module example.org/app\n\ngo 1.21\n\ntoolchain {newer}\n"),
    )
    .unwrap();
    let out = fresh
        .command(&app, &["version"])
        .env("GOTOOLCHAIN", "auto")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.contains(&want), "{text}");

    // A toolchain zip swapped in the mirror is refused by go's checksum check.
    let zip = m
        .out()
        .join(version_file("golang.org/toolchain", &version, "zip"));
    std::fs::remove_file(&zip).unwrap();
    crate::support::zipbuild::build_zip(
        &crate::support::corpus::toolchain(&newer, &platform),
        &zip,
        true,
    )
    .unwrap();
    let tampered = GoClient::new(&nginx.url(), &m.upstream.sumdb_key());
    let (ok, out) = {
        let out = tampered
            .command(&dir, &["version"])
            .env("GOTOOLCHAIN", &newer)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert!(
        !ok && (out.contains("SECURITY") || out.contains("verifying")),
        "go ran a swapped toolchain:\n{out}"
    );
    assert_upstream_untouched(&m);
}
