//! `[filter].from_files`: the versions projects build with, read from their
//! files on every sync.
//!
//! * `go.sum` / `go.work.sum`: exactly the versions named. A
//!   `<version>/go.mod` line needs the version's `.info` and `.mod` only (a
//!   *graph-only* version: the go command reads its go.mod to build the
//!   module graph, never its code); a plain line needs the `.zip` too. The
//!   hashes are kept: a version whose files disagree with its go.sum line
//!   is refused, naming the file and line.
//! * `go.mod`: its requirements and the whole requirement graph below them,
//!   read from the `.mod` files (the tree's copy when the version is already
//!   mirrored, else the origin's), pruned as the go command prunes it (see
//!   [`walk_graph`]). The version of each module that minimal version
//!   selection picks needs its zip; every other version in the graph is
//!   graph-only.
//! * any other file: `module@version` per line, `#` comments.
//!
//! The whole set is handed to the intake at once ([`Intake::name`]), which
//! replaces what the files named last time: a version no file names any
//! more is then pruned like a narrowed filter. Any error (a malformed line,
//! a missing file, a `.mod` that cannot be read) stops the sync before the
//! set is replaced, so a broken file never prunes what it used to name.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::gomod::modfile::{self, ModFile, ReplaceTarget};
use crate::gomod::{self, pattern, semver, zip as modzip};
use crate::shown;
use crate::source::{
    AnyIntake, Discovery, Event, Events, LocalBoxFuture, Origin, OriginError, SourceError,
    VersionFile,
};
use crate::state::{NamedFile, NamedVersion};
use crate::store::{Store, layout};

/// A project file larger than this is refused (a go.sum of 100,000 lines is
/// about 10 MB).
const MAX_FILE: u64 = 64 << 20;
/// How many `.mod` files of a requirement graph are read at once.
const GRAPH_READS: usize = 8;
/// How much of a parser's message about a project file is shown.
const MESSAGE_CHARS: usize = 400;
/// The longest line a project file may have: a go.sum line is a module
/// path, a version and a hash; a go.mod line a directive and a comment.
const MAX_LINE: usize = 64 << 10;

/// The kind of a project file, by its name.
fn kind_of(path: &Path) -> &'static str {
    match path.file_name().and_then(|n| n.to_str()) {
        Some("go.sum" | "go.work.sum") => "go.sum",
        Some("go.mod") => "go.mod",
        _ => "list",
    }
}

pub use crate::settings::is_glob;

pub struct FromFiles {
    base: PathBuf,
    patterns: Vec<String>,
    /// `filter.exclude` (GOPRIVATE-style patterns, comma-joined): it applies
    /// to what the files name too.
    exclude: String,
    origin: Arc<dyn Origin>,
    /// The mirror's tree, when it exists: `.mod` files already mirrored are
    /// read from it instead of the origin.
    tree: Option<Arc<dyn Store>>,
}

impl FromFiles {
    pub fn new(
        base: PathBuf,
        patterns: Vec<String>,
        exclude: String,
        origin: Arc<dyn Origin>,
        tree: Option<Arc<dyn Store>>,
    ) -> FromFiles {
        FromFiles {
            base,
            patterns,
            exclude,
            origin,
            tree,
        }
    }

    fn display(&self, path: &Path) -> String {
        path.strip_prefix(&self.base)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// A file named by path (not a pattern) that is missing, or not a
    /// regular file: found before any source makes a request.
    fn check_named(&self, pattern: &str) -> Result<PathBuf, SourceError> {
        let full = self.base.join(pattern);
        if full.is_file() {
            return Ok(full);
        }
        Err(SourceError::File {
            file: pattern.to_string(),
            line: None,
            message: if full.exists() {
                "filter.from_files names it, but it is not a regular file".into()
            } else {
                "filter.from_files names it, but it does not exist".into()
            },
        })
    }

    /// The files the patterns name, in pattern order, each once.
    fn expand(&self, intake: &mut dyn Events) -> Result<Vec<PathBuf>, SourceError> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for pattern in &self.patterns {
            if !is_glob(pattern) {
                let full = self.check_named(pattern)?;
                if seen.insert(full.clone()) {
                    out.push(full);
                }
                continue;
            }
            // The config's directory is taken literally, whatever characters it has.
            let text = if Path::new(pattern).is_absolute() {
                pattern.clone()
            } else {
                format!(
                    "{}/{pattern}",
                    glob::Pattern::escape(&self.base.to_string_lossy())
                )
            };
            let paths = glob::glob(&text).map_err(|e| SourceError::File {
                file: pattern.clone(),
                line: None,
                message: format!("invalid pattern: {e}"),
            })?;
            let mut matched = 0;
            for p in paths {
                let p = p.map_err(|e| SourceError::File {
                    file: self.display(e.path()),
                    line: None,
                    message: format!("cannot read: {}", e.error()),
                })?;
                if !p.is_file() {
                    continue;
                }
                matched += 1;
                if seen.insert(p.clone()) {
                    out.push(p);
                }
            }
            if matched == 0 {
                intake.note(Event::Warning(format!(
                    "filter.from_files: {pattern:?} matches no file"
                )));
            }
        }
        Ok(out)
    }

