//! Safe relative paths: the one rule for every tree key and bucket prefix.
//! A key names a file inside the tree and nothing else: no absolute path, no
//! `.` or `..`, no empty component, no hidden (dot) name — the store's
//! internal files and the staging area are dot-directories — and no
//! backslash or NUL that another layer could read differently.

use std::path::{Component, Path};

/// Whether `rel` is a safe tree-relative path (see the module docs).
pub fn is_safe(rel: &str) -> bool {
    if rel.is_empty() || rel.contains('\\') || rel.contains('\0') {
        return false;
    }
    Path::new(rel).components().all(|c| match c {
        Component::Normal(s) => s
            .to_str()
            .is_some_and(|s| !s.is_empty() && !s.starts_with('.')),
        _ => false,
    })
}

/// A checksum database's name as the tree uses it (`sumdb/<name>/…`): one or
/// more elements of letters, digits and `-._~`, none empty or hidden.
pub fn is_db_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('/').all(|e| {
            !e.is_empty()
                && !e.starts_with('.')
                && e.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
        })
}

/// A mirror's name as `trace/<name>.json` carries it (`mirror.name`, a
/// bundle's mirror): a host-name-like word, nothing that could leave the
/// directory or hide the file.
pub fn is_mirror_name(name: &str) -> bool {
    check_mirror_name(name).is_ok()
}

/// [`is_mirror_name`], saying what is wrong (the words finish a sentence
/// that names the value).
pub fn check_mirror_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 253 {
        return Err("must be 1 to 253 characters long");
    }
    if name.starts_with('.') || name.starts_with('-') {
        return Err("must not start with '.' or '-'");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
    {
        return Err("may hold only letters, digits, '.', '-' and '_' (it names trace/<name>.json)");
    }
    Ok(())
}

/// Joins path segments onto a base URL, keeping the base's own path
/// (`https://host/proxy` + `golang.org/x/mod/@v/list`). Segments are
/// percent-encoded as a path (`!` stays literal, which every proxy accepts).
pub fn join_url(base: &reqwest::Url, rel: &str) -> reqwest::Url {
    let mut url = base.clone();
    let joined = {
        let p = url.path().trim_end_matches('/');
        format!("{p}/{}", rel.trim_start_matches('/'))
    };
    url.set_path(&joined);
    url
}
