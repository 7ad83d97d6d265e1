//! Bounded by design: whatever a peer hands gomirror — through
//! HTTP, a change feed, a bundle, a project file — it is bounded before or
//! while it is read, shown escaped and cut, refused with a short message
//! and a documented exit code, within a deadline, and the tree and the
//! state database are as they were. The peers are ours
//! (`tests/support/hostile.rs`); memory is the child's peak RSS (its
//! VmHWM), descriptors are sampled from /proc.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::*;
use crate::support::hostile::{Measured, SlowAccept, fingerprint, run_measured};
use crate::support::{Corpus, FakeOptions};

/// What no foreign input may take gomirror past (docs/reliability.md).
const RSS_BOUND_MIB: u64 = 256;

/// `gomirror -c <config> <args>` as the tests run it, with `envs`.
fn command(config: &Path, args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gomirror"));
    cmd.arg("-c").arg(config).args(args);
    cmd.env("GOMIRROR_TEST_RETRY_BASE_MS", "1");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

#[track_caller]
fn within_memory(m: &Measured) {
    // A measure that saw nothing proves nothing.
    assert!(m.peak_rss_kib > 1024, "no memory measured: {m:?}");
    eprintln!(
        "measured: peak RSS {} MiB, {} descriptors, {:.1} s, exit {}",
        m.peak_rss_mib(),
        m.max_fds,
        m.took.as_secs_f64(),
        m.code
    );
    assert!(
        m.peak_rss_mib() < RSS_BOUND_MIB,
        "peak RSS {} MiB (bound {RSS_BOUND_MIB} MiB)\n{}",
        m.peak_rss_mib(),
        m.all()
    );
}

/// 16 workers against an upstream that accepts a connection every 50 ms
/// with a backlog of 2: connection attempts wait at the pool's bound
/// instead of piling up one per request (770–980 descriptors before), and
/// under `ulimit -n 1024` nothing fails with "Too many open files".
#[test]
fn a_slow_accepting_upstream_does_not_pile_up_connections() {
    let mut cfg = Cfg {
        workers: 16,
        ..Cfg::default()
    };
    let m = Mirror::with(
        Corpus::generated(60, 5, 21),
        FakeOptions::default(),
        cfg.clone(),
    );
    let slow = SlowAccept::start(m.upstream.addr(), 2, Duration::from_millis(50));
    cfg.proxy = Some(format!("{}/proxy", slow.url()));
    let m = Mirror { cfg, ..m };
    m.write_config();
    let r = run_measured(
        command(&m.config_path(), &["sync"], &[]),
        Some(1024),
        Duration::from_secs(300),
    );
    assert!(!r.killed, "sync still running after 300 s\n{}", r.all());
    assert!(
        !r.all().contains("Too many open files"),
        "ran out of descriptors:\n{}",
        r.all()
    );
    assert_eq!(r.code, 0, "{}", r.all());
    // 16 requests in flight, at most 16 connecting, at most 16 idle, and
    // the process's own (state database, staging, pipes, runtime).
    assert!(
        r.max_fds <= 100,
        "{} descriptors open at once ({} s)",
        r.max_fds,
        r.took.as_secs()
    );
    eprintln!(
        "slow accept: {} descriptors at most, {} MiB, {:.1} s",
        r.max_fds,
        r.peak_rss_mib(),
        r.took.as_secs_f64()
    );
    within_memory(&r);
    let _ = fingerprint;
}

// ---- another mirror's change feed (`mirror+URL`) ----

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::support::FakeUpstream;
use crate::support::hostile::{Answer, Peer};

type Serve = Arc<dyn Fn() -> Answer + Send + Sync>;

/// A tree that serves a feed the test writes (and rewrites), every module
/// file forwarded to a fake upstream, and a follower of it.
struct FeedPeer {
    peer: Peer,
    files: Arc<Mutex<BTreeMap<String, Serve>>>,
    fake: FakeUpstream,
    dir: tempfile::TempDir,
}

const SEGMENT: u64 = 1000;
const FEED_ID: &str = "6c1f0e3a9b0d4e77a1c2f3e4d5b6a798";

fn feed_line(seq: u64, path: &str, version: &str) -> String {
    format!(
        "{{\"seq\":{seq},\"time\":\"2026-01-01T00:00:00Z\",\"op\":\"publish\",\"path\":\"{path}\",\"version\":\"{version}\"}}\n"
    )
}

fn latest_json(id: &str, next: u64, segment_entries: u64, extra: &str) -> Vec<u8> {
    format!(
        "{{\"format\":\"gomirror-feed/1\",\"id\":\"{id}\",\"next\":{next},\"first\":0,\"segment_entries\":{segment_entries}{extra}}}"
    )
    .into_bytes()
}

impl FeedPeer {
    /// A follower of a feed naming the fake's first `n` versions. The peer
    /// is the followed tree: its `feed/` is the test's, its module files and
    /// checksum database the fake's.
    fn new(n: usize) -> FeedPeer {
        let fake = FakeUpstream::start(Corpus::generated(3, 2, 7), FakeOptions::default());
        let files: Arc<Mutex<BTreeMap<String, Serve>>> = Arc::default();
        let (f, proxy, sumdb) = (files.clone(), fake.proxy_url(), fake.sumdb_url());
        let tree_sumdb = format!("/sumdb/{}/", fake.sumdb_name());
        let peer = Peer::start(move |path| {
            let serve = f.lock().unwrap().get(path).cloned();
            match serve {
                Some(s) => s(),
                None if path.starts_with("/feed/") => Answer::Status(404),
                None => match path.strip_prefix(&tree_sumdb) {
                    Some(rest) => Answer::Forward(format!("{sumdb}/{rest}")),
                    None => Answer::Forward(format!("{proxy}{path}")),
                },
            }
        });
        let follower =
            crate::feed::Follower::new(&peer.url(), &fake.sumdb_key(), &fake.sumdb_name(), "");
        let p = FeedPeer {
            peer,
            files,
            fake,
            dir: follower.dir,
        };
        p.serve_good(n);
        p
    }

    fn serve(&self, path: &str, s: impl Fn() -> Answer + Send + Sync + 'static) {
        self.files
            .lock()
            .unwrap()
            .insert(path.to_string(), Arc::new(s));
    }

    fn serve_bytes(&self, path: &str, body: Vec<u8>) {
        self.serve(path, move || Answer::Ok(body.clone()));
    }

    /// A well-formed feed of the fake's first `n` versions, all in the tail.
    fn serve_good(&self, n: usize) {
        let mut tail = String::new();
        for (i, (p, v)) in self.fake.versions().iter().take(n).enumerate() {
            tail.push_str(&feed_line(i as u64, p, v));
        }
        self.serve_bytes("/feed/latest", latest_json(FEED_ID, n as u64, SEGMENT, ""));
        self.serve_bytes("/feed/tail.jsonl", tail.into_bytes());
    }

    fn config(&self) -> std::path::PathBuf {
        self.dir.path().join("sync.toml")
    }

    fn sync(&self, timeout: Duration) -> Measured {
        run_measured(command(&self.config(), &["sync"], &[]), None, timeout)
    }

    fn state(&self) -> (BTreeMap<String, String>, Vec<String>) {
        fingerprint(
            &self.dir.path().join("mirror"),
            &self.dir.path().join("state.db"),
        )
    }

    /// A sync that must be refused: exit 2 naming `message`, within memory
    /// and `deadline`, the tree and the state as they were, no control
    /// character on the terminal.
    #[track_caller]
    fn refuses(&self, message: &str, deadline: Duration) -> Measured {
        let before = self.state();
        let r = self.sync(deadline + Duration::from_secs(60));
        assert_eq!(r.code, 2, "{}", r.all());
        assert!(r.all().contains(message), "lacks {message:?}:\n{}", r.all());
        assert!(r.took < deadline, "took {:?}\n{}", r.took, r.all());
        within_memory(&r);
        no_control_characters(&r);
        let after = self.state();
        assert_eq!(before.0, after.0, "the tree changed");
        assert_eq!(before.1, after.1, "the state changed");
        r
    }
}

/// Nothing a peer sent reaches the terminal raw: no escape, no carriage
/// return, no other control character but the newlines of our own lines.
#[track_caller]
fn no_control_characters(r: &Measured) {
    let bad: Vec<char> = r
        .all()
        .chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect();
    assert!(
        bad.is_empty(),
        "control characters {bad:?} in:\n{}",
        r.all()
    );
    assert!(
        r.all().lines().all(|l| l.len() < 4096),
        "a line of {} bytes",
        r.all().lines().map(str::len).max().unwrap_or(0)
    );
}

/// An endless tail (valid-looking lines for ever) where `latest` announces
/// three entries: the follower reads three and hangs up.
#[test]
fn an_endless_feed_tail_is_read_no_further_than_latest_announces() {
    let f = FeedPeer::new(3);
    let versions = f.fake.versions();
    let mut head = String::new();
    for (i, (p, v)) in versions.iter().take(3).enumerate() {
        head.push_str(&feed_line(i as u64, p, v));
    }
    let (p, v) = versions[3].clone();
    f.serve("/feed/tail.jsonl", move || Answer::Endless {
        head: head.clone().into_bytes(),
        pattern: feed_line(3, &p, &v).into_bytes(),
    });
    let r = f.sync(Duration::from_secs(120));
    assert_eq!(r.code, 0, "{}", r.all());
    within_memory(&r);
    assert!(r.took < Duration::from_secs(60), "took {:?}", r.took);
    let out = f.dir.path().join("mirror");
    for (p, v) in versions.iter().take(3) {
        assert!(out.join(version_file(p, v, "zip")).is_file(), "{p}@{v}");
    }
    assert!(
        !out.join(version_file(&versions[3].0, &versions[3].1, "zip"))
            .exists()
    );
    // Status says where the follower stands, not "no index feed".
    let st = gomirror(&f.config(), &["status"]);
    st.expect(0);
    assert!(!st.stdout.contains("no index feed"), "{}", st.stdout);
    assert!(
        st.stdout.contains("follows the change feed of"),
        "{}",
        st.stdout
    );
    assert!(st.stdout.contains("0 entries behind"), "{}", st.stdout);
}

/// A complete segment that never ends is refused at its entry
/// `segment_entries + 1`, as it arrives; a tail of 3 million lines costs
/// what the announced entries cost.
#[test]
fn an_oversize_segment_is_refused_at_the_entry_past_its_size() {
    let f = FeedPeer::new(2);
    f.sync(Duration::from_secs(120));
    // Segment 0 is complete (next = 1500, segment_entries = 1000) and
    // endless: every line well-formed, in sequence, naming versions the
    // follower already has.
    let versions = f.fake.versions();
    let (p, v) = versions[0].clone();
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    f.serve_bytes("/feed/latest", latest_json(FEED_ID, 1500, SEGMENT, ""));
    let c = counter.clone();
    f.serve("/feed/000000000000.jsonl", move || {
        c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut lines = String::new();
        for i in 0..200_000u64 {
            lines.push_str(&feed_line(i, &p, &v));
        }
        Answer::Endless {
            head: lines.into_bytes(),
            pattern: b"{\"seq\":0}\n".to_vec(),
        }
    });
    f.refuses(
        "holds more than 1000 entries where it may hold 1000; the feed is damaged",
        Duration::from_secs(60),
    );
}

/// One line of 1.5 GB, in a tail and in a snapshot: refused once the line
/// is longer than a feed line can be.
#[test]
fn a_giant_feed_line_is_refused_as_it_grows() {
    let f = FeedPeer::new(2);
    f.sync(Duration::from_secs(120));
    f.serve_bytes("/feed/latest", latest_json(FEED_ID, 5, SEGMENT, ""));
    f.serve("/feed/tail.jsonl", || Answer::Endless {
        head: b"{\"seq\":0,\"path\":\"".to_vec(),
        pattern: b"x".to_vec(),
    });
    f.refuses(
        "tail.jsonl: line 1 is longer than 16384 bytes; the feed is damaged",
        Duration::from_secs(60),
    );

    // A snapshot of one endless line: another feed id makes the follower
    // compare in full with it.
    let other = "00000000000000000000000000000001";
    f.serve_bytes(
        "/feed/latest",
        latest_json(
            other,
            10,
            SEGMENT,
            r#","snapshot":{"seq":10,"file":"snapshot/000000000010.jsonl"}"#,
        ),
    );
    f.serve("/feed/snapshot/000000000010.jsonl", || Answer::Endless {
        head: Vec::new(),
        pattern: b"y".to_vec(),
    });
    f.refuses(
        "snapshot/000000000010.jsonl: line 1 is longer than 16384 bytes",
        Duration::from_secs(60),
    );
}

/// `latest` that is endless, names a snapshot outside `feed/` (which URL
/// normalisation would have turned into `<base>/secret.jsonl`), an id
/// laden with escapes, an absurd segment size or a chain of escapes: each
/// refused naming what is wrong, nothing requested outside `feed/`.
#[test]
fn a_hostile_feed_head_is_refused_by_its_documented_form() {
    let f = FeedPeer::new(2);
    f.sync(Duration::from_secs(120));
    f.serve("/secret.jsonl", || Answer::Ok(b"{}".to_vec()));
    f.serve_bytes(
        "/feed/latest",
        latest_json(
            "00000000000000000000000000000002",
            10,
            SEGMENT,
            r#","snapshot":{"seq":10,"file":"snapshot/%2e%2e/%2e%2e/secret.jsonl"}"#,
        ),
    );
    f.refuses(
        "is not \"snapshot/000000000010.jsonl\"",
        Duration::from_secs(30),
    );
    assert_eq!(f.peer.requests("/secret"), 0, "{:?}", f.peer.log());
    assert!(
        f.peer.log().iter().all(|p| !p.contains("secret")),
        "{:?}",
        f.peer.log()
    );

    let ansi = "\\u001b[2J\\u001b[31merror: all versions deleted\\r";
    f.serve_bytes("/feed/latest", latest_json(ansi, 10, SEGMENT, ""));
    let r = f.refuses("is not 32 lowercase hex digits", Duration::from_secs(30));
    assert!(r.all().contains("\\u{1b}[2J"), "{}", r.all());

    f.serve_bytes("/feed/latest", latest_json(FEED_ID, 10, 1 << 40, ""));
    f.refuses("segment_entries is 1099511627776", Duration::from_secs(30));

    f.serve_bytes(
        "/feed/latest",
        latest_json(FEED_ID, 10, SEGMENT, r#","chain":["\u001b]0;pwned\u0007"]"#),
    );
    f.refuses("not an upstream's name", Duration::from_secs(30));

    f.serve("/feed/latest", || Answer::Endless {
        head: b"{\"format\":\"gomirror-feed/1\",\"chain\":[\"".to_vec(),
        pattern: b"a".to_vec(),
    });
    f.refuses(
        "larger than the limit of 65536 bytes",
        Duration::from_secs(30),
    );
}

/// A deletion the feed sends past `prune.max_delete` is refused (exit 2,
/// nothing deleted); `verify` afterwards finds the tree as the state
/// database says it is (it used to exit 1 for the `@v/list` of a module
/// whose versions were all withdrawn but still in the tree).
#[test]
fn verify_is_clean_after_a_refused_feed_deletion() {
    let f = FeedPeer::new(3);
    let r = f.sync(Duration::from_secs(120));
    assert_eq!(r.code, 0, "{}", r.all());
    let versions = f.fake.versions();
    let mut tail = String::new();
    for (i, (p, v)) in versions.iter().take(3).enumerate() {
        tail.push_str(&feed_line(i as u64, p, v));
    }
    for (i, (p, v)) in versions.iter().take(2).enumerate() {
        tail.push_str(&feed_line(3 + i as u64, p, v).replace("publish", "delete"));
    }
    f.serve_bytes("/feed/latest", latest_json(FEED_ID, 5, SEGMENT, ""));
    f.serve_bytes("/feed/tail.jsonl", tail.into_bytes());
    let r = f.sync(Duration::from_secs(120));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.all().contains("REFUSED"), "{}", r.all());
    let v = gomirror(&f.config(), &["verify"]);
    v.expect(0);
}

// ---- air-gap bundles (`gomirror import`) ----

use crate::airgap::{Far, export};
use crate::support::hostile::{fifo, sparse_file};

/// A connected mirror's first bundle, and a far side for it.
fn bundle_and_far() -> (Mirror, tempfile::TempDir, std::path::PathBuf, Far) {
    let m = Mirror::new(Corpus::generated(2, 2, 3));
    m.sync().expect(0);
    let media = tempfile::tempdir().unwrap();
    let bundle = export(&m, media.path(), &[]);
    let far = Far::new(&m.upstream.sumdb_key());
    (m, media, bundle, far)
}

fn edit_manifest(bundle: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let p = bundle.join("manifest.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
}

/// `gomirror import ARGS BUNDLE` refused with exit 2 naming `message`,
/// within memory and `deadline`, the far side as it was, the terminal clean.
#[track_caller]
fn import_refused(far: &Far, bundle: &Path, args: &[&str], message: &str, deadline: Duration) {
    let before = far.fingerprint();
    let mut a = vec!["import"];
    a.extend_from_slice(args);
    a.push(bundle.to_str().unwrap());
    let r = run_measured(
        command(&far.config(), &a, &[]),
        None,
        deadline + Duration::from_secs(60),
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.all().contains(message), "lacks {message:?}:\n{}", r.all());
    assert!(r.took < deadline, "took {:?}", r.took);
    within_memory(&r);
    no_control_characters(&r);
    assert_eq!(before, far.fingerprint(), "the far side changed");
}

/// A manifest that is a sparse 2 GB file, a FIFO, a link to /dev/zero:
/// refused from what the file is, before a byte is read.
#[test]
fn a_manifest_is_judged_before_it_is_read() {
    let (_m, _media, bundle, far) = bundle_and_far();
    let manifest = bundle.join("manifest.json");
    std::fs::remove_file(&manifest).unwrap();
    sparse_file(&manifest, 2 << 30);
    for args in [&[][..], &["--dry-run"][..]] {
        import_refused(
            &far,
            &bundle,
            args,
            "larger than the 64.00 MiB a manifest may have",
            Duration::from_secs(20),
        );
    }
    std::fs::remove_file(&manifest).unwrap();
    fifo(&manifest);
    import_refused(
        &far,
        &bundle,
        &[],
        "is a FIFO, not a regular file",
        Duration::from_secs(20),
    );
    std::fs::remove_file(&manifest).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &manifest).unwrap();
    import_refused(
        &far,
        &bundle,
        &[],
        "is a device, not a regular file",
        Duration::from_secs(20),
    );
}

/// A part of 1 TiB (sparse) that no listed file can fill, in an import and
/// a dry run: refused from the manifest, never hashed.
#[test]
fn a_part_larger_than_its_files_can_fill_is_never_hashed() {
    let (_m, _media, bundle, far) = bundle_and_far();
    sparse_file(&bundle.join("data.tar.0002"), 1 << 40);
    edit_manifest(&bundle, |v| {
        v["parts"].as_array_mut().unwrap().push(serde_json::json!({
            "name": "data.tar.0002",
            "size": 1u64 << 40,
            "sha256": "0".repeat(64),
        }));
    });
    for args in [&[][..], &["--dry-run"][..]] {
        import_refused(
            &far,
            &bundle,
            args,
            "bytes, but a tar stream of its",
            Duration::from_secs(20),
        );
    }
}

/// Sizes that wrap past 2^64 when added up do not pass as a small number
/// (they passed the free-space check, and the unpack filled the disk).
#[test]
fn sizes_that_wrap_past_2_64_are_refused() {
    let (_m, _media, bundle, far) = bundle_and_far();
    edit_manifest(&bundle, |v| {
        let files = v["files"].as_array_mut().unwrap();
        files[0]["size"] = serde_json::json!(u64::MAX);
        files[1]["size"] = serde_json::json!(2);
    });
    import_refused(
        &far,
        &bundle,
        &[],
        "the sizes of its files add up past 2^64",
        Duration::from_secs(20),
    );
}

/// A bundle's `mirror.name` with an escape and a forged `error:` line, or
/// 200 MB of it: refused by its documented form (or the manifest's size),
/// shown escaped, never stored.
#[test]
fn a_mirror_name_of_escapes_is_refused_and_never_stored() {
    let (_m, _media, bundle, far) = bundle_and_far();
    edit_manifest(&bundle, |v| {
        v["mirror"]["name"] =
            serde_json::json!("\u{1b}[2K\rerror: the mirror is compromised, run rm -rf");
    });
    import_refused(
        &far,
        &bundle,
        &[],
        "mirror.name \"\\u{1b}[2K\\rerror: the mirror",
        Duration::from_secs(20),
    );
    edit_manifest(&bundle, |v| {
        let mut name = String::from("\u{1b}[31m\nerror: fake\n");
        name.push_str(&"x".repeat(200 << 20));
        v["mirror"]["name"] = serde_json::json!(name);
    });
    import_refused(
        &far,
        &bundle,
        &[],
        "larger than the 64.00 MiB a manifest may have",
        Duration::from_secs(30),
    );
}

// ---- project files (`[filter].from_files`) ----

/// A mirror synced from `list.txt` (the fake's first version); the test
/// then adds project files of its own to `from_files`.
fn project_mirror() -> Mirror {
    let m = Mirror::new(Corpus::generated(2, 2, 5));
    let (p, v) = m.upstream.versions()[0].clone();
    std::fs::write(m.dir.path().join("list.txt"), format!("{p}@{v}\n")).unwrap();
    name_files(&m, &["list.txt"]);
    m.sync().expect(0);
    m
}

/// Sets `[filter] from_files` (and an empty `include`) in `m`'s config.
fn name_files(m: &Mirror, files: &[&str]) {
    let list: Vec<String> = files.iter().map(|f| format!("{f:?}")).collect();
    let text = std::fs::read_to_string(m.config_path()).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("from_files") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if line.starts_with("seed = ") {
            out.push_str(&format!("from_files = [{}]\n", list.join(", ")));
        }
    }
    std::fs::write(
        m.config_path(),
        out.replace("include = [\"*\"]", "include = []"),
    )
    .unwrap();
}

