//! Hand-written helpers, one file per API, re-exported in that API's namespace
//! (`vipps::recurring::agreements`) by `generated.rs`.

#[cfg(feature = "recurring")]
pub mod recurring;

#[cfg(feature = "login")]
pub mod login;
