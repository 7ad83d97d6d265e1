//! Module paths, file paths inside module zips, and their case-encoding
//! (`golang.org/x/mod/module`).
//!
//! Three kinds of path share one set of element rules and differ in the
//! characters they allow: module paths (ASCII letters, digits, `-._~`, and a
//! lower-case domain-like first element), import paths (the same plus `+`), and
//! file paths (any Unicode letter, ASCII digits, space and `!#$%&()+,-.=@[]^_{}~`).
//! Escaping replaces each upper-case letter with `!` and its lower-case form so
//! that proxy trees never need two spellings differing only in case.

use super::quote::{quote, quote_rune};
use super::semver;
use super::unicode::{equal_fold, is_letter};

/// Why a module path, version, or file path was rejected. The message names the
/// offending path or version the way Go does, e.g.
/// `malformed module path "x..y": ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ModuleError(pub String);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Module,
    Import,
    File,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Module => "module",
            Kind::Import => "import",
            Kind::File => "file",
        }
    }

    fn allows(self, c: char) -> bool {
        match self {
            Kind::Module => module_char_ok(c),
            Kind::Import => module_char_ok(c) || c == '+',
            Kind::File => file_char_ok(c),
        }
    }
}

fn module_char_ok(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
}

/// Shell metacharacters, path separators and characters Windows or macOS
/// refuse are left out; non-ASCII is limited to letters.
fn file_char_ok(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || "!#$%&()+,-.=@[]^_{}~ ".contains(c);
    }
    is_letter(c)
}

/// The first element of a module path is a lower-case LDH domain name.
fn first_element_char_ok(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'
}

/// Reserved device names on Windows, checked against an element's text up to
/// its first dot, regardless of case.
const BAD_WINDOWS_NAMES: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

fn malformed(kind: Kind, path: &str, reason: &str) -> ModuleError {
    ModuleError(format!(
        "malformed {} path {}: {reason}",
        kind.noun(),
        quote(path)
    ))
}

/// The rules every kind of path shares; the reason is wrapped by the caller.
fn check_path_kind(path: &str, kind: Kind) -> Result<(), String> {
    if path.is_empty() {
        return Err("empty string".into());
    }
    if path.starts_with('-') && kind != Kind::File {
        return Err("leading dash".into());
    }
    if path.contains("//") {
        return Err("double slash".into());
    }
    if path.ends_with('/') {
        return Err("trailing slash".into());
    }
    path.split('/').try_for_each(|elem| check_elem(elem, kind))
}

fn check_elem(elem: &str, kind: Kind) -> Result<(), String> {
    if elem.is_empty() {
        return Err("empty path element".into());
    }
    if elem.bytes().all(|b| b == b'.') {
        return Err(format!("invalid path element {}", quote(elem)));
    }
    if elem.starts_with('.') && kind == Kind::Module {
        return Err("leading dot in path element".into());
    }
    if elem.ends_with('.') {
        return Err("trailing dot in path element".into());
    }
    if let Some(c) = elem.chars().find(|&c| !kind.allows(c)) {
        return Err(format!("invalid char {}", quote_rune(c)));
    }
    let short = elem.split('.').next().unwrap_or(elem);
    // EqualFold compares rune by rune: only 3- and 4-rune names can match, and
    // checking that first spares the folding for nearly every element.
    let runes = if short.len() <= 16 {
        short.chars().count()
    } else {
        usize::MAX
    };
    if (runes == 3 || runes == 4) && BAD_WINDOWS_NAMES.iter().any(|bad| equal_fold(bad, short)) {
        return Err(format!(
            "{} disallowed as path element component on Windows",
            quote(short)
        ));
    }
    if kind == Kind::File {
        // Windows short names (`PROGRA~1`) only matter for import paths.
        return Ok(());
    }
    if let Some(tilde) = short.rfind('~') {
        let suffix = &short[tilde + 1..];
        if !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()) {
            return Err("trailing tilde and digits in path element".into());
        }
    }
    Ok(())
}

