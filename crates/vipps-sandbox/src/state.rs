//! The sandbox's shared state: configuration, clock, issued tokens, fault plan, stored
//! idempotent answers, and one store per API.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use tokio::time::Instant;

use crate::{management, order_management, psp, recurring};

/// The credentials the sandbox accepts. Not secrets: anyone can run the sandbox.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`.
    pub client_secret: String,
    /// `Ocp-Apim-Subscription-Key`.
    pub subscription_key: String,
    /// The merchant serial number the seeded merchant has.
    pub merchant_serial_number: String,
}

impl Default for Credentials {
    fn default() -> Self {
        Self {
            client_id: "sandbox-client-id".into(),
            client_secret: "sandbox-client-secret".into(),
            subscription_key: "sandbox-subscription-key".into(),
            merchant_serial_number: "123456".into(),
        }
    }
}

/// The longest token lifetime the sandbox issues (a longer configured one is cut to this).
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(366 * 24 * 3600);

/// How the sandbox behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// Accepted credentials.
    pub credentials: Credentials,
    /// Lifetime of tokens from `/accesstoken/get`.
    pub token_lifetime: Duration,
    /// Lifetime of tokens from `/miami/v1/token`.
    pub miami_token_lifetime: Duration,
    /// Whether test-only endpoints (force-accept, force-approve) are served.
    pub test_mode: bool,
    /// How long a PENDING agreement waits for the user before it is EXPIRED.
    pub agreement_pending_timeout: Duration,
    /// Page size of `GET /recurring/v3/agreements/{id}/charges` before a `Continuation-Token`.
    pub charges_page_size: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            credentials: Credentials::default(),
            token_lifetime: Duration::from_secs(3600),
            miami_token_lifetime: Duration::from_secs(900),
            test_mode: true,
            agreement_pending_timeout: Duration::from_secs(600),
            charges_page_size: 100,
        }
    }
}

/// The fault plan, changed through [`crate::Sandbox::fail_next`] and [`crate::Sandbox::set_latency`].
#[derive(Debug, Default)]
pub struct FaultPlan {
    /// Answer the next `n` API calls with this status.
    pub fail_next: Option<(u32, StatusCode)>,
    /// Added before every API call is handled.
    pub latency: Duration,
}

/// One stored answer to an idempotent request.
#[derive(Debug, Clone)]
pub struct StoredAnswer {
    /// The request body it answered.
    pub request_body: bytes::Bytes,
    /// The answer.
    pub status: StatusCode,
    /// Its content type, if any.
    pub content_type: Option<axum::http::HeaderValue>,
    /// Its body.
    pub body: bytes::Bytes,
}

/// (merchant serial number or `-`, method, path, key).
pub type IdempotencyId = (String, String, String, String);

/// What the sandbox knows of one idempotency key.
#[derive(Debug, Clone)]
pub enum Idempotent {
    /// A request with this key is being handled; it carried this body.
    InFlight(bytes::Bytes),
    /// A request with this key succeeded with this answer.
    Done(StoredAnswer),
}

/// Everything behind the router.
#[derive(Debug)]
pub struct Shared {
    /// Configuration, fixed at start.
    pub config: Config,
    started_wall: DateTime<Utc>,
    started: Instant,
    clock_offset: Mutex<chrono::Duration>,
    /// Issued tokens: when each expires, and which endpoint issued it.
    pub tokens: Mutex<HashMap<String, IssuedToken>>,
    /// The fault plan.
    pub faults: Mutex<FaultPlan>,
    /// Requests with an `Idempotency-Key` by (scope, method, path, key): in progress, or answered.
    pub idempotency: Mutex<HashMap<IdempotencyId, Idempotent>>,
    /// Recurring agreements and charges.
    pub recurring: Mutex<recurring::Store>,
    /// PSP payments.
    pub psp: Mutex<psp::Store>,
    /// Merchants, sales units and product orders.
    pub management: Mutex<management::Store>,
    /// Images, categories and receipts.
    pub order_management: Mutex<order_management::Store>,
    /// API calls handled (token calls included), for benchmarks and tests.
    pub calls: AtomicU64,
}

/// Which endpoint issued a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// `POST /accesstoken/get`: API calls also need the subscription key.
    AccessToken,
    /// `POST /miami/v1/token`: no subscription key needed (one given must still be right).
    Miami,
}

