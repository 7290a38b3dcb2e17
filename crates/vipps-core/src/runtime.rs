//! The shared runtime: one HTTP client, one credential set, one token cache.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use reqwest::header::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use crate::config::{
    Environment, MerchantSerialNumber, RetryPolicy, SystemInfo, Timeouts, TokenEndpoint,
};
use crate::error::Error;
use crate::exchange::{
    exchange, problem_of, retry_wait, token_retryable_status, Deadline,
};
use crate::headers::{CLIENT_ID, CLIENT_SECRET, MERCHANT_SERIAL_NUMBER, SUBSCRIPTION_KEY};
use crate::token::{parse_token_response, AccessToken, TokenCache};

/// Everything generated clients share: cloning is cheap (an `Arc`), and every client and
/// merchant handle made from one runtime uses its connection pool and token cache.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    environment: Environment,
    base_url: String,
    merchant_serial_number: Option<MerchantSerialNumber>,
    psp_id: Option<String>,
    system: SystemInfo,
    timeouts: Timeouts,
    retry: RetryPolicy,
    token_endpoint: TokenEndpoint,
    tokens: TokenCache,
    headers: ManagedHeaders,
    max_response_size: u64,
}

/// The default of [`RuntimeBuilder::max_response_size`]: 16 MiB.
pub const DEFAULT_MAX_RESPONSE_SIZE: u64 = 16 * 1024 * 1024;

/// The header values every call sends, built once from the validated configuration so that
/// a call clones them (a reference count each) instead of building and validating them anew.
struct ManagedHeaders {
    /// `client_id`, marked sensitive.
    client_id: HeaderValue,
    /// `client_secret`, marked sensitive.
    client_secret: HeaderValue,
    /// `Authorization: Basic …` of client id and secret, marked sensitive.
    basic: HeaderValue,
    /// `Ocp-Apim-Subscription-Key`, marked sensitive.
    subscription_key: HeaderValue,
    /// `Psp-Id`, when one is configured.
    psp_id: Option<HeaderValue>,
    /// The `Vipps-System-*` headers that are set.
    system: Vec<(HeaderName, HeaderValue)>,
}

impl ManagedHeaders {
    fn new(
        client_id: &SecretString,
        client_secret: &SecretString,
        subscription_key: &SecretString,
        psp_id: Option<&str>,
        system: &SystemInfo,
    ) -> Result<Self, Error> {
        fn value(field: &'static str, value: &str, sensitive: bool) -> Result<HeaderValue, Error> {
            let mut v = HeaderValue::from_str(value)
                .map_err(|_| Error::config(field, "is not a valid header value"))?;
            v.set_sensitive(sensitive);
            Ok(v)
        }
        let basic = format!(
            "{}:{}",
            client_id.expose_secret(),
            client_secret.expose_secret()
        );
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(basic)
        );
        Ok(Self {
            client_id: value("client_id", client_id.expose_secret(), true)?,
            client_secret: value("client_secret", client_secret.expose_secret(), true)?,
            basic: value("client_secret", &basic, true)?,
            subscription_key: value("subscription_key", subscription_key.expose_secret(), true)?,
            psp_id: psp_id.map(|p| value("psp_id", p, false)).transpose()?,
            system: system
                .headers()
                .map(|(name, v)| Ok((HeaderName::from_static(lower(name)), value(name, v, false)?)))
                .collect::<Result<_, Error>>()?,
        })
    }
}

