//! The files projects name their dependencies in: `go.mod` (the directives
//! the module graph is built from), `go.sum` / `go.work.sum` (exact
//! versions and their `h1:` hashes), and gomirror's own module lists
//! (`module@version` per line).
//!
//! Written for gomirror from the formats the go command reads
//! (golang.org/x/mod/modfile's lexical rules: `//` comments, quoted
//! strings, `verb ( … )` blocks; go.sum's three fields per line). Every
//! error names the line; the caller adds the file.
//!
//! A main module's go.mod is parsed strictly (an unknown directive or a
//! malformed line is an error, as the go command treats its own go.mod); a
//! dependency's `.mod` is parsed laxly (only `module`, `go` and `require`
//! matter there: the go command ignores a dependency's `replace`, `exclude`
//! and `retract` when it builds the graph, and unknown directives too).

use std::fmt;

use crate::gomod;

/// A malformed line: its number (1-based) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

fn line_err(line: usize, message: impl Into<String>) -> LineError {
    LineError {
        line,
        message: message.into(),
    }
}

/// A `require` directive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Require {
    pub path: String,
    pub version: String,
    /// Marked `// indirect`.
    pub indirect: bool,
    pub line: usize,
}

/// What a `replace` directive points to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplaceTarget {
    /// Another module version, fetched from the proxy like any other.
    Module { path: String, version: String },
    /// A directory on disk (`./fork`, `../x`, `/abs`), relative to the go.mod.
    Dir(String),
}

/// A `replace` directive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replace {
    pub path: String,
    /// `None`: every version of `path` is replaced.
    pub version: Option<String>,
    pub target: ReplaceTarget,
    pub line: usize,
}

/// A `retract` directive: one version (`low == high`) or a closed interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retract {
    pub low: String,
    pub high: String,
    pub line: usize,
}

/// The directives of a go.mod file that matter for the module graph.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModFile {
    pub module: Option<String>,
    /// The `go` directive's version (`1.21`, `1.22.3`), if any.
    pub go: Option<String>,
    pub require: Vec<Require>,
    pub exclude: Vec<(String, String)>,
    pub replace: Vec<Replace>,
    pub retract: Vec<Retract>,
}

impl ModFile {
    /// Whether the go command prunes this module's graph: `go 1.17` or later
    /// (a go.mod without a `go` line counts as the oldest Go, unpruned).
    pub fn is_pruned(&self) -> bool {
        self.go.as_deref().is_some_and(|v| go_at_least(v, 1, 17))
    }
}

/// Whether a `go` directive's version (`1.16`, `1.21.0`, `1.22rc1`) is at
/// least `major.minor`.
pub fn go_at_least(version: &str, major: u64, minor: u64) -> bool {
    let mut parts = version.split('.');
    let maj = parts
        .next()
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(0);
    let min: u64 = parts
        .next()
        .map(|p| {
            let digits: String = p.chars().take_while(|c| c.is_ascii_digit()).collect();
            digits.parse().unwrap_or(0)
        })
        .unwrap_or(0);
    (maj, min) >= (major, minor)
}

/// Whether `v` is a well-formed `go` directive version (`1.21`, `1.21.3`,
/// `1.21rc2`, `1.21.0`), as modfile's `GoVersionRE` accepts.
fn valid_go_version(v: &str) -> bool {
    let mut rest = v;
    let num = |s: &str| -> Option<usize> {
        let n = s.chars().take_while(|c| c.is_ascii_digit()).count();
        (n > 0 && (n == 1 || !s.starts_with('0'))).then_some(n)
    };
    let Some(n) = num(rest) else { return false };
    rest = &rest[n..];
    let Some(r) = rest.strip_prefix('.') else {
        return false;
    };
    let Some(n) = num(r) else { return false };
    rest = &r[n..];
    if let Some(r) = rest.strip_prefix('.') {
        let Some(n) = num(r) else { return false };
        rest = &r[n..];
    } else if let Some(r) = rest
        .strip_prefix("rc")
        .or_else(|| rest.strip_prefix("beta"))
    {
        let Some(n) = num(r) else { return false };
        rest = &r[n..];
    }
    rest.is_empty()
}

