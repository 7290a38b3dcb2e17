//! Receiving webhooks: verifying a delivery from the Webhooks API and reading its event.
//!
//! A delivery is an HTTP `POST` to the URL a webhook was registered with. It carries
//! `x-ms-date`, `x-ms-content-sha256` (the base64 SHA-256 of the body) and
//! `Authorization: HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=…`,
//! where the signature is the base64 HMAC-SHA256, keyed with the UTF-8 bytes of the secret the
//! registration returned, of
//!
//! ```text
//! {METHOD}\n{path and query}\n{x-ms-date};{Host};{x-ms-content-sha256}
//! ```
//!
//! ("Request authentication" in the Webhooks API guide). [`Verifier`] checks, in this order:
//! that each of the four headers is present exactly once; that `x-ms-date` is an HTTP date;
//! that `Authorization` has that form; that the body's hash equals `x-ms-content-sha256`; the
//! signature, compared in constant time; and last that `x-ms-date` is within the tolerance
//! (five minutes by default) of the current time, so [`WebhookError::Stale`] means "signed
//! correctly, but old". Each failure is its own [`WebhookError`] variant.
//!
//! The path and query must be the ones the sender used, as the request line carries them. A
//! proxy that rewrites the path, or a router that strips a prefix, must hand over the original
//! (the `axum` extractor uses axum's `OriginalUri`). The `Host` header is taken as received.
//!
//! ```
//! use std::time::SystemTime;
//! use vipps_core::webhooks::{self, Delivery, Event, Verifier};
//!
//! # fn main() -> Result<(), webhooks::WebhookError> {
//! let secret = "the secret from the registration";
//! let body = br#"{"msn":"123456","reference":"order-12345678","pspReference":"7686f7788898767977",
//!   "name":"AUTHORIZED","amount":{"currency":"NOK","value":1000},
//!   "timestamp":"2024-12-31T00:00:00Z","idempotencyKey":null,"success":true}"#;
//! // What Vipps MobilePay would send (the sandbox signs its deliveries the same way):
//! let signed = webhooks::sign(&secret.into(), "POST", "/hooks/vipps?shop=1", "shop.example", SystemTime::now(), body);
//!
//! // The receiver: method, path and query, headers and the raw body.
//! let delivery = Delivery::new("POST", "/hooks/vipps?shop=1", body)
//!     .header("Host", "shop.example")
//!     .header("x-ms-date", &signed.x_ms_date)
//!     .header("x-ms-content-sha256", &signed.x_ms_content_sha256)
//!     .header("Authorization", &signed.authorization);
//! let verifier = Verifier::new(secret);
//! match verifier.verify_event(&delivery)? {
//!     Event::Payment(payment) => assert_eq!(payment.reference, "order-12345678"),
//!     other => panic!("unexpected {other:?}"),
//! }
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// How far `x-ms-date` may be from the current time, either way, unless
/// [`Verifier::with_tolerance`] says otherwise: five minutes.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// The `SignedHeaders` value of the documented scheme, the only one accepted.
pub const SIGNED_HEADERS: &str = "x-ms-date;host;x-ms-content-sha256";

/// The longest `Authorization` value looked at; a longer one is
/// [`WebhookError::MalformedAuthorization`]. A genuine one is about 110 bytes.
pub const MAX_AUTHORIZATION_LEN: usize = 1024;

/// The names of the headers a delivery is verified with, in lower case.
pub mod header {
    /// `Host`.
    pub const HOST: &str = "host";
    /// `x-ms-date`: when the delivery was signed, as an HTTP date.
    pub const X_MS_DATE: &str = "x-ms-date";
    /// `x-ms-content-sha256`: the base64 SHA-256 of the body.
    pub const X_MS_CONTENT_SHA256: &str = "x-ms-content-sha256";
    /// `Authorization`: the scheme, the signed headers and the signature.
    pub const AUTHORIZATION: &str = "authorization";
}

