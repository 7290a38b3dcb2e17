//! Validated configuration values: environments, merchant serial numbers, idempotency keys,
//! system headers, timeouts and the retry policy.

use std::fmt;
use std::time::Duration;

use crate::error::Error;

/// Where requests go.
#[derive(Clone, PartialEq, Eq)]
pub enum Environment {
    /// The test environment, `https://apitest.vipps.no` (test keys, the test app).
    Test,
    /// Production, `https://api.vipps.no`.
    Production,
    /// Any other base URL, such as the local sandbox or a mock server in tests.
    Custom(url::Url),
}

impl Environment {
    /// A custom base URL, validated: `http` or `https`, with a host, and no query or fragment.
    pub fn custom(base_url: &str) -> Result<Self, Error> {
        let url = url::Url::parse(base_url)
            .map_err(|e| Error::config("base_url", format!("`{base_url}` is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(Error::config("base_url", format!("`{base_url}` must be an http(s) URL with a host")));
        }
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
            return Err(Error::config("base_url", "a base URL takes no query, fragment or credentials"));
        }
        Ok(Environment::Custom(url))
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> String {
        match self {
            Environment::Test => "https://apitest.vipps.no".to_owned(),
            Environment::Production => "https://api.vipps.no".to_owned(),
            Environment::Custom(url) => url.as_str().trim_end_matches('/').to_owned(),
        }
    }
}

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Environment::Test => f.write_str("Test"),
            Environment::Production => f.write_str("Production"),
            Environment::Custom(url) => write!(f, "Custom({url})"),
        }
    }
}

/// A merchant serial number (MSN): the id of a sales unit, 4 to 10 digits.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MerchantSerialNumber(String);

impl MerchantSerialNumber {
    /// Validates an MSN.
    pub fn new(msn: impl Into<String>) -> Result<Self, Error> {
        let msn = msn.into();
        if !(4..=10).contains(&msn.len()) || !msn.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::invalid_input(format!("merchant serial number `{msn}` must be 4 to 10 digits")));
        }
        Ok(Self(msn))
    }

    /// The MSN as sent in the `Merchant-Serial-Number` header.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for MerchantSerialNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Msn({})", self.0)
    }
}

impl fmt::Display for MerchantSerialNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<&str> for MerchantSerialNumber {
    type Error = Error;
    fn try_from(value: &str) -> Result<Self, Error> {
        Self::new(value)
    }
}

impl TryFrom<u64> for MerchantSerialNumber {
    type Error = Error;
    fn try_from(value: u64) -> Result<Self, Error> {
        Self::new(value.to_string())
    }
}

/// An `Idempotency-Key`: 1 to 40 visible ASCII characters, none of `#`, `?`, `/` or `\`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Validates a caller's key.
    pub fn new(key: impl Into<String>) -> Result<Self, Error> {
        let key = key.into();
        Self::validate(&key)?;
        Ok(Self(key))
    }

    /// A new random key (a UUID, 36 characters).
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    pub(crate) fn validate(key: &str) -> Result<(), Error> {
        if key.is_empty() || key.len() > 40 {
            return Err(Error::invalid_input(format!("Idempotency-Key must be 1 to 40 characters, got {}", key.len())));
        }
        if let Some(c) = key.chars().find(|c| matches!(c, '#' | '?' | '/' | '\\') || !c.is_ascii_graphic()) {
            return Err(Error::invalid_input(format!("Idempotency-Key `{key}` contains the character {c:?}, which is not allowed")));
        }
        Ok(())
    }

    /// The key as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `Vipps-System-*` headers: who is calling. Each value is at most 30 characters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemInfo {
    /// `Vipps-System-Name`.
    pub system_name: Option<String>,
    /// `Vipps-System-Version`.
    pub system_version: Option<String>,
    /// `Vipps-System-Plugin-Name`.
    pub plugin_name: Option<String>,
    /// `Vipps-System-Plugin-Version`.
    pub plugin_version: Option<String>,
}

impl SystemInfo {
    pub(crate) fn validate(&self) -> Result<(), Error> {
        for (field, value) in self.headers() {
            if value.chars().count() > 30 {
                return Err(Error::config(field, format!("must be at most 30 characters, got {}", value.chars().count())));
            }
            if value.is_empty() || !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                return Err(Error::config(field, "must be non-empty printable ASCII"));
            }
        }
        Ok(())
    }

    /// Header name and value of every field that is set.
    pub fn headers(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("Vipps-System-Name", &self.system_name),
            ("Vipps-System-Version", &self.system_version),
            ("Vipps-System-Plugin-Name", &self.plugin_name),
            ("Vipps-System-Plugin-Version", &self.plugin_version),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
    }
}

