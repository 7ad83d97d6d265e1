//! Go toolchains as modules: the `golang.org/toolchain` module and the
//! platforms Go releases toolchains for (cmd/go/internal/toolchain), Go
//! versions as the go command orders them, and `[filter] toolchain_versions`
//! (which releases to mirror), in the go command's terms.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;

/// The module the go command downloads toolchains from.
pub const MODULE: &str = "golang.org/toolchain";
/// The GOOS-GOARCH pairs Go has released toolchains for (`go tool dist list`
/// of Go 1.21 to 1.26: `windows-arm` and `freebsd-riscv64` left later), so a
/// typo in the configuration is refused instead of mirroring nothing.
pub const PLATFORMS: &[&str] = &[
    "aix-ppc64",
    "android-386",
    "android-amd64",
    "android-arm",
    "android-arm64",
    "darwin-amd64",
    "darwin-arm64",
    "dragonfly-amd64",
    "freebsd-386",
    "freebsd-amd64",
    "freebsd-arm",
    "freebsd-arm64",
    "freebsd-riscv64",
    "illumos-amd64",
    "ios-amd64",
    "ios-arm64",
    "js-wasm",
    "linux-386",
    "linux-amd64",
    "linux-arm",
    "linux-arm64",
    "linux-loong64",
    "linux-mips",
    "linux-mips64",
    "linux-mips64le",
    "linux-mipsle",
    "linux-ppc64",
    "linux-ppc64le",
    "linux-riscv64",
    "linux-s390x",
    "netbsd-386",
    "netbsd-amd64",
    "netbsd-arm",
    "netbsd-arm64",
    "openbsd-386",
    "openbsd-amd64",
    "openbsd-arm",
    "openbsd-arm64",
    "openbsd-ppc64",
    "openbsd-riscv64",
    "plan9-386",
    "plan9-amd64",
    "plan9-arm",
    "solaris-amd64",
    "wasip1-wasm",
    "windows-386",
    "windows-amd64",
    "windows-arm",
    "windows-arm64",
];

/// Whether `platform` is a GOOS-GOARCH pair Go knows.
pub fn is_platform(platform: &str) -> bool {
    PLATFORMS.contains(&platform)
}

/// A Go version as the go command orders them (`go/version`, cmd/go's
/// `gover`): the language version `1.24` before its prereleases
/// `1.24rc1` (betas before release candidates), before the releases
/// `1.24.0`, `1.24.1`…
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GoVersion {
    pub major: u32,
    pub minor: u32,
    /// 0: the language version, 1: beta, 2: release candidate, 3: release.
    kind: u8,
    /// The beta or rc number, or the patch number of a release.
    num: u32,
}

impl GoVersion {
    /// `1.24.3`, `go1.24.3`, `1.25rc1`, `go1.21beta2`, `1.24` (a language
    /// version; `go1.20` and older name their first release so).
    pub fn parse(s: &str) -> Option<GoVersion> {
        let s = s.strip_prefix("go").unwrap_or(s);
        let num = |t: &str| -> Option<u32> {
            (!t.is_empty()
                && t.len() <= 9
                && t.bytes().all(|b| b.is_ascii_digit())
                && (t == "0" || !t.starts_with('0')))
            .then(|| t.parse().ok())
            .flatten()
        };
        let (major, rest) = s.split_once('.')?;
        let major = num(major)?;
        let split = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let minor = num(&rest[..split])?;
        let tail = &rest[split..];
        let (kind, n) = if tail.is_empty() {
            // Before Go 1.21, "go1.20" was the first release itself.
            if (major, minor) < (1, 21) {
                (3, 0)
            } else {
                (0, 0)
            }
        } else if let Some(p) = tail.strip_prefix('.') {
            (3, num(p)?)
        } else if let Some(p) = tail.strip_prefix("rc") {
            (2, num(p)?)
        } else if let Some(p) = tail.strip_prefix("beta") {
            (1, num(p)?)
        } else {
            return None;
        };
        Some(GoVersion {
            major,
            minor,
            kind,
            num: n,
        })
    }

    /// A release (`1.24.3`), not a language version or a prerelease.
    /// A language version (`1.24`, no patch, beta or rc).
    pub fn is_language(&self) -> bool {
        self.kind == 0
    }

    pub fn is_release(&self) -> bool {
        self.kind == 3
    }

    /// The minor line: `(1, 24)` for every 1.24 version.
    pub fn line(&self) -> (u32, u32) {
        (self.major, self.minor)
    }
}

impl fmt::Display for GoVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            0 => write!(f, "go{}.{}", self.major, self.minor),
            1 => write!(f, "go{}.{}beta{}", self.major, self.minor, self.num),
            2 => write!(f, "go{}.{}rc{}", self.major, self.minor, self.num),
            _ if (self.major, self.minor) < (1, 21) && self.num == 0 => {
                write!(f, "go{}.{}", self.major, self.minor)
            }
            _ => write!(f, "go{}.{}.{}", self.major, self.minor, self.num),
        }
    }
}

/// One term of a `toolchain_versions` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Term {
    /// `>=1.24`, `<1.26`, `>1.24.2`, `<=1.25.4`.
    Compare(Ordering, bool, GoVersion),
    /// `1.24.3`, `go1.25rc1`: exactly this version (a prerelease only so).
    Exact(GoVersion),
    /// `1.24`: every release of the 1.24 line.
    Line(u32, u32),
    /// `patches N`: the newest N releases of each minor line.
    Patches(usize),
    /// `minors N`: the releases of the newest N minor lines.
    Minors(usize),
}