/// Why a delivery was not accepted. No variant holds or shows the secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// A header the signature needs is absent (its lower-case name).
    #[error("webhook delivery has no `{0}` header")]
    MissingHeader(&'static str),
    /// A header the signature needs is present more than once (its lower-case name).
    #[error("webhook delivery has more than one `{0}` header")]
    DuplicateHeader(&'static str),
    /// `x-ms-date` is not an HTTP date.
    #[error("webhook `x-ms-date` is not an HTTP date")]
    BadDate,
    /// The delivery is signed correctly, but `x-ms-date` is older than the tolerance.
    #[error("webhook `x-ms-date` is {age:?} old, more than the tolerance allows")]
    Stale {
        /// How old `x-ms-date` is.
        age: Duration,
    },
    /// The delivery is signed correctly, but `x-ms-date` is further ahead than the tolerance.
    #[error("webhook `x-ms-date` is {ahead:?} in the future, more than the tolerance allows")]
    FromTheFuture {
        /// How far ahead of the current time `x-ms-date` is.
        ahead: Duration,
    },
    /// The body's SHA-256 is not the one `x-ms-content-sha256` gives.
    #[error("webhook body does not match its `x-ms-content-sha256`")]
    ContentHashMismatch,
    /// `Authorization` is not `HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=<base64 of 32 bytes>`.
    #[error("webhook `Authorization` is not in the documented HMAC-SHA256 form")]
    MalformedAuthorization,
    /// The signature is not the one the secret gives for this method, path and query, date,
    /// host and content hash.
    #[error("webhook signature does not match (wrong secret, or the method, path, query, host or date differ from what was signed)")]
    SignatureMismatch,
    /// The delivery verified, but its body is not JSON, or not a well-formed event of a known
    /// kind.
    #[error("webhook body is not a valid event")]
    Payload(#[source] serde_json::Error),
}

impl WebhookError {
    /// Whether the delivery failed verification (as opposed to verifying and then not
    /// parsing, [`WebhookError::Payload`]). A receiver answers these with 401.
    pub fn is_authentication(&self) -> bool {
        !matches!(self, WebhookError::Payload(_))
    }
}

/// The headers [`sign`] produces for a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// The `x-ms-date` value.
    pub x_ms_date: String,
    /// The `x-ms-content-sha256` value.
    pub x_ms_content_sha256: String,
    /// The `Authorization` value.
    pub authorization: String,
}

impl SignedHeaders {
    /// The three headers as (lower-case name, value) pairs, to add to a request.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            (header::X_MS_DATE, self.x_ms_date.as_str()),
            (header::X_MS_CONTENT_SHA256, self.x_ms_content_sha256.as_str()),
            (header::AUTHORIZATION, self.authorization.as_str()),
        ]
        .into_iter()
    }
}

/// Signs a delivery as the Webhooks API does: returns the `x-ms-date` (from `date`, to the
/// second), `x-ms-content-sha256` and `Authorization` headers for a request with this method,
/// path and query, `Host` and body. The request must also carry `Host: {host}`.
pub fn sign(
    secret: &SecretString,
    method: &str,
    path_and_query: &str,
    host: &str,
    date: SystemTime,
    body: &[u8],
) -> SignedHeaders {
    let x_ms_date = httpdate::fmt_http_date(date);
    let x_ms_content_sha256 = content_hash(body);
    let mut mac = keyed(secret);
    feed(
        &mut mac,
        method.as_bytes(),
        path_and_query.as_bytes(),
        x_ms_date.as_bytes(),
        host.as_bytes(),
        x_ms_content_sha256.as_bytes(),
    );
    let signature = BASE64.encode(mac.finalize().into_bytes());
    SignedHeaders {
        authorization: format!("HMAC-SHA256 SignedHeaders={SIGNED_HEADERS}&Signature={signature}"),
        x_ms_date,
        x_ms_content_sha256,
    }
}

fn content_hash(body: &[u8]) -> String {
    BASE64.encode(Sha256::digest(body))
}

fn keyed(secret: &SecretString) -> HmacSha256 {
    match HmacSha256::new_from_slice(secret.expose_secret().as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
        Err(_) => unreachable!("HMAC-SHA256 accepts keys of any length"),
    }
}