/// One issued token.
#[derive(Debug, Clone, Copy)]
pub struct IssuedToken {
    /// When it stops being accepted, by the sandbox clock (so `advance_clock` expires it too).
    pub expires: DateTime<Utc>,
    /// Where it came from.
    pub kind: TokenKind,
}

/// How far the sandbox clock may move from its start.
pub const MAX_CLOCK_SHIFT: chrono::Duration = chrono::Duration::days(36_525);

/// A clock step the sandbox refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockError(pub &'static str);

impl std::fmt::Display for ClockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for ClockError {}

/// The state handlers receive.
pub type AppState = Arc<Shared>;

/// Locks a store. A poisoned lock (a handler panicked) still gives the data.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// A new state with the seeded merchants.
    pub fn new(config: Config) -> Self {
        let management = management::Store::seeded(&config.credentials.merchant_serial_number);
        Self {
            config,
            started_wall: Utc::now(),
            started: Instant::now(),
            clock_offset: Mutex::new(chrono::Duration::zero()),
            tokens: Mutex::new(HashMap::new()),
            faults: Mutex::new(FaultPlan::default()),
            idempotency: Mutex::new(HashMap::new()),
            recurring: Mutex::new(recurring::Store::default()),
            psp: Mutex::new(psp::Store::default()),
            management: Mutex::new(management),
            order_management: Mutex::new(order_management::Store::default()),
            calls: AtomicU64::new(0),
        }
    }

    /// The sandbox's clock: wall time at start, moved on by tokio time (so paused-time tests
    /// move it) and by [`crate::Sandbox::advance_clock`].
    pub fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(self.started.elapsed()).unwrap_or(MAX_CLOCK_SHIFT);
        let shift = elapsed.checked_add(&lock(&self.clock_offset)).unwrap_or(MAX_CLOCK_SHIFT);
        self.started_wall.checked_add_signed(shift).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// The sandbox's date, in UTC.
    pub fn today(&self) -> NaiveDate {
        self.now().date_naive()
    }

    /// Moves the clock on; `Err` (and no change) for a negative step or one that would take
    /// the clock more than 100 years past the start.
    pub fn advance_clock(&self, by: chrono::Duration) -> Result<DateTime<Utc>, ClockError> {
        if by < chrono::Duration::zero() {
            return Err(ClockError("the clock only moves forward"));
        }
        let mut offset = lock(&self.clock_offset);
        match offset.checked_add(&by).filter(|o| *o <= MAX_CLOCK_SHIFT) {
            Some(next) => *offset = next,
            None => return Err(ClockError("the clock may move at most 100 years from the start")),
        }
        drop(offset);
        Ok(self.now())
    }

    /// A new id with a prefix: `agr_` and 10 random letters and digits, for instance (at most
    /// 15 characters in all, the shortest id limit in the specs). Random rather than counted, so
    /// that an id a caller chose (a charge's `orderId`) cannot be reached by a counter later.
    pub fn id(&self, prefix: &str) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let random = uuid::Uuid::new_v4();
        let tail: String = random.as_bytes()[..10].iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect();
        format!("{prefix}{tail}")
    }

    /// Issues a token valid for `lifetime`.
    pub fn issue_token(&self, lifetime: Duration, kind: TokenKind) -> String {
        let token = format!("sbx.{}.{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let now = self.now();
        let lifetime = chrono::Duration::from_std(lifetime.min(MAX_TOKEN_LIFETIME)).unwrap_or(chrono::Duration::zero());
        let expires = now.checked_add_signed(lifetime).unwrap_or(DateTime::<Utc>::MAX_UTC);
        let mut tokens = lock(&self.tokens);
        // Forget tokens that expired long ago, so a long run does not keep every token.
        if tokens.len() >= 1024 {
            tokens.retain(|_, t| t.expires + chrono::Duration::hours(1) > now);
        }
        tokens.insert(token.clone(), IssuedToken { expires, kind });
        token
    }

    /// The kind of a token issued here that has not expired.
    pub fn valid_token(&self, token: &str) -> Option<TokenKind> {
        let now = self.now();
        lock(&self.tokens).get(token).filter(|t| now < t.expires).map(|t| t.kind)
    }

    /// Whether a token was issued here and has not expired.
    pub fn token_valid(&self, token: &str) -> bool {
        self.valid_token(token).is_some()
    }

    /// Expires every issued token now.
    pub fn expire_tokens(&self) {
        let now = self.now();
        for issued in lock(&self.tokens).values_mut() {
            issued.expires = now;
        }
    }
}
