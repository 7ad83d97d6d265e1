//! Private modules: versions made from git repositories by the
//! real go command, served on loopback by git's own `http-backend` (behind a
//! small CGI bridge with optional basic auth, below), reached through
//! GOPRIVATE and `url.<base>.insteadOf` in a gitconfig of the test's own; the
//! ledger that refuses a moved tag; credentials that never show; a private
//! module carried across an air gap in a signed bundle and built by go on
//! the far side; and `upstream.auth_command`'s headers going to their
//! prefix only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::airgap::{Far, export, manifest};
use crate::common::{Cfg, Mirror, Run, version_file};
use crate::support::{Corpus, FakeOptions};

const MODULE: &str = "git.corp.example/team/lib.git";

/// git's `http-backend` as CGI behind a minimal HTTP/1.1 server, one
/// request per connection; with `auth`, every request must carry that
/// `Authorization` header or is answered 401.
struct GitServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// `METHOD path` of every request, and whether it was authorized.
    log: Arc<Mutex<Vec<(String, bool)>>>,
}

impl GitServer {
    fn start(root: &Path, auth: Option<String>) -> GitServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (s, l, root) = (stop.clone(), log.clone(), root.to_path_buf());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (root, auth, log) = (root.clone(), auth.clone(), l.clone());
                std::thread::spawn(move || {
                    let _ = serve_cgi(conn, &root, auth.as_deref(), &log);
                });
            }
        });
        GitServer {
            addr,
            stop,
            thread: Some(thread),
            log,
        }
    }

    fn base(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_cgi(
    conn: TcpStream,
    root: &Path,
    auth: Option<&str>,
    log: &Mutex<Vec<(String, bool)>>,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let mut r = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("/").to_string(),
    );
    let mut headers: Vec<(String, String)> = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let header = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if let Some(n) = header("content-length").and_then(|n| n.parse::<usize>().ok()) {
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else if header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            let mut chunk = vec![0u8; n + 2];
            r.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target.clone(), String::new()),
    };
    let authorized = match auth {
        None => true,
        Some(want) => header("authorization").as_deref() == Some(want),
    };
    log.lock()
        .unwrap()
        .push((format!("{method} {path}"), authorized));
    let mut w = conn;
    if !authorized {
        w.write_all(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
        return Ok(());
    }
    let mut cmd = Command::new("git");
    cmd.arg("http-backend")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", &method)
        .env("PATH_INFO", &path)
        .env("QUERY_STRING", &query)
        .env("CONTENT_TYPE", header("content-type").unwrap_or_default())
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    if auth.is_some() {
        cmd.env("REMOTE_USER", "builder");
    }
    if let Some(p) = header("git-protocol") {
        cmd.env("GIT_PROTOCOL", p);
    }
    if let Some(e) = header("content-encoding") {
        cmd.env("HTTP_CONTENT_ENCODING", e);
    }
    let mut child = cmd.spawn()?;
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let out = child.wait_with_output()?;
    let _ = feeder.join();
    let raw = out.stdout;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let (head, payload) = match split {
        Some((i, n)) => (
            String::from_utf8_lossy(&raw[..i]).into_owned(),
            &raw[i + n..],
        ),
        None => (String::new(), &raw[..]),
    };
    let mut status = "200 OK".to_string();
    let mut out_headers = String::new();
    for h in head.lines() {
        match h.split_once(':') {
            Some((k, v)) if k.eq_ignore_ascii_case("status") => status = v.trim().to_string(),
            Some(_) => {
                out_headers.push_str(h.trim_end());
                out_headers.push_str("\r\n");
            }
            None => {}
        }
    }
    write!(
        w,
        "HTTP/1.1 {status}\r\n{out_headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        payload.len()
    )?;
    w.write_all(payload)?;
    w.flush()
}

/// Runs git in `dir` with no user or system configuration.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@corp.example")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@corp.example")
        .env("GIT_AUTHOR_DATE", "2025-01-02T03:04:05Z")
        .env("GIT_COMMITTER_DATE", "2025-01-02T03:04:05Z")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A private module's repository: a bare repository under `root` served by
/// the git server, and a work tree to commit and tag in.
struct Repo {
    work: PathBuf,
}

