//! The sandbox's shared state: configuration, clock, issued tokens, fault plan, stored
//! idempotent answers, and one store per API.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use tokio::time::Instant;

use crate::{checkout, delivery, epayment, management, order_management, psp, qr, recurring, webhooks};

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
    /// The sandbox's own base URL (`http://127.0.0.1:8080`): the links it hands out (the PSP
    /// `vippsRedirectUrl`, the Management `prefillUrl`) start with it, and it is the one web
    /// origin the `/_sandbox/` controls accept. `None` means the address it was bound to
    /// ([`crate::SandboxBuilder::start`] fills it in), or `http://localhost` for a bare router.
    pub base_url: Option<String>,
    /// How many idempotent answers are kept at most ([`IDEMPOTENCY_CAPACITY`]); the oldest go first.
    pub idempotency_capacity: usize,
    /// How long an ePayment payment waits for the customer before it is EXPIRED, unless
    /// created with `expiresAt`.
    pub epayment_expiry: Duration,
    /// How long a failed webhook delivery waits before it is tried again (doubled each time).
    pub webhook_retry_delay: Duration,
    /// How many ledgers or ledger entries one Report API answer holds before its cursor.
    pub report_page_size: usize,
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
            base_url: None,
            idempotency_capacity: IDEMPOTENCY_CAPACITY,
            epayment_expiry: Duration::from_secs(300),
            webhook_retry_delay: Duration::from_secs(1),
            report_page_size: 100,
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

/// How long an idempotent answer is kept, by the sandbox clock: 24 hours. After that the key
/// may be used again, for any request.
pub const IDEMPOTENCY_RETENTION: chrono::Duration = chrono::Duration::hours(24);

/// How many idempotent answers are kept at most by default (10,000); the oldest is dropped
/// first. See [`Config::idempotency_capacity`].
pub const IDEMPOTENCY_CAPACITY: usize = 10_000;

/// How many bytes of idempotent answers (bodies and headers) are kept at most: 64 MiB; the
/// oldest answers are dropped first.
pub const IDEMPOTENCY_MAX_BYTES: usize = 64 * 1024 * 1024;

/// SHA-256 of what an idempotent request asked for beyond its key: query and body.
pub type Fingerprint = [u8; 32];

/// One stored answer to an idempotent request. Everything in it is owned (nothing points into
/// the buffers a connection reads with), so it costs about the size of the answer.
#[derive(Debug, Clone)]
pub struct StoredAnswer {
    /// The query and body it answered.
    pub fingerprint: Fingerprint,
    /// When it was stored, by the sandbox clock.
    pub stored_at: DateTime<Utc>,
    /// The answer's status.
    pub status: StatusCode,
    /// Its headers (all but those that describe one transfer: `Content-Length`, `Date`, ...).
    pub headers: axum::http::HeaderMap,
    /// Its body.
    pub body: bytes::Bytes,
    seq: u64,
}

impl StoredAnswer {
    /// An answer stored now.
    pub fn new(
        fingerprint: Fingerprint,
        stored_at: DateTime<Utc>,
        status: StatusCode,
        headers: axum::http::HeaderMap,
        body: bytes::Bytes,
    ) -> Self {
        Self { fingerprint, stored_at, status, headers, body, seq: 0 }
    }

    /// Roughly what keeping it costs, in bytes.
    fn cost(&self, id: &IdempotencyId) -> usize {
        let headers: usize = self.headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 32).sum();
        self.body.len() + headers + id.0.len() + id.1.len() + id.2.len() + id.3.len() + 128
    }
}

/// (merchant serial number or `-`, method, path, key).
pub type IdempotencyId = (String, String, String, String);

/// What the sandbox knows of one idempotency key.
#[derive(Debug, Clone)]
pub enum Idempotent {
    /// A request with this key is being handled; it asked for this.
    InFlight(Fingerprint),
    /// A request with this key succeeded with this answer.
    Done(StoredAnswer),
}

