//! The per-client context: which API, which merchant, over which runtime.

use crate::api::ApiDescriptor;
use crate::config::MerchantSerialNumber;
use crate::runtime::Runtime;

/// The inner value of every generated client: the shared runtime, the API the client is
/// for, and the merchant it acts for. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Context {
    runtime: Runtime,
    api: &'static ApiDescriptor,
    merchant: Option<MerchantSerialNumber>,
}

impl Context {
    /// A context for `api` over `runtime`, sending the runtime's default merchant serial number.
    pub fn new(runtime: Runtime, api: &'static ApiDescriptor) -> Self {
        let merchant = runtime.merchant_serial_number().cloned();
        Self { runtime, api, merchant }
    }

    /// The same context acting for another merchant (partner keys).
    pub fn with_merchant(mut self, msn: MerchantSerialNumber) -> Self {
        self.merchant = Some(msn);
        self
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