/// One lexical token of a go.mod line.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    /// A quoted string, unquoted.
    Quoted(String),
    Open,
    Close,
    LBracket,
    RBracket,
    Comma,
}

impl Token {
    fn text(&self) -> Option<&str> {
        match self {
            Token::Word(s) | Token::Quoted(s) => Some(s),
            _ => None,
        }
    }
}

/// Splits a line into tokens and its trailing `//` comment.
fn lex_line(line: &str, n: usize) -> Result<(Vec<Token>, Option<String>), LineError> {
    let mut tokens = Vec::new();
    let mut chars = line.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        match c {
            // Every kind of white space separates tokens (a vertical tab once
            // stopped the word below from consuming anything: found by fuzzing).
            c if c.is_whitespace() => {
                chars.next();
            }
            '/' if line[i..].starts_with("//") => {
                return Ok((tokens, Some(line[i + 2..].trim().to_string())));
            }
            '(' | ')' | '[' | ']' | ',' => {
                chars.next();
                tokens.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    '[' => Token::LBracket,
                    ']' => Token::RBracket,
                    _ => Token::Comma,
                });
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                let mut closed = false;
                while let Some((_, c)) = chars.next() {
                    match c {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => match chars.next() {
                            Some((_, 'n')) => s.push('\n'),
                            Some((_, 't')) => s.push('\t'),
                            Some((_, e @ ('\\' | '"' | '\''))) => s.push(e),
                            Some((_, e)) => {
                                return Err(line_err(
                                    n,
                                    format!("unsupported escape \\{e} in quoted string"),
                                ));
                            }
                            None => break,
                        },
                        c => s.push(c),
                    }
                }
                if !closed {
                    return Err(line_err(n, "unterminated quoted string"));
                }
                tokens.push(Token::Quoted(s));
            }
            '`' => {
                chars.next();
                let mut s = String::new();
                let mut closed = false;
                for (_, c) in chars.by_ref() {
                    if c == '`' {
                        closed = true;
                        break;
                    }
                    s.push(c);
                }
                if !closed {
                    return Err(line_err(n, "unterminated raw string"));
                }
                tokens.push(Token::Quoted(s));
            }
            _ => {
                // A word has at least this character, so every round moves on.
                let start = i;
                chars.next();
                let mut end = line.len();
                while let Some(&(j, c)) = chars.peek() {
                    if c.is_whitespace()
                        || matches!(c, '(' | ')' | '[' | ']' | ',' | '"' | '`')
                        || line[j..].starts_with("//")
                    {
                        end = j;
                        break;
                    }
                    chars.next();
                }
                tokens.push(Token::Word(line[start..end].to_string()));
            }
        }
    }
    Ok((tokens, None))
}

/// Whether a comment marks a requirement indirect (`// indirect`, or
/// `// indirect; reason`), as modfile's `isIndirect`.
fn is_indirect(comment: Option<&str>) -> bool {
    comment.is_some_and(|c| c == "indirect" || c.starts_with("indirect;"))
}

const KNOWN_VERBS: &[&str] = &[
    "module",
    "go",
    "toolchain",
    "godebug",
    "require",
    "exclude",
    "replace",
    "retract",
    "tool",
    "ignore",
];

/// Parses a go.mod. `strict` for the main module's own file (every line
/// must be well formed and every directive known); lax for a dependency's
/// `.mod`, where only `module`, `go` and `require` are read.
pub fn parse_go_mod(text: &str, strict: bool) -> Result<ModFile, LineError> {
    let mut file = ModFile::default();
    let mut block: Option<(String, usize)> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let (tokens, comment) = lex_line(raw, n)?;
        if tokens.is_empty() {
            continue;
        }
        if let Some((verb, _)) = &block {
            if tokens == [Token::Close] {
                block = None;
                continue;
            }
            let verb = verb.clone();
            directive(&mut file, &verb, &tokens, comment.as_deref(), n, strict)?;
            continue;
        }
        let Some(verb) = tokens[0].text().map(str::to_string) else {
            return Err(line_err(n, "expected a directive"));
        };
        if !KNOWN_VERBS.contains(&verb.as_str()) {
            if strict {
                return Err(line_err(n, format!("unknown directive: {verb}")));
            }
            continue;
        }
        match &tokens[1..] {
            [Token::Open] => {
                block = Some((verb, n));
                continue;
            }
            [Token::Open, Token::Close] => continue,
            args => directive(&mut file, &verb, args, comment.as_deref(), n, strict)?,
        }
    }
    if let Some((verb, n)) = block {
        return Err(line_err(n, format!("{verb} block is not closed")));
    }
    if strict && file.module.is_none() {
        return Err(line_err(1, "no module directive"));
    }
    Ok(file)
}

