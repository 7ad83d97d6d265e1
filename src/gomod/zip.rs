//! Module zip rules (`golang.org/x/mod/zip` checkZip) and the zip's `h1:`
//! (`dirhash.HashZip`), computed in one streaming pass over a zip on disk.

use std::path::Path;

/// `MaxZipFile`: the largest module zip, and the largest total uncompressed size.
pub const MAX_ZIP_FILE: u64 = 500 << 20;
/// `MaxGoMod`: the largest go.mod (inside a zip, and as a `.mod` file).
pub const MAX_GO_MOD: u64 = 16 << 20;
/// `MaxLICENSE`.
pub const MAX_LICENSE: u64 = 16 << 20;

/// What a valid module zip holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipSummary {
    /// `dirhash.HashZip`: Hash1 over every entry name and its decompressed bytes.
    pub h1: String,
    /// Number of file entries.
    pub files: u64,
    /// Sum of the entries' uncompressed sizes.
    pub uncompressed_size: u64,
}

/// Why a module zip was refused. Messages follow Go's wording where Go has one
/// (e.g. `path does not have prefix "m@v1.0.0/"`, `case-insensitive file name
/// collision: "m.go" and "M.GO"`) and always name the offending entry.
#[derive(Debug, thiserror::Error)]
pub enum ZipError {
    #[error("{0}")]
    Invalid(String),
    #[error("reading zip: {0}")]
    Io(#[from] std::io::Error),
}

/// Checks the zip at `path` against the module zip rules for `module@version`
/// and computes its `h1:`. Streams: memory use does not grow with the zip.
pub fn check_and_hash_zip(
    path: &Path,
    module: &str,
    version: &str,
) -> Result<ZipSummary, ZipError> {
    let _ = (path, module, version);
    todo!()
}
