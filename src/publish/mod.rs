//! Publishing verified versions into the tree, in order.

pub mod lists;
