//! The sandbox's shared state: configuration, clock, issued tokens, fault plan, stored
//! idempotent answers, and one store per API.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// Everything behind the router.
#[derive(Debug)]
pub struct Shared {
    /// Configuration, fixed at start.
    pub config: Config,
    started_wall: DateTime<Utc>,
    started: Instant,
    clock_offset: Mutex<chrono::Duration>,
    next_id: AtomicU64,
    /// Issued tokens: when each expires, and which endpoint issued it.
    pub tokens: Mutex<HashMap<String, IssuedToken>>,
    /// The fault plan.
    pub faults: Mutex<FaultPlan>,
    /// Stored answers by (scope, method, path, key).
    pub idempotency: Mutex<HashMap<(String, String, String, String), StoredAnswer>>,
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
    /// When it stops being accepted.
    pub expires: Instant,
    /// Where it came from.
    pub kind: TokenKind,
}

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
            next_id: AtomicU64::new(1),
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
        let elapsed = chrono::Duration::from_std(self.started.elapsed()).unwrap_or_default();
        self.started_wall + elapsed + *lock(&self.clock_offset)
    }

    /// The sandbox's date, in UTC.
    pub fn today(&self) -> NaiveDate {
        self.now().date_naive()
    }

    /// Moves the clock on.
    pub fn advance_clock(&self, by: chrono::Duration) {
        *lock(&self.clock_offset) += by;
    }

    /// A new id with a prefix, unique in this sandbox: `agr_` + 7 characters, for instance.
    pub fn id(&self, prefix: &str) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}{n:07}")
    }

    /// Issues a token valid for `lifetime`.
    pub fn issue_token(&self, lifetime: Duration, kind: TokenKind) -> String {
        let token = format!("sbx.{}.{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        lock(&self.tokens).insert(token.clone(), IssuedToken { expires: Instant::now() + lifetime, kind });
        token
    }

    /// The kind of a token issued here that has not expired.
    pub fn valid_token(&self, token: &str) -> Option<TokenKind> {
        lock(&self.tokens).get(token).filter(|t| Instant::now() < t.expires).map(|t| t.kind)
    }

    /// Whether a token was issued here and has not expired.
    pub fn token_valid(&self, token: &str) -> bool {
        self.valid_token(token).is_some()
    }

    /// Expires every issued token now.
    pub fn expire_tokens(&self) {
        let now = Instant::now();
        for issued in lock(&self.tokens).values_mut() {
            issued.expires = now;
        }
    }
}
