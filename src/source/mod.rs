//! Sources: what is wanted, and where its files come from. Two seams, in
//! the manner of cargo's `RegistrySource` over `trait RegistryData`:
//!
//! - A [`Discovery`] says *what* is wanted: it walks its feed and offers
//!   batches of module versions to an [`Intake`]. It decides nothing about the
//!   state database: the intake does the work — [`crate::discover`] has one
//!   that records (a sync) and one that only reads and prints (a dry run). So
//!   a source is written once and both modes come free. Today: the module
//!   index ([`index::IndexFeed`], cursor-based) and seeds ([`seeds::Seeds`], a
//!   module's tagged versions), project files, toolchains, another mirror's
//!   feed and the mirror's own access logs ([`demand::Demand`]).
//! - An [`Origin`] says *where* a version's files come from: `.info`, `.mod`,
//!   `.zip` (streamed to a staged file, size-limited and hashed), a module's
//!   `@v/list`, and the checksum database's base URLs. Today one proxy
//!   ([`proxy::ProxyOrigin`]); a GOPROXY list with failover, a bundle
//!   directory or another mirror is a new `Origin`. Its errors keep the
//!   classification the caller acts on: [`OriginError::is_not_found`] (404/410:
//!   "not here", the `state::NotFound` bookkeeping), retryable, or failed.
//!
//! Neither trait builds URLs for the caller or touches the tree; the one HTTP
//! client is handed in by [`crate::settings::Settings`].

pub mod demand;
pub mod feed;
pub mod files;
pub mod index;
pub mod proxy;
pub mod seeds;
pub mod toolchains;
pub mod walk;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use crate::http::list::{Avoid, Served};
use crate::http::{Download, FetchError};
use crate::state::{
    ChangeStats, DemandBatch, DemandNamed, DemandRecorded, DemandTake, FeedOp, FollowCursor,
    IndexEntry, LogPosition, NameStats, NamedFile, PageStats, StateError,
};

/// A boxed future that may move between threads (origins serve the worker pool).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// A boxed future that stays on its task (discovery runs in the pipeline's task).
pub type LocalBoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Why discovery stopped. The messages are the ones the pipeline prints.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read the module index: {0}")]
    Index(#[source] FetchError),
    #[error("index parser failed: {0}")]
    Parser(String),
    /// The feed answered something that cannot be used (not a feed, went back
    /// in time): the cursor must not move.
    #[error("{0}")]
    Feed(String),
    #[error("cannot list seed module {module}: {source}")]
    Seed {
        module: String,
        #[source]
        source: OriginError,
    },
    #[error("seed {module}: cannot name its list: {reason}")]
    SeedName { module: String, reason: String },
    /// A `from_files` file that cannot be used: missing, unreadable, or a
    /// malformed line (named by its number).
    #[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    File {
        file: String,
        line: Option<usize>,
        message: String,
    },
    /// A go.mod's requirement graph needs a `.mod` file that cannot be read.
    #[error("{file}: cannot read the requirement graph: {module}@{version}: .mod: {source}")]
    Graph {
        file: String,
        module: String,
        version: String,
        #[source]
        source: Box<OriginError>,
    },
    /// A module list's `module@latest` whose module cannot be listed.
    #[error("{file}: {module}@latest: cannot list the module: {source}")]
    Latest {
        file: String,
        module: String,
        #[source]
        source: Box<OriginError>,
    },
    #[error(transparent)]
    State(#[from] StateError),
}

