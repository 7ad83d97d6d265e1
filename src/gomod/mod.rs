//! Go's module rules, written for gomirror: module paths and their `!`-escaping,
//! semantic versions and pseudo-versions, GOPRIVATE-style patterns, dirhash `h1:`
//! sums and the module zip rules.
//!
//! No Rust crate implements these; every function here follows the behaviour of
//! `golang.org/x/mod` and is tested against the public vectors listed in
//! `protocols.md` (§4, §5.6, §5.7, §5.10–§5.13).

pub mod dirhash;
pub mod modfile;
pub mod path;
pub mod pattern;
pub mod pseudo;
pub mod semver;
pub mod toolchain;
pub mod zip;
pub mod zipstream;

mod quote;
mod unicode;
mod unicode_tables;

pub use path::{
    ModuleError, canonical_version, check, check_file_path, check_path, escape_path,
    escape_version, unescape_path, unescape_version,
};
