//! Several upstreams at once: GOPROXY-style lists with the go command's
//! failover (`,` only on 404/410, `|` on any error), a lying upstream
//! contained and named, credentials per upstream, and the checksum database
//! reached through a proxy that says it supports it. Which upstream got which
//! request is read from each fake's own request log.

use base64::Engine;

use crate::common::*;
use crate::support::{Corpus, FakeOptions, FakeUpstream, Fault};

fn corpus() -> Corpus {
    Corpus::generated(2, 5, 31)
}

/// Another upstream serving the same modules (same key, same log).
fn twin() -> FakeUpstream {
    FakeUpstream::start(corpus(), FakeOptions::default())
}

/// A loopback address nothing listens on.
fn dead_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}/proxy")
}

fn mirror_with_proxy(proxy: impl Fn(&FakeUpstream) -> String, workers: usize) -> Mirror {
    let mut m = Mirror::with(
        corpus(),
        FakeOptions::default(),
        Cfg {
            workers,
            ..Cfg::default()
        },
    );
    m.cfg.proxy = Some(proxy(&m.upstream));
    m.write_config();
    m
}

fn assert_all_mirrored(m: &Mirror) {
    for (p, v) in m.upstream.versions() {
        m.assert_mirrored(&p, &v);
    }
}

fn status_upstream(m: &Mirror, url: &str) -> serde_json::Value {
    let status = m.status();
    status["upstreams"]
        .as_array()
        .expect("upstreams in status --json")
        .iter()
        .find(|u| u["url"].as_str() == Some(url.trim_end_matches('/')))
        .cloned()
        .unwrap_or_else(|| panic!("no upstream {url} in {:#}", status["upstreams"]))
}

#[test]
fn comma_after_a_failing_entry_does_not_fall_through() {
    let down = twin();
    down.inject(Fault::Status {
        path_prefix: "/proxy/".into(),
        status: 503,
    });
    let m = mirror_with_proxy(
        |good| format!("{},{}", down.proxy_url(), good.proxy_url()),
        4,
    );
    let n = m.upstream.versions().len();
    let r = m.sync();
    r.expect(1).contains("HTTP 503");
    assert_eq!(
        m.upstream.requests("/proxy/"),
        0,
        "a `,` after a failing entry must not reach the next one"
    );
    // Failed (retried later), not taken for missing: the 503 is what counts.
    let status = m.status();
    assert_eq!(
        status["counts"]["failed"].as_u64(),
        Some(n as u64),
        "{status:#}"
    );
    assert_eq!(status["counts"]["gone"].as_u64(), Some(0), "{status:#}");
    // A 5xx is about a file: every file was asked (and retried).
    assert!(down.requests("/proxy/") >= n * 3);
    for (p, v) in m.upstream.versions() {
        m.assert_absent(&p, &v);
    }
}

#[test]
fn comma_after_a_dead_address_stops_there_and_costs_one_attempt() {
    let dead = dead_address();
    let m = mirror_with_proxy(|good| format!("{dead},{}", good.proxy_url()), 1);
    let n = m.upstream.versions().len() as u64;
    m.sync().expect(1).contains("Connection refused");
    assert_eq!(m.upstream.requests("/proxy/"), 0);
    // Remembered as down: only the first version's files were really asked
    // (each with its retries); the rest failed without a connection attempt.
    let d = status_upstream(&m, &dead);
    let asked = d["requests"].as_u64().unwrap();
    assert!((1..=3).contains(&asked), "{d:#}");
    assert_eq!(d["failures"].as_u64(), Some(asked), "{d:#}");
    let status = m.status();
    assert_eq!(status["counts"]["failed"].as_u64(), Some(n), "{status:#}");
    m.run(&["status"])
        .expect(0)
        .contains("not asked: this upstream failed");
}