/// What a discovery source reports besides versions; the intake prints and
/// counts them.
#[derive(Debug)]
pub enum Event {
    /// A walk begins (a progress display named `what`).
    Started(&'static str),
    /// A page was read: `lines` lines in it.
    Page {
        lines: usize,
    },
    /// A line that will not be used, reported once per run.
    Invalid(String),
    /// Entries that may have been skipped (the exit code shows it).
    Gap(String),
    Warning(String),
    Progress {
        n: u64,
        message: String,
    },
    Verbose(String),
    Finished,
}

/// Where a source reports what is not a version: every intake takes these.
pub trait Events {
    /// Reports something that is not a version.
    fn note(&mut self, event: Event);
}

/// Where discovered versions go: the state database (a sync) or a
/// read-only preview (a dry run). The capabilities are split by the kind of
/// source that needs them, so an intake implements only what it takes —
/// no method exists only to refuse: [`Intake`] for sources that offer
/// versions (the index, seeds, toolchains), [`FilesIntake`] for project
/// files, [`FeedIntake`] for another mirror's feed; a sync's and a dry run's
/// intakes take all three ([`AnyIntake`]).
pub trait Intake: Events {
    /// Where the cursor-based feed resumes: the stored index cursor.
    fn position(&mut self) -> LocalBoxFuture<'_, Result<Option<String>, SourceError>>;
    /// Takes a batch of versions; with `position`, the feed's position after
    /// them, moved in the same transaction (the cursor never passes what is
    /// not recorded).
    fn offer(
        &mut self,
        entries: Vec<IndexEntry>,
        position: Option<String>,
    ) -> LocalBoxFuture<'_, Result<PageStats, SourceError>>;
}

/// Where what project files name goes (`source::files`).
pub trait FilesIntake: Events {
    /// Takes everything the `from_files` files name, replacing what they
    /// named before (a version no file names any more is no longer wanted
    /// through them).
    fn name(&mut self, files: Vec<NamedFile>)
    -> LocalBoxFuture<'_, Result<NameStats, SourceError>>;
}

/// Where another mirror's change feed goes (`source::feed`).
pub trait FeedIntake: Events {
    /// Where this mirror stands in the upstream mirror's feed.
    fn follow_position(&mut self) -> LocalBoxFuture<'_, Result<Option<FollowCursor>, SourceError>>;
    /// Takes a page of the upstream's publications and deletions, moving the
    /// follow cursor to `cursor` in the same transaction.
    fn offer_changes(
        &mut self,
        changes: Vec<(FeedOp, IndexEntry)>,
        cursor: FollowCursor,
    ) -> LocalBoxFuture<'_, Result<ChangeStats, SourceError>>;
    /// A full comparison with the upstream: its snapshot's versions (as
    /// publications) or its whole feed replayed, a page at a time after
    /// `snapshot_begin`, then `snapshot_finish`, which records them,
    /// withdraws what the snapshot lacks and moves the cursor, in one
    /// transaction.
    fn snapshot_begin(&mut self) -> LocalBoxFuture<'_, Result<(), SourceError>>;
    fn snapshot_page(
        &mut self,
        changes: Vec<(FeedOp, IndexEntry)>,
    ) -> LocalBoxFuture<'_, Result<(), SourceError>>;
    fn snapshot_finish(
        &mut self,
        cursor: FollowCursor,
    ) -> LocalBoxFuture<'_, Result<ChangeStats, SourceError>>;
    /// The upstream's own upstream chain, as its feed names it (for this
    /// mirror's feed and trace).
    fn upstream_chain(&mut self, chain: Vec<String>)
    -> LocalBoxFuture<'_, Result<(), SourceError>>;
}

/// Where what the access logs asked for goes (`source::demand`).
pub trait DemandIntake: Events {
    /// Where each log (by its configured path) was read to.
    fn demand_positions(
        &mut self,
        logs: Vec<String>,
    ) -> LocalBoxFuture<'_, Result<Vec<Option<LogPosition>>, SourceError>>;
    /// Takes what the logs asked for and where they were read to (moved in
    /// the same transaction).
    fn demand_record(
        &mut self,
        batch: DemandBatch,
        read: demand::DemandRead,
    ) -> LocalBoxFuture<'_, Result<DemandRecorded, SourceError>>;
    /// Decides which requests this run acts on, under the limits; returns
    /// the modules (asked for as a whole) whose list is to be read.
    fn demand_take(
        &mut self,
        max_new_modules: u64,
        max_new_versions: u64,
    ) -> LocalBoxFuture<'_, Result<DemandTake, SourceError>>;
    /// What a module's upstream `@v/list` named (`None`: no such module).
    fn demand_listed(
        &mut self,
        module: String,
        versions: Option<Vec<String>>,
    ) -> LocalBoxFuture<'_, Result<(), SourceError>>;
    /// Names what demand wants, replacing what it named before; with
    /// `keep`, a request nobody asked for that long is no longer named.
    fn demand_name(
        &mut self,
        keep: Option<std::time::Duration>,
    ) -> LocalBoxFuture<'_, Result<DemandNamed, SourceError>>;
}

/// An intake for every kind of source: a sync's and a dry run's.
pub trait AnyIntake: Intake + FilesIntake + FeedIntake + DemandIntake {}

impl<T: Intake + FilesIntake + FeedIntake + DemandIntake + ?Sized> AnyIntake for T {}

/// A source of wanted versions.
pub trait Discovery {
    /// For messages: what this source is.
    fn describe(&self) -> String;
    /// What can be checked before any source makes a request (a project
    /// file that is missing): every source's preflight runs before the
    /// first walk.
    fn preflight(&self) -> Result<(), SourceError> {
        Ok(())
    }
    /// Walks the source, offering its versions to `intake` batch by batch
    /// (never the whole walk at once).
    fn discover<'a>(
        &'a self,
        intake: &'a mut dyn AnyIntake,
    ) -> LocalBoxFuture<'a, Result<(), SourceError>>;
}