    /// A project file: a regular file (a FIFO would hang the sync, a link
    /// to a device never end) of at most [`MAX_FILE`] bytes, judged before
    /// it is read.
    fn read(&self, path: &Path) -> Result<String, SourceError> {
        let file = self.display(path);
        let fail = |message: String| SourceError::File {
            file: file.clone(),
            line: None,
            message,
        };
        let bytes = crate::bounded::read_regular(path, MAX_FILE).map_err(|e| match e {
            crate::bounded::FileError::TooLarge { size, limit, .. } => fail(format!(
                "is {size} bytes, more than the {limit} a project file may have"
            )),
            crate::bounded::FileError::NotRegular { what, .. } => {
                fail(format!("is {what}, not a regular file"))
            }
            e => fail(e.to_string()),
        })?;
        // No line of these formats is long: one that is would only cost
        // memory in every message that quotes it.
        let mut lines = crate::bounded::Lines::new(
            bytes.as_slice(),
            crate::bounded::LineLimits {
                max_len: MAX_LINE,
                max_lines: u64::MAX,
            },
        );
        loop {
            match lines.next_line() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    return Err(SourceError::File {
                        file: file.clone(),
                        line: Some(lines.count() as usize + 1),
                        message: match e {
                            crate::bounded::ReadLinesError::Line(_) => {
                                format!("a line longer than {MAX_LINE} bytes")
                            }
                            e => e.to_string(),
                        },
                    });
                }
            }
        }
        String::from_utf8(bytes).map_err(|_| fail("is not UTF-8 text".into()))
    }

    /// Reads one file into what it names.
    async fn name_file(
        &self,
        path: &Path,
        intake: &mut dyn Events,
    ) -> Result<NamedFile, SourceError> {
        let file = self.display(path);
        let text = self.read(path)?;
        // The parsers quote the line they refuse: shown cut, it is the
        // file's text (a 60 MB line would go to cron mail whole).
        let at = |e: modfile::LineError| SourceError::File {
            file: file.clone(),
            line: Some(e.line),
            message: shown::text_max(&e.message, MESSAGE_CHARS),
        };
        let kind = kind_of(path);
        let mut versions: Vec<NamedVersion> = match kind {
            "go.sum" => {
                // A version named by both lines of a go.sum needs both files;
                // merged here so each version is named once per file.
                let mut by: BTreeMap<(String, String), NamedVersion> = BTreeMap::new();
                for l in modfile::parse_go_sum(&text).map_err(at)? {
                    let v = by
                        .entry((l.path.clone(), l.version.clone()))
                        .or_insert(NamedVersion {
                            path: l.path,
                            version: l.version,
                            zip: false,
                            line: l.line,
                            zip_h1: None,
                            mod_h1: None,
                        });
                    if l.go_mod {
                        v.mod_h1 = l.h1.or(v.mod_h1.take());
                    } else {
                        v.zip = true;
                        v.line = l.line;
                        v.zip_h1 = l.h1.or(v.zip_h1.take());
                    }
                }
                by.into_values().collect()
            }
            "go.mod" => {
                let main = modfile::parse_go_mod(&text, true).map_err(at)?;
                let dir = path.parent().unwrap_or(Path::new("."));
                self.walk_graph(&file, dir, &main, intake).await?
            }
            _ => {
                let mut named = Vec::new();
                for e in modfile::parse_module_list(&text).map_err(at)? {
                    let version = if e.version == modfile::LATEST {
                        match self.resolve_latest(&file, &e, intake).await? {
                            Some(v) => v,
                            None => continue,
                        }
                    } else {
                        e.version
                    };
                    named.push(NamedVersion {
                        path: e.path,
                        version,
                        zip: true,
                        line: e.line,
                        zip_h1: None,
                        mod_h1: None,
                    });
                }
                named
            }
        };
        let before = versions.len();
        versions.retain(|v| {
            self.exclude.is_empty() || !pattern::match_prefix_patterns(&self.exclude, &v.path)
        });
        if versions.len() < before {
            intake.note(Event::Verbose(format!(
                "{file}: {} versions left out by filter.exclude",
                before - versions.len()
            )));
        }
        Ok(NamedFile {
            file,
            kind,
            versions,
        })
    }

    /// What `module@latest` in a module list names: the newest tagged
    /// version on the origin's `@v/list` (a release if there is one, else a
    /// pre-release), as `go get module@latest` picks it. A module the
    /// origin does not have, or has no tagged version of, is skipped with a
    /// warning (a far side's request may name a module that does not exist).
    async fn resolve_latest(
        &self,
        file: &str,
        e: &modfile::ListEntry,
        intake: &mut dyn Events,
    ) -> Result<Option<String>, SourceError> {
        let body = match self
            .origin
            .list(&e.path, crate::source::seeds::LIST_BYTES)
            .await
        {
            Ok(b) => b,
            Err(err) if err.is_not_found() => {
                intake.note(Event::Warning(format!(
                    "{file}:{}: {}@latest: the upstream has no such module ({err}); skipped",
                    e.line, e.path
                )));
                return Ok(None);
            }
            Err(err) => {
                return Err(SourceError::Latest {
                    file: file.to_string(),
                    module: e.path.clone(),
                    source: Box::new(err),
                });
            }
        };
        let text = String::from_utf8_lossy(&body);
        let tagged: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|v| gomod::check(&e.path, v).is_ok())
            .collect();
        let newest = |release: bool| {
            tagged
                .iter()
                .filter(|v| semver::prerelease(v).is_empty() == release)
                .max_by(|a, b| semver::compare(a, b))
                .map(|v| v.to_string())
        };
        let latest = newest(true).or_else(|| newest(false));
        if latest.is_none() {
            intake.note(Event::Warning(format!(
                "{file}:{}: {}@latest: the upstream lists no tagged version; skipped",
                e.line, e.path
            )));
        }
        Ok(latest)
    }

    /// A version's `.mod`: the tree's copy when it is mirrored, else the origin's.
    async fn read_mod(&self, path: &str, version: &str) -> Result<Vec<u8>, OriginError> {
        if let Some(tree) = &self.tree
            && let Ok(rel) = layout::version_file(path, version, "mod")
            && let Ok(Some(bytes)) = tree.read(&rel, modzip::MAX_GO_MOD)
        {
            return Ok(bytes);
        }
        self.origin
            .get(path, version, VersionFile::Mod, modzip::MAX_GO_MOD)
            .await
    }

    /// The requirement graph of a main module, as the go command builds it
    /// (cmd/go/internal/modload, `readModGraph`):
    ///
    /// * the main module's requirements are the roots; a requirement on a
    ///   version the main module `exclude`s is dropped (Go 1.16 and later);
    /// * a module is loaded by reading its go.mod (after the main module's
    ///   `replace`: a module replacement's `.mod`, a directory's `go.mod`);
    /// * below a module whose go.mod says `go 1.17` or later (a pruned
    ///   module) only its own requirements are in the graph, not theirs,
    ///   unless the walk came through an unpruned (`go 1.16` or older)
    ///   module, where everything below is followed;
    /// * the main module's own `go` version decides how the roots are
    ///   walked. A main module before `go 1.18` is walked unpruned: `go mod
    ///   tidy` there checks the graph as Go 1.16 would read it (`-compat`).
    ///
    /// Every version in the graph is named; the one minimal version
    /// selection picks for each module (the highest) needs its zip, the
    /// others only their `.info` and `.mod`. A replaced module is named by
    /// its replacement; a directory replacement names nothing.
    pub async fn walk_graph(
        &self,
        file: &str,
        dir: &Path,
        main: &ModFile,
        intake: &mut dyn Events,
    ) -> Result<Vec<NamedVersion>, SourceError> {
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        enum Pruning {
            Pruned,
            Unpruned,
        }
        type Key = (String, String);
        let excluded: HashSet<Key> = main.exclude.iter().cloned().collect();
        let replacement = |path: &str, version: &str| -> Option<&ReplaceTarget> {
            let exact = main
                .replace
                .iter()
                .find(|r| r.path == path && r.version.as_deref() == Some(version));
            exact
                .or_else(|| {
                    main.replace
                        .iter()
                        .find(|r| r.path == path && r.version.is_none())
                })
                .map(|r| &r.target)
        };
        let root_pruning = if main
            .go
            .as_deref()
            .is_some_and(|v| modfile::go_at_least(v, 1, 18))
        {
            Pruning::Pruned
        } else {
            Pruning::Unpruned
        };

        let mut lines: HashMap<Key, usize> = HashMap::new();
        let mut nodes: BTreeSet<Key> = BTreeSet::new();
        let mut queued: HashSet<(Key, Pruning)> = HashSet::new();
        let mut queue: Vec<(Key, Pruning)> = Vec::new();
        for r in &main.require {
            let key = (r.path.clone(), r.version.clone());
            if excluded.contains(&key) {
                continue;
            }
            lines.entry(key.clone()).or_insert(r.line);
            nodes.insert(key.clone());
            if queued.insert((key.clone(), root_pruning)) {
                queue.push((key, root_pruning));
            }
        }
        // Each go.mod is read once: (requirements, pruned).
        let mut summaries: HashMap<Key, (Vec<Key>, bool)> = HashMap::new();
        let mut reads = 0u64;
        while !queue.is_empty() {
            // Read this round's go.mod files at once.
            let mut wanted: Vec<Key> = queue
                .iter()
                .map(|(k, _)| k.clone())
                .filter(|k| !summaries.contains_key(k))
                .collect();
            wanted.sort();
            wanted.dedup();
            // A few at a time, each parsed as soon as it is read: a `.mod`
            // may be 16 MiB, and only its requirements are kept.
            for chunk in wanted.chunks(GRAPH_READS) {
                let mut reading = Vec::new();
                for key in chunk {
                    let (p, v) = key;
                    let line = lines.get(key).copied();
                    reading.push(async move {
                    let result: Result<Option<Vec<u8>>, SourceError> = match replacement(p, v) {
                        Some(ReplaceTarget::Dir(d)) => {
                            // A regular file of at most a go.mod's size: a
                            // link to /dev/zero, a FIFO or a 300 MB file is
                            // refused before it is read.
                            let gomod = dir.join(d).join("go.mod");
                            match crate::bounded::read_regular(&gomod, modzip::MAX_GO_MOD) {
                                Ok(b) => Ok(Some(b)),
                                Err(e) if e.is_not_found() => Ok(None),
                                Err(e) => Err(SourceError::File {
                                    file: file.to_string(),
                                    line,
                                    message: format!(
                                        "{p} is replaced by {}, whose go.mod cannot be used: {}",
                                        shown::quoted(d),
                                        shown::text(&e.to_string())
                                    ),
                                }),
                            }
                        }
                        Some(ReplaceTarget::Module { path, version }) => self
                            .read_mod(path, version)
                            .await
                            .map(Some)
                            .map_err(|source| SourceError::Graph {
                                file: file.to_string(),
                                module: path.clone(),
                                version: version.clone(),
                                source: Box::new(source),
                            }),
                        None => self.read_mod(p, v).await.map(Some).map_err(|source| {
                            SourceError::Graph {
                                file: file.to_string(),
                                module: p.clone(),
                                version: v.clone(),
                                source: Box::new(source),
                            }
                        }),
                    };
                    (key.clone(), result)
                });
                }
                for (key, result) in join_all(reading).await {
                    reads += 1;
                    let summary = match result? {
                        None => {
                            intake.note(Event::Warning(format!(
                            "{file}: {}@{} is replaced by a directory without a go.mod; its requirements are not followed",
                            key.0, key.1
                        )));
                            (Vec::new(), true)
                        }
                        Some(bytes) => {
                            let text = String::from_utf8_lossy(&bytes);
                            let m = modfile::parse_go_mod(&text, false).map_err(|e| {
                            SourceError::File {
                                file: file.to_string(),
                                line: None,
                                message: format!(
                                    "the go.mod of {}@{} (in its requirement graph) is malformed: {}",
                                    key.0,
                                    key.1,
                                    shown::text_max(&e.to_string(), MESSAGE_CHARS)
                                ),
                            }
                        })?;
                            let pruned = m.is_pruned();
                            let reqs = m
                                .require
                                .into_iter()
                                .map(|r| (r.path, r.version))
                                .filter(|k| !excluded.contains(k))
                                .collect();
                            (reqs, pruned)
                        }
                    };
                    summaries.insert(key, summary);
                }
            }
            let round = std::mem::take(&mut queue);
            for (key, pruning) in round {
                let (reqs, pruned) = summaries.get(&key).cloned().unwrap_or_default();
                let own = if pruned {
                    Pruning::Pruned
                } else {
                    Pruning::Unpruned
                };
                let next = if pruning == Pruning::Unpruned {
                    Pruning::Unpruned
                } else {
                    own
                };
                for r in reqs {
                    nodes.insert(r.clone());
                    if (pruning != Pruning::Pruned || own == Pruning::Unpruned)
                        && queued.insert((r.clone(), next))
                    {
                        queue.push((r, next));
                    }
                }
            }
        }
        intake.note(Event::Verbose(format!(
            "{file}: requirement graph of {} versions ({reads} go.mod files read)",
            nodes.len()
        )));

        // Minimal version selection: the highest version of each module.
        let mut selected: HashMap<&str, &str> = HashMap::new();
        for (p, v) in &nodes {
            let e = selected.entry(p.as_str()).or_insert(v.as_str());
            if semver::compare(v, e) == std::cmp::Ordering::Greater {
                *e = v.as_str();
            }
        }
        let mut named: BTreeMap<Key, NamedVersion> = BTreeMap::new();
        for (p, v) in &nodes {
            let zip = selected.get(p.as_str()) == Some(&v.as_str());
            let (tp, tv) = match replacement(p, v) {
                Some(ReplaceTarget::Dir(_)) => continue,
                Some(ReplaceTarget::Module { path, version }) => (path.clone(), version.clone()),
                None => (p.clone(), v.clone()),
            };
            if gomod::check(&tp, &tv).is_err() {
                continue;
            }
            let line = lines.get(&(p.clone(), v.clone())).copied().unwrap_or(0);
            let n = named
                .entry((tp.clone(), tv.clone()))
                .or_insert(NamedVersion {
                    path: tp,
                    version: tv,
                    zip: false,
                    line,
                    zip_h1: None,
                    mod_h1: None,
                });
            n.zip |= zip;
            if n.line == 0 {
                n.line = line;
            }
        }
        Ok(named.into_values().collect())
    }
}