#[test]
fn pipe_after_a_dead_address_falls_through() {
    let dead = dead_address();
    let mut m = mirror_with_proxy(|good| format!("{dead}|{}", good.proxy_url()), 4);
    let metrics = m.dir.path().join("gomirror.prom");
    m.cfg.extra = format!(
        "\n[report]\nmetrics_file = {:?}\n",
        metrics.display().to_string()
    );
    m.write_config();
    m.sync().expect(0);
    // Per-upstream counters in the metrics file, clean for promtool.
    let text = std::fs::read_to_string(&metrics).unwrap();
    let n3 = 3 * m.upstream.versions().len();
    assert!(
        text.contains(&format!(
            "gomirror_upstream_files_total{{upstream=\"{}\"}} {n3}",
            m.upstream.proxy_url()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "gomirror_upstream_files_total{{upstream=\"{dead}\"}} 0"
        )),
        "{text}"
    );
    let check = std::process::Command::new(crate::operations::promtool())
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&metrics).unwrap())
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert_all_mirrored(&m);
    let n = m.upstream.versions().len() as u64;
    let good = status_upstream(&m, &m.upstream.proxy_url());
    assert_eq!(good["files"].as_u64(), Some(3 * n), "{good:#}");
    let dead = status_upstream(&m, &dead);
    assert_eq!(dead["files"].as_u64(), Some(0), "{dead:#}");
    assert!(dead["failures"].as_u64() > Some(0), "{dead:#}");
    assert!(dead["last_error"].as_str().is_some(), "{dead:#}");
    // And status says it for people too.
    m.run(&["status"])
        .expect(0)
        .contains(dead["url"].as_str().unwrap());
    m.run(&["verify"]).expect(0);
}

#[test]
fn pipe_after_a_down_entry_asks_it_again_only_after_a_while() {
    let down = twin();
    down.inject(Fault::Status {
        path_prefix: "/proxy/".into(),
        status: 502,
    });
    let m = mirror_with_proxy(
        |good| format!("{}|{}", down.proxy_url(), good.proxy_url()),
        1,
    );
    let n = m.upstream.versions().len();
    m.sync().expect(0);
    let asked = down.requests("/proxy/");
    assert!(
        asked > 0 && asked <= 15 && asked < n * 3,
        "the down entry was asked {asked} times for {n} versions"
    );
    assert_eq!(m.upstream.requests("/proxy/"), n * 3);
    assert_all_mirrored(&m);
}

#[test]
fn comma_falls_through_on_not_found_only() {
    let partial = twin();
    // The partial mirror lacks about a third of the versions.
    let versions = partial.versions();
    let missing: Vec<&(String, String)> = versions.iter().step_by(3).collect();
    for (p, v) in &missing {
        partial.inject(Fault::Status {
            path_prefix: format!("/proxy/{}/@v/{}.", escape(p), escape(v)),
            status: 404,
        });
    }
    let m = mirror_with_proxy(
        |good| format!("{},{}", partial.proxy_url(), good.proxy_url()),
        4,
    );
    m.sync().expect(0);
    assert_eq!(
        m.upstream.requests("/proxy/"),
        missing.len() * 3,
        "the second entry is asked exactly for what the first does not have"
    );
    assert_all_mirrored(&m);
    let first = status_upstream(&m, &partial.proxy_url());
    assert_eq!(
        first["not_found"].as_u64(),
        Some(missing.len() as u64 * 3),
        "{first:#}"
    );
}

#[test]
fn a_lying_upstream_is_named_and_the_version_comes_from_the_next() {
    let liar = twin();
    let (p, v) = liar.versions()[1].clone();
    liar.inject(Fault::TamperZip {
        path: p.clone(),
        version: v.clone(),
    });
    // A `,` would not fall through on a bad body; a lie does, whatever the separator.
    let m = mirror_with_proxy(
        |good| format!("{},{}", liar.proxy_url(), good.proxy_url()),
        4,
    );
    let r = m.sync();
    let liar_host = liar.addr().to_string();
    r.expect(1).contains("SECURITY").contains(&liar_host);
    // Named once, on stderr, as it happens; the summary counts it.
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains("SECURITY"))
        .unwrap()
        .to_string();
    assert!(r.stdout.contains("SECURITY: 1 time"), "{}", r.stdout);
    assert_eq!(
        r.all().matches(&format!("{p}@{v}")).count(),
        1,
        "{}",
        r.all()
    );
    assert!(line.contains(&format!("{p}@{v}")), "{line}");
    assert!(line.contains(&liar_host), "{line}");
    let zip = format!("/proxy/{}", version_file(&p, &v, "zip"));
    assert_eq!(m.upstream.requests(&zip), 1);
    // Published from the honest upstream, byte for byte.
    assert_all_mirrored(&m);
    let l = status_upstream(&m, &liar.proxy_url());
    assert_eq!(l["refused"].as_u64(), Some(1), "{l:#}");
    m.run(&["verify"]).expect(0);
    // The next run has nothing to do and nothing to report.
    m.sync().expect(0);

    // The go command, through nginx with every upstream stopped, downloads
    // and verifies every version against the mirror's own checksum database.
    let versions = m.upstream.versions();
    liar.stop();
    let nginx = crate::e2e::Nginx::serve(&m.out());
    m.upstream.inject(Fault::Status {
        path_prefix: "/".into(),
        status: 503,
    });
    m.upstream.clear_request_log();
    let go = crate::e2e::GoClient::new(&nginx.url(), &m.upstream.sumdb_key());
    go.download_all(&versions);
    assert!(m.upstream.request_log().is_empty());
}