fn words(args: &[Token], n: usize) -> Result<Vec<&str>, LineError> {
    args.iter()
        .map(|t| {
            t.text()
                .ok_or_else(|| line_err(n, "unexpected punctuation"))
        })
        .collect()
}

fn checked(path: &str, version: &str, n: usize) -> Result<(), LineError> {
    gomod::check(path, version).map_err(|e| line_err(n, e.to_string()))
}

fn directive(
    file: &mut ModFile,
    verb: &str,
    args: &[Token],
    comment: Option<&str>,
    n: usize,
    strict: bool,
) -> Result<(), LineError> {
    // Outside the main module only these shape the graph.
    if !strict && !matches!(verb, "module" | "go" | "require") {
        return Ok(());
    }
    match verb {
        "module" => {
            let w = words(args, n)?;
            let [path] = w[..] else {
                return Err(line_err(n, "usage: module module/path"));
            };
            if strict {
                gomod::check_path(path).map_err(|e| line_err(n, e.to_string()))?;
            }
            file.module = Some(path.to_string());
        }
        "go" => {
            let w = words(args, n)?;
            match w[..] {
                [v] if valid_go_version(v) => file.go = Some(v.to_string()),
                [v] if !strict => file.go = Some(v.to_string()),
                _ => return Err(line_err(n, "usage: go 1.23")),
            }
        }
        "require" => {
            let w = words(args, n)?;
            let [path, version] = w[..] else {
                return Err(line_err(n, "usage: require module/path v1.2.3"));
            };
            checked(path, version, n)?;
            file.require.push(Require {
                path: path.to_string(),
                version: version.to_string(),
                indirect: is_indirect(comment),
                line: n,
            });
        }
        "exclude" => {
            let w = words(args, n)?;
            let [path, version] = w[..] else {
                return Err(line_err(n, "usage: exclude module/path v1.2.3"));
            };
            checked(path, version, n)?;
            file.exclude.push((path.to_string(), version.to_string()));
        }
        "replace" => {
            let w = words(args, n)?;
            let arrow = w.iter().position(|t| *t == "=>").ok_or_else(|| {
                line_err(
                    n,
                    "usage: replace module/path [v1.2.3] => other/module v1.4 or => ./dir",
                )
            })?;
            let (old, new) = (&w[..arrow], &w[arrow + 1..]);
            let (path, version) = match old {
                [p] => (*p, None),
                [p, v] => {
                    checked(p, v, n)?;
                    (*p, Some(v.to_string()))
                }
                _ => {
                    return Err(line_err(
                        n,
                        "replace: expected a module path and version before =>",
                    ));
                }
            };
            gomod::check_path(path).map_err(|e| line_err(n, e.to_string()))?;
            let target = match new {
                [dir] if is_dir_path(dir) => ReplaceTarget::Dir(dir.to_string()),
                [p] => {
                    return Err(line_err(
                        n,
                        format!(
                            "replace {path}: {p} is neither a directory path (./, ../ or /) nor followed by a version"
                        ),
                    ));
                }
                [p, v] => {
                    checked(p, v, n)?;
                    ReplaceTarget::Module {
                        path: p.to_string(),
                        version: v.to_string(),
                    }
                }
                _ => {
                    return Err(line_err(
                        n,
                        "replace: expected a module path and version after =>",
                    ));
                }
            };
            file.replace.push(Replace {
                path: path.to_string(),
                version,
                target,
                line: n,
            });
        }
        "retract" => {
            let retract = match args {
                [t] => {
                    let v = t
                        .text()
                        .ok_or_else(|| line_err(n, "usage: retract v1.2.3"))?;
                    (v.to_string(), v.to_string())
                }
                [Token::LBracket, lo, Token::Comma, hi, Token::RBracket] => {
                    let (Some(lo), Some(hi)) = (lo.text(), hi.text()) else {
                        return Err(line_err(n, "usage: retract [v1.0.0, v1.9.9]"));
                    };
                    (lo.to_string(), hi.to_string())
                }
                _ => {
                    return Err(line_err(
                        n,
                        "usage: retract v1.2.3 or retract [v1.0.0, v1.9.9]",
                    ));
                }
            };
            for v in [&retract.0, &retract.1] {
                if !gomod::semver::is_valid(v) || gomod::canonical_version(v) != *v {
                    return Err(line_err(
                        n,
                        format!("retract: version {v:?} is not a canonical semantic version"),
                    ));
                }
            }
            file.retract.push(Retract {
                low: retract.0,
                high: retract.1,
                line: n,
            });
        }
        // toolchain, godebug, tool, ignore: nothing the graph needs.
        _ => {}
    }
    Ok(())
}

