//! The module layout is a pipeline, not a web, and `docs/architecture.md`
//! describes it truly. Dependencies are read from the source: every
//! `crate::…` path and every `use crate::{…}` group (nested groups too), and
//! `super::…` paths for the file graph, in code outside comments and
//! `#[cfg(test)]` blocks.
//!
//! The rules: no cycle between top-level modules, nor between files; the Go
//! formats depend on nothing of the application; `settings` (data) sits below
//! `source`, `store` and `http`; no command imports another command, and no
//! stage imports a command; one module reads the environment; only `state`
//! talks to SQLite, and never with a version state spelt as a number.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/`, as (path relative to `src/`, text).
fn sources() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(src()).sort_by_file_name() {
        let entry = entry.expect("walk src/");
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let rel = path
            .strip_prefix(src())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        out.push((rel, std::fs::read_to_string(path).expect("read source")));
    }
    out
}

/// The code of a file: its test module cut off, comment lines dropped
/// (comments and doc links name modules without depending on them).
fn code(text: &str) -> String {
    text.split("#[cfg(test)]")
        .next()
        .unwrap_or("")
        .lines()
        .map(|l| match l.find("//") {
            // A `//` inside a string literal ("https://…") is not a comment:
            // only a line that starts with one is dropped whole.
            Some(_) if l.trim_start().starts_with("//") => "",
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module path of a file: `source/index.rs` → `source::index`,
/// `source/mod.rs` → `source`.
fn module_of(rel: &str) -> String {
    let p = rel.trim_end_matches(".rs");
    let p = p.strip_suffix("/mod").unwrap_or(p);
    p.replace('/', "::")
}

/// Every crate path a piece of code names: `crate::a::b` and each leaf of
/// `use crate::{a::{b, c}, d}` (as `a::b`, `a::c`, `d`).
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    for (i, _) in code.match_indices("crate::") {
        // Not the tail of another path (`$crate::`, `my_crate::`).
        if i > 0
            && (bytes[i - 1].is_ascii_alphanumeric()
                || bytes[i - 1] == b'_'
                || bytes[i - 1] == b'$')
        {
            continue;
        }
        expand(&code[i + 7..], Vec::new(), &mut out);
    }
    out
}

/// Reads a path (or a `{…}` group of paths) at the start of `rest`, after
/// `prefix`, into `out`.
fn expand(rest: &str, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let rest = rest.trim_start();
    if let Some(group) = rest.strip_prefix('{') {
        // Split the group at top-level commas.
        let mut depth = 0;
        let mut start = 0;
        let mut end = group.len();
        for (j, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    end = j;
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&group[start..j], prefix.clone(), out);
                    start = j + 1;
                }
                _ => {}
            }
        }
        expand(&group[start..end], prefix, out);
        return;
    }
    let name: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if name.is_empty() {
        if !prefix.is_empty() {
            out.push(prefix);
        }
        return;
    }
    let mut path = prefix;
    path.push(name.clone());
    let after = &rest[name.len()..];
    match after.strip_prefix("::") {
        Some(more) => expand(more, path, out),
        None => out.push(path),
    }
}

/// Top-level module → the top-level modules it names.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in sources() {
        let top = module_of(&rel).split("::").next().unwrap().to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let entry = deps.entry(top.clone()).or_default();
        for path in crate_paths(&code(&text)) {
            if path[0] != top && path[0] != "self" && path[0] != "super" {
                entry.insert(path[0].clone());
            }
        }
    }
    deps
}