/// Feeds the string-to-sign to the MAC without building it.
fn feed(mac: &mut HmacSha256, method: &[u8], path_and_query: &[u8], date: &[u8], host: &[u8], content_hash: &[u8]) {
    for part in [
        method,
        b"\n",
        path_and_query,
        b"\n",
        date,
        b";",
        host,
        b";",
        content_hash,
    ] {
        mac.update(part);
    }
}

const HOST_BIT: u8 = 1;
const DATE_BIT: u8 = 2;
const HASH_BIT: u8 = 4;
const AUTH_BIT: u8 = 8;

/// One delivery as received: method, path and query, the headers the signature covers, and
/// the raw body. Borrows everything; build it with [`Delivery::new`] and [`Delivery::header`],
/// or from an `http::Request` with [`Delivery::from_http`].
#[derive(Clone, Copy)]
pub struct Delivery<'a> {
    method: &'a str,
    path_and_query: &'a str,
    body: &'a [u8],
    host: Option<&'a [u8]>,
    date: Option<&'a [u8]>,
    content_sha256: Option<&'a [u8]>,
    authorization: Option<&'a [u8]>,
    duplicates: u8,
}

impl fmt::Debug for Delivery<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn text(v: Option<&[u8]>) -> Option<std::borrow::Cow<'_, str>> {
            v.map(String::from_utf8_lossy)
        }
        f.debug_struct("Delivery")
            .field("method", &self.method)
            .field("path_and_query", &self.path_and_query)
            .field("host", &text(self.host))
            .field("x_ms_date", &text(self.date))
            .field("x_ms_content_sha256", &text(self.content_sha256))
            .field("authorization", &text(self.authorization))
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl<'a> Delivery<'a> {
    /// A delivery with this method (`"POST"`), path and query as on the request line
    /// (`"/hooks/vipps?shop=1"`) and raw body, and no headers yet.
    pub fn new(method: &'a str, path_and_query: &'a str, body: &'a [u8]) -> Self {
        Delivery {
            method,
            path_and_query,
            body,
            host: None,
            date: None,
            content_sha256: None,
            authorization: None,
            duplicates: 0,
        }
    }

    /// Adds a request header. The name is matched without regard to case; headers the
    /// signature does not cover are ignored, so every header of a request may be passed. A
    /// covered header given twice makes verification fail with
    /// [`WebhookError::DuplicateHeader`].
    pub fn header<V: AsRef<[u8]> + ?Sized>(mut self, name: &str, value: &'a V) -> Self {
        let (slot, bit) = if name.eq_ignore_ascii_case(header::HOST) {
            (&mut self.host, HOST_BIT)
        } else if name.eq_ignore_ascii_case(header::X_MS_DATE) {
            (&mut self.date, DATE_BIT)
        } else if name.eq_ignore_ascii_case(header::X_MS_CONTENT_SHA256) {
            (&mut self.content_sha256, HASH_BIT)
        } else if name.eq_ignore_ascii_case(header::AUTHORIZATION) {
            (&mut self.authorization, AUTH_BIT)
        } else {
            return self;
        };
        if slot.replace(value.as_ref()).is_some() {
            self.duplicates |= bit;
        }
        self
    }

    /// The delivery an `http::Request` carries: its method, the path and query of its URI,
    /// its headers and its body. Without a `Host` header (HTTP/2), the URI's authority stands
    /// in for it.
    pub fn from_http<B: AsRef<[u8]>>(request: &'a http::Request<B>) -> Self {
        Self::from_parts(
            request.method(),
            request.uri(),
            request.headers(),
            request.body().as_ref(),
        )
    }

    /// Like [`Delivery::from_http`], from the parts of a request.
    pub fn from_parts(
        method: &'a http::Method,
        uri: &'a http::Uri,
        headers: &'a http::HeaderMap,
        body: &'a [u8],
    ) -> Self {
        let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut delivery = Delivery::new(method.as_str(), path_and_query, body);
        for (name, value) in headers {
            delivery = delivery.header(name.as_str(), value);
        }
        if delivery.host.is_none() {
            if let Some(authority) = uri.authority() {
                delivery.host = Some(authority.as_str().as_bytes());
            }
        }
        delivery
    }

    /// The raw body.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    fn required(&self, value: Option<&'a [u8]>, bit: u8, name: &'static str) -> Result<&'a [u8], WebhookError> {
        if self.duplicates & bit != 0 {
            return Err(WebhookError::DuplicateHeader(name));
        }
        value.ok_or(WebhookError::MissingHeader(name))
    }
}

