//! Workspace-level tests live in `tests/*.rs` beside this file.

/// The Rust examples of the workspace README, compiled (and those not marked `no_run` run) as
/// doctests, so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeExamples;
