//! `sync.toml`: parsed once, checked completely, and turned into one [`Settings`]
//! value before any work starts.
//!
//! The file is a contract (scripts and users depend on it): unknown keys are an
//! error naming the key, relative paths resolve against the file's directory, and
//! every value that could only fail later (a URL, a key, a pattern) fails here.

pub mod bucket;
pub mod lists;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;

use crate::gomod::pattern;
use crate::gomod::toolchain;
pub use crate::redact::redact;
use crate::sumdb::note::Verifier;
use lists::{Fallback, ListEntry, parse_list};

/// `upstream.index_since`: where a mirror with no cursor yet starts reading
/// the index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IndexSince {
    /// An RFC 3339 time.
    At(String),
    /// That long before the first run.
    Ago(Duration),
}

impl IndexSince {
    /// The `since` value for a first run at `now` (Unix seconds).
    pub fn resolve(&self, now: i64) -> String {
        match self {
            IndexSince::At(t) => t.clone(),
            IndexSince::Ago(d) => crate::clock::rfc3339(
                now.saturating_sub(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            ),
        }
    }
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config file `{path}`: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    upstream: RawUpstream,
    sumdb: RawSumdb,
    mirror: RawMirror,
    filter: RawFilter,
    #[serde(default)]
    prune: RawPrune,
    #[serde(default)]
    report: RawReport,
    #[serde(default)]
    feed: RawFeed,
    #[serde(default)]
    verify: RawVerify,
    #[serde(default)]
    s3: RawS3,
    #[serde(default)]
    export: RawExport,
    #[serde(default)]
    import: RawImport,
}

/// `[export]`: how `gomirror export` signs its bundles.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawExport {
    /// A file holding a note signer key (`gomirror keygen NAME` writes one).
    signing_key: Option<PathBuf>,
}

/// `[import]`: whose bundle signatures `gomirror import` accepts.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawImport {
    /// Verifier keys (`<name>+<hash>+<key>`, the `.pub` file `keygen` writes).
    #[serde(default)]
    trusted_keys: Vec<String>,
}

/// `[verify]`: how `gomirror verify --slice` spreads the check over runs.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawVerify {
    /// Every published version is checked once per this period by the
    /// slices (default "30d").
    cycle: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeed {
    #[serde(default = "default_segment_entries")]
    segment_entries: u64,
    #[serde(default = "default_keep_segments")]
    keep_segments: u64,
}

impl Default for RawFeed {
    fn default() -> Self {
        RawFeed {
            segment_entries: default_segment_entries(),
            keep_segments: default_keep_segments(),
        }
    }
}

