//! The shared runtime: one HTTP client, one credential set, one token cache.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use reqwest::header::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use crate::config::{Environment, MerchantSerialNumber, RetryPolicy, SystemInfo, Timeouts, TokenEndpoint};
use crate::error::Error;
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
    client_id: SecretString,
    client_secret: SecretString,
    subscription_key: SecretString,
    merchant_serial_number: Option<MerchantSerialNumber>,
    psp_id: Option<String>,
    system: SystemInfo,
    timeouts: Timeouts,
    retry: RetryPolicy,
    token_endpoint: TokenEndpoint,
    tokens: TokenCache,
    headers: ManagedHeaders,
}

/// The header values every call sends, built once from the validated configuration so that
/// a call clones them (a reference count each) instead of building and validating them anew.
struct ManagedHeaders {
    /// `Ocp-Apim-Subscription-Key`, marked sensitive.
    subscription_key: HeaderValue,
    /// `Psp-Id`, when one is configured.
    psp_id: Option<HeaderValue>,
    /// The `Vipps-System-*` headers that are set.
    system: Vec<(HeaderName, HeaderValue)>,
}

impl ManagedHeaders {
    fn new(subscription_key: &SecretString, psp_id: Option<&str>, system: &SystemInfo) -> Result<Self, Error> {
        fn value(field: &'static str, value: &str, sensitive: bool) -> Result<HeaderValue, Error> {
            let mut v = HeaderValue::from_str(value).map_err(|_| Error::config(field, "is not a valid header value"))?;
            v.set_sensitive(sensitive);
            Ok(v)
        }
        Ok(Self {
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

    pub(crate) fn client_id(&self) -> &str {
        self.inner.client_id.expose_secret()
    }

    pub(crate) fn client_secret(&self) -> &str {
        self.inner.client_secret.expose_secret()
    }

    pub(crate) fn subscription_key(&self) -> &str {
        self.inner.subscription_key.expose_secret()
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

    pub(crate) fn basic_credentials(&self) -> String {
        let raw = format!("{}:{}", self.client_id(), self.client_secret());
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
    }

    /// A valid access token: the cached one, or a new one (one fetch for all concurrent callers).
    pub async fn access_token(&self) -> Result<AccessToken, Error> {
        if let Some(token) = self.inner.tokens.fresh() {
            return Ok(token);
        }
        // The fetch is a large future (a whole HTTP exchange); boxed, it does not make the
        // future of every call that awaits this one as large.
        Box::pin(self.inner.tokens.get(|| self.fetch_token())).await
    }

    /// Drops `token` from the cache if it is still the current one.
    pub fn invalidate_token(&self, token: &AccessToken) {
        self.inner.tokens.invalidate(token);
    }

    async fn fetch_token(&self) -> Result<(AccessToken, Duration), Error> {
        let mut request = match self.inner.token_endpoint {
            TokenEndpoint::AccessTokenGet => self
                .inner
                .http
                .post(format!("{}/accesstoken/get", self.base_url()))
                .header("client_id", self.client_id())
                .header("client_secret", self.client_secret())
                .header("Ocp-Apim-Subscription-Key", self.subscription_key())
                .header(reqwest::header::CONTENT_LENGTH, "0"),
            TokenEndpoint::Miami => self
                .inner
                .http
                .post(format!("{}/miami/v1/token", self.base_url()))
                .header(reqwest::header::AUTHORIZATION, self.basic_credentials())
                .form(&[("grant_type", "client_credentials")]),
        };
        if let Some(msn) = &self.inner.merchant_serial_number {
            request = request.header("Merchant-Serial-Number", msn.as_str());
        }
        for (name, value) in self.inner.system.headers() {
            request = request.header(name, value);
        }
        if let Some(limit) = self.inner.timeouts.attempt {
            request = request.timeout(limit);
        }
        let response = request.send().await.map_err(Error::from_reqwest)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(Error::from_reqwest)?;
        if !(200..300).contains(&status) {
            let problem = serde_json::from_slice(&body).map(crate::Problem::from_value).unwrap_or_default();
            let message = format!("the token endpoint refused the credentials: {}", problem.summary());
            return Err(if (400..500).contains(&status) {
                Error::Authentication { status: Some(status), message, problem: Some(Box::new(problem)) }
            } else {
                Error::Api { status, problem: Box::new(problem) }
            });
        }
        parse_token_response(&body)
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
    http: Option<reqwest::Client>,
}

impl fmt::Debug for RuntimeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeBuilder").field("environment", &self.environment).finish_non_exhaustive()
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

    /// Use this HTTP client instead of building one (its own timeouts and TLS settings apply;
    /// the connect timeout of [`Timeouts`] is then not used).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Validates everything and builds the runtime.
    pub fn build(self) -> Result<Runtime, Error> {
        fn required(value: Option<SecretString>, field: &'static str) -> Result<SecretString, Error> {
            match value {
                Some(v) if !v.expose_secret().trim().is_empty() => {
                    if v.expose_secret().bytes().any(|b| !(0x20..0x7f).contains(&b)) {
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
                return Err(Error::config("psp_id", "must be 1 to 64 visible ASCII characters"));
            }
        }
        self.system.validate()?;
        if self.retry.max_attempts == 0 {
            return Err(Error::config("retry_policy", "max_attempts must be at least 1"));
        }
        let http = match self.http {
            Some(client) => client,
            None => {
                let mut b = reqwest::Client::builder().user_agent(concat!("vipps-rust-sdk/", env!("CARGO_PKG_VERSION")));
                if let Some(connect) = self.timeouts.connect {
                    b = b.connect_timeout(connect);
                }
                b.build().map_err(|e| Error::config("http_client", e.to_string()))?
            }
        };
        let base_url = environment.base_url();
        let headers = ManagedHeaders::new(&subscription_key, self.psp_id.as_deref(), &self.system)?;
        Ok(Runtime {
            inner: Arc::new(Inner {
                http,
                environment,
                base_url,
                client_id,
                client_secret,
                subscription_key,
                merchant_serial_number,
                psp_id: self.psp_id,
                system: self.system,
                timeouts: self.timeouts,
                retry: self.retry,
                token_endpoint: self.token_endpoint,
                tokens: TokenCache::new(self.refresh_margin.unwrap_or(Duration::from_secs(60))),
                headers,
            }),
        })
    }
}
