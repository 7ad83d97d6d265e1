//! Private modules: versions made from their repositories by the go
//! command, and the ledger that keeps each version's first content.
//!
//! Every peer of gomirror (Athens, goproxy, Artifactory) mirrors private
//! modules straight from version control, and all of them do it the same
//! way: by running the go command in direct mode, the reference
//! implementation of how a repository becomes a module zip. gomirror does
//! too ([`gocmd`], [`origin`]), then treats the result like any upstream's:
//! the zip is checked with the module zip rules and hashed, and published
//! through the same path.
//!
//! What private code lacks is a checksum database: a moved tag or a
//! rewritten history silently changes what `v1.2.3` means. The ledger
//! (`state::private`) is this mirror's own record of the `h1:` each such
//! version had when it was first seen; [`ledger`] refuses a later content
//! that differs (`SECURITY`, the first content stays served), bundles carry
//! the entries signed so the far side refuses a different `v1.2.3` too, and
//! [`recheck`] makes published private versions again at
//! `prune.recheck_interval` to catch a moved tag before anyone asks.

pub mod gocmd;
pub mod ledger;
pub mod origin;
pub mod recheck;

pub use origin::{PrivateOrigin, Routed};