/// Requests with an `Idempotency-Key`, by (merchant, method, path, key): in progress, or
/// answered. Answers are kept for [`IDEMPOTENCY_RETENTION`] by the sandbox clock, at most
/// `capacity` of them and [`IDEMPOTENCY_MAX_BYTES`] in all, the oldest dropped first. Every
/// operation is constant time (amortized): answers are dropped from the front of a queue in
/// the order they were stored.
#[derive(Debug)]
pub struct IdempotencyStore {
    entries: HashMap<IdempotencyId, Idempotent>,
    /// Stored answers, oldest first, with the sequence number that tells a live entry.
    order: VecDeque<(u64, IdempotencyId)>,
    capacity: usize,
    bytes: usize,
    done: usize,
    seq: u64,
}

impl IdempotencyStore {
    /// An empty store that keeps at most `capacity` answers (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            bytes: 0,
            done: 0,
            seq: 0,
        }
    }

    /// Keys known (in flight or answered).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every key's state, in no order, for tests that look inside.
    pub fn values(&self) -> impl Iterator<Item = &Idempotent> {
        self.entries.values()
    }

    /// Bytes the stored answers cost, roughly.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// What is known of a key, once answers older than the retention are dropped.
    pub fn get(&mut self, id: &IdempotencyId, now: DateTime<Utc>) -> Option<&Idempotent> {
        self.evict(now);
        self.entries.get(id)
    }

    /// Marks a key as in flight.
    pub fn begin(&mut self, id: IdempotencyId, fingerprint: Fingerprint) {
        self.entries.insert(id, Idempotent::InFlight(fingerprint));
    }

    /// Forgets an in-flight mark (the request failed or went away); a stored answer stays.
    pub fn abandon(&mut self, id: &IdempotencyId) {
        if matches!(self.entries.get(id), Some(Idempotent::InFlight(_))) {
            self.entries.remove(id);
        }
    }

    /// Stores the answer to a key, dropping the oldest answers beyond the bounds.
    pub fn store(&mut self, id: IdempotencyId, mut answer: StoredAnswer) {
        let now = answer.stored_at;
        self.seq += 1;
        answer.seq = self.seq;
        self.bytes += answer.cost(&id);
        self.done += 1;
        self.order.push_back((self.seq, id.clone()));
        if let Some(Idempotent::Done(old)) = self.entries.insert(id.clone(), Idempotent::Done(answer)) {
            self.bytes = self.bytes.saturating_sub(old.cost(&id));
            self.done -= 1;
        }
        self.evict(now);
    }

    /// Drops answers from the front while they are too old or the store is over a bound.
    fn evict(&mut self, now: DateTime<Utc>) {
        while let Some((seq, id)) = self.order.front() {
            let live = match self.entries.get(id) {
                Some(Idempotent::Done(a)) if a.seq == *seq => Some(a),
                _ => None,
            };
            let Some(answer) = live else {
                self.order.pop_front();
                continue;
            };
            let expired = now - answer.stored_at >= IDEMPOTENCY_RETENTION;
            if !expired && self.done <= self.capacity && self.bytes <= IDEMPOTENCY_MAX_BYTES {
                break;
            }
            let cost = answer.cost(id);
            let (_, id) = self.order.pop_front().expect("the front was just read");
            self.entries.remove(&id);
            self.bytes = self.bytes.saturating_sub(cost);
            self.done -= 1;
        }
    }
}

/// Issued tokens, by token: a hash lookup to check one, and a queue in the order they were
/// issued so that expired ones are dropped a few at a time as new ones are issued (amortized
/// constant time, no scan of the live tokens).
#[derive(Debug, Default)]
pub struct TokenStore {
    by_token: HashMap<String, IssuedToken>,
    issued: VecDeque<String>,
}

/// How long an expired token is still remembered (a call with it gets "expired" rather than
/// "not issued here"; both are 401).
const TOKEN_GRACE: chrono::Duration = chrono::Duration::hours(1);