/// Checks deliveries against one webhook's secret. Cheap to clone; its `Debug` does not show
/// the secret.
#[derive(Clone)]
pub struct Verifier {
    secret: SecretString,
    tolerance: Duration,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("secret", &"[REDACTED]")
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

impl Verifier {
    /// A verifier for the webhook registered with this secret (the `secret` of the
    /// registration's response), with the [`DEFAULT_TOLERANCE`].
    pub fn new(secret: impl Into<SecretString>) -> Self {
        Verifier {
            secret: secret.into(),
            tolerance: DEFAULT_TOLERANCE,
        }
    }

    /// Sets how far `x-ms-date` may be from the current time, either way.
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// How far `x-ms-date` may be from the current time, either way.
    pub fn tolerance(&self) -> Duration {
        self.tolerance
    }

    /// Verifies a delivery against the system clock.
    pub fn verify(&self, delivery: &Delivery<'_>) -> Result<(), WebhookError> {
        self.verify_at(delivery, SystemTime::now())
    }

    /// Verifies a delivery as if the current time were `now`.
    pub fn verify_at(&self, delivery: &Delivery<'_>, now: SystemTime) -> Result<(), WebhookError> {
        let host = delivery.required(delivery.host, HOST_BIT, header::HOST)?;
        let date = delivery.required(delivery.date, DATE_BIT, header::X_MS_DATE)?;
        let content_sha256 = delivery.required(delivery.content_sha256, HASH_BIT, header::X_MS_CONTENT_SHA256)?;
        let authorization = delivery.required(delivery.authorization, AUTH_BIT, header::AUTHORIZATION)?;

        let sent = parse_date(date)?;
        let signature = parse_authorization(authorization)?;
        if content_hash(delivery.body).as_bytes() != content_sha256 {
            return Err(WebhookError::ContentHashMismatch);
        }
        let mut mac = keyed(&self.secret);
        feed(
            &mut mac,
            delivery.method.as_bytes(),
            delivery.path_and_query.as_bytes(),
            date,
            host,
            content_sha256,
        );
        mac.verify_slice(&signature)
            .map_err(|_| WebhookError::SignatureMismatch)?;

        match now.duration_since(sent) {
            Ok(age) if age > self.tolerance => Err(WebhookError::Stale { age }),
            Ok(_) => Ok(()),
            Err(early) if early.duration() > self.tolerance => Err(WebhookError::FromTheFuture {
                ahead: early.duration(),
            }),
            Err(_) => Ok(()),
        }
    }

    /// Verifies a delivery against the system clock and parses its body as an [`Event`].
    pub fn verify_event(&self, delivery: &Delivery<'_>) -> Result<Event, WebhookError> {
        self.verify_event_at(delivery, SystemTime::now())
    }

    /// Verifies a delivery as if the current time were `now` and parses its body as an
    /// [`Event`].
    pub fn verify_event_at(&self, delivery: &Delivery<'_>, now: SystemTime) -> Result<Event, WebhookError> {
        self.verify_at(delivery, now)?;
        Event::from_slice(delivery.body)
    }

    /// Verifies the delivery an `http::Request` carries (see [`Delivery::from_http`]) against
    /// the system clock.
    pub fn verify_http<B: AsRef<[u8]>>(&self, request: &http::Request<B>) -> Result<(), WebhookError> {
        self.verify(&Delivery::from_http(request))
    }

