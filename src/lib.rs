//! Examples and end-to-end tests of the es event-sourcing framework.
//!
//! This package holds the workspace's `examples/` and `tests/`; the framework itself is the
//! `es-runtime` crate (which re-exports the macros of `es-macros`).

pub mod bank;
pub mod orders;