fn check_module_path(path: &str) -> Result<(), String> {
    check_path_kind(path, Kind::Module)?;
    let first = path.split('/').next().unwrap_or(path);
    if first.is_empty() {
        return Err("leading slash".into());
    }
    if !first.contains('.') {
        return Err("missing dot in first path element".into());
    }
    if path.starts_with('-') {
        return Err("leading dash in first path element".into());
    }
    if let Some(c) = first.chars().find(|&c| !first_element_char_ok(c)) {
        return Err(format!(
            "invalid char {} in first path element",
            quote_rune(c)
        ));
    }
    if split_path_version(path).is_none() {
        return Err("invalid version".into());
    }
    Ok(())
}

/// `module.CheckPath`: is `path` a valid module path?
pub fn check_path(path: &str) -> Result<(), ModuleError> {
    check_module_path(path).map_err(|reason| malformed(Kind::Module, path, &reason))
}

/// `module.CheckImportPath`.
pub fn check_import_path(path: &str) -> Result<(), ModuleError> {
    check_path_kind(path, Kind::Import).map_err(|reason| malformed(Kind::Import, path, &reason))
}

/// `module.CheckFilePath`: a file path inside a module zip (after the
/// `module@version/` prefix).
pub fn check_file_path(path: &str) -> Result<(), ModuleError> {
    check_path_kind(path, Kind::File).map_err(|reason| malformed(Kind::File, path, &reason))
}

/// `module.Check`: the path is valid, the version is canonical (`+incompatible`
/// allowed) and its major version agrees with the path's `/vN` or `.vN` suffix.
///
/// Go's `module.Check` only asks for a valid semantic version; the canonical
/// form is what `zip.CheckZip` adds, and what a module version served by a
/// proxy must have. A valid but non-canonical version is reported first, as
/// `CheckZip` does.
pub fn check(path: &str, version: &str) -> Result<(), ModuleError> {
    if semver::is_valid(version) {
        let canonical = canonical_version(version);
        if canonical != version {
            return Err(ModuleError(format!(
                "version {} is not canonical (should be {})",
                quote(version),
                quote(&canonical)
            )));
        }
    }
    check_path(path)?;
    if !semver::is_valid(version) {
        return Err(ModuleError(format!(
            "{path}@{version}: invalid version: not a semantic version"
        )));
    }
    let path_major = split_path_version(path).map_or("", |(_, major)| major);
    match path_major_mismatch(version, path_major) {
        None => Ok(()),
        Some(reason) => Err(ModuleError(format!(
            "{path}@{version}: invalid version: {reason}"
        ))),
    }
}

/// `module.CanonicalVersion`: `semver::canonical`, keeping `+incompatible`.
/// Returns "" for an invalid version.
pub fn canonical_version(v: &str) -> String {
    let mut canonical = semver::canonical(v);
    if semver::build(v) == "+incompatible" {
        canonical.push_str("+incompatible");
    }
    canonical
}

/// `module.SplitPathVersion`: splits `path` into prefix and major-version suffix
/// (`/v2`, `.v1`, ...). `None` when the suffix is malformed (`/v0`, `/v1`, `/v2.0`...).
pub fn split_path_version(path: &str) -> Option<(&str, &str)> {
    if path.starts_with("gopkg.in/") {
        return split_gopkg_in(path);
    }
    let b = path.as_bytes();
    let mut i = b.len();
    let mut dot = false;
    while i > 0 && (b[i - 1].is_ascii_digit() || b[i - 1] == b'.') {
        dot |= b[i - 1] == b'.';
        i -= 1;
    }
    if i <= 1 || i == b.len() || b[i - 1] != b'v' || b[i - 2] != b'/' {
        return Some((path, ""));
    }
    let (prefix, major) = path.split_at(i - 2);
    if dot || major.len() <= 2 || major.as_bytes()[2] == b'0' || major == "/v1" {
        return None;
    }
    Some((prefix, major))
}

/// gopkg.in paths always end in `.vN` (optionally `-unstable`), `.v0` included.
fn split_gopkg_in(path: &str) -> Option<(&str, &str)> {
    let b = path.as_bytes();
    let mut i = b.len();
    if path.ends_with("-unstable") {
        i -= "-unstable".len();
    }
    while i > 0 && b[i - 1].is_ascii_digit() {
        i -= 1;
    }
    if i <= 1 || b[i - 1] != b'v' || b[i - 2] != b'.' {
        return None;
    }
    let (prefix, major) = path.split_at(i - 2);
    if major.len() <= 2 || (major.as_bytes()[2] == b'0' && major != ".v0") {
        return None;
    }
    Some((prefix, major))
}

