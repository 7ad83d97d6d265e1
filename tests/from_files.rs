//! Issue 11: `[filter].from_files` — mirrors from go.sum, go.mod and module
//! lists. The heart is end to end: the real go command resolves a project
//! against the fake upstream, gomirror syncs from the project's go.sum (and
//! separately from its go.mod alone) with the index off, the upstream is
//! switched off, and go builds, verifies and tidies the project through nginx
//! with a fresh module cache, checking everything against the mirror's
//! `sumdb/`.

use std::path::Path;

use crate::common::*;
use crate::e2e::{GoClient, Nginx};
use crate::no_index::feedless;
use crate::support::corpus::{PROJECT_GO_MOD, PROJECT_MAIN_GO};
use crate::support::{Corpus, FakeOptions};

/// Points the mirror at no index feed, `include = []`, and these files.
fn from_files(m: &Mirror, files: &[&str]) {
    let list = files
        .iter()
        .map(|f| format!("{f:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    feedless(m, &format!("include = []\nfrom_files = [{list}]"));
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// The project, resolved online by the real go command against the fake
/// upstream (`go mod tidy`): its directory holds go.mod, go.sum and main.go.
fn tidy_project_online(m: &Mirror, dir: &Path) {
    write(dir, "go.mod", PROJECT_GO_MOD);
    write(dir, "main.go", PROJECT_MAIN_GO);
    let online = GoClient::new(
        &m.upstream.proxy_url(),
        &format!("{} {}", m.upstream.sumdb_key(), m.upstream.sumdb_url()),
    );
    let (ok, out) = online.run_in(dir, &["mod", "tidy"]);
    assert!(ok, "go mod tidy against the upstream failed:\n{out}");
}

/// go.sum lines as (module, version, go.mod only).
fn go_sum_entries(text: &str) -> Vec<(String, String, bool)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (v, go_mod) = match f.get(1)?.strip_suffix("/go.mod") {
                Some(v) => (v, true),
                None => (f[1], false),
            };
            Some((f[0].to_string(), v.to_string(), go_mod))
        })
        .collect()
}

