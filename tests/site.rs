//! The mirror's pages: written into the tree by sync, import and
//! prune; only what changed is rewritten; a module with nothing left loses
//! its page and its listing; a follower and a far side describe themselves;
//! and the pages in a real browser — headless Chromium loading them from
//! nginx with the shipped site (the search finds a module, a module page
//! lists its versions and marks, no console error, no failed request), and
//! from `file://` — with a screenshot of the front page kept under
//! `target/tmp/site/` for a person to look at.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use gomirror::store::layout::Key;

use crate::common::*;
use crate::e2e::{Nginx, require};
use crate::support::vulndb::{FakeVulnDb, VulnDb};
use crate::support::{Corpus, ModuleVersionSpec};
use crate::vuln::mirror_with_vulndb;

fn with_go_mod(path: &str, version: &str, go_mod: &str) -> ModuleVersionSpec {
    let mut s = ModuleVersionSpec::new(path, version);
    s.go_mod = Some(go_mod.to_string());
    s
}

/// Modules with something to show: a vulnerable version (the fixtures'
/// GO-2021-0113 covers x/text below v0.3.7), retractions, a deprecation
/// whose message is markup, toolchains, an upper-case path and a /v2.
fn corpus() -> Corpus {
    let retracting =
        "module example.com/retracting\n\ngo 1.21\n\n// Published too early.\nretract v1.0.0\n";
    let deprecated = "// Deprecated: use <script>alert(1)</script> & example.com/new.\nmodule example.com/old\n\ngo 1.21\n";
    Corpus::new()
        .with(ModuleVersionSpec::new("golang.org/x/text", "v0.3.6"))
        .with(ModuleVersionSpec::new("golang.org/x/text", "v0.3.7"))
        .with(ModuleVersionSpec::new("golang.org/x/net", "v0.23.0"))
        .with(ModuleVersionSpec::new("example.com/retracting", "v1.0.0"))
        .with(with_go_mod("example.com/retracting", "v1.2.0", retracting))
        .with(ModuleVersionSpec::new("example.com/old", "v1.0.0"))
        .with(with_go_mod("example.com/old", "v1.1.0", deprecated))
        .with_upper_case()
        .with_major_v2()
        .with_toolchains("go1.22.1", &["linux-amd64"])
}

fn mirror() -> (Mirror, FakeVulnDb) {
    let fake = FakeVulnDb::start(&VulnDb::fixtures());
    let mut m = mirror_with_vulndb(corpus(), &fake);
    m.cfg
        .extra
        .push_str("\n[site]\nurl = \"https://goproxy.example.test/\"\n");
    m.write_config();
    // mirror.name for the pages.
    let cfg = std::fs::read_to_string(m.config_path()).unwrap().replace(
        "state = \"state.db\"",
        "state = \"state.db\"\nname = \"pages.test\"",
    );
    std::fs::write(m.config_path(), cfg).unwrap();
    (m, fake)
}

/// Every file under `site/`, by tree path.
fn site_files(out: &Path) -> BTreeMap<String, Vec<u8>> {
    files_under(&out.join("site"))
        .into_iter()
        .map(|f| {
            let b = std::fs::read(out.join("site").join(&f)).unwrap();
            (format!("site/{f}"), b)
        })
        .collect()
}

fn page_of(module: &str) -> String {
    format!("site/m/{}/@.html", escape(module))
}

fn text(m: &Mirror, rel: &str) -> String {
    m.text(rel).unwrap_or_else(|| panic!("{rel} missing"))
}