/// `[filter] toolchain_versions`: which Go releases to mirror toolchains
/// for. Each entry is terms separated by spaces, all of which must hold; the
/// entries' selections are added together.
///
/// | term | selects |
/// |---|---|
/// | `1.24.3`, `go1.24.3`, `1.25rc1` | exactly that version (a prerelease is selected only when named so) |
/// | `1.24` | every release of Go 1.24 |
/// | `>=1.24`, `>1.24.2`, `<1.26`, `<=1.25.4` | releases in that range, as the go command orders versions |
/// | `patches N` | of what the other terms select, the newest N releases of each minor line |
/// | `minors N` | of what the other terms select, the releases of the newest N minor lines |
/// | `latest` | the newest release (`minors 1 patches 1`) |
///
/// `"minors 2 patches 1"` is the newest patch of each supported Go;
/// `">=1.23 patches 2"` the two newest patches of every line from 1.23.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ToolchainVersions {
    entries: Vec<Vec<Term>>,
}

impl ToolchainVersions {
    /// Parses the configured entries; the error names the entry and the term.
    pub fn parse(entries: &[String]) -> Result<ToolchainVersions, String> {
        let mut out = Vec::new();
        for entry in entries {
            let bad = |why: String| format!("{entry:?}: {why}");
            let mut terms = Vec::new();
            let mut words = entry.split_whitespace().peekable();
            if words.peek().is_none() {
                return Err(bad("an entry is empty".into()));
            }
            while let Some(w) = words.next() {
                let count = |words: &mut std::iter::Peekable<std::str::SplitWhitespace<'_>>| {
                    words
                        .next()
                        .and_then(|n| n.parse::<usize>().ok())
                        .filter(|n| (1..=1000).contains(n))
                        .ok_or_else(|| bad(format!("{w:?} needs a count from 1 to 1000 after it")))
                };
                let term = match w {
                    "patches" => Term::Patches(count(&mut words)?),
                    "minors" => Term::Minors(count(&mut words)?),
                    "latest" => {
                        terms.push(Term::Minors(1));
                        Term::Patches(1)
                    }
                    _ => {
                        let (op, rest) = [">=", "<=", ">", "<", "="]
                            .iter()
                            .find_map(|op| w.strip_prefix(op).map(|r| (*op, r)))
                            .unwrap_or(("", w));
                        // `>= 1.24` with a space is the same term.
                        let rest = if rest.is_empty() && !op.is_empty() {
                            words.next().unwrap_or("")
                        } else {
                            rest
                        };
                        let v = GoVersion::parse(rest).ok_or_else(|| {
                            bad(format!(
                                "{w:?} is not a Go version (1.24.3, go1.24.3, 1.25rc1), a line (1.24), a comparison (>=1.24) or patches N, minors N, latest"
                            ))
                        })?;
                        match op {
                            ">=" => Term::Compare(Ordering::Greater, true, v),
                            ">" => Term::Compare(Ordering::Greater, false, v),
                            "<=" => Term::Compare(Ordering::Less, true, v),
                            "<" => Term::Compare(Ordering::Less, false, v),
                            _ if v.kind == 0 => Term::Line(v.major, v.minor),
                            _ => Term::Exact(v),
                        }
                    }
                };
                terms.push(term);
            }
            out.push(terms);
        }
        Ok(ToolchainVersions { entries: out })
    }

    /// The versions of `available` the entries select.
    pub fn select(&self, available: &BTreeSet<GoVersion>) -> BTreeSet<GoVersion> {
        let mut chosen = BTreeSet::new();
        for terms in &self.entries {
            chosen.extend(select_entry(terms, available));
        }
        chosen
    }
}

fn select_entry(terms: &[Term], available: &BTreeSet<GoVersion>) -> BTreeSet<GoVersion> {
    let named_prerelease = terms
        .iter()
        .any(|t| matches!(t, Term::Exact(v) if !v.is_release()));
    let mut set: Vec<GoVersion> = available
        .iter()
        .copied()
        .filter(|v| v.is_release() || named_prerelease)
        .filter(|v| {
            terms.iter().all(|t| match t {
                Term::Compare(dir, or_equal, bound) => {
                    let c = v.cmp(bound);
                    c == *dir || (*or_equal && c == Ordering::Equal)
                }
                Term::Exact(x) => v == x,
                Term::Line(major, minor) => v.line() == (*major, *minor),
                Term::Patches(_) | Term::Minors(_) => true,
            })
        })
        .collect();
    for t in terms {
        if let Term::Minors(n) = t {
            let lines: BTreeSet<(u32, u32)> = set.iter().map(GoVersion::line).collect();
            let keep: HashSet<(u32, u32)> = lines.into_iter().rev().take(*n).collect();
            set.retain(|v| keep.contains(&v.line()));
        }
    }
    for t in terms {
        if let Term::Patches(n) = t {
            let mut by_line: BTreeMap<(u32, u32), Vec<GoVersion>> = BTreeMap::new();
            for v in &set {
                by_line.entry(v.line()).or_default().push(*v);
            }
            set = by_line
                .into_values()
                .flat_map(|mut vs| {
                    vs.sort();
                    let skip = vs.len().saturating_sub(*n);
                    vs.into_iter().skip(skip)
                })
                .collect();
        }
    }
    set.into_iter().collect()
}
