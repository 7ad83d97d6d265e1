//! Go toolchains: the `golang.org/toolchain` module, whose versions
//! `v0.0.1-go1.X.Y.GOOS-GOARCH` are whole Go distributions. Since Go 1.21 the
//! go command downloads one as a module when `GOTOOLCHAIN` or a go.mod's
//! `toolchain` line asks for a newer Go (cmd/go/internal/toolchain), so a
//! mirror that should serve offline builds must hold them. They are read from
//! the origin's `@v/list` on every run, like seeds, and only the configured
//! platforms are offered: each zip is tens of MB.
//!
//! Which Go releases are offered is `[filter] toolchain_versions` (absent:
//! every one listed, about 145 per platform and 10 GB for linux-amd64), in
//! the go command's terms ([`ToolchainVersions`]), plus what the `go` and
//! `toolchain` lines of `[filter] from_files` go.mod files ask for: a
//! project that says `go 1.24.3` gets go1.24.3, as `GOTOOLCHAIN=auto` would
//! fetch it.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::source::seeds;
use crate::source::{
    AnyIntake, Discovery, Event, Events, FeedIntake, FilesIntake, Intake, LocalBoxFuture, Origin,
    SourceError,
};
use crate::state::{
    ChangeStats, FeedOp, FollowCursor, IndexEntry, NameStats, NamedFile, PageStats,
};

pub use crate::gomod::toolchain::{GoVersion, MODULE, PLATFORMS, ToolchainVersions, is_platform};
/// The packaging version every toolchain version starts with (cmd/go's
/// `gotoolchainVersion`): a `v0.0.2` would be a different zip layout.
const PACKAGING: &str = "v0.0.1-";

/// The Go version and platform of a toolchain version
/// (`v0.0.1-go1.22.3.linux-amd64` → `("go1.22.3", "linux-amd64")`).
pub fn split_version(version: &str) -> Option<(&str, &str)> {
    let rest = version.strip_prefix(PACKAGING)?;
    let (go, platform) = rest.rsplit_once('.')?;
    (go.starts_with("go") && platform.contains('-')).then_some((go, platform))
}

/// A `go` or `toolchain` line of a project's go.mod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoLine {
    /// The file, relative to the config file's directory when below it.
    pub file: String,
    pub line: usize,
    /// `go` or `toolchain`.
    pub directive: &'static str,
    pub version: GoVersion,
}