/// File module → the file modules it names (the longest known prefix of
/// each path, `super::` resolved).
fn file_dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let files: Vec<(String, String)> = sources();
    let known: BTreeSet<String> = files.iter().map(|(rel, _)| module_of(rel)).collect();
    let resolve = |path: &[String]| -> Option<String> {
        (1..=path.len())
            .rev()
            .map(|n| path[..n].join("::"))
            .find(|m| known.contains(m))
    };
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in &files {
        let me = module_of(rel);
        if me == "lib" || me == "main" {
            continue;
        }
        let code = code(text);
        let mut names = crate_paths(&code);
        // `super::x` from `a::b` (a file `a/b.rs`) is `a::x`; from `a` (`a/mod.rs`) it is `x`.
        let parent: Vec<String> = {
            let mut p: Vec<String> = me.split("::").map(str::to_string).collect();
            p.pop();
            p
        };
        for (i, _) in code.match_indices("super::") {
            let mut found = Vec::new();
            expand(&code[i + 7..], parent.clone(), &mut found);
            names.extend(found);
        }
        let entry = deps.entry(me.clone()).or_default();
        for path in names {
            if let Some(m) = resolve(&path)
                && m != me
                && !me.starts_with(&format!("{m}::"))
            {
                entry.insert(m);
            }
        }
    }
    deps
}

fn reachable(deps: &BTreeMap<String, BTreeSet<String>>, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_string()];
    while let Some(m) = stack.pop() {
        for d in deps.get(&m).into_iter().flatten() {
            if seen.insert(d.clone()) {
                stack.push(d.clone());
            }
        }
    }
    seen
}

fn cycles(deps: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut found = Vec::new();
    for (module, direct) in deps {
        for d in direct {
            if reachable(deps, d).contains(module) {
                found.push(format!("{module} -> {d} -> … -> {module}"));
            }
        }
    }
    found
}

#[test]
fn the_reader_sees_grouped_and_nested_imports() {
    let code = "use crate::{fetch::{self, WorkSource}, sync, store::layout::Key};\nlet x = crate::report::now();";
    let mut tops: Vec<String> = crate_paths(code)
        .into_iter()
        .map(|p| p.join("::"))
        .collect();
    tops.sort();
    assert_eq!(
        tops,
        [
            "fetch::WorkSource",
            "fetch::self",
            "report::now",
            "store::layout::Key",
            "sync"
        ]
    );
    // `$crate::` inside a macro and a URL in a string are not dependencies.
    assert!(crate_paths("$crate::state::x!(); my_crate::y").is_empty());
}

#[test]
fn modules_have_no_dependency_cycles() {
    let deps = dependencies();
    assert!(deps.len() > 10, "found the modules: {deps:?}");
    let found = cycles(&deps);
    assert!(found.is_empty(), "dependency cycles:\n{}", found.join("\n"));
}

