//! Bad input never corrupts: each fault the fake upstream can inject gets a
//! clear error naming the module@version, the right exit code, and leaves the
//! tree and the state database correct.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::support::{Corpus, FakeOptions, Fault, ModuleVersionSpec};

const M: &str = "example.com/gen/m0";

fn small() -> Corpus {
    Corpus::generated(2, 2, 11)
}

fn first_version(m: &Mirror) -> String {
    m.upstream
        .versions()
        .into_iter()
        .find(|(p, _)| p == M)
        .map(|(_, v)| v)
        .unwrap()
}

#[test]
fn first_request_503_is_retried() {
    let m = Mirror::new(small());
    let v = first_version(&m);
    let zip = format!("/proxy/{}", version_file(M, &v, "zip"));
    m.upstream.inject(Fault::FailFirst {
        path_prefix: zip.clone(),
        times: 1,
        status: 503,
    });
    m.sync().expect(0);
    assert_eq!(m.upstream.requests(&zip), 2, "one failure, one retry");
    m.assert_mirrored(M, &v);
}

#[test]
fn persistent_failure_exits_1_and_is_retried_on_a_later_run() {
    let m = Mirror::new(small());
    let v = first_version(&m);
    let zip = format!("/proxy/{}", version_file(M, &v, "zip"));
    m.upstream.inject(Fault::Status {
        path_prefix: zip.clone(),
        status: 503,
    });
    let r = m.sync();
    r.expect(1)
        .contains(&format!("{M}@{v}"))
        .contains("HTTP 503")
        .contains("1 failed");
    assert_eq!(
        m.upstream.requests(&zip),
        5,
        "retried with backoff, then given up"
    );
    m.assert_absent(M, &v);
    // The rest was published.
    for (p, ver) in m.upstream.versions() {
        if (p.as_str(), ver.as_str()) != (M, v.as_str()) {
            m.assert_mirrored(&p, &ver);
        }
    }
    let s = m.status();
    assert_eq!(s["failures"][0]["version"], v.as_str());
    assert!(s["failures"][0]["error"].as_str().unwrap().contains("503"));

    // The upstream recovers. The next run does not retry before the backoff
    // ends, and says so (exit 1: the mirror is still incomplete)...
    m.upstream.clear_faults();
    let before = m.upstream.requests(&zip);
    m.sync()
        .expect(1)
        .contains("1 failed earlier and wait for their retry time");
    assert_eq!(m.upstream.requests(&zip), before);
    // ...and --retry-failed retries now.
    m.run(&["sync", "--retry-failed"])
        .expect(0)
        .contains("published 1 new version");
    m.assert_mirrored(M, &v);
    assert_eq!(m.status()["counts"]["failed"], 0);
}

#[test]
fn truncated_body_is_retried_and_never_published_partially() {
    let m = Mirror::new(small());
    let v = first_version(&m);
    let zip = format!("/proxy/{}", version_file(M, &v, "zip"));
    m.upstream.inject(Fault::Truncate {
        path_prefix: zip.clone(),
    });
    let r = m.sync();
    r.expect(1).contains(&format!("{M}@{v}"));
    assert!(
        m.upstream.requests(&zip) >= 2,
        "a cut connection is retried"
    );
    m.assert_absent(M, &v);
    assert!(m.temp_files().is_empty(), "{:?}", m.temp_files());
    m.upstream.clear_faults();
    m.run(&["sync", "--retry-failed"]).expect(0);
    m.assert_mirrored(M, &v);
}

#[test]
fn tampered_zip_is_refused_loudly() {
    let m = Mirror::new(small());
    let v = first_version(&m);
    m.upstream.inject(Fault::TamperZip {
        path: M.into(),
        version: v.clone(),
    });
    let r = m.sync();
    r.expect(1)
        .contains(&format!("SECURITY: {M}@{v}: zip checksum mismatch"))
        .contains("1 SECURITY: checksum mismatch");
    m.assert_absent(M, &v);
    // A hash mismatch is not retried within the run.
    assert_eq!(
        m.upstream
            .requests(&format!("/proxy/{}", version_file(M, &v, "zip"))),
        1
    );
}

#[test]
fn tampered_go_mod_is_refused_loudly() {
    let m = Mirror::new(small());
    let v = first_version(&m);
    m.upstream.inject(Fault::TamperMod {
        path: M.into(),
        version: v.clone(),
    });
    m.sync()
        .expect(1)
        .contains(&format!("SECURITY: {M}@{v}: go.mod checksum mismatch"));
    m.assert_absent(M, &v);
}

