//! Production data for stacks: the snapshot format, generation, pulling from a
//! production instance, applying it to a stack, and namespaces.
//!
//! Invariant: only [`namespace`] turns a canonical name into a namespaced one.
pub mod namespace;
