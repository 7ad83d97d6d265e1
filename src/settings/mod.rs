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
    #[serde(default)]
    vulndb: RawVulndb,
    #[serde(default)]
    policy: RawPolicy,
    #[serde(default)]
    private: RawPrivate,
    #[serde(default)]
    demand: RawDemand,
    #[serde(default)]
    site: RawSite,
}

/// `[private]`: modules made from their repositories by the go command
/// (`docs/private.md`).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPrivate {
    /// GOPRIVATE-style patterns.
    #[serde(default)]
    modules: Vec<String>,
    /// How long one go command may run before it is killed.
    timeout: Option<String>,
    /// How many go commands run at once.
    jobs: Option<i64>,
}

/// `[policy]`: the supply-chain policy ([`crate::policy`]).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    /// A duration ("3d"); absent or "0s": no cooldown.
    min_age: Option<String>,
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
}

/// `[demand]`: what the mirror's clients asked for and did not get.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDemand {
    /// nginx access logs of the tree (combined or the shipped JSON format).
    #[serde(default)]
    access_logs: Vec<PathBuf>,
    /// Modules new to the mirror one run takes at most.
    #[serde(default = "default_max_new_modules")]
    max_new_modules: i64,
    /// Requests one run takes at most.
    #[serde(default = "default_max_new_versions")]
    max_new_versions: i64,
    /// GOPRIVATE-style patterns: only these modules may be asked for (empty: any).
    #[serde(default)]
    include: Vec<String>,
    /// How long a request stays wanted after a client last asked for it ("off": for ever).
    #[serde(default = "default_demand_keep")]
    keep: String,
}

impl Default for RawDemand {
    fn default() -> Self {
        RawDemand {
            access_logs: Vec::new(),
            max_new_modules: default_max_new_modules(),
            max_new_versions: default_max_new_versions(),
            include: Vec::new(),
            keep: default_demand_keep(),
        }
    }
}

fn default_max_new_modules() -> i64 {
    100
}
fn default_max_new_versions() -> i64 {
    1000
}
fn default_demand_keep() -> String {
    "off".into()
}

/// `[site]`: the mirror's pages (`docs/site.md`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    #[serde(default = "default_true")]
    enabled: bool,
    /// The mirror's public base URL; absent: `http://<mirror.name>/`.
    url: Option<String>,
}

impl Default for RawSite {
    fn default() -> Self {
        RawSite {
            enabled: true,
            url: None,
        }
    }
}

/// `[vulndb]`: the Go vulnerability database mirrored into `<output>/vuln/`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawVulndb {
    /// A list like `upstream.proxy` (`,` and `|`), or "off". Absent: off,
    /// or for a mirror following another (`index = "mirror+URL"`) that
    /// mirror's `vuln/`.
    url: Option<String>,
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
    /// The slowest average a transfer may keep up over `stall_window`
    /// (`"1KiB/s"`, a number of bytes per second, or 0: no check).
    #[serde(default = "default_min_rate")]
    min_rate: toml::Value,
    #[serde(default = "default_stall_window")]
    stall_window: String,
    /// Index pages a long walk asks for at once.
    #[serde(default = "default_index_walkers")]
    index_walkers: i64,
    /// A GOAUTH-style command printing URL prefixes and the headers sent
    /// to them (`docs/private.md`).
    auth_command: Option<String>,
}

fn default_min_rate() -> toml::Value {
    toml::Value::String("1KiB/s".into())
}
fn default_stall_window() -> String {
    "30s".into()
}
fn default_index_walkers() -> i64 {
    8
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
    /// Which Go releases' toolchains (`source::toolchain::ToolchainVersions`);
    /// absent: every one listed.
    toolchain_versions: Option<Vec<String>>,
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
    /// How long a version no longer wanted (no file names it, a narrowed
    /// filter) stays before prune removes it; "0s": at once.
    #[serde(default = "default_keep")]
    keep: String,
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
            keep: default_keep(),
        }
    }
}