#[test]
fn the_pages_describe_the_mirror_and_every_module() {
    let (m, _fake) = mirror();
    m.sync().expect(0);
    let files = site_files(&m.out());
    // Every file is one gomirror names, under `site/`.
    for f in files.keys() {
        assert!(
            matches!(Key::parse(f), Some(Key::Site(_))),
            "{f} is not a page's key"
        );
    }
    let front = text(&m, "site/index.html");
    for want in [
        "<title>pages.test — Go module mirror</title>",
        "go env -w GOPROXY=https://goproxy.example.test\n",
        "GOSUMDB=",
        "go env -w GOTOOLCHAIN=auto",
        "govulncheck -db https://goproxy.example.test/vuln ./...",
        "<dt>Go toolchains</dt><dd>1</dd>",
        "index is read up to",
        "<svg",
        "Recently added",
        "Last successful sync",
    ] {
        assert!(
            front.contains(want),
            "the front page lacks {want:?}:\n{front}"
        );
    }
    // Every module has a page listing every version it holds.
    let versions = m.upstream.versions();
    let modules: std::collections::BTreeSet<&str> =
        versions.iter().map(|(p, _)| p.as_str()).collect();
    for (p, v) in &versions {
        let page = text(&m, &page_of(p));
        assert!(
            page.contains(&format!("<th scope=\"row\">{v}</th>")),
            "{p}: its page does not list {v}"
        );
    }
    // The marks: vulnerable with its fix, retracted, deprecated (escaped).
    let text_page = text(&m, &page_of("golang.org/x/text"));
    let row = |page: &str, v: &str| -> String {
        let start = page.find(&format!("<th scope=\"row\">{v}</th>")).unwrap();
        page[start..page[start..].find("</tr>").unwrap() + start].to_string()
    };
    assert!(
        row(&text_page, "v0.3.6").contains("vulnerable: <a href=\"../../../../../vuln/ID/GO-2021-0113.json\">GO-2021-0113</a>, fixed in v0.3.7"),
        "{text_page}"
    );
    assert!(!row(&text_page, "v0.3.7").contains("vulnerable"));
    let retracting = text(&m, &page_of("example.com/retracting"));
    assert!(row(&retracting, "v1.0.0").contains("retracted: Published too early."));
    assert!(!row(&retracting, "v1.2.0").contains("retracted"));
    let old = text(&m, &page_of("example.com/old"));
    assert!(
        old.contains(
            "Deprecated.</strong> use &lt;script&gt;alert(1)&lt;/script&gt; &amp; example.com/new."
        ),
        "{old}"
    );
    assert!(!old.contains("<script>alert"));
    // The toolchain's versions are Go releases: their page too.
    assert!(files.contains_key(&page_of("golang.org/toolchain")));
    // The search: one listing holds every module (a small mirror has one
    // shard), and its list of shards says so.
    let all = text(&m, "site/search/index.html");
    for p in &modules {
        assert!(all.contains(&format!(">{p}</a></li>")), "{p} not listed");
    }
    assert_eq!(text(&m, "site/search/shards.json"), "[\"\"]\n");
    // They belong in the tree: prune finds no stray among them.
    m.run(&["prune", "--dry-run"])
        .expect(0)
        .contains("0 stray files");
    m.run(&["verify"]).expect(0);
}

/// Inode of every page: a rename writes a new one.
fn inodes(out: &Path) -> BTreeMap<String, u64> {
    files_under(&out.join("site"))
        .into_iter()
        .map(|f| {
            let ino = std::fs::metadata(out.join("site").join(&f)).unwrap().ino();
            (format!("site/{f}"), ino)
        })
        .collect()
}

#[test]
fn only_the_pages_of_what_changed_are_written_again() {
    let m = Mirror::new(Corpus::generated(6, 2, 3));
    m.sync().expect(0);
    let before = inodes(&m.out());
    // Nothing new: the front page alone says when it was written.
    m.sync().expect(0);
    let same = inodes(&m.out());
    let changed: Vec<&String> = same.keys().filter(|k| before[*k] != same[*k]).collect();
    assert!(
        changed.iter().all(|k| *k == "site/index.html"),
        "a run with nothing new rewrote {changed:?}"
    );
    // One new version of one module, one new module.
    m.upstream
        .add(ModuleVersionSpec::new("example.com/gen/m1", "v1.9.0"));
    m.upstream
        .add(ModuleVersionSpec::new("example.com/fresh", "v0.1.0"));
    m.sync().expect(0);
    let after = inodes(&m.out());
    let mut changed: Vec<&str> = after
        .keys()
        .filter(|k| before.get(*k) != Some(&after[*k]))
        .map(String::as_str)
        .collect();
    changed.sort();
    let m1 = page_of("example.com/gen/m1");
    let fresh = page_of("example.com/fresh");
    assert_eq!(
        changed,
        [
            "site/index.html",
            &fresh,
            &m1,
            // The new module is filed in the (only) shard.
            "site/search/index.html",
        ],
        "more than the changed modules' pages were written"
    );
    assert!(text(&m, &m1).contains("<th scope=\"row\">v1.9.0</th>"));
    assert!(text(&m, "site/index.html").contains(">example.com/fresh</a>"));
}