#[test]
fn when_every_upstream_lies_the_version_is_refused() {
    let liar1 = twin();
    let liar2 = twin();
    let (p, v) = liar1.versions()[0].clone();
    for l in [&liar1, &liar2] {
        l.inject(Fault::TamperMod {
            path: p.clone(),
            version: v.clone(),
        });
    }
    let m = mirror_with_proxy(
        |_| format!("{}|{}", liar1.proxy_url(), liar2.proxy_url()),
        4,
    );
    let r = m.sync();
    r.expect(1)
        .contains("SECURITY")
        .contains(&liar1.addr().to_string())
        .contains("every upstream served it wrong");
    m.assert_absent(&p, &v);
    for (q, w) in m.upstream.versions() {
        if (q.as_str(), w.as_str()) != (p.as_str(), v.as_str()) {
            m.assert_mirrored(&q, &w);
        }
    }
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[test]
fn userinfo_credentials_go_to_their_upstream_only_and_never_show() {
    let m = mirror_with_proxy(
        |good| {
            good.proxy_url()
                .replacen("http://", "http://alice:s3cret-pw@", 1)
        },
        4,
    );
    let r = m.sync();
    r.expect(0);
    assert!(!r.all().contains("s3cret-pw"), "{}", r.all());
    let auths = m.upstream.authorizations();
    assert!(
        auths
            .iter()
            .any(|(p, a)| p.starts_with("/proxy/") && *a == basic("alice", "s3cret-pw")),
        "{auths:?}"
    );
    // The checksum database URL has no credentials: none were sent there.
    assert!(
        !auths.iter().any(|(p, _)| p.starts_with("/sumdb/")),
        "{auths:?}"
    );
    let status = m.run(&["status", "--json"]);
    assert!(!status.all().contains("s3cret-pw"), "{}", status.all());
    let plain = m.run(&["status"]);
    assert!(!plain.all().contains("s3cret-pw"), "{}", plain.all());
    let db = std::fs::read(m.dir.path().join("state.db")).unwrap();
    assert!(
        !db.windows(9).any(|w| w == b"s3cret-pw"),
        "the password is in the state database"
    );
}

#[test]
fn netrc_credentials_are_used_and_not_sent_across_a_redirect() {
    let other = twin();
    let m = mirror_with_proxy(|good| good.proxy_url(), 4);
    let (p, v) = m.upstream.versions()[0].clone();
    let zip = version_file(&p, &v, "zip");
    // One zip is redirected to another host (another port is another origin).
    m.upstream.inject(Fault::Redirect {
        path_prefix: format!("/proxy/{zip}"),
        location: format!("{}/{zip}", other.proxy_url()),
    });
    let netrc = m.dir.path().join("netrc");
    std::fs::write(&netrc, "machine 127.0.0.1 login bob password hunter2-pw\n").unwrap();
    let r = m.run_env(&["sync"], &[("NETRC", netrc.to_str().unwrap())]);
    r.expect(0);
    assert!(!r.all().contains("hunter2-pw"), "{}", r.all());
    let auths = m.upstream.authorizations();
    assert!(
        auths
            .iter()
            .any(|(p, a)| p.starts_with("/proxy/") && *a == basic("bob", "hunter2-pw")),
        "{auths:?}"
    );
    assert_eq!(other.requests(&format!("/proxy/{zip}")), 1);
    assert!(
        other.authorizations().is_empty(),
        "credentials followed a redirect to another host: {:?}",
        other.authorizations()
    );
    assert_eq!(
        m.file(&zip),
        Some(crate::support::http::get_ok(&format!(
            "{}/{zip}",
            other.proxy_url()
        ))),
        "the redirected zip is in the tree"
    );
    m.run(&["verify"]).expect(0);
}

#[test]
fn sumdb_through_a_proxy_is_used_only_when_it_says_supported() {
    let name = FakeOptions::default().sumdb_name;
    // This proxy does not serve the checksum database: its `supported`
    // answers 404, so the direct URL after it is used, whatever the separator.
    let without = twin();
    without.inject(Fault::Status {
        path_prefix: format!("/proxy/sumdb/{name}/"),
        status: 404,
    });
    let mut m = mirror_with_proxy(|good| good.proxy_url(), 4);
    m.cfg.sumdb_url = Some(format!(
        "{}/sumdb/{name},{}",
        without.proxy_url(),
        m.upstream.sumdb_url()
    ));
    m.write_config();
    m.sync().expect(0);
    assert_all_mirrored(&m);
    assert_eq!(
        without.request_log(),
        vec![format!("/proxy/sumdb/{name}/supported")],
        "asked once whether it supports the database, then left alone"
    );
    assert!(m.upstream.requests("/sumdb/") > 0);

    // A proxy that supports it serves every checksum-database request.
    let with = twin();
    let mut m2 = mirror_with_proxy(|good| good.proxy_url(), 4);
    m2.cfg.sumdb_url = Some(format!(
        "{}/sumdb/{name},{}",
        with.proxy_url(),
        m2.upstream.sumdb_url()
    ));
    m2.write_config();
    m2.sync().expect(0);
    assert_all_mirrored(&m2);
    assert_eq!(m2.upstream.requests("/sumdb/"), 0);
    assert!(with.requests(&format!("/proxy/sumdb/{name}/lookup/")) > 0);
}

#[test]
fn lists_are_checked_when_the_config_is_read() {
    for (proxy, needle) in [
        ("https://a.example,direct", "\"direct\""),
        ("https://a.example|off", "must stand alone"),
        ("https://a.example,https://a.example", "listed twice"),
        (
            "https://a.example,ftp://b.example",
            "unsupported URL scheme",
        ),
    ] {
        let mut m = mirror_with_proxy(|good| good.proxy_url(), 1);
        m.cfg.proxy = Some(proxy.into());
        m.write_config();
        m.sync()
            .expect(2)
            .contains("upstream.proxy")
            .contains(needle);
    }
}

#[test]
fn probe_tells_the_candidates_apart() {
    let m = mirror_with_proxy(|good| good.proxy_url(), 4);
    m.sync().expect(0);
    let versions = m.upstream.versions();
    assert_eq!(versions.len(), 10);

    let partial = twin();
    for (p, v) in versions.iter().step_by(4) {
        partial.inject(Fault::Status {
            path_prefix: format!("/proxy/{}/@v/{}.", escape(p), escape(v)),
            status: 404,
        });
    }
    let liar = twin();
    let (lp, lv) = versions[3].clone();
    liar.inject(Fault::TamperZip {
        path: lp.clone(),
        version: lv.clone(),
    });
    let slow = twin();
    slow.inject(Fault::Trickle {
        path_prefix: "/proxy/".into(),
        bytes_per_sec: 4000,
    });
    let dead = dead_address();
    let urls = [
        dead.clone(),
        liar.proxy_url(),
        slow.proxy_url(),
        partial.proxy_url(),
        m.upstream.proxy_url(),
    ];
    let mut args = vec!["probe", "--json", "--sample", "10"];
    args.extend(urls.iter().map(String::as_str));
    let r = m.run(&args);
    r.expect(1);
    let got: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).expect("probe --json");
    let by = |u: &str| {
        got.iter()
            .find(|x| x["url"].as_str() == Some(u))
            .unwrap_or_else(|| panic!("{u} missing from {got:#?}"))
    };
    let good = by(&m.upstream.proxy_url());
    assert_eq!(good["coverage"].as_f64(), Some(1.0), "{good:#}");
    assert_eq!(good["freshness"].as_f64(), Some(1.0), "{good:#}");
    assert_eq!(good["integrity_failures"].as_u64(), Some(0));
    assert_eq!(good["errors"].as_u64(), Some(0));
    assert_eq!(good["sumdb"].as_bool(), Some(true));
    assert!(good["throughput_mb_s"].as_f64().unwrap() > 0.0);
    let p = by(&partial.proxy_url());
    assert_eq!(p["coverage"].as_f64(), Some(0.7), "{p:#}");
    assert_eq!(p["errors"].as_u64(), Some(0), "{p:#}");
    let l = by(&liar.proxy_url());
    assert_eq!(l["integrity_failures"].as_u64(), Some(1), "{l:#}");
    let d = by(&dead);
    assert_eq!(d["coverage"].as_f64(), Some(0.0), "{d:#}");
    assert_eq!(d["errors"].as_u64(), Some(10), "{d:#}");
    assert_eq!(d["sumdb"].as_bool(), Some(false));
    let s = by(&slow.proxy_url());
    let p50 = |x: &serde_json::Value| x["latency_ms"]["p50"].as_f64().unwrap();
    assert!(p50(s) > p50(good), "slow {s:#} vs good {good:#}");
    for x in &got {
        assert!(x["requests"].as_u64().unwrap() <= 31, "{x:#}");
    }
    // Best first; the liar after every honest candidate that served anything.
    let order: Vec<&str> = got.iter().map(|x| x["url"].as_str().unwrap()).collect();
    assert_eq!(order[0], m.upstream.proxy_url(), "{order:?}");
    assert_eq!(*order.last().unwrap(), liar.proxy_url(), "{order:?}");

    // For people: a table and a suggested line without the liar or the dead one.
    let mut args = vec!["probe", "--sample", "10"];
    args.extend(urls.iter().map(String::as_str));
    let r = m.run(&args);
    r.expect(1)
        .contains("suggested [upstream] line: proxy = \"");
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("suggested"))
        .unwrap();
    assert!(line.contains(&m.upstream.proxy_url()), "{line}");
    assert!(!line.contains(&liar.proxy_url()), "{line}");
    assert!(!line.contains(&dead), "{line}");
    println!("{}", r.stdout);
}