fn default_keep() -> String {
    "0s".to_string()
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
/// A window shorter than a few seconds judges a transfer on a hiccup; one of
/// many minutes holds a stalled worker that long.
const STALL_WINDOW_BOUNDS: Bounds = Bounds {
    min: Duration::from_secs(5),
    max: Duration::from_secs(600),
    text: "between 5s and 10m",
};
/// The fastest `upstream.min_rate` that makes sense (a real link's speed).
const MIN_RATE_MAX: u64 = 1 << 30;
/// Older checksum-database tiles fetched per run by default: about 20 s and
/// 64 MB from proxy.golang.org, so a new mirror's first sync is not an hour
/// of tiles; newest first, the public log (~290 k tiles) fills in about 140
/// runs, half a day of five-minute syncs, and a client whose head is a week
/// old is served after the first one.
pub const DEFAULT_TILES_PER_RUN: u64 = 2048;
/// Last month's checkout should still build offline; ten years is "forever".
const KEEP_BOUNDS: Bounds = Bounds {
    min: Duration::ZERO,
    max: YEAR.saturating_mul(10),
    text: "between 0s and 10y",
};
/// A cooldown of more than a year holds new versions for good.
const MIN_AGE_BOUNDS: Bounds = Bounds {
    min: Duration::ZERO,
    max: crate::policy::MAX_MIN_AGE,
    text: "between 0s (off) and 366d",
};
/// The batch becomes an SQL `LIMIT`; a huge one is no limit at all.
const RECHECK_BATCH_MAX: u64 = 1_000_000;
/// Requests per second: one at least (a slower recheck is `recheck_interval`'s
/// business), and no more than a large proxy answers one client.
const RECHECK_RATE_MAX: u64 = 10_000;
/// `0s` scans the whole tree on every sync (as before scans were spread over runs).
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
    /// `upstream.min_rate`: bytes per second a transfer must average over
    /// [`Settings::stall_window`]; 0 turns the check off.
    pub min_rate: u64,
    /// `upstream.stall_window`: the window (and the grace at a transfer's
    /// start) over which `min_rate` is judged.
    pub stall_window: Duration,
    /// `upstream.index_walkers`: index pages a long walk asks for at once.
    pub index_walkers: usize,
    /// Where a new mirror starts reading the index; `None` = the beginning.
    pub index_since: Option<IndexSince>,
    /// Modules whose tagged versions are listed from the proxy on every run.
    pub seeds: Vec<String>,
    /// GOOS-GOARCH platforms whose `golang.org/toolchain` versions are mirrored.
    pub toolchains: Vec<String>,
    /// `filter.toolchain_versions`: which Go releases (`None`: every one listed).
    pub toolchain_versions: Option<toolchain::ToolchainVersions>,
    /// `[vulndb]`: where the vulnerability database is mirrored from.
    pub vulndb: VulndbSettings,
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
    /// `[policy]`: the cooldown, its exceptions and the takedowns.
    pub policy: crate::policy::Policy,
    /// `[private]`: modules made from their repositories (`None`: none are).
    pub private: Option<PrivateSettings>,
    /// `upstream.auth_command`: the command and its arguments, run as the
    /// go command runs a GOAUTH command.
    pub auth_command: Option<Vec<String>>,
    /// `[demand]`: the access logs whose misses become wants.
    pub demand: DemandSettings,
    /// `[site]`: the pages written into the tree.
    pub site: SiteSettings,
}

/// `[private]`: which modules are made from their repositories by the go
/// command, and how that command is bounded.
#[derive(Clone, Debug)]
pub struct PrivateSettings {
    /// GOPRIVATE-style patterns, joined with commas (as GOPRIVATE is).
    pub modules: String,
    /// One go command is killed past this (`private.timeout`).
    pub timeout: Duration,
    /// At most this many go commands at once (`private.jobs`).
    pub jobs: usize,
    /// The go command's own module cache and work directory, beside the
    /// state database (`.<state file>.private`).
    pub dir: PathBuf,
}

impl PrivateSettings {
    /// Whether `module` is made from its repository.
    pub fn owns(&self, module: &str) -> bool {
        pattern::match_prefix_patterns(&self.modules, module)
    }
}

/// A go command is given minutes for a large repository's first clone; a
/// hung one is not left for hours.
const PRIVATE_TIMEOUT_BOUNDS: Bounds = Bounds {
    min: Duration::from_secs(10),
    max: Duration::from_secs(2 * 3600),
    text: "between 10s and 2h",
};

/// `upstream.auth_command` split into words as the go command splits a
/// GOAUTH command: on spaces, with single or double quotes around a word
/// that holds spaces.
fn split_command(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        let mut word = String::new();
        if first == '\'' || first == '"' {
            chars.next();
            loop {
                match chars.next() {
                    Some(c) if c == first => break,
                    Some(c) => word.push(c),
                    None => return Err(format!("unterminated {first} quote")),
                }
            }
            if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                return Err("a quoted word must be followed by a space".into());
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                if c == '\'' || c == '"' {
                    return Err(format!("a quote inside the word {word:?}"));
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word);
    }
    if words.first().is_none_or(|w| w.is_empty()) {
        return Err("no command".into());
    }
    Ok(words)
}