    /// Verifies the delivery an `http::Request` carries against the system clock and parses
    /// its body as an [`Event`].
    pub fn verify_http_event<B: AsRef<[u8]>>(&self, request: &http::Request<B>) -> Result<Event, WebhookError> {
        self.verify_event(&Delivery::from_http(request))
    }
}

fn parse_date(value: &[u8]) -> Result<SystemTime, WebhookError> {
    // A genuine HTTP date is 29 bytes; anything much longer is not one.
    if value.len() > 64 {
        return Err(WebhookError::BadDate);
    }
    let text = std::str::from_utf8(value).map_err(|_| WebhookError::BadDate)?;
    httpdate::parse_http_date(text.trim()).map_err(|_| WebhookError::BadDate)
}

/// The 32 signature bytes of an `Authorization` value in the documented form.
fn parse_authorization(value: &[u8]) -> Result<Vec<u8>, WebhookError> {
    let malformed = || WebhookError::MalformedAuthorization;
    if value.len() > MAX_AUTHORIZATION_LEN {
        return Err(malformed());
    }
    let text = std::str::from_utf8(value).map_err(|_| malformed())?.trim();
    let (scheme, params) = text.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("HMAC-SHA256") {
        return Err(malformed());
    }
    let (mut signed_headers, mut signature) = (None, None);
    for param in params.trim_start().split('&') {
        let (name, value) = param.split_once('=').ok_or_else(malformed)?;
        let slot = match name {
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => return Err(malformed()),
        };
        if slot.replace(value).is_some() {
            return Err(malformed());
        }
    }
    if !signed_headers.is_some_and(|h| h.eq_ignore_ascii_case(SIGNED_HEADERS)) {
        return Err(malformed());
    }
    let signature = BASE64
        .decode(signature.ok_or_else(malformed)?)
        .map_err(|_| malformed())?;
    if signature.len() != 32 {
        return Err(malformed());
    }
    Ok(signature)
}

// ---------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------

macro_rules! event_names {
    ($($variant:ident => $name:literal, $doc:literal;)*) => {
        /// The event type of a webhook registration and delivery, as the Webhooks API guide
        /// lists them for ePayment and Recurring. Any other name is kept as
        /// [`EventName::Unknown`], never rejected; it serializes back to the same string.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum EventName {
            $(#[doc = $doc] $variant,)*
            /// An event type this version does not know, as given.
            Unknown(String),
        }

        impl EventName {
            /// Every event type this version knows.
            pub const KNOWN: &'static [EventName] = &[$(EventName::$variant),*];

            /// The event type as the API spells it, e.g. `epayments.payment.authorized.v1`.
            pub fn as_str(&self) -> &str {
                match self {
                    $(EventName::$variant => $name,)*
                    EventName::Unknown(name) => name,
                }
            }
        }

        impl From<&str> for EventName {
            fn from(name: &str) -> Self {
                match name {
                    $($name => EventName::$variant,)*
                    other => EventName::Unknown(other.to_owned()),
                }
            }
        }
    };
}

event_names! {
    PaymentCreated => "epayments.payment.created.v1", "`epayments.payment.created.v1`: a payment was created.";
    PaymentAborted => "epayments.payment.aborted.v1", "`epayments.payment.aborted.v1`: the user aborted the payment.";
    PaymentExpired => "epayments.payment.expired.v1", "`epayments.payment.expired.v1`: the user did not act in time.";
    PaymentCancelled => "epayments.payment.cancelled.v1", "`epayments.payment.cancelled.v1`: the merchant cancelled the payment.";
    PaymentCaptured => "epayments.payment.captured.v1", "`epayments.payment.captured.v1`: an amount was captured.";
    PaymentRefunded => "epayments.payment.refunded.v1", "`epayments.payment.refunded.v1`: an amount was refunded.";
    PaymentAuthorized => "epayments.payment.authorized.v1", "`epayments.payment.authorized.v1`: the user approved the payment.";
    PaymentTerminated => "epayments.payment.terminated.v1", "`epayments.payment.terminated.v1`: the payment was terminated.";
    AgreementActivated => "recurring.agreement-activated.v1", "`recurring.agreement-activated.v1`: the user accepted the agreement.";
    AgreementRejected => "recurring.agreement-rejected.v1", "`recurring.agreement-rejected.v1`: the user rejected the agreement.";
    AgreementStopped => "recurring.agreement-stopped.v1", "`recurring.agreement-stopped.v1`: the agreement was stopped.";
    AgreementExpired => "recurring.agreement-expired.v1", "`recurring.agreement-expired.v1`: the agreement was not accepted in time.";
    ChargeReserved => "recurring.charge-reserved.v1", "`recurring.charge-reserved.v1`: a charge was reserved.";
    ChargeCaptured => "recurring.charge-captured.v1", "`recurring.charge-captured.v1`: a charge was captured.";
    ChargeCanceled => "recurring.charge-canceled.v1", "`recurring.charge-canceled.v1` (so spelled): a charge was cancelled.";
    ChargeRefunded => "recurring.charge-refunded.v1", "`recurring.charge-refunded.v1`: a charge was refunded.";
    ChargeFailed => "recurring.charge-failed.v1", "`recurring.charge-failed.v1`: a charge failed.";
    ChargeCreationFailed => "recurring.charge-creation-failed.v1", "`recurring.charge-creation-failed.v1`: an asynchronously created charge was not created.";
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventName {
    type Err = std::convert::Infallible;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Ok(EventName::from(name))
    }
}

impl Serialize for EventName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<str>::deserialize(deserializer)?;
        Ok(EventName::from(name.as_ref()))
    }
}

