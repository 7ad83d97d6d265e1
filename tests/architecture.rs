//! The module layout is a pipeline, not a web: no module of `src/` reaches
//! back to one that depends on it (issue 8: "no dependency cycles between
//! modules"). Dependencies are read from `crate::<module>` paths in code
//! outside comments and `#[cfg(test)]` blocks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → the top-level modules it names.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for entry in walkdir::WalkDir::new(&src) {
        let entry = entry.expect("walk src/");
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let rel = path
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let top = rel
            .split('/')
            .next()
            .unwrap()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let text = std::fs::read_to_string(path).expect("read source");
        // Comments (doc links included) name modules without depending on them.
        let code: String = text
            .split("#[cfg(test)]")
            .next()
            .unwrap_or("")
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let entry = deps.entry(top.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            let name: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
                .collect();
            if !name.is_empty() && name != top {
                entry.insert(name);
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

#[test]
fn modules_have_no_dependency_cycles() {
    let deps = dependencies();
    assert!(deps.len() > 10, "found the modules: {deps:?}");
    let mut cycles = Vec::new();
    for (module, direct) in &deps {
        for d in direct {
            if reachable(&deps, d).contains(module) {
                cycles.push(format!("{module} -> {d} -> … -> {module}"));
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "dependency cycles:\n{}",
        cycles.join("\n")
    );
}

#[test]
fn the_go_format_core_depends_on_nothing_of_the_application() {
    let deps = dependencies();
    for core in ["gomod", "clock", "crashpoint", "lock"] {
        let reach = reachable(&deps, core);
        assert!(
            reach.iter().all(|m| m == "gomod"),
            "{core} reaches {reach:?}"
        );
    }
}

/// Issue 8: no raw SQL outside the state module. Without `rusqlite` (or the
/// connection `State` used to hand out) no other module can run a query;
/// `crashpoint` only hooks commits on the connection the state module gives it.
#[test]
fn only_the_state_module_talks_to_sqlite() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offenders = Vec::new();
    for entry in walkdir::WalkDir::new(&src) {
        let entry = entry.expect("walk src/");
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let rel = path.strip_prefix(&src).unwrap().to_string_lossy();
        if rel.starts_with("state/") || rel == "crashpoint.rs" {
            continue;
        }
        let text = std::fs::read_to_string(path).expect("read source");
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
