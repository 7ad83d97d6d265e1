//! The tree in a bucket: gomirror against a real Garage node, the real go
//! command through nginx in front of the bucket's website endpoint.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::e2e::{GoClient, require};
use crate::garage::Garage;
use crate::support::{Corpus, FakeOptions, Fault};

pub const PREFIX: &str = "mirror";

fn bucket_mirror(g: &Garage, corpus: Corpus) -> (Mirror, String) {
    let bucket = g.bucket();
    let cfg = Cfg {
        output: Some(format!("s3://{bucket}/{PREFIX}")),
        extra: format!(
            "\n[s3]\nendpoint = \"{}\"\nregion = \"garage\"\n",
            g.endpoint()
        ),
        ..Cfg::default()
    };
    (Mirror::with(corpus, FakeOptions::default(), cfg), bucket)
}

pub fn run(m: &Mirror, g: &Garage, args: &[&str]) -> Run {
    let env = g.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    m.run_env(args, &env)
}

/// GET `path` from the website endpoint as the bucket's host: (status, body).
pub fn web_get(g: &Garage, bucket: &str, path: &str) -> (u16, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", g.web_port)).unwrap();
    write!(
        s,
        "GET /{PREFIX}/{path} HTTP/1.0\r\nHost: {}\r\n\r\n",
        Garage::web_host(bucket)
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let head_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP response");
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap();
    (status, buf[head_end + 4..].to_vec())
}

/// nginx running `examples/nginx-s3.conf` as shipped, in front of the bucket.
pub struct NginxS3 {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl NginxS3 {
    pub fn serve(g: &Garage, bucket: &str) -> NginxS3 {
        let nginx = require("nginx");
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let shipped = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/nginx-s3.conf"
        ))
        .unwrap();
        let site = [
            ("listen 8080;", format!("listen 127.0.0.1:{port};")),
            (
                "set $gomirror_web http://127.0.0.1:3902;",
                format!("set $gomirror_web http://127.0.0.1:{};", g.web_port),
            ),
            (
                "set $gomirror_host gomirror.web.garage.localhost;",
                format!("set $gomirror_host {};", Garage::web_host(bucket)),
            ),
            (
                "set $gomirror_prefix /mirror;",
                format!("set $gomirror_prefix /{PREFIX};"),
            ),
            (
                "access_log /var/log/nginx/gomirror-s3.access.log gomirror_s3;",
                format!(
                    "access_log {}/gomirror.access.log gomirror_s3;",
                    dir.path().display()
                ),
            ),
        ]
        .iter()
        .fold(shipped, |text, (from, to)| {
            assert!(text.contains(from), "examples/nginx-s3.conf lacks {from:?}");
            text.replace(from, to)
        });
        std::fs::write(dir.path().join("site.conf"), site).unwrap();
        let d = dir.path().display();
        std::fs::write(
            dir.path().join("nginx.conf"),
            format!(
                "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  include {d}/site.conf;\n}}\n"
            ),
        )
        .unwrap();
        let check = Command::new(&nginx)
            .args(["-t", "-p"])
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "nginx -t refuses examples/nginx-s3.conf:\n{}",
            String::from_utf8_lossy(&check.stderr)
        );
        let child = Command::new(&nginx)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        NginxS3 {
            child,
            port,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for NginxS3 {
    fn drop(&mut self) {
        // SIGQUIT: the master stops its workers too (a SIGKILL would orphan them).
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGQUIT) };
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

fn assert_in_bucket(m: &Mirror, g: &Garage, bucket: &str, path: &str, version: &str) {
    for ext in ["info", "mod", "zip"] {
        let rel = version_file(path, version, ext);
        let (status, body) = web_get(g, bucket, &rel);
        assert_eq!(status, 200, "{rel} missing from the bucket");
        assert!(
            body == m.upstream_bytes(&rel),
            "{rel} differs from the upstream's"
        );
    }
}

#[test]
fn a_bucket_mirror_serves_go_through_nginx_and_prunes_objects() {
    let g = Garage::start();
    let (mut m, bucket) = bucket_mirror(&g, Corpus::generated(3, 3, 7));
    run(&m, &g, &["sync"]).expect(0);
    assert!(!m.out().exists(), "a bucket mirror writes no local tree");
    let versions = m.upstream.versions();
    for (p, v) in &versions {
        assert_in_bucket(&m, &g, &bucket, p, v);
    }
    run(&m, &g, &["verify"]).expect(0);
    run(&m, &g, &["verify", "--quick"]).expect(0);
    let status = run(&m, &g, &["status", "--json"]);
    status
        .expect(0)
        .contains(&format!("s3://{bucket}/{PREFIX}"));

    // The go command, through nginx in front of the website endpoint, with
    // the upstream out of reach: every version downloads and verifies
    // against the mirror's own checksum database.
    let nginx = NginxS3::serve(&g, &bucket);
    m.upstream.inject(Fault::Status {
        path_prefix: "/".into(),
        status: 503,
    });
    let go = GoClient::new(&nginx.url(), &m.upstream.sumdb_key());
    go.download_all(&versions);
    m.upstream.clear_faults();

    // A narrowed filter deletes the objects.
    let gone = "example.com/gen/m1";
    m.cfg.exclude = vec![gone.into()];
    m.write_config();
    run(&m, &g, &["sync"]).expect(0).contains("prune: deleted");
    for (p, v) in &versions {
        let (status, _) = web_get(&g, &bucket, &version_file(p, v, "zip"));
        if p == gone {
            assert_eq!(status, 404, "{p}@{v} still in the bucket");
        } else {
            assert_eq!(status, 200, "{p}@{v} was deleted");
        }
    }
    let (status, _) = web_get(&g, &bucket, &format!("{gone}/@v/list"));
    assert_eq!(status, 404);
    run(&m, &g, &["verify"]).expect(0);

    // A stray object is found by listing and removed by prune.
    put_object(
        &g,
        &bucket,
        &format!("{PREFIX}/example.com/junk.txt"),
        b"junk",
    );
    run(&m, &g, &["prune", "--dry-run"])
        .expect(0)
        .contains("example.com/junk.txt");
    run(&m, &g, &["prune"]).expect(0);
    assert_eq!(web_get(&g, &bucket, "example.com/junk.txt").0, 404);
}

/// Air-gapped transfer between buckets: a bucket mirror exports, a far side
/// whose tree is another bucket imports, and go verifies it through nginx.
#[test]
fn a_bucket_mirror_exports_and_a_bucket_far_side_imports() {
    let g = Garage::start();
    let (m, bucket) = bucket_mirror(&g, Corpus::generated(3, 2, 17));
    run(&m, &g, &["sync"]).expect(0);
    let media = tempfile::tempdir().unwrap();
    let r = run(&m, &g, &["export", media.path().to_str().unwrap()]);
    r.expect(0);
    let bundle = std::path::PathBuf::from(r.stdout.lines().last().unwrap());

    let far_bucket = g.bucket();
    let mut far = crate::airgap::Far::new(&m.upstream.sumdb_key());
    far.output = format!("s3://{far_bucket}/{PREFIX}");
    far.extra = format!(
        "\n[s3]\nendpoint = \"{}\"\nregion = \"garage\"\n",
        g.endpoint()
    );
    far.env = g.env();
    far.write_config();
    m.upstream.inject(Fault::Status {
        path_prefix: "/".into(),
        status: 503,
    });
    m.upstream.clear_request_log();
    let versions = m.upstream.versions();
    far.import(&bundle)
        .expect(0)
        .contains(&format!("published {} new versions", versions.len()));
    far.run(&["verify"]).expect(0);
    for (p, v) in &versions {
        for ext in ["info", "mod", "zip"] {
            let key = version_file(p, v, ext);
            assert_eq!(
                web_get(&g, &far_bucket, &key),
                web_get(&g, &bucket, &key),
                "{key}"
            );
        }
        let list = format!("{}/@v/list", crate::common::escape(p));
        assert_eq!(web_get(&g, &far_bucket, &list), web_get(&g, &bucket, &list));
    }
    let latest = format!("sumdb/{}/latest", m.upstream.sumdb_name());
    assert_eq!(
        web_get(&g, &far_bucket, &latest),
        web_get(&g, &bucket, &latest)
    );
    let nginx = NginxS3::serve(&g, &far_bucket);
    let go = GoClient::new(&nginx.url(), &m.upstream.sumdb_key());
    go.download_all(&versions);
    let log = m.upstream.request_log();
    assert!(log.is_empty(), "the upstream was contacted: {log:?}");
    far.import(&bundle).expect(0).contains("imported before");
}

/// Puts an object with the test key, through the S3 API (object_store).
fn put_object(g: &Garage, bucket: &str, key: &str, bytes: &[u8]) {
    use object_store::ObjectStoreExt;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region("garage")
        .with_endpoint(g.endpoint())
        .with_allow_http(true)
        .with_access_key_id(&g.key_id)
        .with_secret_access_key(&g.secret)
        .build()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(store.put(
        &object_store::path::Path::parse(key).unwrap(),
        bytes.to_vec().into(),
    ))
    .unwrap();
}

#[test]
fn a_killed_bucket_sync_shows_nothing_partial_and_a_rerun_converges() {
    let g = Garage::start();
    let (m, bucket) = bucket_mirror(&g, Corpus::generated(3, 3, 9));
    let versions = m.upstream.versions();
    for at in [3, 15, 40] {
        let env = g.env();
        let mut env: Vec<(&str, String)> = env.into_iter().collect();
        env.push(("GOMIRROR_CRASH_AT", at.to_string()));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = m.run_env(&["sync"], &env);
        assert_ne!(r.code, 0, "crash point {at} was not reached:\n{}", r.all());
        // Whatever is listed is complete: every listed version's files are
        // in the bucket, byte for byte.
        for (p, _) in &versions {
            let (status, list) = web_get(&g, &bucket, &format!("{p}/@v/list"));
            if status != 200 {
                continue;
            }
            for v in String::from_utf8_lossy(&list).lines() {
                assert_in_bucket(&m, &g, &bucket, p, v);
            }
        }
    }
    run(&m, &g, &["sync"]).expect(0);
    for (p, v) in &versions {
        assert_in_bucket(&m, &g, &bucket, p, v);
    }
    run(&m, &g, &["verify"]).expect(0);
}

#[test]
fn bucket_errors_are_clear_and_fatal() {
    let g = Garage::start();
    let (mut m, bucket) = bucket_mirror(&g, Corpus::generated(1, 1, 3));

    // Wrong credentials.
    let r = m.run_env(
        &["sync"],
        &[
            ("AWS_ACCESS_KEY_ID", "GKnotakey"),
            ("AWS_SECRET_ACCESS_KEY", "wrong-secret-value"),
        ],
    );
    r.expect(2)
        .contains("cannot list the bucket")
        .contains("AWS_ACCESS_KEY_ID");
    assert!(!r.all().contains("wrong-secret-value"), "{}", r.all());

    // A bucket that does not exist.
    m.cfg.output = Some(format!("s3://{bucket}-missing/{PREFIX}"));
    m.write_config();
    run(&m, &g, &["sync"])
        .expect(2)
        .contains("cannot list the bucket")
        .contains(&format!("{bucket}-missing"));

    // An endpoint nothing answers on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    m.cfg.output = Some(format!("s3://{bucket}/{PREFIX}"));
    m.cfg.extra = format!("\n[s3]\nendpoint = \"http://127.0.0.1:{port}\"\nregion = \"garage\"\n");
    m.write_config();
    let started = Instant::now();
    run(&m, &g, &["sync"])
        .expect(2)
        .contains("cannot list the bucket")
        .contains(&format!("127.0.0.1:{port}"));
    assert!(started.elapsed() < Duration::from_secs(120));

    // Nothing was recorded as published by any of them.
    if m.dir.path().join("state.db").exists() {
        let status = m.status();
        assert_eq!(
            status["counts"]["published"].as_u64(),
            Some(0),
            "{status:#}"
        );
    }
}

#[test]
fn a_large_zip_goes_up_in_parts_and_verifies() {
    let g = Garage::start();
    // Over the 16 MiB multipart threshold: uploaded in 8 MiB parts.
    let corpus = Corpus::generated(1, 1, 5).with_large_zip(40 << 20);
    let (m, bucket) = bucket_mirror(&g, corpus);
    let r = run(&m, &g, &["sync"]);
    r.expect(0)
        .contains(&format!("tree: bucket `s3://{bucket}/{PREFIX}`"));
    let zip = version_file("example.com/large", "v1.0.0", "zip");
    let (status, body) = web_get(&g, &bucket, &zip);
    assert_eq!(status, 200);
    assert!(body.len() > 16 << 20, "the zip is {} bytes", body.len());
    assert!(body == m.upstream_bytes(&zip), "the uploaded zip differs");
    run(&m, &g, &["verify"]).expect(0);
}
