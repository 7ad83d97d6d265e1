//! Where the tree lives. Today: a local directory ([`local::Tree`]).
//!
//! [`layout`] names every file of the tree; [`local`] writes them.

pub mod layout;
pub mod local;

pub use local::{INTERNAL_DIR, Tree, TreeError, stat};