/// The `go` and `toolchain` lines of the go.mod files `patterns` (the
/// `from_files` globs, relative to `base`) name. Files that cannot be read
/// are left out: the `from_files` source itself reports them.
pub fn go_lines(base: &Path, patterns: &[String]) -> Vec<GoLine> {
    let mut files: Vec<PathBuf> = Vec::new();
    for p in patterns {
        let full = base.join(p);
        if !crate::source::files::is_glob(p) {
            files.push(full);
            continue;
        }
        let text = if Path::new(p).is_absolute() {
            p.clone()
        } else {
            format!("{}/{p}", glob::Pattern::escape(&base.to_string_lossy()))
        };
        if let Ok(paths) = glob::glob(&text) {
            files.extend(paths.flatten());
        }
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for f in files {
        if f.file_name().and_then(|n| n.to_str()) != Some("go.mod") || !seen.insert(f.clone()) {
            continue;
        }
        let Ok(meta) = std::fs::metadata(&f) else {
            continue;
        };
        if !meta.is_file() || meta.len() > 16 << 20 {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let shown = f.strip_prefix(base).unwrap_or(&f).display().to_string();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let words: Vec<&str> = code.split_whitespace().collect();
            let (directive, v) = match words[..] {
                ["go", v] => ("go", v),
                ["toolchain", v] => ("toolchain", v),
                _ => continue,
            };
            let Some(version) = GoVersion::parse(v.trim_matches('"')) else {
                continue;
            };
            out.push(GoLine {
                file: shown.clone(),
                line: i + 1,
                directive,
                version,
            });
        }
    }
    out
}

/// What the `go` and `toolchain` lines ask for, given what is `available`:
/// a release or prerelease named exactly, or for a language version
/// (`go 1.24`) the newest release of that line. Go before 1.21 cannot
/// switch toolchains: nothing. Returns what is wanted and the lines asking
/// for a version the upstream does not list.
pub fn wanted_by_lines(
    lines: &[GoLine],
    available: &BTreeSet<GoVersion>,
) -> (BTreeSet<GoVersion>, Vec<GoLine>) {
    let mut wanted = BTreeSet::new();
    let mut unlisted = Vec::new();
    for l in lines {
        if (l.version.major, l.version.minor) < (1, 21) {
            continue;
        }
        let found = if l.version.is_language() {
            available
                .iter()
                .rev()
                .find(|v| v.is_release() && v.line() == l.version.line())
                .copied()
        } else {
            available.get(&l.version).copied()
        };
        match found {
            Some(v) => {
                wanted.insert(v);
            }
            None => unlisted.push(l.clone()),
        }
    }
    (wanted, unlisted)
}

pub struct Toolchains {
    origin: Arc<dyn Origin>,
    platforms: BTreeSet<String>,
    /// `None`: every listed version.
    versions: Option<ToolchainVersions>,
    /// The config file's directory and the `from_files` patterns, whose
    /// go.mod files' `go` and `toolchain` lines are wanted too.
    base: PathBuf,
    from_files: Vec<String>,
}

impl Toolchains {
    pub fn new(
        origin: Arc<dyn Origin>,
        platforms: &[String],
        versions: Option<ToolchainVersions>,
        base: PathBuf,
        from_files: Vec<String>,
    ) -> Toolchains {
        Toolchains {
            origin,
            platforms: platforms.iter().cloned().collect(),
            versions,
            base,
            from_files,
        }
    }

    /// The versions of `listed` for the configured platforms and Go
    /// versions; with the `go`/`toolchain` lines no listed version answers.
    fn wanted(&self, listed: Vec<IndexEntry>) -> (Vec<IndexEntry>, Vec<GoLine>) {
        let ours: Vec<(IndexEntry, Option<GoVersion>)> = listed
            .into_iter()
            .filter_map(|e| {
                let (go, platform) = split_version(&e.version)?;
                if !self.platforms.contains(platform) {
                    return None;
                }
                let v = GoVersion::parse(go);
                Some((e, v))
            })
            .collect();
        let Some(versions) = &self.versions else {
            return (ours.into_iter().map(|(e, _)| e).collect(), Vec::new());
        };
        let available: BTreeSet<GoVersion> = ours.iter().filter_map(|(_, v)| *v).collect();
        let mut chosen = versions.select(&available);
        let lines = go_lines(&self.base, &self.from_files);
        let (by_lines, unlisted) = wanted_by_lines(&lines, &available);
        chosen.extend(by_lines);
        let wanted = ours
            .into_iter()
            .filter(|(_, v)| v.is_some_and(|v| chosen.contains(&v)))
            .map(|(e, _)| e)
            .collect();
        (wanted, unlisted)
    }
}

impl Discovery for Toolchains {
    fn describe(&self) -> String {
        format!(
            "toolchains ({}) from {}",
            self.platforms
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", "),
            self.origin.describe()
        )
    }

    fn discover<'a>(
        &'a self,
        intake: &'a mut dyn AnyIntake,
    ) -> LocalBoxFuture<'a, Result<(), crate::source::SourceError>> {
        Box::pin(async move {
            let Some(listed) = seeds::list_module(&*self.origin, MODULE, intake).await? else {
                return Ok(());
            };
            let (wanted, unlisted) = self.wanted(listed);
            for l in unlisted {
                intake.note(Event::Warning(format!(
                    "toolchains: {}:{} says `{} {}`, but {} lists no {MODULE} version of it",
                    l.file,
                    l.line,
                    l.directive,
                    l.version,
                    self.origin.describe()
                )));
            }
            if wanted.is_empty() && self.versions.is_none() {
                intake.note(Event::Warning(format!(
                    "toolchains: {} lists no {MODULE} version for {}",
                    self.origin.describe(),
                    self.platforms
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            intake.offer(wanted, None).await?;
            Ok(())
        })
    }
}

/// A discovery source (the index feed, another mirror's feed) whose
/// `golang.org/toolchain` publications are left out, so that with
/// `toolchain_versions` only the [`Toolchains`] source says which Go
/// releases are wanted: the index lists every release for every platform.
/// Deletions pass (a version withdrawn upstream is withdrawn here too).
pub struct WithoutToolchains(pub Box<dyn Discovery>);

impl Discovery for WithoutToolchains {
    fn describe(&self) -> String {
        self.0.describe()
    }

    fn discover<'a>(
        &'a self,
        intake: &'a mut dyn AnyIntake,
    ) -> LocalBoxFuture<'a, Result<(), crate::source::SourceError>> {
        Box::pin(async move {
            let mut filtered = Filtered(intake);
            self.0.discover(&mut filtered).await
        })
    }
}