/// A replacement that names a directory, as modfile's `IsDirectoryPath`.
fn is_dir_path(p: &str) -> bool {
    p == "."
        || p == ".."
        || p.starts_with("./")
        || p.starts_with("../")
        || p.starts_with('/')
        || p.starts_with(".\\")
        || p.starts_with("..\\")
}

/// One line of a go.sum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SumLine {
    pub path: String,
    pub version: String,
    /// A `<version>/go.mod` line: the hash of the `.mod` file only.
    pub go_mod: bool,
    /// The `h1:` hash; `None` for a hash algorithm this build does not know
    /// (the version is still named, its hash not compared).
    pub h1: Option<String>,
    pub line: usize,
}

/// Parses a go.sum or go.work.sum: `module version[/go.mod] hash` per line.
pub fn parse_go_sum(text: &str) -> Result<Vec<SumLine>, LineError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let fields: Vec<&str> = raw.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let [path, version, hash] = fields[..] else {
            return Err(line_err(
                n,
                format!(
                    "malformed go.sum line: expected `module version hash`, found {} field{}",
                    fields.len(),
                    if fields.len() == 1 { "" } else { "s" }
                ),
            ));
        };
        let (version, go_mod) = match version.strip_suffix("/go.mod") {
            Some(v) => (v, true),
            None => (version, false),
        };
        checked(path, version, n)?;
        let h1 = match hash.split_once(':') {
            Some(("h1", b64)) => {
                use base64::Engine;
                match base64::engine::general_purpose::STANDARD.decode(b64) {
                    Ok(b) if b.len() == 32 => Some(hash.to_string()),
                    _ => {
                        return Err(line_err(
                            n,
                            format!("malformed hash {hash:?}: not h1: and 32 bytes of base64"),
                        ));
                    }
                }
            }
            Some((alg, _)) if !alg.is_empty() && alg.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                None
            }
            _ => return Err(line_err(n, format!("malformed hash {hash:?}"))),
        };
        out.push(SumLine {
            path: path.to_string(),
            version: version.to_string(),
            go_mod,
            h1,
            line: n,
        });
    }
    Ok(out)
}

/// One entry of a module list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListEntry {
    pub path: String,
    pub version: String,
    pub line: usize,
}

/// In a module list, `module@latest`: the module's newest tagged version,
/// whichever it is when the list is read (`gomirror requests` writes it for
/// a client that asked for a module's `@v/list` or `@latest`).
pub const LATEST: &str = "latest";

/// Parses a module list: `module@version` (or `module@latest`, see
/// [`LATEST`]) per line; `#` starts a comment (a whole line, or after the
/// entry); blank lines are skipped.
pub fn parse_module_list(text: &str) -> Result<Vec<ListEntry>, LineError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if line.split_whitespace().count() > 1 {
            return Err(line_err(
                n,
                format!("expected one module@version, found {line:?}"),
            ));
        }
        let Some((path, version)) = line.rsplit_once('@') else {
            return Err(line_err(
                n,
                format!("expected module@version, found {line:?}"),
            ));
        };
        if version == LATEST {
            gomod::check_path(path).map_err(|e| line_err(n, e.to_string()))?;
        } else {
            checked(path, version, n)?;
        }
        out.push(ListEntry {
            path: path.to_string(),
            version: version.to_string(),
            line: n,
        });
    }
    Ok(out)
}

// ---- what a go.mod says about its own module (for `gomirror audit`) ----