#[test]
fn files_have_no_dependency_cycles() {
    let deps = file_dependencies();
    assert!(deps.len() > 50, "found the files: {}", deps.len());
    let found = cycles(&deps);
    assert!(
        found.is_empty(),
        "dependency cycles between files:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_go_format_core_depends_on_nothing_of_the_application() {
    let deps = dependencies();
    for core in [
        "gomod",
        "sumdb",
        "clock",
        "crashpoint",
        "lock",
        "env",
        "relpath",
        "redact",
    ] {
        let reach = reachable(&deps, core);
        assert!(
            reach.iter().all(|m| m == "gomod" || m == "env"),
            "{core} reaches {reach:?}"
        );
    }
}

#[test]
fn settings_are_data_below_sources_stores_and_http() {
    let deps = dependencies();
    let reach = reachable(&deps, "settings");
    for forbidden in ["source", "store", "http", "services", "runner", "state"] {
        assert!(
            !reach.contains(forbidden),
            "settings reaches {forbidden} ({reach:?})"
        );
    }
}

/// The commands: what `cli` dispatches to. A command runs stages; it never
/// runs another command, and no stage reaches up into one.
const COMMANDS: &[&str] = &[
    "sync", "verify", "status", "export", "import", "probe", "keygen", "requests",
];

#[test]
fn no_command_imports_another_and_no_stage_imports_a_command() {
    let deps = dependencies();
    let mut offenders = Vec::new();
    for (module, direct) in &deps {
        if module == "cli" {
            continue;
        }
        for d in direct {
            if COMMANDS.contains(&d.as_str()) {
                let who = if COMMANDS.contains(&module.as_str()) {
                    "command"
                } else {
                    "stage"
                };
                offenders.push(format!("{who} {module} imports command {d}"));
            }
        }
    }
    assert!(offenders.is_empty(), "{}", offenders.join("\n"));
}

#[test]
fn only_the_env_module_reads_the_environment() {
    let mut offenders = Vec::new();
    for (rel, text) in sources() {
        if rel == "env.rs" {
            continue;
        }
        for (n, line) in code(&text).lines().enumerate() {
            if ["env::var", "env::var_os", "env::vars"]
                .iter()
                .any(|f| line.contains(f))
            {
                offenders.push(format!("src/{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "environment read outside src/env.rs:\n{}",
        offenders.join("\n")
    );
}

/// Issue 8: no raw SQL outside the state module. Without `rusqlite` (or the
/// connection `State` used to hand out) no other module can run a query;
/// `crashpoint` only hooks commits on the connection the state module gives it.
#[test]
fn only_the_state_module_talks_to_sqlite() {
    let mut offenders = Vec::new();
    for (rel, text) in sources() {
        if rel.starts_with("state/") || rel == "crashpoint.rs" {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains("rusqlite") || code.contains(".conn()") || code.contains(".conn_mut()")
            {
                offenders.push(format!("src/{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "SQL outside src/state/:\n{}",
        offenders.join("\n")
    );
}

/// A version state in SQL is named (`state_code!(Published)`), never a
/// number: the codes live with `VersionState` alone.
#[test]
fn sql_names_version_states() {
    let literal = |line: &str| -> bool {
        let l = line.replace(' ', "");
        ["state=", "state!=", "state<>", "stateIN(", "SETstate="]
            .iter()
            .any(|p| {
                l.match_indices(p).any(|(i, _)| {
                    l[i + p.len()..]
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_digit())
                })
            })
    };
    let mut offenders = Vec::new();
    for (rel, text) in sources() {
        if !rel.starts_with("state/") {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            if literal(line) {
                offenders.push(format!("src/{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "version states as numbers in SQL:\n{}",
        offenders.join("\n")
    );
    assert!(literal("WHERE v.state = 4 AND"), "the check sees a literal");
    assert!(literal("state IN (1, 2)"));
}

/// `docs/architecture.md` is true of the files it names: every `src/…`
/// path exists, and every module in its table (`` `name` `` in the first
/// column) is a file or directory under `src/`.
#[test]
fn the_architecture_document_names_only_what_exists() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md"))
            .expect("docs/architecture.md");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut missing = Vec::new();
    for (i, _) in doc.match_indices("src/") {
        if i > 0 && !matches!(doc.as_bytes()[i - 1], b'`' | b' ' | b'(' | b'\n') {
            continue;
        }
        let path: String = doc[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || "/_.-".contains(*c))
            .collect();
        let path = path.trim_end_matches('.');
        if !root.join(path).exists() {
            missing.push(path.to_string());
        }
    }
    let mut modules = 0;
    for line in doc.lines() {
        let Some(cell) = line.strip_prefix("| `") else {
            continue;
        };
        let names = cell.split('|').next().unwrap_or("");
        for name in names.split(['`', ',', ' ']).filter(|n| !n.is_empty()) {
            let file = name.trim_end_matches(".rs").replace("::", "/");
            let exists = src().join(format!("{file}.rs")).exists() || src().join(&file).is_dir();
            modules += 1;
            if !exists {
                missing.push(format!("module `{name}`"));
            }
        }
    }
    assert!(modules > 20, "read the module table: {modules} names");
    assert!(
        missing.is_empty(),
        "docs/architecture.md names what does not exist:\n{}",
        missing.join("\n")
    );
}