/// `[demand]`: what the mirror's own clients asked for and did not get
/// (`source::demand`).
#[derive(Clone, Debug, Default)]
pub struct DemandSettings {
    /// nginx access logs of this mirror's tree; empty: demand is off.
    pub access_logs: Vec<PathBuf>,
    /// Modules the mirror neither held nor wanted that one run takes at most.
    pub max_new_modules: u64,
    /// Requests one run takes at most.
    pub max_new_versions: u64,
    /// GOPRIVATE-style patterns (comma-joined) of the modules that may be
    /// asked for; empty: any (`filter.exclude` applies either way).
    pub include: String,
    /// How long a request stays wanted after a client last asked for it;
    /// `None`: for ever.
    pub keep: Option<Duration>,
}

impl DemandSettings {
    /// Why `module` may not be taken from the logs, if it may not.
    pub fn refuses(&self, filter: &Filter, module: &str) -> Option<&'static str> {
        if !filter.exclude.is_empty() && pattern::match_prefix_patterns(&filter.exclude, module) {
            return Some("filter.exclude");
        }
        if !self.include.is_empty() && !pattern::match_prefix_patterns(&self.include, module) {
            return Some("not in demand.include");
        }
        None
    }
}

/// `[site]`: the mirror's pages (`docs/site.md`).
#[derive(Clone, Debug)]
pub struct SiteSettings {
    /// `site.enabled` (default true): write them after every sync and import.
    pub enabled: bool,
    /// `site.url`: the base URL clients use (ends with `/`); default
    /// `http://<mirror.name>/`.
    pub url: Url,
}

/// `[vulndb]`: where the Go vulnerability database comes from.
#[derive(Clone, Debug, Default)]
pub struct VulndbSettings {
    /// A list like `upstream.proxy`'s; empty: off.
    pub urls: Vec<ListEntry>,
    /// Nobody configured it: the followed mirror's `vuln/`, which may have none.
    pub implied: bool,
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
    /// per run (`sumdb.max_tiles_per_run`, default [`DEFAULT_TILES_PER_RUN`]);
    /// `None`: no limit. New tiles at the head are always fetched.
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
    /// `prune.keep`: how long a version no longer wanted (no `from_files`
    /// file names it, a narrowed filter) stays before prune removes it;
    /// zero: at once.
    pub keep: Duration,
}

impl PruneSettings {
    /// [`PruneSettings::missing_grace`] in seconds, as the state database counts.
    pub fn missing_grace_secs(&self) -> i64 {
        i64::try_from(self.missing_grace.as_secs()).unwrap_or(i64::MAX)
    }

