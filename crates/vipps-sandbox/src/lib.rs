//! A local, stateful stand-in for the Vipps MobilePay APIs, for integration tests that run
//! offline and for trying the SDK without keys.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! let sandbox = vipps_sandbox::Sandbox::start().await?;
//! println!("serving on {}", sandbox.base_url());
//! let creds = sandbox.credentials();
//! // Point the SDK at `sandbox.base_url()` with `creds.client_id`, `creds.client_secret`,
//! // `creds.subscription_key` and `creds.merchant_serial_number`.
//! # let _ = creds;
//! # Ok(()) }
//! ```
//!
//! What it serves: both token endpoints; Recurring v3 (agreements and charges with their
//! state machines, force-accept, create-multiple, `Continuation-Token` paging); PSP v3
//! (initiate, force approve, update status, details); Management (seeded merchants and sales
//! units, product orders, price packages, the proposal endpoints); Order Management (images,
//! categories, receipts, orders); ePayment (the payment's states and aggregate, capture, refund,
//! cancel, force approve, the event log, expiry on the sandbox clock); the Webhooks API
//! (register, list, delete), with signed deliveries of ePayment and Recurring events to the
//! registered URLs ([`delivery`]); the landing pages a customer opens to approve or reject a
//! payment or an agreement ([`landing`]); the QR API ([`qr`]: merchant redirect, one-time
//! payment and callback QR codes, with real images served without credentials); the Report API
//! ([`report`]: ledgers built from the ePayment and Recurring captures and refunds, with a fixed
//! fee, paged by cursor); Checkout v3 (sessions, a landing page to approve or reject, the
//! callback, an ePayment payment per session: [`checkout`]); Login (OpenID Connect discovery,
//! JWKS, a landing page, the token endpoint with PKCE, CIBA; [`login`]) and Userinfo
//! ([`userinfo`]). Every other API call must carry a token the sandbox issued and the
//! subscription key; request bodies are read into the generated types, so a body that breaks the
//! spec is a `400 application/problem+json` naming the field, and nothing changes.
//!
//! Test controls: [`Sandbox::fail_next`], [`Sandbox::set_latency`],
//! [`Sandbox::expire_tokens`], [`Sandbox::advance_clock`], also reachable over HTTP under
//! `/_sandbox/` for a sandbox run as a separate process (see [`control`]).
//!
//! Every request body may be at most [`MAX_BODY_BYTES`] (4 MiB; a larger one is a 413).
//! `Idempotency-Key` is honoured on state-changing requests and its answers are kept for 24
//! hours of sandbox time, 10,000 at most; the README's "The sandbox" section has the rules.

#![warn(missing_docs)]

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::Router;

mod accesstoken;
pub mod checkout;
pub mod control;
pub mod delivery;
pub mod epayment;
pub mod extract;
pub mod landing;
pub mod login;
pub mod management;
mod middleware;
pub mod order_management;
pub mod problem;
pub mod psp;
pub mod qr;
pub mod recurring;
pub mod report;
pub mod state;
pub mod userinfo;
pub mod webhooks;

pub use middleware::MAX_BODY_BYTES;
pub use state::{Config, Credentials};

use state::{lock, AppState, Shared};

/// A running sandbox. Dropping it stops the server.
#[derive(Debug)]
pub struct Sandbox {
    base_url: String,
    state: AppState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Configures a sandbox before it starts.
#[derive(Debug, Clone)]
pub struct SandboxBuilder {
    config: Config,
    addr: SocketAddr,
}

impl Default for SandboxBuilder {
    fn default() -> Self {
        Self { config: Config::default(), addr: SocketAddr::from(([127, 0, 0, 1], 0)) }
    }
}

impl SandboxBuilder {
    /// The address to listen on; `127.0.0.1:0` (any free port) by default.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// The credentials the sandbox accepts.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.config.credentials = credentials;
        self
    }