#[test]
fn probe_needs_a_published_sample() {
    let m = mirror_with_proxy(|good| good.proxy_url(), 4);
    m.run(&["probe"])
        .expect(2)
        .contains("run `gomirror sync` first");
}

#[test]
fn probe_samples_the_seeds_before_the_first_sync() {
    let mut m = mirror_with_proxy(|good| good.proxy_url(), 4);
    m.cfg.seed = vec!["example.com/gen/m0".into()];
    m.write_config();
    let liar = twin();
    let list = String::from_utf8(m.upstream_bytes("example.com/gen/m0/@v/list")).unwrap();
    let listed = list.lines().count() as u64;
    let (p, v) = (
        "example.com/gen/m0".to_string(),
        list.lines().next().unwrap().to_string(),
    );
    liar.inject(Fault::TamperMod {
        path: p.clone(),
        version: v.clone(),
    });
    let r = m.run(&[
        "probe",
        "--json",
        &m.upstream.proxy_url(),
        &liar.proxy_url(),
    ]);
    r.expect(1).contains("sampling the seeds' versions");
    let got: Vec<serde_json::Value> = serde_json::from_str(&r.stdout).expect("probe --json");
    assert_eq!(
        got[0]["url"].as_str(),
        Some(m.upstream.proxy_url().as_str())
    );
    assert_eq!(got[0]["coverage"].as_f64(), Some(1.0), "{got:#?}");
    assert_eq!(got[0]["sample"].as_u64(), Some(listed), "{list}\n{got:#?}");
    assert_eq!(got[1]["integrity_failures"].as_u64(), Some(1), "{got:#?}");
    // Nothing was written: no tree, no state database.
    assert!(!m.out().exists());
    assert!(!m.dir.path().join("state.db").exists());
}
