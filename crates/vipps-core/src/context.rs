//! The per-client context: which API, which merchant, over which runtime.

use std::fmt;

use reqwest::header::HeaderValue;

use crate::api::ApiDescriptor;
use crate::config::MerchantSerialNumber;
use crate::runtime::Runtime;

/// The inner value of every generated client: the shared runtime, the API the client is
/// for, and the merchant it acts for. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    runtime: Runtime,
    api: &'static ApiDescriptor,
    merchant: Option<MerchantSerialNumber>,
    /// `merchant` as a `Merchant-Serial-Number` header value, built once.
    merchant_header: Option<HeaderValue>,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("runtime", &self.runtime)
            .field("api", &self.api)
            .field("merchant", &self.merchant)
            .finish()
    }
}

/// An MSN is 4 to 10 digits, so it is always a valid header value.
fn msn_header(msn: &MerchantSerialNumber) -> Option<HeaderValue> {
    HeaderValue::from_str(msn.as_str()).ok()
}

impl Context {
    /// A context for `api` over `runtime`, sending the runtime's default merchant serial number.
    pub fn new(runtime: Runtime, api: &'static ApiDescriptor) -> Self {
        let merchant = runtime.merchant_serial_number().cloned();
        let merchant_header = merchant.as_ref().and_then(msn_header);
        Self { runtime, api, merchant, merchant_header }
    }

    /// The same context acting for another merchant (partner keys).
    pub fn with_merchant(mut self, msn: MerchantSerialNumber) -> Self {
        self.merchant_header = msn_header(&msn);
        self.merchant = Some(msn);
        self
    }

    /// The `Merchant-Serial-Number` header value, ready to send.
    pub(crate) fn merchant_header(&self) -> Option<&HeaderValue> {
        self.merchant_header.as_ref()
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The API this context's client calls.
    pub fn api(&self) -> &'static ApiDescriptor {
        self.api
    }

    /// The merchant serial number sent with each request.
    pub fn merchant_serial_number(&self) -> Option<&MerchantSerialNumber> {
        self.merchant.as_ref()
    }
}
