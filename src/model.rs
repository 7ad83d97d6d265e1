//! The types a version carries through the pipeline, between the stages.

/// A version to fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Todo {
    pub module_id: i64,
    pub path: String,
    pub version: String,
    pub attempts: i64,
    /// The `.zip` is wanted (else the version is graph-only: `.info` and `.mod`).
    pub zip: bool,
    /// A `from_files` file names it (its go.sum hashes are checked).
    pub pinned: bool,
}

/// Everything recorded about a version when it is published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    pub module_id: i64,
    pub version: String,
    pub info_time: Option<String>,
    pub zip_h1: String,
    pub mod_h1: String,
    pub info_size: i64,
    pub mod_size: i64,
    pub zip_size: i64,
    pub info_mtime: i64,
    pub mod_mtime: i64,
    pub zip_mtime: i64,
    pub record_id: Option<i64>,
    /// Hex SHA-256 of the files' bytes (not recorded by schema version 1).
    pub zip_sha256: Option<String>,
    pub info_sha256: Option<String>,
    /// The `.zip` is in the tree; `false` for a graph-only version
    /// ([`crate::state::VersionState::GraphOnly`]), whose zip fields are empty.
    pub zip: bool,
}

/// One published version as listing needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub version: String,
    /// The `.info` `Time`, if it had one.
    pub time: Option<String>,
    /// The `h1:` of the `.mod` file.
    pub mod_h1: String,
}
