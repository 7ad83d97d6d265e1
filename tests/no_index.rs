//! Issue 10, items 2–3: a mirror without an index feed (`upstream.index =
//! "off"`: versions come from seeds and toolchains only, and nothing asks for
//! an index), and `[filter].toolchains` (the `golang.org/toolchain` versions of
//! the configured platforms, and no other).

use crate::common::*;
use crate::support::{Corpus, FakeOptions};

/// Points the generated `sync.toml` at no index feed, with `filter` in place
/// of its `include`/`seed` lines.
pub fn feedless(m: &Mirror, filter: &str) {
    m.write_config();
    let text = std::fs::read_to_string(m.config_path()).unwrap();
    let index_line = format!("index = \"{}\"", m.upstream.index_url());
    assert!(text.contains(&index_line), "{text}");
    let mut out = String::new();
    for line in text.lines() {
        if line == index_line {
            out.push_str("index = \"off\"\n");
        } else if line.starts_with("include = ") {
            out.push_str(filter);
            out.push('\n');
        } else if !line.starts_with("seed = ") {
            out.push_str(line);
            out.push('\n');
        }
    }
    std::fs::write(m.config_path(), out).unwrap();
}

#[test]
fn index_off_requests_no_index_and_mirrors_the_seeds_alone() {
    let m = Mirror::with(
        Corpus::generated(3, 3, 17),
        FakeOptions::default(),
        Cfg::default(),
    );
    feedless(&m, "include = []\nseed = [\"example.com/gen/m1\"]");
    m.upstream.clear_request_log();
    m.sync().expect(0);
    assert_eq!(
        m.upstream.requests("/index"),
        0,
        "an index was requested: {:?}",
        m.upstream.request_log()
    );
    let versions = m.upstream.versions();
    let mut mirrored = 0;
    for (p, v) in &versions {
        // Only the seed's tagged versions (the @v/list has no pseudo-versions).
        if p == "example.com/gen/m1" && !v.contains("-0.") && !v.starts_with("v0.0.0-") {
            m.assert_mirrored(p, v);
            mirrored += 1;
        } else if p != "example.com/gen/m1" {
            m.assert_absent(p, v);
        }
    }
    assert!(mirrored >= 2, "{versions:?}");

    let status = m.status();
    assert_eq!(status["index"], "off", "{status}");
    assert!(status["cursor"].is_null(), "{status}");
    m.run(&["status"]).expect(0).contains(
        "index      off: versions come from [filter].seed, toolchains and from_files only",
    );

    // A second run is quiet and still asks for no index.
    m.sync().expect(0);
    assert_eq!(m.upstream.requests("/index"), 0);
}

#[test]
fn index_off_without_seeds_or_toolchains_is_refused() {
    let m = Mirror::new(Corpus::generated(1, 1, 3));
    feedless(&m, "include = [\"*\"]");
    m.sync()
        .expect(2)
        .contains("upstream.index is \"off\" and none of filter.seed, filter.toolchains and filter.from_files");
    assert_eq!(m.upstream.requests("/"), 0);
}

#[test]
fn toolchains_are_mirrored_for_the_configured_platforms_only() {
    let corpus = Corpus::generated(2, 1, 5)
        .with_toolchains("go1.98.0", &["linux-amd64", "linux-arm64", "darwin-arm64"])
        .with_toolchains("go1.99.1", &["linux-amd64", "windows-amd64"]);
    let m = Mirror::with(corpus, FakeOptions::default(), Cfg::default());
    feedless(&m, "toolchains = [\"linux-amd64\", \"darwin-arm64\"]");
    m.sync().expect(0);
    assert_eq!(m.upstream.requests("/index"), 0);
    let tc = "golang.org/toolchain";
    for v in [
        "v0.0.1-go1.98.0.linux-amd64",
        "v0.0.1-go1.98.0.darwin-arm64",
        "v0.0.1-go1.99.1.linux-amd64",
    ] {
        m.assert_mirrored(tc, v);
    }
    for v in [
        "v0.0.1-go1.98.0.linux-arm64",
        "v0.0.1-go1.99.1.windows-amd64",
    ] {
        m.assert_absent(tc, v);
    }
    let list = m.text("golang.org/toolchain/@v/list").expect("list");
    assert_eq!(list.lines().count(), 3, "{list}");
    m.assert_absent("example.com/gen/m0", "v1.0.0");
    m.run(&["verify"]).expect(0);

    // The filter is by module path: a platform dropped from the list keeps
    // its mirrored versions (nothing is pruned that clients may still use).
    let text = std::fs::read_to_string(m.config_path()).unwrap();
    std::fs::write(
        m.config_path(),
        text.replace("\"linux-amd64\", \"darwin-arm64\"", "\"linux-amd64\""),
    )
    .unwrap();
    m.sync().expect(0);
    m.assert_mirrored(tc, "v0.0.1-go1.98.0.darwin-arm64");
}

#[test]
fn a_misspelt_toolchain_platform_is_refused_naming_the_key() {
    let m = Mirror::new(Corpus::generated(1, 1, 3));
    feedless(&m, "toolchains = [\"linux-x86_64\"]");
    m.sync()
        .expect(2)
        .contains("filter.toolchains: \"linux-x86_64\" is not a GOOS-GOARCH pair");
    assert_eq!(m.upstream.requests("/"), 0);
}
