//! `h1:` hashes (`golang.org/x/mod/sumdb/dirhash` Hash1).

/// A file name contained a newline, which Hash1 cannot represent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dirhash: filenames with newlines are not supported: {0:?}")]
pub struct DirhashError(pub String);

/// Hash1 over `(file name, SHA-256 of the file's content)` pairs, in any order:
/// `"h1:" + base64(sha256(for each name sorted: hex(sha) + "  " + name + "\n"))`.
pub fn hash1<I>(files: I) -> Result<String, DirhashError>
where
    I: IntoIterator<Item = (String, [u8; 32])>,
{
    let _ = files.into_iter();
    todo!()
}

/// The `h1:` of a `.mod` file whose content has SHA-256 `sha256`: Hash1 of the
/// one-file tree `go.mod` (what go.sum records as `<version>/go.mod h1:...`).
pub fn go_mod_hash(sha256: [u8; 32]) -> String {
    let _ = sha256;
    todo!()
}
