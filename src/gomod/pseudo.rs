//! Pseudo-versions (`golang.org/x/mod/module/pseudo.go`).

/// `module.IsPseudoVersion`.
pub fn is_pseudo_version(v: &str) -> bool {
    let _ = v;
    todo!()
}

/// The 14-digit UTC commit time of a pseudo-version (`20060102150405`), which
/// orders pseudo-versions chronologically as plain strings. `None` if `v` is
/// not a pseudo-version.
pub fn pseudo_version_time(v: &str) -> Option<&str> {
    let _ = v;
    todo!()
}