/// Why `v` does not belong to a path with major suffix `path_major`, as the
/// text Go's `CheckPathMajor` puts after "invalid version: ".
fn path_major_mismatch(v: &str, path_major: &str) -> Option<String> {
    let mut path_major = path_major;
    if path_major.starts_with(".v") {
        path_major = path_major.strip_suffix("-unstable").unwrap_or(path_major);
    }
    if v.starts_with("v0.0.0-") && path_major == ".v1" {
        // Early vgo wrote v0 pseudo-versions for gopkg.in/x.v1; they live on
        // in go.mod files (gopkg.in/yaml.v2 requires check.v1 at one).
        return None;
    }
    let m = semver::major(v);
    let want = if path_major.is_empty() {
        if m == "v0" || m == "v1" || semver::build(v) == "+incompatible" {
            return None;
        }
        "v0 or v1"
    } else if path_major.starts_with('/') || path_major.starts_with('.') {
        if m == &path_major[1..] {
            return None;
        }
        &path_major[1..]
    } else {
        path_major
    };
    Some(format!("should be {want}, not {m}"))
}

/// `module.CheckPathMajor`: does version `v` agree with the path's major
/// suffix (as split off by [`split_path_version`])?
pub fn check_path_major(v: &str, path_major: &str) -> Result<(), ModuleError> {
    match path_major_mismatch(v, path_major) {
        None => Ok(()),
        Some(reason) => Err(ModuleError(format!(
            "version {} invalid: {reason}",
            quote(v)
        ))),
    }
}

/// `module.MatchPathMajor`.
pub fn match_path_major(version: &str, path_major: &str) -> bool {
    path_major_mismatch(version, path_major).is_none()
}