fn default_segment_entries() -> u64 {
    1000
}
fn default_keep_segments() -> u64 {
    1000
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawS3 {
    endpoint: Option<String>,
    region: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    proxy: String,
    index: String,
    #[serde(default = "default_timeout")]
    timeout: String,
    index_since: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSumdb {
    key: String,
    url: Option<String>,
    #[serde(default)]
    skip: Vec<String>,
    /// "all" (default) or "needed": which tiles the tree holds.
    tiles: Option<String>,
    /// Tiles older than those held that one run fetches at most.
    max_tiles_per_run: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMirror {
    output: PathBuf,
    state: PathBuf,
    #[serde(default = "default_workers")]
    workers: usize,
    /// This mirror's name in `<output>/trace/<name>.json`; default: the host name.
    name: Option<String>,
}

/// `[report]`: what a run leaves for monitoring besides its output.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawReport {
    /// A Prometheus text file (node_exporter's textfile collector) rewritten after every run.
    metrics_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFilter {
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    seed: Vec<String>,
    #[serde(default)]
    toolchains: Vec<String>,
    #[serde(default)]
    from_files: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrune {
    #[serde(default = "default_true")]
    enabled: bool,
    #[serde(default = "default_max_delete")]
    max_delete: RawMaxDelete,
    /// Default: "7d", or "never" for a mirror that follows another's feed
    /// (the feed says what was deleted).
    recheck_interval: Option<String>,
    /// At most this many rechecks per sync (default: as many as the
    /// interval and `recheck_rate` call for).
    recheck_batch: Option<u64>,
    /// Recheck requests per second, on average over time, at most.
    #[serde(default = "default_recheck_rate")]
    recheck_rate: u64,
    #[serde(default = "default_true")]
    scan_tree: bool,
    /// The whole tree is scanned for strays once per this period, a slice
    /// per sync (default "7d"; "0s": all of it on every sync).
    scan_interval: Option<String>,
    /// How long a version the upstream answers 404/410 for stays "not
    /// there yet" before it counts as gone.
    #[serde(default = "default_missing_grace")]
    missing_grace: String,
}

impl Default for RawPrune {
    fn default() -> Self {
        RawPrune {
            enabled: true,
            max_delete: default_max_delete(),
            recheck_interval: None,
            recheck_batch: None,
            recheck_rate: default_recheck_rate(),
            scan_tree: true,
            scan_interval: None,
            missing_grace: default_missing_grace(),
        }
    }
}

fn default_missing_grace() -> String {
    "3d".to_string()
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawMaxDelete {
    Count(i64),
    Text(String),
    // Anything else (a float, a table) gets our own message naming the key
    // instead of serde's "did not match any variant".
    Other(toml::Value),
}

fn default_timeout() -> String {
    "60s".to_string()
}
fn default_workers() -> usize {
    16
}
fn default_true() -> bool {
    true
}
fn default_max_delete() -> RawMaxDelete {
    RawMaxDelete::Text("10%".to_string())
}
fn default_recheck() -> String {
    "7d".to_string()
}
/// Holds a week's recheck interval up to 30 million published versions.
fn default_recheck_rate() -> u64 {
    50
}
/// The stray scan's default period: a week.
const SCAN_INTERVAL_DEFAULT: &str = "7d";
/// `verify --slice`'s default cycle: a month.
const VERIFY_CYCLE_DEFAULT: &str = "30d";

/// humantime's year (365.25 days), so `"20y"` is exactly the bound.
const YEAR: Duration = Duration::from_secs(31_557_600);

/// The values a configured duration may take, and how the message says so.
struct Bounds {
    min: Duration,
    max: Duration,
    text: &'static str,
}

/// A per-read timeout of 0 fails every request; hours hide a hung upstream.
const TIMEOUT_BOUNDS: Bounds = Bounds {
    min: Duration::from_secs(1),
    max: Duration::from_secs(3600),
    text: "between 1s and 1h",
};
/// The index starts in 2019; twenty years back is already "the beginning".
const INDEX_SINCE_BOUNDS: Bounds = Bounds {
    min: Duration::ZERO,
    max: YEAR.saturating_mul(20),
    text: "between 0s and 20y",
};
/// `0s` rechecks on every sync (within `recheck_batch`); "never" is spelt out.
const RECHECK_BOUNDS: Bounds = Bounds {
    min: Duration::ZERO,
    max: YEAR.saturating_mul(10),
    text: "between 0s and 10y (or \"never\")",
};
/// A lagging proxy or mirror catches up within hours; less than an hour
/// would turn one passing 404 into a deletion.
const MISSING_GRACE_BOUNDS: Bounds = Bounds {
    min: Duration::from_secs(3600),
    max: YEAR,
    text: "between 1h and 1y",
};
/// The batch becomes an SQL `LIMIT`; a huge one is no limit at all.
const RECHECK_BATCH_MAX: u64 = 1_000_000;
/// Requests per second: one at least (a slower recheck is `recheck_interval`'s
/// business), and no more than a large proxy answers one client.
const RECHECK_RATE_MAX: u64 = 10_000;
/// `0s` scans the whole tree on every sync (as before issue 23).
const SCAN_INTERVAL_BOUNDS: Bounds = Bounds {
    min: Duration::ZERO,
    max: YEAR,
    text: "between 0s and 1y",
};
/// A slice a day for a month is the usual shape; a cycle shorter than a day
/// is a full `verify`.
const VERIFY_CYCLE_BOUNDS: Bounds = Bounds {
    min: Duration::from_secs(86_400),
    max: YEAR.saturating_mul(2),
    text: "between 1d and 2y",
};

/// The checked configuration every command runs from.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The config file this came from (for messages).
    pub config_path: PathBuf,
    /// Where versions' files come from: a GOPROXY-style list (the go
    /// command's `,`/`|` failover); empty for `off` (a mirror fed only by
    /// `gomirror import`).
    pub proxy: Vec<ListEntry>,
    /// The module index feed; `None` when `upstream.index = "off"` (most
    /// proxies publish none): then seeds and toolchains say what is wanted.
    pub index: Option<Url>,
    /// Per-read timeout for upstream requests (no whole-transfer cap: zips are large).
    pub timeout: Duration,
    /// Where a new mirror starts reading the index; `None` = the beginning.
    pub index_since: Option<IndexSince>,
    /// Modules whose tagged versions are listed from the proxy on every run.
    pub seeds: Vec<String>,
    /// GOOS-GOARCH platforms whose `golang.org/toolchain` versions are mirrored.
    pub toolchains: Vec<String>,
    /// `filter.from_files`: globs (or paths) of go.sum, go.mod and module-list
    /// files, relative to [`Settings::config_dir`], read on every sync.
    pub from_files: Vec<String>,
    /// The directory the config file is in (relative paths resolve against it).
    pub config_dir: PathBuf,
    pub sumdb: SumdbSettings,
    /// The tree's directory; for a bucket, the local staging directory
    /// beside the state database.
    pub output: PathBuf,
    /// `mirror.output = "s3://bucket/prefix"`: the tree lives in a bucket.
    pub bucket: Option<bucket::BucketUrl>,
    pub s3: bucket::S3Options,
    pub state: PathBuf,
    pub workers: usize,
    pub filter: Filter,
    pub prune: PruneSettings,
    /// `mirror.name`: names the trace file `<output>/trace/<name>.json`.
    pub mirror_name: String,
    /// `report.metrics_file`: rewritten after every run of every command.
    pub metrics_file: Option<PathBuf>,
    /// Another gomirror tree whose change feed says what is wanted
    /// (`upstream.index = "mirror+URL"`): the tree's base URL.
    pub follow: Option<Url>,
    /// This mirror's own change feed (`<output>/feed/`).
    pub feed: FeedSettings,
    /// `[verify]`: `verify --slice` checks the whole mirror once per
    /// `verify.cycle`.
    pub verify_cycle: Duration,
    /// `export.signing_key`: the note signer key file bundles are signed with.
    pub signing_key: Option<PathBuf>,
    /// `import.trusted_keys`: bundles signed by one of these may carry
    /// modules the checksum database does not know (`sumdb.skip`).
    pub trusted_keys: Vec<Verifier>,
}

/// `[feed]`: the shape of this mirror's change feed.
#[derive(Clone, Debug)]
pub struct FeedSettings {
    /// Entries per segment file; fixed when the feed is created (a later
    /// change applies to a new feed only).
    pub segment_entries: u64,
    /// Complete segments kept; older ones are compacted into a snapshot.
    pub keep_segments: u64,
}

#[derive(Clone, Debug)]
pub struct SumdbSettings {
    /// The verifier key string as configured.
    pub key: String,
    pub verifier: Verifier,
    /// The database name, from the key (`sum.golang.org`).
    pub name: String,
    /// Where the database is reached: a list like `upstream.proxy`'s.
    pub urls: Vec<ListEntry>,
    /// GONOSUMDB-style patterns: modules verified only structurally.
    pub skip: String,
    /// Which tiles the tree holds (`sumdb.tiles`).
    pub tiles: TileMode,
    /// At most this many tiles older than those the tree holds are fetched
    /// per run (`sumdb.max_tiles_per_run`); `None`: no limit. New tiles at
    /// the head are always fetched.
    pub max_tiles_per_run: Option<u64>,
}

impl SumdbSettings {
    /// Whether `module` is exempt from checksum-database verification.
    pub fn skips(&self, module: &str) -> bool {
        !self.skip.is_empty() && pattern::match_prefix_patterns(&self.skip, module)
    }
}

/// Which tiles of the checksum database the mirror tree holds (`sumdb.tiles`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TileMode {
    /// Every tile a client whose tree head is not newer than the mirror's
    /// can ask for: every full tile up to the mirror's head at every level,
    /// and every width of the partial tiles at its right edge. Any go
    /// client verifies through the mirror, whatever head it trusted before.
    #[default]
    All,
    /// Only the tiles that prove the mirror's own lookups and heads: a
    /// client that only ever used this mirror verifies; one that trusted a
    /// head from elsewhere may find tiles missing.
    Needed,
}

/// Which modules the mirror wants: GOPRIVATE-style include and exclude patterns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pub include: String,
    pub exclude: String,
    /// Module paths wanted besides `include` (exactly these, not their
    /// subpaths): the seeds when `include` is empty, and
    /// `golang.org/toolchain` when toolchains are mirrored.
    pub exact: Vec<String>,
}

impl Filter {
    pub fn wants(&self, module: &str) -> bool {
        let included = (!self.include.is_empty()
            && pattern::match_prefix_patterns(&self.include, module))
            || self.exact.iter().any(|m| m == module);
        included
            && (self.exclude.is_empty() || !pattern::match_prefix_patterns(&self.exclude, module))
    }

    /// A stable description, stored with the state so a changed filter is noticed.
    pub fn fingerprint(&self) -> String {
        let mut f = format!("include={};exclude={}", self.include, self.exclude);
        // Unchanged for filters without exact paths: existing mirrors keep their fingerprint.
        if !self.exact.is_empty() {
            f.push_str(";exact=");
            f.push_str(&self.exact.join(","));
        }
        f
    }
}

#[derive(Clone, Debug)]
pub struct PruneSettings {
    pub enabled: bool,
    pub max_delete: MaxDelete,
    /// How often a published version is asked about upstream again (404/410 →
    /// pruned); `None` when `recheck_interval = "never"`.
    pub recheck_interval: Option<Duration>,
    /// How many published versions one sync rechecks at most
    /// (`prune.recheck_batch`); `None`: as many as the interval calls for.
    pub recheck_batch: Option<u64>,
    /// Recheck requests per second, on average, at most (`prune.recheck_rate`).
    pub recheck_rate: u64,
    /// Whether pruning walks the tree for strays.
    pub scan_tree: bool,
    /// A sync scans a slice of the tree for strays, so that the whole tree is
    /// scanned once per this period (`prune.scan_interval`; zero: all of it
    /// on every sync). `gomirror prune` scans it all.
    pub scan_interval: Duration,
    /// How long a version the upstream answers 404/410 for is retried before
    /// it counts as gone (`prune.missing_grace`, default three days: long
    /// enough for a lagging proxy or mirror to catch up).
    pub missing_grace: Duration,
}

impl PruneSettings {
    /// [`PruneSettings::missing_grace`] in seconds, as the state database counts.
    pub fn missing_grace_secs(&self) -> i64 {
        i64::try_from(self.missing_grace.as_secs()).unwrap_or(i64::MAX)
    }

    /// Published versions last checked at or before this (Unix seconds) are
    /// due a recheck at `now`; `None` when rechecks are off.
    pub fn recheck_cutoff(&self, now: i64) -> Option<i64> {
        let interval = self.recheck_interval?;
        Some(now.saturating_sub(i64::try_from(interval.as_secs()).unwrap_or(i64::MAX)))
    }
}

/// `prune.max_delete`: an absolute count or a share of the mirror.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MaxDelete {
    Count(u64),
    Percent(f64),
}

impl MaxDelete {
    /// The largest deletion allowed in a mirror of `total` versions.
    pub fn limit(&self, total: u64) -> u64 {
        match *self {
            MaxDelete::Count(n) => n,
            MaxDelete::Percent(p) => ((total as f64) * p / 100.0).floor() as u64,
        }
    }
}

impl fmt::Display for MaxDelete {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaxDelete::Count(n) => write!(f, "{n}"),
            MaxDelete::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl Settings {
    /// The nearest link of this mirror's upstream chain, for its feed and
    /// trace: the feed it follows, else its proxy list (credentials masked).
    pub fn upstream_name(&self) -> String {
        match &self.follow {
            Some(f) => crate::redact::redact_url(f),
            None if self.proxy.is_empty() => "off".to_string(),
            None => lists::describe_list(&self.proxy),
        }
    }

    /// Reads and checks the config file at `path`.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };
        Settings::parse(&text, path, &base)
    }

    /// Parses config text; `base` is the directory relative paths resolve against.
    pub fn parse(text: &str, path: &Path, base: &Path) -> Result<Settings, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| invalid(plain_words(&e.to_string())))?;

        let proxy = parse_list("upstream.proxy", &raw.upstream.proxy, parse_url)
            .map_err(&invalid)?
            .unwrap_or_default();
        let (index, follow) = match raw.upstream.index.trim() {
            "off" => (None, None),
            text => match text.strip_prefix("mirror+") {
                Some(url) => {
                    let mut base = parse_url("upstream.index", url).map_err(&invalid)?;
                    if !base.path().ends_with('/') {
                        let p = format!("{}/", base.path());
                        base.set_path(&p);
                    }
                    (None, Some(base))
                }
                None => (
                    Some(parse_url("upstream.index", text).map_err(&invalid)?),
                    None,
                ),
            },
        };
        if raw.feed.segment_entries == 0 || raw.feed.segment_entries > 1_000_000 {
            return Err(invalid(format!(
                "feed.segment_entries must be between 1 and 1000000, not {}",
                raw.feed.segment_entries
            )));
        }
        if raw.feed.keep_segments == 0 {
            return Err(invalid(
                "feed.keep_segments must be at least 1 (the newest complete segment is always kept)".into(),
            ));
        }
        let timeout = bounded_duration(
            "upstream.timeout",
            &raw.upstream.timeout,
            &TIMEOUT_BOUNDS,
            "\"60s\"",
        )
        .map_err(&invalid)?;

        let verifier = Verifier::parse(&raw.sumdb.key)
            .map_err(|e| invalid(format!("sumdb.key: {e}: {:?}", raw.sumdb.key)))?;
        let name = verifier.name().to_string();
        // The name becomes directories of the tree (`sumdb/<name>/`).
        if !crate::relpath::is_db_name(&name) {
            return Err(invalid(format!(
                "sumdb.key: the database name {name:?} cannot be used as a directory name"
            )));
        }
        let sumdb_urls = match &raw.sumdb.url {
            Some(u) => parse_list("sumdb.url", u, parse_url)
                .map_err(&invalid)?
                .ok_or_else(|| {
                    invalid(
                        "sumdb.url: the checksum database cannot be \"off\" (every version is verified against it; list modules it does not know in sumdb.skip)".to_string(),
                    )
                })?,
            None => vec![ListEntry {
                url: parse_url("sumdb.url", &format!("https://{name}")).map_err(|e| {
                    invalid(format!("{e} (derived from the key's name; set sumdb.url)"))
                })?,
                fallback: Fallback::NotFound,
            }],
        };
        let skip = join_patterns("sumdb.skip", &raw.sumdb.skip).map_err(&invalid)?;
        let tiles = match raw.sumdb.tiles.as_deref() {
            None | Some("all") => TileMode::All,
            Some("needed") => TileMode::Needed,
            Some(other) => {
                return Err(invalid(format!(
                    "sumdb.tiles must be \"all\" (every tile, so that any go client verifies through the mirror) or \"needed\" (only those that prove this mirror's own lookups), not {other:?}"
                )));
            }
        };
        if raw.sumdb.max_tiles_per_run == Some(0) {
            return Err(invalid(
                "sumdb.max_tiles_per_run must be at least 1 (leave it out for no limit)"
                    .to_string(),
            ));
        }

        if raw.mirror.workers == 0 || raw.mirror.workers > 256 {
            return Err(invalid(format!(
                "mirror.workers must be between 1 and 256, not {}",
                raw.mirror.workers
            )));
        }
        let state = absolute(base, &raw.mirror.state);
        if raw.mirror.output.as_os_str().is_empty() {
            return Err(invalid("mirror.output is empty".into()));
        }
        let bucket = match bucket::BucketUrl::parse(&raw.mirror.output.to_string_lossy()) {
            None => None,
            Some(Ok(b)) => Some(b),
            Some(Err(e)) => return Err(invalid(format!("mirror.output: {e}"))),
        };
        if bucket.is_none() && (raw.s3.endpoint.is_some() || raw.s3.region.is_some()) {
            return Err(invalid(
                "[s3] is set but mirror.output is a directory, not an s3:// bucket".into(),
            ));
        }
        if let Some(e) = &raw.s3.endpoint {
            parse_url("s3.endpoint", e).map_err(&invalid)?;
        }
        // A bucket's local staging area lives beside the state database.
        let output = match &bucket {
            Some(_) => {
                let name = state
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "state".into());
                state.with_file_name(format!(".{name}.staging"))
            }
            None => absolute(base, &raw.mirror.output),
        };
        // Compared as the filesystem will see them: `sub/../out/state.db`, or a
        // symlink to the output, must not slip past (prune would delete the
        // state database as a stray on every run).
        let (real_state, real_output) = (resolve_existing(&state), resolve_existing(&output));
        if bucket.is_none() && real_state.starts_with(&real_output) {
            let resolved = if (&real_state, &real_output) == (&state, &output) {
                String::new()
            } else {
                format!(
                    " (resolved: {} inside {})",
                    real_state.display(),
                    real_output.display()
                )
            };
            return Err(invalid(format!(
                "mirror.state ({}) must not be inside mirror.output ({}){resolved}: the web server would publish it and prune would treat it as a stray",
                state.display(),
                output.display()
            )));
        }

        let include = join_patterns("filter.include", &raw.filter.include).map_err(&invalid)?;
        let nothing_named = raw.filter.seed.is_empty()
            && raw.filter.toolchains.is_empty()
            && raw.filter.from_files.is_empty();
        if include.is_empty() && nothing_named {
            return Err(invalid(
                "filter.include is empty, so nothing would be mirrored; use [\"*\"] to mirror every module, or name modules in filter.seed, platforms in filter.toolchains or project files in filter.from_files"
                    .into(),
            ));
        }
        // With the proxy off too, the mirror is fed by `gomirror import` alone.
        if index.is_none() && follow.is_none() && nothing_named && !proxy.is_empty() {
            return Err(invalid(
                "upstream.index is \"off\" and none of filter.seed, filter.toolchains and filter.from_files names anything, so nothing would be mirrored (a mirror fed only by `gomirror import` sets upstream.proxy = \"off\" too)"
                    .into(),
            ));
        }
        for pattern in &raw.filter.from_files {
            if pattern.trim().is_empty() {
                return Err(invalid("filter.from_files: an entry is empty".into()));
            }
            if is_glob(pattern) {
                glob::Pattern::new(pattern).map_err(|e| {
                    invalid(format!(
                        "filter.from_files: {pattern:?} is not a valid glob: {e}"
                    ))
                })?;
            }
        }
        let exclude = join_patterns("filter.exclude", &raw.filter.exclude).map_err(&invalid)?;
        let mut toolchain_platforms: Vec<String> = Vec::new();
        for platform in &raw.filter.toolchains {
            if !toolchain::is_platform(platform) {
                return Err(invalid(format!(
                    "filter.toolchains: {platform:?} is not a GOOS-GOARCH pair Go releases toolchains for (e.g. \"linux-amd64\", \"darwin-arm64\"; see `go tool dist list`)"
                )));
            }
            if !toolchain_platforms.contains(platform) {
                toolchain_platforms.push(platform.clone());
            }
        }
        // With no include patterns the seeds are the wanted modules themselves.
        let mut exact: Vec<String> = if include.is_empty() {
            raw.filter.seed.clone()
        } else {
            Vec::new()
        };
        if !toolchain_platforms.is_empty() {
            exact.push(toolchain::MODULE.to_string());
        }
        exact.sort();
        exact.dedup();
        let filter = Filter {
            include,
            exclude,
            exact,
        };
        for seed in &raw.filter.seed {
            crate::gomod::check_path(seed).map_err(|e| invalid(format!("filter.seed: {e}")))?;
            if !filter.wants(seed) {
                return Err(invalid(format!(
                    "filter.seed: {seed:?} is not wanted by filter.include/exclude, so seeding it would mirror nothing"
                )));
            }
        }
        if !toolchain_platforms.is_empty() && !filter.wants(toolchain::MODULE) {
            return Err(invalid(format!(
                "filter.toolchains: {} is excluded by filter.exclude, so no toolchain would be mirrored",
                toolchain::MODULE
            )));
        }
        let index_since = match &raw.upstream.index_since {
            None => None,
            Some(t) => Some(parse_index_since(t, jiff::Timestamp::now()).map_err(&invalid)?),
        };

        let max_delete_message = |shown: String| {
            invalid(format!(
                "prune.max_delete: expected a count (100) or a percentage from 0% to 100% (\"10%\"), not {shown}"
            ))
        };
        let max_delete = match raw.prune.max_delete {
            RawMaxDelete::Count(n) => {
                MaxDelete::Count(u64::try_from(n).map_err(|_| max_delete_message(n.to_string()))?)
            }
            RawMaxDelete::Text(t) => {
                parse_max_delete(&t).ok_or_else(|| max_delete_message(format!("{t:?}")))?
            }
            RawMaxDelete::Other(v) => return Err(max_delete_message(v.to_string())),
        };
        let recheck_text = raw.prune.recheck_interval.clone().unwrap_or_else(|| {
            if follow.is_some() {
                "never".to_string()
            } else {
                default_recheck()
            }
        });
        let recheck_interval = match recheck_text.trim() {
            "never" | "off" => None,
            text => Some(
                bounded_duration(
                    "prune.recheck_interval",
                    text,
                    &RECHECK_BOUNDS,
                    "\"7d\", \"12h\"",
                )
                .map_err(&invalid)?,
            ),
        };
        let missing_grace = match crate::env::test::missing_grace() {
            Some(d) => d,
            None => bounded_duration(
                "prune.missing_grace",
                &raw.prune.missing_grace,
                &MISSING_GRACE_BOUNDS,
                "\"3d\"",
            )
            .map_err(&invalid)?,
        };
        if let Some(batch) = raw.prune.recheck_batch
            && (batch == 0 || batch > RECHECK_BATCH_MAX)
        {
            return Err(invalid(format!(
                "prune.recheck_batch must be between 1 and {RECHECK_BATCH_MAX}, not {batch} (recheck_interval = \"never\" turns rechecks off)"
            )));
        }
        if raw.prune.recheck_rate == 0 || raw.prune.recheck_rate > RECHECK_RATE_MAX {
            return Err(invalid(format!(
                "prune.recheck_rate must be between 1 and {RECHECK_RATE_MAX} requests per second, not {} (recheck_interval = \"never\" turns rechecks off)",
                raw.prune.recheck_rate
            )));
        }
        let scan_interval = bounded_duration(
            "prune.scan_interval",
            raw.prune
                .scan_interval
                .as_deref()
                .unwrap_or(SCAN_INTERVAL_DEFAULT),
            &SCAN_INTERVAL_BOUNDS,
            "\"7d\", \"0s\"",
        )
        .map_err(&invalid)?;
        let verify_cycle = bounded_duration(
            "verify.cycle",
            raw.verify.cycle.as_deref().unwrap_or(VERIFY_CYCLE_DEFAULT),
            &VERIFY_CYCLE_BOUNDS,
            "\"30d\"",
        )
        .map_err(&invalid)?;

        let signing_key = match raw.export.signing_key {
            Some(p) if p.as_os_str().is_empty() => {
                return Err(invalid("export.signing_key is empty".into()));
            }
            Some(p) => Some(absolute(base, &p)),
            None => None,
        };
        let mut trusted_keys: Vec<Verifier> = Vec::new();
        for k in &raw.import.trusted_keys {
            let v = Verifier::parse(k.trim()).map_err(|e| {
                invalid(format!(
                    "import.trusted_keys: {k:?} is not a verifier key (<name>+<hash>+<key>, the .pub file `gomirror keygen` writes): {e}"
                ))
            })?;
            if trusted_keys
                .iter()
                .any(|t| t.name() == v.name() && t.key_hash() == v.key_hash())
            {
                return Err(invalid(format!(
                    "import.trusted_keys: {k:?} is listed twice"
                )));
            }
            trusted_keys.push(v);
        }

        let mirror_name = match raw.mirror.name {
            Some(n) => {
                check_mirror_name(&n).map_err(|why| invalid(format!("mirror.name {n:?} {why}")))?
            }
            None => default_mirror_name(),
        };
        let metrics_file = match raw.report.metrics_file {
            Some(p) if p.as_os_str().is_empty() => {
                return Err(invalid("report.metrics_file is empty".into()));
            }
            Some(p) => {
                let p = absolute(base, &p);
                if p.file_name().is_none() {
                    return Err(invalid(format!(
                        "report.metrics_file {} names no file",
                        p.display()
                    )));
                }
                Some(p)
            }
            None => None,
        };

        Ok(Settings {
            config_path: path.to_path_buf(),
            mirror_name,
            metrics_file,
            proxy,
            index,
            timeout,
            index_since,
            seeds: raw.filter.seed,
            toolchains: toolchain_platforms,
            from_files: raw.filter.from_files,
            config_dir: base.to_path_buf(),
            sumdb: SumdbSettings {
                key: raw.sumdb.key,
                verifier,
                name,
                urls: sumdb_urls,
                skip,
                tiles,
                max_tiles_per_run: raw.sumdb.max_tiles_per_run,
            },
            output,
            bucket,
            s3: bucket::S3Options {
                endpoint: raw.s3.endpoint.clone(),
                region: raw.s3.region.clone(),
            },
            state,
            workers: raw.mirror.workers,
            filter,
            prune: PruneSettings {
                enabled: raw.prune.enabled,
                max_delete,
                recheck_interval,
                recheck_batch: raw.prune.recheck_batch,
                recheck_rate: raw.prune.recheck_rate,
                scan_tree: raw.prune.scan_tree,
                scan_interval,
                missing_grace,
            },
            verify_cycle,
            follow,
            feed: FeedSettings {
                segment_entries: raw.feed.segment_entries,
                keep_segments: raw.feed.keep_segments,
            },
            signing_key,
            trusted_keys,
        })
    }
}

