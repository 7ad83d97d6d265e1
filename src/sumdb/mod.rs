//! The Go checksum database: signed notes, the transparent log (RFC 6962
//! hashing, tiles of height 8) and records, following `golang.org/x/mod/sumdb`
//! and tested against the public vectors in `protocols.md` (§3, §5.2–§5.5).
//! Pure formats and proofs: the client that fetches heads, lookups and tiles
//! over the network and publishes them into the tree is `crate::trust::client`.

pub mod note;
pub mod tile;
pub mod tlog;
