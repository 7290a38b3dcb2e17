//! [`Vipps`], its builder, and per-merchant handles.

use std::time::Duration;

use vipps_core::{Context, Environment, Error, MerchantSerialNumber, RetryPolicy, Runtime, RuntimeBuilder, Timeouts, TokenEndpoint};

/// The SDK's entry point: one credential set, one HTTP client, one token cache.
/// Cloning is cheap; clones share everything.
#[derive(Clone, Debug)]
pub struct Vipps {
    runtime: Runtime,
}

/// A handle acting for one merchant (partner keys): every call sends that merchant's
/// `Merchant-Serial-Number` and uses the same token as its [`Vipps`]. Cheap to make and clone.
#[derive(Clone, Debug)]
pub struct Merchant {
    runtime: Runtime,
    msn: MerchantSerialNumber,
}

/// An error if the API of `api` is not served in the runtime's environment (the Management
/// API runs only in production); a custom base URL (the sandbox, a mock) is always allowed.
// Used by the generated accessors of APIs not served everywhere; unused without their features.
#[allow(dead_code)]
pub(crate) fn served_in(runtime: &Runtime, api: &vipps_core::ApiDescriptor) -> Result<(), Error> {
    let environment = runtime.environment();
    if api.environments.allows(environment) {
        return Ok(());
    }
    let (only, build_with) = if api.environments.production {
        ("production", "Environment::Production")
    } else {
        ("the test environment", "Environment::Test")
    };
    Err(Error::InvalidInput {
        message: format!("the {} API exists only in {only}; build with {build_with} (or a custom base URL)", api.name),
    })
}

impl Vipps {
    /// Starts a builder.
    pub fn builder() -> VippsBuilder {
        VippsBuilder { inner: Runtime::builder() }
    }

    /// Builds from `VIPPS_*` environment variables; see [`VippsBuilder::from_env`].
    pub fn from_env() -> Result<Self, Error> {
        VippsBuilder::from_env()?.build()
    }

    /// Wraps a runtime built elsewhere (for example shared with a generated crate).
    pub fn from_runtime(runtime: Runtime) -> Self {
        Self { runtime }
    }

    /// The shared runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// A handle acting for the merchant `msn`, sharing this client's token and connections.
    pub fn merchant(&self, msn: impl AsRef<str>) -> Result<Merchant, Error> {
        Ok(Merchant { runtime: self.runtime.clone(), msn: MerchantSerialNumber::new(msn.as_ref())? })
    }

    /// The Userinfo client for one user: `access_token` is the user's (from a login, such as
    /// [`crate::login::LoginTokens::access_token`]), sent as `Authorization: Bearer` with the
    /// subscription key to the operations that take it (`userinfo_authorization_code`). It
    /// is kept out of `Debug`. An empty token, or one that cannot be a header value, is an
    /// [`Error::InvalidInput`]. `vipps.merchant(msn)?.userinfo_for(..)` does the same for
    /// another merchant.
    #[cfg(feature = "userinfo")]
    pub fn userinfo_for(&self, access_token: &str) -> Result<vipps_userinfo::Client, Error> {
        let context = Context::new(self.runtime.clone(), &vipps_userinfo::API);
        Ok(vipps_userinfo::Client::from_context(context.with_user_token(access_token)?))
    }

}

impl Merchant {
    /// The merchant serial number this handle sends.
    pub fn merchant_serial_number(&self) -> &MerchantSerialNumber {
        &self.msn
    }

    // Used by the generated accessors; unused without any API feature.
    #[allow(dead_code)]
    pub(crate) fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    // Used by the generated accessors; unused when the facade is built with no API feature.
    #[allow(dead_code)]
    pub(crate) fn context(&self, api: &'static vipps_core::ApiDescriptor) -> Context {
        Context::new(self.runtime.clone(), api).with_merchant(self.msn.clone())
    }

    /// [`Vipps::userinfo_for`] acting for this merchant.
    #[cfg(feature = "userinfo")]
    pub fn userinfo_for(&self, access_token: &str) -> Result<vipps_userinfo::Client, Error> {
        let context = Context::new(self.runtime.clone(), &vipps_userinfo::API).with_merchant(self.msn.clone());
        Ok(vipps_userinfo::Client::from_context(context.with_user_token(access_token)?))
    }

}

/// Builds a [`Vipps`]; every value is validated by [`VippsBuilder::build`] before anything is sent.
#[derive(Debug)]
pub struct VippsBuilder {
    inner: RuntimeBuilder,
}