/// A `retract` directive with its rationale (the comment on or above it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetractNote {
    pub low: String,
    pub high: String,
    pub rationale: String,
}

/// What the go.mod of a module's latest version says about the module: its
/// deprecation (`// Deprecated: …` on the `module` line) and its
/// retractions, as the go command reads them from a dependency (modfile's
/// lax parse and `parseDirectiveComment`: the comment lines right above a
/// directive, no blank line between, and the comment after it; for a
/// directive in a block without its own, the block's).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModuleNotes {
    pub deprecated: Option<String>,
    pub retract: Vec<RetractNote>,
}

/// Reads [`ModuleNotes`] from a `.mod` file. Lax, as for a dependency's
/// go.mod: a line that does not parse is skipped.
pub fn module_notes(text: &str) -> ModuleNotes {
    let mut notes = ModuleNotes::default();
    // Comment lines since the last blank line or directive.
    let mut above: Vec<String> = Vec::new();
    // An open block: its verb and its own comments.
    let mut block: Option<(String, Vec<String>)> = None;
    for (i, raw) in text.lines().enumerate() {
        let Ok((tokens, comment)) = lex_line(raw, i + 1) else {
            above.clear();
            continue;
        };
        if tokens.is_empty() {
            match comment {
                Some(c) => above.push(c),
                None => above.clear(),
            }
            continue;
        }
        let mut own = std::mem::take(&mut above);
        own.extend(comment);
        if let Some((verb, block_comments)) = &block {
            if tokens == [Token::Close] {
                block = None;
                continue;
            }
            let text = if own.is_empty() {
                block_comments.clone()
            } else {
                own
            };
            note(&mut notes, verb, &tokens, &text.join("\n"));
            continue;
        }
        let Some(verb) = tokens[0].text().map(str::to_string) else {
            continue;
        };
        if tokens[1..] == [Token::Open] {
            block = Some((verb, own));
            continue;
        }
        note(&mut notes, &verb, &tokens[1..], &own.join("\n"));
    }
    notes
}

fn note(notes: &mut ModuleNotes, verb: &str, args: &[Token], comment: &str) {
    match verb {
        "module" => notes.deprecated = deprecation(comment),
        "retract" => {
            let (low, high) = match args {
                [t] => match t.text() {
                    Some(v) => (v, v),
                    None => return,
                },
                [Token::LBracket, lo, Token::Comma, hi, Token::RBracket] => {
                    match (lo.text(), hi.text()) {
                        (Some(l), Some(h)) => (l, h),
                        _ => return,
                    }
                }
                _ => return,
            };
            if [low, high]
                .iter()
                .all(|v| gomod::semver::is_valid(v) && gomod::canonical_version(v) == *v)
            {
                notes.retract.push(RetractNote {
                    low: low.to_string(),
                    high: high.to_string(),
                    rationale: comment.to_string(),
                });
            }
        }
        _ => {}
    }
}

