//! `gomirror audit` on a crafted corpus: versions a real OSV entry affects
//! (modules and, through golang.org/toolchain, Go releases), versions their
//! module's latest go.mod retracts, a deprecated module, and `from_files`
//! projects pinning affected versions; `--fail-on` as a CI gate; the counts
//! in the metrics file (clean for promtool).

use crate::common::*;
use crate::support::vulndb::{FakeVulnDb, VulnDb};
use crate::support::{Corpus, FakeOptions, ModuleVersionSpec};
use crate::vuln::mirror_with_vulndb;

fn with_go_mod(path: &str, version: &str, go_mod: &str) -> ModuleVersionSpec {
    let mut s = ModuleVersionSpec::new(path, version);
    s.go_mod = Some(go_mod.to_string());
    s
}

/// The crafted corpus.
fn corpus() -> Corpus {
    let retracting = "module example.com/retracting\n\ngo 1.21\n\n// Published too early.\nretract v1.0.0\n\nretract [v1.1.0, v1.1.9] // Data race in Parse.\n";
    let deprecated =
        "// Deprecated: use example.com/new instead.\nmodule example.com/old\n\ngo 1.21\n";
    Corpus::new()
        .with(ModuleVersionSpec::new("golang.org/x/text", "v0.3.6"))
        .with(ModuleVersionSpec::new("golang.org/x/text", "v0.3.7"))
        .with(ModuleVersionSpec::new("golang.org/x/net", "v0.16.0"))
        .with(ModuleVersionSpec::new("golang.org/x/net", "v0.23.0"))
        .with(ModuleVersionSpec::new("example.com/retracting", "v1.0.0"))
        .with(ModuleVersionSpec::new("example.com/retracting", "v1.1.0"))
        .with(with_go_mod("example.com/retracting", "v1.2.0", retracting))
        .with(ModuleVersionSpec::new("example.com/old", "v1.0.0"))
        .with(with_go_mod("example.com/old", "v1.1.0", deprecated))
        .with(ModuleVersionSpec::new("example.com/clean", "v1.0.0"))
        .with_toolchains("go1.22.1", &["linux-amd64"])
        .with_toolchains("go1.22.2", &["linux-amd64"])
}

