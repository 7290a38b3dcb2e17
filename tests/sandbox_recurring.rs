//! Being written.

#[path = "support/mod.rs"]
mod support;
