//! `vipps-core`: the hand-written runtime under every generated Vipps MobilePay client.
//!
//! One [`Runtime`] holds one credential set: the HTTP client, the [`TokenCache`], the
//! environment, the `Vipps-System-*` values, time limits and the [`RetryPolicy`]. Generated
//! clients carry a [`Context`] (runtime + API + merchant) and call [`hooks::pre`] and
//! [`hooks::exec`] around every request. Errors of every API come out as one [`Error`].
//!
//! Secrets (client secret, subscription key, tokens) are never shown by `Debug`, `Display`,
//! tracing or errors.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod api;
mod config;
mod context;
mod error;
pub mod hooks;
mod problem;
mod runtime;
mod token;

pub use api::{ApiDescriptor, OperationDescriptor, OperationStatus};
pub use config::{Environment, IdempotencyKey, MerchantSerialNumber, RetryPolicy, SystemInfo, Timeouts, TokenEndpoint};
pub use context::Context;
pub use error::Error;
pub use problem::Problem;
pub use runtime::{Runtime, RuntimeBuilder};
pub use token::{parse_token_response, AccessToken, TokenCache};

/// The generated clients' own error type, with [`Problem`] as the error body.
pub type ClientError = progenitor_client::Error<Problem>;

/// The `reqwest` the runtime is built on, for [`RuntimeBuilder::http_client`].
pub use reqwest;