/// The `name` of an ePayment event. Any other value is kept as [`PaymentEventName::Unknown`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PaymentEventName {
    /// `CREATED`.
    Created,
    /// `ABORTED`.
    Aborted,
    /// `EXPIRED`.
    Expired,
    /// `CANCELLED`.
    Cancelled,
    /// `CAPTURED`.
    Captured,
    /// `REFUNDED`.
    Refunded,
    /// `AUTHORIZED`.
    Authorized,
    /// `TERMINATED`.
    Terminated,
    /// Another value, as given.
    Unknown(String),
}

impl PaymentEventName {
    /// The value as the API spells it, e.g. `AUTHORIZED`.
    pub fn as_str(&self) -> &str {
        match self {
            PaymentEventName::Created => "CREATED",
            PaymentEventName::Aborted => "ABORTED",
            PaymentEventName::Expired => "EXPIRED",
            PaymentEventName::Cancelled => "CANCELLED",
            PaymentEventName::Captured => "CAPTURED",
            PaymentEventName::Refunded => "REFUNDED",
            PaymentEventName::Authorized => "AUTHORIZED",
            PaymentEventName::Terminated => "TERMINATED",
            PaymentEventName::Unknown(name) => name,
        }
    }

    /// The event type this name is delivered under (`AUTHORIZED` →
    /// `epayments.payment.authorized.v1`). An ePayment body does not carry its event type;
    /// for an unknown name this follows the same pattern.
    pub fn event_name(&self) -> EventName {
        match self {
            PaymentEventName::Created => EventName::PaymentCreated,
            PaymentEventName::Aborted => EventName::PaymentAborted,
            PaymentEventName::Expired => EventName::PaymentExpired,
            PaymentEventName::Cancelled => EventName::PaymentCancelled,
            PaymentEventName::Captured => EventName::PaymentCaptured,
            PaymentEventName::Refunded => EventName::PaymentRefunded,
            PaymentEventName::Authorized => EventName::PaymentAuthorized,
            PaymentEventName::Terminated => EventName::PaymentTerminated,
            PaymentEventName::Unknown(name) => {
                EventName::Unknown(format!("epayments.payment.{}.v1", name.to_ascii_lowercase()))
            }
        }
    }
}

impl From<&str> for PaymentEventName {
    fn from(name: &str) -> Self {
        match name {
            "CREATED" => PaymentEventName::Created,
            "ABORTED" => PaymentEventName::Aborted,
            "EXPIRED" => PaymentEventName::Expired,
            "CANCELLED" => PaymentEventName::Cancelled,
            "CAPTURED" => PaymentEventName::Captured,
            "REFUNDED" => PaymentEventName::Refunded,
            "AUTHORIZED" => PaymentEventName::Authorized,
            "TERMINATED" => PaymentEventName::Terminated,
            other => PaymentEventName::Unknown(other.to_owned()),
        }
    }
}

impl Serialize for PaymentEventName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PaymentEventName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<str>::deserialize(deserializer)?;
        Ok(PaymentEventName::from(name.as_ref()))
    }
}

/// An amount in minor units (øre, cents) and its currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amount {
    /// `NOK`, `DKK` or `EUR`.
    pub currency: String,
    /// The amount in minor units: 1000 is 10.00 NOK.
    pub value: i64,
}

