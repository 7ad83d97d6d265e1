//! Issue 28: mirror what is asked for. A real nginx serving the tree writes
//! its real access log (the shipped site's JSON format); the real go command
//! gets a 404; one `gomirror sync` later the version is served and go
//! succeeds. Limits, screening and backoff bound what clients can ask; the
//! far side of an air gap asks back through `gomirror requests`; a module
//! cache is an upstream.

use std::io::{Read, Write};
use std::path::Path;

use crate::common::*;
use crate::e2e::{GoClient, Nginx};
use crate::no_index::feedless;
use crate::support::{Corpus, FakeOptions};

/// Points the mirror at no index feed, `filter` for `[filter]`'s include
/// line, and a `[demand]` section.
fn with_demand(m: &Mirror, filter: &str, demand: &str) {
    feedless(m, filter);
    let mut text = std::fs::read_to_string(m.config_path()).unwrap();
    text.push_str("\n[demand]\n");
    text.push_str(demand);
    std::fs::write(m.config_path(), text).unwrap();
}

fn logs(paths: &[&Path]) -> String {
    let list: Vec<String> = paths.iter().map(|p| format!("{:?}", p)).collect();
    format!("access_logs = [{}]\n", list.join(", "))
}

/// One raw HTTP/1.1 request (bytes as given, nothing escaped) to nginx;
/// returns the status code.
fn raw_request(port: u16, request_line: &[u8], headers: &[u8]) -> u16 {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(request_line).unwrap();
    s.write_all(b"\r\nHost: mirror.test\r\nConnection: close\r\n")
        .unwrap();
    s.write_all(headers).unwrap();
    s.write_all(b"\r\n").unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn get(port: u16, path: &str) -> u16 {
    raw_request(port, format!("GET {path} HTTP/1.1").as_bytes(), b"")
}

/// Waits until nginx has written `n` lines to `log` (it writes each line
/// as the request ends; the client may see the answer a moment before).
fn wait_lines(log: &Path, n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let have = std::fs::read(log)
            .map(|b| b.iter().filter(|c| **c == b'\n').count())
            .unwrap_or(0);
        if have >= n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} has {have} lines, not {n}",
            log.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn line_count(log: &Path) -> usize {
    std::fs::read(log)
        .map(|b| b.iter().filter(|c| **c == b'\n').count())
        .unwrap_or(0)
}

#[test]
fn a_miss_in_nginx_s_log_is_served_after_one_sync_and_go_then_succeeds() {
    let m = Mirror::with(Corpus::project(), FakeOptions::default(), Cfg::default());
    std::fs::create_dir_all(m.out()).unwrap();
    let nginx = Nginx::serve(&m.out());
    let log = nginx.demand_log();
    with_demand(&m, "include = []", &logs(&[&log]));
    // A mirror of nothing yet: no module in its tree.
    m.sync().expect(0);
    let files = m.tree_files();
    assert!(!files.iter().any(|f| f.contains("/@v/")), "{files:?}");

    // The real go command, through nginx: a version and a module's list.
    let go = GoClient::new(&nginx.url(), &m.upstream.sumdb_key());
    let (ok, out) = go.run(&["mod", "download", "-json", "example.com/proj/d@v0.2.0"]);
    assert!(!ok && out.contains("404"), "{out}");
    let (ok, out) = go.run(&["list", "-m", "-versions", "example.com/proj/c"]);
    assert!(!ok && out.contains("404"), "{out}");

    // Hostile clients, through the same nginx into the same log: a control
    // character in a module path, a path out of the root, a forged JSON
    // field in a header, a huge URI, a binary request line.
    let before = line_count(&log);
    assert_eq!(get(nginx.port, "/example.com/%1b%5b2J/@v/list"), 404);
    assert_eq!(get(nginx.port, "/evil.example/../../../etc/@v/list"), 400);
    raw_request(
        nginx.port,
        b"GET / HTTP/1.1",
        b"User-Agent: \", \"status\": 404, \"request\": \"GET /evil.example/m/@v/v1.0.0.zip HTTP/1.1\r\n",
    );
    get(
        nginx.port,
        &format!("/example.com/{}/@v/list", "a".repeat(9000)),
    );
    raw_request(nginx.port, b"GET /\xff\xfe\x1b[31m/@v/list HTTP/1.1", b"");
    wait_lines(&log, before + 5);

    let r = m.sync();
    r.expect(0)
        .contains("demand: ")
        .contains("requests for paths that are not a module version skipped");
    assert!(
        !r.all().contains('\x1b'),
        "control characters shown raw:\n{}",
        r.all()
    );
    // One sync: the version asked for, and the module's tagged versions.
    m.assert_mirrored("example.com/proj/d", "v0.2.0");
    m.assert_mirrored("example.com/proj/c", "v1.0.0");
    m.assert_mirrored("example.com/proj/c", "v1.2.0");
    m.assert_absent("example.com/proj/d", "v0.1.0");
    m.assert_absent("evil.example/m", "v1.0.0");
    assert_eq!(m.upstream.requests("/proxy/evil.example"), 0);

    // And go succeeds, with the upstream out of reach.
    switch_off(&m);
    let (ok, out) = go.run(&["mod", "download", "-json", "example.com/proj/d@v0.2.0"]);
    assert!(ok && !out.contains("\"Error\""), "{out}");
    let (ok, out) = go.run(&["list", "-m", "-versions", "example.com/proj/c"]);
    assert!(
        ok && out.contains("example.com/proj/c v1.0.0 v1.2.0"),
        "{out}"
    );
    assert_upstream_untouched(&m);

    let d = &m.status()["demand"];
    assert_eq!(d["wanted"], 2, "{d}");
    assert_eq!(d["served"], 2, "{d}");
    assert!(d["misses_seen"].as_u64().unwrap() >= 2, "{d}");
    m.run(&["status"]).expect(0).contains("demand: ");
}

#[test]
fn what_clients_ask_for_is_bounded_screened_and_backed_off() {
    let m = Mirror::with(
        Corpus::project(),
        FakeOptions::default(),
        Cfg {
            exclude: vec!["example.com/other".into()],
            ..Cfg::default()
        },
    );
    let log = m.dir.path().join("access.log");
    let miss = |path: &str, n: usize| -> String {
        format!(
            "10.0.0.1 - - [10/Oct/2024:13:55:36 +0000] \"GET {path} HTTP/1.1\" 404 0 \"-\" \"Go-http-client/1.1\"\n"
        )
        .repeat(n)
    };
    let text = [
        miss("/example.com/proj/a/@v/v1.0.0.info", 3),
        miss("/example.com/proj/b/@v/list", 2),
        miss("/example.com/proj/e/@v/v1.0.0.mod", 1),
        miss("/nothere.example/m/@v/v1.0.0.info", 1),
        miss("/example.com/other/x/@v/v1.0.0.zip", 5),
        // Answered: not a miss.
        "10.0.0.1 - - [10/Oct/2024:13:55:36 +0000] \"GET /example.com/proj/d/@v/list HTTP/1.1\" 200 7 \"-\" \"Go\"\n".into(),
        "not an access log line\n".into(),
    ]
    .concat();
    std::fs::write(&log, text).unwrap();
    with_demand(
        &m,
        "include = []",
        &format!("{}max_new_modules = 2\n", logs(&[&log])),
    );

    // A dry run says what the logs ask for and changes nothing.
    m.run(&["sync", "--dry-run"])
        .expect(0)
        .contains("demand example.com/proj/a@v1.0.0 (3 misses)")
        .contains("demand example.com/proj/b@latest (2 misses)");

    // Two modules new to the mirror per run, the most asked for first.
    let r = m.sync();
    r.expect(0)
        .contains("2 taken (2 new modules), 2 waiting")
        .contains("example.com/other/x@v1.0.0 (filter.exclude)")
        .contains("in neither the combined nor the JSON log format");
    m.assert_mirrored("example.com/proj/a", "v1.0.0");
    m.assert_mirrored("example.com/proj/b", "v1.0.0");
    m.assert_mirrored("example.com/proj/b", "v1.1.0");
    m.assert_absent("example.com/proj/e", "v1.0.0");
    m.assert_absent("example.com/proj/d", "v0.1.0");
    assert_eq!(m.upstream.requests("/proxy/example.com/other"), 0);
    assert_eq!(m.upstream.requests("/proxy/nothere.example"), 0);

    // The next run takes the rest; the upstream lacks one of them.
    m.sync().expect(0);
    m.assert_mirrored("example.com/proj/e", "v1.0.0");
    let asked = m.upstream.requests("/proxy/nothere.example");
    assert!(asked > 0);
    // Not asked again for a while, however often the sync runs.
    m.sync().expect(0);
    m.sync().expect(0);
    assert_eq!(m.upstream.requests("/proxy/nothere.example"), asked);

    let d = &m.status()["demand"];
    assert_eq!(
        (
            d["wanted"].as_u64(),
            d["served"].as_u64(),
            d["unavailable"].as_u64()
        ),
        (Some(3), Some(3), Some(1)),
        "{d}"
    );
    assert!(d["next_retry"].is_string(), "{d}");
    // What is not served yet: the one the upstream lacks (the excluded one
    // was never taken in).
    let out = m.run(&["requests"]);
    out.expect(0);
    let entries: Vec<&str> = out.stdout.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(entries.len(), 1, "{}", out.stdout);
    assert!(
        entries[0].starts_with("nothere.example/m@v1.0.0 # 1 misses"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_rotated_nginx_log_loses_no_miss_between_two_syncs() {
    let m = Mirror::with(Corpus::project(), FakeOptions::default(), Cfg::default());
    std::fs::create_dir_all(m.out()).unwrap();
    let nginx = Nginx::serve(&m.out());
    let log = nginx.demand_log();
    with_demand(&m, "include = []", &logs(&[&log]));
    m.sync().expect(0);
    assert_eq!(get(nginx.port, "/example.com/proj/d/@v/v0.1.0.info"), 404);
    wait_lines(&log, 1);
    m.sync().expect(0);
    m.assert_mirrored("example.com/proj/d", "v0.1.0");

    // A miss, then logrotate's `create`: renamed (nginx writes on into the
    // old file until told), a miss, reopened, a miss.
    assert_eq!(get(nginx.port, "/example.com/proj/d/@v/v0.2.0.info"), 404);
    wait_lines(&log, 2);
    let rotated = log.with_file_name("gomirror.access.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    assert_eq!(get(nginx.port, "/example.com/proj/c/@v/v1.0.0.zip"), 404);
    wait_lines(&rotated, 3);
    nginx.reopen_logs(&log);
    assert_eq!(get(nginx.port, "/example.com/proj/e/@v/v1.0.0.mod"), 404);
    wait_lines(&log, 1);

    m.sync().expect(0);
    for (p, v) in [
        ("example.com/proj/d", "v0.2.0"),
        ("example.com/proj/c", "v1.0.0"),
        ("example.com/proj/e", "v1.0.0"),
    ] {
        m.assert_mirrored(p, v);
    }
    // Nothing counted twice: each of the four was missed once.
    let d = &m.status()["demand"];
    assert_eq!(d["misses_seen"], 4, "{d}");
}

/// The whole loop across an air gap: a far-side client's miss → `gomirror
/// requests` → the connected side's from_files → sync → export → import →
/// go succeeds on the far side. With the shipped examples/airgap configs.
#[test]
fn the_far_side_asks_back_and_gets_what_it_asked_for() {
    let m = Mirror::with(Corpus::project(), FakeOptions::default(), Cfg::default());
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/airgap");
    let shipped = std::fs::read_to_string(format!("{dir}/sync.toml")).unwrap();
    assert!(shipped.contains("\"requests/*.txt\""), "{shipped}");
    let config: String = shipped
        .lines()
        .map(|line| {
            if line.starts_with("proxy = ") {
                format!("proxy = {:?}\n", m.upstream.proxy_url())
            } else if line.starts_with("key = ") {
                format!("key = {:?}\n", m.upstream.sumdb_key())
            } else if line.starts_with("url = ") {
                format!("url = {:?}\n", m.upstream.sumdb_url())
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    std::fs::write(m.config_path(), config).unwrap();
    std::fs::write(
        m.dir.path().join("tools.txt"),
        "example.com/other/x@v1.0.0\n",
    )
    .unwrap();
    m.sync().expect(0);
    let media = tempfile::tempdir().unwrap();
    let first = crate::airgap::export(&m, media.path(), &[]);

    // The far side, as shipped: no upstream; its nginx logs for demand.
    let far = tempfile::tempdir().unwrap();
    let far_out = far.path().join("mirror");
    std::fs::create_dir_all(&far_out).unwrap();
    let nginx = Nginx::serve(&far_out);
    let shipped = std::fs::read_to_string(format!("{dir}/far-side.toml")).unwrap();
    let log_line = "access_logs = [\"/var/log/nginx/gomirror.access.log\"]";
    assert!(shipped.contains(log_line), "{shipped}");
    let far_config: String = shipped
        .lines()
        .map(|l| {
            if l.starts_with("key = ") {
                format!("key = {:?}\n", m.upstream.sumdb_key())
            } else if l.starts_with(log_line) {
                format!("access_logs = [{:?}]\n", nginx.demand_log())
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let far_toml = far.path().join("far-side.toml");
    std::fs::write(&far_toml, far_config).unwrap();
    gomirror(&far_toml, &["import", first.to_str().unwrap()]).expect(0);

    // A far-side developer asks for what the far side does not have.
    let go = GoClient::new(&nginx.url(), &m.upstream.sumdb_key());
    let latest = ["list", "-m", "example.com/proj/c@latest"];
    let (ok, out) = go.run(&latest);
    assert!(!ok, "{out}");
    let (ok, out) = go.run(&["mod", "download", "-json", "example.com/proj/a@v1.0.0"]);
    assert!(!ok, "{out}");
    wait_lines(&nginx.demand_log(), 2);

    // It asks back: a module list for the connected side's from_files.
    let outbox = tempfile::tempdir().unwrap();
    let requests = outbox.path().join("far.txt");
    gomirror(&far_toml, &["requests", "-o", requests.to_str().unwrap()])
        .expect(0)
        .contains("2 requests written to");
    let list = std::fs::read_to_string(&requests).unwrap();
    let entries: Vec<&str> = list
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        entries,
        ["example.com/proj/a@v1.0.0", "example.com/proj/c@latest"],
        "{list}"
    );

    // Carried across: one more from_files entry on the connected side.
    std::fs::create_dir_all(m.dir.path().join("requests")).unwrap();
    std::fs::copy(&requests, m.dir.path().join("requests/far.txt")).unwrap();
    m.sync().expect(0);
    m.assert_mirrored("example.com/proj/a", "v1.0.0");
    m.assert_mirrored("example.com/proj/c", "v1.2.0");
    let second = crate::airgap::export(&m, media.path(), &[]);
    switch_off(&m);
    gomirror(&far_toml, &["import", second.to_str().unwrap()]).expect(0);

    // And go succeeds on the far side.
    let (ok, out) = go.run(&latest);
    assert!(ok && out.contains("example.com/proj/c v1.2.0"), "{out}");
    let (ok, out) = go.run(&["mod", "download", "-json", "example.com/proj/a@v1.0.0"]);
    assert!(ok && !out.contains("\"Error\""), "{out}");
    // Nothing is left to ask for.
    let out = gomirror(&far_toml, &["requests"]);
    out.expect(0);
    assert!(
        out.stdout.lines().all(|l| l.starts_with('#')),
        "{}",
        out.stdout
    );
    assert_upstream_untouched(&m);
}

/// A developer's module cache seeds a mirror: what it holds is read from
/// it (and its cached lookups and tiles), verified like anything else;
/// only what it lacks is downloaded. A tampered file in it is refused and
/// fetched from the next upstream; a link out of it is not followed.
#[test]
fn a_module_cache_is_an_upstream_verified_like_any_other() {
    let m = Mirror::with(Corpus::project(), FakeOptions::default(), Cfg::default());
    let dev = GoClient::new(
        &m.upstream.proxy_url(),
        &format!("{} {}", m.upstream.sumdb_key(), m.upstream.sumdb_url()),
    );
    let cached: Vec<(String, String)> = [
        ("example.com/proj/c", "v1.0.0"),
        ("example.com/proj/c", "v1.2.0"),
        ("example.com/proj/d", "v0.1.0"),
    ]
    .iter()
    .map(|(p, v)| (p.to_string(), v.to_string()))
    .collect();
    dev.download_all(&cached);
    let cache = dev.home.path().join("gopath/pkg/mod/cache/download");
    let name = m.upstream.sumdb_name();
    assert!(cache.join(format!("sumdb/{name}/lookup")).is_dir());

    std::fs::write(
        m.dir.path().join("want.txt"),
        "example.com/proj/c@v1.0.0\nexample.com/proj/c@v1.2.0\nexample.com/proj/d@v0.1.0\nexample.com/proj/d@v0.2.0\n",
    )
    .unwrap();
    let mut cfg = Cfg {
        proxy: Some(format!(
            "file://{},{}",
            cache.display(),
            m.upstream.proxy_url()
        )),
        sumdb_url: Some(format!(
            "file://{}/sumdb/{name},{}",
            cache.display(),
            m.upstream.sumdb_url()
        )),
        ..Cfg::default()
    };
    cfg.include.clear();
    let m = Mirror { cfg, ..m };
    feedless(&m, "include = []\nfrom_files = [\"want.txt\"]");
    m.upstream.clear_request_log();
    m.sync().expect(0);
    // (assert_mirrored asks the upstream itself: counted first.)
    let d_zip = m.upstream.requests(&format!(
        "/proxy/{}",
        version_file("example.com/proj/d", "v0.2.0", "zip")
    ));
    for (p, v) in &cached {
        let zip = version_file(p, v, "zip");
        assert_eq!(
            m.upstream.requests(&format!("/proxy/{zip}")),
            0,
            "{zip} was downloaded again"
        );
        assert_eq!(
            m.upstream
                .requests(&format!("/sumdb/lookup/{}@{}", escape(p), escape(v))),
            0,
            "the lookup of {p}@{v} was asked again"
        );
        m.assert_mirrored(p, v);
    }
    // What the cache lacks came from the next upstream.
    assert_eq!(d_zip, 1);
    m.assert_mirrored("example.com/proj/d", "v0.2.0");
    assert!(
        m.status()["upstreams"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["url"].as_str().unwrap().starts_with("file://")
                && u["files"].as_u64() > Some(0)),
        "{}",
        m.status()["upstreams"]
    );

    // A cache whose go.mod was changed, and a link out of the cache: refused.
    dev.download_all(&[("example.com/proj/e".into(), "v1.0.0".into())]);
    let e_mod = cache.join(version_file("example.com/proj/e", "v1.0.0", "mod"));
    let mut text = std::fs::read_to_string(&e_mod).unwrap();
    text.push_str("// changed in the cache\n");
    std::fs::write(&e_mod, text).unwrap();
    let a_mod = cache.join(version_file("example.com/proj/a", "v1.0.0", "mod"));
    std::fs::create_dir_all(a_mod.parent().unwrap()).unwrap();
    let secret = m.dir.path().join("secret.txt");
    std::fs::write(&secret, "module example.com/proj/a\n").unwrap();
    std::os::unix::fs::symlink(&secret, &a_mod).unwrap();
    let mut want = std::fs::read_to_string(m.dir.path().join("want.txt")).unwrap();
    want.push_str("example.com/proj/e@v1.0.0\nexample.com/proj/a@v1.0.0\n");
    std::fs::write(m.dir.path().join("want.txt"), want).unwrap();
    let r = m.sync();
    r.expect(1)
        .contains("SECURITY: upstream file://")
        .contains("served example.com/proj/e@v1.0.0 wrong")
        .contains("leads outside the upstream directory");
    // The tampered one is fetched from the upstream after the cache; the
    // link is not followed, and (`,`: only a 404 falls through) the
    // version waits for its retry.
    m.assert_mirrored("example.com/proj/e", "v1.0.0");
    m.assert_absent("example.com/proj/a", "v1.0.0");
}

#[test]
fn a_file_proxy_must_be_an_absolute_directory() {
    let m = Mirror::with(
        Corpus::project(),
        FakeOptions::default(),
        Cfg {
            proxy: Some("file://relative/dir".into()),
            ..Cfg::default()
        },
    );
    m.sync()
        .expect(2)
        .contains("must name an absolute directory");
    // A directory that is not there fails the versions; it never makes them gone.
    let m2 = Mirror::with(
        Corpus::project(),
        FakeOptions::default(),
        Cfg {
            proxy: Some("file:///nonexistent/gomirror-cache".into()),
            ..Cfg::default()
        },
    );
    feedless(&m2, "include = []\nseed = [\"example.com/proj/d\"]");
    let r = m2.sync();
    r.expect(2);
    assert!(
        r.all().contains("/nonexistent/gomirror-cache"),
        "{}",
        r.all()
    );
    assert!(!r.all().contains("not found upstream"), "{}", r.all());
}

/// A sync killed at each of its durability points in turn (every commit,
/// rename and barrier), then run again: every miss is taken exactly once —
/// none lost (the log positions move with the requests they read), none
/// counted twice.
#[test]
fn a_sync_killed_at_any_point_neither_loses_nor_double_counts_a_miss() {
    use std::os::unix::process::ExitStatusExt;
    let m = Mirror::with(Corpus::project(), FakeOptions::default(), Cfg::default());
    let log = m.dir.path().join("access.log");
    let miss = |path: &str| {
        format!(
            "10.0.0.1 - - [10/Oct/2024:13:55:36 +0000] \"GET {path} HTTP/1.1\" 404 0 \"-\" \"Go\"\n"
        )
    };
    std::fs::write(
        &log,
        [
            miss("/example.com/proj/d/@v/v0.1.0.info"),
            miss("/example.com/proj/d/@v/v0.1.0.zip"),
            miss("/example.com/proj/c/@v/list"),
            miss("/example.com/proj/e/@v/v1.0.0.mod"),
        ]
        .concat(),
    )
    .unwrap();
    with_demand(&m, "include = []", &logs(&[&log]));
    let run = |dir: &Path, env: &[(&str, String)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gomirror"));
        cmd.arg("-c")
            .arg(dir.join("sync.toml"))
            .arg("sync")
            .env("GOMIRROR_TEST_RETRY_BASE_MS", "0")
            .env("GOMIRROR_TEST_BATCH_WAIT_MS", "3600000")
            .env_remove("GOMIRROR_CRASH_AT")
            .env_remove("GOMIRROR_CRASH_COUNT");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let copy = || {
        let to = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", m.dir.path().display()))
            .arg(to.path())
            .status()
            .unwrap()
            .success();
        assert!(ok);
        to
    };
    let counted = copy();
    let count_file = counted.path().join("points");
    let out = run(
        counted.path(),
        &[("GOMIRROR_CRASH_COUNT", count_file.display().to_string())],
    );
    assert!(out.status.success(), "{out:?}");
    let points: u64 = std::fs::read_to_string(&count_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(points > 5, "{points} durability points");
    let expected = ["d/@v/v0.1.0", "c/@v/v1.0.0", "c/@v/v1.2.0", "e/@v/v1.0.0"];
    // Demand's own commits come first (the logs are read and the wants
    // named before anything is fetched): every one of those points, then a
    // sample of the pipeline's (tests/crash_points.rs sweeps those).
    for n in (1..=points).filter(|n| *n <= 12 || n % 7 == 0 || *n == points) {
        let dir = copy();
        let out = run(dir.path(), &[("GOMIRROR_CRASH_AT", n.to_string())]);
        assert_eq!(out.status.signal(), Some(6), "point {n}: {out:?}");
        let out = run(dir.path(), &[]);
        assert!(
            out.status.success(),
            "point {n}: the run after the crash: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for v in expected {
            let zip = dir.path().join(format!("mirror/example.com/proj/{v}.zip"));
            assert!(zip.exists(), "point {n}: {v} missing");
        }
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_gomirror"))
            .arg("-c")
            .arg(dir.path().join("sync.toml"))
            .args(["status", "--json"])
            .output()
            .unwrap();
        let s: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
        assert_eq!(s["demand"]["misses_seen"], 4, "point {n}: {}", s["demand"]);
        assert_eq!(s["demand"]["requests"], 3, "point {n}: {}", s["demand"]);
    }
}
