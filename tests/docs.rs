//! The documentation names only what exists. A reader who follows a link in
//! the README, in `docs/` or in a comment of a shipped example, or looks for a
//! file the text names (`examples/production/cron`, `tests/operations.rs`,
//! `scripts/test`), finds it; a link to a section finds its heading. No
//! network, no build of gomirror: it reads the files.
//!
//! What counts as a reference to this repository, and so must exist:
//! * a markdown link `[text](path)` or `[text](path#anchor)` (relative to
//!   the file), and `#anchor` alone (this file's headings);
//! * a path in backticks, or bare in prose or a comment, that starts with
//!   one of the repository's top-level directories (`docs/`, `examples/`,
//!   `src/`, `tests/`, `scripts/`, `benches/`, `.ci/`), or with `./` or
//!   `../` inside backticks (relative to the file). `tests/x.rs::name`
//!   names a file (the part before `::`).
//!
//! Not references: URLs (`https://…`, `file://…`), paths of the served tree
//! or the install (`/mod/@v/list`, `/srv/gomirror/…`, `feed/latest`) and
//! placeholders (anything with `<`, `*`, `…`, `$`).

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

/// Documents another branch adds that this one links to already: empty
/// this at the merge that brings them; the test then checks them like the rest.
const PENDING: &[&str] = &[];

const ROOTS: &[&str] = &[
    "docs/",
    "examples/",
    "src/",
    "tests/",
    "scripts/",
    "benches/",
    ".ci/",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The files whose references are checked, relative to the repository.
fn documents() -> Vec<PathBuf> {
    let mut out = vec![PathBuf::from("README.md"), PathBuf::from("sync.toml")];
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "md") {
            out.push(p.strip_prefix(root()).unwrap().to_path_buf());
        }
    }
    let mut stack = vec![root().join("examples")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "md" | "toml" | "conf" | "yml" | "sh"))
            {
                out.push(p.strip_prefix(root()).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// Lexically normalised `base/rel` (no symlinks, no filesystem access), or
/// None when it climbs out of the repository.
fn join(base: &Path, rel: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in base.join(rel).components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Some(out)
}

/// GitHub's anchor for a heading: lower case, punctuation other than `-`
/// and `_` dropped, spaces made `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Every anchor of a markdown text (headings outside fenced code; a repeated
/// heading gets `-1`, `-2`, … as on GitHub).
fn anchors(text: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#');
        if !title.starts_with(' ') {
            continue;
        }
        let base = slug(title);
        let mut s = base.clone();
        let mut n = 0;
        while !out.insert(s.clone()) {
            n += 1;
            s = format!("{base}-{n}");
        }
    }
    out
}

/// Whether `path` (repository-relative) exists, or is known to come with
/// another branch.
fn exists(path: &Path) -> bool {
    root().join(path).exists() || PENDING.iter().any(|p| Path::new(p) == path)
}

fn is_placeholder(s: &str) -> bool {
    s.contains(['<', '>', '*', '…', '$', '{', '}', '[', ' ']) || s.contains("...")
}

/// The markdown links of a line: `](target)`.
fn links(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        let Some(end) = after.find(')') else { break };
        out.push(&after[..end]);
        rest = &after[end..];
    }
    out
}

/// The spans of a line between backticks.
fn code_spans(line: &str) -> Vec<&str> {
    line.split('`').skip(1).step_by(2).collect()
}

/// Repository paths named bare in a line: a token that starts with one of
/// [`ROOTS`] right after a space, an opening bracket or quote, or the line's
/// start.
fn bare_paths(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    for r in ROOTS {
        for (i, _) in line.match_indices(r) {
            if i > 0
                && !matches!(
                    line.as_bytes()[i - 1],
                    b' ' | b'(' | b'[' | b'"' | b'\'' | b'\t'
                )
            {
                continue;
            }
            let token: String = line[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "/_.-:<>*…${},".contains(*c))
                .collect();
            let token = token
                .split("::")
                .next()
                .unwrap()
                .trim_end_matches([':', ',', '.']);
            out.push(token.to_string());
        }
    }
    out
}

