//! The Vipps MobilePay SDK for Rust.
//!
//! ```no_run
//! # async fn run() -> Result<(), vipps::Error> {
//! let vipps = vipps::Vipps::builder()
//!     .client_id("client-id")
//!     .client_secret("client-secret")
//!     .subscription_key("subscription-key")
//!     .merchant_serial_number("123456")
//!     .system("my-shop", "1.0.0")
//!     .environment(vipps::Environment::Test)
//!     .build()?;
//! let agreements = vipps.recurring().list_agreements().send().await?;
//! // A partner acting for another merchant: same token, other Merchant-Serial-Number.
//! let other = vipps.merchant("654321")?;
//! let charge = other.recurring().fetch_charge_by_id().charge_id("chr-123").send().await?;
//! # let _ = (agreements, charge);
//! # Ok(())
//! # }
//! ```
//!
//! Every client made from one [`Vipps`] shares one HTTP connection pool and one token cache.
//! Calls return the generated crates' results; `?` turns their errors into [`Error`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod client;
mod helpers;

pub use client::{Merchant, Vipps, VippsBuilder};
pub use vipps_core::{
    Environment, Error, IdempotencyKey, MerchantSerialNumber, Problem, RetryPolicy, Runtime, Timeouts, TokenEndpoint,
};

// The accessors and namespaces of the generated APIs (`vipps::recurring`, with the helpers of
// `helpers/`), written by `cargo xtask codegen` from `openapi/manifest.toml`.
mod generated;
#[allow(unused_imports)] // nothing to re-export without an API feature
pub use generated::*;
pub use vipps_core;
pub use vipps_core::webhooks;
pub use vipps_core::reqwest;