impl VippsBuilder {
    /// The client id.
    pub fn client_id(self, value: impl Into<String>) -> Self {
        Self { inner: self.inner.client_id(value) }
    }
    /// The client secret (kept in a `secrecy` type, never shown).
    pub fn client_secret(self, value: impl Into<String>) -> Self {
        Self { inner: self.inner.client_secret(value) }
    }
    /// The subscription key (`Ocp-Apim-Subscription-Key`, never shown).
    pub fn subscription_key(self, value: impl Into<String>) -> Self {
        Self { inner: self.inner.subscription_key(value) }
    }
    /// The default merchant serial number.
    pub fn merchant_serial_number(self, msn: impl Into<String>) -> Self {
        Self { inner: self.inner.merchant_serial_number(msn) }
    }
    /// Test (default) or production.
    pub fn environment(self, environment: Environment) -> Self {
        Self { inner: self.inner.environment(environment) }
    }
    /// A custom base URL (the sandbox, a mock server).
    pub fn base_url(self, url: impl Into<String>) -> Self {
        Self { inner: self.inner.base_url(url) }
    }
    /// `Vipps-System-Name` and `Vipps-System-Version` (at most 30 characters each).
    pub fn system(self, name: impl Into<String>, version: impl Into<String>) -> Self {
        Self { inner: self.inner.system(name, version) }
    }
    /// `Vipps-System-Plugin-Name` and `Vipps-System-Plugin-Version` (at most 30 characters each).
    pub fn plugin(self, name: impl Into<String>, version: impl Into<String>) -> Self {
        Self { inner: self.inner.plugin(name, version) }
    }
    /// The `Psp-Id` sent on PSP API calls.
    pub fn psp_id(self, psp_id: impl Into<String>) -> Self {
        Self { inner: self.inner.psp_id(psp_id) }
    }
    /// Connect, per-attempt and whole-call time limits.
    pub fn timeouts(self, timeouts: Timeouts) -> Self {
        Self { inner: self.inner.timeouts(timeouts) }
    }
    /// The retry policy.
    pub fn retry_policy(self, retry: RetryPolicy) -> Self {
        Self { inner: self.inner.retry_policy(retry) }
    }
    /// The token endpoint (default `POST /accesstoken/get`).
    pub fn token_endpoint(self, endpoint: TokenEndpoint) -> Self {
        Self { inner: self.inner.token_endpoint(endpoint) }
    }
    /// How long before expiry a token is replaced (default 60 s; a token is always used for
    /// at least half its lifetime).
    pub fn token_refresh_margin(self, margin: Duration) -> Self {
        Self { inner: self.inner.token_refresh_margin(margin) }
    }
    /// The largest response body read, in bytes (default 16 MiB); a larger one is
    /// [`Error::ResponseTooLarge`].
    pub fn max_response_size(self, bytes: u64) -> Self {
        Self { inner: self.inner.max_response_size(bytes) }
    }
    /// Use this HTTP client (rustls TLS by default otherwise). It must not follow redirects:
    /// see [`RuntimeBuilder::http_client`].
    pub fn http_client(self, client: vipps_core::reqwest::Client) -> Self {
        Self { inner: self.inner.http_client(client) }
    }

    /// A builder filled from the environment: `VIPPS_CLIENT_ID`, `VIPPS_CLIENT_SECRET`,
    /// `VIPPS_SUBSCRIPTION_KEY` (required), and optionally `VIPPS_MERCHANT_SERIAL_NUMBER`,
    /// `VIPPS_ENVIRONMENT` (`test` or `production`), `VIPPS_BASE_URL`, `VIPPS_SYSTEM_NAME`,
    /// `VIPPS_SYSTEM_VERSION`, `VIPPS_PLUGIN_NAME`, `VIPPS_PLUGIN_VERSION`, `VIPPS_PSP_ID`.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// [`VippsBuilder::from_env`] over any lookup function (for tests and config systems).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let mut b = Vipps::builder();
        let var = |k: &str| lookup(k).filter(|v| !v.is_empty());
        if let Some(v) = var("VIPPS_CLIENT_ID") {
            b = b.client_id(v);
        }
        if let Some(v) = var("VIPPS_CLIENT_SECRET") {
            b = b.client_secret(v);
        }
        if let Some(v) = var("VIPPS_SUBSCRIPTION_KEY") {
            b = b.subscription_key(v);
        }
        if let Some(v) = var("VIPPS_MERCHANT_SERIAL_NUMBER") {
            b = b.merchant_serial_number(v);
        }
        match var("VIPPS_ENVIRONMENT").as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("test") => {}
            Some("production") | Some("prod") => b = b.environment(Environment::Production),
            Some(other) => {
                return Err(Error::Config { field: "VIPPS_ENVIRONMENT", message: format!("`{other}` is neither `test` nor `production`") })
            }
        }
        if let Some(v) = var("VIPPS_BASE_URL") {
            b = b.base_url(v);
        }
        if let (Some(n), v) = (var("VIPPS_SYSTEM_NAME"), var("VIPPS_SYSTEM_VERSION")) {
            b = b.system(n, v.unwrap_or_else(|| "0".into()));
        }
        if let (Some(n), v) = (var("VIPPS_PLUGIN_NAME"), var("VIPPS_PLUGIN_VERSION")) {
            b = b.plugin(n, v.unwrap_or_else(|| "0".into()));
        }
        if let Some(v) = var("VIPPS_PSP_ID") {
            b = b.psp_id(v);
        }
        Ok(b)
    }

    /// Validates everything and builds the client.
    pub fn build(self) -> Result<Vipps, Error> {
        Ok(Vipps { runtime: self.inner.build()? })
    }
}