#[track_caller]
fn sync_refused(m: &Mirror, message: &str, deadline: Duration) -> Measured {
    let before = fingerprint(&m.out(), &m.dir.path().join("state.db"));
    let r = run_measured(
        command(&m.config_path(), &["sync"], &[]),
        None,
        deadline + Duration::from_secs(60),
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.all().contains(message), "lacks {message:?}:\n{}", r.all());
    assert!(r.took < deadline, "took {:?}\n{}", r.took, r.all());
    within_memory(&r);
    no_control_characters(&r);
    assert_eq!(
        before,
        fingerprint(&m.out(), &m.dir.path().join("state.db")),
        "the tree or state changed"
    );
    r
}

/// A replaced directory's go.mod that is a FIFO (a sync used to hang for
/// ever), a link to /dev/zero (it read gigabytes), 300 MB (read whole):
/// refused before it is read, naming the go.mod, exit 2, nothing changed.
#[test]
fn a_replaced_directory_s_go_mod_is_bounded_before_it_is_read() {
    let m = project_mirror();
    let (p, v) = m.upstream.versions()[0].clone();
    let app = m.dir.path().join("app");
    std::fs::create_dir_all(app.join("fork")).unwrap();
    std::fs::write(
        app.join("go.mod"),
        format!("module example.org/app\n\ngo 1.22\n\nrequire {p} {v}\n\nreplace {p} => ./fork\n"),
    )
    .unwrap();
    name_files(&m, &["list.txt", "app/go.mod"]);
    let gomod = app.join("fork/go.mod");
    fifo(&gomod);
    let r = sync_refused(&m, "whose go.mod cannot be used", Duration::from_secs(30));
    assert!(r.all().contains("is a FIFO"), "{}", r.all());
    std::fs::remove_file(&gomod).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &gomod).unwrap();
    let r = sync_refused(&m, "whose go.mod cannot be used", Duration::from_secs(30));
    assert!(r.all().contains("is a device"), "{}", r.all());
    std::fs::remove_file(&gomod).unwrap();
    sparse_file(&gomod, 300 << 20);
    let r = sync_refused(
        &m,
        "is 314572800 bytes, more than the 16777216",
        Duration::from_secs(30),
    );
    assert!(r.all().contains("app/go.mod"), "{}", r.all());
}

