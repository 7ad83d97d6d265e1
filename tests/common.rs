//! The fixture every integration test uses: a fake upstream, a temporary
//! directory with a `sync.toml` pointing at it, and the built `gomirror`
//! binary run as a user would run it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Corpus, FakeOptions, FakeUpstream, http};

/// The knobs of the generated `sync.toml`.
#[derive(Clone, Debug)]
pub struct Cfg {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub skip: Vec<String>,
    pub seed: Vec<String>,
    pub workers: usize,
    pub prune_enabled: bool,
    pub max_delete: String,
    pub recheck_interval: String,
    /// `upstream.proxy` as written (a list), instead of the fake's proxy URL.
    pub proxy: Option<String>,
    /// `sumdb.url` as written, instead of the fake's checksum database URL.
    pub sumdb_url: Option<String>,
    /// `mirror.output` as written (an `s3://` bucket), instead of `mirror`.
    pub output: Option<String>,
    /// More TOML appended as is (an `[s3]` section).
    pub extra: String,
    /// More keys of `[upstream]` (`index_walkers = 1`).
    pub upstream_extra: String,
}

impl Default for Cfg {
    fn default() -> Self {
        Cfg {
            include: vec!["*".into()],
            exclude: vec![],
            skip: vec![],
            seed: vec![],
            workers: 8,
            prune_enabled: true,
            max_delete: "\"50%\"".into(),
            recheck_interval: "7d".into(),
            proxy: None,
            sumdb_url: None,
            output: None,
            extra: String::new(),
            upstream_extra: String::new(),
        }
    }
}