/// `!`-escapes upper-case letters; `None` if `s` holds `!` or non-ASCII.
fn escape_string(s: &str) -> Option<String> {
    if s.bytes().any(|b| b == b'!' || !b.is_ascii()) {
        return None;
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push('!');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// The inverse of [`escape_string`]; `None` for anything it cannot produce.
fn unescape_string(escaped: &str) -> Option<String> {
    let mut out = String::with_capacity(escaped.len());
    let mut bang = false;
    for c in escaped.chars() {
        if !c.is_ascii() {
            return None;
        }
        if bang {
            bang = false;
            if !c.is_ascii_lowercase() {
                return None;
            }
            out.push(c.to_ascii_uppercase());
        } else if c == '!' {
            bang = true;
        } else if c.is_ascii_uppercase() {
            return None;
        } else {
            out.push(c);
        }
    }
    (!bang).then_some(out)
}

/// `module.EscapePath`: checks the path, then replaces each upper-case letter
/// with `!` and its lower-case form.
pub fn escape_path(path: &str) -> Result<String, ModuleError> {
    check_path(path)?;
    escape_string(path).ok_or_else(|| malformed(Kind::Module, path, "cannot be escaped"))
}

/// `module.EscapeVersion`.
pub fn escape_version(version: &str) -> Result<String, ModuleError> {
    let disallowed = || {
        ModuleError(format!(
            "version {} invalid: disallowed version string",
            quote(version)
        ))
    };
    if check_elem(version, Kind::File).is_err() || version.contains('!') {
        return Err(disallowed());
    }
    // Go reports an internal error for the non-ASCII letters a file path
    // element may hold; either way such a version cannot be escaped.
    escape_string(version).ok_or_else(disallowed)
}

/// `module.UnescapePath`: the inverse of [`escape_path`]; rejects anything
/// [`escape_path`] could not have produced.
pub fn unescape_path(escaped: &str) -> Result<String, ModuleError> {
    let path = unescape_string(escaped)
        .ok_or_else(|| ModuleError(format!("invalid escaped module path {}", quote(escaped))))?;
    check_path(&path).map_err(|e| {
        ModuleError(format!(
            "invalid escaped module path {}: {e}",
            quote(escaped)
        ))
    })?;
    Ok(path)
}

/// `module.UnescapeVersion`.
pub fn unescape_version(escaped: &str) -> Result<String, ModuleError> {
    let version = unescape_string(escaped)
        .ok_or_else(|| ModuleError(format!("invalid escaped version {}", quote(escaped))))?;
    check_elem(&version, Kind::File).map_err(|reason| {
        ModuleError(format!(
            "invalid escaped version {}: {reason}",
            quote(&version)
        ))
    })?;
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `module_test.go` `checkPathTests`: (path, module ok, import ok, file ok).
    /// The upstream row `"x.y/\xFFz"` (invalid UTF-8, all false) cannot be a
    /// `&str`; the zip tests cover non-UTF-8 names instead.
    const CHECK_PATH_TESTS: &[(&str, bool, bool, bool)] = &[
        ("x.y/z", true, true, true),
        ("x.y", true, true, true),
        ("", false, false, false),
        ("/x.y/z", false, false, false),
        ("x./z", false, false, false),
        (".x/z", false, true, true),
        ("-x/z", false, false, true),
        ("x..y/z", true, true, true),
        ("x.y/z/../../w", false, false, false),
        ("x.y//z", false, false, false),
        ("x.y/z//w", false, false, false),
        ("x.y/z/", false, false, false),
        ("x.y/z/v0", false, true, true),
        ("x.y/z/v1", false, true, true),
        ("x.y/z/v2", true, true, true),
        ("x.y/z/v2.0", false, true, true),
        ("X.y/z", false, true, true),
        ("!x.y/z", false, false, true),
        ("_x.y/z", false, true, true),
        ("x.y!/z", false, false, true),
        ("x.y\"/z", false, false, false),
        ("x.y#/z", false, false, true),
        ("x.y$/z", false, false, true),
        ("x.y%/z", false, false, true),
        ("x.y&/z", false, false, true),
        ("x.y'/z", false, false, false),
        ("x.y(/z", false, false, true),
        ("x.y)/z", false, false, true),
        ("x.y*/z", false, false, false),
        ("x.y+/z", false, true, true),
        ("x.y,/z", false, false, true),
        ("x.y-/z", true, true, true),
        ("x.y./zt", false, false, false),
        ("x.y:/z", false, false, false),
        ("x.y;/z", false, false, false),
        ("x.y</z", false, false, false),
        ("x.y=/z", false, false, true),
        ("x.y>/z", false, false, false),
        ("x.y?/z", false, false, false),
        ("x.y@/z", false, false, true),
        ("x.y[/z", false, false, true),
        ("x.y\\/z", false, false, false),
        ("x.y]/z", false, false, true),
        ("x.y^/z", false, false, true),
        ("x.y_/z", false, true, true),
        ("x.y`/z", false, false, false),
        ("x.y{/z", false, false, true),
        ("x.y}/z", false, false, true),
        ("x.y~/z", false, true, true),
        ("x.y/z!", false, false, true),
        ("x.y/z\"", false, false, false),
        ("x.y/z#", false, false, true),
        ("x.y/z$", false, false, true),
        ("x.y/z%", false, false, true),
        ("x.y/z&", false, false, true),
        ("x.y/z'", false, false, false),
        ("x.y/z(", false, false, true),
        ("x.y/z)", false, false, true),
        ("x.y/z*", false, false, false),
        ("x.y/z++", false, true, true),
        ("x.y/z,", false, false, true),
        ("x.y/z-", true, true, true),
        ("x.y/z.t", true, true, true),
        ("x.y/z/t", true, true, true),
        ("x.y/z:", false, false, false),
        ("x.y/z;", false, false, false),
        ("x.y/z<", false, false, false),
        ("x.y/z=", false, false, true),
        ("x.y/z>", false, false, false),
        ("x.y/z?", false, false, false),
        ("x.y/z@", false, false, true),
        ("x.y/z[", false, false, true),
        ("x.y/z\\", false, false, false),
        ("x.y/z]", false, false, true),
        ("x.y/z^", false, false, true),
        ("x.y/z_", true, true, true),
        ("x.y/z`", false, false, false),
        ("x.y/z{", false, false, true),
        ("x.y/z}", false, false, true),
        ("x.y/z~", true, true, true),
        ("x.y/x.foo", true, true, true),
        ("x.y/aux.foo", false, false, false),
        ("x.y/prn", false, false, false),
        ("x.y/prn2", true, true, true),
        ("x.y/com", true, true, true),
        ("x.y/com1", false, false, false),
        ("x.y/com1.txt", false, false, false),
        ("x.y/calm1", true, true, true),
        ("x.y/z~", true, true, true),
        ("x.y/z~0", false, false, true),
        ("x.y/z~09", false, false, true),
        ("x.y/z09", true, true, true),
        ("x.y/z09~", true, true, true),
        ("x.y/z09~09z", true, true, true),
        ("x.y/z09~09z~09", false, false, true),
        ("github.com/!123/logrus", false, false, true),
        ("github.com/user/unicode/испытание", false, false, true),
        ("../x", false, false, false),
        ("./y", false, false, false),
        ("x:y", false, false, false),
        ("\\temp\\foo", false, false, false),
        (".gitignore", false, true, true),
        (".github/ISSUE_TEMPLATE", false, true, true),
        ("x☺y", false, false, false),
    ];

    #[test]
    fn check_path_table() {
        for &(path, ok, import_ok, file_ok) in CHECK_PATH_TESTS {
            assert_eq!(
                check_path(path).is_ok(),
                ok,
                "check_path({path:?}): {:?}",
                check_path(path)
            );
            assert_eq!(
                check_import_path(path).is_ok(),
                import_ok,
                "check_import_path({path:?}): {:?}",
                check_import_path(path)
            );
            assert_eq!(
                check_file_path(path).is_ok(),
                file_ok,
                "check_file_path({path:?}): {:?}",
                check_file_path(path)
            );
        }
    }

    #[test]
    fn error_messages_read_like_go() {
        let msg = |r: Result<(), ModuleError>| r.unwrap_err().to_string();
        assert!(check_path("x..y").is_ok());
        assert_eq!(
            msg(check_path("cache")),
            r#"malformed module path "cache": missing dot in first path element"#
        );
        assert_eq!(
            msg(check_path("x.y/z/v1")),
            r#"malformed module path "x.y/z/v1": invalid version"#
        );
        assert_eq!(
            msg(check_path("X.y/z")),
            r#"malformed module path "X.y/z": invalid char 'X' in first path element"#
        );
        assert_eq!(
            msg(check_path(".x/z")),
            r#"malformed module path ".x/z": leading dot in path element"#
        );
        assert_eq!(
            msg(check_path("x.y/prn")),
            r#"malformed module path "x.y/prn": "prn" disallowed as path element component on Windows"#
        );
        assert_eq!(
            msg(check_path("x.y/z~0")),
            r#"malformed module path "x.y/z~0": trailing tilde and digits in path element"#
        );
        assert_eq!(
            msg(check_file_path("bad.go'")),
            r#"malformed file path "bad.go'": invalid char '\''"#
        );
        assert_eq!(
            msg(check_file_path("a/../b")),
            r#"malformed file path "a/../b": invalid path element "..""#
        );
        assert_eq!(
            msg(check_import_path("x.y/z/")),
            r#"malformed import path "x.y/z/": trailing slash"#
        );
        assert_eq!(
            msg(check_path("")),
            r#"malformed module path "": empty string"#
        );
    }

    /// `module_test.go` `checkTests` plus the §5.10 TestCheck rows.
    const CHECK_TESTS: &[(&str, &str, bool)] = &[
        ("rsc.io/quote", "0.1.0", false),
        ("rsc io/quote", "v1.0.0", false),
        ("github.com/go-yaml/yaml", "v0.8.0", true),
        ("github.com/go-yaml/yaml", "v1.0.0", true),
        ("github.com/go-yaml/yaml", "v2.0.0", false),
        ("github.com/go-yaml/yaml", "v2.1.5", false),
        ("github.com/go-yaml/yaml", "v3.0.0", false),
        ("github.com/go-yaml/yaml/v2", "v1.0.0", false),
        ("github.com/go-yaml/yaml/v2", "v2.0.0", true),
        ("github.com/go-yaml/yaml/v2", "v2.1.5", true),
        ("github.com/go-yaml/yaml/v2", "v3.0.0", false),
        ("gopkg.in/yaml.v0", "v0.8.0", true),
        ("gopkg.in/yaml.v0", "v1.0.0", false),
        ("gopkg.in/yaml.v0", "v2.0.0", false),
        ("gopkg.in/yaml.v0", "v2.1.5", false),
        ("gopkg.in/yaml.v0", "v3.0.0", false),
        ("gopkg.in/yaml.v1", "v0.8.0", false),
        ("gopkg.in/yaml.v1", "v1.0.0", true),
        ("gopkg.in/yaml.v1", "v2.0.0", false),
        ("gopkg.in/yaml.v1", "v2.1.5", false),
        ("gopkg.in/yaml.v1", "v3.0.0", false),
        ("gopkg.in/check.v1", "v0.0.0", false),
        (
            "gopkg.in/check.v1",
            "v0.0.0-20160102150405-abcdef123456",
            true,
        ),
        ("gopkg.in/yaml.v2", "v1.0.0", false),
        ("gopkg.in/yaml.v2", "v2.0.0", true),
        ("gopkg.in/yaml.v2", "v2.1.5", true),
        ("gopkg.in/yaml.v2", "v3.0.0", false),
        ("rsc.io/quote", "v17.0.0", false),
        ("rsc.io/quote", "v17.0.0+incompatible", true),
        // Canonical form is required on top of Go's module.Check.
        ("rsc.io/quote", "v1.0", false),
        ("rsc.io/quote", "v1.0.0+meta", false),
        ("rsc.io/quote/v2", "v2.0.0+incompatible", true),
    ];

    #[test]
    fn check_table() {
        for &(path, version, ok) in CHECK_TESTS {
            assert_eq!(
                check(path, version).is_ok(),
                ok,
                "check({path:?}, {version:?}): {:?}",
                check(path, version)
            );
        }
        assert_eq!(
            check("example.com/m", "v1.0.0+bad").unwrap_err().0,
            r#"version "v1.0.0+bad" is not canonical (should be "v1.0.0")"#
        );
        assert_eq!(
            check("example.com/m", "v2.0.0").unwrap_err().0,
            "example.com/m@v2.0.0: invalid version: should be v0 or v1, not v2"
        );
        assert_eq!(
            check("rsc.io/quote", "0.1.0").unwrap_err().0,
            "rsc.io/quote@0.1.0: invalid version: not a semantic version"
        );
        assert_eq!(
            check("cache", "v1.0.0").unwrap_err().0,
            r#"malformed module path "cache": missing dot in first path element"#
        );
    }

    #[test]
    fn split_path_version_table() {
        for (prefix, major) in [
            ("x.y/z", ""),
            ("x.y/z", "/v2"),
            ("x.y/z", "/v3"),
            ("x.y/v", ""),
            ("gopkg.in/yaml", ".v0"),
            ("gopkg.in/yaml", ".v1"),
            ("gopkg.in/yaml", ".v2"),
            ("gopkg.in/yaml", ".v3"),
        ] {
            let path = format!("{prefix}{major}");
            assert_eq!(split_path_version(&path), Some((prefix, major)), "{path:?}");
        }
        for &(path, ..) in CHECK_PATH_TESTS {
            let (prefix, major) = split_path_version(path).unwrap_or((path, ""));
            assert_eq!(format!("{prefix}{major}"), path);
        }
        assert_eq!(
            split_path_version("gopkg.in/yaml.v2-unstable"),
            Some(("gopkg.in/yaml", ".v2-unstable"))
        );
        assert_eq!(split_path_version("gopkg.in/yaml"), None);
        assert_eq!(split_path_version("gopkg.in/yaml.v01"), None);
        assert_eq!(split_path_version("x.y/z/v02"), None);
        assert_eq!(split_path_version("x.y/z/v10"), Some(("x.y/z", "/v10")));
    }

    #[test]
    fn match_path_major_table() {
        for (v, path_major, want) in [
            ("v0.0.0", "", true),
            ("v0.0.0", "/v2", false),
            ("v0.0.0", ".v0", true),
            ("v0.0.0-20190510104115-cbcb75029529", ".v1", true),
            ("v1.0.0", "/v2", false),
            ("v1.0.0", ".v1", true),
            ("v1.0.0", ".v1-unstable", true),
            ("v2.0.0+incompatible", "", true),
            ("v2.0.0", "", false),
            ("v2.0.0", "/v2", true),
            ("v2.0.0", ".v2", true),
        ] {
            assert_eq!(
                match_path_major(v, path_major),
                want,
                "({v:?}, {path_major:?})"
            );
            assert_eq!(check_path_major(v, path_major).is_ok(), want);
        }
        assert_eq!(
            check_path_major("v1.0.0", "/v2").unwrap_err().0,
            r#"version "v1.0.0" invalid: should be v2, not v1"#
        );
    }

    #[test]
    fn canonical_version_keeps_incompatible() {
        assert_eq!(
            canonical_version("v2.0.0+incompatible"),
            "v2.0.0+incompatible"
        );
        assert_eq!(canonical_version("v2.0+incompatible"), "");
        assert_eq!(canonical_version("v2.0.0+meta"), "v2.0.0");
        assert_eq!(canonical_version("v1.2"), "v1.2.0");
        assert_eq!(canonical_version("bad"), "");
    }

    #[test]
    fn escape_and_unescape_paths() {
        for (path, esc) in [
            (
                "ascii.com/abcdefghijklmnopqrstuvwxyz.-/~_0123456789",
                "ascii.com/abcdefghijklmnopqrstuvwxyz.-/~_0123456789",
            ),
            (
                "github.com/GoogleCloudPlatform/omega",
                "github.com/!google!cloud!platform/omega",
            ),
            (
                "github.com/Azure/azure-sdk-for-go",
                "github.com/!azure/azure-sdk-for-go",
            ),
            ("github.com/Sirupsen/logrus", "github.com/!sirupsen/logrus"),
        ] {
            assert_eq!(escape_path(path).as_deref(), Ok(esc));
            assert_eq!(unescape_path(esc).as_deref(), Ok(path));
        }
        for bad in [
            "github.com/GoogleCloudPlatform/omega",
            "github.com/!google!cloud!platform!/omega",
            "github.com/!0google!cloud!platform/omega",
            "github.com/!_google!cloud!platform/omega",
            "github.com/!!google!cloud!platform/omega",
            "",
        ] {
            assert!(unescape_path(bad).is_err(), "unescape_path({bad:?})");
        }
        for &(path, ok, ..) in CHECK_PATH_TESTS {
            if !ok {
                assert!(escape_path(path).is_err(), "escape_path({path:?})");
                assert!(unescape_path(path).is_err(), "unescape_path({path:?})");
            }
        }
        assert_eq!(
            unescape_path("github.com/!google!").unwrap_err().0,
            r#"invalid escaped module path "github.com/!google!""#
        );
    }

    #[test]
    fn escape_and_unescape_versions() {
        for (v, esc) in [
            ("v1.0.0", "v1.0.0"),
            ("v1.0.0-RC1", "v1.0.0-!r!c1"),
            ("v2.0.0+incompatible", "v2.0.0+incompatible"),
            ("master", "master"),
            ("Feature-Branch", "!feature-!branch"),
        ] {
            assert_eq!(escape_version(v).as_deref(), Ok(esc), "{v:?}");
            assert_eq!(unescape_version(esc).as_deref(), Ok(v), "{esc:?}");
        }
        for bad in ["", "v1!", "a/b", "..", "v1.0.", "v1'", "vé", "con"] {
            assert!(escape_version(bad).is_err(), "escape_version({bad:?})");
        }
        assert_eq!(
            escape_version("v1!").unwrap_err().0,
            r#"version "v1!" invalid: disallowed version string"#
        );
        for bad in ["V1.0.0", "v1.0.0-!", "v1.0.0-!1", "a/b", "", "é"] {
            assert!(unescape_version(bad).is_err(), "unescape_version({bad:?})");
        }
    }
}