impl TokenStore {
    /// Tokens remembered (live, or expired less than an hour ago).
    pub fn len(&self) -> usize {
        self.by_token.len()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }

    /// A token, if it was issued here and is remembered.
    pub fn get(&self, token: &str) -> Option<&IssuedToken> {
        self.by_token.get(token)
    }

    /// Records a token as issued.
    pub fn insert(&mut self, token: String, issued: IssuedToken) {
        if self.by_token.insert(token.clone(), issued).is_none() {
            self.issued.push_back(token);
        }
    }

    /// Makes every token expire at `now`.
    pub fn expire_all(&mut self, now: DateTime<Utc>) {
        for issued in self.by_token.values_mut() {
            issued.expires = issued.expires.min(now);
        }
    }

    /// Drops the oldest tokens while they expired more than an hour before `now`. A token that
    /// lives longer than those issued after it holds them until it expires itself.
    fn sweep(&mut self, now: DateTime<Utc>) {
        while let Some(token) = self.issued.front() {
            match self.by_token.get(token) {
                Some(t) if t.expires + TOKEN_GRACE > now => break,
                Some(_) => {
                    self.by_token.remove(token);
                }
                None => {}
            }
            self.issued.pop_front();
        }
    }
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
    pub tokens: Mutex<TokenStore>,
    /// The fault plan.
    pub faults: Mutex<FaultPlan>,
    /// Requests with an `Idempotency-Key`: in progress, or answered.
    pub idempotency: Mutex<IdempotencyStore>,
    /// Recurring agreements and charges.
    pub recurring: Mutex<recurring::Store>,
    /// PSP payments.
    pub psp: Mutex<psp::Store>,
    /// Merchants, sales units and product orders.
    pub management: Mutex<management::Store>,
    /// Images, categories and receipts.
    pub order_management: Mutex<order_management::Store>,
    /// ePayment payments.
    pub epayment: Mutex<epayment::Store>,
    /// Webhook registrations.
    pub webhooks: Mutex<webhooks::Store>,
    /// QR codes and their images.
    pub qr: Mutex<qr::Store>,
    /// Checkout sessions and their callback attempts.
    pub checkout: Mutex<checkout::Store>,
    /// Login: pending logins, codes, CIBA requests and user access tokens.
    pub login: Mutex<crate::login::Store>,
    /// Events waiting to be delivered to the registered webhooks.
    pub outbox: tokio::sync::mpsc::UnboundedSender<delivery::Outgoing>,
    /// The other end of `outbox`, until the delivery task takes it.
    pub(crate) outbox_receiver: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<delivery::Outgoing>>>,
    /// Every webhook delivery attempt, oldest first.
    pub delivery_log: Mutex<Vec<delivery::Attempt>>,
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
        let idempotency = IdempotencyStore::new(config.idempotency_capacity);
        let (outbox, outbox_receiver) = tokio::sync::mpsc::unbounded_channel();
        Self {
            config,
            started_wall: Utc::now(),
            started: Instant::now(),
            clock_offset: Mutex::new(chrono::Duration::zero()),
            tokens: Mutex::new(TokenStore::default()),
            faults: Mutex::new(FaultPlan::default()),
            idempotency: Mutex::new(idempotency),
            recurring: Mutex::new(recurring::Store::default()),
            psp: Mutex::new(psp::Store::default()),
            management: Mutex::new(management),
            order_management: Mutex::new(order_management::Store::default()),
            epayment: Mutex::new(epayment::Store::default()),
            webhooks: Mutex::new(webhooks::Store::default()),
            qr: Mutex::new(qr::Store::default()),
            checkout: Mutex::new(checkout::Store::default()),
            login: Mutex::new(crate::login::Store::default()),
            outbox,
            outbox_receiver: Mutex::new(Some(outbox_receiver)),
            delivery_log: Mutex::new(Vec::new()),
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

    /// The sandbox's own base URL: see [`Config::base_url`].
    pub fn base_url(&self) -> &str {
        self.config.base_url.as_deref().unwrap_or("http://localhost").trim_end_matches('/')
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
        // Forget tokens that expired long ago, a few at a time, so a long run does not keep
        // every token and no call scans them all.
        tokens.sweep(now);
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
        lock(&self.tokens).expire_all(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(key: &str) -> IdempotencyId {
        ("123456".into(), "POST".into(), "/x".into(), key.into())
    }

    fn answer(at: DateTime<Utc>, body: &str) -> StoredAnswer {
        StoredAnswer::new([0; 32], at, StatusCode::CREATED, axum::http::HeaderMap::new(), bytes::Bytes::from(body.to_owned()))
    }

    #[test]
    fn the_idempotency_store_drops_the_oldest_beyond_its_capacity() {
        let now = Utc::now();
        let mut store = IdempotencyStore::new(3);
        for key in ["a", "b", "c", "d"] {
            store.store(id(key), answer(now, key));
        }
        assert_eq!(store.len(), 3);
        assert!(store.get(&id("a"), now).is_none(), "the oldest went first");
        assert!(store.get(&id("d"), now).is_some());
        // An in-flight mark is not an answer: it neither counts nor is dropped.
        store.begin(id("e"), [1; 32]);
        store.store(id("f"), answer(now, "f"));
        assert!(matches!(store.get(&id("e"), now), Some(Idempotent::InFlight(_))));
        assert!(store.get(&id("b"), now).is_none());
        store.abandon(&id("e"));
        assert_eq!(store.len(), 3);
    }

    #[test]
    fn idempotent_answers_expire_after_the_retention_and_count_their_bytes() {
        let start = Utc::now();
        let mut store = IdempotencyStore::new(10);
        store.store(id("old"), answer(start, "1234"));
        store.store(id("new"), answer(start + chrono::Duration::hours(12), "5678"));
        assert!(store.bytes() > 8);
        let later = start + IDEMPOTENCY_RETENTION;
        assert!(store.get(&id("old"), later).is_none(), "24 hours old: gone");
        assert!(store.get(&id("new"), later).is_some());
        assert!(store.get(&id("new"), later + chrono::Duration::hours(12)).is_none());
        assert_eq!((store.len(), store.bytes()), (0, 0));
    }

    #[test]
    fn the_byte_bound_drops_the_oldest_answers() {
        let now = Utc::now();
        let mut store = IdempotencyStore::new(100);
        let big = "x".repeat(IDEMPOTENCY_MAX_BYTES / 3);
        for key in ["a", "b", "c", "d"] {
            store.store(id(key), answer(now, &big));
        }
        assert!(store.bytes() <= IDEMPOTENCY_MAX_BYTES);
        assert!(store.get(&id("a"), now).is_none());
        assert!(store.get(&id("d"), now).is_some());
    }

    #[test]
    fn tokens_expired_over_an_hour_ago_are_dropped_as_new_ones_are_issued() {
        let state = Shared::new(Config::default());
        let short = state.issue_token(Duration::from_secs(60), TokenKind::AccessToken);
        let long = state.issue_token(Duration::from_secs(3 * 3600), TokenKind::Miami);
        state.advance_clock(chrono::Duration::minutes(2)).unwrap();
        assert!(!state.token_valid(&short));
        assert_eq!(state.valid_token(&long), Some(TokenKind::Miami));
        state.issue_token(Duration::from_secs(60), TokenKind::AccessToken);
        assert_eq!(lock(&state.tokens).len(), 3, "an expired token is remembered for an hour");
        state.advance_clock(chrono::Duration::minutes(62)).unwrap();
        state.issue_token(Duration::from_secs(60), TokenKind::AccessToken);
        assert!(lock(&state.tokens).get(&short).is_none());
        assert!(state.token_valid(&long));
        state.expire_tokens();
        assert!(!state.token_valid(&long));
    }
}