impl Repo {
    /// `team/lib` (the go command asks for the repository without `.git`)
    /// with `v1.0.0` and `v1.1.0` tagged.
    fn create(root: &Path, scratch: &Path) -> Repo {
        let bare = root.join("team/lib");
        std::fs::create_dir_all(&bare).unwrap();
        git(&bare, &["init", "-q", "--bare"]);
        let work = scratch.join("lib-work");
        std::fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "-q"]);
        git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
        std::fs::write(work.join("go.mod"), format!("module {MODULE}\n\ngo 1.21\n")).unwrap();
        let repo = Repo { work };
        repo.commit("v1.0.0 content", "one");
        repo.tag("v1.0.0");
        repo.commit("v1.1.0 content", "two");
        repo.tag("v1.1.0");
        repo
    }

    fn commit(&self, says: &str, message: &str) {
        std::fs::write(
            self.work.join("lib.go"),
            format!("package lib\n\n// Hello says which content this is.\nfunc Hello() string {{ return {says:?} }}\n"),
        )
        .unwrap();
        git(&self.work, &["add", "."]);
        git(&self.work, &["commit", "-q", "-m", message]);
        git(
            &self.work,
            &["push", "-q", "origin", "HEAD:refs/heads/main"],
        );
    }

    fn tag(&self, tag: &str) {
        git(&self.work, &["tag", "-f", tag]);
        git(
            &self.work,
            &["push", "-q", "-f", "origin", &format!("refs/tags/{tag}")],
        );
    }

    /// Moves `tag` to a new commit with other content.
    fn move_tag(&self, tag: &str) {
        self.commit("rewritten content", "rewritten");
        self.tag(tag);
    }
}

/// A mirror of the fake upstream's public modules plus the private module,
/// named as a seed; gitconfig (insteadOf, credentials) in its directory.
struct Setup {
    m: Mirror,
    _server: GitServer,
    repo: Repo,
    gitconfig: PathBuf,
    _repos: tempfile::TempDir,
}

impl Setup {
    fn new(auth: Option<(&str, &str)>, extra_gitconfig: &str) -> Setup {
        let repos = tempfile::tempdir().unwrap();
        let expected = auth.map(|(u, p)| format!("Basic {}", b64(&format!("{u}:{p}"))));
        let server = GitServer::start(repos.path(), expected);
        let cfg = Cfg {
            seed: vec![MODULE.into()],
            recheck_interval: "0s".into(),
            extra: "\n[private]\nmodules = [\"git.corp.example\"]\n".into(),
            ..Cfg::default()
        };
        let m = Mirror::with(Corpus::generated(1, 1, 30), FakeOptions::default(), cfg);
        let repo = Repo::create(repos.path(), m.dir.path());
        let gitconfig = m.dir.path().join("gitconfig");
        std::fs::write(
            &gitconfig,
            format!(
                "[url \"{}\"]\n\tinsteadOf = https://git.corp.example/\n{extra_gitconfig}",
                server.base()
            ),
        )
        .unwrap();
        Setup {
            m,
            _server: server,
            repo,
            gitconfig,
            _repos: repos,
        }
    }