/// Time limits. `None` means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing a TCP/TLS connection.
    pub connect: Option<Duration>,
    /// One attempt: sending the request and receiving the response, its body included.
    pub attempt: Option<Duration>,
    /// The whole call, all attempts and backoff included.
    pub call: Option<Duration>,
}

impl Timeouts {
    /// A limit of zero would fail every call; `Duration::MAX` (or any huge value) is allowed
    /// and means, in effect, no limit.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        for (field, value) in [("timeouts.connect", self.connect), ("timeouts.attempt", self.attempt), ("timeouts.call", self.call)] {
            if value == Some(Duration::ZERO) {
                return Err(Error::config(field, "must be longer than zero (use None for no limit)"));
            }
        }
        Ok(())
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Some(Duration::from_secs(10)),
            attempt: Some(Duration::from_secs(30)),
            call: Some(Duration::from_secs(90)),
        }
    }
}

/// When and how often a failed attempt is tried again.
///
/// Retried: connection failures and timeouts, 429 (after its `Retry-After`), 502, 503 and
/// 504; only for GET, HEAD, OPTIONS, PUT and DELETE, or requests carrying an
/// `Idempotency-Key`. A POST or PATCH without a key is sent once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included; 1 disables retries.
    pub max_attempts: u32,
    /// Backoff before the first retry; doubled for each later one.
    pub initial_backoff: Duration,
    /// Upper bound of one backoff.
    pub max_backoff: Duration,
    /// Upper bound of a server's `Retry-After` that is honoured; a longer wait is not retried.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self { max_attempts: 1, ..Self::default() }
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.max_attempts == 0 {
            return Err(Error::config("retry_policy", "max_attempts must be at least 1"));
        }
        Ok(())
    }

    /// The backoff before retry number `retry` (1-based): exponential, capped, with jitter
    /// drawn from the upper half of the interval so that waits never collapse to zero.
    /// Saturates instead of overflowing for any durations.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self.initial_backoff.saturating_mul(1u32 << retry.saturating_sub(1).min(16));
        let capped = exp.min(self.max_backoff);
        let factor: f64 = rand::random_range(0.5..=1.0);
        Duration::try_from_secs_f64(capped.as_secs_f64() * factor).map_or(capped, |d| d.min(capped))
    }
}

/// Which token endpoint the runtime uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenEndpoint {
    /// `POST /accesstoken/get`: credentials and subscription key as headers (most APIs).
    #[default]
    AccessTokenGet,
    /// `POST /miami/v1/token`: OAuth 2.0 client credentials with HTTP Basic, no subscription key.
    Miami,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_checked() {
        assert!(IdempotencyKey::new("order-123_abc").is_ok());
        for bad in ["", "a/b", "a?b", "a#b", "a\\b", "with space", &"x".repeat(41)] {
            assert!(matches!(IdempotencyKey::new(bad), Err(Error::InvalidInput { .. })), "{bad:?}");
        }
        let generated = IdempotencyKey::generate();
        assert!(IdempotencyKey::validate(generated.as_str()).is_ok());
        assert_ne!(generated, IdempotencyKey::generate());
    }

    #[test]
    fn merchant_serial_numbers_are_digits() {
        assert_eq!(MerchantSerialNumber::new("123456").unwrap().as_str(), "123456");
        assert!(MerchantSerialNumber::new("12a456").is_err());
        assert!(MerchantSerialNumber::new("123").is_err());
        assert!(MerchantSerialNumber::try_from(654321u64).is_ok());
    }

    #[test]
    fn custom_base_urls_are_validated() {
        assert_eq!(Environment::custom("http://127.0.0.1:8080/").unwrap().base_url(), "http://127.0.0.1:8080");
        for bad in ["not a url", "ftp://x", "http://", "https://h/?q=1", "https://u:p@h"] {
            assert!(matches!(Environment::custom(bad), Err(Error::Config { .. })), "{bad}");
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy { initial_backoff: Duration::from_millis(100), max_backoff: Duration::from_millis(300), ..Default::default() };
        for _ in 0..50 {
            let b1 = p.backoff(1);
            assert!(b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(100));
            let b2 = p.backoff(2);
            assert!(b2 >= Duration::from_millis(100) && b2 <= Duration::from_millis(200));
            assert!(p.backoff(10) <= Duration::from_millis(300));
        }
        let huge = RetryPolicy { initial_backoff: Duration::MAX, max_backoff: Duration::MAX, ..Default::default() };
        assert!(huge.backoff(40) >= Duration::MAX / 4);
    }
}
