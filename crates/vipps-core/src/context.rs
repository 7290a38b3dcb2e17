//! The per-client context: which API, which merchant, over which runtime.

use std::fmt;

use reqwest::header::HeaderValue;

use crate::api::ApiDescriptor;
use crate::config::MerchantSerialNumber;
use crate::error::Error;
use crate::runtime::Runtime;

/// How a client sends the client id and secret to an operation whose descriptor says
/// [`Auth::Basic`](crate::Auth::Basic): the two OAuth client authentication methods an
/// endpoint may be set up for (Login's token endpoint takes either, as set in the portal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ClientAuth {
    /// `client_secret_basic`: `Authorization: Basic` of the id and secret (the default).
    #[default]
    Basic,
    /// `client_secret_post`: `client_id` and `client_secret` added to the request's
    /// `application/x-www-form-urlencoded` body, and no `Authorization` header. An operation
    /// whose body is not a form is refused before anything is sent.
    Post,
}

/// The inner value of every generated client: the shared runtime, the API the client is
/// for, and the merchant it acts for. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    runtime: Runtime,
    api: &'static ApiDescriptor,
    merchant: Option<MerchantSerialNumber>,
    /// `merchant` as a `Merchant-Serial-Number` header value, built once.
    merchant_header: Option<HeaderValue>,
    /// `Bearer <token>` for [`Auth::UserToken`](crate::Auth::UserToken) operations, marked
    /// sensitive; never printed.
    user_token: Option<HeaderValue>,
    client_auth: ClientAuth,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("runtime", &self.runtime)
            .field("api", &self.api)
            .field("merchant", &self.merchant)
            .field("user_token", &self.user_token.as_ref().map(|_| "[REDACTED]"))
            .field("client_auth", &self.client_auth)
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
        Self { runtime, api, merchant, merchant_header, user_token: None, client_auth: ClientAuth::Basic }
    }

    /// The same context sending `token` (a user's access token, without the `Bearer ` prefix)
    /// to the operations that authenticate with [`Auth::UserToken`](crate::Auth::UserToken).
    /// A token that cannot be a header value (control characters) is an
    /// [`Error::InvalidInput`] that does not show it.
    pub fn with_user_token(mut self, token: &str) -> Result<Self, Error> {
        if token.is_empty() || token.trim() != token {
            return Err(Error::invalid_input("the user access token is empty or has surrounding whitespace"));
        }
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| Error::invalid_input("the user access token is not a valid header value"))?;
        value.set_sensitive(true);
        self.user_token = Some(value);
        Ok(self)
    }

    /// The same context sending the client id and secret as `how` says to the operations
    /// whose descriptor says [`Auth::Basic`](crate::Auth::Basic).
    pub fn with_client_auth(mut self, how: ClientAuth) -> Self {
        self.client_auth = how;
        self
    }

    /// How the client id and secret go to [`Auth::Basic`](crate::Auth::Basic) operations.
    pub fn client_auth(&self) -> ClientAuth {
        self.client_auth
    }

    /// The `Authorization` value for [`Auth::UserToken`](crate::Auth::UserToken) operations.
    pub(crate) fn user_token_header(&self) -> Option<&HeaderValue> {
        self.user_token.as_ref()
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
