//! The names of the headers the runtime manages, built at compile time (`from_static` would
//! otherwise validate them on every call).

use reqwest::header::HeaderName;

pub(crate) static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub(crate) static CLIENT_ID: HeaderName = HeaderName::from_static("client_id");
pub(crate) static CLIENT_SECRET: HeaderName = HeaderName::from_static("client_secret");
pub(crate) static SUBSCRIPTION_KEY: HeaderName =
    HeaderName::from_static("ocp-apim-subscription-key");
pub(crate) static MERCHANT_SERIAL_NUMBER: HeaderName =
    HeaderName::from_static("merchant-serial-number");
pub(crate) static PSP_ID: HeaderName = HeaderName::from_static("psp-id");