#[test]
fn version_gone_upstream_is_recorded_not_retried() {
    let m = Mirror::new(small());
    let v = first_version(&m);
    let prefix = format!("/proxy/{}/@v/{}.", escape(M), escape(&v));
    m.upstream.inject(Fault::Status {
        path_prefix: prefix.clone(),
        status: 410,
    });
    // Issue 9.7: gone only once missing for the grace period (here: at once).
    let grace = [("GOMIRROR_TEST_MISSING_GRACE_SECS", "0")];
    let r = m.run_env(&["sync"], &grace);
    r.expect(0).contains("1 not on the upstream");
    m.assert_absent(M, &v);
    let n = m.upstream.requests(&prefix);
    assert!(n <= 3, "404/410 are not retried ({n} requests)");
    m.run_env(&["sync"], &grace).expect(0);
    assert_eq!(
        m.upstream.requests(&prefix),
        n,
        "a gone version is not asked for again"
    );
}

#[test]
fn bad_signature_stops_the_run_and_publishes_nothing() {
    let m = Mirror::new(small());
    m.upstream.inject(Fault::BadSignature);
    let r = m.sync();
    r.expect(2)
        .contains("SECURITY ERROR")
        .contains("invalid signature");
    assert!(m.tree_files().is_empty(), "{:?}", m.tree_files());
}

#[test]
fn wrong_key_stops_the_run() {
    let m = Mirror::new(small());
    m.upstream.inject(Fault::WrongKey);
    m.sync().expect(2).contains("SECURITY ERROR");
    assert!(m.tree_files().is_empty(), "{:?}", m.tree_files());
}

#[test]
fn malformed_index_lines_are_counted_and_skipped() {
    let m = Mirror::new(small());
    m.upstream.inject(Fault::MalformedIndexLines(vec![
        "this is not json".into(),
        r#"{"Path":"example.com/x","Version":"v1.0.0"}"#.into(),
        r#"{"Path":"example.com/x","Version":"one","Timestamp":"2024-01-01T00:00:00.5Z"}"#.into(),
        "{\"Path\":\"example.com/\u{1}ctl\",\"Version\":\"v1.0.0\",\"Timestamp\":\"2024-01-01T00:00:00.5Z\"}".into(),
    ]));
    let r = m.sync();
    r.expect(0)
        .contains("4 invalid lines skipped")
        .contains("not an index entry")
        .contains("\"one\"");
    for (p, v) in m.upstream.versions() {
        m.assert_mirrored(&p, &v);
    }
}

#[test]
fn hostile_module_paths_never_reach_the_disk() {
    // Two valid paths that differ only in case land in distinct directories.
    let corpus = small()
        .with(ModuleVersionSpec::new("example.com/Coll/lib", "v1.0.0"))
        .with(ModuleVersionSpec::new("example.com/coll/lib", "v1.0.0"));
    let m = Mirror::new(corpus);
    m.upstream.inject(Fault::IndexEntries(vec![
        ("../../etc".into(), "v1.0.0".into()),
        ("example.com/../../../etc".into(), "v1.0.0".into()),
        ("/abs/path".into(), "v1.0.0".into()),
        ("Example.com/x".into(), "v1.0.0".into()),
        ("example.com/x".into(), "../../../../tmp/x".into()),
        ("example.com/x".into(), "v1.0.0/../../x".into()),
        ("example.com/x!y".into(), "v1.0.0".into()),
        ("example.com/x".into(), "v2.0.0".into()),
        ("example.com/.hidden".into(), "v1.0.0".into()),
    ]));
    let r = m.sync();
    r.expect(0)
        .contains("9 invalid lines skipped")
        .contains("../../etc");
    m.assert_mirrored("example.com/Coll/lib", "v1.0.0");
    m.assert_mirrored("example.com/coll/lib", "v1.0.0");
    assert!(m.out().join("example.com/!coll/lib/@v/v1.0.0.zip").exists());
    assert!(m.out().join("example.com/coll/lib/@v/v1.0.0.zip").exists());
    // Nothing was written outside the mirror's own files.
    let mut top: Vec<String> = std::fs::read_dir(m.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("state.db"))
        .collect();
    top.sort();
    assert_eq!(top, ["mirror", "sync.toml"]);
    for f in m.tree_files() {
        assert!(
            f.starts_with("example.com/")
                || f.starts_with("sumdb/")
                || f.starts_with("trace/")
                || f.starts_with("feed/")
                || f.starts_with("site/"),
            "unexpected file {f}"
        );
        assert!(!f.contains(".."), "{f}");
    }
}