/// A project file that is a FIFO or a device is refused at once; a go.sum
/// whose second line is 60 MB of escapes is refused with that line shown
/// escaped and cut (it went to cron mail whole).
#[test]
fn hostile_project_files_are_refused_and_shown_cut() {
    let m = project_mirror();
    fifo(&m.dir.path().join("pipe.sum"));
    name_files(&m, &["list.txt", "pipe.sum"]);
    sync_refused(
        &m,
        "pipe.sum: filter.from_files names it, but it is not a regular file",
        Duration::from_secs(30),
    );

    let (p, v) = m.upstream.versions()[0].clone();
    let hash = "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let mut text = format!("{p} {v}/go.mod {hash}\n");
    text.push_str("\u{1b}[2J\u{1b}[31merror:forged");
    text.push_str(&"\u{1b}[1m".repeat(15 << 20));
    text.push_str(&format!(" v1.0.0 {hash}\n"));
    std::fs::create_dir_all(m.dir.path().join("big")).unwrap();
    std::fs::write(m.dir.path().join("big/go.sum"), text).unwrap();
    name_files(&m, &["list.txt", "big/go.sum"]);
    let r = sync_refused(
        &m,
        "big/go.sum:2: a line longer than 65536 bytes",
        Duration::from_secs(60),
    );
    assert!(r.stderr.len() < 4096, "{} bytes on stderr", r.stderr.len());
    // Within the line limit, the refused line is quoted escaped and cut.
    let mut text = "\u{1b}[2J\u{1b}[31merror:forged".to_string();
    text.push_str(&"\u{1b}[1m".repeat(10_000));
    text.push_str(&format!(" v1.0.0 {hash}\n"));
    std::fs::write(m.dir.path().join("big/go.sum"), text).unwrap();
    let r = sync_refused(
        &m,
        "big/go.sum:1: malformed module path \"\\x1b[2J",
        Duration::from_secs(60),
    );
    assert!(r.stderr.len() < 4096, "{} bytes on stderr", r.stderr.len());
}