impl Settings {
    /// Where the tree lives, for messages: a directory or `s3://bucket/prefix`.
    pub fn output_display(&self) -> String {
        match &self.bucket {
            Some(b) => b.to_string(),
            None => self.output.display().to_string(),
        }
    }
}

/// A mirror name becomes a file name (`trace/<name>.json`) that downstream
/// mirrors and monitors request: a host-name-like word, nothing that could
/// leave the directory or hide the file.
fn check_mirror_name(name: &str) -> Result<String, &'static str> {
    if crate::relpath::is_mirror_name(name) {
        return Ok(name.to_string());
    }
    Err(if name.is_empty() || name.len() > 253 {
        "must be 1 to 253 characters long"
    } else if name.starts_with('.') || name.starts_with('-') {
        "must not start with '.' or '-'"
    } else {
        "may hold only letters, digits, '.', '-' and '_' (it names trace/<name>.json)"
    })
}

/// The host name, as `hostname` prints it; `gomirror` if it is not usable as
/// a mirror name (then `mirror.name` should be set).
fn default_mirror_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // what fits (a truncated name is cut at the buffer's end below).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "gomirror".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    std::str::from_utf8(&buf[..end])
        .ok()
        .and_then(|n| check_mirror_name(n).ok())
        .unwrap_or_else(|| "gomirror".into())
}