/// A mirror of the corpus with the fixtures' database, a project whose
/// go.sum pins x/text v0.3.6 and retracting v1.0.0 and whose go.mod asks for
/// go1.22.1, and a metrics file.
fn audited() -> (Mirror, FakeVulnDb, std::path::PathBuf) {
    let fake = FakeVulnDb::start(&VulnDb::fixtures());
    let m = mirror_with_vulndb(corpus(), &fake);
    let app = m.dir.path().join("projects/app");
    std::fs::create_dir_all(&app).unwrap();
    let (text_zip, text_mod) = m.upstream.hashes("golang.org/x/text", "v0.3.6").unwrap();
    let (r_zip, r_mod) = m
        .upstream
        .hashes("example.com/retracting", "v1.0.0")
        .unwrap();
    std::fs::write(
        app.join("go.sum"),
        format!(
            "example.com/retracting v1.0.0 {r_zip}\nexample.com/retracting v1.0.0/go.mod {r_mod}\ngolang.org/x/text v0.3.6 {text_zip}\ngolang.org/x/text v0.3.6/go.mod {text_mod}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        app.join("go.mod"),
        "module example.org/app\n\ngo 1.22.1\n\ntoolchain go1.22.1\n",
    )
    .unwrap();
    let metrics = m.dir.path().join("gomirror.prom");
    let cfg = std::fs::read_to_string(m.config_path()).unwrap();
    let cfg = cfg.replacen(
        "seed = []\n",
        "seed = []\nfrom_files = [\"projects/*/go.sum\", \"projects/*/go.mod\"]\n",
        1,
    ) + &format!("\n[report]\nmetrics_file = \"{}\"\n", metrics.display());
    std::fs::write(m.config_path(), cfg).unwrap();
    m.sync().expect(0);
    (m, fake, metrics)
}

#[test]
fn audit_names_vulnerable_retracted_and_deprecated_versions_and_the_projects_pinning_them() {
    let (m, _fake, metrics) = audited();
    let r = m.run(&["audit"]);
    r.expect(0);
    let out = &r.stdout;
    for line in [
        "golang.org/x/text@v0.3.6: vulnerable: GO-2021-0113 (fixed in v0.3.7)",
        "golang.org/x/net@v0.16.0: vulnerable: GO-2023-2102 (fixed in v0.17.0), GO-2024-2687 (fixed in v0.23.0)",
        "example.com/retracting@v1.0.0: retracted: Published too early.",
        "example.com/retracting@v1.1.0: retracted: Data race in Parse.",
        "example.com/old@v1.0.0: deprecated: use example.com/new instead.",
        "example.com/old@v1.1.0: deprecated: use example.com/new instead.",
        "golang.org/toolchain@v0.0.1-go1.22.1.linux-amd64: vulnerable: GO-2024-2687 (stdlib, fixed in go1.22.2)",
        "projects/app/go.sum:3: golang.org/x/text@v0.3.6: vulnerable: GO-2021-0113 (fixed in v0.3.7)",
        "projects/app/go.sum:1: example.com/retracting@v1.0.0: retracted: Published too early.",
        "projects/app/go.mod:5: toolchain go1.22.1: vulnerable: GO-2024-2687 (stdlib, fixed in go1.22.2)",
        "projects/app/go.mod:3: go 1.22.1: vulnerable: GO-2024-2687 (stdlib, fixed in go1.22.2)",
    ] {
        assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
    }
    for clean in [
        "golang.org/x/text@v0.3.7",
        "golang.org/x/net@v0.23.0",
        "example.com/retracting@v1.2.0",
        "example.com/clean@",
        "go1.22.2.linux-amd64",
    ] {
        assert!(!out.contains(clean), "{clean} has no finding:\n{out}");
    }
    assert!(
        out.lines().last().unwrap().starts_with(
            "audit: 12 versions of 6 modules: 3 vulnerable (3 vulnerabilities), 2 retracted, 2 deprecated; 4 project pins affected; vulnerability database modified 2024-06-04T15:00:00Z (6 entries)"
        ),
        "{out}"
    );

    // JSON: per version `vulns`, `retracted`, `deprecated`; per project file the pins.
    let r = m.run(&["audit", "--json"]);
    let j: serde_json::Value = serde_json::from_str(&r.expect(0).stdout).unwrap();
    let v = j["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["module"] == "golang.org/x/text")
        .unwrap();
    assert_eq!(v["version"], "v0.3.6");
    assert_eq!(v["vulns"], serde_json::json!(["GO-2021-0113"]));
    assert_eq!(v["retracted"], false);
    assert_eq!(v["deprecated"], false);
    assert_eq!(v["vulnerabilities"][0]["aliases"][0], "CVE-2021-38561");
    let p = j["projects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["module"] == "example.com/retracting")
        .unwrap();
    assert_eq!(
        (p["file"].as_str(), p["line"].as_i64()),
        (Some("projects/app/go.sum"), Some(1))
    );
    assert_eq!(p["retracted"], true);
    assert_eq!(j["counts"]["vulnerable"], 3);

    // The counts are in the metrics file, clean for promtool.
    let text = std::fs::read_to_string(&metrics).unwrap();
    for line in [
        "gomirror_audit_versions{finding=\"vulnerable\"} 3",
        "gomirror_audit_versions{finding=\"retracted\"} 2",
        "gomirror_audit_versions{finding=\"deprecated\"} 2",
        "gomirror_audit_vulnerabilities 3",
        "gomirror_audit_affected_pins 4",
        "gomirror_vulndb_entries 6",
        "gomirror_vulndb_modified_timestamp_seconds 1717513200",
        "gomirror_last_exit_code{command=\"audit\"} 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    crate::operations::assert_promtool_clean(&text);

    // --fail-on: a CI gate.
    m.run(&["audit", "--fail-on", "vuln"]).expect(1);
    m.run(&["audit", "--fail-on", "retracted", "example.com/retracting"])
        .expect(1);
    m.run(&["audit", "--fail-on", "vuln", "example.com/retracting"])
        .expect(0);
    m.run(&["audit", "--fail-on", "vuln,retracted", "example.com/clean"])
        .expect(0);
    m.run(&["audit", "--fail-on", "deprecated", "example.com/old@v1.0.0"])
        .expect(1);
    // A filtered audit does not replace the counts the metrics file shows.
    let text = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        text.contains("gomirror_audit_versions{finding=\"vulnerable\"} 3"),
        "{text}"
    );
    let r = m.run(&["audit", "--all", "example.com/clean"]);
    r.expect(0).contains("example.com/clean@v1.0.0: ok");
    m.run(&["audit", "--fail-on", "sometimes"]).expect(2);
    m.run(&["audit", "not a module@x"]).expect(2);
}

#[test]
fn audit_remembers_what_a_go_mod_said_and_reads_it_again_only_for_a_newer_version() {
    let (m, _fake, _) = audited();
    m.run(&["audit"]).expect(0);
    // The latest go.mod is read once: without it the audit still knows.
    let key = version_file("example.com/retracting", "v1.2.0", "mod");
    std::fs::remove_file(m.out().join(&key)).unwrap();
    m.run(&["audit"])
        .expect(0)
        .contains("example.com/retracting@v1.0.0: retracted: Published too early.");
    // A newer version that retracts nothing clears the retractions.
    m.upstream
        .add(ModuleVersionSpec::new("example.com/retracting", "v1.3.0"));
    m.sync();
    let r = m.run(&["audit"]);
    assert!(
        !r.expect(0).stdout.contains("example.com/retracting@v1.0.0"),
        "{}",
        r.stdout
    );
}

#[test]
fn audit_without_a_database_still_reports_retractions_and_refuses_a_vulnerability_gate() {
    let m = Mirror::with(corpus(), FakeOptions::default(), Cfg::default());
    m.sync().expect(0);
    let r = m.run(&["audit"]);
    r.expect(0)
        .contains("example.com/retracting@v1.0.0: retracted")
        .contains("no vulnerability database held");
    m.run(&["audit", "--fail-on", "vuln"])
        .expect(2)
        .contains("holds no vulnerability database");
    m.run(&["audit", "--fail-on", "retracted"]).expect(1);
}
