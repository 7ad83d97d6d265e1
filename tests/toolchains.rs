//! `[filter] toolchain_versions`: which Go releases' toolchains a mirror
//! carries, in the go command's terms, plus the releases the `go` and
//! `toolchain` lines of `from_files` go.mod files ask for — instead of every
//! version the proxy lists; with the index feed on too (it lists them all).

use crate::common::*;
use crate::support::{Corpus, FakeOptions};

fn toolchain_versions_in(m: &Mirror) -> Vec<String> {
    let list = m.text("golang.org/toolchain/@v/list").unwrap_or_default();
    let mut got: Vec<String> = list.lines().map(str::to_string).collect();
    got.sort();
    got
}

#[test]
fn only_the_selected_releases_and_what_projects_ask_for_are_mirrored() {
    let mut corpus = Corpus::generated(1, 1, 3);
    for go in ["go1.21.0", "go1.21.5", "go1.22.0", "go1.22.3", "go1.23.1"] {
        corpus = corpus.with_toolchains(go, &["linux-amd64"]);
    }
    corpus = corpus.with_toolchains("go1.22.3", &["linux-arm64"]);
    let cfg = Cfg {
        include: vec!["*".into()],
        ..Cfg::default()
    };
    let m = Mirror::with(corpus, FakeOptions::default(), cfg);
    std::fs::create_dir_all(m.dir.path().join("app")).unwrap();
    std::fs::write(
        m.dir.path().join("app/go.mod"),
        "module example.org/app\n\ngo 1.21\n\ntoolchain go1.21.5\n",
    )
    .unwrap();
    let text = std::fs::read_to_string(m.config_path()).unwrap().replacen(
        "seed = []\n",
        "seed = []\ntoolchains = [\"linux-amd64\"]\ntoolchain_versions = [\">=1.22 patches 1\"]\nfrom_files = [\"app/go.mod\"]\n",
        1,
    );
    std::fs::write(m.config_path(), text).unwrap();
    m.sync().expect(0);
    // The index lists every toolchain (and include = ["*"] wants the module):
    // still only the selection is mirrored.
    assert_eq!(
        toolchain_versions_in(&m),
        [
            "v0.0.1-go1.21.5.linux-amd64",
            "v0.0.1-go1.22.3.linux-amd64",
            "v0.0.1-go1.23.1.linux-amd64"
        ]
    );
    assert!(
        m.file(&version_file(
            "golang.org/toolchain",
            "v0.0.1-go1.22.0.linux-amd64",
            "zip"
        ))
        .is_none()
    );
    assert!(
        m.file(&version_file(
            "golang.org/toolchain",
            "v0.0.1-go1.22.3.linux-arm64",
            "zip"
        ))
        .is_none()
    );
    // The generated module still comes through the index.
    assert!(m.text("example.com/gen/m0/@v/list").is_some());

    // A project asking for a release the proxy does not list is named.
    std::fs::write(
        m.dir.path().join("app/go.mod"),
        "module example.org/app\n\ngo 1.21\n\ntoolchain go1.21.9\n",
    )
    .unwrap();
    m.sync()
        .expect(0)
        .contains("app/go.mod:5 says `toolchain go1.21.9`, but");

    // A bad selector is refused naming the key and the term.
    let text = std::fs::read_to_string(m.config_path())
        .unwrap()
        .replace("\">=1.22 patches 1\"", "\">=1.22 newest 1\"");
    std::fs::write(m.config_path(), text).unwrap();
    m.sync()
        .expect(2)
        .contains("filter.toolchain_versions: \">=1.22 newest 1\": \"newest\" is not a Go version");
}
