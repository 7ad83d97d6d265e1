//! What is wanted, and where it comes from. Today: the module index feed.

pub mod index;