/// What `text`, the file `file` (repository-relative), names that does not
/// exist. `others` reads another document's text, for its anchors.
fn problems(file: &Path, text: &str, others: &dyn Fn(&Path) -> Option<String>) -> Vec<String> {
    let dir = file.parent().unwrap_or(Path::new(""));
    let markdown = file.extension().is_some_and(|e| e == "md");
    let own_anchors = anchors(text);
    let mut out = Vec::new();
    let mut report = |line_no: usize, what: String| {
        out.push(format!("{}:{}: {what}", file.display(), line_no + 1));
    };
    for (n, line) in text.lines().enumerate() {
        if markdown {
            for target in links(line) {
                let target = target.split_whitespace().next().unwrap_or("");
                if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (path, anchor) = match target.split_once('#') {
                    Some((p, a)) => (p, Some(a)),
                    None => (target, None),
                };
                if path.is_empty() {
                    let a = anchor.unwrap_or("");
                    if !own_anchors.contains(a) {
                        report(n, format!("no heading for #{a}"));
                    }
                    continue;
                }
                let Some(resolved) = join(dir, path) else {
                    report(n, format!("{target} leaves the repository"));
                    continue;
                };
                if !exists(&resolved) {
                    report(
                        n,
                        format!("link to {target}: {} does not exist", resolved.display()),
                    );
                    continue;
                }
                if let Some(a) = anchor
                    && let Some(other) = others(&resolved)
                    && !anchors(&other).contains(a)
                {
                    report(
                        n,
                        format!(
                            "link to {target}: no heading for #{a} in {}",
                            resolved.display()
                        ),
                    );
                }
            }
        }
        let mut named: Vec<(String, PathBuf)> = Vec::new();
        for span in code_spans(line) {
            let first = span.split_whitespace().next().unwrap_or("");
            if let Some((file, name)) = first.split_once("::")
                && file.ends_with(".rs")
                && !is_placeholder(first)
                && let Ok(source) = std::fs::read_to_string(root().join(file))
            {
                // A test cited by name: the file still defines it.
                let name = name.rsplit("::").next().unwrap();
                if !defines(&source, name) {
                    report(n, format!("cites {first}: no fn {name} in {file}"));
                }
            }
            let first = first.split("::").next().unwrap();
            if is_placeholder(first) {
                continue;
            }
            if first.starts_with("./") || first.starts_with("../") {
                if let Some(p) = join(dir, first) {
                    named.push((first.to_string(), p));
                }
            } else if ROOTS.iter().any(|r| first.starts_with(r)) {
                named.push((first.to_string(), PathBuf::from(first)));
            }
        }
        for token in bare_paths(line) {
            if !is_placeholder(&token) {
                named.push((token.clone(), PathBuf::from(&token)));
            }
        }
        for (token, path) in named {
            if !exists(&path) {
                report(n, format!("names {token}, which does not exist"));
            }
        }
    }
    out
}

/// Whether `source` defines a function `name` (`fn name(` or `fn name<`).
fn defines(source: &str, name: &str) -> bool {
    source.contains(&format!("fn {name}(")) || source.contains(&format!("fn {name}<"))
}

fn read_doc(path: &Path) -> Option<String> {
    std::fs::read_to_string(root().join(path)).ok()
}

#[test]
fn every_path_and_link_in_the_documentation_exists() {
    let docs = documents();
    assert!(docs.len() > 20, "found the documents: {docs:?}");
    let mut all = Vec::new();
    for doc in &docs {
        let text = read_doc(doc).unwrap();
        all.extend(problems(doc, &text, &read_doc));
    }
    assert!(
        all.is_empty(),
        "the documentation names what does not exist:\n{}",
        all.join("\n")
    );
}

/// The check can fail: each kind of broken reference is found, and what is
/// not a reference to this repository is left alone.
#[test]
fn broken_references_are_found_and_the_served_tree_is_not_one() {
    let file = Path::new("docs/example.md");
    let target = |p: &Path| {
        (p == Path::new("docs/feed.md")).then(|| "# Feed\n## How it works\n".to_string())
    };
    let text = "\
# Example\n\
[gone](gone.md) and [feed](feed.md#no-such-heading) and [here](#nowhere)\n\
`examples/production/no-such-file` and `tests/nope.rs::a_test`, see docs/missing.md\n\
`../examples/nope.conf`, `tests/docs.rs::no_such_test`\n";
    let found = problems(file, text, &target);
    for needle in [
        "docs/gone.md does not exist",
        "no heading for #no-such-heading",
        "no heading for #nowhere",
        "examples/production/no-such-file",
        "tests/nope.rs",
        "docs/missing.md",
        "examples/nope.conf",
        "no fn no_such_test in tests/docs.rs",
    ] {
        assert!(
            found.iter().any(|p| p.contains(needle)),
            "{needle} not found in {found:#?}"
        );
    }
    assert_eq!(found.len(), 8, "{found:#?}");

    let fine = "\
# Example\n\
## Judging candidates: `gomirror probe`\n\
[feed](feed.md#how-it-works), [self](#judging-candidates-gomirror-probe), [site](https://example.com/docs/x.md)\n\
`/golang.org/x/mod/@v/list`, `feed/latest`, `<output>/sumdb/<name>/latest`, `/srv/gomirror/mirror`,\n\
`examples/production/cron`, `tests/docs.rs::defines`, `scripts/test`, `src/`, docs/README.md,\n\
`docs/*.md`, `tests/snapshots/`, `file:///srv/mirror/vuln`, examples/production/gomirror-sync.{service,timer}\n\
```sh\n# Not a heading\n```\n";
    let found = problems(file, fine, &target);
    assert!(found.is_empty(), "{found:#?}");
}