/// The lower-case form of a `Vipps-System-*` header name ([`HeaderName::from_static`] takes
/// lower case only).
fn lower(name: &'static str) -> &'static str {
    match name {
        "Vipps-System-Name" => "vipps-system-name",
        "Vipps-System-Version" => "vipps-system-version",
        "Vipps-System-Plugin-Name" => "vipps-system-plugin-name",
        _ => "vipps-system-plugin-version",
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("Runtime")
            .field("environment", &i.environment)
            .field("client_id", &"[REDACTED]")
            .field("client_secret", &"[REDACTED]")
            .field("subscription_key", &"[REDACTED]")
            .field("merchant_serial_number", &i.merchant_serial_number)
            .field("system", &i.system)
            .field("timeouts", &i.timeouts)
            .field("retry", &i.retry)
            .field("token_endpoint", &i.token_endpoint)
            .field("tokens", &i.tokens)
            .field("max_response_size", &i.max_response_size)
            .finish()
    }
}

impl Runtime {
    /// Starts a builder.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// The HTTP client every request goes through.
    pub fn http_client(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// The environment requests go to.
    pub fn environment(&self) -> &Environment {
        &self.inner.environment
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// The default merchant serial number, sent when a call has none of its own.
    pub fn merchant_serial_number(&self) -> Option<&MerchantSerialNumber> {
        self.inner.merchant_serial_number.as_ref()
    }

    /// The PSP id sent as `Psp-Id` on PSP API calls.
    pub fn psp_id(&self) -> Option<&str> {
        self.inner.psp_id.as_deref()
    }

    /// The `Vipps-System-*` values.
    pub fn system(&self) -> &SystemInfo {
        &self.inner.system
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    /// The time limits.
    pub fn timeouts(&self) -> &Timeouts {
        &self.inner.timeouts
    }

    /// The token cache (for its fetch count, or to share in tests).
    pub fn token_cache(&self) -> &TokenCache {
        &self.inner.tokens
    }

    /// The client id. Not a secret in OAuth terms (it is in every authorization URL and is the
    /// audience of Login's ID tokens), but kept out of `Debug` all the same.
    pub fn client_id(&self) -> &str {
        self.inner.headers.client_id.to_str().unwrap_or_default()
    }

    /// `client_id`, ready to send (sensitive).
    pub(crate) fn client_id_header(&self) -> &HeaderValue {
        &self.inner.headers.client_id
    }

    /// `client_secret`, ready to send (sensitive).
    pub(crate) fn client_secret_header(&self) -> &HeaderValue {
        &self.inner.headers.client_secret
    }

    /// `Authorization: Basic …` of the client id and secret, ready to send (sensitive).
    pub(crate) fn basic_header(&self) -> &HeaderValue {
        &self.inner.headers.basic
    }

    /// The largest response body accepted, in bytes.
    pub fn max_response_size(&self) -> u64 {
        self.inner.max_response_size
    }

    /// `Ocp-Apim-Subscription-Key`, ready to send (sensitive).
    pub(crate) fn subscription_key_header(&self) -> &HeaderValue {
        &self.inner.headers.subscription_key
    }

    /// `Psp-Id`, ready to send, when one is configured.
    pub(crate) fn psp_id_header(&self) -> Option<&HeaderValue> {
        self.inner.headers.psp_id.as_ref()
    }

    /// The `Vipps-System-*` headers that are set, ready to send.
    pub(crate) fn system_headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.inner.headers.system
    }

    /// A valid access token: the cached one, or the outcome of one token request shared by
    /// every concurrent caller (see [`TokenCache`]).
    pub async fn access_token(&self) -> Result<AccessToken, Error> {
        if let Some(token) = self.inner.tokens.fresh() {
            return Ok(token);
        }
        let runtime = self.clone();
        // The fetch is a large future (a whole HTTP exchange); boxed, it does not make the
        // future of every call that awaits this one as large.
        Box::pin(
            self.inner
                .tokens
                .get(move || async move { runtime.fetch_token().await }),
        )
        .await
    }

    /// Drops `token` from the cache if it is still the current one.
    pub fn invalidate_token(&self, token: &AccessToken) {
        self.inner.tokens.invalidate(token);
    }

    /// The token request, retried like an idempotent call (connection failures, attempt
    /// timeouts, 429 and 5xx) within [`Timeouts::call`] from its start.
    async fn fetch_token(&self) -> Result<(AccessToken, Duration), Error> {
        let inner = &self.inner;
        let deadline = Deadline::new(inner.timeouts.call);
        let token = deadline.run(async {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let request = self.token_request()?;
                let limit = deadline.attempt_limit(inner.timeouts.attempt);
                let outcome = exchange(&inner.http, request, limit, TOKEN_RESPONSE_LIMIT, inner.timeouts.connect).await;
                let wait = match &outcome {
                    Ok(response) if response.status().is_success() => {
                        let (_, _, body) = outcome?.into_parts();
                        return parse_token_response(&body);
                    }
                    Ok(response) if token_retryable_status(response.status()) => {
                        retry_wait(response.headers(), &inner.retry, attempt)
                    }
                    Err(e) if e.may_retry() => Some(inner.retry.backoff(attempt)),
                    _ => None,
                };
                match wait {
                    Some(wait) if attempt < inner.retry.max_attempts && deadline.leaves(wait) => {
                        tracing::debug!(
                            attempt,
                            wait_ms = wait.as_millis() as u64,
                            "token request failed; retrying"
                        );
                        tokio::time::sleep(wait).await;
                    }
                    _ => return Err(token_failure(outcome).await),
                }
            }
        });
        token.await
    }

    fn token_request(&self) -> Result<reqwest::Request, Error> {
        let inner = &self.inner;
        let mut request = match inner.token_endpoint {
            TokenEndpoint::AccessTokenGet => {
                let mut r =
                    reqwest::Request::new(reqwest::Method::POST, self.url("/accesstoken/get")?);
                let h = r.headers_mut();
                h.insert(CLIENT_ID.clone(), inner.headers.client_id.clone());
                h.insert(CLIENT_SECRET.clone(), inner.headers.client_secret.clone());
                h.insert(
                    SUBSCRIPTION_KEY.clone(),
                    inner.headers.subscription_key.clone(),
                );
                h.insert(
                    reqwest::header::CONTENT_LENGTH,
                    HeaderValue::from_static("0"),
                );
                r
            }
            TokenEndpoint::Miami => {
                let mut r =
                    reqwest::Request::new(reqwest::Method::POST, self.url("/miami/v1/token")?);
                let h = r.headers_mut();
                h.insert(reqwest::header::AUTHORIZATION, inner.headers.basic.clone());
                h.insert(
                    reqwest::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
                *r.body_mut() = Some("grant_type=client_credentials".into());
                r
            }
        };
        let h = request.headers_mut();
        if let Some(msn) = &inner.merchant_serial_number {
            h.insert(
                MERCHANT_SERIAL_NUMBER.clone(),
                HeaderValue::from_str(msn.as_str()).map_err(|_| Error::invalid_input("MSN"))?,
            );
        }
        for (name, value) in &inner.headers.system {
            h.insert(name.clone(), value.clone());
        }
        Ok(request)
    }

    fn url(&self, path: &str) -> Result<url::Url, Error> {
        url::Url::parse(&format!("{}{path}", self.base_url()))
            .map_err(|e| Error::config("base_url", e.to_string()))
    }
}

/// The largest token endpoint answer read (they are about 1.5 KiB).
const TOKEN_RESPONSE_LIMIT: u64 = 64 * 1024;

/// The error for a token request that ended without a token.
async fn token_failure(outcome: Result<crate::exchange::Response, Error>) -> Error {
    match outcome {
        Ok(response) => {
            let status = response.status().as_u16();
            let problem = problem_of(response);
            Error::TokenEndpoint {
                status: Some(status),
                problem: Some(Box::new(problem)),
                source: None,
            }
        }
        Err(e) => Error::TokenEndpoint {
            status: None,
            problem: None,
            source: Some(Arc::new(e)),
        },
    }
}

/// Builds a [`Runtime`], validating every value before anything is sent.
#[derive(Default)]
pub struct RuntimeBuilder {
    client_id: Option<SecretString>,
    client_secret: Option<SecretString>,
    subscription_key: Option<SecretString>,
    environment: Option<Environment>,
    base_url: Option<String>,
    merchant_serial_number: Option<String>,
    psp_id: Option<String>,
    system: SystemInfo,
    timeouts: Timeouts,
    retry: RetryPolicy,
    token_endpoint: TokenEndpoint,
    refresh_margin: Option<Duration>,
    max_response_size: Option<u64>,
    http: Option<reqwest::Client>,
}

impl fmt::Debug for RuntimeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeBuilder")
            .field("environment", &self.environment)
            .finish_non_exhaustive()
    }
}

impl RuntimeBuilder {
    /// The client id (from the merchant portal).
    pub fn client_id(mut self, value: impl Into<String>) -> Self {
        self.client_id = Some(SecretString::from(value.into()));
        self
    }

    /// The client secret.
    pub fn client_secret(mut self, value: impl Into<String>) -> Self {
        self.client_secret = Some(SecretString::from(value.into()));
        self
    }

    /// The subscription key (`Ocp-Apim-Subscription-Key`).
    pub fn subscription_key(mut self, value: impl Into<String>) -> Self {
        self.subscription_key = Some(SecretString::from(value.into()));
        self
    }

    /// Test or production (the default is [`Environment::Test`]).
    pub fn environment(mut self, environment: Environment) -> Self {
        self.environment = Some(environment);
        self
    }

    /// A custom base URL, such as the local sandbox; validated by [`RuntimeBuilder::build`].
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// The default `Merchant-Serial-Number`.
    pub fn merchant_serial_number(mut self, msn: impl Into<String>) -> Self {
        self.merchant_serial_number = Some(msn.into());
        self
    }

    /// The `Psp-Id` sent on PSP API calls.
    pub fn psp_id(mut self, psp_id: impl Into<String>) -> Self {
        self.psp_id = Some(psp_id.into());
        self
    }

    /// `Vipps-System-Name` and `Vipps-System-Version`.
    pub fn system(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.system.system_name = Some(name.into());
        self.system.system_version = Some(version.into());
        self
    }

    /// `Vipps-System-Plugin-Name` and `Vipps-System-Plugin-Version`.
    pub fn plugin(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.system.plugin_name = Some(name.into());
        self.system.plugin_version = Some(version.into());
        self
    }

    /// Time limits (connect, per attempt, whole call).
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// The retry policy.
    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Which token endpoint to use (default `POST /accesstoken/get`).
    pub fn token_endpoint(mut self, endpoint: TokenEndpoint) -> Self {
        self.token_endpoint = endpoint;
        self
    }

    /// How long before expiry a token is replaced (default 60 s).
    pub fn token_refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = Some(margin);
        self
    }

    /// The largest response body read, in bytes (default 16 MiB); a larger one is
    /// [`Error::ResponseTooLarge`]. At least 1 KiB.
    pub fn max_response_size(mut self, bytes: u64) -> Self {
        self.max_response_size = Some(bytes);
        self
    }

    /// Use this HTTP client instead of building one. Its TLS settings and its own timeouts
    /// apply; the connect timeout of [`Timeouts`] is then not used.
    ///
    /// It **must not follow redirects**: build it with
    /// `.redirect(reqwest::redirect::Policy::none())`. A client that follows them sends the
    /// credentials, the token and the request body to wherever a `3xx` points, before the
    /// runtime sees the answer; the runtime then reports [`Error::Redirect`], but too late to
    /// stop what was sent. The client the runtime builds itself never follows them.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Validates everything and builds the runtime.
    pub fn build(self) -> Result<Runtime, Error> {
        fn required(
            value: Option<SecretString>,
            field: &'static str,
        ) -> Result<SecretString, Error> {
            match value {
                Some(v) if !v.expose_secret().trim().is_empty() => {
                    if v.expose_secret()
                        .bytes()
                        .any(|b| !(0x20..0x7f).contains(&b))
                    {
                        return Err(Error::config(field, "must be printable ASCII"));
                    }
                    Ok(v)
                }
                _ => Err(Error::config(field, "is required and must not be empty")),
            }
        }
        let client_id = required(self.client_id, "client_id")?;
        let client_secret = required(self.client_secret, "client_secret")?;
        let subscription_key = required(self.subscription_key, "subscription_key")?;
        let environment = match (self.base_url, self.environment) {
            (Some(url), _) => Environment::custom(&url)?,
            (None, Some(Environment::Custom(url))) => Environment::custom(url.as_str())?,
            (None, Some(env)) => env,
            (None, None) => Environment::Test,
        };
        let merchant_serial_number = self
            .merchant_serial_number
            .map(MerchantSerialNumber::new)
            .transpose()
            .map_err(|e| Error::config("merchant_serial_number", e.to_string()))?;
        if let Some(psp) = &self.psp_id {
            if psp.is_empty() || psp.len() > 64 || !psp.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(Error::config(
                    "psp_id",
                    "must be 1 to 64 visible ASCII characters",
                ));
            }
        }
        self.system.validate()?;
        self.retry.validate()?;
        self.timeouts.validate()?;
        let max_response_size = self.max_response_size.unwrap_or(DEFAULT_MAX_RESPONSE_SIZE);
        if max_response_size < 1024 {
            return Err(Error::config(
                "max_response_size",
                "must be at least 1024 bytes",
            ));
        }
        let http = match self.http {
            Some(client) => client,
            None => {
                // Never follow a redirect: it would carry the credentials, the token and the
                // body to wherever it points, and turn a POST into a GET.
                let mut b = reqwest::Client::builder()
                    .user_agent(concat!("vipps-rust-sdk/", env!("CARGO_PKG_VERSION")))
                    .redirect(reqwest::redirect::Policy::none());
                if let Some(connect) = self.timeouts.connect {
                    b = b.connect_timeout(connect);
                }
                b.build()
                    .map_err(|e| Error::config("http_client", e.to_string()))?
            }
        };
        let base_url = environment.base_url();
        let headers = ManagedHeaders::new(
            &client_id,
            &client_secret,
            &subscription_key,
            self.psp_id.as_deref(),
            &self.system,
        )?;
        Ok(Runtime {
            inner: Arc::new(Inner {
                http,
                environment,
                base_url,
                merchant_serial_number,
                psp_id: self.psp_id,
                system: self.system,
                timeouts: self.timeouts,
                retry: self.retry,
                token_endpoint: self.token_endpoint,
                tokens: TokenCache::new(self.refresh_margin.unwrap_or(Duration::from_secs(60))),
                headers,
                max_response_size,
            }),
        })
    }
}

#[cfg(all(test, feature = "rustls"))]
mod tls_tests {
    /// A caller may build its own client (for `http_client`) before any runtime exists:
    /// reqwest must have a crypto provider of its own then, or it panics. (An earlier build
    /// used reqwest's `rustls-no-provider` and installed ring at `Runtime::build`, which left
    /// exactly this case panicking.)
    #[test]
    fn a_client_built_before_any_runtime_has_a_crypto_provider() {
        assert!(rustls::crypto::CryptoProvider::get_default().is_none(), "nothing installed one");
        reqwest::Client::builder().build().unwrap();
    }
}