/// The body of an ePayment event (`epayments.payment.*.v1`). Fields this version does not
/// know are kept in `other`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentEvent {
    /// The merchant serial number of the sales unit.
    pub msn: String,
    /// The merchant's reference of the payment.
    pub reference: String,
    /// Vipps MobilePay's reference of this payment operation.
    pub psp_reference: String,
    /// What happened.
    pub name: PaymentEventName,
    /// The amount of this operation.
    pub amount: Amount,
    /// When it happened (RFC 3339).
    pub timestamp: String,
    /// The idempotency key of the request that caused it, if any.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// Whether the operation succeeded.
    pub success: bool,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// The body of a Recurring agreement event (`recurring.agreement-*.v1`). Fields this version
/// does not know are kept in `other`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgreementEvent {
    /// The agreement's id (`agr_…`).
    pub agreement_id: String,
    /// The event type.
    pub event_type: EventName,
    /// When it happened (RFC 3339).
    pub occurred: String,
    /// The agreement's UUID, when given.
    #[serde(default, rename = "agreementUUID")]
    pub agreement_uuid: Option<String>,
    /// The merchant's external id of the agreement, when given.
    #[serde(default)]
    pub agreement_external_id: Option<String>,
    /// Who caused it (`MERCHANT`, `USER`, …), when given.
    #[serde(default)]
    pub actor: Option<String>,
    /// The merchant serial number, when given.
    #[serde(default)]
    pub msn: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// The body of a Recurring charge event (`recurring.charge-*.v1`). Fields this version does
/// not know are kept in `other`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargeEvent {
    /// The agreement the charge belongs to.
    pub agreement_id: String,
    /// The charge's id (`chr-…`).
    pub charge_id: String,
    /// The event type.
    pub event_type: EventName,
    /// When it happened (RFC 3339).
    pub occurred: String,
    /// The merchant's external id of the charge, when given.
    #[serde(default)]
    pub charge_external_id: Option<String>,
    /// The id of the payment operation this event is about, when given.
    #[serde(default)]
    pub transaction_id: Option<String>,
    /// The charge's amount in minor units, when given.
    #[serde(default)]
    pub amount: Option<i64>,
    /// The currency, when given.
    #[serde(default)]
    pub currency: Option<String>,
    /// `RECURRING`, `INITIAL` or `UNSCHEDULED`, when given.
    #[serde(default)]
    pub charge_type: Option<String>,
    /// How much has been captured, when given.
    #[serde(default)]
    pub amount_captured: Option<i64>,
    /// How much has been cancelled, when given.
    #[serde(default)]
    pub amount_canceled: Option<i64>,
    /// How much has been refunded, when given.
    #[serde(default)]
    pub amount_refunded: Option<i64>,
    /// Why the charge failed, when it did.
    #[serde(default)]
    pub failure_reason: Option<String>,
    /// The merchant serial number, when given.
    #[serde(default)]
    pub msn: Option<String>,
    /// Fields this version does not know (such as `failureCode`).
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// A delivered event, read from its body.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// An ePayment event: the body has `pspReference` and `name`.
    Payment(PaymentEvent),
    /// A Recurring agreement event: `eventType` starts with `recurring.agreement-`.
    Agreement(AgreementEvent),
    /// A Recurring charge event: `eventType` starts with `recurring.charge-`.
    Charge(ChargeEvent),
    /// Any other JSON body, kept whole.
    Unknown(serde_json::Value),
}

impl Event {
    /// Reads an event from a body. A body of a known kind that lacks one of its required
    /// fields is a [`WebhookError::Payload`]; a body of no known kind is [`Event::Unknown`].
    pub fn from_slice(body: &[u8]) -> Result<Event, WebhookError> {
        let value: serde_json::Value = serde_json::from_slice(body).map_err(WebhookError::Payload)?;
        let kind = match value.get("eventType").and_then(|t| t.as_str()) {
            Some(t) if t.starts_with("recurring.agreement-") => 1,
            Some(t) if t.starts_with("recurring.charge-") => 2,
            Some(_) => 0,
            None if value.get("pspReference").is_some() && value.get("name").is_some() => 3,
            None => 0,
        };
        let event = match kind {
            1 => Event::Agreement(serde_json::from_value(value).map_err(WebhookError::Payload)?),
            2 => Event::Charge(serde_json::from_value(value).map_err(WebhookError::Payload)?),
            3 => Event::Payment(serde_json::from_value(value).map_err(WebhookError::Payload)?),
            _ => Event::Unknown(value),
        };
        Ok(event)
    }