    /// How long tokens from `/accesstoken/get` live (3600 s by default).
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.config.token_lifetime = lifetime;
        self
    }

    /// How long tokens from `/miami/v1/token` live (900 s by default).
    pub fn miami_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.config.miami_token_lifetime = lifetime;
        self
    }

    /// Whether the test-only endpoints (force-accept, force-approve) are served; on by default,
    /// as in the Vipps test environment. Off, they answer 404, as in production.
    pub fn test_mode(mut self, on: bool) -> Self {
        self.config.test_mode = on;
        self
    }

    /// How long a PENDING agreement waits before it is EXPIRED (10 minutes by default).
    pub fn agreement_pending_timeout(mut self, timeout: Duration) -> Self {
        self.config.agreement_pending_timeout = timeout;
        self
    }

    /// How long an ePayment payment waits for the customer before it is EXPIRED (5 minutes by
    /// default); a payment created with `expiresAt` waits until then instead.
    pub fn epayment_expiry(mut self, expiry: Duration) -> Self {
        self.config.epayment_expiry = expiry;
        self
    }

    /// How long a failed webhook delivery waits before its next attempt (1 s by default,
    /// doubled each time); see [`delivery`].
    pub fn webhook_retry_delay(mut self, delay: Duration) -> Self {
        self.config.webhook_retry_delay = delay;
        self
    }

    /// How many ledgers or ledger entries one Report API answer holds before its cursor (100);
    /// see [`report`].
    pub fn report_page_size(mut self, size: usize) -> Self {
        self.config.report_page_size = size.max(1);
        self
    }

    /// How many charges one page of a charge list holds before a `Continuation-Token` (100).
    pub fn charges_page_size(mut self, size: usize) -> Self {
        self.config.charges_page_size = size.max(1);
        self
    }

    /// The sandbox's own base URL, when clients reach it at another address than the one it
    /// binds (behind a port mapping, say): the links it hands out start with it, and it is the
    /// one web origin its `/_sandbox/` controls accept. By default, `http://` and the bound
    /// address.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.config.base_url = Some(url.into().trim_end_matches('/').to_owned());
        self
    }

    /// How many idempotent answers are kept at most (10,000 by default); the oldest go first.
    pub fn idempotency_capacity(mut self, capacity: usize) -> Self {
        self.config.idempotency_capacity = capacity.max(1);
        self
    }

    /// The router alone, to serve some other way.
    pub fn router(self) -> Router {
        let state = Arc::new(Shared::new(self.config));
        // Nothing delivers webhooks for a bare router: its events are dropped, not queued.
        drop(lock(&state.outbox_receiver).take());
        router(state)
    }

    /// Binds and starts serving on the current tokio runtime.
    pub async fn start(self) -> std::io::Result<Sandbox> {
        let listener = tokio::net::TcpListener::bind(self.addr).await?;
        let addr = listener.local_addr()?;
        let mut config = self.config;
        let base_url = config.base_url.get_or_insert_with(|| format!("http://{addr}")).clone();
        let state = Arc::new(Shared::new(config));
        let app = router(state.clone());
        if let Some(outgoing) = lock(&state.outbox_receiver).take() {
            tokio::spawn(delivery::run(Arc::downgrade(&state), outgoing));
        }
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Sandbox { base_url, state, shutdown: Some(tx), task: Some(task) })
    }
}

/// The whole application: every API's routes behind the shared middleware.
fn router(state: AppState) -> Router {
    use axum::middleware::from_fn_with_state;
    Router::new()
        .merge(accesstoken::routes())
        .merge(recurring::routes())
        .merge(psp::routes())
        .merge(management::routes())
        .merge(order_management::routes())
        .merge(epayment::routes())
        .merge(webhooks::routes())
        .merge(landing::routes())
        .merge(qr::routes())
        .merge(report::routes())
        .merge(checkout::routes())
        .merge(login::routes())
        .merge(userinfo::routes())
        .merge(control::routes())
        .fallback(|| async { problem::ApiError::not_found("no such endpoint in the sandbox") })
        .layer(from_fn_with_state(state.clone(), middleware::idempotency))
        .layer(from_fn_with_state(state.clone(), middleware::credentials))
        .layer(from_fn_with_state(state.clone(), middleware::faults))
        .layer(from_fn_with_state(state.clone(), control::guard))
        // `read_body` has read the body under the limit; extractors may take all of it.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(middleware::read_body))
        .layer(axum::middleware::from_fn(middleware::problems))
        .with_state(state)
}

impl Sandbox {
    /// Starts a sandbox with the default settings on `127.0.0.1` and a free port.
    pub async fn start() -> std::io::Result<Self> {
        Self::builder().start().await
    }

    /// A builder for other settings.
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder::default()
    }

    /// `http://127.0.0.1:<port>` (or the one set with [`SandboxBuilder::base_url`]): the base
    /// URL to give the SDK.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The credentials the sandbox accepts.
    pub fn credentials(&self) -> &Credentials {
        &self.state.config.credentials
    }

    /// Answers the next `count` API calls (not token calls) with `status` and a problem body.
    ///
    /// # Panics
    /// When `status` is not an error status (400 to 599): a test asking for that is wrong.
    pub fn fail_next(&self, count: u32, status: u16) {
        let status = StatusCode::from_u16(status)
            .ok()
            .filter(|s| s.is_client_error() || s.is_server_error())
            .unwrap_or_else(|| panic!("fail_next wants an error status (400 to 599), not {status}"));
        lock(&self.state.faults).fail_next = (count > 0).then_some((count, status));
    }

    /// Waits this long before handling each API call (zero turns it off).
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.state.faults).latency = latency;
    }

    /// Makes every token issued so far expire now: the next call with one gets a 401.
    pub fn expire_tokens(&self) {
        self.state.expire_tokens();
    }

    /// Moves the sandbox's clock on: due dates, agreement and token expiry, timestamps.
    /// Refused (nothing changes) beyond 100 years from the start.
    pub fn advance_clock(&self, by: Duration) -> Result<(), state::ClockError> {
        let step = chrono::Duration::from_std(by).map_err(|_| state::ClockError("the step is too large"))?;
        self.state.advance_clock(step).map(|_| ())
    }

    /// The user approves the pending CIBA (merchant-initiated login) request `auth_req_id`;
    /// false if no request by that id is pending. See [`login`].
    pub fn approve_ciba(&self, auth_req_id: &str) -> bool {
        lock(&self.state.login).answer_ciba(auth_req_id, true)
    }

    /// The user declines the pending CIBA request `auth_req_id`; false if none is pending.
    pub fn deny_ciba(&self, auth_req_id: &str) -> bool {
        lock(&self.state.login).answer_ciba(auth_req_id, false)
    }

    /// How many requests the sandbox has handled.
    pub fn calls(&self) -> u64 {
        self.state.calls.load(Ordering::Relaxed)
    }

    /// The shared state, for tests that look inside.
    pub fn state(&self) -> &Shared {
        &self.state
    }

    /// Stops serving and waits for the server task to end.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
