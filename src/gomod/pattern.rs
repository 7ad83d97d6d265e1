//! GOPRIVATE-style patterns (`module.MatchPrefixPatterns`): comma-separated
//! `path.Match` globs, each matching a leading run of path elements.

/// A pattern was not a valid `path.Match` glob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pattern {pattern:?}: {reason}")]
pub struct PatternError {
    pub pattern: String,
    pub reason: String,
}

/// `module.MatchPrefixPatterns(globs, target)`.
pub fn match_prefix_patterns(globs: &str, target: &str) -> bool {
    let _ = (globs, target);
    todo!()
}

/// Checks every comma-separated glob in `globs` for `path.Match` syntax errors
/// (Go's `path.ErrBadPattern`), so bad configuration is refused at start-up.
pub fn check_patterns(globs: &str) -> Result<(), PatternError> {
    let _ = globs;
    todo!()
}