#[test]
fn oversize_zip_is_refused_by_its_length() {
    let m = Mirror::new(small());
    let v = first_version(&m);
    m.upstream.inject(Fault::OversizeBody {
        path_prefix: format!("/proxy/{}", version_file(M, &v, "zip")),
        bytes: 600 << 20,
        content_length: true,
    });
    m.sync()
        .expect(1)
        .contains(&format!("{M}@{v}"))
        .contains("larger than the limit of 524288000 bytes");
    m.assert_absent(M, &v);
    assert!(m.temp_files().is_empty());
}

#[test]
fn oversize_zip_without_length_is_cut_off_at_the_limit() {
    let m = Mirror::new(small());
    let v = first_version(&m);
    m.upstream.inject(Fault::OversizeBody {
        path_prefix: format!("/proxy/{}", version_file(M, &v, "zip")),
        bytes: (500 << 20) + 4096,
        content_length: false,
    });
    m.sync()
        .expect(1)
        .contains(&format!("{M}@{v}"))
        .contains("larger than the limit");
    m.assert_absent(M, &v);
    assert!(m.temp_files().is_empty());
}

#[test]
fn oversize_go_mod_is_refused() {
    let m = Mirror::new(small());
    let v = first_version(&m);
    m.upstream.inject(Fault::OversizeBody {
        path_prefix: format!("/proxy/{}", version_file(M, &v, "mod")),
        bytes: (16 << 20) + 1,
        content_length: false,
    });
    m.sync()
        .expect(1)
        .contains(&format!("{M}@{v}"))
        .contains(".mod");
    m.assert_absent(M, &v);
}

#[test]
fn zip_with_entries_outside_its_prefix_is_refused() {
    let bad = ModuleVersionSpec::new("example.com/evil", "v1.0.0").with_raw_zip(vec![
        (
            "example.com/evil@v1.0.0/go.mod".into(),
            b"module example.com/evil\n".to_vec(),
        ),
        (
            "example.com/evil@v1.0.0/../../../../etc/passwd".into(),
            b"root".to_vec(),
        ),
    ]);
    let other = ModuleVersionSpec::new("example.com/evil2", "v1.0.0").with_raw_zip(vec![
        (
            "example.com/evil2@v1.0.0/go.mod".into(),
            b"module example.com/evil2\n".to_vec(),
        ),
        ("somewhere/else.go".into(), b"package x".to_vec()),
    ]);
    let m = Mirror::new(small().with(bad).with(other));
    let r = m.sync();
    r.expect(1)
        .contains("example.com/evil@v1.0.0: invalid module zip")
        .contains("example.com/evil2@v1.0.0: invalid module zip")
        .contains("does not have prefix");
    m.assert_absent("example.com/evil", "v1.0.0");
    m.assert_absent("example.com/evil2", "v1.0.0");
    assert!(!m.dir.path().join("etc").exists());
}

#[test]
fn garbage_info_is_refused() {
    // The .info is ten zero bytes, not JSON naming the version (unit tests
    // cover a .info naming another version).
    let m = Mirror::new(small());
    let v = first_version(&m);
    m.upstream.inject(Fault::OversizeBody {
        path_prefix: format!("/proxy/{}", version_file(M, &v, "info")),
        bytes: 10,
        content_length: true,
    });
    m.sync()
        .expect(1)
        .contains(&format!("{M}@{v}: invalid .info"));
    m.assert_absent(M, &v);
}

#[test]
fn unknown_to_the_checksum_database_fails_and_is_retried() {
    let m = Mirror::new(small());
    let v = first_version(&m);
    let lookup = format!("/sumdb/lookup/{}@{}", escape(M), escape(&v));
    m.upstream.inject(Fault::Status {
        path_prefix: lookup,
        status: 404,
    });
    m.sync()
        .expect(1)
        .contains(&format!("{M}@{v}: not found in the checksum database"));
    m.assert_absent(M, &v);
}

