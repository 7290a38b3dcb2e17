//! `vipps-core`: the hand-written runtime under every generated Vipps MobilePay client.
//!
//! One [`Runtime`] holds one credential set: the HTTP client, the [`TokenCache`], the
//! environment, the `Vipps-System-*` values, time limits and the [`RetryPolicy`]. Generated
//! clients carry a [`Context`] (runtime + API + merchant) and send every request through
//! [`hooks::send`]. Every generated `send()` returns the one [`Error`].
//!
//! Secrets (client secret, subscription key, tokens) are never shown by `Debug`, `Display`,
//! tracing or errors.
//!
//! [`webhooks`] verifies and reads the webhooks Vipps MobilePay delivers.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod api;
mod config;
mod context;
mod error;
mod exchange;
mod headers;
pub mod hooks;
mod problem;
mod runtime;
mod token;
pub mod webhooks;

pub use api::{ApiDescriptor, Auth, Environments, ManagedHeader, OperationDescriptor, OperationStatus};
pub use config::{Environment, IdempotencyKey, MerchantSerialNumber, RetryPolicy, SystemInfo, Timeouts, TokenEndpoint};
pub use context::{ClientAuth, Context};
pub use error::{Error, Limit, TransportKind};
pub use problem::Problem;
pub use runtime::{Runtime, RuntimeBuilder, DEFAULT_MAX_RESPONSE_SIZE};
pub use token::{parse_token_response, AccessToken, TokenCache, MAX_TOKEN_LIFETIME};

/// The `reqwest` the runtime is built on, for [`RuntimeBuilder::http_client`].
pub use reqwest;