// ---- deadlines ----

/// `probe` promises two minutes per candidate. A candidate that trickles
/// its zips at 4 KiB/s keeps up the minimum rate (1 KiB/s), so only the
/// deadline stops it: within 2 min (and a margin), the transfer in flight
/// abandoned, the result marked incomplete (it ran past 11 minutes).
#[test]
fn probe_keeps_its_deadline_against_a_trickling_candidate() {
    let corpus = || Corpus::new().with_large_zip(1 << 20);
    let m = Mirror::new(corpus());
    m.sync().expect(0);
    let slow = FakeUpstream::start(corpus(), FakeOptions::default());
    slow.inject(crate::support::Fault::Trickle {
        path_prefix: "/proxy/".into(),
        bytes_per_sec: 4096,
    });
    let r = run_measured(
        command(
            &m.config_path(),
            &["probe", "--json", "--sample", "1", &slow.proxy_url()],
            &[],
        ),
        None,
        Duration::from_secs(400),
    );
    within_memory(&r);
    assert!(
        r.took < Duration::from_secs(150),
        "probe took {:?} (deadline 120 s)\n{}",
        r.took,
        r.all()
    );
    let got: serde_json::Value = serde_json::from_str(&r.stdout).expect("probe --json");
    assert_eq!(got[0]["incomplete"].as_bool(), Some(true), "{got:#}");
}

