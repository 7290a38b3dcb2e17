//! Hand-written helpers, one file per API, re-exported in that API's namespace
//! (`vipps::recurring::agreements`) by `generated.rs`.

#[cfg(feature = "recurring")]
pub mod recurring;

#[cfg(feature = "epayment")]
pub mod epayment;
#[cfg(feature = "qr")]
pub mod qr;
#[cfg(feature = "report")]
pub mod report;
#[cfg(feature = "checkout")]
pub mod checkout;
#[cfg(feature = "login")]
pub mod login;