/// Which file of a version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionFile {
    Info,
    Mod,
    Zip,
}

impl VersionFile {
    pub fn ext(self) -> &'static str {
        match self {
            VersionFile::Info => "info",
            VersionFile::Mod => "mod",
            VersionFile::Zip => "zip",
        }
    }
}

/// How an origin failed to deliver a file.
#[derive(Debug, thiserror::Error)]
pub enum OriginError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The module path or version cannot be named in this origin (Go's
    /// escaping refused it). Shown as the reason alone: every caller already
    /// prefixes the module@version.
    #[error("{reason}")]
    Name {
        module: String,
        version: String,
        what: &'static str,
        reason: String,
    },
    /// Every upstream of the list was set aside for this version (each
    /// served bytes that failed verification).
    #[error("no upstream left to ask: each one served bytes that failed verification")]
    NoneLeft,
    /// The go command could not make the version from its repository
    /// (`crate::private`); `not_found`: the repository has no such version.
    #[error("{message}")]
    Made { message: String, not_found: bool },
}

/// What the caller does about a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 404/410: the origin does not have it (yet): "not here".
    NotFound,
    /// A later attempt could succeed (the HTTP layer already retried).
    Retry,
    /// This will not succeed as it is.
    Failed,
}

impl OriginError {
    pub fn outcome(&self) -> Outcome {
        match self {
            OriginError::Fetch(e) if e.is_not_found() => Outcome::NotFound,
            OriginError::Made {
                not_found: true, ..
            } => Outcome::NotFound,
            OriginError::Fetch(e) if e.is_retryable() => Outcome::Retry,
            _ => Outcome::Failed,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.outcome() == Outcome::NotFound
    }
}

/// Where a version's files come from.
///
/// An origin may stand for several upstreams (a proxy list): the `*_from`
/// methods say which one served a file (`Served::by`) and can be told to
/// leave some out (`Avoid`), so that a version whose bytes from one upstream
/// fail the checksum database is fetched again from another.
pub trait Origin: Send + Sync {
    /// For messages: the origin, credentials masked.
    fn describe(&self) -> String;
    /// A small file of `version` (`.info`), in memory, at most `limit` bytes.
    fn get<'a>(
        &'a self,
        module: &'a str,
        version: &'a str,
        file: VersionFile,
        limit: u64,
    ) -> BoxFuture<'a, Result<Vec<u8>, OriginError>>;
    /// A file of `version` streamed into `dest` while hashed, at most `limit` bytes.
    fn get_to_file<'a>(
        &'a self,
        module: &'a str,
        version: &'a str,
        file: VersionFile,
        limit: u64,
        dest: &'a Path,
    ) -> BoxFuture<'a, Result<Download, OriginError>>;
    /// The module's `@v/list`, at most `limit` bytes.
    fn list<'a>(
        &'a self,
        module: &'a str,
        limit: u64,
    ) -> BoxFuture<'a, Result<Vec<u8>, OriginError>>;

    /// The origin that serves `module`, when this one sends modules to
    /// several (private modules to their repositories): the fetcher asks
    /// that one, whose upstreams are counted and named on their own.
    fn route(&self, _module: &str) -> Option<&dyn Origin> {
        None
    }
    /// How many upstreams stand behind this origin.
    fn upstreams(&self) -> usize {
        1
    }
    /// Upstream `i`, host and port, for security messages.
    fn upstream_name(&self, _i: usize) -> String {
        self.describe()
    }
    /// Records that upstream `i` served bytes that failed verification.
    fn note_refused(&self, _i: usize, _why: &str) {}
    /// [`Origin::get`] from the upstreams not in `avoid`, saying which served it.
    fn get_from<'a>(
        &'a self,
        module: &'a str,
        version: &'a str,
        file: VersionFile,
        limit: u64,
        avoid: Avoid,
    ) -> BoxFuture<'a, Result<Served<Vec<u8>>, OriginError>> {
        Box::pin(async move {
            if avoid.has(0) {
                return Err(OriginError::NoneLeft);
            }
            let value = self.get(module, version, file, limit).await?;
            Ok(Served { value, by: 0 })
        })
    }
    /// [`Origin::get_to_file`] from the upstreams not in `avoid`, saying which served it.
    fn get_to_file_from<'a>(
        &'a self,
        module: &'a str,
        version: &'a str,
        file: VersionFile,
        limit: u64,
        dest: &'a Path,
        avoid: Avoid,
    ) -> BoxFuture<'a, Result<Served<Download>, OriginError>> {
        Box::pin(async move {
            if avoid.has(0) {
                return Err(OriginError::NoneLeft);
            }
            let value = self.get_to_file(module, version, file, limit, dest).await?;
            Ok(Served { value, by: 0 })
        })
    }
}