    /// The event type: Recurring's `eventType`, the one an ePayment `name` is delivered
    /// under, or an unknown body's `eventType` if it has one.
    pub fn name(&self) -> Option<EventName> {
        match self {
            Event::Payment(e) => Some(e.name.event_name()),
            Event::Agreement(e) => Some(e.event_type.clone()),
            Event::Charge(e) => Some(e.event_type.clone()),
            Event::Unknown(value) => value.get("eventType").and_then(|t| t.as_str()).map(EventName::from),
        }
    }
}

// ---------------------------------------------------------------------------------------
// axum
// ---------------------------------------------------------------------------------------

#[cfg(feature = "axum")]
pub use self::axum_extractor::{VerifiedWebhook, WebhookRejection};

#[cfg(feature = "axum")]
mod axum_extractor {
    use super::{Delivery, Event, Verifier, WebhookError};
    use axum::body::Bytes;
    use axum::extract::{FromRef, FromRequest, OriginalUri, Request};
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};

    /// An axum extractor: the delivery verified with the state's [`Verifier`] (through
    /// `FromRef`) against the system clock, and its event. Reads the body within axum's body
    /// limit and uses `OriginalUri`, so it works in nested routers. Must be the last
    /// extractor of a handler, as it takes the body.
    ///
    /// ```
    /// use axum::{routing::post, Router};
    /// use vipps_core::webhooks::{Event, VerifiedWebhook, Verifier};
    ///
    /// async fn receive(VerifiedWebhook(event): VerifiedWebhook) {
    ///     if let Event::Payment(payment) = event {
    ///         println!("{} is {}", payment.reference, payment.name.as_str());
    ///     }
    /// }
    /// let app: Router = Router::new().route("/hooks/vipps", post(receive)).with_state(Verifier::new("secret"));
    /// # let _ = app;
    /// ```
    #[derive(Debug, Clone)]
    pub struct VerifiedWebhook(pub Event);

    /// Why [`VerifiedWebhook`] refused a request. As a response: 401 with a short text for a
    /// delivery that failed verification, 400 for one whose body is not a valid event, and
    /// axum's own answer when the body could not be read. The reason goes to `tracing`, not to
    /// the sender.
    #[derive(Debug)]
    pub enum WebhookRejection {
        /// The body could not be read (too large, broken).
        Body(axum::extract::rejection::BytesRejection),
        /// The delivery failed verification or parsing.
        Invalid(WebhookError),
    }

    impl IntoResponse for WebhookRejection {
        fn into_response(self) -> Response {
            match self {
                WebhookRejection::Body(rejection) => rejection.into_response(),
                WebhookRejection::Invalid(error) => {
                    tracing::warn!(%error, "webhook delivery rejected");
                    if error.is_authentication() {
                        (StatusCode::UNAUTHORIZED, "webhook verification failed").into_response()
                    } else {
                        (StatusCode::BAD_REQUEST, "webhook body is not a valid event").into_response()
                    }
                }
            }
        }
    }

    impl<S> FromRequest<S> for VerifiedWebhook
    where
        Verifier: FromRef<S>,
        S: Send + Sync,
    {
        type Rejection = WebhookRejection;

        async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
            let verifier = Verifier::from_ref(state);
            let method = req.method().clone();
            let uri = match req.extensions().get::<OriginalUri>() {
                Some(OriginalUri(uri)) => uri.clone(),
                None => req.uri().clone(),
            };
            let headers = req.headers().clone();
            let body = Bytes::from_request(req, state).await.map_err(WebhookRejection::Body)?;
            let delivery = Delivery::from_parts(&method, &uri, &headers, &body);
            verifier
                .verify_event(&delivery)
                .map(VerifiedWebhook)
                .map_err(WebhookRejection::Invalid)
        }
    }
}