    /// The environment gomirror runs in: git's configuration is the test's.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("GIT_CONFIG_GLOBAL", self.gitconfig.display().to_string()),
            ("GIT_CONFIG_NOSYSTEM", "1".into()),
            ("HOME", self.m.dir.path().display().to_string()),
        ]
    }

    fn run(&self, args: &[&str]) -> Run {
        let env = self.env();
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.m.run_env(args, &pairs)
    }
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Builds and runs a program that requires `MODULE@version` with the go
/// command, its GOPROXY the tree at `tree` (file://), GONOSUMDB for the
/// private module; returns what it printed.
fn go_run_against(tree: &Path, version: &str, scratch: &Path) -> String {
    let app = scratch.join(format!("app-{version}"));
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("go.mod"),
        format!("module example.com/app\n\ngo 1.21\n\nrequire {MODULE} {version}\n"),
    )
    .unwrap();
    std::fs::write(
        app.join("main.go"),
        format!(
            "package main\n\nimport (\n\t\"fmt\"\n\n\tlib \"{MODULE}\"\n)\n\nfunc main() {{ fmt.Println(lib.Hello()) }}\n"
        ),
    )
    .unwrap();
    let out = Command::new("go")
        .args(["run", "."])
        .current_dir(&app)
        .env("GOPROXY", format!("file://{}", tree.display()))
        .env("GONOSUMDB", "git.corp.example")
        .env_remove("GOPRIVATE")
        .env_remove("GONOPROXY")
        .env("GOFLAGS", "-mod=mod")
        .env("GOTOOLCHAIN", "local")
        .env("GOMODCACHE", scratch.join(format!("modcache-{version}")))
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("run go");
    assert!(
        out.status.success(),
        "go run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn private_modules_are_made_from_their_repositories_and_go_builds_from_the_mirror() {
    let s = Setup::new(None, "");
    let r = s.run(&["sync"]);
    r.expect(0);
    for v in ["v1.0.0", "v1.1.0"] {
        for ext in ["info", "mod", "zip"] {
            assert!(
                s.m.file(&version_file(MODULE, v, ext)).is_some(),
                "{MODULE}@{v}.{ext} missing\n{}",
                r.all()
            );
        }
    }
    let list = s.m.text(&format!("{MODULE}/@v/list")).unwrap();
    assert_eq!(list.lines().collect::<Vec<_>>(), ["v1.0.0", "v1.1.0"]);
    // No checksum database knows it: no lookup was asked for or written.
    assert!(
        !s.m.upstream
            .request_log()
            .iter()
            .any(|p| p.contains("git.corp.example")),
        "the upstream was asked about the private module"
    );
    // The public modules came from the proxy as always.
    for (p, v) in s.m.upstream.versions() {
        s.m.assert_mirrored(&p, &v);
    }
    let scratch = tempfile::tempdir().unwrap();
    assert_eq!(
        go_run_against(&s.m.out(), "v1.1.0", scratch.path()),
        "v1.1.0 content"
    );
    // The go command's cache is the mirror's own, beside the state
    // database, and keeps no made version (the next make asks the
    // repository again).
    let cache = s.m.dir.path().join(".state.db.private/modcache");
    assert!(cache.join("cache/vcs").is_dir(), "no clone cache");
    assert!(
        !cache
            .join(format!("cache/download/{MODULE}/@v/v1.0.0.zip"))
            .exists()
    );
    let st = s.m.status();
    assert_eq!(st["counts"]["published"], 3, "{st}");
    s.run(&["verify"]).expect(0);
    // A second sync makes both versions again (recheck_interval = 0s) and
    // finds them as they were.
    s.run(&["sync"]).expect(0);
}

#[test]
fn a_moved_tag_is_refused_and_the_first_content_stays_served() {
    let s = Setup::new(None, "");
    s.run(&["sync"]).expect(0);
    let zip = version_file(MODULE, "v1.0.0", "zip");
    let first = s.m.file(&zip).unwrap();

    s.repo.move_tag("v1.0.0");
    let r = s.run(&["sync"]);
    eprintln!("a moved tag, as reported:\n{}", r.all());
    r.expect(1)
        .contains(&format!("SECURITY: {MODULE}@v1.0.0"))
        .contains("a moved tag or a rewritten history");
    assert_eq!(s.m.file(&zip).unwrap(), first, "the tree's zip changed");
    // verify says so too, until the tag is back.
    let v = s.run(&["verify"]);
    v.expect(1)
        .contains("SECURITY")
        .contains(&format!("{MODULE}@v1.0.0"));

    // Made again from nothing (the zip lost): the moved tag is refused.
    std::fs::remove_file(s.m.out().join(&zip)).unwrap();
    let repair = s.run(&["verify", "--repair"]);
    repair.expect(1).contains("SECURITY");
    assert!(s.m.file(&zip).is_none(), "the other content was published");

    // The tag back where it was: the repair brings the first content back.
    git(&s.repo.work, &["tag", "-f", "v1.0.0", "HEAD~2"]);
    git(
        &s.repo.work,
        &["push", "-q", "-f", "origin", "refs/tags/v1.0.0"],
    );
    s.run(&["verify", "--repair"]).expect(0);
    assert_eq!(s.m.file(&zip).unwrap(), first);
    s.run(&["sync"]).expect(0);
    s.run(&["verify"]).expect(0);
}

