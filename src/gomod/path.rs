//! Module paths, file paths inside module zips, and their case-encoding
//! (`golang.org/x/mod/module`).

/// Why a module path, version, or file path was rejected. The message names the
/// offending path or version the way Go does, e.g.
/// `malformed module path "x..y": ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ModuleError(pub String);

/// `module.CheckPath`: is `path` a valid module path?
pub fn check_path(path: &str) -> Result<(), ModuleError> {
    let _ = path;
    todo!()
}

/// `module.CheckImportPath`.
pub fn check_import_path(path: &str) -> Result<(), ModuleError> {
    let _ = path;
    todo!()
}

/// `module.CheckFilePath`: a file path inside a module zip (after the
/// `module@version/` prefix).
pub fn check_file_path(path: &str) -> Result<(), ModuleError> {
    let _ = path;
    todo!()
}

/// `module.Check`: the path is valid, the version is canonical (`+incompatible`
/// allowed) and its major version agrees with the path's `/vN` or `.vN` suffix.
pub fn check(path: &str, version: &str) -> Result<(), ModuleError> {
    let _ = (path, version);
    todo!()
}

/// `module.CanonicalVersion`: `semver::canonical`, keeping `+incompatible`.
/// Returns "" for an invalid version.
pub fn canonical_version(v: &str) -> String {
    let _ = v;
    todo!()
}

/// `module.SplitPathVersion`: splits `path` into prefix and major-version suffix
/// (`/v2`, `.v1`, ...). `None` when the suffix is malformed (`/v0`, `/v1`, `/v2.0`...).
pub fn split_path_version(path: &str) -> Option<(&str, &str)> {
    let _ = path;
    todo!()
}

/// `module.MatchPathMajor`.
pub fn match_path_major(version: &str, path_major: &str) -> bool {
    let _ = (version, path_major);
    todo!()
}

/// `module.EscapePath`: checks the path, then replaces each upper-case letter
/// with `!` and its lower-case form.
pub fn escape_path(path: &str) -> Result<String, ModuleError> {
    let _ = path;
    todo!()
}

/// `module.EscapeVersion`.
pub fn escape_version(version: &str) -> Result<String, ModuleError> {
    let _ = version;
    todo!()
}

/// `module.UnescapePath`: the inverse of [`escape_path`]; rejects anything
/// [`escape_path`] could not have produced.
pub fn unescape_path(escaped: &str) -> Result<String, ModuleError> {
    let _ = escaped;
    todo!()
}

/// `module.UnescapeVersion`.
pub fn unescape_version(escaped: &str) -> Result<String, ModuleError> {
    let _ = escaped;
    todo!()
}