#[test]
fn a_module_with_nothing_left_loses_its_page_and_its_listing() {
    let mut m = Mirror::new(Corpus::generated(3, 2, 5));
    m.sync().expect(0);
    let gone = "example.com/gen/m1";
    assert!(m.file(&page_of(gone)).is_some());
    assert!(text(&m, "site/search/index.html").contains(gone));
    m.cfg.exclude = vec![gone.into()];
    m.write_config();
    m.run(&["prune"]).expect(0).contains("deleted");
    assert!(m.file(&page_of(gone)).is_none(), "its page is still there");
    assert!(!text(&m, "site/search/index.html").contains(gone));
    assert!(
        !m.out().join(format!("site/m/{gone}")).exists(),
        "its page's directory is left"
    );
    assert!(m.file(&page_of("example.com/gen/m2")).is_some());
    m.sync().expect(0);
    m.run(&["prune", "--dry-run"])
        .expect(0)
        .contains("0 stray files");
}

#[test]
fn pages_can_be_turned_off_and_a_bad_url_is_refused() {
    let mut m = Mirror::new(Corpus::generated(1, 1, 5));
    m.cfg.extra = "\n[site]\nenabled = false\n".into();
    m.write_config();
    m.sync().expect(0);
    assert!(!m.out().join("site").exists());
    m.cfg.extra = "\n[site]\nurl = \"https://user:secret@mirror.example/\"\n".into();
    m.write_config();
    let r = m.sync();
    r.expect(2).contains("site.url");
    assert!(!r.all().contains("secret"), "{}", r.all());
}

/// Headless Chromium, driven from the command line: it loads a URL, runs
/// its scripts for a while of virtual time and prints the DOM; what the
/// pages write to the console comes out on stderr.
struct Browser {
    bin: PathBuf,
    profile: tempfile::TempDir,
}