#[test]
fn credentials_of_a_basic_auth_repository_never_show() {
    const PASSWORD: &str = "Pa55-priv8-xyzzy";
    let store = tempfile::tempdir().unwrap();
    let creds = store.path().join("git-credentials");
    let s = Setup::new(
        Some(("builder", PASSWORD)),
        &format!(
            "[credential]\n\thelper = store --file={}\n",
            creds.display()
        ),
    );
    // git's own credential store holds them (its file names the host the
    // insteadOf rewrite reaches).
    std::fs::write(
        &creds,
        format!("http://builder:{PASSWORD}@{}\n", s._server.addr),
    )
    .unwrap();
    let r = s.run(&["sync"]);
    r.expect(0);
    assert!(
        s._server.log.lock().unwrap().iter().any(|(_, ok)| *ok),
        "no authorized request reached the repository"
    );
    let leaks = |what: &str, bytes: &[u8]| {
        assert!(
            !bytes
                .windows(PASSWORD.len())
                .any(|w| w == PASSWORD.as_bytes()),
            "the password is in {what}"
        );
    };
    leaks("the output", r.all().as_bytes());

    // Wrong credentials written into the URL itself: the failure is
    // reported, the password in it never.
    std::fs::write(&creds, "").unwrap();
    std::fs::write(
        &s.gitconfig,
        format!(
            "[url \"http://builder:{PASSWORD}-WRONG@{}/\"]\n\tinsteadOf = https://git.corp.example/\n",
            s._server.addr
        ),
    )
    .unwrap();
    let failed = s.run(&["sync"]);
    assert_ne!(failed.code, 0, "{}", failed.all());
    eprintln!("refused credentials, as reported:\n{}", failed.all());
    leaks("the failed run's output", failed.all().as_bytes());
    for run in [s.run(&["status"]), s.run(&["status", "--json"])] {
        leaks("status", run.all().as_bytes());
    }
    leaks(
        "the state database",
        &std::fs::read(s.m.dir.path().join("state.db")).unwrap(),
    );
    for f in crate::common::files_under(&s.m.out()) {
        leaks(&f, &std::fs::read(s.m.out().join(&f)).unwrap());
    }
}

#[test]
fn a_missing_or_old_go_command_is_named_before_any_work() {
    let s = Setup::new(None, "");
    let bin = s.m.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let git_dir = Path::new("/usr/bin");
    // No go on the PATH at all.
    let r =
        s.m.run_env(&["sync"], &[("PATH", git_dir.to_str().unwrap())]);
    r.expect(2)
        .contains("no go command is on the PATH")
        .contains("go1.21");
    assert!(
        s.m.tree_files().is_empty(),
        "work was done: {:?}",
        s.m.tree_files()
    );
    // A go that is too old.
    let fake = bin.join("go");
    std::fs::write(&fake, "#!/bin/sh\necho go1.20.14\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin", bin.display());
    let r = s.m.run_env(&["sync"], &[("PATH", &path)]);
    r.expect(2)
        .contains("go1.20.14")
        .contains("too old")
        .contains("GOTOOLCHAIN=local");
}

#[test]
fn a_private_module_crosses_an_air_gap_in_a_signed_bundle_and_go_builds_it() {
    let s = Setup::new(None, "");
    let keys = tempfile::tempdir().unwrap();
    s.run(&[
        "keygen",
        "near.test/bundles",
        "--dir",
        keys.path().to_str().unwrap(),
    ])
    .expect(0);
    let vkey = std::fs::read_to_string(keys.path().join("near.test_bundles.pub")).unwrap();
    let mut m = s.m;
    m.cfg.extra.push_str(&format!(
        "\n[export]\nsigning_key = {:?}\n",
        keys.path()
            .join("near.test_bundles.key")
            .display()
            .to_string()
    ));
    m.write_config();
    let s = Setup { m, ..s };
    s.run(&["sync"]).expect(0);
    let media = tempfile::tempdir().unwrap();
    let bundle = export(&s.m, media.path(), &["--full"]);
    let carried = manifest(&bundle);
    let ledger = carried["ledger"].as_array().cloned().unwrap_or_default();
    assert_eq!(ledger.len(), 2, "{carried}");
    assert!(ledger.iter().all(|e| e["path"] == MODULE), "{carried}");

    let mut far = Far::new(&s.m.upstream.sumdb_key());
    far.skip = vec!["git.corp.example".into()];
    far.extra = format!("\n[import]\ntrusted_keys = [{:?}]\n", vkey.trim());
    far.write_config();
    far.import(&bundle).expect(0);
    let scratch = tempfile::tempdir().unwrap();
    assert_eq!(
        go_run_against(&far.out(), "v1.0.0", scratch.path()),
        "v1.0.0 content"
    );
    far.run(&["verify"]).expect(0);

    // A later bundle whose signed ledger says v1.0.0 is another content:
    // the far side refuses it, and keeps the first.
    let bundle2 = export(&s.m, media.path(), &["--full"]);
    let mut m2 = manifest(&bundle2);
    let entries = m2["ledger"].as_array_mut().unwrap();
    let e = entries
        .iter_mut()
        .find(|e| e["version"] == "v1.0.0")
        .unwrap();
    e["zip_h1"] = serde_json::json!("h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    let json = serde_json::to_vec(&m2).unwrap();
    std::fs::write(bundle2.join("manifest.json"), &json).unwrap();
    let id = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&json))
    };
    let key = std::fs::read_to_string(keys.path().join("near.test_bundles.key")).unwrap();
    let signer = gomirror::sumdb::note::Signer::parse(key.trim()).unwrap();
    std::fs::write(
        bundle2.join("manifest.json.sig"),
        signer.sign(&gomirror::bundle::signature_text(&id)),
    )
    .unwrap();
    let zip = far.out().join(version_file(MODULE, "v1.0.0", "zip"));
    let before = std::fs::read(&zip).unwrap();
    far.import(&bundle2)
        .expect(1)
        .contains(&format!("refused {MODULE}@v1.0.0: SECURITY"));
    assert_eq!(std::fs::read(&zip).unwrap(), before);
    far.run(&["verify"]).expect(1).contains("SECURITY");
}