/// Issue 22 (found by reading): a checksum database that cannot answer for
/// a version (404, or an outage) outranked every proxy's 404, so a version no
/// upstream serves — a private module not in `sumdb.skip`, say — failed on
/// every run (exit 1) instead of going missing, then gone.
#[test]
fn a_version_no_upstream_serves_goes_missing_whatever_the_checksum_database_says() {
    for sumdb_status in [404, 503] {
        let m = Mirror::new(small());
        let v = first_version(&m);
        m.upstream.inject(Fault::Status {
            path_prefix: format!("/proxy/{}/@v/{}.", escape(M), escape(&v)),
            status: 404,
        });
        m.upstream.inject(Fault::Status {
            path_prefix: format!("/sumdb/lookup/{}@{}", escape(M), escape(&v)),
            status: sumdb_status,
        });
        m.sync()
            .expect(0)
            .contains("not on the upstream yet")
            .contains("; 0 failed;");
        m.assert_absent(M, &v);
        // Past the grace period it is gone, still exit 0.
        let grace = [("GOMIRROR_TEST_MISSING_GRACE_SECS", "0")];
        m.run_env(&["sync", "--retry-failed"], &grace).expect(0);
        let status = m.run(&["status", "--json", "--offline"]);
        let json: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
        assert_eq!(
            json["counts"]["gone"], 1,
            "sumdb {sumdb_status}: {}",
            status.stdout
        );
    }
}

#[test]
fn private_modules_skip_the_checksum_database_but_are_checked() {
    let corpus = small().with(ModuleVersionSpec::new("corp.example/private", "v1.0.0"));
    let cfg = Cfg {
        skip: vec!["corp.example".into()],
        ..Cfg::default()
    };
    let m = Mirror::with(corpus, FakeOptions::default(), cfg);
    m.upstream.inject(Fault::Status {
        path_prefix: "/sumdb/lookup/corp.example/".into(),
        status: 404,
    });
    m.sync().expect(0);
    for ext in ["info", "mod", "zip"] {
        assert!(
            m.file(&version_file("corp.example/private", "v1.0.0", ext))
                .is_some()
        );
    }
    assert_eq!(m.upstream.requests("/sumdb/lookup/corp.example/"), 0);
}