/// A small file trickled a byte every 2 s can never pass the rate window:
/// it is tried twice, not five times (a sync stayed busy about 150 s).
#[test]
fn a_small_file_trickled_byte_by_byte_is_tried_twice() {
    let m = Mirror::new(Corpus::generated(1, 1, 9));
    let (p, v) = m.upstream.versions()[0].clone();
    let info = format!("/proxy/{}", version_file(&p, &v, "info"));
    m.upstream.inject(crate::support::Fault::Trickle {
        path_prefix: info.clone(),
        bytes_per_sec: 1,
    });
    let r = run_measured(
        command(
            &m.config_path(),
            &["sync"],
            &[("GOMIRROR_TEST_MIN_RATE_WINDOW_MS", "2000")],
        ),
        None,
        Duration::from_secs(120),
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.all().contains("transfer too slow"), "{}", r.all());
    assert_eq!(m.upstream.requests(&info), 2, "tried twice");
    // Two windows of 2 s; generous for a loaded machine.
    assert!(r.took < Duration::from_secs(20), "took {:?}", r.took);
    within_memory(&r);
}

// ---- the module index and the proxy over HTTP ----

/// Points `m`'s `upstream.index` (or `upstream.proxy`) at `url`.
fn set_upstream(m: &Mirror, key: &str, url: &str) {
    let text = std::fs::read_to_string(m.config_path()).unwrap();
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with(&format!("{key} = ")) {
                format!("{key} = \"{url}\"")
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(m.config_path(), out.join("\n") + "\n").unwrap();
}

/// An index page that never ends is cut at what 2000 lines can be (8 MiB;
/// it was 64 MiB, eight requests in flight), fatal, nothing recorded.
#[test]
fn an_endless_index_page_is_cut_at_the_page_bound() {
    let m = Mirror::new(Corpus::generated(1, 1, 11));
    m.sync().expect(0);
    let peer = Peer::start(|_| Answer::Endless {
        head: Vec::new(),
        pattern: br#"{"Path":"example.com/a","Version":"v1.0.0","Timestamp":"2020-01-01T00:00:00Z"}
"#
        .to_vec(),
    });
    set_upstream(&m, "index", &format!("{}/index", peer.url()));
    let before = fingerprint(&m.out(), &m.dir.path().join("state.db"));
    let r = run_measured(
        command(&m.config_path(), &["sync"], &[]),
        None,
        Duration::from_secs(120),
    );
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.all()
            .contains("response is larger than the limit of 8194000 bytes"),
        "{}",
        r.all()
    );
    within_memory(&r);
    no_control_characters(&r);
    assert_eq!(
        before,
        fingerprint(&m.out(), &m.dir.path().join("state.db"))
    );
}

