//! A refused configuration stops the binary before it touches the disk or the
//! network: no state database, no tree, no request upstream.

use crate::common::*;
use crate::support::Corpus;

/// Rewrites one line of the fixture's `sync.toml`.
fn edit_config(m: &Mirror, from: &str, to: &str) {
    let text = std::fs::read_to_string(m.config_path()).expect("read config");
    assert!(text.contains(from), "{from:?} not in the config");
    std::fs::write(m.config_path(), text.replace(from, to)).expect("write config");
}

/// `expected`: what the test itself put beside `sync.toml`.
#[track_caller]
fn assert_nothing_created(m: &Mirror, expected: &[&str]) {
    let mut names: Vec<String> = std::fs::read_dir(m.dir.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, expected);
    assert_eq!(
        std::fs::read_dir(m.out()).expect("read output").count(),
        0,
        "the output was written"
    );
    assert!(
        m.upstream.request_log().is_empty(),
        "{:?}",
        m.upstream.request_log()
    );
}

#[test]
fn state_inside_output_through_a_symlink_is_refused_before_any_write() {
    let m = Mirror::new(Corpus::generated(1, 1, 1));
    std::fs::create_dir(m.out()).expect("mkdir output");
    std::os::unix::fs::symlink(m.out(), m.dir.path().join("link")).expect("symlink");
    edit_config(&m, "state = \"state.db\"", "state = \"link/state.db\"");
    m.sync()
        .expect(2)
        .contains("mirror.state")
        .contains("must not be inside mirror.output");
    assert_nothing_created(&m, &["link", "mirror", "sync.toml"]);
}

#[test]
fn zero_timeout_is_refused_before_any_write() {
    let m = Mirror::new(Corpus::generated(1, 1, 1));
    std::fs::create_dir(m.out()).expect("mkdir output");
    edit_config(&m, "timeout = \"20s\"", "timeout = \"0s\"");
    m.sync()
        .expect(2)
        .contains("upstream.timeout must be between 1s and 1h");
    assert_nothing_created(&m, &["mirror", "sync.toml"]);
}