fn absolute(base: &Path, p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    // Normalise `.` components lexically for readable messages; `..` is kept
    // (resolving it lexically could change meaning across symlinks) and
    // containment is checked on `resolve_existing` instead.
    let mut out = PathBuf::new();
    for c in joined.components() {
        if c != std::path::Component::CurDir {
            out.push(c);
        }
    }
    if out.is_relative()
        && let Ok(cwd) = std::env::current_dir()
    {
        return cwd.join(out);
    }
    out
}

/// What `path` (absolute) will name once created: its longest existing
/// ancestor with symlinks and `..` resolved by the filesystem, then the rest
/// appended with `..` applied lexically (nothing there exists to be a symlink).
fn resolve_existing(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut missing = Vec::new();
    let mut existing = path;
    let real = loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            break real;
        }
        match (existing.parent(), existing.components().next_back()) {
            (Some(parent), Some(last)) => {
                missing.push(last);
                existing = parent;
            }
            // Not even the root resolves (a relative path): compare as written.
            _ => {
                missing.clear();
                break PathBuf::new();
            }
        }
    };
    let mut out = if real.as_os_str().is_empty() {
        missing.extend(path.components().rev());
        PathBuf::new()
    } else {
        real
    };
    for c in missing.into_iter().rev() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `upstream.index_since`: an RFC 3339 time not after `now`, or a duration