/// modfile's `deprecatedRE`, `(?s)(?:^|\n\n)Deprecated: *(.*?)(?:$|\n\n)`:
/// a paragraph that starts with `Deprecated:`.
fn deprecation(comment: &str) -> Option<String> {
    let mut from = 0;
    while let Some(i) = comment[from..].find("Deprecated:").map(|i| i + from) {
        if i == 0 || comment[..i].ends_with("\n\n") {
            let rest = comment[i + "Deprecated:".len()..].trim_start_matches(' ');
            let end = rest.find("\n\n").unwrap_or(rest.len());
            return Some(rest[..end].to_string());
        }
        from = i + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIN: &str = r#"// A project.
module example.org/app

go 1.22

toolchain go1.22.3

require (
	example.com/a v1.2.0
	"example.com/b" v0.3.0 // indirect
	example.com/c v1.0.0 // indirect; needed by tests
)

require example.com/d v2.0.0+incompatible

exclude example.com/a v1.1.0

replace (
	example.com/b v0.3.0 => example.com/b-fork v0.3.1
	example.com/c => ../c
)

retract v0.9.0 // published by mistake
retract [v0.1.0, v0.2.0]
"#;

    #[test]
    fn a_main_go_mod_yields_its_directives() {
        let f = parse_go_mod(MAIN, true).unwrap();
        assert_eq!(f.module.as_deref(), Some("example.org/app"));
        assert_eq!(f.go.as_deref(), Some("1.22"));
        assert!(f.is_pruned());
        let req: Vec<_> = f
            .require
            .iter()
            .map(|r| (r.path.as_str(), r.version.as_str(), r.indirect, r.line))
            .collect();
        assert_eq!(
            req,
            [
                ("example.com/a", "v1.2.0", false, 9),
                ("example.com/b", "v0.3.0", true, 10),
                ("example.com/c", "v1.0.0", true, 11),
                ("example.com/d", "v2.0.0+incompatible", false, 14),
            ]
        );
        assert_eq!(f.exclude, [("example.com/a".into(), "v1.1.0".into())]);
        assert_eq!(
            f.replace[0].target,
            ReplaceTarget::Module {
                path: "example.com/b-fork".into(),
                version: "v0.3.1".into()
            }
        );
        assert_eq!(f.replace[0].version.as_deref(), Some("v0.3.0"));
        assert_eq!(f.replace[1].target, ReplaceTarget::Dir("../c".into()));
        assert_eq!(f.replace[1].version, None);
        assert_eq!(f.retract.len(), 2);
        assert_eq!(
            (f.retract[1].low.as_str(), f.retract[1].high.as_str()),
            ("v0.1.0", "v0.2.0")
        );
    }

    #[test]
    fn malformed_go_mod_lines_are_named() {
        let cases = [
            (
                "module a.example/m\nrequire a.example/x\n",
                2,
                "usage: require",
            ),
            ("module a.example/m\nrequire a.example/x v1.2\n", 2, "v1.2"),
            (
                "module a.example/m\nrequire (\n  a.example/x v1.0.0\n",
                2,
                "not closed",
            ),
            ("module a.example/m\nfrobnicate x\n", 2, "unknown directive"),
            ("module a.example/m\ngo one\n", 2, "usage: go"),
            (
                "module a.example/m\nreplace a.example/x => b.example/y\n",
                2,
                "neither",
            ),
            (
                "module a.example/m\nrequire \"a.example/x v1.0.0\n",
                2,
                "unterminated",
            ),
            ("go 1.21\n", 1, "no module directive"),
        ];
        for (text, line, needle) in cases {
            let e = parse_go_mod(text, true).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn a_vertical_tab_in_a_line_is_white_space_not_an_endless_loop() {
        // The fuzzer's input (fuzz/corpus/project_files/oom-vertical-tab):
        // lexing never ended, filling memory with empty words.
        let text = "module a.example/m\x0b\nrequire a.example/x\x0bv1.0.0\x0c// indirect\n";
        let f = parse_go_mod(text, true).unwrap();
        assert_eq!(f.require[0].version, "v1.0.0");
        assert!(f.require[0].indirect);
        let data = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fuzz/corpus/project_files/oom-vertical-tab"
        ))
        .unwrap();
        let text = String::from_utf8_lossy(&data);
        for strict in [true, false] {
            let _ = parse_go_mod(&text, strict);
        }
    }

    #[test]
    fn a_dependency_go_mod_is_read_laxly() {
        let text = "module a.example/dep\n\ngo 1.16\n\nfuture directive here\nreplace x => nonsense\nrequire a.example/x v1.0.0\n";
        let f = parse_go_mod(text, false).unwrap();
        assert_eq!(f.require.len(), 1);
        assert!(f.replace.is_empty());
        assert!(!f.is_pruned(), "go 1.16 is not pruned");
        // The legacy synthesized .mod of a module without go.mod.
        let legacy = parse_go_mod("module a.example/old\n", false).unwrap();
        assert!(!legacy.is_pruned());
    }

    #[test]
    fn go_versions_compare_as_the_go_command_does() {
        assert!(go_at_least("1.17", 1, 17));
        assert!(go_at_least("1.21.3", 1, 17));
        assert!(go_at_least("1.22rc1", 1, 17));
        assert!(!go_at_least("1.16", 1, 17));
        assert!(!go_at_least("1.9", 1, 17));
        assert!(valid_go_version("1.21") && valid_go_version("1.21.0"));
        assert!(valid_go_version("1.22rc1"));
        assert!(!valid_go_version("1") && !valid_go_version("v1.21") && !valid_go_version("1.021"));
    }

    #[test]
    fn go_sum_lines_name_versions_and_hashes() {
        let text = "example.com/a v1.0.0 h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\
                    example.com/a v1.0.0/go.mod h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n\
                    example.com/b v0.1.0/go.mod h2:future\n";
        let lines = parse_go_sum(text).unwrap();
        assert_eq!(lines.len(), 3);
        assert!(!lines[0].go_mod && lines[1].go_mod);
        assert_eq!(lines[2].h1, None);
        assert_eq!(lines[2].line, 4);
        for (bad, line, needle) in [
            ("example.com/a v1.0.0\n", 1, "found 2 fields"),
            ("x\nexample.com/a v1.0.0 h1:abc\n", 1, "found 1 field"),
            ("example.com/a v1.0.0 h1:abc\n", 1, "malformed hash"),
            (
                "example.com/a 1.0.0 h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
                1,
                "1.0.0",
            ),
            (
                "Example..com/a v1.0.0 h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
                1,
                "Example..com",
            ),
        ] {
            let e = parse_go_sum(bad).unwrap_err();
            assert_eq!(e.line, line, "{bad:?}: {e}");
            assert!(e.message.contains(needle), "{bad:?}: {e}");
        }
    }

    #[test]
    fn module_lists_take_comments_and_blank_lines() {
        let text = "# tools\nexample.com/a@v1.0.0\n\n  example.com/b/v2@v2.1.0  # pinned\nexample.com/c@latest\n";
        let l = parse_module_list(text).unwrap();
        assert_eq!(
            l,
            [
                ListEntry {
                    path: "example.com/a".into(),
                    version: "v1.0.0".into(),
                    line: 2
                },
                ListEntry {
                    path: "example.com/b/v2".into(),
                    version: "v2.1.0".into(),
                    line: 4
                },
                ListEntry {
                    path: "example.com/c".into(),
                    version: LATEST.into(),
                    line: 5
                },
            ]
        );
        for (bad, needle) in [
            ("example.com/a\n", "expected module@version"),
            ("example.com/a@v1 x\n", "expected one"),
            ("example.com/a@master\n", "master"),
            ("Example.com/a@latest\n", "Example.com"),
        ] {
            let e = parse_module_list(bad).unwrap_err();
            assert_eq!(e.line, 1);
            assert!(e.message.contains(needle), "{bad:?}: {e}");
        }
    }

    #[test]
    fn module_notes_read_deprecation_and_retractions_as_the_go_command_does() {
        let text = "// Deprecated: use example.com/m/v2 instead.\nmodule example.com/m\n\ngo 1.21\n\n// Published too early.\nretract v1.0.0\n\nretract [v1.1.0, v1.1.5] // Data race in Parse.\n\n// All of these.\nretract (\n\tv0.9.0\n\t// Broken build.\n\t\"v0.9.1\"\n)\nretract bad\n";
        let n = module_notes(text);
        assert_eq!(
            n.deprecated.as_deref(),
            Some("use example.com/m/v2 instead.")
        );
        let r: Vec<(&str, &str, &str)> = n
            .retract
            .iter()
            .map(|r| (r.low.as_str(), r.high.as_str(), r.rationale.as_str()))
            .collect();
        assert_eq!(
            r,
            [
                ("v1.0.0", "v1.0.0", "Published too early."),
                ("v1.1.0", "v1.1.5", "Data race in Parse."),
                ("v0.9.0", "v0.9.0", "All of these."),
                ("v0.9.1", "v0.9.1", "Broken build."),
            ]
        );
        // A blank line detaches a comment; a paragraph must start with the word.
        for (text, want) in [
            ("// Deprecated: x\n\nmodule a.b/c\n", None),
            ("module a.b/c // Deprecated: gone\n", Some("gone")),
            (
                "// Intro.\n//\n// Deprecated: two\n// lines.\n//\n// More.\nmodule a.b/c\n",
                Some("two\nlines."),
            ),
            ("// Not Deprecated: x\nmodule a.b/c\n", None),
            ("// Deprecated:\nmodule a.b/c\n", Some("")),
        ] {
            assert_eq!(module_notes(text).deprecated.as_deref(), want, "{text:?}");
        }
    }
}
