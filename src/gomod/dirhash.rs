//! `h1:` hashes (`golang.org/x/mod/sumdb/dirhash` Hash1).
//!
//! Hash1 is `sha256sum $(find . -type f | sort) | sha256sum`, base64-encoded:
//! a summary line per file (hex SHA-256 of its content, two spaces, its name,
//! newline), names sorted bytewise, and the SHA-256 of all the lines.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

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
    let mut files: Vec<(String, [u8; 32])> = files.into_iter().collect();
    // Go sorts names alone; equal names (never valid in a module) keep no
    // particular order there, so sorting the pairs is as good.
    files.sort_unstable();
    let mut summary = Sha256::new();
    let mut line = String::with_capacity(128);
    for (name, sha) in &files {
        if name.contains('\n') {
            return Err(DirhashError(name.clone()));
        }
        line.clear();
        for byte in sha {
            // Writing to a String cannot fail.
            let _ = write!(line, "{byte:02x}");
        }
        line.push_str("  ");
        line.push_str(name);
        line.push('\n');
        summary.update(line.as_bytes());
    }
    let digest = summary.finalize();
    Ok(format!(
        "h1:{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    ))
}

/// The `h1:` of a `.mod` file whose content has SHA-256 `sha256`: Hash1 of the
/// one-file tree `go.mod` (what go.sum records as `<version>/go.mod h1:...`).
pub fn go_mod_hash(sha256: [u8; 32]) -> String {
    // "go.mod" holds no newline, so Hash1 cannot fail.
    hash1([("go.mod".to_owned(), sha256)]).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }

    #[test]
    fn hash1_two_files() {
        let files = [
            ("xyz".to_owned(), sha(b"data for xyz")),
            ("abc".to_owned(), sha(b"data for abc")),
        ];
        assert_eq!(
            hash1(files).as_deref(),
            Ok("h1:EP6WfDoQTSk9klnxcjriWJOGztueJUywHNmWeq+efB8=")
        );
    }

    #[test]
    fn hash1_with_prefix_as_in_hash_dir_and_hash_zip() {
        let files = [
            ("prefix/xyz".to_owned(), sha(b"data for xyz")),
            ("prefix/abc".to_owned(), sha(b"data for abc")),
        ];
        assert_eq!(
            hash1(files).as_deref(),
            Ok("h1:rLyfpGMAgqOnGE2aKOY5Xb6cOc0/YQhPjHBHBwkblhs=")
        );
    }

    #[test]
    fn hash1_empty_set() {
        assert_eq!(
            hash1(std::iter::empty()).as_deref(),
            Ok("h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
        );
    }

    #[test]
    fn hash1_is_order_independent_and_bytewise_sorted() {
        let a = [
            ("B".to_owned(), sha(b"1")),
            ("a".to_owned(), sha(b"2")),
            ("é".to_owned(), sha(b"3")),
        ];
        let mut b = a.clone();
        b.reverse();
        assert_eq!(hash1(a.clone()), hash1(b));
        // Bytewise order puts "B" (0x42) before "a" (0x61) before "é" (0xC3 0xA9).
        let mut text = String::new();
        for (name, data) in [("B", b"1"), ("a", b"2"), ("é", b"3")] {
            let hex: String = sha(data).iter().map(|b| format!("{b:02x}")).collect();
            text.push_str(&format!("{hex}  {name}\n"));
        }
        let want = format!(
            "h1:{}",
            base64::engine::general_purpose::STANDARD.encode(sha(text.as_bytes()))
        );
        assert_eq!(hash1(a), Ok(want));
    }

    #[test]
    fn hash1_rejects_newlines() {
        let err = hash1([("a\nb".to_owned(), sha(b""))]).unwrap_err();
        assert_eq!(err, DirhashError("a\nb".to_owned()));
    }

    #[test]
    fn go_mod_hashes() {
        assert_eq!(
            go_mod_hash(sha(b"")),
            "h1:G7mAYYxgmS0lVkHyy2hEOLQCFB0DlQFTMLWggykrydY="
        );
        assert_eq!(
            go_mod_hash(sha(
                b"module \"rsc.io/quote\"\n\nrequire \"rsc.io/sampler\" v1.3.0\n"
            )),
            "h1:LzX7hefJvL54yjefDEDHNONDjII0t9xZLPXsUe+TKr0="
        );
    }
}