/// Runs the futures concurrently on this task, collecting their outputs in order.
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *out = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("ready")).collect()
}

impl Discovery for FromFiles {
    fn preflight(&self) -> Result<(), SourceError> {
        for pattern in self.patterns.iter().filter(|p| !is_glob(p)) {
            self.check_named(pattern)?;
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("files ({})", self.patterns.join(", "))
    }

    fn discover<'a>(
        &'a self,
        intake: &'a mut dyn AnyIntake,
    ) -> LocalBoxFuture<'a, Result<(), SourceError>> {
        Box::pin(async move {
            let paths = self.expand(intake)?;
            let mut files = Vec::with_capacity(paths.len());
            for p in &paths {
                files.push(self.name_file(p, intake).await?);
            }
            intake.name(files).await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Download;
    use crate::source::{BoxFuture, Event};

    use std::sync::Mutex;

    /// An origin serving go.mod files from memory, counting the reads.
    #[derive(Default)]
    struct Mods {
        files: HashMap<(String, String), String>,
        reads: Mutex<Vec<String>>,
    }

    impl Mods {
        fn with(mut self, path: &str, version: &str, go: &str, reqs: &[(&str, &str)]) -> Mods {
            let mut text = format!("module {path}\n\ngo {go}\n");
            for (p, v) in reqs {
                text.push_str(&format!("require {p} {v}\n"));
            }
            self.files
                .insert((path.to_string(), version.to_string()), text);
            self
        }
    }

    impl Origin for Mods {
        fn describe(&self) -> String {
            "memory".into()
        }
        fn get<'a>(
            &'a self,
            module: &'a str,
            version: &'a str,
            _: VersionFile,
            _: u64,
        ) -> BoxFuture<'a, Result<Vec<u8>, OriginError>> {
            Box::pin(async move {
                self.reads
                    .lock()
                    .unwrap()
                    .push(format!("{module}@{version}"));
                self.files
                    .get(&(module.to_string(), version.to_string()))
                    .map(|t| t.clone().into_bytes())
                    .ok_or_else(|| OriginError::Name {
                        module: module.into(),
                        version: version.into(),
                        what: "mod",
                        reason: "not in this test's upstream".into(),
                    })
            })
        }
        fn get_to_file<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
            _: VersionFile,
            _: u64,
            _: &'a Path,
        ) -> BoxFuture<'a, Result<Download, OriginError>> {
            unreachable!()
        }
        fn list<'a>(&'a self, _: &'a str, _: u64) -> BoxFuture<'a, Result<Vec<u8>, OriginError>> {
            unreachable!()
        }
    }

    #[derive(Default)]
    struct Notes(Vec<String>);

    impl Events for Notes {
        fn note(&mut self, event: Event) {
            if let Event::Warning(w) = event {
                self.0.push(w);
            }
        }
    }

    /// What a walk named (path, version, zip), the go.mod files it read, its warnings.
    type Walk = (Vec<(String, String, bool)>, Vec<String>, Vec<String>);

    fn walk(origin: Mods, dir: &Path, main: &str) -> Walk {
        let origin = Arc::new(origin);
        let files = FromFiles::new(
            dir.to_path_buf(),
            vec![],
            String::new(),
            origin.clone(),
            None,
        );
        let main = modfile::parse_go_mod(main, true).unwrap();
        let mut notes = Notes::default();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let named = rt
            .block_on(files.walk_graph("go.mod", dir, &main, &mut notes))
            .unwrap();
        let mut reads = origin.reads.lock().unwrap().clone();
        reads.sort();
        (
            named
                .into_iter()
                .map(|n| (n.path, n.version, n.zip))
                .collect(),
            reads,
            notes.0,
        )
    }

    fn v(p: &str, v: &str, zip: bool) -> (String, String, bool) {
        (p.into(), v.into(), zip)
    }

    /// a (go 1.21, pruned) → b@1.0 → c@1.0; u (go 1.16, unpruned) → b@1.1 →
    /// c@1.1 → d@1.0.
    fn ecosystem() -> Mods {
        Mods::default()
            .with(
                "x.example/a",
                "v1.0.0",
                "1.21",
                &[("x.example/b", "v1.0.0")],
            )
            .with(
                "x.example/b",
                "v1.0.0",
                "1.21",
                &[("x.example/c", "v1.0.0")],
            )
            .with(
                "x.example/b",
                "v1.1.0",
                "1.21",
                &[("x.example/c", "v1.1.0")],
            )
            .with("x.example/c", "v1.0.0", "1.21", &[])
            .with(
                "x.example/c",
                "v1.1.0",
                "1.21",
                &[("x.example/d", "v1.0.0")],
            )
            .with("x.example/d", "v1.0.0", "1.21", &[])
            .with(
                "x.example/u",
                "v1.0.0",
                "1.16",
                &[("x.example/b", "v1.1.0")],
            )
    }

    #[test]
    fn below_a_pruned_module_only_its_own_requirements_are_in_the_graph() {
        let dir = tempfile::tempdir().unwrap();
        let (named, reads, _) = walk(
            ecosystem(),
            dir.path(),
            "module m.example/main\ngo 1.22\nrequire x.example/a v1.0.0\n",
        );
        // b@v1.0.0 is a node (a's requirement), but a is pruned: b's go.mod is not read.
        assert_eq!(
            named,
            [
                v("x.example/a", "v1.0.0", true),
                v("x.example/b", "v1.0.0", true)
            ]
        );
        assert_eq!(reads, ["x.example/a@v1.0.0"]);
    }

    #[test]
    fn below_an_unpruned_module_everything_is_followed_and_mvs_picks_the_zips() {
        let dir = tempfile::tempdir().unwrap();
        let (named, reads, _) = walk(
            ecosystem(),
            dir.path(),
            "module m.example/main\ngo 1.22\nrequire (\n x.example/a v1.0.0\n x.example/u v1.0.0\n)\n",
        );
        assert_eq!(
            named,
            [
                v("x.example/a", "v1.0.0", true),
                v("x.example/b", "v1.0.0", false),
                v("x.example/b", "v1.1.0", true),
                v("x.example/c", "v1.1.0", true),
                v("x.example/d", "v1.0.0", true),
                v("x.example/u", "v1.0.0", true),
            ]
        );
        assert!(
            reads.contains(&"x.example/c@v1.1.0".to_string()),
            "{reads:?}"
        );
        assert!(
            !reads.contains(&"x.example/b@v1.0.0".to_string()),
            "{reads:?}"
        );
        // A main module before go 1.18 is walked unpruned: b@v1.0.0's graph too.
        let (named, _, _) = walk(
            ecosystem(),
            dir.path(),
            "module m.example/main\ngo 1.17\nrequire x.example/a v1.0.0\n",
        );
        assert_eq!(
            named,
            [
                v("x.example/a", "v1.0.0", true),
                v("x.example/b", "v1.0.0", true),
                v("x.example/c", "v1.0.0", true),
            ]
        );
    }

    #[test]
    fn exclude_and_replace_in_the_main_go_mod_shape_the_graph() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("local")).unwrap();
        std::fs::write(
            dir.path().join("local/go.mod"),
            "module x.example/c\n\ngo 1.16\n\nrequire x.example/d v1.0.0\n",
        )
        .unwrap();
        let (named, reads, warnings) = walk(
            ecosystem().with(
                "y.example/fork",
                "v1.5.0",
                "1.16",
                &[("x.example/b", "v1.0.0")],
            ),
            dir.path(),
            "module m.example/main\ngo 1.22\nrequire (\n x.example/u v1.0.0\n x.example/a v1.0.0\n x.example/gone v1.0.0\n)\n\
             exclude x.example/b v1.0.0\n\
             replace x.example/c => ./local\n\
             replace x.example/a v1.0.0 => y.example/fork v1.5.0\n\
             replace x.example/a => ./nowhere\n\
             replace x.example/gone => ./nowhere\n",
        );
        assert_eq!(
            named,
            [
                // The fork's requirement on b@v1.0.0 is excluded; c is a directory;
                // a@v1.0.0 is the fork (the version-specific replace wins).
                v("x.example/b", "v1.1.0", true),
                v("x.example/d", "v1.0.0", true),
                v("x.example/u", "v1.0.0", true),
                v("y.example/fork", "v1.5.0", true),
            ]
        );
        assert!(
            reads.contains(&"y.example/fork@v1.5.0".to_string()),
            "{reads:?}"
        );
        assert!(
            !reads.iter().any(|r| r.starts_with("x.example/c@")),
            "{reads:?}"
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0]
                .contains("x.example/gone@v1.0.0 is replaced by a directory without a go.mod")
        );
    }

    #[test]
    fn globs_are_relative_to_the_config_directory_taken_literally() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("we[ir]d *dir");
        for f in ["p/go.sum", "q/go.sum", "q/other.txt"] {
            std::fs::create_dir_all(base.join(f).parent().unwrap()).unwrap();
            std::fs::write(base.join(f), "").unwrap();
        }
        let files = |patterns: &[&str]| {
            FromFiles::new(
                base.clone(),
                patterns.iter().map(|p| p.to_string()).collect(),
                String::new(),
                Arc::new(Mods::default()),
                None,
            )
        };
        let mut notes = Notes::default();
        let got = files(&["*/go.sum", "q/go.sum", "none/*.sum"])
            .expand(&mut notes)
            .unwrap();
        let got: Vec<_> = got
            .iter()
            .map(|p| p.strip_prefix(&base).unwrap().to_owned())
            .collect();
        assert_eq!(got, [Path::new("p/go.sum"), Path::new("q/go.sum")]);
        assert_eq!(
            notes.0,
            ["filter.from_files: \"none/*.sum\" matches no file"]
        );
        let e = files(&["q/go.mod"])
            .expand(&mut notes)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "q/go.mod: filter.from_files names it, but it does not exist"
        );
        let e = files(&["q"]).expand(&mut notes).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }

    #[test]
    fn a_go_mod_the_origin_cannot_serve_stops_the_walk_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let origin = Arc::new(ecosystem());
        let files = FromFiles::new(
            dir.path().to_path_buf(),
            vec![],
            String::new(),
            origin,
            None,
        );
        let main = modfile::parse_go_mod(
            "module m.example/main\ngo 1.16\nrequire x.example/missing v1.0.0\n",
            true,
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let e = rt
            .block_on(files.walk_graph("app/go.mod", dir.path(), &main, &mut Notes::default()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("app/go.mod: cannot read the requirement graph: x.example/missing@v1.0.0"),
            "{e}"
        );
    }
}