/// The intake [`WithoutToolchains`] hands its source.
struct Filtered<'i>(&'i mut dyn AnyIntake);

fn publishes_toolchain((op, e): &(FeedOp, IndexEntry)) -> bool {
    *op == FeedOp::Publish && e.path == MODULE
}

impl Events for Filtered<'_> {
    fn note(&mut self, event: Event) {
        self.0.note(event)
    }
}

impl Intake for Filtered<'_> {
    fn position(&mut self) -> LocalBoxFuture<'_, Result<Option<String>, SourceError>> {
        self.0.position()
    }
    fn offer(
        &mut self,
        mut entries: Vec<IndexEntry>,
        position: Option<String>,
    ) -> LocalBoxFuture<'_, Result<PageStats, SourceError>> {
        entries.retain(|e| e.path != MODULE);
        self.0.offer(entries, position)
    }
}

impl FilesIntake for Filtered<'_> {
    fn name(
        &mut self,
        files: Vec<NamedFile>,
    ) -> LocalBoxFuture<'_, Result<NameStats, SourceError>> {
        self.0.name(files)
    }
}

impl FeedIntake for Filtered<'_> {
    fn follow_position(&mut self) -> LocalBoxFuture<'_, Result<Option<FollowCursor>, SourceError>> {
        self.0.follow_position()
    }
    fn offer_changes(
        &mut self,
        mut changes: Vec<(FeedOp, IndexEntry)>,
        cursor: FollowCursor,
    ) -> LocalBoxFuture<'_, Result<ChangeStats, SourceError>> {
        changes.retain(|c| !publishes_toolchain(c));
        self.0.offer_changes(changes, cursor)
    }
    fn snapshot_begin(&mut self) -> LocalBoxFuture<'_, Result<(), SourceError>> {
        self.0.snapshot_begin()
    }
    fn snapshot_page(
        &mut self,
        mut changes: Vec<(FeedOp, IndexEntry)>,
    ) -> LocalBoxFuture<'_, Result<(), SourceError>> {
        changes.retain(|c| !publishes_toolchain(c));
        self.0.snapshot_page(changes)
    }
    fn snapshot_finish(
        &mut self,
        cursor: FollowCursor,
    ) -> LocalBoxFuture<'_, Result<ChangeStats, SourceError>> {
        self.0.snapshot_finish(cursor)
    }
    fn upstream_chain(
        &mut self,
        chain: Vec<String>,
    ) -> LocalBoxFuture<'_, Result<(), SourceError>> {
        self.0.upstream_chain(chain)
    }
}

