//! Semantic versions as Go writes them (`golang.org/x/mod/semver`): a leading
//! `v`, shorthands `v1` and `v1.2`, no leading zeros.

use std::cmp::Ordering;

/// `semver.IsValid`.
pub fn is_valid(v: &str) -> bool {
    let _ = v;
    todo!()
}

/// `semver.Canonical`: `v1.2` → `v1.2.0`, build metadata dropped; "" if invalid.
pub fn canonical(v: &str) -> String {
    let _ = v;
    todo!()
}

/// `semver.Major`: `v2.1.0` → `v2`; "" if invalid.
pub fn major(v: &str) -> &str {
    let _ = v;
    todo!()
}

/// `semver.Prerelease`: `v1.2.3-pre+meta` → `-pre`; "" if none or invalid.
pub fn prerelease(v: &str) -> &str {
    let _ = v;
    todo!()
}

/// `semver.Build`: `v1.2.3+meta` → `+meta`; "" if none or invalid.
pub fn build(v: &str) -> &str {
    let _ = v;
    todo!()
}

/// `semver.Compare`: invalid versions are equal to each other and below every
/// valid one; build metadata is ignored.
pub fn compare(a: &str, b: &str) -> Ordering {
    let _ = (a, b);
    todo!()
}

/// `semver.Sort`'s order: [`compare`], ties broken by plain string order.
pub fn sort_cmp(a: &str, b: &str) -> Ordering {
    compare(a, b).then_with(|| a.cmp(b))
}