    /// Versions no longer wanted since at or before this (Unix seconds) have
    /// aged out of `keep`; `i64::MAX` when `keep` is zero (every one has).
    pub fn keep_cutoff(&self, now: i64) -> i64 {
        if self.keep.is_zero() {
            i64::MAX
        } else {
            now.saturating_sub(i64::try_from(self.keep.as_secs()).unwrap_or(i64::MAX))
        }
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

        let proxy = parse_list("upstream.proxy", &raw.upstream.proxy, parse_proxy_url)
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
        let min_rate = parse_rate(&raw.upstream.min_rate).map_err(|why| {
            invalid(format!(
                "upstream.min_rate: {why} (e.g. \"1KiB/s\", \"100KB/s\", 0 for no check)"
            ))
        })?;
        let stall_window = match crate::env::test::min_rate_window() {
            Some(w) => w,
            None => bounded_duration(
                "upstream.stall_window",
                &raw.upstream.stall_window,
                &STALL_WINDOW_BOUNDS,
                "\"30s\"",
            )
            .map_err(&invalid)?,
        };
        if !(1..=32).contains(&raw.upstream.index_walkers) {
            return Err(invalid(format!(
                "upstream.index_walkers must be between 1 and 32, not {}",
                raw.upstream.index_walkers
            )));
        }

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
            Some(u) => parse_list("sumdb.url", u, parse_proxy_url)
                .map_err(&invalid)?
                .ok_or_else(|| {
                    invalid(
                        "sumdb.url: the checksum database cannot be \"off\" (every version is verified against it; list modules it does not know in sumdb.skip)".to_string(),
                    )
                })?,
            None => {
                // A module cache named as a proxy holds the go command's
                // cached lookups and tiles of the database: asked first
                // (verified like any answer), the database itself after.
                let mut urls = cached_sumdb_entries(&proxy, &name);
                urls.push(ListEntry {
                    url: parse_url("sumdb.url", &format!("https://{name}")).map_err(|e| {
                        invalid(format!("{e} (derived from the key's name; set sumdb.url)"))
                    })?,
                    fallback: Fallback::NotFound,
                });
                urls
            }
        };
        let private_modules =
            join_patterns("private.modules", &raw.private.modules).map_err(&invalid)?;
        // Private modules are in no checksum database (GOPRIVATE implies
        // GONOSUMDB): they are verified as sumdb.skip modules are, and this
        // mirror's ledger pins them.
        let mut skip_list = raw.sumdb.skip.clone();
        skip_list.extend(raw.private.modules.iter().cloned());
        let skip = join_patterns("sumdb.skip", &skip_list).map_err(&invalid)?;
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
                "sumdb.max_tiles_per_run must be at least 1 (a large number for no practical limit)"
                    .to_string(),
            ));
        }
        let max_tiles_per_run = Some(raw.sumdb.max_tiles_per_run.unwrap_or(DEFAULT_TILES_PER_RUN));

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
            && raw.filter.from_files.is_empty()
            && raw.demand.access_logs.is_empty();
        if include.is_empty() && nothing_named {
            return Err(invalid(
                "filter.include is empty, so nothing would be mirrored; use [\"*\"] to mirror every module, or name modules in filter.seed, platforms in filter.toolchains or project files in filter.from_files (or access logs in demand.access_logs)"
                    .into(),
            ));
        }
        // With the proxy off too, the mirror is fed by `gomirror import` alone.
        if index.is_none() && follow.is_none() && nothing_named && !proxy.is_empty() {
            return Err(invalid(
                "upstream.index is \"off\" and none of filter.seed, filter.toolchains and filter.from_files names anything (nor demand.access_logs), so nothing would be mirrored (a mirror fed only by `gomirror import` sets upstream.proxy = \"off\" too)"
                    .into(),
            ));
        }
        let demand = parse_demand(base, raw.demand).map_err(&invalid)?;
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
        let toolchain_versions = match &raw.filter.toolchain_versions {
            None => None,
            Some(_) if toolchain_platforms.is_empty() => {
                return Err(invalid(
                    "filter.toolchain_versions says which Go releases, but filter.toolchains names no platform to mirror them for".into(),
                ));
            }
            Some(entries) => Some(
                toolchain::ToolchainVersions::parse(entries)
                    .map_err(|e| invalid(format!("filter.toolchain_versions: {e}")))?,
            ),
        };
        let vulndb = match raw.vulndb.url.as_deref() {
            Some(u) => VulndbSettings {
                urls: parse_list("vulndb.url", u, parse_vulndb_url)
                    .map_err(&invalid)?
                    .unwrap_or_default(),
                implied: false,
            },
            None => match &follow {
                Some(base) => VulndbSettings {
                    urls: vec![ListEntry {
                        url: crate::relpath::join_url(base, "vuln/"),
                        fallback: Fallback::NotFound,
                    }],
                    implied: true,
                },
                None => VulndbSettings::default(),
            },
        };
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
        // A module cache lacks most of what its upstream has: asked
        // whether a published version is still there, it would say no.
        let only_local = !proxy.is_empty() && proxy.iter().all(|e| e.url.scheme() == "file");
        let recheck_text = raw.prune.recheck_interval.clone().unwrap_or_else(|| {
            if follow.is_some() || only_local {
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
        let keep = bounded_duration("prune.keep", &raw.prune.keep, &KEEP_BOUNDS, "\"30d\"")
            .map_err(&invalid)?;
        let min_age = match raw.policy.min_age.as_deref() {
            None => None,
            Some(t) => Some(
                bounded_duration("policy.min_age", t, &MIN_AGE_BOUNDS, "\"3d\"")
                    .map_err(&invalid)?,
            ),
        };
        let policy = crate::policy::Policy::new(min_age, &raw.policy.allow, &raw.policy.deny)
            .map_err(&invalid)?;
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
        let site_url = match &raw.site.url {
            Some(u) => parse_url("site.url", u).map_err(&invalid)?,
            None => parse_url("site.url", &format!("http://{mirror_name}/"))
                .map_err(|e| invalid(format!("{e} (derived from mirror.name; set site.url)")))?,
        };
        if !site_url.username().is_empty()
            || site_url.password().is_some()
            || site_url.query().is_some()
        {
            return Err(invalid(format!(
                "site.url {} carries credentials or a query: it is shown on the pages as the GOPROXY to use",
                crate::redact::redact_url(&site_url)
            )));
        }
        let site_url = if site_url.path().ends_with('/') {
            site_url
        } else {
            let mut u = site_url;
            let p = format!("{}/", u.path());
            u.set_path(&p);
            u
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

        let private = if private_modules.is_empty() {
            if raw.private.timeout.is_some() || raw.private.jobs.is_some() {
                return Err(invalid(
                    "[private] sets timeout or jobs but names no modules (private.modules = [\"git.corp.example/*\"])".into(),
                ));
            }
            None
        } else {
            let timeout = bounded_duration(
                "private.timeout",
                raw.private.timeout.as_deref().unwrap_or("10m"),
                &PRIVATE_TIMEOUT_BOUNDS,
                "\"10m\"",
            )
            .map_err(&invalid)?;
            let jobs = raw.private.jobs.unwrap_or(4);
            if !(1..=32).contains(&jobs) {
                return Err(invalid(format!(
                    "private.jobs must be between 1 and 32, not {jobs}"
                )));
            }
            let name = state
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "state".into());
            Some(PrivateSettings {
                modules: private_modules,
                timeout,
                jobs: jobs as usize,
                dir: state.with_file_name(format!(".{name}.private")),
            })
        };
        let auth_command = match &raw.upstream.auth_command {
            None => None,
            Some(text) => Some(split_command(text).map_err(|why| {
                invalid(format!(
                    "upstream.auth_command: {why} (a command and its arguments, e.g. \"/usr/local/bin/proxy-token --audience mirror\")"
                ))
            })?),
        };

        Ok(Settings {
            config_path: path.to_path_buf(),
            mirror_name,
            metrics_file,
            proxy,
            index,
            timeout,
            min_rate,
            stall_window,
            index_walkers: raw.upstream.index_walkers as usize,
            index_since,
            seeds: raw.filter.seed,
            toolchains: toolchain_platforms,
            toolchain_versions,
            vulndb,
            from_files: raw.filter.from_files,
            config_dir: base.to_path_buf(),
            sumdb: SumdbSettings {
                key: raw.sumdb.key,
                verifier,
                name,
                urls: sumdb_urls,
                skip,
                tiles,
                max_tiles_per_run,
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
                keep,
            },
            verify_cycle,
            follow,
            feed: FeedSettings {
                segment_entries: raw.feed.segment_entries,
                keep_segments: raw.feed.keep_segments,
            },
            signing_key,
            trusted_keys,
            policy,
            private,
            auth_command,
            demand,
            site: SiteSettings {
                enabled: raw.site.enabled,
                url: site_url,
            },
        })
    }
}

/// The most access logs `[demand]` reads.
const MAX_ACCESS_LOGS: usize = 16;
/// `demand.keep`: a day at least (a log rotates daily), ten years at most.
const DEMAND_KEEP_BOUNDS: Bounds = Bounds {
    min: Duration::from_secs(86_400),
    max: YEAR.saturating_mul(10),
    text: "between 1d and 10y (or \"off\")",
};

fn parse_demand(base: &Path, raw: RawDemand) -> Result<DemandSettings, String> {
    if raw.access_logs.len() > MAX_ACCESS_LOGS {
        return Err(format!(
            "demand.access_logs: at most {MAX_ACCESS_LOGS} logs, not {}",
            raw.access_logs.len()
        ));
    }
    let mut access_logs: Vec<PathBuf> = Vec::new();
    for p in &raw.access_logs {
        if p.as_os_str().is_empty() {
            return Err("demand.access_logs: an entry is empty".into());
        }
        let p = absolute(base, p);
        if access_logs.contains(&p) {
            return Err(format!(
                "demand.access_logs: {} is listed twice",
                p.display()
            ));
        }
        access_logs.push(p);
    }
    if !(0..=100_000).contains(&raw.max_new_modules) {
        return Err(format!(
            "demand.max_new_modules must be between 0 and 100000, not {}",
            raw.max_new_modules
        ));
    }
    if !(1..=1_000_000).contains(&raw.max_new_versions) {
        return Err(format!(
            "demand.max_new_versions must be between 1 and 1000000, not {}",
            raw.max_new_versions
        ));
    }
    let keep = match raw.keep.trim() {
        "off" | "never" => None,
        text => Some(bounded_duration(
            "demand.keep",
            text,
            &DEMAND_KEEP_BOUNDS,
            "\"90d\", \"off\"",
        )?),
    };
    Ok(DemandSettings {
        access_logs,
        max_new_modules: raw.max_new_modules as u64,
        max_new_versions: raw.max_new_versions as u64,
        include: join_patterns("demand.include", &raw.include)?,
        keep,
    })
}

/// `upstream.proxy` and `sumdb.url` entries: http(s), or a local directory
/// in GOPROXY layout (`file:///home/me/go/pkg/mod/cache/download`, an old
/// `file://` mirror), which must be an absolute path.
fn parse_proxy_url(key: &str, s: &str) -> Result<Url, String> {
    if let Some(path) = s.strip_prefix("file://") {
        let mut url =
            Url::parse(s).map_err(|e| format!("{key}: invalid URL {:?}: {e}", redact(s)))?;
        if !path.starts_with('/') || url.to_file_path().is_err() || url.query().is_some() {
            return Err(format!(
                "{key}: {s:?} must name an absolute directory (file:///path, as GOPROXY takes it)"
            ));
        }
        if !url.path().ends_with('/') {
            let p = format!("{}/", url.path());
            url.set_path(&p);
        }
        return Ok(url);
    }
    parse_url(key, s)
}

/// For every `file://` proxy entry that holds `sumdb/<name>/` (a module
/// cache's `cache/download` does, with the lookups and tiles the go
/// command fetched), that directory as a checksum-database entry.
fn cached_sumdb_entries(proxy: &[ListEntry], name: &str) -> Vec<ListEntry> {
    proxy
        .iter()
        .filter(|e| e.url.scheme() == "file")
        .filter_map(|e| {
            let url = crate::relpath::join_url(&e.url, &format!("sumdb/{name}/"));
            url.to_file_path()
                .ok()
                .filter(|p| p.is_dir())
                .map(|_| ListEntry {
                    url,
                    fallback: Fallback::NotFound,
                })
        })
        .collect()
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

/// `mirror.name`, in the form `bundle::check_mirror_name` gives every
/// mirror name (a bundle's too).
fn check_mirror_name(name: &str) -> Result<String, &'static str> {
    crate::relpath::check_mirror_name(name).map(|()| name.to_string())
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

/// A vulnerability database's URL: http(s) like the proxy's, or a local
/// directory (`file:///srv/vulndb`) holding vuln.go.dev's layout.
fn parse_vulndb_url(key: &str, s: &str) -> Result<Url, String> {
    if let Some(path) = s.strip_prefix("file://") {
        let url = Url::parse(s).map_err(|e| format!("{key}: invalid URL {:?}: {e}", redact(s)))?;
        if !path.starts_with('/') || url.to_file_path().is_err() {
            return Err(format!(
                "{key}: {s:?} must name an absolute directory (file:///path)"
            ));
        }
        return Ok(url);
    }
    parse_url(key, s)
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

/// `upstream.min_rate`: a number of bytes per second, or a size per second
/// (`"1KiB/s"`, `"2MB/s"`, with or without the `/s`); 0 is no check.
fn parse_rate(v: &toml::Value) -> Result<u64, String> {
    let n = match v {
        toml::Value::Integer(n) => u64::try_from(*n).map_err(|_| format!("{n} is negative"))?,
        toml::Value::String(s) => {
            let t = s.trim();
            let t = t.strip_suffix("/s").unwrap_or(t).trim();
            let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
            let (num, unit) = t.split_at(split);
            let num: u64 = num.parse().map_err(|_| format!("{s:?} is not a rate"))?;
            let mult: u64 = match unit.trim() {
                "" | "B" => 1,
                "KB" | "kB" => 1000,
                "KiB" => 1 << 10,
                "MB" => 1_000_000,
                "MiB" => 1 << 20,
                _ => return Err(format!("{s:?}: unknown unit {:?}", unit.trim())),
            };
            num.checked_mul(mult)
                .ok_or_else(|| format!("{s:?} is too large"))?
        }
        other => return Err(format!("{other} is not a rate")),
    };
    if n > MIN_RATE_MAX {
        return Err(format!(
            "{n} bytes per second is more than any link carries"
        ));
    }
    Ok(n)
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
    fn demand_is_off_by_default_bounded_and_may_alone_say_what_is_wanted() {
        let s = cfg(&minimal("")).unwrap();
        assert!(s.demand.access_logs.is_empty());
        let s = cfg(&minimal(
            "[demand]\naccess_logs = [\"logs/a.log\", \"/var/log/nginx/b.log\"]\nmax_new_modules = 0\ninclude = [\"corp.example\"]\nkeep = \"90d\"",
        ))
        .unwrap();
        assert_eq!(
            s.demand.access_logs,
            [
                PathBuf::from("/etc/gomirror/logs/a.log"),
                PathBuf::from("/var/log/nginx/b.log")
            ]
        );
        assert_eq!(
            (s.demand.max_new_modules, s.demand.max_new_versions),
            (0, 1000)
        );
        assert_eq!(s.demand.keep, Some(Duration::from_secs(90 * 86400)));
        assert_eq!(
            s.demand.refuses(&s.filter, "other.example/m"),
            Some("not in demand.include")
        );
        assert_eq!(s.demand.refuses(&s.filter, "corp.example/m"), None);
        for (bad, why) in [
            ("access_logs = [\"\"]", "an entry is empty"),
            ("access_logs = [\"a\", \"a\"]", "listed twice"),
            ("max_new_modules = -1", "demand.max_new_modules"),
            ("max_new_versions = 0", "demand.max_new_versions"),
            ("keep = \"1h\"", "demand.keep"),
            ("include = [\"[\"]", "demand.include"),
            ("logs = []", "logs"),
        ] {
            let err = cfg(&minimal(&format!("[demand]\n{bad}")))
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
        // With no index and nothing else named, the logs alone say what is wanted.
        let only = minimal("[demand]\naccess_logs = [\"/var/log/nginx/gomirror.access.log\"]")
            .replace("include = [\"golang.org/x\"]", "include = []")
            .replace("\"https://index.golang.org/index\"", "\"off\"");
        cfg(&only).unwrap();
        let none = only.replace("access_logs = [\"/var/log/nginx/gomirror.access.log\"]", "");
        assert!(
            cfg(&none)
                .unwrap_err()
                .to_string()
                .contains("demand.access_logs")
        );
    }

    #[test]
    fn a_proxy_may_be_a_local_directory_whose_sumdb_cache_is_asked_first() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache/download");
        std::fs::create_dir_all(cache.join("sumdb/sum.golang.org/lookup")).unwrap();
        let text = minimal("").replace(
            "proxy = \"https://proxy.golang.org\"",
            &format!(
                "proxy = \"file://{},https://proxy.golang.org\"",
                cache.display()
            ),
        );
        let s = cfg(&text).unwrap();
        assert_eq!(s.proxy[0].url.scheme(), "file");
        assert!(s.proxy[0].url.path().ends_with("/cache/download/"));
        let sumdb: Vec<String> = s.sumdb.urls.iter().map(|e| e.url.to_string()).collect();
        assert_eq!(sumdb.len(), 2, "{sumdb:?}");
        assert!(
            sumdb[0].ends_with("/cache/download/sumdb/sum.golang.org/"),
            "{sumdb:?}"
        );
        assert_eq!(sumdb[1], "https://sum.golang.org/");
        assert_eq!(
            s.prune.recheck_interval,
            Some(Duration::from_secs(7 * 86400))
        );
        // A cache alone is not asked whether published versions are gone.
        let alone = minimal("").replace(
            "proxy = \"https://proxy.golang.org\"",
            &format!("proxy = \"file://{}\"", cache.display()),
        );
        assert_eq!(cfg(&alone).unwrap().prune.recheck_interval, None);
        for bad in ["file://relative/dir", "file:///srv/x?y=1"] {
            let err = cfg(&minimal("").replace(
                "proxy = \"https://proxy.golang.org\"",
                &format!("proxy = {bad:?}"),
            ))
            .unwrap_err()
            .to_string();
            assert!(err.contains("absolute directory"), "{bad}: {err}");
        }
    }

    #[test]
    fn vulndb_url_is_a_list_off_by_default_and_the_followed_mirrors_when_following() {
        let s = cfg(&minimal("")).unwrap();
        assert!(s.vulndb.urls.is_empty());
        let s = cfg(&minimal(
            "[vulndb]\nurl = \"https://vuln.go.dev|https://vuln.example/db,file:///srv/vulndb\"",
        ))
        .unwrap();
        let urls: Vec<&str> = s.vulndb.urls.iter().map(|e| e.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://vuln.go.dev/",
                "https://vuln.example/db",
                "file:///srv/vulndb"
            ]
        );
        assert_eq!(s.vulndb.urls[0].fallback, Fallback::AnyError);
        assert!(!s.vulndb.implied);
        let s = cfg(&minimal("[vulndb]\nurl = \"off\"")).unwrap();
        assert!(s.vulndb.urls.is_empty());
        for (bad, why) in [
            ("ftp://x.example", "unsupported URL scheme"),
            ("file://relative/dir", "absolute directory"),
            ("", "no upstream given"),
        ] {
            let err = cfg(&minimal(&format!("[vulndb]\nurl = {bad:?}")))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("vulndb.url") && err.contains(why),
                "{bad}: {err}"
            );
        }
        let err = cfg(&minimal("[vulndb]\nurls = \"x\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("urls"), "{err}");
        // A follower takes its upstream mirror's vuln/ unless told otherwise.
        let follow = minimal("").replace(
            "index = \"https://index.golang.org/index\"",
            "index = \"mirror+https://up.example/tree\"",
        );
        let s = cfg(&follow).unwrap();
        assert_eq!(
            s.vulndb.urls[0].url.as_str(),
            "https://up.example/tree/vuln/"
        );
        assert!(s.vulndb.implied);
        let s = cfg(&format!("{follow}\n[vulndb]\nurl = \"off\"\n")).unwrap();
        assert!(s.vulndb.urls.is_empty());
    }

    #[test]
    fn policy_and_keep_are_off_by_default_and_checked() {
        let s = cfg(&minimal("")).unwrap();
        assert!(s.policy.is_off());
        assert!(s.prune.keep.is_zero());
        assert_eq!(s.prune.keep_cutoff(1000), i64::MAX);
        let s = cfg(&minimal(
            r#"[policy]
min_age = "3d"
allow = ["golang.org/x/net@v0.33.0", "corp.example/*"]
deny = ["example.com/evil", "github.com/x/y@v1.2.3", "github.com/x/y@<v1.4.0"]
[prune]
keep = "30d""#,
        ))
        .unwrap();
        assert_eq!(s.policy.min_age_secs(), 3 * 86400);
        assert_eq!((s.policy.allow.len(), s.policy.deny.len()), (2, 3));
        assert_eq!(s.prune.keep.as_secs(), 30 * 86400);
        assert_eq!(s.prune.keep_cutoff(40 * 86400), 10 * 86400);
        for (bad, key, why) in [
            (
                "[policy]\nmin_age = \"soon\"",
                "policy.min_age",
                "cannot parse",
            ),
            ("[policy]\nmin_age = \"400d\"", "policy.min_age", "366d"),
            (
                "[policy]\ndeny = [\"example.com/x@1.0\"]",
                "policy.deny",
                "semantic version",
            ),
            (
                "[policy]\nallow = [\"a.example/[\"]",
                "policy.allow",
                "invalid pattern",
            ),
            ("[policy]\nminage = \"3d\"", "minage", "unknown field"),
            ("[prune]\nkeep = \"forever\"", "prune.keep", "cannot parse"),
            (
                "[prune]\nkeep = \"11y\"",
                "prune.keep",
                "between 0s and 10y",
            ),
        ] {
            let err = cfg(&minimal(bad)).unwrap_err().to_string();
            assert!(err.contains(key) && err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn toolchain_versions_need_platforms_and_a_valid_selection() {
        let with = |tv: &str| {
            minimal("").replace(
                "include = [\"golang.org/x\"]",
                &format!("include = [\"golang.org/x\"]\n{tv}"),
            )
        };
        let s = cfg(&with("toolchains = [\"linux-amd64\"]\ntoolchain_versions = [\">=1.24\", \"minors 2 patches 1\"]")).unwrap();
        assert!(s.toolchain_versions.is_some());
        let s = cfg(&with("toolchains = [\"linux-amd64\"]")).unwrap();
        assert!(s.toolchain_versions.is_none());
        let err = cfg(&with("toolchain_versions = [\">=1.24\"]"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("filter.toolchains names no platform"), "{err}");
        let err = cfg(&with(
            "toolchains = [\"linux-amd64\"]\ntoolchain_versions = [\"1.24.x\"]",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("filter.toolchain_versions: \"1.24.x\""),
            "{err}"
        );
    }

    #[test]
    fn private_modules_skip_the_checksum_database_and_are_bounded() {
        let s = cfg(&minimal(
            "[private]\nmodules = [\"git.corp.example/*\", \"corp.example\"]",
        ))
        .unwrap();
        let p = s.private.as_ref().unwrap();
        assert!(p.owns("git.corp.example/team/lib.git") && p.owns("corp.example/x"));
        assert!(!p.owns("golang.org/x/mod"));
        // GOPRIVATE implies GONOSUMDB.
        assert!(s.sumdb.skips("git.corp.example/team/lib.git"));
        assert!(!s.sumdb.skips("golang.org/x/mod"));
        assert_eq!(p.dir, Path::new("/etc/gomirror/.state.db.private"));
        assert_eq!((p.timeout, p.jobs), (Duration::from_secs(600), 4));
        assert!(cfg(&minimal("")).unwrap().private.is_none());
        for (bad, says) in [
            ("[private]\nmodules = [\"[\"]", "private.modules"),
            (
                "[private]\nmodules = [\"a.example\"]\ntimeout = \"1s\"",
                "private.timeout",
            ),
            (
                "[private]\nmodules = [\"a.example\"]\njobs = 0",
                "private.jobs",
            ),
            ("[private]\ntimeout = \"5m\"", "names no modules"),
            ("[private]\nrepos = []", "repos"),
        ] {
            let e = cfg(&minimal(bad)).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn auth_command_is_split_like_a_goauth_command() {
        let with = |c: &str| {
            let text = minimal("").replace(
                "index = \"https://index.golang.org/index\"",
                &format!("index = \"https://index.golang.org/index\"\nauth_command = {c:?}"),
            );
            cfg(&text)
        };
        assert_eq!(
            with("/usr/local/bin/proxy-token --aud 'mirror one'")
                .unwrap()
                .auth_command
                .unwrap(),
            ["/usr/local/bin/proxy-token", "--aud", "mirror one"]
        );
        for bad in ["", "  ", "tok 'open", "a'b"] {
            let e = with(bad).unwrap_err().to_string();
            assert!(e.contains("upstream.auth_command"), "{bad:?}: {e}");
        }
        assert!(cfg(&minimal("")).unwrap().auth_command.is_none());
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
        assert_eq!(s.sumdb.max_tiles_per_run, Some(DEFAULT_TILES_PER_RUN));
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
        assert_eq!(s.vulndb.urls[0].url.as_str(), "https://vuln.go.dev/");
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