/// Runs `gomirror -c <config> <args>` with extra environment variables, and
/// kills it (by its own handle) if it is still running after `limit`.
fn run_bounded(m: &Mirror, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gomirror"));
    cmd.arg("-c").arg(m.config_path()).args(args);
    cmd.env("GOMIRROR_TEST_RETRY_BASE_MS", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run gomirror");
    // Drain the pipes while waiting so a chatty run cannot block on them.
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).ok();
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).ok();
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for gomirror") {
            break status;
        }
        if started.elapsed() > limit {
            child.kill().ok();
            child.wait().ok();
            panic!(
                "gomirror {args:?} still running after {limit:?}\n--- stdout\n{}\n--- stderr\n{}",
                out_reader.join().unwrap_or_default(),
                err_reader.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// A body sent at one byte a second never trips the read timeout (it
/// restarts with every byte): before the minimum transfer rate, one such zip
/// kept `sync` running for hours.
#[test]
fn trickling_upstream_does_not_hang_the_run() {
    let m = Mirror::new(small());
    // The short read timeout of the report: it never fires on a trickle.
    let cfg = std::fs::read_to_string(m.config_path()).unwrap();
    std::fs::write(
        m.config_path(),
        cfg.replace("timeout = \"20s\"", "timeout = \"5s\""),
    )
    .unwrap();
    let v = first_version(&m);
    let zip = format!("/proxy/{}", version_file(M, &v, "zip"));
    m.upstream.inject(Fault::Trickle {
        path_prefix: zip.clone(),
        bytes_per_sec: 1,
    });
    let started = Instant::now();
    // Generous for a loaded two-core machine: two attempts of about a second.
    let r = run_bounded(
        &m,
        &["sync"],
        &[("GOMIRROR_TEST_MIN_RATE_WINDOW_MS", "1000")],
        Duration::from_secs(60),
    );
    let took = started.elapsed();
    r.expect(1)
        .contains(&format!("{M}@{v}"))
        .contains("transfer too slow: ")
        .contains("B/s over");
    assert!(took < Duration::from_secs(60), "took {took:?}");
    assert_eq!(
        m.upstream.requests(&zip),
        2,
        "too slow is retried once, not for every attempt"
    );
    m.assert_absent(M, &v);
    assert!(m.temp_files().is_empty(), "{:?}", m.temp_files());
    for (p, ver) in m.upstream.versions() {
        if (p.as_str(), ver.as_str()) != (M, v.as_str()) {
            m.assert_mirrored(&p, &ver);
        }
    }
    let s = m.status();
    assert!(
        s["failures"][0]["error"]
            .as_str()
            .unwrap()
            .contains("transfer too slow"),
        "{s}"
    );
}

/// A redirect the client refuses (a loop here; https to http likewise) gets
/// the same answer every time: it used to be sent five times.
#[test]
fn refused_redirect_is_not_retried() {
    let m = Mirror::new(small());
    let v = first_version(&m);
    let zip = format!("/proxy/{}", version_file(M, &v, "zip"));
    m.upstream.inject(Fault::Redirect {
        path_prefix: zip.clone(),
        location: zip.clone(),
    });
    m.sync()
        .expect(1)
        .contains(&format!("{M}@{v}"))
        .contains("stopped after 10 redirects");
    // One attempt: ten requests (the go command's limit), the eleventh refused.
    assert_eq!(m.upstream.requests(&zip), 10);
    m.assert_absent(M, &v);
}

/// Rewrites the upstream URLs of `sync.toml` to carry a user name, a password
/// and a `?token=` query; `sumdb` replaces the checksum database's address.
fn with_secrets(m: &Mirror, sumdb: Option<String>) {
    let cfg = std::fs::read_to_string(m.config_path()).unwrap();
    let secret = |url: &str| {
        format!(
            "{}?token=hunter2",
            url.replacen("http://", "http://user:secret@", 1)
        )
    };
    let mut out = String::new();
    for line in cfg.lines() {
        let rewritten = if line.starts_with("proxy = ") {
            format!("proxy = \"{}\"", secret(&m.upstream.proxy_url()))
        } else if line.starts_with("index = ") {
            format!("index = \"{}\"", secret(&m.upstream.index_url()))
        } else if line.starts_with("url = ") {
            let base = sumdb.clone().unwrap_or_else(|| m.upstream.sumdb_url());
            format!("url = \"{}\"", secret(&base))
        } else {
            line.to_string()
        };
        out.push_str(&rewritten);
        out.push('\n');
    }
    std::fs::write(m.config_path(), out).unwrap();
}

/// With userinfo and `?token=` in the upstream URLs, reqwest's error text
/// showed the token (it had moved the userinfo into a header, so the search
/// for our URL in its text found nothing), and so did the run summary stored
/// in the state database.
#[test]
fn query_token_and_password_never_leak() {
    let m = Mirror::new(small());
    let versions = m.upstream.versions();
    let (a, b) = (&versions[0], &versions[1]);
    // A proxy that redirects to a URL with a token of its own (a presigned
    // CDN address), in a loop; and one that fails with an error body.
    let zip_a = format!("/proxy/{}", version_file(&a.0, &a.1, "zip"));
    m.upstream.inject(Fault::Redirect {
        path_prefix: zip_a.clone(),
        location: format!("{zip_a}?token=hunter2"),
    });
    m.upstream.inject(Fault::Status {
        path_prefix: format!("/proxy/{}", version_file(&b.0, &b.1, "mod")),
        status: 503,
    });
    with_secrets(&m, None);
    let mut seen = Vec::new();
    let r = m.sync();
    r.expect(1)
        .contains(&format!("{}@{}", a.0, a.1))
        .contains(&format!("{}@{}", b.0, b.1))
        // A version's failure names the upstream's host, not the URL.
        .contains(&format!(
            ".mod from {}",
            m.upstream.proxy_url().split('/').nth(2).unwrap()
        ));
    seen.push(r.all());

    // A checksum database that is not there at all: connection refused.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        format!("http://{addr}/sumdb")
    };
    with_secrets(&m, Some(closed));
    m.upstream.clear_faults();
    let r = m.run(&["sync", "--retry-failed"]);
    assert_ne!(r.code, 0, "{}", r.all());
    r.contains("token=***");
    seen.push(r.all());

    let status = m.run(&["status"]);
    status.expect(0);
    seen.push(status.all());
    let json = m.run(&["status", "--json"]);
    json.expect(0).contains("token=***");
    seen.push(json.all());
    for text in &seen {
        assert!(
            !text.contains("hunter2") && !text.contains("secret"),
            "a secret leaked:\n{text}"
        );
    }
    let mut db_files = 0;
    for entry in std::fs::read_dir(m.dir.path()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("state.db") {
            db_files += 1;
            let bytes = std::fs::read(entry.path()).unwrap();
            for secret in [&b"hunter2"[..], b"secret"] {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret),
                    "{name} holds {:?}",
                    String::from_utf8_lossy(secret)
                );
            }
        }
    }
    assert!(db_files >= 1);
}