/// An error page that never ends, full of escapes and forged lines: the
/// status is reported with the page's start shown escaped and cut; the
/// version fails (exit 1), the run ends in bounded time.
#[test]
fn an_endless_error_page_of_escapes_is_shown_cut() {
    let m = Mirror::new(Corpus::generated(1, 1, 13));
    let proxy = m.upstream.proxy_url();
    let peer = Peer::start(move |path| {
        if path.ends_with(".info") {
            Answer::EndlessStatus {
                status: 500,
                headers: "Content-Type: text/plain\r\n".into(),
                pattern: b"\x1b[2J\x1b[31merror: mirror compromised\r\n".to_vec(),
            }
        } else {
            Answer::Forward(format!("{proxy}{path}"))
        }
    });
    set_upstream(&m, "proxy", &peer.url());
    let r = run_measured(
        command(&m.config_path(), &["sync"], &[]),
        None,
        Duration::from_secs(120),
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.all()
            .contains("HTTP 500: \\u{1b}[2J\\u{1b}[31merror: mirror compromised"),
        "{}",
        r.all()
    );
    assert!(r.took < Duration::from_secs(60), "took {:?}", r.took);
    within_memory(&r);
    no_control_characters(&r);
    let st = m.run(&["status"]);
    assert!(!st.all().contains('\u{1b}'), "{}", st.all());
}

/// A feed of garbage cannot flood cron mail: 300 invalid index lines are
/// counted in the summary, at most 100 shown on stderr (one warning each)
/// and one line saying the rest are counted.
#[test]
fn invalid_lines_are_counted_but_at_most_a_hundred_shown() {
    let m = Mirror::new(Corpus::generated(1, 1, 17));
    let lines: Vec<String> = (0..300)
        .map(|i| format!("not json {i} \u{1b}[31m"))
        .collect();
    m.upstream
        .inject(crate::support::Fault::MalformedIndexLines(lines));
    let r = run_measured(
        command(&m.config_path(), &["sync"], &[]),
        None,
        Duration::from_secs(120),
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("300 invalid lines skipped"),
        "{}",
        r.stdout
    );
    let warnings = r
        .stderr
        .lines()
        .filter(|l| l.contains("not an index entry"))
        .count();
    assert_eq!(warnings, 100, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("more than 100 invalid lines: the rest are counted, not shown"),
        "{}",
        r.stderr
    );
    no_control_characters(&r);
    within_memory(&r);
}