struct Loaded {
    dom: String,
    console: Vec<String>,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            bin: require("chromium"),
            profile: tempfile::tempdir().unwrap(),
        }
    }

    fn command(&self) -> Command {
        // `timeout` ends it (and so its children) if it hangs.
        let mut c = Command::new("timeout");
        c.arg("120")
            .arg(&self.bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-dev-shm-usage",
                "--enable-logging=stderr",
                "--v=0",
            ])
            .arg(format!("--user-data-dir={}", self.profile.path().display()));
        c
    }

    fn load(&self, url: &str) -> Loaded {
        let out = self
            .command()
            .args(["--virtual-time-budget=10000", "--dump-dom", url])
            .output()
            .expect("run chromium");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "chromium {url}: {stderr}");
        Loaded {
            dom: String::from_utf8_lossy(&out.stdout).into_owned(),
            console: stderr
                .lines()
                .filter(|l| l.contains(":CONSOLE"))
                .map(str::to_string)
                .collect(),
        }
    }

    fn screenshot(&self, url: &str, path: &Path) {
        let out = self
            .command()
            .args([
                "--window-size=1280,2600",
                "--hide-scrollbars",
                "--virtual-time-budget=5000",
            ])
            .arg(format!("--screenshot={}", path.display()))
            .arg(url)
            .output()
            .expect("run chromium");
        assert!(
            out.status.success() && path.is_file(),
            "chromium --screenshot: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The requests nginx answered with an error since line `from` of its log.
fn failed_requests(nginx: &Nginx, from: usize) -> Vec<String> {
    std::fs::read_to_string(nginx.access_log())
        .unwrap_or_default()
        .lines()
        .skip(from)
        .filter(|l| {
            l.split('"')
                .nth(2)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|s| s.parse::<u16>().ok())
                .is_some_and(|s| s >= 400)
        })
        .map(str::to_string)
        .collect()
}

fn log_len(nginx: &Nginx) -> usize {
    std::fs::read_to_string(nginx.access_log())
        .unwrap_or_default()
        .lines()
        .count()
}

/// The `<ul id="results">` of a DOM.
fn results(dom: &str) -> &str {
    let start = dom.find("<ul id=\"results\"").expect("a results list");
    &dom[start..start + dom[start..].find("</ul>").unwrap()]
}

/// WCAG's contrast ratio of two `#rrggbb` colours.
fn contrast(a: &str, b: &str) -> f64 {
    let lum = |hex: &str| {
        let c = |i: usize| {
            let v = u8::from_str_radix(&hex[1 + 2 * i..3 + 2 * i], 16).unwrap() as f64 / 255.0;
            if v <= 0.03928 {
                v / 12.92
            } else {
                ((v + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * c(0) + 0.7152 * c(1) + 0.0722 * c(2)
    };
    let (x, y) = (lum(a), lum(b));
    (x.max(y) + 0.05) / (x.min(y) + 0.05)
}

#[test]
fn the_pages_in_a_real_browser() {
    let (m, _fake) = mirror();
    m.sync().expect(0);
    // A few runs for the chart: one with nothing new, one with a version.
    m.sync().expect(0);
    m.upstream
        .add(ModuleVersionSpec::new("golang.org/x/net", "v0.24.0"));
    m.sync().expect(0);
    let nginx = Nginx::serve(&m.out());
    let browser = Browser::new();
    let base = nginx.url();

    // `/` leads to the front page.
    let r = crate::support::http::get(&format!("{base}/")).unwrap();
    assert_eq!(r.status, 302);
    let start = log_len(&nginx);

    // The front page: headings, a labelled search box, the chart.
    let front = browser.load(&format!("{base}/site/"));
    assert!(front.console.is_empty(), "console: {:?}", front.console);
    let dom = &front.dom;
    assert_eq!(dom.matches("<h1").count(), 1, "one h1");
    for want in [
        "<html lang=\"en\"",
        "<h1>pages.test</h1>",
        "<h2 id=\"use\">Use this mirror</h2>",
        "<label for=\"q\">",
        "<input id=\"q\" name=\"q\" type=\"search\"",
        "role=\"img\" aria-labelledby=\"chart-title chart-desc\"",
        "<title id=\"chart-title\">",
    ] {
        assert!(dom.contains(want), "the front page's DOM lacks {want:?}");
    }

    // The search finds a module by its last element, and by a longer part
    // of its path; and says when nothing matches.
    let found = browser.load(&format!("{base}/site/index.html?q=text"));
    assert!(found.console.is_empty(), "console: {:?}", found.console);
    let list = results(&found.dom);
    assert!(list.contains(">golang.org/x/text</a></li>"), "{list}");
    assert!(found.dom.contains("1 module."), "{}", found.dom);
    let found = browser.load(&format!(
        "{base}/site/index.html?q=example.com%2FUpper%2FCase"
    ));
    assert!(
        results(&found.dom).contains(">example.com/Upper/Case</a>"),
        "{}",
        results(&found.dom)
    );
    let none = browser.load(&format!("{base}/site/index.html?q=zzznothing"));
    assert!(none.dom.contains("No module named “zzznothing” here."));
    assert!(results(&none.dom).find("<li>").is_none());

    // The result's link leads to the module's page, which lists its versions.
    let href = list
        .split("href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    assert_eq!(href, format!("{base}/site/m/golang.org/x/text/@.html"));
    let module = browser.load(&href);
    assert!(module.console.is_empty(), "console: {:?}", module.console);
    for want in [
        "<h1>golang.org/x/text</h1>",
        "<th scope=\"row\">v0.3.7</th>",
        "<th scope=\"row\">v0.3.6</th>",
        "vulnerable:",
    ] {
        assert!(module.dom.contains(want), "the module page lacks {want:?}");
    }
    // Its links reach the proxy's own files, and the search's listing works without a script.
    for path in [
        "/golang.org/x/text/@v/v0.3.6.zip",
        "/golang.org/x/text/@v/list",
        "/vuln/ID/GO-2021-0113.json",
        "/site/search/index.html",
    ] {
        let r = crate::support::http::get(&format!("{base}{path}")).unwrap();
        assert_eq!(r.status, 200, "{path}");
    }
    let listing = browser.load(&format!("{base}/site/search/index.html"));
    assert!(listing.dom.contains(">golang.org/x/net</a></li>"));
    let failed = failed_requests(&nginx, start);
    assert!(failed.is_empty(), "requests that failed: {failed:?}");

    // The colours the pages use keep WCAG AA contrast on their backgrounds.
    let css = text(&m, "site/style.css");
    let mut pairs = 0;
    for rule in css.split('}') {
        let colour = |prop: &str| {
            rule.split(';')
                .filter_map(|d| d.trim().strip_prefix(prop))
                .filter_map(|v| v.trim().strip_prefix(':'))
                .map(str::trim)
                .find(|v| v.starts_with('#') && v.len() == 7)
                .map(str::to_string)
        };
        let fg = colour("color");
        let bg = colour("background").or_else(|| Some("#ffffff".to_string()));
        if let (Some(fg), Some(bg)) = (fg, bg) {
            let c = contrast(&fg, &bg);
            assert!(c >= 4.5, "{fg} on {bg}: {c:.2} in {rule:?}");
            pairs += 1;
        }
    }
    assert!(pairs >= 8, "found {pairs} colour pairs in the stylesheet");

    // From file:// the lists and pages read the same; the box says why it
    // cannot search there (a page may not read files beside it).
    let file = browser.load(&format!("file://{}/site/index.html", m.out().display()));
    assert!(file.console.is_empty(), "console: {:?}", file.console);
    assert!(
        file.dom
            .contains("Searching needs the pages served over HTTP")
    );
    let file_module = browser.load(&format!(
        "file://{}/site/m/golang.org/x/text/@.html",
        m.out().display()
    ));
    assert!(file_module.dom.contains("<th scope=\"row\">v0.3.6</th>"));

    // The screenshot a person looks at.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("site");
    std::fs::create_dir_all(&dir).unwrap();
    browser.screenshot(&format!("{base}/site/"), &dir.join("front.png"));
    browser.screenshot(&href, &dir.join("module.png"));
    browser.screenshot(
        &format!("{base}/site/index.html?q=text"),
        &dir.join("search.png"),
    );
}

#[test]
fn a_follower_and_a_far_side_describe_themselves() {
    let m = Mirror::new(Corpus::generated(2, 2, 9));
    m.sync().expect(0);
    let nginx = Nginx::serve(&m.out());
    let name = m.upstream.sumdb_name();
    let f = crate::feed::Follower::new(
        &nginx.url(),
        &m.upstream.sumdb_key(),
        &name,
        "\n[site]\nurl = \"http://tier2.example.test/\"\n",
    );
    let cfg = f.dir.path().join("sync.toml");
    let text_cfg = std::fs::read_to_string(&cfg).unwrap().replace(
        "state = \"state.db\"",
        "state = \"state.db\"\nname = \"tier2.test\"",
    );
    std::fs::write(&cfg, text_cfg).unwrap();
    gomirror(&cfg, &["sync"]).expect(0);
    let front = std::fs::read_to_string(f.dir.path().join("mirror/site/index.html")).unwrap();
    assert!(front.contains("<h1>tier2.test</h1>"), "{front}");
    assert!(front.contains("go env -w GOPROXY=http://tier2.example.test\n"));
    assert!(front.contains(&format!(
        "follows the change feed of the mirror at <code>{}/</code>",
        nginx.url()
    )));
    assert!(
        f.dir
            .path()
            .join("mirror/site/m/example.com/gen/m1/@.html")
            .is_file()
    );

    // A far side fed by a bundle: its own name, and where its bundles come from.
    let media = tempfile::tempdir().unwrap();
    let bundle = crate::airgap::export(&m, media.path(), &[]);
    let far = crate::airgap::Far::new(&m.upstream.sumdb_key());
    far.import(&bundle).expect(0);
    let front = std::fs::read_to_string(far.out().join("site/index.html")).unwrap();
    assert!(front.contains("<h1>far.test</h1>"), "{front}");
    assert!(front.contains("fed by bundles exported by"), "{front}");
    assert!(front.contains("bundle 1 was imported"));
    assert!(far.out().join(page_of("example.com/gen/m1")).is_file());
    far.run(&["prune", "--dry-run"])
        .expect(0)
        .contains("0 stray files");
}

#[test]
fn the_pages_from_a_bucket_through_nginx() {
    use crate::s3::{NginxS3, PREFIX, run, web_get};
    let g = crate::garage::Garage::start();
    let bucket = g.bucket();
    let cfg = Cfg {
        output: Some(format!("s3://{bucket}/{PREFIX}")),
        extra: format!(
            "\n[s3]\nendpoint = \"{}\"\nregion = \"garage\"\n",
            g.endpoint()
        ),
        ..Cfg::default()
    };
    let mut m = Mirror::with(
        Corpus::generated(3, 2, 11),
        crate::support::FakeOptions::default(),
        cfg,
    );
    run(&m, &g, &["sync"]).expect(0);
    assert!(!m.out().exists(), "a bucket mirror writes no local tree");
    let (status, page) = web_get(&g, &bucket, &page_of("example.com/gen/m1"));
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&page).contains("<h1>example.com/gen/m1</h1>"));

    // Through the shipped nginx site for a bucket: `/` leads to the front
    // page, every kind of file of the pages has its type.
    let nginx = NginxS3::serve(&g, &bucket);
    let base = nginx.url();
    let get = |path: &str| crate::support::http::get(&format!("{base}{path}")).unwrap();
    let root = get("/");
    assert_eq!(root.status, 302);
    assert_eq!(root.header("location"), Some("/site/"));
    for (path, kind) in [
        ("/site/", "text/html; charset=utf-8"),
        ("/site/index.html", "text/html; charset=utf-8"),
        ("/site/style.css", "text/css; charset=utf-8"),
        ("/site/search.js", "text/javascript; charset=utf-8"),
        ("/site/search/shards.json", "application/json"),
        ("/site/search/index.html", "text/html; charset=utf-8"),
        (
            "/site/m/example.com/gen/m1/@.html",
            "text/html; charset=utf-8",
        ),
    ] {
        let r = get(path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some(kind), "{path}");
    }
    // The search, in a browser, from the bucket.
    let browser = Browser::new();
    let found = browser.load(&format!("{base}/site/index.html?q=m1"));
    assert!(found.console.is_empty(), "console: {:?}", found.console);
    assert!(
        results(&found.dom).contains(">example.com/gen/m1</a></li>"),
        "{}",
        found.dom
    );

    // A module gone from the bucket takes its page along.
    m.cfg.exclude = vec!["example.com/gen/m1".into()];
    m.write_config();
    run(&m, &g, &["sync"]).expect(0);
    assert_eq!(web_get(&g, &bucket, &page_of("example.com/gen/m1")).0, 404);
    let (_, listing) = web_get(&g, &bucket, "site/search/index.html");
    assert!(!String::from_utf8_lossy(&listing).contains("example.com/gen/m1"));
    run(&m, &g, &["prune", "--dry-run"])
        .expect(0)
        .contains("0 stray files");
}