/// before the first run.
fn parse_index_since(t: &str, now: jiff::Timestamp) -> Result<IndexSince, String> {
    if crate::clock::is_rfc3339(t) {
        let at: jiff::Timestamp = t
            .parse()
            .map_err(|e| format!("upstream.index_since: {t:?}: {e}"))?;
        if at > now {
            return Err(format!(
                "upstream.index_since: {t:?} is in the future (now is {now}); the index has nothing after it"
            ));
        }
        return Ok(IndexSince::At(t.to_string()));
    }
    if parse_duration(t).is_none() {
        return Err(format!(
            "upstream.index_since: {t:?} is neither an RFC 3339 time (\"2026-01-01T00:00:00Z\") nor a duration (\"7d\")"
        ));
    }
    bounded_duration("upstream.index_since", t, &INDEX_SINCE_BOUNDS, "\"7d\"").map(IndexSince::Ago)
}

/// Parses `text` as a duration within `bounds`, or says why not, naming `key`.
fn bounded_duration(
    key: &str,
    text: &str,
    bounds: &Bounds,
    example: &str,
) -> Result<Duration, String> {
    let d = parse_duration_detailed(text)
        .map_err(|e| format!("{key}: cannot parse {text:?} as a duration ({e}; e.g. {example})"))?;
    if d < bounds.min || d > bounds.max {
        return Err(format!("{key} must be {}, not {text:?}", bounds.text));
    }
    Ok(d)
}

/// A TOML error in the words a user of `sync.toml` reads: serde names Rust
/// types (`expected usize`); the user wrote `workers = "16"`.
fn plain_words(message: &str) -> String {
    let mut m = message.to_string();
    for (rust, plain) in [
        (
            "expected usize",
            "expected a whole number, written without quotes (workers = 16)",
        ),
        (
            "expected u64",
            "expected a whole number, written without quotes",
        ),
        (
            "expected i64",
            "expected a whole number, written without quotes",
        ),
        (
            "expected u32",
            "expected a whole number, written without quotes",
        ),
        (
            "expected a boolean",
            "expected true or false, written without quotes",
        ),
        ("expected a sequence", "expected a list: [\"a\", \"b\"]"),
    ] {
        m = m.replace(rust, plain);
    }
    m
}

fn parse_url(key: &str, s: &str) -> Result<Url, String> {
    let url = Url::parse(s).map_err(|e| {
        let hint = if !s.contains("://") && !s.trim().is_empty() {
            format!(
                " (a URL starts with its scheme: did you mean {:?}?)",
                redact(&format!("https://{}", s.trim()))
            )
        } else {
            String::new()
        };
        format!("{key}: {:?} is not a URL: {e}{hint}", redact(s))
    })?;
    match url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(format!(
                "{key}: unsupported URL scheme {other:?} (use http or https)"
            ));
        }
    }
    if url.cannot_be_a_base() || url.host_str().is_none() {
        return Err(format!("{key}: URL {:?} has no host", redact(s)));
    }
    Ok(url)
}

fn join_patterns(key: &str, list: &[String]) -> Result<String, String> {
    for p in list {
        pattern::check_patterns(p).map_err(|e| format!("{key}: {e}"))?;
    }
    Ok(list
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(","))
}

fn parse_max_delete(t: &str) -> Option<MaxDelete> {
    let t = t.trim();
    if let Some(p) = t.strip_suffix('%') {
        let v: f64 = p.trim().parse().ok()?;
        (0.0..=100.0).contains(&v).then_some(MaxDelete::Percent(v))
    } else {
        t.parse().ok().map(MaxDelete::Count)
    }
}

/// Whether a `from_files` entry is a pattern (else a path that must exist).
pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// Parses durations like `90s`, `15m`, `12h`, `7d`, `1h 30m`, `2w`, or a bare
/// number of seconds. Bounds are the caller's: see [`Settings::parse`].
pub fn parse_duration(s: &str) -> Option<Duration> {
    parse_duration_detailed(s).ok()
}