/// Builds, verifies and tidies a copy of `project` with a fresh module
/// cache through `nginx` (checksums through the mirror's `sumdb/`); returns
/// the program's output. `go.sum` is copied only when `with_sum`.
fn build_offline(m: &Mirror, nginx: &Nginx, project: &Path, with_sum: bool) -> String {
    let go = GoClient::new(&nginx.url(), &m.upstream.sumdb_key());
    let app = go.home.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    for f in ["go.mod", "main.go"] {
        std::fs::copy(project.join(f), app.join(f)).unwrap();
    }
    if with_sum {
        std::fs::copy(project.join("go.sum"), app.join("go.sum")).unwrap();
    }
    let (ok, out) = go.run_in(&app, &["build", "-o", "app", "."]);
    assert!(ok, "go build through the mirror failed:\n{out}");
    let (ok, out) = go.run_in(&app, &["mod", "verify"]);
    assert!(
        ok && out.contains("all modules verified"),
        "go mod verify:\n{out}"
    );
    let before = std::fs::read_to_string(app.join("go.mod")).unwrap();
    let (ok, out) = go.run_in(&app, &["mod", "tidy"]);
    assert!(ok, "go mod tidy through the mirror failed:\n{out}");
    assert_eq!(
        std::fs::read_to_string(app.join("go.mod")).unwrap(),
        before,
        "tidy changed go.mod"
    );
    if with_sum {
        assert_eq!(
            std::fs::read_to_string(app.join("go.sum")).unwrap(),
            std::fs::read_to_string(project.join("go.sum")).unwrap(),
            "tidy through the mirror wrote another go.sum than online"
        );
    }
    let run = std::process::Command::new(app.join("app"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&run.stdout).into_owned()
}

#[test]
fn go_builds_offline_from_a_mirror_synced_from_its_go_sum() {
    let m = Mirror::with(Corpus::project(), FakeOptions::default(), Cfg::default());
    let project = m.dir.path().join("app");
    tidy_project_online(&m, &project);
    let gosum = std::fs::read_to_string(project.join("go.sum")).unwrap();
    let entries = go_sum_entries(&gosum);
    let whole: Vec<(String, String)> = entries
        .iter()
        .filter(|e| !e.2)
        .map(|e| (e.0.clone(), e.1.clone()))
        .collect();
    let graph_only: Vec<(String, String)> = entries
        .iter()
        .filter(|e| e.2 && !whole.contains(&(e.0.clone(), e.1.clone())))
        .map(|e| (e.0.clone(), e.1.clone()))
        .collect();
    assert!(
        graph_only.len() >= 2,
        "the project's go.sum should name versions for their go.mod alone:\n{gosum}"
    );

    from_files(&m, &["app/go.sum"]);
    m.upstream.clear_request_log();
    let run = m.sync();
    run.expect(0).contains("files: 1 file name");
    let requests = m.upstream.request_log();
    assert!(
        !requests.iter().any(|r| r.contains("/index")),
        "the index was asked: {requests:?}"
    );
    // What the sync cost: printed for the record (the closing note).
    let summary = run.stdout.lines().next().unwrap_or("").to_string();
    eprintln!(
        "go.sum sync: {} requests to the upstream ({} to the proxy, {} to the checksum database); {summary}",
        requests.len(),
        requests.iter().filter(|r| !r.contains("/sumdb/")).count(),
        requests.iter().filter(|r| r.contains("/sumdb/")).count(),
    );

    for (p, v) in &whole {
        m.assert_mirrored(p, v);
    }
    for (p, v) in &graph_only {
        for ext in ["info", "mod"] {
            assert!(
                m.file(&version_file(p, v, ext)).is_some(),
                "{p}@{v}.{ext} missing"
            );
        }
        assert!(
            m.file(&version_file(p, v, "zip")).is_none(),
            "{p}@{v} is graph-only, but its zip was mirrored"
        );
        let list = m
            .text(&format!("{}/@v/list", escape(p)))
            .unwrap_or_default();
        assert!(
            !list.lines().any(|l| l == v),
            "graph-only {p}@{v} is listed:\n{list}"
        );
    }
    // Nothing the go.sum does not name.
    m.assert_absent("example.com/other/x", "v1.0.0");
    m.assert_absent("example.com/proj/d", "v0.2.0");

    let status = m.status();
    let files = &status["from_files"];
    assert_eq!(files[0]["file"], "app/go.sum", "{status}");
    let named = whole.len() + graph_only.len();
    assert_eq!(files[0]["versions"], named as u64, "{status}");
    assert_eq!(files[0]["mirrored"], named as u64, "{status}");
    assert_eq!(files[0]["graph_only"], graph_only.len() as u64, "{status}");
    assert_eq!(status["counts"]["graph_only"], graph_only.len() as u64);
    let text = m.run(&["status"]);
    text.expect(0).contains(&format!(
        "app/go.sum (go.sum): {named} versions named, {named} mirrored"
    ));
    m.run(&["verify"]).expect(0);
    // A second sync has nothing to do, and prunes nothing.
    m.sync().expect(0).contains("published 0 new versions");

    let nginx = Nginx::serve(&m.out());
    switch_off(&m);
    let printed = build_offline(&m, &nginx, &project, true);
    assert!(
        printed.contains(
            "example.com/proj/a@v1.1.0 example.com/proj/b@v1.1.0 example.com/proj/c@v1.2.0"
        ),
        "{printed}"
    );
    assert_upstream_untouched(&m);
}

#[test]
fn go_builds_offline_from_a_mirror_synced_from_its_go_mod_alone() {
    let m = Mirror::with(Corpus::project(), FakeOptions::default(), Cfg::default());
    let online = m.dir.path().join("online");
    tidy_project_online(&m, &online);
    // Only the tidied go.mod (and the code) go to the mirror's side.
    let project = m.dir.path().join("app");
    for f in ["go.mod", "main.go"] {
        write(
            &project,
            f,
            &std::fs::read_to_string(online.join(f)).unwrap(),
        );
    }
    from_files(&m, &["app/go.mod"]);
    m.upstream.clear_request_log();
    let run = m.sync();
    run.expect(0);
    let requests = m.upstream.request_log();
    eprintln!(
        "go.mod sync: {} requests to the upstream ({} .mod, of them {} while walking the graph); {}",
        requests.len(),
        requests.iter().filter(|r| r.ends_with(".mod")).count(),
        requests.iter().filter(|r| r.ends_with(".mod")).count()
            - requests.iter().filter(|r| r.ends_with(".info")).count(),
        run.stdout.lines().next().unwrap_or("")
    );
    // Every version the online go.sum names is there, zips where go.sum has them.
    let gosum = std::fs::read_to_string(online.join("go.sum")).unwrap();
    for (p, v, go_mod) in go_sum_entries(&gosum) {
        let ext = if go_mod { "mod" } else { "zip" };
        assert!(
            m.file(&version_file(&p, &v, ext)).is_some(),
            "{p}@{v}: .{ext} missing (go.sum names it)"
        );
    }
    m.assert_absent("example.com/other/x", "v1.0.0");
    m.assert_absent("example.com/proj/d", "v0.2.0");
    m.run(&["verify"]).expect(0);
    // The next sync walks the graph again from the tree's .mod files.
    m.upstream.clear_request_log();
    m.sync().expect(0).contains("published 0 new versions");
    let asked = m.upstream.request_log();
    assert!(
        !asked.iter().any(|r| r.ends_with(".mod")),
        "mirrored .mod files were fetched again: {asked:?}"
    );

    let nginx = Nginx::serve(&m.out());
    switch_off(&m);
    let printed = build_offline(&m, &nginx, &project, false);
    assert!(printed.contains("example.com/proj/e@v1.0.0"), "{printed}");
    assert_upstream_untouched(&m);
}

/// A go.sum for `versions` as the upstream hashes them: (module, version, with zip).
fn go_sum_for(m: &Mirror, versions: &[(&str, &str, bool)]) -> String {
    let mut out = String::new();
    for (p, v, zip) in versions {
        let (zip_h1, mod_h1) = m.upstream.hashes(p, v).unwrap();
        if *zip {
            out.push_str(&format!("{p} {v} {zip_h1}\n"));
        }
        out.push_str(&format!("{p} {v}/go.mod {mod_h1}\n"));
    }
    out
}

/// `projects/app/go.sum` naming example.com/proj/c whole and
/// example.com/proj/d for its go.mod alone (graph-only).
fn write_app_go_sum(m: &Mirror) {
    write(
        m.dir.path(),
        "projects/app/go.sum",
        &go_sum_for(
            m,
            &[
                ("example.com/proj/c", "v1.2.0", true),
                ("example.com/proj/d", "v0.1.0", false),
            ],
        ),
    );
}

#[test]
fn a_go_sum_line_that_disagrees_with_the_checksum_database_is_refused_and_named() {
    let m = Mirror::with(Corpus::project(), FakeOptions::default(), Cfg::default());
    let mut text = go_sum_for(
        &m,
        &[
            ("example.com/proj/d", "v0.1.0", true),
            ("example.com/proj/c", "v1.0.0", true),
        ],
    );
    // Line 3: c's zip hash, replaced by d's.
    let (d_zip, _) = m.upstream.hashes("example.com/proj/d", "v0.1.0").unwrap();
    let (c_zip, _) = m.upstream.hashes("example.com/proj/c", "v1.0.0").unwrap();
    text = text.replace(&format!("v1.0.0 {c_zip}"), &format!("v1.0.0 {d_zip}"));
    assert_eq!(
        text.lines().nth(2).unwrap(),
        format!("example.com/proj/c v1.0.0 {d_zip}")
    );
    write(m.dir.path(), "p/go.sum", &text);
    from_files(&m, &["p/go.sum"]);
    let run = m.sync();
    run.expect(1)
        .contains("SECURITY")
        .contains("example.com/proj/c@v1.0.0")
        .contains(&format!("p/go.sum:3 says {d_zip} for the zip"));
    m.assert_absent("example.com/proj/c", "v1.0.0");
    m.assert_mirrored("example.com/proj/d", "v0.1.0");
    // Fixing the line brings it in.
    write(
        m.dir.path(),
        "p/go.sum",
        &text.replace(&format!("v1.0.0 {d_zip}"), &format!("v1.0.0 {c_zip}")),
    );
    m.run(&["sync", "--retry-failed"]).expect(0);
    m.assert_mirrored("example.com/proj/c", "v1.0.0");
}

#[test]
fn globs_that_match_nothing_warn_and_missing_or_malformed_files_stop_the_sync() {
    let m = Mirror::with(Corpus::project(), FakeOptions::default(), Cfg::default());
    write(
        m.dir.path(),
        "tools.txt",
        "# tools\nexample.com/proj/d@v0.2.0\n",
    );
    from_files(&m, &["projects/*/go.sum", "tools.txt"]);
    m.sync()
        .expect(0)
        .contains("\"projects/*/go.sum\" matches no file");
    m.assert_mirrored("example.com/proj/d", "v0.2.0");

    // A path that is not a glob must exist: exit 2, nothing pruned.
    from_files(&m, &["tools.txt", "missing/go.sum"]);
    m.sync()
        .expect(2)
        .contains("missing/go.sum: filter.from_files names it, but it does not exist");
    m.assert_mirrored("example.com/proj/d", "v0.2.0");

    // A malformed line: exit 2 naming file and line, nothing pruned.
    write(
        m.dir.path(),
        "tools.txt",
        "# tools\n\nexample.com/proj/d v0.2.0\n",
    );
    from_files(&m, &["tools.txt"]);
    m.sync()
        .expect(2)
        .contains("tools.txt:3: expected one module@version");
    write(
        m.dir.path(),
        "projects/x/go.sum",
        "example.com/proj/c v1.0.0\n",
    );
    from_files(&m, &["projects/*/go.sum"]);
    m.sync()
        .expect(2)
        .contains("projects/x/go.sum:1: malformed go.sum line");
    write(
        m.dir.path(),
        "projects/x/go.mod",
        "module example.org/x\n\nrequire example.com/proj/c\n",
    );
    from_files(&m, &["projects/x/go.mod"]);
    m.sync()
        .expect(2)
        .contains("projects/x/go.mod:3: usage: require");
    m.assert_mirrored("example.com/proj/d", "v0.2.0");
    assert_eq!(m.status()["counts"]["in_tree"], 1);
}

#[test]
fn versions_no_file_names_any_more_are_pruned_under_the_cap() {
    let m = Mirror::with(
        Corpus::project(),
        FakeOptions::default(),
        Cfg {
            max_delete: "1".into(),
            ..Cfg::default()
        },
    );
    write(
        m.dir.path(),
        "a/list.txt",
        "example.com/proj/c@v1.0.0\nexample.com/proj/d@v0.1.0\n",
    );
    write(m.dir.path(), "b/list.txt", "example.com/proj/d@v0.1.0\n");
    write(
        m.dir.path(),
        "c/list.txt",
        "example.com/proj/a@v1.0.0\nexample.com/proj/e@v1.0.0\n",
    );
    from_files(&m, &["*/list.txt"]);
    m.sync().expect(0);
    for (p, v) in [
        ("example.com/proj/c", "v1.0.0"),
        ("example.com/proj/d", "v0.1.0"),
        ("example.com/proj/a", "v1.0.0"),
    ] {
        m.assert_mirrored(p, v);
    }
    // a/ goes: c@v1.0.0 is named by no file any more; d@v0.1.0 still is (b/).
    std::fs::remove_dir_all(m.dir.path().join("a")).unwrap();
    m.sync().expect(0);
    m.assert_absent("example.com/proj/c", "v1.0.0");
    m.assert_mirrored("example.com/proj/d", "v0.1.0");
    // c/ goes: two versions, past max_delete = 1: refused, nothing deleted.
    std::fs::remove_dir_all(m.dir.path().join("c")).unwrap();
    m.sync().expect(2).contains("max_delete");
    m.assert_mirrored("example.com/proj/a", "v1.0.0");
    m.run(&["prune", "--force"]).expect(0);
    m.assert_absent("example.com/proj/a", "v1.0.0");
    m.assert_absent("example.com/proj/e", "v1.0.0");
    m.assert_mirrored("example.com/proj/d", "v0.1.0");
    m.run(&["verify"]).expect(0);
}

#[test]
fn graph_only_versions_get_their_zip_when_named_whole_and_lose_it_when_not() {
    let m = Mirror::with(Corpus::project(), FakeOptions::default(), Cfg::default());
    let (c, v) = ("example.com/proj/c", "v1.2.0");
    // Another version alongside, so that one deletion stays under the 50% cap.
    let d = ("example.com/proj/d", "v0.1.0", true);
    write(
        m.dir.path(),
        "p/go.sum",
        &go_sum_for(&m, &[(c, v, false), d]),
    );
    from_files(&m, &["p/go.sum"]);
    // A dry run says what the files would fetch, and creates nothing.
    m.run(&["sync", "--dry-run"])
        .expect(0)
        .contains(&format!("fetch {c}@{v} (.info and .mod only)"))
        .contains("fetch example.com/proj/d@v0.1.0\n")
        .contains("would fetch 2 new versions");
    assert!(!m.out().exists() && !m.dir.path().join("state.db").exists());
    m.sync().expect(0);
    assert!(m.file(&version_file(c, v, "mod")).is_some());
    assert!(m.file(&version_file(c, v, "info")).is_some());
    assert!(m.file(&version_file(c, v, "zip")).is_none());
    assert!(
        m.text(&format!("{}/@v/list", escape(c))).is_none(),
        "graph-only is not listed"
    );
    let lookup = format!("sumdb/{}/lookup/{}@{v}", m.upstream.sumdb_name(), escape(c));
    assert!(
        m.file(&lookup).is_some(),
        "go checks the go.mod through the lookup"
    );
    assert_eq!(m.status()["counts"]["graph_only"], 1);
    m.run(&["verify"]).expect(0);
    // A damaged graph-only version is repaired as one: .mod back, still no zip.
    std::fs::remove_file(m.out().join(version_file(c, v, "mod"))).unwrap();
    m.run(&["verify"]).expect(1).contains("missing");
    m.run(&["verify", "--repair"]).expect(0);
    assert!(m.file(&version_file(c, v, "mod")).is_some());
    assert!(m.file(&version_file(c, v, "zip")).is_none());
    assert_eq!(m.status()["counts"]["graph_only"], 1);
    m.run(&["verify"]).expect(0);
    // A stray zip beside a graph-only version is pruned.
    std::fs::write(m.out().join(version_file(c, v, "zip")), b"stray").unwrap();
    m.run(&["prune"]).expect(0);
    assert!(m.file(&version_file(c, v, "zip")).is_none());

    // Named whole: the zip comes, the version is listed.
    write(
        m.dir.path(),
        "p/go.sum",
        &go_sum_for(&m, &[(c, v, true), d]),
    );
    m.sync().expect(0).contains("1 graph-only now wanted whole");
    m.assert_mirrored(c, v);
    assert_eq!(
        m.text(&format!("{}/@v/list", escape(c))).unwrap(),
        "v1.2.0\n"
    );
    m.run(&["verify"]).expect(0);

    // Back to its go.mod alone: the zip is deleted (counted by prune), the rest stays.
    write(
        m.dir.path(),
        "p/go.sum",
        &go_sum_for(&m, &[(c, v, false), d]),
    );
    m.sync().expect(0).contains("deleted 1");
    assert!(m.file(&version_file(c, v, "zip")).is_none());
    assert!(m.file(&version_file(c, v, "mod")).is_some());
    assert!(m.file(&lookup).is_some());
    assert!(
        !m.text(&format!("{}/@v/list", escape(c)))
            .unwrap_or_default()
            .contains(v)
    );
    assert_eq!(m.status()["counts"]["graph_only"], 1);
    m.run(&["verify"]).expect(0);
}

#[test]
fn with_the_index_on_files_pin_exact_versions_beside_the_include_patterns() {
    let m = Mirror::with(
        Corpus::project(),
        FakeOptions::default(),
        Cfg {
            include: vec!["example.com/proj/d".into()],
            exclude: vec!["example.com/proj/e".into()],
            ..Cfg::default()
        },
    );
    write(
        m.dir.path(),
        "list.txt",
        "example.com/proj/a@v1.0.0\nexample.com/proj/e@v1.0.0  # excluded\n",
    );
    m.write_config();
    let text = std::fs::read_to_string(m.config_path()).unwrap();
    std::fs::write(
        m.config_path(),
        text.replace("seed = []", "seed = []\nfrom_files = [\"list.txt\"]"),
    )
    .unwrap();
    m.sync().expect(0);
    // The index brings every version of the included module …
    m.assert_mirrored("example.com/proj/d", "v0.1.0");
    m.assert_mirrored("example.com/proj/d", "v0.2.0");
    // … the file exactly the one it names, and exclude applies to it too.
    m.assert_mirrored("example.com/proj/a", "v1.0.0");
    m.assert_absent("example.com/proj/a", "v1.1.0");
    m.assert_absent("example.com/proj/e", "v1.0.0");
    m.assert_absent("example.com/proj/b", "v1.0.0");
}

#[test]
fn a_go_mod_s_exclude_and_replace_are_honoured_as_the_go_command_honours_them() {
    let m = Mirror::with(Corpus::project(), FakeOptions::default(), Cfg::default());
    let online = m.dir.path().join("online");
    // c@v1.0.0 is excluded (b@v1.0.0's requirement on it is dropped), and
    // d@v0.1.0 (which c@v1.2.0 requires) is replaced by d@v0.2.0.
    write(
        &online,
        "go.mod",
        &format!(
            "{PROJECT_GO_MOD}\nexclude example.com/proj/c v1.0.0\n\nreplace example.com/proj/d v0.1.0 => example.com/proj/d v0.2.0\n"
        ),
    );
    write(&online, "main.go", PROJECT_MAIN_GO);
    let go = GoClient::new(
        &m.upstream.proxy_url(),
        &format!("{} {}", m.upstream.sumdb_key(), m.upstream.sumdb_url()),
    );
    let (ok, out) = go.run_in(&online, &["mod", "tidy"]);
    assert!(ok, "go mod tidy against the upstream failed:\n{out}");
    let gosum = std::fs::read_to_string(online.join("go.sum")).unwrap();
    assert!(!gosum.contains("example.com/proj/c v1.0.0"), "{gosum}");
    assert!(
        gosum.contains("example.com/proj/d v0.2.0/go.mod"),
        "{gosum}"
    );

    let project = m.dir.path().join("app");
    for f in ["go.mod", "main.go"] {
        write(
            &project,
            f,
            &std::fs::read_to_string(online.join(f)).unwrap(),
        );
    }
    from_files(&m, &["app/go.mod"]);
    m.sync().expect(0);
    // Neither the excluded version nor the replaced one is mirrored; the replacement is.
    m.assert_absent("example.com/proj/c", "v1.0.0");
    m.assert_absent("example.com/proj/d", "v0.1.0");
    assert!(
        m.file(&version_file("example.com/proj/d", "v0.2.0", "mod"))
            .is_some()
    );

    let nginx = Nginx::serve(&m.out());
    switch_off(&m);
    build_offline(&m, &nginx, &project, false);
    assert_upstream_untouched(&m);
}

#[test]
fn the_airgap_example_works_as_shipped() {
    let m = Mirror::with(Corpus::project(), FakeOptions::default(), Cfg::default());
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/airgap");
    let shipped = std::fs::read_to_string(format!("{dir}/sync.toml")).unwrap();
    let mut config = String::new();
    for line in shipped.lines() {
        let line = if line.starts_with("proxy = ") {
            format!("proxy = {:?}", m.upstream.proxy_url())
        } else if line.starts_with("key = ") {
            format!("key = {:?}", m.upstream.sumdb_key())
        } else if line.starts_with("url = ") {
            format!("url = {:?}", m.upstream.sumdb_url())
        } else {
            line.to_string()
        };
        config.push_str(&line);
        config.push('\n');
    }
    assert_ne!(config.trim(), shipped.trim());
    std::fs::write(m.config_path(), config).unwrap();
    std::fs::copy(format!("{dir}/tools.txt"), m.dir.path().join("tools.txt")).unwrap();
    write_app_go_sum(&m);
    m.sync()
        .expect(0)
        .contains("\"projects/*/go.work.sum\" matches no file");
    m.assert_mirrored("example.com/proj/c", "v1.2.0");
    assert!(
        m.file(&version_file("example.com/proj/d", "v0.1.0", "mod"))
            .is_some()
    );
    assert!(
        m.file(&version_file("example.com/proj/d", "v0.1.0", "zip"))
            .is_none()
    );
    m.run(&["status"])
        .expect(0)
        .contains(
            "projects/app/go.sum (go.sum): 2 versions named, 2 mirrored (1 of them graph-only)",
        )
        .contains("tools.txt (list): 0 versions named, 0 mirrored");

    // Across the gap: export, then import with far-side.toml as shipped
    // (only the key pointed at the fake's), the upstream switched off.
    let media = tempfile::tempdir().unwrap();
    let bundle = crate::airgap::export(&m, media.path(), &["--max-size", "100KiB"]);
    switch_off(&m);
    let far = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(format!("{dir}/far-side.toml")).unwrap();
    let far_config: String = shipped
        .lines()
        .map(|l| {
            if l.starts_with("key = ") {
                format!("key = {:?}\n", m.upstream.sumdb_key())
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert_ne!(far_config.trim(), shipped.trim());
    let far_toml = far.path().join("far-side.toml");
    std::fs::write(&far_toml, far_config).unwrap();
    gomirror(&far_toml, &["import", bundle.to_str().unwrap()])
        .expect(0)
        .contains("published 2 new versions");
    let far_file = |rel: &str| far.path().join("mirror").join(rel);
    assert_eq!(
        std::fs::read(far_file(&version_file(
            "example.com/proj/c",
            "v1.2.0",
            "zip"
        )))
        .unwrap(),
        m.file(&version_file("example.com/proj/c", "v1.2.0", "zip"))
            .unwrap()
    );
    assert!(far_file(&version_file("example.com/proj/d", "v0.1.0", "mod")).exists());
    assert!(
        !far_file(&version_file("example.com/proj/d", "v0.1.0", "zip")).exists(),
        "graph-only stays graph-only across the gap"
    );
    gomirror(&far_toml, &["status"])
        .expect(0)
        .contains("1 graph-only");
    gomirror(&far_toml, &["verify"]).expect(0);
    assert_upstream_untouched(&m);
}

/// The change feed names whole versions only: a follower of a mirror synced
/// from a go.sum gets its whole versions and is never sent for the zip of a
/// graph-only one (which that tree does not have).
#[test]
fn a_follower_is_not_sent_for_the_zips_of_graph_only_versions() {
    let m = Mirror::with(Corpus::project(), FakeOptions::default(), Cfg::default());
    from_files(&m, &["projects/app/go.sum"]);
    write_app_go_sum(&m);
    m.sync().expect(0);
    let nginx = Nginx::serve(&m.out());
    let base = nginx.url();
    let follower = tempfile::tempdir().unwrap();
    let config = follower.path().join("sync.toml");
    std::fs::write(
        &config,
        format!(
            "[upstream]\nproxy = \"{base}\"\nindex = \"mirror+{base}/\"\n[sumdb]\nkey = \"{}\"\nurl = \"{base}/sumdb/{}\"\n[mirror]\noutput = \"mirror\"\nstate = \"state.db\"\n[filter]\ninclude = [\"*\"]\n",
            m.upstream.sumdb_key(),
            m.upstream.sumdb_name()
        ),
    )
    .unwrap();
    let r = gomirror(&config, &["sync"]);
    r.expect(0).contains("published 1 new version ");
    assert!(!r.all().contains("not on the upstream yet"), "{}", r.all());
    let out = follower.path().join("mirror");
    assert!(
        out.join(version_file("example.com/proj/c", "v1.2.0", "zip"))
            .exists()
    );
    assert!(
        !out.join(version_file("example.com/proj/d", "v0.1.0", "info"))
            .exists()
    );
    let access = std::fs::read_to_string(nginx.access_log()).unwrap();
    assert!(
        !access.contains(&version_file("example.com/proj/d", "v0.1.0", "zip")),
        "the follower asked for a zip the tree never had:\n{access}"
    );
}