/// The outcome of one `gomirror` invocation.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Everything the user saw.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn expect(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "expected exit {code}, got {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn contains(&self, needle: &str) -> &Run {
        assert!(
            self.all().contains(needle),
            "output lacks {needle:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// A mirror under test and its upstream.
pub struct Mirror {
    pub dir: tempfile::TempDir,
    pub upstream: FakeUpstream,
    pub cfg: Cfg,
}

impl Mirror {
    pub fn new(corpus: Corpus) -> Mirror {
        Mirror::with(corpus, FakeOptions::default(), Cfg::default())
    }

    pub fn with(corpus: Corpus, options: FakeOptions, cfg: Cfg) -> Mirror {
        let upstream = FakeUpstream::start(corpus, options);
        let dir = tempfile::tempdir().expect("temp dir");
        let m = Mirror { dir, upstream, cfg };
        m.write_config();
        m
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("sync.toml")
    }

    /// Rewrites `sync.toml` from `self.cfg`.
    pub fn write_config(&self) {
        let list = |v: &[String]| {
            v.iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let text = format!(
            r#"[upstream]
proxy = "{proxy}"
index = "{index}"
timeout = "20s"{upstream_extra}

[sumdb]
key = "{key}"
url = "{sumdb}"
skip = [{skip}]

[mirror]
output = "{output}"
state = "state.db"
workers = {workers}

[filter]
include = [{include}]
exclude = [{exclude}]
seed = [{seed}]

[prune]
enabled = {prune}
max_delete = {max_delete}
recheck_interval = "{recheck}"
{extra}"#,
            proxy = self
                .cfg
                .proxy
                .clone()
                .unwrap_or_else(|| self.upstream.proxy_url()),
            index = self.upstream.index_url(),
            key = self.upstream.sumdb_key(),
            sumdb = self
                .cfg
                .sumdb_url
                .clone()
                .unwrap_or_else(|| self.upstream.sumdb_url()),
            skip = list(&self.cfg.skip),
            workers = self.cfg.workers,
            include = list(&self.cfg.include),
            exclude = list(&self.cfg.exclude),
            seed = list(&self.cfg.seed),
            prune = self.cfg.prune_enabled,
            max_delete = self.cfg.max_delete,
            recheck = self.cfg.recheck_interval,
            output = self.cfg.output.as_deref().unwrap_or("mirror"),
            extra = self.cfg.extra,
            upstream_extra = if self.cfg.upstream_extra.is_empty() {
                String::new()
            } else {
                format!("\n{}", self.cfg.upstream_extra)
            },
        );
        std::fs::write(self.config_path(), text).expect("write config");
    }

    /// Runs `gomirror -c <config> <args>`.
    pub fn run(&self, args: &[&str]) -> Run {
        gomirror(&self.config_path(), args)
    }

    pub fn sync(&self) -> Run {
        self.run(&["sync"])
    }

    /// Runs `gomirror -c <config> <args>` with extra environment variables.
    pub fn run_env(&self, args: &[&str], envs: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gomirror"));
        cmd.arg("-c").arg(self.config_path()).args(args);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        run_command(cmd)
    }

    pub fn out(&self) -> PathBuf {
        self.dir.path().join("mirror")
    }

    /// The bytes of a tree file, if present.
    pub fn file(&self, rel: &str) -> Option<Vec<u8>> {
        std::fs::read(self.out().join(rel)).ok()
    }

    pub fn text(&self, rel: &str) -> Option<String> {
        self.file(rel)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// Every file in the tree (tree-relative), gomirror's own directory excluded.
    pub fn tree_files(&self) -> Vec<String> {
        files_under(&self.out())
            .into_iter()
            .filter(|f| !f.starts_with(".gomirror/"))
            .collect()
    }

    /// Temporary files left in `.gomirror/tmp`.
    pub fn temp_files(&self) -> Vec<String> {
        files_under(&self.out().join(".gomirror"))
    }

    /// What the upstream proxy serves at `rel` (escaped path under the proxy).
    pub fn upstream_bytes(&self, rel: &str) -> Vec<u8> {
        http::get_ok(&format!("{}/{rel}", self.upstream.proxy_url()))
    }

    /// Asserts the mirror holds `path@version` byte for byte as the upstream serves it.
    #[track_caller]
    pub fn assert_mirrored(&self, path: &str, version: &str) {
        for ext in ["info", "mod", "zip"] {
            let rel = version_file(path, version, ext);
            let got = self
                .file(&rel)
                .unwrap_or_else(|| panic!("{path}@{version}: {rel} missing from the tree"));
            assert!(
                got == self.upstream_bytes(&rel),
                "{path}@{version}: {rel} differs from the upstream's"
            );
        }
        let lookup = format!(
            "sumdb/{}/lookup/{}@{}",
            self.upstream.sumdb_name(),
            escape(path),
            escape(version)
        );
        assert!(
            self.file(&lookup).is_some(),
            "{lookup} missing from the tree"
        );
    }

    #[track_caller]
    pub fn assert_absent(&self, path: &str, version: &str) {
        for ext in ["info", "mod", "zip"] {
            let rel = version_file(path, version, ext);
            assert!(self.file(&rel).is_none(), "{rel} should not be in the tree");
        }
        if let Some(list) = self.text(&format!("{}/@v/list", escape(path))) {
            assert!(
                !list.lines().any(|l| l == version),
                "{path}: @v/list lists {version}:\n{list}"
            );
        }
    }

    /// `gomirror status --json`, parsed.
    pub fn status(&self) -> serde_json::Value {
        let r = self.run(&["status", "--json"]);
        r.expect(0);
        serde_json::from_str(&r.stdout).expect("status --json is JSON")
    }
}

/// Every request the upstream gets from now on fails, and the test can check
/// that none arrived: the upstream is out of reach.
pub fn switch_off(m: &Mirror) {
    m.upstream.inject(crate::support::Fault::Status {
        path_prefix: "/".into(),
        status: 503,
    });
    m.upstream.clear_request_log();
}

#[track_caller]
pub fn assert_upstream_untouched(m: &Mirror) {
    let log = m.upstream.request_log();
    assert!(log.is_empty(), "the upstream was contacted: {log:?}");
}

/// Runs the built binary with a config file.
pub fn gomirror(config: &Path, args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gomirror"));
    cmd.arg("-c").arg(config).args(args);
    run_command(cmd)
}

pub fn run_command(mut cmd: Command) -> Run {
    // Retries without waiting: the tests inject the failures.
    cmd.env("GOMIRROR_TEST_RETRY_BASE_MS", "1");
    let out = cmd.output().expect("run gomirror");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Go's `!`-escaping (paths and versions), the fake upstream's own.
pub use crate::support::goformat::escape;

pub fn version_file(path: &str, version: &str, ext: &str) -> String {
    format!("{}/@v/{}.{ext}", escape(path), escape(version))
}

/// Every regular file or symlink below `dir`, relative, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if !dir.exists() {
        return out;
    }
    for e in walkdir::WalkDir::new(dir).follow_links(false).min_depth(1) {
        let e = e.expect("walk");
        if !e.file_type().is_dir() {
            out.push(
                e.path()
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    out.sort();
    out
}