#[test]
fn an_auth_command_s_headers_reach_only_their_prefix() {
    let mut m = Mirror::with(
        Corpus::generated(2, 1, 31),
        FakeOptions::default(),
        Cfg::default(),
    );
    let script = m.dir.path().join("proxy-token");
    let calls = m.dir.path().join("calls");
    // First run: a token; run again after a 401 (the URL as its argument,
    // the response on its input): a new one.
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nread -r status || status=none\necho \"$#|$1|$status\" >> {calls}\nif [ $# -gt 0 ]; then tok=tok-SECRET-456; else tok=tok-SECRET-123; fi\nprintf '%s\\n\\n%s\\n\\n' '{prefix}' \"Authorization: Bearer $tok\"\n",
            calls = calls.display(),
            prefix = m.upstream.proxy_url()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    m.cfg.upstream_extra = format!("auth_command = {:?}", script.display().to_string());
    m.write_config();
    // The first token has expired: the first request under the prefix is
    // refused.
    m.upstream.inject(crate::support::Fault::FailFirst {
        path_prefix: "/proxy/".into(),
        times: 1,
        status: 401,
    });
    let r = m.sync();
    r.expect(0);
    assert!(!r.all().contains("tok-SECRET"), "{}", r.all());
    let auths = m.upstream.authorizations();
    assert!(
        auths
            .iter()
            .any(|(p, a)| p.starts_with("/proxy/") && a == "Bearer tok-SECRET-456"),
        "{auths:?}"
    );
    // Not the index, not the checksum database: outside the prefix.
    assert!(
        auths.iter().all(|(p, _)| p.starts_with("/proxy/")),
        "{auths:?}"
    );
    let runs: Vec<String> = std::fs::read_to_string(&calls)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[0], "0||none");
    let rerun: Vec<&str> = runs[1].split('|').collect();
    assert!(
        rerun[0] == "1"
            && rerun[1].starts_with(&format!("{}/", m.upstream.proxy_url()))
            && rerun[2].contains("401"),
        "{runs:?}"
    );
    let db = std::fs::read(m.dir.path().join("state.db")).unwrap();
    assert!(!db.windows(10).any(|w| w == b"tok-SECRET"));
    for f in m.tree_files() {
        let b = std::fs::read(m.out().join(&f)).unwrap();
        assert!(!b.windows(10).any(|w| w == b"tok-SECRET"), "{f}");
    }
}

#[test]
fn project_files_name_private_modules_too() {
    let mut s = Setup::new(None, "");
    std::fs::write(
        s.m.dir.path().join("wanted.txt"),
        format!("{MODULE}@v1.0.0\n"),
    )
    .unwrap();
    s.m.cfg.seed.clear();
    s.m.cfg.include.clear();
    s.m.cfg.extra.push_str("");
    s.m.write_config();
    let text = std::fs::read_to_string(s.m.config_path())
        .unwrap()
        .replace("seed = []", "seed = []\nfrom_files = [\"wanted.txt\"]");
    std::fs::write(s.m.config_path(), text).unwrap();
    s.run(&["sync"]).expect(0);
    assert!(s.m.file(&version_file(MODULE, "v1.0.0", "zip")).is_some());
    assert!(s.m.file(&version_file(MODULE, "v1.1.0", "zip")).is_none());
}