impl crate::source::DemandIntake for Filtered<'_> {
    fn demand_positions(
        &mut self,
        logs: Vec<String>,
    ) -> LocalBoxFuture<'_, Result<Vec<Option<crate::state::LogPosition>>, SourceError>> {
        self.0.demand_positions(logs)
    }
    fn demand_record(
        &mut self,
        batch: crate::state::DemandBatch,
        read: crate::source::demand::DemandRead,
    ) -> LocalBoxFuture<'_, Result<crate::state::DemandRecorded, SourceError>> {
        self.0.demand_record(batch, read)
    }
    fn demand_take(
        &mut self,
        max_new_modules: u64,
        max_new_versions: u64,
    ) -> LocalBoxFuture<'_, Result<crate::state::DemandTake, SourceError>> {
        self.0.demand_take(max_new_modules, max_new_versions)
    }
    fn demand_listed(
        &mut self,
        module: String,
        versions: Option<Vec<String>>,
    ) -> LocalBoxFuture<'_, Result<(), SourceError>> {
        self.0.demand_listed(module, versions)
    }
    fn demand_name(
        &mut self,
        keep: Option<std::time::Duration>,
    ) -> LocalBoxFuture<'_, Result<crate::state::DemandNamed, SourceError>> {
        self.0.demand_name(keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toolchain_versions_split_into_go_version_and_platform() {
        assert_eq!(
            split_version("v0.0.1-go1.22.3.linux-amd64"),
            Some(("go1.22.3", "linux-amd64"))
        );
        assert_eq!(
            split_version("v0.0.1-go1.21rc2.windows-arm64"),
            Some(("go1.21rc2", "windows-arm64"))
        );
        assert_eq!(split_version("v0.0.2-go1.22.3.linux-amd64"), None);
        assert_eq!(split_version("v0.0.1-go1.22.3"), None);
        assert_eq!(split_version("v1.0.0"), None);
    }

    #[test]
    fn only_configured_platforms_are_wanted() {
        struct NoOrigin;
        impl Origin for NoOrigin {
            fn describe(&self) -> String {
                "none".into()
            }
            fn get<'a>(
                &'a self,
                _: &'a str,
                _: &'a str,
                _: crate::source::VersionFile,
                _: u64,
            ) -> crate::source::BoxFuture<'a, Result<Vec<u8>, crate::source::OriginError>>
            {
                unreachable!()
            }
            fn get_to_file<'a>(
                &'a self,
                _: &'a str,
                _: &'a str,
                _: crate::source::VersionFile,
                _: u64,
                _: &'a std::path::Path,
            ) -> crate::source::BoxFuture<
                'a,
                Result<crate::http::Download, crate::source::OriginError>,
            > {
                unreachable!()
            }
            fn list<'a>(
                &'a self,
                _: &'a str,
                _: u64,
            ) -> crate::source::BoxFuture<'a, Result<Vec<u8>, crate::source::OriginError>>
            {
                unreachable!()
            }
        }
        let t = Toolchains::new(
            Arc::new(NoOrigin),
            &["linux-amd64".to_string()],
            None,
            PathBuf::from("."),
            Vec::new(),
        );
        let e = |v: &str| IndexEntry {
            path: MODULE.into(),
            version: v.into(),
            listed_at: None,
        };
        let (got, _) = t.wanted(vec![
            e("v0.0.1-go1.22.3.linux-amd64"),
            e("v0.0.1-go1.22.3.linux-arm64"),
            e("v0.0.1-go1.22.3.linux-amd64p32"),
            e("v0.0.1-go1.23.0.linux-amd64"),
        ]);
        let got: Vec<&str> = got.iter().map(|e| e.version.as_str()).collect();
        assert_eq!(
            got,
            ["v0.0.1-go1.22.3.linux-amd64", "v0.0.1-go1.23.0.linux-amd64"]
        );
        assert!(is_platform("darwin-arm64") && !is_platform("linux-x86_64"));
    }

    fn versions(list: &[&str]) -> BTreeSet<GoVersion> {
        list.iter().map(|v| GoVersion::parse(v).unwrap()).collect()
    }

    fn chosen(entries: &[&str], available: &BTreeSet<GoVersion>) -> Vec<String> {
        let tv =
            ToolchainVersions::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>())
                .unwrap();
        tv.select(available).iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn go_versions_order_as_the_go_command_orders_them() {
        let order = [
            "1.20",
            "1.21",
            "1.21beta1",
            "1.21rc1",
            "1.21rc2",
            "1.21.0",
            "1.21.1",
            "1.21.10",
            "1.22.0",
        ];
        let parsed: Vec<GoVersion> = order.iter().map(|v| GoVersion::parse(v).unwrap()).collect();
        for w in parsed.windows(2) {
            assert!(w[0] < w[1], "{} < {}", w[0], w[1]);
        }
        assert_eq!(
            GoVersion::parse("go1.22.3").unwrap().to_string(),
            "go1.22.3"
        );
        assert_eq!(GoVersion::parse("1.20").unwrap().to_string(), "go1.20");
        assert!(GoVersion::parse("1.20").unwrap().is_release());
        assert!(!GoVersion::parse("1.21").unwrap().is_release());
        for bad in [
            "",
            "1",
            "1.x",
            "1.21.",
            "1.21alpha1",
            "1.021",
            "v1.21.0",
            "1.21.0.1",
        ] {
            assert_eq!(GoVersion::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn toolchain_versions_select_in_go_terms() {
        let avail = versions(&[
            "1.21.0", "1.21.1", "1.21.13", "1.22rc1", "1.22.0", "1.22.5", "1.22.12", "1.23.0",
            "1.23.4", "1.24rc2", "1.24.0", "1.24.1",
        ]);
        assert_eq!(
            chosen(&[">=1.23"], &avail),
            ["go1.23.0", "go1.23.4", "go1.24.0", "go1.24.1"]
        );
        assert_eq!(chosen(&[">= 1.24"], &avail), ["go1.24.0", "go1.24.1"]);
        assert_eq!(
            chosen(&["minors 2 patches 1"], &avail),
            ["go1.23.4", "go1.24.1"]
        );
        assert_eq!(
            chosen(&[">=1.22 patches 2"], &avail),
            [
                "go1.22.5",
                "go1.22.12",
                "go1.23.0",
                "go1.23.4",
                "go1.24.0",
                "go1.24.1"
            ]
        );
        assert_eq!(chosen(&["latest"], &avail), ["go1.24.1"]);
        assert_eq!(
            chosen(&["1.22"], &avail),
            ["go1.22.0", "go1.22.5", "go1.22.12"]
        );
        assert_eq!(
            chosen(&["1.21.1", "go1.24rc2"], &avail),
            ["go1.21.1", "go1.24rc2"]
        );
        assert_eq!(
            chosen(&[">1.22.5 <1.24"], &avail),
            ["go1.22.12", "go1.23.0", "go1.23.4"]
        );
        assert_eq!(chosen(&["<=1.21.1"], &avail), ["go1.21.0", "go1.21.1"]);
        assert!(chosen(&["1.30.0"], &avail).is_empty());
        for (bad, why) in [
            ("", "empty"),
            ("patches", "needs a count"),
            ("patches 0", "needs a count"),
            ("minors x", "needs a count"),
            ("newest", "is not a Go version"),
            (">=", "is not a Go version"),
            ("1.22.x", "is not a Go version"),
        ] {
            let err = ToolchainVersions::parse(&[bad.to_string()]).unwrap_err();
            assert!(
                err.contains(why) && err.contains(&format!("{bad:?}")),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn go_mod_lines_ask_for_what_toolchain_switching_fetches() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a");
        std::fs::create_dir(&p).unwrap();
        std::fs::write(
            p.join("go.mod"),
            "module x.y/a\n\ngo 1.22 // the language\n\ntoolchain go1.23.0\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("b")).unwrap();
        std::fs::write(dir.path().join("b/go.mod"), "module x.y/b\ngo 1.19\n").unwrap();
        std::fs::write(dir.path().join("b/go.sum"), "go 1.24.0\n").unwrap();
        let lines = go_lines(dir.path(), &["*/go.mod".into(), "*/go.sum".into()]);
        let shown: Vec<String> = lines
            .iter()
            .map(|l| format!("{}:{} {} {}", l.file, l.line, l.directive, l.version))
            .collect();
        assert_eq!(
            shown,
            [
                "a/go.mod:3 go go1.22",
                "a/go.mod:5 toolchain go1.23.0",
                "b/go.mod:2 go go1.19"
            ]
        );
        let avail = versions(&["1.22.0", "1.22.7", "1.23rc1"]);
        let (wanted, unlisted) = wanted_by_lines(&lines, &avail);
        assert_eq!(
            wanted.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
            ["go1.22.7"]
        );
        assert_eq!(unlisted.len(), 1);
        assert_eq!(unlisted[0].version.to_string(), "go1.23.0");
    }
}