fn parse_duration_detailed(s: &str) -> Result<Duration, humantime::DurationError> {
    let s = s.trim();
    // humantime wants a unit; earlier configs used bare seconds.
    if !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = s.parse::<u64>()
    {
        return Ok(Duration::from_secs(n));
    }
    humantime::parse_duration(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";

    fn cfg(body: &str) -> Result<Settings, ConfigError> {
        Settings::parse(
            body,
            Path::new("/etc/gomirror/sync.toml"),
            Path::new("/etc/gomirror"),
        )
    }

    fn minimal(extra: &str) -> String {
        format!(
            r#"
[upstream]
proxy = "https://proxy.golang.org"
index = "https://index.golang.org/index"
[sumdb]
key = "{KEY}"
[mirror]
output = "mirror"
state = "state.db"
[filter]
include = ["golang.org/x"]
{extra}
"#
        )
    }

    #[test]
    fn minimal_config_gets_defaults_and_resolves_paths() {
        let s = cfg(&minimal("")).unwrap();
        assert_eq!(s.output, PathBuf::from("/etc/gomirror/mirror"));
        assert_eq!(s.state, PathBuf::from("/etc/gomirror/state.db"));
        assert_eq!(s.workers, 16);
        assert_eq!(s.sumdb.name, "sum.golang.org");
        assert_eq!(s.sumdb.urls[0].url.as_str(), "https://sum.golang.org/");
        assert!(s.prune.enabled);
        assert_eq!(s.prune.max_delete, MaxDelete::Percent(10.0));
        assert!(s.filter.wants("golang.org/x/mod"));
        assert!(!s.filter.wants("github.com/x/mod"));
    }

    #[test]
    fn unknown_key_is_named() {
        let err = cfg(&minimal("[prune]\nenabeld = true\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("enabeld"), "{err}");
        let err = cfg(&minimal("").replace("[mirror]", "[mirror]\nwrokers = 3"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("wrokers"), "{err}");
    }

    #[test]
    fn bad_values_are_refused_with_the_key() {
        let err = cfg(&minimal("").replace("https://proxy.golang.org", "ftp://x"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("upstream.proxy"), "{err}");
        let err = cfg(&minimal("").replace(KEY, "sum.golang.org+033de0ae+AAAA"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("sumdb.key"), "{err}");
        let err = cfg(&minimal("").replace("[\"golang.org/x\"]", "[]"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("filter.include is empty"), "{err}");
        let err = cfg(&minimal("").replace("[\"golang.org/x\"]", "[\"a[\"]"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("filter.include"), "{err}");
        let err = cfg(&minimal("[prune]\nmax_delete = \"lots\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("prune.max_delete"), "{err}");
        let err = cfg(&minimal("").replace("state.db", "mirror/state.db"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("must not be inside"), "{err}");
    }

    #[test]
    fn filter_exclude_and_sumdb_skip() {
        let s = cfg(&minimal("").replace(
            "include = [\"golang.org/x\"]",
            "include = [\"*\"]\nexclude = [\"golang.org/x/exp\"]",
        ))
        .unwrap();
        assert!(s.filter.wants("github.com/a/b"));
        assert!(!s.filter.wants("golang.org/x/exp"));
        assert!(!s.filter.wants("golang.org/x/exp/sub"));
        let s = cfg(&minimal("").replace(
            &format!("key = \"{KEY}\""),
            &format!("key = \"{KEY}\"\nskip = [\"corp.example\"]"),
        ))
        .unwrap();
        assert!(s.sumdb.skips("corp.example/lib"));
        assert!(!s.sumdb.skips("golang.org/x/mod"));
    }

    #[test]
    fn sumdb_tiles_all_by_default_needed_or_bounded_per_run() {
        let with = |extra: &str| {
            cfg(&minimal("").replace(
                &format!("key = \"{KEY}\""),
                &format!("key = \"{KEY}\"\n{extra}"),
            ))
        };
        let s = with("").unwrap();
        assert_eq!(s.sumdb.tiles, TileMode::All);
        assert_eq!(s.sumdb.max_tiles_per_run, None);
        let s = with("tiles = \"needed\"\nmax_tiles_per_run = 5000").unwrap();
        assert_eq!(s.sumdb.tiles, TileMode::Needed);
        assert_eq!(s.sumdb.max_tiles_per_run, Some(5000));
        let err = with("tiles = \"some\"").unwrap_err().to_string();
        assert!(
            err.contains("sumdb.tiles") && err.contains("\"some\""),
            "{err}"
        );
        let err = with("max_tiles_per_run = 0").unwrap_err().to_string();
        assert!(err.contains("sumdb.max_tiles_per_run"), "{err}");
        assert!(with("max_tiles_per_run = -1").is_err());
    }

    #[test]
    fn seeds_must_be_wanted_and_since_valid() {
        let s = cfg(&minimal("").replace(
            "include = [\"golang.org/x\"]",
            "include = [\"golang.org/x\"]\nseed = [\"golang.org/x/mod\"]",
        ))
        .unwrap();
        assert_eq!(s.seeds, vec!["golang.org/x/mod".to_string()]);
        let err = cfg(&minimal("").replace(
            "include = [\"golang.org/x\"]",
            "include = [\"golang.org/x\"]\nseed = [\"github.com/a/b\"]",
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("filter.seed"), "{err}");
        let s =
            cfg(&minimal("").replace("[upstream]", "[upstream]\nindex_since = \"7d\"")).unwrap();
        assert_eq!(
            s.index_since.unwrap().resolve(7 * 86400),
            "1970-01-01T00:00:00Z"
        );
        let err =
            cfg(&minimal("").replace("[upstream]", "[upstream]\nindex_since = \"last week\""))
                .unwrap_err()
                .to_string();
        assert!(err.contains("upstream.index_since"), "{err}");
    }

    #[test]
    fn index_mirror_plus_follows_another_trees_feed() {
        let follow = |index: &str, extra: &str| {
            cfg(&(minimal("").replace("https://index.golang.org/index", index) + extra))
        };
        let s = follow("mirror+https://up.example/tree", "").unwrap();
        assert_eq!(s.index, None);
        assert_eq!(
            s.follow.as_ref().unwrap().as_str(),
            "https://up.example/tree/"
        );
        assert_eq!(s.upstream_name(), "https://up.example/tree/");
        assert_eq!((s.feed.segment_entries, s.feed.keep_segments), (1000, 1000));
        // The feed says what was deleted: no rechecks unless asked for.
        assert_eq!(s.prune.recheck_interval, None);
        let s = follow(
            "mirror+https://up.example/",
            "\n[prune]\nrecheck_interval = \"1d\"\n",
        )
        .unwrap();
        assert_eq!(s.prune.recheck_interval, Some(Duration::from_secs(86400)));
        let s = follow(
            "https://index.example/",
            "\n[feed]\nsegment_entries = 5\nkeep_segments = 2\n",
        )
        .unwrap();
        assert!(s.follow.is_none() && s.index.is_some());
        assert_eq!((s.feed.segment_entries, s.feed.keep_segments), (5, 2));
        let err = follow("mirror+not a url", "").unwrap_err().to_string();
        assert!(err.contains("upstream.index"), "{err}");
        for (extra, key) in [
            ("\n[feed]\nsegment_entries = 0\n", "feed.segment_entries"),
            ("\n[feed]\nkeep_segments = 0\n", "feed.keep_segments"),
            ("\n[feed]\nkeep = 3\n", "keep"),
        ] {
            let err = follow("off", extra).unwrap_err().to_string();
            assert!(err.contains(key), "{extra}: {err}");
        }
    }

    #[test]
    fn index_off_follows_seeds_and_toolchains_only() {
        let off = |filter: &str| {
            cfg(&minimal("")
                .replace("https://index.golang.org/index", "off")
                .replace("include = [\"golang.org/x\"]", filter))
        };
        let s = off("include = []\nseed = [\"golang.org/x/mod\"]").unwrap();
        assert_eq!(s.index, None);
        assert!(s.filter.wants("golang.org/x/mod"));
        // Exactly the seeds: not their subpaths, not their neighbours.
        assert!(!s.filter.wants("golang.org/x/mod/sub") && !s.filter.wants("golang.org/x/net"));
        let s = off("toolchains = [\"linux-amd64\", \"darwin-arm64\", \"linux-amd64\"]").unwrap();
        assert_eq!(s.toolchains, ["linux-amd64", "darwin-arm64"]);
        assert!(s.filter.wants("golang.org/toolchain") && !s.filter.wants("golang.org/x/mod"));
        // Seeds with include patterns must still be wanted by them.
        let s = off("include = [\"golang.org/x\"]\nseed = [\"golang.org/x/mod\"]").unwrap();
        assert!(s.filter.wants("golang.org/x/net"));
        let err = off("include = [\"golang.org/x\"]").unwrap_err().to_string();
        assert!(
            err.contains("upstream.index is \"off\"") && err.contains("filter.seed"),
            "{err}"
        );
        let err = off("include = []").unwrap_err().to_string();
        assert!(err.contains("filter.include is empty"), "{err}");
        // from_files alone says what is wanted; globs are checked here.
        let s = off("include = []\nfrom_files = [\"projects/*/go.sum\", \"tools.txt\"]").unwrap();
        assert_eq!(s.from_files, ["projects/*/go.sum", "tools.txt"]);
        assert!(!s.filter.wants("golang.org/x/mod"));
        let err = off("include = []\nfrom_files = [\"projects/[*/go.sum\"]")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("filter.from_files: \"projects/[*/go.sum\" is not a valid glob"),
            "{err}"
        );
        let err = off("include = []\nfrom_files = [\" \"]")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("filter.from_files: an entry is empty"),
            "{err}"
        );
        // With the index on, an empty include and only toolchains is enough too.
        let s = cfg(&minimal("").replace(
            "include = [\"golang.org/x\"]",
            "include = []\ntoolchains = [\"linux-arm64\"]",
        ))
        .unwrap();
        assert!(s.index.is_some() && s.filter.wants("golang.org/toolchain"));
    }

    #[test]
    fn unknown_toolchain_platform_is_refused_naming_the_key() {
        for bad in ["linux-x86_64", "linux", "amd64-linux", "Linux-amd64", ""] {
            let err = refused(
                "include = [\"golang.org/x\"]",
                &format!("include = [\"golang.org/x\"]\ntoolchains = [{bad:?}]"),
                "",
            );
            assert!(
                err.contains("filter.toolchains") && err.contains(&format!("{bad:?}")),
                "{bad}: {err}"
            );
        }
        let err = refused(
            "include = [\"golang.org/x\"]",
            "include = [\"golang.org\"]\nexclude = [\"golang.org/toolchain\"]\ntoolchains = [\"linux-amd64\"]",
            "",
        );
        assert!(
            err.contains("filter.toolchains") && err.contains("excluded"),
            "{err}"
        );
    }

    #[test]
    fn fingerprint_of_a_filter_without_exact_paths_is_unchanged() {
        let s = cfg(&minimal("")).unwrap();
        assert_eq!(s.filter.fingerprint(), "include=golang.org/x;exclude=");
        let s = cfg(&minimal("").replace(
            "include = [\"golang.org/x\"]",
            "include = [\"golang.org/x\"]\ntoolchains = [\"linux-amd64\"]",
        ))
        .unwrap();
        assert_eq!(
            s.filter.fingerprint(),
            "include=golang.org/x;exclude=;exact=golang.org/toolchain"
        );
    }

    #[test]
    fn max_delete_limits() {
        assert_eq!(MaxDelete::Percent(10.0).limit(1000), 100);
        assert_eq!(MaxDelete::Percent(10.0).limit(5), 0);
        assert_eq!(MaxDelete::Count(7).limit(5), 7);
        assert_eq!(parse_max_delete("25%"), Some(MaxDelete::Percent(25.0)));
        assert_eq!(parse_max_delete("250%"), None);
        assert_eq!(parse_max_delete("12"), Some(MaxDelete::Count(12)));
    }

    #[test]
    fn shipped_config_loads_and_names_the_real_upstreams() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/sync.toml"));
        let s = Settings::load(path).unwrap();
        assert_eq!(s.proxy[0].url.as_str(), "https://proxy.golang.org/");
        // Seeds name every module it wants: no index feed, which works
        // wherever the proxy does (index.golang.org need not be reachable).
        assert!(s.index.is_none());
        assert_eq!(
            s.sumdb.urls[0].url.as_str(),
            "https://proxy.golang.org/sumdb/sum.golang.org"
        );
        assert_eq!(s.sumdb.name, "sum.golang.org");
        assert_eq!(s.sumdb.verifier.key_hash(), 0x033de0ae);
        assert_eq!(
            s.output,
            Path::new(env!("CARGO_MANIFEST_DIR")).join("mirror")
        );
        assert!(s.filter.wants("golang.org/x/mod") && !s.filter.wants("github.com/x/y"));
        assert!(s.seeds.iter().any(|m| m == "golang.org/x/mod"));
    }

    #[test]
    fn mirror_name_and_metrics_file() {
        let s = cfg(&minimal("")).unwrap();
        assert!(
            check_mirror_name(&s.mirror_name).is_ok(),
            "{}",
            s.mirror_name
        );
        assert_eq!(s.metrics_file, None);
        let s = cfg(&format!(
            "{}\n[report]\nmetrics_file = \"metrics/g.prom\"\n",
            minimal("").replace("[mirror]", "[mirror]\nname = \"goproxy.example.org\"")
        ))
        .unwrap();
        assert_eq!(s.mirror_name, "goproxy.example.org");
        assert_eq!(
            s.metrics_file,
            Some(PathBuf::from("/etc/gomirror/metrics/g.prom"))
        );
        for bad in ["", "../etc", ".hidden", "a/b", "a b", "-x"] {
            let err = cfg(&minimal("").replace("[mirror]", &format!("[mirror]\nname = {bad:?}")))
                .unwrap_err()
                .to_string();
            assert!(err.contains("mirror.name"), "{bad:?}: {err}");
        }
        let err = cfg(&format!("{}\n[report]\nmetrics_fil = \"x\"\n", minimal("")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("metrics_fil"), "{err}");
    }

    #[test]
    fn production_config_has_absolute_paths_only() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/production/sync.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        // Read from /etc/gomirror as installed: nothing may resolve there.
        let s = Settings::parse(
            &text,
            Path::new("/etc/gomirror/sync.toml"),
            Path::new("/etc/gomirror"),
        )
        .unwrap();
        assert_eq!(s.output, PathBuf::from("/srv/gomirror/mirror"));
        assert_eq!(s.state, PathBuf::from("/srv/gomirror/state/state.db"));
        assert_eq!(
            s.metrics_file,
            Some(PathBuf::from(
                "/var/lib/prometheus/node-exporter/gomirror.prom"
            ))
        );
    }

    #[test]
    fn readme_configuration_block_is_accepted() {
        let readme = include_str!("../../README.md");
        let section = &readme[readme.find("## Configuration").expect("section")..];
        let start = section.find("```toml\n").expect("toml block") + "```toml\n".len();
        let block = &section[start..start + section[start..].find("```").expect("block end")];
        let s = cfg(block).unwrap_or_else(|e| panic!("README's configuration block: {e}"));
        assert_eq!(s.timeout, Duration::from_secs(60));
        assert_eq!(
            s.index_since,
            Some(IndexSince::Ago(Duration::from_secs(7 * 86400)))
        );
        assert_eq!(
            s.prune.recheck_interval,
            Some(Duration::from_secs(7 * 86400))
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_duration(" 60s "), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("1h 30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2w"), Some(Duration::from_secs(14 * 86400)));
        assert_eq!(parse_duration("20y"), Some(YEAR * 20));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("-5s"), None);
        assert_eq!(parse_duration("99999999999999999999s"), None);
    }

    /// Parses `minimal(extra)` with `replace` applied, expecting a refusal.
    fn refused(from: &str, to: &str, extra: &str) -> String {
        match cfg(&minimal(extra).replace(from, to)) {
            Ok(_) => panic!("accepted {to:?} {extra:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn zero_or_huge_timeout_is_refused() {
        for t in ["0s", "0", "500ms", "2h", "18446744073709551615"] {
            let err = refused("[upstream]", &format!("[upstream]\ntimeout = \"{t}\""), "");
            assert!(
                err.contains("upstream.timeout must be between 1s and 1h"),
                "{t}: {err}"
            );
        }
        let err = refused("[upstream]", "[upstream]\ntimeout = \"soon\"", "");
        assert!(err.contains("upstream.timeout: cannot parse"), "{err}");
        for (t, want) in [("1s", 1), ("60", 60), ("1h", 3600)] {
            let s =
                cfg(&minimal("").replace("[upstream]", &format!("[upstream]\ntimeout = \"{t}\"")))
                    .unwrap();
            assert_eq!(s.timeout, Duration::from_secs(want));
        }
    }

    #[test]
    fn huge_index_since_does_not_wrap_into_the_future() {
        // u64::MAX seconds used to become -1 as i64: `now - d` was one second ahead.
        let err = refused(
            "[upstream]",
            "[upstream]\nindex_since = \"18446744073709551615s\"",
            "",
        );
        assert!(
            err.contains("upstream.index_since must be between 0s and 20y"),
            "{err}"
        );
        let err = refused("[upstream]", "[upstream]\nindex_since = \"21y\"", "");
        assert!(err.contains("upstream.index_since"), "{err}");
        let now = 1_795_017_600;
        let since = IndexSince::Ago(Duration::from_secs(u64::MAX)).resolve(now);
        assert!(crate::clock::timestamp_cmp(&since, &crate::clock::rfc3339(now)).is_lt());
        let s =
            cfg(&minimal("").replace("[upstream]", "[upstream]\nindex_since = \"20y\"")).unwrap();
        assert_eq!(
            s.index_since.unwrap().resolve(now),
            crate::clock::rfc3339(now - 20 * 31_557_600)
        );
    }

    #[test]
    fn index_since_in_the_future_or_impossible_is_refused() {
        let err = refused(
            "[upstream]",
            "[upstream]\nindex_since = \"2999-01-01T00:00:00Z\"",
            "",
        );
        assert!(
            err.contains("upstream.index_since") && err.contains("in the future"),
            "{err}"
        );
        let err = refused(
            "[upstream]",
            "[upstream]\nindex_since = \"2023-02-30T00:00:00Z\"",
            "",
        );
        assert!(err.contains("upstream.index_since"), "{err}");
        let s = cfg(&minimal("").replace(
            "[upstream]",
            "[upstream]\nindex_since = \"2019-04-10T12:08:52.997264-07:00\"",
        ))
        .unwrap();
        assert_eq!(
            s.index_since,
            Some(IndexSince::At("2019-04-10T12:08:52.997264-07:00".into()))
        );
    }

    #[test]
    fn recheck_interval_meant_as_never_does_not_recheck_everything() {
        // u64::MAX seconds used to put the cutoff in the future: every
        // published version was due on every run.
        let err = refused(
            "",
            "",
            "[prune]\nrecheck_interval = \"18446744073709551615s\"",
        );
        assert!(
            err.contains("prune.recheck_interval must be between 0s and 10y"),
            "{err}"
        );
        let err = refused("", "", "[prune]\nrecheck_interval = \"11y\"");
        assert!(err.contains("prune.recheck_interval"), "{err}");
        let now = 1_795_017_600;
        for never in ["never", "off"] {
            let s = cfg(&minimal(&format!(
                "[prune]\nrecheck_interval = \"{never}\""
            )))
            .unwrap();
            assert_eq!(s.prune.recheck_cutoff(now), None);
        }
        let s = cfg(&minimal("[prune]\nrecheck_interval = \"10y\"")).unwrap();
        assert_eq!(s.prune.recheck_cutoff(now), Some(now - 10 * 31_557_600));
        let s = cfg(&minimal("[prune]\nrecheck_interval = \"0s\"")).unwrap();
        assert_eq!(s.prune.recheck_cutoff(now), Some(now));
        let mut p = s.prune.clone();
        p.recheck_interval = Some(Duration::from_secs(u64::MAX));
        assert!(p.recheck_cutoff(now).is_some_and(|c| c < now));
    }

    #[test]
    fn recheck_batch_and_max_delete_out_of_range_are_refused() {
        for b in ["0", "1000001", "9223372036854775807"] {
            let err = refused("", "", &format!("[prune]\nrecheck_batch = {b}"));
            assert!(
                err.contains("prune.recheck_batch must be between 1 and 1000000"),
                "{b}: {err}"
            );
        }
        for m in [
            "-1", "10.5", "\"101%\"", "\"-1%\"", "\"nan%\"", "true", "\"\"",
        ] {
            let err = refused("", "", &format!("[prune]\nmax_delete = {m}"));
            assert!(err.contains("prune.max_delete"), "{m}: {err}");
        }
        let s = cfg(&minimal("[prune]\nmax_delete = 0\nrecheck_batch = 1000000")).unwrap();
        assert_eq!(s.prune.max_delete, MaxDelete::Count(0));
        assert_eq!(s.prune.recheck_batch, Some(1_000_000));
        let s = cfg(&minimal("[prune]\nmax_delete = \"100%\"")).unwrap();
        assert_eq!(s.prune.max_delete, MaxDelete::Percent(100.0));
    }

    /// Issue 23: the keys that spread recurring work over runs.
    #[test]
    fn recheck_rate_scan_interval_and_verify_cycle_are_bounded() {
        let s = cfg(&minimal("")).unwrap();
        assert_eq!(
            (s.prune.recheck_batch, s.prune.recheck_rate),
            (None, 50),
            "no batch cap by default; 50 requests a second"
        );
        assert_eq!(s.prune.scan_interval, Duration::from_secs(7 * 86_400));
        assert_eq!(s.verify_cycle, Duration::from_secs(30 * 86_400));
        for r in ["0", "10001", "-1"] {
            let err = refused("", "", &format!("[prune]\nrecheck_rate = {r}"));
            assert!(err.contains("recheck_rate"), "{r}: {err}");
        }
        let s = cfg(&minimal(
            "[prune]\nrecheck_rate = 10000\nscan_interval = \"0s\"\n[verify]\ncycle = \"1d\"",
        ))
        .unwrap();
        assert_eq!(s.prune.recheck_rate, 10_000);
        assert_eq!(s.prune.scan_interval, Duration::ZERO);
        assert_eq!(s.verify_cycle, Duration::from_secs(86_400));
        for (key, value) in [
            ("[prune]\nscan_interval", "\"2y\""),
            ("[prune]\nscan_interval", "\"soon\""),
            ("[verify]\ncycle", "\"12h\""),
            ("[verify]\ncycle", "\"3y\""),
        ] {
            let err = refused("", "", &format!("{key} = {value}"));
            let name = key.rsplit('\n').next().unwrap();
            assert!(err.contains(name), "{key} = {value}: {err}");
        }
    }

    #[test]
    fn state_inside_output_through_dotdot_or_symlink_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        std::fs::create_dir(base.join("out")).unwrap();
        std::fs::create_dir(base.join("sub")).unwrap();
        std::os::unix::fs::symlink(base.join("out"), base.join("link")).unwrap();
        let parse = |output: &str, state: &str| {
            let text = minimal("")
                .replace("output = \"mirror\"", &format!("output = {output:?}"))
                .replace("state = \"state.db\"", &format!("state = {state:?}"));
            Settings::parse(&text, &base.join("sync.toml"), base)
        };
        for (output, state) in [
            ("out", "sub/../out/state.db"),
            ("out", "missing/../out/state.db"),
            ("out", "link/state.db"),
            ("link", "out/state.db"),
            ("out", "link/deeper/state.db"),
            ("not-yet", "sub/../not-yet/state.db"),
            ("out", "out"),
        ] {
            let err = match parse(output, state) {
                Ok(_) => panic!("state {state:?} inside output {output:?} accepted"),
                Err(e) => e.to_string(),
            };
            assert!(
                err.contains("must not be inside")
                    && err.contains(&base.join(state).display().to_string())
                    && err.contains(&base.join(output).display().to_string()),
                "{err}"
            );
        }
        for (output, state) in [
            ("out", "state.db"),
            ("out", "out-state.db"),
            ("out", "out/../state.db"),
            ("link", "sub/state.db"),
        ] {
            if let Err(e) = parse(output, state) {
                panic!("state {state:?} beside output {output:?} refused: {e}");
            }
        }
    }
}
